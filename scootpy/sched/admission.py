"""Admission of new jobs (spec §2.1 step 3, §4.2) and the effects of adding one (§4.3).

``check_admission`` answers RunJob's checks, in the reference's order and with its texts, against the jobs in
progress and the basis/tag history. ``BasisHistory`` is bounded (decision 1): it forgets the least recently
used requestor+basis keys beyond ``max_keys`` and keeps at most ``max_tags`` tags per key.
"""

from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence

from scootpy.sched.definitions import MAX_PRIORITY, JobDefinition
from scootpy.sched.job_state import JobState


class BasisHistory:
    """Tags seen per requestor+basis (plain concatenation, as the reference keys it)."""

    def __init__(self, max_keys: int = 10_000, max_tags: int = 1_000):
        self.max_keys = max_keys
        self.max_tags = max_tags
        self._tags: "OrderedDict[str, List[str]]" = OrderedDict()

    def check_and_record(self, requestor: str, basis: str, tag: str) -> Optional[str]:
        """Return the "Expired" error text, or record the tag and return None."""
        key = requestor + basis
        tags = self._tags.get(key)
        if tags is None:
            tags = self._tags[key] = []
            if len(self._tags) > self.max_keys:
                self._tags.popitem(last=False)
        self._tags.move_to_end(key)
        if tag in tags and tags[-1] != tag:
            return f"Expired tag={tag} for basis={basis}. Expected either tag={tags[-1]} or new tag."
        tags.append(tag)
        del tags[:-self.max_tags]
        return None


def check_admission(job: JobDefinition, requestors: Mapping[str, Sequence[JobState]], max_requestors: int,
                    max_jobs_per_requestor: int, history: BasisHistory) -> Optional[str]:
    """The first admission failure's text, or None when the job may be added."""
    in_progress = requestors.get(job.requestor, ())
    active = sum(1 for jobs in requestors.values() if jobs)
    if not in_progress and active >= max_requestors:
        return f"Exceeds max number of requestors: {job.requestor} ({max_requestors})"
    if len(in_progress) >= max_jobs_per_requestor:
        return f"Exceeds max jobs per requestor: {job.requestor} ({max_jobs_per_requestor})"
    if job.priority < 0 or job.priority > MAX_PRIORITY:
        return f"Invalid priority {job.priority}, must be between 0-2 inclusive"
    seen: Dict[str, None] = {}
    for task in job.tasks:
        if task.task_id in seen:
            return f"Invalid dup taskID {task.task_id}"
        seen[task.task_id] = None
    if job.basis:
        return history.check_and_record(job.requestor, job.basis, job.tag)
    return None


def apply_requestor_rules(new: JobState, others: Sequence[JobState]) -> List[str]:
    """Adjust ``new`` against the requestor's jobs in progress; return ids of jobs to kill (§4.3).

    A job with the same basis and another tag is superseded and killed; a job sharing the tag (with a
    different basis) lends its priority. Priorities are clamped to 0..2 (recovered jobs skip admission).
    """
    to_kill = []
    for other in others:
        if new.basis and other.basis == new.basis and other.tag != new.tag:
            to_kill.append(other.id)
        if other.tag == new.tag and other.basis != new.basis and other.priority != new.priority:
            new.priority = other.priority
    new.priority = min(max(new.priority, 0), MAX_PRIORITY)
    return to_kill

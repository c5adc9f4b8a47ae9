"""Task assignment: which waiting tasks go to which free nodes in one scheduling pass (spec §4.4, §4.5).

``get_task_assignments`` is a pure function: it reads job and node views, returns the assignments and a new
copy of the node groups, and touches nothing else. The arithmetic is the reference's, in float32.

Glossary:
  * priority 0..2: higher runs first; ``adjustment`` gives each priority its share of the cluster.
  * scale factor: ``nodes / max(outstanding, nodes) * adjustment[p]``; a job group's fair share of nodes.
  * job group: the jobs of one requestor sharing a tag, scheduled as one batch (later jobs' tasks first).
  * required / optional: leftover tasks of groups below / above their fair share, served in a second pass.
  * node group: nodes keyed by the snapshot their last task used; a task prefers a "hot" node of its snapshot.
"""

import math
import struct
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Protocol, Sequence, Sized, Tuple

NODE_SCALE_ADJUSTMENT = (0.15, 0.30, 0.55)
PRIORITIES = (2, 1, 0)


def f32(x: float) -> float:
    """Round to the nearest float32, as Go's float32 arithmetic does after every operation."""
    return struct.unpack("f", struct.pack("f", x))[0]


class TaskView(Protocol):
    job_id: str
    task_id: str
    snapshot_id: str


class JobView(Protocol):
    """What assignment reads of a job. ``not_started`` iterates waiting tasks in order (len() is cheap)."""

    id: str
    priority: int
    requestor: str
    tag: str
    num_tasks: int
    num_completed: int
    num_running: int
    not_started: Sized


@dataclass
class NodeGroup:
    """Nodes whose last task used one snapshot id; dicts keep insertion order for stable choice."""

    idle: Dict[str, None] = field(default_factory=dict)
    busy: Dict[str, None] = field(default_factory=dict)

    def copy(self) -> "NodeGroup":
        return NodeGroup(dict(self.idle), dict(self.busy))


@dataclass(frozen=True)
class Assignment:
    task: TaskView
    node_id: str


class _Pending:
    """The waiting tasks of one job group: jobs' ``not_started`` sequences, concatenated, read lazily."""

    def __init__(self) -> None:
        self.parts: List[Sized] = []
        self.size = 0

    def prepend(self, tasks: Sized) -> None:
        self.parts.insert(0, tasks)
        self.size += len(tasks)

    def slice(self, start: int, stop: int) -> List[TaskView]:
        out: List[TaskView] = []
        want = stop - start
        for part in self.parts:
            if want <= 0:
                break
            n = len(part)
            if start >= n:
                start -= n
                continue
            chunk = list(islice(iter(part), start, min(n, start + want)))
            out.extend(chunk)
            want -= len(chunk)
            start = 0
        return out


class _Span:
    """A window [start, stop) of a ``_Pending``; ``take(n)`` consumes from its front."""

    def __init__(self, pending: _Pending, start: int, stop: int):
        self.pending, self.start, self.stop = pending, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def take(self, n: int) -> List[TaskView]:
        tasks = self.pending.slice(self.start, self.start + n)
        self.start += n
        return tasks


def _ceil(x: float) -> int:
    return int(math.ceil(x))


def _scale(num_nodes: int, soft_max: int, adj: float) -> float:
    return f32(f32(f32(float(num_nodes)) / f32(float(soft_max))) * f32(adj))


def _first_pass(jobs: Sequence[JobView], requestors: Mapping[str, Sequence[JobView]], num_free: int,
                scales: Sequence[float]) -> Tuple[List[TaskView], int, List[List[_Span]], List[List[_Span]]]:
    """Give each job group its fair share; return tasks, free nodes left, and required/optional leftovers."""
    by_priority: List[List[JobView]] = [[], [], []]
    for job in jobs:
        by_priority[min(max(job.priority, 0), 2)].append(job)
    tasks: List[TaskView] = []
    seen: Dict[Tuple[str, str], bool] = {}
    required: List[List[_Span]] = [[], [], []]
    optional: List[List[_Span]] = [[], [], []]
    for p in PRIORITIES:
        for job in by_priority[p]:
            if num_free == 0:
                return tasks, num_free, required, optional
            if (job.requestor, job.tag) in seen:
                continue
            seen[(job.requestor, job.tag)] = True
            pending, num_tasks, num_running = _group(job, requestors, num_free)
            if pending.size == 0:
                continue
            scaled = _ceil(f32(f32(float(num_tasks)) * scales[p]))
            desired = min(pending.size, scaled)
            unmet = max(0, desired - num_running - num_free)
            sched = min(num_free, max(0, desired - num_running))
            if sched > 0:
                tasks.extend(pending.slice(0, sched))
                num_free -= sched
            if unmet > 0:
                required[p].append(_Span(pending, sched, sched + unmet))
            if sched + unmet < pending.size:
                optional[p].append(_Span(pending, sched + unmet, pending.size))
    return tasks, num_free, required, optional


def _group(job: JobView, requestors: Mapping[str, Sequence[JobView]], num_free: int
           ) -> Tuple[_Pending, int, int]:
    """Collect the waiting tasks of ``job``'s requestor/tag group, later jobs first."""
    pending = _Pending()
    num_tasks = num_running = 0
    for other in requestors.get(job.requestor, ()):
        if other.tag != job.tag:
            continue
        num_tasks += other.num_tasks
        num_running += other.num_running
        pending.prepend(other.not_started)
        if pending.size >= num_free:
            break
    return pending, num_tasks, num_running


def _second_pass(num_free: int, required: List[List[_Span]], optional: List[List[_Span]],
                 adjustment: Sequence[float]) -> List[TaskView]:
    """Spread the nodes left after the first pass: required leftovers first, then optional ones."""
    basis = num_free
    tasks: List[TaskView] = []
    rounds = ((required, adjustment), (required, (1.0, 1.0, 1.0)),
              (optional, adjustment), (optional, (1.0, 1.0, 1.0)))
    for buckets, weights in rounds:
        for p in PRIORITIES:
            if num_free == 0:
                return tasks
            spans = buckets[p]
            if not spans:
                continue
            quota = _ceil(f32(f32(f32(float(basis)) * f32(weights[p])) / f32(float(len(spans)))))
            for span in list(spans):
                n = min(num_free, quota, len(span))
                if n > 0:
                    num_free -= n
                    tasks.extend(span.take(n))
                    if len(span) == 0:
                        spans.remove(span)
    return tasks


def _place(tasks: Iterable[TaskView], groups: Dict[str, NodeGroup], usable: Callable[[str], bool]
           ) -> List[Assignment]:
    """Put each task on an idle usable node: its snapshot's group, then "", then any other group."""
    assignments = []
    order = [""] + list(groups)
    for task in tasks:
        found: Optional[Tuple[str, str]] = None
        for snap in [task.snapshot_id] + order:
            group = groups.get(snap)
            if group is None:
                continue
            node = next((n for n in group.idle if usable(n)), None)
            if node is not None:
                found = (snap, node)
                break
        if found is None:
            continue
        snap, node = found
        groups[snap].busy[node] = None
        del groups[snap].idle[node]
        assignments.append(Assignment(task, node))
    return assignments


def get_task_assignments(jobs: Sequence[JobView], requestors: Mapping[str, Sequence[JobView]],
                         groups: Mapping[str, NodeGroup], usable: Callable[[str], bool], num_nodes: int,
                         num_free: int, soft_max: Optional[int] = None,
                         adjustment: Sequence[float] = NODE_SCALE_ADJUSTMENT
                         ) -> Tuple[List[Assignment], Optional[Dict[str, NodeGroup]]]:
    """Choose (task, node) pairs for one pass; return them with the updated copy of ``groups``.

    ``num_nodes`` counts healthy nodes, ``num_free`` those not running a task; ``usable(node)`` is false for
    suspended or offlined nodes. ``soft_max`` overrides ``max(outstanding, num_nodes)`` (tests only).
    Returns ``([], None)`` when nothing is waiting. Example (production adjustment): one 40-task P0 job on 10
    idle nodes gets ceil(40 * 10/40 * .15) = 2 tasks in the first pass, then 2 and 6 more in the second.
    """
    outstanding = sum(j.num_tasks - j.num_completed for j in jobs)
    waiting = sum(j.num_tasks - j.num_completed - j.num_running for j in jobs)
    if waiting == 0:
        return [], None
    soft = soft_max if soft_max is not None else max(outstanding, num_nodes)
    scales = [_scale(num_nodes, soft, adj) for adj in adjustment]
    new_groups = {snap: group.copy() for snap, group in groups.items()}
    tasks, left, required, optional = _first_pass(jobs, requestors, num_free, scales)
    tasks += _second_pass(left, required, optional, adjustment)
    if not tasks:
        return [], None
    return _place(tasks, new_groups, usable), new_groups

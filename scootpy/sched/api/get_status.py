"""GetStatus: read straight from the saga log; unknown ids are NOT_STARTED (spec §2.2)."""

from typing import Any

from scootpy.sched.job_status import job_status_from_log


def get_status(saga_log: Any, job_id: str) -> Any:
    """The job's ``scoot.JobStatus``; a corrupted saga raises (INTERNAL_ERROR for that job only)."""
    return job_status_from_log(saga_log, job_id or "")

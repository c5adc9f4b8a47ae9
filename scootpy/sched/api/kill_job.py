"""KillJob: kill on the loop, then answer with the job's recorded status (spec §2.3, §3.4)."""

from typing import Any

from scootpy.sched.api.get_status import get_status


def kill_job(scheduler: Any, saga_log: Any, job_id: str) -> Any:
    """Kill a job in progress and return its ``scoot.JobStatus`` right after; raises for unknown/killed ids."""
    scheduler.kill_job(job_id or "")
    return get_status(scheduler, saga_log, job_id)

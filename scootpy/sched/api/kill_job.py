"""KillJob: kill on the loop, then answer with the status read from the saga log (spec §2.3, §3.4)."""

from typing import Any

from scootpy.sched.job_status import job_status_from_log


def kill_job(scheduler: Any, saga_log: Any, job_id: str) -> Any:
    scheduler.kill_job(job_id or "")
    return job_status_from_log(saga_log, job_id or "")

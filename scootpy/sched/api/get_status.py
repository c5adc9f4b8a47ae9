"""GetStatus: what the saga log records; unknown ids are NOT_STARTED (spec §2.2).

A job the scheduler is running is answered from its live saga state (the write-through copy of the same
records), with each record's payload converted once, so clients polling a big job do not make the scheduler
re-read and re-decode every record each time. Finished and unknown jobs, and jobs whose EndSaga is being
written, are read from the log itself.
"""

from typing import Any, Dict, Optional, Tuple

from scootpy.idl import scoot
from scootpy.sched.job_status import job_status_from_log
from scootpy.sched.saga.codec import payload_to_scoot_run_status
from scootpy.sched.saga.state import TaskFlag


def get_status(scheduler: Any, saga_log: Any, job_id: str) -> Any:
    """The job's ``scoot.JobStatus``; a corrupted saga raises (INTERNAL_ERROR for that job only)."""
    job_id = job_id or ""
    job = scheduler.jobs.get(job_id) if scheduler is not None else None
    state = job.saga.state if job is not None else None
    if state is None or job.ending or state.completed or state.aborted or state.saga_id != job_id:
        return job_status_from_log(saga_log, job_id)
    # The file log reads a StartTask written without data back as an empty payload; mirror that.
    empty_start = b"" if type(saga_log).__name__ == "FileSagaLog" else None
    return _live_status(job, state, empty_start)


def _live_status(job: Any, state: Any, empty_start: Optional[bytes]) -> Any:
    cache: Dict[str, Tuple[Optional[bytes], Any]] = job.status_cache
    task_status = {task_id: scoot.Status.NOT_STARTED for task_id in job.tasks}
    task_data = {}
    for task_id in state.task_ids():
        record = state.task(task_id)
        if record.flags & TaskFlag.COMPLETED:
            status, data = scoot.Status.COMPLETED, record.end_data
        elif record.flags & TaskFlag.STARTED:
            status, data = scoot.Status.IN_PROGRESS, record.start_data
            data = empty_start if data is None else data
        else:
            continue
        task_status[task_id] = status
        cached = cache.get(task_id)
        if cached is None or cached[0] is not data:
            cached = cache[task_id] = (data, payload_to_scoot_run_status(data))
        if cached[1] is not None:
            task_data[task_id] = cached[1]
    return scoot.JobStatus(id=job.id, status=scoot.Status.IN_PROGRESS, taskStatus=task_status, taskData=task_data)

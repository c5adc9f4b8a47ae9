"""Killing jobs (spec §3.4): the reference's error texts and the saga records of tasks killed while waiting."""

import logging
from typing import Any, List, Optional

import gevent.pool

from scootpy.runs import RunState, RunStatus
from scootpy.sched.saga.codec import encode_run_status

log = logging.getLogger(__name__)

USER_REQUESTED = "UserRequested"
KILL_WRITERS = 64


def not_found_text(job_id: str) -> str:
    return (f"Cannot kill Job Id {job_id}, not found. (This error can be ignored if kill was a fire-and-forget "
            "defensive request). The job may be finished,  the request may still be in the queue to be "
            "scheduled, or  the id may be invalid.   Check the job status, verify the id and/or resubmit the "
            "kill request after a few moments.")


def already_killed_text(job_id: str) -> str:
    return f"Job Id {job_id} was already killed, request ignored"


def killed_status(job_id: str, task_id: str) -> RunStatus:
    """What a task killed before it started records: ABORTED "UserRequested", no run id, no trailer."""
    return RunStatus(RunState.ABORTED, error=USER_REQUESTED, job_id=job_id, task_id=task_id)


def record_killed_tasks(job_id: str, saga: Any, tasks: List[Any], start_data: Optional[bytes] = None) -> None:
    """Write StartTask(nil) + EndTask(killed status) for each task; concurrent writers share the log's fsyncs."""
    def record(task: Any) -> None:
        try:
            saga.start_task(task.task_id, start_data)
            saga.end_task(task.task_id, encode_run_status(task.last_status))
        except Exception as e:
            log.warning("job %s task %s: recording the kill failed: %s", job_id, task.task_id, e)

    gevent.pool.Pool(KILL_WRITERS).map(record, tasks)

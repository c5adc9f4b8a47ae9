"""GetStatus answered from the saga log alone, as the reference does (spec scheduler.md §2.2).

* No messages (unknown, collected, or a memory log after a restart): ``{id, NOT_STARTED, {}, {}}``.
* Otherwise every task of the stored job starts NOT_STARTED; a task with EndTask is COMPLETED with its EndTask
  payload as taskData; one with only StartTask is IN_PROGRESS, with its StartTask payload if there is one (the
  file log's empty StartTask file shows up as ``{status: UNKNOWN, runId: ""}``).
* The job is COMPLETED after EndSaga, else IN_PROGRESS (ROLLED_BACK / ROLLING_BACK for aborted sagas).
* Log errors propagate: a corrupted saga raises CorruptedSagaLogError whose text is the reference's, an invalid
  history raises with the reference's text; the Thrift edge reports them as INTERNAL_ERROR.
"""

from typing import Any

from scootpy.idl import scoot
from scootpy.sched.saga.codec import job_task_ids, payload_to_scoot_run_status
from scootpy.sched.saga.log import SagaLog
from scootpy.sched.saga.state import SagaState, rebuild_state


def job_status_from_log(log: SagaLog, job_id: str) -> Any:
    """The ``scoot.JobStatus`` of ``job_id`` as recorded in ``log``."""
    state = rebuild_state(job_id, log.get_messages(job_id))
    if state is None:
        return scoot.JobStatus(id=job_id, status=scoot.Status.NOT_STARTED, taskStatus={}, taskData={})
    return job_status_from_state(state)


def job_status_from_state(state: SagaState) -> Any:
    """Convert a saga's state to the ``scoot.JobStatus`` GetStatus returns."""
    task_status = {task_id: scoot.Status.NOT_STARTED for task_id in job_task_ids(state.job)}
    task_data = {}
    for task_id in state.task_ids():
        status = scoot.Status.NOT_STARTED
        if state.aborted:
            if state.is_comp_task_completed(task_id):
                status = scoot.Status.ROLLED_BACK
            elif state.is_task_started(task_id):
                status = scoot.Status.ROLLING_BACK
        elif state.is_task_completed(task_id):
            status = scoot.Status.COMPLETED
            _put(task_data, task_id, payload_to_scoot_run_status(state.end_task_data(task_id)))
        elif state.is_task_started(task_id):
            status = scoot.Status.IN_PROGRESS
            _put(task_data, task_id, payload_to_scoot_run_status(state.start_task_data(task_id)))
        task_status[task_id] = status
    return scoot.JobStatus(id=state.saga_id, status=_job_status(state), taskStatus=task_status, taskData=task_data)


def _put(task_data: dict, task_id: str, run_status: Any) -> None:
    if run_status is not None:
        task_data[task_id] = run_status


def _job_status(state: SagaState) -> int:
    if state.completed:
        return scoot.Status.ROLLED_BACK if state.aborted else scoot.Status.COMPLETED
    return scoot.Status.ROLLING_BACK if state.aborted else scoot.Status.IN_PROGRESS

"""Job definitions as the scheduler sees them: frozen dataclasses, their validation, and their two edges.

A ``JobDefinition`` arrives as a ``scoot.JobDefinition`` (``job_definition_from_thrift``) and is stored in the
saga log as a binary ``sched.Job`` blob (``job_to_thrift`` / ``job_from_thrift``). The job-level default task
timeout is folded into each task at translation, as the reference does, so a stored job has none.
"""

from dataclasses import dataclass
from typing import Any, Dict, Tuple

from scootpy.idl import sched

MAX_PRIORITY = 2
NS_PER_MS = 1_000_000


class InvalidJobRequest(Exception):
    """A job definition the scheduler refuses; the text is the reference's."""


@dataclass(frozen=True)
class Command:
    """What a task runs. ``timeout_ms`` 0 means the scheduler default; negative values pass through."""

    argv: Tuple[str, ...]
    env: Dict[str, str]
    snapshot_id: str = ""
    timeout_ms: int = 0


@dataclass(frozen=True)
class TaskDefinition:
    task_id: str
    command: Command


@dataclass(frozen=True)
class JobDefinition:
    tasks: Tuple[TaskDefinition, ...]
    priority: int = 0
    tag: str = ""
    basis: str = ""
    requestor: str = ""
    job_type: str = ""


@dataclass(frozen=True)
class Job:
    """An admitted job: its id (= saga id) and its definition, with the tag already defaulted."""

    id: str
    definition: JobDefinition


def job_definition_from_thrift(job: Any) -> JobDefinition:
    """Translate a ``scoot.JobDefinition`` like the reference's RunJob (raises InvalidJobRequest)."""
    if job is None:
        raise InvalidJobRequest("nil job definition")
    default_ms = job.defaultTaskTimeoutMs
    tasks = []
    for task in job.tasks or []:
        if task is None:
            raise InvalidJobRequest("nil task definition")
        if task.command is None:
            raise InvalidJobRequest("nil command")
        if task.timeoutMs is not None and task.timeoutMs > 0:
            timeout_ms = task.timeoutMs
        else:
            timeout_ms = default_ms if default_ms is not None else 0
        if task.taskId is None:
            raise InvalidJobRequest("nil taskId")
        command = Command(argv=tuple(task.command.argv or ()), env=dict(task.command.envVars or {}),
                          snapshot_id=task.snapshotId or "", timeout_ms=timeout_ms)
        tasks.append(TaskDefinition(task_id=task.taskId, command=command))
    return JobDefinition(tasks=tuple(tasks), priority=job.priority or 0, tag=job.tag or "",
                         basis=job.basis or "", requestor=job.requestor or "", job_type=job.jobType or "")


def validate_job(job: JobDefinition) -> None:
    """Raise InvalidJobRequest with the reference's text for the first problem found."""
    if not job.tasks:
        raise InvalidJobRequest("invalid job. Must have at least 1 task; was empty")
    for task in job.tasks:
        if task.task_id == "":
            raise InvalidJobRequest('invalid task id "".')
        if not task.command.argv:
            raise InvalidJobRequest("invalid task.Command.Argv. Must have at least one argument; was empty")


def validate_max_tasks(max_tasks: int) -> None:
    """The SetSchedulerStatus check: -1 means unlimited, anything lower is refused."""
    if max_tasks < -1:
        raise InvalidJobRequest(f"invalid tasks limit:{max_tasks}. Must be >= -1.")


def job_to_thrift(job: Job) -> Any:
    """The ``sched.Job`` stored as StartSaga data: every optional field set, timeouts in nanoseconds."""
    tasks = [sched.TaskDefinition(
        command=sched.Command(argv=list(t.command.argv), envVars=dict(t.command.env),
                              timeout=t.command.timeout_ms * NS_PER_MS, snapshotId=t.command.snapshot_id),
        taskId=t.task_id) for t in job.definition.tasks]
    d = job.definition
    definition = sched.JobDefinition(jobType=d.job_type, tasks=tasks, priority=d.priority, tag=d.tag,
                                     basis=d.basis, requestor=d.requestor)
    return sched.Job(id=job.id, jobDefinition=definition)


def job_from_thrift(job: Any) -> Job:
    """Read a ``sched.Job`` (for example a recovered StartSaga blob); absent fields become defaults."""
    d = job.jobDefinition or sched.JobDefinition()
    tasks = []
    for t in d.tasks or []:
        cmd = t.command or sched.Command()
        tasks.append(TaskDefinition(task_id=t.taskId or "", command=Command(
            argv=tuple(cmd.argv or ()), env=dict(cmd.envVars or {}), snapshot_id=cmd.snapshotId or "",
            timeout_ms=int((cmd.timeout or 0) / NS_PER_MS))))
    definition = JobDefinition(tasks=tuple(tasks), priority=d.priority or 0, tag=d.tag or "",
                               basis=d.basis or "", requestor=d.requestor or "", job_type=d.jobType or "")
    return Job(id=job.id or "", definition=definition)

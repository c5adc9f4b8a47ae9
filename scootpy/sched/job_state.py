"""A job in progress inside the scheduler: its tasks' states and counts (spec §3.1, §3.2).

Tasks move NOT_STARTED -> IN_PROGRESS (assigned) -> COMPLETED (final result, kill, or recovered EndTask),
or back IN_PROGRESS -> NOT_STARTED for a retry. Waiting tasks are kept in an ordered dict so a scheduling
pass reads the first few in O(few) however large the job is.
"""

import enum
import time
from typing import Any, Dict, Iterable, Optional

from scootpy.runs import RunStatus
from scootpy.sched.definitions import Job, TaskDefinition


class TaskStatus(str, enum.Enum):
    NOT_STARTED = "NOT_STARTED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


class TaskState:
    """One task of a job. ``times_tried`` counts worker-failure tries, ``infra_tries`` infrastructure ones."""

    __slots__ = ("job_id", "task_id", "definition", "status", "times_tried", "infra_tries", "node_id",
                 "runner", "last_status")

    def __init__(self, job_id: str, definition: TaskDefinition):
        self.job_id = job_id
        self.task_id = definition.task_id
        self.definition = definition
        self.status = TaskStatus.NOT_STARTED
        self.times_tried = 0
        self.infra_tries = 0
        self.node_id = ""
        self.runner: Any = None
        self.last_status: Optional[RunStatus] = None

    @property
    def snapshot_id(self) -> str:
        return self.definition.command.snapshot_id


class JobState:
    """The scheduler's live record of one job. Changed only by the loop through the methods below."""

    def __init__(self, job: Job, saga: Any, completed: Iterable[str] = (), now: Optional[float] = None):
        d = job.definition
        self.job = job
        self.saga = saga
        self.id = job.id
        self.priority = d.priority
        self.requestor, self.tag, self.basis = d.requestor, d.tag, d.basis
        self.created = time.time() if now is None else now
        self.tasks: Dict[str, TaskState] = {}
        self.waiting: Dict[str, TaskState] = {}
        done = set(completed)
        self.num_completed = 0
        self.num_running = 0
        for definition in d.tasks:
            task = TaskState(job.id, definition)
            self.tasks[task.task_id] = task
            if task.task_id in done:
                task.status = TaskStatus.COMPLETED
                self.num_completed += 1
            else:
                self.waiting[task.task_id] = task
        self.killed = False
        self.pending_writes = 0
        self.ending = False
        self.end_saga_after = 0.0
        self.status_cache: Dict[str, Any] = {}

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def not_started(self):
        return self.waiting.values()

    @property
    def done(self) -> bool:
        return self.num_completed == len(self.tasks)

    def task_started(self, task_id: str, node_id: str, runner: Any) -> TaskState:
        task = self.waiting.pop(task_id)
        task.status, task.node_id, task.runner = TaskStatus.IN_PROGRESS, node_id, runner
        self.num_running += 1
        return task

    def task_completed(self, task_id: str) -> None:
        """Mark a task final, whether it was running or still waiting (a kill)."""
        task = self.tasks[task_id]
        if task.status == TaskStatus.COMPLETED:
            return
        if task.status == TaskStatus.IN_PROGRESS:
            self.num_running -= 1
        else:
            del self.waiting[task_id]
        task.status, task.runner = TaskStatus.COMPLETED, None
        self.num_completed += 1

    def task_retry(self, task_id: str) -> None:
        """Put a running task back in the waiting set after a failed try."""
        task = self.tasks[task_id]
        if task.status != TaskStatus.IN_PROGRESS:
            return
        self.num_running -= 1
        task.status, task.runner = TaskStatus.NOT_STARTED, None
        self.waiting[task_id] = task

    def running_tasks(self) -> Iterable[TaskState]:
        return [t for t in self.tasks.values() if t.status == TaskStatus.IN_PROGRESS]

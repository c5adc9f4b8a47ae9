"""The state of one saga: job blob, per-task progress flags and data, rebuilt from or advanced by messages.

The transition rules are the reference's (spec scheduler.md §5.1): a task id is non-empty; StartTask is refused
once the saga is completed or aborted or the task completed (repeating it is fine, the last data wins);
EndTask needs a StartTask first; EndSaga needs every task that has any flag to be completed (compensated,
for an aborted saga); a message with no data (None) leaves the stored data unchanged.
"""

import enum
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from scootpy.sched.saga.log import (InvalidSagaMessageError, InvalidSagaStateError, MessageType, SagaMessage,
                                    TASK_MESSAGE_TYPES)


class TaskFlag(enum.IntFlag):
    """Progress flags of one task (values as in the reference)."""

    NONE = 0
    STARTED = 1
    COMPLETED = 2
    COMP_STARTED = 4
    COMP_COMPLETED = 8


@dataclass(frozen=True)
class TaskRecord:
    """One task's flags and the last data logged for each task message type."""

    flags: TaskFlag = TaskFlag.NONE
    start_data: Optional[bytes] = None
    end_data: Optional[bytes] = None
    comp_start_data: Optional[bytes] = None
    comp_end_data: Optional[bytes] = None


_DATA_INDEX = {MessageType.START_TASK: 1, MessageType.END_TASK: 2, MessageType.START_COMP_TASK: 3,
               MessageType.END_COMP_TASK: 4}  # position in TaskRecord's fields

FIRST_MESSAGE_ERROR = "InvalidMessages: first message must be StartSaga"


class SagaState:
    """Read-only view of a saga; ``apply`` (used by ``Saga`` and ``rebuild_state``) is the only mutator."""

    def __init__(self, saga_id: str, job: Optional[bytes]):
        if not saga_id:
            raise InvalidSagaMessageError("sagaId cannot be the empty string")
        self.saga_id = saga_id
        self.job = job
        self.aborted = False
        self.completed = False
        self._tasks: Dict[str, TaskRecord] = {}

    def task_ids(self) -> List[str]:
        """Ids of every task that has a record, in the order they first appeared."""
        return list(self._tasks)

    def task(self, task_id: str) -> TaskRecord:
        """The task's record (an empty one if the task never appeared)."""
        record = self._tasks.get(task_id)
        return record if record is not None else TaskRecord()

    def is_task_started(self, task_id: str) -> bool:
        return bool(self.task(task_id).flags & TaskFlag.STARTED)

    def is_task_completed(self, task_id: str) -> bool:
        return bool(self.task(task_id).flags & TaskFlag.COMPLETED)

    def is_comp_task_started(self, task_id: str) -> bool:
        return bool(self.task(task_id).flags & TaskFlag.COMP_STARTED)

    def is_comp_task_completed(self, task_id: str) -> bool:
        return bool(self.task(task_id).flags & TaskFlag.COMP_COMPLETED)

    def start_task_data(self, task_id: str) -> Optional[bytes]:
        return self.task(task_id).start_data

    def end_task_data(self, task_id: str) -> Optional[bytes]:
        return self.task(task_id).end_data

    def completed_task_ids(self) -> List[str]:
        """Ids of the tasks with an EndTask record."""
        return [t for t, rec in self._tasks.items() if rec.flags & TaskFlag.COMPLETED]

    def check(self, msg: SagaMessage) -> None:
        """Raise InvalidSagaMessageError/InvalidSagaStateError if ``msg`` may not be applied now."""
        if msg.saga_id != self.saga_id:
            raise InvalidSagaMessageError(
                f"sagaId {self.saga_id} & SagaMessage sagaId {msg.saga_id} do not match")
        if msg.type == MessageType.START_SAGA:
            raise InvalidSagaStateError("Cannot apply a StartSaga Message to an already existing Saga")
        if msg.type in TASK_MESSAGE_TYPES and not msg.task_id:
            raise InvalidSagaMessageError("taskId cannot be the empty string")
        _CHECKS[msg.type](self, msg.task_id)

    def apply(self, msg: SagaMessage) -> Callable[[], None]:
        """Check and apply ``msg``; return a function that undoes exactly this change."""
        self.check(msg)
        if msg.type == MessageType.END_SAGA:
            self.completed = True
            return self._undo_flag("completed")
        if msg.type == MessageType.ABORT_SAGA:
            self.aborted = True
            return self._undo_flag("aborted")
        return self._apply_task(msg)

    def _apply_task(self, msg: SagaMessage) -> Callable[[], None]:
        task_id = msg.task_id
        had = task_id in self._tasks
        old = self.task(task_id)
        fields = [old.flags, old.start_data, old.end_data, old.comp_start_data, old.comp_end_data]
        if msg.data is not None:
            fields[_DATA_INDEX[msg.type]] = msg.data
        fields[0] = TaskFlag.STARTED if msg.type == MessageType.START_TASK else old.flags | _FLAG_SET[msg.type]
        self._tasks[task_id] = TaskRecord(*fields)

        def undo() -> None:
            if had:
                self._tasks[task_id] = old
            else:
                self._tasks.pop(task_id, None)
        return undo

    def _undo_flag(self, name: str) -> Callable[[], None]:
        def undo() -> None:
            setattr(self, name, False)
        return undo

    def __repr__(self) -> str:
        tasks = ", ".join(f"{t}: {rec.flags!r}" for t, rec in self._tasks.items())
        return f"SagaState({self.saga_id}, aborted={self.aborted}, completed={self.completed}, tasks=[{tasks}])"


_FLAG_SET = {MessageType.END_TASK: TaskFlag.COMPLETED, MessageType.START_COMP_TASK: TaskFlag.COMP_STARTED,
             MessageType.END_COMP_TASK: TaskFlag.COMP_COMPLETED}


def _check_end_saga(state: SagaState, _task_id: str) -> None:
    for task_id in state._tasks:
        if state.aborted:
            if not (state.is_comp_task_started(task_id) and state.is_comp_task_completed(task_id)):
                raise InvalidSagaStateError(
                    f"End Saga Message cannot be applied to an aborted Saga where Task {task_id} "
                    "has not completed its compensating Tasks")
        elif not state.is_task_completed(task_id):
            raise InvalidSagaStateError(
                f"End Saga Message cannot be applied to a Saga where Task {task_id} has not completed")


def _check_abort_saga(state: SagaState, _task_id: str) -> None:
    if state.completed:
        raise InvalidSagaStateError("AbortSaga Message cannot be applied to a Completed Saga")


def _check_start_task(state: SagaState, task_id: str) -> None:
    if state.completed:
        raise InvalidSagaStateError(f"Cannot StartTask after Saga has been completed: {task_id}")
    if state.aborted:
        raise InvalidSagaStateError("Cannot StartTask after Saga has been aborted")
    if state.is_task_completed(task_id):
        raise InvalidSagaStateError(f"Cannot StartTask after it has been completed: {task_id}")


def _check_end_task(state: SagaState, task_id: str) -> None:
    if state.completed:
        raise InvalidSagaStateError("Cannot EndTask after Saga has been completed")
    if state.aborted:
        raise InvalidSagaStateError("Cannot EndTask after an Abort Saga Message")
    if not state.is_task_started(task_id):
        raise InvalidSagaStateError(f"Cannot have a EndTask Message Before a StartTask Message, taskId: {task_id}")


def _check_comp_common(state: SagaState, task_id: str, name: str) -> None:
    if state.completed:
        raise InvalidSagaStateError(f"Cannot {name} after Saga has been completed")
    if not state.aborted:
        raise InvalidSagaStateError(
            f"Cannot have a {name} Message when Saga has not been Aborted, taskId: {task_id}")
    if not state.is_task_started(task_id):
        raise InvalidSagaStateError(
            f"Cannot have a StartCompTask Message Before a StartTask Message, taskId: {task_id}")


def _check_start_comp_task(state: SagaState, task_id: str) -> None:
    _check_comp_common(state, task_id, "StartCompTask")
    if state.is_comp_task_completed(task_id):
        raise InvalidSagaStateError(f"Cannot StartCompTask after it has been completed, taskId: {task_id}")


def _check_end_comp_task(state: SagaState, task_id: str) -> None:
    _check_comp_common(state, task_id, "EndCompTask")
    if not state.is_comp_task_started(task_id):
        raise InvalidSagaStateError(
            f"Cannot have a EndCompTask Message Before a StartCompTaks Message, taskId: {task_id}")


_CHECKS = {MessageType.END_SAGA: _check_end_saga, MessageType.ABORT_SAGA: _check_abort_saga,
           MessageType.START_TASK: _check_start_task, MessageType.END_TASK: _check_end_task,
           MessageType.START_COMP_TASK: _check_start_comp_task, MessageType.END_COMP_TASK: _check_end_comp_task}


def rebuild_state(saga_id: str, messages: List[SagaMessage]) -> Optional[SagaState]:
    """The state a saga's logged messages describe; None if there are none.

    The first message must be StartSaga (its data is the job blob); later StartSaga messages (a repeated
    StartSaga call) are ignored. Raises InvalidSagaStateError/InvalidSagaMessageError for an invalid history.
    """
    if not messages:
        return None
    if messages[0].type != MessageType.START_SAGA:
        raise InvalidSagaStateError(FIRST_MESSAGE_ERROR)
    state = SagaState(saga_id, messages[0].data)
    for msg in messages[1:]:
        if msg.type != MessageType.START_SAGA:
            state.apply(msg)
    return state

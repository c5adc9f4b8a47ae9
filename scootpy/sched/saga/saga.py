"""``Saga``: the write-through handle the scheduler uses to record one job's progress.

Each write is validated against the in-memory ``SagaState``, applied, then appended to the log; if the append
fails the change is rolled back and the error re-raised. Writes for one task are serialized, writes for
different tasks of the same saga may be in flight together (so they share the log's group commit), and
EndSaga/AbortSaga wait for every in-flight task write and exclude new ones. Unlike the reference, which
crashes on a write after EndSaga, every write after a successful EndSaga is rejected with an error.
"""

from contextlib import contextmanager
from typing import Dict, Iterator, Optional

from gevent.event import Event
from gevent.lock import Semaphore

from scootpy.sched.saga.log import InvalidSagaStateError, MessageType, SagaLog, SagaMessage
from scootpy.sched.saga.state import SagaState


class _Gate:
    """Shared/exclusive gate for one saga, preferring waiting exclusive users (gevent-cooperative)."""

    def __init__(self) -> None:
        self._shared = 0
        self._exclusive = False
        self._exclusive_waiting = 0
        self._changed = Event()

    def _wait(self) -> None:
        self._changed.wait()

    def _notify(self) -> None:
        changed, self._changed = self._changed, Event()
        changed.set()

    @contextmanager
    def shared(self) -> Iterator[None]:
        while self._exclusive or self._exclusive_waiting:
            self._wait()
        self._shared += 1
        try:
            yield
        finally:
            self._shared -= 1
            self._notify()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        self._exclusive_waiting += 1
        try:
            while self._exclusive or self._shared:
                self._wait()
        finally:
            self._exclusive_waiting -= 1
        self._exclusive = True
        try:
            yield
        finally:
            self._exclusive = False
            self._notify()


class Saga:
    """One saga's durable, validated write path plus its current state (``.state``, read-only)."""

    def __init__(self, log: SagaLog, state: SagaState):
        self._log = log
        self._state = state
        self._gate = _Gate()
        self._task_locks: Dict[str, Semaphore] = {}
        self._task_waiters: Dict[str, int] = {}

    @classmethod
    def start(cls, log: SagaLog, saga_id: str, job_blob: bytes) -> "Saga":
        """Log StartSaga (durable when this returns) and return the new saga."""
        state = SagaState(saga_id, job_blob)
        log.start_saga(saga_id, job_blob)
        return cls(log, state)

    @classmethod
    def resume(cls, log: SagaLog, state: SagaState) -> "Saga":
        """A saga rebuilt from the log (recovery); writes nothing."""
        return cls(log, state)

    @property
    def id(self) -> str:
        return self._state.saga_id

    @property
    def state(self) -> SagaState:
        """The live state; treat it as read-only."""
        return self._state

    @property
    def ended(self) -> bool:
        """True once EndSaga has been logged."""
        return self._state.completed

    def start_task(self, task_id: str, data: Optional[bytes] = None) -> None:
        """Log StartTask; ``data`` None keeps the previously stored StartTask data."""
        self._task_write(SagaMessage(self.id, MessageType.START_TASK, task_id, data))

    def end_task(self, task_id: str, data: Optional[bytes] = None) -> None:
        """Log EndTask with the task's final result."""
        self._task_write(SagaMessage(self.id, MessageType.END_TASK, task_id, data))

    def end_saga(self) -> None:
        """Log EndSaga; every task that was started must be completed. Later writes are rejected."""
        with self._gate.exclusive():
            self._write(SagaMessage(self.id, MessageType.END_SAGA))

    def abort_saga(self) -> None:
        """Log AbortSaga (never used by the scheduler; kept for completeness of the saga model)."""
        with self._gate.exclusive():
            self._write(SagaMessage(self.id, MessageType.ABORT_SAGA))

    def _task_write(self, msg: SagaMessage) -> None:
        with self._gate.shared(), self._task_lock(msg.task_id):
            self._write(msg)

    def _write(self, msg: SagaMessage) -> None:
        if self._state.completed:
            raise InvalidSagaStateError(f"Saga {self.id} has ended; {msg.type.value} is not allowed")
        undo = self._state.apply(msg)
        try:
            self._log.log_message(msg)
        except BaseException:
            undo()
            raise

    @contextmanager
    def _task_lock(self, task_id: str) -> Iterator[None]:
        lock = self._task_locks.get(task_id)
        if lock is None:
            lock = self._task_locks[task_id] = Semaphore()
        self._task_waiters[task_id] = self._task_waiters.get(task_id, 0) + 1
        try:
            with lock:
                yield
        finally:
            self._task_waiters[task_id] -= 1
            if not self._task_waiters[task_id]:
                del self._task_waiters[task_id]
                del self._task_locks[task_id]

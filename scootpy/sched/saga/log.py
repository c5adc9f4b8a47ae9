"""The saga-log interface shared by the in-memory and file logs, and the message they store."""

import enum
from dataclasses import dataclass
from typing import List, Optional, Protocol


class MessageType(str, enum.Enum):
    """Saga message types; the values are the exact type lines of the reference's file log."""

    START_SAGA = "Start Saga"
    END_SAGA = "End Saga"
    ABORT_SAGA = "Abort Saga"
    START_TASK = "Start Task"
    END_TASK = "End Task"
    START_COMP_TASK = "Start Comp Task"
    END_COMP_TASK = "End Comp Task"


@dataclass(frozen=True)
class SagaMessage:
    """One record: ``data`` is the job blob for START_SAGA, a Thrift-JSON RunStatus (or b"") for task records."""

    saga_id: str
    type: MessageType
    task_id: str = ""
    data: Optional[bytes] = None


class SagaLogError(Exception):
    """A log could not be written or read (I/O); the caller may retry."""


class CorruptedSagaLogError(SagaLogError):
    """A saga's stored records cannot be parsed; that saga is unusable, others are unaffected."""

    def __init__(self, saga_id: str, detail: str):
        super().__init__(f"SagaLog for {saga_id} has been corrupted, Error: {detail}")
        self.saga_id = saga_id


class InvalidSagaMessageError(ValueError):
    """A message carries invalid parameters (empty or unusable saga/task id); never retry it."""


class InvalidSagaStateError(ValueError):
    """Applying a message would make the saga invalid (e.g. EndTask before StartTask); never retry it."""


TASK_MESSAGE_TYPES = frozenset({MessageType.START_TASK, MessageType.END_TASK, MessageType.START_COMP_TASK,
                                MessageType.END_COMP_TASK})


class SagaLog(Protocol):
    """Where sagas are kept. Every method may raise SagaLogError."""

    def start_saga(self, saga_id: str, job: bytes) -> None:
        """Record a new saga with its job blob; durable when this returns."""

    def log_message(self, message: SagaMessage) -> None:
        """Append one message to an existing saga; durable when this returns."""

    def log_messages(self, messages: List[SagaMessage]) -> None:
        """Append several messages (possibly of several sagas) with one flush to stable storage."""

    def get_messages(self, saga_id: str) -> List[SagaMessage]:
        """All messages of a saga in order; [] for an unknown saga."""

    def get_active_sagas(self) -> List[str]:
        """Ids of every saga the log holds (completed ones included), sorted."""

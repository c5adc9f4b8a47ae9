"""``MemorySagaLog``: the non-durable saga log of the ``memory`` SagaLog config (spec scheduler.md §5.4).

StartSaga replaces any saga with that id; LogMessage on an unknown id fails with
``Saga: <id> does not exist in the Log``. With ``expiration_sec > 0`` whole sagas older than that are deleted,
whatever their state, every ``gc_interval_sec``. Unlike the reference the map is always bounded: beyond
``max_sagas`` the oldest ended sagas are dropped first, then the oldest of any kind.
"""

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, List, Optional

import gevent

from scootpy.sched.saga.log import MessageType, SagaLogError, SagaMessage

log = logging.getLogger(__name__)

DEFAULT_MAX_SAGAS = 20_000


@dataclass
class _Entry:
    messages: List[SagaMessage]
    created: float
    ended: bool = False


class MemorySagaLog:
    """In-memory SagaLog with optional expiry GC (``step(now)``/``run()`` actor) and a hard size bound."""

    def __init__(self, expiration_sec: float = 0, gc_interval_sec: float = 0, max_sagas: int = DEFAULT_MAX_SAGAS,
                 clock: Callable[[], float] = time.monotonic, start_gc: bool = True):
        if expiration_sec < 0 or gc_interval_sec < 0:
            raise ValueError("saga log ExpirationSec and GCIntervalSec must be >= 0")
        if expiration_sec > 0 and gc_interval_sec <= 0:
            raise ValueError("saga log GCIntervalSec must be > 0 when ExpirationSec > 0")
        if max_sagas < 1:
            raise ValueError("max_sagas must be >= 1")
        self.expiration_sec = expiration_sec
        self.gc_interval_sec = gc_interval_sec
        self.max_sagas = max_sagas
        self._clock = clock
        self._sagas: "OrderedDict[str, _Entry]" = OrderedDict()
        self._gc: Optional[gevent.Greenlet] = None
        if expiration_sec > 0 and start_gc:
            self._gc = gevent.spawn(self.run)

    def start_saga(self, saga_id: str, job: bytes) -> None:
        """Create (or replace) a saga holding only its StartSaga message."""
        self._sagas.pop(saga_id, None)
        self._sagas[saga_id] = _Entry([SagaMessage(saga_id, MessageType.START_SAGA, "", job)], self._clock())
        self._enforce_bound()

    def log_message(self, message: SagaMessage) -> None:
        """Append one message to an existing saga."""
        self.log_messages([message])

    def log_messages(self, messages: List[SagaMessage]) -> None:
        """Append several messages; all sagas must exist (checked before anything is appended)."""
        for msg in messages:
            if msg.type != MessageType.START_SAGA and msg.saga_id not in self._sagas:
                raise SagaLogError(f"Saga: {msg.saga_id} does not exist in the Log")
        for msg in messages:
            if msg.type == MessageType.START_SAGA:
                self.start_saga(msg.saga_id, msg.data or b"")
                continue
            entry = self._sagas[msg.saga_id]
            entry.messages.append(msg)
            if msg.type == MessageType.END_SAGA:
                entry.ended = True

    def get_messages(self, saga_id: str) -> List[SagaMessage]:
        """All messages of a saga, in order; [] if unknown or collected."""
        entry = self._sagas.get(saga_id)
        return list(entry.messages) if entry else []

    def get_active_sagas(self) -> List[str]:
        """Every saga held (ended ones included), sorted."""
        return sorted(self._sagas)

    def step(self, now: Optional[float] = None) -> int:
        """One GC pass: delete sagas created ``expiration_sec`` or more ago; return how many went."""
        if self.expiration_sec <= 0:
            return 0
        now = self._clock() if now is None else now
        expired = [sid for sid, e in self._sagas.items() if now - e.created >= self.expiration_sec]
        for sid in expired:
            del self._sagas[sid]
        if expired:
            log.debug("saga log GC removed %d sagas", len(expired))
        return len(expired)

    def run(self) -> None:
        """Run GC passes every ``gc_interval_sec`` until ``close()``."""
        while True:
            gevent.sleep(self.gc_interval_sec)
            try:
                self.step()
            except Exception:  # a GC failure must never stop the loop
                log.exception("saga log GC failed")

    def close(self) -> None:
        """Stop the GC greenlet, if any."""
        if self._gc is not None:
            self._gc.kill()
            self._gc = None

    def _enforce_bound(self) -> None:
        excess = len(self._sagas) - self.max_sagas
        if excess <= 0:
            return
        victims = [sid for sid, e in self._sagas.items() if e.ended][:excess]
        chosen = set(victims)
        victims += [sid for sid in self._sagas if sid not in chosen][:excess - len(victims)]
        for sid in victims:
            del self._sagas[sid]
        log.warning("saga log holds more than %d sagas; dropped the %d oldest", self.max_sagas, len(victims))

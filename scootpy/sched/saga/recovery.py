"""Which sagas a restarted scheduler must resume (spec scheduler.md §5.6 steps 1-2).

Every saga the log lists is rebuilt; it is skipped (and reported) when it has no messages, an invalid history,
a corrupted log, an EndSaga, or a job blob that does not decode. Plain log I/O errors (SagaLogError but not
CorruptedSagaLogError) are retried with the reference's back-off ``min((2^n - 1)/2 s, 60 s)``, but at most
``max_attempts`` times (the reference retries forever), after which the saga is skipped. Nothing here raises
for a damaged saga; only a log whose saga list cannot be read at all makes ``recoverable_sagas`` raise.
A log offering ``has_ended(saga_id)`` (the file log) lets finished sagas be skipped without parsing them.
"""

import logging
from typing import Callable, List, NamedTuple, Optional, Tuple

import gevent
from gevent.pool import Pool

from scootpy.sched.saga.codec import JobBlobError, decode_job
from scootpy.sched.saga.log import CorruptedSagaLogError, SagaLog, SagaLogError
from scootpy.sched.saga.state import SagaState, rebuild_state

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 8
MAX_BACKOFF_S = 60.0
PARALLELISM = 8


class Recovery(NamedTuple):
    """``recovered``: (saga id, state) to resume, in log order; ``skipped``: (saga id, reason)."""

    recovered: List[Tuple[str, SagaState]]
    skipped: List[Tuple[str, str]]


def backoff_s(attempt: int) -> float:
    """Delay before retry number ``attempt`` (1-based): 0.5, 1.5, 3.5, ... capped at 60 s."""
    return min((2 ** min(attempt, 16) - 1) / 2, MAX_BACKOFF_S)


def recoverable_sagas(saga_log: SagaLog, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                      sleep: Callable[[float], None] = gevent.sleep) -> Recovery:
    """Rebuild every saga of ``saga_log`` and sort them into resumable and skipped ones."""
    ids = _retry(saga_log.get_active_sagas, "listing sagas", max_attempts, sleep)
    results: List[Optional[Tuple[SagaState, str]]] = [None] * len(ids)

    def examine(index: int) -> None:
        results[index] = _examine(saga_log, ids[index], max_attempts, sleep)
    Pool(PARALLELISM).map(examine, range(len(ids)))
    recovery = Recovery([], [])
    for saga_id, (state, reason) in zip(ids, results):
        if state is not None:
            recovery.recovered.append((saga_id, state))
        else:
            recovery.skipped.append((saga_id, reason))
    log.info("saga recovery: %d to resume, %d skipped", len(recovery.recovered), len(recovery.skipped))
    return recovery


def _examine(saga_log: SagaLog, saga_id: str, max_attempts: int,
             sleep: Callable[[float], None]) -> Tuple[Optional[SagaState], str]:
    has_ended = getattr(saga_log, "has_ended", None)  # a cheap check some logs offer
    if has_ended is not None and has_ended(saga_id):
        return None, "ended"
    try:
        messages = _retry(lambda: saga_log.get_messages(saga_id), f"reading saga {saga_id}", max_attempts, sleep)
        state = rebuild_state(saga_id, messages)
    except CorruptedSagaLogError as exc:
        return _skip(saga_id, f"corrupted: {exc}")
    except SagaLogError as exc:
        return _skip(saga_id, f"unreadable after {max_attempts} attempts: {exc}")
    except Exception as exc:  # an invalid history or anything unexpected: this saga only
        return _skip(saga_id, f"invalid: {exc}")
    if state is None:
        return None, "no messages"
    if state.completed:
        return None, "ended"
    try:
        decode_job(state.job or b"")
    except JobBlobError as exc:
        return _skip(saga_id, f"job blob does not decode: {exc}")
    return state, ""


def _skip(saga_id: str, reason: str) -> Tuple[None, str]:
    log.error("saga recovery: skipping saga %s: %s", saga_id, reason)
    return None, reason


def _retry(fn: Callable, what: str, max_attempts: int, sleep: Callable[[float], None]):
    """Call ``fn``, retrying plain SagaLogErrors (not corruption) with back-off, ``max_attempts`` calls at most."""
    attempt = 0
    while True:
        try:
            return fn()
        except CorruptedSagaLogError:
            raise
        except SagaLogError as exc:
            attempt += 1
            if attempt >= max_attempts:
                raise
            delay = backoff_s(attempt)
            log.warning("saga recovery: %s failed (%s); retrying in %.1fs", what, exc, delay)
            sleep(delay)

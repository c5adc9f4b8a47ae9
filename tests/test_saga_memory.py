"""MemorySagaLog specifics: unknown sagas, replacement on StartSaga, expiry GC and the size bound."""

import gevent
import pytest

from scootpy.sched.saga.log import MessageType as T, SagaLogError, SagaMessage
from scootpy.sched.saga.memory import MemorySagaLog


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_log_message_on_unknown_saga_fails_with_reference_text():
    log = MemorySagaLog()
    with pytest.raises(SagaLogError, match="^Saga: nope does not exist in the Log$"):
        log.log_message(SagaMessage("nope", T.START_TASK, "t"))


def test_log_messages_checks_every_saga_before_appending():
    log = MemorySagaLog()
    log.start_saga("a", b"")
    with pytest.raises(SagaLogError):
        log.log_messages([SagaMessage("a", T.START_TASK, "t"), SagaMessage("b", T.START_TASK, "t")])
    assert len(log.get_messages("a")) == 1


def test_start_saga_replaces_existing():
    log = MemorySagaLog()
    log.start_saga("a", b"one")
    log.log_message(SagaMessage("a", T.START_TASK, "t"))
    log.start_saga("a", b"two")
    assert [(m.type, m.data) for m in log.get_messages("a")] == [(T.START_SAGA, b"two")]


def test_gc_expires_whole_sagas_whatever_their_state():
    clock = Clock()
    log = MemorySagaLog(expiration_sec=10, gc_interval_sec=1, clock=clock, start_gc=False)
    log.start_saga("old", b"")
    clock.now += 5
    log.start_saga("young", b"")
    clock.now += 5
    assert log.step() == 1
    assert log.get_active_sagas() == ["young"] and log.get_messages("old") == []
    assert log.step(clock.now + 100) == 1 and log.get_active_sagas() == []


def test_gc_disabled_when_expiration_zero():
    log = MemorySagaLog(expiration_sec=0, gc_interval_sec=1)
    log.start_saga("a", b"")
    assert log.step(1e12) == 0 and log.get_active_sagas() == ["a"]


def test_gc_greenlet_runs_and_stops():
    log = MemorySagaLog(expiration_sec=0.01, gc_interval_sec=0.01)
    try:
        log.start_saga("a", b"")
        gevent.sleep(0.1)
        assert log.get_active_sagas() == []
    finally:
        log.close()


def test_bad_gc_config_is_a_clear_error():
    with pytest.raises(ValueError, match="GCIntervalSec"):
        MemorySagaLog(expiration_sec=5, gc_interval_sec=0)
    with pytest.raises(ValueError):
        MemorySagaLog(expiration_sec=-1)


def test_size_bound_drops_ended_sagas_first_then_oldest():
    log = MemorySagaLog(max_sagas=3)
    for sid in ("a", "b", "c"):
        log.start_saga(sid, b"")
    log.log_message(SagaMessage("b", T.END_SAGA))
    log.start_saga("d", b"")
    assert log.get_active_sagas() == ["a", "c", "d"]
    log.start_saga("e", b"")
    assert log.get_active_sagas() == ["c", "d", "e"]


def test_active_sagas_sorted_and_include_ended():
    log = MemorySagaLog()
    for sid in ("z", "m", "a"):
        log.start_saga(sid, b"")
    log.log_message(SagaMessage("m", T.END_SAGA))
    assert log.get_active_sagas() == ["a", "m", "z"]

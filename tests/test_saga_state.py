"""Saga transition rules (SagaState) and the write-through Saga object over the memory log."""

import random

import gevent
import pytest

from scootpy.sched.saga.log import (InvalidSagaMessageError, InvalidSagaStateError, MessageType as T, SagaLogError,
                                    SagaMessage)
from scootpy.sched.saga.memory import MemorySagaLog
from scootpy.sched.saga.saga import Saga
from scootpy.sched.saga.state import FIRST_MESSAGE_ERROR, SagaState, rebuild_state


def msg(kind, task="", data=None, saga="s1"):
    return SagaMessage(saga, kind, task, data)


def state_after(*messages):
    state = SagaState("s1", b"job")
    for m in messages:
        state.apply(m)
    return state


# --- SagaState rules -----------------------------------------------------------------------------------------

def test_empty_saga_id_rejected():
    with pytest.raises(InvalidSagaMessageError, match="sagaId cannot be the empty string"):
        SagaState("", b"")


def test_message_for_other_saga_rejected():
    with pytest.raises(InvalidSagaMessageError, match="do not match"):
        state_after(msg(T.START_TASK, "t", saga="other"))


def test_start_saga_on_existing_state_rejected():
    with pytest.raises(InvalidSagaStateError, match="Cannot apply a StartSaga Message to an already existing Saga"):
        state_after(msg(T.START_SAGA, data=b"x"))


@pytest.mark.parametrize("kind", [T.START_TASK, T.END_TASK, T.START_COMP_TASK, T.END_COMP_TASK])
def test_empty_task_id_rejected(kind):
    with pytest.raises(InvalidSagaMessageError, match="taskId cannot be the empty string"):
        state_after(msg(kind, ""))


def test_start_task_then_end_task():
    s = state_after(msg(T.START_TASK, "t", b"a"), msg(T.END_TASK, "t", b"b"))
    assert s.is_task_started("t") and s.is_task_completed("t")
    assert s.start_task_data("t") == b"a" and s.end_task_data("t") == b"b"
    assert s.task_ids() == ["t"] and s.completed_task_ids() == ["t"]


def test_repeated_start_task_last_data_wins_and_none_keeps_data():
    s = state_after(msg(T.START_TASK, "t"), msg(T.START_TASK, "t", b"running"), msg(T.START_TASK, "t", b"again"),
                    msg(T.START_TASK, "t"))
    assert s.start_task_data("t") == b"again"
    assert s.is_task_started("t") and not s.is_task_completed("t")


def test_none_data_never_stored_empty_bytes_are():
    s = state_after(msg(T.START_TASK, "t"))
    assert s.start_task_data("t") is None
    s = state_after(msg(T.START_TASK, "t", b""))
    assert s.start_task_data("t") == b""


def test_end_task_requires_start_task():
    with pytest.raises(InvalidSagaStateError, match="Cannot have a EndTask Message Before a StartTask Message, "
                                                    "taskId: t"):
        state_after(msg(T.END_TASK, "t", b"x"))


def test_repeated_end_task_allowed():
    s = state_after(msg(T.START_TASK, "t"), msg(T.END_TASK, "t", b"1"), msg(T.END_TASK, "t", b"2"))
    assert s.end_task_data("t") == b"2"


def test_start_task_after_completed_task_rejected():
    with pytest.raises(InvalidSagaStateError, match="Cannot StartTask after it has been completed: t"):
        state_after(msg(T.START_TASK, "t"), msg(T.END_TASK, "t"), msg(T.START_TASK, "t"))


def test_end_saga_requires_started_tasks_completed_but_not_unstarted_ones():
    with pytest.raises(InvalidSagaStateError, match="Task t has not completed"):
        state_after(msg(T.START_TASK, "t"), msg(T.END_SAGA))
    s = state_after(msg(T.START_TASK, "t"), msg(T.END_TASK, "t"), msg(T.END_SAGA))
    assert s.completed and not s.aborted


def test_no_task_writes_after_end_saga():
    done = (msg(T.START_TASK, "t"), msg(T.END_TASK, "t"), msg(T.END_SAGA))
    with pytest.raises(InvalidSagaStateError, match="Cannot StartTask after Saga has been completed: u"):
        state_after(*done, msg(T.START_TASK, "u"))
    with pytest.raises(InvalidSagaStateError, match="Cannot EndTask after Saga has been completed"):
        state_after(*done, msg(T.END_TASK, "t"))
    with pytest.raises(InvalidSagaStateError, match="AbortSaga Message cannot be applied to a Completed Saga"):
        state_after(*done, msg(T.ABORT_SAGA))


def test_aborted_saga_rules():
    aborted = (msg(T.START_TASK, "t"), msg(T.ABORT_SAGA))
    with pytest.raises(InvalidSagaStateError, match="Cannot StartTask after Saga has been aborted"):
        state_after(*aborted, msg(T.START_TASK, "u"))
    with pytest.raises(InvalidSagaStateError, match="Cannot EndTask after an Abort Saga Message"):
        state_after(*aborted, msg(T.END_TASK, "t"))
    with pytest.raises(InvalidSagaStateError, match="has not completed its compensating Tasks"):
        state_after(*aborted, msg(T.END_SAGA))
    s = state_after(*aborted, msg(T.START_COMP_TASK, "t", b"c"), msg(T.END_COMP_TASK, "t", b"d"), msg(T.END_SAGA))
    assert s.aborted and s.completed
    assert s.is_comp_task_started("t") and s.is_comp_task_completed("t")
    assert s.task("t").comp_start_data == b"c" and s.task("t").comp_end_data == b"d"


def test_comp_task_rules():
    with pytest.raises(InvalidSagaStateError, match="StartCompTask Message when Saga has not been Aborted"):
        state_after(msg(T.START_TASK, "t"), msg(T.START_COMP_TASK, "t"))
    with pytest.raises(InvalidSagaStateError, match="EndCompTask Message when Saga has not been Aborted"):
        state_after(msg(T.START_TASK, "t"), msg(T.END_COMP_TASK, "t"))
    with pytest.raises(InvalidSagaStateError, match="StartCompTask Message Before a StartTask Message"):
        state_after(msg(T.ABORT_SAGA), msg(T.START_COMP_TASK, "t"))
    with pytest.raises(InvalidSagaStateError, match="EndCompTask Message Before a StartCompTaks Message"):
        state_after(msg(T.START_TASK, "t"), msg(T.ABORT_SAGA), msg(T.END_COMP_TASK, "t"))
    with pytest.raises(InvalidSagaStateError, match="Cannot StartCompTask after it has been completed"):
        state_after(msg(T.START_TASK, "t"), msg(T.ABORT_SAGA), msg(T.START_COMP_TASK, "t"),
                    msg(T.END_COMP_TASK, "t"), msg(T.START_COMP_TASK, "t"))
    done = (msg(T.START_TASK, "t"), msg(T.ABORT_SAGA), msg(T.START_COMP_TASK, "t"), msg(T.END_COMP_TASK, "t"),
            msg(T.END_SAGA))
    with pytest.raises(InvalidSagaStateError, match="Cannot StartCompTask after Saga has been completed"):
        state_after(*done, msg(T.START_COMP_TASK, "t"))
    with pytest.raises(InvalidSagaStateError, match="Cannot EndCompTask after Saga has been completed"):
        state_after(*done, msg(T.END_COMP_TASK, "t"))


def test_undo_restores_exact_previous_state():
    s = state_after(msg(T.START_TASK, "t", b"a"))
    undo = s.apply(msg(T.END_TASK, "t", b"b"))
    undo()
    assert not s.is_task_completed("t") and s.end_task_data("t") is None and s.start_task_data("t") == b"a"
    undo = s.apply(msg(T.START_TASK, "new"))
    undo()
    assert s.task_ids() == ["t"]


def test_rebuild_state():
    assert rebuild_state("s1", []) is None
    with pytest.raises(InvalidSagaStateError, match=FIRST_MESSAGE_ERROR):
        rebuild_state("s1", [msg(T.START_TASK, "t")])
    s = rebuild_state("s1", [msg(T.START_SAGA, data=b"j1"), msg(T.START_TASK, "t"), msg(T.START_SAGA, data=b"j2"),
                             msg(T.END_TASK, "t", b"r")])
    assert s.job == b"j1" and s.is_task_completed("t") and s.end_task_data("t") == b"r"
    with pytest.raises(InvalidSagaStateError):
        rebuild_state("s1", [msg(T.START_SAGA, data=b"j"), msg(T.END_TASK, "t")])


# --- Saga write-through ------------------------------------------------------------------------------------

class FailingLog(MemorySagaLog):
    """A memory log whose appends fail while ``failing`` is set (to test rollback)."""

    failing = False

    def log_messages(self, messages):
        if self.failing:
            raise SagaLogError("disk on fire")
        super().log_messages(messages)


def test_saga_writes_reach_the_log_in_order():
    log = MemorySagaLog()
    saga = Saga.start(log, "s1", b"job")
    saga.start_task("t")
    saga.start_task("t", b"running")
    saga.end_task("t", b"done")
    saga.end_saga()
    kinds = [(m.type, m.task_id, m.data) for m in log.get_messages("s1")]
    assert kinds == [(T.START_SAGA, "", b"job"), (T.START_TASK, "t", None), (T.START_TASK, "t", b"running"),
                     (T.END_TASK, "t", b"done"), (T.END_SAGA, "", None)]
    assert saga.ended and saga.state.completed


def test_invalid_write_is_rejected_and_not_logged():
    log = MemorySagaLog()
    saga = Saga.start(log, "s1", b"job")
    with pytest.raises(InvalidSagaStateError):
        saga.end_task("t", b"x")
    with pytest.raises(InvalidSagaMessageError):
        saga.start_task("")
    assert len(log.get_messages("s1")) == 1


def test_writes_after_end_saga_rejected_not_crashing():
    log = MemorySagaLog()
    saga = Saga.start(log, "s1", b"job")
    saga.end_saga()
    for write in (lambda: saga.start_task("t"), lambda: saga.end_task("t"), saga.end_saga, saga.abort_saga):
        with pytest.raises(InvalidSagaStateError, match="has ended"):
            write()
    assert len(log.get_messages("s1")) == 2


def test_failed_append_rolls_back_and_retry_works():
    log = FailingLog()
    saga = Saga.start(log, "s1", b"job")
    saga.start_task("t", b"a")
    log.failing = True
    with pytest.raises(SagaLogError):
        saga.end_task("t", b"b")
    assert not saga.state.is_task_completed("t") and saga.state.end_task_data("t") is None
    log.failing = False
    saga.end_task("t", b"b")
    log.failing = True
    with pytest.raises(SagaLogError):
        saga.end_saga()
    assert not saga.ended
    log.failing = False
    saga.end_saga()
    assert saga.ended and len(log.get_messages("s1")) == 4


def test_failed_start_saga_raises():
    class NoStart(MemorySagaLog):
        def start_saga(self, saga_id, job):
            raise SagaLogError("no")
    with pytest.raises(SagaLogError):
        Saga.start(NoStart(), "s1", b"")
    with pytest.raises(InvalidSagaMessageError):
        Saga.start(MemorySagaLog(), "", b"")


class SlowLog(MemorySagaLog):
    """Appends yield to other greenlets first, like a log waiting for fsync."""

    def log_messages(self, messages):
        gevent.sleep(0.001)
        super().log_messages(messages)


def test_concurrent_task_writes_and_end_saga_waits_for_them():
    log = SlowLog()
    saga = Saga.start(log, "s1", b"job")
    ids = [f"t{i}" for i in range(20)]

    def run(task_id):
        saga.start_task(task_id)
        saga.start_task(task_id, b"running")
        saga.end_task(task_id, b"done")
    greenlets = [gevent.spawn(run, t) for t in ids]
    gevent.sleep(0)
    gevent.sleep(0.002)
    ender = gevent.spawn(saga.end_saga)
    gevent.joinall(greenlets + [ender], raise_error=True)
    messages = log.get_messages("s1")
    assert messages[-1].type == T.END_SAGA
    assert rebuild_state("s1", messages).completed_task_ids() == ids
    for t in ids:
        per_task = [m.type for m in messages if m.task_id == t]
        assert per_task == [T.START_TASK, T.START_TASK, T.END_TASK]


def test_resume_continues_a_rebuilt_saga():
    log = MemorySagaLog()
    first = Saga.start(log, "s1", b"job")
    first.start_task("a")
    saga = Saga.resume(log, rebuild_state("s1", log.get_messages("s1")))
    saga.end_task("a", b"r")
    saga.end_saga()
    assert rebuild_state("s1", log.get_messages("s1")).completed


# --- randomized properties ---------------------------------------------------------------------------------

def snapshot(state):
    return (state.aborted, state.completed, {t: state.task(t) for t in state.task_ids()})


def random_message(rng):
    kind = rng.choice(list(T))
    task = rng.choice(["a", "b", "c"]) if kind not in (T.START_SAGA, T.END_SAGA, T.ABORT_SAGA) else ""
    data = rng.choice([None, b"", b"x", b"y"]) if task else None
    return msg(kind, task, data)


@pytest.mark.parametrize("seed", range(200))
def test_random_histories_rebuild_to_the_live_state_and_rejections_change_nothing(seed):
    rng = random.Random(seed)
    log = MemorySagaLog()
    saga = Saga.start(log, "s1", b"job")
    for _ in range(30):
        m = random_message(rng)
        before = snapshot(saga.state)
        writes = {T.START_TASK: lambda: saga.start_task(m.task_id, m.data),
                  T.END_TASK: lambda: saga.end_task(m.task_id, m.data), T.END_SAGA: saga.end_saga,
                  T.ABORT_SAGA: saga.abort_saga}
        try:
            if m.type in writes:
                writes[m.type]()
            else:
                saga.state.apply(m)
                log.log_message(m)
        except (InvalidSagaStateError, InvalidSagaMessageError):
            assert snapshot(saga.state) == before
    assert snapshot(rebuild_state("s1", log.get_messages("s1"))) == snapshot(saga.state)

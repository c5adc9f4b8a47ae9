"""The SagaLog contract, once for both implementations (memory and file)."""

import pytest

from scootpy.sched.saga.file import FileSagaLog
from scootpy.sched.saga.log import MessageType as T, SagaLogError, SagaMessage
from scootpy.sched.saga.memory import MemorySagaLog
from scootpy.sched.saga.saga import Saga
from scootpy.sched.saga.state import rebuild_state
from scootpy.sched.saga.throughput import saga_log_throughput


@pytest.fixture(params=["memory", "file"])
def log(request, tmp_path):
    if request.param == "memory":
        return MemorySagaLog()
    return FileSagaLog(str(tmp_path / "sagas"))


def test_unknown_saga_has_no_messages(log):
    assert log.get_messages("nope") == []
    assert log.get_active_sagas() == []


def test_append_to_unknown_saga_fails(log):
    with pytest.raises(SagaLogError):
        log.log_message(SagaMessage("nope", T.START_TASK, "t"))


def test_messages_come_back_in_order(log):
    log.start_saga("j", b"blob")
    sent = [SagaMessage("j", T.START_TASK, "a", b"1"), SagaMessage("j", T.START_TASK, "b", b"2"),
            SagaMessage("j", T.END_TASK, "b", b"3"), SagaMessage("j", T.END_TASK, "a", b"4"),
            SagaMessage("j", T.END_SAGA)]
    for m in sent[:2]:
        log.log_message(m)
    log.log_messages(sent[2:])
    got = log.get_messages("j")
    assert got[0] == SagaMessage("j", T.START_SAGA, "", b"blob")
    assert got[1:] == sent


def test_empty_batch_is_a_no_op(log):
    log.log_messages([])
    assert log.get_active_sagas() == []


def test_log_messages_across_sagas(log):
    log.start_saga("x", b"")
    log.start_saga("y", b"")
    log.log_messages([SagaMessage("x", T.START_TASK, "t", b"x1"), SagaMessage("y", T.START_TASK, "t", b"y1"),
                      SagaMessage("x", T.END_TASK, "t", b"x2")])
    assert [m.data for m in log.get_messages("x")] == [b"", b"x1", b"x2"]
    assert [m.data for m in log.get_messages("y")] == [b"", b"y1"]


def test_active_sagas_sorted_including_ended(log):
    for sid in ("c", "a", "b"):
        Saga.start(log, sid, b"").end_saga()
    assert log.get_active_sagas() == ["a", "b", "c"]


def test_saga_round_trip_through_rebuild(log):
    saga = Saga.start(log, "j", b"job")
    saga.start_task("t1")
    saga.start_task("t1", b"running")
    saga.start_task("t2")
    saga.end_task("t1", b"done")
    state = rebuild_state("j", log.get_messages("j"))
    assert state.job == b"job" and state.completed_task_ids() == ["t1"]
    assert state.is_task_started("t2") and state.end_task_data("t1") == b"done"
    assert state.start_task_data("t1") == b"running"


def test_throughput_figure_writes_every_record(log):
    figures = saga_log_throughput(log, jobs=2, tasks=5, writers=2)
    assert figures["records"] == 2 * (2 + 3 * 5) and figures["records_per_s"] > 0
    for i in range(2):
        state = rebuild_state(f"bench-{i}", log.get_messages(f"bench-{i}"))
        assert state.completed and len(state.completed_task_ids()) == 5

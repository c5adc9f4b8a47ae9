"""Recovery selection: which sagas a restarted scheduler resumes, on the fixture log and damaged copies."""


import pytest

from scootpy.sched.saga.file import FileSagaLog
from scootpy.sched.saga.log import MessageType as T, SagaLogError, SagaMessage
from scootpy.sched.saga.memory import MemorySagaLog
from scootpy.sched.saga.recovery import backoff_s, recoverable_sagas
from scootpy.sched.saga.saga import Saga
from tests.procs import FIXTURES, copy_writable

FIXTURE_DIR = FIXTURES / "saga-log"
LOG_DIR = ".scootdata/filesagalog"
A, B, C = ("b8c9aef3-997a-40bb-4c4e-5e677593d545", "5f1d2e9e-3ad6-4a42-58a3-cf55ca67bdcf",
           "52c2a24f-015c-4c2d-4ffc-b49b717eef88")


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def test_backoff_matches_reference():
    assert [backoff_s(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 3.5, 7.5]
    assert backoff_s(7) == 60 and backoff_s(10_000) == 60


def test_fixture_log_recovers_only_the_unfinished_job():
    recovered, skipped = recoverable_sagas(FileSagaLog(LOG_DIR, cwd=str(FIXTURE_DIR)))
    assert [sid for sid, _ in recovered] == [C]
    state = recovered[0][1]
    assert state.completed_task_ids() == ["t00"]
    assert state.is_task_started("t01") and not state.is_task_completed("t01")
    assert sorted(skipped) == sorted([(A, "ended"), (B, "ended")])


@pytest.fixture
def damaged(tmp_path):
    """A copy of the fixture log plus one saga for every kind of damage."""
    copy_writable(FIXTURE_DIR / ".scootdata", tmp_path / ".scootdata")
    root = tmp_path / LOG_DIR
    log = FileSagaLog(LOG_DIR, cwd=str(tmp_path))
    (root / "no-log").mkdir()
    (root / "stray-file").write_text("")
    log.start_saga("bad-blob", b"\x00\x01garbage")
    log.log_message(SagaMessage("bad-blob", T.START_TASK, "t"))
    (root / "first-not-start").mkdir()
    (root / "first-not-start" / "log").write_text("Abort Saga\n")
    (root / "truncated").mkdir()
    (root / "truncated" / "log").write_text(f"Start Saga\n{LOG_DIR}/truncated/missing\n")
    job_blob = next((root / C).glob("StartSagaData_*")).read_bytes()
    log.start_saga("bad-transition", job_blob)
    with open(root / "bad-transition" / "log", "a") as f:
        f.write(f"End Task\nt00\n{LOG_DIR}/bad-transition/{next((root / 'bad-transition').glob('Start*')).name}\n")
    return log


def test_damaged_sagas_are_skipped_and_reported_never_raised(damaged):
    recovered, skipped = recoverable_sagas(damaged)
    assert [sid for sid, _ in recovered] == [C]
    reasons = dict(skipped)
    assert reasons[A] == reasons[B] == "ended"
    assert reasons["no-log"] == reasons["stray-file"] == "no messages"
    assert reasons["bad-blob"].startswith("job blob does not decode")
    assert reasons["first-not-start"] == "invalid: InvalidMessages: first message must be StartSaga"
    assert reasons["truncated"].startswith("corrupted: SagaLog for truncated has been corrupted, Error: "
                                           "Error Reading DataFile")
    assert reasons["bad-transition"].startswith("invalid: Cannot have a EndTask Message Before a StartTask")
    assert len(skipped) == 8


def test_all_complete_but_no_end_saga_is_recovered(tmp_path):
    log = FileSagaLog(str(tmp_path / "s"))
    saga = Saga.start(log, "j", next((FIXTURE_DIR / LOG_DIR / C).glob("StartSagaData_*")).read_bytes())
    saga.start_task("t00")
    saga.end_task("t00", b"")
    recovered, skipped = recoverable_sagas(log)
    assert [sid for sid, _ in recovered] == ["j"] and skipped == []


def test_empty_logs_recover_nothing(tmp_path):
    for log in (MemorySagaLog(), FileSagaLog(str(tmp_path / "empty"))):
        assert recoverable_sagas(log) == ([], [])


class FlakyLog(MemorySagaLog):
    """A memory log whose listing and reads fail a given number of times first."""

    def __init__(self, list_failures=0, read_failures=0):
        super().__init__()
        self.list_failures, self.read_failures = list_failures, read_failures

    def get_active_sagas(self):
        if self.list_failures:
            self.list_failures -= 1
            raise SagaLogError("log unavailable")
        return super().get_active_sagas()

    def get_messages(self, saga_id):
        if self.read_failures:
            self.read_failures -= 1
            raise SagaLogError("read failed")
        return super().get_messages(saga_id)


def job_blob():
    return next((FIXTURE_DIR / LOG_DIR / C).glob("StartSagaData_*")).read_bytes()


def test_listing_retried_with_backoff_then_succeeds():
    log = FlakyLog(list_failures=3)
    log.start_saga("j", job_blob())
    sleeps = Sleeps()
    recovered, _ = recoverable_sagas(log, sleep=sleeps)
    assert sleeps == [0.5, 1.5, 3.5] and [sid for sid, _ in recovered] == ["j"]


def test_listing_retries_are_bounded():
    sleeps = Sleeps()
    with pytest.raises(SagaLogError):
        recoverable_sagas(FlakyLog(list_failures=100), max_attempts=4, sleep=sleeps)
    assert sleeps == [0.5, 1.5, 3.5]


def test_read_errors_retried_then_skipped_when_persistent():
    log = FlakyLog(read_failures=2)
    log.start_saga("j", job_blob())
    sleeps = Sleeps()
    recovered, _ = recoverable_sagas(log, sleep=sleeps)
    assert [sid for sid, _ in recovered] == ["j"] and sleeps == [0.5, 1.5]
    log = FlakyLog(read_failures=100)
    log.start_saga("j", job_blob())
    recovered, skipped = recoverable_sagas(log, max_attempts=3, sleep=Sleeps())
    assert recovered == [] and skipped[0][0] == "j" and "unreadable after 3 attempts" in skipped[0][1]


def test_recovered_saga_can_be_resumed_and_finished(tmp_path):
    copy_writable(FIXTURE_DIR / ".scootdata", tmp_path / ".scootdata")
    log = FileSagaLog(LOG_DIR, cwd=str(tmp_path))
    (saga_id, state), = recoverable_sagas(log).recovered
    saga = Saga.resume(log, state)
    for i in range(1, 10):
        saga.start_task(f"t0{i}")
        saga.end_task(f"t0{i}", b"")
    saga.end_saga()
    recovered, skipped = recoverable_sagas(log)
    assert recovered == [] and (saga_id, "ended") in skipped


def test_ended_sagas_are_skipped_without_reading_their_data(tmp_path, monkeypatch):
    copy_writable(FIXTURE_DIR / ".scootdata", tmp_path / ".scootdata")
    log = FileSagaLog(LOG_DIR, cwd=str(tmp_path))
    read = []
    real = log.get_messages
    monkeypatch.setattr(log, "get_messages", lambda saga_id: read.append(saga_id) or real(saga_id))
    recovered, skipped = recoverable_sagas(log)
    assert read == [C] and [sid for sid, _ in recovered] == [C]
    assert sorted(skipped) == sorted([(A, "ended"), (B, "ended")])

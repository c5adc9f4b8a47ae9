"""FileSagaLog: the reference layout byte for byte, corruption isolation, durability and group commit."""

import os
import re
import shutil
import time

import gevent
import pytest

from scootpy.sched.saga import file as file_mod
from scootpy.sched.saga import layout
from scootpy.sched.saga.file import FileSagaLog
from scootpy.sched.saga.log import (CorruptedSagaLogError, InvalidSagaMessageError, MessageType as T, SagaLogError,
                                    SagaMessage)
from scootpy.sched.saga.saga import Saga
from scootpy.sched.saga.state import rebuild_state
from tests.procs import FIXTURES

FIXTURE_DIR = FIXTURES / "saga-log"
LOG_DIR = ".scootdata/filesagalog"
JOB_C = "52c2a24f-015c-4c2d-4ffc-b49b717eef88"
STAMP_NANO = r"[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d\.\d{9}"
STAMP_MILLI = r"[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d\.\d{3}"


def fixture_records(job_id):
    """(type, task id, data bytes) of a fixture saga, in log order, read independently of our parser."""
    lines = (FIXTURE_DIR / LOG_DIR / job_id / "log").read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        kind = T(lines[i])
        if kind == T.START_SAGA:
            out.append((kind, "", (FIXTURE_DIR / lines[i + 1]).read_bytes()))
            i += 2
        elif kind == T.END_SAGA:
            out.append((kind, "", None))
            i += 1
        else:
            out.append((kind, lines[i + 1], (FIXTURE_DIR / lines[i + 2]).read_bytes()))
            i += 3
    return out


def normalized(text, job_id):
    text = re.sub(STAMP_NANO, "<NANO>", text)
    return re.sub(STAMP_MILLI, "<MILLI>", text).replace(job_id, "<JOB>")


@pytest.fixture
def log(tmp_path):
    return FileSagaLog(LOG_DIR, cwd=str(tmp_path))


# --- layout ------------------------------------------------------------------------------------------------

def test_stamp_formats_like_go(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        ns = 1796401791566666375  # 2026-12-04 16:29:51.566666375 UTC
        assert layout.stamp(ns, 9) == "Dec  4 16:29:51.566666375"
        assert layout.stamp(ns, 3) == "Dec  4 16:29:51.566"
        assert layout.stamp(ns + 10 * 86400 * 10 ** 9, 3) == "Dec 14 16:29:51.566"
        assert layout.task_data_name(T.START_TASK, "t1", ns) == "Start Task_t1_data_Dec  4 16:29:51.566"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_go_path_join_and_clean():
    assert layout.go_join(".scootdata/filesagalog", "j", "log") == ".scootdata/filesagalog/j/log"
    assert layout.go_join("./a//b/", "j") == "a/b/j"
    assert layout.go_join("/tmp/../x", "j") == "/x/j"
    assert layout.go_join("../a", "j") == "../a/j"
    assert layout.go_clean("//a") == "/a" and layout.go_clean("") == "."


@pytest.mark.parametrize("job_id", ["52c2a24f-015c-4c2d-4ffc-b49b717eef88", "5f1d2e9e-3ad6-4a42-58a3-cf55ca67bdcf",
                                    "b8c9aef3-997a-40bb-4c4e-5e677593d545"])
def test_rewriting_a_fixture_saga_gives_the_same_files(tmp_path, log, job_id):
    records = fixture_records(job_id)
    for kind, task_id, data in records:
        if kind == T.START_SAGA:
            log.start_saga(job_id, data)
        else:
            log.log_message(SagaMessage(job_id, kind, task_id, data or None))
    ours = (tmp_path / LOG_DIR / job_id / "log").read_text()
    theirs = (FIXTURE_DIR / LOG_DIR / job_id / "log").read_text()
    assert normalized(ours, job_id) == normalized(theirs, job_id)
    written = [line for line in ours.splitlines() if line.startswith(LOG_DIR)]
    expected = [d for _, _, d in records if d is not None]
    assert [(tmp_path / p).read_bytes() for p in written] == expected
    assert sorted(os.listdir(tmp_path / LOG_DIR / job_id)) == sorted(
        ["log"] + [os.path.basename(p) for p in written])
    assert [(m.type, m.task_id, m.data) for m in log.get_messages(job_id)] == [
        (k, t, d) for k, t, d in records]


def test_absolute_directory_gives_absolute_data_paths(tmp_path):
    log = FileSagaLog(str(tmp_path / "abs"))
    log.start_saga("j", b"x")
    line = (tmp_path / "abs" / "j" / "log").read_text().splitlines()[1]
    assert re.fullmatch(re.escape(str(tmp_path / "abs" / "j")) + "/StartSagaData_" + STAMP_NANO, line)


def test_modes_follow_the_reference(tmp_path, log):
    old = os.umask(0o022)
    try:
        log.start_saga("j", b"x")
        log.log_message(SagaMessage("j", T.START_TASK, "t"))
    finally:
        os.umask(old)
    saga_dir = tmp_path / LOG_DIR / "j"
    assert oct(saga_dir.stat().st_mode & 0o777) == "0o755"
    assert oct((saga_dir / "log").stat().st_mode & 0o777) == "0o644"
    for p in saga_dir.iterdir():
        if p.name != "log":
            assert oct(p.stat().st_mode & 0o777) == "0o755"


# --- behaviour -----------------------------------------------------------------------------------------------

def test_round_trip_and_nil_data_reads_back_as_empty_bytes(log):
    log.start_saga("j", b"\x00blob\n")
    log.log_messages([SagaMessage("j", T.START_TASK, "t"), SagaMessage("j", T.START_TASK, "t", b"r"),
                      SagaMessage("j", T.END_TASK, "t", b"{}"), SagaMessage("j", T.END_SAGA)])
    assert [(m.type, m.task_id, m.data) for m in log.get_messages("j")] == [
        (T.START_SAGA, "", b"\x00blob\n"), (T.START_TASK, "t", b""), (T.START_TASK, "t", b"r"),
        (T.END_TASK, "t", b"{}"), (T.END_SAGA, "", None)]


def test_double_start_saga_gives_two_messages(log):
    log.start_saga("j", b"one")
    log.start_saga("j", b"two")
    assert [(m.type, m.data) for m in log.get_messages("j")] == [(T.START_SAGA, b"one"), (T.START_SAGA, b"two")]


def test_missing_saga_and_hostile_ids_read_as_no_messages(log, tmp_path):
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "log").write_text("Start Saga\n/etc/passwd\n")
    for saga_id in ("nope", "", "..", ".", "../../secret", "a/b", "x\ny", "\x00"):
        assert log.get_messages(saga_id) == []


def test_log_message_on_unknown_saga_is_the_os_error(log):
    with pytest.raises(SagaLogError, match=f"^open {LOG_DIR}/nope/log: no such file or directory$"):
        log.log_message(SagaMessage("nope", T.START_TASK, "t"))


@pytest.mark.parametrize("task_id", ["a/b", "x\ny", "c\rd", "nul\x00", "t" * 300])
def test_unstorable_task_ids_are_refused_before_writing(tmp_path, log, task_id):
    log.start_saga("j", b"")
    with pytest.raises(InvalidSagaMessageError, match="cannot be stored in the file saga log"):
        log.log_message(SagaMessage("j", T.START_TASK, task_id))
    assert len(os.listdir(tmp_path / LOG_DIR / "j")) == 2
    assert len(log.get_messages("j")) == 1


def test_saga_with_slash_task_id_is_an_error_not_a_crash(log):
    saga = Saga.start(log, "j", b"")
    with pytest.raises(InvalidSagaMessageError):
        saga.start_task("dir/task")
    assert saga.state.task_ids() == []


@pytest.mark.parametrize("saga_id", ["a/b", "..", "x\ny", ""])
def test_unstorable_saga_ids_are_refused(log, saga_id):
    with pytest.raises(InvalidSagaMessageError):
        log.start_saga(saga_id, b"")


def test_invalid_directory_is_refused(tmp_path):
    with pytest.raises(ValueError):
        FileSagaLog("")
    with pytest.raises(ValueError):
        FileSagaLog("a\nb")
    (tmp_path / "file").write_text("")
    with pytest.raises(SagaLogError, match="mkdir"):
        FileSagaLog(str(tmp_path / "file" / "sub"))


def test_active_sagas_lists_every_entry_sorted(tmp_path, log):
    for sid in ("b", "a", "c"):
        log.start_saga(sid, b"")
    log.log_message(SagaMessage("a", T.END_SAGA))
    (tmp_path / LOG_DIR / "zz-stray-file").write_text("")
    assert log.get_active_sagas() == ["a", "b", "c", "zz-stray-file"]
    assert log.get_messages("zz-stray-file") == []
    shutil.rmtree(tmp_path / LOG_DIR)
    with pytest.raises(SagaLogError, match=f"^open {LOG_DIR}: no such file or directory$"):
        log.get_active_sagas()


def test_same_millisecond_records_get_distinct_files(tmp_path, log):
    log.start_saga("j", b"")
    for i in range(5):
        log.log_message(SagaMessage("j", T.START_TASK, "t", str(i).encode()))
    msgs = log.get_messages("j")
    assert [m.data for m in msgs[1:]] == [b"0", b"1", b"2", b"3", b"4"]
    assert len(os.listdir(tmp_path / LOG_DIR / "j")) == 7


# --- corruption ----------------------------------------------------------------------------------------------

def write_raw(tmp_path, saga_id, text, files=()):
    d = tmp_path / LOG_DIR / saga_id
    d.mkdir(parents=True, exist_ok=True)
    for name in files:
        (d / name).write_bytes(b"")
    (d / "log").write_bytes(text.encode() if isinstance(text, str) else text)
    return f"{LOG_DIR}/{saga_id}"


CORRUPTIONS = [
    ("Start Saga\n", "Error Parsing SagaLog expected Data after StartSaga message.  Error: Unexpected EOF"),
    ("Start Saga\n{d}/blob\nStart Task\n", "Error Parsing SagaLog expected TaskId, Error: Unexpected EOF"),
    ("Start Saga\n{d}/blob\nEnd Task\nt1\n", "Error Parsing SagaLog expected Data, Error: Unexpected EOF"),
    ("Start Saga\n{d}/blob\nStart Tsk\nt1\n", "Error Parsing SagaLog unrecognized message type, Start Tsk"),
    ("Start Saga\n{d}/blob\n\n", "Error Parsing SagaLog unrecognized message type, "),
    ("Start Saga\n{d}/gone\n",
     "Error Reading DataFile {d}/gone, Error: open {d}/gone: no such file or directory"),
    ("Start Saga\n{d}\n", "Error Reading DataFile {d}, Error: read {d}: is a directory"),
    ("Start Saga\n{d}/blob\nStart Task\n" + "x" * 70000 + "\n",
     "Error Parsing SagaLog expected TaskId, Error: bufio.Scanner: token too long"),
]


@pytest.mark.parametrize("text,detail", CORRUPTIONS)
def test_corruption_gives_reference_error_for_that_saga_only(tmp_path, log, text, detail):
    log.start_saga("healthy", b"ok")
    d = write_raw(tmp_path, "bad", text.format(d=f"{LOG_DIR}/bad"), files=["blob"])
    with pytest.raises(CorruptedSagaLogError) as info:
        log.get_messages("bad")
    assert str(info.value) == f"SagaLog for bad has been corrupted, Error: {detail.format(d=d)}"
    assert info.value.saga_id == "bad"
    assert [m.data for m in log.get_messages("healthy")] == [b"ok"]


def test_crlf_lines_and_missing_final_newline_are_read_like_go(tmp_path, log):
    d = write_raw(tmp_path, "j", "", files=["blob"])
    (tmp_path / d / "log").write_bytes(f"Start Saga\r\n{d}/blob\r\nEnd Saga".encode())
    assert [m.type for m in log.get_messages("j")] == [T.START_SAGA, T.END_SAGA]


def test_oversized_data_file_is_corruption_not_memory_exhaustion(tmp_path, log, monkeypatch):
    monkeypatch.setattr(file_mod, "MAX_DATA_BYTES", 10)
    d = write_raw(tmp_path, "j", "", files=[])
    (tmp_path / d / "big").write_bytes(b"x" * 11)
    (tmp_path / d / "log").write_text(f"Start Saga\n{d}/big\n")
    with pytest.raises(CorruptedSagaLogError, match="larger than 10 bytes"):
        log.get_messages("j")


# --- durability, failures, group commit ---------------------------------------------------------------------

class FsyncCounter:
    def __init__(self, monkeypatch, fail=False):
        self.calls = 0
        self.fail = fail
        real = os.fsync

        def fsync(fd):
            self.calls += 1
            if self.fail:
                raise OSError(5, "Input/output error")
            real(fd)
        monkeypatch.setattr(os, "fsync", fsync)


def test_start_saga_fsyncs_data_file_directories_and_log(tmp_path, monkeypatch, log):
    counter = FsyncCounter(monkeypatch)
    log.start_saga("j", b"x")
    # data file, saga dir (new log + data file), log root (new saga dir), log itself
    assert counter.calls == 4


def test_log_messages_share_one_fsync_per_file(monkeypatch, log):
    log.start_saga("j", b"x")
    counter = FsyncCounter(monkeypatch)
    log.log_messages([SagaMessage("j", T.START_TASK, f"t{i}") for i in range(10)] + [SagaMessage("j", T.END_SAGA)])
    assert counter.calls == 1 + 1  # the saga directory, the log once: empty data files have nothing to sync
    assert len(log.get_messages("j")) == 12


def test_only_data_files_with_data_are_fsynced(monkeypatch, log):
    log.start_saga("j", b"x")
    counter = FsyncCounter(monkeypatch)
    log.log_messages([SagaMessage("j", T.START_TASK, f"t{i}", b"" if i % 2 else b"payload") for i in range(10)])
    assert counter.calls == 5 + 1 + 1  # five data files with data, the saga directory, the log
    assert [m.data for m in log.get_messages("j")[1:]] == [b"" if i % 2 else b"payload" for i in range(10)]


def test_concurrent_greenlets_share_commits(monkeypatch, log):
    sagas = [f"s{i}" for i in range(5)]
    for sid in sagas:
        log.start_saga(sid, b"")
    counter = FsyncCounter(monkeypatch)
    commits_before = log.stats["commits"]

    def writer(sid, task):
        log.log_message(SagaMessage(sid, T.START_TASK, task, b"d"))
        log.log_message(SagaMessage(sid, T.END_TASK, task, b"e"))
    jobs = [gevent.spawn(writer, sid, f"t{i}") for sid in sagas for i in range(10)]
    gevent.joinall(jobs, raise_error=True)
    records = 2 * len(jobs)
    commits = log.stats["commits"] - commits_before
    assert commits < records / 2
    assert counter.calls < records + records / 2  # naive would be 3 per record (data, dir, log)
    for sid in sagas:
        state = rebuild_state(sid, log.get_messages(sid))
        assert sorted(state.completed_task_ids()) == sorted(f"t{i}" for i in range(10))


def test_concurrent_sagas_through_saga_objects(log):
    def job(sid):
        saga = Saga.start(log, sid, sid.encode())
        runners = [gevent.spawn(task, saga, f"t{i}") for i in range(8)]
        gevent.joinall(runners, raise_error=True)
        saga.end_saga()

    def task(saga, task_id):
        saga.start_task(task_id)
        saga.start_task(task_id, b"running")
        saga.end_task(task_id, b"done")
    gevent.joinall([gevent.spawn(job, f"job{i}") for i in range(6)], raise_error=True)
    for i in range(6):
        state = rebuild_state(f"job{i}", log.get_messages(f"job{i}"))
        assert state.completed and state.job == f"job{i}".encode() and len(state.completed_task_ids()) == 8


def test_failed_fsync_fails_the_write_and_saga_rolls_back(monkeypatch, log):
    saga = Saga.start(log, "j", b"x")
    saga.start_task("t")
    counter = FsyncCounter(monkeypatch, fail=True)
    with pytest.raises(SagaLogError, match="sync .*input/output error"):
        saga.end_task("t", b"r")
    assert counter.calls >= 1
    assert not saga.state.is_task_completed("t")
    counter.fail = False
    saga.end_task("t", b"r")
    saga.end_saga()
    assert rebuild_state("j", log.get_messages("j")).completed


def test_failed_log_append_is_truncated_away(tmp_path, monkeypatch, log):
    log.start_saga("j", b"x")
    log_file = tmp_path / LOG_DIR / "j" / "log"
    before = log_file.read_bytes()
    real_write_all = file_mod._write_all

    def half_then_fail(fd, data):
        if b"End Task" in data:
            os.write(fd, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        real_write_all(fd, data)
    monkeypatch.setattr(file_mod, "_write_all", half_then_fail)
    with pytest.raises(SagaLogError, match="no space left on device"):
        log.log_messages([SagaMessage("j", T.START_TASK, "t"), SagaMessage("j", T.END_TASK, "t")])
    assert log_file.read_bytes() == before
    assert len(log.get_messages("j")) == 1
    monkeypatch.setattr(file_mod, "_write_all", real_write_all)
    log.log_messages([SagaMessage("j", T.START_TASK, "t"), SagaMessage("j", T.END_TASK, "t")])
    assert len(log.get_messages("j")) == 3


def test_one_saga_failing_does_not_fail_others_in_the_batch(monkeypatch, log):
    log.start_saga("good", b"")
    log.start_saga("bad", b"")
    real_write_all = file_mod._write_all

    def fail_bad(fd, data):
        if b"bad-task" in data:
            raise OSError(5, "Input/output error")
        real_write_all(fd, data)
    monkeypatch.setattr(file_mod, "_write_all", fail_bad)
    with pytest.raises(SagaLogError):
        log.log_messages([SagaMessage("good", T.START_TASK, "good-task"), SagaMessage("bad", T.START_TASK, "bad-task")])
    assert [m.task_id for m in log.get_messages("good")] == ["", "good-task"]
    assert len(log.get_messages("bad")) == 1


def slow_fsyncs(monkeypatch):
    """Make every commit's fsyncs take 50 ms; returns (event set once a commit is fsyncing, undo)."""
    started = gevent.event.Event()
    real = file_mod._fsync_targets

    def slow(targets):
        started.set()
        time.sleep(0.05)
        return real(targets)
    monkeypatch.setattr(file_mod, "_fsync_targets", slow)
    return started, lambda: monkeypatch.setattr(file_mod, "_fsync_targets", real)


def test_killed_writer_leaves_no_stuck_commit(monkeypatch, log):
    log.start_saga("j", b"")
    started, restore = slow_fsyncs(monkeypatch)
    g = gevent.spawn(log.log_message, SagaMessage("j", T.START_TASK, "a"))
    started.wait(5)
    g.kill()
    restore()
    log.log_message(SagaMessage("j", T.START_TASK, "b"))
    assert [m.task_id for m in log.get_messages("j")][-1] == "b"


# --- incremental re-reading ------------------------------------------------------------------------------------

def count_data_reads(monkeypatch, log):
    reads = []
    real = log._read_data

    def counted(path):
        reads.append(path)
        return real(path)
    monkeypatch.setattr(log, "_read_data", counted)
    return reads


def test_rereading_parses_only_appended_records(monkeypatch, log):
    log.start_saga("j", b"x")
    log.log_messages([SagaMessage("j", T.START_TASK, f"t{i}", b"d") for i in range(5)])
    reads = count_data_reads(monkeypatch, log)
    first = log.get_messages("j")
    assert len(reads) == 6
    first.clear()  # callers own the list they get
    log.log_message(SagaMessage("j", T.END_TASK, "t0", b"e"))
    again = log.get_messages("j")
    assert len(reads) == 7 and len(again) == 7 and again[-1].data == b"e"
    assert again == FileSagaLog(log.directory, cwd=log._cwd).get_messages("j")


def test_replaced_or_truncated_log_is_parsed_afresh(tmp_path, log):
    log.start_saga("j", b"x")
    log.log_message(SagaMessage("j", T.START_TASK, "t"))
    assert len(log.get_messages("j")) == 2
    log_file = tmp_path / LOG_DIR / "j" / "log"
    lines = log_file.read_text().splitlines(keepends=True)
    replacement = tmp_path / "new-log"
    replacement.write_text("".join(lines[:2]) + "End Saga\n")
    os.replace(replacement, log_file)
    assert [m.type for m in log.get_messages("j")] == [T.START_SAGA, T.END_SAGA]
    with open(log_file, "r+") as f:
        f.truncate(len(lines[0]) + len(lines[1]))
    assert [m.type for m in log.get_messages("j")] == [T.START_SAGA]
    log_file.unlink()
    assert log.get_messages("j") == []


def test_partial_last_line_is_never_cached(tmp_path, log):
    d = write_raw(tmp_path, "j", "", files=["blob"])
    log_file = tmp_path / d / "log"
    log_file.write_text(f"Start Saga\n{d}/blob\nEnd Saga")
    assert [m.type for m in log.get_messages("j")] == [T.START_SAGA, T.END_SAGA]
    with open(log_file, "a") as f:
        f.write("\n")
    assert [m.type for m in log.get_messages("j")] == [T.START_SAGA, T.END_SAGA]


def test_parsed_log_cache_is_bounded():
    from scootpy.sched.saga.readcache import ParsedLogCache
    cache = ParsedLogCache(max_bytes=1000)
    msgs = [SagaMessage("s", T.START_TASK, "t", b"x" * 100)]
    for i in range(10):
        cache.store(f"s{i}", (1, i), 10, msgs)
    assert cache.lookup("s0", (1, 0), 10) == (0, [])
    assert cache.lookup("s9", (1, 9), 10) == (10, msgs)
    assert cache.lookup("s9", (1, 99), 10) == (0, [])
    assert cache.lookup("s9", (1, 9), 5) == (0, [])
    cache.store("huge", (1, 1), 10, [SagaMessage("s", T.START_TASK, "t", b"x" * 5000)])
    assert cache.lookup("huge", (1, 1), 10) == (0, [])


def test_creating_the_log_directory_makes_it_durable(tmp_path, monkeypatch):
    counter = FsyncCounter(monkeypatch)
    FileSagaLog(str(tmp_path / "a" / "b" / "sagas"))
    assert counter.calls == 3  # the parents of sagas, b and a
    FileSagaLog(str(tmp_path / "a" / "b" / "sagas"))
    assert counter.calls == 3


def test_killed_committer_fails_its_batch_and_later_writes_still_commit(monkeypatch, log):
    log.start_saga("j", b"")
    started, restore = slow_fsyncs(monkeypatch)
    first = gevent.spawn(log.log_message, SagaMessage("j", T.START_TASK, "a"))
    started.wait(5)
    second = gevent.spawn(log.log_message, SagaMessage("j", T.START_TASK, "b"))
    gevent.sleep(0)
    log._committer.kill()
    restore()
    first.join(5)
    second.join(5)
    assert isinstance(first.exception, SagaLogError) and second.successful()
    assert [m.task_id for m in log.get_messages("j")][-1] == "b"


def test_has_ended_reads_the_tail_only(tmp_path, monkeypatch, log):
    saga = Saga.start(log, "j", b"x")
    assert not log.has_ended("j")
    saga.start_task("t")
    saga.end_task("t", b"r")
    assert not log.has_ended("j")
    saga.end_saga()
    reads = count_data_reads(monkeypatch, log)
    assert log.has_ended("j") and reads == []
    for missing in ("nope", "../x", ""):
        assert not log.has_ended(missing)
    d = write_raw(tmp_path, "bare", "End Saga\n")
    assert log.has_ended("bare") and d
    fixture = FileSagaLog(LOG_DIR, cwd=str(FIXTURE_DIR))
    assert [fixture.has_ended(s) for s in fixture.get_active_sagas()] == [False, True, True]


def test_start_and_task_records_of_a_new_saga_in_one_batch(log):
    log.log_messages([SagaMessage("n", T.START_SAGA, "", b"job"), SagaMessage("n", T.START_TASK, "t"),
                      SagaMessage("n", T.END_TASK, "t", b"r"), SagaMessage("n", T.END_SAGA)])
    assert rebuild_state("n", log.get_messages("n")).completed


def test_readers_never_see_a_half_written_record_while_writers_run(log):
    def job(sid):
        saga = Saga.start(log, sid, b"blob")
        gevent.joinall([gevent.spawn(task, saga, f"t{i}") for i in range(15)], raise_error=True)
        saga.end_saga()

    def task(saga, task_id):
        saga.start_task(task_id)
        saga.start_task(task_id, b"running")
        saga.end_task(task_id, b"done")
    writers = [gevent.spawn(job, f"j{i}") for i in range(4)]
    reads = 0
    while not all(w.ready() for w in writers):
        for sid in log.get_active_sagas():
            rebuild_state(sid, log.get_messages(sid))  # raises on any torn or out-of-order record
            reads += 1
        gevent.sleep(0)
    gevent.joinall(writers, raise_error=True)
    assert reads > 0
    assert all(rebuild_state(f"j{i}", log.get_messages(f"j{i}")).completed for i in range(4))

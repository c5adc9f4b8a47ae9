"""GetStatus from the saga log: the fixture log read back must print exactly what the reference printed."""


import pytest
from thriftpy2.thrift import TType

from scootpy.idl import scoot
from scootpy.runs import RunState, RunStatus
from scootpy.sched.job_status import job_status_from_log
from scootpy.sched.saga.codec import encode_run_status
from scootpy.sched.saga.tjson import go_json_string
from scootpy.sched.saga.file import FileSagaLog
from scootpy.sched.saga.log import CorruptedSagaLogError, InvalidSagaStateError, MessageType as T, SagaMessage
from scootpy.sched.saga.memory import MemorySagaLog
from scootpy.sched.saga.saga import Saga
from tests.procs import FIXTURES, copy_writable

SAGA_LOG = FIXTURES / "saga-log"
JOBS = {"a-completed": "b8c9aef3-997a-40bb-4c4e-5e677593d545", "b-killed": "5f1d2e9e-3ad6-4a42-58a3-cf55ca67bdcf",
        "c-unfinished": "52c2a24f-015c-4c2d-4ffc-b49b717eef88"}
LOG_DIR = ".scootdata/filesagalog"


def go_json(obj) -> str:
    """Go encoding/json of a generated Thrift struct: declared order, omitempty optionals, enum names."""
    parts = []
    for spec in obj.thrift_spec.values():
        ttype, name, required = spec[0], spec[1], spec[-1]
        value = getattr(obj, name)
        if value is None or (not required and ttype == TType.MAP and not value):
            if required is True:
                raise AssertionError(f"required {name} unset")
            continue
        parts.append(f'"{name}":{go_value(spec, value)}')
    return "{" + ",".join(parts) + "}"


def go_value(spec, value) -> str:
    ttype = spec[0]
    if ttype == TType.STRING:
        return go_json_string(value)
    if ttype == TType.I32 and len(spec) == 4:
        return go_json_string(spec[2]._VALUES_TO_NAMES[value])
    if ttype == TType.STRUCT:
        return go_json(value)
    if ttype == TType.MAP:
        _, (vtype, varg) = spec[2]
        vspec = (vtype, "", varg, False) if varg is not None else (vtype, "", False)
        return "{" + ",".join(f"{go_json_string(k)}:{go_value(vspec, value[k])}" for k in sorted(value)) + "}"
    return str(value)


@pytest.mark.parametrize("job", sorted(JOBS))
def test_status_from_fixture_log_prints_like_the_reference(job):
    log = FileSagaLog(LOG_DIR, cwd=str(SAGA_LOG))
    expected = (SAGA_LOG / "jobs" / f"{job}.status-from-log.json").read_text()
    assert go_json(job_status_from_log(log, JOBS[job])) + "\n" == expected


def test_status_from_fixture_log_with_process_cwd(monkeypatch):
    monkeypatch.chdir(SAGA_LOG)
    log = FileSagaLog(LOG_DIR)
    expected = (SAGA_LOG / "jobs" / "c-unfinished.status-from-log.json").read_text()
    assert go_json(job_status_from_log(log, JOBS["c-unfinished"])) + "\n" == expected


@pytest.mark.parametrize("job_id", ["nosuchjob", "", "../../etc", "a/b", "."])
def test_unknown_job_is_not_started_with_empty_maps(job_id):
    for log in (FileSagaLog(LOG_DIR, cwd=str(SAGA_LOG)), MemorySagaLog()):
        status = job_status_from_log(log, job_id)
        assert status == scoot.JobStatus(id=job_id, status=scoot.Status.NOT_STARTED, taskStatus={}, taskData={})
    assert go_json(job_status_from_log(MemorySagaLog(), "nosuchjob")) == '{"id":"nosuchjob","status":"NOT_STARTED"}'


def test_just_started_job_shows_every_task_not_started(job_blob):
    log = MemorySagaLog()
    Saga.start(log, "j", job_blob)
    status = job_status_from_log(log, "j")
    assert status.status == scoot.Status.IN_PROGRESS
    assert status.taskStatus == {"t1": scoot.Status.NOT_STARTED, "t2": scoot.Status.NOT_STARTED}
    assert status.taskData == {}


@pytest.fixture
def job_blob():
    from scootpy.idl import sched
    from scootpy.sched.saga.codec import encode_job
    tasks = [sched.TaskDefinition(command=sched.Command(argv=["true"], envVars={}, timeout=0, snapshotId=""),
                                  taskId=t) for t in ("t1", "t2")]
    return encode_job(sched.Job(id="j", jobDefinition=sched.JobDefinition(
        jobType="", tasks=tasks, priority=0, tag="j", basis="", requestor="")))


def test_empty_start_task_quirk_file_log_vs_memory_log(tmp_path, job_blob):
    for log, expect_data in ((FileSagaLog(str(tmp_path / "sagas")), True), (MemorySagaLog(), False)):
        saga = Saga.start(log, "j", job_blob)
        saga.start_task("t1")
        status = job_status_from_log(log, "j")
        assert status.taskStatus["t1"] == scoot.Status.IN_PROGRESS
        if expect_data:
            assert go_json(status.taskData["t1"]) == '{"status":"UNKNOWN","runId":""}'
        else:
            assert "t1" not in status.taskData


def test_lifecycle_statuses_and_dropped_ids(tmp_path, job_blob):
    log = FileSagaLog(str(tmp_path / "sagas"))
    saga = Saga.start(log, "j", job_blob)
    running = RunStatus(RunState.RUNNING, run_id="0", job_id="j", task_id="t1", tag="j")
    saga.start_task("t1")
    saga.start_task("t1", encode_run_status(running))
    status = job_status_from_log(log, "j")
    assert go_json(status.taskData["t1"]) == '{"status":"RUNNING","runId":"0","exitCode":0}'
    saga.end_task("t1", encode_run_status(RunStatus(RunState.COMPLETE, run_id="0", exit_code=3, job_id="j",
                                                     task_id="t1", tag="j")))
    status = job_status_from_log(log, "j")
    assert (status.status, status.taskStatus["t1"], status.taskStatus["t2"]) == (
        scoot.Status.IN_PROGRESS, scoot.Status.COMPLETED, scoot.Status.NOT_STARTED)
    saga.end_saga()
    status = job_status_from_log(log, "j")
    assert status.status == scoot.Status.COMPLETED
    assert go_json(status.taskData["t1"]) == '{"status":"COMPLETE","runId":"0","exitCode":3}'


def test_aborted_saga_statuses(job_blob):
    log = MemorySagaLog()
    log.start_saga("j", job_blob)
    log.log_messages([SagaMessage("j", T.START_TASK, "t1"), SagaMessage("j", T.START_TASK, "t2"),
                      SagaMessage("j", T.ABORT_SAGA), SagaMessage("j", T.START_COMP_TASK, "t1"),
                      SagaMessage("j", T.END_COMP_TASK, "t1")])
    status = job_status_from_log(log, "j")
    assert status.status == scoot.Status.ROLLING_BACK
    assert status.taskStatus == {"t1": scoot.Status.ROLLED_BACK, "t2": scoot.Status.ROLLING_BACK}
    log.log_messages([SagaMessage("j", T.START_COMP_TASK, "t2"), SagaMessage("j", T.END_COMP_TASK, "t2"),
                      SagaMessage("j", T.END_SAGA)])
    assert job_status_from_log(log, "j").status == scoot.Status.ROLLED_BACK


def test_undecodable_job_blob_still_reports_logged_tasks():
    log = MemorySagaLog()
    log.start_saga("j", b"not thrift")
    log.log_message(SagaMessage("j", T.START_TASK, "x"))
    status = job_status_from_log(log, "j")
    assert status.taskStatus == {"x": scoot.Status.IN_PROGRESS} and status.status == scoot.Status.IN_PROGRESS


def test_invalid_history_raises_reference_text():
    log = MemorySagaLog()
    log.start_saga("j", b"")
    log.log_message(SagaMessage("j", T.END_TASK, "x"))
    with pytest.raises(InvalidSagaStateError, match="Cannot have a EndTask Message Before a StartTask"):
        job_status_from_log(log, "j")


def test_corrupted_saga_raises_reference_text_others_unaffected(tmp_path):
    copy_writable(SAGA_LOG / ".scootdata", tmp_path / ".scootdata")
    job = JOBS["c-unfinished"]
    victim = next((tmp_path / LOG_DIR / job).glob("End Task_t00_*"))
    victim.unlink()
    log = FileSagaLog(LOG_DIR, cwd=str(tmp_path))
    rel = f"{LOG_DIR}/{job}/{victim.name}"
    with pytest.raises(CorruptedSagaLogError) as info:
        job_status_from_log(log, job)
    assert str(info.value) == (f"SagaLog for {job} has been corrupted, Error: Error Reading DataFile {rel}, "
                               f"Error: open {rel}: no such file or directory")
    expected = (SAGA_LOG / "jobs" / "a-completed.status-from-log.json").read_text()
    assert go_json(job_status_from_log(log, JOBS["a-completed"])) + "\n" == expected


@pytest.mark.parametrize("job", sorted(JOBS))
def test_cli_json_renderer_prints_the_fixture_for_the_log_status(job):
    from scootpy.client.jsonout import go_json as cli_go_json
    log = FileSagaLog(LOG_DIR, cwd=str(SAGA_LOG))
    expected = (SAGA_LOG / "jobs" / f"{job}.status-from-log.json").read_text()
    assert cli_go_json(job_status_from_log(log, JOBS[job])) + "\n" == expected

"""Recovery on startup with the real scheduler binary and its in-process fake workers (spec §5.6).

The file saga log written by our scheduler, and the one the reference wrote (fixtures saga-log), are
recovered: every saga without EndSaga finishes, tasks with an EndTask never run again.
"""

import json
import shutil
import signal
import time

from scootpy.idl import scoot
from scootpy.sched.saga.codec import decode_run_status
from scootpy.sched.saga.file import FileSagaLog
from scootpy.sched.saga.log import MessageType
from scootpy.thriftrpc import ThriftClient
from tests.procs import FIXTURES, binary, free_port, wait_port
from tests.sched_helpers import ran_twice

JOB_C = "52c2a24f-015c-4c2d-4ffc-b49b717eef88"


def start(procs, cwd, nodes, recover=True):
    config = {"Cluster": {"Type": "memory", "Count": nodes}, "Workers": {"Type": "local"},
              "SagaLog": {"Type": "file", "Directory": ".scootdata/filesagalog"},
              "SchedulerConfig": {"RecoverJobsOnStartup": recover}}
    thrift, http = free_port(), free_port()
    proc = procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr",
                        f"127.0.0.1:{http}", "-config", json.dumps(config), "-log_level", "error"], cwd=str(cwd))
    wait_port(thrift, proc=proc)
    return proc, ThriftClient(scoot.CloudScoot, f"127.0.0.1:{thrift}", timeout=30)


def wait_completed(client, job_id, timeout=60.0):
    deadline = time.monotonic() + timeout
    while client.GetStatus(job_id).status != scoot.Status.COMPLETED:
        assert time.monotonic() < deadline, f"job {job_id} did not complete"
        time.sleep(0.02)


def job(n):
    return scoot.JobDefinition(tasks=[scoot.TaskDefinition(command=scoot.Command(argv=["true"], envVars={}),
                                                           taskId=f"t{i:03d}") for i in range(n)])


def test_waiting_jobs_survive_a_sigkill(procs, tmp_path):
    proc, client = start(procs, tmp_path, nodes=0)
    ids = [client.RunJob(job(3)).id for _ in range(3)]
    procs.stop(proc, signal.SIGKILL)
    client.close()
    proc, client = start(procs, tmp_path, nodes=2)
    for job_id in ids:
        wait_completed(client, job_id)


def test_sigkill_mid_run_then_restart_never_reruns_ended_tasks(procs, tmp_path):
    proc, client = start(procs, tmp_path, nodes=2)
    job_id = client.RunJob(job(120)).id
    log = FileSagaLog(".scootdata/filesagalog", cwd=str(tmp_path))
    deadline = time.monotonic() + 30
    while sum(1 for m in log.get_messages(job_id) if m.type == MessageType.END_TASK) < 10:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    procs.stop(proc, signal.SIGKILL)
    client.close()
    ended = {m.task_id for m in log.get_messages(job_id) if m.type == MessageType.END_TASK}
    assert 10 <= len(ended) < 120
    proc, client = start(procs, tmp_path, nodes=3)
    wait_completed(client, job_id)
    messages = log.get_messages(job_id)
    assert not ran_twice(messages)
    assert {m.task_id for m in messages if m.type == MessageType.END_TASK} == {f"t{i:03d}" for i in range(120)}


def test_recovery_off_leaves_sagas_alone(procs, tmp_path):
    proc, client = start(procs, tmp_path, nodes=0)
    job_id = client.RunJob(job(2)).id
    procs.stop(proc, signal.SIGKILL)
    proc, client = start(procs, tmp_path, nodes=2, recover=False)
    time.sleep(0.3)
    assert client.GetStatus(job_id).status == scoot.Status.IN_PROGRESS
    assert client.GetSchedulerStatus().currentTasks == 0


def test_reference_fixture_log_job_c_is_recovered_and_finished(procs, tmp_path):
    shutil.copytree(FIXTURES / "saga-log" / ".scootdata", tmp_path / ".scootdata")
    root = tmp_path / ".scootdata" / "filesagalog"
    others = [p for p in root.iterdir() if p.name != JOB_C]
    untouched = {f: f.read_bytes() for d in others for f in d.iterdir()}
    proc, client = start(procs, tmp_path, nodes=5)
    wait_completed(client, JOB_C)
    messages = FileSagaLog(".scootdata/filesagalog", cwd=str(tmp_path)).get_messages(JOB_C)
    ends = [m for m in messages if m.type == MessageType.END_TASK]
    assert sorted(m.task_id for m in ends) == [f"t{i:02d}" for i in range(10)]
    assert all(decode_run_status(m.data).state.name == "COMPLETE" for m in ends)
    assert not ran_twice(messages)
    assert {f: f.read_bytes() for d in others for f in d.iterdir()} == untouched
    status = client.GetStatus(JOB_C)
    assert set(status.taskStatus.values()) == {scoot.Status.COMPLETED}


def test_damaged_sagas_are_skipped_and_the_rest_recovered(procs, tmp_path):
    shutil.copytree(FIXTURES / "saga-log" / ".scootdata", tmp_path / ".scootdata")
    root = tmp_path / ".scootdata" / "filesagalog"
    (root / "garbled").mkdir()
    (root / "garbled" / "log").write_text("Start Saga\nnot/a/path\nWhat Is This\n")
    bad_blob = root / "bad-blob"
    bad_blob.mkdir()
    (bad_blob / "StartSagaData_x").write_bytes(b"\x00\x01not thrift")
    (bad_blob / "log").write_text("Start Saga\n.scootdata/filesagalog/bad-blob/StartSagaData_x\n")
    proc, client = start(procs, tmp_path, nodes=3)
    wait_completed(client, JOB_C)
    assert proc.poll() is None
    job_id = client.RunJob(job(2)).id
    wait_completed(client, job_id)
    assert client.GetStatus("bad-blob").status == scoot.Status.IN_PROGRESS


def test_status_of_the_fixture_jobs_matches_the_reference_output(procs, tmp_path):
    """Recovered job (c), answered from the scheduler's live state, and (a), (b) from the log: all as Go printed."""
    from scootpy.client.jsonout import go_json

    shutil.copytree(FIXTURES / "saga-log" / ".scootdata", tmp_path / ".scootdata")
    proc, client = start(procs, tmp_path, nodes=0)
    deadline = time.monotonic() + 10
    while client.GetSchedulerStatus().currentTasks != 9:
        assert time.monotonic() < deadline, "job (c) was not recovered"
        time.sleep(0.02)
    for name, job_id in (("a-completed", "b8c9aef3-997a-40bb-4c4e-5e677593d545"),
                         ("b-killed", "5f1d2e9e-3ad6-4a42-58a3-cf55ca67bdcf"), ("c-unfinished", JOB_C)):
        expected = (FIXTURES / "saga-log" / "jobs" / f"{name}.status-from-log.json").read_text().strip()
        assert go_json(client.GetStatus(job_id)) == expected

"""The real scheduler driving real workerserver processes: crashes, recovery, bad workers (spec §5.6, §6, §8).

Workers are listed in a membership file (Cluster type ``file``) so parallel test runs on this machine never
discover each other's workers.
"""

import json
import shutil
import signal
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from scootpy.idl import scoot
from scootpy.sched.saga.codec import decode_run_status
from scootpy.sched.saga.file import FileSagaLog
from scootpy.sched.saga.log import MessageType
from scootpy.thriftrpc import ThriftClient
from tests.procs import FIXTURES, binary, free_port, wait_port
from tests.sched_helpers import ran_twice

SIM = "#! sim execer"
pytestmark = pytest.mark.skipif(not Path(binary("workerserver")).exists(), reason="workerserver not installed")


class Cluster:
    def __init__(self, procs, root: Path, config_extra=None):
        self.procs, self.root = procs, root
        self.members = root / "members.txt"
        self.members.write_text("")
        self.workers = {}
        self.sched = None
        self.config = {"Cluster": {"Type": "file", "Path": str(self.members)},
                       "Workers": {"Type": "rpc", "PollingPeriod": "250ms"},
                       "SchedulerConfig": {"RecoverJobsOnStartup": True, "RunnerRetryTimeout": "1s",
                                           "RunnerRetryInterval": "100ms", "ReadyFnBackoff": "200ms"},
                       "SagaLog": {"Type": "file", "Directory": ".scootdata/filesagalog"}}
        self.config.update(config_extra or {})
        self.thrift, self.http = free_port(), free_port()

    def add_worker(self) -> str:
        thrift, http = free_port(), free_port()
        home = self.root / f"home-{thrift}"
        home.mkdir()
        store = self.root / "bundles"
        store.mkdir(exist_ok=True)
        proc = self.procs.start([binary("workerserver"), "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr",
                                 f"127.0.0.1:{http}", "-log_level", "error", "-bundlestore", str(store)],
                                cwd=str(home),
                                env={"HOME": str(home), "TMPDIR": str(home)})
        wait_port(thrift, proc=proc)
        node = f"127.0.0.1:{thrift}"
        self.workers[node] = proc
        self.write_members()
        return node

    def write_members(self, extra=()):
        self.members.write_text("".join(f"{n}\n" for n in list(self.workers) + list(extra)))

    def start_scheduler(self):
        self.sched = self.procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{self.thrift}",
                                       "-http_addr", f"127.0.0.1:{self.http}", "-log_level", "info",
                                       "-config", json.dumps(self.config)], cwd=str(self.root),
                                      stderr=open(self.root / "scheduler.log", "ab"))
        wait_port(self.thrift, proc=self.sched)
        return ThriftClient(scoot.CloudScoot, f"127.0.0.1:{self.thrift}", timeout=30)

    def snapshot(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/status.json", timeout=10) as r:
            return json.loads(r.read())

    def saga_log(self):
        return FileSagaLog(".scootdata/filesagalog", cwd=str(self.root))


def job(*tasks):
    return scoot.JobDefinition(tasks=[scoot.TaskDefinition(command=scoot.Command(argv=list(argv), envVars={}),
                                                           taskId=tid) for tid, argv in tasks])


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def completed(client, job_id):
    try:
        return client.GetStatus(job_id).status == scoot.Status.COMPLETED
    except Exception:
        return False


def test_jobs_complete_on_real_workers(procs, tmp_path):
    c = Cluster(procs, tmp_path)
    for _ in range(2):
        c.add_worker()
    client = c.start_scheduler()
    job_id = client.RunJob(job(*[(f"t{i}", ["true"]) for i in range(6)], ("sim", [SIM, "complete 4"]))).id
    wait_for(lambda: completed(client, job_id), 60, "job completion")
    status = client.GetStatus(job_id)
    assert {d.status for d in status.taskData.values()} == {scoot.RunStatusState.COMPLETE}
    assert status.taskData["sim"].exitCode == 4


def test_scheduler_sigkill_then_restart_completes_every_job_without_rerunning_ended_tasks(procs, tmp_path):
    c = Cluster(procs, tmp_path)
    for _ in range(2):
        c.add_worker()
    client = c.start_scheduler()
    ids = [client.RunJob(job(*[(f"t{i}", [SIM, "sleep 200", "complete 0"]) for i in range(5)])).id
           for _ in range(3)]
    log = c.saga_log()
    wait_for(lambda: sum(1 for j in ids for m in log.get_messages(j) if m.type == MessageType.END_TASK) >= 2,
             60, "some EndTasks")
    procs.stop(c.sched, signal.SIGKILL)
    client.close()
    before = {j: {m.task_id for m in log.get_messages(j) if m.type == MessageType.END_TASK} for j in ids}
    assert any(before.values()) and not all(len(v) == 5 for v in before.values())
    client = c.start_scheduler()
    for j in ids:
        wait_for(lambda: completed(client, j), 60, f"recovered job {j}")
    for j in ids:
        messages = log.get_messages(j)
        assert not ran_twice(messages)
        assert {m.task_id for m in messages if m.type == MessageType.END_TASK} == {f"t{i}" for i in range(5)}


def test_worker_sigkill_mid_task_reruns_the_task_elsewhere(procs, tmp_path):
    c = Cluster(procs, tmp_path)
    for _ in range(2):
        c.add_worker()
    client = c.start_scheduler()
    job_id = client.RunJob(job(("slow", [SIM, "sleep 1500", "complete 0"]))).id
    busy = wait_for(lambda: [w["id"] for w in c.snapshot()["workers"] if w["task"]], 30, "the task to start")
    procs.stop(c.workers[busy[0]], signal.SIGKILL)
    wait_for(lambda: completed(client, job_id), 60, "job completion")
    status = client.GetStatus(job_id)
    assert status.taskData["slow"].status == scoot.RunStatusState.COMPLETE
    starts = [m for m in c.saga_log().get_messages(job_id) if m.type == MessageType.START_TASK and not m.data]
    assert len(starts) == 2


def _garbage_server(stop: threading.Event):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)

    def serve():
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            try:
                conn.recv(4096)
                conn.sendall(b"\x80\x01\x00\x02garbage-garbage-garbage\xff\xff\xff\xff")
            except OSError:
                pass
            conn.close()
        sock.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"127.0.0.1:{sock.getsockname()[1]}"


def test_garbage_and_hanging_workers_stay_suspended(procs, tmp_path):
    stop = threading.Event()
    garbage = _garbage_server(stop)
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)
    hanging = f"127.0.0.1:{hang.getsockname()[1]}"
    try:
        c = Cluster(procs, tmp_path)
        c.add_worker()
        c.write_members(extra=[garbage, hanging])
        client = c.start_scheduler()
        job_id = client.RunJob(job(*[(f"t{i}", ["true"]) for i in range(4)])).id
        wait_for(lambda: completed(client, job_id), 60, "job completion")
        states = {w["id"]: w["state"] for w in c.snapshot()["workers"]}
        assert states[garbage] == "suspended" and states[hanging] == "suspended"
        assert list(c.workers)[0] in states and states[list(c.workers)[0]] == "healthy"
    finally:
        stop.set()
        hang.close()


def test_recovers_the_reference_fixture_log_and_finishes_job_c(procs, tmp_path):
    shutil.copytree(FIXTURES / "saga-log" / ".scootdata", tmp_path / ".scootdata")
    root = tmp_path / ".scootdata" / "filesagalog"
    a, b, cid = ("b8c9aef3-997a-40bb-4c4e-5e677593d545", "5f1d2e9e-3ad6-4a42-58a3-cf55ca67bdcf",
                 "52c2a24f-015c-4c2d-4ffc-b49b717eef88")
    untouched = {p: p.read_bytes() for j in (a, b) for p in (root / j).iterdir()}
    c = Cluster(procs, tmp_path)
    for _ in range(3):
        c.add_worker()
    client = c.start_scheduler()
    wait_for(lambda: completed(client, cid), 90, "job (c)")
    messages = c.saga_log().get_messages(cid)
    ends = [m for m in messages if m.type == MessageType.END_TASK]
    assert sorted(m.task_id for m in ends) == [f"t{i:02d}" for i in range(10)]
    assert {decode_run_status(m.data).state.name for m in ends} == {"COMPLETE"}
    assert not ran_twice(messages)
    assert {p: p.read_bytes() for j in (a, b) for p in (root / j).iterdir()} == untouched

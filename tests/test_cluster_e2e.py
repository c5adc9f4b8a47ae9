"""Membership end to end: a real scheduler process follows a watched membership file and a static list."""

import json
import os
import subprocess
import sys
import time

import pytest

from scootpy.idl import scoot
from scootpy.thriftrpc import ThriftClient
from tests.procs import binary, free_port, wait_port
from tests.test_worker_client_real import start_workerserver

pytestmark = pytest.mark.timeout(120)

# A small real Worker process: finishes every run at once and names itself in the output URI.
WORKER_PROCESS = """
from gevent import monkey; monkey.patch_all()
import sys
from scootpy.idl import worker
from scootpy.thriftrpc import ThriftServer

NAME, PORT = sys.argv[1], int(sys.argv[2])

class Handler:
    def __init__(self):
        self.runs = []

    def QueryWorker(self):
        return worker.WorkerStatus(runs=self.runs, initialized=True, error="")

    def Run(self, cmd):
        run_id = str(len(self.runs))
        self.runs.append(worker.RunStatus(status=worker.Status.COMPLETE, runId=run_id, exitCode=0,
                                          outUri=f"{NAME}/out", errUri=f"{NAME}/err"))
        return worker.RunStatus(status=worker.Status.RUNNING, runId=run_id)

    def Abort(self, run_id):
        return next(r for r in self.runs if r.runId == run_id)

    def Erase(self, run_id):
        pass

ThriftServer(worker.Worker, Handler(), ("127.0.0.1", PORT)).serve_forever()
"""


def start_worker(procs, name):
    port = free_port()
    proc = procs.start([sys.executable, "-c", WORKER_PROCESS, name, str(port)])
    wait_port(port, proc=proc)
    return f"127.0.0.1:{port}"


def start_scheduler(procs, tmp_path, cluster):
    port, http = free_port(), free_port()
    config = {"Cluster": cluster, "Workers": {"Type": "rpc", "PollingPeriod": "50ms"},
              "SagaLog": {"Type": "memory"}}
    proc = procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{port}", "-http_addr",
                        f"127.0.0.1:{http}", "-config", json.dumps(config)], cwd=str(tmp_path))
    wait_port(port, proc=proc)
    return ThriftClient(scoot.CloudScoot, f"127.0.0.1:{port}", timeout=30)


def run_one_task(client, task_id, timeout=30.0):
    """Submit a one-task job and return where its task ran (the worker name from its output URI)."""
    job = scoot.JobDefinition(tasks=[scoot.TaskDefinition(command=scoot.Command(argv=["true"], envVars={}),
                                                          taskId=task_id)])
    job_id = client.RunJob(job).id
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.GetStatus(job_id)
        if status.status == scoot.Status.COMPLETED:
            data = status.taskData[task_id]
            assert data.status == scoot.RunStatusState.COMPLETE
            return data.outUri.split("/")[0]
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not complete in {timeout}s")


def write_atomically(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def test_scheduler_follows_the_membership_file(procs, tmp_path):
    alpha, beta = start_worker(procs, "alpha"), start_worker(procs, "beta")
    members = tmp_path / "members.txt"
    write_atomically(members, f"# one worker\n{alpha}\n")
    client = start_scheduler(procs, tmp_path, {"Type": "file", "Path": str(members)})
    try:
        assert run_one_task(client, "first") == "alpha"
        write_atomically(members, f"{beta}\nnot a worker line\n")  # alpha leaves, beta joins, no restart
        deadline = time.monotonic() + 30
        while run_one_task(client, "switch") != "beta":  # until the scheduler has seen the edit
            assert time.monotonic() < deadline, "beta never took over"
        assert {run_one_task(client, f"t{i}") for i in range(5)} == {"beta"}
    finally:
        client.close()


def test_scheduler_with_a_static_list(procs, tmp_path):
    alpha = start_worker(procs, "alpha")
    client = start_scheduler(procs, tmp_path, {"Type": "static", "Workers": [alpha]})
    try:
        assert run_one_task(client, "only") == "alpha"
    finally:
        client.close()


@pytest.mark.skipif(not os.path.exists(binary("workerserver")), reason="workerserver not installed")
def test_scheduler_runs_tasks_on_real_workers_from_a_membership_file(procs, tmp_path):
    workers = [start_workerserver(procs, tmp_path / f"w{i}")[1] for i in range(2)]
    members = tmp_path / "members.txt"
    write_atomically(members, "\n".join(workers) + "\n")
    client = start_scheduler(procs, tmp_path, {"Type": "file", "Path": str(members)})
    try:
        tasks = [scoot.TaskDefinition(command=scoot.Command(argv=["sh", "-c", f"exit {i}"], envVars={}),
                                      taskId=f"exit{i}") for i in range(4)]
        job_id = client.RunJob(scoot.JobDefinition(tasks=tasks)).id
        deadline = time.monotonic() + 60
        while (status := client.GetStatus(job_id)).status != scoot.Status.COMPLETED:
            assert time.monotonic() < deadline, f"job not done: {status}"
            time.sleep(0.02)
        assert {t: (d.status, d.exitCode) for t, d in status.taskData.items()} == {
            f"exit{i}": (scoot.RunStatusState.COMPLETE, i) for i in range(4)}
        assert all(d.outUri.startswith("http://127.0.0.1:") for d in status.taskData.values())
    finally:
        client.close()


@pytest.mark.parametrize("cluster, text", [
    ({"Type": "zk"}, r'Error parsing Implementations Cluster: \"zk\" is not a valid Implementation'),
    ({"Type": "static", "Workers": ["nohost"]}, "invalid worker address 'nohost'"),
])
def test_scheduler_refuses_a_bad_cluster_config(procs, tmp_path, cluster, text):
    config = json.dumps({"Cluster": cluster})
    proc = procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{free_port()}", "-http_addr",
                        f"127.0.0.1:{free_port()}", "-config", config], cwd=str(tmp_path),
                       stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "level=fatal" in err.decode() and text in err.decode()  # logrus escapes the quotes

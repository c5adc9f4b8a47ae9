"""The rpc worker client and readiness probe against a real ``workerserver`` process."""

import signal
import time
from pathlib import Path

import pytest

from scootpy.runs import RunCommand, RunState
from scootpy.sched.cluster import RpcWorkerClient, WorkerUnreachable, probe_ready, ps_fetch
from tests.procs import binary, free_port, wait_port

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not Path(binary("workerserver")).exists(), reason="workerserver not installed")]


def start_workerserver(procs, tmp_path, port=None):
    store = tmp_path / "store"
    (store / "bundles").mkdir(parents=True, exist_ok=True)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    port, http = port or free_port(), free_port()
    proc = procs.start([binary("workerserver"), "-thrift_addr", f"127.0.0.1:{port}", "-http_addr",
                        f"127.0.0.1:{http}", "-bundlestore", str(store)],
                       env={"TMPDIR": str(tmp_path / "tmp"), "HOME": str(tmp_path)})
    wait_port(port, proc=proc)
    return proc, f"127.0.0.1:{port}"


def wait_ready(client, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not probe_ready(client):
        assert time.monotonic() < deadline, "worker never became ready"
        time.sleep(0.05)


def wait_done(client, run_id, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in client.query().runs:
            if run.run_id == run_id and run.state.is_done:
                return run
        time.sleep(0.01)
    raise AssertionError(f"run {run_id} not done after {timeout}s")


def test_run_query_abort_on_a_real_worker(procs, tmp_path):
    _, addr = start_workerserver(procs, tmp_path)
    client = RpcWorkerClient(addr, timeout=10)
    try:
        wait_ready(client)
        started = client.run(RunCommand(argv=["sh", "-c", "exit 3"], job_id="j", task_id="t", tag="g"))
        done = wait_done(client, started.run_id)
        assert (done.state, done.exit_code) == (RunState.COMPLETE, 3)
        assert done.out_uri and done.err_uri
        long = client.run(RunCommand(argv=["sleep", "30"]))
        assert long.run_id != started.run_id
        assert client.abort(long.run_id).state == RunState.ABORTED
    finally:
        client.close()


def test_probe_ready_aborts_leftover_runs(procs, tmp_path):
    _, addr = start_workerserver(procs, tmp_path)
    first = RpcWorkerClient(addr, timeout=10)
    wait_ready(first)
    leftover = first.run(RunCommand(argv=["sleep", "30"]))
    first.close()
    probe = RpcWorkerClient(addr, timeout=10)
    assert probe_ready(probe) is True  # as a restarted scheduler would see this worker
    probe.close()
    client = RpcWorkerClient(addr, timeout=10)
    try:
        assert wait_done(client, leftover.run_id).state == RunState.ABORTED
        again = client.run(RunCommand(argv=["true"]))  # the worker is free again
        assert wait_done(client, again.run_id).state == RunState.COMPLETE
    finally:
        client.close()


def test_killed_worker_is_unreachable_then_reachable_after_restart(procs, tmp_path):
    proc, addr = start_workerserver(procs, tmp_path)
    client = RpcWorkerClient(addr, timeout=10)
    try:
        wait_ready(client)
        client.run(RunCommand(argv=["true"]))
        procs.stop(proc, signal.SIGKILL)
        with pytest.raises(WorkerUnreachable) as info:
            client.query()
        assert info.value.node_id == addr
        start_workerserver(procs, tmp_path, port=int(addr.rsplit(":", 1)[1]))
        wait_ready(client)
        assert client.query().runs == []  # a new worker process remembers nothing
    finally:
        client.close()


def test_local_discovery_sees_a_real_workerserver(procs, tmp_path):
    proc, addr = start_workerserver(procs, tmp_path)
    assert addr in ps_fetch("workerserver", "thrift_addr")
    procs.stop(proc)
    assert addr not in ps_fetch("workerserver", "thrift_addr")

"""A small cluster spread over several test hosts (network namespaces): scheduler, bundlestore and two workers.

Every process, client included, runs inside a namespace this test creates; nothing in it talks to the host's
own network. A snapshot is made on one worker host and used by a task that runs on the other
(the first is offlined), its output is read back on a third host, then the smoke
test runs across the hosts.
"""

import json
import os
import subprocess
import textwrap
import time

import pytest

from tests.netns import HostNetwork, namespaces_available
from tests.procs import BIN

pytestmark = pytest.mark.skipif(namespaces_available() is not None,
                                reason=f"no network namespaces: {namespaces_available()}")

THRIFT, HTTP, STORE = 9090, 9091, 9094
WORKER_THRIFT, WORKER_HTTP = 9092, 9093


def _env(tmp_path, **extra):
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", HOME=str(tmp_path / "home"),
                TMPDIR=str(tmp_path / "tmp"), **extra)


def _run(net, host, argv, tmp_path, cwd=None, timeout=120):
    """Run a client command on ``host``; return (exit code, stdout, stderr)."""
    proc = subprocess.run(net.command(host, argv), cwd=cwd, env=_env(tmp_path), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def _wait_ports(net, host, addrs, tmp_path):
    """Wait, from ``host``, until every ``ip:port`` accepts connections."""
    script = textwrap.dedent(f"""
        import socket, sys, time
        deadline = time.monotonic() + 30
        for addr in {addrs!r}:
            ip, port = addr.rsplit(":", 1)
            while True:
                try:
                    socket.create_connection((ip, int(port)), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        sys.exit("not up: " + addr)
                    time.sleep(0.05)
    """)
    code, _, err = _run(net, host, ["python3", "-c", script], tmp_path)
    assert code == 0, err


@pytest.fixture
def cluster(procs, tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    (tmp_path / "bundles").mkdir()
    with HostNetwork(["sched", "store", "w1", "w2", "client"]) as net:
        ip = net.addresses
        logs = tmp_path / "logs"
        logs.mkdir()

        def start(host, argv, **env):
            log = open(logs / f"{host}.log", "wb")
            return procs.start(net.command(host, [str(BIN / argv[0])] + argv[1:]), env=_env(tmp_path, **env),
                               cwd=str(tmp_path), stdout=log, stderr=log)

        store_url = f"http://{ip['store']}:{STORE}/bundle/"
        start("store", ["apiserver", "-http_addr", f"{ip['store']}:{STORE}", "-log_level", "warn"],
              BUNDLESTORE_STORE_DIR=str(tmp_path / "bundles"))
        _wait_ports(net, "client", [f"{ip['store']}:{STORE}"], tmp_path)
        workers = []
        for host in ("w1", "w2"):
            start(host, ["workerserver", "-thrift_addr", f"{ip[host]}:{WORKER_THRIFT}",
                         "-http_addr", f"{ip[host]}:{WORKER_HTTP}", "-bundlestore", store_url, "-log_level", "warn"])
            workers.append(f"{ip[host]}:{WORKER_THRIFT}")
        config = {"Cluster": {"Type": "static", "Workers": workers},
                  "Workers": {"Type": "rpc", "PollingPeriod": "250ms"},
                  "SchedulerConfig": {"Type": "stateful", "DefaultTaskTimeout": "5m"},
                  "SagaLog": {"Type": "file", "Directory": ".scootdata/filesagalog"}}
        start("sched", ["scheduler", "-thrift_addr", f"{ip['sched']}:{THRIFT}", "-http_addr",
                        f"{ip['sched']}:{HTTP}", "-config", json.dumps(config), "-log_level", "warn"])
        _wait_ports(net, "client", workers + [f"{ip['sched']}:{THRIFT}"], tmp_path)
        (tmp_path / "home" / ".cloudscootaddr").write_text(f"{ip['sched']}:{THRIFT}\n{ip['store']}:{STORE}")
        yield net
        procs.stop_all()


def _scootapi(net, tmp_path, *args):
    return _run(net, "client", [str(BIN / "scootapi"), *args], tmp_path, cwd=str(tmp_path))


def test_snapshot_made_on_one_host_runs_on_another_and_smoke_test_passes(cluster, tmp_path):
    net, ip = cluster, cluster.addresses
    src = tmp_path / "src"
    src.mkdir()
    (src / "greeting.txt").write_text("made on w1\n")
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    code, out, err = _run(net, "w1", [str(BIN / "scoot-snapshot-db"), "create", "ingest_dir", "--dir", str(src),
                                      "--bundlestore_url", f"http://{ip['store']}:{STORE}/bundle/"],
                          tmp_path, cwd=str(repo))
    assert code == 0, err
    snapshot_id = out.strip()
    assert snapshot_id.startswith("bs-fs-")

    # Take w1 out so the task must run on w2, which has never seen the snapshot. The scheduler knows a worker
    # once its readiness probe passed, so retry for a little while.
    deadline = time.monotonic() + 20
    while True:
        code, _, err = _scootapi(net, tmp_path, "offline_worker", f"{ip['w1']}:{WORKER_THRIFT}")
        if code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == 0, err
    job_def = tmp_path / "job.json"
    job_def.write_text(json.dumps({"Tasks": [{"TaskID": "read", "SnapshotID": snapshot_id, "Args": [
        "cat", "greeting.txt"]}]}))
    code, out, err = _scootapi(net, tmp_path, "run_job", "--job_def", str(job_def))
    assert code == 0, err
    job_id = out.strip().split()[-1]
    code, out, err = _scootapi(net, tmp_path, "watch_job", job_id)
    assert code == 0, err
    code, out, err = _scootapi(net, tmp_path, "get_job_status", job_id, "--json")
    assert code == 0, err
    status = json.loads(out)
    task = status["taskData"]["read"]
    assert status["status"] == "COMPLETED"
    assert task["status"] == "COMPLETE" and task["exitCode"] == 0, task
    # The output snapshot travelled from w2 through the bundlestore to the client host.
    assert task["outUri"] == task["snapshotId"] + "/STDOUT"
    code, out, err = _run(net, "client", [str(BIN / "scoot-snapshot-db"), "read", "cat", "--id", task["snapshotId"],
                                          "--bundlestore_url", f"http://{ip['store']}:{STORE}/bundle/", "STDOUT"],
                          tmp_path, cwd=str(repo))
    assert code == 0, err
    assert "made on w1" in out

    code, _, err = _scootapi(net, tmp_path, "reinstate_worker", f"{ip['w1']}:{WORKER_THRIFT}")
    assert code == 0, err
    code, out, err = _run(net, "client", [str(BIN / "scootapi"), "run_smoke_test", "--num_jobs", "3",
                                          "--timeout", "1m"], tmp_path, cwd=str(repo), timeout=180)
    assert code == 0, f"smoke test failed: {out}\n{err}"

"""`make smoke` as a test: setup-cloud-scoot --strategy local.local run scootapi run_smoke_test, all real processes."""

import subprocess
import time

import pytest

from scootpy.client import addrs
from tests.procs import binary
from tests.test_setup_cloud import free_offset, processes_mentioning

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "Scoot Test", "GIT_AUTHOR_EMAIL": "test@example.com",
                "GIT_COMMITTER_NAME": "Scoot Test", "GIT_COMMITTER_EMAIL": "test@example.com"}


def cluster_env(tmp_path, strategy="local.local"):
    """Environment for a private cluster: temp HOME, unique SCOOT_ID, free port offset, our binaries first."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    offset = free_offset(strategy=strategy, workers=5, apiservers=3)
    bindir = str(__import__("pathlib").Path(binary("scootapi")).parent)
    return dict(GIT_IDENTITY, HOME=str(home), SCOOT_ID=f"t{offset}", SCOOT_PORT_OFFSET=str(offset),
                PATH=f"{bindir}:/usr/local/bin:/usr/bin:/bin", TMPDIR=str(tmp_path))


def git_repo(path):
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "README").write_text("smoke\n")
    return path


def leftovers(env):
    ports = addrs.Ports(int(env["SCOOT_PORT_OFFSET"]))
    return processes_mentioning(f"localhost:{ports.sched_thrift}") + \
        processes_mentioning(f"localhost:{ports.worker_thrift(0)}") + \
        processes_mentioning(f"localhost:{ports.api_http(0)}")


@pytest.mark.timeout(180)
def test_smoke_test_passes_on_a_fresh_local_local_cluster(tmp_path):
    env = cluster_env(tmp_path)
    repo = git_repo(tmp_path / "repo")
    started = time.monotonic()
    done = subprocess.run([binary("setup-cloud-scoot"), "--strategy", "local.local", "run", "scootapi",
                           "run_smoke_test", "--num_jobs", "10", "--timeout", "1m"],
                          env=env, cwd=str(repo), capture_output=True, timeout=150)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-4000:]
    assert done.stdout == b""
    assert b"Smoke test passed: 10 jobs" in done.stderr
    assert not leftovers(env)
    print(f"setup + smoke test took {elapsed:.1f}s")


def _scootapi(env, cwd, *args, timeout=60):
    return subprocess.run([binary("scootapi"), *args], env=env, cwd=str(cwd), capture_output=True, timeout=timeout)


@pytest.mark.timeout(180)
def test_cli_against_a_real_cluster(tmp_path, procs):
    """Acceptance-checklist items against a live local.local cluster, and a smoke run from a non-git cwd."""
    import json
    from tests.test_setup_cloud import _wait_ready
    env = cluster_env(tmp_path)
    elsewhere = tmp_path / "not-a-repo"
    elsewhere.mkdir()
    setup = procs.start([binary("setup-cloud-scoot"), "--strategy", "local.local", "--log_level", "warn"],
                        env=env, cwd=str(tmp_path), stderr=subprocess.DEVNULL)
    _wait_ready(env, setup, timeout=60)
    done = _scootapi(env, elsewhere, "run_smoke_test", "--num_jobs", "3", "--timeout", "1m")
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]

    done = _scootapi(env, elsewhere, "run_job", "--", "sh", "-c", "echo hi; exit 3")
    job_id = done.stdout.decode().strip()
    assert done.returncode == 0 and len(job_id) == 36
    assert _scootapi(env, elsewhere, "watch_job", job_id).returncode == 0
    status = json.loads(_scootapi(env, elsewhere, "get_job_status", job_id, "--json").stdout)
    assert status["status"] == "COMPLETED" and status["taskStatus"] == {"task1": "COMPLETED"}
    assert status["taskData"]["task1"]["status"] == "COMPLETE" and status["taskData"]["task1"]["exitCode"] == 3

    sleeper = _scootapi(env, elsewhere, "run_job", "sleep", "30").stdout.decode().strip()
    assert _scootapi(env, elsewhere, "kill_job", sleeper, "--json").returncode == 0
    assert _scootapi(env, elsewhere, "watch_job", sleeper).returncode == 0
    killed = json.loads(_scootapi(env, elsewhere, "get_job_status", sleeper, "--json").stdout)
    assert killed["status"] == "COMPLETED" and killed["taskData"]["task1"]["status"] == "ABORTED"
    again = _scootapi(env, elsewhere, "kill_job", sleeper)
    assert again.returncode == 1 and b"Error: Error getting status: Internal error processing KillJob" in again.stderr

    ports = addrs.Ports(int(env["SCOOT_PORT_OFFSET"]))
    worker = f"localhost:{ports.worker_thrift(0)}"
    assert _scootapi(env, elsewhere, "offline_worker", worker).returncode == 0
    assert b"was not present in nodes" in _scootapi(env, elsewhere, "offline_worker", worker).stderr
    assert _scootapi(env, elsewhere, "reinstate_worker", worker).returncode == 0
    assert b"not present in offlinedNodes" in _scootapi(env, elsewhere, "reinstate_worker", worker).stderr
    assert _scootapi(env, elsewhere, "get_job_status", "nosuchjob", "--json").stdout == \
        b'{"id":"nosuchjob","status":"NOT_STARTED"}\n'


@pytest.mark.timeout(120)
def test_ps_discovery_sees_our_workers_as_the_reference_does(tmp_path, procs):
    """The Go scheduler finds workers with `ps x` (wide here, pytest may set COLUMNS) and the regex
    workerserver.*thrift_addr(?: +|=)([^ ]*)."""
    import re
    from tests.test_setup_cloud import _wait_ready
    env = cluster_env(tmp_path)
    setup = procs.start([binary("setup-cloud-scoot"), "--strategy", "local.local", "--workers", "2",
                         "--apiservers", "1", "--log_level", "error"], env=env, cwd=str(tmp_path),
                        stderr=subprocess.DEVNULL)
    _wait_ready(env, setup, timeout=60)
    ps = subprocess.run(["ps", "xww"], capture_output=True, timeout=30).stdout.decode(errors="replace")
    pattern = re.compile(r"workerserver.*thrift_addr(?: +|=)([^ ]*)")
    ports = addrs.Ports(int(env["SCOOT_PORT_OFFSET"]))
    ours = {f"localhost:{ports.worker_thrift(i)}" for i in range(2)}
    found = {m.group(1) for line in ps.splitlines() for m in [pattern.search(line)] if m}
    assert ours <= found
    api = re.compile(r"apiserver.*http_addr(?: +|=)([^ ]*)")
    assert f"localhost:{ports.api_http(0)}" in {m.group(1) for line in ps.splitlines() for m in [api.search(line)] if m}

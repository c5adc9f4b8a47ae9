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

"""recoverytest as a real process: crash and restart of a whole local.local cluster mid-run."""

import subprocess

import pytest

from tests.procs import binary
from tests.test_smoke import cluster_env, leftovers


@pytest.mark.timeout(200)
def test_all_jobs_survive_a_cluster_crash(tmp_path):
    env = cluster_env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([binary("recoverytest")], env=env, cwd=str(work), capture_output=True, timeout=180)
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr[-4000:]
    assert "KILLING CLUSTER" in stderr and "Reviving Cluster" in stderr
    assert "All Jobs Completed Successfully" in stderr
    assert (work / ".scootdata" / "filesagalog").is_dir()
    assert not leftovers(env)


def test_bad_flags(tmp_path):
    env = cluster_env(tmp_path)
    done = subprocess.run([binary("recoverytest"), "-log_level", "bogus"], env=env, capture_output=True, timeout=30)
    assert done.returncode == 1 and b"not a valid logrus Level" in done.stderr
    done = subprocess.run([binary("recoverytest"), "-bogus"], env=env, capture_output=True, timeout=30)
    assert done.returncode == 2

"""scoot-integration as a real process: snapshot of the working tree, jobs via the CLIs, offline/reinstate."""

import subprocess

import pytest

from tests.procs import binary
from tests.test_smoke import cluster_env, git_repo, leftovers


@pytest.mark.timeout(200)
def test_integration_harness_passes(tmp_path):
    env = cluster_env(tmp_path)
    repo = git_repo(tmp_path / "repo")
    (repo / "src").mkdir()
    (repo / "src" / "main.txt").write_text("hello\n")
    done = subprocess.run([binary("scoot-integration")], env=env, cwd=str(repo), capture_output=True, timeout=180)
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr[-4000:]
    assert "Integration test passed" in stderr
    assert not leftovers(env)


def test_bad_log_level_exits_1(tmp_path):
    done = subprocess.run([binary("scoot-integration"), "-log_level", "bogus"], env=cluster_env(tmp_path),
                          capture_output=True, timeout=30)
    assert done.returncode == 1 and b"not a valid logrus Level" in done.stderr

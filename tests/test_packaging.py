"""Packaging: a wheel built from the sources ships the IDLs as ``scootpy/idl/*.thrift`` and works when
installed into a fresh venv, imported from outside the checkout. Also the make/CI entry points."""

import configparser
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.procs import REPO

SOURCES = ["setup.py", "setup.cfg", "pyproject.toml", "README.md", "thrift", "scootpy"]


def declared_scripts() -> dict:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = [line.strip() for line in cfg["options.entry_points"]["console_scripts"].splitlines() if line.strip()]
    return dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline from a copy of the sources (the shared checkout is never written to)."""
    root = tmp_path_factory.mktemp("pkg")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(root / "dist"), str(src)], check=True, timeout=120)
    (found,) = (root / "dist").glob("scootpy-*.whl")
    return found


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for idl in (REPO / "thrift").glob("*.thrift"):
        assert f"scootpy/idl/{idl.name}" in names
    for path in (REPO / "scootpy").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            assert path.relative_to(REPO).as_posix() in names, f"{path} is not shipped"
    assert not any(n.startswith(("tests/", "bench/", "thrift/")) for n in names)


CHECK = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import os, sys
    import scootpy, scootpy.idl
    from scootpy.idl import idl_dir, scoot
    from scootpy.thriftrpc import ThriftClient, ThriftServer

    class Handler:
        def GetSchedulerStatus(self):
            return scoot.SchedulerStatus(currentTasks=0, maxTasks=-1)

    server = ThriftServer(scoot.CloudScoot, Handler(), ("127.0.0.1", 0))
    server.start()
    with ThriftClient(scoot.CloudScoot, "127.0.0.1:%d" % server.address[1]) as client:
        assert client.GetSchedulerStatus().maxTasks == -1
    server.stop()
    print(scootpy.__file__)
    print(idl_dir())
""")


def test_installed_wheel_works_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=120)
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                         "['purelib'])"], text=True).strip())
    deps = Path(subprocess.check_output([sys.executable, "-c", "import gevent, os; "
                                         "print(os.path.dirname(os.path.dirname(gevent.__file__)))"],
                                        text=True).strip())
    (site / "zz_test_deps.pth").write_text(f"{deps}\n")  # reuse our dependencies without the network
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([str(python), "-c", CHECK], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    package_file, idl_path = proc.stdout.split()
    assert Path(package_file).is_relative_to(site) and Path(idl_path) == site / "scootpy" / "idl"
    assert sorted(p.name for p in Path(idl_path).glob("*.thrift")) == [
        "bazel.thrift", "sched.thrift", "scoot.thrift", "worker.thrift"]
    for script in declared_scripts():
        assert (venv / "bin" / script).is_file(), f"console script {script} not installed"


def test_console_scripts_are_the_declared_ones():
    assert declared_scripts() == {
        "setup-cloud-scoot": "scootpy.client.setup_cloud:main", "scheduler": "scootpy.sched.main:main",
        "workerserver": "scootpy.workerserver.main:main", "apiserver": "scootpy.snapshots.apiserver:main",
        "scootapi": "scootpy.client.scootapi:main", "workercl": "scootpy.workerserver.workercl:main",
        "scoot-snapshot-db": "scootpy.snapshots.cli:main", "recoverytest": "scootpy.client.recoverytest:main",
        "scoot-integration": "scootpy.client.integration:main"}


def test_make_test_and_ci_entry_points():
    makefile = (REPO / "Makefile").read_text()
    assert "test: system-deps install" in makefile
    assert "pip install -q -e '.[test]'" in makefile and "$(BIN)/pytest" in makefile
    ci = REPO / ".ci" / "run"
    assert os.access(ci, os.X_OK) and "make test" in ci.read_text()
    assert os.access(REPO / ".ci" / "system-deps", os.X_OK)
    dry = subprocess.run(["make", "-n", "test", "VENV=/nonexistent-venv"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "python3 -m venv /nonexistent-venv" in dry.stdout and "/nonexistent-venv/bin/pytest" in dry.stdout


def test_test_extra_has_what_the_suite_imports():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    extra = cfg["options.extras_require"]["test"]
    for name in ("pytest", "pytest-timeout", "thrift", "prometheus_client", "setuptools", "wheel"):
        assert f"\n{name}>=" in "\n" + extra.replace(" ", ""), name

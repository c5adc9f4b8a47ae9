"""setup-cloud-scoot as a real process: flags, exit codes, the address file, teardown on signals and on a
dying child. Clusters here are local.memory (apiserver + scheduler) on private ports (SCOOT_PORT_OFFSET)."""

import os
import random
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from scootpy.client import addrs
from scootpy.client.cluster import ClusterConfig, planned_ports
from tests.procs import binary

pytestmark = pytest.mark.timeout(120)


def free_offset(strategy: str = "local.memory", workers: int = 5, apiservers: int = 1) -> int:
    """A port offset whose every planned port is free (below the ephemeral range, away from the defaults)."""
    for _ in range(200):
        offset = random.randrange(1000, 19000, 10)
        cfg = ClusterConfig(strategy=strategy, workers=workers, apiservers=apiservers, ports=addrs.Ports(offset))
        if all(_bindable(p) for p in planned_ports(cfg)):
            return offset
    raise RuntimeError("no free port offset")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def processes_mentioning(text: str):
    """Pids of live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and "pytest" not in cmdline:
                found.append(int(entry.name))
    return found


@pytest.fixture
def env(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    offset = free_offset()
    return {"HOME": str(home), "SCOOT_ID": "t" + uuid.uuid4().hex[:8], "SCOOT_PORT_OFFSET": str(offset),
            "PATH": f"{Path(binary('scootapi')).parent}:{os.environ.get('PATH', '')}"}


def setup_cmd(*args):
    return [binary("setup-cloud-scoot"), "--apiservers", "1", "--workers", "2", *args]


def run(env, cwd, *args, timeout=60):
    return subprocess.run(setup_cmd(*args), env=env, cwd=cwd, capture_output=True, timeout=timeout)


def sched_marker(env) -> str:
    return f"-thrift_addr localhost:{addrs.Ports(int(env['SCOOT_PORT_OFFSET'])).sched_thrift}"


def test_bad_flags_and_strategies(env, tmp_path):
    done = run(env, tmp_path, "--bogus")
    assert done.returncode == 2 and b"flag provided but not defined: -bogus" in done.stderr
    done = run(env, tmp_path, "--api_strategy", "foo")
    assert done.returncode == 1
    assert b'--strategy=\\"foo\\" is not a valid api strategy; valid choices are [local]' in done.stderr
    done = run(env, tmp_path, "--strategy", "foo")
    assert done.returncode == 1 and b"is not a valid sched strategy" in done.stderr
    done = run(env, tmp_path, "--log_level", "bogus")
    assert done.returncode == 1 and b"not a valid logrus Level" in done.stderr
    done = subprocess.run([binary("setup-cloud-scoot"), "--apiservers", "-1"], env=env, cwd=tmp_path,
                          capture_output=True, timeout=60)
    assert done.returncode == 1 and b"ApiServer count must be >0 (or zero for default #), was: -1" in done.stderr
    done = run(env, tmp_path, "--strategy", "local.local", "--workers", "-2")
    assert done.returncode == 1 and b"LocalWorkers must start with at least 1 worker" in done.stderr
    bad = dict(env, SCOOT_PORT_OFFSET="lots")
    assert run(bad, tmp_path).returncode == 1
    assert not processes_mentioning(sched_marker(env))


def test_run_writes_address_file_and_reaps_everything(env, tmp_path):
    done = run(env, tmp_path, "--strategy", "local.memory", "run", "scootapi", "get_scheduler_status", "--json")
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout == b'{"currentTasks":0,"maxTasks":-1}\n'
    ports = addrs.Ports(int(env["SCOOT_PORT_OFFSET"]))
    addr_file = Path(env["HOME"]) / (".cloudscootaddr" + env["SCOOT_ID"])
    assert addr_file.read_bytes() == f"localhost:{ports.sched_thrift}\nlocalhost:{ports.api_http(0)}".encode()
    stderr = done.stderr.decode()
    assert f"-thrift_addr localhost:{ports.sched_thrift} -http_addr localhost:{ports.sched_http} -log_level info " \
           '-config local.memory.{\\"Cluster\\": {\\"Count\\": 2}}' in stderr
    assert f"-http_addr localhost:{ports.api_http(0)} -grpc_addr localhost:{ports.api_grpc(0)} -log_level info" \
        in stderr
    assert not processes_mentioning(sched_marker(env))


def test_failing_command_exits_1_and_bare_run_is_an_error(env, tmp_path):
    done = run(env, tmp_path, "run", "sh", "-c", "exit 3")
    assert done.returncode == 1 and b'level=fatal msg="exit status 3"' in done.stderr
    done = run(env, tmp_path, "run")
    assert done.returncode == 1 and b"need at least a command to run; [run]" in done.stderr
    done = run(env, tmp_path, "frobnicate")
    assert done.returncode == 1 and b"command frobnicate is not supported (currently only 'run')" in done.stderr
    done = run(env, tmp_path, "run", "no-such-command-xyz")
    assert done.returncode == 1 and b"executable file not found" in done.stderr
    assert not processes_mentioning(sched_marker(env))


def test_port_collision_is_a_clear_error(env, tmp_path):
    ports = addrs.Ports(int(env["SCOOT_PORT_OFFSET"]))
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", ports.sched_thrift))
        busy.listen()
        done = run(env, tmp_path, "run", "true")
    assert done.returncode == 1
    assert f"port(s) {ports.sched_thrift} already in use".encode() in done.stderr
    assert not processes_mentioning(f"-http_addr localhost:{ports.api_http(0)}")


def _wait_ready(env, proc, timeout=30.0):
    addr_file = Path(env["HOME"]) / (".cloudscootaddr" + env["SCOOT_ID"])
    deadline = time.monotonic() + timeout
    while not addr_file.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "cluster did not come up"
        time.sleep(0.05)


@pytest.mark.parametrize("sig,mode", [(signal.SIGINT, []), (signal.SIGTERM, []),
                                      (signal.SIGINT, ["run", "sleep", "31.5"])])
def test_signal_tears_everything_down(env, tmp_path, procs, sig, mode):
    proc = procs.start(setup_cmd(*mode), env=env, cwd=str(tmp_path), stderr=subprocess.DEVNULL)
    _wait_ready(env, proc)
    assert processes_mentioning(sched_marker(env))
    if mode:
        deadline = time.monotonic() + 10
        while not processes_mentioning("sleep 31.5") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processes_mentioning("sleep 31.5")
    os.kill(proc.pid, sig)
    assert proc.wait(10) == 1
    assert not processes_mentioning(sched_marker(env))
    assert not processes_mentioning("sleep 31.5")


def test_a_dying_child_ends_wait_mode(env, tmp_path, procs):
    proc = procs.start(setup_cmd(), env=env, cwd=str(tmp_path), stderr=subprocess.PIPE)
    _wait_ready(env, proc)
    [sched_pid] = processes_mentioning(sched_marker(env))
    os.kill(sched_pid, signal.SIGKILL)
    assert proc.wait(10) == 1
    assert b"a cluster process exited" in proc.stderr.read()
    ports = addrs.Ports(int(env["SCOOT_PORT_OFFSET"]))
    assert not processes_mentioning(f"-http_addr localhost:{ports.api_http(0)}")


def test_address_file_format(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SCOOT_ID", "x")
    assert addrs.addr_file_path() == str(tmp_path / ".cloudscootaddrx")
    assert addrs.read_addrs() == ("", "")
    addrs.write_addrs("localhost:9090", "localhost:11100")
    assert (tmp_path / ".cloudscootaddrx").read_bytes() == b"localhost:9090\nlocalhost:11100"
    assert addrs.read_addrs() == ("localhost:9090", "localhost:11100")
    (tmp_path / ".cloudscootaddrx").write_text("one line")
    with pytest.raises(addrs.AddrFileError):
        addrs.read_addrs()
    (tmp_path / ".cloudscootaddrx").write_bytes(b"\xff\xfe\n")
    with pytest.raises(addrs.AddrFileError):
        addrs.read_addrs()
    assert addrs.bundlestore_uri("localhost:11100") == "http://localhost:11100/bundle/"


def test_default_ports_are_the_references():
    ports = addrs.Ports(addrs.port_offset({}))
    assert (ports.sched_thrift, ports.sched_http, ports.worker_http(1), ports.worker_thrift(1),
            ports.api_http(2), ports.api_grpc(2)) == (9090, 9091, 10102, 10103, 11102, 12102)
    with pytest.raises(ValueError):
        addrs.port_offset({"SCOOT_PORT_OFFSET": "-5"})


def test_server_binaries_come_from_scoot_bin_dir_first(tmp_path, monkeypatch):
    from scootpy.client.cluster import SetupError, find_binary
    fake = tmp_path / "scheduler"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("SCOOT_BIN_DIR", str(tmp_path))
    assert find_binary("scheduler") == str(fake)
    monkeypatch.delenv("SCOOT_BIN_DIR")
    assert find_binary("scheduler") == binary("scheduler")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SetupError, match='exec: "no-such-server": executable file not found'):
        find_binary("no-such-server")

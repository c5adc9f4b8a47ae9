"""Golden wire bytes: the reference scootapi's recorded calls get byte-identical replies (fixtures wire/)."""

import json
import re
import socket

import pytest

from tests.procs import FIXTURES, binary, free_port, wait_port

WIRE = FIXTURES / "wire" / "scootapi-scheduler"


@pytest.fixture
def sched_port(procs, tmp_path):
    thrift, http = free_port(), free_port()
    config = {"Cluster": {"Type": "memory", "Count": 0}, "SagaLog": {"Type": "memory"}}
    proc = procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr",
                        f"127.0.0.1:{http}", "-config", json.dumps(config), "-log_level", "error"], cwd=str(tmp_path))
    wait_port(thrift, proc=proc)
    return thrift


def exchange(port: int, call: bytes, reply_len: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(call)
        data = b""
        while len(data) < reply_len:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_scheduler_status_reply_is_byte_identical(sched_port):
    expected = (WIRE / "04-GetSchedulerStatus.reply.bin").read_bytes()
    got = exchange(sched_port, (WIRE / "04-GetSchedulerStatus.call.bin").read_bytes(), len(expected))
    assert got == expected


def test_kill_unknown_job_exception_is_byte_identical(sched_port):
    expected = (WIRE / "03-KillJob-unknown-id.exception.bin").read_bytes()
    got = exchange(sched_port, (WIRE / "03-KillJob-unknown-id.call.bin").read_bytes(), len(expected))
    assert got == expected


@pytest.mark.parametrize("name", ["01-RunJob", "05-RunJob-pause-job"])
def test_run_job_reply_has_the_reference_layout(sched_port, name):
    expected = (WIRE / f"{name}.reply.bin").read_bytes()
    got = exchange(sched_port, (WIRE / f"{name}.call.bin").read_bytes(), len(expected))
    uuid = rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert re.search(uuid, got)
    assert re.sub(uuid, b"ID", got) == re.sub(uuid, b"ID", expected)

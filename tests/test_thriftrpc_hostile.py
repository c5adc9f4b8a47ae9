"""Hostile peers against a real ThriftServer process: garbage, truncated and oversized frames, absurd sizes,
deep nesting and stalled peers close that connection only; the server keeps serving and its memory stays flat.
Configurable caps are checked against an in-process server.
"""

import os
import random
import socket
import struct
import sys
import textwrap
import time

import gevent
import pytest
from thriftpy2.thrift import TApplicationException, TMessageType

from scootpy.idl import scoot, worker
from scootpy.thriftrpc import Limits, ThriftClient, ThriftServer
from tests.procs import free_port, wait_port
from tests.test_wire_fixtures import Recorder, encode_message, read_message

SERVER_SCRIPT = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import sys
    from scootpy.idl import scoot
    from scootpy.logs import setup_logging
    from scootpy.thriftrpc import Limits, ThriftServer

    class Handler:
        def RunJob(self, job):
            return scoot.JobId(id="%d:%s" % (len(job.tasks), job.tag))
        def GetSchedulerStatus(self):
            return scoot.SchedulerStatus(currentTasks=0, maxTasks=-1)

    setup_logging("debug")
    limits = Limits(stall_timeout=float(sys.argv[2]))
    ThriftServer(scoot.CloudScoot, Handler(), ("127.0.0.1", int(sys.argv[1])), limits=limits).serve_forever()
""")

TASKS = [scoot.TaskDefinition(command=scoot.Command(argv=["true"], envVars={"K": "V"}), taskId="t")]
I32_MAX = struct.pack(">i", 0x7FFFFFFF)


def run_job_call(tag: str = "TAGX", tasks=None) -> bytes:
    job = scoot.JobDefinition(tasks=TASKS if tasks is None else tasks, tag=tag)
    return encode_message("RunJob", TMessageType.CALL, 1, scoot.CloudScoot.RunJob_args(job=job))


def _patched(data: bytes, old: bytes, new: bytes, cut: bool = True) -> bytes:
    at = data.index(old)
    return data[:at] + new + (b"" if cut else data[at + len(old):])


def attacks() -> dict:
    """Byte strings no honest peer sends. Each must make the server drop that connection."""
    call = run_job_call()
    header = call[: call.index(b"RunJob") + 10]  # version, name, seqid
    rng = random.Random(7)
    return {
        "strict-header-2GiB-name": b"\x80\x01\x00\x01" + I32_MAX + b"Run",
        "old-style-header-2GiB-name": I32_MAX + b"RunJ",
        "bad-version": b"\x80\x07\x00\x01" + call[4:],
        "negative-name-length": b"\x80\x01\x00\x01" + struct.pack(">i", -5) + b"x" * 10,
        "string-announcing-2GiB": _patched(call, b"\x00\x00\x00\x04TAGX", I32_MAX + b"TAG"),
        "list-announcing-2G-items": _patched(call, b"\x0f\x00\x01\x0c\x00\x00\x00\x01", b"\x0f\x00\x01\x0c" + I32_MAX),
        "list-of-void-16M-items": _patched(call, b"\x0f\x00\x01\x0c\x00\x00\x00\x01",
                                           b"\x0f\x00\x01\x01" + struct.pack(">i", 16_000_000)),
        "map-announcing-2G-entries": _patched(call, b"\x0d\x00\x02\x0b\x0b\x00\x00\x00\x01",
                                              b"\x0d\x00\x02\x0b\x0b" + I32_MAX),
        "negative-list-size": _patched(call, b"\x0f\x00\x01\x0c\x00\x00\x00\x01",
                                       b"\x0f\x00\x01\x0c" + struct.pack(">i", -1)),
        "nesting-100000-deep": header + b"\x0f\x00\x63" + b"\x0f\x00\x00\x00\x01" * 100_000,
        "garbage-64KiB": bytes(rng.getrandbits(8) for _ in range(65536)),
        "garbage-after-valid-header": header + bytes(rng.getrandbits(8) for _ in range(4096)),
        "truncated-then-eof": call[: len(call) // 2],
        "stalled-mid-message": call[: len(call) // 2],
    }


def drop_expected(port: int, name: str, data: bytes) -> None:
    """Send ``data``; the server must close the connection without answering."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        if name == "truncated-then-eof":
            sock.shutdown(socket.SHUT_WR)
        sock.settimeout(15)
        try:
            got = sock.recv(65536)
        except ConnectionResetError:
            got = b""
        assert got == b"", f"{name}: server answered {got[:40]!r} instead of closing"


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_fds(pid: int, settle: float = 5.0) -> int:
    """Open descriptors of ``pid`` once the count stops changing (the server closes peers asynchronously)."""
    count, deadline = len(os.listdir(f"/proc/{pid}/fd")), time.monotonic() + settle
    while time.monotonic() < deadline:
        gevent.sleep(0.2)
        now = len(os.listdir(f"/proc/{pid}/fd"))
        if now == count:
            break
        count = now
    return count


def valid_calls(port: int, n: int) -> None:
    with ThriftClient(scoot.CloudScoot, f"127.0.0.1:{port}", timeout=10) as client:
        for i in range(n):
            assert client.RunJob(scoot.JobDefinition(tasks=TASKS, tag=f"ok{i}")).id == f"1:ok{i}"


@pytest.fixture
def server_process(procs, tmp_path):
    script = tmp_path / "tiny_server.py"
    script.write_text(SERVER_SCRIPT)
    port = free_port()
    log = open(tmp_path / "server.log", "wb")
    proc = procs.start([sys.executable, str(script), str(port), "1.0"], stderr=log)
    wait_port(port, proc=proc)
    yield proc, port, tmp_path / "server.log"
    log.close()


def run_round(port: int) -> None:
    jobs = [gevent.spawn(drop_expected, port, name, data) for name, data in attacks().items()]
    jobs.append(gevent.spawn(valid_calls, port, 20))  # honest traffic is served meanwhile
    gevent.joinall(jobs, timeout=60, raise_error=True)
    assert all(j.successful() for j in jobs)


def test_hostile_input_drops_only_that_connection_and_memory_stays_flat(server_process):
    proc, port, log_path = server_process
    valid_calls(port, 200)
    run_round(port)  # warm-up: first use of every code path
    before, fds_before = rss_bytes(proc.pid), open_fds(proc.pid)
    for _ in range(5):
        run_round(port)
    valid_calls(port, 200)
    after, fds_after = rss_bytes(proc.pid), open_fds(proc.pid)
    assert proc.poll() is None
    assert after - before < 8 * 1024 * 1024, f"RSS grew from {before} to {after}"
    assert fds_after <= fds_before, f"file descriptors leaked: {fds_before} -> {fds_after}"
    log = log_path.read_text()
    assert "Traceback" not in log and "level=error" not in log, log[-2000:]
    for reason in ("invalid element type", "exceeds limit", "container of 2147483647 items", "Bad version",
                   "negative length", "timed out waiting", "closed by peer", "depth"):
        assert reason in log, f"no connection was dropped for {reason!r}"
    print(f"server RSS before {before} after {after} bytes")


def test_many_stalled_peers_do_not_block_honest_clients(server_process):
    proc, port, _ = server_process
    stalled = []
    try:
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(run_job_call()[:20])
            stalled.append(s)
        valid_calls(port, 10)
        for s in stalled:
            s.settimeout(15)
            assert s.recv(1) == b""  # each one is cut off after the stall timeout
    finally:
        for s in stalled:
            s.close()
    valid_calls(port, 1)
    assert proc.poll() is None


SMALL = Limits(max_message_bytes=1 << 20, max_string_bytes=256 << 10, max_container_items=1000, stall_timeout=5)


class Echo:
    def RunJob(self, job):
        return scoot.JobId(id=str(len(job.tag or "")) + "/" + str(len(job.tasks)))


@pytest.fixture
def small_server():
    srv = ThriftServer(scoot.CloudScoot, Echo(), ("127.0.0.1", 0), limits=SMALL)
    srv.start()
    yield srv.address[1]
    srv.stop()


def _exchange(port: int, data: bytes):
    with socket.create_connection(("127.0.0.1", port)) as sock, sock.makefile("rb") as source:
        sock.sendall(data)
        sock.settimeout(15)
        try:
            return read_message(Recorder(source), scoot.CloudScoot)
        except (EOFError, ConnectionResetError):
            return None


def _tasks(n: int):
    return [scoot.TaskDefinition(command=scoot.Command(argv=[])) for _ in range(n)]


@pytest.mark.parametrize("tag, tasks, served", [
    ("x" * (200 << 10), 1, True),      # under every cap
    ("x" * (300 << 10), 1, False),     # one string over max_string_bytes
    ("", 900, True),                   # container under the item cap
    ("", 1500, False),                 # container over max_container_items
])
def test_configurable_caps(small_server, tag, tasks, served):
    reply = _exchange(small_server, run_job_call(tag, _tasks(tasks)))
    if served:
        assert reply is not None and reply[3].success.id == f"{len(tag)}/{tasks}"
    else:
        assert reply is None


def test_message_cap_counts_the_whole_message(small_server):
    def tasks(strings):
        return [scoot.TaskDefinition(command=scoot.Command(argv=["y" * (200 << 10)] * strings))]

    assert _exchange(small_server, run_job_call("", tasks(6))) is None  # each string fits, the sum does not
    assert _exchange(small_server, run_job_call("", tasks(3)))[3].success.id == "0/1"


def test_caps_apply_to_replies_read_by_the_client(small_server):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        big = scoot.CloudScoot.RunJob_result(success=scoot.JobId(id="z" * (300 << 10)))

        def serve():
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(encode_message("RunJob", TMessageType.REPLY, 1, big))
                gevent.sleep(2)

        g = gevent.spawn(serve)
        client = ThriftClient(scoot.CloudScoot, "127.0.0.1:%d" % listener.getsockname()[1], limits=SMALL)
        try:
            with pytest.raises(Exception, match="exceeds limit"):
                client.RunJob(scoot.JobDefinition(tasks=TASKS))
            assert client._transport is None
        finally:
            client.close()
            g.kill()


def test_default_limits_are_64_mib():
    limits = Limits()
    assert limits.max_message_bytes == limits.max_string_bytes == 64 << 20
    assert TApplicationException.INTERNAL_ERROR == 6


class Canned:
    """Answers every method of a service with one fixed, valid reply."""

    REPLIES = {
        "RunJob": scoot.JobId(id="j"), "GetStatus": scoot.JobStatus(id="j", status=scoot.Status.COMPLETED),
        "KillJob": scoot.JobStatus(id="j", status=scoot.Status.COMPLETED),
        "GetSchedulerStatus": scoot.SchedulerStatus(currentTasks=0, maxTasks=-1),
        "QueryWorker": worker.WorkerStatus(runs=[], initialized=True, error=""),
        "Run": worker.RunStatus(status=worker.Status.PENDING, runId="0"),
        "Abort": worker.RunStatus(status=worker.Status.ABORTED, runId="0"),
    }

    def __getattr__(self, method):
        return lambda *args: self.REPLIES.get(method)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random corruption of a valid message: flipped bytes, a cut, an insertion or a repeated slice."""
    kind = rng.randrange(4)
    buf = bytearray(data)
    if kind == 0:
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == 1:
        del buf[rng.randrange(1, len(buf)):]
    elif kind == 2:
        at = rng.randrange(len(buf))
        buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    else:
        a = rng.randrange(len(buf))
        buf[a:a] = buf[a:a + rng.randint(1, 16)] * rng.randint(2, 50)
    return bytes(buf)


def send_and_drain(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass


def test_mutated_reference_calls_never_hurt_the_server(caplog):
    """600 corrupted copies of the recorded Go calls: each gets an answer or a closed connection, the
    server logs no unexpected error, and it still serves honest calls afterwards."""
    from tests.test_wire_fixtures import ENTRIES, WIRE, service_of

    calls = [e for e in ENTRIES if e["message_type"] == "CALL"]
    servers = {svc: ThriftServer(svc, Canned(), ("127.0.0.1", 0), limits=Limits(stall_timeout=2))
               for svc in {service_of(e) for e in calls}}
    for srv in servers.values():
        srv.start()
    rng = random.Random(20191014)
    try:
        with caplog.at_level("DEBUG", logger="scootpy.thriftrpc"):
            for _ in range(12):
                batch = []
                for _ in range(50):
                    entry = rng.choice(calls)
                    data = mutate((WIRE / entry["file"]).read_bytes(), rng)
                    batch.append(gevent.spawn(send_and_drain, servers[service_of(entry)].port, data))
                gevent.joinall(batch, timeout=60, raise_error=True)
        assert not [r for r in caplog.records if r.levelno >= 40], [r.getMessage() for r in caplog.records][-5:]
        with ThriftClient(scoot.CloudScoot, f"127.0.0.1:{servers[scoot.CloudScoot].port}") as client:
            assert client.GetSchedulerStatus().maxTasks == -1
    finally:
        for srv in servers.values():
            srv.stop()


def test_mutated_reference_replies_give_the_client_clean_errors():
    """Our client, fed 300 corrupted copies of recorded Go replies, returns or raises a documented error."""
    from thriftpy2.thrift import TException

    from scootpy.thriftrpc import PeerError
    from tests.test_wire_fixtures import ENTRIES, WIRE, decode_message, service_of

    pairs = list(zip(ENTRIES[0::2], ENTRIES[1::2]))
    rng = random.Random(7)
    outcomes = {}
    for _ in range(300):
        call, answer = rng.choice(pairs)
        service = service_of(call)
        _, _, seqid, args, _ = decode_message((WIRE / call["file"]).read_bytes(), service)
        reply = mutate((WIRE / answer["file"]).read_bytes(), rng)
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)

            def serve():
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(reply)

            g = gevent.spawn(serve)
            client = ThriftClient(service, "127.0.0.1:%d" % listener.getsockname()[1], timeout=3,
                                  limits=Limits(stall_timeout=1))
            try:
                client._connect()
                client._seqid = seqid - 1  # the recorded reply answers this call's seqid
                client.call(call["method"], *[getattr(args, s[1]) for s in args.thrift_spec.values()])
                outcome = "returned"
            except (TException, PeerError, OSError) as e:
                outcome = type(e).__name__
            finally:
                client.close()
                g.kill()
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert sum(outcomes.values()) == 300 and len(outcomes) > 2, outcomes

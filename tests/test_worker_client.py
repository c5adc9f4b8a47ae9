"""Worker clients: the in-process fakes, the Thrift client against real servers and hostile peers, readiness."""

import random
import socket
import sys
import time

import gevent
import gevent.server
import pytest
from thriftpy2.protocol import TBinaryProtocol
from thriftpy2.thrift import TMessageType
from thriftpy2.transport import TMemoryBuffer

from scootpy.idl import worker
from scootpy.runs import RunCommand, RunState, RunStatus, run_status_to_thrift
from scootpy.sched.cluster import (FakeWorkerClient, RpcWorkerClient, WorkerGaveUp, WorkerStatus,
                                   WorkerUnreachable, probe_ready)
from scootpy.thriftrpc import ThriftServer
from tests.procs import free_port, wait_port

pytestmark = pytest.mark.timeout(60)


# --- in-process fake workers ---------------------------------------------------------------------------------

def fake(**kw):
    return FakeWorkerClient("inmemory0", max_delay=0, **kw)


def test_fake_worker_completes_everything_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    client = fake()
    assert client.query() == WorkerStatus(runs=[], initialized=True, error="")
    cmd = RunCommand(argv=["touch", str(marker)], job_id="j", task_id="t", tag="g")
    started = client.run(cmd)
    assert (started.state, started.run_id) == (RunState.PENDING, "0")
    assert client.query().runs == [RunStatus(state=RunState.COMPLETE, run_id="0", out_uri="file:///dev/null",
                                             err_uri="file:///dev/null", exit_code=0, job_id="j", task_id="t",
                                             tag="g")]
    assert not marker.exists()


def test_fake_worker_uris_with_a_snapshot():
    client = fake()
    client.run(RunCommand(argv=["false"], snapshot_id="bs-fs-abc"))
    [done] = client.query().runs
    assert (done.state, done.exit_code, done.out_uri, done.err_uri, done.snapshot_id) == (
        RunState.COMPLETE, 0, "/STDOUT", "/STDERR", "")


def test_fake_worker_keeps_only_its_latest_run():
    client = fake()
    client.run(RunCommand(argv=["a"], task_id="1"))
    client.run(RunCommand(argv=["b"], task_id="2"))
    assert [(r.run_id, r.task_id) for r in client.query().runs] == [("0", "2")]


def test_fake_worker_abort():
    client = fake()
    with pytest.raises(WorkerUnreachable, match="cannot find run"):
        client.abort("0")
    client.run(RunCommand(argv=["x"]))
    assert client.abort("0").state == RunState.COMPLETE
    with pytest.raises(WorkerUnreachable):
        client.abort("7")
    client.close()
    with pytest.raises(WorkerUnreachable, match="closed"):
        client.query()


def test_fake_worker_chaos_delay_is_random_and_bounded():
    class Fixed(random.Random):
        def uniform(self, a, b):
            assert (a, b) == (0, 0.05)
            return 0.02

    client = FakeWorkerClient("inmemory1", rng=Fixed())
    started = time.monotonic()
    client.query()
    assert time.monotonic() - started >= 0.02
    assert client.polling_period == 0.25


def test_probe_ready_on_a_fake_worker():
    client = fake()
    client.run(RunCommand(argv=["x"]))
    assert probe_ready(client) is True


# --- a real Thrift worker --------------------------------------------------------------------------------------

class Worker:
    """A small but real Worker handler: keeps runs in memory, finishes them when told to."""

    def __init__(self):
        self.initialized = True
        self.error = ""
        self.runs = {}
        self.commands = []
        self.aborted = []
        self.fail_abort = set()
        self.query_delay = 0.0

    def QueryWorker(self):
        gevent.sleep(self.query_delay)
        return worker.WorkerStatus(runs=[run_status_to_thrift(s) for s in self.runs.values()],
                                   initialized=self.initialized, error=self.error)

    def Run(self, cmd):
        self.commands.append(cmd)
        if cmd.argv == ["boom"]:
            raise RuntimeError("boom")
        run_id = str(len(self.runs))
        self.runs[run_id] = RunStatus(state=RunState.RUNNING, run_id=run_id, job_id=cmd.jobId or "")
        return run_status_to_thrift(self.runs[run_id])

    def Abort(self, run_id):
        self.aborted.append(run_id)
        if run_id in self.fail_abort or run_id not in self.runs:
            raise RuntimeError(f"cannot abort {run_id}")
        self.runs[run_id] = RunStatus(state=RunState.ABORTED, run_id=run_id)
        return run_status_to_thrift(self.runs[run_id])

    def Erase(self, run_id):
        self.runs.pop(run_id, None)

    def finish(self, run_id, exit_code):
        self.runs[run_id] = RunStatus(state=RunState.COMPLETE, run_id=run_id, exit_code=exit_code,
                                      out_uri="http://w/out", err_uri="http://w/err")


@pytest.fixture
def served():
    """Start real Worker Thrift servers on loopback; all are stopped at teardown."""
    servers = []

    def start(handler, port=0):
        server = ThriftServer(worker.Worker, handler, ("127.0.0.1", port))
        server.start()
        servers.append(server)
        return server, f"127.0.0.1:{server.address[1]}"

    yield start
    for server in servers:
        server.stop()


def test_rpc_run_query_abort(served):
    handler = Worker()
    _, addr = served(handler)
    client = RpcWorkerClient(addr, polling_period=0.1, timeout=5)
    try:
        started = client.run(RunCommand(argv=["sh", "-c", "exit 3"], env={"A": "1"}, job_id="j1", task_id="t1"))
        assert (started.state, started.run_id, started.job_id) == (RunState.RUNNING, "0", "j1")
        handler.finish("0", 3)
        status = client.query()
        assert status.initialized and status.error == ""
        assert status.runs == [RunStatus(state=RunState.COMPLETE, run_id="0", exit_code=3,
                                         out_uri="http://w/out", err_uri="http://w/err")]
        client.run(RunCommand(argv=["sleep", "9"]))
        assert client.abort("1").state == RunState.ABORTED
    finally:
        client.close()


def test_rpc_run_sends_every_optional_field_like_the_reference(served):
    handler = Worker()
    _, addr = served(handler)
    client = RpcWorkerClient(addr, timeout=5)
    client.run(RunCommand(argv=["true"]))
    client.close()
    [sent] = handler.commands
    assert (sent.argv, sent.env, sent.snapshotId, sent.timeoutMs, sent.jobId, sent.taskId, sent.tag) == (
        ["true"], {}, "", 0, "", "", "")
    assert sent.bazelRequest is None


def test_rpc_error_reply_is_unreachable_and_the_client_recovers(served):
    handler = Worker()
    _, addr = served(handler)
    client = RpcWorkerClient(addr, timeout=5)
    with pytest.raises(WorkerUnreachable) as info:
        client.run(RunCommand(argv=["boom"]))
    assert info.value.node_id == addr
    assert "Internal error processing Run: boom" in info.value.reason
    with pytest.raises(WorkerUnreachable, match="cannot abort 5"):
        client.abort("5")
    assert client.query().initialized
    client.close()


def test_rpc_refused_connection():
    addr = f"127.0.0.1:{free_port()}"
    client = RpcWorkerClient(addr, timeout=5)
    with pytest.raises(WorkerUnreachable) as info:
        client.query()
    assert info.value.node_id == addr
    assert "Refused" in info.value.reason or "refused" in info.value.reason


def test_rpc_bad_node_id():
    with pytest.raises(WorkerUnreachable, match="invalid address"):
        RpcWorkerClient("no-port-here", timeout=1).query()


WORKER_PROCESS = """
from gevent import monkey; monkey.patch_all()
import sys
from scootpy.idl import worker
from scootpy.thriftrpc import ThriftServer

class Handler:
    def QueryWorker(self):
        return worker.WorkerStatus(runs=[], initialized=sys.argv[2] == "ready", error="")

ThriftServer(worker.Worker, Handler(), ("127.0.0.1", int(sys.argv[1]))).serve_forever()
"""


def test_rpc_redials_after_the_worker_process_restarts(procs):
    port = free_port()
    first = procs.start([sys.executable, "-c", WORKER_PROCESS, str(port), "ready"])
    wait_port(port, proc=first)
    client = RpcWorkerClient(f"127.0.0.1:{port}", timeout=5)
    assert client.query().initialized is True
    procs.stop(first)
    with pytest.raises(WorkerUnreachable):
        client.query()
    second = procs.start([sys.executable, "-c", WORKER_PROCESS, str(port), "starting"])
    wait_port(port, proc=second)
    assert client.query().initialized is False
    client.close()


def test_rpc_calls_from_several_greenlets_share_one_connection(served):
    handler = Worker()
    handler.query_delay = 0.01
    _, addr = served(handler)
    client = RpcWorkerClient(addr, timeout=5)
    calls = [gevent.spawn(client.query) for _ in range(10)]
    gevent.joinall(calls, timeout=20, raise_error=True)
    assert all(c.value.initialized for c in calls)
    client.close()


# --- hostile peers ---------------------------------------------------------------------------------------------

@pytest.fixture
def raw_peer():
    """Start a raw TCP peer on loopback running ``behave(sock)`` per connection."""
    servers = []

    def start(behave):
        server = gevent.server.StreamServer(("127.0.0.1", 0), lambda sock, _addr: behave(sock))
        server.start()
        servers.append(server)
        return f"127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.stop(timeout=1)


def answer_with(data, then_close=True):
    def behave(sock):
        sock.recv(65536)
        sock.sendall(data)
        if not then_close:
            gevent.sleep(30)
        sock.close()
    return behave


@pytest.mark.parametrize("junk, then_close", [
    (b"\xff" * 64, True),
    (b"\xff" * 64, False),
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", False),
    (b"\x80\x01\x00\x02\x00\x00\x00\x0bQueryWorker\x00\x00\x00\x01\x0c\x00\x00", True),  # truncated reply
    (b"", True),
])
def test_garbage_answer_is_unreachable(raw_peer, junk, then_close):
    addr = raw_peer(answer_with(junk, then_close))
    client = RpcWorkerClient(addr, timeout=3)
    with pytest.raises(WorkerUnreachable) as info:
        client.query()
    assert info.value.node_id == addr
    client.close()


def reply_bytes(method, result):
    buf = TMemoryBuffer()
    proto = TBinaryProtocol(buf, strict_write=True)
    proto.write_message_begin(method, TMessageType.REPLY, 1)
    result.write(proto)
    proto.write_message_end()
    return buf.getvalue()


@pytest.mark.parametrize("method, result, field", [
    ("QueryWorker", worker.Worker.QueryWorker_result(success=worker.WorkerStatus(initialized=True, error="")),
     "Required field Runs is not set"),
    ("QueryWorker", worker.Worker.QueryWorker_result(success=worker.WorkerStatus(
        runs=[worker.RunStatus(status=3)], initialized=True, error="")), "Required field RunId is not set"),
    ("QueryWorker", worker.Worker.QueryWorker_result(), "reply has no result"),
])
def test_reply_missing_required_fields_is_unreachable(raw_peer, method, result, field):
    addr = raw_peer(answer_with(reply_bytes(method, result), then_close=False))
    client = RpcWorkerClient(addr, timeout=3)
    with pytest.raises(WorkerUnreachable, match=field):
        client.query()
    client.close()


def test_run_reply_missing_status_is_unreachable(raw_peer):
    result = worker.Worker.Run_result(success=worker.RunStatus(runId="0"))
    addr = raw_peer(answer_with(reply_bytes("Run", result), then_close=False))
    with pytest.raises(WorkerUnreachable, match="Required field Status is not set"):
        RpcWorkerClient(addr, timeout=3).run(RunCommand(argv=["true"]))


def test_hanging_peer_times_out(raw_peer):
    addr = raw_peer(lambda sock: gevent.sleep(30))
    client = RpcWorkerClient(addr, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(WorkerUnreachable, match="timed out"):
        client.query()
    assert time.monotonic() - started < 10  # the short timeout applies, not the 60 s default
    client.close()


def test_listener_that_never_accepts_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        addr = f"127.0.0.1:{listener.getsockname()[1]}"
        client = RpcWorkerClient(addr, timeout=0.3)
        with pytest.raises(WorkerUnreachable):
            client.query()
        client.close()


# --- readiness ---------------------------------------------------------------------------------------------------

def test_probe_ready_waits_while_initializing(served):
    handler = Worker()
    handler.initialized = False
    _, addr = served(handler)
    client = RpcWorkerClient(addr, timeout=5)
    assert probe_ready(client) is False
    handler.initialized = True
    assert probe_ready(client) is True
    client.close()


def test_probe_ready_gives_up_on_a_worker_error(served):
    handler = Worker()
    handler.initialized = False
    handler.error = "could not clone repo"
    _, addr = served(handler)
    client = RpcWorkerClient(addr, timeout=5)
    with pytest.raises(WorkerGaveUp) as info:
        probe_ready(client)
    assert (info.value.node_id, info.value.error) == (addr, "could not clone repo")
    client.close()


def test_probe_ready_aborts_every_listed_run_ignoring_failures(served):
    handler = Worker()
    _, addr = served(handler)
    client = RpcWorkerClient(addr, timeout=5)
    for _ in range(3):
        client.run(RunCommand(argv=["x"]))
    handler.finish("1", 0)
    handler.fail_abort.add("0")
    assert probe_ready(client) is True
    assert sorted(handler.aborted) == ["0", "1", "2"]
    client.close()


def test_probe_ready_unreachable_means_retry_later():
    assert probe_ready(RpcWorkerClient(f"127.0.0.1:{free_port()}", timeout=1)) is False

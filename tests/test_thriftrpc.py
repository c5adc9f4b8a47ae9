"""ThriftServer and ThriftClient over real loopback sockets: calls, errors, connection reuse and re-dial."""

import socket
import time

import gevent
import gevent.event
import pytest
from thriftpy2.protocol.exc import TProtocolException
from thriftpy2.thrift import TApplicationException, TMessageType

from scootpy.idl import bazel, scoot, worker
from scootpy.metrics import Registry
from scootpy.thriftrpc import (Limits, PeerClosed, PeerError, ThriftClient, ThriftServer, go_field_name,
                               missing_required, parse_addr)
from tests.test_wire_fixtures import encode_message, read_message

JOB = scoot.JobDefinition(
    tasks=[scoot.TaskDefinition(command=scoot.Command(argv=["echo", "hi"], envVars={"A": "1", "B": ""}),
                                snapshotId="", taskId="t1", timeoutMs=500)],
    priority=2, tag="tag", requestor="me")


def rich_status(job_id: str) -> scoot.JobStatus:
    result = bazel.ActionResult(outputFiles=[bazel.OutputFile(path="a", digest=bazel.Digest("h", 3))],
                                stdoutRaw=b"\x00\xffraw", exitCode=0, cached=False)
    run = scoot.RunStatus(status=scoot.RunStatusState.COMPLETE, runId="0", exitCode=0, outUri="o",
                          bazelResult=result)
    return scoot.JobStatus(id=job_id, status=scoot.Status.COMPLETED,
                           taskStatus={"t1": scoot.Status.COMPLETED}, taskData={"t1": run})


class Handler:
    """CloudScoot behaviour chosen by the job's tag, to reach every server path."""

    def __init__(self):
        self.in_flight = 0
        self.peak = 0
        self.release = gevent.event.Event()
        self.wait_for = 0

    def RunJob(self, job):
        if not job.tasks:
            raise scoot.InvalidRequest(message="no tasks")
        if job.tag == "boom":
            raise RuntimeError("kaboom")
        if job.tag == "missing":
            return scoot.JobId()
        if job.tag == "wrongtype":
            return 42
        if job.tag == "none":
            return None
        if job.tag == "slow":
            gevent.sleep(1.0)
        if job.tag == "crowd":
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            if self.in_flight >= self.wait_for:
                self.release.set()
            self.release.wait(20)
            self.in_flight -= 1
        return scoot.JobId(id=f"{job.tag}:{job.tasks[0].command.argv[0]}")

    def GetStatus(self, job_id):
        return rich_status(job_id)

    def KillJob(self, job_id):
        raise scoot.ScootServerError(retryAfterMs=5)

    def OfflineWorker(self, req):
        raise scoot.CanNotScheduleNow(retryAfterMs=1)  # declared for RunJob, not for OfflineWorker

    def ReinstateWorker(self, req):
        return None

    def GetSchedulerStatus(self):
        return scoot.SchedulerStatus(currentTasks=0, maxTasks=-1)

    def SetSchedulerStatus(self, max_tasks):
        return None


@pytest.fixture
def handler():
    return Handler()


@pytest.fixture
def metrics():
    return Registry("test")


@pytest.fixture
def server(handler, metrics):
    srv = ThriftServer(scoot.CloudScoot, handler, ("127.0.0.1", 0), limits=Limits(stall_timeout=0.5),
                       metrics=metrics)
    srv.start()
    yield srv
    srv.stop()


def addr(server) -> str:
    return "%s:%d" % server.address


@pytest.fixture
def client(server):
    c = ThriftClient(scoot.CloudScoot, addr(server), timeout=10)
    yield c
    c.close()


def raw_exchange(sock, source, name, args, seqid=1, strict=True):
    sock.sendall(encode_message(name, TMessageType.CALL, seqid, args, strict=strict))
    return read_message(source, scoot.CloudScoot)


def test_round_trip_of_nested_structs(client, metrics):
    assert client.RunJob(JOB).id == "tag:echo"
    assert client.GetStatus("j1") == rich_status("j1")
    assert client.GetSchedulerStatus() == scoot.SchedulerStatus(0, -1)
    assert client.SetSchedulerStatus(5) is None
    assert metrics.value("rpc_requests_total", method="RunJob") == 1


def test_declared_exception_keeps_the_connection(client):
    client.GetSchedulerStatus()
    transport = client._transport
    with pytest.raises(scoot.InvalidRequest) as info:
        client.RunJob(scoot.JobDefinition(tasks=[]))
    assert info.value.message == "no tasks"
    with pytest.raises(scoot.ScootServerError) as info:
        client.KillJob("x")
    assert info.value.retryAfterMs == 5
    assert client._transport is transport and client._seqid == 3


@pytest.mark.parametrize("tag, text", [
    ("boom", "Internal error processing RunJob: kaboom"),
    ("missing", "Internal error processing RunJob: reply lacks required field success.id"),
    ("wrongtype", "Internal error processing RunJob: reply cannot be encoded: "),
    ("none", "Internal error processing RunJob: reply lacks required field success"),
])
def test_undeclared_failures_become_internal_error_and_the_connection_keeps_serving(server, tag, text):
    with socket.create_connection(server.address) as sock, sock.makefile("rb") as source:
        job = scoot.JobDefinition(tasks=JOB.tasks, tag=tag)
        name, mtype, seqid, body = raw_exchange(sock, source, "RunJob", scoot.CloudScoot.RunJob_args(job=job), 1)
        assert (name, mtype, seqid) == ("RunJob", TMessageType.EXCEPTION, 1)
        assert body.type == TApplicationException.INTERNAL_ERROR and body.message.startswith(text)
        ok = scoot.CloudScoot.RunJob_args(job=JOB)
        _, mtype, seqid, body = raw_exchange(sock, source, "RunJob", ok, 2)
        assert (mtype, seqid, body.success.id) == (TMessageType.REPLY, 2, "tag:echo")


def test_exception_declared_elsewhere_is_internal_error(client):
    with pytest.raises(TApplicationException) as info:
        client.OfflineWorker(scoot.OfflineWorkerReq(id="w", requestor="r"))
    assert info.value.type == TApplicationException.INTERNAL_ERROR
    assert info.value.message.startswith("Internal error processing OfflineWorker: ")
    assert client._transport is None  # the client re-dials next time, like the Go client
    assert client.GetSchedulerStatus().maxTasks == -1


def test_missing_required_argument_is_a_protocol_error_then_close(server):
    with socket.create_connection(server.address) as sock, sock.makefile("rb") as source:
        args = scoot.CloudScoot.RunJob_args(job=scoot.JobDefinition(priority=1))
        _, mtype, _, body = raw_exchange(sock, source, "RunJob", args)
        assert mtype == TMessageType.EXCEPTION and body.type == TApplicationException.PROTOCOL_ERROR
        assert body.message == "Required field Tasks is not set"
        assert sock.recv(1) == b""


def test_unknown_method_answers_and_keeps_serving(server):
    with socket.create_connection(server.address) as sock, sock.makefile("rb") as source:
        sock.sendall(encode_message("NoSuchMethod", TMessageType.CALL, 4, scoot.JobId(id="x")))
        _, mtype, seqid, body = read_message(source, scoot.CloudScoot)
        assert (mtype, seqid, body.type) == (TMessageType.EXCEPTION, 4, TApplicationException.UNKNOWN_METHOD)
        assert body.message == "Unknown function NoSuchMethod"
        args = scoot.CloudScoot.GetSchedulerStatus_args()
        assert raw_exchange(sock, source, "GetSchedulerStatus", args, 5)[3].success.maxTasks == -1


def test_old_style_unversioned_header_is_accepted_and_answered_strictly(server):
    with socket.create_connection(server.address) as sock, sock.makefile("rb") as source:
        sock.sendall(encode_message("GetStatus", TMessageType.CALL, 9,
                                    scoot.CloudScoot.GetStatus_args(jobId="old"), strict=False))
        peek = source.peek(4)[:4]
        assert peek == b"\x80\x01\x00\x02"  # strict, versioned REPLY header
        name, mtype, seqid, body = read_message(source, scoot.CloudScoot)
        assert (name, mtype, seqid, body.success.id) == ("GetStatus", TMessageType.REPLY, 9, "old")


def test_idle_connection_is_never_timed_out(server, client):
    client.GetSchedulerStatus()
    transport = client._transport
    gevent.sleep(1.5)  # three times the server's stall timeout, with no message in progress
    assert client.GetSchedulerStatus().maxTasks == -1
    assert client._transport is transport


def test_peer_stalling_mid_message_is_cut_off(server):
    data = encode_message("RunJob", TMessageType.CALL, 1, scoot.CloudScoot.RunJob_args(job=JOB))
    with socket.create_connection(server.address) as sock:
        sock.sendall(data[: len(data) // 2])
        sock.settimeout(10)
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 8


def test_two_hundred_concurrent_connections(server, handler):
    handler.wait_for = 200
    clients = [ThriftClient(scoot.CloudScoot, addr(server), timeout=30) for _ in range(200)]
    try:
        job = scoot.JobDefinition(tasks=JOB.tasks, tag="crowd")
        calls = [gevent.spawn(c.RunJob, job) for c in clients]
        gevent.joinall(calls, timeout=60, raise_error=True)
        assert [g.value.id for g in calls] == ["crowd:echo"] * 200
        assert handler.peak == 200  # every call was in the handler at the same time
        more = [gevent.spawn(c.GetSchedulerStatus) for c in clients]
        gevent.joinall(more, timeout=60, raise_error=True)
        assert all(c._seqid == 2 for c in clients)
    finally:
        for c in clients:
            c.close()


def test_client_sets_tcp_nodelay(client):
    client.GetSchedulerStatus()
    assert client._transport.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_client_read_timeout_then_redial(server):
    c = ThriftClient(scoot.CloudScoot, addr(server), timeout=0.3)
    try:
        with pytest.raises(PeerError, match="timed out"):
            c.RunJob(scoot.JobDefinition(tasks=JOB.tasks, tag="slow"))
        assert c._transport is None
        assert c.GetSchedulerStatus().maxTasks == -1
        assert c._seqid == 1
    finally:
        c.close()


def test_client_redials_after_the_server_dropped_it():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    reply = encode_message("GetSchedulerStatus", TMessageType.REPLY, 1,
                           scoot.CloudScoot.GetSchedulerStatus_result(success=scoot.SchedulerStatus(1, 2)))

    def serve():
        first, _ = listener.accept()
        first.recv(100)
        first.close()  # drop the first connection mid-call
        second, _ = listener.accept()
        second.recv(100)
        second.sendall(reply)
        gevent.sleep(1)
        second.close()

    g = gevent.spawn(serve)
    c = ThriftClient(scoot.CloudScoot, "127.0.0.1:%d" % listener.getsockname()[1], timeout=5)
    try:
        with pytest.raises(PeerClosed):
            c.GetSchedulerStatus()
        assert c.GetSchedulerStatus() == scoot.SchedulerStatus(1, 2)
    finally:
        c.close()
        g.kill()
        listener.close()


def test_client_connect_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue so the next SYN is dropped
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(listener.getsockname())
            fillers.append(s)
        gevent.sleep(0.1)
        c = ThriftClient(scoot.CloudScoot, "127.0.0.1:%d" % listener.getsockname()[1], connect_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(socket.timeout):
            c.GetSchedulerStatus()
        assert time.monotonic() - started < 5
    finally:
        for s in fillers:
            s.close()
        listener.close()


def one_shot_server(reply: bytes):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(reply)
            gevent.sleep(2)

    return listener, gevent.spawn(serve)


@pytest.mark.parametrize("reply, error, text", [
    (encode_message("RunJob", TMessageType.REPLY, 1, scoot.CloudScoot.RunJob_result(success=scoot.JobId())),
     TProtocolException, "Required field Id is not set"),
    (encode_message("GetStatus", TMessageType.REPLY, 1, scoot.CloudScoot.GetStatus_result(
        success=scoot.JobStatus(id="j", status=1, taskData={"t": scoot.RunStatus(runId="0")}))),
     TProtocolException, "Required field Status is not set"),
    (encode_message("RunJob", TMessageType.REPLY, 7, scoot.CloudScoot.RunJob_result(success=scoot.JobId("x"))),
     TApplicationException, "RunJob failed: out of sequence response"),
    (encode_message("KillJob", TMessageType.REPLY, 1, scoot.CloudScoot.RunJob_result(success=scoot.JobId("x"))),
     TApplicationException, "RunJob failed: wrong method name"),
])
def test_client_refuses_bad_replies(reply, error, text):
    listener, g = one_shot_server(reply)
    method = "GetStatus" if b"GetStatus" in reply else "RunJob"
    c = ThriftClient(scoot.CloudScoot, "127.0.0.1:%d" % listener.getsockname()[1], timeout=5)
    try:
        with pytest.raises(error) as info:
            c.call(method, JOB if method == "RunJob" else "j")
        assert info.value.message == text
        assert c._transport is None
    finally:
        c.close()
        g.kill()
        listener.close()


def test_client_returns_none_for_a_reply_without_result():
    """Callers (e.g. the worker client) treat None from a non-void method as "no result"."""
    listener, g = one_shot_server(encode_message("RunJob", TMessageType.REPLY, 1, scoot.CloudScoot.RunJob_result()))
    c = ThriftClient(scoot.CloudScoot, "127.0.0.1:%d" % listener.getsockname()[1], timeout=5)
    try:
        assert c.RunJob(JOB) is None
    finally:
        c.close()
        g.kill()
        listener.close()


def test_client_maps_unknown_attributes_to_attribute_error():
    c = ThriftClient(worker.Worker, "127.0.0.1:1")
    with pytest.raises(AttributeError):
        c.RunJob  # noqa: B018 - not a Worker method
    assert callable(c.QueryWorker)


def test_missing_required_walks_nested_values():
    status = scoot.JobStatus(id="j", status=1, taskData={"t": scoot.RunStatus(runId="0")})
    assert missing_required(status) == ["taskData[t].status"]
    runs = worker.WorkerStatus(runs=[worker.RunStatus(status=1)], initialized=True)
    assert missing_required(runs) == ["runs[0].runId", "error"]
    assert go_field_name("snapshot_id") == "SnapshotId" and go_field_name("runId") == "RunId"


@pytest.mark.parametrize("text, expected", [
    ("localhost:9090", ("localhost", 9090)), (":9090", ("localhost", 9090)), ("[::1]:1", ("::1", 1)),
])
def test_parse_addr(text, expected):
    assert parse_addr(text) == expected


@pytest.mark.parametrize("text", ["localhost", "host:port", "host:70000", ""])
def test_parse_addr_rejects_bad_text(text):
    with pytest.raises(ValueError, match="want host:port"):
        parse_addr(text)


def test_server_sets_tcp_nodelay_on_accepted_connections(handler):
    accepted = []

    class Recording(ThriftServer):
        def _handle(self, sock, peer):
            accepted.append(sock)
            super()._handle(sock, peer)

    srv = Recording(scoot.CloudScoot, handler, ("127.0.0.1", 0))
    srv.start()
    try:
        with socket.create_connection(srv.address) as sock, sock.makefile("rb") as source:
            raw_exchange(sock, source, "GetSchedulerStatus", scoot.CloudScoot.GetSchedulerStatus_args())
            assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        srv.stop()


def test_pipelined_calls_are_answered_in_order(server):
    calls = b"".join(encode_message("GetStatus", TMessageType.CALL, i,
                                    scoot.CloudScoot.GetStatus_args(jobId=str(i))) for i in range(1, 6))
    with socket.create_connection(server.address) as sock, sock.makefile("rb") as source:
        sock.sendall(calls)
        replies = [read_message(source, scoot.CloudScoot) for _ in range(5)]
    assert [(r[2], r[3].success.id) for r in replies] == [(i, str(i)) for i in range(1, 6)]


def test_connections_beyond_max_connections_wait_for_a_free_slot(handler):
    with ThriftServer(scoot.CloudScoot, handler, ("127.0.0.1", 0), limits=Limits(max_connections=2)) as srv:
        busy = [ThriftClient(scoot.CloudScoot, f"127.0.0.1:{srv.port}", timeout=5) for _ in range(2)]
        for c in busy:
            c.GetSchedulerStatus()  # two idle connections now hold both slots
        waiting = ThriftClient(scoot.CloudScoot, f"127.0.0.1:{srv.port}", timeout=0.5)
        with pytest.raises(PeerError, match="timed out"):
            waiting.GetSchedulerStatus()
        busy[0].close()
        waiting.timeout = 5
        assert waiting.GetSchedulerStatus().maxTasks == -1
        for c in busy[1:] + [waiting]:
            c.close()


def test_server_context_manager_and_port(handler):
    with ThriftServer(scoot.CloudScoot, handler, ("127.0.0.1", 0)) as srv:
        assert srv.port == srv.address[1] > 0
        with ThriftClient(scoot.CloudScoot, f"127.0.0.1:{srv.port}") as c:
            assert c.GetSchedulerStatus().maxTasks == -1
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()


def test_non_utf8_string_argument_is_a_protocol_error_then_close(server):
    data = encode_message("GetStatus", TMessageType.CALL, 1, scoot.CloudScoot.GetStatus_args(jobId="ab\u00e9"))
    data = data.replace("ab\u00e9".encode(), b"ab\xff\xfe")  # same length, invalid UTF-8
    with socket.create_connection(server.address) as sock, sock.makefile("rb") as source:
        sock.sendall(data)
        _, mtype, _, body = read_message(source, scoot.CloudScoot)
        assert (mtype, body.type) == (TMessageType.EXCEPTION, TApplicationException.PROTOCOL_ERROR)
        assert body.message.startswith("Invalid UTF-8 in a string argument of GetStatus")
        assert sock.recv(1) == b""


def test_binary_fields_carry_any_bytes():
    raw = bytes(range(256))

    class Worker:
        def Run(self, cmd):
            stdout = cmd.bazelRequest.instanceName.encode() + raw
            return worker.RunStatus(status=worker.Status.COMPLETE, runId="0",
                                    bazelResult=bazel.ActionResult(stdoutRaw=stdout, stderrRaw=b""))

    with ThriftServer(worker.Worker, Worker(), ("127.0.0.1", 0)) as srv:
        with ThriftClient(worker.Worker, f"127.0.0.1:{srv.port}") as c:
            cmd = worker.RunCommand(argv=["x"], bazelRequest=bazel.ExecuteRequest(instanceName="i"))
            result = c.Run(cmd).bazelResult
    assert (result.stdoutRaw, result.stderrRaw) == (b"i" + raw, b"")

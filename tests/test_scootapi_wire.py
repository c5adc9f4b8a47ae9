"""Our scootapi against the reference scheduler's recorded bytes (fixtures/wire/scootapi-scheduler).

A replay server reads one call, checks it is byte-identical to what the Go scootapi sent for the same
command, and answers with the reference scheduler's recorded reply; the CLI's output is then checked.
"""

import json

import gevent.server
import pytest
from thriftpy2.protocol import TBinaryProtocol
from thriftpy2.transport import TMemoryBuffer

from scootpy.client.scootapi import execute
from scootpy.idl import scoot
from tests.procs import FIXTURES

WIRE = FIXTURES / "wire" / "scootapi-scheduler"


class Replay:
    """Serve one recorded reply per connection and keep the request bytes."""

    def __init__(self, reply: bytes, call_length: int):
        self.reply, self.call_length, self.received = reply, call_length, b""
        self.server = gevent.server.StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()
        self.addr = f"127.0.0.1:{self.server.address[1]}"

    def _handle(self, sock, _peer):
        while len(self.received) < self.call_length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            self.received += chunk
        sock.sendall(self.reply)
        sock.recv(1)  # wait for the client to close
        sock.close()


@pytest.fixture
def replay(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    servers = []

    def start(name, reply_kind="reply"):
        call = (WIRE / f"{name}.call.bin").read_bytes()
        server = Replay((WIRE / f"{name}.{reply_kind}.bin").read_bytes(), len(call))
        servers.append(server)
        return server, call

    yield start
    for server in servers:
        server.server.stop()


def test_get_job_status_request_and_output(replay, capsys):
    server, call = replay("02-GetStatus")
    rc = execute(["get_job_status", "538b4972-1ec4-436a-5196-298d14eab81b", "--json", "--addr", server.addr])
    out = capsys.readouterr().out
    assert rc == 0 and server.received == call
    status = json.loads(out)
    assert status["status"] == "COMPLETED" and status["taskData"]["task-b"]["status"] == "TIMEDOUT"
    assert '"error":" -\\u003e Error(s) encountered, canceling task."' in out


def test_kill_job_exception_text(replay, capsys):
    server, call = replay("03-KillJob-unknown-id", "exception")
    rc = execute(["kill_job", "no-such-job", "--addr", server.addr])
    captured = capsys.readouterr()
    assert (rc, captured.out) == (1, "") and server.received == call
    assert "Error: Error getting status: Internal error processing KillJob: Cannot kill Job Id no-such-job, " \
           "not found." in captured.err


def test_get_scheduler_status(replay, capsys):
    server, call = replay("04-GetSchedulerStatus")
    assert execute(["get_scheduler_status", "--json", "--addr", server.addr]) == 0
    assert capsys.readouterr().out == '{"currentTasks":0,"maxTasks":-1}\n' and server.received == call


def test_run_job_request_is_the_go_clients(replay, capsys, tmp_path):
    server, call = replay("01-RunJob")
    proto = TBinaryProtocol(TMemoryBuffer(call))
    proto.read_message_begin()
    args = scoot.CloudScoot.RunJob_args()
    args.read(proto)
    job = args.job
    job_def = tmp_path / "job.json"
    job_def.write_text(json.dumps({
        "Tasks": [{"TaskID": t.taskId, "Args": t.command.argv, "EnvVars": t.command.envVars,
                   "SnapshotID": t.snapshotId, "TimeoutMs": t.timeoutMs or 0} for t in job.tasks],
        "Priority": job.priority, "Tag": job.tag, "Requestor": job.requestor}))
    assert execute(["run_job", "--job_def", str(job_def), "--addr", server.addr]) == 0
    assert capsys.readouterr().out == "538b4972-1ec4-436a-5196-298d14eab81b\n"
    sent = TBinaryProtocol(TMemoryBuffer(server.received))
    assert sent.read_message_begin() == ("RunJob", 1, 1)
    ours = scoot.CloudScoot.RunJob_args()
    ours.read(sent)
    assert ours.job == job
    if len(job.tasks[1].command.envVars) < 2 or list(ours.job.tasks[1].command.envVars) == ["A", "B"]:
        assert server.received == call  # same bytes whenever map order agrees (Go's map order is random)


def test_killing_a_running_job_prints_its_status(replay, capsys):
    server, call = replay("06-KillJob-running-job")
    rc = execute(["kill_job", "8ca02b95-3077-4d4f-5c6b-de26dda304ee", "--json", "--addr", server.addr])
    out = capsys.readouterr().out
    assert rc == 0 and server.received == call
    assert json.loads(out)["taskStatus"] == {"paused": "IN_PROGRESS"}

"""scootapi against a small real CloudScoot server in-process: stdout, exit codes and request contents,
compared with the reference's recorded CLI output (fixtures/cli-output/scootapi)."""

import json
import re
import subprocess
import uuid

import pytest
from thriftpy2.protocol import TBinaryProtocol
from thriftpy2.transport import TMemoryBuffer

from scootpy.client.scootapi import execute
from scootpy.idl import scoot
from scootpy.thriftrpc import ThriftServer
from tests.procs import FIXTURES, binary, free_port
from tests.test_scootapi_jsonout import job_status_from_go_json

CLI = FIXTURES / "cli-output" / "scootapi"
JOBS = FIXTURES / "saga-log" / "jobs"
KILL_NOT_FOUND = ("Cannot kill Job Id {}, not found. (This error can be ignored if kill was a fire-and-forget "
                  "defensive request). The job may be finished,  the request may still be in the queue to be "
                  "scheduled, or  the id may be invalid.   Check the job status, verify the id and/or resubmit "
                  "the kill request after a few moments.")


class Scheduler:
    """A minimal CloudScoot handler that records what it was sent and answers like the reference."""

    def __init__(self):
        self.received = []
        self.statuses = {}
        self.max_tasks = -1
        self.nodes = {"localhost:10101"}
        self.offlined = set()
        self.requests = []

    def RunJob(self, job):
        if not job.tasks:
            raise ValueError("invalid job. Must have at least 1 task; was empty")
        self.received.append(job)
        job_id = str(uuid.uuid4())
        self.statuses[job_id] = scoot.JobStatus(id=job_id, status=scoot.Status.IN_PROGRESS, taskStatus={
            t.taskId: scoot.Status.NOT_STARTED for t in job.tasks}, taskData={})
        return scoot.JobId(id=job_id)

    def GetStatus(self, job_id):
        return self.statuses.get(job_id) or scoot.JobStatus(id=job_id, status=scoot.Status.NOT_STARTED,
                                                            taskStatus={}, taskData={})

    def KillJob(self, job_id):
        if job_id not in self.statuses:
            raise ValueError(KILL_NOT_FOUND.format(job_id))
        return self.statuses[job_id]

    def OfflineWorker(self, req):
        self.requests.append(req)
        if req.id not in self.nodes:
            raise ValueError(f"Node {req.id} was not present in nodes. It can't be offlined.")
        self.nodes.remove(req.id)
        self.offlined.add(req.id)

    def ReinstateWorker(self, req):
        if req.id not in self.offlined:
            raise ValueError(f"Node {req.id} was not present in offlinedNodes. It can't be reinstated.")
        self.offlined.remove(req.id)
        self.nodes.add(req.id)

    def GetSchedulerStatus(self):
        return scoot.SchedulerStatus(currentTasks=0, maxTasks=self.max_tasks)

    def SetSchedulerStatus(self, max_tasks):
        self.max_tasks = max_tasks


@pytest.fixture
def sched(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SCOOT_ID", "test-" + uuid.uuid4().hex)
    handler = Scheduler()
    server = ThriftServer(scoot.CloudScoot, handler, ("127.0.0.1", 0))
    server.start()
    handler.addr = f"127.0.0.1:{server.address[1]}"
    (tmp_path / (".cloudscootaddr" + __import__("os").environ["SCOOT_ID"])).write_text(
        f"{handler.addr}\nlocalhost:11100")
    yield handler
    server.stop()


def run(capsys, *argv):
    rc = execute(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def fixture(name):
    return ((CLI / f"{name}.stdout").read_text(), int((CLI / f"{name}.rc").read_text()))


def test_run_job_prints_only_the_id_and_sends_one_task(sched, capsys):
    rc, out, err = run(capsys, "run_job", "echo", "hello")
    assert rc == 0 and re.fullmatch(r"[0-9a-f-]{36}\n", out)
    job = sched.received[-1]
    assert [(t.taskId, t.command.argv, t.command.envVars, t.snapshotId) for t in job.tasks] == \
        [("task1", ["echo", "hello"], None, "")]
    assert job.tag == "" and job.priority is None and job.requestor is None
    assert "No snapshotID provided" in err


def test_run_job_dash_args_and_stream_rewrite(sched, capsys):
    assert run(capsys, "run_job", "--snapshot_id", "abc123", "--stream_name", "foo", "--", "ls", "-la")[0] == 0
    task = sched.received[-1].tasks[0]
    assert task.command.argv == ["ls", "-la"] and task.snapshotId == "stream-gc-foo-abc123"
    assert run(capsys, "run_job", "true", "--snapshot_id=bs-fs-x--x", "--tag", "t")[0] == 0
    assert sched.received[-1].tasks[0].snapshotId == "bs-fs-x--x" and sched.received[-1].tag == "t"


@pytest.mark.parametrize("name", ["a-completed", "b-killed", "c-unfinished"])
def test_job_def_is_sent_as_the_reference_sends_it(sched, capsys, name):
    rc, out, _ = run(capsys, "run_job", "--job_def", str(JOBS / f"{name}.job_def.json"))
    assert rc == 0
    expected = json.loads((JOBS / f"{name}.JobDefinition.json").read_text())
    job = sched.received[-1]
    sent = {k: getattr(job, k) for k in expected if k != "tasks"}
    assert sent == {k: v for k, v in expected.items() if k != "tasks"}
    for task, want in zip(job.tasks, expected["tasks"]):
        assert (task.command.argv, task.command.envVars, task.snapshotId, task.taskId, task.timeoutMs) == \
            (want["command"]["argv"], want["command"]["envVars"], want["snapshotId"], want["taskId"],
             want["timeoutMs"])
    assert len(job.tasks) == len(expected["tasks"])


def test_job_def_keys_are_case_insensitive_and_types_checked(sched, capsys, tmp_path):
    path = tmp_path / "j.json"
    path.write_text('{"tasks":[{"args":["sh","-c","exit 3"],"taskid":"t","envvars":{"A":"1"},"timeoutms":5}],'
                    '"priority":2,"unknown":1}')
    assert run(capsys, "run_job", "--job_def", str(path))[0] == 0
    task = sched.received[-1].tasks[0]
    assert (task.taskId, task.command.envVars, task.timeoutMs, sched.received[-1].priority) == \
        ("t", {"A": "1"}, 5, 2)
    path.write_text('{"Tasks":[{"Args":["x"],"TimeoutMs":"soon"}]}')
    rc, out, err = run(capsys, "run_job", "--job_def", str(path))
    assert (rc, out) == (1, "") and "Error: json: cannot unmarshal string into Go struct field" in err
    rc, _, err = run(capsys, "run_job", "--job_def", str(tmp_path / "missing.json"))
    assert rc == 1 and "Error: open " in err and "no such file or directory" in err


def test_wire_run_job_call_decodes_and_reencodes_like_go(sched, capsys, tmp_path):
    data = (FIXTURES / "wire" / "scootapi-scheduler" / "01-RunJob.call.bin").read_bytes()
    proto = TBinaryProtocol(TMemoryBuffer(data))
    proto.read_message_begin()
    args = scoot.CloudScoot.RunJob_args()
    args.read(proto)
    job = args.job
    path = tmp_path / "wire.json"
    path.write_text(json.dumps({
        "Tasks": [{"TaskID": t.taskId, "Args": t.command.argv, "EnvVars": t.command.envVars,
                   "SnapshotID": t.snapshotId, "TimeoutMs": t.timeoutMs or 0} for t in job.tasks],
        "Priority": job.priority, "Tag": job.tag, "Requestor": job.requestor}))
    assert run(capsys, "run_job", "--job_def", str(path))[0] == 0
    assert sched.received[-1] == job


def test_get_job_status_json_and_text_match_the_reference(sched, capsys):
    expected_json, _ = fixture("04-get_job_status-finished-json")
    status = job_status_from_go_json(expected_json)
    sched.statuses[status.id] = status
    assert run(capsys, "get_job_status", status.id, "--json")[:2] == (0, expected_json)
    assert run(capsys, "get_job_status", "--json", "no-such-job")[:2] == \
        (0, fixture("05-get_job_status-unknown-json")[0])
    assert run(capsys, "get_job_status", "no-such-job")[:2] == (0, fixture("06-get_job_status-unknown-text")[0])
    rc, out, err = run(capsys, "get_job_status", status.id)
    assert rc == 0 and out.startswith("Job Status: JobStatus({ID:c39b0420") and "ExitCode:7" in out
    assert "sim: ExitCode: 7, Error: " in err


def test_kill_job(sched, capsys):
    rc, out, err = run(capsys, "kill_job", "no-such-job")
    assert (out, rc) == fixture("07-kill_job-unknown")
    reference_err = (CLI / "07-kill_job-unknown.stderr").read_text()
    block = [line for line in reference_err.splitlines(True) if not line.startswith("time=")]
    assert "".join(line for line in err.splitlines(True) if not line.startswith("time=")) == "".join(block)
    job_id = run(capsys, "run_job", "sleep", "30")[1].strip()
    rc, out, _ = run(capsys, "kill_job", job_id, "--json")
    assert rc == 0 and json.loads(out)["id"] == job_id


def test_scheduler_status_round_trip(sched, capsys):
    assert run(capsys, "get_scheduler_status")[:2] == (0, fixture("08-get_scheduler_status-text")[0])
    assert run(capsys, "get_scheduler_status", "--json")[:2] == (0, fixture("09-get_scheduler_status-json")[0])
    assert run(capsys, "set_scheduler_status", "--task-throttle", "5")[:2] == (0, "")
    assert run(capsys, "get_scheduler_status")[:2] == (0, fixture("11-get_scheduler_status-after-set-text")[0])
    assert run(capsys, "get_scheduler_status", "--json")[:2] == \
        (0, fixture("12-get_scheduler_status-after-set-json")[0])
    assert run(capsys, "set_scheduler_status")[:2] == (0, "")
    assert sched.max_tasks == -1


def test_offline_and_reinstate(sched, capsys):
    rc, out, err = run(capsys, "offline_worker", "localhost:10101")
    assert (rc, out) == (0, "") and sched.requests[-1].requestor
    rc, out, err = run(capsys, "offline_worker", "localhost:10101")
    assert rc == 1 and "Error: Error offlining worker: Internal error processing OfflineWorker: Node " \
                       "localhost:10101 was not present in nodes. It can't be offlined.\n" in err
    assert run(capsys, "reinstate_worker", "localhost:10101")[:2] == (0, "")
    rc, _, err = run(capsys, "reinstate_worker", "localhost:10101")
    assert rc == 1 and "not present in offlinedNodes" in err
    rc, _, err = run(capsys, "offline_worker")
    assert rc == 1 and "Error: A worker id must be provided in order to offline\n" in err


ERROR_CASES = [
    ("13-run_job-no-args", ["run_job"]),
    ("14-unknown-subcommand", ["bogus_subcommand"]),
    ("15-no-subcommand", []),
    ("16-help", ["--help"]),
    ("17-run_job-help", ["run_job", "--help"]),
    ("18-get_job_status-no-id", ["get_job_status"]),
    ("20-set_scheduler_status-invalid", ["set_scheduler_status", "--task-throttle", "-5"]),
    ("21-run_job-args-and-job_def", ["run_job", "--job_def", "x.json", "echo"]),
    ("22-offline_worker-unknown", ["offline_worker", "localhost:99"]),
]


@pytest.mark.parametrize("name,argv", ERROR_CASES)
def test_stdout_stderr_block_and_exit_code_match_fixture(sched, capsys, name, argv):
    rc, out, err = run(capsys, *argv)
    assert (out, rc) == fixture(name)
    reference = (CLI / f"{name}.stderr").read_text()
    strip = lambda text: "".join(line for line in text.splitlines(True) if not line.startswith("time="))  # noqa
    assert strip(err) == strip(reference)


def test_connection_refused_is_one_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    port = free_port()
    rc, out, err = run(capsys, "--addr", f"localhost:{port}", "get_job_status", "x")
    assert (rc, out) == (1, "")
    assert f"Error: Error getting status: Error dialing to set up client connection: Error opening transport: " \
           f"dial tcp 127.0.0.1:{port}: connect: connection refused\n" in err
    assert "Traceback" not in err


def test_address_file_rules(monkeypatch, tmp_path, capsys, sched):
    addr_file = tmp_path / (".cloudscootaddr" + __import__("os").environ["SCOOT_ID"])
    addr_file.write_text(f"{sched.addr}\nlocalhost:11100\n")  # trailing newline accepted (reference quirk fixed)
    assert run(capsys, "get_scheduler_status", "--json")[0] == 0
    addr_file.write_text("a\nb\nc")
    rc, _, err = run(capsys, "get_job_status", "x")
    assert rc == 1 and f"Error: scootapi cli addr unset and no valued in {addr_file}\n" in err
    assert run(capsys, "get_scheduler_status", "--addr", sched.addr)[0] == 0   # --addr wins over the file
    rc, _, err = run(capsys, "--log_level", "bogus", "get_job_status", "x", "--addr", sched.addr)
    assert rc == 1 and 'Error: not a valid logrus Level: "bogus"' in err


def test_flag_errors(sched, capsys):
    rc, _, err = run(capsys, "get_job_status", "--bogus", "x")
    assert rc == 1 and "Error: unknown flag: --bogus\n" in err
    rc, _, err = run(capsys, "set_scheduler_status", "--task-throttle", "many")
    assert rc == 1 and 'Error: invalid argument "many" for "--task-throttle" flag' in err
    rc, _, err = run(capsys, "run_smoke_test", "--timeout", "soon")
    assert rc == 1 and 'Error: invalid argument "soon" for "--timeout" flag' in err
    rc, _, err = run(capsys, "-addr", "x", "get_job_status")
    assert rc == 1 and 'Error: unknown command "x" for "scootapi"' in err
    rc, out, _ = run(capsys, "help", "kill_job")
    assert rc == 0 and out.startswith("KillJob\n\nUsage:\n  scootapi kill_job [flags]\n")
    rc, out, err = run(capsys, "help", "bogus")
    assert (rc, out) == (0, "") and err.startswith("Unknown help topic [`bogus`]\nUsage:\n  scootapi [flags]\n")
    assert run(capsys, "help")[:2] == (0, fixture("16-help")[0])


def test_watch_job_returns_when_terminal(sched, capsys):
    status = job_status_from_go_json(fixture("04-get_job_status-finished-json")[0])
    sched.statuses[status.id] = status
    rc, out, err = run(capsys, "watch_job", status.id)
    assert (rc, out) == (0, "")
    assert "Job status: COMPLETED" in err and "ExitCode: 7" in err


def test_watch_job_transport_error_exits_1(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    rc, out, err = run(capsys, "watch_job", "x", "--addr", f"127.0.0.1:{free_port()}")
    assert (rc, out) == (1, "") and "Error: Error getting status: Error dialing" in err


def test_installed_binary(sched, tmp_path):
    done = subprocess.run([binary("scootapi"), "--addr", sched.addr, "get_job_status", "nosuchjob", "--json"],
                          capture_output=True, timeout=30, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert (done.returncode, done.stdout) == (0, b'{"id":"nosuchjob","status":"NOT_STARTED"}\n')
    done = subprocess.run([binary("scootapi"), "bogus"], capture_output=True, timeout=30,
                          env={"HOME": str(tmp_path)})
    assert (done.returncode, done.stdout) == (1, b"")


@pytest.mark.parametrize("reply,expected", [
    (b"", "Error getting status: EOF"),
    (b"\x80\x01\x00\x02garbage-garbage-garbage", "Error getting status: "),
])
def test_broken_servers_give_one_clear_error(monkeypatch, tmp_path, capsys, reply, expected):
    import gevent.server

    def answer(sock, _addr):
        sock.recv(65536)
        sock.sendall(reply)
        sock.close()

    server = gevent.server.StreamServer(("127.0.0.1", 0), answer)
    server.start()
    monkeypatch.setenv("HOME", str(tmp_path))
    try:
        rc, out, err = run(capsys, "--addr", f"127.0.0.1:{server.address[1]}", "get_job_status", "x")
    finally:
        server.stop()
    assert (rc, out) == (1, "") and f"Error: {expected}" in err and "Traceback" not in err


def test_malformed_addr_flag(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    rc, out, err = run(capsys, "--addr", "nohostport", "get_scheduler_status")
    assert (rc, out) == (1, "")
    assert "Error opening socket: address nohostport: missing port in address" in err

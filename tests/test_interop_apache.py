"""Interop with an independent Thrift implementation: Apache Thrift Python stubs generated from our IDLs
(``thrift --gen py``) drive our ThriftServer, and our ThriftClient drives an Apache TThreadedServer process.
"""

import base64
import importlib
import inspect
import json
import shutil
import subprocess
import sys
import textwrap

import pytest
from thriftpy2.protocol.exc import TProtocolException
from thriftpy2.thrift import TApplicationException

from scootpy.idl import bazel, idl_dir, scoot, worker
from scootpy.thriftrpc import ThriftClient, ThriftServer
from tests.procs import free_port, wait_port


def plain(value):
    """A JSON-able view of a struct from either implementation (fields by name, enums as ints)."""
    if hasattr(value, "thrift_spec"):
        return {k: plain(v) for k, v in sorted(vars(value).items()) if not k.startswith("_")}
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory):
    """Apache Thrift Python code for our four IDLs, as package ``apgen``."""
    if shutil.which("thrift") is None:
        pytest.fail("the Apache Thrift compiler is missing: run .ci/system-deps (Debian package thrift-compiler)")
    root = tmp_path_factory.mktemp("apache")
    (root / "apgen").mkdir()
    for name in ("bazel", "scoot", "worker", "sched"):
        subprocess.run(["thrift", "--gen", "py:package_prefix=apgen.", "-out", str(root / "apgen"),
                        str(idl_dir() / f"{name}.thrift")], check=True)
    (root / "apgen" / "__init__.py").touch()
    return root


@pytest.fixture(scope="module")
def ap(gen_dir):
    """The generated Apache modules, imported in this process."""
    sys.path.insert(0, str(gen_dir))
    try:
        yield {name: importlib.import_module(f"apgen.{name}") for name in
               ("scoot.ttypes", "scoot.CloudScoot", "worker.ttypes", "worker.Worker", "bazel.ttypes")}
    finally:
        sys.path.remove(str(gen_dir))


# ---- our server, Apache client ----------------------------------------------------------------------

def rich_status(job_id: str) -> scoot.JobStatus:
    result = bazel.ActionResult(
        outputFiles=[bazel.OutputFile(path="out/a", digest=bazel.Digest(hash="ab", sizeBytes=3), isExecutable=True)],
        outputDirectories=[bazel.OutputDirectory(path="d", treeDigest=bazel.Digest(hash="cd"))],
        exitCode=3, stdoutRaw=b"\x00\x01\xffbytes", cached=False, GRPCStatus=b"",
        executionMetadata=bazel.ExecutedActionMetadata(worker="w", queuedTimestamp=bazel.Timestamp(1, 2)))
    runs = {"a": scoot.RunStatus(status=scoot.RunStatusState.COMPLETE, runId="0", exitCode=0, outUri="o",
                                 snapshotId="s", bazelResult=result),
            "b": scoot.RunStatus(status=scoot.RunStatusState.TIMEDOUT, runId="1", error=" -> é ünicode")}
    return scoot.JobStatus(id=job_id, status=scoot.Status.COMPLETED,
                           taskStatus={"a": scoot.Status.COMPLETED, "b": scoot.Status.IN_PROGRESS}, taskData=runs)


class OurScheduler:
    max_tasks = -1

    def RunJob(self, job):
        if not job.tasks:
            raise scoot.InvalidRequest(message="Invalid JobDefinition: no tasks")
        if job.tag == "boom":
            raise RuntimeError("kaboom")
        return scoot.JobId(id=json.dumps(plain(job), sort_keys=True))

    def GetStatus(self, job_id):
        return rich_status(job_id)

    def KillJob(self, job_id):
        raise scoot.ScootServerError(retryAfterMs=7)

    def GetSchedulerStatus(self):
        return scoot.SchedulerStatus(currentTasks=1, maxTasks=self.max_tasks)

    def SetSchedulerStatus(self, max_tasks):
        self.max_tasks = max_tasks


class OurWorker:
    def QueryWorker(self):
        return worker.WorkerStatus(runs=[worker.RunStatus(status=worker.Status.RUNNING, runId="4", tag="t")],
                                   initialized=True, error="")

    def Run(self, cmd):
        return worker.RunStatus(status=worker.Status.PENDING, runId="0", exitCode=0,
                                error=json.dumps(plain(cmd), sort_keys=True))

    def Abort(self, run_id):
        raise KeyError(run_id)

    def Erase(self, run_id):
        return None


@pytest.fixture
def our_servers():
    servers = [ThriftServer(scoot.CloudScoot, OurScheduler(), ("127.0.0.1", 0)),
               ThriftServer(worker.Worker, OurWorker(), ("127.0.0.1", 0))]
    for s in servers:
        s.start()
    yield [s.address[1] for s in servers]
    for s in servers:
        s.stop()


def apache_client(service_module, port: int, strict: bool = True, accelerated: bool = False):
    from thrift.protocol import TBinaryProtocol
    from thrift.transport import TSocket, TTransport

    transport = TTransport.TBufferedTransport(TSocket.TSocket("127.0.0.1", port))
    factory = TBinaryProtocol.TBinaryProtocolAccelerated if accelerated else TBinaryProtocol.TBinaryProtocol
    protocol = factory(transport, strictRead=False, strictWrite=strict)
    transport.open()
    return service_module.Client(protocol), transport


def apache_job(t):
    command = t.Command(argv=["sh", "-c", "echo $X"], envVars={"X": "1", "EMPTY": ""})
    tasks = [t.TaskDefinition(command=command, snapshotId="bs-fs-1--2", taskId="a", timeoutMs=60000),
             t.TaskDefinition(command=t.Command(argv=[]), taskId="b")]
    return t.JobDefinition(tasks=tasks, DEPRECATED_jobType=t.JobType.IRON_TESTS, priority=2, tag="tag",
                           basis="", requestor="me", jobType="j")


@pytest.mark.parametrize("strict, accelerated", [(True, False), (False, False), (True, True)],
                         ids=["strict", "old-style-header", "accelerated"])
def test_apache_client_against_our_scheduler(ap, our_servers, strict, accelerated):
    t = ap["scoot.ttypes"]
    client, transport = apache_client(ap["scoot.CloudScoot"], our_servers[0], strict, accelerated)
    try:
        job = apache_job(t)
        assert json.loads(client.RunJob(job).id) == plain(job)
        status = client.GetStatus("job-1")
        assert plain(status) == plain(rich_status("job-1"))
        assert status.taskData["a"].bazelResult.stdoutRaw == b"\x00\x01\xffbytes"
        with pytest.raises(t.InvalidRequest) as declared:
            client.RunJob(t.JobDefinition(tasks=[]))
        assert declared.value.message == "Invalid JobDefinition: no tasks"
        with pytest.raises(t.ScootServerError) as declared:
            client.KillJob("x")
        assert declared.value.retryAfterMs == 7
        from thrift.Thrift import TApplicationException as ApacheAppError

        with pytest.raises(ApacheAppError) as undeclared:
            client.RunJob(t.JobDefinition(tasks=job.tasks, tag="boom"))
        assert undeclared.value.type == ApacheAppError.INTERNAL_ERROR
        assert undeclared.value.message == "Internal error processing RunJob: kaboom"
        client.SetSchedulerStatus(12)  # the same connection keeps serving after every error above
        assert client.GetSchedulerStatus() == t.SchedulerStatus(currentTasks=1, maxTasks=12)
    finally:
        transport.close()


def test_apache_client_against_our_worker(ap, our_servers):
    t, b = ap["worker.ttypes"], ap["bazel.ttypes"]
    client, transport = apache_client(ap["worker.Worker"], our_servers[1])
    try:
        assert client.QueryWorker() == t.WorkerStatus(
            runs=[t.RunStatus(status=t.Status.RUNNING, runId="4", tag="t")], initialized=True, error="")
        cmd = t.RunCommand(argv=["true"], env={}, snapshotId="", timeoutMs=1, jobId="j", taskId="t", tag="g",
                           bazelRequest=b.ExecuteRequest(instanceName="i", skipCache=True,
                                                         actionDigest=b.Digest(hash="h", sizeBytes=9)))
        status = client.Run(cmd)
        assert (status.status, status.runId, status.exitCode) == (t.Status.PENDING, "0", 0)
        assert json.loads(status.error) == plain(cmd)
        from thrift.Thrift import TApplicationException as ApacheAppError

        with pytest.raises(ApacheAppError, match="Internal error processing Abort: 'r9'"):
            client.Abort("r9")
        assert client.Erase("0") is None
    finally:
        transport.close()


# ---- Apache server, our client ------------------------------------------------------------------------

APACHE_SERVER = textwrap.dedent('''
    import base64, json, sys, threading
    sys.path.insert(0, sys.argv[1])
    from thrift.Thrift import TApplicationException
    from thrift.protocol import TBinaryProtocol
    from thrift.server import TServer
    from thrift.transport import TSocket, TTransport
    from apgen.bazel import ttypes as b
    from apgen.scoot import CloudScoot, ttypes as t
    from apgen.worker import Worker, ttypes as w

    # plain() of this module is pasted here

    class Scheduler:
        def RunJob(self, job):
            if not job.tasks:
                raise t.InvalidRequest(message="empty")
            if job.tag == "boom":
                raise ValueError("unexpected")
            if job.tag == "app":
                raise TApplicationException(TApplicationException.INTERNAL_ERROR,
                                            "Internal error processing RunJob: custom text")
            return t.JobId(id=json.dumps(plain(job), sort_keys=True))
        def GetStatus(self, job_id):
            result = b.ActionResult(outputFiles=[b.OutputFile(path="p", digest=b.Digest(hash="h", sizeBytes=1))],
                                    stdoutRaw=b"\\x00\\xff", exitCode=1)
            run = t.RunStatus(status=t.RunStatusState.FAILED, runId="7", error="é", exitCode=-1,
                              bazelResult=result)
            return t.JobStatus(id=job_id, status=t.Status.ROLLING_BACK, taskStatus={"x": t.Status.NOT_STARTED},
                               taskData={"x": run})
        def KillJob(self, job_id):
            return t.JobStatus(id=job_id)  # lacks the required status: a Go client would refuse it
        def OfflineWorker(self, req):
            raise t.ScootServerError(retryAfterMs=3)
        def ReinstateWorker(self, req):
            return None
        def GetSchedulerStatus(self):
            return t.SchedulerStatus(currentTasks=2, maxTasks=5)
        def SetSchedulerStatus(self, max_tasks):
            return None

    class Wrk:
        def QueryWorker(self):
            return w.WorkerStatus(runs=[], initialized=False, error="starting")
        def Run(self, cmd):
            return w.RunStatus(status=w.Status.COMPLETE, runId=json.dumps(plain(cmd), sort_keys=True), exitCode=0)
        def Abort(self, run_id):
            return w.RunStatus(status=w.Status.ABORTED, runId=run_id)
        def Erase(self, run_id):
            return None

    def serve(processor, port):
        server = TServer.TThreadedServer(processor, TSocket.TServerSocket("127.0.0.1", port),
                                         TTransport.TBufferedTransportFactory(),
                                         TBinaryProtocol.TBinaryProtocolFactory(strictRead=False), daemon=True)
        server.serve()

    threading.Thread(target=serve, args=(Worker.Processor(Wrk()), int(sys.argv[3])), daemon=True).start()
    serve(CloudScoot.Processor(Scheduler()), int(sys.argv[2]))
''')


@pytest.fixture
def apache_servers(gen_dir, procs, tmp_path):
    script = tmp_path / "apache_server.py"
    script.write_text(APACHE_SERVER.replace("# plain() of this module is pasted here\n", inspect.getsource(plain)))
    ports = [free_port(), free_port()]
    proc = procs.start([sys.executable, str(script), str(gen_dir)] + [str(p) for p in ports],
                       stderr=subprocess.DEVNULL)
    for port in ports:
        wait_port(port, proc=proc)
    return ports


def test_our_client_against_apache_scheduler(apache_servers):
    client = ThriftClient(scoot.CloudScoot, "127.0.0.1:%d" % apache_servers[0], timeout=10)
    try:
        job = scoot.JobDefinition(
            tasks=[scoot.TaskDefinition(command=scoot.Command(argv=["a", "b"], envVars={"K": "V", "E": ""}),
                                        snapshotId="", taskId="t1", timeoutMs=5),
                   scoot.TaskDefinition(command=scoot.Command(argv=[]))],
            DEPRECATED_jobType=scoot.JobType.UNKNOWN, defaultTaskTimeoutMs=9, priority=1, tag="g", basis="b",
            requestor="r", jobType="")
        assert json.loads(client.RunJob(job).id) == plain(job)
        status = client.GetStatus("j")
        assert status.status == scoot.Status.ROLLING_BACK and status.taskStatus == {"x": scoot.Status.NOT_STARTED}
        run = status.taskData["x"]
        assert (run.status, run.runId, run.error, run.exitCode) == (scoot.RunStatusState.FAILED, "7", "é", -1)
        assert run.bazelResult == bazel.ActionResult(
            outputFiles=[bazel.OutputFile(path="p", digest=bazel.Digest(hash="h", sizeBytes=1))],
            stdoutRaw=b"\x00\xff", exitCode=1)
        with pytest.raises(scoot.InvalidRequest, match="empty"):
            client.RunJob(scoot.JobDefinition(tasks=[]))
        with pytest.raises(scoot.ScootServerError) as declared:
            client.OfflineWorker(scoot.OfflineWorkerReq(id="w", requestor="me"))
        assert declared.value.retryAfterMs == 3
        assert client.GetSchedulerStatus() == scoot.SchedulerStatus(2, 5)
        with pytest.raises(TApplicationException) as undeclared:
            client.RunJob(scoot.JobDefinition(tasks=job.tasks, tag="boom"))
        assert (undeclared.value.type, undeclared.value.message) == (TApplicationException.INTERNAL_ERROR,
                                                                      "Internal error")
        with pytest.raises(TApplicationException, match="^Internal error processing RunJob: custom text$"):
            client.RunJob(scoot.JobDefinition(tasks=job.tasks, tag="app"))
        with pytest.raises(TProtocolException, match="Required field Status is not set"):
            client.KillJob("j")
        assert client.SetSchedulerStatus(3) is None
    finally:
        client.close()


def test_our_client_against_apache_worker(apache_servers):
    client = ThriftClient(worker.Worker, "127.0.0.1:%d" % apache_servers[1], timeout=10)
    try:
        assert client.QueryWorker() == worker.WorkerStatus(runs=[], initialized=False, error="starting")
        cmd = worker.RunCommand(argv=["x"], env={"A": "1"}, snapshotId="s", timeoutMs=2, jobId="j", taskId="t",
                                tag="g", bazelRequest=bazel.ExecuteRequest(
                                    instanceName="i", executionPolicy=bazel.ExecutionPolicy(priority=3)))
        status = client.Run(cmd)
        assert status.status == worker.Status.COMPLETE and json.loads(status.runId) == plain(cmd)
        assert client.Abort("9") == worker.RunStatus(status=worker.Status.ABORTED, runId="9")
        assert client.Erase("9") is None
    finally:
        client.close()

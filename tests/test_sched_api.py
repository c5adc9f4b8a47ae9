"""The real ``scheduler`` binary over Thrift: CloudScoot error texts, throttle, workers, HTTP, flags (spec §1, §2)."""

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from thriftpy2.thrift import TApplicationException

from scootpy.idl import scoot
from scootpy.thriftrpc import ThriftClient
from tests.procs import binary, free_port, wait_port

CONFIG = {"Cluster": {"Type": "memory", "Count": 3}, "SagaLog": {"Type": "memory"},
          "SchedulerConfig": {"Admins": "root,ops"}}


@pytest.fixture(scope="module")
def sched(tmp_path_factory):
    from tests.procs import Processes

    group = Processes()
    thrift, http = free_port(), free_port()
    proc = group.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr",
                        f"127.0.0.1:{http}", "-config", json.dumps(CONFIG), "-log_level", "error",
                        "-grpc_addr", "localhost:1"], cwd=str(tmp_path_factory.mktemp("sched")))
    try:
        wait_port(thrift, proc=proc)
        wait_port(http, proc=proc)
        client = ThriftClient(scoot.CloudScoot, f"127.0.0.1:{thrift}", timeout=20)
        yield client, http
        client.close()
    finally:
        group.stop_all()


def task(task_id="t", argv=("true",), **kw):
    return scoot.TaskDefinition(command=scoot.Command(argv=list(argv), envVars={}), taskId=task_id, **kw)


def job(*tasks, **kw):
    return scoot.JobDefinition(tasks=list(tasks), **kw)


def internal_error(method, text):
    return pytest.raises(TApplicationException, match="^" + f"Internal error processing {method}: {text}"
                         .replace("(", r"\(").replace(")", r"\)").replace(".", r"\.") + "$")


@pytest.mark.parametrize("definition,text", [
    (None, "nil job definition"),
    (job(), "invalid job. Must have at least 1 task; was empty"),
    (job(task("")), 'invalid task id "".'),
    (job(task("a", argv=())), "invalid task.Command.Argv. Must have at least one argument; was empty"),
    (job(task(None)), "nil taskId"),
    (job(task("a"), priority=3), "Invalid priority 3, must be between 0-2 inclusive"),
    (job(task("a"), priority=-1), "Invalid priority -1, must be between 0-2 inclusive"),
    (job(task("a"), task("b"), task("a")), "Invalid dup taskID a"),
])
def test_run_job_rejections(sched, definition, text):
    client, _ = sched
    with internal_error("RunJob", text) as exc:
        client.RunJob(definition)
    assert exc.value.type == TApplicationException.INTERNAL_ERROR


def test_run_job_then_status_completes(sched):
    client, _ = sched
    job_id = client.RunJob(job(task("a"), task("b"), tag="x")).id
    deadline = time.monotonic() + 10
    status = client.GetStatus(job_id)
    while status.status != scoot.Status.COMPLETED:
        assert time.monotonic() < deadline
        time.sleep(0.01)
        status = client.GetStatus(job_id)
    assert status.taskStatus == {"a": scoot.Status.COMPLETED, "b": scoot.Status.COMPLETED}
    assert status.taskData["a"].status == scoot.RunStatusState.COMPLETE


def test_unknown_job_status_is_not_started(sched):
    client, _ = sched
    status = client.GetStatus("nosuchjob")
    assert (status.id, status.status, status.taskStatus, status.taskData) == ("nosuchjob", scoot.Status.NOT_STARTED,
                                                                              {}, {})


def test_kill_unknown_job(sched):
    client, _ = sched
    with pytest.raises(TApplicationException, match=r"^Internal error processing KillJob: Cannot kill Job Id "
                                                    r"no-such-job, not found\. \(This error can be ignored"):
        client.KillJob("no-such-job")


def test_scheduler_status_throttle_is_stored_and_reported(sched):
    client, _ = sched
    assert client.GetSchedulerStatus().maxTasks == -1
    with internal_error("SetSchedulerStatus", "invalid tasks limit:-2. Must be >= -1."):
        client.SetSchedulerStatus(-2)
    client.SetSchedulerStatus(0)
    assert client.GetSchedulerStatus().maxTasks == 0
    client.RunJob(job(task("a")))  # advisory only
    client.SetSchedulerStatus(-1)
    assert client.GetSchedulerStatus().maxTasks == -1


def test_offline_and_reinstate_worker(sched):
    client, _ = sched
    with internal_error("OfflineWorker", "Requestor mallory unauthorized to offline worker"):
        client.OfflineWorker(scoot.OfflineWorkerReq(id="inmemory0", requestor="mallory"))
    with internal_error("OfflineWorker", "Node bogus was not present in nodes. It can't be offlined."):
        client.OfflineWorker(scoot.OfflineWorkerReq(id="bogus", requestor="root"))
    client.OfflineWorker(scoot.OfflineWorkerReq(id="inmemory0", requestor="root"))
    with internal_error("OfflineWorker", "Node inmemory0 was not present in nodes. It can't be offlined."):
        client.OfflineWorker(scoot.OfflineWorkerReq(id="inmemory0", requestor="ops"))
    with internal_error("ReinstateWorker", "Requestor x unauthorized to reinstate worker"):
        client.ReinstateWorker(scoot.ReinstateWorkerReq(id="inmemory0", requestor="x"))
    client.ReinstateWorker(scoot.ReinstateWorkerReq(id="inmemory0", requestor="root"))
    with internal_error("ReinstateWorker", "Node inmemory0 was not present in offlinedNodes. It can't be reinstated."):
        client.ReinstateWorker(scoot.ReinstateWorkerReq(id="inmemory0", requestor="root"))


def test_http_health_metrics_and_status_page(sched):
    _, http = sched
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/health") as r:
        assert r.read() == b"ok"
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/admin/metrics.json") as r:
        stats = json.loads(r.read())
    assert "scheduler/schedUptimeGauge_ms" in stats and "scheduler/availableNodes" in stats
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/status.json") as r:
        snap = json.loads(r.read())
    assert {w["id"] for w in snap["workers"]} == {"inmemory0", "inmemory1", "inmemory2"}
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/") as r:
        assert r.headers["Content-Type"].startswith("text/html")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{http}/no/such/path")
    assert err.value.code == 501
    assert err.value.read() == b"Common paths: '/health', '/admin/metrics.json', '/output', '/debug/pprof'\n"


def run_binary(args, timeout=20):
    return subprocess.run([binary("scheduler")] + args, capture_output=True, text=True, timeout=timeout)


def test_bad_log_level_logs_and_exits_zero():
    done = run_binary(["-log_level", "bogus", "-thrift_addr", f"127.0.0.1:{free_port()}"])
    assert done.returncode == 0
    assert "level=error" in done.stderr and "bogus" in done.stderr


def test_unknown_config_asset_is_fatal():
    done = run_binary(["-config", "nope.nope", "-thrift_addr", f"127.0.0.1:{free_port()}"])
    assert done.returncode == 1
    assert "level=fatal" in done.stderr
    assert "Scheduler: Error Loading Config File config/nope.nope" in done.stderr


def test_unknown_implementation_is_fatal():
    done = run_binary(["-config", '{"Cluster":{"Type":"cloud"}}'])
    assert done.returncode == 1
    assert 'Error parsing Implementations Cluster: \\"cloud\\" is not a valid Implementation' in done.stderr


def test_busy_port_is_fatal(sched):
    _, http = sched
    done = run_binary(["-http_addr", f"127.0.0.1:{http}", "-thrift_addr", f"127.0.0.1:{free_port()}"])
    assert done.returncode == 1 and "Error serving" in done.stderr


def test_unknown_flag_exits_2():
    done = run_binary(["-no_such_flag"])
    assert done.returncode == 2 and "flag provided but not defined: -no_such_flag" in done.stderr


def test_huge_job_is_admitted_without_stalling_other_rpcs(procs, tmp_path):
    thrift, http = free_port(), free_port()
    config = {"Cluster": {"Type": "memory", "Count": 0}, "SagaLog": {"Type": "memory"}}
    proc = procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr",
                        f"127.0.0.1:{http}", "-config", json.dumps(config), "-log_level", "error"], cwd=str(tmp_path))
    wait_port(thrift, proc=proc)
    big = job(*[task(f"t{i:06d}") for i in range(100_000)])
    import gevent

    submitter = ThriftClient(scoot.CloudScoot, f"127.0.0.1:{thrift}", timeout=120)
    watcher = ThriftClient(scoot.CloudScoot, f"127.0.0.1:{thrift}", timeout=120)
    pending = gevent.spawn(submitter.RunJob, big)
    answered_meanwhile = 0
    while not pending.ready():
        watcher.GetSchedulerStatus()
        if not pending.ready():
            answered_meanwhile += 1
        gevent.sleep(0.01)
    job_id = pending.get().id
    assert answered_meanwhile > 0
    deadline = time.monotonic() + 30
    while watcher.GetSchedulerStatus().currentTasks != 100_000:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status = watcher.GetStatus(job_id)
    assert status.status == scoot.Status.IN_PROGRESS and len(status.taskStatus) == 100_000
    submitter.close()
    watcher.close()


def test_corrupted_saga_fails_only_its_own_status(procs, tmp_path):
    config = {"Cluster": {"Type": "memory", "Count": 2}, "Workers": {"Type": "local"},
              "SagaLog": {"Type": "file", "Directory": "sagas"}}
    thrift, http = free_port(), free_port()
    proc = procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr",
                        f"127.0.0.1:{http}", "-config", json.dumps(config), "-log_level", "error"], cwd=str(tmp_path))
    wait_port(thrift, proc=proc)
    client = ThriftClient(scoot.CloudScoot, f"127.0.0.1:{thrift}", timeout=30)
    first = client.RunJob(job(task("a"))).id
    second = client.RunJob(job(task("b"))).id
    for j in (first, second):
        wait_for(lambda: completed(client, j), 30, "completion")
    with open(tmp_path / "sagas" / first / "log", "a") as f:
        f.write("Not A Type\n")
    with pytest.raises(TApplicationException, match=f"^Internal error processing GetStatus: .*{first}"):
        client.GetStatus(first)
    assert client.GetStatus(second).status == scoot.Status.COMPLETED
    third = client.RunJob(job(task("c"))).id
    wait_for(lambda: completed(client, third), 30, "a new job after the corruption")


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def completed(client, job_id):
    return client.GetStatus(job_id).status == scoot.Status.COMPLETED


def test_sigterm_stops_the_scheduler_cleanly(procs, tmp_path):
    import signal

    thrift, http = free_port(), free_port()
    proc = procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr",
                        f"127.0.0.1:{http}", "-log_level", "error"], cwd=str(tmp_path))
    wait_port(thrift, proc=proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_allow_from_refuses_other_peers(procs, tmp_path):
    thrift, http = free_port(), free_port()
    proc = procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr",
                        f"127.0.0.1:{http}", "-log_level", "error", "-allow_from", "10.9.9.0/24"], cwd=str(tmp_path))
    wait_port(thrift, proc=proc)
    client = ThriftClient(scoot.CloudScoot, f"127.0.0.1:{thrift}", timeout=5)
    with pytest.raises(Exception):
        client.GetSchedulerStatus()
    client.close()


def test_task_ids_the_file_log_cannot_store_are_refused_at_run_job(procs, tmp_path):
    config = {"Cluster": {"Type": "memory", "Count": 1}, "SagaLog": {"Type": "file", "Directory": "sagas"}}
    thrift, http = free_port(), free_port()
    proc = procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr",
                        f"127.0.0.1:{http}", "-config", json.dumps(config), "-log_level", "error"], cwd=str(tmp_path))
    wait_port(thrift, proc=proc)
    client = ThriftClient(scoot.CloudScoot, f"127.0.0.1:{thrift}", timeout=30)
    with pytest.raises(TApplicationException, match="^Internal error processing RunJob: task id 'a/b' cannot be "
                                                    "stored in the file saga log"):
        client.RunJob(job(task("ok"), task("a/b")))
    assert client.GetSchedulerStatus().currentTasks == 0
    job_id = client.RunJob(job(task("fine"))).id
    wait_for(lambda: completed(client, job_id), 30, "completion")

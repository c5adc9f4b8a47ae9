"""The pieces behind ``/metrics``: HTTP request counting, Prometheus-only families, the metered bundle store,
saga fsync batches and the scheduler's state gauges."""

import http.client
import io
import json
import time
from types import SimpleNamespace

import gevent
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scootpy.admin import AdminServer
from scootpy.metrics import Registry
from scootpy.runs import RunState, RunStatus
from scootpy.sched import stats
from scootpy.sched.cluster import NodeUpdate
from scootpy.sched.cluster.fake import FakeWorkerClient
from scootpy.sched.config import SchedulerConfig
from scootpy.sched.definitions import Command, Job, JobDefinition, TaskDefinition, job_to_thrift
from scootpy.sched.saga.codec import encode_job
from scootpy.sched.saga.file import FileSagaLog
from scootpy.sched.saga.memory import MemorySagaLog
from scootpy.sched.saga.saga import Saga
from scootpy.sched.scheduler import Scheduler
from scootpy.snapshots.metered import DOWNLOAD_BYTES, UPLOAD_BYTES, MeteredStore
from scootpy.snapshots.store import FileStore, NotFound

pytestmark = pytest.mark.timeout(30)


def samples(registry: Registry) -> dict:
    """{(sample name, labels): value} of the registry's Prometheus text, parsed by prometheus_client."""
    out = {}
    for family in text_string_to_metric_families(registry.to_prometheus()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def streamed(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"part one, "
    yield b"part two"


def unsized(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"abc", b"de"]


def broken(environ, start_response):
    raise RuntimeError("handler bug")


@pytest.fixture
def admin():
    registry = Registry("t")
    server = AdminServer(("127.0.0.1", 0), registry, mounts=[("/stream", streamed), ("/broken", broken),
                                                              ("/unsized", unsized)],
                         allow=lambda peer: peer == "127.0.0.1")
    server.start()
    yield server, registry
    server.stop()


def request(port: int, method: str, path: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_http_requests_are_counted_by_method_and_code_after_the_body(admin):
    server, registry = admin
    assert request(server.port, "GET", "/stream") == (200, b"part one, part two")
    assert request(server.port, "GET", "/health")[0] == 200
    assert request(server.port, "GET", "/nowhere")[0] == 501
    assert request(server.port, "BREW", "/health")[0] == 200
    assert request(server.port, "GET", "/broken")[0] == 500
    gevent.sleep(0.05)  # the last request is counted when the server closes its body
    got = samples(registry)
    assert got[("scoot_t_http_requests_total", (("code", "200"), ("method", "GET")))] == 2
    assert got[("scoot_t_http_requests_total", (("code", "501"), ("method", "GET")))] == 1
    assert got[("scoot_t_http_requests_total", (("code", "200"), ("method", "other")))] == 1
    assert got[("scoot_t_http_requests_total", (("code", "500"), ("method", "GET")))] == 1
    assert got[("scoot_t_http_request_duration_seconds_count", (("method", "GET"),))] == 4


def test_counting_keeps_gevent_content_length_for_list_bodies(admin):
    server, registry = admin
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/unsized")
        resp = conn.getresponse()
        assert resp.read() == b"abcde"
        assert resp.getheader("Content-Length") == "5" and resp.getheader("Transfer-Encoding") is None
    finally:
        conn.close()
    assert registry.value("http_requests_total", method="GET", code="200") == 1


def test_prometheus_only_families_stay_out_of_metrics_json(admin):
    server, registry = admin
    request(server.port, "GET", "/health")
    gevent.sleep(0.05)
    first = request(server.port, "GET", "/admin/metrics.json")[1]
    gevent.sleep(0.05)
    assert request(server.port, "GET", "/admin/metrics.json")[1] == first  # reading it changes nothing in it
    assert json.loads(first) == {}
    assert "scoot_t_http_requests_total" in registry.to_prometheus()


def test_describe_sets_help_and_json_visibility():
    registry = Registry("x")
    registry.describe("hidden_total", "Only for Prometheus", in_json=False)
    registry.describe("shown", "Both")
    registry.inc("hidden_total", 2, kind="a")
    registry.set("shown", 5)
    registry.observe("hidden_total_seconds", 0.1)
    keys = set(json.loads(registry.to_json()))
    assert "x/shown" in keys and "x/hidden_total_seconds.count" in keys and "x/hidden_total_a" not in keys
    text = registry.to_prometheus()
    assert "# HELP scoot_x_hidden_total Only for Prometheus\n# TYPE scoot_x_hidden_total counter" in text
    assert 'scoot_x_hidden_total{kind="a"} 2' in text


class OneWay(io.RawIOBase):
    """A readable, non-seekable stream."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        chunk = self._data.read(len(buf))
        buf[:len(chunk)] = chunk
        return len(chunk)


def test_metered_store_counts_bytes_both_ways(tmp_path):
    registry = Registry("w")
    store = MeteredStore(FileStore(tmp_path / "bundles"), registry)
    assert registry.value(DOWNLOAD_BYTES) == 0 and registry.value(UPLOAD_BYTES) == 0
    seekable = io.BytesIO(b"xx" + b"a" * 1000)
    seekable.seek(2)
    assert store.write("bs-" + "a" * 40 + ".bundle", seekable)
    assert registry.value(UPLOAD_BYTES) == 1000
    assert store.write("bs-" + "b" * 40 + ".bundle", OneWay(b"b" * 300))
    assert registry.value(UPLOAD_BYTES) == 1300
    with store.open_read("bs-" + "a" * 40 + ".bundle") as stream:
        assert stream.read(10) == b"a" * 10
        buf = bytearray(100)
        assert stream.readinto(buf) == 100
        assert stream.read() == b"a" * 890
        assert stream.fileno() > 0
    assert registry.value(DOWNLOAD_BYTES) == 1000
    with pytest.raises(NotFound):
        store.open_read("bs-" + "c" * 40 + ".bundle")
    assert store.exists("bs-" + "b" * 40 + ".bundle") and store.root == str(tmp_path / "bundles")
    assert registry.value(DOWNLOAD_BYTES) == 1000


def test_file_saga_log_times_each_fsync_batch(tmp_path):
    registry = Registry("scheduler")
    saga_log = FileSagaLog(str(tmp_path / "sagas"), metrics=registry)
    saga_log.start_saga("job1", b"blob")
    saga = samples(registry)
    assert saga[("scoot_scheduler_saga_fsync_seconds_count", ())] == 2  # data files + dirs, then the log
    assert saga_log.stats["commits"] == 1
    FileSagaLog(str(tmp_path / "other")).start_saga("job2", b"blob")  # without metrics: nothing to report to


def job(job_id: str, n: int) -> Job:
    definition = JobDefinition(tasks=tuple(TaskDefinition(f"t{i}", Command(("true",), {})) for i in range(n)),
                               tag=job_id)
    return Job(job_id, definition)


def test_scheduler_state_gauges_partition_workers_jobs_and_tasks():
    sched = Scheduler(SchedulerConfig(), FakeWorkerClient)
    try:
        sched.node_updates([NodeUpdate("add", f"n{i}") for i in range(4)])
        sched.step()
        sched.cluster.offline("n0")
        sched.cluster.untrust("n2")
        sched.node_updates([NodeUpdate("remove", "n1")])
        three = job("three", 3)
        sched.add_job(three, Saga.start(MemorySagaLog(), three.id, encode_job(job_to_thrift(three))))
        sched.step()
        m = sched.metrics
        assert {s: m.value("workers", state=s) for s in ("healthy", "suspended", "lost", "offlined")} == \
            {"healthy": 1, "suspended": 1, "lost": 1, "offlined": 1}
        assert {s: m.value("tasks", state=s) for s in ("waiting", "running", "completed")} == \
            {"waiting": 2, "running": 1, "completed": 0}
        assert {s: m.value("jobs", state=s) for s in ("waiting", "running", "ending")} == \
            {"waiting": 0, "running": 1, "ending": 0}
        assert m.value("task_queue_depth") == 2
        assert m.value("suspendedNodes") == 2 and m.value("lostNodes") == 1  # the reference's names are unchanged
        assert "scheduler/workers_healthy" not in json.loads(m.to_json())
    finally:
        sched.stop()


def test_try_and_job_durations_are_observed():
    registry = Registry("scheduler")
    result = SimpleNamespace(final=True, status=RunStatus(RunState.COMPLETE))
    stats.try_ended(registry, SimpleNamespace(started=time.monotonic() - 2), result)
    stats.job_ended(registry, SimpleNamespace(created=time.time() - 3))
    got = samples(registry)
    assert got[("scoot_scheduler_task_try_duration_seconds_count", (("final", "true"), ("state", "COMPLETE")))] == 1
    assert got[("scoot_scheduler_task_try_duration_seconds_sum", (("final", "true"), ("state", "COMPLETE")))] >= 2
    assert got[("scoot_scheduler_job_duration_seconds_count", ())] == 1
    assert got[("scoot_scheduler_job_duration_seconds_sum", ())] >= 3


def test_reference_latency_histograms_say_their_prometheus_unit():
    registry = Registry("w")
    registry.observe("workerTaskLatency_ms", 0.25)
    text = registry.to_prometheus()
    help_line = "# HELP scoot_w_workerTaskLatency_ms workerTaskLatency_ms, in seconds (metrics.json reports it in ms)"
    assert help_line in text
    assert "scoot_w_workerTaskLatency_ms_sum 0.25" in text
    assert json.loads(registry.to_json())["w/workerTaskLatency_ms.sum"] == 250

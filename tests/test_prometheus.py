"""Prometheus ``/metrics`` of the three real server binaries after real work.

An apiserver, a workerserver using it as its bundlestore, and a scheduler (file saga log, static cluster of
that worker) run one job: a task reading a file of a snapshot uploaded through the apiserver, a task exiting
3, and a task whose snapshot does not exist (FAILED, retried once). Each server's ``/metrics`` is then parsed
with ``prometheus_client``'s parser and the families, types and label values are checked.
"""

import json
import time
import urllib.request
from collections import defaultdict
from typing import Dict, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scootpy.idl import scoot
from scootpy.snapshots.gitdb import GitDB
from scootpy.snapshots.store import HttpStore
from scootpy.thriftrpc import ThriftClient
from tests.procs import Processes, binary, free_port, wait_port

pytestmark = pytest.mark.timeout(120)

MISSING_SNAPSHOT = "bs-fs-" + "1" * 40 + "--" + "1" * 40


class Scrape:
    """One parsed exposition: family types and sample values by (sample name, labels)."""

    def __init__(self, text: str):
        self.types: Dict[str, str] = {}
        self.values: Dict[Tuple[str, frozenset], float] = {}
        self.labels: Dict[str, set] = defaultdict(set)
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.values[(sample.name, frozenset(sample.labels.items()))] = sample.value
                for key, value in sample.labels.items():
                    if key != "le":
                        self.labels[sample.name].add((key, value))

    def get(self, name: str, **labels: str) -> float:
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def label_values(self, name: str, key: str) -> set:
        return {v for k, v in self.labels[name] if k == key}


def scrape(port: int) -> Scrape:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return Scrape(resp.read().decode())


def metrics_json(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/metrics.json", timeout=10) as resp:
        return json.loads(resp.read())


def start_cluster(procs, tmp_path):
    api = free_port()
    (tmp_path / "tmp").mkdir()
    api_proc = procs.start([binary("apiserver"), "-http_addr", f"127.0.0.1:{api}", "-log_level", "error"],
                           env={"BUNDLESTORE_STORE_DIR": str(tmp_path / "bundles")})
    wait_port(api, proc=api_proc)
    w_thrift, w_http = free_port(), free_port()
    w_proc = procs.start([binary("workerserver"), "-thrift_addr", f"127.0.0.1:{w_thrift}", "-http_addr",
                          f"127.0.0.1:{w_http}", "-bundlestore", f"127.0.0.1:{api}", "-log_level", "error"],
                         env={"TMPDIR": str(tmp_path / "tmp")})
    wait_port(w_thrift, proc=w_proc)
    wait_port(w_http, proc=w_proc)
    s_thrift, s_http = free_port(), free_port()
    config = {"Cluster": {"Type": "static", "Workers": [f"127.0.0.1:{w_thrift}"]},
              "Workers": {"Type": "rpc", "PollingPeriod": "20ms"},
              "SchedulerConfig": {"MaxRetriesPerTask": 1},
              "SagaLog": {"Type": "file", "Directory": str(tmp_path / "sagas")}}
    s_proc = procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{s_thrift}", "-http_addr",
                          f"127.0.0.1:{s_http}", "-config", json.dumps(config), "-log_level", "error"],
                         cwd=str(tmp_path))
    wait_port(s_thrift, proc=s_proc)
    wait_port(s_http, proc=s_proc)
    return api, w_http, s_thrift, s_http


def make_snapshot(tmp_path, api: int) -> str:
    source = tmp_path / "src"
    source.mkdir()
    (source / "input.txt").write_text("hello from a snapshot\n")
    with GitDB(tmp_path / "client-repo", store=HttpStore(f"http://127.0.0.1:{api}/bundle/")) as db:
        return db.ingest_dir(source)


def task(task_id: str, argv, snapshot: str = "") -> scoot.TaskDefinition:
    return scoot.TaskDefinition(command=scoot.Command(argv=argv, envVars={}), snapshotId=snapshot, taskId=task_id)


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def scrapes(tmp_path_factory):
    """Run the job once for the module's tests; return the three scrapes and the metrics.json objects."""
    tmp_path, procs = tmp_path_factory.mktemp("prometheus"), Processes()
    try:
        api, w_http, s_thrift, s_http = start_cluster(procs, tmp_path)
        snapshot = make_snapshot(tmp_path, api)
        client = ThriftClient(scoot.CloudScoot, f"127.0.0.1:{s_thrift}", timeout=30)
        job = scoot.JobDefinition(tasks=[task("read", ["cat", "input.txt"], snapshot),
                                         task("three", ["sh", "-c", "exit 3"]),
                                         task("missing", ["true"], MISSING_SNAPSHOT)])
        job_id = client.RunJob(job).id
        status = wait_for(lambda: (s := client.GetStatus(job_id)).status == scoot.Status.COMPLETED and s, 60,
                          "job completion")
        assert status.taskData["read"].status == scoot.RunStatusState.COMPLETE
        assert status.taskData["read"].exitCode == 0 and status.taskData["three"].exitCode == 3
        assert status.taskData["missing"].status == scoot.RunStatusState.FAILED
        wait_for(lambda: scrape(s_http).get("scoot_scheduler_job_duration_seconds_count") >= 1, 30, "EndSaga")
        client.close()
        yield {"scheduler": (scrape(s_http), metrics_json(s_http)),
               "worker": (scrape(w_http), metrics_json(w_http)),
               "apiserver": (scrape(api), metrics_json(api)),
               "stored_bytes": sum(f.stat().st_size for f in (tmp_path / "bundles").glob("bs-*.bundle"))}
    finally:
        procs.stop_all()


def test_scheduler_families(scrapes):
    s, stats = scrapes["scheduler"]
    for family, kind in (("scoot_scheduler_jobs", "gauge"), ("scoot_scheduler_tasks", "gauge"),
                         ("scoot_scheduler_task_queue_depth", "gauge"), ("scoot_scheduler_workers", "gauge"),
                         ("scoot_scheduler_task_try_duration_seconds", "histogram"),
                         ("scoot_scheduler_job_duration_seconds", "histogram"),
                         ("scoot_scheduler_saga_fsync_seconds", "histogram"),
                         ("scoot_scheduler_rpc_requests", "counter"),
                         ("scoot_scheduler_rpc_latency_seconds", "histogram"),
                         ("scoot_scheduler_http_requests", "counter")):
        assert s.types.get(family) == kind, family
    assert s.label_values("scoot_scheduler_jobs", "state") == {"waiting", "running", "ending"}
    assert s.label_values("scoot_scheduler_tasks", "state") == {"waiting", "running", "completed"}
    assert s.label_values("scoot_scheduler_workers", "state") == {"healthy", "suspended", "lost", "offlined"}
    assert s.get("scoot_scheduler_workers", state="healthy") == 1
    assert s.get("scoot_scheduler_workers", state="lost") == 0
    assert s.get("scoot_scheduler_task_queue_depth") == 0
    tries = "scoot_scheduler_task_try_duration_seconds_count"
    assert s.get(tries, state="COMPLETE", final="true") == 2
    assert s.get(tries, state="FAILED", final="false") == 1 and s.get(tries, state="FAILED", final="true") == 1
    assert s.get("scoot_scheduler_task_try_duration_seconds_sum", state="COMPLETE", final="true") > 0
    assert s.get("scoot_scheduler_job_duration_seconds_count") == 1
    assert s.get("scoot_scheduler_saga_fsync_seconds_count") >= 2  # StartSaga, then task records at least
    assert s.get("scoot_scheduler_rpc_requests_total", method="RunJob") == 1
    assert s.get("scoot_scheduler_rpc_requests_total", method="GetStatus") >= 1
    assert s.get("scoot_scheduler_rpc_latency_seconds_count", method="RunJob") == 1
    assert s.get("scoot_scheduler_rpc_latency_seconds_bucket", method="RunJob", le="+Inf") == 1
    assert s.get("scoot_scheduler_http_requests_total", method="GET", code="200") >= 1
    assert "scheduler/schedNumRunningJobsGauge" in stats and "scheduler/rpc_requests_total_RunJob" in stats
    assert not [k for k in stats if k.split("/", 1)[1].startswith(("jobs_", "tasks_", "workers_", "http_"))]


def test_worker_families(scrapes):
    w, stats = scrapes["worker"]
    for family, kind in (("scoot_workerserver_runs", "counter"),
                         ("scoot_workerserver_run_duration_seconds", "histogram"),
                         ("scoot_workerserver_snapshot_checkout_seconds", "histogram"),
                         ("scoot_workerserver_snapshot_ingest_seconds", "histogram"),
                         ("scoot_workerserver_snapshot_download_bytes", "counter"),
                         ("scoot_workerserver_snapshot_upload_bytes", "counter"),
                         ("scoot_workerserver_rpc_requests", "counter"),
                         ("scoot_workerserver_rpc_latency_seconds", "histogram")):
        assert w.types.get(family) == kind, family
    assert w.get("scoot_workerserver_runs_total", state="COMPLETE") == 2
    assert w.get("scoot_workerserver_runs_total", state="FAILED") == 2
    assert w.get("scoot_workerserver_run_duration_seconds_count", state="COMPLETE") == 2
    assert w.get("scoot_workerserver_snapshot_checkout_seconds_count", result="ok") == 1
    assert w.get("scoot_workerserver_snapshot_checkout_seconds_count", result="error") == 2
    assert w.get("scoot_workerserver_snapshot_ingest_seconds_count", result="ok") == 2
    assert w.get("scoot_workerserver_snapshot_download_bytes_total") > 0
    assert w.get("scoot_workerserver_snapshot_upload_bytes_total") > 0
    assert w.get("scoot_workerserver_rpc_requests_total", method="Run") == 4
    assert w.get("scoot_workerserver_rpc_requests_total", method="QueryWorker") >= 4
    assert stats["workerserver/workerDownloads"] == 3 and "workerserver/handler/runs" in stats
    assert not [k for k in stats if "runs_total" in k or "snapshot_" in k]


def test_apiserver_families(scrapes):
    a, stats = scrapes["apiserver"]
    for family, kind in (("scoot_apiserver_http_requests", "counter"),
                         ("scoot_apiserver_http_request_duration_seconds", "histogram"),
                         ("scoot_apiserver_upload_bytes", "counter"), ("scoot_apiserver_download_bytes", "counter"),
                         ("scoot_apiserver_upload_duration_seconds", "histogram")):
        assert a.types.get(family) == kind, family
    assert a.label_values("scoot_apiserver_http_requests_total", "method") >= {"GET", "POST"}
    assert a.get("scoot_apiserver_http_requests_total", method="POST", code="200") >= 3  # input + two outputs
    assert a.get("scoot_apiserver_http_requests_total", method="GET", code="200") >= 1
    assert a.get("scoot_apiserver_http_requests_total", method="GET", code="404") >= 1  # the missing snapshot
    assert a.get("scoot_apiserver_http_request_duration_seconds_count", method="POST") >= 3
    assert a.get("scoot_apiserver_upload_duration_seconds_count", result="ok") >= 3
    assert a.get("scoot_apiserver_upload_bytes_total") == scrapes["stored_bytes"] > 0  # every upload was new
    worker = scrapes["worker"][0]
    downloaded = worker.get("scoot_workerserver_snapshot_download_bytes_total")
    uploaded = worker.get("scoot_workerserver_snapshot_upload_bytes_total")
    assert a.get("scoot_apiserver_download_bytes_total") == downloaded  # the worker is the only reader
    assert 0 < uploaded < a.get("scoot_apiserver_upload_bytes_total")  # the test uploaded the input too
    assert stats["apiserver/uploadOkCounter"] >= 3 and stats["apiserver/downloadOkCounter"] >= 1
    assert not [k for k in stats if "_bytes_total" in k or "http_" in k]

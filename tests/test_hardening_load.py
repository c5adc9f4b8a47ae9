"""100 concurrent clients against a real scheduler for a bounded time, each on its own connection, each
submitting jobs (RunJob) and polling them (GetStatus) to completion: zero errors, every answer about the
right job, and flat scheduler memory. ``HARDENING_LOAD_SECONDS`` sets the load time (10 s in the default suite,
30 s in ``make hardening``)."""

import json
import os
import re
import time
import urllib.request
from collections import Counter

import gevent
import pytest
from thriftpy2.thrift import TApplicationException

from scootpy.idl import scoot
from tests.hardening_helpers import job_of, rss_mib, start_scheduler, wait_job

CLIENTS = 100
WARM_UP_S = 2.0
LOAD_S = float(os.environ.get("HARDENING_LOAD_SECONDS", "10"))
RSS_GROWTH_MIB = 50

pytestmark = pytest.mark.timeout(LOAD_S + 110)

LOAD_CONFIG = {"Cluster": {"Type": "memory", "Count": 50}, "Workers": {"Type": "local"},
               "SagaLog": {"Type": "memory"},
               "SchedulerConfig": {"MaxRequestors": 1000, "MaxJobsPerRequestor": 100000}}


def client_loop(sched, number: int, until: float, counts: Counter, errors: list) -> None:
    """Until ``until``: RunJob (every fifth job killed at once), then GetStatus of that job until it is
    COMPLETED. Every failure is recorded."""
    requestor = f"load{number % 20}"
    with sched.client(timeout=30) as client:
        i = 0
        while time.monotonic() < until:
            tasks = 1 + i % 3
            try:
                job_id = client.RunJob(job_of([["true"]] * tasks, requestor=requestor, tag=f"c{number}-{i}")).id
                counts["RunJob"] += 1
                if i % 5 == 4:
                    kill(client, job_id, counts)
                while True:
                    status = client.GetStatus(job_id)
                    counts["GetStatus"] += 1
                    if status.id != job_id or len(status.taskStatus) != tasks:
                        errors.append(f"client {number}: wrong status {status}")
                        break
                    if status.status == scoot.Status.COMPLETED:
                        counts["jobs completed"] += 1
                        break
                    if time.monotonic() > until + 30:
                        errors.append(f"client {number}: job {job_id} never completed")
                        break
                    gevent.sleep(0.005)
            except Exception as e:  # every error counts; the test wants none
                errors.append(f"client {number}: {type(e).__name__}: {e}")
            i += 1


def kill(client, job_id: str, counts: Counter) -> None:
    """KillJob right after RunJob: either it kills the job or the job had already finished."""
    try:
        status = client.KillJob(job_id)
        assert status.id == job_id, status
        counts["KillJob killed"] += 1
    except TApplicationException as e:
        if "Cannot kill Job Id" not in e.message:  # the reference's text for a job already over
            raise
        counts["KillJob too late"] += 1


def load(sched, seconds: float) -> tuple:
    counts, errors = Counter(), []
    until = time.monotonic() + seconds
    started = time.monotonic()
    clients = [gevent.spawn(client_loop, sched, n, until, counts, errors) for n in range(CLIENTS)]
    gevent.joinall(clients, timeout=seconds + 60, raise_error=True)
    assert all(c.dead for c in clients), "some clients never finished"
    return counts, errors, time.monotonic() - started


def rpc_figures(http_port: int) -> tuple:
    """Calls the scheduler counted per method (Prometheus text) and their p99 latency in ms (metrics JSON)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10).read().decode()
    served = {m: int(float(v)) for m, v in re.findall(r'^scoot_scheduler_rpc_requests_total\{method="(\w+)"\} (\S+)$',
                                                         text, re.M)}
    stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{http_port}/admin/metrics.json", timeout=10).read())
    p99 = {m: stats[f"scheduler/rpc_latency_seconds_{m}.p99"] for m in served}
    return served, p99


def test_100_concurrent_clients(procs, tmp_path):
    sched = start_scheduler(procs, tmp_path, LOAD_CONFIG)
    pid = sched.proc.pid
    warm, errors, _ = load(sched, WARM_UP_S)
    assert not errors, errors[:5]
    before = rss_mib(pid)
    counts, errors, elapsed = load(sched, LOAD_S)
    after = rss_mib(pid)
    kills = counts["KillJob killed"] + counts["KillJob too late"]
    calls = counts["RunJob"] + counts["GetStatus"] + kills
    served, p99 = rpc_figures(sched.http)
    print(f"\nload: {CLIENTS} clients for {elapsed:.1f}s: {calls} calls ({counts['RunJob']} RunJob, "
          f"{counts['GetStatus']} GetStatus, {kills} KillJob of which {counts['KillJob killed']} killed a job; "
          f"{counts['jobs completed']} jobs seen COMPLETED), {len(errors)} errors, "
          f"{calls / elapsed:.0f} calls/s; "
          f"scheduler RSS {before:.1f} -> {after:.1f} MiB; server-side p99 latency "
          f"RunJob {p99['RunJob']:.1f} ms, GetStatus {p99['GetStatus']:.1f} ms")
    assert served == {"RunJob": warm["RunJob"] + counts["RunJob"], "GetStatus": warm["GetStatus"] + counts["GetStatus"],
                      "KillJob": sum(c[k] for c in (warm, counts) for k in ("KillJob killed", "KillJob too late"))}
    assert not errors, errors[:5]
    assert counts["RunJob"] >= CLIENTS and counts["jobs completed"] == counts["RunJob"]
    assert after - before < RSS_GROWTH_MIB
    with sched.client() as client:  # fresh work still runs
        last = client.RunJob(job_of([["true"]], requestor="after")).id
        assert set(wait_job(client, last, timeout=60).taskStatus.values()) == {scoot.Status.COMPLETED}
    assert sched.proc.poll() is None
    assert "Traceback" not in sched.log.read_text()

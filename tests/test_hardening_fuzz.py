"""Mutated Thrift calls at the real servers: the reference's recorded calls (fixtures/wire/) are bit-flipped,
truncated, given huge lengths, spliced with garbage or replaced by it, a few hundred times per server, on
loopback. Each connection must end with a well-formed reply or a closed socket; afterwards the server still
does real work and its memory has not ballooned."""

import os
import random
import socket
import time
from collections import Counter

import gevent
import gevent.pool
import pytest
from thriftpy2.thrift import TApplicationException, TMessageType

from scootpy.idl import scoot, worker
from tests.hardening_helpers import (job_of, mutate, recorded_calls, rss_mib, start_scheduler, start_workers,
                                     wait_job)
from tests.test_wire_fixtures import Recorder, encode_message, read_message
from tests.test_worker_support import command, poll

pytestmark = pytest.mark.timeout(120)

MUTATIONS = 300
TIME_BUDGET_S = 12.0
CONCURRENCY = 16
RSS_GROWTH_MIB = 25
SCHED_PROBE = "04-GetSchedulerStatus.call.bin"
WORKER_PROBE = "01-readiness-probe-01-QueryWorker.call.bin"
SEED = int(os.environ.get("HARDENING_SEED") or int.from_bytes(os.urandom(4), "big"))


def exchange(port: int, data: bytes, service) -> list:
    """Send ``data`` then EOF; return the (method, type) of every whole message the server answered.

    The answer must be well-formed replies and exceptions, then the end of the connection.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server already answered or gave up on this peer; read what it sent
            pass
        chunks, reset = [], False
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except ConnectionResetError:  # closed with our bytes unread: TCP may drop part of its answer
            reset = True
    source, answers = _Bytes(b"".join(chunks)), []
    while source.at < len(source.data):
        try:
            name, mtype, _, _ = read_message(Recorder(source), service)
        except EOFError:
            assert reset, f"truncated answer {source.data[-80:]!r}"
            break
        assert mtype in (TMessageType.REPLY, TMessageType.EXCEPTION), f"odd answer {name} type {mtype}"
        answers.append((name, mtype))
    return answers


class _Bytes:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def read(self, n: int) -> bytes:
        chunk = self.data[self.at:self.at + n]
        self.at += len(chunk)
        return chunk


def barrage(port: int, service, calls: dict, count: int, seed: int, probe: str) -> Counter:
    """Send ``count`` mutated calls (bounded by TIME_BUDGET_S) with a few in flight at once.

    A third of them follow the valid call ``probe`` on the same connection, which must be answered first.
    """
    print(f"\nbarrage of {count} mutated calls with seed {seed} (HARDENING_SEED={SEED})")
    rng = random.Random(seed)
    messages = list(calls.values())
    outcomes: Counter = Counter()
    deadline = time.monotonic() + TIME_BUDGET_S
    pool = gevent.pool.Pool(CONCURRENCY)

    def one(kind: str, data: bytes, probed: bool) -> None:
        answers = exchange(port, (calls[probe] if probed else b"") + data, service)
        if probed:
            assert answers[:1] == [(probe.split("-")[-1].split(".")[0], TMessageType.REPLY)], answers
            answers = answers[1:]
            outcomes["after-valid-call"] += 1
        kinds = {TMessageType.REPLY: "reply", TMessageType.EXCEPTION: "exception"}
        outcomes[kinds[answers[0][1]] if answers else "closed"] += 1
        outcomes[kind] += 1

    for _ in range(count):
        if time.monotonic() > deadline:
            break
        kind, data = mutate(rng.choice(messages), rng)
        pool.spawn(one, kind, data, rng.random() < 1 / 3)
    pool.join(timeout=60, raise_error=True)
    assert not pool, "some connections never ended"
    return outcomes


def refuses_non_utf8(port: int, service, name: str, args) -> None:
    """A call whose string argument is not UTF-8 gets a clear PROTOCOL_ERROR, never a half-decoded value."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, sock.makefile("rb") as source:
        sock.sendall(encode_message(name, TMessageType.CALL, 7, args))
        _, mtype, seqid, body = read_message(Recorder(source), service)
    assert (mtype, seqid, body.type) == (TMessageType.EXCEPTION, 7, TApplicationException.PROTOCOL_ERROR)
    assert body.message.startswith(f"Invalid UTF-8 in a string argument of {name}: ")


def report(what: str, outcomes: Counter, before: float, after: float) -> None:
    sent = sum(outcomes[k] for k in ("reply", "exception", "closed"))
    print(f"\n{what} (HARDENING_SEED={SEED}): {sent} mutated calls: {outcomes['reply']} replies, "
          f"{outcomes['exception']} exceptions, {outcomes['closed']} closed; by mutation "
          f"{dict(sorted((k, v) for k, v in outcomes.items() if k not in ('reply', 'exception', 'closed')))}; "
          f"RSS {before:.1f} -> {after:.1f} MiB")


def scheduler_works(sched) -> None:
    with sched.client() as client:
        assert client.GetSchedulerStatus().maxTasks == -1
        job_id = client.RunJob(job_of([["true"], ["false"]], requestor="sanity")).id
        status = wait_job(client, job_id, timeout=30)
        assert set(status.taskStatus.values()) == {scoot.Status.COMPLETED}


def test_scheduler_survives_mutated_calls(procs, tmp_path):
    config = {"Cluster": {"Type": "memory", "Count": 4}, "Workers": {"Type": "local"},
              "SagaLog": {"Type": "memory"},
              "SchedulerConfig": {"MaxRequestors": 100000, "MaxJobsPerRequestor": 100000}}
    sched = start_scheduler(procs, tmp_path, config)
    calls = recorded_calls("scootapi-scheduler")
    assert len(calls) == 6
    scheduler_works(sched)
    barrage(sched.thrift, scoot.CloudScoot, calls, 40, seed=SEED, probe=SCHED_PROBE)  # warm-up: first use
    before = rss_mib(sched.proc.pid)
    outcomes = barrage(sched.thrift, scoot.CloudScoot, calls, MUTATIONS, seed=SEED + 1, probe=SCHED_PROBE)
    bad = job_of([[b"echo\xff"]], requestor="sanity")
    refuses_non_utf8(sched.thrift, scoot.CloudScoot, "RunJob", scoot.CloudScoot.RunJob_args(job=bad))
    scheduler_works(sched)
    after = rss_mib(sched.proc.pid)
    report("scheduler", outcomes, before, after)
    assert sched.proc.poll() is None
    assert outcomes["closed"] > 0 and outcomes["reply"] + outcomes["exception"] > 0
    assert after - before < RSS_GROWTH_MIB
    assert "Traceback" not in sched.log.read_text()


def abort_everything(client) -> None:
    for run in client.QueryWorker().runs:
        if run.status in (worker.Status.PENDING, worker.Status.RUNNING):
            client.Abort(run.runId)


def worker_works(w) -> None:
    """The worker still answers QueryWorker and runs a real command to completion."""
    with w.client(timeout=30) as client:
        status = client.QueryWorker()
        assert status.initialized and not status.error
        abort_everything(client)
        cmd = command(["sh", "-c", "echo alive"], timeoutMs=30000)

        def started():
            reply = client.Run(cmd)
            return reply if reply.runId else None  # refused while an aborted run is still winding down

        run_id = poll(started, timeout=30, interval=0.05, what="worker accepting a run").runId

        def finished():
            runs = [r for r in client.QueryWorker().runs if r.runId == run_id]
            return runs and runs[0].status not in (worker.Status.PENDING, worker.Status.RUNNING) and runs[0]

        done = poll(finished, timeout=30, interval=0.02, what="sanity run finished")
        assert (done.status, done.exitCode) == (worker.Status.COMPLETE, 0)


def test_worker_survives_mutated_calls(procs, tmp_path):
    (w,) = start_workers(procs, tmp_path, 1)
    calls = recorded_calls("scheduler-worker")
    assert len(calls) == 18
    worker_works(w)
    barrage(w.thrift, worker.Worker, calls, 40, seed=SEED + 2, probe=WORKER_PROBE)
    worker_works(w)
    before = rss_mib(w.proc.pid)
    outcomes = barrage(w.thrift, worker.Worker, calls, MUTATIONS, seed=SEED + 3, probe=WORKER_PROBE)
    bad = command(["sh", "-c", "true"], snapshotId=b"bs-fs-\xc3(")
    refuses_non_utf8(w.thrift, worker.Worker, "Run", worker.Worker.Run_args(cmd=bad))
    worker_works(w)
    after = rss_mib(w.proc.pid)
    report("worker", outcomes, before, after)
    assert w.proc.poll() is None
    assert outcomes["closed"] > 0 and outcomes["reply"] + outcomes["exception"] > 0
    assert after - before < RSS_GROWTH_MIB
    assert "Traceback" not in w.log.read_text()


def test_scheduler_serves_honest_clients_while_hundreds_of_peers_stall(procs, tmp_path):
    config = {"Cluster": {"Type": "memory", "Count": 2}, "Workers": {"Type": "local"}, "SagaLog": {"Type": "memory"}}
    sched = start_scheduler(procs, tmp_path, config)
    calls = recorded_calls("scootapi-scheduler")
    rng = random.Random(SEED)
    scheduler_works(sched)
    before = rss_mib(sched.proc.pid)
    stalled = []
    try:
        for i in range(400):  # silent peers, and peers stuck inside a message
            sock = socket.create_connection(("127.0.0.1", sched.thrift), timeout=10)
            if i % 2:
                message = rng.choice(list(calls.values()))
                sock.sendall(message[:rng.randrange(1, len(message))])
            stalled.append(sock)
        scheduler_works(sched)
        during = rss_mib(sched.proc.pid)
    finally:
        for sock in stalled:
            sock.close()
    scheduler_works(sched)
    print(f"\nscheduler with 400 stalled peers: RSS {before:.1f} -> {during:.1f} MiB")
    assert during - before < RSS_GROWTH_MIB
    assert sched.proc.poll() is None

"""A real worker under hostile commands and conditions: floods, background children, commands that ignore
SIGTERM, aborts during checkout, the memory cap, an HTTP bundlestore, discovery by ``ps`` and shutdown."""

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import gevent
import gevent.pywsgi
import pytest

from scootpy.idl import worker
from tests.procs import binary, free_port, wait_port
from tests.test_worker_support import (FIXTURE_SNAPSHOT, command, group_alive, poll, run_and_wait, start_worker,
                                       wait_state)

S = worker.Status
pytestmark = pytest.mark.timeout(120)


def peak_rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))


def test_flood_is_streamed_to_disk_with_flat_worker_memory(procs, tmp_path):
    w = start_worker(procs, tmp_path)
    with w.client() as c:
        run_and_wait(c, argv=["true"])
        before = peak_rss_kb(w.proc.pid)
        done = run_and_wait(c, timeout=90, argv=["sh", "-c", f"head -c {200 << 20} /dev/zero; echo tail >&2"])
        assert (done.status, done.exitCode) == (S.COMPLETE, 0)
        after = peak_rss_kb(w.proc.pid)
        assert after - before < 64 << 10, (before, after)
        assert run_and_wait(c, argv=["#! sim execer", "complete 0"]).status == S.COMPLETE


def test_abort_kills_background_children(procs, tmp_path):
    w = start_worker(procs, tmp_path)
    with w.client() as c:
        reply = c.Run(command(["sh", "-c", "sleep 60 & sleep 60 & echo $$ > pid; wait"]))
        wait_state(c, reply.runId, {S.RUNNING})
        time.sleep(0.2)
        pgids = _pgids_of_sleepers(w.proc.pid)
        assert pgids
        started = time.monotonic()
        assert c.Abort(reply.runId).status == S.ABORTED
        assert time.monotonic() - started < 5
        assert not any(group_alive(g) for g in pgids)
        assert run_and_wait(c, argv=["true"]).status == S.COMPLETE


def _pgids_of_sleepers(worker_pid: int) -> set:
    """Process groups of the worker's children (each run is its own group)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,pgid="], capture_output=True, text=True).stdout
    return {int(pgid) for pid, ppid, pgid in (line.split() for line in out.splitlines())
            if int(ppid) == worker_pid and int(pgid) == int(pid)}


def test_command_ignoring_sigterm_is_killed_after_grace(procs, tmp_path):
    w = start_worker(procs, tmp_path)
    with w.client() as c:
        reply = c.Run(command(["sh", "-c", "trap '' TERM; sleep 60 & wait; sleep 60"], timeoutMs=300))
        wait_state(c, reply.runId, {S.RUNNING})
        pgids = _pgids_of_sleepers(w.proc.pid)
        done = wait_state(c, reply.runId, timeout=30)
        assert done.status == S.TIMEDOUT
        assert not any(group_alive(g) for g in pgids)
        assert run_and_wait(c, argv=["true"]).status == S.COMPLETE


class StallingStore:
    """A bundlestore that never answers for the fixture bundle and keeps everything else in memory."""

    def __init__(self, stall_uploads: bool = False):
        self.bundles, self.stalled = {}, []
        self.stall_uploads = stall_uploads
        self.server = gevent.pywsgi.WSGIServer(("127.0.0.1", 0), self.app, log=None)

    def app(self, environ, start_response):
        name = environ["PATH_INFO"].rsplit("/", 1)[-1]
        if FIXTURE_SNAPSHOT.split("-")[2] in name or (self.stall_uploads and environ["REQUEST_METHOD"] != "GET"):
            self.stalled.append(name)
            gevent.sleep(60)
        if environ["REQUEST_METHOD"] == "POST":
            self.bundles[name] = environ["wsgi.input"].read()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if name in self.bundles:
            start_response("200 OK", [("Content-Length", str(len(self.bundles[name])))])
            return [self.bundles[name] if environ["REQUEST_METHOD"] == "GET" else b""]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]


def test_abort_during_checkout(procs, tmp_path):
    store = StallingStore()
    store.server.start()
    try:
        w = start_worker(procs, tmp_path, "-bundlestore", f"127.0.0.1:{store.server.server_port}")
        with w.client() as c:
            reply = c.Run(command(["true"], snapshotId=FIXTURE_SNAPSHOT, jobId="j"))
            poll(lambda: store.stalled, what="the worker to ask the store for the bundle")
            assert c.QueryWorker().runs[0].status == S.PENDING
            started = time.monotonic()
            aborted = c.Abort(reply.runId)
            assert time.monotonic() - started < 2
            assert aborted == worker.RunStatus(status=S.ABORTED, runId=reply.runId, exitCode=0, jobId="j")
            done = run_and_wait(c, argv=["#! sim execer", "complete 3"])
            assert (done.status, done.exitCode) == (S.COMPLETE, 3)
            assert f"bs-{done.snapshotId.split('-')[2]}.bundle" in store.bundles
    finally:
        store.server.stop(timeout=0)


def test_abort_during_output_ingestion(procs, tmp_path):
    store = StallingStore(stall_uploads=True)
    store.server.start()
    try:
        w = start_worker(procs, tmp_path, "-bundlestore", f"127.0.0.1:{store.server.server_port}")
        with w.client() as c:
            reply = c.Run(command(["sh", "-c", "echo done"], tag="t"))
            poll(lambda: store.stalled, what="the worker to upload the output bundle")
            running = c.QueryWorker().runs[0]
            assert running.status == S.RUNNING
            aborted = c.Abort(reply.runId)
            assert (aborted.status, aborted.outUri, aborted.snapshotId) == (S.ABORTED, running.outUri, None)
            store.stall_uploads = False
            assert c.Run(command(["true"])).status == S.PENDING
    finally:
        store.server.stop(timeout=0)


def test_memory_cap_flag(procs, tmp_path):
    w = start_worker(procs, tmp_path, "-mem_cap", str(40 << 20))
    with w.client() as c:
        done = run_and_wait(c, argv=["python3", "-c", "import time; x = b'x' * (100 << 20); time.sleep(30)"])
        assert (done.status, done.exitCode) == (S.COMPLETE, 1)
        assert done.error.startswith("Cmd exceeded MemoryCap, aborting ") and done.snapshotId
        assert run_and_wait(c, argv=["true"]).status == S.COMPLETE
    with urllib.request.urlopen(f"http://{w.http_addr}/admin/metrics.json", timeout=10) as resp:
        assert json.loads(resp.read())["workerserver/osexecer/memory"] > 0


def test_http_bundlestore_gets_output_before_complete(procs, tmp_path):
    api = free_port()
    store_dir = tmp_path / "apistore"
    proc = procs.start([binary("apiserver"), "-http_addr", f"127.0.0.1:{api}"],
                       env={"TMPDIR": str(tmp_path), "BUNDLESTORE_STORE_DIR": str(store_dir)},
                       stderr=subprocess.DEVNULL)
    wait_port(api, proc=proc)
    w = start_worker(procs, tmp_path, "-bundlestore", f"127.0.0.1:{api}")
    with w.client() as c:
        done = run_and_wait(c, argv=["sh", "-c", "echo via http"])
        assert done.status == S.COMPLETE
        tree = done.snapshotId.split("-")[2]
        with urllib.request.urlopen(f"http://127.0.0.1:{api}/bundle/bs-{tree}.bundle", timeout=10) as resp:
            assert resp.status == 200 and resp.read().startswith(b"# v2 git bundle\n")


def test_ps_shows_workerserver_thrift_addr(procs, tmp_path):
    w = start_worker(procs, tmp_path)
    out = subprocess.run(["ps", "xww"], capture_output=True, text=True).stdout
    found = re.findall(r"workerserver.*thrift_addr(?: +|=)([^ ]*)", out)
    assert w.addr in found


def test_sigterm_stops_worker_kills_run_and_removes_temp(procs, tmp_path):
    w = start_worker(procs, tmp_path)
    with w.client() as c:
        reply = c.Run(command(["sh", "-c", "trap '' TERM; sleep 60"]))
        wait_state(c, reply.runId, {S.RUNNING})
        pgids = _pgids_of_sleepers(w.proc.pid)
    started = time.monotonic()
    w.proc.send_signal(15)
    assert w.proc.wait(10) == 0
    assert time.monotonic() - started < 8
    assert not any(group_alive(g) for g in pgids)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_port_in_use_exits_1(procs, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([binary("workerserver"), "-thrift_addr", f"127.0.0.1:{port}", "-http_addr",
                               f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=30,
                              env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1 and "cannot start workerserver" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_output_dir_replaced_by_a_file_fails_220_and_recovers(procs, tmp_path):
    w = start_worker(procs, tmp_path)
    with w.client() as c:
        first = run_and_wait(c, argv=["true"])
        out_dir = Path(re.sub(r"^file://[^/]*", "", first.outUri.split("?file=", 1)[1])).parent
        shutil.rmtree(out_dir)
        out_dir.write_text("in the way")
        done = run_and_wait(c, argv=["true"])
        assert (done.status, done.exitCode) == (S.FAILED, 220)
        assert done.error.startswith(f"could not create stdout: open {out_dir}/0-stdout") or \
            done.error.startswith(f"could not create stdout: open {out_dir}/1-stdout"), done.error
        assert done.error.endswith(": not a directory")
        out_dir.unlink()
        assert run_and_wait(c, argv=["true"]).status == S.COMPLETE


def test_locate_store_finds_a_running_apiserver(procs, tmp_path):
    from scootpy.sched.cluster.local import ps_fetch
    from scootpy.snapshots.store import HttpStore
    from scootpy.workerserver.main import locate_store

    api = free_port()
    proc = procs.start([binary("apiserver"), "-http_addr", f"127.0.0.1:{api}"], env={"TMPDIR": str(tmp_path)},
                       stderr=subprocess.DEVNULL)
    wait_port(api, proc=proc)
    store = locate_store("", str(tmp_path))
    assert isinstance(store, HttpStore)
    candidates = ps_fetch("apiserver", "http_addr")
    assert f"127.0.0.1:{api}" in candidates
    assert store.root in {f"http://{a}/bundle/" for a in candidates}
    assert isinstance(locate_store(str(tmp_path / "abs"), str(tmp_path)).root, str)


def test_processes_escaping_the_group_are_killed_too(procs, tmp_path):
    w = start_worker(procs, tmp_path)
    with w.client() as c:
        reply = c.Run(command(["sh", "-c", "setsid sleep 77 & setsid sh -c 'sleep 78 >/dev/null 2>&1' & sleep 60"]))
        wait_state(c, reply.runId, {S.RUNNING})
        time.sleep(0.3)
        started = time.monotonic()
        assert c.Abort(reply.runId).status == S.ABORTED
        assert time.monotonic() - started < 5
        assert poll(lambda: not _sleeping(("77", "78")), timeout=5, what="escaped processes to be gone")
        done = run_and_wait(c, argv=["sh", "-c", "setsid sleep 79 >/dev/null 2>&1 & echo left"])
        assert done.status == S.COMPLETE
        assert poll(lambda: not _sleeping(("79",)), timeout=5, what="a finished run's escapee to be gone")


def _sleeping(seconds) -> bool:
    out = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True, text=True).stdout
    return any(f"sleep {s}" in line and not line.startswith("Z") for line in out.splitlines() for s in seconds)


def test_unwritable_store_fails_250_and_recovers(procs, tmp_path):
    w = start_worker(procs, tmp_path, with_fixture_bundles=False)
    with w.client() as c:
        bundles = w.store / "bundles"
        bundles.rmdir()
        bundles.write_text("not a directory")
        done = run_and_wait(c, argv=["sh", "-c", "echo unique $$"])
        assert (done.status, done.exitCode) == (S.FAILED, 250)
        assert done.error.startswith("error ingesting results: ") and done.outUri
        bundles.unlink()
        bundles.mkdir()
        assert run_and_wait(c, argv=["sh", "-c", "echo again $$"]).status == S.COMPLETE

"""Helpers for the worker tests: a real ``workerserver`` process on free loopback ports, and polling."""

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from scootpy.idl import worker
from scootpy.thriftrpc import ThriftClient
from tests.procs import FIXTURES, binary, free_port, wait_port

DONE = {worker.Status.COMPLETE, worker.Status.FAILED, worker.Status.ABORTED, worker.Status.TIMEDOUT,
        worker.Status.UNKNOWN}
FIXTURE_SNAPSHOT = "bs-fs-7c8ed031c1aed0a5157e6c7fdc2b88658268b3d9--7c8ed031c1aed0a5157e6c7fdc2b88658268b3d9"


@dataclass
class WorkerProc:
    proc: Any
    thrift: int
    http: int
    store: Path
    log: Path

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.thrift}"

    @property
    def http_addr(self) -> str:
        return f"127.0.0.1:{self.http}"

    def client(self, timeout: float = 60.0) -> ThriftClient:
        return ThriftClient(worker.Worker, self.addr, timeout=timeout)


def start_worker(procs, tmp_path: Path, *extra: str, with_fixture_bundles: bool = True,
                 wait_ready: bool = True, env: Optional[Dict[str, str]] = None) -> WorkerProc:
    """Start ``workerserver`` with a file bundlestore in ``tmp_path/store`` (holding the fixture bundles)."""
    store = tmp_path / "store"
    (store / "bundles").mkdir(parents=True, exist_ok=True)
    if with_fixture_bundles:
        for bundle in (FIXTURES / "snapshots" / "bundles").iterdir():
            shutil.copyfile(bundle, store / "bundles" / bundle.name)
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    thrift, http = free_port(), free_port()
    log = tmp_path / f"worker-{thrift}.log"
    argv = [binary("workerserver"), "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr", f"127.0.0.1:{http}",
            "-bundlestore", str(store), "-log_level", "info", *extra]
    with open(log, "wb") as err:
        proc = procs.start(argv, env=dict(env or {}, TMPDIR=str(tmp)), stderr=err)
    wait_port(http, proc=proc)
    wait_port(thrift, proc=proc)
    w = WorkerProc(proc, thrift, http, store, log)
    if wait_ready:
        with w.client() as c:
            poll(lambda: c.QueryWorker().initialized, what="worker initialized")
    return w


def poll(check, timeout: float = 20.0, interval: float = 0.005, what: str = "condition") -> Any:
    """Call ``check`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def current_run(client: ThriftClient, run_id: str) -> Optional[Any]:
    for run in client.QueryWorker().runs:
        if run.runId == run_id:
            return run
    return None


def wait_state(client: ThriftClient, run_id: str, states=DONE, timeout: float = 30.0) -> Any:
    """Poll QueryWorker until run ``run_id`` is in one of ``states``; return its RunStatus."""
    def check():
        run = current_run(client, run_id)
        return run if run is not None and run.status in states else None
    return poll(check, timeout, what=f"run {run_id} in {states}")


def run_and_wait(client: ThriftClient, timeout: float = 30.0, **fields: Any) -> Any:
    reply = client.Run(command(**fields))
    assert reply.status == worker.Status.PENDING, reply
    return wait_state(client, reply.runId, timeout=timeout)


def command(argv: List[str], env: Optional[Dict[str, str]] = None, snapshotId: str = "", timeoutMs: int = 0,
            jobId: str = "", taskId: str = "", tag: str = "") -> Any:
    """A RunCommand laid out as the Go scheduler sends it (every field set)."""
    return worker.RunCommand(argv=argv, env=env or {}, snapshotId=snapshotId, timeoutMs=timeoutMs, jobId=jobId,
                             taskId=taskId, tag=tag)


def fields(status: Any) -> Dict[str, Any]:
    """The RunStatus as the fixtures' JSON shows it (``None`` = absent, enum by name)."""
    out = {spec[1]: getattr(status, spec[1]) for spec in status.thrift_spec.values()}
    out["status"] = worker.Status._VALUES_TO_NAMES[out["status"]]
    return out


def fixture_runstatus() -> Dict[str, Any]:
    return json.loads((FIXTURES / "worker-output" / "runstatus.json").read_text())


def present(d: Dict[str, Any]) -> set:
    return {k for k, v in d.items() if v is not None}


def group_alive(pgid: int, settle: float = 2.0) -> bool:
    """True if a live (non-zombie) process is in group ``pgid`` after up to ``settle`` seconds."""
    deadline = time.monotonic() + settle
    while True:
        alive = False
        for name in os.listdir("/proc"):
            try:
                raw = Path(f"/proc/{name}/stat").read_bytes() if name.isdigit() else b""
            except OSError:
                continue
            fields = raw[raw.rfind(b")") + 2:].split()
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
                alive = True
                break
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)

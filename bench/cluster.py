"""A throw-away cluster for the benchmark: real scheduler, workerserver and apiserver processes on free ports."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

BIN = Path(sys.executable).parent
_ALIASES = {"workerserver": "bench-wk", "apiserver": "bench-api", "scheduler": "bench-sched"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.01)
    raise TimeoutError(f"port {port} not up after {timeout}s")


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Cluster:
    """Start with ``with Cluster(workers=5) as c:``; ``c.sched_addr`` is the CloudScoot address."""

    def __init__(self, workers: int = 5, apiserver: bool = True, log_level: str = "error", scheduler: bool = True):
        self.workers = workers
        self.apiserver = apiserver
        self.with_scheduler = scheduler
        self.log_level = log_level
        self.procs: List[subprocess.Popen] = []
        self.tmp = tempfile.TemporaryDirectory(prefix="scoot-bench-")
        self.sched_addr = ""
        self.worker_addrs: List[str] = []
        self.store_url: Optional[str] = None

    def _start(self, argv: List[str], port: int, env: Optional[dict] = None) -> subprocess.Popen:
        full_env = dict(os.environ, TMPDIR=self.tmp.name, **(env or {}))
        # Started under another name, so that local.local clusters on this machine, which find workers and
        # apiservers by their command lines, neither use nor disturb ours (and we measure only our own).
        alias = Path(self.tmp.name) / _ALIASES[argv[0]]
        if not alias.exists():
            alias.symlink_to(BIN / argv[0])
        proc = subprocess.Popen([str(alias)] + argv[1:], cwd=self.tmp.name, env=full_env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=open(Path(self.tmp.name) / f"{argv[0]}-{port}.log", "wb"),
                                start_new_session=True)
        self.procs.append(proc)
        wait_port(port, proc)
        return proc

    def __enter__(self) -> "Cluster":
        if self.apiserver:
            port = free_port()
            store = Path(self.tmp.name) / "bundles"
            store.mkdir()
            self._start(["apiserver", "-http_addr", f"127.0.0.1:{port}", "-log_level", self.log_level], port,
                        {"BUNDLESTORE_STORE_DIR": str(store)})
            self.store_url = f"http://127.0.0.1:{port}/bundle/"
        for _ in range(self.workers):
            thrift, http = free_port(), free_port()
            argv = ["workerserver", "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr", f"127.0.0.1:{http}",
                    "-log_level", self.log_level]
            if self.store_url:
                argv += ["-bundlestore", self.store_url]
            self._start(argv, thrift)
            self.worker_addrs.append(f"127.0.0.1:{thrift}")
        if not self.with_scheduler:
            return self
        thrift, http = free_port(), free_port()
        config = {"Cluster": {"Type": "static", "Workers": self.worker_addrs},
                  "Workers": {"Type": "rpc", "PollingPeriod": "250ms"},
                  "SchedulerConfig": {"Type": "stateful", "RecoverJobsOnStartup": False,
                                      "DefaultTaskTimeout": "30m", "MaxJobsPerRequestor": 1000},
                  "SagaLog": {"Type": "file", "Directory": ".scootdata/filesagalog"}}
        self.scheduler = self._start(["scheduler", "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr",
                                      f"127.0.0.1:{http}", "-log_level", self.log_level,
                                      "-config", json.dumps(config)], thrift)
        self.sched_addr = f"127.0.0.1:{thrift}"
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.tmp.cleanup()

"""Helpers for tests that run real processes on free loopback ports."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"


def copy_writable(src: Path, dst: Path) -> None:
    """Copy a (read-only) fixture tree so the test may change it."""
    shutil.copytree(src, dst)
    os.chmod(dst, 0o755)
    for root, dirs, files in os.walk(dst):
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o755)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 20.0, proc: Optional[subprocess.Popen] = None
              ) -> None:
    """Wait until something accepts connections on host:port; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def binary(name: str) -> str:
    """Path of one of our installed console scripts."""
    return str(BIN / name)


class Processes:
    """Processes started by a test, each in its own process group, all stopped by ``stop_all``."""

    def __init__(self) -> None:
        self.started: List[subprocess.Popen] = []

    def start(self, argv: List[str], env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
              **popen_args) -> subprocess.Popen:
        full_env = dict(os.environ, **(env or {}))
        full_env["PATH"] = f"{BIN}{os.pathsep}{full_env.get('PATH', '')}"
        proc = subprocess.Popen(argv, env=full_env, cwd=cwd, start_new_session=True, **popen_args)
        self.started.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
        """Signal the process group, wait up to ``grace`` seconds, then SIGKILL it."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
                proc.wait(grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.wait(5)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)
        self.started.clear()

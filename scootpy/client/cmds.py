"""The child processes of a local cluster (reference scootapi/setup/cmds.go).

Every child runs in its own process group with our stdout/stderr and /dev/null as stdin. When a
long-lived child exits for any reason, all children are killed (so a broken cluster fails fast).
``kill()`` sends SIGINT to every child's process group, waits up to 5 s (``grace``), then SIGKILLs the groups;
it may be called any number of times, from any thread.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

log = logging.getLogger(__name__)

KILL_GRACE_S = 5.0
# Each child leads its own process group (setsid where Popen cannot just make a group: Python < 3.11).
_OWN_GROUP = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}


class CmdsError(Exception):
    """Starting or running a child failed."""


def exit_text(returncode: int) -> str:
    """Go's ``exec.ExitError`` text: ``exit status N`` or ``signal: <name>``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"signal: {_SIGNAL_WORDS.get(name, name)}"
    return f"exit status {returncode}"


_SIGNAL_WORDS = {"SIGINT": "interrupt", "SIGKILL": "killed", "SIGTERM": "terminated", "SIGSEGV": "segmentation fault",
                 "SIGABRT": "aborted", "SIGHUP": "hangup", "SIGPIPE": "broken pipe", "SIGQUIT": "quit"}


class Cmds:
    """Start, watch and kill the processes of one cluster."""

    def __init__(self, grace: float = KILL_GRACE_S) -> None:
        self.grace = grace
        self._lock = threading.Lock()
        self._watching: List[subprocess.Popen] = []
        self._killed = False
        self.child_died = threading.Event()

    @property
    def killed(self) -> bool:
        return self._killed

    def _spawn(self, argv: List[str], env: Optional[Dict[str, str]]) -> subprocess.Popen:
        with self._lock:
            if self._killed:
                raise CmdsError("killed; cannot start new cmds")
            log.info("RunCmd: %s [%s]", argv[0], " ".join(argv[1:]))
            log.info("Starting[%s]", " ".join(argv))
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env, **_OWN_GROUP)
            except OSError as e:
                raise CmdsError(f"fork/exec {argv[0]}: {(e.strerror or str(e)).lower()}") from None
            self._watching.append(proc)
            return proc

    def start(self, argv: List[str], env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        """Start a long-lived child; if it ever exits, every child is killed.

        ``COLUMNS`` is dropped from its environment: a Go scheduler's ``ps x`` would truncate lines to it
        and miss the workers."""
        env = dict(os.environ if env is None else env)
        env.pop("COLUMNS", None)
        proc = self._spawn(argv, env)
        log.info("Cmd [%s] started as %d", " ".join(argv), proc.pid)
        threading.Thread(target=self._watch, args=(proc,), daemon=True, name=f"watch-{proc.pid}").start()
        return proc

    def _watch(self, proc: subprocess.Popen) -> None:
        proc.wait()
        log.info("Cmd %d (%s) finished: %s", proc.pid, proc.args[0], exit_text(proc.returncode))
        self._remove(proc)
        if not self._killed:
            self.child_died.set()
            self.kill()

    def run(self, argv: List[str], env: Optional[Dict[str, str]] = None) -> int:
        """Run a child to completion (it is killed with the others if the cluster goes down); its status."""
        log.info("Running[%s]", " ".join(argv))
        proc = self._spawn(argv, env)
        returncode = proc.wait()  # if interrupted, the child stays watched so that kill() stops it
        self._remove(proc)
        log.info("Run Done: %s", "<nil>" if returncode == 0 else exit_text(returncode))
        return returncode

    def _remove(self, proc: subprocess.Popen) -> None:
        with self._lock:
            if proc in self._watching:
                self._watching.remove(proc)

    def kill(self) -> None:
        """SIGINT every child's process group, wait up to 5 s, then SIGKILL the groups."""
        with self._lock:
            first = not self._killed
            self._killed = True
            procs = list(self._watching)
        if first:
            log.info("Killing %d cmds", len(procs))
        for proc in procs:
            if proc.poll() is None:
                if first:
                    log.info("SIGINT: %d %s", proc.pid, proc.args[0])
                _signal_group(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + self.grace
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        stragglers = [p for p in procs if p.poll() is None]
        if stragglers:
            log.info("Still waiting; killing all")
        elif procs and first:
            log.info("All completed")
        for proc in procs:
            _signal_group(proc.pid, signal.SIGKILL)  # also sweeps grandchildren left in the group
        for proc in stragglers:
            try:
                proc.wait(self.grace)
            except subprocess.TimeoutExpired:
                log.error("process %d survived SIGKILL", proc.pid)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass

"""Real processes: one process group per command, output pumped through pipes, abort with a grace period,
an optional memory cap on the group's total RSS.

Completion means both pipes reached EOF and the leader was reaped (so a background child that keeps the
pipes open delays it, as in the reference). Exit codes: 0 and non-zero exits are COMPLETE with that
code; death by a signal is COMPLETE with -1. Whatever is left of the group once the leader ended is killed.
"""

import logging
import os
import shutil
import signal
import sys
from typing import Any, Callable, Dict, List, Optional

import gevent
import gevent.event
import gevent.select

from scootpy.metrics import Registry
from scootpy.workerserver.execer import ExecError, ExecState, ProcessStatus, Sink
from scootpy.workerserver.execer import proctree, spawn
from scootpy.workerserver.gotext import go_quote

log = logging.getLogger(__name__)

ABORT_GRACE_S = 10.0
MEMORY_CHECK_S = 0.25
_CHUNK = 1 << 16
_DRAIN_S = 2.0
# Python 3.11+ can put the child in its own group without giving up vfork; older ones need a preexec hook.
_NEW_GROUP = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}


def _errno_text(err: OSError) -> str:
    text = os.strerror(err.errno) if err.errno else str(err)
    return text[:1].lower() + text[1:]


def _resolve(argv0: str) -> str:
    """Find a bare command name on the worker's own PATH, as Go's ``exec.Command`` does."""
    if "/" in argv0:
        return argv0
    found = shutil.which(argv0, path=os.environ.get("PATH", os.defpath))
    if not found or not argv0:
        raise ExecError(f"exec: {go_quote(argv0)}: executable file not found in $PATH")
    return found


def _close(*fds: int) -> None:
    for fd in fds:
        spawn.close_now(fd)


class OsProcess:
    """One running command and the greenlets that pump its output, reap it and watch its memory."""

    def __init__(self, popen: Any, watcher: Any, argv: List[str], pipes: List[int], sinks: List[Sink],
                 mem_cap: int, grace: Callable[[], float], on_memory: Callable[[int], None] = lambda usage: None):
        self.ended = gevent.event.Event()
        self.pid = popen.pid
        self._popen = popen
        self._argv = argv
        self._grace = grace
        self._mem_cap = mem_cap
        self._on_memory = on_memory
        self._status: Optional[ProcessStatus] = None
        self._exited = gevent.event.Event()
        self._pumps = [gevent.spawn(self._pump, pipes, sinks)]
        gevent.spawn(self._reap, watcher)
        self._finisher = gevent.spawn(self._finish)
        self._monitor = gevent.spawn(self._watch_memory) if mem_cap > 0 else None

    @staticmethod
    def _pump(fds: List[int], sinks: List[Sink]) -> None:
        """Copy both pipes to their sinks until EOF; when both have data, stdout goes first."""
        live = dict(zip(fds, sinks))
        try:
            while live:
                ready, _, _ = gevent.select.select(list(live), [], [])
                for fd in sorted(ready, key=fds.index):
                    try:
                        data = os.read(fd, _CHUNK)
                    except BlockingIOError:
                        continue
                    if data:
                        live[fd](data)
                    else:
                        del live[fd]
                gevent.sleep(0)  # a flooding command must not starve the other greenlets
        except OSError as e:
            log.warning("reading command output failed: %s", e)
        finally:
            _close(*fds)

    def _reap(self, watcher: Any) -> None:
        spawn.wait_exit(self._popen, watcher)
        self._exited.set()

    def _finish(self) -> None:
        gevent.joinall(self._pumps)
        self._exited.wait()
        if self._status is None:
            code = self._popen.returncode
            self._status = ProcessStatus(ExecState.COMPLETE, exit_code=-1 if code < 0 else code)
        self._kill_leftovers()
        self.ended.set()

    def _watch_memory(self) -> None:
        while not self.ended.wait(MEMORY_CHECK_S):
            usage = proctree.memory_usage(self.pid)
            self._on_memory(usage)
            if usage >= self._mem_cap and self._status is None:
                msg = (f"Cmd exceeded MemoryCap, aborting {self.pid}: {usage} > {self._mem_cap}"
                       f" ([{' '.join(self._argv)}])")
                log.info("%s", msg)
                self._status = ProcessStatus(ExecState.COMPLETE, exit_code=1, error=msg, over_memcap=True)
                self._kill_now()
                return

    def _kill_now(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._kill_leftovers()

    def _kill_leftovers(self) -> None:
        proctree.kill_group(self.pid)
        if spawn.is_subreaper():
            proctree.kill_orphans(os.getpid())

    def result(self) -> ProcessStatus:
        return self._status or ProcessStatus(ExecState.RUNNING)

    def abort(self) -> ProcessStatus:
        """SIGTERM the leader; after the grace period SIGKILL it; then SIGKILL the whole group."""
        if not self.ended.is_set():
            if self._status is None:
                self._status = ProcessStatus(ExecState.FAILED, error="aborted")
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            if not self._exited.wait(self._grace()):
                log.info("pid %s outlived SIGTERM; killing its group", self.pid)
            self._kill_now()
            if not self.ended.wait(_DRAIN_S):
                self._force_close()
        return self.result()

    def _force_close(self) -> None:
        """Stop pumping pipes held open by processes that escaped the group."""
        log.warning("pid %s: output pipes still open after kill; closing them", self.pid)
        gevent.killall(self._pumps)
        self._exited.wait()
        self.ended.wait()


class OsExecer:
    """Starts real commands in their own process group, with an optional memory cap in bytes (0 = none).

    ``grace`` is read when an abort starts, so lowering it (at shutdown) shortens later aborts.
    """

    def __init__(self, mem_cap: int = 0, grace: float = ABORT_GRACE_S, metrics: Optional[Registry] = None):
        self.mem_cap = mem_cap
        self.grace = grace
        self.metrics = metrics

    def exec(self, argv: List[str], env: Dict[str, str], cwd: str, stdout: Sink, stderr: Sink) -> OsProcess:
        """Start ``argv`` in ``cwd`` with ``env`` over the worker's environment, in a new process group."""
        if not argv:
            raise ExecError("No command specified.")
        path = _resolve(argv[0])
        merged = dict(os.environ)
        merged.update(env)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            popen, watcher = spawn.spawn(argv, executable=path, cwd=cwd, env=merged, stdin=spawn.DEVNULL,
                                         stdout=out_w, stderr=err_w, close_fds=True, **_NEW_GROUP)
        except OSError as e:
            _close(out_r, err_r)
            raise ExecError(f"fork/exec {path}: {_errno_text(e)}") from None
        except ValueError:
            _close(out_r, err_r)
            raise ExecError(f"fork/exec {path}: invalid argument") from None
        finally:
            _close(out_w, err_w)
        os.set_blocking(out_r, False)
        os.set_blocking(err_r, False)
        return OsProcess(popen, watcher, argv, [out_r, err_r], [stdout, stderr], self.mem_cap, lambda: self.grace,
                         self._report_memory)

    def _report_memory(self, usage: int) -> None:
        if self.metrics is not None:
            self.metrics.set("osexecer/memory", usage)

"""The worker's run queue: capacity one, history one, Run and Abort serialized, queries never blocked.

``run`` answers at once (PENDING with a new id, or FAILED with the reference's refusal text) and the run
proceeds in its own greenlet. ``abort`` waits until the run is final. A resend of the last accepted command
while it still runs returns that run's current status instead of a refusal (the scheduler retries Run after
transport errors with the identical command).
"""

import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import gevent
import gevent.event
import gevent.lock

from scootpy.metrics import Registry
from scootpy.runs import RunCommand, RunState, RunStatus
from scootpy.workerserver.invoker import Invoker
from scootpy.workerserver.statuses import StatusManager

log = logging.getLogger(__name__)

QUEUE_FULL = "No resources available. Please try later."
QUEUE_INIT = "Queue is still initializing. Please try later."
CLEAN_FAILURE = 211


def _fatal_exit() -> None:
    os._exit(1)


@dataclass
class _Active:
    run_id: str
    abort: gevent.event.Event
    finished: gevent.event.Event


class RunQueue:
    """Runs commands one at a time through an ``Invoker``; see the module docstring."""

    def __init__(self, invoker: Invoker, metrics: Registry, statuses: Optional[StatusManager] = None,
                 on_fatal: Callable[[], None] = _fatal_exit):
        self.invoker = invoker
        self.metrics = metrics
        metrics.describe("runs_total", "Runs ended, by final state", in_json=False)
        metrics.describe("run_duration_seconds", "Time from accepting a run to its final state, by final state",
                         in_json=False)
        self.statuses = statuses or StatusManager(history=1)
        self.on_fatal = on_fatal
        self.initialized = False
        self._lock = gevent.lock.RLock()
        self._active: Optional[_Active] = None
        self._last: Optional[Tuple[RunCommand, bool, str]] = None
        self._last_exit_code: Optional[int] = None

    def set_initialized(self) -> None:
        """Start accepting runs (called once the snapshot store is ready)."""
        self.initialized = True

    def run(self, cmd: RunCommand, bazel: bool = False) -> RunStatus:
        """Accept ``cmd`` (PENDING) or refuse it (FAILED, run id "")."""
        with self._lock:
            if not self.initialized:
                return RunStatus(RunState.FAILED, error=QUEUE_INIT)
            if self._active is not None:
                return self._busy_answer(cmd, bazel)
            status = self.statuses.new_run()
            self._last = (cmd, bazel, status.run_id)
            self._active = _Active(status.run_id, gevent.event.Event(), gevent.event.Event())
            gevent.spawn(self._execute, self._active, cmd, bazel)
            return status

    def _busy_answer(self, cmd: RunCommand, bazel: bool) -> RunStatus:
        if self._last is not None and self._last[:2] == (cmd, bazel):
            log.info("duplicate Run of run %s; returning its status", self._last[2])
            current = self.statuses.get(self._last[2])
            if current is not None:
                return current
            return RunStatus(RunState.FAILED, error=f"unknown run id {self._last[2]}")
        return RunStatus(RunState.FAILED, error=QUEUE_FULL)

    def _execute(self, active: _Active, cmd: RunCommand, bazel: bool) -> None:
        started = time.monotonic()
        try:
            final = self.invoker.run(active.run_id, cmd, active.abort, self.statuses.update, bazel)
        except Exception as e:
            log.exception("run %s failed inside the worker", active.run_id)
            final = RunStatus(RunState.FAILED, run_id=active.run_id, exit_code=250, error=f"error execing: {e}",
                              job_id=cmd.job_id, task_id=cmd.task_id, tag=cmd.tag)
        log.info("run %s finished: %s exit %s %s", final.run_id, final.state.name, final.exit_code, final.error)
        self.metrics.inc("runs_total", state=final.state.name)
        self.metrics.observe("run_duration_seconds", time.monotonic() - started, state=final.state.name)
        self.statuses.update(final)
        self._active = None
        active.finished.set()
        self._check_repeated_clean_failure(final)

    def _check_repeated_clean_failure(self, final: RunStatus) -> None:
        """Two worker-side ``git clean`` failures in a row mean a broken repo: stop the worker."""
        code = final.exit_code if final.state == RunState.FAILED else None
        if code == CLEAN_FAILURE and self._last_exit_code == CLEAN_FAILURE:
            self.metrics.inc("workerKillGauge")
            log.critical("Multiple git clean errors in a row recorded. Killing worker.")
            self.on_fatal()
        self._last_exit_code = code

    def abort(self, run_id: str) -> RunStatus:
        """Abort ``run_id`` and return its final status (UNKNOWN for unknown ids)."""
        with self._lock:
            active = self._active
            if active is not None and active.run_id == run_id:
                active.abort.set()
                active.finished.wait()
            status = self.statuses.get(run_id)
            if status is None:
                return RunStatus(RunState.UNKNOWN, run_id=run_id, error=f"unknown run id {run_id}")
            return status

    def erase(self, run_id: str) -> None:
        """Forget ``run_id`` if it is done."""
        self.statuses.erase(run_id)

    def query(self) -> Tuple[List[RunStatus], bool]:
        """The runs held and whether the worker is initialized; never waits."""
        return self.statuses.all(), self.initialized

    def active_run_id(self) -> Optional[str]:
        """The id of the run in progress, if any."""
        active = self._active
        return active.run_id if active is not None else None

"""In-process fake workers (``Workers`` type ``local``, used by ``local.memory``; spec scheduler §6.5).

They never execute anything: every run is finished as soon as it starts, COMPLETE with exit code 0 and
run id "0". Each call first sleeps a random "chaos" delay of up to 50 ms, like the reference's chaos
runner, so the scheduler sees realistic interleavings. Output URIs are ``file:///dev/null`` for a run
without a snapshot, else ``/STDOUT`` and ``/STDERR`` (the reference's null filer ingests to an empty id).
"""

import random
from typing import Optional

import gevent

from scootpy.runs import RunCommand, RunState, RunStatus
from scootpy.sched.cluster.client import DEFAULT_POLLING_PERIOD_S, WorkerStatus, WorkerUnreachable

CHAOS_MAX_DELAY_S = 0.05
RUN_ID = "0"
NULL_URI = "file:///dev/null"


class FakeWorkerClient:
    """A ``WorkerClient`` backed by a runner that finishes every command at once.

    It remembers only its latest run, so its run id is always "0", as with the reference's fresh
    in-memory runner per task.
    """

    def __init__(self, node_id: str, max_delay: float = CHAOS_MAX_DELAY_S,
                 polling_period: float = DEFAULT_POLLING_PERIOD_S, rng: Optional[random.Random] = None):
        self.node_id = node_id
        self.polling_period = polling_period
        self.max_delay = max_delay
        self._rng = rng or random.Random()
        self._latest: Optional[RunStatus] = None
        self._closed = False

    def run(self, cmd: RunCommand) -> RunStatus:
        """Accept ``cmd``: answers PENDING; the run is COMPLETE by the next query."""
        self._chaos()
        tags = dict(job_id=cmd.job_id, task_id=cmd.task_id, tag=cmd.tag)
        out, err = (NULL_URI, NULL_URI) if not cmd.snapshot_id else ("/STDOUT", "/STDERR")
        self._latest = RunStatus(state=RunState.COMPLETE, run_id=RUN_ID, out_uri=out, err_uri=err,
                                 exit_code=0, **tags)
        return RunStatus(state=RunState.PENDING, run_id=RUN_ID, **tags)

    def query(self) -> WorkerStatus:
        """Always initialised; lists the latest run, if any."""
        self._chaos()
        return WorkerStatus(runs=[self._latest] if self._latest else [], initialized=True, error="")

    def abort(self, run_id: str) -> RunStatus:
        """A finished run stays as it is; aborting an unknown run fails like a real worker's error reply."""
        self._chaos()
        if self._latest is None or run_id != self._latest.run_id:
            raise WorkerUnreachable(self.node_id, f"Abort: cannot find run {run_id!r}")
        return self._latest

    def close(self) -> None:
        """Nothing to release; later calls fail."""
        self._closed = True

    def _chaos(self) -> None:
        if self._closed:
            raise WorkerUnreachable(self.node_id, "client closed")
        if self.max_delay > 0:
            gevent.sleep(self._rng.uniform(0, self.max_delay))

    def __repr__(self) -> str:
        return f"FakeWorkerClient({self.node_id!r})"

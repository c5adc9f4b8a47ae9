"""The Worker Thrift service: IDL method names, Thrift structs in and out, the work done by ``RunQueue``.

No method raises: every problem is an answer (FAILED/UNKNOWN statuses), as in the reference.
"""

import logging
import time

from scootpy.idl import worker
from scootpy.metrics import Registry
from scootpy.runs import run_command_from_thrift, run_status_to_thrift
from scootpy.workerserver.runqueue import RunQueue

log = logging.getLogger(__name__)


class WorkerHandler:
    """``worker.Worker`` over a ``RunQueue``."""

    def __init__(self, queue: RunQueue, metrics: Registry):
        self.queue = queue
        self.metrics = metrics
        self.last_contact = time.monotonic()

    def _contact(self, counter: str) -> None:
        self.last_contact = time.monotonic()
        self.metrics.inc(f"handler/{counter}")

    def QueryWorker(self):
        """Every run held (at most the latest one), ``initialized``, and an always-empty error."""
        self._contact("workerQueries")
        runs, initialized = self.queue.query()
        return worker.WorkerStatus(runs=[run_status_to_thrift(r) for r in runs], initialized=initialized,
                                   error="")

    def Run(self, cmd):
        """PENDING with a new run id, or FAILED with the refusal text (never a Thrift error)."""
        started = time.monotonic()
        self._contact("runs")
        if cmd is None:  # a call without its argument: an empty command, which fails like one
            cmd = worker.RunCommand(argv=[])
        command = run_command_from_thrift(cmd)
        log.info("Run argv=%s snapshotId=%s timeoutMs=%s jobID=%s taskID=%s tag=%s", command.argv,
                 command.snapshot_id, command.timeout_ms, command.job_id, command.task_id, command.tag)
        status = self.queue.run(command, bazel=cmd.bazelRequest is not None)
        log.info("Run answered run %r %s %s", status.run_id, status.state.name, status.error)
        self.metrics.observe("handler/runLatency_ms", time.monotonic() - started)
        return run_status_to_thrift(status)

    def Abort(self, runId):
        """The run's final status once it is over; UNKNOWN for ids not held."""
        self._contact("aborts")
        log.info("Abort run %r", runId)
        return run_status_to_thrift(self.queue.abort(runId or ""))

    def Erase(self, runId):
        """Forget a finished run; anything else is ignored."""
        self._contact("clears")
        log.info("Erase run %r", runId)
        self.queue.erase(runId or "")

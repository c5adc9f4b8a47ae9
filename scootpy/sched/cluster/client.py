"""What the scheduler needs from a worker, whatever its kind: the ``WorkerClient`` protocol and readiness.

Two kinds exist: ``rpc.RpcWorkerClient`` (a Thrift worker at ``host:port``) and ``fake.FakeWorkerClient``
(the in-process fake workers of the ``local`` Workers type). Both raise ``WorkerUnreachable`` for every
failure to get a usable answer, so callers handle one error.
"""

import logging
from dataclasses import dataclass, field
from typing import List, Protocol

from scootpy.runs import RunCommand, RunStatus

log = logging.getLogger(__name__)

DEFAULT_POLLING_PERIOD_S = 0.25
READY_RETRY_S = 5.0


class WorkerUnreachable(Exception):
    """A call to a worker failed: refused, timed out, garbage or an error reply. The worker state is unknown."""

    def __init__(self, node_id: str, reason: str):
        super().__init__(f"worker {node_id}: {reason}")
        self.node_id = node_id
        self.reason = reason


class WorkerGaveUp(Exception):
    """A worker reported that it failed to initialise; it will never become ready."""

    def __init__(self, node_id: str, error: str):
        super().__init__(f"worker {node_id} failed to initialize: {error}")
        self.node_id = node_id
        self.error = error


@dataclass(frozen=True)
class WorkerStatus:
    """A worker's answer to QueryWorker: every run it remembers, and whether it can take work."""

    runs: List[RunStatus] = field(default_factory=list)
    initialized: bool = False
    error: str = ""


class WorkerClient(Protocol):
    """One scheduler-side handle on one worker. Calls may come from several greenlets."""

    node_id: str
    polling_period: float  # seconds between QueryWorker polls the worker's config asks for

    def run(self, cmd: RunCommand) -> RunStatus:
        """Start ``cmd``; the returned status may already be final (e.g. FAILED "Runner is busy")."""

    def query(self) -> WorkerStatus:
        """The worker's current runs and readiness."""

    def abort(self, run_id: str) -> RunStatus:
        """Abort a run and return its final status."""

    def close(self) -> None:
        """Release the connection; the client must not be used afterwards."""


def probe_ready(client: WorkerClient) -> bool:
    """One readiness check of a newly seen worker (spec scheduler §6.1).

    Returns False when the caller should try again in ``READY_RETRY_S`` (worker unreachable or still
    initialising); raises ``WorkerGaveUp`` when the worker reported an initialisation error. Once the
    worker is initialised, aborts every run it lists (failures ignored) so stale runs cannot block it,
    and returns True. The caller owns ``client`` and closes it.
    """
    try:
        status = client.query()
    except WorkerUnreachable as e:
        log.debug("readiness of %s: %s", client.node_id, e.reason)
        return False
    if not status.initialized:
        if status.error:
            raise WorkerGaveUp(client.node_id, status.error)
        return False
    for run in status.runs:
        try:
            client.abort(run.run_id)
        except WorkerUnreachable as e:
            log.debug("readiness of %s: abort %s: %s", client.node_id, run.run_id, e.reason)
    return True

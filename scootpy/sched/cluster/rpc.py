"""A Thrift client for one worker (``Workers`` type ``rpc``), speaking the reference's Worker IDL.

Every failure to get a usable answer (refused connection, timeout, garbage, a reply lacking required
fields, a TApplicationException) becomes ``WorkerUnreachable``. The underlying connection re-dials on the
next call after any failure. Calls from several greenlets are serialised on one connection.
"""

from typing import Any

import gevent.lock

from scootpy.idl import worker
from scootpy.runs import RunCommand, RunStatus, run_command_to_thrift, run_status_from_thrift
from scootpy.sched.cluster.client import DEFAULT_POLLING_PERIOD_S, WorkerStatus, WorkerUnreachable
from scootpy.thriftrpc import ThriftClient

DEFAULT_TIMEOUT_S = 60.0
MAX_CONNECT_TIMEOUT_S = 10.0


class RpcWorkerClient:
    """A ``WorkerClient`` for the Thrift worker at ``node_id`` (``host:port``)."""

    def __init__(self, node_id: str, polling_period: float = DEFAULT_POLLING_PERIOD_S,
                 timeout: float = DEFAULT_TIMEOUT_S):
        self.node_id = node_id
        self.polling_period = polling_period
        self._client = ThriftClient(worker.Worker, node_id, timeout=timeout,
                                    connect_timeout=min(timeout, MAX_CONNECT_TIMEOUT_S))
        self._lock = gevent.lock.Semaphore()

    def run(self, cmd: RunCommand) -> RunStatus:
        """Call ``Run``; every optional RunCommand field is sent, as the reference scheduler does."""
        return run_status_from_thrift(self._call("Run", run_command_to_thrift(cmd)))

    def query(self) -> WorkerStatus:
        """Call ``QueryWorker``."""
        reply = self._call("QueryWorker")
        return WorkerStatus(runs=[run_status_from_thrift(r) for r in reply.runs],
                            initialized=bool(reply.initialized), error=reply.error)

    def abort(self, run_id: str) -> RunStatus:
        """Call ``Abort``."""
        return run_status_from_thrift(self._call("Abort", run_id))

    def close(self) -> None:
        """Close the connection (a later call would dial again)."""
        with self._lock:
            self._client.close()

    def _call(self, method: str, *args: Any) -> Any:
        """Call ``method``; the Thrift client has already refused replies lacking required fields."""
        with self._lock:
            try:
                reply = self._client.call(method, *args)
            except Exception as e:  # any failure of the exchange means no usable answer
                raise WorkerUnreachable(self.node_id, f"{method}: {_describe(e)}") from e
        if reply is None:
            raise WorkerUnreachable(self.node_id, f"{method}: reply has no result")
        return reply

    def __repr__(self) -> str:
        return f"RpcWorkerClient({self.node_id!r})"


def _describe(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

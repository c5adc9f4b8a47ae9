"""Cluster membership and worker clients: how the scheduler learns which workers exist and talks to them.

Glossary:
  node id      a worker's Thrift ``host:port`` (``inmemory0..N-1`` for the in-memory cluster).
  membership   the current node set; ``start(on_change)`` delivers ``NodeUpdate`` batches (adds, then removes,
               each sorted) from a greenlet: first the initial set, then every change. Types: ``memory``
               (fixed ``inmemory*`` nodes), ``local`` (this user's processes as
               ``ps x`` shows them, every second), ``static`` (a fixed address list)
               and ``file`` (a watched file of addresses; workers join and leave without a restart).
  worker client  ``run``/``query``/``abort``/``close`` against one worker; ``rpc`` speaks Thrift, ``local`` is an
               in-process fake that completes everything. Every failure is ``WorkerUnreachable``.
  readiness    ``probe_ready(client)``: a new worker is used once it reports itself initialised and its
               leftover runs are aborted.
"""

from scootpy.sched.cluster.client import (DEFAULT_POLLING_PERIOD_S, READY_RETRY_S, WorkerClient, WorkerGaveUp,
                                          WorkerStatus, WorkerUnreachable, probe_ready)
from scootpy.sched.cluster.config import membership_from_config, worker_clients_from_config
from scootpy.sched.cluster.fake import FakeWorkerClient
from scootpy.sched.cluster.local import parse_ps, process_pattern, ps_fetch
from scootpy.sched.cluster.membership import ADD, REMOVE, Membership, NodeUpdate, diff_nodes
from scootpy.sched.cluster.rpc import RpcWorkerClient

__all__ = [
    "ADD", "DEFAULT_POLLING_PERIOD_S", "FakeWorkerClient", "Membership", "NodeUpdate", "READY_RETRY_S", "REMOVE",
    "RpcWorkerClient", "WorkerClient", "WorkerGaveUp", "WorkerStatus", "WorkerUnreachable", "diff_nodes",
    "membership_from_config", "parse_ps", "process_pattern", "probe_ready", "ps_fetch", "worker_clients_from_config",
]

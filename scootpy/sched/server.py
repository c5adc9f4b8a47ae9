"""The scheduler process's composition root: saga log, membership, worker clients, loop, Thrift and HTTP servers.

``SchedulerService(setup, thrift_addr, http_addr)`` wires everything explicitly; ``start()`` binds both ports
and starts the loop, membership and (if configured) recovery; ``stop()`` undoes it. The binary
(``scootpy.sched.main``) and tests use the same object.
"""

import logging
from typing import Any, Callable, Optional, Tuple

import gevent

from scootpy.admin import UNKNOWN_PATH_TEXT, AdminServer, respond
from scootpy.idl import scoot
from scootpy.metrics import Registry
from scootpy.sched.cluster import membership_from_config, probe_ready, worker_clients_from_config
from scootpy.sched.config import SchedulerSetup
from scootpy.sched.handler import CloudScootHandler
from scootpy.sched.resume import recover_jobs
from scootpy.sched.scheduler import Scheduler
from scootpy.thriftrpc import ThriftServer

log = logging.getLogger(__name__)


def saga_log_from_config(cfg: dict, metrics: Optional[Registry] = None) -> Any:
    """Build the SagaLog the ``SagaLog`` option describes (memory by default); a file log reports its fsync
    latencies to ``metrics``."""
    lowered = {k.lower(): v for k, v in cfg.items()}
    if cfg.get("Type") == "file":
        from scootpy.sched.saga.file import FileSagaLog

        return FileSagaLog(lowered["directory"], metrics=metrics)
    from scootpy.sched.saga.memory import MemorySagaLog

    return MemorySagaLog(expiration_sec=lowered.get("expirationsec") or 0,
                         gc_interval_sec=lowered.get("gcintervalsec") or 0)


class SchedulerService:
    """One scheduler: CloudScoot on ``thrift_addr``, admin HTTP (+ status page) on ``http_addr``."""

    def __init__(self, setup: SchedulerSetup, thrift_addr: Tuple[str, int], http_addr: Tuple[str, int],
                 allow: Optional[Callable[[str], bool]] = None, saga_log: Any = None):
        self.setup = setup
        self.metrics = Registry("scheduler")
        self.saga_log = saga_log if saga_log is not None else saga_log_from_config(setup.saga_log, self.metrics)
        self.membership = membership_from_config(setup.cluster)
        workers_type = setup.workers.get("Type", "")
        self.scheduler = Scheduler(setup.scheduler, worker_clients_from_config(setup.workers), self.metrics,
                                   probe=probe_ready if workers_type == "rpc" else None)
        if type(self.saga_log).__name__ == "FileSagaLog":
            self.scheduler.start_data = b""  # the file log stores a data-less StartTask as an empty file
        self.handler = CloudScootHandler(self.scheduler, self.saga_log)
        self.thrift = ThriftServer(scoot.CloudScoot, self.handler, thrift_addr, metrics=self.metrics, allow=allow)
        self.http = AdminServer(http_addr, self.metrics, mounts=self._mounts(), allow=allow)
        self._recovery: Optional[gevent.Greenlet] = None

    def _mounts(self) -> list:
        try:
            from scootpy.sched.web.status import status_page_app
        except ImportError:
            return []
        app = status_page_app(self.scheduler.snapshot)

        def root_only(environ: dict, start_response: Callable) -> Any:
            if environ.get("PATH_INFO", "") == "/":
                return app(environ, start_response)
            return respond(start_response, "501 Not Implemented", UNKNOWN_PATH_TEXT,
                           headers=[("X-Content-Type-Options", "nosniff")])
        return [("/", root_only), ("/status.json", app)]

    def start(self) -> None:
        """Bind both ports, then start the loop, membership and recovery."""
        self.http.start()
        self.thrift.start()
        self.scheduler.start()
        self.membership.start(self.scheduler.node_updates)
        if self.setup.scheduler.recover_jobs_on_startup:
            self._recovery = gevent.spawn(recover_jobs, self.scheduler, self.saga_log)

    def stop(self) -> None:
        for part in (self.thrift, self.http):
            try:
                part.stop()
            except Exception:
                log.exception("stopping %s", part)
        if self._recovery is not None:
            self._recovery.kill(block=False)
        self.membership.stop()
        self.scheduler.stop()
        close = getattr(self.saga_log, "close", None)
        if close is not None:
            close()

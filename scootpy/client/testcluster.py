"""A local.local test cluster started in the background, as the reference's harnesses start theirs.

``LocalTestCluster.start()`` returns at once and starts 3 apiservers, 5 workers and a scheduler in a
thread (reference tests/testhelpers/clusterHelpers.go); ``kill()`` stops them all. A failed startup is
remembered so that waiting for readiness fails fast instead of hanging.
"""

import logging
import shutil
import sys
import tempfile
import threading
import time
from typing import Callable, List, Optional

from scootpy.client import addrs, signals
from scootpy.client.cluster import ClusterConfig, SetupError, child_log_level, start_cluster
from scootpy.client.cmds import Cmds, CmdsError
from scootpy.client.cloudscoot import CloudScootClient
from scootpy.client.jobhelpers import RPC_ERRORS
from scootpy.flags import FlagSet
from scootpy.logs import start_logging

log = logging.getLogger(__name__)


class LocalTestCluster:
    """One background local.local cluster on the (offset) reference ports."""

    def __init__(self, ports: addrs.Ports, log_level: str = "info"):
        self.cfg = ClusterConfig(strategy="local.local", log_level=log_level, ports=ports)
        self.cmds = Cmds()
        self.error: Optional[str] = None
        self._tmp = tempfile.mkdtemp(prefix="localTestCluster")
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "LocalTestCluster":
        self._thread = threading.Thread(target=self._run, daemon=True, name="test-cluster")
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            start_cluster(self.cfg, self.cmds, tempfile.mkdtemp(prefix="common-bundles", dir=self._tmp),
                          addrs.write_addrs)
        except (SetupError, CmdsError) as e:
            self.error = str(e)
            log.error("test cluster failed to start: %s", e)
            self.cmds.kill()

    def kill(self) -> None:
        """Stop every process of the cluster (idempotent)."""
        self.cmds.kill()
        if self._thread is not None:
            self._thread.join(30)
        self.cmds.kill()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def wait_ready(self, client: CloudScootClient, limit: float = 120.0, poll: float = 0.05) -> None:
        """Poll GetStatus("testJobId") until the scheduler answers; raise SetupError if startup failed."""
        deadline = time.monotonic() + limit
        while True:
            if self.error is not None:
                raise SetupError(self.error)
            if self.cmds.child_died.is_set():
                raise SetupError("a cluster process exited during startup")
            try:
                client.get_status("testJobId")
                log.info("Cluster is ready")
                return
            except RPC_ERRORS as e:
                if time.monotonic() > deadline:
                    raise SetupError(f"cluster not ready after {limit:g}s: {e}") from None
            time.sleep(poll)


Harness = Callable[[addrs.Ports, str, List[LocalTestCluster]], None]


def harness_main(prog: str, harness: Harness, argv: Optional[List[str]] = None) -> None:
    """Entry point shared by ``recoverytest`` and ``scoot-integration``.

    Parses ``-log_level``, runs ``harness(ports, child_log_level, clusters)`` and exits 0 when it returns,
    1 on a signal or a failure; every cluster the harness appended to ``clusters`` is killed first.
    """
    fs = FlagSet(prog)
    fs.string("log_level", "info", "Log everything at this level and above (error|info|debug)")
    ns = fs.parse(sys.argv[1:] if argv is None else argv)
    if not start_logging(ns.log_level):
        sys.exit(1)
    clusters: List[LocalTestCluster] = []
    signals.install()
    code = 0
    try:
        harness(addrs.Ports(addrs.port_offset()), child_log_level(ns.log_level), clusters)
    except signals.Interrupted as e:
        log.info("signal %s received; shutting down", e)
        code = 1
    except (SetupError, RuntimeError, TimeoutError, ValueError) as e:
        log.critical("%s", e)
        code = 1
    finally:
        signals.ignore()
        for cluster in clusters:
            cluster.kill()
    sys.exit(code)

"""``workerserver``: runs one command at a time for a scheduler, over Thrift, with logs served over HTTP.

Flags are the reference's (Go style); ``ps x`` shows ``... workerserver ... -thrift_addr <addr>``, which is
how local schedulers find workers. The bundlestore is ``-bundlestore``, else a running ``apiserver`` found
with ``ps``, else line 2 of ``~/.cloudscootaddr$SCOOT_ID``, else a file store in the worker's temp dir.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Optional, Tuple  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

from scootpy.admin import AdminServer  # noqa: E402
from scootpy.flags import FlagSet  # noqa: E402
from scootpy.idl import worker  # noqa: E402
from scootpy.logs import exit_now, start_logging  # noqa: E402
from scootpy.metrics import Registry  # noqa: E402
from scootpy.netacl import ALLOW_FROM_HELP, parse_allow_from  # noqa: E402
from scootpy.runs import RunState  # noqa: E402
from scootpy.sched.cluster.local import ps_fetch  # noqa: E402
from scootpy.snapshots.gitdb import GitDB  # noqa: E402
from scootpy.snapshots.metered import MeteredStore  # noqa: E402
from scootpy.snapshots.store import FileStore, Store, addr_from_cloudscootaddr, store_for_worker_flag  # noqa: E402
from scootpy.thriftrpc import ThriftServer, parse_addr  # noqa: E402
from scootpy.workerserver.execer import InterceptExecer  # noqa: E402
from scootpy.workerserver.execer.os import OsExecer  # noqa: E402
from scootpy.workerserver.execer.sim import SimExecer  # noqa: E402
from scootpy.workerserver.execer.spawn import become_subreaper, install_child_watching  # noqa: E402
from scootpy.workerserver.filer import Filer  # noqa: E402
from scootpy.workerserver.handler import WorkerHandler  # noqa: E402
from scootpy.workerserver.invoker import Invoker  # noqa: E402
from scootpy.workerserver.outputs import OutputCreator  # noqa: E402
from scootpy.workerserver.runqueue import RunQueue  # noqa: E402

log = logging.getLogger("workerserver")

CONFIG_ASSETS = {"config/local.local": "{}", "config/config.go": ""}
_ASSET_NAME = re.compile(r"^[A-Za-z0-9]*\.[A-Za-z0-9]*\.*.*$")
SHUTDOWN_GRACE_S = 1.0
STATS_INTERVAL_S = 0.5


def build_flags() -> FlagSet:
    """The reference workerserver's flags (plus ``-allow_from``), with its defaults."""
    fs = FlagSet("workerserver")
    fs.string("thrift_addr", "localhost:9092", "host:port to serve the Worker Thrift API on")
    fs.string("http_addr", "localhost:9093", "host:port to serve HTTP (health, metrics, run output) on")
    fs.string("config", "local.local", "config asset name (local.local) or literal JSON; the worker has no keys")
    fs.int("mem_cap", 0, "kill runs whose process group uses at least this many bytes of RSS; 0 = no limit")
    fs.string("repo", "", "accepted for compatibility; unused")
    fs.string("bundlestore", "", "bundle store: an absolute directory or an apiserver's http host:port")
    fs.ignored("cas_addr", "", "gRPC CAS address for Bazel runs (not supported; ignored)")
    fs.string("log_level", "info", "log at this level and above (error|info|debug)")
    fs.string("allow_from", "", ALLOW_FROM_HELP)
    return fs


def check_config(flag: str) -> None:
    """Resolve ``-config`` like the reference and check it is a JSON object; exit 1 with its text if not."""
    text = flag
    if _ASSET_NAME.match(flag):
        parts = flag.split(".", 2)
        name = f"config/{parts[0]}.{parts[1]}"
        if name not in CONFIG_ASSETS:
            _fatal(f"Scheduler: Error Loading Config File {name}: Asset {name} not found")
        text = CONFIG_ASSETS[name]
        if len(parts) == 3:
            try:
                override = json.loads(parts[2])
            except ValueError as e:
                _fatal(f"Scheduler: Error Parsing Config File Suffix {name}: {e}")
            if not isinstance(override, dict):
                _fatal(f"Scheduler: Error Merging Config File Suffix {name}: map[] + {override}")
            text = json.dumps(override)
    try:
        parsed = json.loads(text or "{}")
    except ValueError as e:
        _fatal(f"Error configuring Worker: Couldn't parse top-level config: {e}")
    if parsed is not None and not isinstance(parsed, dict):
        kind = {list: "array", str: "string", bool: "bool"}.get(type(parsed), "number")
        _fatal("Error configuring Worker: Couldn't parse top-level config: json: cannot unmarshal "
               f"{kind} into Go value of type map[string]json.RawMessage")


def _fatal(text: str) -> None:
    log.critical("%s", text)
    sys.exit(1)


def locate_store(flag: str, tmp: str) -> Store:
    """The reference's order: the flag, a ps-discovered apiserver, ~/.cloudscootaddr, a local file store."""
    if flag:
        return store_for_worker_flag(flag)
    found = ps_fetch("apiserver", "http_addr") or []
    if found:
        addr = random.choice(found)
        log.info("No stores specified, but found an apiserver with ps: %s --> %s", found, addr)
        return store_for_worker_flag(addr)
    addr = addr_from_cloudscootaddr()
    if addr:
        log.info("No stores specified, but read .cloudscootaddr: %s", addr)
        return store_for_worker_flag(addr)
    log.info("No stores specified or found, creating a tmp file store")
    return FileStore(os.path.join(tmp, "bundles"))


class Worker:
    """The composed worker process: queue, servers, snapshot store; ``serve()`` blocks until told to stop."""

    def __init__(self, ns: SimpleNamespace, tmp: str):
        self.ns = ns
        self.tmp = tmp
        self.metrics = Registry("workerserver")
        self.started = time.monotonic()
        self.outputs = OutputCreator(os.path.join(tmp, "output"), ns.http_addr)
        self.os_execer = OsExecer(mem_cap=ns.mem_cap, metrics=self.metrics)
        self.filer = Filer(tmp, metrics=self.metrics)
        invoker = Invoker(self.filer, self.outputs, InterceptExecer(SimExecer(), self.os_execer), self.metrics)
        self.queue = RunQueue(invoker, self.metrics)
        self.handler = WorkerHandler(self.queue, self.metrics)
        allow = parse_allow_from(ns.allow_from)
        self.thrift = ThriftServer(worker.Worker, self.handler, parse_addr(ns.thrift_addr), metrics=self.metrics,
                                   allow=allow)
        self.http = AdminServer(parse_addr(ns.http_addr), self.metrics, mounts=[("/output", self.outputs.wsgi)],
                                allow=allow)

    def initialize(self) -> None:
        """Create the snapshot database; runs are refused (still initializing) until it exists."""
        try:
            store = locate_store(self.ns.bundlestore, self.tmp)
            repo = tempfile.mkdtemp(prefix="gitdb-repo-", dir=self.tmp)
            self.filer.db = GitDB(repo, store=MeteredStore(store, self.metrics), tmp_root=self.tmp)
        except Exception as e:  # any failure leaves the worker up but never initialized, like the reference
            log.error("worker initialization failed: %s", e)
            self.metrics.inc("workerDownloadInitFailure")
            return
        self.metrics.set("handler/workerFinishedInitLatency_ms", (time.monotonic() - self.started) * 1000)
        self.queue.set_initialized()
        log.info("worker initialized")

    def report_stats(self) -> None:
        """Refresh the reference's worker gauges every half second."""
        while True:
            now = time.monotonic()
            runs, _ = self.queue.query()
            done = [r for r in runs if r.state.is_done]
            gauges = {"workerUptimeGauge_ms": (now - self.started) * 1000,
                      "timeSinceLastContactGauge_ms": (now - self.handler.last_contact) * 1000,
                      "activeRunsGauge": len(runs) - len(done),
                      "failedCachedRunsGauge": sum(r.state == RunState.FAILED for r in done),
                      "endedCachedRunsGauge": len(done),
                      "workerStartGauge": 1 if now - self.started < 60 else 0}
            for name, value in gauges.items():
                self.metrics.set(f"handler/{name}", value)
            gevent.sleep(STATS_INTERVAL_S)

    def start(self) -> None:
        """Bind both ports (raises OSError when one is taken)."""
        self.http.start()
        self.thrift.start()

    def serve(self) -> None:
        """Initialize in the background and serve until SIGTERM/SIGINT, then clean up."""
        log.info("Serving thrift on %s, http on %s", self.ns.thrift_addr, self.ns.http_addr)
        helpers = [gevent.spawn(self.initialize), gevent.spawn(self.report_stats)]
        stop = gevent.event.Event()
        gevent.signal_handler(signal.SIGTERM, stop.set)
        gevent.signal_handler(signal.SIGINT, stop.set)
        stop.wait()
        log.info("stopping")
        self.thrift.stop()
        self.http.stop()
        self.shutdown()
        gevent.killall(helpers)

    def shutdown(self) -> None:
        """Kill the running command (short grace), then remove the worker's temporary files."""
        self.os_execer.grace = SHUTDOWN_GRACE_S
        active = self.queue.active_run_id()
        if active is not None:
            self.queue.abort(active)
        self.filer.close()


def parse_args(argv: Optional[list] = None) -> Tuple[FlagSet, SimpleNamespace]:
    """Parse the command line Go-style; bad flags exit 2 with the usage."""
    fs = build_flags()
    ns = fs.parse(sys.argv[1:] if argv is None else argv)
    if ns.mem_cap < 0:
        sys.stderr.write(f'invalid value "{ns.mem_cap}" for flag -mem_cap: parse error\n{fs.usage()}')
        sys.exit(2)
    return fs, ns


def main() -> None:
    """Console entry point of ``workerserver``."""
    fs, ns = parse_args()
    if not start_logging(ns.log_level):
        return
    fs.log_ignored(ns)
    check_config(ns.config)
    install_child_watching()
    become_subreaper()
    tmp = tempfile.mkdtemp(prefix="scoot-tmp-")
    try:
        try:
            server = Worker(ns, tmp)
            server.start()
        except (ValueError, OSError) as e:
            _fatal(f"cannot start workerserver: {e}")
        server.serve()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    exit_now()


if __name__ == "__main__":
    main()

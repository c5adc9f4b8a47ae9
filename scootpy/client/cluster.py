"""Start a local Cloud Scoot (reference scootapi/setup): apiservers, then workers, then the scheduler.

Each group starts at once and is then waited for (the reference waits for each process in turn): the
apiservers are up before any worker starts (workers look for them once, at startup), and the workers
before the scheduler.

The children get the reference's exact command lines (``-http_addr localhost:11100 -grpc_addr
localhost:12100 -log_level info`` ...), so ``ps``-based discovery finds them as it finds Go ones. With a
port offset (ours, ``SCOOT_PORT_OFFSET``) the cluster is private: the scheduler gets a static list of
its own workers and each worker an explicit ``-bundlestore``, so side-by-side clusters never mix.
"""

import json
import logging
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List

from scootpy.client.addrs import Ports
from scootpy.client.cmds import Cmds

log = logging.getLogger(__name__)

PORT_WAIT_S = 10.0
PORT_POLL_S = 0.02
DEFAULT_WORKERS_LOCAL = 5
DEFAULT_WORKERS_MEMORY = 10
DEFAULT_APISERVERS = 3
STRATEGIES = ("local.memory", "local.local")
API_STRATEGIES = ("local",)
BUNDLESTORE_DIR_ENV = "BUNDLESTORE_STORE_DIR"
BIN_DIR_ENV = "SCOOT_BIN_DIR"


_CHILD_LEVELS = {"panic": "info", "warn": "warning"}


def child_log_level(name: str) -> str:
    """The ``-log_level`` passed to children: logrus' canonical name (``panic`` becomes ``info``, as in Go)."""
    return _CHILD_LEVELS.get(name.lower(), name.lower())


class SetupError(Exception):
    """The cluster could not be started; the text is the reference's where it has one."""


@dataclass(frozen=True)
class ClusterConfig:
    """What to start: strategy, counts, the workers' repo, the children's log level and the ports."""

    strategy: str = "local.memory"
    api_strategy: str = "local"
    workers: int = DEFAULT_WORKERS_LOCAL
    apiservers: int = DEFAULT_APISERVERS
    repo_dir: str = ""
    log_level: str = "info"
    ports: Ports = Ports()


def find_binary(name: str) -> str:
    """A server binary: from ``$SCOOT_BIN_DIR`` if set (e.g. the Go reference's), else next to the running
    Python, else on PATH."""
    dirs = [d for d in (os.environ.get(BIN_DIR_ENV, ""), os.path.dirname(sys.executable)) if d]
    for directory in dirs:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found:
        return found
    raise SetupError(f'exec: "{name}": executable file not found in {" or ".join(dirs)} or in $PATH')


def validate(cfg: ClusterConfig) -> None:
    """Reject bad strategies and counts before anything starts (the reference finds some only later)."""
    if cfg.api_strategy not in API_STRATEGIES:
        raise SetupError(f'--strategy="{cfg.api_strategy}" is not a valid api strategy; valid choices are '
                         f"[{' '.join(API_STRATEGIES)}]")
    if cfg.strategy not in STRATEGIES:
        raise SetupError(f'--strategy="{cfg.strategy}" is not a valid sched strategy; valid choices are '
                         f"[{' '.join(STRATEGIES)}]")
    if cfg.apiservers < 0:
        raise SetupError(f"ApiServer count must be >0 (or zero for default #), was: {cfg.apiservers}")
    if cfg.strategy == "local.local" and cfg.workers < 0:
        raise SetupError(f"LocalWorkers must start with at least 1 worker (or zero for default #): {cfg.workers}")


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on localhost:port."""
    try:
        with socket.create_connection(("localhost", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(port: int, cmds: Cmds, timeout: float = PORT_WAIT_S) -> None:
    """Wait until ``port`` accepts connections; fail after ``timeout`` or as soon as the cluster goes down."""
    log.info("Waiting for port %d for %gs", port, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cmds.killed:
            raise SetupError(f"a cluster process exited while waiting for port {port}")
        if port_open(port):
            log.info("Port %d active", port)
            return
        time.sleep(PORT_POLL_S)
    raise SetupError(f"port {port} is not up after {timeout:g}s")


def check_ports_free(ports: List[int]) -> None:
    """Refuse to start over another cluster: every port we are about to use must be free."""
    busy = [p for p in ports if port_open(p)]
    if busy:
        raise SetupError(f"port(s) {', '.join(map(str, busy))} already in use: is another cluster running? "
                         f"(set SCOOT_PORT_OFFSET to run one beside it)")


def planned_ports(cfg: ClusterConfig) -> List[int]:
    p = cfg.ports
    ports = [q for i in range(cfg.apiservers or DEFAULT_APISERVERS) for q in (p.api_http(i), p.api_grpc(i))]
    if cfg.strategy == "local.local":
        ports += [q for i in range(cfg.workers or DEFAULT_WORKERS_LOCAL) for q in (p.worker_http(i), p.worker_thrift(i))]
    return ports + [p.sched_thrift, p.sched_http]


def start_apiservers(cfg: ClusterConfig, cmds: Cmds, store_dir: str) -> List[str]:
    """Start the apiservers on one shared bundle directory; their HTTP addresses."""
    log.info("Starting up a Local ApiServer")
    binary = find_binary("apiserver")
    env = dict(os.environ, **{BUNDLESTORE_DIR_ENV: store_dir})
    addrs = []
    for i in range(cfg.apiservers or DEFAULT_APISERVERS):
        http, grpc = f"localhost:{cfg.ports.api_http(i)}", f"localhost:{cfg.ports.api_grpc(i)}"
        cmds.start([binary, "-http_addr", http, "-grpc_addr", grpc, "-log_level", cfg.log_level], env=env)
        addrs.append(http)
    for i in range(len(addrs)):
        wait_for_port(cfg.ports.api_http(i), cmds)
        wait_for_port(cfg.ports.api_grpc(i), cmds)
    return addrs


def start_workers(cfg: ClusterConfig, cmds: Cmds, api_addrs: List[str]) -> str:
    """Start the workers (local.local) and return the scheduler's ``-config``."""
    if cfg.strategy == "local.memory":
        log.info("Using in-memory workers")
        return f'local.memory.{{"Cluster": {{"Count": {cfg.workers or DEFAULT_WORKERS_MEMORY}}}}}'
    count = cfg.workers or DEFAULT_WORKERS_LOCAL
    log.info("Using %d local workers", count)
    binary = find_binary("workerserver")
    nodes = []
    for i in range(count):
        thrift, http = f"localhost:{cfg.ports.worker_thrift(i)}", f"localhost:{cfg.ports.worker_http(i)}"
        argv = [binary, "-thrift_addr", thrift, "-http_addr", http, "-log_level", cfg.log_level, "-repo", cfg.repo_dir]
        if cfg.ports.offset:
            argv += ["-bundlestore", api_addrs[i % len(api_addrs)]]
        cmds.start(argv)
        nodes.append(thrift)
    for i in range(count):
        wait_for_port(cfg.ports.worker_http(i), cmds)
        wait_for_port(cfg.ports.worker_thrift(i), cmds)
    if cfg.ports.offset:
        return "local.local." + json.dumps({"Cluster": {"Type": "static", "Workers": nodes}})
    return "local.local"


def start_scheduler(cfg: ClusterConfig, cmds: Cmds, config: str) -> str:
    log.info("Starting up a Local Scheduler")
    binary = find_binary("scheduler")
    cmds.start([binary, "-thrift_addr", cfg.ports.sched_addr, "-http_addr", f"localhost:{cfg.ports.sched_http}",
                "-log_level", cfg.log_level, "-config", config])
    wait_for_port(cfg.ports.sched_thrift, cmds)
    wait_for_port(cfg.ports.sched_http, cmds)
    return cfg.ports.sched_addr


def start_cluster(cfg: ClusterConfig, cmds: Cmds, store_dir: str,
                  write_addrs: Callable[[str, str], None]) -> Dict[str, object]:
    """Validate, then start everything in the reference's order and record the addresses."""
    validate(cfg)
    check_ports_free(planned_ports(cfg))
    api_addrs = start_apiservers(cfg, cmds, store_dir)
    sched = start_scheduler(cfg, cmds, start_workers(cfg, cmds, api_addrs))
    try:
        write_addrs(sched, api_addrs[0])
    except OSError as e:
        log.warning("could not write the address file: %s", e)
    return {"scheduler": sched, "apiservers": api_addrs}

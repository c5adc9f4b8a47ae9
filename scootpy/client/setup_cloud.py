"""``setup-cloud-scoot``: start a local Cloud Scoot, then wait, or ``run CMD ARGS...`` and tear down.

Exit status: 0 when CMD succeeded; 1 when CMD failed, a cluster process died, startup failed, or a
SIGINT/SIGTERM arrived (every child is then killed: SIGINT to its group, SIGKILL after 5 s); 2 for a
bad flag. Unlike the reference, an invalid ``-log_level`` exits 1 and a dead child ends wait mode (exit 1).
"""

import logging
import shutil
import sys
import tempfile
from types import SimpleNamespace
from typing import List, Optional

from scootpy.client import addrs, signals
from scootpy.client.cluster import (DEFAULT_APISERVERS, DEFAULT_WORKERS_LOCAL, ClusterConfig, SetupError,
                                   child_log_level, start_cluster)
from scootpy.client.cmds import Cmds, CmdsError, exit_text
from scootpy.flags import FlagSet
from scootpy.logs import start_logging

log = logging.getLogger(__name__)


def flagset() -> FlagSet:
    fs = FlagSet("setup-cloud-scoot")
    fs.string("strategy", "local.memory", "scheduler/worker strategy to setup")
    fs.string("api_strategy", "local", "api strategy to setup server w/bundlestore.")
    fs.string("repo_dir", "", "backing repo to use as a basis for handling bundles")
    fs.int("workers", DEFAULT_WORKERS_LOCAL, "number of workers to use")
    fs.int("apiservers", DEFAULT_APISERVERS, "number of apiservers to use")
    fs.string("log_level", "info", "Log everything at this level and above (error|info|debug)")
    return fs



def _wait_or_run(args: List[str], cmds: Cmds) -> int:
    if not args:
        while not cmds.child_died.wait(1.0):
            pass
        raise SetupError("a cluster process exited; shutting down")
    if args[0] != "run":
        raise SetupError(f"command {args[0]} is not supported (currently only 'run')")
    if len(args) < 2:
        raise SetupError(f"need at least a command to run; [{' '.join(args)}]")
    command = shutil.which(args[1]) or (args[1] if "/" in args[1] else None)
    if command is None:
        raise SetupError(f'exec: "{args[1]}": executable file not found in $PATH')
    returncode = cmds.run([command] + args[2:])
    if returncode != 0:
        raise SetupError(exit_text(returncode))
    if cmds.child_died.is_set():
        raise SetupError("a cluster process exited while the command ran")
    return 0


def run_setup(ns: SimpleNamespace, cmds: Cmds, offset: int) -> int:
    """Start the cluster described by the flags, then wait or run; the exit status."""
    level = child_log_level(ns.log_level)
    cfg = ClusterConfig(strategy=ns.strategy, api_strategy=ns.api_strategy, workers=ns.workers,
                        apiservers=ns.apiservers, repo_dir=ns.repo_dir, log_level=level,
                        ports=addrs.Ports(offset))
    tmp = tempfile.mkdtemp(prefix="setup-cloud-scoot-")
    try:
        store = tempfile.mkdtemp(prefix="common-bundles", dir=tmp)
        start_cluster(cfg, cmds, store, addrs.write_addrs)
        return _wait_or_run(ns.args, cmds)
    finally:
        cmds.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Optional[List[str]] = None) -> None:
    """Console entry point."""
    ns = flagset().parse(sys.argv[1:] if argv is None else argv)
    if not start_logging(ns.log_level):
        sys.exit(1)
    try:
        offset = addrs.port_offset()
    except ValueError as e:
        log.critical("%s", e)
        sys.exit(1)
    cmds = Cmds()
    signals.install()
    try:
        code = run_setup(ns, cmds, offset)
    except signals.Interrupted as e:
        log.info("signal %s received; shutting down", e)
        code = 1
    except (SetupError, CmdsError) as e:
        log.critical("%s", e)
        code = 1
    sys.exit(code)

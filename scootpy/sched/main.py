"""The ``scheduler`` binary: the reference's flags, config resolution and fatal texts (spec §1.1, §1.2)."""

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from typing import List, Optional  # noqa: E402

import gevent  # noqa: E402

from scootpy.flags import FlagSet  # noqa: E402
from scootpy.logs import exit_now, start_logging  # noqa: E402
from scootpy.netacl import ALLOW_FROM_HELP, parse_allow_from  # noqa: E402
from scootpy.sched.config import ConfigError, parse_config, resolve_config_text  # noqa: E402
from scootpy.thriftrpc import parse_addr  # noqa: E402

log = logging.getLogger("scootpy.sched.main")


def flagset() -> FlagSet:
    fs = FlagSet("scheduler")
    fs.string("thrift_addr", "localhost:9090", "Bind address for api server")
    fs.string("http_addr", "localhost:9091", "Bind address for http server")
    fs.ignored("grpc_addr", "localhost:9099", "Bind address for grpc server")
    fs.string("config", "local.memory", "Scheduler Config (either a filename like local.memory or JSON text")
    fs.string("log_level", "info", "Log everything at this level and above (error|info|debug)")
    fs.string("allow_from", "", ALLOW_FROM_HELP)
    for name, default, text in (("max_grpc_conn", "0", "max grpc listener connections"),
                                ("max_grpc_rps", "0", "max grpc incoming requests per second"),
                                ("max_grpc_rps_burst", "0", "max grpc incoming requests burst"),
                                ("max_grpc_streams", "0", "max grpc streams per client"),
                                ("max_grpc_idle_mins", "1", "max grpc connection idle time")):
        fs.ignored(name, default, text)
    return fs


def _fatal(message: str) -> None:
    log.critical("%s", message)
    sys.exit(1)


def main(argv: Optional[List[str]] = None) -> None:
    fs = flagset()
    ns = fs.parse(sys.argv[1:] if argv is None else argv)
    if not start_logging(ns.log_level):
        return
    fs.log_ignored(ns)
    try:
        setup = parse_config(resolve_config_text(ns.config))
        thrift_addr, http_addr = parse_addr(ns.thrift_addr), parse_addr(ns.http_addr)
        allow = parse_allow_from(ns.allow_from)
        from scootpy.sched.server import SchedulerService

        service = SchedulerService(setup, thrift_addr, http_addr, allow=allow)
    except (ConfigError, ValueError) as e:
        _fatal(str(e))
        return
    log.info("Starting Cloud Scoot API Server & Scheduler on %s", ns.thrift_addr)
    try:
        service.start()
    except OSError as e:
        _fatal(f"Error serving: {e}")
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    log.info("scheduler stopping")
    service.stop()
    exit_now()


if __name__ == "__main__":
    main()

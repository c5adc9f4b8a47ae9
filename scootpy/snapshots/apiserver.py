"""``apiserver``: the bundlestore HTTP server (``/bundle/``, ``/view/``, ``/health``, metrics).

Bundles live in ``$BUNDLESTORE_STORE_DIR`` or, when unset, in a temporary directory removed at exit. Every
reference flag is accepted; the gRPC/CAS ones (Bazel, out of scope) are ignored with one log line, except
that a given ``-grpc_addr`` is listened on (connections closed at once) because the reference's cluster
setup waits for that port. ``-allow_from`` (ours) limits which peers get answers (others get 403).
"""

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import List, Optional  # noqa: E402

from gevent.server import StreamServer  # noqa: E402

from scootpy.admin import AdminServer, run_servers  # noqa: E402
from scootpy.flags import FlagSet, parse_or_exit  # noqa: E402
from scootpy.logs import exit_now, setup_logging  # noqa: E402
from scootpy.metrics import Registry  # noqa: E402
from scootpy.netacl import ALLOW_FROM_HELP, parse_allow_from  # noqa: E402
from scootpy.snapshots.bundlestore import BundleApp, ViewApp  # noqa: E402
from scootpy.snapshots.checkouts import remove_tree  # noqa: E402
from scootpy.snapshots.gitdb import GitDB  # noqa: E402
from scootpy.snapshots.store import FileStore  # noqa: E402
from scootpy.thriftrpc import parse_addr  # noqa: E402

log = logging.getLogger(__name__)

DEFAULT_HTTP_ADDR = "localhost:9094"
STORE_DIR_ENV = "BUNDLESTORE_STORE_DIR"
_IGNORED = (("grpc_addr", "localhost:9098", "Bind address for grpc server"),
            ("cache_size", "2147483648", "In-memory bundle cache size in bytes"),
            ("cas_buffer_size", "2147483648", "In-memory size of all concurrent CAS requests"),
            ("max_grpc_conn", "0", "max grpc listener connections"),
            ("max_grpc_rps", "0", "max grpc incoming requests per second"),
            ("max_grpc_rps_burst", "0", "max grpc incoming requests burst"),
            ("max_grpc_streams", "0", "max grpc streams per client"),
            ("max_grpc_idle_mins", "1", "max grpc connection idle time"))


def flagset() -> FlagSet:
    flags = FlagSet("apiserver")
    flags.string("http_addr", DEFAULT_HTTP_ADDR, "'host:port' addr to serve http on")
    flags.string("config", "{}", "API Server Config (either a filename like local.local or JSON text")
    flags.string("log_level", "info", "Log everything at this level and above (error|info|debug)")
    flags.string("allow_from", "", ALLOW_FROM_HELP)
    for name, default, text in _IGNORED:
        flags.ignored(name, default, text)
    return flags


def _close_at_once(sock, _addr) -> None:
    sock.close()


def grpc_placeholder(ns) -> List[StreamServer]:
    """When ``-grpc_addr`` is given, listen there and close every connection: the reference's harness waits
    for that port to open, but Bazel's gRPC CAS is out of scope. A port that cannot be bound is logged."""
    if "grpc_addr" not in ns.given:
        return []
    try:
        listener = StreamServer(parse_addr(ns.grpc_addr), _close_at_once)
        listener.init_socket()
    except (OSError, ValueError) as exc:
        log.warning("not listening on -grpc_addr %s: %s", ns.grpc_addr, exc)
        return []
    log.info("gRPC (Bazel CAS) is not served: connections to %s are closed", ns.grpc_addr)
    return [listener]


def main(argv: Optional[List[str]] = None) -> None:
    flags = flagset()
    ns = parse_or_exit(flags, argv)
    try:
        setup_logging(ns.log_level)
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(1)
    flags.log_ignored(ns)
    try:
        addr = parse_addr(ns.http_addr)
        allow = parse_allow_from(ns.allow_from)
    except ValueError as exc:
        log.error("%s", exc)
        sys.exit(1)
    scratch = Path(tempfile.mkdtemp(prefix="scoot-tmp-"))
    try:
        store = FileStore(os.environ.get(STORE_DIR_ENV) or scratch / "bundles")
        store.remove_stale_temps()
        view = ViewApp(lambda: GitDB(tempfile.mkdtemp(prefix="view-repo-", dir=scratch), store, tmp_root=scratch))
        metrics = Registry("apiserver")
        server = AdminServer(addr, metrics, mounts=[("/bundle", BundleApp(store, metrics)), ("/view", view)],
                             allow=allow)
        log.info("bundlestore serving %s on http://%s/bundle/", store.root, ns.http_addr)
        servers = [server] + grpc_placeholder(ns)
        try:
            run_servers(*servers)
        except OSError as exc:
            log.error("cannot serve on %s: %s", ns.http_addr, exc)
            sys.exit(1)
        finally:
            view.close()
    finally:
        remove_tree(scratch)
    exit_now()


if __name__ == "__main__":
    main()

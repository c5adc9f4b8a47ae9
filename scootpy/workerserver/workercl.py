"""``workercl``: talk to one worker directly (``run``, ``abort``, ``queryworker``), as the reference's CLI does.

Everything it reports goes to stderr as log lines (``Calling ... rpc``, then the reply's Go ``String()``
and ``Error: <nil>`` or the failure); stdout stays empty except for ``--help`` of a subcommand. RPC
failures still exit 0; command-line errors print cobra's ``Error:`` block and exit 1. A leading
``-log_level`` is the Go flag it always was; unlike the reference it no longer confuses the subcommand.
"""

import errno
import logging
import signal
import socket
import sys
from typing import Any, List, Optional, Tuple

from scootpy.client.cobra import (CobraCommand, CobraError, CobraGroup, GoFlag, HelpRequested, HelpTopic,
                                  print_command_error)
from scootpy.flags import FlagSet
from scootpy.idl import worker
from scootpy.logs import start_logging
from scootpy.runs import RunCommand, RunStatus, run_status_from_thrift
from scootpy.thriftrpc import ThriftClient, parse_addr
from scootpy.workerserver.gotext import command_string, go_duration_ns, worker_status_string, run_status_string

log = logging.getLogger("workercl")

DEFAULT_ADDR = "localhost:9092"
RPC_TIMEOUT_S = 60.0


def _addr_flag() -> GoFlag:
    return GoFlag("addr", "string", DEFAULT_ADDR, "worker server address")


def _go_list(items: List[str]) -> str:
    return "[" + " ".join(items) + "]"


def dial_error(addr: str, exc: OSError) -> str:
    """The Go client's text for a failed dial."""
    host, port = parse_addr(addr)
    if isinstance(exc, socket.gaierror):
        return f"dial tcp: lookup {host}: no such host"
    try:
        ip = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except OSError:
        ip = host
    if isinstance(exc, socket.timeout):
        reason = "i/o timeout"
    elif exc.errno == errno.ECONNREFUSED:
        reason = "connect: connection refused"
    else:
        reason = "connect: " + (exc.strerror or str(exc)).lower()
    return f"dial tcp {ip}:{port}: {reason}"


def _call(addr: str, method: str, *args: Any) -> Tuple[Any, Optional[str]]:
    """Call ``method`` on the worker; return (reply, None) or (None, Go-style error text)."""
    try:
        parse_addr(addr)
    except ValueError as e:
        return None, f"Error dialing to set up client connection: Error opening socket: {e}"
    client = ThriftClient(worker.Worker, addr, timeout=RPC_TIMEOUT_S)
    try:
        try:
            client._connect()
        except OSError as e:
            return None, f"Error dialing to set up client connection: Error opening transport: {dial_error(addr, e)}"
        return getattr(client, method)(*args), None
    except Exception as e:  # every RPC failure is reported, not raised, like the reference
        return None, str(e) or type(e).__name__
    finally:
        client.close()


def _report(text: str, error: Optional[str]) -> None:
    log.info("%s\nError: %s\n", text, error if error is not None else "<nil>")


def do_run(args: List[str], addr: str, snapshotid: str, timeout: float) -> None:
    """``workercl run``: send ``args`` as a command (timeout in seconds, 0 = none)."""
    timeout_ns = int(round(timeout * 1e9))
    shown = command_string(RunCommand(argv=args, snapshot_id=snapshotid), timeout_text=go_duration_ns(timeout_ns))
    log.info("Calling run RPC to Cloud Worker:\n%s", shown)
    cmd = worker.RunCommand(argv=list(args), snapshotId=snapshotid, timeoutMs=timeout_ns // 1_000_000,
                            jobId="", taskId="", tag="")
    reply, error = _call(addr, "Run", cmd)
    _report(run_status_string(_status(reply)), error)


def do_abort(args: List[str], addr: str, id: str) -> None:
    """``workercl abort --id``."""
    log.info("Calling abort rpc to cloud worker%s", _go_list(args))
    reply, error = _call(addr, "Abort", id)
    _report(run_status_string(_status(reply)), error)


def do_queryworker(args: List[str], addr: str) -> None:
    """``workercl queryworker``."""
    log.info("Calling queryworker rpc to cloud worker%s", _go_list(args))
    reply, error = _call(addr, "QueryWorker")
    if reply is None:
        _report(worker_status_string([], False, ""), error)
        return
    runs = [run_status_from_thrift(r) for r in reply.runs or []]
    _report(worker_status_string(runs, bool(reply.initialized), reply.error or ""), error)


def _status(reply: Any) -> RunStatus:
    return run_status_from_thrift(reply if reply is not None else worker.RunStatus())


def build() -> CobraGroup:
    """The ``workercl`` command tree, in the reference's registration order."""
    root = CobraGroup("workercl", "workercl is a command-line client to Cloud Worker", [])
    root.add(CobraCommand("run", do_run, "runs a command", [
        _addr_flag(), GoFlag("snapshotid", "string", "", "snapshot/patch id."),
        GoFlag("timeout", "duration", 0.0, "how long to let the command run (0 for infinite)")]))
    root.add(CobraCommand("abort", do_abort, "aborts a runId", [
        _addr_flag(), GoFlag("id", "string", "", "run id to abort")]))
    root.add(CobraCommand("queryworker", do_queryworker, "queries worker status", [_addr_flag()]))
    return root


def _strip_log_level(args: List[str]) -> Tuple[List[str], Optional[str]]:
    """Take ``--log_level X`` / ``-log_level=X`` out of the subcommand's arguments (before ``--``)."""
    out, level, i = [], None, 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out += args[i:]
            break
        name, has_value, value = arg.lstrip("-").partition("=")
        if arg.startswith("-") and name == "log_level":
            if not has_value and i + 1 < len(args):
                i += 1
                value = args[i]
            level = value
        else:
            out.append(arg)
        i += 1
    return out, level


def execute(argv: List[str]) -> int:
    """Run ``workercl argv``; return the exit status."""
    fs = FlagSet("workercl")
    fs.string("log_level", "info", "Log everything at this level and above (error|info|debug)")
    ns = fs.parse(argv)
    rest, level = _strip_log_level(ns.args)
    level = level or ns.log_level
    if not start_logging(level):
        return 0
    root = build()
    command = None
    try:
        command, rest = root.find(rest)
        if command is None:
            root.parse(rest)
            return 0
        values, positionals = command.parse(rest)
        command.callback(positionals, **values)
    except HelpRequested:
        sys.stdout.write((command or root).help_string())
    except HelpTopic as e:
        sys.stdout.write(root.help_topic(e.args[0]))
    except CobraError as e:
        print_command_error(root, command, e)
        log.critical("Error running workercl: %s", e)
        return 1
    return 0


def main() -> None:
    """Console entry point of ``workercl``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(execute(sys.argv[1:]))


if __name__ == "__main__":
    main()

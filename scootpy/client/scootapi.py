"""``scootapi``: the command-line client of a Cloud Scoot scheduler, flag for flag the reference's.

Stdout carries results only (job ids, JSON, ``Job Status: ...``); logs go to stderr. The scheduler is
``--addr`` or line 1 of ``~/.cloudscootaddr$SCOOT_ID``. Any error prints cobra's ``Error:`` block, logs
``fatal`` and exits 1; a failed smoke test exits 2 with ``panic: <error>``.
"""

import logging
import signal
import sys
from typing import List, Optional

from scootpy.client import cmd_admin, cmd_run_job, cmd_status, smoke
from scootpy.client.addrs import AddrFileError, addr_file_path, read_addrs
from scootpy.client.cloudscoot import CloudScootClient
from scootpy.client.cobra import (CobraCommand, CobraError, CobraGroup, GoFlag, HelpRequested, HelpTopic,
                                  print_command_error)
from scootpy.client.smoke import Panic
from scootpy.logs import LEVELS, setup_logging

log = logging.getLogger(__name__)

PERSISTENT = [
    GoFlag("addr", "string", "", "scoot server address"),
    GoFlag("log_level", "string", "info", "Log everything at this level and above (error|info|debug)"),
]


class Cli:
    """What every subcommand shares: the scheduler address and a lazily connected client."""

    def __init__(self) -> None:
        self.addr = ""
        self.client: Optional[CloudScootClient] = None

    def init(self, addr: str, log_level: str) -> None:
        """Resolve the scheduler address and the log level (cobra's PersistentPreRunE)."""
        self.addr = addr
        if not self.addr:
            try:
                self.addr = read_addrs()[0]
            except AddrFileError:
                raise CobraError(f"scootapi cli addr unset and no valued in {addr_file_path()}") from None
        if log_level.lower() not in LEVELS:
            text = f'not a valid logrus Level: "{log_level}"'
            log.error(text)
            raise CobraError(text)
        logging.getLogger().setLevel(LEVELS[log_level.lower()])
        self.client = CloudScootClient(self.addr)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def build() -> CobraGroup:
    """The ``scootapi`` command tree, in the reference's registration order."""
    root = CobraGroup("scootapi", "scootapi is a command-line client to Cloud Scoot", PERSISTENT)
    for command in (cmd_run_job.COMMAND, cmd_status.GET_JOB_STATUS, smoke.COMMAND, cmd_status.WATCH_JOB,
                    cmd_status.KILL_JOB, cmd_admin.OFFLINE_WORKER, cmd_admin.REINSTATE_WORKER,
                    cmd_admin.SET_SCHEDULER_STATUS, cmd_admin.GET_SCHEDULER_STATUS):
        root.add(command)
    return root


def _run(root: CobraGroup, command: Optional[CobraCommand], args: List[str], cli: Cli) -> None:
    try:
        values, positionals = (command or root).parse(args)
    except HelpRequested:
        sys.stdout.write((command or root).help_string())
        return
    cli.init(values["addr"], values["log_level"])
    if command is not None:
        persistent = {f.name for f in root.persistent}
        command.callback(cli, positionals, **{k: v for k, v in values.items() if k not in persistent})


def execute(argv: List[str]) -> int:
    """Run ``scootapi argv``; return the exit status."""
    setup_logging("info")
    root = build()
    cli = Cli()
    command = None
    try:
        command, rest = root.find(argv)
        _run(root, command, rest, cli)
    except HelpTopic as e:
        root.show_help_topic(e.args[0])
    except CobraError as e:
        print_command_error(root, command, e)
        log.critical("Error running scootapi %s", e)
        return 1
    except Panic as e:
        sys.stdout.flush()
        sys.stderr.write(f"panic: {e}\n")
        return 2
    finally:
        cli.close()
    return 0


def main() -> None:
    """Console entry point. Ctrl-C ends the program at once, as it does a Go program."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(execute(sys.argv[1:]))

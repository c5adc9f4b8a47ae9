"""Execers start commands and hand back a ``Process``: real ones (``os.py``) or simulated ones (``sim.py``).

``InterceptExecer`` routes a command whose ``argv[0]`` is exactly ``#! sim execer`` to the simulator and
everything else to the OS execer, as the reference worker does for every run.
"""

import enum
from dataclasses import dataclass
from typing import Callable, Dict, List, Protocol

import gevent.event

Sink = Callable[[bytes], None]
SIM_MARKER = "#! sim execer"


class ExecState(str, enum.Enum):
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


@dataclass(frozen=True)
class ProcessStatus:
    """How a process ended. ``over_memcap`` marks the memory-cap kill (COMPLETE, exit 1, ``error`` set)."""

    state: ExecState
    exit_code: int = 0
    error: str = ""
    over_memcap: bool = False


class ExecError(Exception):
    """The command could not be started; ``str()`` is the reference's text (without ``could not exec:``)."""


class Process(Protocol):
    """A started command. ``ended`` is set once ``result()`` is final."""

    ended: gevent.event.Event

    def result(self) -> ProcessStatus:
        ...

    def abort(self) -> ProcessStatus:
        """Stop the command and everything it started; returns once it is gone."""
        ...


class Execer(Protocol):
    def exec(self, argv: List[str], env: Dict[str, str], cwd: str, stdout: Sink, stderr: Sink) -> Process:
        """Start ``argv``; raise ``ExecError`` when that is impossible."""
        ...


class InterceptExecer:
    """Send ``#! sim execer`` commands to ``sim`` and the rest to ``real``."""

    def __init__(self, sim: Execer, real: Execer):
        self.sim = sim
        self.real = real

    def exec(self, argv: List[str], env: Dict[str, str], cwd: str, stdout: Sink, stderr: Sink) -> Process:
        chosen = self.sim if argv and argv[0] == SIM_MARKER else self.real
        return chosen.exec(argv, env, cwd, stdout, stderr)

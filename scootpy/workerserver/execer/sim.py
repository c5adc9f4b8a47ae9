"""The fake-command runner: each argv element is one step of a tiny language, run in order.

``complete N`` ends with exit code N; ``sleep MS`` waits MS milliseconds and ends with exit code 0;
``pause`` blocks until the run is aborted (nothing resumes it in a worker); ``stdout TEXT`` and
``stderr TEXT`` write TEXT verbatim; anything starting with ``#`` does nothing. Steps after the one that
ends the process never run; a process whose steps run out without ending stays RUNNING until aborted.
Example: ``["#! sim execer", "stdout hi", "sleep 100", "complete 0"]`` prints ``hi`` and exits 0 after 0.1 s.
"""

import re
from dataclasses import dataclass
from typing import Dict, List, Optional

import gevent
import gevent.event

from scootpy.workerserver.execer import ExecError, ExecState, ProcessStatus, Sink
from scootpy.workerserver.gotext import go_quote

_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT64 = 2 ** 63


def go_atoi(text: str) -> int:
    """Parse like Go's ``strconv.Atoi`` (64-bit), raising ValueError with Go's error text."""
    if not _GO_INT.fullmatch(text):
        raise ValueError(f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if not -_INT64 <= value < _INT64:
        raise ValueError(f"strconv.Atoi: parsing {go_quote(text)}: value out of range")
    return value


def _int32(value: int) -> int:
    """Wrap to a signed 32-bit value, as Go's ``int32(x)`` does when the exit code goes on the wire."""
    return (value + 2 ** 31) % 2 ** 32 - 2 ** 31


@dataclass(frozen=True)
class Step:
    op: str
    number: int = 0
    text: str = ""


def parse_step(arg: str) -> Step:
    """Parse one argv element; raise ExecError with the reference's text when it is not a step."""
    if arg.startswith("#"):
        return Step("noop")
    op, _, rest = arg.partition(" ")
    if op in ("complete", "sleep"):
        try:
            return Step(op, number=go_atoi(rest))
        except ValueError as e:
            raise ExecError(f"error parsing <n> in {op} <n>:{e}") from None
    if op == "pause":
        return Step(op)
    if op in ("stdout", "stderr"):
        return Step(op, text=rest)
    raise ExecError(f"can't simulate arg: {arg}")


class SimProcess:
    """A simulated process running its steps in a greenlet."""

    def __init__(self, steps: List[Step], stdout: Sink, stderr: Sink):
        self.ended = gevent.event.Event()
        self._status: Optional[ProcessStatus] = None
        self._sinks = {"stdout": stdout, "stderr": stderr}
        self._runner = gevent.spawn(self._run, steps)

    def _run(self, steps: List[Step]) -> None:
        for step in steps:
            if self.ended.is_set():
                return
            if step.op == "complete":
                self._finish(ProcessStatus(ExecState.COMPLETE, exit_code=_int32(step.number)))
            elif step.op == "sleep":
                gevent.sleep(max(0, step.number) / 1000.0)
                self._finish(ProcessStatus(ExecState.COMPLETE))
            elif step.op == "pause":
                self.ended.wait()
            elif step.op in self._sinks:
                self._sinks[step.op](step.text.encode())

    def _finish(self, status: ProcessStatus) -> None:
        if not self.ended.is_set():
            self._status = status
            self.ended.set()

    def result(self) -> ProcessStatus:
        return self._status or ProcessStatus(ExecState.RUNNING)

    def abort(self) -> ProcessStatus:
        """Fail the simulated process at once (there is nothing to kill)."""
        self._finish(ProcessStatus(ExecState.FAILED, error="aborted"))
        if self._runner is not gevent.getcurrent():
            self._runner.kill(block=False)
        return self.result()


class SimExecer:
    """Runs ``#! sim execer`` commands; env, cwd and the memory cap do not apply."""

    def exec(self, argv: List[str], env: Dict[str, str], cwd: str, stdout: Sink, stderr: Sink) -> SimProcess:
        return SimProcess([parse_step(arg) for arg in argv], stdout, stderr)

"""Runs of commands on workers, as the domain sees them: shared by the worker, the scheduler and the saga log.

``RunStatus`` and ``RunCommand`` are plain frozen dataclasses; the converters at the bottom are the only
place they meet the Thrift structs (``worker.RunStatus``, ``scoot.RunStatus``, ``worker.RunCommand``).
"""

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from scootpy.idl import worker


class RunState(enum.IntEnum):
    """Run states; the values are those of ``worker.Status`` and ``scoot.RunStatusState``."""

    UNKNOWN = 0
    PENDING = 1
    RUNNING = 2
    COMPLETE = 3
    FAILED = 4
    ABORTED = 5
    TIMEDOUT = 6

    @property
    def is_done(self) -> bool:
        """True for states a run never leaves (UNKNOWN counts as done, as in the reference)."""
        return self in DONE_STATES


DONE_STATES = frozenset({RunState.COMPLETE, RunState.FAILED, RunState.ABORTED, RunState.TIMEDOUT,
                         RunState.UNKNOWN})


@dataclass(frozen=True)
class RunStatus:
    """What a worker reports about one run."""

    state: RunState
    run_id: str = ""
    out_uri: str = ""
    err_uri: str = ""
    error: str = ""
    exit_code: int = 0
    snapshot_id: str = ""
    job_id: str = ""
    task_id: str = ""
    tag: str = ""


@dataclass(frozen=True)
class RunCommand:
    """What to run on a worker."""

    argv: List[str]
    env: Dict[str, str] = field(default_factory=dict)
    snapshot_id: str = ""
    timeout_ms: int = 0
    job_id: str = ""
    task_id: str = ""
    tag: str = ""


def _opt(text: str) -> Optional[str]:
    return text or None


def run_status_to_thrift(status: RunStatus, module: Any = worker) -> Any:
    """Build ``worker.RunStatus`` (or ``scoot.RunStatus`` with ``module=scoot``).

    Like the reference: ``exitCode`` is always set and empty optional strings are left out.
    """
    return module.RunStatus(
        status=int(status.state), runId=status.run_id, outUri=_opt(status.out_uri), errUri=_opt(status.err_uri),
        error=_opt(status.error), exitCode=status.exit_code, snapshotId=_opt(status.snapshot_id),
        jobId=_opt(status.job_id), taskId=_opt(status.task_id), tag=_opt(status.tag))


def run_status_from_thrift(status: Any) -> RunStatus:
    """Read a ``worker.RunStatus`` or ``scoot.RunStatus``; absent fields become defaults."""
    try:
        state = RunState(status.status if status.status is not None else 0)
    except ValueError:
        state = RunState.UNKNOWN
    return RunStatus(
        state=state, run_id=status.runId or "", out_uri=status.outUri or "", err_uri=status.errUri or "",
        error=status.error or "", exit_code=status.exitCode or 0, snapshot_id=status.snapshotId or "",
        job_id=status.jobId or "", task_id=status.taskId or "", tag=status.tag or "")


def run_command_to_thrift(cmd: RunCommand) -> Any:
    """Build ``worker.RunCommand``; like the reference scheduler, every optional field is sent."""
    return worker.RunCommand(argv=list(cmd.argv), env=dict(cmd.env), snapshotId=cmd.snapshot_id,
                             timeoutMs=cmd.timeout_ms, jobId=cmd.job_id, taskId=cmd.task_id, tag=cmd.tag)


def run_command_from_thrift(cmd: Any) -> RunCommand:
    """Read a ``worker.RunCommand``; absent fields become defaults."""
    return RunCommand(argv=list(cmd.argv or []), env=dict(cmd.env or {}), snapshot_id=cmd.snapshotId or "",
                      timeout_ms=cmd.timeoutMs or 0, job_id=cmd.jobId or "", task_id=cmd.taskId or "",
                      tag=cmd.tag or "")



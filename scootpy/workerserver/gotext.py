"""Text the way the reference's Go code prints it: ``%q`` strings, durations, ``time.Now()`` and the
``String()`` forms of commands and run statuses that appear in log files and in ``workercl`` output.
"""

import time
from typing import Iterable, List, Optional

from scootpy.runs import RunCommand, RunState, RunStatus

_PROCESS_START = time.monotonic()
_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
            "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """Quote like Go's ``strconv.Quote``: printable characters kept, others escaped."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == " " or ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def go_quote_list(items: Iterable[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def _trimmed_fraction(value: int, digits: int) -> str:
    text = f"{value:0{digits}d}".rstrip("0")
    return "." + text if text else ""


def go_duration_ns(ns: int) -> str:
    """Format integer nanoseconds as Go's ``time.Duration.String`` (``0s``, ``500ms``, ``1m0s``, ``1.5s``)."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{u // 1_000}{_trimmed_fraction(u % 1_000, 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{u // 1_000_000}{_trimmed_fraction(u % 1_000_000, 6)}ms"
    secs, frac = divmod(u, 1_000_000_000)
    hours, rem = divmod(secs, 3600)
    minutes, secs = divmod(rem, 60)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return f"{sign}{out}{secs}{_trimmed_fraction(frac, 9)}s"


def go_duration_ms(ms: int) -> str:
    """``go_duration_ns`` for whole milliseconds."""
    return go_duration_ns(ms * 1_000_000)


def go_time_now() -> str:
    """``time.Now()`` printed with ``%v``: ``2019-10-14 12:00:00.123456789 +0000 UTC m=+0.302064914``."""
    now_ns = time.time_ns()
    secs, ns = divmod(now_ns, 1_000_000_000)
    local = time.localtime(secs)
    offset = time.strftime("%z", local)
    zone = time.strftime("%Z", local)
    mono = time.monotonic() - _PROCESS_START
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", local) + _trimmed_fraction(ns, 9)
    return f"{stamp} {offset} {zone} m=+{mono:.9f}"


def command_string(cmd: RunCommand, timeout_text: Optional[str] = None) -> str:
    """The reference's ``runner.Command`` String(), used in log headers and footers."""
    timeout = go_duration_ms(cmd.timeout_ms) if timeout_text is None else timeout_text
    text = (f"runner.Command -- SnapshotID: {cmd.snapshot_id} # Argv: {go_quote_list(cmd.argv)}"
            f" # Timeout: {timeout} # JobID: {cmd.job_id} # TaskID: {cmd.task_id}"
            f" # Tag: {cmd.tag}")
    if cmd.env:
        text += " # Env:" + "".join(f"  {k}={v}" for k, v in cmd.env.items())
    return text


def run_status_string(st: RunStatus) -> str:
    """The reference's ``runner.RunStatus`` String(), as ``workercl`` prints it."""
    text = (f"RunStatus -- RunID: {st.run_id} # State: {st.state.name} # JobID: {st.job_id}"
            f" # TaskID: {st.task_id} # Tag: {st.tag}")
    if st.out_uri:
        text += f" # Stdout: {st.out_uri}"
    if st.err_uri:
        text += f" # Stderr: {st.err_uri}"
    if st.state == RunState.COMPLETE:
        text += f" # SnapshotID: {st.snapshot_id}"
    if st.state in (RunState.COMPLETE, RunState.FAILED):
        text += f" # ExitCode: {st.exit_code}"
    if st.state in (RunState.COMPLETE, RunState.FAILED, RunState.ABORTED):
        text += f" # Error: {st.error}"
    return text


def worker_status_string(runs: List[RunStatus], initialized: bool, error: str) -> str:
    """Go's ``%v`` of a ``workerapi.WorkerStatus``: ``{[<run> <run>] true <error>}``."""
    listed = " ".join(run_status_string(r) for r in runs)
    return f"{{[{listed}] {'true' if initialized else 'false'} {error}}}"

"""Logging to stderr in the reference's logrus (v1.4.2 TextFormatter, non-terminal) shape.

``time="2019-10-14T12:00:00Z" level=info msg="..." sourceLine="sched/scheduler.py:42"``: ``msg`` is left out
when empty, extra fields (``log.info(..., extra={...})``) and ``sourceLine`` follow sorted by name, and a value
is quoted Go-style (``%q``) when it holds a character outside ``[A-Za-z0-9-._/@^+]``; empty values stay bare.
"""

import logging
import os
import re
import sys
import time
from typing import Optional

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

LEVELS = {
    "panic": logging.CRITICAL, "fatal": logging.CRITICAL, "error": logging.ERROR,
    "warn": logging.WARNING, "warning": logging.WARNING, "info": logging.INFO,
    "debug": logging.DEBUG, "trace": TRACE,
}
_NAMES = {logging.CRITICAL: "fatal", logging.ERROR: "error", logging.WARNING: "warning",
          logging.INFO: "info", logging.DEBUG: "debug", TRACE: "trace"}
_PLAIN = re.compile(r"[A-Za-z0-9\-._/@^+]*")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_COLORS = {"debug": 37, "trace": 37, "warning": 33, "error": 31, "fatal": 31}  # anything else: 36 (blue)
_STARTED = time.time()  # logrus counts terminal timestamps from its package's start


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
            "\\": "\\\\", '"': '\\"'}


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isprintable():
        return ch
    if code < 0x80 or 0xDC80 <= code <= 0xDCFF:  # control byte, or an undecodable byte (surrogateescape)
        return f"\\x{code & 0xFF:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def go_quote(text: str) -> str:
    """Quote ``text`` as Go's ``%q`` / strconv.Quote does."""
    return '"' + "".join(_escape(ch) for ch in text) + '"'


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "<nil>" if value is None else str(value)


def _quote(value: object) -> str:
    text = _text(value)
    return text if _PLAIN.fullmatch(text) else go_quote(text)


class LogrusFormatter(logging.Formatter):
    """Format records as logrus' TextFormatter does: ``key=value`` pairs, or for a terminal its coloured
    ``INFO[0012] message<padded to 44>  key=value`` form (seconds since the process started)."""

    def __init__(self, terminal: bool = False):
        super().__init__()
        self.terminal = terminal

    def format(self, record: logging.LogRecord) -> str:
        level = _NAMES.get(record.levelno, "info")
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        path = os.path.normpath(record.pathname).split(os.sep)
        fields["sourceLine"] = f"{'/'.join(path[-2:])}:{record.lineno}"
        pairs = sorted(fields.items())
        if self.terminal:
            return _colored(record, level, message, pairs)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        parts = [f"time={_quote(stamp)}", f"level={level}"]
        if message:
            parts.append(f"msg={_quote(message)}")
        parts += [f"{k}={_quote(v)}" for k, v in pairs]
        return " ".join(parts)


def _colored(record: logging.LogRecord, level: str, message: str, pairs: list) -> str:
    color = _COLORS.get(level, 36)
    elapsed = max(0, int(record.created - _STARTED))
    if message.endswith("\n"):
        message = message[:-1]
    line = f"\x1b[{color}m{level.upper()[:4]}\x1b[0m[{elapsed:04d}] {message:<44} "
    return line + "".join(f" \x1b[{color}m{k}\x1b[0m={_quote(v)}" for k, v in pairs)


def parse_level(name: str) -> int:
    """Map a logrus level name to a logging level; raise ValueError for anything else."""
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"not a valid logrus Level: {go_quote(name)}") from None


def setup_logging(level: str = "info", stream: Optional[object] = None) -> None:
    """Send every log record of the process to stderr (or ``stream``) in logrus shape at ``level``;
    the terminal form when that stream is a terminal, as logrus does."""
    out = stream or sys.stderr
    isatty = getattr(out, "isatty", None)
    handler = logging.StreamHandler(out)
    handler.setFormatter(LogrusFormatter(terminal=bool(isatty and isatty())))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(parse_level(level))


def start_logging(level: str) -> bool:
    """:func:`setup_logging` at ``level``; for a level logrus would refuse, log its error (at info level, the
    reference's ``not a valid logrus Level: "x"``) and return False so the caller can quit as its binary does."""
    try:
        setup_logging(level)
    except ValueError as e:
        setup_logging("info")
        logging.getLogger(__name__).error("%s", e)
        return False
    return True


def exit_now(code: int = 0) -> None:
    """End a server that has already stopped and cleaned up: flush the logs and standard streams, then leave
    without the interpreter's teardown (about 0.1 s of CPU, which adds up when a cluster of processes stops)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)

"""Logging to stderr in the reference's logrus text shape.

``time="2019-10-14T12:00:00Z" level=info msg="..." sourceLine="sched/scheduler.py:42"``, extra fields
sorted after ``msg``, values quoted when they hold characters outside ``[A-Za-z0-9-._/@^+]``.
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
_PLAIN = re.compile(r"^[A-Za-z0-9\-._/@^+]+$")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _quote(value: object) -> str:
    text = str(value)
    if _PLAIN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogrusFormatter(logging.Formatter):
    """Format records as logrus' TextFormatter does for a non-terminal."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        path = os.path.normpath(record.pathname).split(os.sep)
        fields["sourceLine"] = f"{'/'.join(path[-2:])}:{record.lineno}"
        parts = [f"time={_quote(stamp)}", f"level={_NAMES.get(record.levelno, 'info')}",
                 f"msg={_quote(message)}"]
        parts += [f"{k}={_quote(v)}" for k, v in sorted(fields.items())]
        return " ".join(parts)


def parse_level(name: str) -> int:
    """Map a logrus level name to a logging level; raise ValueError for anything else."""
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"not a valid logrus Level: {name!r}") from None


def setup_logging(level: str = "info", stream: Optional[object] = None) -> None:
    """Send every log record of the process to stderr in logrus shape at ``level``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogrusFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(parse_level(level))

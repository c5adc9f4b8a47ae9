"""One self-overwriting progress line on stderr, shown only when stderr is a terminal.

Log lines go to the same terminal: while a progress line is shown, a log record first erases it, and
the next ``show`` draws it again below the log output.
"""

import logging
import sys
from typing import Optional, TextIO

_ERASE = "\r\x1b[K"


class Progress(logging.Filter):
    """``show(text)`` replaces the current line; ``close()`` ends it. Silent when the stream is not a TTY."""

    def __init__(self, stream: Optional[TextIO] = None):
        super().__init__()
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._shown = False
        self._handlers = list(logging.getLogger().handlers) if self.enabled else []
        for handler in self._handlers:
            handler.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        """Erase the progress line before a log record is written."""
        if self._shown:
            self.stream.write(_ERASE)
            self._shown = False
        return True

    def show(self, text: str) -> None:
        if self.enabled:
            self.stream.write(_ERASE + text)
            self.stream.flush()
            self._shown = True

    def close(self) -> None:
        for handler in self._handlers:
            handler.removeFilter(self)
        self._handlers = []
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False

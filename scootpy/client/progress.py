"""One self-overwriting progress line on stderr, shown only when stderr is a terminal."""

import sys
from typing import Optional, TextIO


class Progress:
    """``show(text)`` replaces the current line; ``close()`` ends it. Silent when the stream is not a TTY."""

    def __init__(self, stream: Optional[TextIO] = None):
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._shown = False

    def show(self, text: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\x1b[K{text}")
            self.stream.flush()
            self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False

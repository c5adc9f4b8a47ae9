"""A watched membership file (cluster type ``file``): one worker ``host:port`` per line.

Blank lines and ``#`` comments (whole-line or trailing) are ignored. Bad lines are logged and skipped,
never fatal. The file is re-read when its stat signature changes; a missing file means no workers, and
a file that cannot be read keeps the previous set. Write it atomically (temp file + rename) so the
scheduler never sees a half-written list.
"""

import logging
import os
import re
import time
from typing import List, Optional, Tuple

from scootpy.sched.cluster.membership import Membership

log = logging.getLogger(__name__)

FILE_INTERVAL_S = 0.5
MAX_FILE_BYTES = 1 << 20
# A file modified this recently may change again within the same timestamp tick: re-read it next poll.
RACY_WINDOW_S = 2.0
_ADDRESS = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})\Z")


def parse_address(text: str) -> str:
    """Check one worker address ``host:port`` and return it; ValueError with a clear text otherwise."""
    match = _ADDRESS.match(text)
    if not match or not 0 < int(match.group(1)) <= 65535:
        raise ValueError(f"invalid worker address {text!r}: want host:port with a port in 1..65535")
    return text


def parse_members(text: str, source: str = "members") -> List[str]:
    """Worker addresses listed in ``text``, deduplicated and sorted; bad lines are logged and skipped."""
    found = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            found.add(parse_address(line))
        except ValueError as e:
            log.warning("%s line %d skipped: %s", source, number, e)
    return sorted(found)


class MemberFile:
    """The fetch function of a file membership: returns the listed workers, re-reading only on change."""

    def __init__(self, path: str):
        self.path = path
        self._signature: Optional[Tuple[int, ...]] = None
        self._text: Optional[str] = None
        self._nodes: List[str] = []
        self._problem = ""

    def __call__(self) -> Optional[List[str]]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._report("does not exist: no workers")
            self._signature, self._text, self._nodes = None, "", []
            return []
        except OSError as e:
            self._report(f"{e}; keeping {len(self._nodes)} workers")
            return None
        signature = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if signature != self._signature:
            self._reload(signature, st.st_mtime)
        return list(self._nodes)

    def _reload(self, signature: Tuple[int, ...], mtime: float) -> None:
        try:
            with open(self.path, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            self._report(f"{e}; keeping {len(self._nodes)} workers")
            self._signature = signature  # retry once the file changes
            return
        self._problem = ""
        if len(data) > MAX_FILE_BYTES:
            log.warning("membership file %s is larger than %d bytes; reading only the start",
                        self.path, MAX_FILE_BYTES)
            data = data[:MAX_FILE_BYTES].rsplit(b"\n", 1)[0]
        racy = time.time() - mtime < RACY_WINDOW_S
        self._signature = None if racy else signature
        text = data.decode("utf-8-sig", "replace")
        if text != self._text:
            self._text = text
            self._nodes = parse_members(text, self.path)


    def _report(self, problem: str) -> None:
        """Log a problem with the file once, not on every poll."""
        if problem != self._problem:
            log.warning("membership file %s: %s", self.path, problem)
            self._problem = problem


def file_membership(path: str, interval: float = FILE_INTERVAL_S) -> Membership:
    """Workers listed in the file at ``path``, re-checked every ``interval`` seconds."""
    return Membership(MemberFile(path), interval, "file")

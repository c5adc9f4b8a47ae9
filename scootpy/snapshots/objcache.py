"""A disk bound for the data repository's objects, which are otherwise a cache that only grows.

Everything a GitDB with a store keeps in its data repo can be fetched again (uploaded bundles, streams),
so when the objects outgrow ``max_bytes`` they are all dropped, at a moment when no operation is running,
and come back on demand. Operations hold :meth:`ObjectCache.shared`; a trim only starts when none does and
holds new ones back while it deletes. Only for a data repo that this process alone uses (a worker's own).
"""

import os
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from scootpy.snapshots import git

CHECK_INTERVAL_S = 30.0


class ObjectCache:
    """Tracks the size of ``objects`` and empties it when it exceeds ``max_bytes`` (0: never). ``on_trim``
    runs first, under the exclusive lock, and may refuse (return False), e.g. while a task uses the repo."""

    def __init__(self, objects: Path, max_bytes: int, on_trim: Callable[[], bool]):
        self.objects, self.max_bytes, self.on_trim = objects, max_bytes, on_trim
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._trimming = False
        self._checked = 0.0
        self._pending = False
        self.trims = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the objects in place for one operation."""
        with self._cond:
            while self._trimming:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def maybe_trim(self, force_check: bool = False) -> bool:
        """Empty the object store if it is over the bound (size checked at most every CHECK_INTERVAL_S
        unless ``force_check``); return True when it did. Never waits: when an operation is running or
        ``on_trim`` refuses, the trim stays pending and is tried again after the next operation."""
        now = time.monotonic()
        if not self.max_bytes or (not (force_check or self._pending) and now - self._checked < CHECK_INTERVAL_S):
            return False
        self._checked = now
        if not self._pending and object_bytes(self.objects) <= self.max_bytes:
            return False
        with self._cond:
            if self._trimming or self._active:
                self._pending = True
                return False
            self._trimming = True
        try:
            if not self.on_trim():
                self._pending = True
                return False
            self._empty()
            self._pending = False
            self.trims += 1
            return True
        finally:
            with self._cond:
                self._trimming = False
                self._cond.notify_all()

    def _empty(self) -> None:
        for entry in os.listdir(self.objects):
            if entry not in ("info", "pack"):
                shutil.rmtree(self.objects / entry, ignore_errors=True)
        for entry in os.listdir(self.objects / "pack"):
            (self.objects / "pack" / entry).unlink(missing_ok=True)


def object_bytes(objects: Path) -> int:
    """Bytes used by the loose and packed objects under ``objects``, as ``git count-objects`` reports
    them (a git process, so a big object store is measured without blocking other greenlets)."""
    repo = objects.parent if objects.parent.name != ".git" else objects.parent.parent
    try:
        out = git.run_text(["count-objects", "-v"], repo, {"GIT_OBJECT_DIRECTORY": str(objects)})
    except git.GitError:
        return 0
    sizes = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    return (int(sizes.get("size", 0)) + int(sizes.get("size-pack", 0))) * 1024

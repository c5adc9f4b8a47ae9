"""Checkouts of ``fs`` snapshots (git trees) into fresh directories, with a bounded cache of released ones.

Each checkout is ``read-tree --reset -u`` (the work of ``read-tree`` + ``checkout-index -a`` in one git
process) with a private index, into a new directory. On
release, a tree that is still exactly as checked out is parked instead of deleted (small trees are compared
with a signature of every entry's mode, size and content taken at checkout; big ones with ``diff-files``
and ``ls-files -o``), so the next checkout of the same tree returns at once. Parked
trees are evicted least-recently-used when their total size exceeds ``max_bytes``; anything else is removed.
"""

import hashlib
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from scootpy.snapshots import git

log = logging.getLogger(__name__)

DEFAULT_CACHE_BYTES = 1 << 30
MAX_PARKED = 32
SIGNED_ENTRIES = 256
SIGNED_BYTES = 4 << 20


@dataclass
class _Checkout:
    tree: str
    path: Path
    index: Path
    signature: Optional[Dict[str, tuple]] = None
    size: int = 0


class CheckoutCache:
    """Hands out fresh checkouts of trees of ``repo`` under ``root``; see the module docstring."""

    def __init__(self, repo: Path, root: Path, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.repo, self.root, self.max_bytes = repo, root, max_bytes
        (root / "co").mkdir(parents=True, exist_ok=True)
        (root / "idx").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._live: Dict[str, _Checkout] = {}
        self._parked: "OrderedDict[str, _Checkout]" = OrderedDict()
        self._sizes: Dict[str, int] = {}

    def checkout(self, tree: str) -> str:
        """A directory holding ``tree`` that the caller owns until :meth:`release`."""
        with self._lock:
            for key, parked in self._parked.items():
                if parked.tree == tree:
                    del self._parked[key]
                    self._live[key] = parked
                    return key
        path = Path(tempfile.mkdtemp(prefix="checkout", dir=self.root / "co"))
        entry = _Checkout(tree, path, self.root / "idx" / path.name)
        try:
            env = self._env(entry)
            git.run(["read-tree", "--reset", "-u", tree], self.repo, env)
            if self.max_bytes > 0:
                entry.signature = signature(path)  # bounded; the size is worked out on release
        except BaseException:
            self._remove(entry)
            raise
        with self._lock:
            self._live[str(path)] = entry
        return str(path)

    def release(self, path: str) -> bool:
        """Take back a checkout; False when ``path`` is not one of ours (then nothing happens)."""
        with self._lock:
            entry = self._live.pop(str(path), None)
        if entry is None:
            return False
        if self.max_bytes > 0 and not entry.size:
            try:
                entry.size = self._size(entry)
            except git.GitError:
                entry.size = 0
        if 0 < entry.size <= self.max_bytes and self._pristine(entry):
            with self._lock:
                self._parked[str(entry.path)] = entry
                evicted = self._evict()
            for old in evicted:
                self._remove(old)
        else:
            self._remove(entry)
        return True

    def close(self) -> None:
        """Remove every checkout, parked or live."""
        with self._lock:
            entries = list(self._parked.values()) + list(self._live.values())
            self._parked.clear()
            self._live.clear()
        for entry in entries:
            self._remove(entry)

    def _env(self, entry: _Checkout) -> Dict[str, str]:
        return {"GIT_INDEX_FILE": str(entry.index), "GIT_WORK_TREE": str(entry.path)}

    def _pristine(self, entry: _Checkout) -> bool:
        if not entry.path.is_dir() or entry.path.is_symlink():
            return False
        if entry.signature is not None:
            return signature(entry.path) == entry.signature
        env = self._env(entry)
        try:
            git.run(["diff-files", "--quiet"], self.repo, env)
            extra = git.run(["ls-files", "-o", "--directory", "-z"], self.repo, env)
        except git.GitError:
            return False
        return extra == b""

    def _size(self, entry: _Checkout) -> int:
        """Disk use of a checkout (4 KiB per entry plus file sizes), from its signature or ``ls-tree``."""
        if entry.signature is not None:
            return sum(4096 + (v[1] if len(v) == 3 else 0) for v in entry.signature.values()) + 4096
        if entry.tree not in self._sizes:
            out = git.run(["ls-tree", "-r", "-l", "-z", entry.tree], self.repo)
            total = 4096
            for rec in out.split(b"\0"):
                fields = rec.split(b"\t", 1)[0].split()
                if len(fields) == 4 and fields[3].isdigit():
                    total += int(fields[3]) + 4096
            if len(self._sizes) > 4 * MAX_PARKED:
                self._sizes.clear()
            self._sizes[entry.tree] = total
        return self._sizes[entry.tree]

    def _evict(self) -> List[_Checkout]:
        evicted = []
        while self._parked and (len(self._parked) > MAX_PARKED or
                                sum(e.size for e in self._parked.values()) > self.max_bytes):
            evicted.append(self._parked.popitem(last=False)[1])
        return evicted

    def _remove(self, entry: _Checkout) -> None:
        entry.index.unlink(missing_ok=True)
        remove_tree(entry.path)


def signature(root: Path) -> Optional[Dict[str, tuple]]:
    """Every entry under ``root`` with its mode and size, and the content hash of files (target of links),
    or None when there are more than SIGNED_ENTRIES entries or SIGNED_BYTES bytes (then git checks)."""
    found: Dict[str, tuple] = {}
    budget = SIGNED_BYTES
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            return {"": ("unreadable", str(current))}
        for entry in entries:
            if len(found) >= SIGNED_ENTRIES:
                return None
            rel = os.path.relpath(entry.path, root)
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                found[rel] = ("vanished",)
                continue
            if stat.S_ISDIR(info.st_mode):
                found[rel] = (info.st_mode,)
                stack.append(Path(entry.path))
            elif stat.S_ISLNK(info.st_mode):
                found[rel] = (info.st_mode, _link_target(entry.path))
            else:
                budget -= info.st_size
                if budget < 0:
                    return None
                found[rel] = (info.st_mode, info.st_size, _file_hash(entry.path))
    return found


def _link_target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError as exc:
        return f"unreadable: {exc}"


def _file_hash(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.sha1(f.read(SIGNED_BYTES + 1)).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc}"


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything under it, even entries a task made read-only; never follows links."""
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    if os.path.lexists(path):
        shutil.rmtree(path, onerror=_make_writable_and_retry)


def _make_writable_and_retry(func, failed: str, _exc) -> None:
    parent = os.path.dirname(failed)
    for target in (parent, failed):
        try:
            if not os.path.islink(target):
                os.chmod(target, os.stat(target).st_mode | stat.S_IRWXU)
        except OSError:
            pass
    try:
        func(failed)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove %s: %s", failed, exc)

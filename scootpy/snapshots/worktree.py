"""The data repository's own work tree, where ``gc`` (commit) snapshots are checked out.

Only one ``gc`` checkout can be out at a time: :meth:`WorkTree.checkout` takes a lock that
:meth:`WorkTree.release` gives back. The lock is both in-process (greenlets/threads) and a ``flock`` on a
file in ``.git`` (other processes sharing the data repo). As in the reference, checking out the id that is
already checked out returns the work tree as the previous task left it; another id runs
``git clean -ffdx`` and ``git checkout -fB scoot/__temp_for_checkout <sha>``; when one of those fails (e.g. a
stale ``index.lock`` left by a killed git) the work tree is cleaned up and the command retried once.
"""

import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Optional

from scootpy.snapshots import git
from scootpy.snapshots.ids import SnapshotError

CLEAN_FAILURE_EXIT_CODE = 211
CHECKOUT_FAILURE_EXIT_CODE = 212
CHECKOUT_BRANCH = "scoot/__temp_for_checkout"
CLEANUP_TIMEOUT_S = 300.0
_POLL_S = 0.02


class WorkTree:
    """The gc checkout slot of one data repository."""

    def __init__(self, repo: Path):
        self.repo = repo
        self._git_dir = Path(git.run_text(["rev-parse", "--absolute-git-dir"], repo))
        self._lock_path = self._git_dir / "scoot-worktree.lock"
        self._current_path = self._git_dir / "scoot-current-gc"
        self._thread_lock = threading.Lock()
        self._fd: Optional[int] = None

    def checkout(self, snapshot_id: str, sha: str) -> str:
        """Check ``sha`` out into the work tree (blocking while another gc checkout is out); return the
        repository directory, which the caller must hand back with :meth:`release`."""
        self._acquire()
        try:
            if self._current() == snapshot_id:
                return str(self.repo)
            self._write_current("")
            self._run_or_recover(["clean", "-f", "-f", "-d", "-x"], CLEAN_FAILURE_EXIT_CODE)
            self._run_or_recover(["checkout", "-q", "-fB", CHECKOUT_BRANCH, sha], CHECKOUT_FAILURE_EXIT_CODE)
            self._write_current(snapshot_id)
            return str(self.repo)
        except BaseException:
            self._release_lock()
            raise

    def _run_or_recover(self, args, exit_code: int) -> None:
        """Run a git command on the work tree; after a failure, clean up (:meth:`cleanup_kill`) and retry
        once, then fail with ``exit_code``."""
        try:
            git.run(args, self.repo)
            return
        except git.GitError:
            self.cleanup_kill()
        try:
            git.run(args, self.repo)
        except git.GitError as exc:
            raise _coded(exc, exit_code) from None

    def cleanup_kill(self) -> None:
        """Recover a work tree left behind by a killed git: drop a stale ``index.lock``, reset, clean."""
        lock = self._git_dir / "index.lock"
        lock.unlink(missing_ok=True)
        try:
            git.run(["reset", "-q", "--hard", "HEAD"], self.repo, timeout=CLEANUP_TIMEOUT_S)
        except git.GitError:
            pass
        lock.unlink(missing_ok=True)
        try:
            git.run(["clean", "-f", "-f", "-d", "-x"], self.repo, timeout=CLEANUP_TIMEOUT_S)
        except git.GitError:
            pass

    def forget_if_free(self) -> bool:
        """When no gc checkout is out, forget the checked-out commit (HEAD unborn, no index) so the repo's
        objects may be dropped; return False (and change nothing) when the work tree is in use."""
        if not self._thread_lock.acquire(blocking=False):
            return False
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._write_current("")
            git.run(["symbolic-ref", "HEAD", f"refs/heads/{CHECKOUT_BRANCH}"], self.repo)
            git.run(["update-ref", "-d", f"refs/heads/{CHECKOUT_BRANCH}"], self.repo)
            (self._git_dir / "index").unlink(missing_ok=True)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
            self._thread_lock.release()

    def release(self) -> None:
        """Give the work tree back (a no-op when it is not checked out)."""
        if self._fd is not None:
            self._release_lock()

    def _acquire(self) -> None:
        self._thread_lock.acquire()
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(_POLL_S)
            except BaseException:
                os.close(fd)
                self._thread_lock.release()
                raise
        self._fd = fd

    def _release_lock(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        self._thread_lock.release()

    def _current(self) -> str:
        try:
            return self._current_path.read_text()
        except OSError:
            return ""

    def _write_current(self, snapshot_id: str) -> None:
        tmp = self._current_path.with_suffix(".tmp")
        tmp.write_text(snapshot_id)
        os.replace(tmp, self._current_path)


def _coded(exc: git.GitError, code: int) -> SnapshotError:
    return SnapshotError(str(exc), exit_code=code)

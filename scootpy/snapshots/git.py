"""Running the real ``git`` binary: one function for a command, errors that carry git's stderr.

Every command gets a fixed committer/author identity (so no user config is needed for the wrapper commits
and ``__scoot_commit`` commits), never prompts, and is killed after ``timeout`` seconds. Under gevent the
monkey-patched ``subprocess`` makes these calls cooperative.
"""

import os
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO, Dict, List, Optional, Sequence, Union

from scootpy.snapshots.ids import SnapshotError

GIT_TIMEOUT_S = 600.0
IDENTITY = {
    "GIT_AUTHOR_NAME": "Scoot", "GIT_AUTHOR_EMAIL": "scoot@localhost",
    "GIT_COMMITTER_NAME": "Scoot", "GIT_COMMITTER_EMAIL": "scoot@localhost",
}
_BASE_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", **IDENTITY}
# Variables that would point git at another repository than the one we name.
_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
         "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES", "GIT_PREFIX")

PathLike = Union[str, Path]


class GitError(SnapshotError):
    """A git command failed; ``str()`` is ``Unable to run git [args]: <stderr>`` like the reference."""

    def __init__(self, args: Sequence[str], stderr: str, returncode: Optional[int] = None):
        self.args_list, self.stderr, self.returncode = list(args), stderr, returncode
        super().__init__(f"Unable to run git {list(args)}: {stderr.strip()}")


def git_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env.update(_BASE_ENV)
    env.update(extra or {})
    return env


def run(args: List[str], cwd: PathLike, env: Optional[Dict[str, str]] = None, stdin: Optional[BinaryIO] = None,
        input: Optional[bytes] = None, timeout: float = GIT_TIMEOUT_S) -> bytes:
    """Run ``git <args>`` in ``cwd``; return stdout. Raises GitError (with stderr) on failure or timeout."""
    feed = {"input": input} if input is not None else {"stdin": stdin if stdin is not None else subprocess.DEVNULL}
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.run(["git", *args], cwd=str(cwd), env=git_env(env), stdout=subprocess.PIPE, stderr=err,
                                  timeout=timeout, **feed)
        except subprocess.TimeoutExpired:
            raise GitError(args, f"timed out after {timeout:g}s") from None
        except OSError as exc:
            raise GitError(args, str(exc)) from None
        if proc.returncode != 0:
            err.seek(0)
            raise GitError(args, err.read(64 * 1024).decode(errors="replace"), proc.returncode)
        return proc.stdout


def run_text(args: List[str], cwd: PathLike, env: Optional[Dict[str, str]] = None, **kw) -> str:
    return run(args, cwd, env, **kw).decode(errors="replace").strip()


def run_sha(args: List[str], cwd: PathLike, env: Optional[Dict[str, str]] = None, **kw) -> str:
    """Run a command whose output must be one 40-character sha (optionally newline-terminated)."""
    out = run(args, cwd, env, **kw).decode(errors="replace")
    sha = out[:-1] if out.endswith("\n") else out
    if len(sha) != 40:
        raise GitError(args, f"expected a sha, got {out!r}")
    return sha


def object_type(repo: PathLike, rev: str) -> Optional[str]:
    """The type of ``rev`` in ``repo`` (``commit``, ``tree``, ...) or None when it is not there."""
    try:
        return run_text(["cat-file", "-t", rev], repo)
    except GitError:
        return None


def sha_present(repo: PathLike, sha: str) -> bool:
    """``rev-parse --verify <sha>^{object}`` succeeds in ``repo``."""
    try:
        run(["rev-parse", "-q", "--verify", f"{sha}^{{object}}"], repo)
        return True
    except GitError:
        return False


def toplevel(path: PathLike) -> Path:
    """The work-tree root of the repository containing ``path``."""
    return Path(run_text(["rev-parse", "--show-toplevel"], path))


def init_repo(path: PathLike) -> Path:
    """Create ``path`` as a git repository (no-op when it already is one); return it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".git").exists():
        run(["init", "-q", str(path)], path)
    return path

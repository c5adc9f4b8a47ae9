"""Helpers for the snapshot tests: real git repositories and the reference's golden snapshot data."""

import os
import subprocess
import tarfile
from pathlib import Path
from typing import Dict

from tests.procs import FIXTURES

SNAP_FIXTURES = FIXTURES / "snapshots"
INPUT_TREE = "7c8ed031c1aed0a5157e6c7fdc2b88658268b3d9"
INPUT_ID = f"bs-fs-{INPUT_TREE}--{INPUT_TREE}"
GC_COMMIT = "bb1b4f4b2df5dac71faa65ecaf89a145e50855a5"
GC_FIRST = "1155a97a8d971207579aeeef3476330f25133f8f"
GC_ID = f"bs-gc-{GC_COMMIT}--{GC_COMMIT}"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_IDENTITY = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
             "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}


def sh_git(repo, *args: str, env: Dict[str, str] = None) -> str:
    """Run git in ``repo`` with a test identity; return stripped stdout."""
    full = dict(os.environ, **_IDENTITY, **(env or {}))
    return subprocess.run(["git", *args], cwd=str(repo), env=full, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(path: Path, files: Dict[str, str] = None, message: str = "first") -> str:
    """Create a repo at ``path`` with one commit of ``files``; return the commit sha."""
    path.mkdir(parents=True, exist_ok=True)
    sh_git(path, "init", "-q")
    return commit_files(path, files or {"file.txt": message}, message)


def commit_files(repo: Path, files: Dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    sh_git(repo, "add", "--all")
    sh_git(repo, "commit", "-q", "-m", message)
    return sh_git(repo, "rev-parse", "HEAD")


def extract(archive: str, dest: Path) -> Path:
    """Extract a fixture archive (modes and symlinks kept) into ``dest``; return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(SNAP_FIXTURES / archive) as tar:
        tar.extractall(dest, filter="tar") if hasattr(tarfile, "tar_filter") else tar.extractall(dest)
    return dest


def raw_tree_id(directory: Path, scratch: Path) -> str:
    """The tree id raw git plumbing gives: ``git add --all`` + ``write-tree`` with a temporary index."""
    repo = scratch / "raw-repo"
    if not repo.exists():
        sh_git(scratch, "init", "-q", str(repo))
    env = {"GIT_INDEX_FILE": str(scratch / "raw-index"), "GIT_WORK_TREE": str(directory)}
    sh_git(repo, "add", "--all", env=env)
    tree = sh_git(repo, "write-tree", env=env)
    (scratch / "raw-index").unlink()
    return tree


def tree_listing(path: Path) -> Dict[str, tuple]:
    """Map each file/symlink under ``path`` (not .git) to (kind, exec bit or link target, bytes)."""
    out = {}
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            if os.path.islink(full):
                out[rel] = ("link", os.readlink(full), b"")
            else:
                with open(full, "rb") as f:
                    out[rel] = ("file", bool(os.stat(full).st_mode & 0o111), f.read())
    return out

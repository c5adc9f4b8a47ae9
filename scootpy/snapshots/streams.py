"""Streams: an upstream repository whose history every machine can fetch (``stream-gc-<name>-<sha>`` ids).

A GitDB with a stream fetches ``stream-*`` snapshots from the stream's remote, uploads a commit already on
the stream as no bundle at all, uploads other commits as bundles that start at their merge base with the
stream (a prerequisite the consumer fetches from the stream), and fetches the stream when a bundle's
prerequisites are missing.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from scootpy.snapshots import git
from scootpy.snapshots.ids import SnapshotError


@dataclass(frozen=True)
class StreamConfig:
    """``name`` as used in ids; ``remote`` to fetch from; ``refspec`` naming the stream head locally
    (e.g. ``refs/remotes/upstream/master``), empty when unknown."""

    name: str
    remote: str
    refspec: str = ""


def update_stream(repo: Path, cfg: Optional[StreamConfig], name: str) -> None:
    """Fetch the stream ``name`` (``<cfg.name>`` or ``<cfg.name>:<ref>`` for one ref) into ``repo``."""
    if cfg is None:
        raise SnapshotError(f"cannot update stream {name}: no streams configured")
    if not name.startswith(cfg.name):
        raise SnapshotError(f"cannot update stream {name}: does not match stream {cfg.name}")
    args = ["fetch", "-q", "--end-of-options", cfg.remote]
    if name.startswith(cfg.name + ":"):
        ref = name[len(cfg.name) + 1:]
        if not ref or ref.startswith("-"):
            raise SnapshotError(f"cannot update stream {name}: invalid ref {ref!r}")
        args.append(ref)
    git.run(args, repo)


def bundle_basis(repo: Path, cfg: Optional[StreamConfig], sha: str) -> Tuple[Optional[str], str, bool]:
    """How to upload commit ``sha``: (basis commit or None, stream name for the id, already on stream)."""
    if cfg is None or not cfg.refspec:
        return None, "", False
    head = git.run_sha(["rev-parse", cfg.refspec], repo)
    try:
        base = git.run_sha(["merge-base", head, sha], repo)
    except git.GitError:
        return None, "", False
    if base == sha:
        return None, cfg.name, True
    return base, cfg.name, False

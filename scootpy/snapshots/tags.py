"""Tags: snapshots shared through lightweight tags ``<prefix>/<sha>`` in another git repository.

Ids are ``tags-<kind>-<name>-<sha>``. Uploading tags the object and pushes the tag; downloading fetches it.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from scootpy.snapshots import git
from scootpy.snapshots.ids import SnapshotError


@dataclass(frozen=True)
class TagsConfig:
    """``name`` as used in ids; ``remote`` to push to and fetch from; ``prefix`` of the tag names."""

    name: str
    remote: str
    prefix: str = "reserved_scoot"


def push_tag(repo: Path, cfg: TagsConfig, sha: str) -> None:
    """Tag ``sha`` as ``<prefix>/<sha>`` (idempotently) and push the tag to the remote."""
    ref = f"refs/tags/{cfg.prefix}/{sha}"
    git.run(["update-ref", ref, sha], repo)
    git.run(["push", "-q", cfg.remote, ref], repo)


def fetch_tag(repo: Path, cfg: Optional[TagsConfig], name: str, sha: str) -> None:
    """Fetch the tag of ``sha`` from the tags remote named ``name``."""
    if cfg is None or name != cfg.name:
        raise SnapshotError(f"cannot download tags-{name}-{sha}: tags backend named {name} is not registered "
                            f"(expected {cfg.name if cfg else 'none'})")
    if any(c not in "0123456789abcdefABCDEF" for c in sha):
        raise SnapshotError(f"cannot download tags-{name}-{sha}: not a hex sha")
    git.run(["fetch", "-q", cfg.remote, f"refs/tags/{cfg.prefix}/{sha}"], repo)

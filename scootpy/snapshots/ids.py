"""Snapshot ids: parsing and formatting, with the reference's order of checks and error texts.

A gitdb id is ``<backend>-<kind>-<extra>``; kinds are ``fs`` (the sha names a git tree) and ``gc`` (a
commit). Backends and their extra parts::

    local-<kind>-<sha>
    stream-<kind>-<stream name, may contain '-'>-<sha>
    tags-<kind>-<tags name>-<sha>
    bs-<kind>-<bundle key>-<stream name, may be empty>-<sha>     e.g. bs-fs-<tree>--<tree>

The only check on a sha is its length (40). Bazel ids ``bz-<sha256>-<size>`` are another scheme, recognised
by :func:`is_bazel_id` so callers can route them away from gitdb.
"""

import re
from dataclasses import dataclass
from enum import Enum
from typing import Iterable, List, Optional

SHA_LEN = 40
_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT64 = 2 ** 63


class SnapshotError(Exception):
    """Any snapshot failure; ``str()`` is the reference's error text. ``exit_code`` is the reference's
    internal failure code where it has one (211 clean, 212 checkout, 214 upload, 215 read, 216 export)."""

    exit_code: Optional[int] = None

    def __init__(self, message: str = "", exit_code: Optional[int] = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InvalidSnapshotId(SnapshotError):
    """An id that does not parse (or names a backend this store has not configured)."""


class Kind(str, Enum):
    FS = "fs"
    GC = "gc"


class Backend(str, Enum):
    LOCAL = "local"
    STREAM = "stream"
    TAGS = "tags"
    BUNDLESTORE = "bs"


@dataclass(frozen=True)
class SnapshotRef:
    """A parsed gitdb id. ``name`` is the stream or tags name; ``bundle_key`` is set for ``bs`` only."""

    backend: Backend
    kind: Kind
    sha: str
    name: str = ""
    bundle_key: str = ""

    @property
    def id(self) -> str:
        return format_id(self)


def format_id(ref: SnapshotRef) -> str:
    """The id string of ``ref``."""
    if ref.backend is Backend.LOCAL:
        return f"local-{ref.kind.value}-{ref.sha}"
    if ref.backend is Backend.BUNDLESTORE:
        return f"bs-{ref.kind.value}-{ref.bundle_key}-{ref.name}-{ref.sha}"
    return f"{ref.backend.value}-{ref.kind.value}-{ref.name}-{ref.sha}"


def bundlestore_id(kind: Kind, sha: str, bundle_key: str = "", stream: str = "") -> str:
    """``bs-<kind>-<key>-<stream>-<sha>``; the key defaults to the sha (``bs-fs-<t>--<t>``)."""
    return format_id(SnapshotRef(Backend.BUNDLESTORE, Kind(kind), sha, stream, bundle_key or sha))


def local_id(kind: Kind, sha: str) -> str:
    return format_id(SnapshotRef(Backend.LOCAL, Kind(kind), sha))


def stream_id(stream: str, sha: str) -> str:
    """``stream-gc-<stream>-<sha>``, the id of a commit on an upstream stream."""
    return format_id(SnapshotRef(Backend.STREAM, Kind.GC, sha, stream))


def _check_sha(sha: str) -> str:
    if len(sha) != SHA_LEN:
        raise InvalidSnapshotId(f"sha not 40 characters: {sha}")
    return sha


def parse_id(snapshot_id: str, backends: Iterable[str] = ("local", "bs")) -> SnapshotRef:
    """Parse a gitdb id. ``backends`` lists the configured backends: a ``stream``/``tags``/``bs`` id whose
    backend is not among them fails with the reference's "backend not initialized" text (``local`` always
    parses). Raises :class:`InvalidSnapshotId`.
    """
    if snapshot_id == "":
        raise InvalidSnapshotId("empty snapshot ID")
    parts = snapshot_id.split("-")
    if len(parts) < 3:
        raise InvalidSnapshotId(f"could not determine backend and kind in ID {snapshot_id}")
    backend, kind, extra = parts[0], parts[1], parts[2:]
    if kind not in (Kind.FS.value, Kind.GC.value):
        raise InvalidSnapshotId(f"invalid kind: {kind}")
    configured = set(backends)
    parser = _PARSERS.get(backend)
    if parser is None:
        raise InvalidSnapshotId(f"unrecognized snapshot backend {backend} in ID {snapshot_id}")
    return parser(snapshot_id, Kind(kind), extra, backend in configured)


def _parse_local(snapshot_id: str, kind: Kind, extra: List[str], _configured: bool) -> SnapshotRef:
    if len(extra) != 1:
        raise InvalidSnapshotId(f"cannot parse snapshot ID: expected 3 extraParts in local id {snapshot_id}")
    return SnapshotRef(Backend.LOCAL, kind, _check_sha(extra[0]))


def _parse_stream(snapshot_id: str, kind: Kind, extra: List[str], configured: bool) -> SnapshotRef:
    if not configured:
        raise InvalidSnapshotId("Stream backend not initialized.")
    if len(extra) < 2:
        raise InvalidSnapshotId(f"cannot parse snapshot ID: expected 4 extraParts in stream id: {snapshot_id}")
    return SnapshotRef(Backend.STREAM, kind, _check_sha(extra[-1]), "-".join(extra[:-1]))


def _parse_tags(snapshot_id: str, kind: Kind, extra: List[str], configured: bool) -> SnapshotRef:
    if not configured:
        raise InvalidSnapshotId("Tags backend not initialized.")
    if len(extra) != 2:
        raise InvalidSnapshotId(f"cannot parse snapshot ID: expected 4 parts in tags id: {snapshot_id}")
    return SnapshotRef(Backend.TAGS, kind, _check_sha(extra[1]), extra[0])


def _parse_bundlestore(snapshot_id: str, kind: Kind, extra: List[str], configured: bool) -> SnapshotRef:
    if not configured:
        raise InvalidSnapshotId("Bundlestore backend not initialized.")
    if len(extra) != 3:
        raise InvalidSnapshotId(f"cannot parse snapshot ID: expected 5 parts in bundlestore id: {snapshot_id}")
    key, stream, sha = extra
    return SnapshotRef(Backend.BUNDLESTORE, kind, _check_sha(sha), stream, key)


_PARSERS = {"local": _parse_local, "stream": _parse_stream, "tags": _parse_tags, "bs": _parse_bundlestore}


def is_bazel_id(snapshot_id: str) -> bool:
    """True for a well-formed ``bz-<64-char sha256>-<size >= -1>`` id (the reference's Bazel routing test)."""
    parts = snapshot_id.split("-")
    if len(parts) < 3 or parts[0] != "bz" or not _GO_INT.fullmatch(parts[2]):
        return False
    size = int(parts[2])
    return -_INT64 <= size < _INT64 and len(parts[1]) == 64 and size >= -1

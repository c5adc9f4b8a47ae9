"""Git bundle files, written and read as streams.

A v2 bundle is a text header (``# v2 git bundle``, ``-<sha> <comment>`` prerequisite lines, ``<sha> <ref>``
lines, a blank line) followed by a pack. We write bundles as that header plus ``git pack-objects`` output,
so no ref is ever created in the repository (concurrent writers cannot race on a ref), and we read them by
checking the header ourselves and piping the pack into ``git index-pack --stdin --fix-thin``, which is what
``git bundle unbundle`` does. A corrupt or truncated pack fails index-pack and adds nothing to the repo.
:class:`CheckedReader` verifies a bundle while it streams past (header shape plus the pack's trailing
SHA-1), so a server can refuse a damaged upload before publishing it.
"""

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, List, Optional, Tuple

from scootpy.snapshots import git
from scootpy.snapshots.ids import SnapshotError

BUNDLE_REF = "reserved_scoot/bundlestore/__temp_for_writing"
LACKS_PREREQUISITES = "error: Repository lacks these prerequisite commits:"
_SIGNATURES = (b"# v2 git bundle\n", b"# v3 git bundle\n")
_MAX_HEADER = 16 << 20
_CHUNK = 1 << 20


class BundleError(SnapshotError):
    """A bundle that is not a well-formed git bundle, or one this repository cannot take."""


@dataclass
class BundleHeader:
    prerequisites: List[str] = field(default_factory=list)
    refs: List[Tuple[str, str]] = field(default_factory=list)


def parse_header(data: bytes) -> BundleHeader:
    """Parse header bytes (signature through the line before the blank line)."""
    lines = data.split(b"\n")
    if not data.startswith(_SIGNATURES):
        raise BundleError("not a git bundle: bad signature")
    header = BundleHeader()
    for raw in lines[1:]:
        line = raw.decode("utf-8", errors="replace")
        if line.startswith("@"):
            if line != "@object-format=sha1":
                raise BundleError(f"unsupported bundle capability: {line}")
            continue
        sha, _, rest = line.lstrip("-").partition(" ")
        if len(sha) != 40 or any(c not in "0123456789abcdef" for c in sha):
            raise BundleError(f"not a git bundle: bad header line {line!r}")
        if line.startswith("-"):
            header.prerequisites.append(sha)
        else:
            header.refs.append((sha, rest))
    if not header.refs:
        raise BundleError("not a git bundle: no references")
    return header


def read_header(stream: BinaryIO) -> Tuple[BundleHeader, bytes]:
    """Read and parse the header from ``stream``; return it and the pack bytes already read."""
    buf = b""
    while True:
        end = buf.find(b"\n\n")
        if end >= 0:
            return parse_header(buf[:end]), buf[end + 2:]
        if len(buf) > _MAX_HEADER:
            raise BundleError("not a git bundle: header too long")
        chunk = stream.read(64 * 1024)
        if not chunk:
            raise BundleError("not a git bundle: truncated header")
        buf += chunk
        if not buf.startswith(_SIGNATURES[0][:len(buf)]) and not buf.startswith(_SIGNATURES[1][:len(buf)]):
            raise BundleError("not a git bundle: bad signature")


def write_bundle(repo: git.PathLike, tip: str, out: BinaryIO, ref: str = BUNDLE_REF, deltas: bool = True,
                 basis: Optional[str] = None) -> None:
    """Write a bundle of commit ``tip`` to the file ``out``: its whole history, or only what is not in
    ``basis`` (then a prerequisite). Without ``deltas`` no delta search is done and compression is light
    (much faster for one tree, whose files rarely delta against each other)."""
    header = "# v2 git bundle\n"
    if basis:
        subject = git.run_text(["log", "-1", "--format=%s", basis], repo)
        header += f"-{basis} {subject}\n"
    out.write(f"{header}{tip} {ref}\n\n".encode())
    out.flush()
    _pack_to(repo, f"{tip}\n" + (f"^{basis}\n" if basis else ""), out, deltas, thin=bool(basis))


def _pack_to(repo: git.PathLike, revs: str, out: BinaryIO, deltas: bool, thin: bool) -> None:
    args = ([] if deltas else ["-c", "pack.compression=1"]) + ["pack-objects", "--stdout", "--revs",
                                                               "--delta-base-offset", "-q"]
    args += ([] if deltas else ["--window=0"]) + (["--thin"] if thin else [])
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(["git", *args], cwd=str(repo), env=git.git_env(), input=revs.encode(),
                              stdout=out, stderr=err, timeout=git.GIT_TIMEOUT_S)
        if proc.returncode != 0:
            err.seek(0)
            raise git.GitError(args, err.read(64 * 1024).decode(errors="replace"), proc.returncode)


def missing_objects(repo: git.PathLike, shas: List[str]) -> List[str]:
    """Those of ``shas`` that ``repo`` does not have."""
    if not shas:
        return []
    out = git.run(["cat-file", "--batch-check"], repo, input="".join(s + "\n" for s in shas).encode())
    return [line.split()[0] for line in out.decode().splitlines() if line.endswith(" missing")]


def unbundle(repo: git.PathLike, stream: BinaryIO, objects: Optional[Path] = None) -> Tuple[BundleHeader, Path]:
    """Add the objects of the bundle read from ``stream`` to ``repo`` (no refs change); return the header
    and the index (``.idx``) of the new pack. ``objects`` is the repo's object directory, if known."""
    header, head = read_header(stream)
    missing = missing_objects(repo, header.prerequisites)
    if missing:
        raise BundleError(LACKS_PREREQUISITES + "\n" + "\n".join(missing))
    if objects is None:
        objects = Path(git.run_text(["rev-parse", "--git-path", "objects"], repo))
        objects = objects if objects.is_absolute() else Path(repo) / objects
    incoming = Path(tempfile.mkdtemp(prefix="scoot-incoming-", dir=objects))
    try:
        _index_pack(repo, head, stream, incoming / "incoming.pack")
        return header, _publish_pack(incoming, objects / "pack")
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def pack_contains(idx: Path, sha: str) -> bool:
    """Whether the pack with version-2 index ``idx`` holds object ``sha`` (read without running git)."""
    try:
        key = bytes.fromhex(sha)
        with open(idx, "rb") as f:
            head = f.read(8 + 256 * 4)
            if len(key) != 20 or head[:8] != b"\377tOc\0\0\0\2" or len(head) < 8 + 1024:
                return False
            fanout = struct.unpack(">256I", head[8:])
            lo = fanout[key[0] - 1] if key[0] else 0
            hi = fanout[key[0]]
            f.seek(8 + 1024 + 20 * lo)
            names = f.read(20 * (hi - lo))
    except (OSError, ValueError):
        return False
    return any(names[i:i + 20] == key for i in range(0, len(names), 20))


def _index_pack(repo: git.PathLike, head: bytes, stream: BinaryIO, pack: Path) -> None:
    args = ["index-pack", "--stdin", "--fix-thin", str(pack)]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(["git", *args], cwd=str(repo), env=git.git_env(), stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            _pump(head, stream, proc.stdin)
            code = proc.wait(timeout=git.GIT_TIMEOUT_S)
        except Exception as exc:
            proc.kill()
            proc.wait()
            raise BundleError(f"bundle download interrupted: {type(exc).__name__}: {exc}") from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if code != 0:
            err.seek(0)
            text = err.read(64 * 1024).decode(errors="replace").strip()
            raise BundleError(f"invalid bundle: git index-pack failed: {text}")


def _publish_pack(incoming: Path, pack_dir: Path) -> Path:
    """Move a verified pack into the repository: the ``.pack`` first, its index last (git's order)."""
    name = f"pack-{_trailer(incoming / 'incoming.pack')}"
    for suffix in (".pack", ".rev", ".idx"):
        src = incoming / f"incoming{suffix}"
        if src.exists():
            os.replace(src, pack_dir / f"{name}{suffix}")
    return pack_dir / f"{name}.idx"


def _trailer(pack: Path) -> str:
    with open(pack, "rb") as f:
        f.seek(-20, os.SEEK_END)
        return f.read(20).hex()


def _pump(head: bytes, stream: BinaryIO, sink: BinaryIO) -> None:
    try:
        if head:
            sink.write(head)
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            sink.write(chunk)
    except BrokenPipeError:
        pass
    finally:
        try:
            sink.close()
        except BrokenPipeError:
            pass


class CheckedReader:
    """Wrap a bundle stream of ``length`` bytes (None: until EOF); ``read`` passes bytes through and raises
    BundleError at the end if the header is malformed, the stream is short, or the pack checksum is wrong."""

    def __init__(self, stream: BinaryIO, length=None):
        self._stream, self._left = stream, length
        self._head = b""
        self._in_pack = False
        self._sha = hashlib.sha1()
        self._tail = b""
        self._pack_len = 0
        self._magic = b""
        self.total = 0

    def read(self, n: int = _CHUNK) -> bytes:
        if n is None or n < 0:
            n = _CHUNK
        if self._left is not None:
            n = min(n, self._left)
        try:
            chunk = self._stream.read(n) if n else b""
        except (OSError, ValueError) as exc:
            raise BundleError(f"upload interrupted after {self.total} bytes: {exc}") from None
        if chunk:
            self.total += len(chunk)
            if self._left is not None:
                self._left -= len(chunk)
            self._feed(chunk)
            return chunk
        self._finish()
        return b""

    def _feed(self, chunk: bytes) -> None:
        if not self._in_pack:
            self._head += chunk
            end = self._head.find(b"\n\n")
            if end < 0:
                if len(self._head) > _MAX_HEADER or not any(
                        s.startswith(self._head[:len(s)]) for s in _SIGNATURES):
                    raise BundleError("not a git bundle: bad signature or header")
                return
            parse_header(self._head[:end])
            chunk, self._in_pack = self._head[end + 2:], True
            self._head = b""
        data = self._tail + chunk
        if len(self._magic) < 4:
            self._magic += chunk[:4 - len(self._magic)]
            if not b"PACK".startswith(self._magic):
                raise BundleError("not a git bundle: no pack after the header")
        self._pack_len += len(chunk)
        self._sha.update(data[:-20])
        self._tail = data[-20:]

    def _finish(self) -> None:
        if self._left:
            raise BundleError(f"truncated bundle: {self._left} bytes missing")
        if not self._in_pack:
            raise BundleError("not a git bundle: truncated header")
        if self._pack_len < 32:
            raise BundleError("truncated bundle: pack too short")
        if self._sha.digest() != self._tail:
            raise BundleError("corrupt or truncated bundle: pack checksum mismatch")

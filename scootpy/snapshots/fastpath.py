"""In-process ingestion of small, plain directories (a worker's STDOUT/STDERR/STDLOG), without spawning git.

``git add --all`` + ``write-tree`` of a flat directory of regular files with plain names, in a repository
whose configuration cannot change blob contents or what is ignored, yields a tree that is easy to compute:
each blob is ``sha1("blob <size>\\0" + bytes)``, the tree lists ``<mode> <name>\\0<sha>`` sorted by name.
We write the same loose objects git would, and can build the snapshot's bundle (wrapper commit, tree,
blobs, undeltified) in memory. Anything else (subdirectories, symlinks, dotfiles, odd names, big files,
attributes, excludes, autocrlf, ...) returns None and the caller uses git itself, so ids always equal git's.
"""

import hashlib
import os
import re
import stat
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from scootpy.snapshots import git

MAX_ENTRIES = 64
MAX_FILE_BYTES = 8 << 20
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=,@-]{0,199}")
# Configuration (key -> harmless values) that could make git store other bytes, ignore files, record
# modes differently or use another hash; any other value of these keys disables the fast path.
_TRUE, _FALSE = ("true", "yes", "on", "1", ""), ("false", "no", "off", "0")
_GUARDED = {"core.autocrlf": _FALSE, "core.filemode": _TRUE, "core.ignorecase": _FALSE,
            "core.excludesfile": (), "core.attributesfile": ()}
_TYPES = {"commit": 1, "tree": 2, "blob": 3}


@dataclass
class FastTree:
    """A tree made in-process, with its objects (``[(type, sha, raw bytes)]``) for bundling."""

    sha: str
    objects: List[Tuple[str, str, bytes]] = field(default_factory=list)


class FastIngester:
    """Ingests eligible directories into the repository ``repo``; ``enabled`` is False when the repository's
    or user's git configuration could make git's answer differ."""

    def __init__(self, repo: Path):
        objects = Path(git.run_text(["rev-parse", "--git-path", "objects"], repo))
        self.objects = objects if objects.is_absolute() else repo / objects
        git_dir = Path(git.run_text(["rev-parse", "--absolute-git-dir"], repo))
        self.enabled = _config_is_plain(repo) and not any(_has_rules(p) for p in _rule_files(git_dir))

    def ingest(self, directory: Path) -> Optional[FastTree]:
        """The tree of ``directory`` with its objects written, or None when git must do it."""
        if not self.enabled:
            return None
        entries = _plain_entries(directory)
        return None if entries is None else self._tree(entries, write=True)

    def ingest_files(self, files: Dict[str, str], write: bool = True) -> Optional[FastTree]:
        """The tree of a directory holding exactly ``files`` (name -> path of a regular file), or None when
        git must do it; its objects are written to the repository only if ``write``."""
        if not self.enabled or len(files) > MAX_ENTRIES:
            return None
        entries = []
        for name, path in files.items():
            entry = _plain_entry(name, path)
            if entry is None:
                return None
            entries.append(entry)
        return self._tree(sorted(entries, key=lambda e: e[0].encode()), write)

    def _tree(self, entries: List[Tuple[str, str, bytes]], write: bool) -> FastTree:
        result = FastTree("")
        body = b""
        for name, mode, data in entries:
            sha = self._write("blob", data, write)
            result.objects.append(("blob", sha, data))
            body += f"{mode} {name}\0".encode() + bytes.fromhex(sha)
        result.sha = self._write("tree", body, write)
        result.objects.append(("tree", result.sha, body))
        return result

    def _write(self, kind: str, data: bytes, write: bool = True) -> str:
        raw = f"{kind} {len(data)}\0".encode() + data
        sha = hashlib.sha1(raw).hexdigest()
        if not write:
            return sha
        target = self.objects / sha[:2] / sha[2:]
        if target.exists():
            return sha
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="tmp_obj_", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(zlib.compress(raw, 1))
            os.chmod(tmp, 0o444)
            try:
                os.link(tmp, target)
            except FileExistsError:
                pass
            except OSError:
                os.replace(tmp, target)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        return sha


def _plain_entries(directory: Path) -> Optional[List[Tuple[str, str, bytes]]]:
    try:
        with os.scandir(directory) as it:
            found = list(it)
    except OSError:
        return None
    if len(found) > MAX_ENTRIES:
        return None
    entries = []
    for entry in found:
        plain = _plain_entry(entry.name, entry.path)
        if plain is None:
            return None
        entries.append(plain)
    return sorted(entries, key=lambda e: e[0].encode())


def _plain_entry(name: str, path: str) -> Optional[Tuple[str, str, bytes]]:
    """(name, mode, bytes) of a small regular file with a plain name (a symlink is not followed), else None."""
    if not _SAFE_NAME.fullmatch(name) or name.endswith("."):
        return None
    try:
        info = os.stat(path, follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES:
        return None
    return name, "100755" if info.st_mode & 0o111 else "100644", data


def _config_is_plain(repo: Path) -> bool:
    try:
        listing = git.run(["config", "--list", "-z"], repo).decode(errors="replace")
    except git.GitError:
        return False
    for item in listing.split("\0"):
        key, _, value = item.partition("\n")
        key = key.lower()
        if key.startswith("extensions.") or key in _GUARDED and value.lower() not in _GUARDED[key]:
            return False
    return True


def _rule_files(git_dir: Path) -> List[Path]:
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return [git_dir / "info" / "exclude", git_dir / "info" / "attributes",
            Path(xdg) / "git" / "ignore", Path(xdg) / "git" / "attributes"]


def _has_rules(path: Path) -> bool:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    return any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines())


def wrapper_commit(tree: str, message: str, identity: Dict[str, str], when: str) -> Tuple[str, bytes]:
    """The sha and raw bytes of a parentless commit of ``tree`` (as ``git commit-tree`` writes it)."""
    author = f"{identity['GIT_AUTHOR_NAME']} <{identity['GIT_AUTHOR_EMAIL']}> {when}"
    committer = f"{identity['GIT_COMMITTER_NAME']} <{identity['GIT_COMMITTER_EMAIL']}> {when}"
    body = f"tree {tree}\nauthor {author}\ncommitter {committer}\n\n{message}\n".encode()
    return hashlib.sha1(f"commit {len(body)}\0".encode() + body).hexdigest(), body


def bundle_bytes(tip: str, ref: str, objects: List[Tuple[str, str, bytes]]) -> bytes:
    """A v2 bundle with ref ``ref`` -> ``tip`` holding ``objects`` undeltified (duplicates dropped)."""
    unique: Dict[str, Tuple[str, bytes]] = {}
    for kind, sha, data in objects:
        unique.setdefault(sha, (kind, data))
    pack = b"PACK" + struct.pack(">II", 2, len(unique))
    for kind, data in unique.values():
        pack += _object_header(_TYPES[kind], len(data)) + zlib.compress(data, 1)
    pack += hashlib.sha1(pack).digest()
    return f"# v2 git bundle\n{tip} {ref}\n\n".encode() + pack


def _object_header(type_code: int, size: int) -> bytes:
    byte = (type_code << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)

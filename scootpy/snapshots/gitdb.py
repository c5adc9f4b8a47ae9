"""GitDB: snapshots stored in a git data repository, shared between machines as bundles.

* ``fs`` snapshots are git trees made with ``git add --all`` + ``git write-tree`` and a private index (so
  the id is exactly git's tree id of the directory); ``gc`` snapshots are commits.
* With a store, every ingest uploads ``bs-<sha>.bundle`` (unless the store has it) and returns
  ``bs-<kind>-<sha>--<sha>``; without one, ids are ``local-<kind>-<sha>``.
* A ``bs`` id whose object is missing here is fetched from the store and unbundled into the data repo,
  which is the permanent object cache; ``fs`` checkouts go to fresh directories (see checkouts.py), ``gc``
  checkouts to the data repo's work tree (see worktree.py).

Safe for many greenlets or threads and for several processes sharing one data repo: no ref is written
except uniquely named temporary ones, every index is private, and bundles are written without refs.
"""

import functools
import io
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

from scootpy.snapshots import bundles, git
from scootpy.snapshots.fastpath import FastIngester, FastTree, bundle_bytes, wrapper_commit
from scootpy.snapshots.checkouts import DEFAULT_CACHE_BYTES, CheckoutCache, remove_tree
from scootpy.snapshots.ids import (Backend, Kind, SnapshotError, SnapshotRef, bundlestore_id, format_id, local_id,
                                   parse_id, stream_id)
from scootpy.snapshots.objcache import ObjectCache
from scootpy.snapshots.store import NotFound, Store
from scootpy.snapshots.streams import StreamConfig, bundle_basis, update_stream
from scootpy.snapshots.tags import TagsConfig, fetch_tag, push_tag
from scootpy.snapshots.worktree import WorkTree

log = logging.getLogger(__name__)

__all__ = ["GitDB", "SnapshotError", "StreamConfig", "TagsConfig"]

UPLOAD_FAILURE_EXIT_CODE = 214
READ_FAILURE_EXIT_CODE = 215
EXPORT_FAILURE_EXIT_CODE = 216
FS_WRAPPER_MESSAGE = "commit to distribute GitDB FSSnapshot via bundlestore"
WORKING_DIR_MESSAGE = "__scoot_commit"
# Wrapper commits are not part of any id; a fixed date makes their bundles reproducible.
_FIXED_WHEN = "1262304000 +0000"
_FIXED_DATE = {"GIT_AUTHOR_DATE": _FIXED_WHEN, "GIT_COMMITTER_DATE": _FIXED_WHEN}
_KNOWN_SHAS = 4096
DEFAULT_OBJECT_CACHE_BYTES = 8 << 30
SEND_WITHOUT_ASKING = 256 << 10


def bundle_name(key: str) -> str:
    return f"bs-{key}.bundle"


def _guarded(method: Callable) -> Callable:
    """Run a public operation with the data repo's objects held in place, then trim them if oversized."""
    @functools.wraps(method)
    def wrapper(self: "GitDB", *args, **kwargs):
        with self._objects.shared():
            result = method(self, *args, **kwargs)
        self._objects.maybe_trim()
        return result
    return wrapper


class GitDB:
    """A snapshot database over the git repository ``data_repo`` (created when missing). ``store`` is
    where bundles go (None: local ids only); temporary files live under ``tmp_root`` (default: the system
    temp dir) in a directory removed by :meth:`close`. Released fs checkouts are cached up to
    ``cache_bytes``; when GitDB created the data repo itself and has a store, the repo's objects are
    dropped once they exceed ``object_cache_bytes`` (0: never) and fetched again when needed."""

    def __init__(self, data_repo: Union[str, Path], store: Optional[Store] = None,
                 tmp_root: Union[str, Path, None] = None, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 stream: Optional[StreamConfig] = None, allow_stream_update: bool = True,
                 tags: Optional[TagsConfig] = None, object_cache_bytes: int = DEFAULT_OBJECT_CACHE_BYTES):
        owned = not (Path(data_repo) / ".git").exists()
        self.repo = git.init_repo(Path(data_repo).absolute())
        self.store = store
        self.stream, self.allow_stream_update, self.tags = stream, allow_stream_update, tags
        self.tmp = Path(tempfile.mkdtemp(prefix="scoot-gitdb-", dir=tmp_root))
        self._checkouts = CheckoutCache(self.repo, self.tmp / "checkouts", cache_bytes)
        self._worktree = WorkTree(self.repo)
        self._fast = FastIngester(self.repo)
        bound = object_cache_bytes if owned and store is not None else 0
        self._objects = ObjectCache(self._fast.objects, bound, self._forget_objects)
        self._lock = threading.Lock()
        self._downloads: Dict[str, threading.Lock] = {}
        self._known: "OrderedDict[str, None]" = OrderedDict()

    @property
    def backends(self) -> Tuple[str, ...]:
        return ("local",) + (("bs",) if self.store is not None else ()) + (("stream",) if self.stream else ()) \
            + (("tags",) if self.tags else ())

    def parse(self, snapshot_id: str) -> SnapshotRef:
        return parse_id(snapshot_id, self.backends)

    # -- creating snapshots ------------------------------------------------------------------------------

    @_guarded
    def ingest_dir(self, path: Union[str, Path]) -> str:
        """Snapshot the directory ``path`` (gitignore honoured, empty dirs dropped, symlinks kept)."""
        path = Path(os.path.abspath(path))
        if path.is_symlink() or not path.is_dir():
            raise SnapshotError(f"cannot ingest {path}: not a directory")
        fast = self._fast.ingest(path)
        if fast is not None:
            return self._publish(Kind.FS, fast.sha, fast)
        return self._publish(Kind.FS, self._write_tree(self.repo, path))

    @_guarded
    def ingest_files(self, files: Dict[str, str]) -> Optional[str]:
        """Snapshot a directory holding exactly ``files`` (name -> path) without making that directory, or
        None when the in-process fast path does not apply (then ingest a real directory). With a store the
        objects travel only in the uploaded bundle; a later checkout here fetches them like any other."""
        local = self.store is None
        fast = self._fast.ingest_files(files, write=local)
        return None if fast is None else self._publish(Kind.FS, fast.sha, fast, local=local)

    @_guarded
    def ingest_git_commit(self, repo_dir: Union[str, Path], commit: str) -> str:
        """Snapshot ``commit`` (any commit-ish) of the repository ``repo_dir``."""
        try:
            if commit.startswith("-"):
                raise SnapshotError("a commit may not start with '-'")
            sha = git.run_sha(["rev-parse", "--verify", "--end-of-options", f"{commit}^{{commit}}"], repo_dir)
        except SnapshotError as exc:
            raise SnapshotError(f"not a valid commit: {commit}, {exc}") from None
        self._move_commit(Path(repo_dir), self.repo, sha)
        return self._publish(Kind.GC, sha)

    @_guarded
    def ingest_git_working_dir(self, repo_dir: Union[str, Path]) -> str:
        """Snapshot HEAD of ``repo_dir`` plus its uncommitted and untracked (not ignored) files."""
        top = git.toplevel(repo_dir)
        index = Path(git.run_text(["rev-parse", "--path-format=absolute", "--git-path", "index"], top))
        tree = self._write_tree(top, top, index if index.exists() else None)
        commit = git.run_sha(["commit-tree", "-p", "HEAD", "-m", WORKING_DIR_MESSAGE, tree], top)
        self._move_commit(top, self.repo, commit)
        return self._publish(Kind.GC, commit)

    def _write_tree(self, repo: Path, work_tree: Path, index_from: Optional[Path] = None) -> str:
        scratch = Path(tempfile.mkdtemp(prefix="git-index", dir=self.tmp))
        try:
            index = scratch / "index"
            if index_from is not None:
                shutil.copyfile(index_from, index)
            env = {"GIT_INDEX_FILE": str(index), "GIT_WORK_TREE": str(work_tree)}
            git.run(["add", "--all"], repo, env)
            return git.run_sha(["write-tree"], repo, env)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _publish(self, kind: Kind, sha: str, fast: Optional[FastTree] = None, local: bool = True) -> str:
        """Share a new snapshot: to the store when there is one, else as a tag when tags are configured.
        ``local``: its objects are in the data repository."""
        if local:
            self._remember(sha)
        if self.store is None and self.tags is not None:
            push_tag(self.repo, self.tags, sha)
            return format_id(SnapshotRef(Backend.TAGS, kind, sha, self.tags.name))
        if self.store is None:
            return local_id(kind, sha)
        try:
            basis, stream_name, on_stream = (None, "", False) if kind is Kind.FS else \
                bundle_basis(self.repo, self.stream, sha)
            if on_stream:
                return stream_id(stream_name, sha)
            self._upload_once(kind, sha, basis, fast)
        except SnapshotError as exc:
            raise SnapshotError(str(exc), exit_code=UPLOAD_FAILURE_EXIT_CODE) from None
        return bundlestore_id(kind, sha, stream=stream_name)

    def _upload_once(self, kind: Kind, sha: str, basis: Optional[str], fast: Optional[FastTree]) -> None:
        """Upload ``bs-<sha>.bundle`` unless the store already has it (the first upload wins anyway). A
        small in-memory bundle is simply sent: asking first would cost as much as sending."""
        name = bundle_name(sha)
        if fast is not None:
            commit, body = wrapper_commit(sha, FS_WRAPPER_MESSAGE, git.IDENTITY, _FIXED_WHEN)
            data = bundle_bytes(commit, bundles.BUNDLE_REF, [("commit", commit, body)] + fast.objects)
            if len(data) <= SEND_WITHOUT_ASKING or not self.store.exists(name):
                self.store.write(name, io.BytesIO(data))
            return
        if self.store.exists(name):
            return
        log.info("uploading %s to %s", name, self.store.root)
        tip = sha if kind is Kind.GC else git.run_sha(
            ["commit-tree", sha, "-m", FS_WRAPPER_MESSAGE], self.repo, _FIXED_DATE)
        self.upload_bundle(name, tip, deltas=kind is Kind.GC, basis=basis)

    def upload_bundle(self, name: str, tip: str, ttl: Optional[float] = None, deltas: bool = True,
                      basis: Optional[str] = None) -> None:
        """Write a bundle of commit ``tip`` (history since ``basis``, or all) to the store as ``name``."""
        with tempfile.TemporaryFile(dir=self.tmp) as spool:
            bundles.write_bundle(self.repo, tip, spool, deltas=deltas, basis=basis)
            spool.seek(0)
            self.store.write(name, spool, ttl)

    @staticmethod
    def _move_commit(src: Path, dst: Path, sha: str) -> None:
        """Make commit ``sha`` of ``src`` present in ``dst`` (a uniquely named temp ref carries it)."""
        if src.resolve() == dst.resolve() or git.object_type(dst, sha) == "commit":
            return
        ref = f"refs/scoot/tmp/{uuid.uuid4().hex}"
        git.run(["push", "-q", "-f", str(dst), f"{sha}:{ref}"], src,
                {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "receive.autogc", "GIT_CONFIG_VALUE_0": "false"})
        git.run(["update-ref", "-d", ref], dst)

    # -- reading snapshots -------------------------------------------------------------------------------

    def download(self, ref: SnapshotRef) -> None:
        """Make ``ref.sha`` present in the data repo, fetching its bundle when needed."""
        if self._present(ref.sha):
            return
        if ref.backend is Backend.STREAM:
            update_stream(self.repo, self.stream, ref.name)
        if ref.backend is Backend.TAGS:
            fetch_tag(self.repo, self.tags, ref.name, ref.sha)
        if ref.backend is not Backend.BUNDLESTORE:
            git.run(["rev-parse", "--verify", f"{ref.sha}^{{object}}"], self.repo)
            return
        with self._lock:
            lock = self._downloads.setdefault(ref.sha, threading.Lock())
        try:
            with lock:
                if ref.sha not in self._known:
                    self._download_bundle(ref)
                    self._remember(ref.sha)
        finally:
            with self._lock:
                self._downloads.pop(ref.sha, None)

    def _forget_objects(self) -> bool:
        """Called before the object store is emptied: nothing may still point into it."""
        if not self._worktree.forget_if_free():
            return False
        with self._lock:
            self._known.clear()
        log.info("data repo objects over %d bytes: dropping them", self._objects.max_bytes)
        return True

    def _present(self, sha: str) -> bool:
        """Whether ``sha`` is in the data repo; remembered, since objects only go away in a trim."""
        if sha in self._known:
            return True
        if not git.sha_present(self.repo, sha):
            return False
        self._remember(sha)
        return True

    def _remember(self, sha: str) -> None:
        with self._lock:
            self._known[sha] = None
            while len(self._known) > _KNOWN_SHAS:
                self._known.popitem(last=False)

    def _download_bundle(self, ref: SnapshotRef) -> None:
        name = bundle_name(ref.bundle_key)
        try:
            idx = self._unbundle(name)
        except bundles.BundleError as exc:
            if not str(exc).startswith(bundles.LACKS_PREREQUISITES) or not self.allow_stream_update:
                raise
            try:
                update_stream(self.repo, self.stream, ref.name)
            except SnapshotError as fetch_exc:
                raise SnapshotError(f"{exc}\n{fetch_exc}") from None
            idx = self._unbundle(name)
        if not bundles.pack_contains(idx, ref.sha) and not git.sha_present(self.repo, ref.sha):
            raise SnapshotError(f"bundle {name} does not contain {ref.sha}")

    def _unbundle(self, name: str) -> Path:
        try:
            stream = self.store.open_read(name)
        except NotFound:
            raise NotFound(f"bundle {name} not found in bundlestore {self.store.root}") from None
        started = time.monotonic()
        with stream:
            _, idx = bundles.unbundle(self.repo, stream, self._fast.objects)
        log.info("downloaded %s from %s in %.3fs", name, self.store.root, time.monotonic() - started)
        return idx

    @_guarded
    def checkout(self, snapshot_id: str) -> str:
        """A directory holding the snapshot; hand it back with :meth:`release_checkout`. ``fs``: a fresh
        directory per call. ``gc``: the data repo's work tree, held until released."""
        ref = self.parse(snapshot_id)
        self.download(ref)
        if ref.kind is Kind.FS:
            return self._checkouts.checkout(ref.sha)
        return self._worktree.checkout(snapshot_id, ref.sha)

    @_guarded
    def checkout_at(self, snapshot_id: str, dest: Union[str, Path]) -> str:
        """Check the snapshot out into ``dest`` (created if missing, existing files overwritten); the caller
        owns ``dest`` afterwards and does not release it. A ``gc`` snapshot's ``.git`` is not copied."""
        ref = self.parse(snapshot_id)
        self.download(ref)
        dest = Path(os.path.abspath(dest))
        dest.mkdir(parents=True, exist_ok=True)
        tree = ref.sha if ref.kind is Kind.FS else f"{ref.sha}^{{tree}}"
        scratch = Path(tempfile.mkdtemp(prefix="git-index", dir=self.tmp))
        try:
            env = {"GIT_INDEX_FILE": str(scratch / "index"), "GIT_WORK_TREE": str(dest)}
            git.run(["read-tree", tree], self.repo, env)
            git.run(["checkout-index", "-a", "-f"], self.repo, env)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return str(dest)

    def release_checkout(self, path: Union[str, Path]) -> None:
        """Give back a checkout; unknown paths are ignored."""
        if Path(path) == self.repo:
            self._worktree.release()
        else:
            self._checkouts.release(str(path))

    @_guarded
    def read_file(self, snapshot_id: str, path: str) -> bytes:
        """The bytes of ``path`` in a ``bs-fs`` snapshot (a directory reads as its tree listing, a symlink
        as its target), as ``git cat-file -p <tree>:<path>`` prints them."""
        try:
            ref = self.parse(snapshot_id)
            if ref.backend is not Backend.BUNDLESTORE:
                raise SnapshotError(f"DownloadTempRepo unimplemented in {ref.backend.value}Snapshot")
            self.download(ref)
            if ref.kind is not Kind.FS:
                raise SnapshotError(f"can only ReadFileAll from an FSSnapshot, but {snapshot_id} is a {ref.kind.value}")
            return git.run(["cat-file", "-p", f"{ref.sha}:{path}"], self.repo)
        except SnapshotError as exc:
            raise SnapshotError(str(exc), exit_code=READ_FAILURE_EXIT_CODE) from None

    @_guarded
    def export_git_commit(self, snapshot_id: str, repo_dir: Union[str, Path]) -> str:
        """Copy a ``gc`` snapshot's commit into the repository ``repo_dir``; return its sha."""
        try:
            ref = self.parse(snapshot_id)
            self.download(ref)
            if ref.kind is not Kind.GC:
                raise SnapshotError(f"cannot export non-GitCommitSnapshot {snapshot_id}: {ref.kind.value}")
            self._move_commit(self.repo, git.toplevel(repo_dir), ref.sha)
            return ref.sha
        except SnapshotError as exc:
            raise SnapshotError(str(exc), exit_code=EXPORT_FAILURE_EXIT_CODE) from None

    def close(self) -> None:
        """Remove every checkout and temporary file (the data repo stays)."""
        self._checkouts.close()
        self._worktree.release()
        remove_tree(self.tmp)

    def __enter__(self) -> "GitDB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

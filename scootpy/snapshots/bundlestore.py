"""The bundlestore HTTP API (``/bundle/<name>``) and the snapshot file viewer (``/view/<id>/<path>``).

Status codes and bodies follow the reference (spec/snapshots.md §4.5, §8) with two deliberate differences:
names must match ``bs-[a-z0-9]{40}.bundle`` exactly (anchored, literal dot), and an upload is checked as it
streams to disk (bundle header, length, pack checksum): a damaged one gets 400 and nothing is published.
"""

import logging
import os
import time

import gevent
from typing import Callable, Dict, Iterable, Iterator, Optional

from scootpy.admin import respond
from scootpy.metrics import Registry
from scootpy.snapshots.bundles import BundleError, CheckedReader
from scootpy.snapshots.checkouts import remove_tree
from scootpy.snapshots.ids import SnapshotError
from scootpy.snapshots.store import BUNDLE_NAME_TEXT, CHUNK, FileStore, StoreError, is_bundle_name, parse_ttl

log = logging.getLogger(__name__)

PREFIX = "/bundle/"
UPLOAD_STALL_S = 60.0
NOSNIFF = [("X-Content-Type-Options", "nosniff")]


def _text(start_response: Callable, status: str, text: str) -> Iterable[bytes]:
    return respond(start_response, status, text.encode(), headers=NOSNIFF)


class BundleApp:
    """WSGI app serving ``store`` under ``/bundle/``."""

    def __init__(self, store: FileStore, metrics: Registry, stall_s: float = UPLOAD_STALL_S):
        self.store, self.metrics, self.stall_s = store, metrics, stall_s
        for name in ("upload", "uploadOk", "uploadErr", "uploadExisting", "download", "downloadOk", "downloadErr"):
            metrics.inc(f"{name}Counter", 0)
        for name, text in (("upload_bytes_total", "Bundle bytes received by uploads (accepted or not)"),
                           ("download_bytes_total", "Bundle bytes sent by downloads")):
            metrics.describe(name, text, in_json=False)
            metrics.inc(name, 0)
        metrics.describe("upload_duration_seconds", "Time to receive, check and store one upload, by result",
                         in_json=False)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD", "POST"):
            return _text(start_response, "405 Method Not Allowed", "only support POST and GET\n")
        name = environ.get("PATH_INFO", "")[len(PREFIX):]
        upload = method == "POST"
        kind = "upload" if upload else "download"
        self.metrics.inc(f"{kind}Counter")
        if not is_bundle_name(name):
            self.metrics.inc(f"{kind}ErrCounter")
            return _text(start_response, "400 Bad Request",
                         f'Error with bundleName, expected "{BUNDLE_NAME_TEXT}", got: {name}\n')
        started = time.monotonic()
        try:
            if upload:
                return self._upload(environ, start_response, name)
            return self._download(start_response, name, method == "HEAD")
        finally:
            self.metrics.observe(f"{kind}Latency_ms", time.monotonic() - started)

    def _upload(self, environ: dict, start_response: Callable, name: str) -> Iterable[bytes]:
        if self.store.exists(name):
            self.metrics.inc("uploadExistingCounter")
            return _text(start_response, "200 OK", f"Bundle {name} already exists, no-op and return\n")
        ttl = environ.get("HTTP_X_SCOOT_EXPIRES")
        if ttl is not None:
            try:
                parse_ttl(ttl)
            except ValueError as exc:
                self.metrics.inc("uploadErrCounter")
                return _text(start_response, "500 Internal Server Error", f"Error parsing TTL: {exc}\n")
        reader = CheckedReader(_StallGuard(environ["wsgi.input"], self.stall_s), _content_length(environ))
        started, result = time.monotonic(), "error"
        try:
            self.store.write(name, reader)
            result = "ok"
        except BundleError as exc:
            log.info("rejected upload of %s: %s", name, exc)
            self.metrics.inc("uploadErrCounter")
            return _text(start_response, "400 Bad Request", f"Error writing Bundle: {exc}\n")
        except (OSError, StoreError) as exc:
            log.warning("upload of %s failed: %s", name, exc)
            self.metrics.inc("uploadErrCounter")
            return _text(start_response, "500 Internal Server Error", f"Error writing Bundle: {exc}\n")
        finally:
            self.metrics.inc("upload_bytes_total", reader.total)
            self.metrics.observe("upload_duration_seconds", time.monotonic() - started, result=result)
        self.metrics.inc("uploadOkCounter")
        return _text(start_response, "200 OK", f"Successfully wrote bundle {name}\n")

    def _download(self, start_response: Callable, name: str, head: bool) -> Iterable[bytes]:
        try:
            stream = self.store.open_read(name)
        except SnapshotError:
            self.metrics.inc("downloadErrCounter")
            return _text(start_response, "404 Not Found", "404 page not found\n")
        size = os.fstat(stream.fileno()).st_size
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(size))])
        if head:
            stream.close()
            self.metrics.inc("downloadOkCounter")
            return [b""]
        return self._stream(stream)

    def _stream(self, stream) -> Iterator[bytes]:
        with stream:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                self.metrics.inc("download_bytes_total", len(chunk))
                yield chunk
        self.metrics.inc("downloadOkCounter")


class _StallGuard:
    """Reads an upload in 64 KiB pieces, failing when one takes longer than ``seconds`` (a stalled client
    must not hold a temp file and a greenlet forever)."""

    def __init__(self, stream, seconds: float):
        self.stream, self.seconds = stream, seconds

    def read(self, n: int) -> bytes:
        with gevent.Timeout(self.seconds, BundleError(f"upload stalled for {self.seconds:g}s")):
            return self.stream.read(min(n, 64 * 1024))


def _content_length(environ: dict) -> Optional[int]:
    text = environ.get("CONTENT_LENGTH") or ""
    return int(text) if text.isdigit() else None


class ViewApp:
    """``/view/<id>/<path>``: the bytes of one file of a ``bs-fs`` snapshot. Reads go through a GitDB made
    by ``make_db``; after ``reads_per_db`` reads a fresh one takes over and the old one is closed (its repo
    deleted) once its last read ends, so the viewer's object cache stays bounded."""

    def __init__(self, make_db: Callable[[], object], reads_per_db: int = 500):
        self._make_db, self._limit = make_db, reads_per_db
        self._db, self._reads = make_db(), 0
        self._inflight: Dict[int, int] = {}
        self._retired: Dict[int, object] = {}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        rest = environ.get("PATH_INFO", "")[len("/view/"):]
        snapshot_id, sep, path = rest.partition("/")
        if not sep:
            return _text(start_response, "400 Bad Request", "need both an id and a path\n")
        db = self._acquire()
        try:
            data = db.read_file(snapshot_id, path)
        except SnapshotError as exc:
            return _text(start_response, "500 Internal Server Error", f"{exc}\n")
        finally:
            self._release(db)
        return respond(start_response, "200 OK", data, "text/plain")

    def _acquire(self):
        if self._reads >= self._limit:
            old, self._db, self._reads = self._db, self._make_db(), 0
            if self._inflight.get(id(old)):
                self._retired[id(old)] = old
            else:
                _discard(old)
        self._reads += 1
        self._inflight[id(self._db)] = self._inflight.get(id(self._db), 0) + 1
        return self._db

    def _release(self, db) -> None:
        key = id(db)
        self._inflight[key] -= 1
        if self._inflight[key] == 0:
            del self._inflight[key]
            retired = self._retired.pop(key, None)
            if retired is not None:
                _discard(retired)

    def close(self) -> None:
        """Close every database (call when the server has stopped)."""
        for db in [self._db, *self._retired.values()]:
            _discard(db)
        self._retired.clear()


def _discard(db) -> None:
    db.close()
    remove_tree(db.repo)

"""Bundle stores: a flat key/value store of immutable files (``bs-<key>.bundle``).

``FileStore`` keeps one file per name in a directory and publishes writes atomically; ``HttpStore`` talks to
a bundlestore server (``apiserver``) at ``<root>/<name>`` with HEAD/GET/POST, retrying 5xx and transport
errors with exponential backoff and streaming bodies both ways; POSTs reuse idle keep-alive connections.
Both offer ``exists``, ``open_read`` and ``write``; ``ttl`` on write is seconds from now (the HTTP store
sends it as the ``x-scoot-expires`` header, the file store keeps no metadata, like the reference).
"""

import http.client
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from email.utils import format_datetime, parsedate_to_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, Dict, List, Optional, Tuple, Union
from urllib.parse import quote, urlsplit

from scootpy.snapshots.ids import SnapshotError

log = logging.getLogger(__name__)

TTL_HEADER = "x-scoot-expires"
DEFAULT_TTL_S = 180 * 24 * 3600
BUNDLE_NAME_TEXT = "^bs-[a-z0-9]{40}.bundle"
BUNDLE_NAME = re.compile(r"bs-[a-z0-9]{40}\.bundle")
CHUNK = 1 << 20
MAX_NAME = 255
MAX_IDLE = 4  # idle keep-alive connections an HttpStore keeps


class StoreError(SnapshotError):
    """A store operation failed."""


class NotFound(StoreError):
    """The named file is not in the store."""


class InvalidName(StoreError):
    """A name that could escape the store or is otherwise unusable."""


def check_name(name: str) -> str:
    """Return ``name`` if it is one plain file name inside a flat store, else raise InvalidName."""
    if "/" in name:
        raise InvalidName("'/' not allowed in name unless reading bundle contents.")
    if name in ("", ".", "..") or "\0" in name or len(name.encode()) > MAX_NAME or name.startswith(".tmp-"):
        raise InvalidName(f"invalid store name: {name!r}")
    return name


def is_bundle_name(name: str) -> bool:
    """True for names the bundlestore server serves: exactly ``bs-<40 [a-z0-9]>.bundle``."""
    return BUNDLE_NAME.fullmatch(name) is not None


def format_ttl(expires: datetime) -> str:
    """RFC 1123 in GMT, the format of the ``x-scoot-expires`` header."""
    return format_datetime(expires.astimezone(timezone.utc), usegmt=True)


def parse_ttl(text: str) -> datetime:
    """Parse an RFC 1123 time (any zone name); raise ValueError when it is not one."""
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f'parsing time "{text}" as RFC1123: {exc}') from None
    if parsed is None:
        raise ValueError(f'parsing time "{text}" as RFC1123')
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class FileStore:
    """A flat directory of files. Writes land in a temp file and are published with a hard link, so a
    reader never sees a partial file and the first of several concurrent writers of one name wins."""

    def __init__(self, directory: Union[str, Path]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> str:
        return str(self.directory)

    def _path(self, name: str) -> Path:
        return self.directory / check_name(name)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def open_read(self, name: str) -> BinaryIO:
        try:
            return open(self._path(name), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"{name} not found in {self.directory}") from None

    def write(self, name: str, fileobj: BinaryIO, ttl: Optional[float] = None) -> bool:
        """Copy ``fileobj`` into the store as ``name``; return False when ``name`` already existed
        (the first write wins; bundles are immutable). Nothing is published if reading ``fileobj`` fails."""
        final = self._path(name)
        tmp = self.directory / f".tmp-{uuid.uuid4().hex}"
        try:
            with open(tmp, "xb") as out:
                shutil.copyfileobj(fileobj, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(tmp, final)
                return True
            except FileExistsError:
                return False
            except OSError:
                if final.exists():
                    return False
                os.replace(tmp, final)
                return True
        finally:
            tmp.unlink(missing_ok=True)

    def remove_stale_temps(self, older_than_s: float = 3600) -> None:
        """Delete temp files left by writers that died (never a published file)."""
        cutoff = time.time() - older_than_s
        for entry in self.directory.glob(".tmp-*"):
            try:
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
            except OSError:
                pass


class _Response:
    """A streaming HTTP response body that closes its connection when closed."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse):
        self._conn, self._resp = conn, resp
        self.length = resp.length

    def read(self, n: int = -1) -> bytes:
        return self._resp.read(n if n is not None and n >= 0 else None)

    def readinto(self, buf) -> int:
        return self._resp.readinto(buf)

    def close(self) -> None:
        self._resp.close()
        self._conn.close()

    def __enter__(self) -> "_Response":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class HttpStore:
    """Client of a bundlestore server. ``root_url`` is e.g. ``http://host:9094/bundle`` (a trailing ``/`` is
    added). Each request is tried up to ``tries`` times; after failed try ``i`` (0-based) it sleeps
    ``min(backoff * 2**i, max_backoff)`` seconds."""

    def __init__(self, root_url: str, tries: int = 7, backoff: float = 0.5, max_backoff: float = 8.0,
                 timeout: float = 60.0):
        self.root = root_url if root_url.endswith("/") else root_url + "/"
        url = urlsplit(self.root)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise StoreError(f"invalid bundlestore URL: {root_url}")
        self._scheme, self._netloc, self._path = url.scheme, url.netloc, url.path
        self.tries, self.backoff, self.max_backoff, self.timeout = max(1, tries), backoff, max_backoff, timeout
        self._idle: List[Tuple[int, http.client.HTTPConnection]] = []
        self._idle_lock = threading.Lock()

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._netloc, timeout=self.timeout, blocksize=CHUNK)

    def _reuse(self) -> Optional[http.client.HTTPConnection]:
        """An idle connection made by this OS thread (an event loop's sockets stay with its thread)."""
        me = threading.get_native_id()
        with self._idle_lock:
            for i, (owner, conn) in enumerate(self._idle):
                if owner == me:
                    del self._idle[i]
                    return conn
        return None

    def _done(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        """Keep ``conn`` for the next request if its response was read to the end and it stays open."""
        if resp.isclosed() and not resp.will_close and conn.sock is not None:
            with self._idle_lock:
                if len(self._idle) < MAX_IDLE:
                    self._idle.append((threading.get_native_id(), conn))
                    return
        conn.close()

    def _send(self, method: str, path: str, body: Optional[BinaryIO], start: int,
              headers: Dict[str, str]) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """One try: on an idle connection if there is one (if the server dropped it meanwhile, again on a
        new one), else on a new connection."""
        conn = self._reuse()
        if conn is not None:
            try:
                if body is not None:
                    body.seek(start)
                conn.request(method, path, body=body, headers=headers)
                return conn, conn.getresponse()
            except (OSError, http.client.HTTPException):
                conn.close()
        conn = self._connect()
        try:
            if body is not None:
                body.seek(start)
            conn.request(method, path, body=body, headers=headers)
            return conn, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def _request(self, method: str, name: str, body: Optional[BinaryIO] = None,
                 headers: Optional[Dict[str, str]] = None) -> Tuple[http.client.HTTPConnection,
                                                                     http.client.HTTPResponse]:
        """Send one request with retries; return the open connection and response (status < 500)."""
        start = body.tell() if body is not None else 0
        last = ""
        for attempt in range(self.tries):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))
            try:
                conn, resp = self._send(method, self._path + quote(name, safe=""), body, start, headers or {})
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.debug("%s %s%s try %d failed: %s", method, self.root, name, attempt + 1, last)
                continue
            if resp.status < 500:
                return conn, resp
            last = f"{resp.status} {resp.reason}: {resp.read(4096).decode(errors='replace').strip()}"
            conn.close()
            log.debug("%s %s%s try %d failed: %s", method, self.root, name, attempt + 1, last)
        raise StoreError(f"{method} {self.root}{name} failed after {self.tries} tries: {last}")

    def exists(self, name: str) -> bool:
        conn, resp = self._request("HEAD", check_name(name))
        try:
            resp.read()
            if resp.status == 404:
                return False
            if resp.status != 200:
                raise StoreError(f"HEAD {self.root}{name}: {resp.status} {resp.reason}")
            expires = resp.getheader(TTL_HEADER)
            if expires:
                try:
                    return parse_ttl(expires) > datetime.now(timezone.utc)
                except ValueError:
                    return True
            return True
        finally:
            conn.close()  # some servers (gevent's pywsgi) send a body after HEAD: never reuse this one

    def open_read(self, name: str) -> _Response:
        conn, resp = self._request("GET", check_name(name))
        if resp.status == 200:
            return _Response(conn, resp)
        text = resp.read(4096).decode(errors="replace").strip()
        conn.close()
        if resp.status == 404:
            raise NotFound(f"{name} not found in {self.root}")
        if resp.status == 400:
            raise InvalidName(text or f"invalid name {name}")
        raise StoreError(f"could not open: {resp.status} {resp.reason}: {text}")

    def write(self, name: str, fileobj: BinaryIO, ttl: Optional[float] = None) -> bool:
        """POST ``fileobj`` as ``name`` (streamed, re-read from its start on each retry)."""
        check_name(name)
        if not _seekable(fileobj):
            with tempfile.TemporaryFile() as spool:
                shutil.copyfileobj(fileobj, spool, CHUNK)
                spool.seek(0)
                return self.write(name, spool, ttl)
        start = fileobj.tell()
        length = fileobj.seek(0, os.SEEK_END) - start
        fileobj.seek(start)
        expires = datetime.now(timezone.utc) + timedelta(seconds=DEFAULT_TTL_S if ttl is None else ttl)
        headers = {"Content-Type": "text/plain", "Content-Length": str(length), TTL_HEADER: format_ttl(expires)}
        conn, resp = self._request("POST", name, fileobj, headers)
        try:
            text = resp.read(4096).decode(errors="replace").strip()
        finally:
            self._done(conn, resp)
        if resp.status != 200:
            raise StoreError(f"POST {self.root}{name}: {resp.status} {resp.reason}: {text}")
        return "already exists" not in text


def _seekable(fileobj: BinaryIO) -> bool:
    try:
        return fileobj.seekable()
    except (AttributeError, OSError, ValueError):
        return False


Store = Union[FileStore, HttpStore]


def store_for_worker_flag(value: str) -> Optional[Store]:
    """The worker's ``--bundlestore`` value: ``/abs/dir`` is a FileStore at ``/abs/dir/bundles``, an
    ``http(s)://`` URL is used as is, ``host:port`` means ``http://host:port/bundle/``; "" gives None."""
    if not value:
        return None
    if value.startswith("/"):
        return FileStore(Path(value) / "bundles")
    if value.startswith(("http://", "https://")):
        return HttpStore(value)
    return HttpStore(f"http://{value}/bundle/")


def addr_from_cloudscootaddr(home: Optional[str] = None) -> Optional[str]:
    """Line 2 (the bundlestore ``host:port``) of ``~/.cloudscootaddr$SCOOT_ID``, or None."""
    path = Path(home or os.path.expanduser("~")) / f".cloudscootaddr{os.environ.get('SCOOT_ID', '')}"
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    return lines[1].strip() if len(lines) > 1 and lines[1].strip() else None

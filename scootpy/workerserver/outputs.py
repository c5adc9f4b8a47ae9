"""Run log files (``<runId>-stdout<random>`` ...) in the worker's output directory, their URIs, and the
``/output/`` HTTP app that serves them.

A URI looks like ``http://<http_addr>/output//0-stdout?file=file://<host>/tmp/scoot-tmp-1/output/0-stdout123``
(the double slash and the bare ``file://`` query are the reference's). ``GET /output/<name>`` with
``?content=true`` returns the bytes (Range requests work); without it, a small page that keeps tailing.
A few empty ``.spare-*`` files are made ahead of time in a pool thread and renamed into place, so starting
a run creates no file (creating one can take a millisecond on a busy disk); the listing hides them.
"""

import collections
import email.utils
import html
import logging
import os
import posixpath
import random
import re
import socket
import threading
from typing import Callable, Deque, Dict, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs, quote

import gevent

from scootpy.admin import respond

log = logging.getLogger(__name__)

MAX_FILES = 3000  # files (3 per run) kept on disk and served; older ones are deleted
SPARES = 3  # empty files made ahead of time, so a run's logs need no file creation (which can take ~1 ms)
SPARE_PREFIX = ".spare-"
_CHUNK = 1 << 16
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TAIL_PAGE = b"""<html>
<head><title>Scoot run output</title></head>
<body>
<pre id="output" style="white-space: pre-wrap"></pre>
<script>
  var shown = 0, resource = null;
  function poll() {
    var request = new XMLHttpRequest();
    request.onload = function () {
      if (request.status !== 200) return;
      var id = request.getResponseHeader("X-Resource-Id");
      if (resource === null) resource = id;
      var out = document.getElementById("output");
      if (id !== resource) {
        out.appendChild(document.createTextNode("\\n[" + new Date() + "] the file changed; stopped.\\n"));
        clearInterval(timer);
        return;
      }
      var atEnd = window.innerHeight + window.scrollY >= document.body.scrollHeight;
      out.appendChild(document.createTextNode(request.responseText.substring(shown)));
      shown = request.responseText.length;
      if (atEnd) window.scrollTo(0, document.body.scrollHeight);
    };
    request.open("GET", location.href + (location.search === "" ? "?" : "&") + "content=true");
    request.send();
  }
  poll();
  var timer = setInterval(poll, 5000);
</script>
</body>
</html>
"""


class Output:
    """One log file being written."""

    def __init__(self, path: str, uri: str, fd: int):
        self.path = path
        self.uri = uri
        self._file = open(fd, "wb", buffering=0)

    def write(self, data: bytes) -> None:
        if not self._file.closed:
            self._file.write(data)

    def close(self) -> None:
        self._file.close()


class OutputCreator:
    """Creates run log files in ``directory`` and serves them over HTTP."""

    def __init__(self, directory: str, http_addr: str = "", hostname: Optional[str] = None,
                 max_files: int = MAX_FILES, spares: int = SPARES):
        self.directory = directory
        self.spares = spares
        self._spares: List[Tuple[str, int]] = []
        self._refilling = False
        self.http_uri = f"http://{http_addr}/output/" if http_addr else ""
        self.hostname = hostname if hostname is not None else socket.gethostname()
        self.max_files = max_files
        self._paths: Dict[str, str] = {}
        self._files: Deque[Tuple[str, str]] = collections.deque()
        self._lock = threading.Lock()

    def create(self, name: str) -> Output:
        """Create ``<name><random digits>``; the URI names it by ``name`` (e.g. ``0-stdout``)."""
        made = self._claim_spare(name)
        if made is None:
            try:
                made = _unique_file(os.path.abspath(self.directory), name)
            except FileNotFoundError:  # the directory was removed: make it again
                os.makedirs(self.directory, exist_ok=True)
                made = _unique_file(os.path.abspath(self.directory), name)
        self._refill_spares()
        path, fd = made
        uri = f"file://{self.hostname}{path}"
        if self.http_uri:
            uri = f"{self.http_uri}/{name}?file={uri}"
        with self._lock:
            self._paths[name.strip("/")] = path
            self._paths[os.path.basename(path)] = path
            self._files.append((name.strip("/"), path))
            evicted = self._evict()
        for old in evicted:
            _remove(old)
        return Output(path, uri, fd)

    def _claim_spare(self, name: str) -> Optional[Tuple[str, int]]:
        """A spare file renamed ``<name><random digits>`` (link, then unlink: never over an existing name)."""
        while self._spares:
            spare, fd = self._spares.pop()
            for _ in range(100):
                path = os.path.join(os.path.dirname(spare), f"{name}{random.getrandbits(32)}")
                try:
                    os.link(spare, path)
                except FileExistsError:
                    continue
                except OSError:
                    break
                _remove(spare)
                return path, fd
            os.close(fd)
            _remove(spare)
        return None

    def _refill_spares(self) -> None:
        """Make the missing spares in a pool thread, off the run's path and without blocking the hub."""
        if self._refilling or len(self._spares) >= self.spares:
            return
        self._refilling = True

        def refill() -> None:
            try:
                directory, count = os.path.abspath(self.directory), self.spares - len(self._spares)
                self._spares += gevent.get_hub().threadpool.apply(_make_spares, (directory, count))
            finally:
                self._refilling = False
        gevent.spawn(refill)

    def _evict(self) -> List[str]:
        evicted = []
        while len(self._files) > self.max_files:
            name, path = self._files.popleft()
            if self._paths.get(name) == path:
                del self._paths[name]
            self._paths.pop(os.path.basename(path), None)
            evicted.append(path)
        return evicted

    def lookup(self, name: str) -> Optional[str]:
        with self._lock:
            return self._paths.get(name)

    def wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """The ``/output/`` app (mount it at ``/output``)."""
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        cleaned = _clean(path if path != "/output" else "/output/")
        if cleaned != path:
            target = cleaned + ("?" + query if query else "")
            body = f'<a href="{html.escape(target)}">Moved Permanently</a>.\n\n'.encode()
            return respond(start_response, "301 Moved Permanently", body, "text/html; charset=utf-8",
                           headers=[("Location", target)])
        if path == "/output/":
            return self._listing(start_response)
        found = self.lookup(path[len("/output/"):])
        if found is None:
            return _error(start_response, "404 Not Found", "Unrecognized path")
        try:
            handle = open(found, "rb")
        except OSError:
            return _error(start_response, "410 Gone", "")
        headers = [("Access-Control-Allow-Origin", "*"), ("X-Resource-Id", found)]
        if parse_qs(query).get("content", [""])[0] != "true":
            handle.close()
            return respond(start_response, "200 OK", _TAIL_PAGE, "text/html; charset=utf-8", headers)
        return _serve_file(handle, environ, start_response, headers)

    def _listing(self, start_response: Callable) -> Iterable[bytes]:
        try:
            names = sorted(n for n in os.listdir(self.directory) if not n.startswith(SPARE_PREFIX))
        except OSError:
            names = []
        rows = "".join(f'<a href="{quote(n)}">{html.escape(n)}</a>\n' for n in names)
        return respond(start_response, "200 OK", f"<pre>\n{rows}</pre>\n".encode(), "text/html; charset=utf-8")


def _unique_file(directory: str, prefix: str) -> Tuple[str, int]:
    """Create ``<prefix><random digits>`` exclusively; return its path and an open write descriptor."""
    for _ in range(10000):
        path = os.path.join(directory, f"{prefix}{random.getrandbits(32)}")
        try:
            return path, os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
    raise OSError(f"could not create a unique file for {prefix} in {directory}")


def _make_spares(directory: str, count: int) -> List[Tuple[str, int]]:
    """Runs in a pool thread: up to ``count`` new empty files (path, write descriptor)."""
    made: List[Tuple[str, int]] = []
    try:
        for _ in range(count):
            made.append(_unique_file(directory, SPARE_PREFIX))
    except OSError as e:
        log.debug("could not make spare output files in %s: %s", directory, e)
    return made


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError as e:
        log.debug("could not remove old output %s: %s", path, e)


def _clean(path: str) -> str:
    """Go ServeMux's path cleaning: collapse ``//``, ``.``, ``..``, keep a trailing slash."""
    cleaned = posixpath.normpath(path or "/")
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


def _error(start_response: Callable, status: str, text: str) -> List[bytes]:
    return respond(start_response, status, (text + "\n").encode(), headers=[("X-Content-Type-Options", "nosniff")])


def _serve_file(handle, environ: dict, start_response: Callable, headers: List[Tuple[str, str]]
                ) -> Iterable[bytes]:
    """The file's bytes with Range, If-Modified-Since and HEAD handled the way Go's ServeContent does."""
    info = os.fstat(handle.fileno())
    modified = email.utils.formatdate(int(info.st_mtime), usegmt=True)
    if _not_modified(environ.get("HTTP_IF_MODIFIED_SINCE", ""), int(info.st_mtime)):
        handle.close()
        start_response("304 Not Modified", headers + [("Last-Modified", modified)])
        return []
    size = info.st_size
    start, end, status = 0, size, "200 OK"
    ranged = _RANGE.match(environ.get("HTTP_RANGE", "").strip())
    if ranged and (ranged.group(1) or ranged.group(2)):
        first, last = ranged.groups()
        if first:
            start, end = int(first), (min(int(last) + 1, size) if last else size)
        else:
            start, end = max(0, size - int(last)), size
        if start >= size or start >= end:
            handle.close()
            return respond(start_response, "416 Requested Range Not Satisfiable",
                           b"invalid range: failed to overlap\n",
                           headers=headers + [("Content-Range", f"bytes */{size}")])
        status = "206 Partial Content"
        headers = headers + [("Content-Range", f"bytes {start}-{end - 1}/{size}")]
    start_response(status, headers + [("Content-Type", "text/plain; charset=utf-8"),
                                      ("Content-Length", str(end - start)), ("Accept-Ranges", "bytes"),
                                      ("Last-Modified", modified)])
    if environ.get("REQUEST_METHOD") == "HEAD":
        handle.close()
        return []
    return _read_range(handle, start, end)


def _not_modified(since: str, mtime: int) -> bool:
    try:
        when = email.utils.parsedate_to_datetime(since) if since else None
    except (TypeError, ValueError):
        return False
    return when is not None and when.tzinfo is not None and mtime <= when.timestamp()


def _read_range(handle, start: int, end: int) -> Iterable[bytes]:
    with handle:
        handle.seek(start)
        left = end - start
        while left > 0:
            data = handle.read(min(_CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data

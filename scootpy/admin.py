"""The HTTP admin server every Scoot process runs: ``/health``, ``/admin/metrics.json``, ``/metrics``.

Servers add their own paths (worker output files, bundlestore, status page) as WSGI apps mounted on a path
prefix. Unknown paths answer 501 with the reference's text. With ``clean_paths=True`` it also redirects
like Go's ServeMux: an unclean path (``/output//0-stdout``, ``/a/../health``) and a mount prefix ``/x/``
asked for as ``/x`` get a 301 to the clean path, query kept (the worker's ``/output/`` URIs rely on it).
Peers ``allow`` refuses get 403. Every request is counted by method and status code
(``http_requests_total``) and timed (``http_request_duration_seconds``), in Prometheus text only.
"""

import http.client
import logging
import signal
import socket
import time
from typing import Any, Callable, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs, quote

import gevent
import gevent.event
from gevent.pool import Pool
from gevent.pywsgi import WSGIHandler, WSGIServer

from scootpy.lifecycle import GeventServerLifecycle
from scootpy.metrics import Registry

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"})
UNKNOWN_PATH_TEXT = b"Common paths: '/health', '/admin/metrics.json', '/output', '/debug/pprof'\n"


def respond(start_response: Callable, status: str, body: bytes = b"",
            content_type: str = "text/plain; charset=utf-8", headers: Optional[List[Tuple[str, str]]] = None
            ) -> List[bytes]:
    """Send a complete, small response."""
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))]
                   + list(headers or []))
    return [body]


class _QuietLog:
    """Route gevent's access log to debug level instead of stderr."""

    def write(self, line: str) -> None:
        log.debug(line.rstrip())


class _Handler(WSGIHandler):
    """gevent's request handler, except that every unparsable request is a quiet 400: gevent prints a
    stderr traceback for the errors it does not expect (``HTTP/1`` as a version, more than 100 headers)."""

    def handle(self) -> None:
        # Status line and body go out in separate writes: without this, the body of a reply on a kept-alive
        # connection waits for the client's delayed ACK (40 ms).
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        super().handle()

    def _handle_client_error(self, ex: Exception) -> Tuple[str, bytes]:
        if isinstance(ex, (IndexError, http.client.HTTPException)):
            ex = ValueError(str(ex) or type(ex).__name__)
        return super()._handle_client_error(ex)


class AdminServer(GeventServerLifecycle):
    """A gevent WSGI server with the admin endpoints plus mounted apps."""

    def __init__(self, addr: Tuple[str, int], metrics: Registry,
                 mounts: Iterable[Tuple[str, WsgiApp]] = (), allow: Optional[Callable[[str], bool]] = None,
                 clean_paths: bool = False, max_connections: int = 1024):
        self.metrics = metrics
        metrics.describe("http_requests_total", "HTTP requests served, by method and status code", in_json=False)
        metrics.describe("http_request_duration_seconds", "Time to serve an HTTP request, body included",
                         in_json=False)
        self.mounts = sorted(mounts, key=lambda m: -len(m[0]))
        self.allow = allow
        self.clean_paths = clean_paths
        self._server = WSGIServer(addr, self._app, log=_QuietLog(), error_log=_QuietLog(),
                                  spawn=Pool(max_connections), handler_class=_Handler)

    def _app(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Serve one request, counting it by method and status code once its body is produced (a streamed
        body: once the server closes it after the last byte)."""
        started, status = time.monotonic(), ["500"]

        def recording_start_response(line: str, headers: list, exc_info: Any = None) -> Callable:
            status[0] = line[:3]
            return start_response(line, headers, exc_info)

        method = environ.get("REQUEST_METHOD", "")
        method = method if method in HTTP_METHODS else "other"

        def done() -> None:
            self.metrics.inc("http_requests_total", method=method, code=status[0])
            self.metrics.observe("http_request_duration_seconds", time.monotonic() - started, method=method)
        try:
            body = self._route(environ, recording_start_response)
        except BaseException:
            done()
            raise
        if hasattr(body, "__len__"):  # produced already; kept as is so gevent still sets Content-Length
            done()
            return body
        return _Metered(body, done)

    def _route(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.allow is not None and not self.allow(environ.get("REMOTE_ADDR", "")):
            return respond(start_response, "403 Forbidden", b"forbidden\n")
        path = environ.get("PATH_INFO", "")
        if self.clean_paths:
            target = clean_path(path)
            if any(prefix.endswith("/") and target == prefix[:-1] for prefix, _ in self.mounts):
                target += "/"
            if target != path:
                return _redirect(environ, start_response, target)
        if path == "/health":
            return respond(start_response, "200 OK", b"ok")
        if path == "/admin/metrics.json":
            pretty = parse_qs(environ.get("QUERY_STRING", "")).get("pretty") == ["true"]
            return respond(start_response, "200 OK", self.metrics.to_json(pretty).encode(),
                           "application/json; charset=utf-8")
        if path == "/metrics":
            return respond(start_response, "200 OK", self.metrics.to_prometheus().encode(),
                           "text/plain; version=0.0.4; charset=utf-8")
        for prefix, app in self.mounts:
            if path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/"):
                return app(environ, start_response)
        return respond(start_response, "501 Not Implemented", UNKNOWN_PATH_TEXT,
                       headers=[("X-Content-Type-Options", "nosniff")])


class _Metered:
    """A response body that calls ``done`` when the server closes it (after the last byte, or on abort)."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]):
        self.body, self._done = body, done

    def __iter__(self):
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done()


def clean_path(path: str) -> str:
    """Go's ServeMux cleanPath: resolve ``.``, ``..`` and ``//``, keep a trailing slash, always rooted."""
    parts: List[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if parts:
                parts.pop()
        elif segment not in ("", "."):
            parts.append(segment)
    clean = "/" + "/".join(parts)
    return clean + "/" if path.endswith("/") and clean != "/" else clean


def _redirect(environ: dict, start_response: Callable, path: str) -> List[bytes]:
    """A 301 as Go's http.Redirect writes it (HTML note for GET, no body otherwise)."""
    location = quote(path, safe="/:@!$&'()*+,;=-._~")
    if environ.get("QUERY_STRING"):
        location += "?" + environ["QUERY_STRING"]
    headers = [("Location", location)]
    method = environ.get("REQUEST_METHOD", "GET")
    if method not in ("GET", "HEAD"):
        start_response("301 Moved Permanently", headers + [("Content-Length", "0")])
        return [b""]
    escaped = "".join({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"}.get(c, c)
                      for c in location)
    body = f'<a href="{escaped}">Moved Permanently</a>.\n\n'.encode() if method == "GET" else b""
    return respond(start_response, "301 Moved Permanently", body, "text/html; charset=utf-8", headers)


def run_servers(*servers: Any) -> None:
    """Start every server, then block until the process is told to stop (SIGINT/SIGTERM)."""
    for server in servers:
        server.start()
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    stop.wait()
    for server in servers:
        server.stop()

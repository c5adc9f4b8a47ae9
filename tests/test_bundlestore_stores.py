"""FileStore and HttpStore: name validation, atomic publishing, retries with backoff, streaming, TTL header."""

import io
import os
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

import gevent
import pytest
from gevent.pywsgi import WSGIServer

from scootpy.snapshots.store import (FileStore, HttpStore, InvalidName, NotFound, StoreError, format_ttl,
                                     parse_ttl, store_for_worker_flag)


class ScriptedServer:
    """A loopback HTTP server answering with a script of statuses and recording each request."""

    def __init__(self, statuses, body=b"payload", headers=()):
        self.statuses, self.body, self.headers = list(statuses), body, list(headers)
        self.requests = []
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/bundle"

    def app(self, environ, start_response):
        size = 0
        while True:
            chunk = environ["wsgi.input"].read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
        self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], dict(
            (k, v) for k, v in environ.items() if k.startswith(("HTTP_", "CONTENT_"))), size, time.monotonic()))
        status = self.statuses.pop(0) if self.statuses else 200
        body = self.body if status == 200 else b"nope"
        start_response(f"{status} X", [("Content-Length", str(len(body)))] + self.headers)
        return [body]

    def stop(self):
        self.server.stop()


@pytest.fixture
def scripted():
    servers = []

    def make(*args, **kw):
        servers.append(ScriptedServer(*args, **kw))
        return servers[-1]
    yield make
    for s in servers:
        s.stop()


def test_retries_5xx_then_gives_up(scripted):
    server = scripted([500, 502, 503])
    store = HttpStore(server.url, tries=3, backoff=0.05)
    with pytest.raises(StoreError, match="failed after 3 tries: 503"):
        store.open_read("bs-x.bundle")
    times = [r[4] for r in server.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.05 and times[2] - times[1] >= 0.1, "exponential backoff"


def test_retries_until_success(scripted):
    server = scripted([500, 502, 200])
    store = HttpStore(server.url, tries=10, backoff=0.01)
    with store.open_read("bs-x.bundle") as f:
        assert f.read() == b"payload"
    assert len(server.requests) == 3


def test_no_retry_on_4xx(scripted):
    server = scripted([404, 400])
    store = HttpStore(server.url + "/", backoff=0.01)
    with pytest.raises(NotFound):
        store.open_read("a")
    with pytest.raises(InvalidName):
        store.open_read("b")
    assert [r[1] for r in server.requests] == ["/bundle/a", "/bundle/b"], "one slash between root and name"


def test_transport_errors_are_retried(scripted):
    store = HttpStore("http://127.0.0.1:1/bundle", tries=3, backoff=0.01)
    with pytest.raises(StoreError, match="failed after 3 tries: ConnectionRefusedError"):
        store.exists("bs-x.bundle")


def test_exists_uses_head_and_ttl(scripted):
    past = format_ttl(datetime.now(timezone.utc) - timedelta(hours=1))
    assert HttpStore(scripted([200]).url).exists("a") is True
    assert HttpStore(scripted([404]).url).exists("a") is False
    assert HttpStore(scripted([200], headers=[("x-scoot-expires", past)]).url).exists("a") is False
    server = scripted([200])
    HttpStore(server.url).exists("a")
    assert server.requests[0][0] == "HEAD"


def test_write_posts_with_ttl_header_and_resends_body_on_retry(scripted):
    server = scripted([503, 200])
    data = os.urandom(300_000)
    HttpStore(server.url, backoff=0.01).write("bs-y.bundle", io.BytesIO(data), ttl=3600)
    assert [r[3] for r in server.requests] == [len(data), len(data)]
    method, path, headers, _, _ = server.requests[1]
    assert (method, path, headers["CONTENT_TYPE"]) == ("POST", "/bundle/bs-y.bundle", "text/plain")
    expires = parse_ttl(headers["HTTP_X_SCOOT_EXPIRES"])
    assert abs((expires - datetime.now(timezone.utc)).total_seconds() - 3600) < 60
    default = scripted([200])
    HttpStore(default.url).write("n", io.BytesIO(b"x"))
    days = (parse_ttl(default.requests[0][2]["HTTP_X_SCOOT_EXPIRES"]) - datetime.now(timezone.utc)).days
    assert days in (179, 180)


def test_write_streams_without_buffering(scripted, tmp_path):
    server = scripted([200])
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(64 << 20)
    tracemalloc.start()
    try:
        with open(big, "rb") as f:
            HttpStore(server.url).write("bs-big.bundle", f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert server.requests[0][3] == 64 << 20
    assert peak < 16 << 20


def test_write_of_unseekable_stream_is_spooled(scripted):
    server = scripted([500, 200])

    class OneShot(io.RawIOBase):
        chunks = [b"stream", b"ed"]

        def readable(self):
            return True

        def readinto(self, buf):
            if not self.chunks:
                return 0
            chunk = self.chunks.pop(0)
            buf[:len(chunk)] = chunk
            return len(chunk)
    HttpStore(server.url, backoff=0.01).write("s", OneShot())
    assert [r[3] for r in server.requests] == [8, 8]


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../x", "x\0y", ".tmp-abc", "n" * 300])
def test_names_are_validated(tmp_path, bad):
    store = FileStore(tmp_path / "s")
    with pytest.raises(InvalidName):
        store.write(bad, io.BytesIO(b"x"))
    with pytest.raises(InvalidName):
        store.exists(bad)
    with pytest.raises(InvalidName):
        HttpStore("http://127.0.0.1:1/").exists(bad)
    assert os.listdir(tmp_path / "s") == []


def test_file_store_first_write_wins_and_failed_write_publishes_nothing(tmp_path):
    store = FileStore(tmp_path / "s")
    assert store.write("k", io.BytesIO(b"first")) is True
    assert store.write("k", io.BytesIO(b"second")) is False
    assert store.open_read("k").read() == b"first"

    class Broken(io.RawIOBase):
        def readinto(self, buf):
            raise OSError("disk on fire")
    with pytest.raises(OSError):
        store.write("other", Broken())
    assert os.listdir(tmp_path / "s") == ["k"]
    with pytest.raises(NotFound):
        store.open_read("missing")


def test_file_store_concurrent_writers(tmp_path):
    store = FileStore(tmp_path / "s")
    payload = os.urandom(1 << 20)
    jobs = [gevent.spawn(store.write, "same", io.BytesIO(payload)) for _ in range(10)]
    assert sorted(j.get() for j in jobs).count(True) == 1
    assert os.listdir(tmp_path / "s") == ["same"] and store.open_read("same").read() == payload


def test_worker_flag_forms(tmp_path):
    assert isinstance(store_for_worker_flag(str(tmp_path)), FileStore)
    assert store_for_worker_flag(str(tmp_path)).directory == tmp_path / "bundles"
    assert store_for_worker_flag("localhost:9094").root == "http://localhost:9094/bundle/"
    assert store_for_worker_flag("http://h:1/bundle").root == "http://h:1/bundle/"
    assert store_for_worker_flag("") is None
    with pytest.raises(StoreError):
        HttpStore("ftp://nowhere")


def test_names_are_quoted_in_urls(scripted):
    server = scripted([400])
    with pytest.raises(InvalidName):
        HttpStore(server.url, backoff=0.01).open_read("bs-a b?.bundle")
    assert len(server.requests) == 1 and server.requests[0][1] == "/bundle/bs-a b?.bundle"



def test_keep_alive_connection_is_reused_and_a_dropped_one_replaced(scripted):
    server = scripted([])
    peers = []
    app = server.app

    def recording_app(environ, start_response):
        peers.append(environ["REMOTE_PORT"])
        return app(environ, start_response)
    server.server.application = recording_app
    store = HttpStore(server.url, tries=1)
    assert store.write("bs-a.bundle", io.BytesIO(b"one")) is True
    assert store.write("bs-b.bundle", io.BytesIO(b"two")) is True
    assert len(peers) == 2 and len(set(peers)) == 1, "both POSTs went over one kept-alive connection"
    for _, conn in store._idle:  # the connection breaks meanwhile: the next request must still work
        conn.sock.close()
    assert store.write("bs-c.bundle", io.BytesIO(b"three")) is True
    assert [r[3] for r in server.requests] == [3, 3, 5] and len(set(peers)) == 2

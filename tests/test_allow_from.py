"""``-allow_from`` on every server binary, seen from two loopback source addresses.

Each real binary listens on 127.0.0.1 with ``-allow_from 127.0.0.2/32``. A client whose socket is bound to
127.0.0.2 gets answers; one bound to 127.0.0.1 has its Thrift connection closed at accept without a reply
byte, and gets ``403 Forbidden`` over HTTP (the admin server answers every refused request that way).
"""

import http.client
import json
import socket
import subprocess
import sys

import pytest
from thriftpy2.protocol import TBinaryProtocol
from thriftpy2.thrift import TClient, TMessageType
from thriftpy2.transport import TBufferedTransport, TSocket

from scootpy.idl import scoot, worker
from scootpy.thriftio import encode_message
from tests.procs import binary, free_port, wait_port
from tests.test_worker_support import poll, start_worker

pytestmark = [pytest.mark.timeout(90),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs all of 127/8 on loopback")]

ALLOWED, REFUSED = "127.0.0.2", "127.0.0.1"
ALLOW = ["-allow_from", f"{ALLOWED}/32"]


def connect(port: int, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def thrift_call(port: int, source: str, service, method: str, *args):
    """One Thrift call over a connection made from ``source``."""
    transport = TBufferedTransport(TSocket(sock=connect(port, source)))
    try:
        return getattr(TClient(service, TBinaryProtocol(transport)), method)(*args)
    finally:
        transport.close()


def thrift_reply_bytes(port: int, source: str, service, method: str) -> bytes:
    """Send a well-formed call without arguments from ``source``; return every byte the server sent back
    before closing the connection."""
    args = getattr(service, method + "_args")()
    with connect(port, source) as sock:
        try:
            sock.sendall(encode_message(method, TMessageType.CALL, 1, args))
        except (BrokenPipeError, ConnectionResetError):
            return b""
        received = b""
        while True:
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


def http_get(port: int, source: str, path: str, method: str = "GET", body: bytes = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def assert_http_acl(port: int, path: str = "/health") -> None:
    assert http_get(port, ALLOWED, path) == (200, b"ok")
    assert http_get(port, REFUSED, path) == (403, b"forbidden\n")


def test_scheduler_answers_only_the_allowed_source(procs, tmp_path):
    thrift, http_port = free_port(), free_port()
    proc = procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr",
                        f"127.0.0.1:{http_port}", "-log_level", "error", *ALLOW], cwd=str(tmp_path))
    wait_port(thrift, proc=proc)
    wait_port(http_port, proc=proc)
    status = thrift_call(thrift, ALLOWED, scoot.CloudScoot, "GetSchedulerStatus")
    assert status.currentTasks == 0 and status.maxTasks == -1
    assert thrift_reply_bytes(thrift, REFUSED, scoot.CloudScoot, "GetSchedulerStatus") == b""
    assert_http_acl(http_port)
    assert http_get(http_port, REFUSED, "/status.json")[0] == 403
    assert json.loads(http_get(http_port, ALLOWED, "/status.json")[1])["scheduler"]["current_tasks"] == 0


def test_workerserver_answers_only_the_allowed_source(procs, tmp_path):
    w = start_worker(procs, tmp_path, *ALLOW, wait_ready=False)
    poll(lambda: thrift_call(w.thrift, ALLOWED, worker.Worker, "QueryWorker").initialized, what="initialized")
    assert thrift_reply_bytes(w.thrift, REFUSED, worker.Worker, "QueryWorker") == b""
    with pytest.raises(Exception):
        thrift_call(w.thrift, REFUSED, worker.Worker, "QueryWorker")
    assert_http_acl(w.http)
    assert http_get(w.http, REFUSED, "/metrics")[0] == 403
    text = http_get(w.http, ALLOWED, "/metrics")[1].decode()
    # start_worker's wait_port probe, the raw call and the client's call all came from 127.0.0.1
    assert "scoot_workerserver_rpc_connections_refused_total 3" in text


def test_apiserver_answers_only_the_allowed_source(procs, tmp_path):
    port, store = free_port(), tmp_path / "bundles"
    proc = procs.start([binary("apiserver"), "-http_addr", f"127.0.0.1:{port}", "-log_level", "error", *ALLOW],
                       env={"BUNDLESTORE_STORE_DIR": str(store)})
    wait_port(port, proc=proc)
    assert_http_acl(port)
    name = "bs-" + "a" * 40 + ".bundle"
    assert http_get(port, REFUSED, f"/bundle/{name}", "POST", b"# v2 git bundle\n") == (403, b"forbidden\n")
    assert not (store / name).exists()
    assert http_get(port, ALLOWED, f"/bundle/{name}", "HEAD")[0] == 404
    assert http_get(port, REFUSED, f"/bundle/{name}", "HEAD")[0] == 403
    text = http_get(port, ALLOWED, "/metrics")[1].decode()
    assert 'scoot_apiserver_http_requests_total{code="403",method="POST"} 1' in text


@pytest.mark.parametrize("name", ["scheduler", "workerserver", "apiserver"])
def test_a_bad_allow_from_is_refused_at_startup(tmp_path, name):
    thrift = [] if name == "apiserver" else ["-thrift_addr", f"127.0.0.1:{free_port()}"]
    done = subprocess.run([binary(name), *thrift, "-http_addr", f"127.0.0.1:{free_port()}",
                           "-allow_from", "127.0.0.0/8,10.0.0.0/33"],
                          capture_output=True, text=True, timeout=30, cwd=str(tmp_path),
                          env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 1
    assert "invalid -allow_from entry '10.0.0.0/33'" in done.stderr

"""The admin HTTP server: /health, /admin/metrics.json, /metrics, mounted apps, 501 elsewhere, and
run_servers stopping a real process promptly on SIGTERM and SIGINT."""

import http.client
import json
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from scootpy.admin import UNKNOWN_PATH_TEXT, AdminServer, clean_path, respond
from scootpy.idl import scoot
from scootpy.metrics import Registry
from scootpy.thriftrpc import ThriftClient
from tests.procs import free_port, wait_port
from tests.test_metrics import parse_strictly


def echo_app(environ, start_response):
    return respond(start_response, "200 OK", f"mounted {environ['PATH_INFO']}".encode())


@pytest.fixture
def registry():
    r = Registry("workerserver")
    r.inc("workerQueries", 2)
    r.observe("runLatency_ms", 0.004)
    return r


@pytest.fixture
def admin(registry):
    server = AdminServer(("127.0.0.1", 0), registry, mounts=[("/output", echo_app)])
    server.start()
    yield server.address[1]
    server.stop()


def get(port: int, path: str, method: str = "GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_health(admin):
    status, headers, body = get(admin, "/health")
    assert (status, body) == (200, b"ok")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


def test_metrics_json(admin):
    status, headers, body = get(admin, "/admin/metrics.json")
    assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
    data = json.loads(body)
    assert data["workerserver/workerQueries"] == 2 and data["workerserver/runLatency_ms.count"] == 1
    _, _, pretty = get(admin, "/admin/metrics.json?pretty=true")
    assert json.loads(pretty) == data and b"\n  " in pretty and b"\n" not in body


def test_prometheus_endpoint(admin):
    status, headers, body = get(admin, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = parse_strictly(body.decode())
    assert families["scoot_workerserver_workerQueries"].samples[0].value == 2
    assert families["scoot_workerserver_runLatency_ms"].type == "histogram"


@pytest.mark.parametrize("path", ["/", "/nope", "/health/", "/metrics/x", "/outputs", "/admin/metrics.jsonx"])
def test_unknown_paths_answer_501_with_the_reference_text(admin, path):
    status, headers, body = get(admin, path)
    assert (status, body) == (501, UNKNOWN_PATH_TEXT)
    assert body == b"Common paths: '/health', '/admin/metrics.json', '/output', '/debug/pprof'\n"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("path", ["/output", "/output/", "/output/0-stdout"])
def test_mounted_app_gets_its_prefix(admin, path):
    assert get(admin, path)[::2] == (200, f"mounted {path}".encode())


def test_allow_predicate_refuses_other_peers(registry):
    server = AdminServer(("127.0.0.1", 0), registry, allow=lambda peer: peer == "10.0.0.1")
    server.start()
    try:
        status, _, body = get(server.address[1], "/health")
        assert (status, body) == (403, b"forbidden\n")
    finally:
        server.stop()


SCRIPT = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import sys
    from scootpy.admin import AdminServer, run_servers
    from scootpy.idl import scoot
    from scootpy.metrics import Registry
    from scootpy.thriftrpc import ThriftServer

    class Handler:
        def GetSchedulerStatus(self):
            return scoot.SchedulerStatus(currentTasks=0, maxTasks=-1)

    registry = Registry("scheduler")
    run_servers(AdminServer(("127.0.0.1", int(sys.argv[1])), registry),
                ThriftServer(scoot.CloudScoot, Handler(), ("127.0.0.1", int(sys.argv[2])), metrics=registry))
    print("stopped", flush=True)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_servers_serves_until_signalled(procs, tmp_path, sig):
    script = tmp_path / "servers.py"
    script.write_text(SCRIPT)
    http_port, thrift_port = free_port(), free_port()
    proc = procs.start([sys.executable, str(script), str(http_port), str(thrift_port)], stdout=subprocess.PIPE)
    wait_port(http_port, proc=proc)
    wait_port(thrift_port, proc=proc)
    assert get(http_port, "/health")[2] == b"ok"
    with ThriftClient(scoot.CloudScoot, f"127.0.0.1:{thrift_port}", timeout=10) as client:
        assert client.GetSchedulerStatus().maxTasks == -1
    stats = json.loads(get(http_port, "/admin/metrics.json")[2])
    assert stats["scheduler/rpc_requests_total_GetSchedulerStatus"] == 1
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and out == b"stopped\n"


@pytest.fixture
def slash_mount(registry):
    server = AdminServer(("127.0.0.1", 0), registry, mounts=[("/output/", echo_app)], clean_paths=True)
    server.start()
    yield server.address[1]
    server.stop()


@pytest.mark.parametrize("path, location", [
    ("/output//0-stdout?file=file://vm/tmp/x", "/output/0-stdout?file=file://vm/tmp/x"),
    ("/output", "/output/"),
    ("/a/../health", "/health"),
    ("/./health", "/health"),
    ("//admin//metrics.json?pretty=true", "/admin/metrics.json?pretty=true"),
    ("/output/x/../y/", "/output/y/"),
])
def test_unclean_paths_redirect_like_go_servemux(slash_mount, path, location):
    status, headers, body = get(slash_mount, path)
    assert (status, headers["Location"]) == (301, location)
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert body == f'<a href="{location}">Moved Permanently</a>.\n\n'.encode()


def test_redirect_for_other_methods_has_no_body(slash_mount):
    for method in ("HEAD", "POST"):
        status, headers, body = get(slash_mount, "/output//0-stdout", method)
        assert (status, headers["Location"], body) == (301, "/output/0-stdout", b"")


def test_clean_paths_reach_their_handler(slash_mount):
    assert get(slash_mount, "/output/0-stdout")[::2] == (200, b"mounted /output/0-stdout")
    assert get(slash_mount, "/output/")[::2] == (200, b"mounted /output/")
    assert get(slash_mount, "/health")[::2] == (200, b"ok")


def test_without_clean_paths_unclean_paths_are_served_as_given(admin):
    assert get(admin, "/output//0-stdout")[::2] == (200, b"mounted /output//0-stdout")
    assert get(admin, "/a/../health")[0] == 501


@pytest.mark.parametrize("path, clean", [("", "/"), ("/", "/"), ("/..", "/"), ("/a/b/../../..", "/"),
                                         ("a/b", "/a/b"), ("/a//b/", "/a/b/"), ("/a/./", "/a/")])
def test_clean_path_matches_go(path, clean):
    assert clean_path(path) == clean


def test_admin_context_manager_port_and_connection_bound(registry):
    with AdminServer(("127.0.0.1", 0), registry, max_connections=1) as server:
        assert server.port == server.address[1]
        idle = socket.create_connection(("127.0.0.1", server.port))
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"\r\n\r\nok" in idle.recv(4096)  # a keep-alive connection now holds the only slot
        waiting = http.client.HTTPConnection("127.0.0.1", server.port, timeout=0.5)
        with pytest.raises(socket.timeout):
            waiting.request("GET", "/health")
            waiting.getresponse()
        waiting.close()
        idle.close()
        assert get(server.port, "/health")[::2] == (200, b"ok")

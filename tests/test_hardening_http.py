"""Abuse of the HTTP ports of a real worker (run logs under ``/output/``) and a real scheduler (status page,
admin): traversal and ``file=`` tricks never serve a file that is not a run log, wrong methods and odd
requests get 4xx, and both servers keep answering."""

import http.client
import random

import pytest

from tests.hardening_helpers import start_scheduler, start_workers
from tests.test_hardening_bundlestore import raw, status_of
from tests.test_worker_support import run_and_wait

pytestmark = pytest.mark.timeout(120)

SECRET = b"TOPSECRET-worker-http"


def get(addr: str, path: str, method: str = "GET", body=None, redirects: int = 3):
    """(status, body) of one request, following up to ``redirects`` same-server redirects."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        status, data, location = resp.status, resp.read(), resp.getheader("Location", "")
    finally:
        conn.close()
    if status in (301, 302) and redirects and location.startswith("/"):
        return get(addr, location, method, body, redirects - 1)
    return status, data


def test_worker_output_urls_serve_run_logs_only(procs, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    (w,) = start_workers(procs, tmp_path, 1)
    with w.client() as client:
        done = run_and_wait(client, argv=["sh", "-c", "echo run-output"])
    log_path = done.outUri.split("?file=file://", 1)[1].split("/", 1)[1]
    good = "/output/" + done.outUri.split("/output//", 1)[1].split("?")[0]  # where the // URI redirects
    status, log = get(w.http_addr, good + "?content=true")
    assert status == 200 and b"run-output\n" in log  # the log, after the worker's header
    attempts = [
        f"/output/{done.runId}-stdout?content=true&file=file://vm{secret}",
        f"/output/..%2f..%2f..{secret}?content=true", f"/output/../../..{secret}?content=true",
        f"/output//{secret}?content=true", f"/output/%2e%2e{secret}?content=true",
        f"/output/{secret.name}?content=true", f"/output/{log_path.rsplit('/', 1)[1]}?content=true",
        f"/output/{done.runId}-stdout%00?content=true", "/output/" + "x" * 5000 + "?content=true",
        f"/{secret}", f"/output/{done.runId}-stdout/..%2f..%2fsecret.txt?content=true",
    ]
    codes = {}
    for path in attempts:
        status, body = get(w.http_addr, path)
        codes[path[:60]] = status
        assert SECRET not in body, path
        assert 400 <= status <= 501 or (status, body) == (200, log), (path, status, body[:200])  # 501: unknown path
    for method in ("POST", "PUT", "DELETE"):
        status, body = get(w.http_addr, good + "?content=true", method, b"x")
        assert SECRET not in body and (status == 405 or (status, body) == (200, log))
    assert status_of(raw(w.http, b"GET /output/ HTTP/1.1\r\nX: " + b"y" * (1 << 20) + b"\r\n\r\n")) in (0, 400, 431)
    assert get(w.http_addr, good + "?content=true") == (200, log)
    with w.client() as client:
        assert run_and_wait(client, argv=["true"]).exitCode == 0
    assert w.proc.poll() is None
    assert "Traceback" not in w.log.read_text()
    print(f"\nworker output abuse answered {codes}")


def test_scheduler_http_port_survives_odd_requests(procs, tmp_path):
    sched = start_scheduler(procs, tmp_path, {"Cluster": {"Type": "memory", "Count": 2},
                                              "Workers": {"Type": "local"}, "SagaLog": {"Type": "memory"}})
    addr = f"127.0.0.1:{sched.http}"
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert get(addr, "/status.json", method, b"{}")[0] == 405
        assert get(addr, "/", method, b"x")[0] == 405
    for path in ("/status.json/../../etc/passwd", "/..%2f..%2fetc%2fpasswd", "/status.json%00", "/x" * 3000):
        status, body = get(addr, path)
        assert status != 200 and b"root:" not in body, (path, status)
    rng = random.Random(13)
    for data in (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 20000 + b"\r\n",
                 b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\n\r\n",
                 bytes(rng.getrandbits(8) for _ in range(65536))):
        assert status_of(raw(sched.http, data)) in (0, 400, 414, 431)
    for version in (b"HTTP/1", b"HTTP/", b"HTTP/x.y", b"HTTP/9.9", b"FTP/1.0"):
        assert status_of(raw(sched.http, b"GET /health " + version + b"\r\nHost: x\r\n\r\n")) == 400, version
    status, body = get(addr, "/status.json")
    assert status == 200 and body.startswith(b"{")
    assert get(addr, "/health") == (200, b"ok")
    with sched.client() as client:
        assert client.GetSchedulerStatus().maxTasks == -1
    assert sched.proc.poll() is None
    assert "Traceback" not in sched.log.read_text()

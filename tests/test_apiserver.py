"""The ``apiserver`` process: bundlestore HTTP API status codes, validation, atomic uploads, /view, admin."""

import http.client
import json
import os
import shutil
import socket
import subprocess

import gevent
import pytest

from scootpy.snapshots.gitdb import GitDB
from scootpy.snapshots.store import HttpStore
from tests.procs import binary, free_port, wait_port
from tests.snaphelp import GC_ID, INPUT_ID, INPUT_TREE, SNAP_FIXTURES

NAME = f"bs-{INPUT_TREE}.bundle"
BUNDLE = (SNAP_FIXTURES / "bundles" / NAME).read_bytes()


@pytest.fixture
def server(procs, tmp_path):
    """A real apiserver on a free port with an empty store; yields (port, store dir)."""
    store = tmp_path / "store"
    port = free_port()
    proc = procs.start([binary("apiserver"), "-http_addr", f"127.0.0.1:{port}", "-log_level", "debug"],
                       env={"BUNDLESTORE_STORE_DIR": str(store)}, stderr=open(tmp_path / "apiserver.log", "wb"))
    wait_port(port, proc=proc)
    yield port, store


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), dict(resp.getheaders())
    finally:
        conn.close()


def test_upload_then_download(server):
    port, store = server
    status, body, _ = request(port, "POST", f"/bundle/{NAME}", BUNDLE,
                              {"Content-Type": "text/plain", "x-scoot-expires": "Tue, 01 Jun 2021 10:00:00 UTC"})
    assert (status, body) == (200, f"Successfully wrote bundle {NAME}\n".encode())
    assert (store / NAME).read_bytes() == BUNDLE
    status, body, _ = request(port, "POST", f"/bundle/{NAME}", b"ignored")
    assert (status, body) == (200, f"Bundle {NAME} already exists, no-op and return\n".encode())
    status, body, headers = request(port, "GET", f"/bundle/{NAME}")
    assert (status, body, headers["Content-Length"]) == (200, BUNDLE, str(len(BUNDLE)))
    status, body, headers = request(port, "HEAD", f"/bundle/{NAME}")
    assert (status, body, headers["Content-Length"]) == (200, b"", str(len(BUNDLE)))
    missing = "bs-" + "0" * 40 + ".bundle"
    assert request(port, "GET", f"/bundle/{missing}")[:2] == (404, b"404 page not found\n")
    assert request(port, "HEAD", f"/bundle/{missing}")[0] == 404


@pytest.mark.parametrize("name", ["foo", "bs-" + "A" * 40 + ".bundle", "bs-" + "a" * 40 + "xbundle",
                                  "bs-" + "a" * 40 + ".bundle.extra", "bs-" + "a" * 39 + ".bundle",
                                  "../bs-" + "a" * 40 + ".bundle", "bs-" + "a" * 40 + ".bundle/x", ""])
def test_bad_names_are_400(server, name):
    port, store = server
    for method in ("POST", "GET", "HEAD"):
        status, body, _ = request(port, method, f"/bundle/{name}", b"x" if method == "POST" else None)
        assert status == 400
        if method != "HEAD":
            assert body == f'Error with bundleName, expected "^bs-[a-z0-9]{{40}}.bundle", got: {name}\n'.encode()
    assert os.listdir(store) == []


def test_path_traversal_never_leaves_the_store(server, tmp_path):
    port, store = server
    (tmp_path / "secret").write_text("TOPSECRET")
    for path in ("/bundle/../secret", "/bundle/%2e%2e/secret", "/bundle/..%2fsecret", "/bundle//etc/passwd"):
        status, body, _ = request(port, "GET", path)
        assert status in (400, 404, 501) and b"TOPSECRET" not in body


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405(server, method):
    assert request(server[0], method, f"/bundle/{NAME}")[:2] == (405, b"only support POST and GET\n")


def test_bad_ttl_is_500_and_stores_nothing(server):
    port, store = server
    status, body, _ = request(port, "POST", f"/bundle/{NAME}", BUNDLE, {"X-Scoot-Expires": "tomorrow"})
    assert status == 500 and body.startswith(b"Error parsing TTL: ")
    assert os.listdir(store) == []


@pytest.mark.parametrize("data", [BUNDLE[:-100], BUNDLE[:10], BUNDLE[:-1] + bytes([BUNDLE[-1] ^ 0xFF]),
                                  b"hello world\n", b""])
def test_damaged_upload_is_rejected(server, data):
    port, store = server
    status, body, _ = request(port, "POST", f"/bundle/{NAME}", data)
    assert status == 400 and body.startswith(b"Error writing Bundle: ")
    assert os.listdir(store) == []
    assert request(port, "HEAD", f"/bundle/{NAME}")[0] == 404


def test_truncated_upload_connection_dropped(server):
    port, store = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"POST /bundle/{NAME} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BUNDLE)}\r\n\r\n".encode()
                     + BUNDLE[:30000])
    gevent.sleep(0.3)
    assert request(port, "HEAD", f"/bundle/{NAME}")[0] == 404
    assert [n for n in os.listdir(store) if not n.startswith(".tmp-")] == []


def test_concurrent_uploads_of_one_bundle(server):
    port, store = server
    jobs = [gevent.spawn(request, port, "POST", f"/bundle/{NAME}", BUNDLE) for _ in range(8)]
    assert [job.get(timeout=30)[0] for job in jobs] == [200] * 8
    assert os.listdir(store) == [NAME]
    assert (store / NAME).read_bytes() == BUNDLE


def test_view_admin_and_unknown_paths(server):
    port, store = server
    shutil.copy(SNAP_FIXTURES / "bundles" / NAME, store / NAME)
    status, body, headers = request(port, "GET", f"/view/{INPUT_ID}/src/a/b/c/deep.txt")
    assert status == 200 and body == (SNAP_FIXTURES / "read-cat" / "src_a_b_c_deep.txt.stdout").read_bytes()
    assert request(port, "GET", f"/view/{INPUT_ID}")[:2] == (400, b"need both an id and a path\n")
    status, body, _ = request(port, "GET", f"/view/{INPUT_ID}/no-such-file")
    assert status == 500 and b"does not exist" in body
    assert request(port, "GET", "/health")[:2] == (200, b"ok")
    status, body, _ = request(port, "GET", "/admin/metrics.json")
    assert status == 200 and json.loads(body)["apiserver/downloadCounter"] >= 0
    status, body, _ = request(port, "GET", "/metrics")
    assert status == 200 and b"scoot_apiserver_" in body
    assert request(port, "GET", "/nothing-here")[0] == 501


def test_gitdb_over_http_with_reference_bundles(server, tmp_path):
    port, store = server
    for name in os.listdir(SNAP_FIXTURES / "bundles"):
        shutil.copy(SNAP_FIXTURES / "bundles" / name, store / name)
    http_store = HttpStore(f"http://127.0.0.1:{port}/bundle")
    db = GitDB(tmp_path / "data", http_store, tmp_root=tmp_path)
    try:
        co = db.checkout(INPUT_ID)
        assert open(os.path.join(co, "README.txt"), "rb").read() == db.read_file(INPUT_ID, "README.txt")
        db.release_checkout(co)
        gc = db.checkout(GC_ID)
        assert os.path.exists(os.path.join(gc, "sub", "run.sh"))
        db.release_checkout(gc)
        src = tmp_path / "src"
        src.mkdir()
        (src / "STDOUT").write_text("out")
        snap = db.ingest_dir(src)
        tree = snap.rsplit("-", 1)[1]
        assert (store / f"bs-{tree}.bundle").exists()
        other = GitDB(tmp_path / "other", http_store, tmp_root=tmp_path)
        assert other.read_file(snap, "STDOUT") == b"out"
        other.close()
    finally:
        db.close()


def test_view_rotates_its_databases(tmp_path):
    from scootpy.snapshots.bundlestore import ViewApp
    from scootpy.snapshots.store import FileStore
    store = FileStore(SNAP_FIXTURES / "bundles")
    made = []

    def make_db():
        made.append(GitDB(tmp_path / f"view{len(made)}", store, tmp_root=tmp_path))
        return made[-1]
    app = ViewApp(make_db, reads_per_db=2)
    statuses = []
    for _ in range(5):
        body = b"".join(app({"PATH_INFO": f"/view/{INPUT_ID}/README.txt"}, lambda s, h: statuses.append(s)))
        assert body.startswith(b"Scoot snapshot fixture input.")
    assert statuses == ["200 OK"] * 5 and len(made) == 3
    assert [db.repo.exists() for db in made] == [False, False, True]
    app.close()
    assert not made[2].repo.exists() and os.listdir(tmp_path) == []


def test_reference_flags_and_grpc_port(procs, tmp_path):
    port, grpc = free_port(), free_port()
    log = tmp_path / "apiserver.log"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = procs.start([binary("apiserver"), "-http_addr", f"127.0.0.1:{port}", "-grpc_addr", f"127.0.0.1:{grpc}",
                        "-config", "{}", "-cache_size", "100", "-max_grpc_conn", "3", "-max_grpc_idle_mins=2"],
                       stderr=open(log, "wb"), env={"TMPDIR": str(scratch)})
    wait_port(port, proc=proc)
    wait_port(grpc, proc=proc)
    with socket.create_connection(("127.0.0.1", grpc), timeout=5) as sock:
        assert sock.recv(10) == b"", "gRPC connections are closed at once"
    assert request(port, "GET", "/health")[:2] == (200, b"ok")
    status, _, _ = request(port, "POST", f"/bundle/{NAME}", BUNDLE)
    assert status == 200 and request(port, "GET", f"/view/{INPUT_ID}/README.txt")[0] == 200
    assert len(os.listdir(scratch)) == 1
    procs.stop(proc)
    assert proc.returncode == 0 and os.listdir(scratch) == [], "the temporary store is removed at exit"
    text = log.read_text()
    assert "flag -grpc_addr is accepted for compatibility and ignored" in text
    assert "flag -max_grpc_conn is accepted for compatibility and ignored" in text
    bad = procs.start([binary("apiserver"), "-http_addr", "nonsense"], stderr=subprocess.DEVNULL)
    assert bad.wait(10) == 1
    unknown = procs.start([binary("apiserver"), "-nope"], stderr=subprocess.DEVNULL)
    assert unknown.wait(10) == 2


def test_stalled_upload_is_dropped(tmp_path):
    from scootpy.admin import AdminServer
    from scootpy.metrics import Registry
    from scootpy.snapshots.bundlestore import BundleApp
    from scootpy.snapshots.store import FileStore
    store = FileStore(tmp_path / "store")
    server = AdminServer(("127.0.0.1", 0), Registry("t"), mounts=[("/bundle", BundleApp(store, Registry("t"), 0.3))])
    server.start()
    try:
        port = server.address[1]
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(f"POST /bundle/{NAME} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BUNDLE)}\r\n\r\n".encode()
                         + BUNDLE[:1000])
            sock.settimeout(5)
            reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 400") and b"upload stalled" in reply
        assert os.listdir(store.directory) == []
    finally:
        server.stop()


def test_many_greenlets_share_an_apiserver(server, tmp_path):
    port, store = server
    http_store = HttpStore(f"http://127.0.0.1:{port}/bundle")
    author = GitDB(tmp_path / "author", http_store, tmp_root=tmp_path)
    reader = GitDB(tmp_path / "reader", http_store, tmp_root=tmp_path)
    try:
        def one(i):
            src = tmp_path / f"src{i}"
            (src / "sub").mkdir(parents=True)
            (src / "STDOUT").write_text(f"out {i % 4}")
            (src / "sub" / "deep").write_text("d" if i % 2 else "e")
            snap = author.ingest_dir(src)
            co = reader.checkout(snap)
            text = open(os.path.join(co, "STDOUT")).read()
            reader.release_checkout(co)
            return snap, text, reader.read_file(snap, "sub/deep")
        results = [g.get(timeout=120) for g in [gevent.spawn(one, i) for i in range(16)]]
        assert [text for _, text, _ in results] == [f"out {i % 4}" for i in range(16)]
        assert [deep for _, _, deep in results] == [b"d" if i % 2 else b"e" for i in range(16)]
        assert len({snap for snap, _, _ in results}) == 4
        assert len([n for n in os.listdir(store) if n.endswith(".bundle")]) == 4
    finally:
        author.close()
        reader.close()


def test_chunked_upload(server):
    port, store = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", f"/bundle/{NAME}", body=iter([BUNDLE[:1000], BUNDLE[1000:]]),
                     headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, f"Successfully wrote bundle {NAME}\n".encode())
    finally:
        conn.close()
    assert (store / NAME).read_bytes() == BUNDLE

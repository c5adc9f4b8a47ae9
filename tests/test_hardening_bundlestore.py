"""Abuse of a real bundlestore (``apiserver``): bad names, path traversal, wrong methods, corrupt and truncated
bundles, oversized requests and many concurrent uploads of one name. Every request gets a 4xx (or its
connection is closed), nothing outside the store is read or written, and the store stays intact."""

import http.client
import os
import random
import socket
from collections import Counter

import gevent
import pytest

from scootpy.snapshots.store import BUNDLE_NAME
from tests.hardening_helpers import mutate
from tests.procs import binary, free_port, wait_port
from tests.snaphelp import GC_COMMIT, INPUT_ID, INPUT_TREE, SNAP_FIXTURES
from tests.test_thriftrpc_hostile import rss_bytes

pytestmark = pytest.mark.timeout(120)

NAME = f"bs-{INPUT_TREE}.bundle"
GC_NAME = f"bs-{GC_COMMIT}.bundle"
BUNDLE = (SNAP_FIXTURES / "bundles" / NAME).read_bytes()
SECRET = b"TOPSECRET-do-not-serve"


@pytest.fixture
def store_server(procs, tmp_path):
    """A real apiserver whose store lies next to a secret file and a directory it must never touch."""
    store = tmp_path / "store"
    (tmp_path / "secret").write_bytes(SECRET)
    (tmp_path / f"bs-{'e' * 40}.bundle").write_bytes(SECRET)  # a valid name, one level above the store
    port = free_port()
    log = tmp_path / "apiserver.log"
    with open(log, "wb") as err:
        proc = procs.start([binary("apiserver"), "-http_addr", f"127.0.0.1:{port}", "-log_level", "info"],
                           env={"BUNDLESTORE_STORE_DIR": str(store)}, stderr=err)
    wait_port(port, proc=proc)
    yield proc, port, store, log


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def raw(port: int, data: bytes) -> bytes:
    """Send raw bytes, half-close, and return everything the server answers before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server answered and closed before reading everything
            pass
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer; 0 when the server closed without answering."""
    if not answer:
        return 0
    return int(answer.split(b" ", 2)[1])


def assert_store_intact(port: int, store, expected: dict) -> None:
    """The store holds exactly ``expected`` (name -> bytes), no temp files, and serves each byte for byte."""
    assert sorted(os.listdir(store)) == sorted(expected)
    for name, data in expected.items():
        assert (store / name).read_bytes() == data
        assert request(port, "GET", f"/bundle/{name}") == (200, data)
    assert request(port, "GET", "/health") == (200, b"ok")


TRAVERSALS = [
    "/bundle/../secret", "/bundle/..%2fsecret", "/bundle/%2e%2e%2fsecret", "/bundle/%252e%252e%252fsecret",
    "/bundle/..%5csecret", "/bundle/....//secret", f"/bundle/..%2fbs-{'e' * 40}.bundle",
    f"/bundle/%2e%2e/bs-{'e' * 40}.bundle", f"/bundle/bs-{'e' * 40}.bundle%00", "/bundle/%00",
    f"/bundle/{NAME}/../../secret", "/bundle//etc/passwd", "/bundle/" + "a" * 5000,
    f"/view/{INPUT_ID}/../../../secret", f"/view/{INPUT_ID}/..%2f..%2fsecret", f"/view/{INPUT_ID}/%2e%2e/x",
    "/view/../secret/x", f"/view/bs-fs-{'e' * 40}--{'e' * 40}/x", "/view/%00/%00", "/../../secret",
]


def test_names_and_traversal_never_leave_the_store(store_server):
    proc, port, store, log = store_server
    assert request(port, "POST", f"/bundle/{NAME}", BUNDLE)[0] == 200
    seen = Counter()
    for path in TRAVERSALS:
        for method in ("GET", "HEAD", "POST"):
            status, body = request(port, method, path, b"x" * 100 if method == "POST" else None)
            seen[status] += 1
            assert 400 <= status < 600 and status != 200, (method, path, status)
            assert SECRET not in body, (method, path)
    assert (store.parent / "secret").read_bytes() == SECRET
    assert (store.parent / f"bs-{'e' * 40}.bundle").read_bytes() == SECRET
    assert_store_intact(port, store, {NAME: BUNDLE})
    assert proc.poll() is None
    assert "Traceback" not in log.read_text()
    print(f"\ntraversal attempts answered {dict(seen)}")


def test_wrong_methods_are_405_and_change_nothing(store_server):
    proc, port, store, _ = store_server
    assert request(port, "POST", f"/bundle/{NAME}", BUNDLE)[0] == 200
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "MKCOL", "FOO"):
        assert request(port, method, f"/bundle/{NAME}", BUNDLE[:100]) == (405, b"only support POST and GET\n")
    assert request(port, "DELETE", f"/bundle/{GC_NAME}")[0] == 405
    assert_store_intact(port, store, {NAME: BUNDLE})
    assert proc.poll() is None


def damaged_bundles(rng: random.Random) -> dict:
    """Truncations and corruptions of a real bundle, and things that are no bundle at all."""
    flipped = bytearray(BUNDLE)
    for _ in range(5):
        flipped[rng.randrange(len(BUNDLE) // 2, len(BUNDLE))] ^= 0xFF
    header_end = BUNDLE.index(b"\n\n") + 2
    return {
        "empty": b"", "header-only": BUNDLE[:header_end], "cut-in-pack-header": BUNDLE[:header_end + 6],
        "cut-mid-pack": BUNDLE[:len(BUNDLE) // 2], "one-byte-short": BUNDLE[:-1],
        "flipped-pack-bytes": bytes(flipped), "bad-checksum": BUNDLE[:-20] + b"\0" * 20,
        "pack-without-header": BUNDLE[header_end:], "text": b"# v2 git bundle\nnot a sha line\n\n",
        "garbage": bytes(rng.getrandbits(8) for _ in range(20000)),
        "bundle-then-trailing-junk": BUNDLE + b"junk" * 100,
        "v3-header": b"# v3 git bundle\n@object-format=sha256\n\n" + BUNDLE[header_end:],
    }


def test_damaged_bundles_are_400_and_never_published(store_server):
    proc, port, store, _ = store_server
    for what, data in damaged_bundles(random.Random(5)).items():
        status, body = request(port, "POST", f"/bundle/{NAME}", data)
        assert (status, body[:22]) == (400, b"Error writing Bundle: "), (what, status, body)
        assert os.listdir(store) == [], what
        assert request(port, "GET", f"/bundle/{NAME}")[0] == 404, what
    for cut in (0, 10, len(BUNDLE) // 3, len(BUNDLE) - 1):  # the client goes away mid-upload
        head = f"POST /bundle/{NAME} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BUNDLE)}\r\n\r\n".encode()
        assert status_of(raw(port, head + BUNDLE[:cut])) in (0, 400)
    gevent.sleep(0.5)
    assert [n for n in os.listdir(store) if not n.startswith(".tmp-")] == []
    assert request(port, "POST", f"/bundle/{NAME}", BUNDLE)[0] == 200
    assert_store_intact(port, store, {NAME: BUNDLE})
    assert proc.poll() is None


def test_oversized_requests_are_refused(store_server):
    proc, port, store, log = store_server
    rss_before = rss_bytes(proc.pid)
    answers = {
        "request-line-1MiB": raw(port, b"GET /bundle/" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        "header-1MiB": raw(port, f"GET /bundle/{NAME} HTTP/1.1\r\nHost: x\r\nX-Big: ".encode()
                           + b"v" * (1 << 20) + b"\r\n\r\n"),
        "20000-headers": raw(port, f"GET /bundle/{NAME} HTTP/1.1\r\nHost: x\r\n".encode()
                             + b"".join(b"X-H%d: v\r\n" % i for i in range(20000)) + b"\r\n"),
        "content-length-1PB": raw(port, f"POST /bundle/{NAME} HTTP/1.1\r\nHost: x\r\n".encode()
                                  + b"Content-Length: 1000000000000000\r\n\r\n" + BUNDLE[:1000]),
        "negative-content-length": raw(port, f"POST /bundle/{NAME} HTTP/1.1\r\nHost: x\r\n".encode()
                                       + b"Content-Length: -5\r\n\r\nxxxxx"),
        "bad-chunk-size": raw(port, f"POST /bundle/{NAME} HTTP/1.1\r\nHost: x\r\n".encode()
                              + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nxx\r\n0\r\n\r\n"),
        "garbage": raw(port, bytes(random.Random(9).getrandbits(8) for _ in range(65536))),
        "no-http-version": raw(port, f"GET /bundle/{NAME}\r\n\r\n".encode()),
    }
    codes = {what: status_of(answer) for what, answer in answers.items()}
    print(f"\noversized/odd requests answered {codes}")
    for what, code in codes.items():
        assert code == 0 or 400 <= code < 500, (what, code)
    assert codes["content-length-1PB"] in (0, 400, 413)
    assert os.listdir(store) == [] or all(n.startswith(".tmp-") for n in os.listdir(store))
    gevent.sleep(0.5)
    assert [n for n in os.listdir(store) if not n.startswith(".tmp-")] == []
    assert request(port, "POST", f"/bundle/{NAME}", BUNDLE)[0] == 200
    assert_store_intact(port, store, {NAME: BUNDLE})
    assert rss_bytes(proc.pid) - rss_before < 64 << 20
    assert proc.poll() is None
    assert "Traceback" not in log.read_text()


def test_many_concurrent_uploads_of_one_name(store_server):
    proc, port, store, log = store_server
    gc_bundle = (SNAP_FIXTURES / "bundles" / GC_NAME).read_bytes()
    bad = damaged_bundles(random.Random(11))
    uploads = [(NAME, BUNDLE, True)] * 40 + [(NAME, data, False) for data in bad.values() if data] * 2
    uploads += [(GC_NAME, gc_bundle, True)] * 10
    random.Random(3).shuffle(uploads)
    jobs = [gevent.spawn(request, port, "POST", f"/bundle/{name}", data) for name, data, _ in uploads]
    gevent.joinall(jobs, timeout=90, raise_error=True)
    got = Counter()
    for (name, _, good), job in zip(uploads, jobs):
        status, body = job.value
        outcome = {200: body.split(b" ")[0].decode(), 400: "refused"}.get(status, status)
        got[outcome] += 1
        # once the name exists every later upload is a no-op; a damaged one is never written
        allowed = {"Successfully", "Bundle"} if good else {"refused", "Bundle"}
        assert outcome in allowed, (name, good, status, body)
    print(f"\n{len(uploads)} concurrent uploads of two names answered {dict(got)}")
    assert got["Successfully"] >= 2
    assert_store_intact(port, store, {NAME: BUNDLE, GC_NAME: gc_bundle})
    assert proc.poll() is None
    assert "Traceback" not in log.read_text()


ANSWERS = {0, 200, 400, 404, 405, 411, 413, 414, 417, 431, 500, 501}


def test_mutated_upload_requests(store_server):
    """A few hundred randomly mutated raw upload requests: every one is answered or closed, the genuine
    bundle stays as it was, and whatever got stored under a valid name is served back byte for byte."""
    proc, port, store, log = store_server
    genuine = (SNAP_FIXTURES / "bundles" / GC_NAME).read_bytes()
    assert request(port, "POST", f"/bundle/{GC_NAME}", genuine)[0] == 200
    upload = (f"POST /bundle/{GC_NAME} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
              f"X-Scoot-Expires: Tue, 01 Jun 2021 10:00:00 UTC\r\nContent-Length: {len(genuine)}\r\n\r\n"
              ).encode() + genuine
    other = upload.replace(GC_NAME.encode(), f"bs-{'1' * 40}.bundle".encode(), 1)
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    jobs = []
    for _ in range(300):
        kind, data = mutate(rng.choice([upload, other]), rng)
        jobs.append((kind, gevent.spawn(lambda d=data: status_of(raw(port, d)))))
        if len(jobs) % 16 == 0:
            gevent.joinall([j for _, j in jobs[-16:]], timeout=60, raise_error=True)
    gevent.joinall([j for _, j in jobs], timeout=60, raise_error=True)
    codes = Counter(j.value for _, j in jobs)
    print(f"\n300 mutated uploads (seed {seed}) answered {dict(sorted(codes.items()))}")
    assert set(codes) <= ANSWERS, (seed, codes)
    gevent.sleep(0.5)
    names = os.listdir(store)
    assert GC_NAME in names and not [n for n in names if n.startswith(".tmp-")], (seed, names)
    assert all(BUNDLE_NAME.fullmatch(n) for n in names), (seed, names)
    assert_store_intact(port, store, {n: (store / n).read_bytes() for n in names})
    assert (store / GC_NAME).read_bytes() == genuine
    assert proc.poll() is None
    assert "Traceback" not in log.read_text()

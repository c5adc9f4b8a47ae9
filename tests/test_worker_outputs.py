"""Run log files and the output snapshot of a real worker: byte-for-byte the golden fixtures (apart from the
Date line and URIs), fetchable from the bundlestore when COMPLETE is reported, and served over HTTP."""

import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from scootpy.idl import worker
from scootpy.snapshots.gitdb import GitDB
from scootpy.snapshots.store import FileStore
from tests.procs import FIXTURES
from tests.test_worker_support import command, fixture_runstatus, run_and_wait, start_worker, wait_state

S = worker.Status
GOLDEN = FIXTURES / "worker-output"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def w(procs, tmp_path):
    return start_worker(procs, tmp_path)


@pytest.fixture
def client(w):
    with w.client() as c:
        yield c


def local_path(uri: str) -> Path:
    return Path(re.sub(r"^file://[^/]*", "", uri.split("?file=", 1)[1]))


def normalize(data: bytes) -> bytes:
    data = re.sub(rb"\nDate: [^\n]*\n", b"\nDate: D\n", data)
    return re.sub(rb"(Out|Err|OutErr): [^\t\n]*", rb"\1: URI", data)


def logs_of(status) -> dict:
    out = local_path(status.outUri)
    err = local_path(status.errUri)
    stdlog = out.with_name(re.sub(r"^(\d+)-stdout\d+$", r"\1-stdlog", out.name))
    [stdlog] = [p for p in out.parent.iterdir() if p.name.startswith(stdlog.name)]
    return {"STDOUT": out.read_bytes(), "STDERR": err.read_bytes(), "STDLOG": stdlog.read_bytes()}


def golden(folder: str) -> dict:
    return {name: (GOLDEN / folder / name).read_bytes() for name in ("STDOUT", "STDERR", "STDLOG")}


def tree_of(files: dict, tmp_path: Path) -> str:
    repo = tmp_path / "treecheck"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for name, data in files.items():
        (repo / name).write_bytes(data)
    subprocess.run(["git", "add", "--all"], cwd=repo, check=True)
    return subprocess.run(["git", "write-tree"], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_stdout_stderr_exit0_files_and_output_snapshot(w, client, tmp_path):
    cmd = fixture_runstatus()["stdout_stderr_exit0_no_snapshot"]["command"]
    running_reply = client.Run(worker.RunCommand(**cmd))
    running = wait_state(client, running_reply.runId, {S.RUNNING, S.COMPLETE})
    done = wait_state(client, running_reply.runId)
    assert done.status == S.COMPLETE and done.outUri == running.outUri
    files = logs_of(done)
    want = golden("stdout-stderr-exit0")
    assert {k: normalize(v) for k, v in files.items()} == {k: normalize(v) for k, v in want.items()}
    go_time = re.compile(rb"\nDate: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,9})? [+-]\d{4} \S+ m=\+\d+\.\d{9}\n")
    assert go_time.search(want["STDOUT"]) and go_time.search(files["STDOUT"])
    header = files["STDOUT"].split(b"\n")[5].decode()
    assert header.startswith(f"Out: {done.outUri}\tErr: {done.errUri}\tOutErr: http://{w.http_addr}/output//0-stdlog?")
    tree = done.snapshotId.split("-")[2]
    assert tree == tree_of(files, tmp_path)
    assert (w.store / "bundles" / f"bs-{tree}.bundle").is_file()
    with GitDB(tmp_path / "reader", store=FileStore(w.store / "bundles"), tmp_root=tmp_path) as db:
        for name, data in files.items():
            assert db.read_file(done.snapshotId, name) == data


def test_with_input_snapshot_files(w, client, tmp_path):
    done = run_and_wait(client, **fixture_runstatus()["with_input_snapshot"]["command"])
    assert done.status == S.COMPLETE and done.outUri == f"{done.snapshotId}/STDOUT"
    assert done.errUri == f"{done.snapshotId}/STDERR"
    with GitDB(tmp_path / "reader", store=FileStore(w.store / "bundles"), tmp_root=tmp_path) as db:
        got = {name: db.read_file(done.snapshotId, name) for name in ("STDOUT", "STDERR", "STDLOG")}
    want = golden("with-input-snapshot")
    assert {k: normalize(v) for k, v in got.items()} == {k: normalize(v) for k, v in want.items()}


@pytest.mark.parametrize("key, folder", [("timeout_500ms_sleep_5", "timeout"), ("aborted_sleep_30", "aborted")])
def test_timeout_and_abort_footers(client, key, folder):
    cmd = fixture_runstatus()[key]["command"]
    reply = client.Run(worker.RunCommand(**cmd))
    if key.startswith("aborted"):
        wait_state(client, reply.runId, {S.RUNNING})
        running = client.QueryWorker().runs[0]
        deadline = time.monotonic() + 5
        while b"before abort" not in local_path(running.outUri).read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        client.Abort(reply.runId)
    done = wait_state(client, reply.runId)
    files = logs_of(done)
    want = golden(folder)
    assert {k: normalize(v) for k, v in files.items()} == {k: normalize(v) for k, v in want.items()}


def test_sim_pause_abort_footer(client):
    reply = client.Run(command(["#! sim execer", "pause"], jobId="job-E", taskId="task-E", tag="tag-E"))
    wait_state(client, reply.runId, {S.RUNNING})
    client.Abort(reply.runId)
    files = logs_of(wait_state(client, reply.runId))
    want = golden("aborted-sim-pause")
    assert {k: normalize(v) for k, v in files.items()} == {k: normalize(v) for k, v in want.items()}


def get(url: str, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_http_output_endpoints(w, client):
    done = run_and_wait(client, argv=["sh", "-c", "printf 'hello world\\n'"])
    path = local_path(done.outUri)
    base = f"http://{w.http_addr}"
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as moved:
        opener.open(done.outUri.replace("?file=", "?content=true&file="), timeout=10)
    assert moved.value.code == 301
    assert moved.value.headers["Location"].startswith("/output/0-stdout?content=true&file=")
    status, headers, body = get(f"{base}/output/0-stdout?content=true")
    assert status == 200 and body == path.read_bytes() and body.endswith(b"SCOOT_CMD_LOG\nhello world\n")
    assert headers["X-Resource-Id"] == str(path) and headers["Access-Control-Allow-Origin"] == "*"
    status, _, body = get(f"{base}/output/{path.name}?content=true")
    assert status == 200 and body == path.read_bytes()
    status, headers, body = get(f"{base}/output/0-stdout?content=true", {"Range": "bytes=-12"})
    assert status == 206 and body == b"hello world\n"
    status, _, body = get(f"{base}/output/0-stdout?content=true", {"If-Modified-Since": headers["Last-Modified"]})
    assert (status, body) == (304, b"")
    head = urllib.request.Request(f"{base}/output/0-stdout?content=true", method="HEAD")
    with urllib.request.urlopen(head, timeout=10) as resp:
        assert resp.status == 200 and resp.read() == b"" and int(resp.headers["Content-Length"]) == path.stat().st_size
    status, _, body = get(f"{base}/output/0-stdout")
    assert status == 200 and b"content=true" in body
    status, _, body = get(f"{base}/output/no-such-run")
    assert (status, body) == (404, b"Unrecognized path\n")
    status, _, body = get(f"{base}/output/")
    assert status == 200 and path.name.encode() in body
    status, _, body = get(f"{base}/nothing-here")
    assert status == 501
    assert get(f"{base}/health")[2] == b"ok"
    status, _, body = get(f"{base}/admin/metrics.json")
    assert status == 200 and b"workerserver/handler/runs" in body
    assert b"scoot_workerserver" in get(f"{base}/metrics")[2]


def test_log_files_come_from_spares_made_ahead_and_hidden_from_the_listing(tmp_path):
    import gevent

    from scootpy.workerserver.outputs import SPARE_PREFIX, OutputCreator

    directory = tmp_path / "out"
    directory.mkdir()
    outputs = OutputCreator(str(directory), "h:1", hostname="box", spares=2)
    first = outputs.create("0-stdout")  # no spare yet: created on the spot, spares made meanwhile
    deadline = time.monotonic() + 10
    while len([n for n in os.listdir(directory) if n.startswith(SPARE_PREFIX)]) < 2:
        assert time.monotonic() < deadline, "spares never made"
        gevent.sleep(0.01)
    spare_inodes = {(directory / n).stat().st_ino for n in os.listdir(directory) if n.startswith(SPARE_PREFIX)}
    second = outputs.create("1-stdout")
    assert Path(second.path).stat().st_ino in spare_inodes, "the second log file is a renamed spare"
    assert re.fullmatch(r"1-stdout\d+", Path(second.path).name)
    second.write(b"hello")
    second.close()
    first.close()
    assert Path(second.path).read_bytes() == b"hello" and oct(Path(second.path).stat().st_mode)[-3:] == "600"
    status = []
    body = b"".join(outputs.wsgi({"PATH_INFO": "/output/", "QUERY_STRING": ""}, lambda s, h: status.append(s)))
    assert status == ["200 OK"] and SPARE_PREFIX.encode() not in body and b"1-stdout" in body


def test_spares_lost_with_their_directory_fall_back_to_creating(tmp_path):
    import shutil

    import gevent

    from scootpy.workerserver.outputs import OutputCreator

    directory = tmp_path / "out"
    directory.mkdir()
    outputs = OutputCreator(str(directory), spares=3)
    outputs.create("0-stdout").close()
    deadline = time.monotonic() + 10
    while len(outputs._spares) < 3:
        assert time.monotonic() < deadline, "spares never made"
        gevent.sleep(0.01)
    shutil.rmtree(directory)
    made = outputs.create("1-stderr")
    made.write(b"x")
    made.close()
    assert Path(made.path).read_bytes() == b"x" and Path(made.path).parent == directory

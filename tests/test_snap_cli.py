"""``scoot-snapshot-db`` as a real process against a real ``apiserver``: golden outputs, flags, URL
resolution, errors (spec/snapshots.md §5, cli.md §10)."""

import os
import shutil
import subprocess

import pytest

from scootpy.snapshots.gitdb import GitDB
from scootpy.snapshots.store import HttpStore
from tests.procs import binary, free_port, wait_port
from tests.snaphelp import GC_ID, INPUT_ID, SNAP_FIXTURES, commit_files, extract, make_repo, sh_git

CATS = SNAP_FIXTURES / "read-cat"


@pytest.fixture
def apiserver(procs, tmp_path):
    """A real apiserver whose store starts with the reference's bundles; yields its /bundle URL."""
    store = tmp_path / "store"
    shutil.copytree(SNAP_FIXTURES / "bundles", store)
    os.chmod(store, 0o755)
    for name in os.listdir(store):
        os.chmod(store / name, 0o644)
    port = free_port()
    proc = procs.start([binary("apiserver"), "-http_addr", f"127.0.0.1:{port}"],
                       env={"BUNDLESTORE_STORE_DIR": str(store)}, stderr=subprocess.DEVNULL)
    wait_port(port, proc=proc)
    return f"http://127.0.0.1:{port}/bundle"


@pytest.fixture
def run(tmp_path, apiserver):
    """Run scoot-snapshot-db in ``cwd`` (default: a fresh repo) with HOME isolated; returns the result."""
    default_cwd = tmp_path / "cwd-repo"
    make_repo(default_cwd)

    def run_cli(*args, cwd=None, url=apiserver, env=None):
        full = dict(os.environ, HOME=str(tmp_path), **(env or {}))
        if "SCOOT_BUNDLESTORE_URL" not in (env or {}):
            full.pop("SCOOT_BUNDLESTORE_URL", None)
        argv = [binary("scoot-snapshot-db"), *args] + (["--bundlestore_url", url] if url else [])
        return subprocess.run(argv, cwd=str(cwd or default_cwd), env=full, capture_output=True, timeout=120)
    return run_cli


def test_golden_ingest_dir_and_commit(tmp_path, run):
    src = extract("input.tar.gz", tmp_path / "in") / "snapshot-input"
    res = run("create", "ingest_dir", "--dir", str(src))
    assert (res.returncode, res.stdout) == (0, (SNAP_FIXTURES / "ingest_dir.stdout").read_bytes())
    tiny = extract("gc-input-repo.tar.gz", tmp_path / "gc") / "tiny-repo"
    res = run("create", "ingest_git_commit", "--commit", "HEAD", cwd=tiny)
    assert (res.returncode, res.stdout) == (0, (SNAP_FIXTURES / "ingest_git_commit.stdout").read_bytes())


@pytest.mark.parametrize("files, golden", [
    (["latin1.txt"], "latin1.txt.stdout"),
    (["src/a/b/c/deep.txt"], "src_a_b_c_deep.txt.stdout"),
    (["link-to-readme"], "link-to-readme.stdout"),
    (["README.txt", "run.sh"], "README.txt+run.sh.stdout"),
])
def test_golden_read_cat(tmp_path, run, files, golden):
    before = sh_git(tmp_path / "cwd-repo", "count-objects", "-v")
    res = run("read", "cat", "--id", INPUT_ID, *files)
    assert (res.returncode, res.stdout) == (0, (CATS / golden).read_bytes())
    assert sh_git(tmp_path / "cwd-repo", "count-objects", "-v") == before, "reading leaves the cwd repo untouched"


def test_read_cat_errors_and_empty(run):
    res = run("read", "cat", "--id", INPUT_ID)
    assert (res.returncode, res.stdout) == (0, b"")
    res = run("read", "cat", "--id", GC_ID, "hello.txt")
    assert res.returncode == 1 and res.stdout == b""
    assert f"Error: can only ReadFileAll from an FSSnapshot, but {GC_ID} is a gc".encode() in res.stderr
    res = run("read", "cat", "--id", INPUT_ID, "README.txt", "missing.txt")
    assert res.returncode == 1 and res.stdout == (CATS / "README.txt+run.sh.stdout").read_bytes()[:83]
    assert b"does not exist" in res.stderr
    res = run("read", "cat", "--id", "bz-" + "a" * 64 + "-3", "x")
    assert res.returncode == 1 and b"Error: invalid kind: " + b"a" * 64 in res.stderr


def test_ingest_dir_relative_to_repo_top_and_round_trip(tmp_path, run, apiserver):
    repo = tmp_path / "work"
    make_repo(repo, {"sub/file.txt": "first"})
    res = run("create", "ingest_dir", "--dir", "sub", cwd=repo / "sub")
    assert res.returncode == 0 and res.stdout.startswith(b"bs-fs-") and res.stdout.count(b"\n") == 1
    snap = res.stdout.decode().strip()
    assert run("read", "cat", "--id", snap, "file.txt").stdout == b"first"
    assert sh_git(repo, "status", "--porcelain") == "", "the cwd repo's work tree is untouched"


def test_working_dir_and_export(tmp_path, run, apiserver):
    repo = tmp_path / "work"
    make_repo(repo, {"a.txt": "committed"})
    (repo / "untracked.txt").write_text("new")
    res = run("create", "ingest_git_working_dir", cwd=repo)
    assert res.returncode == 0 and res.stdout.startswith(b"bs-gc-")
    snap = res.stdout.decode().strip()
    sha = snap.rsplit("-", 1)[1]
    fresh = tmp_path / "fresh"
    make_repo(fresh, {"other": "x"})
    res = run("export", "to_git_commit", "--id", snap, cwd=fresh)
    assert (res.returncode, res.stdout) == (0, f"{sha}\n".encode())
    assert sh_git(fresh, "show", f"{sha}:untracked.txt") == "new"
    assert sh_git(fresh, "log", "--format=%s", "-1", sha) == "__scoot_commit"
    res = run("export", "to_git_commit", "--id", INPUT_ID, cwd=fresh)
    assert res.returncode == 1 and b"cannot export non-GitCommitSnapshot" in res.stderr


def test_publish_git_bundle(tmp_path, run, apiserver):
    repo = tmp_path / "work"
    base = make_repo(repo, {"a": "1"})
    sh_git(repo, "branch", "-M", "master")
    tip = commit_files(repo, {"b": "2"}, "second")
    res = run("create", "publish_git_bundle", "--basis", base, cwd=repo)
    assert res.returncode == 0
    location = res.stdout.decode().strip()
    assert location.startswith(apiserver + "/bs-") and location.endswith(".bundle")
    key = location.rsplit("/bs-", 1)[1][:-len(".bundle")]
    res = run("create", "publish_git_bundle", "--basis", base, "--output", "snapshot-id", "--ttl", "1h", cwd=repo)
    assert res.stdout.decode() == f"bs-gc-{key}--{tip}\n"
    snap = res.stdout.decode().strip()
    with_basis, without = tmp_path / "with-basis", tmp_path / "without"
    subprocess.run(["git", "clone", "-q", str(repo), str(with_basis)], check=True)
    sh_git(with_basis, "reset", "-q", "--hard", base)
    sh_git(with_basis, "reflog", "expire", "--expire=now", "--all")
    sh_git(with_basis, "gc", "-q", "--prune=now")
    store = HttpStore(apiserver)
    db = GitDB(with_basis, store, tmp_root=tmp_path)
    assert db.export_git_commit(snap, with_basis) == tip
    db.close()
    make_repo(without)
    other = GitDB(without, store, tmp_root=tmp_path)
    with pytest.raises(Exception, match="lacks these prerequisite commits"):
        other.checkout(snap)
    other.close()
    for args, text in ((["--output", "url"], b'Output type must be one of: ["location" "snapshot-id"]'),
                       ([], b"Create bundle command requires a basis and reference"),
                       (["--ref", "--all"], b"may not start with '-'"),
                       (["--ttl", "soon"], b'invalid argument "soon" for "--ttl" flag'),
                       (["--ref", tip], b"Refusing to create empty bundle")):
        basis = [] if not args else ["--basis", tip if args[-1] == tip else base]
        res = run("create", "publish_git_bundle", *args, *basis, cwd=repo)
        assert res.returncode == 1 and text in res.stderr and res.stdout == b""


def test_url_resolution_order(tmp_path, run, apiserver):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    addr = apiserver[len("http://"):-len("/bundle")]
    res = run("create", "ingest_dir", "--dir", str(src), url=None)
    assert res.returncode == 1 and b"could not resolve: no delegate resolved" in res.stderr
    (tmp_path / ".cloudscootaddr").write_text(f"localhost:9090\n{addr}")
    assert run("create", "ingest_dir", "--dir", str(src), url=None).returncode == 0
    (tmp_path / ".cloudscootaddrB").write_text("localhost:9090\n127.0.0.1:1")
    res = run("create", "ingest_dir", "--dir", str(src), url=None,
              env={"SCOOT_ID": "B", "SCOOT_BUNDLESTORE_URL": apiserver})
    assert res.returncode == 0, "the environment beats the address file"


def test_flags_anywhere_and_errors(tmp_path, run, apiserver):
    src = tmp_path / "src"
    src.mkdir()
    res = run("--log_level", "debug", "create", "ingest_dir", "--log_level=error", "--dir", str(src))
    assert res.returncode == 0 and res.stdout.startswith(b"bs-fs-4b825dc642cb6eb9a060e54bf8d69288fbee4904")
    res = run("create", "ingest_dir", "--dir", str(src), "--log_level", "nonsense")
    assert res.returncode == 1 and b"not a valid logrus Level" in res.stderr
    res = run("create", "ingest_dir", "--dir", str(src), cwd=tmp_path)
    assert res.returncode == 1 and b"scoot-snapshot-db must be run in a git repo" in res.stderr
    for args in (["create", "ingest_dir", "--dir", str(tmp_path / "missing")], ["create", "ingest_dir"],
                 ["create", "nope"], ["create", "ingest_dir", "--bogus"], ["read", "cat", "--id", "x-y", "f"],
                 ["create", "ingest_git_commit"]):
        res = run(*args)
        assert res.returncode == 1 and res.stdout == b"" and b"Error: " in res.stderr, args
    res = run("create")
    assert res.returncode == 0 and b"ingest_dir" in res.stdout


def test_no_temp_files_left_behind(tmp_path, run):
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    assert run("create", "ingest_dir", "--dir", str(src), env={"TMPDIR": str(tmp)}).returncode == 0
    assert run("read", "cat", "--id", INPUT_ID, "README.txt", env={"TMPDIR": str(tmp)}).returncode == 0
    assert run("read", "cat", "--id", GC_ID, "x", env={"TMPDIR": str(tmp)}).returncode == 1
    assert os.listdir(tmp) == []


def test_help(run):
    res = run("--help")
    assert res.returncode == 0 and b"--bundlestore_url" in res.stdout and b"create" in res.stdout
    res = run("help", "read", "cat")
    assert res.returncode == 0 and b"read cat" in res.stdout and b"--id" in res.stdout
    res = run("help", "nope")
    assert res.returncode == 1 and b'Error: unknown command "nope"' in res.stderr

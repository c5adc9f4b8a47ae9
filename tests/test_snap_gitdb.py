"""GitDB against real git repositories and a FileStore: the reference's db_test scenarios, golden data and
edge cases (spec/snapshots.md §3, §6, §9)."""

import os
import shutil
import socket
import subprocess
import sys

import gevent
import pytest

from scootpy.snapshots import checkouts
from scootpy.snapshots.gitdb import GitDB, StreamConfig, TagsConfig
from scootpy.snapshots.ids import SnapshotError
from scootpy.snapshots.store import FileStore
from tests.snaphelp import (EMPTY_TREE, GC_COMMIT, GC_FIRST, GC_ID, INPUT_ID, INPUT_TREE, SNAP_FIXTURES,
                            commit_files, extract, make_repo, raw_tree_id, sh_git, tree_listing)


@pytest.fixture
def store(tmp_path):
    return FileStore(tmp_path / "bundles")


@pytest.fixture
def make_db(tmp_path):
    dbs = []

    def make(name="data", store=None, **kw):
        db = GitDB(tmp_path / name, store, tmp_root=tmp_path, **kw)
        dbs.append(db)
        return db
    yield make
    for db in dbs:
        db.close()


def write(path, files):
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return path


def test_ingest_dir_round_trip(tmp_path, make_db, store):
    src = write(tmp_path / "src", {"foo.txt": "bar"})
    db = make_db(store=store)
    snap = db.ingest_dir(src)
    tree = raw_tree_id(src, tmp_path)
    assert snap == f"bs-fs-{tree}--{tree}"
    assert store.exists(f"bs-{tree}.bundle")
    co = db.checkout(snap)
    assert (tmp_path / co / "foo.txt").read_text() == "bar"
    db.release_checkout(co)


def test_local_ids_without_store(tmp_path, make_db):
    src = write(tmp_path / "src", {"a": "1"})
    db = make_db()
    snap = db.ingest_dir(src)
    assert snap == f"local-fs-{raw_tree_id(src, tmp_path)}"
    co = db.checkout(snap)
    assert open(os.path.join(co, "a")).read() == "1"
    with pytest.raises(SnapshotError, match="Bundlestore backend not initialized."):
        db.checkout(f"bs-fs-{INPUT_TREE}--{INPUT_TREE}")
    with pytest.raises(SnapshotError, match="DownloadTempRepo unimplemented in localSnapshot"):
        db.read_file(snap, "a")


def test_golden_ingest_gives_reference_id(tmp_path, make_db, store):
    src = extract("input.tar.gz", tmp_path / "in") / "snapshot-input"
    assert make_db(store=store).ingest_dir(src) == INPUT_ID


def test_golden_gc_ingest_gives_reference_id(tmp_path, make_db, store):
    repo = extract("gc-input-repo.tar.gz", tmp_path / "in") / "tiny-repo"
    assert make_db(store=store).ingest_git_commit(repo, "HEAD") == GC_ID


def test_golden_bundles_check_out_and_read(tmp_path, make_db):
    db = make_db(store=FileStore(SNAP_FIXTURES / "bundles"))
    co = db.checkout(INPUT_ID)
    listing = sh_git(db.repo, "ls-tree", "-r", "-l", INPUT_TREE)
    assert listing == (SNAP_FIXTURES / "fs-tree.txt").read_text().strip()
    src = extract("input.tar.gz", tmp_path / "in") / "snapshot-input"
    expected = tree_listing(src)
    del expected["build.log"]
    got = tree_listing(tmp_path / co)
    assert got == {k: v for k, v in expected.items() if k != "bin/readonly-exec"} | {
        "bin/readonly-exec": ("file", True, (src / "bin/readonly-exec").read_bytes())}
    assert not (tmp_path / co / "empty-dir").exists()
    cats = SNAP_FIXTURES / "read-cat"
    assert db.read_file(INPUT_ID, "latin1.txt") == (cats / "latin1.txt.stdout").read_bytes()
    assert db.read_file(INPUT_ID, "src/a/b/c/deep.txt") == (cats / "src_a_b_c_deep.txt.stdout").read_bytes()
    assert db.read_file(INPUT_ID, "link-to-readme") == (cats / "link-to-readme.stdout").read_bytes()
    gc = db.checkout(GC_ID)
    assert gc == str(db.repo)
    assert (db.repo / "hello.txt").exists() and os.access(db.repo / "sub/run.sh", os.X_OK)
    db.release_checkout(gc)
    with pytest.raises(SnapshotError, match=f"can only ReadFileAll from an FSSnapshot, but {GC_ID} is a gc"):
        db.read_file(GC_ID, "hello.txt")
    assert sh_git(db.repo, "rev-parse", f"{GC_COMMIT}^") == GC_FIRST


def test_gc_checkouts_clean_between_ids_and_reuse_same_id(tmp_path, make_db, store):
    ext = tmp_path / "external"
    first = make_repo(ext, {"file.txt": "first"})
    second = commit_files(ext, {"file.txt": "second"}, "second")
    db = make_db(store=store)
    id1, id2 = db.ingest_git_commit(ext, first), db.ingest_git_commit(ext, "HEAD")
    assert (id1, id2) == (f"bs-gc-{first}--{first}", f"bs-gc-{second}--{second}")
    co = db.checkout(id1)
    assert (tmp_path / co / "file.txt").read_text() == "first"
    (tmp_path / co / "scratch.txt").write_text("scratch")
    db.release_checkout(co)
    co = db.checkout(id1)
    assert (tmp_path / co / "scratch.txt").exists(), "same id: the work tree is reused without cleaning"
    db.release_checkout(co)
    co = db.checkout(id2)
    assert (tmp_path / co / "file.txt").read_text() == "second"
    assert not (tmp_path / co / "scratch.txt").exists()
    db.release_checkout(co)
    (ext / "scratch.txt").write_text("untracked")
    (ext / ".gitignore").write_text("ignored.txt\n")
    (ext / "ignored.txt").write_text("no")
    wd = db.ingest_git_working_dir(ext)
    co = db.checkout(wd)
    assert (tmp_path / co / "file.txt").read_text() == "second"
    assert (tmp_path / co / "scratch.txt").read_text() == "untracked"
    assert not (tmp_path / co / "ignored.txt").exists()
    db.release_checkout(co)
    assert sh_git(ext, "status", "--porcelain") == "?? .gitignore\n?? scratch.txt", "ingest leaves the repo as it was"


def test_second_gc_checkout_waits_for_release(tmp_path, make_db, store):
    ext = tmp_path / "external"
    sha = make_repo(ext)
    db = make_db(store=store)
    snap = db.ingest_git_commit(ext, sha)
    co = db.checkout(snap)
    waiter = gevent.spawn(db.checkout, snap)
    gevent.sleep(0.2)
    assert not waiter.ready()
    fs = db.checkout(db.ingest_dir(write(tmp_path / "d", {"x": "y"})))
    assert fs != co, "fs checkouts do not wait for the work tree"
    db.release_checkout(co)
    assert waiter.get(timeout=10) == co
    db.release_checkout(co)
    db.release_checkout(fs)


def test_bundlestore_consumer_fetches_from_store(tmp_path, make_db, store):
    ext = tmp_path / "external"
    sha = make_repo(ext, {"file.txt": "content"})
    author, consumer = make_db("author", store), make_db("consumer", store)
    gc = author.ingest_git_commit(ext, sha)
    out = write(tmp_path / "out", {"stdout.txt": "stdout", "stderr.txt": "stderr"})
    fs = consumer.ingest_dir(out)
    co = consumer.checkout(gc)
    assert (tmp_path / co / "file.txt").read_text() == "content"
    consumer.release_checkout(co)
    assert author.read_file(fs, "stdout.txt") == b"stdout"
    export = tmp_path / "export"
    make_repo(export, {"other": "x"})
    assert consumer.export_git_commit(gc, export) == sha
    assert sh_git(export, "cat-file", "-t", sha) == "commit"
    assert sh_git(export, "for-each-ref").count("refs/") == 1, "no temporary ref left behind"
    with pytest.raises(SnapshotError, match="cannot export non-GitCommitSnapshot"):
        consumer.export_git_commit(fs, export)


@pytest.mark.parametrize("name, setup, expect", [
    ("exec bit", lambda d: (write(d, {"x.sh": "#!/bin/sh\n"}), os.chmod(d / "x.sh", 0o700)), {"x.sh": "100755"}),
    ("symlink", lambda d: os.symlink("/nowhere", d / "l"), {"l": "120000"}),
    ("symlink loop", lambda d: (os.symlink("b", d / "a"), os.symlink("a", d / "b")), {"a": "120000", "b": "120000"}),
    ("empty dir", lambda d: (d / "e" / "f").mkdir(parents=True), {}),
    ("gitignore", lambda d: write(d, {".gitignore": "*.log\n", "a.log": "x", "k": "1"}),
     {".gitignore": "100644", "k": "100644"}),
    ("fifo", lambda d: (os.mkfifo(d / "p"), write(d, {"k": "1"})), {"k": "100644"}),
    ("socket", lambda d: (socket.socket(socket.AF_UNIX).bind(str(d / "s")), write(d, {"k": "1"})), {"k": "100644"}),
    ("nested .git dir skipped", lambda d: write(d, {".git/config": "x", "k": "1"}), {"k": "100644"}),
])
def test_fs_edge_cases_match_raw_git(tmp_path, make_db, name, setup, expect):
    src = tmp_path / "src"
    src.mkdir()
    setup(src)
    db = make_db()
    snap = db.ingest_dir(src)
    tree = snap.rsplit("-", 1)[1]
    assert tree == raw_tree_id(src, tmp_path)
    modes = {line.split("\t")[1]: line.split()[0] for line in sh_git(db.repo, "ls-tree", "-r", tree).splitlines()}
    assert modes == expect
    co = db.checkout(snap)
    assert set(tree_listing(tmp_path / co)) == set(expect)
    db.release_checkout(co)


def test_empty_dir_gives_empty_tree_and_uploads(tmp_path, make_db, store):
    (tmp_path / "empty").mkdir()
    db = make_db(store=store)
    assert db.ingest_dir(tmp_path / "empty") == f"bs-fs-{EMPTY_TREE}--{EMPTY_TREE}"
    assert store.exists(f"bs-{EMPTY_TREE}.bundle")
    other = make_db("other", store)
    co = other.checkout(f"bs-fs-{EMPTY_TREE}--{EMPTY_TREE}")
    assert os.listdir(co) == []


def test_ingest_bad_paths(tmp_path, make_db):
    db = make_db()
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "missing", tmp_path / "file"):
        with pytest.raises(SnapshotError, match="not a directory"):
            db.ingest_dir(bad)
    nested = tmp_path / "nested"
    (nested / "inner").mkdir(parents=True)
    sh_git(nested / "inner", "init", "-q")
    (nested / "inner" / "f").write_text("x")
    with pytest.raises(SnapshotError, match="does not have a commit checked out"):
        db.ingest_dir(nested)
    with pytest.raises(SnapshotError, match="not a valid commit: nope"):
        make_repo(tmp_path / "r")
        db.ingest_git_commit(tmp_path / "r", "nope")
    with pytest.raises(SnapshotError, match="not a valid commit: --all, a commit may not start with '-'"):
        db.ingest_git_commit(tmp_path / "r", "--all")


def test_checkout_errors(tmp_path, make_db, store):
    db = make_db(store=store)
    with pytest.raises(SnapshotError, match="invalid kind: xx"):
        db.checkout("bs-xx-1-2-3")
    missing = "a" * 40
    with pytest.raises(SnapshotError, match=f"bs-{missing}.bundle not found"):
        db.checkout(f"bs-fs-{missing}--{missing}")
    with pytest.raises(SnapshotError, match="rev-parse"):
        db.checkout(f"local-fs-{missing}")
    db.release_checkout("/not/a/checkout")


def test_corrupt_or_truncated_bundle_leaves_repo_unchanged(tmp_path, make_db, store):
    good = (SNAP_FIXTURES / "bundles" / f"bs-{INPUT_TREE}.bundle").read_bytes()
    db = make_db(store=store)
    before = sorted(p.name for p in (db.repo / ".git" / "objects" / "pack").iterdir())
    for data in ((good[: len(good) // 2], good[:-1] + bytes([good[-1] ^ 1]), b"garbage\n\nPACK")):
        shutil.rmtree(store.directory)
        store.directory.mkdir()
        (store.directory / f"bs-{INPUT_TREE}.bundle").write_bytes(data)
        with pytest.raises(SnapshotError, match="bundle"):
            db.checkout(INPUT_ID)
    assert sorted(p.name for p in (db.repo / ".git" / "objects" / "pack").iterdir()) == before
    assert sh_git(db.repo, "count-objects") == "0 objects, 0 kilobytes"


@pytest.mark.parametrize("compare", ["signature", "git"])
def test_fs_checkout_cache_reuses_only_pristine_trees(tmp_path, make_db, store, monkeypatch, compare):
    if compare == "git":
        monkeypatch.setattr(checkouts, "SIGNED_ENTRIES", 0)
    db = make_db(store=store)
    snap = db.ingest_dir(write(tmp_path / "src", {"a": "1", "d/b": "2"}))
    first = db.checkout(snap)
    second = db.checkout(snap)
    assert first != second, "concurrent checkouts are separate directories"
    db.release_checkout(first)
    assert db.checkout(snap) == first, "a pristine released tree is reused"
    with open(os.path.join(first, "new"), "w") as f:
        f.write("x")
    db.release_checkout(first)
    assert not os.path.exists(first), "a modified tree is deleted"
    with open(os.path.join(second, "a"), "w") as f:
        f.write("changed")
    db.release_checkout(second)
    assert not os.path.exists(second)
    third = db.checkout(snap)
    assert open(os.path.join(third, "a")).read() == "1"
    os.chmod(os.path.join(third, "d"), 0o500)
    os.unlink(os.path.join(third, "d", "b"))
    db.release_checkout(third)
    assert not os.path.exists(third)


def test_cache_disabled_deletes_on_release(tmp_path, make_db):
    db = make_db(cache_bytes=0)
    snap = db.ingest_dir(write(tmp_path / "src", {"a": "1"}))
    co = db.checkout(snap)
    db.release_checkout(co)
    assert not os.path.exists(co)


def test_close_leaves_nothing_in_tmp_root(tmp_path, store):
    root = tmp_path / "tmproot"
    root.mkdir()
    db = GitDB(tmp_path / "data", store, tmp_root=root)
    snap = db.ingest_dir(write(tmp_path / "src", {"a": "1"}))
    db.checkout(snap)
    db.release_checkout(db.checkout(snap))
    db.read_file(snap, "a")
    db.close()
    assert os.listdir(root) == []


def test_many_greenlets_ingest_and_check_out_at_once(tmp_path, make_db, store):
    db = make_db(store=store)
    consumer = make_db("consumer", store)
    dirs = [write(tmp_path / f"src{i}", {"n": str(i % 5), "common": "c"}) for i in range(20)]

    def one(i):
        snap = db.ingest_dir(dirs[i])
        co = consumer.checkout(snap)
        text = open(os.path.join(co, "n")).read()
        consumer.release_checkout(co)
        return snap, text
    results = [g.get(timeout=60) for g in [gevent.spawn(one, i) for i in range(20)]]
    assert [text for _, text in results] == [str(i % 5) for i in range(20)]
    assert len({snap for snap, _ in results}) == 5
    assert len(os.listdir(store.directory)) == 5


def test_processes_share_a_data_repo(tmp_path, store):
    data = tmp_path / "shared-data"
    GitDB(data, store, tmp_root=tmp_path).close()
    script = (
        "import sys, os\n"
        "from scootpy.snapshots.gitdb import GitDB\n"
        "from scootpy.snapshots.store import FileStore\n"
        "db = GitDB(sys.argv[1], FileStore(sys.argv[2]), tmp_root=sys.argv[3])\n"
        "src = os.path.join(sys.argv[3], 'src' + sys.argv[4])\n"
        "os.makedirs(src); open(os.path.join(src, 'f'), 'w').write(sys.argv[4])\n"
        "for _ in range(5):\n"
        "    snap = db.ingest_dir(src); co = db.checkout(snap)\n"
        "    assert open(os.path.join(co, 'f')).read() == sys.argv[4]; db.release_checkout(co)\n"
        "db.close()\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(data),
                               str(store.directory), str(tmp_path), str(i)]) for i in range(4)]
    assert [p.wait(120) for p in procs] == [0, 0, 0, 0]


@pytest.fixture
def upstream(tmp_path):
    """An upstream repo with one commit on master, and a maker of data repos that know it as a stream."""
    up = tmp_path / "upstream"
    first = make_repo(up, {"file.txt": "upstream"})
    sh_git(up, "branch", "-M", "master")

    def data_repo(name):
        repo = tmp_path / name
        make_repo(repo, {"own": name})
        sh_git(repo, "remote", "add", "upstream", str(up))
        return repo
    return up, first, data_repo


STREAM = StreamConfig("sm", "upstream", "refs/remotes/upstream/master")


def test_stream_checkout_fetches(upstream, make_db):
    up, first, data_repo = upstream
    second = commit_files(up, {"file.txt": "second"}, "second")
    db = make_db(str(data_repo("data-stream")), stream=STREAM)
    co = db.checkout(f"stream-gc-sm-{second}")
    assert open(os.path.join(co, "file.txt")).read() == "second"
    db.release_checkout(co)
    with pytest.raises(SnapshotError, match="cannot update stream other: does not match stream sm"):
        db.checkout(f"stream-gc-other-{'b' * 40}")
    with pytest.raises(SnapshotError, match="invalid ref '--upload-pack=touch x'"):
        db.checkout(f"stream-gc-sm:--upload-pack=touch x-{'b' * 40}")
    third = commit_files(up, {"file.txt": "third"}, "third")
    co = db.checkout(f"stream-gc-sm:master-{third}")
    assert open(os.path.join(co, "file.txt")).read() == "third", "a stream name may carry the ref to fetch"
    db.release_checkout(co)
    with pytest.raises(SnapshotError, match="Stream backend not initialized."):
        make_db("plain").checkout(f"stream-gc-sm-{second}")


def test_bundlestore_with_stream_uploads_only_what_the_stream_lacks(tmp_path, upstream, make_db, store):
    up, first, data_repo = upstream
    author = make_db(str(data_repo("author")), store, stream=STREAM)
    sh_git(author.repo, "fetch", "-q", "upstream")
    assert author.ingest_git_commit(up, first) == f"stream-gc-sm-{first}", "on the stream: nothing uploaded"
    assert not store.exists(f"bs-{first}.bundle")
    ext = tmp_path / "ext"
    subprocess.run(["git", "clone", "-q", str(up), str(ext)], check=True)
    change = commit_files(ext, {"change.txt": "mine"}, "change")
    snap = author.ingest_git_commit(ext, change)
    assert snap == f"bs-gc-{change}-sm-{change}"
    assert (store.directory / f"bs-{change}.bundle").read_bytes().split(b"\n")[1].startswith(f"-{first}".encode())
    consumer = make_db(str(data_repo("consumer")), store, stream=STREAM)
    co = consumer.checkout(snap)
    assert open(os.path.join(co, "change.txt")).read() == "mine", "prerequisite fetched from the stream"
    consumer.release_checkout(co)
    unrelated = make_db("unrelated", store)
    with pytest.raises(SnapshotError, match="(?s)lacks these prerequisite commits.*no streams configured"):
        unrelated.checkout(snap)
    strict = make_db(str(data_repo("strict")), store, stream=STREAM, allow_stream_update=False)
    with pytest.raises(SnapshotError, match="lacks these prerequisite commits"):
        strict.checkout(snap)


def test_checkout_at_and_init_failure(tmp_path, make_db, store):
    (tmp_path / "not-a-dir").write_text("x")
    with pytest.raises(OSError):
        GitDB(tmp_path / "not-a-dir", store, tmp_root=tmp_path)
    db = make_db(store=store)
    fs = db.ingest_dir(write(tmp_path / "src", {"a": "new", "d/b": "2"}))
    dest = write(tmp_path / "dest", {"a": "old", "keep": "k"})
    assert db.checkout_at(fs, dest) == str(dest)
    assert tree_listing(dest) == {"a": ("file", False, b"new"), "d/b": ("file", False, b"2"),
                                  "keep": ("file", False, b"k")}
    ext = tmp_path / "ext"
    gc = db.ingest_git_commit(ext, make_repo(ext, {"x": "y"}))
    db.checkout_at(gc, tmp_path / "gcdest")
    assert tree_listing(tmp_path / "gcdest") == {"x": ("file", False, b"y")}
    assert not (tmp_path / "gcdest" / ".git").exists()
    held = db.checkout(gc)
    db.release_checkout(held)


def test_gc_checkout_recovers_from_stale_index_lock(tmp_path, make_db, store):
    ext = tmp_path / "ext"
    first = make_repo(ext, {"f": "1"})
    second = commit_files(ext, {"f": "2"}, "second")
    db = make_db(store=store)
    id1, id2 = db.ingest_git_commit(ext, first), db.ingest_git_commit(ext, second)
    db.release_checkout(db.checkout(id1))
    (db.repo / ".git" / "index.lock").write_text("")
    (db.repo / "untracked").write_text("x")
    co = db.checkout(id2)
    assert (tmp_path / co / "f").read_text() == "2"
    assert not (db.repo / ".git" / "index.lock").exists() and not (db.repo / "untracked").exists()
    db.release_checkout(co)


def test_tags_backend_author_and_consumer(tmp_path, make_db):
    tags_repo = tmp_path / "tags-remote"
    sh_git(tmp_path, "init", "-q", "--bare", str(tags_repo))
    cfg = TagsConfig("sss", str(tags_repo), "scoot_reserved")
    ext = tmp_path / "ext"
    sha = make_repo(ext, {"f": "tagged"})
    author, consumer = make_db("author", tags=cfg), make_db("consumer", tags=cfg)
    snap = author.ingest_git_commit(ext, sha)
    assert snap == f"tags-gc-sss-{sha}"
    assert author.ingest_git_commit(ext, sha) == snap, "ingesting again is fine"
    fs = author.ingest_dir(write(tmp_path / "d", {"x": "1"}))
    assert fs.startswith("tags-fs-sss-")
    co = consumer.checkout(snap)
    assert open(os.path.join(co, "f")).read() == "tagged"
    consumer.release_checkout(co)
    co = consumer.checkout(fs)
    assert open(os.path.join(co, "x")).read() == "1"
    with pytest.raises(SnapshotError, match="tags backend named other is not registered"):
        consumer.checkout(f"tags-gc-other-{'c' * 40}")


def test_object_cache_is_bounded_and_refilled(tmp_path, make_db, store, monkeypatch):
    from scootpy.snapshots import objcache
    monkeypatch.setattr(objcache, "CHECK_INTERVAL_S", 0)
    db = make_db(store=store, object_cache_bytes=1)
    snap = db.ingest_dir(write(tmp_path / "src", {"a": "1", "d/b": "2"}))
    assert db._objects.trims >= 1
    assert objcache.object_bytes(db._fast.objects) == 0
    co = db.checkout(snap)
    assert open(os.path.join(co, "d", "b")).read() == "2", "objects come back from the store"
    db.release_checkout(co)
    ext = tmp_path / "ext"
    gc = db.ingest_git_commit(ext, make_repo(ext, {"x": "y"}))
    held = db.checkout(gc)
    trims = db._objects.trims
    assert db.read_file(snap, "a") == b"1"
    assert db._objects.trims == trims, "no trim while a task uses the work tree"
    db.release_checkout(held)
    assert db.read_file(snap, "a") == b"1"
    assert db._objects.trims > trims
    co = db.checkout(gc)
    assert (tmp_path / co / "x").read_text() == "y"
    db.release_checkout(co)


def test_object_cache_never_trims_a_repo_it_did_not_create(tmp_path, make_db, store, monkeypatch):
    from scootpy.snapshots import objcache
    monkeypatch.setattr(objcache, "CHECK_INTERVAL_S", 0)
    user = tmp_path / "user"
    make_repo(user, {"f": "mine"})
    db = make_db(str(user), store, object_cache_bytes=1)
    db.ingest_dir(write(tmp_path / "src", {"a": "1"}))
    assert db._objects.trims == 0
    assert sh_git(user, "show", "HEAD:f") == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_clear_error(tmp_path, make_db):
    src = write(tmp_path / "src", {"ok": "1", "secret": "2"})
    os.chmod(src / "secret", 0)
    with pytest.raises(SnapshotError, match="Permission denied"):
        make_db().ingest_dir(src)


def test_interrupted_download_is_a_clear_error(tmp_path, make_db):
    from gevent.server import StreamServer
    from scootpy.snapshots.store import HttpStore
    good = (SNAP_FIXTURES / "bundles" / f"bs-{INPUT_TREE}.bundle").read_bytes()

    def half_then_hang_up(sock, _addr):
        sock.recv(65536)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(good) + good[: len(good) // 2])
        sock.close()
    server = StreamServer(("127.0.0.1", 0), half_then_hang_up)
    server.start()
    try:
        db = make_db(store=HttpStore(f"http://127.0.0.1:{server.server_port}/bundle", tries=1))
        with pytest.raises(SnapshotError, match="interrupted|index-pack failed"):
            db.checkout(INPUT_ID)
        assert os.listdir(db.repo / ".git" / "objects" / "pack") == []
        assert sh_git(db.repo, "count-objects") == "0 objects, 0 kilobytes"
    finally:
        server.stop()

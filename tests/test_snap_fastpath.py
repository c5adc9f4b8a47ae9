"""The in-process ingest path must give exactly git's tree ids, valid objects and valid bundles, and step
aside whenever git's rules could differ."""

import io
import os
import random
import subprocess

import pytest

from scootpy.snapshots import git
from scootpy.snapshots.bundles import BUNDLE_REF, CheckedReader
from scootpy.snapshots.fastpath import FastIngester, bundle_bytes, wrapper_commit
from scootpy.snapshots.gitdb import FS_WRAPPER_MESSAGE, GitDB
from scootpy.snapshots.store import FileStore
from tests.snaphelp import EMPTY_TREE, raw_tree_id, sh_git


def fill(directory, rng, count):
    directory.mkdir(parents=True, exist_ok=True)
    alphabet = "abcXYZ019_.+=,@-"
    for i in range(count):
        name = rng.choice("aZ0_") + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) + str(i)
        size = rng.choice([0, 1, 17, 4096, 70_000])
        (directory / name).write_bytes(os.urandom(size) if rng.random() < 0.5 else b"line\n" * (size // 5))
        if rng.random() < 0.3:
            os.chmod(directory / name, 0o755 if rng.random() < 0.5 else 0o500)
    return directory


@pytest.mark.parametrize("seed", range(6))
def test_fast_tree_equals_git(tmp_path, seed):
    rng = random.Random(seed)
    src = fill(tmp_path / "src", rng, rng.randint(0, 20))
    repo = git.init_repo(tmp_path / "data")
    fast = FastIngester(repo)
    assert fast.enabled
    result = fast.ingest(src)
    assert result is not None
    assert result.sha == raw_tree_id(src, tmp_path)
    sh_git(repo, "fsck", "--strict", "--no-dangling")
    assert sh_git(repo, "cat-file", "-t", result.sha) == "tree"


def test_empty_dir_is_the_empty_tree(tmp_path):
    (tmp_path / "e").mkdir()
    result = FastIngester(git.init_repo(tmp_path / "data")).ingest(tmp_path / "e")
    assert result.sha == EMPTY_TREE


def test_fast_bundle_is_a_valid_bundle_with_the_git_wrapper_commit(tmp_path):
    src = fill(tmp_path / "src", random.Random(7), 5)
    repo = git.init_repo(tmp_path / "data")
    result = FastIngester(repo).ingest(src)
    commit, body = wrapper_commit(result.sha, FS_WRAPPER_MESSAGE, git.IDENTITY, "1262304000 +0000")
    env = {"GIT_AUTHOR_DATE": "1262304000 +0000", "GIT_COMMITTER_DATE": "1262304000 +0000"}
    assert git.run_sha(["commit-tree", result.sha, "-m", FS_WRAPPER_MESSAGE], repo, env) == commit
    data = bundle_bytes(commit, BUNDLE_REF, [("commit", commit, body)] + result.objects)
    reader = CheckedReader(io.BytesIO(data), len(data))
    while reader.read():
        pass
    (tmp_path / "b.bundle").write_bytes(data)
    other = git.init_repo(tmp_path / "other")
    sh_git(other, "bundle", "verify", str(tmp_path / "b.bundle"))
    sh_git(other, "bundle", "unbundle", str(tmp_path / "b.bundle"))
    assert sh_git(other, "rev-parse", f"{commit}^{{tree}}") == result.sha
    sh_git(other, "fsck", "--strict", "--no-dangling")


@pytest.mark.parametrize("make", [
    lambda d: (d / "sub").mkdir(),
    lambda d: os.symlink("x", d / "link"),
    lambda d: (d / ".gitignore").write_text("x"),
    lambda d: (d / "name with space").write_text("x"),
    lambda d: (d / "trailing.").write_text("x"),
    lambda d: (d / "big").write_bytes(b"\0" * (9 << 20)),
    lambda d: os.mkfifo(d / "fifo"),
    lambda d: [(d / f"f{i}").write_text("x") for i in range(65)],
])
def test_unusual_directories_fall_back_to_git(tmp_path, make):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok").write_text("ok")
    make(src)
    repo = git.init_repo(tmp_path / "data")
    assert FastIngester(repo).ingest(src) is None
    with GitDB(repo, FileStore(tmp_path / "store"), tmp_root=tmp_path) as db:
        assert db.ingest_dir(src).endswith(raw_tree_id(src, tmp_path))


@pytest.mark.parametrize("setup", [
    lambda repo, home: sh_git(repo, "config", "core.autocrlf", "true"),
    lambda repo, home: sh_git(repo, "config", "core.fileMode", "false"),
    lambda repo, home: sh_git(repo, "config", "core.excludesFile", "/dev/null"),
    lambda repo, home: (repo / ".git" / "info" / "exclude").write_text("STDOUT\n"),
    lambda repo, home: (repo / ".git" / "info" / "attributes").write_text("* text\n"),
    lambda repo, home: ((home / ".config" / "git").mkdir(parents=True),
                        (home / ".config" / "git" / "ignore").write_text("*.log\n")),
])
def test_configuration_that_could_change_ids_disables_it(tmp_path, monkeypatch, setup):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    repo = git.init_repo(tmp_path / "data")
    setup(repo, home)
    assert FastIngester(repo).enabled is False


def test_db_fast_and_git_paths_agree_end_to_end(tmp_path):
    src = fill(tmp_path / "src", random.Random(3), 6)
    store = FileStore(tmp_path / "store")
    with GitDB(tmp_path / "fast", store, tmp_root=tmp_path) as fast_db:
        snap = fast_db.ingest_dir(src)
    with GitDB(tmp_path / "consumer", store, tmp_root=tmp_path) as consumer:
        co = consumer.checkout(snap)
        out = subprocess.run(["diff", "-r", str(src), co], capture_output=True)
        assert out.returncode == 0, out.stdout
        for name in os.listdir(src):
            assert os.access(os.path.join(co, name), os.X_OK) == bool(os.stat(src / name).st_mode & 0o111)


def test_ingest_files_names_files_in_place_like_a_directory_of_them(tmp_path):
    rng = random.Random(11)
    src = fill(tmp_path / "src", rng, 8)
    scattered = tmp_path / "scattered"
    scattered.mkdir()
    files = {}
    for i, name in enumerate(sorted(os.listdir(src))):  # same bytes and modes under other names elsewhere
        os.link(src / name, scattered / f"x{i}")
        files[name] = str(scattered / f"x{i}")
    repo = git.init_repo(tmp_path / "data")
    fast = FastIngester(repo)
    unwritten = fast.ingest_files(files, write=False)
    assert unwritten.sha == raw_tree_id(src, tmp_path)
    assert subprocess.run(["git", "cat-file", "-e", unwritten.sha], cwd=repo).returncode != 0, "nothing written"
    written = fast.ingest_files(files)
    assert written.sha == unwritten.sha and sh_git(repo, "cat-file", "-t", written.sha) == "tree"


@pytest.mark.parametrize("make", [
    lambda d: {"ok": str(d / "ok"), "sub": str(d)},
    lambda d: (os.symlink(d / "ok", d / "link"), {"ok": str(d / "link")})[1],
    lambda d: {"ok": str(d / "ok"), ".gitignore": str(d / "ok")},
    lambda d: {"name with space": str(d / "ok")},
    lambda d: {"ok": str(d / "missing")},
    lambda d: ((d / "big").write_bytes(b"\0" * (9 << 20)), {"big": str(d / "big")})[1],
    lambda d: {f"f{i}": str(d / "ok") for i in range(65)},
])
def test_ingest_files_steps_aside_and_the_worker_stages_instead(tmp_path, make):
    from scootpy.workerserver.filer import Filer

    src = tmp_path / "src"
    src.mkdir()
    (src / "ok").write_text("ok")
    files = make(src)
    repo = git.init_repo(tmp_path / "data")
    assert FastIngester(repo).ingest_files(files) is None
    with GitDB(repo, FileStore(tmp_path / "store"), tmp_root=tmp_path) as db:
        assert db.ingest_files(files) is None
        filer = Filer(str(tmp_path), db)
        if any(not os.path.isfile(p) for p in files.values()):
            with pytest.raises(Exception, match="error staging ingestion"):
                filer.ingest(files)
            return
        snap = filer.ingest(files)
    staged = tmp_path / "staged"  # git's own tree of a directory of links to the files
    staged.mkdir()
    for name, path in files.items():
        os.link(path, staged / name, follow_symlinks=False)
    assert snap.endswith(raw_tree_id(staged, tmp_path))


def test_worker_outputs_travel_only_in_the_bundle_and_come_back_on_checkout(tmp_path):
    from scootpy.workerserver.filer import Filer

    out = tmp_path / "out"
    out.mkdir()
    files = {}
    for name, text in (("STDOUT", "out\n"), ("STDERR", "err\n"), ("STDLOG", "out\nerr\n")):
        (out / f"run-{name}").write_text(text)
        files[name] = str(out / f"run-{name}")
    store = FileStore(tmp_path / "store")
    with GitDB(tmp_path / "worker", store, tmp_root=tmp_path) as db:
        snap = Filer(str(tmp_path), db).ingest(files)
        sha = snap.rsplit("-", 1)[-1]
        assert snap.startswith("bs-fs-") and os.listdir(store.root) == [f"bs-{sha}.bundle"]
        assert subprocess.run(["git", "cat-file", "-e", sha], cwd=db.repo).returncode != 0
        co = db.checkout(snap)  # fetched back from the store
        assert sorted(os.listdir(co)) == ["STDERR", "STDLOG", "STDOUT"]
        assert (tmp_path / "out" / "run-STDLOG").read_text() == open(os.path.join(co, "STDLOG")).read()
        db.release_checkout(co)
    with GitDB(tmp_path / "plain", tmp_root=tmp_path) as local_db:  # no store: the objects must stay here
        snap = Filer(str(tmp_path), local_db).ingest(files)
        assert snap.startswith("local-fs-")
        assert sh_git(local_db.repo, "cat-file", "-p", f"{snap.rsplit('-', 1)[-1]}:STDOUT") == "out"

"""Bundle format handling: header parsing, the streaming upload check, unbundling and pack lookups."""

import io
import random

import pytest

from scootpy.snapshots import git
from scootpy.snapshots.bundles import BundleError, CheckedReader, pack_contains, parse_header, unbundle
from tests.snaphelp import GC_COMMIT, GC_FIRST, INPUT_TREE, SNAP_FIXTURES, sh_git

FS_BUNDLE = (SNAP_FIXTURES / "bundles" / f"bs-{INPUT_TREE}.bundle").read_bytes()
GC_BUNDLE = (SNAP_FIXTURES / "bundles" / f"bs-{GC_COMMIT}.bundle").read_bytes()


def drain(data: bytes, length=None):
    reader = CheckedReader(io.BytesIO(data), len(data) if length is None else length)
    while reader.read(1000):
        pass
    return reader.total


def test_reference_bundles_pass_the_upload_check():
    assert drain(FS_BUNDLE) == len(FS_BUNDLE)
    assert drain(GC_BUNDLE) == len(GC_BUNDLE)


@pytest.mark.parametrize("data, length, message", [
    (FS_BUNDLE[:-1], None, "checksum"),
    (FS_BUNDLE[:-1], len(FS_BUNDLE), "1 bytes missing"),
    (FS_BUNDLE[:50], None, "truncated header"),
    (b"# v3 git bundle\n@filter=blob:none\n" + FS_BUNDLE.split(b"\n", 1)[1], None, "unsupported bundle capability"),
    (b"# v2 git bundle\nnot-a-sha ref\n\nPACK", None, "bad header line"),
    (b"# v2 git bundle\n" + b"a" * 40 + b" ref\n\nNOPE" + b"\0" * 40, None, "no pack"),
    (b"GIF89a" + b"\0" * 100, None, "bad signature"),
])
def test_damaged_bundles_fail_the_upload_check(data, length, message):
    with pytest.raises(BundleError, match=message):
        drain(data, length)


def test_parse_header_reads_prerequisites_and_refs():
    header = parse_header(b"# v2 git bundle\n-" + b"a" * 40 + b" base subject\n" + b"b" * 40 + b" refs/x")
    assert header.prerequisites == ["a" * 40] and header.refs == [("b" * 40, "refs/x")]
    with pytest.raises(BundleError, match="no references"):
        parse_header(b"# v2 git bundle\n-" + b"a" * 40)


def test_unbundle_reference_bundle_and_look_up_its_pack(tmp_path):
    repo = git.init_repo(tmp_path / "repo")
    header, idx = unbundle(repo, io.BytesIO(GC_BUNDLE))
    assert header.refs == [(GC_COMMIT, "reserved_scoot/bundlestore/__temp_for_writing")]
    assert pack_contains(idx, GC_COMMIT) and pack_contains(idx, GC_FIRST)
    assert not pack_contains(idx, "0" * 40) and not pack_contains(idx, "f" * 40)
    assert not pack_contains(tmp_path / "missing.idx", GC_COMMIT)
    assert sh_git(repo, "for-each-ref") == "", "unbundling changes no refs"
    sh_git(repo, "fsck", "--no-dangling")


def test_any_damage_to_the_pack_is_caught_while_streaming():
    rng = random.Random(1234)
    start = FS_BUNDLE.index(b"\n\nPACK") + 2
    for _ in range(200):
        pos = rng.randrange(start, len(FS_BUNDLE))
        damaged = bytearray(FS_BUNDLE)
        damaged[pos] ^= 1 << rng.randrange(8)
        with pytest.raises(BundleError):
            drain(bytes(damaged))


def test_damaged_bundles_never_reach_the_repo(tmp_path):
    repo = git.init_repo(tmp_path / "repo")
    rng = random.Random(99)
    start = GC_BUNDLE.index(b"\n\nPACK") + 2
    for _ in range(8):
        damaged = bytearray(GC_BUNDLE)
        damaged[rng.randrange(start, len(GC_BUNDLE))] ^= 0x40
        with pytest.raises(BundleError):
            unbundle(repo, io.BytesIO(bytes(damaged)))
    assert sh_git(repo, "count-objects", "-v").splitlines()[:4] == ["count: 0", "size: 0", "in-pack: 0",
                                                                      "packs: 0"]
    assert [p for p in (repo / ".git" / "objects").iterdir() if p.name not in ("info", "pack")] == []


@pytest.mark.parametrize("seed", range(3))
def test_id_round_trip(seed):
    from scootpy.snapshots.ids import Backend, Kind, SnapshotRef, format_id, parse_id
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    for _ in range(200):
        sha = "".join(rng.choice(alphabet) for _ in range(40))
        backend = rng.choice(list(Backend))
        kind = rng.choice(list(Kind))
        name = "".join(rng.choice(alphabet + ":_") for _ in range(rng.randint(0 if backend is Backend.BUNDLESTORE
                                                                               else 1, 8)))
        if backend is Backend.STREAM and rng.random() < 0.5:
            name += "-more"
        key = "".join(rng.choice(alphabet) for _ in range(40))
        ref = SnapshotRef(backend, kind, sha, "" if backend is Backend.LOCAL else name,
                          key if backend is Backend.BUNDLESTORE else "")
        text = format_id(ref)
        assert parse_id(text, ("local", "stream", "tags", "bs")) == ref

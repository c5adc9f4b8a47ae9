"""Bundle format handling: header parsing, the streaming upload check, unbundling and pack lookups."""

import io

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

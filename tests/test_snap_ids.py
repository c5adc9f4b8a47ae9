"""Snapshot id parsing and formatting: every reference error text, in the reference's order of checks."""

import pytest

from scootpy.snapshots.ids import (Backend, InvalidSnapshotId, Kind, SnapshotRef, bundlestore_id, format_id,
                                   is_bazel_id, local_id, parse_id, stream_id)

SHA = "7c8ed031c1aed0a5157e6c7fdc2b88658268b3d9"
ALL = ("local", "stream", "tags", "bs")


@pytest.mark.parametrize("snapshot_id, backends, message", [
    ("", ALL, "empty snapshot ID"),
    ("bs-fs", ALL, "could not determine backend and kind in ID bs-fs"),
    ("nothing", ALL, "could not determine backend and kind in ID nothing"),
    ("bs-xx-a-b-c", ALL, "invalid kind: xx"),
    ("zz-xx-a", ALL, "invalid kind: xx"),
    ("bz-" + "a" * 64 + "-12", ALL, "invalid kind: " + "a" * 64),
    ("git-fs-" + SHA, ALL, "unrecognized snapshot backend git in ID git-fs-" + SHA),
    ("local-fs-a-" + SHA, ALL, f"cannot parse snapshot ID: expected 3 extraParts in local id local-fs-a-{SHA}"),
    ("local-fs-abc", ALL, "sha not 40 characters: abc"),
    ("stream-gc-" + SHA, ("local", "bs"), "Stream backend not initialized."),
    ("stream-gc-" + SHA, ALL, f"cannot parse snapshot ID: expected 4 extraParts in stream id: stream-gc-{SHA}"),
    ("stream-gc-sm-" + SHA + "0", ALL, f"sha not 40 characters: {SHA}0"),
    ("tags-fs-a-" + SHA, ("local", "bs"), "Tags backend not initialized."),
    ("tags-fs-a-b-" + SHA, ALL, f"cannot parse snapshot ID: expected 4 parts in tags id: tags-fs-a-b-{SHA}"),
    ("bs-fs-" + SHA, ("local",), "Bundlestore backend not initialized."),
    ("bs-fs-k-" + SHA, ALL, f"cannot parse snapshot ID: expected 5 parts in bundlestore id: bs-fs-k-{SHA}"),
    ("bs-fs-k-s-t-" + SHA, ALL, f"cannot parse snapshot ID: expected 5 parts in bundlestore id: bs-fs-k-s-t-{SHA}"),
    ("bs-fs-" + SHA + "--" + SHA[:39], ALL, "sha not 40 characters: " + SHA[:39]),
    ("bs-gc-" + SHA + "--" + SHA + "a", ALL, f"sha not 40 characters: {SHA}a"),
])
def test_parse_errors(snapshot_id, backends, message):
    with pytest.raises(InvalidSnapshotId) as info:
        parse_id(snapshot_id, backends)
    assert str(info.value) == message


def test_parse_bundlestore_with_empty_stream():
    ref = parse_id(f"bs-fs-{SHA}--{SHA}")
    assert ref == SnapshotRef(Backend.BUNDLESTORE, Kind.FS, SHA, "", SHA)
    assert ref.id == f"bs-fs-{SHA}--{SHA}"


def test_parse_stream_names_may_hold_dashes_and_refs():
    ref = parse_id(f"stream-gc-my-stream:refs/heads/x-{SHA}", ALL)
    assert (ref.backend, ref.kind, ref.name, ref.sha) == (Backend.STREAM, Kind.GC, "my-stream:refs/heads/x", SHA)
    assert format_id(ref) == f"stream-gc-my-stream:refs/heads/x-{SHA}"


def test_sha_only_length_is_checked():
    odd = "Z" * 40
    assert parse_id(f"local-gc-{odd}").sha == odd
    assert parse_id(f"tags-fs-name-{odd}", ALL).name == "name"


def test_local_always_parses():
    assert parse_id(f"local-fs-{SHA}", ()).backend is Backend.LOCAL


def test_formatters():
    assert bundlestore_id(Kind.FS, SHA) == f"bs-fs-{SHA}--{SHA}"
    assert bundlestore_id("gc", SHA, "k" * 40, "sm") == f"bs-gc-{'k' * 40}-sm-{SHA}"
    assert local_id(Kind.GC, SHA) == f"local-gc-{SHA}"
    assert stream_id("sm", SHA) == f"stream-gc-sm-{SHA}"


@pytest.mark.parametrize("snapshot_id, expected", [
    ("bz-" + "a" * 64 + "-12", True),
    ("bz-" + "a" * 64 + "--1", False),
    ("bz-" + "a" * 64 + "-+3", True),
    ("bz-" + "a" * 64 + "-x", False),
    ("bz-" + "a" * 63 + "-1", False),
    ("bz-" + "a" * 64, False),
    ("bs-fs-" + SHA + "--" + SHA, False),
    ("bz-" + "a" * 64 + "-99999999999999999999", False),
])
def test_bazel_ids(snapshot_id, expected):
    assert is_bazel_id(snapshot_id) is expected

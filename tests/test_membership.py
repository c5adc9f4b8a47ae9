"""Cluster membership: update diffing, the ps discovery regex, fixed, watched-file and local (ps) clusters."""

import os
import random
import sys
import time

import gevent
import gevent.event
import gevent.queue
import pytest

from scootpy.sched.cluster import NodeUpdate, diff_nodes, parse_ps, process_pattern, ps_fetch
from scootpy.sched.cluster import local
from scootpy.sched.cluster.local import local_membership
from scootpy.sched.cluster.memberfile import MemberFile, file_membership, parse_members
from scootpy.sched.cluster.membership import ADD, REMOVE, Membership, fixed
from tests.procs import free_port

pytestmark = pytest.mark.timeout(60)

WORKERS = process_pattern("workerserver", "thrift_addr")


def add(node_id):
    return NodeUpdate(ADD, node_id)


def remove(node_id):
    return NodeUpdate(REMOVE, node_id)


class Collector:
    """An on_change subscriber that queues every batch it gets."""

    def __init__(self):
        self.batches = gevent.queue.Queue()

    def __call__(self, updates):
        self.batches.put(list(updates))

    def next(self, timeout=10.0):
        return self.batches.get(timeout=timeout)

    def until(self, predicate, timeout=10.0):
        """Batches until one satisfies ``predicate``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            batch = self.batches.get(timeout=max(0.0, deadline - time.monotonic()))
            if predicate(batch):
                return batch


# --- updates -------------------------------------------------------------------------------------------------

def test_node_update_kind_is_checked():
    assert NodeUpdate("add", "h:1") == add("h:1")
    with pytest.raises(ValueError, match="kind"):
        NodeUpdate("added", "h:1")


def test_diff_lists_sorted_adds_then_sorted_removes():
    assert diff_nodes(["b:1", "d:1", "c:1"], ["e:1", "a:1", "c:1"]) == [
        add("a:1"), add("e:1"), remove("b:1"), remove("d:1")]
    assert diff_nodes(["a:1"], ["a:1"]) == []
    assert diff_nodes([], []) == []


def test_diff_sorts_like_go_strings():
    assert [u.node_id for u in diff_nodes([], ["inmemory10", "inmemory2", "inmemory1"])] == [
        "inmemory1", "inmemory10", "inmemory2"]


def test_diff_applied_to_old_gives_new_for_random_sets():
    rng = random.Random(5)
    pool = [f"10.0.0.{i}:{p}" for i in range(12) for p in (1, 10101)]
    for _ in range(300):
        old, new = set(rng.sample(pool, rng.randint(0, 10))), set(rng.sample(pool, rng.randint(0, 10)))
        updates = diff_nodes(old, new)
        adds = [u.node_id for u in updates if u.kind == ADD]
        removes = [u.node_id for u in updates if u.kind == REMOVE]
        assert updates == [add(n) for n in adds] + [remove(n) for n in removes]  # adds first
        assert adds == sorted(adds) and removes == sorted(removes)
        assert (old | set(adds)) - set(removes) == new
        assert not set(adds) & old and set(removes) <= old


# --- the ps regex ----------------------------------------------------------------------------------------------

REFERENCE_PS = """
77595   ??  S      0:00.38 /usr/libexec/USBAgent
73170 s004  T      0:01.54 emacs -nw scoot.rb
79003 s004  S+     0:00.02 ./workerserver -thrift_addr localhost:9876
79004 s004  S+     0:00.02 ./workerserver -thrift_addr localhost:9877
 8440 s005  Ss     0:01.58 /bin/bash
"""


def test_reference_fetcher_sample():
    assert parse_ps(REFERENCE_PS, WORKERS) == ["localhost:9876", "localhost:9877"]


def test_reference_single_line():
    line = "79003 s004 S+ 0:00.02 ./workerserver -thrift_addr localhost:9876"
    assert parse_ps(line, WORKERS) == ["localhost:9876"]


@pytest.mark.parametrize("line, found", [
    ("1 ? S 0:00 workerserver -thrift_addr=localhost:10101 -http_addr localhost:10100", ["localhost:10101"]),
    ("1 ? S 0:00 workerserver --thrift_addr   127.0.0.1:5", ["127.0.0.1:5"]),
    ("1 ? S 0:00 /venv/bin/python /venv/bin/workerserver -thrift_addr localhost:1", ["localhost:1"]),
    ("1 ? S 0:00 python -m scootpy.workerserver.main -thrift_addr h:2", ["h:2"]),
    # the greedy .* makes the last thrift_addr on the line win
    ("1 ? S 0:00 workerserver -thrift_addr a:1 -other thrift_addr=b:2", ["b:2"]),
    # flag before the process name, or no flag at all: invisible
    ("1 ? S 0:00 -thrift_addr a:1 workerserver", []),
    ("1 ? S 0:00 ./workerserver -http_addr localhost:10100", []),
    ("1 ? S 0:00 ./apiserver -thrift_addr localhost:1", []),
    # thrift_addr must be followed by spaces or "="
    ("1 ? S 0:00 workerserver -thrift_addrX a:1", []),
    # an empty capture is not a node
    ("1 ? S 0:00 workerserver -thrift_addr=", []),
])
def test_ps_line_cases(line, found):
    assert parse_ps(line, WORKERS) == found


def test_pattern_for_other_peers():
    line = "42 ? S 0:00 apiserver -http_addr localhost:11100 -grpc_addr localhost:12100"
    assert parse_ps(line, process_pattern("apiserver", "http_addr")) == ["localhost:11100"]
    assert parse_ps(line, process_pattern("apiserver", "grpc_addr")) == ["localhost:12100"]


# --- the Membership actor ----------------------------------------------------------------------------------------

class Script:
    """A fetch function that returns the given sets in turn (None = fetch failed), then the last one forever."""

    def __init__(self, *sets):
        self.sets = list(sets)

    def __call__(self):
        return self.sets.pop(0) if len(self.sets) > 1 else self.sets[0]


def test_step_delivers_initial_set_then_changes_only():
    got = Collector()
    m = Membership(Script([], ["b:1", "a:1"], ["a:1", "b:1"], None, ["c:1", "a:1"]), 1.0, "test")
    m._on_change = got
    assert m.step() == []
    assert got.next(0) == []  # the initial (empty) set is delivered once
    assert m.step() == [add("a:1"), add("b:1")]
    assert m.step() == []  # same set, nothing delivered
    assert m.step() == []  # fetch failed: nothing changes
    assert m.nodes() == ["a:1", "b:1"]
    assert m.step() == [add("c:1"), remove("b:1")]
    assert m.nodes() == ["a:1", "c:1"]
    assert [got.next(0) for _ in range(2)] == [[add("a:1"), add("b:1")], [add("c:1"), remove("b:1")]]
    assert got.batches.empty()


def test_duplicates_in_a_fetch_are_one_node():
    m = Membership(Script(["a:1", "a:1", "b:1"]), None, "test")
    assert m.step() == [add("a:1"), add("b:1")]


def test_failed_delivery_is_offered_again():
    calls = []

    def flaky(updates):
        calls.append(updates)
        if len(calls) == 1:
            raise RuntimeError("subscriber busy")

    m = Membership(Script(["a:1"]), 0.01, "test")
    m.start(flaky)
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 2 and time.monotonic() < deadline:
            gevent.sleep(0.01)
    finally:
        m.stop()
    assert calls[:2] == [[add("a:1")], [add("a:1")]]
    assert m.nodes() == ["a:1"]


def test_fixed_membership_delivers_once_and_stops():
    got = Collector()
    m = fixed(["inmemory1", "inmemory0"], "memory")
    m.start(got)
    assert got.next() == [add("inmemory0"), add("inmemory1")]
    gevent.sleep(0.05)
    assert got.batches.empty()
    assert m.nodes() == ["inmemory0", "inmemory1"]
    m.stop()
    with pytest.raises(RuntimeError):
        m.start(got)


def test_stop_ends_delivery():
    got = Collector()
    sets = Script(["a:1"], ["a:1", "b:1"])
    m = Membership(sets, 0.01, "test")
    m.start(got)
    assert got.next() == [add("a:1")]
    m.stop()
    sets.sets = [["a:1", "b:1", "c:1"]]
    gevent.sleep(0.05)
    assert all(batch != [add("c:1")] for batch in list(got.batches.queue))


def test_stop_lets_a_delivery_in_progress_finish():
    finished = []
    entered = gevent.event.Event()

    def slow(updates):
        entered.set()
        gevent.sleep(0.05)
        finished.append(updates)

    m = fixed(["a:1"], "static")
    m.start(slow)
    assert entered.wait(5)
    m.stop()
    assert finished == [[add("a:1")]]


# --- the membership file -----------------------------------------------------------------------------------------

def test_parse_members_skips_comments_blanks_and_bad_lines(caplog):
    text = ("# workers\n\nb.example:9092  # rack 2\n  a.example:9092\n10.0.0.1:1\n[::1]:9092\n"
            "a.example:9092\nnot-an-address\nh:0\nh:65536\nh:12x\nh :1\n:9092\nh:1,g:2\n")
    assert parse_members(text, "members.txt") == ["10.0.0.1:1", "[::1]:9092", "a.example:9092", "b.example:9092"]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 7
    assert "members.txt line 8 skipped" in skipped[0]


def write_atomically(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def test_member_file_follows_edits(tmp_path):
    path = tmp_path / "members.txt"
    fetch = MemberFile(str(path))
    assert fetch() == []  # missing: no workers
    path.write_text("w1:1\n")
    assert fetch() == ["w1:1"]
    write_atomically(path, "w1:1\nw2:2\n")
    assert fetch() == ["w1:1", "w2:2"]
    with open(path, "w") as f:  # in place, same size, within the same second
        f.write("w1:1\nw3:2\n")
    assert fetch() == ["w1:1", "w3:2"]
    path.unlink()
    assert fetch() == []


def test_member_file_unreadable_keeps_the_set_and_warns_once(tmp_path, caplog):
    path = tmp_path / "members.txt"
    path.write_text("w1:1\n")
    fetch = MemberFile(str(path))
    assert fetch() == ["w1:1"]
    path.unlink()
    path.mkdir()  # now a directory: cannot be read
    assert fetch() == ["w1:1"]
    assert fetch() == ["w1:1"]
    assert len([r for r in caplog.records if "keeping 1 workers" in r.getMessage()]) == 1
    path.rmdir()
    assert fetch() == []
    assert fetch() == []
    assert len([r for r in caplog.records if "does not exist" in r.getMessage()]) == 1


def test_member_file_with_crlf_and_byte_order_mark(tmp_path):
    path = tmp_path / "members.txt"
    path.write_bytes(b"\xef\xbb\xbfw1:1\r\nw2:2\r\n")
    assert MemberFile(str(path))() == ["w1:1", "w2:2"]


def test_member_file_size_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr("scootpy.sched.cluster.memberfile.MAX_FILE_BYTES", 20)
    path = tmp_path / "members.txt"
    path.write_text("a:1\nb:2\nc:3\nd:4\neeeeeeeee:5\nf:6\n")
    assert MemberFile(str(path))() == ["a:1", "b:2", "c:3", "d:4"]


def test_file_membership_workers_join_and_leave(tmp_path):
    path = tmp_path / "members.txt"
    got = Collector()
    m = file_membership(str(path), interval=0.02)
    m.start(got)
    try:
        assert got.next() == []  # file missing: initial set empty
        write_atomically(path, "# two workers\nw1:10101\nw2:10101\n")
        assert got.next() == [add("w1:10101"), add("w2:10101")]
        write_atomically(path, "w2:10101\nbogus line\nw3:10101\n")
        assert got.next() == [add("w3:10101"), remove("w1:10101")]
        write_atomically(path, "w2:10101\nw3:10101\n# comment only changes\n")
        path.unlink()
        assert got.until(lambda b: b != []) == [remove("w2:10101"), remove("w3:10101")]
        assert m.nodes() == []
    finally:
        m.stop()


# --- local discovery with ps -------------------------------------------------------------------------------------

def test_local_membership_finds_a_real_process_and_loses_it(procs):
    node_id = f"127.0.0.1:{free_port()}"
    proc = procs.start([sys.executable, "-c", "import time; time.sleep(60)",
                        "workerserver", "-thrift_addr", node_id])
    got = Collector()
    m = local_membership(interval=0.1)
    m.start(got)
    try:
        got.until(lambda b: add(node_id) in b)
        assert node_id in m.nodes()
        assert node_id in ps_fetch("workerserver", "thrift_addr")
        procs.stop(proc)
        got.until(lambda b: remove(node_id) in b)
        assert node_id not in m.nodes()
    finally:
        m.stop()


def test_proc_and_ps_see_the_same_command_line(procs):
    node_id = f"127.0.0.1:{free_port()}"
    procs.start([sys.executable, "-c", "import time; time.sleep(60)", "line\nbreak\ttab",
                 "workerserver", "-thrift_addr", node_id])
    deadline = time.monotonic() + 10
    while not any(node_id in line for line in local.proc_command_lines()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    [from_proc] = [line for line in local.proc_command_lines() if node_id in line]
    [from_ps] = [line for line in local.ps_command_lines() if node_id in line]
    assert from_proc.endswith("line break?tab workerserver -thrift_addr " + node_id)
    assert from_ps.endswith(from_proc)  # ps adds PID, TTY, STAT and TIME in front
    assert parse_ps(from_ps, WORKERS) == parse_ps(from_proc, WORKERS) == [node_id]


def test_without_proc_ps_is_used(procs, monkeypatch, tmp_path):
    node_id = f"127.0.0.1:{free_port()}"
    procs.start([sys.executable, "-c", "import time; time.sleep(60)", "workerserver", "-thrift_addr", node_id])
    monkeypatch.setattr(local, "PROC", str(tmp_path / "no-proc"))
    deadline = time.monotonic() + 10
    while node_id not in ps_fetch("workerserver", "thrift_addr"):
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_ps_missing_or_failing_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "PROC", str(tmp_path / "no-proc"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ps_fetch("workerserver", "thrift_addr") is None  # no ps at all
    failing = tmp_path / "ps"
    failing.write_text("#!/bin/sh\necho '1 ? S 0:00 workerserver -thrift_addr a:1'\nexit 1\n")
    failing.chmod(0o755)
    assert ps_fetch("workerserver", "thrift_addr") is None  # ps failed: its output is not trusted
    m = local_membership(interval=1.0)
    assert m.step() == []
    assert m.nodes() == []

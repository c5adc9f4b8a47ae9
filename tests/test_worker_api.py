"""The Worker Thrift API of a real ``workerserver`` process: spec/worker.md §11 worked examples, the §9
scenarios, the RunStatus shapes of the golden fixtures, and bad input."""

import time
import urllib.request

import gevent
import gevent.event
import pytest

from scootpy.idl import worker
from tests.test_worker_support import (FIXTURE_SNAPSHOT, command, current_run, fields, fixture_runstatus,
                                       present, run_and_wait, start_worker, wait_state)

S = worker.Status
Q_FULL = "No resources available. Please try later."
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def w(procs, tmp_path):
    return start_worker(procs, tmp_path)


@pytest.fixture
def client(w):
    with w.client() as c:
        yield c


def test_example_a_sim_sleep_then_complete(w, client):
    assert client.QueryWorker() == worker.WorkerStatus(runs=[], initialized=True, error="")
    reply = client.Run(command(["#! sim execer", "sleep 100", "complete 0"], jobId="j", taskId="t", tag="g"))
    assert reply == worker.RunStatus(status=S.PENDING, runId="0", exitCode=0)
    running = wait_state(client, "0", {S.RUNNING})
    assert running.outUri.startswith(f"http://{w.http_addr}/output//0-stdout?file=file://")
    assert running.errUri.startswith(f"http://{w.http_addr}/output//0-stderr?file=file://")
    assert (running.jobId, running.taskId, running.tag, running.exitCode) == ("j", "t", "g", 0)
    assert running.snapshotId is None and running.error is None
    done = wait_state(client, "0")
    assert done.status == S.COMPLETE and done.exitCode == 0 and done.error is None
    assert (done.outUri, done.errUri) == (running.outUri, running.errUri)
    tree = done.snapshotId.split("-")[2]
    assert done.snapshotId == f"bs-fs-{tree}--{tree}"
    second = client.Run(command(["#! sim execer", "complete 0"]))
    assert second.runId == "1"
    assert [r.runId for r in client.QueryWorker().runs] == ["1"]


def test_example_b_input_snapshot_refs(client):
    done = run_and_wait(client, argv=["sh", "-c", "ls src; ./run.sh x"], snapshotId=FIXTURE_SNAPSHOT)
    assert done.status == S.COMPLETE and done.exitCode == 0
    assert done.outUri == f"{done.snapshotId}/STDOUT" and done.errUri == f"{done.snapshotId}/STDERR"


def test_example_c_busy_duplicate_abort_erase(client):
    paused = command(["#! sim execer", "pause"], jobId="j", taskId="t", tag="g")
    assert client.Run(paused).runId == "0"
    wait_state(client, "0", {S.RUNNING})
    busy = client.Run(command(["true"]))
    assert busy == worker.RunStatus(status=S.FAILED, runId="", error=Q_FULL, exitCode=0)
    again = client.Run(paused)
    assert again.status == S.RUNNING and again.runId == "0" and again.outUri
    aborted = client.Abort("0")
    assert aborted.status == S.ABORTED and aborted.runId == "0" and aborted.exitCode == 0
    assert aborted.outUri == again.outUri and aborted.error is None and aborted.tag == "g"
    assert client.Abort("0") == aborted
    assert client.Abort("7") == worker.RunStatus(status=S.UNKNOWN, runId="7", error="unknown run id 7", exitCode=0)
    assert client.Erase("0") is None
    assert client.QueryWorker().runs == []
    assert client.Abort("0").status == S.UNKNOWN


def test_example_d_exit_codes_and_failures(client):
    assert run_and_wait(client, argv=["sh", "-c", "exit 3"]).exitCode == 3
    missing = run_and_wait(client, argv=["nosuchbinary"])
    assert (missing.status, missing.exitCode) == (S.FAILED, 240)
    assert missing.error == 'could not exec: exec: "nosuchbinary": executable file not found in $PATH'
    assert missing.outUri is None
    absent = run_and_wait(client, argv=["/nonexistent/no-such-binary", "--flag"])
    assert absent.error == "could not exec: fork/exec /nonexistent/no-such-binary: no such file or directory"
    bad_snap = run_and_wait(client, argv=["x"], snapshotId="dummySnapshotId")
    assert (bad_snap.status, bad_snap.exitCode) == (S.FAILED, 210)
    assert bad_snap.error == "could not determine backend and kind in ID dummySnapshotId"
    started = time.monotonic()
    timed = run_and_wait(client, argv=["sleep", "100"], timeoutMs=500)
    assert timed.status == S.TIMEDOUT and timed.exitCode == 0 and timed.snapshotId is None
    assert time.monotonic() - started < 5
    empty = run_and_wait(client, argv=[])
    assert (empty.status, empty.exitCode, empty.error) == (S.FAILED, 240, "could not exec: No command specified.")


def test_signal_death_is_complete_minus_one(client):
    done = run_and_wait(client, argv=["sh", "-c", "kill -9 $$"])
    assert (done.status, done.exitCode) == (S.COMPLETE, -1)


def test_sim_runner_language(client):
    assert run_and_wait(client, argv=["#! sim execer", "complete 42"]).exitCode == 42
    assert run_and_wait(client, argv=["#! sim execer", "complete 4294967297"]).exitCode == 1
    assert run_and_wait(client, argv=["#! sim execer", "complete -7"]).exitCode == -7
    assert run_and_wait(client, argv=["#! sim execer", "sleep 1", "complete 5"]).exitCode == 0
    bad = run_and_wait(client, argv=["#! sim execer", "complete x"])
    assert bad.error == 'could not exec: error parsing <n> in complete <n>:strconv.Atoi: parsing "x": invalid syntax'
    odd = run_and_wait(client, argv=["#! sim execer", "jump 3"])
    assert (odd.exitCode, odd.error) == (240, "could not exec: can't simulate arg: jump 3")
    timed = run_and_wait(client, argv=["#! sim execer", "pause"], timeoutMs=50)
    assert timed.status == S.TIMEDOUT


def test_abort_of_running_process_is_final_when_abort_returns(client):
    reply = client.Run(command(["sh", "-c", "echo before abort; exec sleep 30"]))
    wait_state(client, reply.runId, {S.RUNNING})
    started = time.monotonic()
    aborted = client.Abort(reply.runId)
    assert aborted.status == S.ABORTED
    assert time.monotonic() - started < 5
    assert current_run(client, reply.runId).status == S.ABORTED


def test_bazel_requests_fail_with_200(client):
    bz = "bz-" + "a" * 64 + "-12"
    done = run_and_wait(client, argv=["true"], snapshotId=bz)
    assert (done.status, done.exitCode) == (S.FAILED, 200)
    assert done.error == "Invoker does not have filer for command of RunType: Bazel"


@pytest.mark.parametrize("snapshot, error", [
    ("bs-fs-abc", "cannot parse snapshot ID: expected 5 parts in bundlestore id: bs-fs-abc"),
    ("bs-xx-a-b-" + "0" * 40, "invalid kind: xx"),
    ("bs-fs-k--short", "sha not 40 characters: short"),
    ("zz-fs-" + "0" * 40, "unrecognized snapshot backend zz in ID zz-fs-" + "0" * 40),
])
def test_malformed_snapshot_ids_fail_210(client, snapshot, error):
    done = run_and_wait(client, argv=["true"], snapshotId=snapshot)
    assert (done.status, done.exitCode, done.error) == (S.FAILED, 210, error)
    assert run_and_wait(client, argv=["true"]).status == S.COMPLETE


def test_unknown_snapshot_fails_and_worker_stays_usable(client):
    missing = "bs-fs-" + "1" * 40 + "--" + "1" * 40
    done = run_and_wait(client, argv=["true"], snapshotId=missing)
    assert done.status == S.FAILED and done.exitCode == 210 and "not found" in done.error
    assert run_and_wait(client, argv=["true"]).status == S.COMPLETE


def test_bogus_run_ids(client):
    for bogus in ["", "-1", "x" * 1000, "0 ", "\u00e9"]:
        reply = client.Abort(bogus)
        assert (reply.status, reply.runId, reply.error) == (S.UNKNOWN, bogus, f"unknown run id {bogus}")
        assert client.Erase(bogus) is None


def test_erase_ignores_running_runs(client):
    reply = client.Run(command(["#! sim execer", "pause"]))
    wait_state(client, reply.runId, {S.RUNNING})
    client.Erase(reply.runId)
    assert current_run(client, reply.runId).status == S.RUNNING
    client.Abort(reply.runId)


def test_fixture_shapes_pending_running_complete(client):
    golden = fixture_runstatus()["stdout_stderr_exit0_no_snapshot"]
    cmd = golden["command"]
    cmd["argv"] = ["sh", "-c", "echo out line 1; echo err line 1 >&2; sleep 0.3; echo out line 2; exit 0"]
    reply = client.Run(worker.RunCommand(**cmd))
    assert fields(reply) == dict(golden["run_reply"], runId=reply.runId)
    seen = {}
    while True:
        run = current_run(client, reply.runId)
        seen.setdefault(fields(run)["status"], fields(run))
        if run.status in (S.COMPLETE, S.FAILED):
            break
        time.sleep(0.002)
    for step in golden["query_worker_sequence"]:
        want = step["query_worker_run"]
        if want["status"] == "PENDING" and "PENDING" not in seen:
            continue  # too short-lived to be polled; Run's own reply showed the PENDING shape
        got = seen[want["status"]]
        assert present(got) == present(want), want["status"]
        assert (got["jobId"], got["taskId"], got["tag"], got["exitCode"]) == \
            (want["jobId"], want["taskId"], want["tag"], want["exitCode"])


def test_fixture_shapes_timeout_and_abort(client):
    golden = fixture_runstatus()
    timed = run_and_wait(client, **golden["timeout_500ms_sleep_5"]["command"])
    assert present(fields(timed)) == present(golden["timeout_500ms_sleep_5"]["query_worker_sequence"][-1]
                                             ["query_worker_run"])
    reply = client.Run(worker.RunCommand(**golden["aborted_sleep_30"]["command"]))
    wait_state(client, reply.runId, {S.RUNNING})
    aborted = fields(client.Abort(reply.runId))
    want = golden["aborted_sleep_30"]["abort_reply"]
    assert present(aborted) == present(want) and aborted["tag"] == want["tag"]
    assert present(fields(client.Abort("12345"))) == present(golden["abort_unknown_run_id"])


def test_query_worker_answers_while_runs_start(w, client):
    """QueryWorker on another connection keeps answering within milliseconds while runs start and end."""
    slowest = []

    def query_loop(stop):
        with w.client() as other:
            while not stop.is_set():
                t = time.monotonic()
                other.QueryWorker()
                slowest.append(time.monotonic() - t)
                gevent.sleep(0.001)

    stop = gevent.event.Event()
    g = gevent.spawn(query_loop, stop)
    for argv in (["true"], ["sleep", "0.5"], ["true"], ["sleep", "0.5"]):
        assert run_and_wait(client, argv=argv).status == S.COMPLETE
    stop.set()
    g.join()
    assert len(slowest) > 10
    # A worker that blocked while a command starts or runs would make most queries wait ~0.5 s.
    assert sorted(slowest)[len(slowest) // 2] < 0.25


def test_run_command_missing_optional_fields(client):
    reply = client.Run(worker.RunCommand(argv=["true"]))
    assert reply.status == S.PENDING
    assert wait_state(client, reply.runId).status == S.COMPLETE


def test_bazel_request_field_gets_200(client):
    from scootpy.idl import bazel
    reply = client.Run(worker.RunCommand(argv=["true"], bazelRequest=bazel.ExecuteRequest()))
    done = wait_state(client, reply.runId)
    assert (done.status, done.exitCode) == (S.FAILED, 200)


def test_run_without_a_command_fails_cleanly(client):
    reply = client.Run(None)
    assert reply.status == S.PENDING
    done = wait_state(client, reply.runId)
    assert (done.status, done.exitCode, done.error) == (S.FAILED, 240, "could not exec: No command specified.")
    assert client.Abort(None).status == S.UNKNOWN


GC_SNAPSHOT = "bs-gc-bb1b4f4b2df5dac71faa65ecaf89a145e50855a5--bb1b4f4b2df5dac71faa65ecaf89a145e50855a5"


def test_git_commit_snapshot_runs_twice(w, client):
    for _ in range(2):
        done = run_and_wait(client, argv=["sh", "-c", "cat hello.txt; ./sub/run.sh; touch scratch"],
                            snapshotId=GC_SNAPSHOT)
        assert (done.status, done.exitCode) == (S.COMPLETE, 0)
        assert done.outUri == f"{done.snapshotId}/STDOUT"
    with urllib.request.urlopen(f"http://{w.http_addr}/output/{done.runId}-stdout?content=true", timeout=10) as r:
        assert r.read().endswith(b"SCOOT_CMD_LOG\nhello gc snapshot\ngc\n")


def test_spec9_single_runner_scenarios(client):
    """runner/runners/single_test.go and polling_test.go, over Thrift."""
    assert run_and_wait(client, argv=["#! sim execer", "complete 0"]).exitCode == 0
    done = run_and_wait(client, argv=["#! sim execer", "complete 1"])
    assert (done.status, done.exitCode) == (S.COMPLETE, 1)
    assert [r.runId for r in client.QueryWorker().runs] == [done.runId]
    out = run_and_wait(client, argv=["sh", "-c", "echo hello world; echo hello err >&2"])
    for uri, text in ((out.outUri, b"hello world\n"), (out.errUri, b"hello err\n")):
        with urllib.request.urlopen(uri.replace("?file=", "?content=true&file="), timeout=10) as resp:
            assert resp.read().endswith(b"SCOOT_CMD_LOG\n" + text)
    assert run_and_wait(client, argv=["#! sim execer", "sleep 1000"], timeoutMs=20).status == S.TIMEDOUT

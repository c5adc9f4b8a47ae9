"""``workerserver`` process flags and startup, the Go text helpers, and the run-status bookkeeping."""

import json
import subprocess
from pathlib import Path
import time
import urllib.error
import urllib.request

import gevent
import pytest

from scootpy.idl import worker
from scootpy.metrics import Registry
from scootpy.runs import RunCommand, RunState, RunStatus
from scootpy.workerserver.gotext import (command_string, go_duration_ms, go_duration_ns, go_quote, go_time_now,
                                         run_status_string, worker_status_string)
from scootpy.workerserver.runqueue import RunQueue
from scootpy.workerserver.statuses import StatusManager
from tests.procs import binary, free_port
from tests.test_worker_support import FIXTURE_SNAPSHOT, command, run_and_wait, start_worker

pytestmark = pytest.mark.timeout(60)


def run_worker(tmp_path, *args, timeout=20):
    return subprocess.run([binary("workerserver"), "-thrift_addr", f"127.0.0.1:{free_port()}", "-http_addr",
                           f"127.0.0.1:{free_port()}", *args], capture_output=True, text=True, timeout=timeout,
                          env={"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})


def test_bad_log_level_returns_without_serving(tmp_path):
    done = run_worker(tmp_path, "-log_level", "loud")
    assert done.returncode == 0 and "not a valid logrus Level" in done.stderr


@pytest.mark.parametrize("config, text", [
    ("nope.nope", "Scheduler: Error Loading Config File config/nope.nope: Asset config/nope.nope not found"),
    ("[]", "Error configuring Worker: Couldn't parse top-level config: json: cannot unmarshal array into Go"),
    ("{garbage", "Error configuring Worker: Couldn't parse top-level config:"),
])
def test_bad_config_is_fatal(tmp_path, config, text):
    done = run_worker(tmp_path, "-config", config)
    assert done.returncode == 1 and text in done.stderr


@pytest.mark.parametrize("args, text", [
    (["-no_such_flag"], "flag provided but not defined: -no_such_flag"),
    (["-mem_cap", "-1"], 'invalid value "-1" for flag -mem_cap'),
    (["-mem_cap", "lots"], 'invalid value "lots" for flag -mem_cap'),
])
def test_bad_flags_exit_2(tmp_path, args, text):
    done = run_worker(tmp_path, *args)
    assert done.returncode == 2 and text in done.stderr


def test_reference_flags_accepted(procs, tmp_path):
    w = start_worker(procs, tmp_path, "-config", 'local.local.{"x": {"y": 1}}', "-repo", "",
                     "-cas_addr", "localhost:12100", "--mem_cap=0")
    with w.client() as c:
        assert c.QueryWorker().initialized
    assert "-cas_addr is accepted for compatibility and ignored" in w.log.read_text()


def test_go_text_helpers():
    assert go_quote('a "b"\n\x01é') == '"a \\"b\\"\\n\\x01é"'
    assert [go_duration_ms(ms) for ms in (0, 20, 500, 1000, 1500, 60000, 90500, 3600000, -500)] == \
        ["0s", "20ms", "500ms", "1s", "1.5s", "1m0s", "1m30.5s", "1h0m0s", "-500ms"]
    assert go_duration_ns(1500) == "1.5µs" and go_duration_ns(1_500_000) == "1.5ms"
    assert " +0000 UTC m=+" in go_time_now() or " m=+" in go_time_now()
    cmd = RunCommand(argv=["sh", "-c", "x"], env={"A": "1", "B": "2"}, snapshot_id="s", timeout_ms=20,
                     job_id="j", task_id="t", tag="g")
    assert command_string(cmd) == ('runner.Command -- SnapshotID: s # Argv: ["sh" "-c" "x"] # Timeout: 20ms'
                                   ' # JobID: j # TaskID: t # Tag: g # Env:  A=1  B=2')


def test_run_status_strings():
    assert run_status_string(RunStatus(RunState.UNKNOWN, run_id="9", error="unknown run id 9")) == \
        "RunStatus -- RunID: 9 # State: UNKNOWN # JobID:  # TaskID:  # Tag: "
    assert run_status_string(RunStatus(RunState.FAILED, error="e", exit_code=240)) == \
        "RunStatus -- RunID:  # State: FAILED # JobID:  # TaskID:  # Tag:  # ExitCode: 240 # Error: e"
    done = RunStatus(RunState.COMPLETE, run_id="0", out_uri="o", err_uri="e", snapshot_id="s")
    assert run_status_string(done) == ("RunStatus -- RunID: 0 # State: COMPLETE # JobID:  # TaskID:  # Tag:  "
                                       "# Stdout: o # Stderr: e # SnapshotID: s # ExitCode: 0 # Error: ")
    assert worker_status_string([], True, "") == "{[] true }"


def test_status_manager_rules():
    sm = StatusManager(history=1)
    first = sm.new_run()
    assert (first.run_id, first.state) == ("0", RunState.PENDING)
    sm.update(RunStatus(RunState.RUNNING, run_id="0", out_uri="o", err_uri="e"))
    sm.update(RunStatus(RunState.ABORTED, run_id="0"))
    assert sm.get("0") == RunStatus(RunState.ABORTED, run_id="0", out_uri="o", err_uri="e")
    sm.update(RunStatus(RunState.COMPLETE, run_id="0"))
    assert sm.get("0").state == RunState.ABORTED
    assert sm.wait_done("0", 0).state == RunState.ABORTED
    second = sm.new_run()
    assert second.run_id == "1" and sm.get("0") is None and [s.run_id for s in sm.all()] == ["1"]
    sm.erase("1")
    assert sm.get("1") is not None
    sm.update(RunStatus(RunState.FAILED, run_id="1", exit_code=240))
    sm.erase("1")
    assert sm.all() == []
    sm.update(RunStatus(RunState.RUNNING, run_id="7"))
    assert sm.get("7") is None


def test_failed_initialization_refuses_runs(procs, tmp_path):
    bad_config = tmp_path / "broken-gitconfig"
    bad_config.write_text("[core\n")
    w = start_worker(procs, tmp_path, wait_ready=False, env={"GIT_CONFIG_GLOBAL": str(bad_config)})
    with w.client() as c:
        time.sleep(0.5)
        assert c.QueryWorker() == worker.WorkerStatus(runs=[], initialized=False, error="")
        assert c.Run(command(["true"])) == worker.RunStatus(
            status=worker.Status.FAILED, runId="", error="Queue is still initializing. Please try later.", exitCode=0)


def test_stats_count_downloads_uploads_and_task_latency(procs, tmp_path):
    w = start_worker(procs, tmp_path)
    with w.client() as c:
        run_and_wait(c, argv=["#! sim execer", "sleep 50", "complete 0"], snapshotId=FIXTURE_SNAPSHOT)
    with urllib.request.urlopen(f"http://{w.http_addr}/admin/metrics.json", timeout=10) as resp:
        stats = json.loads(resp.read())
    assert stats["workerserver/workerDownloads"] == 1 and stats["workerserver/workerUploads"] == 1
    assert stats["workerserver/workerTaskLatency_ms.max"] > 50
    assert stats["workerserver/handler/runs"] == 1


class FinalOnly:
    """An invoker stand-in that ends each run at once with a given status."""

    def __init__(self, finals):
        self.finals = list(finals)

    def run(self, run_id, cmd, abort, publish, bazel=False):
        return RunStatus(run_id=run_id, **self.finals.pop(0))


def test_two_clean_failures_in_a_row_stop_the_worker():
    fatal = []
    finals = [dict(state=RunState.FAILED, exit_code=211), dict(state=RunState.COMPLETE, exit_code=211),
              dict(state=RunState.COMPLETE, exit_code=211), dict(state=RunState.FAILED, exit_code=211),
              dict(state=RunState.FAILED, exit_code=211)]
    queue = RunQueue(FinalOnly(finals), Registry("test"), on_fatal=lambda: fatal.append(True))
    queue.set_initialized()
    for i in range(5):
        run_id = queue.run(RunCommand(argv=[str(i)])).run_id
        assert queue.statuses.wait_done(run_id, 5).state.is_done
        gevent.sleep(0)
        assert fatal == ([True] if i == 4 else []), i


def test_allow_from_refuses_other_peers(procs, tmp_path):
    w = start_worker(procs, tmp_path, "-allow_from", "10.1.2.0/24", wait_ready=False)
    with w.client(timeout=5) as c:
        with pytest.raises(Exception):
            c.QueryWorker()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://{w.http_addr}/health", timeout=5)
    assert refused.value.code == 403
    done = run_worker(tmp_path, "-allow_from", "not-a-network")
    assert done.returncode == 1 and "invalid -allow_from entry" in done.stderr


def test_abort_before_the_run_starts_runs_nothing(tmp_path):
    from scootpy.workerserver.execer.os import OsExecer
    from scootpy.workerserver.filer import Filer
    from scootpy.workerserver.invoker import Invoker
    from scootpy.workerserver.outputs import OutputCreator

    invoker = Invoker(Filer(str(tmp_path)), OutputCreator(str(tmp_path / "out")), OsExecer(), Registry("t"))
    queue = RunQueue(invoker, Registry("t"))
    queue.set_initialized()
    marker = tmp_path / "ran"
    run_id = queue.run(RunCommand(argv=["touch", str(marker)])).run_id
    assert queue.abort(run_id).state == RunState.ABORTED
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_output_files_are_bounded(tmp_path):
    from scootpy.workerserver.outputs import OutputCreator

    outputs = OutputCreator(str(tmp_path / "out"), "h:1", hostname="box", max_files=3)
    made = [outputs.create(f"{i}-stdout") for i in range(5)]
    for out in made:
        out.close()
    assert made[4].uri == f"http://h:1/output//4-stdout?file=file://box{made[4].path}"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(Path(m.path).name for m in made[2:])
    assert outputs.lookup("1-stdout") is None and outputs.lookup("4-stdout") == made[4].path
    assert outputs.lookup(Path(made[3].path).name) == made[3].path

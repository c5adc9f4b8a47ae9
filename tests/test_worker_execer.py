"""The execers in-process: real processes (exit mapping, env, cwd, abort with grace, process groups, memory
cap, output pumping) and the sim runner's language."""

import os
import time

import gevent
import pytest

from scootpy.workerserver.execer import ExecError, ExecState, InterceptExecer
from scootpy.workerserver.execer import proctree
from scootpy.workerserver.execer.os import OsExecer
from scootpy.workerserver.execer.sim import SimExecer, go_atoi, parse_step
from tests.test_worker_support import group_alive

pytestmark = pytest.mark.timeout(60)


class Capture:
    def __init__(self):
        self.out, self.err = bytearray(), bytearray()

    def start(self, execer, argv, env=None, cwd="/"):
        return execer.exec(argv, env or {}, cwd, self.out.extend, self.err.extend)


def finish(proc, timeout=20):
    assert proc.ended.wait(timeout), "process did not end"
    return proc.result()


def test_true_false_and_output():
    cap = Capture()
    assert finish(cap.start(OsExecer(), ["true"])).exit_code == 0
    status = finish(cap.start(OsExecer(), ["false"]))
    assert (status.state, status.exit_code) == (ExecState.COMPLETE, 1)
    finish(cap.start(OsExecer(), ["sh", "-c", "echo -n out; echo -n err >&2"]))
    assert (bytes(cap.out), bytes(cap.err)) == (b"out", b"err")


def test_env_merged_over_worker_env_and_cwd(tmp_path):
    cap = Capture()
    os.environ["SCOOT_TEST_BASE"] = "base"
    try:
        proc = cap.start(OsExecer(), ["sh", "-c", "echo $SCOOT_TEST_BASE $HOME $X; pwd"],
                         env={"X": "y z", "HOME": "/nowhere"}, cwd=str(tmp_path))
        finish(proc)
    finally:
        del os.environ["SCOOT_TEST_BASE"]
    assert bytes(cap.out) == f"base /nowhere y z\n{tmp_path}\n".encode()


def test_relative_command_resolves_in_cwd(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho from script\n")
    script.chmod(0o755)
    cap = Capture()
    finish(cap.start(OsExecer(), ["./run.sh"], cwd=str(tmp_path)))
    assert bytes(cap.out) == b"from script\n"


@pytest.mark.parametrize("argv, text", [
    ([], "No command specified."),
    (["no-such-command-xyz"], 'exec: "no-such-command-xyz": executable file not found in $PATH'),
    (["/nonexistent/bin"], "fork/exec /nonexistent/bin: no such file or directory"),
    (["sh", "-c", "true\0"], "fork/exec /usr/bin/sh: invalid argument"),
])
def test_exec_errors(argv, text):
    with pytest.raises(ExecError) as err:
        Capture().start(OsExecer(), argv)
    assert str(err.value) == text.replace("/usr/bin/sh", str(err.value).split(" ")[1].rstrip(":"))


def test_exec_of_non_executable_file(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("echo hi\n")
    with pytest.raises(ExecError) as err:
        Capture().start(OsExecer(), [str(plain)])
    assert str(err.value) == f"fork/exec {plain}: permission denied"


def test_signal_death_maps_to_minus_one():
    assert finish(Capture().start(OsExecer(), ["sh", "-c", "kill -TERM $$"])).exit_code == -1


def test_abort_sigterm_then_sigkill_kills_whole_group():
    execer = OsExecer(grace=0.5)
    proc = Capture().start(execer, ["sh", "-c", "trap '' TERM; sleep 30 & sleep 30 & echo up; wait"])
    gevent.sleep(0.3)
    assert group_alive(proc.pid, settle=0)
    started = time.monotonic()
    status = proc.abort()
    assert status.state == ExecState.FAILED
    assert 0.4 < time.monotonic() - started < 5
    assert proc.ended.is_set()
    assert not group_alive(proc.pid)


def test_abort_of_process_exiting_on_sigterm_is_prompt_and_leaves_nothing():
    proc = Capture().start(OsExecer(), ["sh", "-c", "sleep 30 & sleep 30"])
    gevent.sleep(0.2)
    started = time.monotonic()
    proc.abort()
    assert time.monotonic() - started < 3
    assert not group_alive(proc.pid)


def test_background_children_keep_run_open_then_group_is_cleaned():
    cap = Capture()
    started = time.monotonic()
    proc = cap.start(OsExecer(), ["sh", "-c", "sleep 0.5 & echo parent done"])
    status = finish(proc)
    assert status.exit_code == 0 and time.monotonic() - started >= 0.45
    quiet = cap.start(OsExecer(), ["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo left one"])
    assert finish(quiet).exit_code == 0
    assert not group_alive(quiet.pid)


def test_memory_cap_kills_the_group():
    cap = Capture()
    execer = OsExecer(mem_cap=40 << 20)
    argv = ["python3", "-c", "import time; x = b'x' * (120 << 20); time.sleep(30)"]
    proc = cap.start(execer, argv)
    status = finish(proc, timeout=15)
    assert (status.state, status.exit_code, status.over_memcap) == (ExecState.COMPLETE, 1, True)
    assert status.error.startswith(f"Cmd exceeded MemoryCap, aborting {proc.pid}: ")
    assert status.error.endswith(f" > {40 << 20} ([python3 -c import time; x = b'x' * (120 << 20); time.sleep(30)])")
    assert not group_alive(proc.pid)


def test_memory_usage_counts_group_and_descendants():
    proc = Capture().start(OsExecer(), ["sh", "-c", "python3 -c 'x = b\"y\" * (30 << 20); import time; "
                                                    "time.sleep(5)' & wait"])
    deadline = time.monotonic() + 10
    usage = 0
    while time.monotonic() < deadline and usage < 30 << 20:
        gevent.sleep(0.05)
        usage = proctree.memory_usage(proc.pid)
    assert usage >= 30 << 20
    proc.abort()


def test_flooding_output_is_streamed_without_starving_the_hub():
    received = [0]
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.005)

    t = gevent.spawn(ticker)
    started = time.monotonic()
    proc = OsExecer().exec(["head", "-c", str(1 << 30), "/dev/zero"], {}, "/",
                           lambda d: received.__setitem__(0, received[0] + len(d)), lambda d: None)
    finish(proc, timeout=30)
    duration = time.monotonic() - started
    t.kill()
    assert received[0] == 1 << 30
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    # A pump that never yielded would leave one gap as long as the whole flood.
    assert len(ticks) > 3 and max(gaps) < max(0.25, duration / 2)


def test_sim_language_parsing():
    assert parse_step("#anything").op == "noop"
    assert parse_step("complete -3").number == -3
    assert parse_step("stdout a b  c").text == "a b  c"
    assert parse_step("pause whatever").op == "pause"
    for bad, text in [("complete", 'error parsing <n> in complete <n>:strconv.Atoi: parsing "": invalid syntax'),
                      ("sleep 1.5", 'error parsing <n> in sleep <n>:strconv.Atoi: parsing "1.5": invalid syntax'),
                      ("complete 99999999999999999999",
                       'error parsing <n> in complete <n>:strconv.Atoi: parsing "99999999999999999999": '
                       'value out of range'),
                      ("stdoutx", "can't simulate arg: stdoutx"), ("", "can't simulate arg: ")]:
        with pytest.raises(ExecError) as err:
            parse_step(bad)
        assert str(err.value) == text
    assert go_atoi("+7") == 7
    with pytest.raises(ValueError):
        go_atoi(" 7")


def test_sim_runs_steps_in_order_and_stops_at_first_end():
    cap = Capture()
    proc = cap.start(SimExecer(), ["#! sim execer", "stdout hi", "stderr oops", "complete 4", "stdout never"])
    status = finish(proc)
    assert (status.exit_code, bytes(cap.out), bytes(cap.err)) == (4, b"hi", b"oops")
    started = time.monotonic()
    assert finish(cap.start(SimExecer(), ["#! sim execer", "sleep 100", "complete 5"])).exit_code == 0
    assert time.monotonic() - started >= 0.09


def test_sim_pause_and_exhausted_steps_run_until_aborted():
    for argv in (["#! sim execer", "pause", "complete 0"], ["#! sim execer", "stdout x"]):
        proc = Capture().start(SimExecer(), argv)
        assert not proc.ended.wait(0.1)
        assert proc.abort().state == ExecState.FAILED
        assert proc.ended.is_set()


def test_intercept_routes_on_exact_marker():
    cap = Capture()
    execer = InterceptExecer(SimExecer(), OsExecer())
    assert finish(cap.start(execer, ["#! sim execer", "complete 9"])).exit_code == 9
    with pytest.raises(ExecError):
        cap.start(execer, ["#! sim execer ", "complete 9"])

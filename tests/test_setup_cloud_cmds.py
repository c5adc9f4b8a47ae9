"""Cmds, the child-process manager of setup-cloud-scoot, with real processes."""

import os
import time

import pytest

from scootpy.client.cmds import Cmds, CmdsError, exit_text


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_each_child_leads_its_own_group_and_kill_stops_all():
    cmds = Cmds(grace=2)
    procs = [cmds.start(["sleep", "30"]) for _ in range(2)]
    assert all(os.getpgid(p.pid) == p.pid for p in procs)
    cmds.kill()
    assert [p.poll() for p in procs] == [-2, -2]  # SIGINT was enough
    with pytest.raises(CmdsError, match="killed; cannot start new cmds"):
        cmds.start(["sleep", "1"])


def test_sigint_ignorers_and_grandchildren_get_sigkill():
    cmds = Cmds(grace=0.5)
    proc = cmds.start(["sh", "-c", "trap '' INT; sleep 30 & echo $! > /dev/null; wait"])
    time.sleep(0.2)
    started = time.monotonic()
    cmds.kill()
    assert proc.poll() == -9 and time.monotonic() - started < 5
    children = os.popen(f"pgrep -g {proc.pid}").read().split()
    assert not [int(c) for c in children if alive(int(c))]


def test_a_child_exiting_kills_the_others():
    cmds = Cmds(grace=2)
    survivor = cmds.start(["sleep", "30"])
    cmds.start(["sh", "-c", "exit 4"])
    assert cmds.child_died.wait(10)
    deadline = time.monotonic() + 10
    while survivor.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert survivor.poll() is not None and cmds.killed


def test_run_returns_the_status_and_exit_texts():
    cmds = Cmds()
    assert cmds.run(["sh", "-c", "exit 3"]) == 3
    assert cmds.run(["true"]) == 0
    assert (exit_text(3), exit_text(-9), exit_text(-2)) == ("exit status 3", "signal: killed", "signal: interrupt")
    with pytest.raises(CmdsError, match="no-such-binary"):
        cmds.run(["/nonexistent/no-such-binary"])

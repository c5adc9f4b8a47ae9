"""``workercl`` against a real worker, replaying the recorded reference session (fixtures cli-output/workercl):
stdout and exit codes exactly, and the log messages on stderr with only the varying values replaced."""

import json
import re
import shlex
import subprocess

import pytest

from tests.procs import FIXTURES, binary
from tests.test_worker_support import start_worker, wait_state

CASES = FIXTURES / "cli-output" / "workercl"
pytestmark = pytest.mark.timeout(120)


def normalize(text: str) -> str:
    """Replace what differs between recordings: addresses, temp paths, random suffixes, tree ids."""
    text = re.sub(r"http://[^/ ]+/output//", "http://ADDR/output//", text)
    text = re.sub(r"file://[^ /]+/\S*?/output/(\d+-std(?:out|err))\d+", r"file://HOST/TMP/output/\1N", text)
    text = re.sub(r"bs-fs-[0-9a-f]{40}--[0-9a-f]{40}", "SNAP", text)
    return re.sub(r"dial tcp \S+: ", "dial tcp ADDR: ", text)


def messages(stderr: str) -> list:
    """The ``msg`` values of logrus lines, unescaped."""
    found = re.findall(r'msg=("(?:[^"\\]|\\.)*"|\S+)', stderr)
    return [normalize(json.loads(m) if m.startswith('"') else m) for m in found]


def run_cli(argv, addr=None):
    if addr is not None and len(argv) > 0 and argv[0] in ("run", "abort", "queryworker") and "--addr" not in argv:
        argv = [argv[0], "--addr", addr] + argv[1:]
    return subprocess.run([binary("workercl")] + argv, capture_output=True, text=True, timeout=60)


def case(name: str):
    cmd = shlex.split((CASES / f"{name}.cmd").read_text())[1:]
    return cmd, (CASES / f"{name}.stdout").read_text(), int((CASES / f"{name}.rc").read_text()), \
        (CASES / f"{name}.stderr").read_text()


def check(name: str, addr=None, extra_wait=None):
    argv, want_out, want_rc, want_err = case(name)
    got = run_cli(argv, addr)
    assert got.stdout == want_out, name
    assert got.returncode == want_rc, name
    assert messages(got.stderr) == messages(want_err), name
    return got


def test_recorded_session(procs, tmp_path):
    w = start_worker(procs, tmp_path)
    with w.client() as c:
        check("01-queryworker-fresh", w.addr)
        check("02-run-echo", w.addr)
        wait_state(c, "0")
        check("03-queryworker-after-run", w.addr)
        check("04-run-with-snapshot-and-timeout", w.addr)
        wait_state(c, "1")
        check("05-queryworker-after-snapshot-run", w.addr)
        check("06-run-sleep", w.addr)
        check("07-run-while-busy", w.addr)
        check("08-abort-running", w.addr)
        check("09-abort-unknown-id", w.addr)
    check("10-queryworker-unreachable")


@pytest.mark.parametrize("name", ["11-no-subcommand", "12-help", "13-run-help"])
def test_usage_cases(name):
    argv, want_out, want_rc, want_err = case(name)
    got = run_cli(argv)
    assert (got.stdout, got.returncode) == (want_out, want_rc)
    if name == "12-help":
        assert got.stderr == want_err


def test_unknown_subcommand_and_flag_exit_1():
    got = run_cli(["bogus"])
    assert got.returncode == 1 and got.stdout == ""
    assert 'Error: unknown command "bogus" for "workercl"' in got.stderr
    got = run_cli(["queryworker", "--nope"])
    assert got.returncode == 1 and "Error: unknown flag: --nope" in got.stderr
    got = run_cli(["run", "--timeout", "soon", "true"])
    assert got.returncode == 1 and 'invalid argument "soon" for "--timeout" flag' in got.stderr


def test_log_level_before_and_after_the_subcommand():
    got = run_cli(["-log_level", "error", "queryworker", "--addr", "127.0.0.1:1"])
    assert got.returncode == 0 and got.stderr == ""
    got = run_cli(["queryworker", "--log_level", "error", "--addr", "127.0.0.1:1"])
    assert got.returncode == 0 and got.stderr == ""
    got = run_cli(["-log_level", "loud", "queryworker"])
    assert got.returncode == 0 and "not a valid logrus Level" in got.stderr

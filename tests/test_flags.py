"""Go ``flag`` dialects: every spelling, stop rules, Go's error texts and exit codes, usage, durations."""

import subprocess
import sys
import textwrap

import pytest

from scootpy.flags import FlagSet, format_duration, go_float, parse_duration
from tests.procs import FIXTURES


def flagset() -> FlagSet:
    fs = FlagSet("prog")
    fs.string("thrift_addr", "localhost:9090", "Bind address for api server")
    fs.int("workers", 5, "how many workers")
    fs.bool("json", False, "print json")
    fs.bool("v", False, "verbose")
    fs.duration("timeout", 180.0, "how long to wait")
    fs.float("ratio", 0.5, "a `fraction` of something")
    fs.ignored("grpc_addr", "localhost:9099", "Bind address for grpc server")
    return fs


@pytest.mark.parametrize("argv", [
    ["-thrift_addr", "h:1"], ["-thrift_addr=h:1"], ["--thrift_addr", "h:1"], ["--thrift_addr=h:1"],
])
def test_every_value_dialect(argv):
    assert flagset().parse(argv).thrift_addr == "h:1"


@pytest.mark.parametrize("argv, expected", [
    ([], False), (["-json"], True), (["--json"], True), (["-json=true"], True), (["-json=false"], False),
    (["--json=0"], False), (["-json=T"], True), (["-json=FALSE"], False), (["-json", "false"], True),
])
def test_bool_forms(argv, expected):
    ns = flagset().parse(argv)
    assert ns.json is expected
    if argv[1:] == ["false"]:
        assert ns.args == ["false"]  # a bool never takes the next argument


def test_types_and_defaults():
    ns = flagset().parse(["-workers", "0x10", "-timeout", "1h2m3.5s", "-ratio=2.5", "-v"])
    assert (ns.workers, ns.timeout, ns.ratio, ns.v) == (16, 3723.5, 2.5, True)
    ns = flagset().parse([])
    assert (ns.thrift_addr, ns.workers, ns.timeout, ns.ratio, ns.args, ns.given) == (
        "localhost:9090", 5, 180.0, 0.5, [], [])


@pytest.mark.parametrize("text, value", [("017", 15), ("-0o17", -15), ("0b101", 5), ("1_000", 1000),
                                         ("+7", 7), ("-9223372036854775808", -(1 << 63))])
def test_int_syntax_is_go_parseint_base_0(text, value):
    assert flagset().parse([f"-workers={text}"]).workers == value


@pytest.mark.parametrize("argv, rest", [
    (["-v", "run", "-json"], ["run", "-json"]),         # stops at the first positional
    (["-v", "--", "-json"], ["-json"]),                  # "--" is consumed and stops parsing
    (["-", "-json"], ["-", "-json"]),                     # a lone dash is a positional
    (["-workers", "-3", "x"], ["x"]),                     # a value may look like a flag
    (["-json", "-json=false", "a", "--", "b"], ["a", "--", "b"]),
])
def test_stop_rules(argv, rest):
    assert flagset().parse(argv).args == rest


def test_repeated_flag_last_wins_and_given_records_order():
    ns = flagset().parse(["-workers", "1", "--workers=2", "-grpc_addr", "x"])
    assert ns.workers == 2 and ns.given == ["workers", "workers", "grpc_addr"]


@pytest.mark.parametrize("argv, message", [
    (["-x"], "flag provided but not defined: -x"),
    (["--nope=1"], "flag provided but not defined: -nope"),
    (["---v"], "bad flag syntax: ---v"),
    (["-=v"], "bad flag syntax: -=v"),
    (["-workers"], "flag needs an argument: -workers"),
    (["-workers", "five"], 'invalid value "five" for flag -workers: parse error'),
    (["-workers=99999999999999999999"], 'invalid value "99999999999999999999" for flag -workers: '
                                        "value out of range"),
    (["-json=yes"], 'invalid boolean value "yes" for -json: parse error'),
    (["-timeout", "10"], 'invalid value "10" for flag -timeout: parse error'),
    (["-ratio", "half"], 'invalid value "half" for flag -ratio: parse error'),
])
def test_errors_print_go_text_and_usage_then_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        flagset().parse(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message + "\nUsage of prog:\n")


@pytest.mark.parametrize("arg", ["-h", "--help", "-help"])
def test_help_prints_usage_and_exits_0(capsys, arg):
    with pytest.raises(SystemExit) as info:
        flagset().parse([arg])
    assert info.value.code == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == flagset().usage()


def test_usage_matches_go_printdefaults():
    assert flagset().usage() == textwrap.dedent("""\
        Usage of prog:
          -grpc_addr string
            \tBind address for grpc server (default "localhost:9099")
          -json
            \tprint json
          -ratio fraction
            \ta fraction of something (default 0.5)
          -thrift_addr string
            \tBind address for api server (default "localhost:9090")
          -timeout duration
            \thow long to wait (default 3m0s)
          -v\tverbose
          -workers int
            \thow many workers (default 5)
        """)


def test_usage_hides_zero_defaults():
    fs = FlagSet("z")
    fs.int("n", 0, "count")
    fs.string("s", "", "text")
    fs.duration("d", 0.0, "wait")
    fs.bool("b", True, "on")
    assert fs.usage() == ("Usage of z:\n  -b\ton (default true)\n  -d duration\n    \twait\n"
                          "  -n int\n    \tcount\n  -s string\n    \ttext\n")


def test_usage_equals_the_reference_workercl_help():
    fs = FlagSet("workercl")
    fs.string("log_level", "info", "Log everything at this level and above (error|info|debug)")
    assert fs.usage() == (FIXTURES / "cli-output" / "workercl" / "12-help.stderr").read_text()


def test_unknown_flag_in_a_real_process_exits_2():
    code = "from scootpy.flags import FlagSet; FlagSet('p').parse(['-x'])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "flag provided but not defined: -x\nUsage of p:\n" and proc.stdout == ""


def test_log_ignored_logs_once_per_flag(caplog):
    fs = flagset()
    ns = fs.parse(["-grpc_addr", "a", "-grpc_addr", "b", "-v"])
    with caplog.at_level("INFO"):
        fs.log_ignored(ns)
    assert [r.getMessage() for r in caplog.records] == ["flag -grpc_addr is accepted for compatibility and ignored"]


@pytest.mark.parametrize("text, seconds", [
    ("0", 0.0), ("-0", 0.0), ("1m", 60.0), ("300ms", 0.3), ("1h2m3.5s", 3723.5), ("-1.5h", -5400.0),
    (".5s", 0.5), ("1.s", 1.0), ("10us", 1e-5), ("10µs", 1e-5), ("10μs", 1e-5), ("7ns", 7e-9), ("+2s", 2.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, message", [
    ("", 'time: invalid duration ""'), ("10", 'time: missing unit in duration "10"'),
    ("1d", 'time: unknown unit "d" in duration "1d"'), (".s", 'time: invalid duration ".s"'),
    ("--1s", 'time: invalid duration "--1s"'), (" 1s", 'time: invalid duration " 1s"'),
    ("1s ", 'time: unknown unit "s " in duration "1s "'),
])
def test_parse_duration_rejects_with_go_text(text, message):
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (180, "3m0s"), (3600, "1h0m0s"), (3723.5, "1h2m3.5s"), (0.5, "500ms"), (0.0015, "1.5ms"),
    (1e-6, "1µs"), (1.5e-6, "1.5µs"), (7e-9, "7ns"), (1.000000001, "1.000000001s"), (-90, "-1m30s"),
    (30 * 60, "30m0s"), (0.25, "250ms"),
])
def test_format_duration_matches_go(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("value, text", [(0.5, "0.5"), (2.0, "2"), (1e6, "1e+06"), (123456.0, "123456"),
                                         (1234567.0, "1.234567e+06"), (0.0001, "0.0001"), (1e-5, "1e-05"),
                                         (-2.5, "-2.5"), (float("inf"), "+Inf")])
def test_go_float(value, text):
    assert go_float(value) == text


def test_ignored_flags_keep_their_go_type():
    fs = FlagSet("scheduler")
    fs.ignored("max_grpc_conn", 0, "max grpc listener connections", kind="int")
    fs.ignored("max_grpc_idle_mins", 1, "max grpc connection idle time", kind="int")
    fs.ignored("grpc_addr", "localhost:9099", "Bind address for grpc server")
    assert fs.parse(["-max_grpc_conn", "7"]).max_grpc_conn == 7
    assert fs.usage() == ("Usage of scheduler:\n  -grpc_addr string\n    \tBind address for grpc server "
                          '(default "localhost:9099")\n  -max_grpc_conn int\n    \tmax grpc listener connections\n'
                          "  -max_grpc_idle_mins int\n    \tmax grpc connection idle time (default 1)\n")
    with pytest.raises(SystemExit):
        fs.parse(["-max_grpc_conn", "many"])


@pytest.mark.parametrize("text, ok", [("2.5", True), (".5", True), ("1e3", True), ("-Inf", True), ("NaN", True),
                                      ("1_0.5", False), ("1.2.3", False), ("", False), (" 1", False)])
def test_float_syntax(text, ok):
    if ok:
        flagset().parse([f"-ratio={text}"])
    else:
        with pytest.raises(SystemExit):
            flagset().parse([f"-ratio={text}"])

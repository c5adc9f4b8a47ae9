"""Log lines in logrus' text shape: every line the reference wrote in the fixtures is reproduced byte for byte."""

import ast
import calendar
import io
import logging
import re
import subprocess
import sys
import time

import pytest

from scootpy import logs as logs_module
from scootpy.logs import LogrusFormatter, go_quote, parse_level, setup_logging
from tests.procs import FIXTURES

LOG_FILES = [FIXTURES / "saga-log" / "scheduler.log", FIXTURES / "worker-output" / "worker.log"]
TOKEN = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^ ]*)(?: |$)')
LEVELS = {"info": logging.INFO, "error": logging.ERROR, "warning": logging.WARNING, "debug": logging.DEBUG,
          "fatal": logging.CRITICAL}


def parse_line(line: str) -> dict:
    """Split a logrus line into its key/value pairs, unquoting Go-quoted values."""
    fields, pos = {}, 0
    while pos < len(line):
        m = TOKEN.match(line, pos)
        assert m, f"cannot tokenize at {pos}: {line[pos:pos + 40]!r}"
        value = m.group(2)
        fields[m.group(1)] = ast.literal_eval(value) if value.startswith('"') else value
        pos = m.end()
    return fields


def record_for(fields: dict) -> logging.LogRecord:
    """The LogRecord that should format to the line ``fields`` came from."""
    fields = dict(fields)
    path, line = fields.pop("sourceLine").rsplit(":", 1)
    stamp = calendar.timegm(time.strptime(fields.pop("time"), "%Y-%m-%dT%H:%M:%SZ"))
    record = logging.LogRecord("x", LEVELS[fields.pop("level")], "/src/" + path, int(line),
                               fields.pop("msg", ""), None, None)
    record.created = stamp
    for key, value in fields.items():
        setattr(record, key, value)
    return record


def reference_lines():
    return [line for path in LOG_FILES for line in path.read_text().splitlines()]


def test_every_reference_log_line_is_reproduced():
    lines = reference_lines()
    assert len(lines) > 250
    formatter = LogrusFormatter()
    mismatches = [(line, formatter.format(record_for(parse_line(line)))) for line in lines]
    mismatches = [(want, got) for want, got in mismatches if want != got]
    assert not mismatches, "\n".join(f"want {w}\ngot  {g}" for w, g in mismatches[:3])


def test_reference_lines_cover_the_quoting_rules():
    text = "\n".join(reference_lines())
    assert re.search(r' \w+= ', text)  # empty values stay bare
    assert 'msg="' in text and " msg=" in text  # quoted and bare messages
    assert "\\n" in text and '\\"' in text  # escaped newlines and quotes
    assert re.search(r"level=info [a-z]", text) and re.search(r"level=info (?!msg=)", text)  # empty msg left out


def fmt(message="m", level=logging.INFO, path="/x/sched/scheduler.py", line=42, **fields) -> str:
    record = logging.LogRecord("n", level, path, line, message, None, None)
    record.created = 1570000000.0
    for key, value in fields.items():
        setattr(record, key, value)
    return LogrusFormatter().format(record)


def test_shape_of_one_line():
    assert fmt("hello world", b="x y", a=1, c=True, d=None, e="") == (
        'time="2019-10-02T07:06:40Z" level=info msg="hello world" a=1 b="x y" c=true d="<nil>" e= '
        'sourceLine="sched/scheduler.py:42"')


@pytest.mark.parametrize("message, rendered", [
    ("plain", "msg=plain"), ("with space", 'msg="with space"'), ("a=b", 'msg="a=b"'),
    ("tab\there", 'msg="tab\\there"'), ('q"uote\\', 'msg="q\\"uote\\\\"'), ("bell\x07", 'msg="bell\\a"'),
    ("ctl\x01", 'msg="ctl\\x01"'), ("é", 'msg="é"'), ("nb\u00a0sp", 'msg="nb\\u00a0sp"'),
    ("A-Za-z0-9-._/@^+", "msg=A-Za-z0-9-._/@^+"), ("colon:", 'msg="colon:"'),
])
def test_quoting_rules(message, rendered):
    assert f" {rendered} " in fmt(message)


def test_levels_and_empty_message():
    assert " level=warning " in fmt(level=logging.WARNING)
    assert " level=fatal " in fmt(level=logging.CRITICAL)
    assert " level=debug " in fmt(level=logging.DEBUG)
    assert fmt("", k="v") == 'time="2019-10-02T07:06:40Z" level=info k=v sourceLine="sched/scheduler.py:42"'


def test_go_quote_escapes():
    assert go_quote("a\nb\r\"\\\x7f\U0001F600\udc80") == '"a\\nb\\r\\"\\\\\\x7f\U0001F600\\x80"'


@pytest.mark.parametrize("name, level", [("panic", logging.CRITICAL), ("fatal", logging.CRITICAL),
                                         ("error", logging.ERROR), ("warn", logging.WARNING),
                                         ("warning", logging.WARNING), ("INFO", logging.INFO),
                                         ("debug", logging.DEBUG), ("trace", 5)])
def test_parse_level(name, level):
    assert parse_level(name) == level


def test_parse_level_rejects_with_logrus_text():
    with pytest.raises(ValueError) as info:
        parse_level("bogus")
    assert str(info.value) == 'not a valid logrus Level: "bogus"'


def test_setup_logging_filters_by_level_and_writes_one_line_per_record():
    stream = io.StringIO()
    setup_logging("warning", stream)
    try:
        logging.getLogger("t").info("hidden")
        logging.getLogger("t").warning("shown %d", 2, extra={"node": "localhost:10101"})
    finally:
        setup_logging("info")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r'time="[0-9T:-]+Z" level=warning msg="shown 2" node="localhost:10101" '
                        r'sourceLine="tests/test_logs.py:\d+"', lines[0])


def test_a_process_logs_to_stderr_only():
    code = ("import logging; from scootpy.logs import setup_logging; setup_logging('debug');"
            "logging.getLogger('x').debug('to stderr')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout == ""
    assert re.fullmatch(r'time="\S+" level=debug msg="to stderr" sourceLine="[^"]+:1"\n', proc.stderr)


def test_terminal_form_matches_logrus_colored_output():
    record = logging.LogRecord("n", logging.WARNING, "/x/sched/scheduler.py", 7, "slow start\n", None, None)
    record.created = logs_module._STARTED + 12.7
    record.node = "localhost:10101"
    line = LogrusFormatter(terminal=True).format(record)
    assert line == ("\x1b[33mWARN\x1b[0m[0012] " + "slow start".ljust(44) + " "
                    " \x1b[33mnode\x1b[0m=\"localhost:10101\" \x1b[33msourceLine\x1b[0m=\"sched/scheduler.py:7\"")
    record.levelno = logging.INFO
    assert LogrusFormatter(terminal=True).format(record).startswith("\x1b[36mINFO\x1b[0m[0012] ")


def test_setup_logging_uses_the_terminal_form_on_a_tty():
    import os
    import pty

    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            setup_logging("info", tty)
            try:
                logging.getLogger("t").info("on a terminal")
            finally:
                setup_logging("info")
        text = os.read(master, 4096).decode()
    finally:
        os.close(master)
        os.close(slave)
    assert re.match(r"\x1b\[36mINFO\x1b\[0m\[\d{4}\] on a terminal {32} ", text)
    assert "time=" not in text


@pytest.mark.parametrize("argv, shown", [
    (["--log_level", "debug"], ["debug", "info", "error"]),
    (["-log_level=error"], ["error"]),
    (["--log_level=WARN"], ["error"]),
    ([], ["info", "error"]),
])
def test_log_level_flag_end_to_end(argv, shown):
    code = ("import logging, sys; from scootpy.flags import FlagSet; from scootpy.logs import setup_logging\n"
            "fs = FlagSet('p'); fs.string('log_level', 'info', 'level')\n"
            "setup_logging(fs.parse(sys.argv[1:]).log_level); log = logging.getLogger('p')\n"
            "log.debug('d'); log.info('i'); log.error('e')\n")
    proc = subprocess.run([sys.executable, "-c", code] + argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert re.findall(r" level=(\w+) ", proc.stderr) == shown


def test_exit_now_flushes_logs_and_streams_and_keeps_the_code():
    code = ("import logging, sys\nfrom scootpy.logs import exit_now, setup_logging\nsetup_logging('info')\n"
            "logging.getLogger('x').info('last words')\nsys.stdout.write('buffered out')\nexit_now(3)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stdout == "buffered out"
    assert 'msg="last words"' in done.stderr

"""Go ``flag``-style command lines for the server binaries.

Accepts ``-name value``, ``-name=value``, ``--name value`` and ``--name=value``; booleans take no separate
value (``-x`` or ``-x=false``); parsing stops at the first non-flag argument or at ``--``. Errors print Go's
texts (``flag provided but not defined: -x``, ``invalid value "v" for flag -n: parse error``, ...) and the
usage to stderr and exit 2; ``-h``/``-help`` print the usage and exit 0.
"""

import logging
import math
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple

from scootpy.logs import go_quote

log = logging.getLogger(__name__)

_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = re.compile(r"\d*\.?\d*")
_UNIT = re.compile(r"[^\d.]*")
_INT64 = 1 << 63


def parse_duration(text: str) -> float:
    """Parse a Go duration (``1m``, ``300ms``, ``1h2m3.5s``, ``-1.5h``, ``0``) into seconds.

    Raises ValueError with Go's texts (``time: invalid duration "x"``, ``time: missing unit ...``).
    """
    quoted = go_quote(text)
    rest, sign = text, 1.0
    if rest[:1] in ("-", "+"):
        sign, rest = (-1.0 if rest[0] == "-" else 1.0), rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        number = _NUMBER.match(rest).group()
        rest = rest[len(number):]
        if number in ("", "."):
            raise ValueError(f"time: invalid duration {quoted}")
        unit = _UNIT.match(rest).group()
        rest = rest[len(unit):]
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {quoted}")
        total += float(number) * _UNITS[unit]
    return sign * total


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    return f"{whole}." + f"{frac:0{len(str(unit)) - 1}d}".rstrip("0")


def format_duration(seconds: float) -> str:
    """Format seconds the way Go prints a time.Duration (``3m0s``, ``1h0m0s``, ``1.5ms``, ``0s``)."""
    ns = round(seconds * 1e9)
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns == 0:
        return "0s"
    if ns < 1000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_fraction(ns, 1000)}\u00b5s"
    if ns < 1_000_000_000:
        return f"{sign}{_fraction(ns, 1_000_000)}ms"
    hours, minutes = ns // 3_600_000_000_000, (ns // 60_000_000_000) % 60
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return f"{sign}{out}{_fraction(ns % 60_000_000_000, 1_000_000_000)}s"


def _parse_bool(text: str) -> bool:
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError("parse error")


def _parse_int(text: str) -> int:
    """Go's strconv.ParseInt(text, 0, 64): decimal, 0x/0o/0b prefixes, leading-0 octal, underscores."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body[:1].isdigit():
        raise ValueError("parse error")
    if re.fullmatch(r"0[0-7_]+", body):
        body = "0o" + body[1:]
    try:
        value = int(body, 0)
    except ValueError:
        raise ValueError("parse error") from None
    value = -value if text.startswith("-") else value
    if not -_INT64 <= value < _INT64:
        raise ValueError("value out of range")
    return value


def _parse_float(text: str) -> float:
    if not re.fullmatch(r"[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf|infinity|nan)", text, re.I):
        raise ValueError("parse error")
    return float(text)


def go_float(value: float) -> str:
    """Format a float as Go's strconv.FormatFloat(v, 'g', -1, 64) does (``0.5``, ``2``, ``1e+06``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    number = Decimal(repr(float(value))).normalize()
    sign, digits, exponent = number.as_tuple()
    exp10 = len(digits) + exponent - 1
    if -4 <= exp10 < 6:
        return format(number, "f")
    text = "".join(map(str, digits))
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"


@dataclass
class Flag:
    """One declared flag: its Go type (``kind``), default, help text and value parser."""

    name: str
    default: Any
    help: str
    parse: Callable[[str], Any]
    kind: str
    ignored: bool = False

    def default_text(self) -> str:
        """The default as Go's usage prints it, or "" when it is the type's zero value."""
        if self.kind == "string":
            return "" if self.default == "" else f" (default {go_quote(self.default)})"
        if self.kind == "bool":
            return " (default true)" if self.default else ""
        if self.kind == "duration":
            return f" (default {format_duration(self.default)})" if self.default else ""
        if self.kind == "float":
            return f" (default {go_float(self.default)})" if self.default else ""
        return f" (default {self.default})" if self.default else ""


class FlagSet:
    """A set of Go-style flags for one binary."""

    def __init__(self, prog: str):
        self.prog = prog
        self.flags: Dict[str, Flag] = {}

    def _add(self, name: str, default: Any, help: str, parse: Callable[[str], Any], kind: str,
             ignored: bool = False) -> None:
        self.flags[name] = Flag(name, default, help, parse, kind, ignored)

    def string(self, name: str, default: str, help: str) -> None:
        """Declare a string flag."""
        self._add(name, default, help, str, "string")

    def int(self, name: str, default: int, help: str) -> None:
        """Declare an int flag (Go's ParseInt syntax, 0x/0o/0b prefixes)."""
        self._add(name, default, help, _parse_int, "int")

    def float(self, name: str, default: float, help: str) -> None:
        """Declare a float flag."""
        self._add(name, default, help, _parse_float, "float")

    def bool(self, name: str, default: bool, help: str) -> None:
        """Declare a bool flag: ``-name`` alone means true."""
        self._add(name, default, help, _parse_bool, "bool")

    def duration(self, name: str, default: float, help: str) -> None:
        """Declare a Go duration flag; the value is in seconds."""
        self._add(name, default, help, parse_duration, "duration")

    def ignored(self, name: str, default: Any, help: str, kind: str = "string") -> None:
        """A reference flag we accept for compatibility but do not use (gRPC/Bazel); ``kind`` is its Go type
        (string, int, bool, duration, float), so values are checked and usage reads as the reference's."""
        parsers = {"string": str, "int": _parse_int, "bool": _parse_bool, "duration": parse_duration,
                   "float": _parse_float}
        self._add(name, default, help, parsers[kind], kind, ignored=True)

    def usage(self) -> str:
        """Go's ``Usage of <prog>:`` text followed by flag.PrintDefaults' listing."""
        lines = [f"Usage of {self.prog}:"]
        for flag in sorted(self.flags.values(), key=lambda f: f.name):
            quoted = re.search(r"`([^`]*)`", flag.help)
            kind = quoted.group(1) if quoted else ("" if flag.kind == "bool" else flag.kind)
            text = flag.help.replace("`", "") if quoted else flag.help
            head = f"  -{flag.name}" + (f" {kind}" if kind else "")
            head += "\t" if len(head) <= 4 else "\n    \t"
            lines.append(head + text.replace("\n", "\n    \t") + flag.default_text())
        return "\n".join(lines) + "\n"

    def _fail(self, message: str) -> NoReturn:
        sys.stderr.write(f"{message}\n{self.usage()}")
        sys.exit(2)

    def parse(self, argv: List[str]) -> SimpleNamespace:
        """Parse ``argv`` (without the program name). Remaining positionals are in ``.args``."""
        values = {name: flag.default for name, flag in self.flags.items()}
        given: List[str] = []
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                i += 1
                break
            if len(arg) < 2 or not arg.startswith("-"):
                break
            name, values[name], used_next = self._one(arg, argv[i + 1:])
            given.append(name)
            i += 2 if used_next else 1
        ns = SimpleNamespace(**{name.replace("-", "_"): v for name, v in values.items()})
        ns.args = argv[i:]
        ns.given = given
        return ns

    def _one(self, arg: str, rest: List[str]) -> Tuple[str, Any, bool]:
        """Parse one flag argument: (name, value, whether the value was the next argument)."""
        body = arg[2:] if arg.startswith("--") else arg[1:]
        if not body or body.startswith("-") or body.startswith("="):
            self._fail(f"bad flag syntax: {arg}")
        name, has_value, text = body.partition("=")
        flag = self.flags.get(name)
        if flag is None:
            if name in ("h", "help"):
                sys.stderr.write(self.usage())
                sys.exit(0)
            self._fail(f"flag provided but not defined: -{name}")
        if flag.kind == "bool" and not has_value:
            return name, True, False
        if not has_value:
            if not rest:
                self._fail(f"flag needs an argument: -{name}")
            text = rest[0]
        try:
            return name, flag.parse(text), not has_value
        except ValueError as e:
            reason = "value out of range" if "out of range" in str(e) else "parse error"
            if flag.kind == "bool":
                self._fail(f"invalid boolean value {go_quote(text)} for -{name}: {reason}")
            self._fail(f"invalid value {go_quote(text)} for flag -{name}: {reason}")

    def log_ignored(self, ns: SimpleNamespace) -> None:
        """Log once for each compatibility-only flag that was given."""
        for name in dict.fromkeys(ns.given):
            if self.flags[name].ignored:
                log.info("flag -%s is accepted for compatibility and ignored", name)


def parse_or_exit(flagset: FlagSet, argv: Optional[List[str]] = None) -> SimpleNamespace:
    """Parse ``sys.argv[1:]`` (or ``argv``) with ``flagset``."""
    return flagset.parse(sys.argv[1:] if argv is None else argv)

"""Go ``flag``-style command lines for the server binaries.

Accepts ``-name value``, ``-name=value``, ``--name value`` and ``--name=value``; booleans take no separate
value (``-x`` or ``-x=false``); parsing stops at the first non-flag argument or at ``--``. An unknown flag
prints ``flag provided but not defined: -x`` and the usage to stderr and exits 2, like Go.
"""

import logging
import sys
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional

log = logging.getLogger(__name__)

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Parse a Go duration (``1m``, ``300ms``, ``1h2m3.5s``, ``0``) into seconds."""
    rest = text.strip()
    sign = -1.0 if rest.startswith("-") else 1.0
    rest = rest.lstrip("+-")
    if rest == "0":
        return 0.0
    total, matched = 0.0, False
    while rest:
        i = 0
        while i < len(rest) and (rest[i].isdigit() or rest[i] == "."):
            i += 1
        j = i
        while j < len(rest) and not (rest[j].isdigit() or rest[j] == "."):
            j += 1
        number, unit, rest = rest[:i], rest[i:j], rest[j:]
        if not number or unit not in _UNITS:
            raise ValueError(f"time: invalid duration {text!r}")
        total += float(number) * _UNITS[unit]
        matched = True
    if not matched:
        raise ValueError(f"time: invalid duration {text!r}")
    return sign * total


def format_duration(seconds: float) -> str:
    """Format seconds the way Go prints a time.Duration (``3m0s``, ``500ms``, ``0s``)."""
    if seconds == 0:
        return "0s"
    if abs(seconds) < 1:
        ms = seconds * 1000
        return f"{ms:g}ms" if ms == int(ms) else f"{seconds * 1e6:g}µs"
    hours, rem = divmod(seconds, 3600)
    minutes, secs = divmod(rem, 60)
    out = f"{int(hours)}h" if hours else ""
    if hours or minutes:
        out += f"{int(minutes)}m"
    return out + f"{secs:g}s"


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "t", "true"):
        return True
    if low in ("0", "f", "false"):
        return False
    raise ValueError(f"strconv.ParseBool: parsing {text!r}: invalid syntax")


def _parse_int(text: str) -> int:
    return int(text, 0) if text.lower().startswith(("0x", "0o", "0b")) else int(text)


@dataclass
class Flag:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any]
    kind: str
    ignored: bool = False


class FlagSet:
    """A set of Go-style flags for one binary."""

    def __init__(self, prog: str):
        self.prog = prog
        self.flags: Dict[str, Flag] = {}

    def _add(self, name: str, default: Any, help: str, parse: Callable[[str], Any], kind: str,
             ignored: bool = False) -> None:
        self.flags[name] = Flag(name, default, help, parse, kind, ignored)

    def string(self, name: str, default: str, help: str) -> None:
        self._add(name, default, help, str, "string")

    def int(self, name: str, default: int, help: str) -> None:
        self._add(name, default, help, _parse_int, "int")

    def float(self, name: str, default: float, help: str) -> None:
        self._add(name, default, help, float, "float")

    def bool(self, name: str, default: bool, help: str) -> None:
        self._add(name, default, help, _parse_bool, "bool")

    def duration(self, name: str, default: float, help: str) -> None:
        self._add(name, default, help, parse_duration, "duration")

    def ignored(self, name: str, default: str, help: str) -> None:
        """A reference flag we accept for compatibility but do not use (gRPC/Bazel)."""
        self._add(name, default, help, str, "string", ignored=True)

    def usage(self) -> str:
        lines = [f"Usage of {self.prog}:"]
        for flag in sorted(self.flags.values(), key=lambda f: f.name):
            kind = "" if flag.kind == "bool" else f" {flag.kind}"
            lines.append(f"  -{flag.name}{kind}")
            text = flag.help
            if flag.kind == "bool" and not flag.default:
                pass
            elif flag.kind == "string":
                if flag.default != "":
                    text += f' (default "{flag.default}")'
            elif flag.kind == "duration":
                text += f" (default {format_duration(flag.default)})"
            else:
                text += f" (default {str(flag.default).lower() if flag.kind == 'bool' else flag.default})"
            lines.append(f"    \t{text}")
        return "\n".join(lines) + "\n"

    def _fail(self, message: str) -> None:
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
            body = arg[2:] if arg.startswith("--") else arg[1:]
            if not body or body.startswith("-") or body.startswith("="):
                self._fail(f"bad flag syntax: {arg}")
            name, has_value, value = body.partition("=")
            if name in ("h", "help") and name not in self.flags:
                sys.stderr.write(self.usage())
                sys.exit(0)
            flag = self.flags.get(name)
            if flag is None:
                self._fail(f"flag provided but not defined: -{name}")
            if not has_value:
                if flag.kind == "bool":
                    value = "true"
                elif i + 1 < len(argv):
                    i += 1
                    value = argv[i]
                else:
                    self._fail(f"flag needs an argument: -{name}")
            try:
                values[name] = flag.parse(value)
            except ValueError:
                self._fail(f'invalid {"boolean " if flag.kind == "bool" else ""}value "{value}" '
                           f"for flag -{name}: parse error")
            given.append(name)
            i += 1
        ns = SimpleNamespace(**{name.replace("-", "_"): v for name, v in values.items()})
        ns.args = argv[i:]
        ns.given = given
        return ns

    def log_ignored(self, ns: SimpleNamespace) -> None:
        """Log once for each compatibility-only flag that was given."""
        for name in ns.given:
            if self.flags[name].ignored:
                log.info("flag -%s is accepted for compatibility and ignored", name)


def parse_or_exit(flagset: FlagSet, argv: Optional[List[str]] = None) -> SimpleNamespace:
    """Parse ``sys.argv[1:]`` (or ``argv``) with ``flagset``."""
    return flagset.parse(sys.argv[1:] if argv is None else argv)

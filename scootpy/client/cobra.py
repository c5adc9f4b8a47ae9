"""The cobra/pflag command-line dialect of the reference's ``scootapi``, built on click.

``CobraGroup`` finds the subcommand the way cobra does (flags may come before or after it), and each
``CobraCommand`` parses its arguments the pflag way: ``--name value`` / ``--name=value``, only ``-h`` as a
shorthand, flags and positionals interleaved, ``--`` ending the flags. Help goes to stdout; errors print
cobra's ``Error: <msg>`` plus the usage on stderr, and the program logs ``fatal`` and exits 1. Help and
usage texts are byte-identical to cobra v0.0.5's templates.
"""

import logging
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import click

from scootpy.flags import format_duration, parse_duration

log = logging.getLogger(__name__)


class CobraError(Exception):
    """A usage, flag or run error: printed as ``Error: <text>`` plus the command's usage."""


class UnknownCommand(CobraError):
    """The first word names no subcommand: printed without the usage, with cobra's ``Run '... --help'`` hint."""


class HelpRequested(Exception):
    """``-h``/``--help`` was given."""


class HelpTopic(Exception):
    """``<root> help [command]`` was run."""


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _parse_int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"strconv.ParseInt: parsing {_go_quote(text)}: invalid syntax") from None


def _parse_bool(text: str) -> bool:
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError(f"strconv.ParseBool: parsing {_go_quote(text)}: invalid syntax")


def _parse_duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError:
        raise ValueError(f"time: invalid duration {text}") from None


_KINDS: Dict[str, Tuple[Callable[[str], Any], str]] = {
    "string": (str, "string"), "int": (_parse_int, "int"), "bool": (_parse_bool, ""),
    "duration": (_parse_duration, "duration"),
}


class GoFlag(click.Option):
    """A pflag-style ``--name`` flag of kind string, int, bool or duration (durations are in seconds)."""

    def __init__(self, name: str, kind: str, default: Any, usage: str, shorthand: str = ""):
        super().__init__([f"--{name}"], default=default, help=usage, expose_value=True,
                         is_flag=(kind == "bool"))
        self.flag_name, self.kind, self.usage, self.shorthand = name, kind, usage, shorthand

    def convert(self, text: str) -> Any:
        return _KINDS[self.kind][0](text)

    def default_text(self) -> str:
        """`` (default ...)`` as pflag prints it, or "" when the default is the zero value."""
        if self.kind == "string":
            return f" (default {_go_quote(self.default)})" if self.default else ""
        if self.kind == "duration":
            return f" (default {format_duration(self.default)})" if self.default else ""
        if self.kind == "bool":
            return " (default true)" if self.default else ""
        return f" (default {self.default})" if self.default else ""


def flag_usages(flags: Sequence[GoFlag]) -> str:
    """pflag's FlagUsages: one line per flag sorted by name, descriptions aligned in one column."""
    lines = []
    for flag in sorted(flags, key=lambda f: f.flag_name):
        head = f"  -{flag.shorthand}, --{flag.flag_name}" if flag.shorthand else f"      --{flag.flag_name}"
        varname = _KINDS[flag.kind][1]
        lines.append((head + (f" {varname}" if varname else ""), flag.usage + flag.default_text()))
    width = max((len(head) for head, _ in lines), default=0) + 1
    return "".join(f"{head}{' ' * (width - len(head) + 2)}{usage}\n" for head, usage in lines)


def help_flag(command_name: str) -> GoFlag:
    return GoFlag("help", "bool", False, f"help for {command_name}", shorthand="h")


def parse_flags(args: List[str], flags: Sequence[GoFlag]) -> Tuple[Dict[str, Any], List[str]]:
    """Parse ``args`` the pflag way; return ({flag name: value}, positionals). Raises CobraError."""
    by_name = {f.flag_name: f for f in flags}
    by_short = {f.shorthand: f for f in flags if f.shorthand}
    values: Dict[str, Any] = {}
    positionals: List[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if len(arg) < 2 or not arg.startswith("-"):
            positionals.append(arg)
        elif arg == "--":
            positionals += rest
            break
        elif arg.startswith("--"):
            _parse_long(arg, rest, by_name, values)
        else:
            _parse_shorts(arg, rest, by_short, values)
    return values, positionals


def _set(flag: GoFlag, text: str, shown: str, values: Dict[str, Any]) -> None:
    try:
        values[flag.flag_name] = flag.convert(text)
    except ValueError as e:
        raise CobraError(f'invalid argument {_go_quote(text)} for {_go_quote(shown)} flag: {e}') from None


def _parse_long(arg: str, rest: List[str], by_name: Dict[str, GoFlag], values: Dict[str, Any]) -> None:
    body = arg[2:]
    if not body or body[0] in "-=":
        raise CobraError(f"bad flag syntax: {arg}")
    name, has_value, text = body.partition("=")
    flag = by_name.get(name)
    if flag is None:
        raise CobraError(f"unknown flag: --{name}")
    if not has_value:
        if flag.kind == "bool":
            text = "true"
        elif rest:
            text = rest.pop(0)
        else:
            raise CobraError(f"flag needs an argument: {arg}")
    shown = f"-{flag.shorthand}, --{name}" if flag.shorthand else f"--{name}"
    _set(flag, text, shown, values)


def _parse_shorts(arg: str, rest: List[str], by_short: Dict[str, GoFlag], values: Dict[str, Any]) -> None:
    shorthands = arg[1:]
    while shorthands:
        char, shorthands = shorthands[0], shorthands[1:]
        flag = by_short.get(char)
        if flag is None:
            raise CobraError(f"unknown shorthand flag: '{char}' in -{char + shorthands}")
        if shorthands.startswith("="):
            text, shorthands = shorthands[1:], ""
        elif flag.kind == "bool":
            text = "true"
        elif shorthands:
            text, shorthands = shorthands, ""
        elif rest:
            text = rest.pop(0)
        else:
            raise CobraError(f"flag needs an argument: '{char}' in -{char}")
        _set(flag, text, f"-{char}, --{flag.flag_name}", values)


class CobraCommand(click.Command):
    """A subcommand: ``callback(cli, args, **flags)`` runs it; flags are GoFlags (plus the group's persistent ones)."""

    def __init__(self, name: str, callback: Callable, short: str, flags: Sequence[GoFlag] = (),
                 example: str = ""):
        super().__init__(name, callback=callback, params=list(flags) + [help_flag(name)], help=short)
        self.short, self.example = short, example
        self.group: Optional["CobraGroup"] = None

    @property
    def local_flags(self) -> List[GoFlag]:
        return [p for p in self.params if isinstance(p, GoFlag)]

    def all_flags(self) -> List[GoFlag]:
        return self.local_flags + (self.group.persistent if self.group else [])

    def parse(self, args: List[str]) -> Tuple[Dict[str, Any], List[str]]:
        """Flags (with defaults filled in, keyed by python name) and positionals."""
        given, positionals = parse_flags(args, self.all_flags())
        if given.get("help"):
            raise HelpRequested()
        values = {f.name: given.get(f.flag_name, f.default) for f in self.all_flags() if f.flag_name != "help"}
        return values, positionals

    def path(self) -> str:
        return f"{self.group.name} {self.name}" if self.group else self.name

    def usage_string(self) -> str:
        out = f"Usage:\n  {self.path()} [flags]\n"
        if self.example:
            out += f"\nExamples:\n{self.example}\n"
        out += "\nFlags:\n" + flag_usages(self.local_flags)
        if self.group and self.group.persistent:
            out += "\nGlobal Flags:\n" + flag_usages(self.group.persistent)
        return out

    def help_string(self) -> str:
        return f"{self.short}\n\n{self.usage_string()}"


class CobraGroup(click.Group):
    """The root command: persistent flags, cobra-style subcommand lookup, help and error output."""

    def __init__(self, name: str, short: str, persistent: Sequence[GoFlag]):
        super().__init__(name, help=short)
        self.short = short
        self.persistent = list(persistent)
        self.root_help = help_flag(name)

    def add(self, command: CobraCommand) -> None:
        command.group = self
        self.add_command(command)

    def find(self, args: List[str]) -> Tuple[Optional[CobraCommand], List[str]]:
        """cobra's Find: the first word that is not a flag or a flag's value names the subcommand."""
        words = self._strip_flags(args)
        if not words:
            return None, list(args)
        if words[0] in self.commands:
            rest = list(args)
            rest.remove(words[0])
            return self.commands[words[0]], rest
        if words[0] == "help":
            raise HelpTopic(words[1:])
        raise UnknownCommand(f"unknown command {_go_quote(words[0])} for {_go_quote(self.name)}"
                         + self._suggestions(words[0]))

    def _strip_flags(self, args: List[str]) -> List[str]:
        bools = {f.flag_name for f in self.persistent + [self.root_help] if f.kind == "bool"}
        words, rest = [], list(args)
        while rest:
            arg = rest.pop(0)
            if arg == "--":
                break
            takes_value = ((arg.startswith("--") and "=" not in arg and arg[2:] not in bools)
                           or (arg.startswith("-") and not arg.startswith("--") and len(arg) == 2 and arg != "-h"))
            if takes_value:
                if len(rest) <= 1:
                    break
                rest.pop(0)
            elif arg and not arg.startswith("-"):
                words.append(arg)
        return words

    def _suggestions(self, typed: str) -> str:
        found = [name for name in sorted(list(self.commands) + ["help"])
                 if _levenshtein(typed.lower(), name.lower()) <= 2 or name.lower().startswith(typed.lower())]
        if not found:
            return ""
        return "\n\nDid you mean this?\n" + "".join(f"\t{name}\n" for name in found)

    def usage_string(self) -> str:
        names = sorted(list(self.commands) + ["help"])
        pad = max(len(n) for n in names)
        shorts = {n: self.commands[n].short for n in self.commands}
        shorts["help"] = "Help about any command"
        out = f"Usage:\n  {self.name} [flags]\n  {self.name} [command]\n\nAvailable Commands:\n"
        out += "".join(f"  {n.ljust(pad)} {shorts[n]}\n" for n in names)
        out += "\nFlags:\n" + flag_usages(self.persistent + [self.root_help])
        return out + f'\nUse "{self.name} [command] --help" for more information about a command.\n'

    def help_string(self) -> str:
        return f"{self.short}\n\n{self.usage_string()}"

    def parse(self, args: List[str]) -> Tuple[Dict[str, Any], List[str]]:
        """The root command's own flags (persistent ones and ``-h``) and positionals."""
        given, positionals = parse_flags(args, self.persistent + [self.root_help])
        if given.get("help"):
            raise HelpRequested()
        return {f.name: given.get(f.flag_name, f.default) for f in self.persistent}, positionals

    def help_topic(self, words: List[str]) -> str:
        """What ``<root> help [command]`` prints."""
        if not words:
            return self.help_string()
        if words[0] in self.commands:
            return self.commands[words[0]].help_string()
        return f"Unknown help topic [`{words[0]}`]\n{self.usage_string()}"

    def show_help_topic(self, words: List[str]) -> None:
        """Print what ``<root> help [command]`` prints: help on stdout, an unknown topic on stderr (exit 0)."""
        known = not words or words[0] in self.commands
        (sys.stdout if known else sys.stderr).write(self.help_topic(words))


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def print_error(text: str, usage: Optional[str]) -> None:
    """cobra's error block on stderr: ``Error: <text>`` and, for command errors, the usage and a blank line."""
    sys.stderr.write(f"Error: {text}\n")
    if usage is not None:
        sys.stderr.write(usage + "\n")
    sys.stderr.flush()


def print_command_error(root: CobraGroup, command: Optional[CobraCommand], error: CobraError) -> None:
    """What cobra prints for a failed command: for an unknown command, the error and a pointer to
    ``--help``; otherwise the error and the usage of the command (or of the root)."""
    if isinstance(error, UnknownCommand):
        print_error(str(error), None)
        sys.stderr.write(f"Run '{root.name} --help' for usage.\n")
    else:
        print_error(str(error), (command or root).usage_string())

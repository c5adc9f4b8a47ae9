"""Golden IDL test: the loaded thriftpy2 modules equal spec/wire.md item for item, in both directions.

wire.md's tables are parsed here; our side is described from the thriftpy2 modules (names, ids, types,
enum values, methods, declared exceptions) plus a scan of our .thrift text for the one fact thriftpy2
folds away: whether a non-required field is ``optional`` or has no keyword (``default``).
"""

import re
from pathlib import Path

import pytest
from thriftpy2.thrift import TType

from scootpy import idl
from tests.procs import REPO

WIRE_MD = REPO.parent / "shared" / "spec" / "wire.md"
MODULES = {"bazel": idl.bazel, "scoot": idl.scoot, "worker": idl.worker, "sched": idl.sched}
_PRIMITIVES = {TType.BOOL: "bool", TType.BYTE: "byte", TType.I16: "i16", TType.I32: "i32", TType.I64: "i64",
               TType.DOUBLE: "double", TType.STRING: "string", TType.BINARY: "binary"}


def _norm(type_text: str) -> str:
    return re.sub(r"\s+", "", type_text)


# ---- wire.md side -------------------------------------------------------------------------------------

def _table_rows(lines, start):
    """Rows (lists of cell texts) of the markdown table that begins at or after ``start``."""
    rows, i = [], start
    while i < len(lines) and not lines[i].startswith("|"):
        i += 1
    while i < len(lines) and lines[i].startswith("|"):
        cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
        if not set("".join(cells)) <= set("-: "):
            rows.append(cells)
        i += 1
    return rows[1:]  # drop the header row


def _unquote(cell: str) -> str:
    return cell.strip().strip("`")


def _param_list(cell: str) -> tuple:
    if cell.strip() == "none":
        return ()
    out = []
    for part in cell.split(","):
        fid, rest = part.split(":", 1)
        ptype, pname = rest.strip().rsplit(" ", 1)
        out.append((int(fid), _norm(ptype), pname))
    return tuple(out)


def parse_wire_md(text: str) -> dict:
    """The items wire.md declares, per module, in the shape ``describe_module`` produces."""
    lines = text.splitlines()
    spec, module = {}, None
    for i, line in enumerate(lines):
        heading = re.match(r"^## (\w+) \(file `(\w+)\.thrift`\)", line)
        if heading:
            module = spec.setdefault(heading.group(1), {"includes": [], "types": {}, "enums": {},
                                                         "services": {}})
            continue
        if module is None:
            continue
        include = re.match(r"^Includes: (.*)$", line)
        item = re.match(r"^\*\*(struct|exception|enum|service) (\w+)\*\*(.*)$", line)
        if include:
            module["includes"] = sorted(re.findall(r"`(\w+)\.thrift`", include.group(1)))
        elif item and item.group(1) in ("struct", "exception"):
            fields = {int(r[0]): (r[1], _norm(_unquote(r[2])), r[3]) for r in _table_rows(lines, i + 1)}
            module["types"][item.group(2)] = (item.group(1), fields)
        elif item and item.group(1) == "enum":
            pairs = [p.split("=") for p in item.group(3).lstrip(":").split(",")]
            module["enums"][item.group(2)] = {k.strip(): int(v) for k, v in pairs}
        elif item:
            module["services"][item.group(2)] = {
                r[0]: (_norm(_unquote(r[1])), _param_list(r[2]), _param_list(r[3]))
                for r in _table_rows(lines, i + 1)}
    return spec


# ---- our side -----------------------------------------------------------------------------------------

def _module_of(cls) -> str:
    return cls.__module__.split(".")[-1].replace("_thrift", "")


def render_type(ttype: int, spec, home: str) -> str:
    """The IDL spelling of a thriftpy2 type spec, qualifying types from other modules (``bazel.Digest``)."""
    if ttype in (TType.STRUCT, TType.I32) and isinstance(spec, type):
        name = spec.__name__
        return name if _module_of(spec) == home else f"{_module_of(spec)}.{name}"
    if ttype in (TType.LIST, TType.SET):
        inner = render_type(*spec, home) if isinstance(spec, tuple) else render_type(spec, None, home)
        return f"{'list' if ttype == TType.LIST else 'set'}<{inner}>"
    if ttype == TType.MAP:
        parts = [render_type(*s, home) if isinstance(s, tuple) else render_type(s, None, home) for s in spec]
        return f"map<{parts[0]},{parts[1]}>"
    return _PRIMITIVES[ttype]


def _field(entry, home: str):
    ttype, name = entry[0], entry[1]
    spec = entry[2] if len(entry) == 4 else None
    return name, render_type(ttype, spec, home), entry[-1]


def keyword_scan(thrift_text: str) -> dict:
    """``{(type name, field id): 'required' | 'optional' | 'default'}`` read from IDL text."""
    out = {}
    for block in re.finditer(r"\b(?:struct|exception|union)\s+(\w+)\s*\{(.*?)\}", thrift_text, re.S):
        body = re.sub(r"//[^\n]*|/\*.*?\*/", "", block.group(2), flags=re.S)
        for fid, keyword in re.findall(r"^\s*(-?\d+)\s*:\s*(required|optional)?", body, re.M):
            out[(block.group(1), int(fid))] = keyword or "default"
    return out


def _params(struct_cls, home: str, skip_success: bool = False) -> tuple:
    entries = sorted(struct_cls.thrift_spec.items())
    return tuple((fid, _norm(_field(e, home)[1]), e[1]) for fid, e in entries
                 if not (skip_success and e[1] == "success"))


def describe_module(name: str, module) -> dict:
    """Everything a Go peer can observe of one loaded thriftpy2 module, in parse_wire_md's shape."""
    meta = module.__thrift_meta__
    keywords = keyword_scan((idl.idl_dir() / f"{name}.thrift").read_text())
    types = {}
    for kind, classes in (("struct", meta["structs"]), ("exception", meta["exceptions"])):
        for cls in classes:
            fields = {}
            for fid, entry in cls.thrift_spec.items():
                fname, ftype, required = _field(entry, name)
                keyword = keywords.get((cls.__name__, fid))
                assert (keyword == "required") == bool(required), f"{cls.__name__}.{fname}: thriftpy2 disagrees"
                fields[fid] = (fname, _norm(ftype), keyword)
            types[cls.__name__] = (kind, fields)
    enums = {cls.__name__: dict(cls._NAMES_TO_VALUES) for cls in meta["enums"]}
    services = {}
    for svc in meta["services"]:
        methods = {}
        for method in svc.thrift_services:
            result = getattr(svc, method + "_result")
            success = result.thrift_spec.get(0)
            returns = _norm(_field(success, name)[1]) if success else "void"
            methods[method] = (returns, _params(getattr(svc, method + "_args"), name),
                               _params(result, name, skip_success=True))
        services[svc.__name__] = methods
    includes = sorted(_module_of_include(m) for m in meta["includes"])
    return {"includes": includes, "types": types, "enums": enums, "services": services}


def _module_of_include(module) -> str:
    return Path(module.__thrift_file__).stem


def differences(expected: dict, actual: dict, where: str = "") -> list:
    """Human-readable differences between two nested descriptions (missing, extra, changed)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual), key=str):
            if key not in actual:
                out.append(f"{where}/{key}: in wire.md, missing from our IDL")
            elif key not in expected:
                out.append(f"{where}/{key}: in our IDL, not in wire.md")
            else:
                out += differences(expected[key], actual[key], f"{where}/{key}")
        return out
    return [] if expected == actual else [f"{where}: wire.md {expected!r} != ours {actual!r}"]


@pytest.fixture(scope="module")
def wire_spec() -> dict:
    return parse_wire_md(WIRE_MD.read_text())


def test_wire_md_parses_to_every_module_and_item(wire_spec):
    assert set(wire_spec) == set(MODULES)
    assert len(wire_spec["scoot"]["types"]) == 12 and len(wire_spec["bazel"]["types"]) == 9
    assert wire_spec["scoot"]["services"]["CloudScoot"]["RunJob"] == (
        "JobId", ((1, "JobDefinition", "job"),), ((1, "InvalidRequest", "ir"), (2, "CanNotScheduleNow", "cnsn")))
    assert wire_spec["scoot"]["types"]["Command"][1][1] == ("argv", "list<string>", "default")
    assert wire_spec["worker"]["enums"]["Status"]["TIMEDOUT"] == 6


@pytest.mark.parametrize("name", sorted(MODULES))
def test_loaded_idl_equals_wire_md(wire_spec, name):
    diffs = differences(wire_spec[name], describe_module(name, MODULES[name]), name)
    assert not diffs, "\n".join(diffs)


@pytest.mark.parametrize("change", [
    ("| 2 | runId | `string` | required |", "| 2 | runId | `string` | optional |"),
    ("| 1 | argv | `list<string>` | default |", "| 1 | argv | `list<string>` | optional |"),
    ("COMPLETE=3, FAILED=4", "COMPLETE=3, FAILED=5"),
    ("| 3 | exitCode | `i32` | optional |", "| 3 | exitCode | `i64` | optional |"),
    ("| 4 | timeoutMs | `i32` | optional |\n", ""),
    ("1: InvalidRequest ir, 2: CanNotScheduleNow cnsn", "1: InvalidRequest ir"),
    ("| Erase | `void` | 1: string runId | none |\n", ""),
])
def test_comparison_catches_any_drift(change):
    """The golden comparison is not vacuous: one changed fact in wire.md is reported."""
    text = WIRE_MD.read_text()
    assert change[0] in text
    doctored = parse_wire_md(text.replace(change[0], change[1], 1))
    diffs = [d for n in MODULES for d in differences(doctored[n], describe_module(n, MODULES[n]), n)]
    assert diffs


def test_modules_load_once_under_stable_names():
    import sys

    for name, module in MODULES.items():
        assert sys.modules[f"{name}_thrift"] is module
    assert idl.scoot.bazel is idl.bazel and idl.worker.bazel is idl.bazel and idl.sched.bazel is idl.bazel
    run = idl.scoot.RunStatus(status=idl.scoot.RunStatusState.COMPLETE, runId="0",
                              bazelResult=idl.bazel.ActionResult(exitCode=0))
    assert isinstance(run.bazelResult, idl.scoot.bazel.ActionResult)

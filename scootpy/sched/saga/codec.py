"""Saga payload encodings, byte-compatible with the reference (spec scheduler.md §5.3).

* The job blob (StartSaga data) is ``sched.Job`` in strict TBinaryProtocol, as Go's TSerializer writes it.
* Task data (StartTask/EndTask) is ``worker.RunStatus`` in Thrift TJSONProtocol, as Go's thrift library
  (2016) writes it: fields in declaration order, only set ones, strings escaped like Go's ``json.Marshal``
  (``<``, ``>``, ``&``, U+2028/9 as ``\\u00XX``), bools as 1/0, binary as padded base64.

This module is the only place besides the Thrift edges that touches the Thrift structs of these payloads.
"""

import base64
import json
import math
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

from thriftpy2.thrift import TType
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.protocol.binary import TBinaryProtocol
from thriftpy2.utils import serialize

from scootpy.idl import sched, scoot, worker
from scootpy.runs import RunStatus, run_status_from_thrift, run_status_to_thrift
from scootpy.thriftrpc import missing_required


class JobBlobError(ValueError):
    """A job blob cannot be decoded into a ``sched.Job``."""


# --- job blob ---------------------------------------------------------------------------------------------------

def encode_job(job: Any) -> bytes:
    """Serialize a ``sched.Job`` exactly as the reference stores it (set optional fields are all written)."""
    missing = missing_required(job)
    if missing:
        raise JobBlobError(f"job lacks required field {missing[0]}")
    return serialize(job, TBinaryProtocolFactory())


# Smallest encoding of one container element per wire type: no announced count can outrun the blob.
_MIN_ELEMENT_BYTES = {TType.BOOL: 1, TType.BYTE: 1, TType.DOUBLE: 8, TType.I16: 2, TType.I32: 4, TType.I64: 8,
                      TType.STRING: 4, TType.STRUCT: 1, TType.MAP: 6, TType.SET: 5, TType.LIST: 5}


class _BlobReader:
    """Read-only in-memory transport: a short read or an impossible container header is an error at once."""

    def __init__(self, data: bytes):
        self._data = data
        self._pos = 0

    def read(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise JobBlobError("job blob ends early")
        chunk = self._data[self._pos:self._pos + n]
        self._pos += n
        return chunk

    def check_container(self, count: int, *element_types: int) -> None:
        if any(t not in _MIN_ELEMENT_BYTES for t in element_types):
            raise JobBlobError(f"job blob has a container of invalid element type {element_types}")
        if count < 0 or count * sum(_MIN_ELEMENT_BYTES[t] for t in element_types) > len(self._data) - self._pos:
            raise JobBlobError(f"job blob announces {count} container items it cannot hold")


def decode_job(blob: bytes) -> Any:
    """Parse a job blob into a ``sched.Job``; JobBlobError if it is not one (missing required fields too).

    Safe on damaged input: sizes are checked against the blob before anything is allocated or looped over.
    """
    if not blob:
        raise JobBlobError("empty job blob")
    job = sched.Job()
    try:
        TBinaryProtocol(_BlobReader(bytes(blob)), strict_read=False).read_struct(job)
    except JobBlobError:
        raise
    except Exception as exc:
        raise JobBlobError(f"cannot decode job blob: {exc}") from exc
    missing = missing_required(job)
    if missing:
        raise JobBlobError(f"Required field {missing[0]} is not set")
    return job


def job_task_ids(blob: Optional[bytes]) -> List[str]:
    """Task ids of a job blob in stored order; [] if it does not decode."""
    try:
        job = decode_job(blob or b"")
    except JobBlobError:
        return []
    return [t.taskId or "" for t in (job.jobDefinition.tasks or [])]


# --- TJSONProtocol ----------------------------------------------------------------------------------------------

_TYPE_NAMES = {TType.BOOL: "tf", TType.BYTE: "i8", TType.I16: "i16", TType.I32: "i32", TType.I64: "i64",
               TType.DOUBLE: "dbl", TType.STRING: "str", TType.BINARY: "str", TType.STRUCT: "rec",
               TType.MAP: "map", TType.LIST: "lst", TType.SET: "set"}
_NAME_TYPES = {"tf": TType.BOOL, "i8": TType.BYTE, "i16": TType.I16, "i32": TType.I32, "i64": TType.I64,
               "dbl": TType.DOUBLE, "str": TType.STRING, "rec": TType.STRUCT, "map": TType.MAP,
               "lst": TType.LIST, "set": TType.SET}
_INT_TYPES = (TType.BYTE, TType.I16, TType.I32, TType.I64)
_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "<": "\\u003c", ">": "\\u003e",
               "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json_string(text: str) -> str:
    """Quote ``text`` exactly as Go 1.13's ``json.Marshal`` does (HTML-safe escaping)."""
    out = ['"']
    for ch in text:
        esc = _GO_ESCAPES.get(ch)
        if esc is None and ch < " ":
            esc = f"\\u{ord(ch):04x}"
        elif esc is None and "\ud800" <= ch <= "\udfff":
            esc = "\ufffd"
        out.append(esc or ch)
    out.append('"')
    return "".join(out)


def _spec_parts(spec: tuple) -> Tuple[int, Any]:
    """(ttype, type argument or None) of a thrift_spec entry."""
    return spec[0], (spec[2] if len(spec) == 4 else None)


def _encode_number(ttype: int, value: Any, as_key: bool) -> str:
    if ttype == TType.DOUBLE:
        if math.isnan(value) or math.isinf(value):
            text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            return f'"{text}"'
        text = _go_float(float(value))
    else:
        text = str(int(value))
    return f'"{text}"' if as_key else text


def _go_float(value: float) -> str:
    """``strconv.FormatFloat(v, 'g', -1, 64)``: shortest digits, exponent form below 1e-4 or from 1e6."""
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    parts = Decimal(repr(abs(value))).as_tuple()
    point = len(parts.digits) + parts.exponent
    digits = "".join(map(str, parts.digits)).rstrip("0")
    text = "-" if value < 0 else ""
    exp = point - 1
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{text}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{text}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return text + digits + "0" * (point - len(digits))
    return f"{text}{digits[:point]}.{digits[point:]}"


def _encode_value(ttype: int, arg: Any, value: Any, as_key: bool = False) -> str:
    if ttype == TType.BOOL:
        return _encode_number(TType.I32, 1 if value else 0, as_key)
    if ttype in _INT_TYPES or ttype == TType.DOUBLE:
        return _encode_number(ttype, value, as_key)
    if ttype == TType.BINARY or (ttype == TType.STRING and isinstance(value, (bytes, bytearray))):
        return '"' + base64.b64encode(bytes(value)).decode("ascii") + '"'
    if ttype == TType.STRING:
        return go_json_string(value)
    if ttype == TType.STRUCT:
        return _encode_struct(value)
    if ttype == TType.MAP:
        (ktype, karg), (vtype, varg) = _container_arg(arg[0]), _container_arg(arg[1])
        items = ",".join(f"{_encode_value(ktype, karg, k, True)}:{_encode_value(vtype, varg, v)}"
                         for k, v in value.items())
        return f'["{_TYPE_NAMES[ktype]}","{_TYPE_NAMES[vtype]}",{len(value)},{{{items}}}]'
    etype, earg = _container_arg(arg)
    items = "".join("," + _encode_value(etype, earg, v) for v in value)
    return f'["{_TYPE_NAMES[etype]}",{len(value)}{items}]'


def _container_arg(arg: Any) -> Tuple[int, Any]:
    """Thriftpy2 describes container element types as ``ttype`` or ``(ttype, argument)``."""
    return (arg[0], arg[1]) if isinstance(arg, tuple) else (arg, None)


def _zero(ttype: int) -> Any:
    return {TType.STRING: "", TType.BOOL: False, TType.DOUBLE: 0.0}.get(ttype, 0)


def _encode_struct(obj: Any) -> str:
    parts = []
    for fid, spec in obj.thrift_spec.items():
        ttype, arg = _spec_parts(spec)
        value = getattr(obj, spec[1])
        if value is None:
            if spec[-1] is not True or ttype in (TType.STRUCT, TType.MAP, TType.LIST, TType.SET):
                continue
            value = _zero(ttype)
        parts.append(f'"{fid}":{{"{_TYPE_NAMES[ttype]}":{_encode_value(ttype, arg, value)}}}')
    return "{" + ",".join(parts) + "}"


def tjson_dumps(obj: Any) -> bytes:
    """Encode a thriftpy2 struct with Go's TJSONProtocol byte for byte."""
    return _encode_struct(obj).encode("utf-8")


def _decode_value(ttype: int, arg: Any, raw: Any) -> Any:
    if ttype == TType.BOOL:
        return bool(int(raw))
    if ttype in _INT_TYPES:
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise ValueError(f"expected an integer, got {raw!r}")
        return int(raw)
    if ttype == TType.DOUBLE:
        return float(raw)
    if ttype == TType.BINARY:
        return base64.b64decode(raw + "=" * (-len(raw) % 4))
    if ttype == TType.STRING:
        if not isinstance(raw, str):
            raise ValueError(f"expected a string, got {raw!r}")
        return raw
    if ttype == TType.STRUCT:
        return _decode_struct(arg(), raw)
    if ttype == TType.MAP:
        (ktype, karg), (vtype, varg) = _container_arg(arg[0]), _container_arg(arg[1])
        return {_decode_value(ktype, karg, k): _decode_value(vtype, varg, v) for k, v in raw[3].items()}
    etype, earg = _container_arg(arg)
    values = [_decode_value(etype, earg, v) for v in raw[2:]]
    return set(values) if ttype == TType.SET else values


def _decode_field(obj: Any, fid: str, wrapped: Any) -> None:
    spec = obj.thrift_spec.get(int(fid))
    if spec is None or not isinstance(wrapped, dict) or len(wrapped) != 1:
        return
    (type_name, raw), = wrapped.items()
    ttype, arg = _spec_parts(spec)
    wire_type = TType.STRING if ttype == TType.BINARY else ttype
    if _NAME_TYPES.get(type_name) != wire_type:
        return
    setattr(obj, spec[1], _decode_value(ttype, arg, raw))


def _decode_struct(obj: Any, raw: Dict[str, Any]) -> Any:
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    for fid, wrapped in raw.items():
        _decode_field(obj, fid, wrapped)
    return obj


def tjson_loads_into(obj: Any, data: bytes) -> Optional[Exception]:
    """Decode TJSON ``data`` into the struct ``obj`` field by field, like Go's TDeserializer.

    Fields read before an error stay set (Go leaves a half-filled struct too); the error, if any, is returned
    rather than raised because the reference ignores it.
    """
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        doc = None  # damaged: read it field by field below, keeping what precedes the damage
    try:
        if doc is not None:
            _decode_struct(obj, doc)
            return None
        return _decode_fields_lenient(obj, text, json.JSONDecoder())
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        return exc


def _decode_fields_lenient(obj: Any, text: str, decoder: json.JSONDecoder) -> Optional[Exception]:
    pos = _skip_ws(text, 0)
    if text[pos:pos + 1] != "{":
        raise ValueError("expected '{'")
    pos = _skip_ws(text, pos + 1)
    if text[pos:pos + 1] == "}":
        return None
    while True:
        key, pos = decoder.raw_decode(text, pos)
        pos = _skip_ws(text, pos)
        if text[pos:pos + 1] != ":":
            raise ValueError(f"expected ':' at {pos}")
        value, pos = decoder.raw_decode(text, _skip_ws(text, pos + 1))
        _decode_field(obj, key, value)
        pos = _skip_ws(text, pos)
        if text[pos:pos + 1] == "}":
            return None
        if text[pos:pos + 1] != ",":
            raise ValueError(f"expected ',' or '}}' at {pos}")
        pos = _skip_ws(text, pos + 1)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


# --- RunStatus payloads -----------------------------------------------------------------------------------------

def encode_run_status(status: RunStatus) -> bytes:
    """The task-data payload the reference scheduler writes for a run status."""
    return tjson_dumps(run_status_to_thrift(status, worker))


def decode_run_status(data: Optional[bytes]) -> RunStatus:
    """Read a task-data payload; empty, None or undecodable bytes give an all-default (UNKNOWN) status."""
    wrs = worker.RunStatus()
    if data:
        tjson_loads_into(wrs, data)
    return run_status_from_thrift(wrs)


def payload_to_scoot_run_status(data: Optional[bytes]) -> Optional[Any]:
    """Convert task data to the ``scoot.RunStatus`` GetStatus returns, or None (spec scheduler.md §2.2).

    None for None data; empty or undecodable data gives ``{status: UNKNOWN, runId: ""}``; jobId, taskId and tag
    are dropped; a status value with no name (not a known state) gives None, as in the reference.
    """
    if data is None:
        return None
    wrs = worker.RunStatus()
    if data:
        tjson_loads_into(wrs, data)
    status = wrs.status if wrs.status is not None else 0
    if not isinstance(status, int) or status not in scoot.RunStatusState._VALUES_TO_NAMES:
        return None
    return scoot.RunStatus(status=status, runId=wrs.runId or "", outUri=wrs.outUri,
                           errUri=wrs.errUri, error=wrs.error, exitCode=wrs.exitCode, snapshotId=wrs.snapshotId,
                           bazelResult=wrs.bazelResult)

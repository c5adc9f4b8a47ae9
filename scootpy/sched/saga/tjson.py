"""Thrift TJSONProtocol exactly as Go's thrift library (2016, the reference's) writes and reads it.

Fields go in declaration order, only set ones (required ones always); strings are escaped like Go's
``json.Marshal`` (``<``, ``>``, ``&``, U+2028/9 and control characters as ``\\u00XX``); bools are 1/0 and
binary is padded base64. No Scoot IDL has a double field, so doubles are not supported. Reading is lenient
like Go's: unknown fields and fields of the wrong type are skipped, and fields read before a decoding error
stay set.
"""

import base64
import json
from typing import Any, Dict, Optional, Tuple

from thriftpy2.thrift import TType

_TYPE_NAMES = {TType.BOOL: "tf", TType.BYTE: "i8", TType.I16: "i16", TType.I32: "i32", TType.I64: "i64",
               TType.STRING: "str", TType.BINARY: "str", TType.STRUCT: "rec", TType.MAP: "map",
               TType.LIST: "lst", TType.SET: "set"}
_NAME_TYPES = {name: ttype for ttype, name in _TYPE_NAMES.items() if ttype != TType.BINARY}
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


def _encode_int(value: int, as_key: bool) -> str:
    return f'"{int(value)}"' if as_key else str(int(value))


def _encode_value(ttype: int, arg: Any, value: Any, as_key: bool = False) -> str:
    if ttype == TType.BOOL:
        return _encode_int(1 if value else 0, as_key)
    if ttype in _INT_TYPES:
        return _encode_int(value, as_key)
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
    if ttype not in (TType.LIST, TType.SET):
        raise ValueError(f"TJSON encoding of Thrift type {ttype} is not supported (no Scoot IDL uses it)")
    etype, earg = _container_arg(arg)
    items = "".join("," + _encode_value(etype, earg, v) for v in value)
    return f'["{_TYPE_NAMES[etype]}",{len(value)}{items}]'


def _container_arg(arg: Any) -> Tuple[int, Any]:
    """Thriftpy2 describes container element types as ``ttype`` or ``(ttype, argument)``."""
    return (arg[0], arg[1]) if isinstance(arg, tuple) else (arg, None)


def _zero(ttype: int) -> Any:
    return {TType.STRING: "", TType.BOOL: False}.get(ttype, 0)


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

"""Render thriftpy2 structs exactly as the reference's Go CLIs print them.

``go_json(obj)`` is Go's ``json.Marshal`` of the thrift-go struct: compact, fields in IDL order, map keys
sorted, ``omitempty`` on optional fields (absent pointers and empty containers are dropped), enums as
their names, ``[]byte`` as base64 and Go's escaping (``<``, ``>``, ``&``, U+2028/9 as ``\\u....``;
non-ASCII kept raw). ``go_string(obj)`` is Go's ``%+v`` of the struct as its ``String()`` method prints
it (``JobStatus({ID:x Status:COMPLETED ...})``), except that optional fields print their values instead
of pointer addresses.
"""

import base64
from typing import Any, Iterator, Tuple

from thriftpy2.thrift import TType

_INITIALISMS = {"id": "ID", "url": "URL", "uri": "URI", "http": "HTTP", "grpc": "GRPC"}
_SUFFIXES_RENAMED = ("Args", "Result")


def go_name(field: str) -> str:
    """The Go field name thrift's Go generator gives an IDL field (``runId`` -> ``RunId``, ``id`` -> ``ID``)."""
    if field.lower() in _INITIALISMS:
        return _INITIALISMS[field.lower()]
    name = "".join(part[:1].upper() + part[1:] for part in field.split("_"))
    return name + "_" if name.endswith(_SUFFIXES_RENAMED) else name


def _fields(obj: Any) -> Iterator[Tuple[tuple, Any]]:
    for fid in sorted(obj.thrift_spec):
        spec = obj.thrift_spec[fid]
        yield spec, getattr(obj, spec[1], None)


def _enum_name(enum_cls: Any, value: int) -> str:
    return enum_cls._VALUES_TO_NAMES.get(value, str(value))


# --- JSON -------------------------------------------------------------------------------------------------

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json_string(text: Any) -> str:
    """Quote ``text`` as Go's encoding/json does (HTML-safe; invalid UTF-8 becomes U+FFFD)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    out = ['"']
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch in _HTML_ESCAPES:
            out.append(_HTML_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_value(ttype: int, extra: Any, value: Any) -> str:
    if ttype == TType.STRUCT:
        return go_json(value)
    if ttype in (TType.LIST, TType.SET):
        if value is None:
            return "null"
        etype, eextra = extra if isinstance(extra, tuple) else (extra, None)
        return "[" + ",".join(_json_value(etype, eextra, v) for v in value) + "]"
    if ttype == TType.MAP:
        if value is None:
            return "null"
        (ktype, kextra), (vtype, vextra) = (_split(extra[0]), _split(extra[1]))
        items = sorted((_map_key(ktype, kextra, k), v) for k, v in value.items())
        return "{" + ",".join(f"{k}:{_json_value(vtype, vextra, v)}" for k, v in items) + "}"
    if ttype == TType.BOOL:
        return "true" if value else "false"
    if ttype == TType.I32 and extra is not None:
        return go_json_string(_enum_name(extra, value))
    if ttype in (TType.BYTE, TType.I16, TType.I32, TType.I64):
        return str(int(value))
    if ttype == TType.DOUBLE:
        return repr(float(value))
    if ttype == 18 or isinstance(value, (bytes, bytearray)):  # thriftpy2's BINARY: Go []byte is base64
        return go_json_string(base64.b64encode(bytes(value)).decode("ascii"))
    return go_json_string(value)


def _split(spec: Any) -> Tuple[int, Any]:
    return spec if isinstance(spec, tuple) else (spec, None)


def _map_key(ktype: int, kextra: Any, key: Any) -> str:
    if ktype == TType.I32 and kextra is not None:
        return go_json_string(_enum_name(kextra, key))
    return go_json_string(str(key) if not isinstance(key, (str, bytes)) else key)


def _zero(ttype: int, extra: Any) -> Any:
    if ttype in (TType.STRUCT, TType.LIST, TType.SET, TType.MAP):
        return None
    if ttype == TType.STRING:
        return ""
    if ttype == 18:
        return b""
    return False if ttype == TType.BOOL else 0


def go_json(obj: Any) -> str:
    """``json.Marshal`` of the thrift-go struct equivalent to ``obj`` (a thriftpy2 struct, or None)."""
    if obj is None:
        return "null"
    parts = []
    for spec, value in _fields(obj):
        ttype, name, required = spec[0], spec[1], spec[-1]
        extra = spec[2] if len(spec) == 4 else None
        if not required and (value is None or (ttype in (TType.LIST, TType.SET, TType.MAP, 18) and not value)):
            continue
        if value is None:
            value = _zero(ttype, extra)
        parts.append(f"{go_json_string(name)}:{_json_value(ttype, extra, value)}")
    return "{" + ",".join(parts) + "}"


# --- %+v -------------------------------------------------------------------------------------------------

def _text_value(ttype: int, extra: Any, value: Any, optional: bool) -> str:
    if value is None:
        return "<nil>" if optional or ttype in (TType.STRUCT,) else ("map[]" if ttype == TType.MAP else "[]")
    if ttype == TType.STRUCT:
        return go_string(value)
    if ttype in (TType.LIST, TType.SET):
        etype, eextra = _split(extra)
        return "[" + " ".join(_text_value(etype, eextra, v, False) for v in value) + "]"
    if ttype == TType.MAP:
        (ktype, kextra), (vtype, vextra) = _split(extra[0]), _split(extra[1])
        items = sorted((_text_value(ktype, kextra, k, False), v) for k, v in value.items())
        return "map[" + " ".join(f"{k}:{_text_value(vtype, vextra, v, False)}" for k, v in items) + "]"
    if ttype == TType.BOOL:
        return "true" if value else "false"
    if ttype == TType.I32 and extra is not None:
        return _enum_name(extra, value)
    if isinstance(value, (bytes, bytearray)):
        return "[" + " ".join(str(b) for b in value) + "]"
    return str(value)


def go_string(obj: Any) -> str:
    """The thrift-go ``String()`` of ``obj``: ``Name({Field:value ...})``, optional values shown, nil as ``<nil>``."""
    if obj is None:
        return "<nil>"
    parts = []
    for spec, value in _fields(obj):
        ttype, name, required = spec[0], spec[1], spec[-1]
        extra = spec[2] if len(spec) == 4 else None
        optional = not required and ttype not in (TType.LIST, TType.SET, TType.MAP)
        parts.append(f"{go_name(name)}:{_text_value(ttype, extra, value, optional)}")
    return f"{type(obj).__name__}({{{' '.join(parts)}}})"


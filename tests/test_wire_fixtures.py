"""Golden wire data: every message recorded between reference peers decodes with our IDLs, re-encodes to the
same bytes; our ThriftClient sends byte-identical calls (seqids included) and decodes the recorded replies;
our ThriftServer accepts the recorded calls and, given the recorded values, answers byte-identical replies.

The raw helpers here (``encode_message``, ``decode_message``, ``read_message``) use thriftpy2's binary codec
on plain byte buffers, independent of scootpy.thriftrpc; other wire tests import them.
"""

import io
import json
import socket
from collections import OrderedDict
from typing import Any, Tuple

import gevent
import pytest
from thriftpy2.protocol.binary import TBinaryProtocol
from thriftpy2.thrift import TApplicationException, TMessageType, TType

from scootpy.idl import scoot, worker
from scootpy.thriftrpc import ThriftClient, ThriftServer
from tests.procs import FIXTURES

WIRE = FIXTURES / "wire"
SERVICES = {"scootapi-scheduler": scoot.CloudScoot, "scheduler-worker": worker.Worker}


class Recorder:
    """A readable byte source that remembers every byte handed out."""

    def __init__(self, source):
        self.source = source
        self.seen = bytearray()

    def read(self, n: int) -> bytes:
        data = self.source.read(n)
        if len(data) < n:
            raise EOFError(f"wanted {n} bytes, got {len(data)}")
        self.seen += data
        return data


def encode_message(name: str, mtype: int, seqid: int, body: Any, strict: bool = True) -> bytes:
    """One Thrift message (binary protocol, unframed) as bytes."""
    buf = io.BytesIO()
    proto = TBinaryProtocol(buf, strict_read=False, strict_write=strict)
    proto.write_message_begin(name, mtype, seqid)
    body.write(proto)
    return buf.getvalue()


def read_message(source, service) -> Tuple[str, int, int, Any]:
    """Read one message of ``service`` from a file-like object: (name, type, seqid, args/result/exception)."""
    proto = TBinaryProtocol(source, strict_read=False)
    name, mtype, seqid = proto.read_message_begin()
    if mtype == TMessageType.EXCEPTION:
        body = TApplicationException()
    elif mtype == TMessageType.CALL:
        body = getattr(service, name + "_args")()
    else:
        body = getattr(service, name + "_result")()
    body.read(proto)
    return name, mtype, seqid, body


def decode_message(data: bytes, service) -> Tuple[str, int, int, Any, int]:
    """Decode bytes holding one message; the last item is the number of trailing bytes."""
    buf = io.BytesIO(data)
    name, mtype, seqid, body = read_message(Recorder(buf), service)
    return name, mtype, seqid, body, len(data) - buf.tell()


def to_plain(value: Any, spec: Any = None) -> Any:
    """A JSON view of a thriftpy2 value in messages.json's shape (enums by name, absent fields as None)."""
    if hasattr(value, "thrift_spec"):
        return {entry[1]: to_plain(getattr(value, entry[1]), entry[2] if len(entry) == 4 else None)
                for entry in value.thrift_spec.values()}
    if isinstance(spec, type) and hasattr(spec, "_VALUES_TO_NAMES") and value is not None:
        return spec._VALUES_TO_NAMES[value]
    if isinstance(value, list):
        inner = spec[1] if isinstance(spec, tuple) else None
        return [to_plain(v, inner) for v in value]
    if isinstance(value, dict):
        kspec, vspec = spec if isinstance(spec, tuple) else (None, None)
        return {to_plain(k, _sub(kspec)): to_plain(v, _sub(vspec)) for k, v in value.items()}
    return value


def _sub(spec: Any) -> Any:
    return spec[1] if isinstance(spec, tuple) else None


def _message_view(mtype: int, body: Any) -> dict:
    if mtype == TMessageType.EXCEPTION:
        return {"TApplicationException": {"message": body.message, "type": body.type}}
    if mtype == TMessageType.CALL:
        return {"args": to_plain(body)}
    return {"result": {k: v for k, v in to_plain(body).items() if v is not None}}


def load_entries() -> list:
    return json.loads((WIRE / "messages.json").read_text())


def service_of(entry: dict):
    return SERVICES[entry["file"].split("/")[0]]


ENTRIES = load_entries()
_TYPES = {"CALL": TMessageType.CALL, "REPLY": TMessageType.REPLY, "EXCEPTION": TMessageType.EXCEPTION}


def test_fixture_set_is_complete():
    assert len(ENTRIES) == 48
    files = {p.relative_to(WIRE).as_posix() for p in WIRE.glob("*/*.bin")}
    assert files == {e["file"] for e in ENTRIES}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_recorded_message_decodes_and_reencodes_byte_for_byte(entry):
    data = (WIRE / entry["file"]).read_bytes()
    name, mtype, seqid, body, trailing = decode_message(data, service_of(entry))
    assert (name, mtype, seqid, trailing) == (entry["method"], _TYPES[entry["message_type"]], entry["seqid"], 0)
    expected = dict(entry["decoded"])
    expected.pop("trailing_bytes")
    if "TApplicationException" in expected:
        expected["TApplicationException"].pop("type_name")
    assert _message_view(mtype, body) == expected
    assert encode_message(name, mtype, seqid, body) == data


class PlaybackServer:
    """A raw socket server that records each call's bytes and answers with the recorded reply bytes."""

    def __init__(self, service, replies):
        self.service = service
        self.replies = list(replies)
        self.calls = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.greenlet = gevent.spawn(self._serve)

    @property
    def addr(self) -> str:
        return "127.0.0.1:%d" % self.listener.getsockname()[1]

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as source:
            for reply in self.replies:
                recorder = Recorder(source)
                read_message(recorder, self.service)
                self.calls.append(bytes(recorder.seen))
                conn.sendall(reply)

    def close(self) -> None:
        self.greenlet.kill()
        self.listener.close()


def _connections() -> "OrderedDict[str, list]":
    groups: "OrderedDict[str, list]" = OrderedDict()
    for entry in ENTRIES:
        groups.setdefault(entry["connection"], []).append(entry)
    return groups


CONNECTIONS = _connections()


@pytest.mark.parametrize("connection", list(CONNECTIONS))
def test_client_sends_reference_bytes_and_decodes_reference_replies(connection):
    entries = CONNECTIONS[connection]
    calls = [e for e in entries if e["message_type"] == "CALL"]
    answers = [e for e in entries if e["message_type"] != "CALL"]
    service = service_of(calls[0])
    server = PlaybackServer(service, [(WIRE / e["file"]).read_bytes() for e in answers])
    client = ThriftClient(service, server.addr, timeout=10)
    try:
        for call, answer in zip(calls, answers):
            data = (WIRE / call["file"]).read_bytes()
            _name, _mtype, _seqid, args, _ = decode_message(data, service)
            values = [getattr(args, entry[1]) for entry in args.thrift_spec.values()]
            if answer["message_type"] == "EXCEPTION":
                with pytest.raises(TApplicationException) as info:
                    client.call(call["method"], *values)
                assert info.value.type == TApplicationException.INTERNAL_ERROR
                assert info.value.message == answer["decoded"]["TApplicationException"]["message"]
            else:
                result = client.call(call["method"], *values)
                expected = answer["decoded"]["result"].get("success")
                assert to_plain(result) == expected
            assert server.calls[-1] == data, f"{call['file']}: our bytes differ from the reference's"
    finally:
        client.close()
        server.close()
    assert len(server.calls) == len(calls)


def test_helpers_encode_old_style_headers_too():
    body = scoot.CloudScoot.GetSchedulerStatus_args()
    strict = encode_message("GetSchedulerStatus", TMessageType.CALL, 7, body)
    legacy = encode_message("GetSchedulerStatus", TMessageType.CALL, 7, body, strict=False)
    assert strict[:4] == b"\x80\x01\x00\x01" and legacy[:4] == b"\x00\x00\x00\x12"
    for data in (strict, legacy):
        assert decode_message(data, scoot.CloudScoot)[:3] == ("GetSchedulerStatus", TMessageType.CALL, 7)


def test_enum_fields_render_by_name():
    status = worker.RunStatus(status=worker.Status.TIMEDOUT, runId="1")
    assert to_plain(status)["status"] == "TIMEDOUT"
    assert TType.I32 == worker.RunStatus.thrift_spec[1][0]


class Playback:
    """A handler answering each call with the next recorded reply (or recorded error text)."""

    def __init__(self, answers):
        self.answers = list(answers)

    def __getattr__(self, method):
        def answer(*_args):
            name, mtype, _seqid, body, _ = self.answers.pop(0)
            assert name == method
            if mtype == TMessageType.EXCEPTION:
                raise RuntimeError(body.message.split(": ", 1)[1])
            return body.success if 0 in body.thrift_spec else None

        return answer


@pytest.mark.parametrize("connection", list(CONNECTIONS))
def test_server_accepts_reference_calls_and_answers_reference_bytes(connection):
    """Given the recorded values, our ThriftServer writes exactly the bytes the Go server wrote."""
    entries = CONNECTIONS[connection]
    service = service_of(entries[0])
    calls = [(WIRE / e["file"]).read_bytes() for e in entries if e["message_type"] == "CALL"]
    replies = [(WIRE / e["file"]).read_bytes() for e in entries if e["message_type"] != "CALL"]
    server = ThriftServer(service, Playback(decode_message(r, service) for r in replies), ("127.0.0.1", 0))
    server.start()
    try:
        with socket.create_connection(server.address) as sock, sock.makefile("rb") as source:
            for call, reply in zip(calls, replies):
                sock.sendall(call)
                recorder = Recorder(source)
                read_message(recorder, service)
                assert bytes(recorder.seen) == reply
    finally:
        server.stop()


@pytest.mark.parametrize("encoder", ["c", "pure"])
def test_thriftio_encoder_writes_reference_bytes(monkeypatch, encoder):
    """Both of scootpy.thriftio's encoders (thriftpy2's C one and the pure fallback) give the Go bytes."""
    from scootpy import thriftio

    if encoder == "pure":
        monkeypatch.setattr(thriftio, "TCyBinaryProtocol", None)
    elif thriftio.TCyBinaryProtocol is None:
        pytest.skip("thriftpy2 was built without its C extensions")
    for entry in ENTRIES:
        data = (WIRE / entry["file"]).read_bytes()
        name, mtype, seqid, body, _ = decode_message(data, service_of(entry))
        assert thriftio.encode_message(name, mtype, seqid, body) == data, entry["file"]

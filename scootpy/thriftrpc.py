"""Thrift over plain TCP, as the reference speaks it: unframed, binary protocol, strict writes, lenient reads.

``ThriftServer`` serves one handler on gevent, a greenlet per connection. ``ThriftClient`` calls a remote
service over one lazily dialled connection and re-dials after a failed call. Both share ``SocketTransport``,
which buffers writes, enforces ``Limits`` on what a peer may send, and times out peers that stall
mid-message while letting idle, well-behaved connections wait forever.
"""

import logging
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

import gevent
import gevent.server
import thriftpy2.protocol.binary as binary
from thriftpy2.protocol.binary import TBinaryProtocol
from thriftpy2.protocol.exc import TProtocolException
from thriftpy2.thrift import TApplicationException, TException, TMessageType, TType

log = logging.getLogger(__name__)

MiB = 1 << 20

# Element types a peer may announce in a list, set or map header, with their smallest encoded size. Every
# element then costs at least one byte of the message budget, so no announced count can loop without reading.
_MIN_ELEMENT_BYTES = {TType.BOOL: 1, TType.BYTE: 1, TType.DOUBLE: 8, TType.I16: 2, TType.I32: 4, TType.I64: 8,
                      TType.STRING: 4, TType.STRUCT: 1, TType.MAP: 6, TType.SET: 5, TType.LIST: 5}


@dataclass(frozen=True)
class Limits:
    """What a peer may send in one message; anything larger closes that connection."""

    max_message_bytes: int = 64 * MiB
    max_string_bytes: int = 64 * MiB
    max_container_items: int = 16 * MiB
    stall_timeout: float = 30.0


class PeerError(Exception):
    """The peer broke the protocol or a limit; the connection must be dropped."""


class PeerClosed(PeerError):
    """The peer closed the connection."""


class SocketTransport:
    """A byte stream over a socket with write buffering and per-message read budgets."""

    def __init__(self, sock: socket.socket, limits: Limits = Limits(), io_timeout: Optional[float] = None):
        self.sock = sock
        self.limits = limits
        self.io_timeout = io_timeout
        self._rbuf = bytearray()
        self._wbuf = bytearray()
        self._budget = limits.max_message_bytes
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(io_timeout)

    def wait_for_message(self) -> bool:
        """Wait, with no time limit, for the first byte of the next message. False when the peer closed."""
        self._budget = self.limits.max_message_bytes
        if self._rbuf:
            return True
        self.sock.settimeout(self.io_timeout)
        try:
            self._fill(1)
        except PeerClosed:
            return False
        return True

    def begin_reply(self) -> None:
        """Reset the read budget and the full I/O timeout before reading a reply (client side)."""
        self._budget = self.limits.max_message_bytes
        self.sock.settimeout(self.io_timeout)

    def _fill(self, want: int) -> None:
        while len(self._rbuf) < want:
            chunk = self.sock.recv(max(65536, want - len(self._rbuf)))
            if not chunk:
                raise PeerClosed("connection closed by peer")
            self._rbuf += chunk
            # Once a message has begun, a peer that stalls is cut off rather than waited on forever.
            self.sock.settimeout(self.limits.stall_timeout if self.io_timeout is None
                                 else min(self.io_timeout, self.limits.stall_timeout))

    def read(self, n: int) -> bytes:
        if n < 0:
            raise PeerError(f"negative length {n}")
        if n > self._budget:
            raise PeerError(f"message exceeds {self.limits.max_message_bytes} bytes")
        if n > self.limits.max_string_bytes:  # only strings and binaries are read in pieces this large
            raise PeerError(f"string of {n} bytes exceeds limit {self.limits.max_string_bytes}")
        self._budget -= n
        try:
            self._fill(n)
        except socket.timeout:
            raise PeerError("timed out waiting for the peer") from None
        data = bytes(self._rbuf[:n])
        del self._rbuf[:n]
        return data

    def write(self, data: bytes) -> None:
        self._wbuf += data

    def flush(self) -> None:
        data, self._wbuf = bytes(self._wbuf), bytearray()
        self.sock.sendall(data)

    def discard_output(self) -> None:
        """Drop whatever was written since the last flush (a reply that failed half-way through encoding)."""
        self._wbuf = bytearray()

    def check_container(self, n: int, *element_types: int) -> None:
        """Refuse a container header whose count or element types no honest message could have."""
        for etype in element_types:
            if etype not in _MIN_ELEMENT_BYTES:
                raise PeerError(f"container announces invalid element type {etype}")
        least = n * sum(_MIN_ELEMENT_BYTES[t] for t in element_types)
        if n < 0 or n > self.limits.max_container_items or least > self._budget:
            raise PeerError(f"container of {n} items exceeds limits")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _guard(read_begin: Callable) -> Callable:
    """Wrap a thriftpy2 container-header reader so announced sizes are checked before any allocation."""

    def checked(inbuf):
        header = read_begin(inbuf)
        check = getattr(inbuf, "check_container", None)  # SocketTransport, or any bounded transport
        if check is not None:
            check(header[-1], *header[:-1])
        return header

    return checked


# thriftpy2's pure binary protocol looks these helpers up at call time; wrapping them lets our transport
# veto absurd container sizes. Strings are bounded by the per-message budget inside SocketTransport.read.
binary.read_list_begin = _guard(binary.read_list_begin)
binary.read_map_begin = _guard(binary.read_map_begin)


def _protocol(transport: SocketTransport) -> TBinaryProtocol:
    return TBinaryProtocol(transport, strict_read=False, strict_write=True)


def go_field_name(name: str) -> str:
    """The Go-generated name of an IDL field, as the reference puts it in error texts."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def missing_required(obj: Any, path: str = "") -> List[str]:
    """List the required fields (recursively) that are None in a thriftpy2 struct."""
    missing = []
    for spec in getattr(obj, "thrift_spec", {}).values():
        ttype, name, required = spec[0], spec[1], spec[-1]
        value = getattr(obj, name, None)
        where = f"{path}{name}"
        if value is None:
            if required is True:
                missing.append(where)
            continue
        missing += _missing_in_value(ttype, spec, value, where)
    return missing


def _missing_in_value(ttype: int, spec: tuple, value: Any, where: str) -> List[str]:
    if ttype == TType.STRUCT:
        return missing_required(value, where + ".")
    if ttype in (TType.LIST, TType.SET) and isinstance(spec[2], tuple) and spec[2][0] == TType.STRUCT:
        return [m for i, v in enumerate(value) for m in missing_required(v, f"{where}[{i}].")]
    if ttype == TType.MAP and isinstance(spec[2][1], tuple) and spec[2][1][0] == TType.STRUCT:
        return [m for k, v in value.items() for m in missing_required(v, f"{where}[{k}].")]
    return []


class ThriftServer:
    """Serve one Thrift service on gevent: unframed binary protocol, many concurrent connections.

    Handler methods carry the IDL method names. A declared exception goes back as such; any other
    exception goes back as TApplicationException INTERNAL_ERROR ``Internal error processing <M>: <text>``
    and the connection keeps serving.
    """

    def __init__(self, service: Any, handler: Any, addr: Tuple[str, int], limits: Limits = Limits(),
                 metrics: Any = None, allow: Optional[Callable[[str], bool]] = None):
        self.service = service
        self.handler = handler
        self.limits = limits
        self.metrics = metrics
        self.allow = allow
        self._server = gevent.server.StreamServer(addr, self._handle)

    @property
    def address(self) -> Tuple[str, int]:
        return self._server.address[:2]

    def start(self) -> None:
        self._server.start()

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self, timeout: float = 1.0) -> None:
        self._server.stop(timeout=timeout)

    def _handle(self, sock: socket.socket, peer: Tuple) -> None:
        if self.allow is not None and not self.allow(peer[0]):
            log.info("refused thrift connection from %s", peer[0])
            sock.close()
            return
        transport = SocketTransport(sock, self.limits)
        proto = _protocol(transport)
        try:
            while transport.wait_for_message():
                if not self._serve_one(proto):
                    break
        except (PeerError, OSError, TException, struct.error, ValueError, RecursionError) as e:
            log.debug("dropping thrift connection from %s: %s", peer[0], e)
        except Exception:
            log.exception("dropping thrift connection from %s", peer[0])
        finally:
            transport.close()

    def _serve_one(self, proto: TBinaryProtocol) -> bool:
        """Read one call and answer it. Returns False when the connection must close."""
        name, _mtype, seqid = proto.read_message_begin()
        if name not in self.service.thrift_services:
            proto.skip(TType.STRUCT)
            self._send_exception(proto, name, seqid, TApplicationException.UNKNOWN_METHOD,
                                 f"Unknown function {name}")
            return True
        args = getattr(self.service, name + "_args")()
        args.read(proto)
        missing = missing_required(args)
        if missing:
            field = missing[0].rsplit(".", 1)[-1].split("[")[0]
            self._send_exception(proto, name, seqid, TApplicationException.PROTOCOL_ERROR,
                                 f"Required field {go_field_name(field)} is not set")
            return False
        self._call(proto, name, seqid, args)
        return True

    def _call(self, proto: TBinaryProtocol, name: str, seqid: int, args: Any) -> None:
        result = getattr(self.service, name + "_result")()
        error = self._invoke(name, args, result) or self._check_reply(name, result)
        if error is not None:
            self._internal_error(proto, name, seqid, error)
            return
        try:
            proto.write_message_begin(name, TMessageType.REPLY, seqid)
            result.write(proto)
        except Exception as e:  # the handler returned something that does not fit the IDL
            log.error("%s reply cannot be encoded: %r", name, e)
            proto.trans.discard_output()
            self._internal_error(proto, name, seqid, ValueError(f"reply cannot be encoded: {e}"))
            return
        proto.write_message_end()
        proto.trans.flush()

    def _invoke(self, name: str, args: Any, result: Any) -> Optional[Exception]:
        """Run the handler and fill ``result``; return the exception to report as INTERNAL_ERROR, if any."""
        values = [getattr(args, spec[1]) for spec in args.thrift_spec.values()]
        started = time.monotonic()
        try:
            value = getattr(self.handler, name)(*values)
            if 0 in result.thrift_spec:
                result.success = value
        except TException as e:
            if not self._declared(result, e):
                return e
        except Exception as e:
            log.warning("%s failed: %s", name, e, exc_info=log.isEnabledFor(logging.DEBUG))
            return e
        finally:
            if self.metrics is not None:
                self.metrics.observe_rpc(name, time.monotonic() - started)
        return None

    @staticmethod
    def _check_reply(name: str, result: Any) -> Optional[Exception]:
        """Refuse a reply a Go client would reject: no result for a non-void method, or a missing field."""
        answered = any(getattr(result, s[1]) is not None for s in result.thrift_spec.values())
        missing = missing_required(result)
        if 0 in result.thrift_spec and not answered:
            missing = ["success"]
        if missing:
            log.error("%s reply lacks required fields %s; sending an error instead", name, missing)
            return ValueError(f"reply lacks required field {missing[0]}")
        return None

    @staticmethod
    def _declared(result: Any, exc: Exception) -> bool:
        for spec in result.thrift_spec.values():
            if spec[1] != "success" and isinstance(exc, spec[2]):
                setattr(result, spec[1], exc)
                return True
        return False

    def _internal_error(self, proto: TBinaryProtocol, name: str, seqid: int, exc: Exception) -> None:
        text = getattr(exc, "message", None) or str(exc)
        self._send_exception(proto, name, seqid, TApplicationException.INTERNAL_ERROR,
                             f"Internal error processing {name}: {text}")

    @staticmethod
    def _send_exception(proto: TBinaryProtocol, name: str, seqid: int, kind: int, message: str) -> None:
        proto.write_message_begin(name, TMessageType.EXCEPTION, seqid)
        TApplicationException(kind, message).write(proto)
        proto.write_message_end()
        proto.trans.flush()


def parse_addr(addr: str, default_host: str = "localhost") -> Tuple[str, int]:
    """Split ``host:port`` (or ``:port``) into a tuple; raise ValueError with a clear text otherwise."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid address {addr!r}: want host:port")
    return (host.strip("[]") or default_host, int(port))


class ThriftClient:
    """A client for one remote service: ``client.RunJob(job)`` calls the remote ``RunJob``.

    Connects lazily, numbers calls 1, 2, 3 on each connection like the Go client, and after any failure
    other than a declared IDL exception closes the connection so the next call re-dials. Like the Go
    client it refuses a reply for another method or seqid, or one lacking a required field. Not safe for
    concurrent calls: give each greenlet its own client.
    """

    def __init__(self, service: Any, addr: str, timeout: float = 60.0, connect_timeout: float = 10.0,
                 limits: Limits = Limits()):
        self.service = service
        self.addr = addr
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.limits = limits
        self._transport: Optional[SocketTransport] = None
        self._seqid = 0

    def __getattr__(self, name: str) -> Callable:
        if name in self.service.thrift_services:
            return lambda *args: self.call(name, *args)
        raise AttributeError(name)

    def _connect(self) -> SocketTransport:
        if self._transport is None:
            sock = socket.create_connection(parse_addr(self.addr), timeout=self.connect_timeout)
            self._transport = SocketTransport(sock, self.limits, io_timeout=self.timeout)
            self._seqid = 0
        return self._transport

    def call(self, name: str, *args: Any) -> Any:
        """Call ``name`` with positional arguments in IDL order; return its result or raise its exception."""
        try:
            return self._call(name, args)
        except TException as e:
            if not isinstance(e, TApplicationException) and self._declared_by(name, e):
                raise
            self.close()
            raise
        except BaseException:
            self.close()
            raise

    def _declared_by(self, name: str, exc: Exception) -> bool:
        result = getattr(self.service, name + "_result")
        return any(s[1] != "success" and isinstance(exc, s[2]) for s in result.thrift_spec.values())

    def _call(self, name: str, args: tuple) -> Any:
        transport = self._connect()
        proto = _protocol(transport)
        self._seqid += 1
        call_args = getattr(self.service, name + "_args")()
        for spec, value in zip(call_args.thrift_spec.values(), args):
            setattr(call_args, spec[1], value)
        proto.write_message_begin(name, TMessageType.CALL, self._seqid)
        call_args.write(proto)
        proto.write_message_end()
        transport.flush()

        transport.begin_reply()
        return self._read_reply(proto, name)

    def _read_reply(self, proto: TBinaryProtocol, name: str) -> Any:
        got_name, mtype, seqid = proto.read_message_begin()
        if got_name != name:
            raise TApplicationException(TApplicationException.WRONG_METHOD_NAME, f"{name} failed: wrong method name")
        if seqid != self._seqid:
            raise TApplicationException(TApplicationException.BAD_SEQUENCE_ID,
                                        f"{name} failed: out of sequence response")
        if mtype == TMessageType.EXCEPTION:
            exc = TApplicationException()
            exc.read(proto)
            raise exc
        if mtype != TMessageType.REPLY:
            raise TApplicationException(TApplicationException.INVALID_MESSAGE_TYPE,
                                        f"{name} failed: invalid message type")
        result = getattr(self.service, name + "_result")()
        result.read(proto)
        missing = missing_required(result)
        if missing:
            field = go_field_name(missing[0].rsplit(".", 1)[-1].split("[")[0])
            raise TProtocolException(TProtocolException.INVALID_DATA, f"Required field {field} is not set")
        for spec in result.thrift_spec.values():
            value = getattr(result, spec[1])
            if spec[1] != "success" and value is not None:
                raise value
        return getattr(result, "success", None)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> "ThriftClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def serve_in_background(server: ThriftServer) -> gevent.Greenlet:
    """Start ``server`` and return the greenlet serving it (handy for tests and composed processes)."""
    server.start()
    return gevent.spawn(server.serve_forever)

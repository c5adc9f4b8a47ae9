"""Thrift over plain TCP, as the reference speaks it: unframed, binary protocol, strict writes, lenient reads.

``ThriftServer`` serves one handler on gevent, a greenlet per connection. ``ThriftClient`` calls a remote
service over one lazily dialled connection and re-dials after a failed call. Both speak through
``scootpy.thriftio.SocketTransport`` (size caps and stall timeouts; ``Limits`` is re-exported here).
"""

import logging
import socket
import struct
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import gevent
import gevent.server
from gevent.pool import Pool
from thriftpy2.protocol.binary import TBinaryProtocol
from thriftpy2.protocol.exc import TProtocolException
from thriftpy2.thrift import TApplicationException, TException, TMessageType, TType

from scootpy.lifecycle import GeventServerLifecycle
from scootpy.thriftio import Limits, PeerClosed, PeerError, SocketTransport, encode_message, protocol

__all__ = ["Limits", "PeerClosed", "PeerError", "ThriftClient", "ThriftServer", "go_field_name",
           "missing_required", "parse_addr", "serve_in_background"]

log = logging.getLogger(__name__)


def go_field_name(name: str) -> str:
    """The Go-generated name of an IDL field, as the reference puts it in error texts."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def missing_required(obj: Any, path: str = "") -> List[str]:
    """List the required fields (recursively) that are None in a thriftpy2 struct."""
    missing = []
    for name, required, nested in _check_plan(type(obj)):
        value = getattr(obj, name, None)
        if value is None:
            if required:
                missing.append(path + name)
        elif nested == "struct":
            missing += missing_required(value, f"{path}{name}.")
        elif nested == "list":
            missing += [m for i, v in enumerate(value) for m in missing_required(v, f"{path}{name}[{i}].")]
        elif nested == "map":
            missing += [m for k, v in value.items() for m in missing_required(v, f"{path}{name}[{k}].")]
    return missing


_PLANS: Dict[type, Tuple[Tuple[str, bool, Optional[str]], ...]] = {}  # one entry per struct class


def _check_plan(cls: type) -> Tuple[Tuple[str, bool, Optional[str]], ...]:
    """The fields of ``cls`` worth looking at: required ones and those holding structs."""
    plan = _PLANS.get(cls)
    if plan is None:
        steps = []
        for spec in getattr(cls, "thrift_spec", {}).values():
            ttype, inner = spec[0], spec[2] if len(spec) == 4 else None
            nested = None
            if ttype == TType.STRUCT:
                nested = "struct"
            elif ttype in (TType.LIST, TType.SET) and isinstance(inner, tuple) and inner[0] == TType.STRUCT:
                nested = "list"
            elif ttype == TType.MAP and isinstance(inner[1], tuple) and inner[1][0] == TType.STRUCT:
                nested = "map"
            if spec[-1] is True or nested:
                steps.append((spec[1], spec[-1] is True, nested))
        plan = _PLANS[cls] = tuple(steps)
    return plan


class ThriftServer(GeventServerLifecycle):
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
        describe = getattr(metrics, "describe", None)
        if describe is not None:
            describe("rpc_requests_total", "Thrift calls served, by method")
            describe("rpc_latency_seconds", "Time spent in the handler of a Thrift call, by method")
            describe("rpc_connections_refused_total", "Thrift connections closed at accept by -allow_from",
                     in_json=False)
        self.allow = allow
        self._server = gevent.server.StreamServer(addr, self._handle, spawn=Pool(limits.max_connections))

    def _handle(self, sock: socket.socket, peer: Tuple) -> None:
        if self.allow is not None and not self.allow(peer[0]):
            log.info("refused thrift connection from %s", peer[0])
            sock.close()
            if self.metrics is not None:
                self.metrics.inc("rpc_connections_refused_total")
            return
        transport = SocketTransport(sock, self.limits)
        proto = protocol(transport)
        proto.strict_decode = True  # handlers get str, never the bytes thriftpy2 falls back to
        try:
            while transport.wait_for_message():
                if not self._serve_one(proto):
                    break
        except (PeerError, OSError, TException, struct.error, ValueError, RecursionError) as e:
            log.debug("dropping thrift connection from %s: %r", peer[0], e)
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
        try:
            args.read(proto)
        except UnicodeDecodeError as e:
            self._send_exception(proto, name, seqid, TApplicationException.PROTOCOL_ERROR,
                                 f"Invalid UTF-8 in a string argument of {name}: {e}")
            return False
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
            data = encode_message(name, TMessageType.REPLY, seqid, result)
        except Exception as e:  # the handler returned something that does not fit the IDL
            log.error("%s reply cannot be encoded: %r", name, e)
            self._internal_error(proto, name, seqid, ValueError(f"reply cannot be encoded: {e}"))
            return
        proto.trans.write(data)
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
        proto.trans.write(encode_message(name, TMessageType.EXCEPTION, seqid, TApplicationException(kind, message)))
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
        """Call ``name`` with positional arguments in IDL order; return its result or raise its exception.

        Failures come out as a declared IDL exception, TApplicationException, TProtocolException (a reply
        lacking a required field), PeerError (closed, stalled, oversized or undecodable reply) or OSError.
        """
        try:
            return self._call(name, args)
        except TException as e:
            if not isinstance(e, TApplicationException) and self._declared_by(name, e):
                raise
            self.close()
            raise
        except (struct.error, UnicodeDecodeError, RecursionError) as e:
            self.close()
            raise PeerError(f"undecodable reply to {name}: {e!r}") from e
        except BaseException:
            self.close()
            raise

    def _declared_by(self, name: str, exc: Exception) -> bool:
        result = getattr(self.service, name + "_result")
        return any(s[1] != "success" and isinstance(exc, s[2]) for s in result.thrift_spec.values())

    def _call(self, name: str, args: tuple) -> Any:
        transport = self._connect()
        call_args = getattr(self.service, name + "_args")()
        for spec, value in zip(call_args.thrift_spec.values(), args):
            setattr(call_args, spec[1], value)
        data = encode_message(name, TMessageType.CALL, self._seqid + 1, call_args)
        self._seqid += 1
        transport.write(data)
        transport.flush()
        transport.begin_reply()
        return self._read_reply(protocol(transport), name)

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
        """Close the connection, if any; the next call dials again."""
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

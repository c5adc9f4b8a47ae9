"""Thrift's byte stream over a TCP socket: write buffering, per-message read budgets and stall timeouts.

``SocketTransport`` is what ``scootpy.thriftrpc``'s server and client speak through. It enforces ``Limits``
on what a peer may send (message, string and container sizes) before anything is allocated, and cuts off a
peer that stalls mid-message while letting an idle connection wait forever.
"""

import io
import socket
from dataclasses import dataclass
from typing import Any, Callable, Optional

import thriftpy2.protocol.binary as binary
from thriftpy2.protocol.binary import TBinaryProtocol
from thriftpy2.thrift import TType

try:  # thriftpy2's C encoder: same bytes, several times faster than the pure one
    from thriftpy2.protocol.cybin import TCyBinaryProtocol
    from thriftpy2.transport.memory import TCyMemoryBuffer
except ImportError:  # pragma: no cover - thriftpy2 built without its extensions
    TCyBinaryProtocol = None

MiB = 1 << 20

# Element types a peer may announce in a list, set or map header, with their smallest encoded size. Every
# element then costs at least one byte of the message budget, so no announced count can loop without reading.
_MIN_ELEMENT_BYTES = {TType.BOOL: 1, TType.BYTE: 1, TType.DOUBLE: 8, TType.I16: 2, TType.I32: 4, TType.I64: 8,
                      TType.STRING: 4, TType.STRUCT: 1, TType.MAP: 6, TType.SET: 5, TType.LIST: 5}


@dataclass(frozen=True)
class Limits:
    """What a peer may send in one message (anything larger closes that connection), how long it may
    stall mid-message, and how many connections a server serves at once."""

    max_message_bytes: int = 64 * MiB
    max_string_bytes: int = 64 * MiB
    max_container_items: int = 16 * MiB
    stall_timeout: float = 30.0
    max_connections: int = 4096  # served at once; further peers wait in the listen backlog


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
        """Exactly ``n`` bytes of the current message, after checking them against the limits."""
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
        """Buffer ``data``; nothing is sent before ``flush``."""
        self._wbuf += data

    def flush(self) -> None:
        """Send everything buffered, in one ``sendall``."""
        data, self._wbuf = bytes(self._wbuf), bytearray()
        self.sock.sendall(data)

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
# This leans on thriftpy2 0.7's module layout (setup.cfg pins it); the hostile-input tests prove it works.
binary.read_list_begin = _guard(binary.read_list_begin)
binary.read_map_begin = _guard(binary.read_map_begin)


def protocol(transport: SocketTransport) -> TBinaryProtocol:
    """The reference's protocol: binary, strict (versioned) writes, lenient reads."""
    return TBinaryProtocol(transport, strict_read=False, strict_write=True)


def encode_message(name: str, mtype: int, seqid: int, body: Any) -> bytes:
    """One whole message (strict, versioned header) as bytes; raises if ``body`` does not fit its IDL."""
    if TCyBinaryProtocol is not None:
        buf = TCyMemoryBuffer()
        proto = TCyBinaryProtocol(buf, strict_write=True)
        proto.write_message_begin(name, mtype, seqid)
        body.write(proto)
        proto.write_message_end()
        buf.flush()
        return buf.getvalue()
    out = io.BytesIO()
    pure = TBinaryProtocol(out, strict_write=True)
    pure.write_message_begin(name, mtype, seqid)
    body.write(pure)
    return out.getvalue()

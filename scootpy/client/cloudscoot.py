"""A CloudScoot (scheduler) client whose errors read like the reference Go client's.

Dial failures become ``Error dialing to set up client connection: Error opening transport: dial tcp
127.0.0.1:1: connect: connection refused``; server-side rejections keep their TApplicationException text;
declared IDL exceptions (InvalidRequest, ScootServerError, CanNotScheduleNow) are raised unchanged.
"""

import socket
from typing import Any

from thriftpy2.thrift import TApplicationException, TException

from scootpy.client.jsonout import go_string
from scootpy.idl import scoot
from scootpy.thriftrpc import PeerError, ThriftClient, parse_addr

CLIENT_TIMEOUT_S = 60.0
DECLARED = (scoot.InvalidRequest, scoot.CanNotScheduleNow, scoot.ScootServerError)


class ClientError(Exception):
    """A failed call; ``str()`` is the reference's error text and ``go_type`` its Go type (for ``%T``)."""

    def __init__(self, text: str, go_type: str):
        super().__init__(text)
        self.go_type = go_type


def _resolved(addr: str) -> str:
    host, port = parse_addr(addr)
    try:
        ip = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except OSError:
        ip = host
    return f"{ip}:{port}"


def dial_error(addr: str, exc: BaseException) -> ClientError:
    """The Go dialer's text for failing to connect to ``addr``."""
    prefix = "Error dialing to set up client connection: "
    if addr == "":
        return ClientError(prefix + "Error opening transport: dial tcp :0: connect: connection refused",
                           "*errors.errorString")
    if isinstance(exc, ValueError):
        return ClientError(prefix + f"Error opening socket: address {addr}: missing port in address",
                           "*errors.errorString")
    if isinstance(exc, socket.gaierror):
        host = addr.rpartition(":")[0]
        return ClientError(prefix + f"Error opening transport: dial tcp: lookup {host}: no such host",
                           "*errors.errorString")
    if isinstance(exc, ConnectionRefusedError):
        reason = "connect: connection refused"
    elif isinstance(exc, socket.timeout):
        reason = "i/o timeout"
    else:
        reason = f"connect: {(getattr(exc, 'strerror', None) or str(exc)).lower()}"
    return ClientError(prefix + f"Error opening transport: dial tcp {_resolved(addr)}: {reason}",
                       "*errors.errorString")


def _transport_error(exc: BaseException) -> ClientError:
    if isinstance(exc, socket.timeout):
        text = "i/o timeout"
    elif isinstance(exc, PeerError):
        text = "EOF" if "closed" in str(exc) else str(exc)
    else:
        text = (getattr(exc, "strerror", None) or str(exc)).lower()
    return ClientError(text, "*thrift.tTransportException")


class CloudScootClient:
    """Calls the scheduler at ``addr`` over one lazily dialled connection, re-dialled after failures."""

    def __init__(self, addr: str, timeout: float = CLIENT_TIMEOUT_S):
        self.addr = addr
        self._thrift = ThriftClient(scoot.CloudScoot, addr, timeout=timeout, connect_timeout=timeout)
        self._connected = False

    def call(self, method: str, *args: Any) -> Any:
        """Call ``method``; raise the declared exception, or ClientError with the Go client's text."""
        if not self.addr:
            raise dial_error("", ConnectionRefusedError())
        dialing = not self._connected
        try:
            result = self._thrift.call(method, *args)
        except DECLARED:
            raise
        except TApplicationException as e:
            self._connected = False
            raise ClientError(e.message or str(e), "*thrift.tApplicationException") from None
        except TException as e:
            self._connected = False
            raise ClientError(getattr(e, "message", None) or str(e), "*thrift.tProtocolException") from None
        except (OSError, ValueError, PeerError) as e:
            self._connected = False
            if dialing and isinstance(e, (ConnectionError, socket.gaierror, socket.timeout, ValueError)) \
                    and not isinstance(e, (ConnectionResetError, BrokenPipeError)):
                raise dial_error(self.addr, e) from None
            raise _transport_error(e) from None
        self._connected = True
        return result

    def run_job(self, job: Any) -> str:
        return self.call("RunJob", job).id

    def get_status(self, job_id: str) -> Any:
        return self.call("GetStatus", job_id)

    def kill_job(self, job_id: str) -> Any:
        return self.call("KillJob", job_id)

    def offline_worker(self, node_id: str, requestor: str) -> None:
        self.call("OfflineWorker", scoot.OfflineWorkerReq(id=node_id, requestor=requestor))

    def reinstate_worker(self, node_id: str, requestor: str) -> None:
        self.call("ReinstateWorker", scoot.ReinstateWorkerReq(id=node_id, requestor=requestor))

    def get_scheduler_status(self) -> Any:
        return self.call("GetSchedulerStatus")

    def set_scheduler_status(self, max_tasks: int) -> None:
        """Validated client-side like the reference (before any dial)."""
        if max_tasks < -1:
            raise ClientError(f"invlid max tasks value:{max_tasks}. Must be >= -1.", "*errors.errorString")
        self.call("SetSchedulerStatus", max_tasks)

    def close(self) -> None:
        self._thrift.close()
        self._connected = False


def go_error_text(exc: BaseException) -> str:
    """``err.Error()`` of a declared IDL exception as thrift-go prints it, e.g. ``ScootServerError({...})``."""
    return go_string(exc)

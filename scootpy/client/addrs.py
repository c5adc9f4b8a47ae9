"""Where a local Cloud Scoot runs: the reference's fixed ports and the ``~/.cloudscootaddr$SCOOT_ID`` file.

The address file holds exactly ``<scheduler thrift host:port>\\n<apiserver http host:port>`` with no
trailing newline (we accept one when reading). ``SCOOT_PORT_OFFSET`` (ours, default 0) shifts every
fixed port by the same amount so that several local clusters, e.g. tests, can run side by side.
"""

import os
from dataclasses import dataclass
from typing import Optional, Tuple

SCHED_THRIFT_PORT = 9090
SCHED_HTTP_PORT = 9091
WORKER_PORTS = 10100
API_HTTP_PORTS = 11100
API_GRPC_PORTS = 12100
PORT_OFFSET_ENV = "SCOOT_PORT_OFFSET"


class AddrFileError(Exception):
    """The address file exists but cannot be used."""


def port_offset(env: Optional[dict] = None) -> int:
    """The port shift from ``$SCOOT_PORT_OFFSET`` (0 when unset); ValueError when it is not a sane int."""
    text = (os.environ if env is None else env).get(PORT_OFFSET_ENV, "").strip()
    if not text:
        return 0
    offset = int(text)
    if not 0 <= offset <= 50000:
        raise ValueError(f"{PORT_OFFSET_ENV}={text} is out of range 0..50000")
    return offset


@dataclass(frozen=True)
class Ports:
    """The fixed local-cluster ports, shifted by one offset."""

    offset: int = 0

    @property
    def sched_thrift(self) -> int:
        return SCHED_THRIFT_PORT + self.offset

    @property
    def sched_http(self) -> int:
        return SCHED_HTTP_PORT + self.offset

    def worker_http(self, i: int) -> int:
        return WORKER_PORTS + self.offset + 2 * i

    def worker_thrift(self, i: int) -> int:
        return WORKER_PORTS + self.offset + 2 * i + 1

    def api_http(self, i: int) -> int:
        return API_HTTP_PORTS + self.offset + i

    def api_grpc(self, i: int) -> int:
        return API_GRPC_PORTS + self.offset + i

    @property
    def sched_addr(self) -> str:
        return f"localhost:{self.sched_thrift}"


def addr_file_path() -> str:
    """``$HOME/.cloudscootaddr$SCOOT_ID`` (HOME from the environment, SCOOT_ID appended with no separator)."""
    return os.path.join(os.environ.get("HOME", ""), ".cloudscootaddr" + os.environ.get("SCOOT_ID", ""))


def read_addrs(path: Optional[str] = None) -> Tuple[str, str]:
    """Return (scheduler, apiserver) from the address file; ("", "") when it does not exist.

    Raises AddrFileError when the file is unreadable or does not hold exactly two lines.
    """
    path = path or addr_file_path()
    try:
        with open(path, "rb") as f:
            data = f.read(65536)
    except FileNotFoundError:
        return "", ""
    except OSError as e:
        raise AddrFileError(f"cannot read {path}: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AddrFileError(f"{path} is not text") from None
    if text.endswith("\n"):
        text = text[:-1]
    lines = text.split("\n")
    if len(lines) != 2:
        raise AddrFileError(f"Expected both sched and api addrs, got: {text}")
    return lines[0].strip(), lines[1].strip()


def write_addrs(sched: str, api: str, path: Optional[str] = None) -> None:
    """Write the address file in the reference's exact format (errors are logged by the caller, not fatal)."""
    path = path or addr_file_path()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o777)
    with os.fdopen(fd, "w") as f:
        f.write(f"{sched}\n{api}")


def bundlestore_uri(api_addr: str) -> str:
    """The bundlestore URL of an apiserver ``host:port``."""
    return f"http://{api_addr}/bundle/"

"""The reference file saga log's on-disk layout: names, paths, record text and its parser (spec §5.5).

```
<Directory>/<sagaId>/log                                  append-only text, one token per line
<Directory>/<sagaId>/StartSagaData_<Mon _2 15:04:05.000000000>   (Go time.StampNano, local time)
<Directory>/<sagaId>/<Msg Type>_<taskId>_data_<Mon _2 15:04:05.000>   (time.StampMilli)
```
Data paths inside ``log`` are ``path.Join(Directory, sagaId, file)``, relative when Directory is.
"""

import os
import time
from typing import Callable, List, Optional

from scootpy.sched.saga.log import (CorruptedSagaLogError, InvalidSagaMessageError, MessageType, SagaMessage,
                                    TASK_MESSAGE_TYPES)

LOG_NAME = "log"
MAX_NAME_BYTES = 255
MAX_LINE_BYTES = 64 * 1024 - 1  # bufio.Scanner's default token limit, newline excluded
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TYPES_BY_LINE = {t.value.encode(): t for t in MessageType}


def go_clean(path: str) -> str:
    """Go's ``path.Clean``: drop empty and ``.`` elements, resolve ``..`` lexically, "." for nothing."""
    rooted = path.startswith("/")
    parts: List[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(seg)
    out = "/".join(parts)
    return "/" + out if rooted else (out or ".")


def go_join(*elements: str) -> str:
    """Go's ``path.Join``."""
    joined = "/".join(e for e in elements if e)
    return go_clean(joined) if joined else ""


def stamp(ns: int, digits: int) -> str:
    """Go's ``time.StampMilli`` (digits=3) / ``StampNano`` (digits=9) of a Unix time in ns, in local time."""
    t = time.localtime(ns // 1_000_000_000)
    frac = (ns % 1_000_000_000) // 10 ** (9 - digits)
    return (f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:>2} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            f".{frac:0{digits}d}")


def job_data_name(ns: int) -> str:
    return f"StartSagaData_{stamp(ns, 9)}"


def task_data_name(kind: MessageType, task_id: str, ns: int) -> str:
    return f"{kind.value}_{task_id}_data_{stamp(ns, 3)}"


def _bad_chars(text: str) -> Optional[str]:
    for ch in ("/", "\n", "\r", "\x00"):
        if ch in text:
            return repr(ch)
    return None


def check_saga_id(saga_id: str) -> None:
    """Raise InvalidSagaMessageError unless ``saga_id`` can name a saga directory."""
    if not saga_id:
        raise InvalidSagaMessageError("sagaId cannot be the empty string")
    bad = _bad_chars(saga_id)
    if bad or saga_id in (".", "..") or len(os.fsencode(saga_id)) > MAX_NAME_BYTES:
        reason = f"contains {bad}" if bad else "is not a usable directory name"
        raise InvalidSagaMessageError(f"saga id {saga_id!r} cannot be stored in the file saga log: it {reason}")


def check_task_id(kind: MessageType, task_id: str) -> None:
    """Raise InvalidSagaMessageError unless ``task_id`` fits a data file name and a log line."""
    if not task_id:
        raise InvalidSagaMessageError("taskId cannot be the empty string")
    bad = _bad_chars(task_id)
    if bad:
        raise InvalidSagaMessageError(
            f"task id {task_id!r} cannot be stored in the file saga log: it contains {bad}")
    if len(os.fsencode(task_data_name(kind, task_id, 0))) > MAX_NAME_BYTES:
        raise InvalidSagaMessageError(
            f"task id {task_id[:40]!r}... cannot be stored in the file saga log: it is too long")


def record_text(msg: SagaMessage, data_path: Optional[str]) -> bytes:
    """The lines ``msg`` adds to the log."""
    if msg.type == MessageType.START_SAGA or msg.type in TASK_MESSAGE_TYPES:
        middle = "" if msg.type == MessageType.START_SAGA else f"{msg.task_id}\n"
        return os.fsencode(f"{msg.type.value}\n{middle}{data_path}\n")
    return os.fsencode(f"{msg.type.value}\n")


def go_os_error(op: str, path: str, exc: OSError) -> str:
    """An OSError worded like Go's ``*PathError`` (``open x: no such file or directory``)."""
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return f"{op} {path}: {text[:1].lower()}{text[1:]}"


class _Scanner:
    """``bufio.Scanner`` with ``ScanLines`` over a whole file's bytes."""

    def __init__(self, content: bytes):
        self._lines = content.split(b"\n")
        if content.endswith(b"\n") or not content:
            self._lines.pop()
        self._next = 0
        self.text = b""
        self.err: Optional[str] = None

    def scan(self) -> bool:
        if self.err is not None or self._next >= len(self._lines):
            return False
        line = self._lines[self._next]
        self._next += 1
        if len(line) > MAX_LINE_BYTES:
            self.err = "bufio.Scanner: token too long"
            return False
        self.text = line[:-1] if line.endswith(b"\r") else line
        return True

    def end_reason(self) -> str:
        return self.err or "Unexpected EOF"


def parse_log(saga_id: str, content: bytes, read_data: Callable[[str], bytes]) -> List[SagaMessage]:
    """Parse a saga's log text; ``read_data(path)`` returns a data file's bytes or raises OSError.

    Raises CorruptedSagaLogError with the reference's texts for a truncated record, an unknown type line or an
    unreadable data file.
    """
    scanner = _Scanner(content)
    messages = []
    while scanner.scan():
        kind = _TYPES_BY_LINE.get(scanner.text)
        if kind is None:
            raise CorruptedSagaLogError(saga_id, "Error Parsing SagaLog unrecognized message type, "
                                        + os.fsdecode(scanner.text))
        task_id, data = "", None
        if kind == MessageType.START_SAGA:
            data = _read_data_line(saga_id, scanner, read_data,
                                   "Error Parsing SagaLog expected Data after StartSaga message.  Error: ")
        elif kind in TASK_MESSAGE_TYPES:
            if not scanner.scan():
                raise CorruptedSagaLogError(
                    saga_id, "Error Parsing SagaLog expected TaskId, Error: " + scanner.end_reason())
            task_id = os.fsdecode(scanner.text)
            data = _read_data_line(saga_id, scanner, read_data, "Error Parsing SagaLog expected Data, Error: ")
        messages.append(SagaMessage(saga_id, kind, task_id, data))
    return messages


def _read_data_line(saga_id: str, scanner: _Scanner, read_data: Callable[[str], bytes], missing: str) -> bytes:
    if not scanner.scan():
        raise CorruptedSagaLogError(saga_id, missing + scanner.end_reason())
    path = os.fsdecode(scanner.text)
    try:
        return read_data(path)
    except OSError as exc:
        error = getattr(exc, "go_text", None) or go_os_error("open", path, exc)
        raise CorruptedSagaLogError(saga_id, f"Error Reading DataFile {path}, Error: {error}") from exc

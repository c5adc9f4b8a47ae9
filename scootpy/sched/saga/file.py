"""``FileSagaLog``: the reference's file saga log, same files byte for byte, with group commit.

Layout and parsing live in ``layout.py``. Durability (spec decision 4): a call returns only once its data
files, the directory entries it created and its log lines are fsynced. Callers write their data files at
once and queue their log lines; one committer greenlet flushes everything queued so far, batch after batch
(one fsync per non-empty data file, per touched directory and per saga log; an empty data file is durable once
its directory is), so greenlets writing at the same moment share fsyncs. A batch's fsyncs run in several of
gevent's pool threads at once, so other greenlets keep running (and queueing) meanwhile. A log
line is appended only after its data file is durable, and a failed append is truncated away, so a log never
points at a missing file because of us. Reference quirks fixed: task ids with "/" (or newlines) are refused
with a clear error; two records of one task and type in the same millisecond get distinct file names.
Reading a saga again parses only what was appended since (``readcache.py``), so polling a big job is cheap.
"""

import errno
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import gevent
from gevent.event import Event

from scootpy.sched.saga import layout
from scootpy.sched.saga.readcache import ParsedLogCache
from scootpy.sched.saga.log import (InvalidSagaMessageError, MessageType, SagaLogError, SagaMessage,
                                    TASK_MESSAGE_TYPES)

log = logging.getLogger(__name__)

MAX_DATA_BYTES = 64 * 1024 * 1024
FSYNC_THREADS = 4
_NAME_TRIES = 1000
_END_SAGA_TAIL = b"\n" + MessageType.END_SAGA.value.encode() + b"\n"


@dataclass
class _Ticket:
    """One caller's queued records: set once they are flushed, with the error if that failed."""

    flushed: Event = field(default_factory=Event)
    error: Optional[BaseException] = None


@dataclass
class _Record:
    saga_id: str
    text: bytes
    ticket: _Ticket
    starts_saga: bool = False
    sync_paths: List[str] = field(default_factory=list)


class FileSagaLog:
    """SagaLog kept in ``directory`` (relative paths resolve against ``cwd``, default the process cwd).

    ``metrics`` (any object with ``observe(name, seconds)`` and ``describe``, e.g. a ``Registry``) gets the
    duration of each fsync batch as ``saga_fsync_seconds``.
    """

    def __init__(self, directory: str, cwd: Optional[str] = None, metrics: Any = None):
        if not directory or "\n" in directory or "\r" in directory or "\x00" in directory:
            raise ValueError(f"invalid saga log directory {directory!r}")
        self.directory = directory
        self._cwd = cwd
        self._queue: List[_Record] = []
        self._committer: Optional[gevent.Greenlet] = None
        self._parsed = ParsedLogCache()
        self._starting: Dict[str, int] = {}
        self.stats = {"records": 0, "commits": 0, "fsyncs": 0}
        self.metrics = metrics
        if metrics is not None:
            metrics.describe("saga_fsync_seconds", "Time of one group-commit fsync batch of the file saga log",
                             in_json=False)
        root = os.path.abspath(self._abs(directory))
        missing = []
        while not os.path.isdir(root) and root not in missing:
            missing.append(root)
            root = os.path.dirname(root)
        try:
            os.makedirs(self._abs(directory), mode=0o777, exist_ok=True)
        except OSError as exc:
            raise SagaLogError(layout.go_os_error("mkdir", directory, exc)) from exc
        errors = _fsync_targets([os.path.dirname(d) for d in missing])  # make the new directories durable
        if errors:
            raise next(iter(errors.values()))

    # --- writing -----------------------------------------------------------------------------------------------

    def start_saga(self, saga_id: str, job: bytes) -> None:
        """Create the saga directory if needed, write the job blob and log StartSaga (an extra one if it exists)."""
        self.log_messages([SagaMessage(saga_id, MessageType.START_SAGA, "", job)])

    def log_message(self, message: SagaMessage) -> None:
        """Append one message to an existing saga; durable when this returns."""
        self.log_messages([message])

    def log_messages(self, messages: List[SagaMessage]) -> None:
        """Append several messages, sharing fsyncs; on error, some of them may have been written."""
        if not messages:
            return
        for msg in messages:
            layout.check_saga_id(msg.saga_id)
            if msg.type in TASK_MESSAGE_TYPES:
                layout.check_task_id(msg.type, msg.task_id)
        ticket = _Ticket()
        starting: set = set()
        records = [self._prepare(msg, ticket, starting) for msg in messages]
        for rec in records:
            if rec.starts_saga:
                self._starting[rec.saga_id] = self._starting.get(rec.saga_id, 0) + 1
        self._queue.extend(records)
        self._wait_for(ticket)

    def _prepare(self, msg: SagaMessage, ticket: _Ticket, starting: set) -> _Record:
        """Write the record's data file (and directories) now; return the log lines still to append."""
        saga_dir = layout.go_join(self.directory, msg.saga_id)
        sync_paths: List[str] = []
        if msg.type == MessageType.START_SAGA:
            sync_paths += self._ensure_saga_files(saga_dir)
            starting.add(msg.saga_id)
        elif msg.saga_id not in self._starting and msg.saga_id not in starting:
            log_path = layout.go_join(saga_dir, layout.LOG_NAME)
            if not os.path.isfile(self._abs(log_path)):
                raise SagaLogError(layout.go_os_error("open", log_path, OSError(errno.ENOENT, "")))
        data_path = None
        if msg.type == MessageType.START_SAGA or msg.type in TASK_MESSAGE_TYPES:
            data_path = self._write_data_file(saga_dir, msg)
            if msg.data:  # an empty file has no data to sync: the saga directory's fsync makes it durable
                sync_paths.append(self._abs(data_path))
            sync_paths.append(self._abs(saga_dir))
        return _Record(msg.saga_id, layout.record_text(msg, data_path), ticket,
                       msg.type == MessageType.START_SAGA, sync_paths)

    def _ensure_saga_files(self, saga_dir: str) -> List[str]:
        """Create the saga directory and its empty log if missing; return what must be fsynced for them."""
        created = []
        try:
            os.mkdir(self._abs(saga_dir), 0o777)
            created.append(self._abs(self.directory))
        except FileExistsError:
            pass
        except OSError as exc:
            raise SagaLogError(layout.go_os_error("mkdir", saga_dir, exc)) from exc
        log_path = layout.go_join(saga_dir, layout.LOG_NAME)
        try:
            fd = os.open(self._abs(log_path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            os.close(fd)
            created.append(self._abs(saga_dir))
        except FileExistsError:
            pass
        except OSError as exc:
            raise SagaLogError(layout.go_os_error("open", log_path, exc)) from exc
        return created

    def _write_data_file(self, saga_dir: str, msg: SagaMessage) -> str:
        now = time.time_ns()
        step = 1 if msg.type == MessageType.START_SAGA else 1_000_000
        for attempt in range(_NAME_TRIES):
            ns = now + attempt * step
            name = (layout.job_data_name(ns) if msg.type == MessageType.START_SAGA
                    else layout.task_data_name(msg.type, msg.task_id, ns))
            path = layout.go_join(saga_dir, name)
            try:
                fd = os.open(self._abs(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o777)
            except FileExistsError:
                continue
            except OSError as exc:
                raise SagaLogError(layout.go_os_error("open", path, exc)) from exc
            try:
                _write_all(fd, msg.data or b"")
            except OSError as exc:
                _unlink_quietly(self._abs(path))
                raise SagaLogError(layout.go_os_error("write", path, exc)) from exc
            finally:
                os.close(fd)
            return path
        raise SagaLogError(f"no free data file name in {saga_dir} after {_NAME_TRIES} tries")

    def _wait_for(self, ticket: _Ticket) -> None:
        while not ticket.flushed.is_set():
            if self._committer is None or self._committer.dead:  # also replaces a committer that was killed
                self._committer = gevent.spawn(self._commit_loop)
            ticket.flushed.wait(timeout=1.0)
        if ticket.error is not None:
            raise ticket.error

    def _commit_loop(self) -> None:
        """Flush everything queued, batch after batch, until the queue is empty."""
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                self._flush(batch)
            except BaseException as exc:
                undone = [r for r in batch if not r.ticket.flushed.is_set()]
                self._finish(undone, {r.saga_id: SagaLogError(f"saga log commit failed: {exc!r}")
                                      for r in undone})
                if not isinstance(exc, Exception):
                    if self._queue:  # killed: hand what is still queued to a new committer
                        self._committer = gevent.spawn(self._commit_loop)
                    raise
                log.exception("saga log commit failed")

    def _flush(self, batch: List[_Record]) -> None:
        """Make ``batch`` durable: data files and directories first, then the log lines."""
        self.stats["commits"] += 1
        failed: Dict[str, BaseException] = {}
        paths = list(dict.fromkeys(p for r in batch for p in r.sync_paths))
        errors = self._fsync_all(paths)
        for rec in batch:
            bad = next((errors[p] for p in rec.sync_paths if p in errors), None)
            if bad is not None:
                failed.setdefault(rec.saga_id, bad)
        log_fds = self._append_lines(batch, failed)
        errors = self._fsync_all(list(log_fds.values()))
        for saga_id, fd in log_fds.items():
            if fd in errors:
                failed.setdefault(saga_id, errors[fd])
        self._finish(batch, failed)

    def _append_lines(self, batch: List[_Record], failed: Dict[str, BaseException]) -> Dict[str, int]:
        """Append each saga's queued lines with one write; return the open log fds to fsync."""
        texts: Dict[str, List[bytes]] = {}
        for rec in batch:
            if rec.saga_id not in failed:
                texts.setdefault(rec.saga_id, []).append(rec.text)
        fds = {}
        for saga_id, parts in texts.items():
            log_path = layout.go_join(self.directory, saga_id, layout.LOG_NAME)
            try:
                fd = os.open(self._abs(log_path), os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            except OSError as exc:
                failed[saga_id] = SagaLogError(layout.go_os_error("open", log_path, exc))
                continue
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, b"".join(parts))
            except OSError as exc:
                _truncate_quietly(fd, size)
                os.close(fd)
                failed[saga_id] = SagaLogError(layout.go_os_error("write", log_path, exc))
                continue
            fds[saga_id] = fd
        return fds

    def _finish(self, batch: List[_Record], failed: Dict[str, BaseException]) -> None:
        for rec in batch:
            if rec.starts_saga:
                left = self._starting.get(rec.saga_id, 0) - 1
                if left > 0:
                    self._starting[rec.saga_id] = left
                else:
                    self._starting.pop(rec.saga_id, None)
            error = failed.get(rec.saga_id)
            if error is None:
                self.stats["records"] += 1
            elif rec.ticket.error is None:
                rec.ticket.error = error
        for rec in batch:
            rec.ticket.flushed.set()

    def _fsync_all(self, targets: list) -> Dict[object, BaseException]:
        """fsync paths (opened read-only) or fds (closed after) in the thread pool; return the failures."""
        if not targets:
            return {}
        self.stats["fsyncs"] += len(targets)
        started = time.monotonic()
        try:
            pool = gevent.get_hub().threadpool
            lanes = min(len(targets), FSYNC_THREADS)  # fsyncs in flight together share journal commits
            jobs = [pool.spawn(_fsync_targets, targets[i::lanes]) for i in range(lanes)]
            errors: Dict[object, BaseException] = {}
            for job in jobs:
                errors.update(job.get())
            return errors
        finally:
            if self.metrics is not None:
                self.metrics.observe("saga_fsync_seconds", time.monotonic() - started)

    # --- reading -----------------------------------------------------------------------------------------------

    def get_messages(self, saga_id: str) -> List[SagaMessage]:
        """All messages of a saga, parsed like the reference; [] if it has no log (or cannot have one)."""
        try:
            layout.check_saga_id(saga_id)
        except InvalidSagaMessageError:
            return []
        log_path = layout.go_join(self.directory, saga_id, layout.LOG_NAME)
        try:
            info = os.stat(self._abs(log_path))
        except OSError:
            self._parsed.forget(saga_id)
            return []
        identity = (info.st_dev, info.st_ino)
        offset, earlier = self._parsed.lookup(saga_id, identity, info.st_size)
        try:
            with open(self._abs(log_path), "rb") as f:
                f.seek(offset)
                content = f.read()
        except OSError as exc:
            raise SagaLogError(layout.go_os_error("open", log_path, exc)) from exc
        messages = earlier + layout.parse_log(saga_id, content, self._read_data)
        if content.endswith(b"\n"):  # never resume parsing inside a line another writer is still writing
            self._parsed.store(saga_id, identity, offset + len(content), messages)
        return list(messages)

    def has_ended(self, saga_id: str) -> bool:
        """True if the saga's log ends with an End Saga record; reads only the log's last bytes.

        Recovery skips such a saga whatever precedes it (a valid history is ended, an invalid one is fatal),
        so a directory full of finished sagas is scanned without reading their data files.
        """
        try:
            layout.check_saga_id(saga_id)
            with open(self._abs(layout.go_join(self.directory, saga_id, layout.LOG_NAME)), "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - len(_END_SAGA_TAIL)))
                tail = f.read()
        except (OSError, InvalidSagaMessageError):
            return False
        return tail.endswith(_END_SAGA_TAIL) or tail == _END_SAGA_TAIL[1:]

    def _read_data(self, path: str) -> bytes:
        """A data file's bytes (at most MAX_DATA_BYTES); OSErrors carry Go's wording in ``go_text``."""
        fd = os.open(self._abs(path), os.O_RDONLY | os.O_CLOEXEC)
        try:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                raise _go_error(errno.EISDIR, f"read {path}: is a directory")
            chunks, size = [], 0
            while size <= MAX_DATA_BYTES:
                chunk = os.read(fd, min(1 << 20, MAX_DATA_BYTES + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        if size > MAX_DATA_BYTES:
            raise _go_error(errno.EFBIG, f"read {path}: data file larger than {MAX_DATA_BYTES} bytes")
        return b"".join(chunks)

    def get_active_sagas(self) -> List[str]:
        """Every entry of the directory (ended sagas included), sorted."""
        try:
            return sorted(os.listdir(self._abs(self.directory)))
        except OSError as exc:
            raise SagaLogError(layout.go_os_error("open", self.directory, exc)) from exc

    def _abs(self, path: str) -> str:
        return os.path.join(self._cwd, path) if self._cwd else path


def _go_error(code: int, text: str) -> OSError:
    exc = OSError(code, os.strerror(code))
    exc.go_text = text  # type: ignore[attr-defined]
    return exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_targets(targets: list) -> Dict[object, BaseException]:
    """Runs in a pool thread: fsync each path or fd, closing the fds; collect the failures."""
    errors: Dict[object, BaseException] = {}
    for target in targets:
        try:
            if isinstance(target, int):
                try:
                    os.fsync(target)
                finally:
                    os.close(target)
                continue
            fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            errors[target] = SagaLogError(layout.go_os_error("sync", str(target), exc))
    return errors


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _truncate_quietly(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        log.exception("could not truncate a failed saga log append back to %d bytes", size)


"""Saga payload encodings, byte-compatible with the reference (spec scheduler.md §5.3).

* The job blob (StartSaga data) is ``sched.Job`` in strict TBinaryProtocol, as Go's TSerializer writes it.
* Task data (StartTask/EndTask) is ``worker.RunStatus`` in Thrift TJSONProtocol, as Go's thrift library
  (2016) writes it: fields in declaration order, only set ones, strings escaped like Go's ``json.Marshal``
  (``<``, ``>``, ``&``, U+2028/9 as ``\\u00XX``), bools as 1/0, binary as padded base64.

The Go-exact TJSONProtocol itself is in ``tjson.py``. This module is the only place besides the Thrift edges
that touches the Thrift structs of these payloads.
"""

from typing import Any, List, Optional

from thriftpy2.thrift import TType
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.protocol.binary import TBinaryProtocol
from thriftpy2.utils import serialize

from scootpy.idl import sched, scoot, worker
from scootpy.runs import RunStatus, run_status_from_thrift, run_status_to_thrift
from scootpy.sched.saga.tjson import tjson_dumps, tjson_loads_into
from scootpy.thriftrpc import missing_required


class JobBlobError(ValueError):
    """A job blob cannot be decoded into a ``sched.Job``."""


# --- job blob ---------------------------------------------------------------------------------------------------

def encode_job(job: Any) -> bytes:
    """Serialize a ``sched.Job`` exactly as the reference stores it (set optional fields are all written)."""
    missing = missing_required(job)
    if missing:
        raise JobBlobError(f"job lacks required field {missing[0]}")
    return serialize(job, TBinaryProtocolFactory())


# Smallest encoding of one container element per wire type: no announced count can outrun the blob.
_MIN_ELEMENT_BYTES = {TType.BOOL: 1, TType.BYTE: 1, TType.DOUBLE: 8, TType.I16: 2, TType.I32: 4, TType.I64: 8,
                      TType.STRING: 4, TType.STRUCT: 1, TType.MAP: 6, TType.SET: 5, TType.LIST: 5}


class _BlobReader:
    """Read-only in-memory transport: a short read or an impossible container header is an error at once."""

    def __init__(self, data: bytes):
        self._data = data
        self._pos = 0

    def read(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise JobBlobError("job blob ends early")
        chunk = self._data[self._pos:self._pos + n]
        self._pos += n
        return chunk

    def check_container(self, count: int, *element_types: int) -> None:
        if any(t not in _MIN_ELEMENT_BYTES for t in element_types):
            raise JobBlobError(f"job blob has a container of invalid element type {element_types}")
        if count < 0 or count * sum(_MIN_ELEMENT_BYTES[t] for t in element_types) > len(self._data) - self._pos:
            raise JobBlobError(f"job blob announces {count} container items it cannot hold")


def decode_job(blob: bytes) -> Any:
    """Parse a job blob into a ``sched.Job``; JobBlobError if it is not one (missing required fields too).

    Safe on damaged input: sizes are checked against the blob before anything is allocated or looped over.
    """
    if not blob:
        raise JobBlobError("empty job blob")
    job = sched.Job()
    try:
        TBinaryProtocol(_BlobReader(bytes(blob)), strict_read=False).read_struct(job)
    except JobBlobError:
        raise
    except Exception as exc:
        raise JobBlobError(f"cannot decode job blob: {exc}") from exc
    missing = missing_required(job)
    if missing:
        raise JobBlobError(f"Required field {missing[0]} is not set")
    return job


def job_task_ids(blob: Optional[bytes]) -> List[str]:
    """Task ids of a job blob in stored order; [] if it does not decode."""
    try:
        job = decode_job(blob or b"")
    except JobBlobError:
        return []
    return [t.taskId or "" for t in (job.jobDefinition.tasks or [])]


# --- RunStatus payloads -----------------------------------------------------------------------------------------

def encode_run_status(status: RunStatus) -> bytes:
    """The task-data payload the reference scheduler writes for a run status."""
    return tjson_dumps(run_status_to_thrift(status, worker))


def decode_run_status(data: Optional[bytes]) -> RunStatus:
    """Read a task-data payload; empty, None or undecodable bytes give an all-default (UNKNOWN) status."""
    wrs = worker.RunStatus()
    if data:
        tjson_loads_into(wrs, data)
    return run_status_from_thrift(wrs)


def payload_to_scoot_run_status(data: Optional[bytes]) -> Optional[Any]:
    """Convert task data to the ``scoot.RunStatus`` GetStatus returns, or None (spec scheduler.md §2.2).

    None for None data; empty or undecodable data gives ``{status: UNKNOWN, runId: ""}``; jobId, taskId and tag
    are dropped; a status value with no name (not a known state) gives None, as in the reference.
    """
    if data is None:
        return None
    wrs = worker.RunStatus()
    if data:
        tjson_loads_into(wrs, data)
    status = wrs.status if wrs.status is not None else 0
    if not isinstance(status, int) or status not in scoot.RunStatusState._VALUES_TO_NAMES:
        return None
    return scoot.RunStatus(status=status, runId=wrs.runId or "", outUri=wrs.outUri,
                           errUri=wrs.errUri, error=wrs.error, exitCode=wrs.exitCode, snapshotId=wrs.snapshotId,
                           bazelResult=wrs.bazelResult)

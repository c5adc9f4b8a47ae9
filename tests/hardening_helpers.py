"""Helpers for the hardening suite and the status-page test: a real scheduler process, a handful of real
workers, byte-level mutations of recorded Thrift calls and process memory readings."""

import json
import random
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from scootpy.idl import scoot
from scootpy.thriftrpc import ThriftClient
from tests.procs import FIXTURES, binary, free_port, wait_port
from tests.test_thriftrpc_hostile import rss_bytes
from tests.test_worker_support import WorkerProc, start_worker

WIRE = FIXTURES / "wire"


@dataclass
class SchedulerProc:
    proc: Any
    thrift: int
    http: int
    log: Path

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.thrift}"

    def client(self, timeout: float = 30.0) -> ThriftClient:
        return ThriftClient(scoot.CloudScoot, self.addr, timeout=timeout)


def start_scheduler(procs, tmp_path: Path, config: Dict[str, Any]) -> SchedulerProc:
    """Start the ``scheduler`` binary with JSON ``config`` on free loopback ports; stderr goes to a log file."""
    thrift, http = free_port(), free_port()
    log = tmp_path / f"scheduler-{thrift}.log"
    with open(log, "wb") as err:
        proc = procs.start([binary("scheduler"), "-thrift_addr", f"127.0.0.1:{thrift}", "-http_addr",
                            f"127.0.0.1:{http}", "-config", json.dumps(config), "-log_level", "info"],
                           cwd=str(tmp_path), stderr=err)
    wait_port(thrift, proc=proc)
    wait_port(http, proc=proc)
    return SchedulerProc(proc, thrift, http, log)


# Schedulers of the ``local`` cluster type (other tests on this machine) adopt every workerserver whose
# command line matches ``workerserver.*thrift_addr(?: +|=)([^ ]*)``, and their readiness probe aborts the
# runs it finds. The greedy ``.*`` takes the last match, so a trailing (unused) ``-repo`` value ending in
# ``thrift_addr=`` makes the capture empty and hides these workers from ps discovery.
HIDE_FROM_PS_DISCOVERY = ("-repo", "hidden-from-ps-discovery thrift_addr=")


def start_workers(procs, tmp_path: Path, count: int) -> List[WorkerProc]:
    """``count`` real ``workerserver`` processes, each with its own directory under ``tmp_path``, that
    no ps-discovering scheduler on this machine can adopt."""
    workers = []
    for i in range(count):
        home = tmp_path / f"worker{i}"
        home.mkdir()
        workers.append(start_worker(procs, home, *HIDE_FROM_PS_DISCOVERY, with_fixture_bundles=False))
    return workers


def job_of(argvs: List[List[str]], requestor: str = "", tag: str = "", prefix: str = "t") -> Any:
    """A JobDefinition with one task per argv, task ids ``<prefix>000``..."""
    tasks = [scoot.TaskDefinition(command=scoot.Command(argv=argv, envVars={}), taskId=f"{prefix}{i:03d}")
             for i, argv in enumerate(argvs)]
    return scoot.JobDefinition(tasks=tasks, requestor=requestor, tag=tag)


def wait_job(client: ThriftClient, job_id: str, timeout: float = 60.0,
             on_poll: Optional[Callable[[Any], None]] = None, interval: float = 0.05) -> Any:
    """Poll GetStatus until the job is COMPLETED; return that status."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.GetStatus(job_id)
        if on_poll is not None:
            on_poll(status)
        if status.status == scoot.Status.COMPLETED:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} not COMPLETED after {timeout}s: {status.taskStatus}")
        time.sleep(interval)


def recorded_calls(folder: str) -> Dict[str, bytes]:
    """The reference's recorded ``.call`` messages of one wire folder, by file name."""
    return {p.name: p.read_bytes() for p in sorted((WIRE / folder).glob("*.call.bin"))}


_HUGE = [0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0x40000000, 0x04000001, 0x00FFFFFF]


def _bit_flips(data: bytearray, rng: random.Random) -> bytearray:
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(data))
        data[at] ^= 1 << rng.randrange(8)
    return data


def _truncate(data: bytearray, rng: random.Random) -> bytearray:
    return data[:rng.randrange(len(data))]


def _huge_length(data: bytearray, rng: random.Random) -> bytearray:
    at = rng.randrange(max(1, len(data) - 3))
    data[at:at + 4] = struct.pack(">I", rng.choice(_HUGE))
    return data


def _garbage(data: bytearray, rng: random.Random) -> bytearray:
    return bytearray(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))


def _splice_garbage(data: bytearray, rng: random.Random) -> bytearray:
    at = rng.randrange(len(data))
    return data[:at] + bytearray(rng.getrandbits(8) for _ in range(rng.randint(1, 64))) + data[at:]


def _repeat_chunk(data: bytearray, rng: random.Random) -> bytearray:
    at = rng.randrange(len(data))
    end = min(len(data), at + rng.randint(1, 32))
    return data[:end] + data[at:end] * rng.randint(2, 50) + data[end:]


def _byte_values(data: bytearray, rng: random.Random) -> bytearray:
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0F, 0x0D, 0x0C])
    return data


MUTATORS: Dict[str, Callable[[bytearray, random.Random], bytearray]] = {
    "bit-flips": _bit_flips, "truncation": _truncate, "huge-length": _huge_length, "garbage": _garbage,
    "spliced-garbage": _splice_garbage, "repeated-chunk": _repeat_chunk, "byte-values": _byte_values,
}


def mutate(message: bytes, rng: random.Random) -> tuple:
    """One randomly mutated copy of ``message``: (mutator name, bytes)."""
    name = rng.choice(sorted(MUTATORS))
    return name, bytes(MUTATORS[name](bytearray(message), rng))


def rss_mib(pid: int) -> float:
    return rss_bytes(pid) / (1 << 20)

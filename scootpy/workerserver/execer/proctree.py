"""The process table as the memory cap and the kill logic see it: a process group plus all descendants.

Read from ``/proc`` (the same numbers ``ps -e -o pid= -o pgid= -o ppid= -o rss=`` prints, without
spawning ``ps`` four times a second).
"""

import os
import signal
from dataclasses import dataclass
from typing import Dict, Iterable, List, Set

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    rss_bytes: int


def read_table() -> List[ProcInfo]:
    """Every visible process; processes that vanish while reading are skipped."""
    table = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2:].split()
        if len(fields) < 22:
            continue
        table.append(ProcInfo(int(name), int(fields[1]), int(fields[2]), int(fields[21]) * _PAGE))
    return table


def group_members(pgid: int, table: Iterable[ProcInfo]) -> Set[int]:
    """Pids in process group ``pgid`` plus, transitively, all their descendants."""
    procs = list(table)
    children: Dict[int, List[int]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p.pid)
    members = {p.pid for p in procs if p.pgid == pgid}
    todo = list(members)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in members:
                members.add(child)
                todo.append(child)
    return members


def memory_usage(pgid: int) -> int:
    """Total resident memory in bytes of the group and its descendants."""
    table = read_table()
    members = group_members(pgid, table)
    return sum(p.rss_bytes for p in table if p.pid in members)


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the whole process group and every descendant that left it (nothing to do if it is empty)."""
    if pgid <= 1:
        raise ValueError(f"refusing to signal process group {pgid}")
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return
    for pid in group_members(pgid, read_table()):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _direct_children(pid: int) -> List[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return [p.pid for p in read_table() if p.ppid == pid]


def kill_orphans(worker_pid: int, sig: int = signal.SIGKILL) -> int:
    """Signal every descendant of ``worker_pid`` outside the worker's own process group: what is left of
    runs, including processes that escaped their group with ``setsid`` (they are re-parented to the worker
    when it is a child subreaper). Returns how many were signalled. Cheap when there is nothing to do."""
    own_group = os.getpgid(worker_pid)
    strays = []
    for child in _direct_children(worker_pid):
        try:
            if os.getpgid(child) != own_group:
                strays.append(child)
        except ProcessLookupError:
            continue
    if not strays:
        return 0
    children: Dict[int, List[int]] = {}
    for p in read_table():
        children.setdefault(p.ppid, []).append(p.pid)
    todo, hit = list(strays), 0
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            if os.getpgid(pid) != own_group:
                os.kill(pid, sig)
                hit += 1
        except (ProcessLookupError, PermissionError):
            pass
    return hit

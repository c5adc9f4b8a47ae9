"""The worker's memory of its runs: ids counting from "0", the latest ``history`` runs, and the update rules.

Rules (the reference's): a run in a done state never changes again; a non-empty stdout/stderr reference
is never replaced by an empty one. Creating a run beyond ``history`` forgets the oldest one.
"""

import collections
import dataclasses
from typing import Deque, Dict, List, Optional

import gevent.event

from scootpy.runs import RunState, RunStatus


class StatusManager:
    """Run statuses by id, with a wait for a run to be done."""

    def __init__(self, history: int = 1):
        self.history = history
        self._next_id = 0
        self._statuses: Dict[str, RunStatus] = {}
        self._order: Deque[str] = collections.deque()
        self._done: Dict[str, gevent.event.Event] = {}

    def new_run(self) -> RunStatus:
        """Allocate the next run id, record it PENDING, and forget runs beyond the history."""
        run_id = str(self._next_id)
        self._next_id += 1
        status = RunStatus(RunState.PENDING, run_id=run_id)
        self._statuses[run_id] = status
        self._done[run_id] = gevent.event.Event()
        self._order.append(run_id)
        while len(self._order) > self.history:
            old = self._order.popleft()
            self._statuses.pop(old, None)
            self._done.pop(old, None)
        return status

    def update(self, status: RunStatus) -> None:
        """Record a new status of a known run (ignored once that run is done)."""
        current = self._statuses.get(status.run_id)
        if current is None or current.state.is_done:
            return
        if not status.out_uri and current.out_uri:
            status = dataclasses.replace(status, out_uri=current.out_uri)
        if not status.err_uri and current.err_uri:
            status = dataclasses.replace(status, err_uri=current.err_uri)
        self._statuses[status.run_id] = status
        if status.state.is_done:
            self._done[status.run_id].set()

    def get(self, run_id: str) -> Optional[RunStatus]:
        return self._statuses.get(run_id)

    def all(self) -> List[RunStatus]:
        return list(self._statuses.values())

    def erase(self, run_id: str) -> None:
        """Forget a run, but only once it is done."""
        status = self._statuses.get(run_id)
        if status is not None and status.state.is_done:
            del self._statuses[run_id]
            self._done.pop(run_id, None)

    def wait_done(self, run_id: str, timeout: Optional[float] = None) -> Optional[RunStatus]:
        """Block until ``run_id`` is done (or forgotten); return its status then (None if unknown)."""
        event = self._done.get(run_id)
        if event is not None:
            event.wait(timeout)
        return self._statuses.get(run_id)

"""Cluster membership: which workers exist, delivered to the scheduler as batches of ``NodeUpdate``.

A ``Membership`` owns the current node set. It gets the full set from a fetch function (a fixed list,
``ps x``, a watched file), diffs it against what it last delivered, and hands the differences to its
subscriber: adds first, then removes, each sorted by id, like the reference's cluster state.
"""

import logging
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional

import gevent
import gevent.event

log = logging.getLogger(__name__)

ADD = "add"
REMOVE = "remove"

Fetch = Callable[[], Optional[List[str]]]  # the full node set now, or None when it cannot be known this time
RETRY_S = 1.0  # a fixed membership whose delivery failed tries again after this long
OnChange = Callable[[List["NodeUpdate"]], None]


@dataclass(frozen=True)
class NodeUpdate:
    """A node joined (``kind="add"``) or left (``kind="remove"``). ``node_id`` is a worker's ``host:port``."""

    kind: str
    node_id: str

    def __post_init__(self) -> None:
        if self.kind not in (ADD, REMOVE):
            raise ValueError(f"NodeUpdate kind must be {ADD!r} or {REMOVE!r}, not {self.kind!r}")


def diff_nodes(old: Iterable[str], new: Iterable[str]) -> List[NodeUpdate]:
    """Updates turning set ``old`` into set ``new``: all adds (sorted), then all removes (sorted)."""
    old_set, new_set = set(old), set(new)
    return ([NodeUpdate(ADD, n) for n in sorted(new_set - old_set)]
            + [NodeUpdate(REMOVE, n) for n in sorted(old_set - new_set)])


class Membership:
    """The node set of a cluster and the greenlet that keeps its subscriber informed.

    ``start(on_change)`` calls ``on_change(updates)`` from a greenlet: first with the initial set (possibly
    empty), then whenever the set changes. With ``interval=None`` the set is fetched once; otherwise it is
    re-fetched every ``interval`` seconds. A fetch returning None (e.g. ``ps`` failed) changes nothing.
    If ``on_change`` raises, the batch is not committed and is offered again on the next fetch.
    """

    def __init__(self, fetch: Fetch, interval: Optional[float], name: str):
        self.name = name
        self.interval = interval
        self._fetch = fetch
        self._nodes: List[str] = []
        self._delivered = False
        self._on_change: Optional[OnChange] = None
        self._stopping = gevent.event.Event()
        self._greenlet: Optional[gevent.Greenlet] = None

    def nodes(self) -> List[str]:
        """The node ids last delivered, sorted."""
        return list(self._nodes)

    def start(self, on_change: OnChange) -> None:
        """Begin delivering updates to ``on_change``."""
        if self._greenlet is not None:
            raise RuntimeError(f"{self.name} membership already started")
        self._on_change = on_change
        self._greenlet = gevent.spawn(self._run)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop fetching. A delivery in progress may finish (up to ``timeout``); none starts afterwards."""
        self._stopping.set()
        if self._greenlet is not None:
            self._greenlet.join(timeout)
            self._greenlet.kill(block=True, timeout=1.0)

    def step(self) -> List[NodeUpdate]:
        """Fetch once and deliver the differences; returns them (empty when nothing changed)."""
        fetched = self._fetch()
        if fetched is None or self._stopping.is_set():
            return []
        new = sorted(set(fetched))
        updates = diff_nodes(self._nodes, new)
        if (updates or not self._delivered) and self._on_change is not None:
            self._on_change(updates)
            self._delivered = True
        self._nodes = new
        return updates

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                updates = self.step()
                if updates:
                    log.info("%s membership: %s", self.name,
                             ", ".join(f"{u.kind} {u.node_id}" for u in updates))
            except Exception:
                log.exception("%s membership: update failed", self.name)
            if self.interval is None and self._delivered:
                return
            self._stopping.wait(self.interval if self.interval is not None else RETRY_S)

    def __repr__(self) -> str:
        return f"Membership({self.name!r}, nodes={len(self._nodes)})"


def fixed(node_ids: Iterable[str], name: str) -> Membership:
    """A membership whose set never changes (the ``memory`` and ``static`` cluster types)."""
    ids = list(node_ids)
    return Membership(lambda: ids, None, name)

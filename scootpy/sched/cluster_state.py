"""The scheduler's view of its workers: healthy, suspended and offlined nodes and their snapshot groups (§4.8).

Nodes live in exactly one of three maps. A new node starts *suspended* until its readiness probe passes; a
node the membership drops is suspended as *lost* and deleted after ``max_lost`` seconds unless it comes back;
a node whose task try failed for infrastructure reasons is suspended as *untrusted* and probed again;
*offlined* nodes are taken out by an operator. Only healthy nodes receive tasks. Every node also sits in
one ``NodeGroup`` keyed by the snapshot its last task used (spec §4.5).
"""

import logging
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

from scootpy.sched.assign import NodeGroup

log = logging.getLogger(__name__)


@dataclass(eq=False)
class NodeState:
    node_id: str
    group: str = ""
    ready: bool = False
    gave_up: bool = False
    time_lost: Optional[float] = None
    job_id: str = ""
    task_id: str = ""


class ClusterState:
    """Node bookkeeping, changed only through the named methods below (all called from the scheduler loop)."""

    def __init__(self, max_lost: float = 60.0):
        self.max_lost = max_lost
        self.healthy: Dict[str, NodeState] = {}
        self.suspended: Dict[str, NodeState] = {}
        self.offlined: Dict[str, NodeState] = {}
        self.groups: Dict[str, NodeGroup] = {"": NodeGroup()}
        self.num_running = 0

    def num_free(self) -> int:
        return max(0, len(self.healthy) - self.num_running)

    def usable(self, node_id: str) -> bool:
        return node_id in self.healthy

    def node(self, node_id: str) -> Optional[NodeState]:
        return self.healthy.get(node_id) or self.suspended.get(node_id) or self.offlined.get(node_id)

    def add(self, node_id: str, now: float, trusted: bool = False) -> bool:
        """A node appeared; returns True when it needs a readiness probe."""
        if node_id in self.healthy or node_id in self.offlined:
            return False
        node = self.suspended.get(node_id)
        if node is not None:
            node.time_lost = None
            return not node.ready and not node.gave_up
        node = NodeState(node_id, ready=trusted)
        self.groups[""].idle[node_id] = None
        if trusted:
            self.healthy[node_id] = node
            return False
        self.suspended[node_id] = node
        return True

    def remove(self, node_id: str, now: float) -> None:
        """The membership no longer lists a node: suspend it as lost."""
        node = self.healthy.pop(node_id, None)
        if node is not None:
            self.suspended[node_id] = node
        node = self.suspended.get(node_id)
        if node is not None:
            node.time_lost = now

    def untrust(self, node_id: str) -> bool:
        """A try on this node failed for infrastructure reasons; returns True when it needs a new probe."""
        node = self.healthy.pop(node_id, None)
        if node is not None:
            self.suspended[node_id] = node
        else:
            node = self.suspended.get(node_id)
            if node is None:
                return False
        node.ready = False
        return not node.gave_up

    def mark_ready(self, node_id: str, ready: bool = True, gave_up: bool = False) -> None:
        node = self.suspended.get(node_id)
        if node is not None:
            node.ready, node.gave_up = ready, gave_up

    def housekeeping(self, now: float) -> List[str]:
        """Promote ready suspended nodes, delete long-lost ones; returns the ids deleted."""
        deleted = []
        for node_id, node in list(self.suspended.items()):
            if node.time_lost is None and node.ready:
                del self.suspended[node_id]
                self.healthy[node_id] = node
                log.info("node %s: healthy", node_id)
            elif node.time_lost is not None and now - node.time_lost > self.max_lost:
                del self.suspended[node_id]
                self._ungroup(node)
                deleted.append(node_id)
                log.info("node %s: lost for more than %ss, forgotten", node_id, self.max_lost)
        return deleted

    def offline(self, node_id: str) -> Optional[str]:
        """Take a healthy node out of service; returns the reference's error text when it cannot."""
        node = self.healthy.pop(node_id, None)
        if node is None:
            return f"Node {node_id} was not present in nodes. It can't be offlined."
        self.offlined[node_id] = node
        return None

    def reinstate(self, node_id: str) -> Optional[str]:
        node = self.offlined.pop(node_id, None)
        if node is None:
            return f"Node {node_id} was not present in offlinedNodes. It can't be reinstated."
        node.ready, node.time_lost = True, None
        self.healthy[node_id] = node
        return None

    def set_groups(self, groups: Dict[str, NodeGroup]) -> None:
        self.groups = groups
        self.groups.setdefault("", NodeGroup())

    def task_scheduled(self, node_id: str, job_id: str, task_id: str, snapshot_id: str) -> None:
        """Move the node to the busy set of the task's snapshot group."""
        node = self.node(node_id)
        if node is not None:
            self._ungroup(node)
            node.group, node.job_id, node.task_id = snapshot_id, job_id, task_id
            self.groups.setdefault(snapshot_id, NodeGroup()).busy[node_id] = None
        self.num_running += 1

    def unplace(self, node_id: str) -> None:
        """Undo an assignment's placement of a node that did not get its task after all."""
        node = self.node(node_id)
        group = self.groups.get(node.group) if node is not None else None
        if group is not None and node_id in group.busy:
            del group.busy[node_id]
            group.idle[node_id] = None

    def task_completed(self, node_id: str) -> None:
        """The node's task ended: it becomes idle in its group, wherever it now is."""
        node = self.node(node_id)
        if node is not None:
            group = self.groups.setdefault(node.group, NodeGroup())
            group.busy.pop(node_id, None)
            group.idle[node_id] = None
            node.job_id = node.task_id = ""
        self.num_running = max(0, self.num_running - 1)

    def _ungroup(self, node: NodeState) -> None:
        group = self.groups.get(node.group)
        if group is None:
            return
        group.idle.pop(node.node_id, None)
        group.busy.pop(node.node_id, None)
        if node.group and not group.idle and not group.busy:
            del self.groups[node.group]

    def states(self) -> Iterable[tuple]:
        """(node, state name) for every known node, for status pages."""
        for name, nodes in (("healthy", self.healthy), ("suspended", self.suspended), ("offline", self.offlined)):
            for node in nodes.values():
                yield node, ("lost" if node.time_lost is not None else name)

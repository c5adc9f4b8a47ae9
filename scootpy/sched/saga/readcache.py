"""A bounded cache of parsed saga logs, so re-reading a growing log parses only what was appended.

A file saga log is append-only and its data files are never rewritten, so the messages parsed up to a byte
offset stay valid while the log keeps its identity (device, inode) and does not shrink. Entries are evicted
least-recently-used once the cached payload bytes exceed ``max_bytes``.
"""

from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Optional, Tuple

from scootpy.sched.saga.log import SagaMessage

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
_MESSAGE_OVERHEAD = 200  # rough bytes per cached message besides its data


@dataclass
class _Entry:
    identity: Tuple[int, int]
    offset: int
    messages: List[SagaMessage]
    size: int


class ParsedLogCache:
    """saga id -> messages parsed from the first ``offset`` bytes of its log."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self._entries: "OrderedDict[str, _Entry]" = OrderedDict()
        self._size = 0

    def lookup(self, saga_id: str, identity: Tuple[int, int], file_size: int
               ) -> Tuple[int, List[SagaMessage]]:
        """(offset to read from, messages before it); (0, []) when nothing usable is cached."""
        entry = self._entries.get(saga_id)
        if entry is None or entry.identity != identity or entry.offset > file_size:
            return 0, []
        self._entries.move_to_end(saga_id)
        return entry.offset, entry.messages

    def store(self, saga_id: str, identity: Tuple[int, int], offset: int, messages: List[SagaMessage]) -> None:
        """Remember ``messages`` as the parse of the log's first ``offset`` bytes."""
        self.forget(saga_id)
        size = sum(_MESSAGE_OVERHEAD + len(m.data or b"") for m in messages)
        if size > self.max_bytes:
            return
        self._entries[saga_id] = _Entry(identity, offset, messages, size)
        self._size += size
        while self._size > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._size -= old.size

    def forget(self, saga_id: str) -> None:
        old: Optional[_Entry] = self._entries.pop(saga_id, None)
        if old is not None:
            self._size -= old.size

"""Which input offsets may be committed: those whose verdict (or dead letter) the broker has
acknowledged, and only contiguously per partition, so a commit never skips an event still in
flight. A crash then loses nothing: everything past the committed offset is read again.

Offsets of one partition are read in increasing order, so each partition keeps a queue of the
offsets read and a set of those done; the commit point is the first offset not done (or, with
none pending, one past the last done).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class _Partition:
    pending: deque[int] = field(default_factory=deque)  # read, in order
    done: set[int] = field(default_factory=set)  # acknowledged, not yet at the head
    next_commit: int | None = None  # the offset to commit (one past the last done in a row)
    committed: int | None = None  # what was last handed to commit()


TopicPartitionKey = tuple[str, int]


class OffsetTracker:
    """Per (topic, partition): offsets read, offsets done, the contiguous commit point."""

    def __init__(self) -> None:
        self._parts: dict[TopicPartitionKey, _Partition] = {}

    def read(self, tp: TopicPartitionKey, offset: int) -> None:
        """An event was read: it is pending until ``done``."""
        self._parts.setdefault(tp, _Partition()).pending.append(offset)

    def done(self, tp: TopicPartitionKey, offset: int) -> None:
        """The event's verdict was acknowledged. Unknown partitions (revoked since) are ignored:
        their offsets were handed back and the new owner reads them again."""
        part = self._parts.get(tp)
        if part is None:
            return
        part.done.add(offset)
        while part.pending and part.pending[0] in part.done:
            head = part.pending.popleft()
            part.done.discard(head)
            part.next_commit = head + 1

    def commit_point(self, tp: TopicPartitionKey) -> int | None:
        """The offset to commit for ``tp`` (the next one to read after a restart), or None."""
        part = self._parts.get(tp)
        return None if part is None else part.next_commit

    def to_commit(self) -> dict[TopicPartitionKey, int]:
        """Commit points that moved since the last ``committed`` call."""
        return {
            tp: p.next_commit
            for tp, p in self._parts.items()
            if p.next_commit is not None and p.next_commit != p.committed
        }

    def commit_points(self) -> dict[TopicPartitionKey, int]:
        """Every partition's commit point, moved or not (the last commit before a hand-back)."""
        return {tp: p.next_commit for tp, p in self._parts.items() if p.next_commit is not None}

    def not_committed(self, tps) -> None:
        """A commit of ``tps`` failed: their points count as moved again."""
        for tp in tps:
            if tp in self._parts:
                self._parts[tp].committed = None

    def committed(self, points: dict[TopicPartitionKey, int]) -> None:
        for tp, offset in points.items():
            if tp in self._parts:
                self._parts[tp].committed = offset

    def forget(self, tps) -> None:
        """Partitions revoked: what is pending there is handed back (not committed)."""
        for tp in tps:
            self._parts.pop(tp, None)

    @property
    def pending(self) -> int:
        """Events read and not yet done, over every partition."""
        return sum(len(p.pending) for p in self._parts.values())

    def pending_in(self, tp: TopicPartitionKey) -> int:
        part = self._parts.get(tp)
        return 0 if part is None else len(part.pending)

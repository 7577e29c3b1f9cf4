"""Idle-timeout sweeps without scanning every entry.

BMv2's AgeingMonitor (what simple_switch_grpc reports through PI) sweeps every
interval (1 s by default): an entry idle for at least its timeout is reported unless
it was reported by the previous sweep, so an entry that stays idle is reported every
second sweep and never deleted; a hit starts a new idle period.

Scanning every entry of every table per sweep costs O(entries) on the event loop.
Here each entry with a timeout is in a per-table heap keyed by the earliest time it
can be idle (``last_hit_ns + idle_timeout_ns`` when it was pushed). Hits only write
``last_hit_ns`` (the packet path is not touched), so a popped entry whose deadline
moved is pushed again at its new deadline: an entry costs one heap operation per
idle timeout at most, whatever its packet rate. An entry reported at sweep s is
checked again at sweep s + 2, as BMv2 does. A sweep therefore costs O(entries due)
and yields to the event loop every ``chunk`` entries; its notifications are split into
messages of about 1 MB (an IdleTimeoutNotification for 65,536 entries would be 8 MB,
over gRPC's default 4 MB receive limit).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

from finsy.proto import p4r

from softswitch.interp import tables as tm
from softswitch.runtime.tables import encode_matches

if TYPE_CHECKING:
    from softswitch.runtime.pipeline import Pipeline, TableInfo

__all__ = ["IdleTracker", "NOTIFICATION_BYTES"]

#: the largest IdleTimeoutNotification sent (bytes, about)
NOTIFICATION_BYTES = 1 << 20

_SEQ = "idle_seq"  # TableEntry.extra key: the sequence number of the entry's live heap item

_Item = tuple[int, int, tm.TableEntry]  # (due ns, seq, entry)


class IdleTracker:
    """Idle-timeout state of one pipeline's tables."""

    def __init__(self) -> None:
        self._heaps: dict[int, list[_Item]] = {}  # table id -> heap
        #: sweep number -> (table id, seq, entry) to check again at that sweep
        self._recheck: dict[int, list[tuple[int, int, tm.TableEntry]]] = {}
        self._seq = itertools.count(1)
        self.sweep_no = 0

    def __len__(self) -> int:
        return sum(len(h) for h in self._heaps.values()) + sum(len(r) for r in self._recheck.values())

    def track(self, table_id: int, entry: tm.TableEntry) -> None:
        """Watch ``entry`` (after an insert, or a modify that may change its timeout);
        an earlier item of the same entry goes stale."""
        if entry.idle_timeout_ns <= 0:
            entry.extra.pop(_SEQ, None)
            return
        seq = next(self._seq)
        entry.extra[_SEQ] = seq
        heapq.heappush(self._heaps.setdefault(table_id, []),
                       (entry.last_hit_ns + entry.idle_timeout_ns, seq, entry))

    def rebuild(self, pipe: Pipeline) -> None:
        """Watch every entry of ``pipe`` (a pipeline just committed)."""
        self._heaps.clear()
        self._recheck.clear()
        for info in pipe.tables.values():
            model = pipe.loaded.compiled.tables.get(info.name)
            if info.supports_timeout and model is not None:
                for e in model.entries():
                    self.track(info.id, e)

    def sweep(self, pipe: Pipeline, send: Callable[[p4r.StreamMessageResponse], object],
              chunk: int = 2000) -> Generator[None, None, int]:
        """One ageing sweep; yields every ``chunk`` entries looked at (so an async caller
        can let the event loop run) and returns the number of entries reported."""
        self.sweep_no += 1
        s = self.sweep_no
        out = _Notifications(send)
        seen = 0
        reported = 0
        due_again: dict[int, list[tuple[int, int, tm.TableEntry]]] = {}
        for tid, seq, e in self._recheck.pop(s, ()):
            due_again.setdefault(tid, []).append((tid, seq, e))
        for tid in set(self._heaps) | set(due_again):
            info = pipe.tables.get(tid)
            model = pipe.loaded.compiled.tables.get(info.name) if info is not None else None
            if info is None or model is None:
                continue
            now = model.clock_ns()  # the clock of this table's hit and insertion times
            heap = self._heaps.setdefault(tid, [])
            candidates = [(seq, e) for _, seq, e in due_again.get(tid, ())]
            while heap and heap[0][0] <= now:
                _, seq, e = heapq.heappop(heap)
                candidates.append((seq, e))
            for seq, e in candidates:
                seen += 1
                if seen % chunk == 0:
                    yield
                if e.extra.get(_SEQ) != seq or e.idle_timeout_ns <= 0 or model.get(e.matches, e.priority) is not e:
                    continue  # deleted, re-tracked after a modify, or no longer ageing
                deadline = e.last_hit_ns + e.idle_timeout_ns
                if now < deadline:
                    heapq.heappush(heap, (deadline, seq, e))  # hit since it was pushed
                    continue
                out.add(_notification_entry(info, e, now))
                reported += 1
                self._recheck.setdefault(s + 2, []).append((tid, seq, e))
        out.flush()
        return reported

    def sweep_now(self, pipe: Pipeline, send: Callable[[p4r.StreamMessageResponse], object]) -> int:
        """One whole sweep without yielding (tests, tools)."""
        gen = self.sweep(pipe, send)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                return int(stop.value)


class _Notifications:
    """Collects notification entries into messages of about NOTIFICATION_BYTES."""

    def __init__(self, send: Callable[[p4r.StreamMessageResponse], object]) -> None:
        self._send = send
        self._msg: p4r.StreamMessageResponse | None = None
        self._size = 0

    def add(self, te: p4r.TableEntry) -> None:
        n = te.ByteSize() + 8
        if self._msg is not None and self._size + n > NOTIFICATION_BYTES:
            self.flush()
        if self._msg is None:
            self._msg = p4r.StreamMessageResponse()
            self._size = 0
        self._msg.idle_timeout_notification.table_entry.append(te)
        self._size += n

    def flush(self) -> None:
        if self._msg is not None:
            self._msg.idle_timeout_notification.timestamp = time.time_ns()
            self._send(self._msg)
            self._msg = None


def _notification_entry(info: TableInfo, e: tm.TableEntry, now: int) -> p4r.TableEntry:
    # PI reports the key (match fields and priority), controller_metadata and
    # idle_timeout_ns; the time since the last hit is added (cheap and useful)
    te = p4r.TableEntry(table_id=info.id, priority=e.priority, controller_metadata=e.controller_metadata,
                        idle_timeout_ns=e.idle_timeout_ns)
    encode_matches(info, e, te)
    te.time_since_last_hit.elapsed_ns = now - e.last_hit_ns
    return te

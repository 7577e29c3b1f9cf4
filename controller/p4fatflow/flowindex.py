"""The controller's index of one switch's flows: which keys are installed, and which is nearest to
expiry (for recycling at capacity, seed 000).

It holds no flow context (that lives in the switch's entries): per flow only its index key (the
match wire, flowcodec.py) and its expiry bucket. Buckets are whole seconds of "installed (or
refreshed) at + lifetime"; a min-heap of bucket numbers gives the next bucket to recycle from, as
the seed's timer wheel gives its next slot. Everything is O(1) amortised per flow; memory is two
dict slots and the key bytes (see bench/bench_controller.py for the measured bytes per flow).

The bucket is an estimate: the switch, not the controller, sees packets, so a flow refreshed by
traffic keeps its install-time bucket until the switch reports it idle or it is updated. Recycling
therefore takes the flow whose *lifetime since install* ends first, which is the seed's choice for
flows that were not refreshed, and a documented approximation for those that were.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator

__all__ = ["FlowIndex"]


class FlowIndex:
    __slots__ = ("_bucket_of", "_buckets", "_heap", "_ints", "_live", "_tombs")

    def __init__(self) -> None:
        self._bucket_of: dict[bytes, int] = {}
        # Per bucket, keys in the order they were added (first = first to recycle, as the seed's
        # timer wheel). Removal is lazy: a key whose _bucket_of no longer names this bucket is
        # stale; _live counts the others, and a deque mostly stale is compacted (amortised O(1)).
        self._buckets: dict[int, deque[bytes]] = {}
        self._live: dict[int, int] = {}
        # Keys removed from a bucket that still lives: their stale deque copy is skipped, so a key
        # removed and added again to the same bucket goes to the back, as a new flow would.
        self._tombs: dict[int, set[bytes]] = {}
        self._heap: list[int] = []
        self._ints: dict[int, int] = {}  # one int object per bucket number, shared by its flows

    def __len__(self) -> int:
        return len(self._bucket_of)

    def __contains__(self, key: object) -> bool:
        return key in self._bucket_of

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._bucket_of)

    def add(self, key: bytes, expires_s: int) -> None:
        """Add (or move) ``key`` with its expiry second."""
        old = self._bucket_of.get(key)
        if old is not None:
            if old == expires_s:
                return
            self.remove(key)
        b = self._ints.setdefault(expires_s, expires_s)
        dq = self._buckets.get(b)
        if dq is None:
            dq = self._buckets[b] = deque()
            self._live[b] = 0
            heapq.heappush(self._heap, b)
        dq.append(key)
        self._live[b] += 1
        self._bucket_of[key] = b

    def expires(self, key: bytes) -> int | None:
        return self._bucket_of.get(key)

    def remove(self, key: bytes) -> bool:
        b = self._bucket_of.pop(key, None)
        if b is None:
            return False
        if self._unlive(b):
            self._tombs.setdefault(b, set()).add(key)
        return True

    def _unlive(self, b: int) -> bool:
        """One flow fewer in bucket ``b``; False if the bucket is gone with it."""
        live = self._live[b] - 1
        if live == 0:
            del self._buckets[b], self._live[b], self._ints[b]
            self._tombs.pop(b, None)
            if len(self._heap) > 2 * len(self._buckets) + 64:  # drop numbers of dead buckets
                self._heap = list(self._buckets)
                heapq.heapify(self._heap)
            return False
        self._live[b] = live
        dq = self._buckets[b]
        if len(dq) > 2 * live + 64:
            # Keep each live key once, at its last (newest) place.
            seen: set[bytes] = set()
            keep: list[bytes] = []
            for k in reversed(dq):
                if k not in seen and self._bucket_of.get(k) == b:
                    seen.add(k)
                    keep.append(k)
            keep.reverse()
            self._buckets[b] = deque(keep)
            self._tombs.pop(b, None)
            return False  # no stale copies left: nothing to skip
        return True

    def pop_nearest(self) -> bytes | None:
        """Remove and return the flow nearest to expiry: the first added of the earliest bucket."""
        heap = self._heap
        while heap:
            b = heap[0]
            dq = self._buckets.get(b)
            if dq is None:
                heapq.heappop(heap)
                continue
            tombs = self._tombs.get(b)
            while dq:
                key = dq.popleft()
                if tombs and key in tombs:
                    tombs.discard(key)  # the stale copy of a removed (maybe re-added) key
                    continue
                if self._bucket_of.get(key) == b:
                    del self._bucket_of[key]
                    self._unlive(b)
                    return key
            # only stale keys were left (cannot happen while _live is right, but stay safe)
            del self._buckets[b], self._live[b], self._ints[b]
            self._tombs.pop(b, None)
        return None

    def clear(self) -> None:
        self._bucket_of.clear()
        self._buckets.clear()
        self._live.clear()
        self._tombs.clear()
        self._heap.clear()
        self._ints.clear()

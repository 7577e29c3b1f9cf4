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
from collections.abc import Iterator

__all__ = ["FlowIndex"]


class FlowIndex:
    __slots__ = ("_bucket_of", "_buckets", "_heap", "_ints")

    def __init__(self) -> None:
        self._bucket_of: dict[bytes, int] = {}
        self._buckets: dict[int, dict[bytes, None]] = {}
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
            self._drop_from_bucket(key, old)
        b = self._ints.setdefault(expires_s, expires_s)
        bucket = self._buckets.get(b)
        if bucket is None:
            bucket = self._buckets[b] = {}
            heapq.heappush(self._heap, b)
        bucket[key] = None
        self._bucket_of[key] = b

    def expires(self, key: bytes) -> int | None:
        return self._bucket_of.get(key)

    def remove(self, key: bytes) -> bool:
        b = self._bucket_of.pop(key, None)
        if b is None:
            return False
        self._drop_from_bucket(key, b)
        return True

    def _drop_from_bucket(self, key: bytes, b: int) -> None:
        bucket = self._buckets[b]
        del bucket[key]
        if not bucket:
            # The heap keeps the number; pop_nearest skips empty buckets lazily.
            del self._buckets[b]
            del self._ints[b]

    def pop_nearest(self) -> bytes | None:
        """Remove and return the flow nearest to expiry (any flow of the earliest bucket)."""
        heap = self._heap
        while heap:
            b = heap[0]
            bucket = self._buckets.get(b)
            if not bucket:
                heapq.heappop(heap)
                continue
            key, _ = bucket.popitem()
            del self._bucket_of[key]
            if not bucket:
                del self._buckets[b]
                del self._ints[b]
                heapq.heappop(heap)
            return key
        return None

    def clear(self) -> None:
        self._bucket_of.clear()
        self._buckets.clear()
        self._heap.clear()
        self._ints.clear()

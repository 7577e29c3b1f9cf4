"""Keeping Python's cyclic GC from stopping forwarding once tables are big.

Every table entry is a handful of GC-tracked objects (the entry, its matches, their
tuples), so 100,000 entries are about 10^6 objects. CPython runs a full (generation 2)
collection whenever the long-lived objects have grown by 25 %, and a full collection
walks all of them: measured in a switch filling a 5-tuple table in batches of 100,
collections of 23, 45, 73, 110, 140 and then 290 ms, each one a forwarding gap as long
(bench/bench_p4rt.py, docs/benchmarks.md).

Entries live until the controller deletes them, and a deleted entry is freed by its
reference count (entries hold no reference cycles), so the collector gains nothing by
walking them again and again. :class:`GcFreezer` moves what survives a young collection
into the permanent generation (``gc.freeze()``) once enough entries were written since
the last freeze; full collections then walk only what was allocated since. The cost is
that cyclic garbage already in the oldest generation at a freeze is never collected:
``gc.collect(1)`` first collects the young generations (cheap: bounded by the GC
thresholds), and a pipeline commit unfreezes everything (the next full collection then
reclaims the old program's cycles).
"""

from __future__ import annotations

import gc

__all__ = ["GcFreezer", "FREEZE_AFTER"]

#: entries written between two freezes (0: never freeze)
FREEZE_AFTER = 10_000


class GcFreezer:
    def __init__(self, after: int = FREEZE_AFTER) -> None:
        self.after = after
        self._written = 0
        #: freezes done (tests, stats)
        self.freezes = 0

    def written(self, n: int) -> None:
        """``n`` entries were inserted or modified; freeze when enough have been."""
        if self.after <= 0 or n <= 0:
            return
        self._written += n
        if self._written >= self.after:
            self._written = 0
            gc.collect(1)
            gc.freeze()
            self.freezes += 1

    def reset(self) -> None:
        """A new pipeline: give everything back to the collector."""
        self._written = 0
        if self.after > 0 and gc.get_freeze_count():
            gc.unfreeze()

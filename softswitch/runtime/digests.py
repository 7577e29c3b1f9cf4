"""Digest batching and suppression, following the DigestEntry configuration.

Per digest id: data arrive from the device (``offer``); identical data already in the
pending list, or sent in a list not yet acknowledged whose ack timeout has not expired,
are suppressed. This is what simple_switch_grpc shows: BMv2's learning filter drops a
sample already buffered, and PI's DigestMgr keeps a cache of the samples of every list
sent until the list is acked or ``ack_timeout_ns`` passes (with ``ack_timeout_ns`` 0 PI
caches nothing, so nothing is suppressed after sending). A list is sent when it holds
``max_list_size`` items (when > 0) or ``max_timeout_ns`` after its first item (0 = at
once).

Memory and time are bounded by what is outstanding, never by history: the duplicate
check is one dict lookup; each digest id has at most two timers (the flush of its
pending list and the earliest ack expiry), and a list's bookkeeping is freed when it is
acked or expires. PI expires unacked lists with a periodic sweep (between one and two
ack timeouts after sending); here a list expires exactly ``ack_timeout_ns`` after it
was sent.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from finsy.proto import p4r

from softswitch.runtime.codec import encode

__all__ = ["DigestQueue"]

Data = tuple[int, ...]


@dataclass(eq=False, slots=True)
class _Digest:
    """State of one configured digest id."""

    config: p4r.DigestEntry.Config
    widths: tuple[int, ...]
    #: items of the list being filled; a dict is an insertion-ordered set
    pending: dict[Data, None] = field(default_factory=dict)
    flush_timer: asyncio.TimerHandle | None = None
    #: the ack cache: data of sent, unacked, unexpired lists -> the list id
    unacked: dict[Data, int] = field(default_factory=dict)
    #: list id -> its items, for the lists in the ack cache
    lists: dict[int, list[Data]] = field(default_factory=dict)
    #: (expiry time on the loop clock, list id); entries of acked lists go stale and
    #: are skipped when they come up, so the heap is bounded by the lists sent within
    #: one ack timeout
    expiry: list[tuple[float, int]] = field(default_factory=list)
    expiry_timer: asyncio.TimerHandle | None = None

    def cancel_timers(self) -> None:
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
            self.expiry_timer = None


class DigestQueue:
    """Digest state of one committed pipeline."""

    def __init__(self, send: Callable[[p4r.StreamMessageResponse], bool]) -> None:
        #: sends a message to the primary client; False when it could not be queued
        #: (no primary, or its stream queue is full)
        self._send = send
        self._digests: dict[int, _Digest] = {}
        self._next_list_id = 1
        #: lists that could not be handed to a client
        self.lists_dropped = 0

    # --------------------------------------------------------------- config

    @property
    def configs(self) -> dict[int, p4r.DigestEntry.Config]:
        """digest id -> its DigestEntry config, for the configured digests."""
        return {did: d.config for did, d in self._digests.items()}

    def is_configured(self, digest_id: int) -> bool:
        return digest_id in self._digests

    def configure(self, digest_id: int, widths: tuple[int, ...], config: p4r.DigestEntry.Config | None) -> None:
        d = self._digests.get(digest_id)
        if config is None:
            # The DigestEntry is deleted: the controller no longer wants this digest, so
            # its pending data and the suppression of lists it never acked go too (a
            # later DigestEntry starts afresh instead of staying silent on old data).
            if d is not None:
                d.cancel_timers()
                del self._digests[digest_id]
            return
        if d is None:
            self._digests[digest_id] = _Digest(config, widths)
        else:
            # MODIFY: the new limits apply from the next item on; lists already sent
            # keep the expiry they were sent with
            d.config, d.widths = config, widths

    # --------------------------------------------------------------- data path

    def offer(self, digest_id: int, data: Data) -> None:
        d = self._digests.get(digest_id)
        if d is None:
            return  # no DigestEntry: the control plane did not ask for this digest
        if data in d.unacked or data in d.pending:
            return
        d.pending[data] = None
        config = d.config
        if (config.max_list_size > 0 and len(d.pending) >= config.max_list_size) or config.max_timeout_ns <= 0:
            self.flush(digest_id)
        elif d.flush_timer is None:
            loop = asyncio.get_running_loop()
            d.flush_timer = loop.call_later(config.max_timeout_ns / 1e9, self.flush, digest_id)

    def flush(self, digest_id: int) -> None:
        d = self._digests.get(digest_id)
        if d is None:
            return
        if d.flush_timer is not None:
            d.flush_timer.cancel()
            d.flush_timer = None
        if not d.pending:
            return
        items = list(d.pending)
        d.pending.clear()
        list_id = self._next_list_id
        self._next_list_id += 1
        msg = p4r.StreamMessageResponse()
        dl = msg.digest
        dl.digest_id = digest_id
        dl.list_id = list_id
        dl.timestamp = time.time_ns()
        widths = d.widths
        for item in items:
            s = dl.data.add().struct
            for i, v in enumerate(item):
                s.members.add().bitstring = encode(v, widths[i] if i < len(widths) else 0)
        if not self._send(msg):
            # Nobody received the list, so nobody can ack it: caching its items would
            # only silence them for an ack timeout. They are learned again on the next
            # packet instead.
            self.lists_dropped += 1
            return
        if d.config.ack_timeout_ns <= 0:
            return
        for item in items:
            d.unacked[item] = list_id
        d.lists[list_id] = items
        loop = asyncio.get_running_loop()
        deadline = loop.time() + d.config.ack_timeout_ns / 1e9
        heapq.heappush(d.expiry, (deadline, list_id))
        if d.expiry_timer is None or d.expiry[0][1] == list_id:
            self._arm_expiry(digest_id, d)

    def _arm_expiry(self, digest_id: int, d: _Digest) -> None:
        if d.expiry_timer is not None:
            d.expiry_timer.cancel()
            d.expiry_timer = None
        if d.expiry:
            d.expiry_timer = asyncio.get_running_loop().call_at(d.expiry[0][0], self._expire, digest_id)

    def _expire(self, digest_id: int) -> None:
        d = self._digests.get(digest_id)
        if d is None:
            return
        d.expiry_timer = None
        now = asyncio.get_running_loop().time()
        while d.expiry and d.expiry[0][0] <= now:
            _, list_id = heapq.heappop(d.expiry)
            self._release(d, list_id)  # a stale entry (list acked) releases nothing
        self._arm_expiry(digest_id, d)

    def ack(self, digest_id: int, list_id: int) -> None:
        d = self._digests.get(digest_id)
        if d is not None:
            self._release(d, list_id)
            if not d.lists and d.expiry:
                # nothing left to expire: drop the stale heap entries and their timer
                d.expiry.clear()
                self._arm_expiry(digest_id, d)

    @staticmethod
    def _release(d: _Digest, list_id: int) -> None:
        for item in d.lists.pop(list_id, ()):
            if d.unacked.get(item) == list_id:
                del d.unacked[item]

    def close(self) -> None:
        for d in self._digests.values():
            d.cancel_timers()
        self._digests.clear()

    # ---------------------------------------------------------------- introspection

    def outstanding(self) -> dict[str, int]:
        """Sizes of the bookkeeping (what bounded memory is checked against)."""
        return {
            "pending": sum(len(d.pending) for d in self._digests.values()),
            "unacked": sum(len(d.unacked) for d in self._digests.values()),
            "lists": sum(len(d.lists) for d in self._digests.values()),
            "expiry_heap": sum(len(d.expiry) for d in self._digests.values()),
            "timers": sum((d.flush_timer is not None) + (d.expiry_timer is not None)
                          for d in self._digests.values()),
        }

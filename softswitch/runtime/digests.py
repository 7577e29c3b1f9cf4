"""Digest batching and suppression, following the DigestEntry configuration.

Per digest id: data arrive from the device (``offer``); identical data already in the
pending list, or sent in a list not yet acknowledged whose ack timeout has not expired,
are suppressed (BMv2's learning engine / PI behave the same). A list is sent when it
holds ``max_list_size`` items (when > 0) or ``max_timeout_ns`` after its first item
(0 = at once). ``DigestListAck`` releases the data of that list; without an ack they are
released ``ack_timeout_ns`` after sending (0 = released at once: no suppression after
sending).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from finsy.proto import p4r

from softswitch.runtime.codec import encode

__all__ = ["DigestQueue"]


@dataclass(slots=True)
class _Pending:
    items: list[tuple[int, ...]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class DigestQueue:
    """Digest state of one committed pipeline."""

    def __init__(self, send: Callable[[p4r.StreamMessageResponse], bool]) -> None:
        self._send = send
        self.configs: dict[int, p4r.DigestEntry.Config] = {}
        self.widths: dict[int, tuple[int, ...]] = {}
        self._pending: dict[int, _Pending] = {}
        #: (digest id, data) -> list id it was sent in, while unacknowledged
        self._unacked: dict[tuple[int, tuple[int, ...]], int] = {}
        self._lists: dict[tuple[int, int], list[tuple[int, ...]]] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self._next_list_id = 1

    def configure(self, digest_id: int, widths: tuple[int, ...], config: p4r.DigestEntry.Config | None) -> None:
        if config is None:
            # The DigestEntry is deleted: the controller no longer wants this digest, so
            # its pending data and the suppression of lists it never acked go too (a
            # later DigestEntry starts afresh instead of staying silent on old data).
            self.configs.pop(digest_id, None)
            p = self._pending.pop(digest_id, None)
            if p is not None and p.timer is not None:
                p.timer.cancel()
            for list_key in [k for k in self._lists if k[0] == digest_id]:
                del self._lists[list_key]
            for data_key in [k for k in self._unacked if k[0] == digest_id]:
                del self._unacked[data_key]
            return
        self.configs[digest_id] = config
        self.widths[digest_id] = widths

    def offer(self, digest_id: int, data: tuple[int, ...]) -> None:
        config = self.configs.get(digest_id)
        if config is None:
            return  # no DigestEntry: the control plane did not ask for this digest
        if (digest_id, data) in self._unacked:
            return
        p = self._pending.setdefault(digest_id, _Pending())
        if data in p.items:
            return
        p.items.append(data)
        if (config.max_list_size > 0 and len(p.items) >= config.max_list_size) or config.max_timeout_ns <= 0:
            self.flush(digest_id)
        elif p.timer is None:
            loop = asyncio.get_running_loop()
            p.timer = loop.call_later(config.max_timeout_ns / 1e9, self.flush, digest_id)

    def flush(self, digest_id: int) -> None:
        p = self._pending.pop(digest_id, None)
        if p is None or not p.items:
            return
        if p.timer is not None:
            p.timer.cancel()
        list_id = self._next_list_id
        self._next_list_id += 1
        msg = p4r.StreamMessageResponse()
        d = msg.digest
        d.digest_id = digest_id
        d.list_id = list_id
        d.timestamp = time.time_ns()
        widths = self.widths.get(digest_id, ())
        for item in p.items:
            s = d.data.add().struct
            for i, v in enumerate(item):
                s.members.add().bitstring = encode(v, widths[i] if i < len(widths) else 0)
        self._send(msg)
        config = self.configs.get(digest_id)
        if config is None or config.ack_timeout_ns <= 0:
            return
        self._lists[(digest_id, list_id)] = p.items
        for item in p.items:
            self._unacked[(digest_id, item)] = list_id
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(config.ack_timeout_ns / 1e9, self.ack, digest_id, list_id))

    def ack(self, digest_id: int, list_id: int) -> None:
        for item in self._lists.pop((digest_id, list_id), []):
            if self._unacked.get((digest_id, item)) == list_id:
                del self._unacked[(digest_id, item)]

    def close(self) -> None:
        for p in self._pending.values():
            if p.timer is not None:
                p.timer.cancel()
        for t in self._timers:
            t.cancel()
        self._pending.clear()
        self._unacked.clear()
        self._lists.clear()
        self.configs.clear()

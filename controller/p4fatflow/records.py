"""Flow records (a flow's end: key, context, counters, times, reason) and the bus that hands them
to subscribers (the API's WatchFlows, IPFIX export, tests).

A record keeps the flow's index key and decodes its :class:`FlowKey` only when asked, so expiring
100,000 flows does not build 100,000 keys nobody reads.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from typing import Any

from p4fatflow.flowcodec import FlowCodec, FlowContext
from p4fatflow.key import FlowKey

__all__ = ["Reason", "FlowRecord", "RecordBus"]

log = logging.getLogger("p4fatflow.records")


class Reason(enum.StrEnum):
    IDLE = "idle"  # the switch reported it idle for its lifetime
    RECYCLED = "recycled"  # evicted at capacity
    FLUSHED = "flushed"  # its key no longer follows from the configuration (or a flush was asked)
    DELETED = "deleted"  # deleted through the API
    LIFETIME0 = "lifetime0"  # lifetime 0: expired right after its packet, never installed


class FlowRecord:
    __slots__ = ("_codec", "_key", "bytes", "context", "end_ns", "index_key", "packets", "reason", "switch")

    def __init__(self, switch: str, index_key: bytes, context: FlowContext | None, packets: int, nbytes: int,
                 end_ns: int, reason: Reason, codec: FlowCodec) -> None:
        self.switch = switch
        self.index_key = index_key
        self.context = context
        self.packets = packets
        self.bytes = nbytes
        self.end_ns = end_ns
        self.reason = reason
        self._codec = codec
        self._key: FlowKey | None = None

    @property
    def key(self) -> FlowKey:
        if self._key is None:
            self._key = self._codec.flow_key(self.index_key)
        return self._key

    @property
    def first_seen_ns(self) -> int:
        return self.context.first_seen_ns if self.context else 0

    @property
    def last_seen_ns(self) -> int:
        """For an idle expiry: when the flow last had a packet (end minus its lifetime)."""
        if self.reason is Reason.IDLE and self.context is not None:
            return max(self.first_seen_ns, self.end_ns - self.context.lifetime * 1_000_000_000)
        return self.end_ns

    def to_dict(self) -> dict[str, Any]:
        ctx = self.context
        return {
            "switch": self.switch, "key": self.key.to_dict(), "reason": self.reason.value,
            "packets": self.packets, "bytes": self.bytes, "first_seen_ns": self.first_seen_ns,
            "last_seen_ns": self.last_seen_ns, "end_ns": self.end_ns,
            "vmi_id": ctx.vmi_id if ctx else 0, "lifetime": ctx.lifetime if ctx else None,
            "drop": ctx.verdict_drop if ctx else None, "mirror": ctx.mirror if ctx else None,
            "offloaded": ctx.offloaded if ctx else None, "info": ctx.info.hex() if ctx else "",
        }

    def __repr__(self) -> str:
        return f"FlowRecord({self.switch} {self.key} {self.reason.value} {self.packets}p {self.bytes}B)"


Subscriber = Callable[[Sequence[FlowRecord]], None]


class RecordBus:
    """Synchronous fan-out of record batches; a subscriber must not block (queue and return)."""

    def __init__(self) -> None:
        self._subs: list[Subscriber] = []
        self.published = 0

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subs.append(fn)
        return lambda: self._subs.remove(fn) if fn in self._subs else None

    def publish(self, records: Sequence[FlowRecord]) -> None:
        if not records:
            return
        self.published += len(records)
        for fn in list(self._subs):
            try:
                fn(records)
            except Exception:  # one broken subscriber must not stop the others or the flow layer
                log.exception("flow record subscriber %r failed", fn)

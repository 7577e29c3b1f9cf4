"""Messages of the fatflowd API built from the flow layer's objects: keys, contexts, flows (with the
parts of a key built once per key), configuration problems."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from p4fatflow import dataplane as dp
from p4fatflow.api.lookup import fat
from p4fatflow.api.pb import pb
from p4fatflow.flowcodec import FlowContext
from p4fatflow.key import FlowKey, address_text
from p4fatflow.settings import ConfigFileError

__all__ = ["DIRECTIONS", "KeyParts", "context_pb", "flow_pb", "key_pb", "problems_pb"]

#: the pipeline's direction codes, as the API names them
DIRECTIONS = {dp.DIRECTION_FROM_VM: "from_vm", dp.DIRECTION_TO_VM: "to_vm", dp.DIRECTION_TRANSIT: "transit"}


def key_pb(key: FlowKey, src: str | None = None, dst: str | None = None) -> Any:
    """The key's message (``src``/``dst``: the addresses' text, when the caller has it already)."""
    return pb.FlowKey(vrf=key.vrf, src=address_text(key.src) if src is None else src, src_plen=key.src_plen,
                      dst=address_text(key.dst) if dst is None else dst, dst_plen=key.dst_plen,
                      protocol=key.protocol, sport=key.sport, dport=key.dport)


def context_pb(ctx: FlowContext | None, vmi_names: Mapping[int, str]) -> Any:
    if ctx is None:
        return pb.FlowContext()
    return pb.FlowContext(lifetime=ctx.lifetime, offloaded=ctx.offloaded, mirror=ctx.mirror,
                          verdict=pb.VERDICT_DROP if ctx.verdict_drop else pb.VERDICT_FORWARD,
                          egress_port=ctx.egress_port, info=ctx.info, vmi_id=ctx.vmi_id,
                          vmi=vmi_names.get(ctx.vmi_id, ""), ingress_port=ctx.ingress_port,
                          direction=DIRECTIONS.get(ctx.direction, ""), first_seen_ns=ctx.first_seen_ns)


class KeyParts:
    """What a flow's key contributes to every pb.Flow (the key message serialised, its text, fat or
    not), built once per key: an update's result and its WatchFlows event show the same key, and
    applications come back to the same flows. Bounded (about 200 bytes an entry): emptied when full."""

    __slots__ = ("_parts", "limit")

    def __init__(self, limit: int = 65536) -> None:
        self._parts: dict[FlowKey, tuple[bytes, str, bool]] = {}
        self.limit = limit

    def get(self, key: FlowKey) -> tuple[bytes, str, bool]:
        got = self._parts.get(key)
        if got is None:
            if len(self._parts) >= self.limit:
                self._parts.clear()
            src, dst = address_text(key.src), address_text(key.dst)  # once, for the message and the text
            got = self._parts[key] = (key_pb(key, src, dst).SerializeToString(), key.text(src, dst), fat(key))
        return got


_KEY_PARTS = KeyParts()


def flow_pb(switch: str, key: FlowKey, ctx: FlowContext | None, vmi_names: Mapping[int, str], *, packets: int = 0,
            nbytes: int = 0, idle_ns: int | None = None, now_ns: int | None = None, into: Any = None) -> Any:
    """The pb.Flow of a flow (filled into ``into`` when given, e.g. an event's field)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    kpb, text, is_fat = _KEY_PARTS.get(key)
    f = pb.Flow() if into is None else into
    f.switch = switch
    f.key.ParseFromString(kpb)
    f.context.CopyFrom(context_pb(ctx, vmi_names))
    f.packets = packets
    f.bytes = nbytes
    f.fat = is_fat
    f.text = text
    if ctx is not None and ctx.first_seen_ns:
        f.age_ms = max(0, now_ns - ctx.first_seen_ns) // 1_000_000
    if idle_ns is not None:
        f.idle_ms = idle_ns // 1_000_000
        if ctx is not None:
            f.lifetime_left_ms = ctx.lifetime * 1000 - f.idle_ms
    return f


def problems_pb(exc: ConfigFileError) -> list[Any]:
    return [pb.Problem(file=p.file, line=p.line or 0, path=p.path, message=p.message) for p in exc.problems]

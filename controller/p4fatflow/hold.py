"""The hold miss policy's controller side: held packets queued per pending flow, released by
packet-out once the flow's entry is written (spec section 4; at most 3 per flow, as Contrail does).

A held packet arrives as a packet-in without its flow key, so the key is computed here the way the
pipeline computes it: :func:`parse_frame` mirrors p4src/include/parser.p4 (Ethernet, one VLAN,
IPv4 with options, IPv6 without extension headers, TCP/UDP/SCTP ports, the ICMP/ICMPv6 echo
identifier as the source port, no L4 for non-first IPv4 fragments), and :class:`KeyResolver` applies
the reference key function with the rules of the VMI that applies (spec section 1).
"""

from __future__ import annotations

import struct
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from p4fatflow import dataplane as dp
from p4fatflow.key import CompiledRules, Direction, ExcludeList, FlowKey, PacketFields, flow_key

__all__ = ["parse_frame", "PortView", "KeyResolver", "HeldPacket", "HoldQueues"]

_PORTED = {6, 17, 132}


def parse_frame(frame: bytes) -> PacketFields | None:
    """The 5-tuple the pipeline sees in ``frame``; None for what it would not key (non-IP)."""
    try:
        off = 12
        ethertype = struct.unpack_from("!H", frame, off)[0]
        off += 2
        if ethertype == 0x8100:
            ethertype = struct.unpack_from("!H", frame, off + 2)[0]
            off += 4
        if ethertype == 0x0800:
            ihl = frame[off] & 0x0F
            if ihl < 5:
                return None
            frag = struct.unpack_from("!H", frame, off + 6)[0] & 0x1FFF
            proto = frame[off + 9]
            src: IPv4Address | IPv6Address = IPv4Address(frame[off + 12:off + 16])
            dst: IPv4Address | IPv6Address = IPv4Address(frame[off + 16:off + 20])
            l4 = off + ihl * 4
            if frag:
                return PacketFields(src, dst, proto, 0, 0)
            icmp = 1
        elif ethertype == 0x86DD:
            proto = frame[off + 6]
            src, dst = IPv6Address(frame[off + 8:off + 24]), IPv6Address(frame[off + 24:off + 40])
            l4 = off + 40
            icmp = 58
        else:
            return None
        sport = dport = 0
        if proto in _PORTED:
            sport, dport = struct.unpack_from("!HH", frame, l4)
        elif proto == icmp:
            kind = frame[l4]
            if kind in ((8, 0) if icmp == 1 else (128, 129)):
                sport = struct.unpack_from("!H", frame, l4 + 4)[0]
        return PacketFields(src, dst, proto, sport, dport)
    except (struct.error, IndexError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class PortView:
    """What the key function needs to know of one switch port."""

    port: int
    vrf: int
    vmi_id: int = 0  # 0 = fabric port
    rules: CompiledRules | None = None
    exclude: ExcludeList | None = None


class KeyResolver:
    """Packet (and where it entered / would leave) -> its flow key, VMI id and direction."""

    def __init__(self, ports: Mapping[int, PortView]) -> None:
        self.ports = dict(ports)

    def resolve(self, ingress_port: int, egress_port: int, pkt: PacketFields) -> tuple[FlowKey, int, int] | None:
        into = self.ports.get(ingress_port)
        if into is None:
            return None
        if into.vmi_id:
            return flow_key(pkt, Direction.FROM_VM, into.vrf, into.rules, into.exclude), into.vmi_id, dp.DIRECTION_FROM_VM
        out = self.ports.get(egress_port)
        if out is not None and out.vmi_id:
            return flow_key(pkt, Direction.TO_VM, into.vrf, out.rules, out.exclude), out.vmi_id, dp.DIRECTION_TO_VM
        return FlowKey.normal(pkt, into.vrf), 0, dp.DIRECTION_TRANSIT


@dataclass(slots=True)
class HeldPacket:
    payload: bytes
    egress_port: int
    at: float


class HoldQueues:
    """Held packets per pending flow (index key), bounded per flow and in total; counts drops."""

    def __init__(self, per_flow: int = 3, total: int = 4096, max_age_s: float = 5.0) -> None:
        self.per_flow = per_flow
        self.total = total
        self.max_age_s = max_age_s
        self._queues: dict[bytes, deque[HeldPacket]] = {}
        self.held = 0
        self.queued = 0
        self.dropped = 0  # over a limit, too old, or the flow could not be installed
        self.released = 0
        self.dropped_by_verdict = 0

    def __len__(self) -> int:
        return self.held

    def add(self, key: bytes, payload: bytes, egress_port: int) -> bool:
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = deque()
        if len(q) >= self.per_flow or self.held >= self.total:
            self.dropped += 1
            return False
        q.append(HeldPacket(payload, egress_port, time.monotonic()))
        self.held += 1
        self.queued += 1
        return True

    def take(self, key: bytes) -> list[HeldPacket]:
        q = self._queues.pop(key, None)
        if not q:
            return []
        self.held -= len(q)
        return list(q)

    def discard(self, key: bytes) -> None:
        n = len(self.take(key))
        self.dropped += n

    def expire(self, now: float | None = None) -> int:
        """Drop packets held longer than max_age_s (their flow never got installed)."""
        now = time.monotonic() if now is None else now
        old = [k for k, q in self._queues.items() if q and now - q[0].at > self.max_age_s]
        for k in old:
            self.discard(k)
        return len(old)

    def clear(self) -> None:
        for k in list(self._queues):
            self.discard(k)

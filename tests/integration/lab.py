"""A small test helper that programs the fat-flow pipeline over real P4Runtime (finsy).

It is not the controller: it writes what a test asks for and collects what the switch
reports (digests, idle-timeout notifications, packet-ins) into queues.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from pathlib import Path
from typing import Any

import finsy
from p4fatflow import dataplane as dp
from p4fatflow import p4rt
from p4fatflow.config import VMI
from p4fatflow.dataplane import FlowDigest, TableWrite
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.layers.sctp import SCTP
from scapy.packet import Packet, raw

__all__ = ["Lab", "open_lab", "frame", "VMI_MAC", "ROUTER_MAC", "NEXT_HOP_MAC"]

VMI_MAC = "02:00:00:00:01:01"
ROUTER_MAC = "02:00:00:00:00:aa"
NEXT_HOP_MAC = "02:00:00:00:00:bb"


def _mac(s: str) -> int:
    return int(s.replace(":", ""), 16)


def frame(src: str, dst: str, protocol: int, sport: int = 0, dport: int = 0, *, ttl: int = 64,
          payload: bytes = b"fatflow", src_mac: str = VMI_MAC, dst_mac: str = ROUTER_MAC) -> bytes:
    """An Ethernet frame carrying one IPv4/IPv6 packet; for ICMP/ICMPv6 ``sport`` is the echo
    identifier of an echo request."""
    v6 = ip_address(src).version == 6
    l3: Packet = IPv6(src=src, dst=dst, hlim=ttl) if v6 else IP(src=src, dst=dst, ttl=ttl)
    l4: Packet
    if protocol == 6:
        l4 = TCP(sport=sport, dport=dport)
    elif protocol == 17:
        l4 = UDP(sport=sport, dport=dport)
    elif protocol == 132:
        l4 = SCTP(sport=sport, dport=dport)
    elif protocol == 1:
        l4 = ICMP(type=8, id=sport)
    elif protocol == 58:
        l4 = ICMPv6EchoRequest(id=sport)
    else:
        l3 = IPv6(src=src, dst=dst, hlim=ttl, nh=protocol) if v6 else IP(src=src, dst=dst, ttl=ttl, proto=protocol)
        return raw(Ether(src=src_mac, dst=dst_mac) / l3 / payload)
    return raw(Ether(src=src_mac, dst=dst_mac) / l3 / l4 / payload)


class Lab:
    """One connected finsy Switch plus the softswitch target's port peers."""

    def __init__(self, sw: finsy.Switch, target: Any) -> None:
        self.sw = sw
        self.target = target
        self.digests: asyncio.Queue[tuple[int, FlowDigest]] = asyncio.Queue()
        self.idle: asyncio.Queue[finsy.P4IdleTimeoutNotification] = asyncio.Queue()
        self.packet_ins: asyncio.Queue[finsy.P4PacketIn] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        #: ack each digest list as a controller does (the switch suppresses an unacked
        #: duplicate for ack_timeout_ns); tests of the suppression turn this off
        self.ack_digests = True

    # -- background readers -------------------------------------------------------------
    def start_readers(self) -> None:
        self._tasks = [asyncio.create_task(c) for c in (self._read_digests(), self._read_idle(),
                                                        self._read_packets())]

    async def stop_readers(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def _read_digests(self) -> None:
        async for dl in self.sw.read_digests(dp.FLOW_DIGEST):
            # Ack before the test sees the digest: a test that ends right after would
            # otherwise close the stream with the ack unsent, and the switch would
            # suppress the same digest for ack_timeout_ns in the next test.
            if self.ack_digests:
                await self.sw.write([dl.ack()])
            for d in p4rt.decode_digest_list(dl):
                self.digests.put_nowait((dl.list_id, d))

    async def _read_idle(self) -> None:
        async for n in self.sw.read_idle_timeouts():
            self.idle.put_nowait(n)

    async def _read_packets(self) -> None:
        async for p in self.sw.read_packets():
            self.packet_ins.put_nowait(p)

    # -- programming ----------------------------------------------------------------------
    async def write(self, writes: Sequence[TableWrite]) -> None:
        await self.sw.insert(p4rt.table_entries(writes))

    async def vmi_port(self, port: int, vmi_id: int, vrf: int, *, miss_policy: int = dp.MISS_POLICY_FORWARD,
                       mirror_new_flows: int = 0, flowtable_enabled: int = 1) -> None:
        await self.write([dp.vmi_port_entry(port, vmi_id, vrf, miss_policy=miss_policy,
                                            mirror_new_flows=bool(mirror_new_flows),
                                            flowtable_enabled=bool(flowtable_enabled))])

    async def fabric_port(self, port: int, vrf: int, *, miss_policy: int = dp.MISS_POLICY_FORWARD,
                          mirror_new_flows: int = 0, flowtable_enabled: int = 1) -> None:
        await self.write([dp.fabric_port_entry(port, vrf, miss_policy=miss_policy,
                                               mirror_new_flows=bool(mirror_new_flows),
                                               flowtable_enabled=bool(flowtable_enabled))])

    async def route(self, prefix: str, port: int, *, vrf: int = 1, dst_vmi_id: int = 0,
                    dst_mac: str = NEXT_HOP_MAC) -> None:
        await self.write([dp.route_entry(ip_network(prefix), port, vrf=vrf, src_mac=_mac(ROUTER_MAC),
                                         dst_mac=_mac(dst_mac), dst_vmi_id=dst_vmi_id)])

    async def fatflow(self, vmi_id: int, vmi: VMI) -> None:
        await self.write(dp.fatflow_entries(vmi_id, vmi.effective_rules(), vmi.exclude_list()))

    async def analyzer(self, port: int) -> None:
        await self.sw.insert([finsy.P4CloneSessionEntry(dp.ANALYZER_CLONE_SESSION_ID, replicas=[port])])

    # -- traffic ----------------------------------------------------------------------------
    def send(self, port: int, data: bytes) -> None:
        self.target.peers[port].send(data)

    async def recv(self, port: int, timeout: float = 2.0) -> bytes | None:
        return await self.target.peers[port].recv(timeout)

    async def no_frame(self, port: int, timeout: float = 0.5) -> bool:
        return await self.target.peers[port].recv(timeout) is None

    async def next_digest(self, timeout: float = 5.0) -> FlowDigest:
        _, d = await asyncio.wait_for(self.digests.get(), timeout)
        return d

    async def no_digest(self, timeout: float = 0.5) -> bool:
        try:
            await asyncio.wait_for(self.digests.get(), timeout)
        except TimeoutError:
            return True
        return False


@contextlib.asynccontextmanager
async def open_lab(target: Any, p4info: Path, device_config: Path, *,
                   ack_timeout_ns: int = 2_000_000_000) -> AsyncIterator[Lab]:
    """Connect (pushing the pipeline if the switch does not run it yet), wipe all state,
    turn on digests, and start collecting what the switch reports."""
    opts = finsy.SwitchOptions(p4info=p4info, p4blob=device_config, device_id=target.device_id)
    async with finsy.Switch("sw", target.address, opts) as sw:
        await sw.delete_all()
        await sw.insert([p4rt.flow_digest_entry(ack_timeout_ns=ack_timeout_ns)])
        lab = Lab(sw, target)
        lab.start_readers()
        try:
            yield lab
        finally:
            await lab.stop_readers()


def addr(value: str) -> IPv4Address | IPv6Address:
    return ip_address(value)

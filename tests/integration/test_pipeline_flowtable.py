"""The flow table on softswitch over real P4Runtime: an installed (fat) flow is hit by the
next packets (its direct counter moves, no digest), verdicts, idle-timeout notifications,
digest duplicate suppression, mirroring through the analyzer clone session, and the
hold miss policy (packet-in, then release by packet-out)."""

from __future__ import annotations

import asyncio

import finsy
from lab import Lab, frame
from p4fatflow import dataplane as dp
from p4fatflow import p4rt
from p4fatflow.config import VMI, VN, FatFlowRule, parse_network
from p4fatflow.key import FlowKey
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

VMI_PORT, FABRIC_PORT, ANALYZER_PORT, VMI_ID = 1, 3, 4, 7
VN1 = VN(name="vn1", vrf=1, subnets=(parse_network("10.1.0.0/24"), parse_network("2001:db8:1::/64")))
DNS_RULE = FatFlowRule.from_dict({"protocol": "udp", "port": 53, "ignore_address": "dst",
                                  "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}})


async def _setup(lab: Lab, *, miss_policy: int = dp.MISS_POLICY_FORWARD, mirror_new_flows: int = 0) -> None:
    await lab.vmi_port(VMI_PORT, vmi_id=VMI_ID, vrf=1, miss_policy=miss_policy,
                       mirror_new_flows=mirror_new_flows)
    await lab.fatflow(VMI_ID, VMI(name="vm1", port=VMI_PORT, vn=VN1, rules=(DNS_RULE,)))
    await lab.route("0.0.0.0/0", FABRIC_PORT)
    await lab.route("::/0", FABRIC_PORT)
    await lab.analyzer(ANALYZER_PORT)


async def _learn(lab: Lab, data: bytes) -> FlowKey:
    lab.send(VMI_PORT, data)
    key = (await lab.next_digest()).key
    assert await lab.recv(FABRIC_PORT) is not None
    return key


async def _counter(lab: Lab, key: FlowKey) -> tuple[int, int]:
    entry = p4rt.flow_entry(key)
    async for reply in lab.sw.read(finsy.P4DirectCounterEntry(table_entry=finsy.P4TableEntry(
            entry.table_id, match=entry.match))):
        assert reply.data is not None
        return reply.data.packet_count, reply.data.byte_count
    raise AssertionError(f"no direct counter for {key}")


async def test_installed_fat_flow_is_hit_by_every_packet_of_it(lab: Lab) -> None:
    await _setup(lab)
    first = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
    key = await _learn(lab, first)
    await lab.sw.insert([p4rt.flow_entry(key)])
    # three more flows of the same fat flow: other hosts of the /28, other servers, other ports
    others = [frame(f"10.0.0.{h}", dst, 17, sport, 53)
              for h, dst, sport in ((2, "1.1.1.1", 6000), (15, "9.9.9.9", 7000), (1, "8.8.8.8", 5000))]
    for data in others:
        lab.send(VMI_PORT, data)
        assert await lab.recv(FABRIC_PORT) is not None
    assert await lab.no_digest(0.5), "a packet of an installed fat flow still missed"
    assert await _counter(lab, key) == (3, sum(len(d) for d in others))
    # a flow outside the fat flow (another /28) still misses
    lab.send(VMI_PORT, frame("10.0.0.16", "8.8.8.8", 17, 5000, 53))
    assert (await lab.next_digest()).key != key


async def test_drop_verdict_and_egress_override(lab: Lab) -> None:
    await _setup(lab)
    key = await _learn(lab, frame("10.0.0.1", "8.8.8.8", 17, 5000, 53))
    await lab.sw.insert([p4rt.flow_entry(key, drop=True)])
    lab.send(VMI_PORT, frame("10.0.0.3", "8.8.4.4", 17, 5001, 53))
    assert await lab.no_frame(FABRIC_PORT)
    await lab.sw.modify([p4rt.flow_entry(key, egress_port=2)])
    lab.send(VMI_PORT, frame("10.0.0.3", "8.8.4.4", 17, 5001, 53))
    assert await lab.recv(2) is not None
    assert await lab.no_frame(FABRIC_PORT)


async def test_idle_flow_entry_is_reported_and_kept(lab: Lab) -> None:
    await _setup(lab)
    key = await _learn(lab, frame("10.0.0.1", "8.8.8.8", 17, 5000, 53))
    await lab.sw.insert([p4rt.flow_entry(key, idle_timeout_ns=100_000_000)])
    note = await asyncio.wait_for(lab.idle.get(), 10)
    installed = p4rt.flow_entry(key)
    # finsy names tables by their P4Info alias ("flow_v4") in what it decodes
    reported = [e for e in note.table_entry
                if dp.flow_table(key).endswith("." + e.table_id) and dict(e.match) == dict(installed.match)]
    assert len(reported) == 1, note
    # the switch never deletes it: the entry is still there and still forwards
    entries = [e async for e in lab.sw.read(p4rt.flow_entry(key))]
    assert len(entries) == 1 and entries[0].idle_timeout_ns == 100_000_000
    lab.send(VMI_PORT, frame("10.0.0.2", "8.8.8.8", 17, 5000, 53))
    assert await lab.recv(FABRIC_PORT) is not None and await lab.no_digest(0.3)


async def test_unacked_duplicate_digest_is_suppressed(lab: Lab) -> None:
    await _setup(lab)
    lab.ack_digests = False
    data = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
    lab.send(VMI_PORT, data)
    await lab.next_digest()
    for _ in range(5):
        lab.send(VMI_PORT, data)  # a burst of the same new flow before it is installed
    assert await lab.no_digest(0.7), "the switch sent the same unacked digest again"
    lab.send(VMI_PORT, frame("10.0.0.1", "8.8.8.8", 17, 5001, 53))  # another flow: reported
    await lab.next_digest()


async def test_mirroring_follows_the_flow_context(lab: Lab) -> None:
    await _setup(lab, mirror_new_flows=1)
    first = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
    lab.send(VMI_PORT, first)
    copy = await lab.recv(ANALYZER_PORT)
    assert copy == first, "the analyzer copy of a new flow is the packet as it arrived"
    key = (await lab.next_digest()).key
    assert await lab.recv(FABRIC_PORT) is not None
    await lab.sw.insert([p4rt.flow_entry(key, mirror=1, offloaded=0)])
    second = frame("10.0.0.2", "8.8.8.8", 17, 5002, 53)
    lab.send(VMI_PORT, second)
    assert await lab.recv(ANALYZER_PORT) == second
    assert await lab.recv(FABRIC_PORT) is not None
    await lab.sw.modify([p4rt.flow_entry(key, mirror=1, offloaded=1)])
    lab.send(VMI_PORT, second)
    assert await lab.recv(FABRIC_PORT) is not None
    assert await lab.no_frame(ANALYZER_PORT), "an offloaded flow is still mirrored"


async def test_hold_policy_punts_then_packet_out_releases(lab: Lab) -> None:
    await _setup(lab, miss_policy=dp.MISS_POLICY_HOLD)
    data = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
    lab.send(VMI_PORT, data)
    assert await lab.no_frame(FABRIC_PORT), "a held packet was forwarded"
    pin = await asyncio.wait_for(lab.packet_ins.get(), 5)
    assert pin["reason"] == dp.PUNT_REASON_FLOW_MISS_HOLD
    assert pin["ingress_port"] == VMI_PORT and pin["egress_port"] == FABRIC_PORT
    assert Ether(pin.payload)[IP].ttl == 63, "held packets are punted already routed"
    await lab.next_digest()
    await lab.sw.write([finsy.P4PacketOut(pin.payload, egress_port=pin["egress_port"], _pad=0)])
    out = await lab.recv(FABRIC_PORT)
    assert out == pin.payload

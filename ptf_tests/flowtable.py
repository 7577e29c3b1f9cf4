"""The flow table (spec 4): hits, misses and their digests, miss policies, verdicts, the egress
override, idle-timeout notifications and the direct counters. The flow lifecycle driven by
fatflowd (learn, expire, recycle, update) is in lifecycle.py."""

from __future__ import annotations

import time
from ipaddress import ip_address

import finsy
from fatflow_base import (
    FABRIC_MAC,
    FABRIC_PORT,
    VMI2_PORT,
    VMI_ID,
    VMI_MAC,
    VMI_PORT,
    VRF,
    FatFlowTest,
    frame,
    routed,
    rule,
    vmi,
)
from p4fatflow import dataplane as dp
from p4fatflow.key import Direction

DNS = rule(protocol="udp", port=53, ignore_address="dst", src_prefix_aggr={"subnet": "10.0.0.0/8", "plen": 28})
DNS6 = rule(protocol="udp", port=53, ignore_address="dst", src_prefix_aggr={"subnet": "2001:db8::/32", "plen": 64})


class _Flows(FatFlowTest):
    def setUp(self) -> None:
        super().setUp()
        self.v = vmi(DNS, DNS6)
        self.setup_vmi(self.v)

    def learn(self, pkt: object, port: int = VMI_PORT) -> object:
        self.send(port, pkt)  # type: ignore[arg-type]
        self.expect(routed(pkt), FABRIC_PORT)  # type: ignore[arg-type]
        return self.next_digest().key


class FlowHitTest(_Flows):
    """Installed fat flows (IPv4 and IPv6) are hit by every packet of them: forwarded, no digest,
    counted; a packet outside the fat flow still misses."""

    def runTest(self) -> None:
        for first, others, outside in (
                (frame("10.0.0.1", "8.8.8.8", 17, 5000, 53),
                 [frame("10.0.0.2", "1.1.1.1", 17, 6000, 53), frame("10.0.0.15", "9.9.9.9", 17, 7000, 53)],
                 frame("10.0.0.16", "8.8.8.8", 17, 5000, 53)),
                (frame("2001:db8:0:1::1", "2001:4860::1", 17, 5000, 53),
                 [frame("2001:db8:0:1::ff", "2001:4860::2", 17, 6000, 53)],
                 frame("2001:db8:0:2::1", "2001:4860::1", 17, 5000, 53))):
            key = self.learn(first)
            entry = self.install(key)
            for pkt in others:
                self.send(VMI_PORT, pkt)
                self.expect(routed(pkt), FABRIC_PORT)
            self.assert_no_digest(0.3, "for a packet of an installed flow")
            self.assertEqual(self.direct_counter(entry), (len(others), sum(len(bytes(p)) for p in others)))
            self.assertNotEqual(self.learn(outside), key)


class MissDigestTest(_Flows):
    """Every field of the miss digest: key, vmi, direction, ingress port, the packet's 5-tuple -
    from-VM, to-VM and transit. The ingress port's vrf is the key's vrf."""

    def runTest(self) -> None:
        pkt = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), FABRIC_PORT)
        d = self.next_digest()
        self.assertEqual((d.vmi_id, d.direction, d.ingress_port), (VMI_ID, Direction.FROM_VM, VMI_PORT))
        self.assertEqual((d.packet.src, d.packet.dst, d.packet.protocol, d.packet.sport, d.packet.dport),
                         (ip_address("10.0.0.1"), ip_address("8.8.8.8"), 17, 5000, 53))
        self.assertEqual(d.key.vrf, VRF)
        self.route("10.0.0.1/32", VMI_PORT, dst_vmi_id=VMI_ID, dst_mac=VMI_MAC)
        reply = frame("8.8.8.8", "10.0.0.1", 17, 53, 5000, src_mac=FABRIC_MAC)
        self.send(FABRIC_PORT, reply)
        self.expect(routed(reply, VMI_MAC), VMI_PORT)
        d = self.next_digest()
        self.assertEqual((str(d.key), d.vmi_id, d.direction, d.ingress_port),
                         ("vrf 1 udp 0.0.0.0/0:53 -> 10.0.0.0/28:0", VMI_ID, Direction.TO_VM, FABRIC_PORT))
        self.assertEqual((d.packet.sport, d.packet.dport), (53, 5000))
        self.fabric_port(VMI2_PORT, VRF + 1)  # a second fabric port in another vrf
        self.route("8.8.8.0/24", FABRIC_PORT, vrf=VRF + 1)
        transit = frame("20.0.0.1", "8.8.8.8", 17, 5000, 53, src_mac=FABRIC_MAC)
        self.send(VMI2_PORT, transit)
        self.expect(routed(transit), FABRIC_PORT)
        d = self.next_digest()
        self.assertEqual((str(d.key), d.vmi_id, d.direction, d.ingress_port),
                         ("vrf 2 udp 20.0.0.1/32:5000 -> 8.8.8.8/32:53", 0, None, VMI2_PORT))


class DigestPerPacketTest(_Flows):
    """The data plane reports every missing packet: after the ack, the same flow is reported
    again. Unacked, the switch's ack cache (DigestEntry ack_timeout_ns) suppresses duplicates,
    and another flow is still reported."""

    def runTest(self) -> None:
        pkt = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
        key = self.learn(pkt)
        time.sleep(0.2)  # the ack travels on the stream, the packet on the wire
        self.assertEqual(self.learn(pkt), key)
        time.sleep(0.2)
        self.ack_digests = False
        other = frame("10.0.0.33", "8.8.8.8", 17, 5000, 53)
        self.learn(other)
        for _ in range(3):
            self.send(VMI_PORT, other)
            self.expect(routed(other), FABRIC_PORT)
        self.assert_no_digest(0.5, "for an unacked duplicate")
        self.assertNotEqual(self.learn(frame("10.0.0.49", "8.8.8.8", 17, 5000, 53)), key)


class MissPolicyTest(FatFlowTest):
    """Miss policy drop: a new flow's packets are dropped but reported; the undefined value 3
    fails closed like drop; once installed the flow is forwarded."""

    def runTest(self) -> None:
        v = vmi(DNS)
        self.fabric_port()
        self.fatflow(v)
        self.route("0.0.0.0/0", FABRIC_PORT)
        for policy in (dp.MISS_POLICY_DROP, 3):
            entry = self.write([dp.vmi_port_entry(VMI_PORT, VMI_ID, VRF, miss_policy=policy)])
            pkt = frame("10.0.0.1", "8.8.8.8", 17, 5000 + policy, 53)
            self.send(VMI_PORT, pkt)
            self.expect_nothing_else()
            key = self.next_digest().key
            flow = self.install(key)
            self.send(VMI_PORT, pkt)
            self.expect(routed(pkt), FABRIC_PORT)
            self.delete([flow, *entry])


class VerdictAndEgressTest(_Flows):
    """flow_drop drops the fat flow's packets (no digest); flow_forward with egress_port sends
    them out of that port instead of the route's, keeping the route's MAC rewrite."""

    def runTest(self) -> None:
        key = self.learn(frame("10.0.0.1", "8.8.8.8", 17, 5000, 53))
        self.install(key, drop=True)
        pkt = frame("10.0.0.3", "8.8.4.4", 17, 5001, 53)
        self.send(VMI_PORT, pkt)
        self.expect_nothing_else()
        self.assert_no_digest(0.3, "for a dropped flow")
        self.modify([finsy.P4TableEntry(dp.flow_table(key), match=finsy.P4TableMatch(dp.flow_match(key)),
                                        action=finsy.P4TableAction(dp.FLOW_FORWARD, mirror=0, offloaded=0,
                                                                   egress_port=VMI2_PORT))])
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), VMI2_PORT)
        self.expect_nothing_else()


class IdleTimeoutTest(_Flows):
    """An idle entry with idle_timeout_ns is reported (and only it, not the entry without a
    timeout); the switch does not delete it: it is read back and still forwards."""

    def runTest(self) -> None:
        timed = self.install(self.learn(frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)), idle_timeout_ns=300_000_000)
        self.install(self.learn(frame("10.0.0.17", "8.8.8.8", 17, 5000, 53)))
        note = self.next_idle_notification(10)
        reported = [(e.table_id, dict(e.match)) for e in note.table_entry]
        self.assertEqual(len(reported), 1, f"expected only the timed entry, got {reported}")
        self.assertTrue(timed.table_id.endswith(reported[0][0]), reported)
        self.assertEqual(reported[0][1], dict(timed.match))
        back = self.read(finsy.P4TableEntry(timed.table_id, match=timed.match))
        self.assertEqual([e.idle_timeout_ns for e in back], [300_000_000])
        pkt = frame("10.0.0.2", "8.8.8.8", 17, 5000, 53)
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), FABRIC_PORT)
        self.assert_no_digest(0.3, "for a reported but still installed flow")


class DirectCounterTest(_Flows):
    """Each flow entry counts its own packets and bytes (IPv4 and IPv6); misses and other flows
    are not counted; a MODIFY of the direct counter resets it."""

    def runTest(self) -> None:
        v4 = self.install(self.learn(frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)))
        v6 = self.install(self.learn(frame("2001:db8::1", "2001:4860::1", 17, 5000, 53)))
        self.assertEqual(self.direct_counter(v4), (0, 0))
        sent4 = [frame("10.0.0.2", "8.8.8.8", 17, 5000, 53, payload=b"x" * n) for n in (10, 200, 700)]
        sent6 = [frame("2001:db8::2", "2001:4860::1", 17, 5000, 53, payload=b"y" * 99)]
        for pkt in [*sent4, *sent6]:
            self.send(VMI_PORT, pkt)
            self.expect(routed(pkt), FABRIC_PORT)
        self.learn(frame("10.0.0.77", "8.8.8.8", 17, 5000, 53))  # a miss of another flow
        self.assertEqual(self.direct_counter(v4), (3, sum(len(bytes(p)) for p in sent4)))
        self.assertEqual(self.direct_counter(v6), (1, len(bytes(sent6[0]))))
        self.modify([finsy.P4DirectCounterEntry(
            table_entry=finsy.P4TableEntry(v4.table_id, match=v4.match),
            data=finsy.P4CounterData(packet_count=0, byte_count=0))])
        self.assertEqual(self.direct_counter(v4), (0, 0))
        self.send(VMI_PORT, sent4[0])
        self.expect(routed(sent4[0]), FABRIC_PORT)
        self.wait_for(lambda: self.direct_counter(v4) == (1, len(bytes(sent4[0]))), 2, "the counter after reset")

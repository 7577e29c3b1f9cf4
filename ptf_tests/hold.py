"""The hold miss policy: every packet of a flow that is not installed yet goes to the controller
as a packet-in (reason PUNT_REASON_FLOW_MISS_HOLD, ingress port, the port the route chose),
already rewritten for its next hop, and is not forwarded; the controller releases it with a
packet-out to that port. (Queueing at most 3 per flow is the controller's job, not tested here.)"""

from __future__ import annotations

from fatflow_base import (
    ANALYZER_PORT,
    FABRIC_MAC,
    FABRIC_PORT,
    VMI_ID,
    VMI_MAC,
    VMI_PORT,
    FatFlowTest,
    frame,
    routed,
    rule,
    vmi,
)
from p4fatflow import dataplane as dp
from scapy.packet import Packet

DNS = rule(protocol="udp", port=53, ignore_address="dst", src_prefix_aggr={"subnet": "10.0.0.0/8", "plen": 28})


class _Hold(FatFlowTest):
    def setUp(self) -> None:
        super().setUp()
        self.setup_vmi(vmi(DNS), miss_policy=dp.MISS_POLICY_HOLD)

    def held(self, pkt: Packet, ingress_port: int, egress_port: int, rewritten: Packet) -> bytes:
        pin = self.next_packet_in()
        self.assertEqual((pin["reason"], pin["ingress_port"], pin["egress_port"], pin["_pad"]),
                         (dp.PUNT_REASON_FLOW_MISS_HOLD, ingress_port, egress_port, 0))
        self.assertEqual(pin.payload, bytes(rewritten), "a held packet is punted already routed")
        return bytes(pin.payload)


class HoldPuntTest(_Hold):
    """Each packet of the missing flow is punted, none forwarded; each one is reported."""

    def runTest(self) -> None:
        pkts = [frame("10.0.0.1", "8.8.8.8", 17, 5000, 53, payload=bytes([i]) * 8) for i in range(3)]
        for pkt in pkts:
            self.send(VMI_PORT, pkt)
        for pkt in pkts:
            self.held(pkt, VMI_PORT, FABRIC_PORT, routed(pkt))
        self.expect_nothing_else()
        self.assertEqual(str(self.next_digest().key), "vrf 1 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53")


class HoldReleaseTest(_Hold):
    """The controller releases a held packet with a packet-out to the packet-in's egress_port:
    it leaves exactly as punted (routed once, not twice); after the flow is installed its
    packets are forwarded directly, nothing is punted."""

    def runTest(self) -> None:
        pkt = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
        self.send(VMI_PORT, pkt)
        payload = self.held(pkt, VMI_PORT, FABRIC_PORT, routed(pkt))
        self.packet_out(payload, egress_port=FABRIC_PORT, _pad=0)
        self.expect(routed(pkt), FABRIC_PORT)
        self.install(self.next_digest().key)
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), FABRIC_PORT)
        self.expect_nothing_else()
        self.assertIsNone(self.no_packet_in(0.3), "an installed flow's packet was punted")


class HoldToVmTest(FatFlowTest):
    """Hold on the fabric port: a to-VM packet is punted with egress_port = the VMI's port."""

    def runTest(self) -> None:
        v = vmi(DNS)
        self.vmi_port(VMI_PORT)
        self.fabric_port(FABRIC_PORT, miss_policy=dp.MISS_POLICY_HOLD)
        self.fatflow(v)
        self.route("10.0.0.1/32", VMI_PORT, dst_vmi_id=VMI_ID, dst_mac=VMI_MAC)
        pkt = frame("8.8.8.8", "10.0.0.1", 17, 53, 5000, src_mac=FABRIC_MAC)
        self.send(FABRIC_PORT, pkt)
        pin = self.next_packet_in()
        self.assertEqual((pin["reason"], pin["ingress_port"], pin["egress_port"]),
                         (dp.PUNT_REASON_FLOW_MISS_HOLD, FABRIC_PORT, VMI_PORT))
        self.assertEqual(pin.payload, bytes(routed(pkt, VMI_MAC)))
        self.expect_nothing_else()
        self.next_digest()


class HoldDropsBeforeThePuntTest(FatFlowTest):
    """Packets that never reach the flow table are not punted: no route, TTL 1, a truncated frame."""

    def runTest(self) -> None:
        self.setup_vmi(vmi(DNS), miss_policy=dp.MISS_POLICY_HOLD, default_routes=False)
        self.route("8.0.0.0/8", FABRIC_PORT)
        self.send(VMI_PORT, frame("10.0.0.1", "9.9.9.9", 17, 5000, 53))
        self.send(VMI_PORT, frame("10.0.0.1", "8.8.8.8", 17, 5000, 53, ttl=1))
        self.send(VMI_PORT, bytes(frame("10.0.0.1", "8.8.8.8", 17, 5000, 53))[:30])
        self.assertIsNone(self.no_packet_in(0.5), "a dropped packet was punted")
        self.expect_nothing_else()
        self.assert_no_digest(0.1)


class HoldWithMirrorTest(FatFlowTest):
    """Hold and mirror_new_flows together: the analyzer gets the original, the controller the
    routed packet."""

    def runTest(self) -> None:
        self.setup_vmi(vmi(DNS), miss_policy=dp.MISS_POLICY_HOLD, mirror_new_flows=True)
        self.analyzer()
        pkt = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
        self.send(VMI_PORT, pkt)
        self.expect(pkt, ANALYZER_PORT)
        pin = self.next_packet_in()
        self.assertEqual((pin["reason"], pin.payload), (dp.PUNT_REASON_FLOW_MISS_HOLD, bytes(routed(pkt))))
        self.expect_nothing_else()
        self.next_digest()

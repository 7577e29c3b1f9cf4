"""Packet-out: a frame from the controller with a packet_out header (egress_port) skips the
whole pipeline and leaves that port as it was sent - no routing, no TTL check, no flow lookup,
no counter, no digest, no port configuration needed. Packet-in is tested where the pipeline
produces it (hold.py, mirror.py)."""

from __future__ import annotations

from fatflow_base import (
    ANALYZER_PORT,
    FABRIC_PORT,
    VMI2_PORT,
    VMI_MAC,
    VMI_PORT,
    FatFlowTest,
    frame,
    routed,
    rule,
    vmi,
)
from scapy.layers.l2 import ARP, Ether


class PacketOutTest(FatFlowTest):
    """Packet-out to every port, with the switch unconfigured: IPv4 with TTL 1, IPv6, ARP; the
    frames leave unchanged, nothing else appears, nothing is reported."""

    def runTest(self) -> None:
        frames = [frame("10.1.0.5", "8.8.8.8", 17, 5000, 53, ttl=1),
                  frame("2001:db8:1::5", "2001:4860::1", 6, 1, 2),
                  Ether(src=VMI_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.1.0.5", pdst="10.1.0.1")]
        for port in (VMI_PORT, VMI2_PORT, FABRIC_PORT, ANALYZER_PORT):
            for pkt in frames:
                self.packet_out(bytes(pkt), egress_port=port, _pad=0)
                self.expect(pkt, port)
        self.expect_nothing_else()
        self.assert_no_digest(0.3, "for a packet-out")
        self.assertIsNone(self.no_packet_in(0.1))


class PacketOutBypassesFlowtableTest(FatFlowTest):
    """A packet-out of a frame that belongs to an installed flow: not rewritten, not counted."""

    def runTest(self) -> None:
        self.setup_vmi(vmi(rule(protocol="udp", port=53, ignore_address="dst")))
        pkt = frame("10.1.0.5", "8.8.8.8", 17, 5000, 53)
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), FABRIC_PORT)
        entry = self.install(self.next_digest().key)
        self.packet_out(bytes(pkt), egress_port=FABRIC_PORT, _pad=0)
        self.expect(pkt, FABRIC_PORT)
        self.expect_nothing_else()
        self.assertEqual(self.direct_counter(entry), (0, 0))

"""Parsing and forwarding: routing (MAC rewrite, TTL / hop limit, IPv4 header checksum), VLAN,
IPv4 options, fragments, IPv6, and what happens to malformed frames (docs/pipeline.md,
"Parser" and "Checksums": parser errors and bad IPv4 header checksums are dropped in
ingress, with no digest and no mirror copy)."""

from __future__ import annotations

from fatflow_base import (
    ANALYZER_PORT,
    FABRIC_PORT,
    NEXT_HOP_MAC,
    ROUTER_MAC,
    VMI2_PORT,
    VMI_ID,
    VMI_MAC,
    VMI_PORT,
    VRF,
    FatFlowTest,
    frame,
    routed,
    vmi,
)
from scapy.layers.inet import IP, UDP, IPOption_RR
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, Dot1Q, Ether


class _Routing(FatFlowTest):
    """VMI 7 on port 1 (no rules), fabric port 3, analyzer session on port 4, and new-flow
    mirroring on the VMI port, so that a packet that reaches the flow table shows up there."""

    def setUp(self) -> None:
        super().setUp()
        self.setup_vmi(vmi(), default_routes=False, mirror_new_flows=True)
        self.analyzer()

    def assert_dropped(self, pkt: bytes | object, why: str) -> None:
        self.send(VMI_PORT, pkt)  # type: ignore[arg-type]
        self.expect_nothing_else()
        self.assert_no_digest(0.3, why)


class Ipv4RoutedTest(_Routing):
    """IPv4: routed to the next hop with MAC rewrite, TTL - 1 and a correct header checksum;
    the UDP checksum is left as it was; the first packet is mirrored as it arrived."""

    def runTest(self) -> None:
        self.route("8.8.0.0/16", FABRIC_PORT)
        pkt = frame("10.1.0.5", "8.8.8.8", 17, 5000, 53, ttl=64)
        self.send(VMI_PORT, pkt)
        out = routed(pkt)
        self.assertEqual((out[Ether].src, out[Ether].dst, out[IP].ttl), (ROUTER_MAC, NEXT_HOP_MAC, 63))
        self.assertNotEqual(out[IP].chksum, pkt[IP].chksum)
        self.assertEqual(out[UDP].chksum, pkt[UDP].chksum)
        self.expect(out, FABRIC_PORT)
        self.expect(pkt, ANALYZER_PORT)
        self.expect_nothing_else()
        self.assertEqual(str(self.next_digest().key), "vrf 1 udp 10.1.0.5/32:5000 -> 8.8.8.8/32:53")


class Ipv6RoutedTest(_Routing):
    """IPv6: routed with the hop limit decremented."""

    def runTest(self) -> None:
        self.route("2001:4860::/32", FABRIC_PORT)
        pkt = frame("2001:db8:1::5", "2001:4860::8888", 6, 40000, 443, ttl=10)
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), FABRIC_PORT)
        self.expect(pkt, ANALYZER_PORT)
        self.expect_nothing_else()
        self.assertEqual(self.next_digest().key.version, 6)


class LongestPrefixMatchTest(_Routing):
    """The longest matching route picks the next hop; its MAC and port are used."""

    def runTest(self) -> None:
        self.route("8.0.0.0/8", FABRIC_PORT)
        self.route("8.8.8.0/24", VMI2_PORT, dst_mac="02:00:00:00:00:dd")
        near = frame("10.1.0.5", "8.8.8.8", 6, 1000, 80)
        far = frame("10.1.0.5", "8.9.9.9", 6, 1000, 80)
        self.send(VMI_PORT, near)
        self.expect(routed(near, "02:00:00:00:00:dd"), VMI2_PORT)
        self.send(VMI_PORT, far)
        self.expect(routed(far), FABRIC_PORT)


class VrfIsolationTest(_Routing):
    """A route of another VRF is not used: the packet has no route and is dropped."""

    def runTest(self) -> None:
        self.route("8.8.8.0/24", FABRIC_PORT, vrf=VRF + 1)
        self.assert_dropped(frame("10.1.0.5", "8.8.8.8", 17, 5000, 53), "for a packet without a route")


class RouteMissDropTest(_Routing):
    """No route: dropped before the flow table (no digest, no mirror copy)."""

    def runTest(self) -> None:
        self.route("8.8.0.0/16", FABRIC_PORT)
        self.assert_dropped(frame("10.1.0.5", "9.9.9.9", 17, 5000, 53), "for a packet without a route")
        self.assert_dropped(frame("2001:db8:1::5", "2001:4860::1", 17, 5000, 53), "for an IPv6 route miss")


class UnconfiguredPortDropTest(_Routing):
    """A port without a port-table entry drops everything."""

    def runTest(self) -> None:
        self.route("0.0.0.0/0", FABRIC_PORT)
        self.send(VMI2_PORT, frame("10.1.0.6", "8.8.8.8", 17, 5000, 53))
        self.expect_nothing_else()
        self.assert_no_digest(0.3, "from an unconfigured port")


class TtlTest(_Routing):
    """TTL / hop limit 1 and 0 are dropped before the route lookup (no ICMP is generated);
    TTL 2 leaves with TTL 1."""

    def runTest(self) -> None:
        self.route("0.0.0.0/0", FABRIC_PORT)
        self.route("::/0", FABRIC_PORT)
        for ttl in (0, 1):
            self.assert_dropped(frame("10.1.0.5", "8.8.8.8", 17, 5000, 53, ttl=ttl), f"for TTL {ttl}")
            self.assert_dropped(frame("2001:db8:1::5", "2001:4860::1", 17, 5000, 53, ttl=ttl),
                                f"for hop limit {ttl}")
        pkt = frame("10.1.0.5", "8.8.8.8", 17, 5000, 53, ttl=2)
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), FABRIC_PORT)
        self.assertEqual(routed(pkt)[IP].ttl, 1)


class VlanTaggedTest(_Routing):
    """One 802.1Q tag: parsed through, routed, the tag kept; the flow key is the untagged one.
    A tagged non-IP frame and a double tag (not parsed) are dropped."""

    def runTest(self) -> None:
        self.route("0.0.0.0/0", FABRIC_PORT)
        pkt = frame("10.1.0.5", "8.8.8.8", 17, 5000, 53, vlan=100)
        self.send(VMI_PORT, pkt)
        out = routed(pkt)
        self.assertEqual(out[Dot1Q].vlan, 100)
        self.expect(out, FABRIC_PORT)
        self.expect(pkt, ANALYZER_PORT)
        self.assertEqual(str(self.next_digest().key), "vrf 1 udp 10.1.0.5/32:5000 -> 8.8.8.8/32:53")
        arp = Ether(src=VMI_MAC, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=100) / ARP(psrc="10.1.0.5", pdst="10.1.0.1")
        self.assert_dropped(arp, "for a tagged ARP frame")
        qinq = Ether(src=VMI_MAC, dst=ROUTER_MAC) / Dot1Q(vlan=100) / Dot1Q(vlan=200) / IP(
            src="10.1.0.5", dst="8.8.8.8") / UDP(sport=5000, dport=53)
        self.assert_dropped(qinq, "for a double-tagged frame")


class NonIpDropTest(_Routing):
    """ARP and other non-IP frames: no bridging, no ARP handling - dropped."""

    def runTest(self) -> None:
        self.route("0.0.0.0/0", FABRIC_PORT)
        self.assert_dropped(Ether(src=VMI_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.1.0.5", pdst="10.1.0.1"),
                            "for ARP")
        self.assert_dropped(Ether(src=VMI_MAC, dst=ROUTER_MAC, type=0x88B5) / (b"x" * 46), "for ethertype 0x88b5")


class Ipv4OptionsTest(_Routing):
    """IPv4 with options (IHL 7): routed, the options re-emitted unchanged, the header checksum
    recomputed over them, and the L4 ports found behind them (they are in the key)."""

    def runTest(self) -> None:
        self.route("0.0.0.0/0", FABRIC_PORT)
        pkt = Ether(bytes(Ether(src=VMI_MAC, dst=ROUTER_MAC) / IP(
            src="10.1.0.5", dst="8.8.8.8", options=[IPOption_RR(routers=["1.2.3.4", "5.6.7.8"])])
            / UDP(sport=5000, dport=53) / b"opt"))
        self.assertEqual(pkt[IP].ihl, 8)
        self.send(VMI_PORT, pkt)
        out = routed(pkt)
        self.assertEqual(bytes(out[IP].options[0]), bytes(pkt[IP].options[0]))
        self.expect(out, FABRIC_PORT)
        self.assertEqual(str(self.next_digest().key), "vrf 1 udp 10.1.0.5/32:5000 -> 8.8.8.8/32:53")


class Ipv4FragmentTest(_Routing):
    """A non-first fragment has no L4 header: routed, and its key is protocol-only (ports 0);
    the first fragment (offset 0, MF) carries the ports."""

    def runTest(self) -> None:
        self.route("0.0.0.0/0", FABRIC_PORT)
        first = Ether(bytes(Ether(src=VMI_MAC, dst=ROUTER_MAC) / IP(src="10.1.0.5", dst="8.8.8.8", flags="MF", id=9)
                            / UDP(sport=5000, dport=53) / (b"a" * 16)))
        later = Ether(bytes(Ether(src=VMI_MAC, dst=ROUTER_MAC) / IP(src="10.1.0.5", dst="8.8.8.8", frag=3, id=9,
                                                                     proto=17) / (b"b" * 24)))
        self.send(VMI_PORT, first)
        self.expect(routed(first), FABRIC_PORT)
        self.assertEqual(str(self.next_digest().key), "vrf 1 udp 10.1.0.5/32:5000 -> 8.8.8.8/32:53")
        self.send(VMI_PORT, later)
        self.expect(routed(later), FABRIC_PORT)
        self.assertEqual(str(self.next_digest().key), "vrf 1 udp 10.1.0.5/32:0 -> 8.8.8.8/32:0")


class Ipv6ExtensionHeaderTest(_Routing):
    """IPv6 extension headers are not walked: hop-by-hop (next header 0) gives a
    protocol-0 key with ports 0; the packet is still routed."""

    def runTest(self) -> None:
        self.route("::/0", FABRIC_PORT)
        pkt = Ether(bytes(Ether(src=VMI_MAC, dst=ROUTER_MAC) / IPv6(src="2001:db8:1::5", dst="2001:4860::1")
                          / IPv6ExtHdrHopByHop() / UDP(sport=5000, dport=53) / b"x"))
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), FABRIC_PORT)
        key = self.next_digest().key
        self.assertEqual((key.protocol, key.sport, key.dport, key.src_plen), (0, 0, 0, 128))


class MalformedFramesTest(_Routing):
    """Parser errors (truncated Ethernet/IPv4/IPv6/L4 headers, IHL < 5, IHL longer than the
    packet) and a bad IPv4 header checksum: dropped in ingress, no digest, no mirror copy -
    although the port mirrors new flows and a default route exists."""

    def runTest(self) -> None:
        self.route("0.0.0.0/0", FABRIC_PORT)
        self.route("::/0", FABRIC_PORT)
        good = frame("10.1.0.5", "8.8.8.8", 17, 5000, 53)
        raw = bytes(good)
        eth = raw[:14]
        bad_ihl = bytearray(raw)
        bad_ihl[14] = 0x44  # version 4, IHL 4
        long_ihl = bytearray(raw)
        long_ihl[14] = 0x4F  # IHL 15: 60 header bytes, more than the frame has after Ethernet
        long_ihl = long_ihl[:14 + 40]
        bad_sum = bytearray(raw)
        bad_sum[24:26] = bytes([bad_sum[24] ^ 0xFF, bad_sum[25]])
        v6 = bytes(frame("2001:db8:1::5", "2001:4860::1", 17, 5000, 53))
        cases = {
            "Ethernet header only": eth,
            "truncated IPv4 header (10 bytes)": raw[:14 + 10],
            "IPv4 IHL 4": bytes(bad_ihl),
            "IPv4 IHL 15 beyond the frame": bytes(long_ihl),
            "truncated UDP header (4 bytes)": raw[:14 + 20 + 4],
            "bad IPv4 header checksum": bytes(bad_sum),
            "truncated IPv6 header (30 bytes)": v6[:14 + 30],
            "truncated UDP after IPv6": v6[:14 + 40 + 6],
        }
        for why, data in cases.items():
            with self.subTest(why):
                self.assert_dropped(data, f"for {why}")
        # the same frame, intact, goes through: the drops above are the defects, not the setup
        self.send(VMI_PORT, good)
        self.expect(routed(good), FABRIC_PORT)
        self.expect(good, ANALYZER_PORT)
        self.next_digest()


class FlowtableDisabledForwardingTest(FatFlowTest):
    """flowtable_enabled = 0: routed as usual, but no digest and no new-flow mirror copy."""

    def runTest(self) -> None:
        self.vmi_port(VMI_PORT, VMI_ID, VRF, flowtable_enabled=False, mirror_new_flows=True)
        self.route("0.0.0.0/0", FABRIC_PORT)
        self.analyzer()
        pkt = frame("10.1.0.5", "8.8.8.8", 17, 5000, 53)
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), FABRIC_PORT)
        self.expect_nothing_else()
        self.assert_no_digest(0.3, "with the flowtable disabled")

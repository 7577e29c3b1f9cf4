"""PTF tests of the fat-flow pipeline: real packets on veth interfaces, the switch
programmed over P4Runtime. Switch port N is PTF port N."""

from __future__ import annotations

from ipaddress import ip_address

import finsy
from fatflow_base import NEXT_HOP_MAC, ROUTER_MAC, VMI_MAC, FatFlowTest
from ptf import testutils
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from p4fatflow import dataplane as dp
from p4fatflow import p4rt
from p4fatflow.config import VMI, VN, FatFlowRule, parse_network
from p4fatflow.key import Direction, ExcludeList, PacketFields, compile_rules, flow_key

VMI_PORT, FABRIC_PORT, ANALYZER_PORT, VMI_ID = 1, 3, 4, 7
VN1 = VN(name="vn1", vrf=1, subnets=(parse_network("10.1.0.0/24"),))
DNS = FatFlowRule.from_dict({"protocol": "udp", "port": 53, "ignore_address": "dst",
                             "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}})
VMI1 = VMI(name="vm1", port=VMI_PORT, vn=VN1, rules=(DNS,))


def dns(src: str, dst: str, sport: int, ttl: int = 64) -> Ether:
    return Ether(src=VMI_MAC, dst=ROUTER_MAC) / IP(src=src, dst=dst, ttl=ttl) / UDP(sport=sport, dport=53) / b"q"


def routed(pkt: Ether) -> Ether:
    out = pkt.copy()
    out[Ether].src, out[Ether].dst = ROUTER_MAC, NEXT_HOP_MAC
    out[IP].ttl -= 1
    del out[IP].chksum
    return Ether(bytes(out))


class _Configured(FatFlowTest):
    def setUp(self) -> None:
        super().setUp()
        self.write([dp.vmi_port_entry(VMI_PORT, VMI_ID, 1, mirror_new_flows=True),
                    dp.fabric_port_entry(FABRIC_PORT, 1),
                    *dp.fatflow_entries(VMI_ID, VMI1.effective_rules(), VMI1.exclude_list())])
        self.route("0.0.0.0/0", FABRIC_PORT)
        self.call(self.sw.insert([finsy.P4CloneSessionEntry(dp.ANALYZER_CLONE_SESSION_ID, replicas=[ANALYZER_PORT])]))


class RoutedFatFlowTest(_Configured):
    """A new DNS flow is routed (MAC rewrite, TTL, checksum), mirrored to the analyzer,
    and reported with its fat-flow key; once installed, other flows of the fat flow hit."""

    def runTest(self) -> None:
        first = dns("10.0.0.1", "8.8.8.8", 5000)
        testutils.send_packet(self, VMI_PORT, first)
        testutils.verify_packet(self, first, ANALYZER_PORT)
        testutils.verify_packet(self, routed(first), FABRIC_PORT)
        testutils.verify_no_other_packets(self)
        digest = self.next_digest()
        expected = flow_key(PacketFields(ip_address("10.0.0.1"), ip_address("8.8.8.8"), 17, 5000, 53),
                            Direction.FROM_VM, 1, compile_rules(VMI1.effective_rules()),
                            ExcludeList(VMI1.exclude_list()))
        self.assertEqual(digest.key, expected)
        self.assertEqual(str(digest.key), "vrf 1 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53")
        self.call(self.sw.insert([p4rt.flow_entry(digest.key)]))
        other = dns("10.0.0.9", "1.1.1.1", 6000)
        testutils.send_packet(self, VMI_PORT, other)
        testutils.verify_packet(self, routed(other), FABRIC_PORT)
        testutils.verify_no_other_packets(self)  # an installed, non-mirrored flow: no analyzer copy
        self.assertTrue(self.no_digest(), "a packet of an installed fat flow was reported as new")


class ExcludedGatewayTest(_Configured):
    """DNS to the VN's gateway (.1) is excluded from fat flows: a normal 5-tuple key."""

    def runTest(self) -> None:
        self.route("10.1.0.1/32", FABRIC_PORT)
        pkt = dns("10.1.0.5", "10.1.0.1", 1234)
        testutils.send_packet(self, VMI_PORT, pkt)
        testutils.verify_packet(self, routed(pkt), FABRIC_PORT)
        self.assertEqual(str(self.next_digest().key), "vrf 1 udp 10.1.0.5/32:1234 -> 10.1.0.1/32:53")


class UnconfiguredPortDropTest(_Configured):
    """A port with no configuration drops everything."""

    def runTest(self) -> None:
        testutils.send_packet(self, 2, dns("10.0.0.1", "8.8.8.8", 5000))
        testutils.verify_no_other_packets(self)
        self.assertTrue(self.no_digest())

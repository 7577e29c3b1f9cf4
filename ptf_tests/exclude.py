"""Exclude lists (spec 3.1): packets from or to an address in the VMI's exclude list get a
normal flow. The list is derived (gateway .1 / ::1 and service .2 / ::2 of each VN subnet,
169.254.0.0/16, fe80::/10) plus the operator's prefixes; it is per VMI and applies to the
packet's source (exclude_src_*) and destination (exclude_dst_*) in both directions."""

from __future__ import annotations

from fatflow_base import (
    FABRIC_MAC,
    FABRIC_PORT,
    NEXT_HOP_MAC,
    VMI2_ID,
    VMI2_PORT,
    VMI_ID,
    VMI_MAC,
    VMI_PORT,
    FatFlowTest,
    frame,
    reference_key,
    routed,
    rule,
    vmi,
)
from p4fatflow import dataplane as dp
from p4fatflow import p4rt
from p4fatflow.config import VMI, VN, parse_network
from p4fatflow.key import Direction, FlowKey
from scapy.packet import Packet

DNS = rule(protocol="udp", port=53, ignore_address="dst")
OPERATOR = ("192.0.2.0/24", "2001:db8:ff::/48")


class _Exclude(FatFlowTest):
    def setUp(self) -> None:
        super().setUp()
        self.v = vmi(DNS, exclude=OPERATOR)
        self.setup_vmi(self.v)

    def key(self, pkt: Packet, direction: Direction = Direction.FROM_VM, v: VMI | None = None,
            port: int | None = None) -> FlowKey:
        v = v or self.v
        if direction is Direction.FROM_VM:
            self.send(port or VMI_PORT, pkt)
            self.expect(routed(pkt), FABRIC_PORT)
        else:
            self.send(FABRIC_PORT, pkt)
            self.expect(routed(pkt, VMI_MAC), VMI_PORT)
        d = self.next_digest()
        self.assertEqual(d.key, reference_key(v, pkt, direction))
        return d.key

    def assert_normal(self, pkt: Packet, direction: Direction = Direction.FROM_VM) -> None:
        k = self.key(pkt, direction)
        self.assertTrue(k.is_normal and k.sport != 0 and k.dport != 0, f"{pkt.summary()}: not a normal flow: {k}")

    def assert_fat(self, pkt: Packet, direction: Direction = Direction.FROM_VM) -> None:
        k = self.key(pkt, direction)
        self.assertFalse(k.is_normal, f"{pkt.summary()}: the rule did not apply: {k}")


class DerivedExcludeIpv4Test(_Exclude):
    """Gateway, service and link-local destinations are normal flows; the next address (.3) is not
    excluded."""

    def runTest(self) -> None:
        for dst in ("10.1.0.1", "10.1.0.2", "169.254.169.254", "169.254.0.1"):
            self.assert_normal(frame("10.1.0.5", dst, 17, 5000, 53))
        self.assert_fat(frame("10.1.0.5", "10.1.0.3", 17, 5000, 53))
        self.assert_fat(frame("10.1.0.5", "169.255.0.1", 17, 5000, 53))


class DerivedExcludeIpv6Test(_Exclude):
    """::1, ::2 of the VN's IPv6 subnet and fe80::/10 are normal flows; ::3 and fec0:: are not."""

    def runTest(self) -> None:
        for src, dst in (("2001:db8:1::5", "2001:db8:1::1"), ("2001:db8:1::5", "2001:db8:1::2"),
                         ("fe80::5", "fe80::1"), ("2001:db8:1::5", "febf::1")):
            self.assert_normal(frame(src, dst, 17, 5000, 53))
        self.assert_fat(frame("2001:db8:1::5", "2001:db8:1::3", 17, 5000, 53))
        self.assert_fat(frame("2001:db8:1::5", "fec0::1", 17, 5000, 53))


class ExcludeSourceAddressTest(_Exclude):
    """The packet's source is looked up too: to-VM traffic from the gateway and from link-local
    addresses, and from-VM traffic with a link-local source, are normal flows."""

    def runTest(self) -> None:
        self.route("10.1.0.5/32", VMI_PORT, dst_vmi_id=VMI_ID, dst_mac=VMI_MAC)
        self.route("2001:db8:1::5/128", VMI_PORT, dst_vmi_id=VMI_ID, dst_mac=VMI_MAC)
        self.assert_normal(frame("10.1.0.1", "10.1.0.5", 17, 53, 5000, src_mac=FABRIC_MAC), Direction.TO_VM)
        self.assert_normal(frame("2001:db8:1::2", "2001:db8:1::5", 17, 53, 5000, src_mac=FABRIC_MAC),
                           Direction.TO_VM)
        self.assert_fat(frame("10.1.0.9", "10.1.0.5", 17, 53, 5000, src_mac=FABRIC_MAC), Direction.TO_VM)
        self.assert_normal(frame("169.254.1.1", "8.8.8.8", 17, 5000, 53))


class OperatorExcludeTest(_Exclude):
    """The operator's extra prefixes (LPM, not only host routes) exclude in both families, and
    removing them at run time makes the same traffic fat again."""

    def runTest(self) -> None:
        self.assert_normal(frame("10.1.0.5", "192.0.2.77", 17, 5000, 53))
        self.assert_normal(frame("2001:db8:1::5", "2001:db8:ff:1::1", 17, 5000, 53))
        self.assert_fat(frame("10.1.0.5", "192.0.3.77", 17, 5000, 53))
        # reconfigure: the VMI without the operator's prefixes (their exclude entries deleted)
        self.delete(p4rt.table_entries(dp.fatflow_entries(VMI_ID, (), [parse_network(n) for n in OPERATOR])))
        self.v = vmi(DNS)
        self.assert_fat(frame("10.1.0.5", "192.0.2.77", 17, 5001, 53))
        self.assert_fat(frame("2001:db8:1::5", "2001:db8:ff:1::1", 17, 5001, 53))


class ExcludeIsPerVmiTest(_Exclude):
    """VMI 8 (another VN, 10.2.0.0/24) does not inherit VMI 7's exclude list: its traffic to
    VMI 7's gateway is fat, to its own gateway normal."""

    def runTest(self) -> None:
        vn2 = VN(name="vn2", vrf=1, subnets=(parse_network("10.2.0.0/24"),))
        other = vmi(DNS, vn=vn2, port=VMI2_PORT)
        self.vmi_port(VMI2_PORT, VMI2_ID)
        self.fatflow(other, VMI2_ID)
        for dst, normal in (("10.1.0.1", False), ("10.2.0.1", True)):
            pkt = frame("10.2.0.5", dst, 17, 5000, 53)
            self.send(VMI2_PORT, pkt)
            self.expect(routed(pkt, NEXT_HOP_MAC), FABRIC_PORT)
            d = self.next_digest()
            self.assertEqual((d.vmi_id, d.key), (VMI2_ID, reference_key(other, pkt, Direction.FROM_VM)))
            self.assertEqual(d.key.is_normal, normal, str(d.key))

"""hold.py: parse_frame against scapy-built frames, KeyResolver's direction rules, HoldQueues' limits."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from p4fatflow import dataplane as dp
from p4fatflow.config import VMI, VN, FatFlowRule, parse_network
from p4fatflow.hold import HoldQueues, KeyResolver, PortView, parse_frame
from p4fatflow.key import Direction, ExcludeList, FlowKey, PacketFields, compile_rules, flow_key
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_RR
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NS, IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.layers.sctp import SCTP
from scapy.packet import Packet, Raw

# ---- parse_frame --------------------------------------------------------------------------------

V4 = st.integers(0, (1 << 32) - 1).map(IPv4Address)
V6 = st.integers(0, (1 << 128) - 1).map(IPv6Address)
PORT = st.integers(0, 0xFFFF)


@st.composite
def frames(draw: st.DrawFn) -> tuple[bytes, PacketFields]:
    """A frame and the 5-tuple the pipeline keys it by, from the scapy fields (not by parsing)."""
    v6 = draw(st.booleans())
    src, dst = (draw(V6), draw(V6)) if v6 else (draw(V4), draw(V4))
    kind = draw(st.sampled_from(["tcp", "udp", "sctp", "echo", "icmp_other", "other"]))
    sport, dport = draw(PORT), draw(PORT)
    l3: Packet
    frag = 0
    if v6:
        l3 = IPv6(src=str(src), dst=str(dst))
    else:
        opts = draw(st.sampled_from([[], [IPOption_NOP()] * 4, [IPOption_RR(routers=["1.2.3.4", "5.6.7.8"])]]))
        frag = draw(st.sampled_from([0, 0, 1, 185]))
        more = draw(st.booleans())
        l3 = IP(src=str(src), dst=str(dst), options=opts, frag=frag, flags="MF" if more else 0)
    l4: Packet
    if kind == "tcp":
        l4, proto = TCP(sport=sport, dport=dport), 6
    elif kind == "udp":
        l4, proto = UDP(sport=sport, dport=dport), 17
    elif kind == "sctp":
        l4, proto = SCTP(sport=sport, dport=dport), 132
    elif kind == "echo":
        reply = draw(st.booleans())
        if v6:
            l4, proto = (ICMPv6EchoReply if reply else ICMPv6EchoRequest)(id=sport, seq=dport), 58
        else:
            l4, proto = ICMP(type=0 if reply else 8, id=sport, seq=dport), 1
        dport = 0
    elif kind == "icmp_other":
        if v6:
            l4, proto = ICMPv6ND_NS(tgt="2001:db8::1"), 58
        else:
            l4, proto = ICMP(type=3, code=1), 1
        sport = dport = 0
    else:
        proto = draw(st.sampled_from([47, 50, 89]))
        l4 = Raw(b"\x00" * 12)
        if v6:
            l3.nh = proto
        else:
            l3.proto = proto
        sport = dport = 0
    if frag:  # non-first fragment: no L4 header is looked at
        sport = dport = 0
    eth: Packet = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    if draw(st.booleans()):
        eth = eth / Dot1Q(vlan=draw(st.integers(1, 4094)))
    return bytes(eth / l3 / l4 / Raw(b"payload")), PacketFields(src, dst, proto, sport, dport)


@settings(max_examples=400, deadline=None)
@given(frames())
def test_parse_frame_agrees_with_scapy(case: tuple[bytes, PacketFields]) -> None:
    data, want = case
    assert parse_frame(data) == want


def test_parse_frame_examples() -> None:
    eth = Ether()
    assert parse_frame(bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2))) == PacketFields(
        ip_address("10.0.0.1"), ip_address("10.0.0.2"), 6, 1, 2)
    # first fragment (MF, offset 0) carries ports; a later one does not
    first = bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / UDP(sport=5, dport=53))
    later = bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2", frag=100, proto=17) / Raw(b"\x00" * 8))
    assert parse_frame(first) == PacketFields(ip_address("10.0.0.1"), ip_address("10.0.0.2"), 17, 5, 53)
    assert parse_frame(later) == PacketFields(ip_address("10.0.0.1"), ip_address("10.0.0.2"), 17, 0, 0)
    echo = bytes(eth / Dot1Q(vlan=9) / IPv6(src="::1", dst="::2") / ICMPv6EchoRequest(id=777, seq=3))
    assert parse_frame(echo) == PacketFields(ip_address("::1"), ip_address("::2"), 58, 777, 0)


@pytest.mark.parametrize("data", [
    bytes(Ether() / ARP()),
    bytes(Ether(type=0x88CC) / Raw(b"\x00" * 40)),  # LLDP
    bytes(Ether() / Dot1Q() / ARP()),
    b"",
    b"\x00" * 13,
], ids=["arp", "lldp", "vlan-arp", "empty", "short-ethernet"])
def test_non_ip_is_none(data: bytes) -> None:
    assert parse_frame(data) is None


@pytest.mark.parametrize("cut", [14 + 10, 14 + 19, 14 + 20 + 2, 14 + 20 + 3])
def test_truncated_ipv4_is_none(cut: int) -> None:
    data = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2))
    assert parse_frame(data[:cut]) is None


@pytest.mark.parametrize("cut", [14 + 6, 14 + 39, 14 + 40 + 3])
def test_truncated_ipv6_is_none(cut: int) -> None:
    data = bytes(Ether() / IPv6(src="::1", dst="::2") / UDP(sport=1, dport=2))
    assert parse_frame(data[:cut]) is None


def test_ihl_below_five_is_none() -> None:
    data = bytearray(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP()))
    data[14] = 0x44
    assert parse_frame(bytes(data)) is None


def test_ipv4_options_move_the_l4_header() -> None:
    data = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_RR(routers=["1.1.1.1"] * 3)])
               / TCP(sport=4242, dport=443))
    assert data[14] & 0x0F > 5
    assert parse_frame(data) == PacketFields(ip_address("10.0.0.1"), ip_address("10.0.0.2"), 6, 4242, 443)


# ---- KeyResolver --------------------------------------------------------------------------------

VN_A = VN(name="a", vrf=10, subnets=(parse_network("10.0.0.0/16"),))
RULE = FatFlowRule.from_dict({"protocol": "udp", "port": 53, "ignore_address": "dst",
                              "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}})
VMI_A = VMI(name="vm1", port=1, vn=VN_A, rules=(RULE,))
VMI_B = VMI(name="vm2", port=2, vn=VN_A)


def _view(vmi: VMI, vmi_id: int) -> PortView:
    return PortView(vmi.port, vmi.vn.vrf, vmi_id, compile_rules(vmi.effective_rules()), ExcludeList(vmi.exclude_list()))


RESOLVER = KeyResolver({1: _view(VMI_A, 7), 2: _view(VMI_B, 8), 3: PortView(3, 10), 4: PortView(4, 20)})
DNS_OUT = PacketFields(ip_address("10.0.0.20"), ip_address("8.8.8.8"), 17, 40000, 53)
DNS_IN = PacketFields(ip_address("8.8.8.8"), ip_address("10.0.0.20"), 17, 53, 40000)


def test_from_vm_uses_the_ingress_vmis_rules() -> None:
    key, vmi, direction = RESOLVER.resolve(1, 3, DNS_OUT) or (None, 0, 0)
    assert (vmi, direction) == (7, dp.DIRECTION_FROM_VM)
    assert key == FlowKey(10, ip_address("10.0.0.16"), ip_address("0.0.0.0"), 17, 0, 53, 28, 0)
    assert key == flow_key(DNS_OUT, Direction.FROM_VM, 10, compile_rules(VMI_A.effective_rules()),
                           ExcludeList(VMI_A.exclude_list()))


def test_to_vm_uses_the_egress_vmis_rules_in_packet_orientation() -> None:
    key, vmi, direction = RESOLVER.resolve(3, 1, DNS_IN) or (None, 0, 0)
    assert (vmi, direction) == (7, dp.DIRECTION_TO_VM)
    assert key == FlowKey(10, ip_address("0.0.0.0"), ip_address("10.0.0.16"), 17, 53, 0, 0, 28)


def test_vmi_to_vmi_is_from_the_ingress_vmi() -> None:
    found = RESOLVER.resolve(2, 1, DNS_OUT)
    assert found is not None
    assert found[1:] == (8, dp.DIRECTION_FROM_VM)
    assert found[0] == FlowKey.normal(DNS_OUT, 10)  # vm2 has no rules


def test_transit_is_a_normal_flow_in_the_ingress_vrf() -> None:
    assert RESOLVER.resolve(4, 3, DNS_OUT) == (FlowKey.normal(DNS_OUT, 20), 0, dp.DIRECTION_TRANSIT)
    assert RESOLVER.resolve(3, 99, DNS_OUT) == (FlowKey.normal(DNS_OUT, 10), 0, dp.DIRECTION_TRANSIT)


def test_unknown_ingress_port_is_none() -> None:
    assert RESOLVER.resolve(42, 1, DNS_IN) is None


# ---- HoldQueues ---------------------------------------------------------------------------------


def test_per_flow_and_total_limits_count_drops() -> None:
    h = HoldQueues(per_flow=3, total=5)
    assert [h.add(b"a", b"p%d" % i, 2) for i in range(4)] == [True, True, True, False]
    assert [h.add(b"b", b"q", 2), h.add(b"b", b"q", 2), h.add(b"c", b"r", 2)] == [True, True, False]
    assert len(h) == h.held == 5 and h.queued == 5 and h.dropped == 2
    got = h.take(b"a")
    assert [(p.payload, p.egress_port) for p in got] == [(b"p0", 2), (b"p1", 2), (b"p2", 2)]
    assert h.take(b"a") == [] and len(h) == 2
    assert h.add(b"c", b"r", 2)  # room again
    h.discard(b"b")
    assert h.dropped == 4 and len(h) == 1
    h.clear()
    assert len(h) == 0 and h.dropped == 5
    assert h.take(b"zzz") == []


def test_expire_drops_only_old_queues() -> None:
    h = HoldQueues(max_age_s=5.0)
    h.add(b"old", b"1", 1)
    h.add(b"old", b"2", 1)
    at = h._queues[b"old"][0].at
    h.add(b"new", b"3", 1)
    h._queues[b"new"][0].at = at + 4.0
    assert h.expire(now=at + 5.5) == 1
    assert h.take(b"old") == [] and len(h) == 1 and h.dropped == 2
    assert [p.payload for p in h.take(b"new")] == [b"3"]

"""Routing through the fat-flow pipeline on softswitch over real P4Runtime: next hop,
MAC rewrite, TTL / hop limit, IPv4 checksum, and the drops of spec 1."""

from __future__ import annotations

from lab import NEXT_HOP_MAC, ROUTER_MAC, Lab, frame
from p4fatflow.config import VMI, VN, parse_network
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import raw

VN1 = VN(name="vn1", vrf=1, subnets=(parse_network("10.1.0.0/24"), parse_network("2001:db8:1::/64")))


async def _vmi(lab: Lab) -> None:
    await lab.vmi_port(1, vmi_id=7, vrf=1)
    await lab.fatflow(7, VMI(name="vm1", port=1, vn=VN1))


async def test_ipv4_routed_with_mac_rewrite_ttl_and_checksum(lab: Lab) -> None:
    await _vmi(lab)
    await lab.route("8.8.0.0/16", 3)
    lab.send(1, frame("10.1.0.5", "8.8.8.8", 17, 5000, 53, ttl=64))
    out = await lab.recv(3)
    assert out is not None, "the routed packet did not leave on port 3"
    eth = Ether(out)
    assert eth.src == ROUTER_MAC and eth.dst == NEXT_HOP_MAC
    ip = eth[IP]
    assert ip.ttl == 63
    sent_checksum = ip.chksum
    del ip.chksum
    assert IP(raw(ip)).chksum == sent_checksum, "IPv4 header checksum not updated"
    assert await lab.no_frame(2) and await lab.no_frame(4)


async def test_ipv6_routed_with_hop_limit_decrement(lab: Lab) -> None:
    await _vmi(lab)
    await lab.route("2001:4860::/32", 3)
    lab.send(1, frame("2001:db8:1::5", "2001:4860::8888", 17, 5000, 53, ttl=10))
    out = await lab.recv(3)
    assert out is not None
    assert Ether(out)[IPv6].hlim == 9
    assert Ether(out).dst == NEXT_HOP_MAC


async def test_longest_prefix_picks_the_next_hop(lab: Lab) -> None:
    await _vmi(lab)
    await lab.route("8.0.0.0/8", 3)
    await lab.route("8.8.8.0/24", 4)
    lab.send(1, frame("10.1.0.5", "8.8.8.8", 6, 1000, 80))
    assert await lab.recv(4) is not None
    lab.send(1, frame("10.1.0.5", "8.9.9.9", 6, 1000, 80))
    assert await lab.recv(3) is not None


async def test_expiring_ttl_is_dropped(lab: Lab) -> None:
    await _vmi(lab)
    await lab.route("0.0.0.0/0", 3)
    lab.send(1, frame("10.1.0.5", "8.8.8.8", 17, 5000, 53, ttl=1))
    assert await lab.no_frame(3)


async def test_unconfigured_port_and_route_miss_drop(lab: Lab) -> None:
    await _vmi(lab)
    await lab.route("8.8.0.0/16", 3)
    lab.send(2, frame("10.1.0.6", "8.8.8.8", 17, 5000, 53))  # port 2 has no configuration
    assert await lab.no_frame(3)
    assert await lab.no_digest(0.3)
    lab.send(1, frame("10.1.0.5", "9.9.9.9", 17, 5000, 53))  # no route
    assert await lab.no_frame(3)


async def test_to_vm_traffic_from_the_fabric_reaches_the_vmi(lab: Lab) -> None:
    await _vmi(lab)
    await lab.fabric_port(3, vrf=1)
    await lab.route("10.1.0.5/32", 1, dst_vmi_id=7, dst_mac="02:00:00:00:01:01")
    lab.send(3, frame("8.8.8.8", "10.1.0.5", 17, 53, 5000))
    out = await lab.recv(1)
    assert out is not None and Ether(out).dst == "02:00:00:00:01:01"
    digest = await lab.next_digest()
    assert digest.vmi_id == 7 and digest.direction is not None and digest.direction.value == "to_vm"

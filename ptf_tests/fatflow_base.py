"""The fat-flow layer over the P4Runtime PTF base: the pipeline's entries built with
controller/p4fatflow/dataplane.py (never by hand), frames, the expected routed frame, miss
digests decoded into flow keys, and the golden key cases read where they stand.

Switch port N is PTF port N (device 0). The tests use:

- port 1: the VMI port of VMI 7 (``VMI_PORT``), port 2: a second VMI port or an unconfigured
  port, port 3: the fabric port (``FABRIC_PORT``), port 4: the analyzer (``ANALYZER_PORT``).
"""

from __future__ import annotations

import json
import logging
import os
import queue
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import finsy
from p4fatflow import dataplane as dp
from p4fatflow import p4rt
from p4fatflow.config import VMI, VN, FatFlowRule, parse_network
from p4fatflow.dataplane import FlowDigest, TableWrite
from p4fatflow.key import Direction, ExcludeList, FlowKey, PacketFields, compile_rules, flow_key
from p4runtime_base import P4RuntimeTest
from ptf import testutils
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.sctp import SCTP
from scapy.packet import Packet, Raw

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

REPO = Path(__file__).resolve().parents[1]
VMI_PORT, VMI2_PORT, FABRIC_PORT, ANALYZER_PORT = 1, 2, 3, 4
VMI_ID, VMI2_ID, VRF = 7, 8, 1
ROUTER_MAC, NEXT_HOP_MAC, VMI_MAC = "02:00:00:00:00:aa", "02:00:00:00:00:bb", "02:00:00:00:01:01"
FABRIC_MAC = "02:00:00:00:00:cc"
VN1 = VN(name="vn1", vrf=VRF, subnets=(parse_network("10.1.0.0/24"), parse_network("2001:db8:1::/64")))


def mac(s: str) -> int:
    return int(s.replace(":", ""), 16)


def rule(**fields: Any) -> FatFlowRule:
    """A fat-flow rule in the configuration's dict form, e.g. rule(protocol="udp", port=53)."""
    return FatFlowRule.from_dict(fields)


def vmi(*rules: FatFlowRule, vn: VN = VN1, port: int = VMI_PORT, exclude: Sequence[str] = ()) -> VMI:
    return VMI(name=f"vm{port}", port=port, vn=vn, rules=tuple(rules),
               exclude=tuple(parse_network(n) for n in exclude))  # type: ignore[misc]


def frame(src: str, dst: str, protocol: int = 17, sport: int = 0, dport: int = 0, *, ttl: int = 64,
          vlan: int | None = None, src_mac: str = VMI_MAC, dst_mac: str = ROUTER_MAC,
          payload: bytes = b"fatflow-ptf") -> Packet:
    """An Ethernet frame with one IPv4/IPv6 packet (built, checksums filled). For ICMP/ICMPv6
    ``sport`` is the identifier of an echo request; other protocols carry ``payload`` only."""
    v6 = ip_address(src).version == 6
    l3: Packet = IPv6(src=src, dst=dst, hlim=ttl) if v6 else IP(src=src, dst=dst, ttl=ttl)
    if protocol == 6:
        l4: Packet = TCP(sport=sport, dport=dport, flags="S")
    elif protocol == 17:
        l4 = UDP(sport=sport, dport=dport)
    elif protocol == 132:
        l4 = SCTP(sport=sport, dport=dport)
    elif protocol == 1 and not v6:
        l4 = ICMP(type=8, id=sport)
    elif protocol == 58 and v6:
        l4 = ICMPv6EchoRequest(id=sport)
    else:
        if v6:
            l3.nh = protocol
        else:
            l3.proto = protocol
        l4 = Raw()
    eth = Ether(src=src_mac, dst=dst_mac)
    if vlan is not None:
        eth = eth / Dot1Q(vlan=vlan)
    return Ether(bytes(eth / l3 / l4 / payload))


def routed(pkt: Packet, dst_mac: str = NEXT_HOP_MAC) -> Packet:
    """What the pipeline makes of ``pkt`` on its way to a next hop: router MAC as source, the next
    hop's MAC as destination, TTL / hop limit - 1, IPv4 header checksum recomputed (options
    included); nothing else changes (L4 checksums are not touched)."""
    out = Ether(bytes(pkt))
    out[Ether].src, out[Ether].dst = ROUTER_MAC, dst_mac
    if IP in out:
        out[IP].ttl -= 1
        del out[IP].chksum
    else:
        out[IPv6].hlim -= 1
    return Ether(bytes(out))


def packet_fields(pkt: Packet) -> PacketFields:
    """The key function's view of a frame built by :func:`frame`."""
    l3 = pkt[IP] if IP in pkt else pkt[IPv6]
    proto = l3.proto if IP in pkt else l3.nh
    sport = dport = 0
    for layer in (TCP, UDP, SCTP):
        if layer in pkt:
            sport, dport = pkt[layer].sport, pkt[layer].dport
    if ICMP in pkt:
        sport = pkt[ICMP].id
    if ICMPv6EchoRequest in pkt:
        sport = pkt[ICMPv6EchoRequest].id
    return PacketFields(ip_address(l3.src), ip_address(l3.dst), proto, sport, dport)


def reference_key(v: VMI, pkt: Packet, direction: Direction) -> FlowKey:
    """The controller's reference key function (controller/p4fatflow/key.py) for ``pkt``."""
    return flow_key(packet_fields(pkt), direction, v.vrf, compile_rules(v.effective_rules()),
                    ExcludeList(v.exclude_list()))


# ---- golden key cases (read where they stand, never copied) ---------------------------------

def key_cases_path() -> Path:
    """$FATFLOW_SPEC_DIR/key-cases.json, else <repo>/../shared/spec/key-cases.json."""
    spec_dir = Path(os.environ.get("FATFLOW_SPEC_DIR", REPO.parent / "shared" / "spec"))
    return spec_dir / "key-cases.json"


def load_key_cases() -> list[dict[str, Any]] | None:
    path = key_cases_path()
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return list(data["cases"] if isinstance(data, Mapping) else data)


def vmi_of_case(case: Mapping[str, Any]) -> VMI:
    vn = VN(name="vn", vrf=case["vn"]["vrf"], subnets=tuple(parse_network(s) for s in case["vn"]["subnets"]))
    rules = tuple(FatFlowRule.from_dict(r, where=f"case {case['name']}") for r in case["rules"])
    return VMI(name="vmi", port=VMI_PORT, vn=vn, rules=rules)


# ---- the test base ----------------------------------------------------------------------------

class FatFlowTest(P4RuntimeTest):
    """A P4RuntimeTest with the flow digest turned on and the fat-flow pipeline's helpers."""

    digest_names = (dp.FLOW_DIGEST,)

    def setUp(self) -> None:
        super().setUp()
        self._pending: deque[FlowDigest] = deque()

    # -- programming (all through dataplane.py's builder and p4rt.table_entry) ----------------
    def write(self, writes: Iterable[TableWrite]) -> list[finsy.P4TableEntry]:
        entries = p4rt.table_entries(writes)
        self.insert(entries)
        return entries

    def vmi_port(self, port: int = VMI_PORT, vmi_id: int = VMI_ID, vrf: int = VRF, **kw: Any) -> None:
        self.write([dp.vmi_port_entry(port, vmi_id, vrf, **kw)])

    def fabric_port(self, port: int = FABRIC_PORT, vrf: int = VRF, **kw: Any) -> None:
        self.write([dp.fabric_port_entry(port, vrf, **kw)])

    def route(self, prefix: str, port: int, *, vrf: int = VRF, dst_vmi_id: int = 0,
              dst_mac: str = NEXT_HOP_MAC) -> finsy.P4TableEntry:
        return self.write([dp.route_entry(ip_network(prefix), port, vrf=vrf, src_mac=mac(ROUTER_MAC),
                                          dst_mac=mac(dst_mac), dst_vmi_id=dst_vmi_id)])[0]

    def fatflow(self, v: VMI, vmi_id: int = VMI_ID) -> list[finsy.P4TableEntry]:
        return self.write(dp.fatflow_entries(vmi_id, v.effective_rules(), v.exclude_list()))

    def analyzer(self, port: int = ANALYZER_PORT) -> None:
        self.insert([finsy.P4CloneSessionEntry(dp.ANALYZER_CLONE_SESSION_ID, replicas=[port])])

    def install(self, key: FlowKey, **kw: Any) -> finsy.P4TableEntry:
        """Insert the flow entry of ``key`` (p4rt.flow_entry's context keywords)."""
        entry = p4rt.flow_entry(key, **kw)
        self.insert([entry])
        return entry

    def setup_vmi(self, v: VMI, *, vmi_id: int = VMI_ID, default_routes: bool = True, **port_kw: Any) -> None:
        """VMI port 1 + fabric port 3 in the VMI's vrf, the VMI's fat-flow entries, and default
        routes (v4 and v6) to the fabric."""
        self.vmi_port(v.port, vmi_id, v.vrf, **port_kw)
        self.fabric_port(FABRIC_PORT, v.vrf)
        self.fatflow(v, vmi_id)
        if default_routes:
            self.route("0.0.0.0/0", FABRIC_PORT, vrf=v.vrf)
            self.route("::/0", FABRIC_PORT, vrf=v.vrf)

    # -- traffic --------------------------------------------------------------------------------
    def send(self, port: int, pkt: Packet) -> None:
        testutils.send_packet(self, port, pkt)

    def expect(self, pkt: Packet, port: int) -> None:
        testutils.verify_packet(self, pkt, port)

    def expect_nothing_else(self, timeout: float | None = None) -> None:
        testutils.verify_no_other_packets(self, timeout=timeout)

    # -- digests --------------------------------------------------------------------------------
    def next_digest(self, timeout: float = 5.0) -> FlowDigest:
        if not self._pending:
            self._pending.extend(p4rt.decode_digest_list(self.next_digest_list(timeout)))
        return self._pending.popleft()

    def assert_no_digest(self, timeout: float = 0.5, why: str = "") -> None:
        if self._pending:
            self.fail(f"unexpected digest {self._pending[0].key} {why}")
        dl = self.no_digest_list(timeout)
        if dl is not None:
            self.fail(f"unexpected digest {[str(d.key) for d in p4rt.decode_digest_list(dl)]} {why}")

    def drain_digests(self) -> None:
        self._pending.clear()
        while True:
            try:
                self.digests.get_nowait()
            except queue.Empty:
                return

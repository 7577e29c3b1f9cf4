"""Fat-flow keys as the pipeline reports them in miss digests (spec section 3): every golden case
of key-cases.json (one test each, read where the file stands: ``$FATFLOW_SPEC_DIR`` or
``../shared/spec``), both worked examples of the spec in IPv4 and IPv6 (the flows collapse:
once the fat flow is installed the other flows hit it), and the precedence rules the golden
cases do not pin down (src+dst tier ordering, configuration-order ties, families, directions).
Every key is compared with a literal expectation and with the reference key function."""

from __future__ import annotations

import re
from typing import Any

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
    key_cases_path,
    load_key_cases,
    reference_key,
    routed,
    rule,
    vmi,
    vmi_of_case,
)
from p4fatflow.config import VMI
from p4fatflow.key import Direction, FlowKey, PacketFields
from scapy.packet import Packet


def _frame_of(p: PacketFields, direction: Direction) -> Packet:
    src_mac = VMI_MAC if direction is Direction.FROM_VM else FABRIC_MAC
    return frame(str(p.src), str(p.dst), p.protocol, p.sport, p.dport, src_mac=src_mac)


class _KeyTest(FatFlowTest):
    def key_of(self, v: VMI, pkt: Packet, direction: Direction = Direction.FROM_VM, *,
               port: int | None = None, out_port: int = FABRIC_PORT, out_mac: str = NEXT_HOP_MAC) -> FlowKey:
        """Send ``pkt``, check that it is forwarded (miss policy forward), and return the key of its
        miss digest after checking it against the reference key function and the packet fields."""
        in_port = port if port is not None else (VMI_PORT if direction is Direction.FROM_VM else FABRIC_PORT)
        self.send(in_port, pkt)
        self.expect(routed(pkt, out_mac), out_port)
        d = self.next_digest()
        self.assertEqual(d.key, reference_key(v, pkt, direction),
                         f"pipeline and reference key function disagree for {pkt.summary()}")
        self.assertEqual(d.ingress_port, in_port)
        return d.key


# ---- golden cases: one PTF test per case -----------------------------------------------------

class _GoldenCase(_KeyTest):
    case: dict[str, Any] = {}

    def check_case(self) -> None:  # the runTest of each generated class (a base has none)
        case = self.case
        v = vmi_of_case(case)
        p = PacketFields.from_dict(case["packet"])
        direction = Direction(case["packet"]["direction"])
        plen = 32 if p.version == 4 else 128
        self.vmi_port(VMI_PORT, VMI_ID, v.vrf)
        self.fabric_port(FABRIC_PORT, v.vrf)
        self.fatflow(v)
        if direction is Direction.FROM_VM:
            self.route(f"{p.dst}/{plen}", FABRIC_PORT, vrf=v.vrf)
            key = self.key_of(v, _frame_of(p, direction), direction)
        else:
            self.route(f"{p.dst}/{plen}", VMI_PORT, vrf=v.vrf, dst_vmi_id=VMI_ID, dst_mac=VMI_MAC)
            key = self.key_of(v, _frame_of(p, direction), direction, out_port=VMI_PORT, out_mac=VMI_MAC)
        golden = FlowKey.from_dict(case["key"])
        self.assertEqual(key, golden, f"{case['name']} ({case['why']}): pipeline {key}, golden {golden}")


class GoldenCasesPresentTest(FatFlowTest):
    """The golden key cases are where the spec says (else every golden test is missing)."""

    def runTest(self) -> None:
        cases = load_key_cases()
        self.assertIsNotNone(cases, f"golden key cases not found at {key_cases_path()}: set FATFLOW_SPEC_DIR")
        assert cases is not None
        self.assertGreater(len(cases), 0)
        names = [c["name"] for c in cases]
        self.assertEqual(len(names), len(set(names)), "duplicate case names")


for _case in load_key_cases() or []:
    _name = "Golden_" + re.sub(r"\W+", "_", _case["name"])
    globals()[_name] = type(_name, (_GoldenCase,), {"case": _case, "runTest": _GoldenCase.check_case, "__doc__": f"{_case['name']}: {_case['why']}"})


# ---- the worked examples of the spec (seed 004), IPv4 and IPv6 ----------------------------

class _Example(_KeyTest):
    def collapse(self, v: VMI, flows: list[Packet], expected: str) -> Any:
        """The first flow misses with key ``expected``; once that key is installed every other
        flow hits it: forwarded, no digest, and the entry's counter has counted them."""
        key = self.key_of(v, flows[0])
        self.assertEqual(str(key), expected)
        entry = self.install(key)
        for pkt in flows[1:]:
            self.send(VMI_PORT, pkt)
            self.expect(routed(pkt), FABRIC_PORT)
            self.assertEqual(reference_key(v, pkt, Direction.FROM_VM), key)
        self.assert_no_digest(0.3, "for a flow of an installed fat flow")
        self.assertEqual(self.direct_counter(entry), (len(flows) - 1, sum(len(bytes(f)) for f in flows[1:])))
        return entry


class SeedExample1Ipv4Test(_Example):
    """UDP 53, src 10/8 aggregated to /28, dst ignored: 10.0.0.1..15 -> any:53 is one fat flow
    (10.0.0.0/28, 0.0.0.0/0, 17, 0, 53); 10.0.0.16 starts the next one."""

    def runTest(self) -> None:
        v = vmi(rule(protocol="udp", port=53, ignore_address="dst",
                     src_prefix_aggr={"subnet": "10.0.0.0/8", "plen": 28}))
        self.setup_vmi(v)
        flows = [frame(f"10.0.0.{h}", f"{30 + h}.28.2.1", 17, 20000 + 7 * h, 53) for h in range(1, 16)]
        self.collapse(v, flows, "vrf 1 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53")
        self.assertEqual(str(self.key_of(v, frame("10.0.0.16", "8.8.8.8", 17, 5000, 53))),
                         "vrf 1 udp 10.0.0.16/28:0 -> 0.0.0.0/0:53")


class SeedExample1Ipv6Test(_Example):
    """The same in IPv6: src 2001:db8::/32 aggregated to /124 - 2001:db8::1..f -> any:53 is one
    fat flow (2001:db8::/124, ::/0, 17, 0, 53); 2001:db8::10 starts the next one."""

    def runTest(self) -> None:
        v = vmi(rule(protocol="udp", port=53, ignore_address="dst",
                     src_prefix_aggr={"subnet": "2001:db8::/32", "plen": 124}))
        self.setup_vmi(v)
        flows = [frame(f"2001:db8::{h:x}", f"2001:4860::{h:x}", 17, 20000 + 7 * h, 53) for h in range(1, 16)]
        self.collapse(v, flows, "vrf 1 udp [2001:db8::]/124:0 -> [::]/0:53")
        self.assertEqual(str(self.key_of(v, frame("2001:db8::10", "2001:4860::1", 17, 5000, 53))),
                         "vrf 1 udp [2001:db8::10]/124:0 -> [::]/0:53")


class SeedExample2Ipv4Test(_Example):
    """TCP any port, src 10/8 -> /28 and dst 20/8 -> /28: 10.0.0.16..31 -> 20.0.0.1..15 is
    (10.0.0.16/28, 20.0.0.0/28, 6, 0, 0); 10.0.0.31 -> 20.0.0.17 the second fat flow."""

    def runTest(self) -> None:
        v = vmi(rule(protocol="tcp", port=0, src_prefix_aggr={"subnet": "10.0.0.0/8", "plen": 28},
                     dst_prefix_aggr={"subnet": "20.0.0.0/8", "plen": 28}))
        self.setup_vmi(v)
        flows = [frame(f"10.0.0.{16 + i}", f"20.0.0.{1 + i % 15}", 6, 30000 + i, 22 + i) for i in range(16)]
        self.collapse(v, flows, "vrf 1 tcp 10.0.0.16/28:0 -> 20.0.0.0/28:0")
        second = frame("10.0.0.31", "20.0.0.17", 6, 26492, 22)
        self.assertEqual(str(self.key_of(v, second)), "vrf 1 tcp 10.0.0.16/28:0 -> 20.0.0.16/28:0")


class SeedExample2Ipv6Test(_Example):
    """The same in IPv6: src 2001:db8::/32 -> /124, dst 2001:db8:20::/48 -> /124:
    2001:db8::10..1f -> 2001:db8:20::1..f is one fat flow, 2001:db8::1f -> 2001:db8:20::11 another."""

    def runTest(self) -> None:
        v = vmi(rule(protocol="tcp", port=0, src_prefix_aggr={"subnet": "2001:db8::/32", "plen": 124},
                     dst_prefix_aggr={"subnet": "2001:db8:20::/48", "plen": 124}))
        self.setup_vmi(v)
        flows = [frame(f"2001:db8::{16 + i:x}", f"2001:db8:20::{1 + i % 15:x}", 6, 30000 + i, 22 + i)
                 for i in range(16)]
        self.collapse(v, flows, "vrf 1 tcp [2001:db8::10]/124:0 -> [2001:db8:20::]/124:0")
        second = frame("2001:db8::1f", "2001:db8:20::11", 6, 26492, 22)
        self.assertEqual(str(self.key_of(v, second)), "vrf 1 tcp [2001:db8::10]/124:0 -> [2001:db8:20::10]/124:0")


# ---- precedence beyond the golden cases -------------------------------------------------------

class SrcDstTierOrderTest(_KeyTest):
    """src+dst-prefix rules: the longer local subnet first, then the longer remote subnet;
    IPv4 and IPv6."""

    def runTest(self) -> None:
        v = vmi(
            rule(protocol="tcp", port=443, src_prefix_aggr={"subnet": "10.0.0.0/8", "plen": 24},
                 dst_prefix_aggr={"subnet": "20.0.0.0/16", "plen": 24}),          # A: local /8, remote /16
            rule(protocol="tcp", port=443, src_prefix_aggr={"subnet": "10.1.0.0/16", "plen": 28},
                 dst_prefix_aggr={"subnet": "20.0.0.0/8", "plen": 28}),           # B: local /16, remote /8
            rule(protocol="tcp", port=443, src_prefix_aggr={"subnet": "10.1.0.0/16", "plen": 30},
                 dst_prefix_aggr={"subnet": "20.0.0.0/16", "plen": 30}),          # C: local /16, remote /16
            rule(protocol="tcp", port=443, src_prefix_aggr={"subnet": "2001:db8::/32", "plen": 64},
                 dst_prefix_aggr={"subnet": "2001:4860::/32", "plen": 64}),       # D: /32, /32
            rule(protocol="tcp", port=443, src_prefix_aggr={"subnet": "2001:db8::/32", "plen": 96},
                 dst_prefix_aggr={"subnet": "2001:4860::/48", "plen": 96}),       # E: /32, /48
        )
        self.setup_vmi(v)
        cases = [
            (frame("10.1.0.5", "20.0.1.1", 6, 40000, 443), "vrf 1 tcp 10.1.0.4/30:0 -> 20.0.1.0/30:443"),   # C
            (frame("10.1.0.5", "20.1.0.1", 6, 40000, 443), "vrf 1 tcp 10.1.0.0/28:0 -> 20.1.0.0/28:443"),   # B
            (frame("10.2.0.5", "20.0.1.1", 6, 40000, 443), "vrf 1 tcp 10.2.0.0/24:0 -> 20.0.1.0/24:443"),   # A
            (frame("2001:db8::5", "2001:4860::9", 6, 40000, 443),
             "vrf 1 tcp [2001:db8::]/96:0 -> [2001:4860::]/96:443"),                                        # E
            (frame("2001:db8::5", "2001:4860:1::9", 6, 40000, 443),
             "vrf 1 tcp [2001:db8::]/64:0 -> [2001:4860:1::]/64:443"),                                      # D
        ]
        for pkt, expected in cases:
            self.assertEqual(str(self.key_of(v, pkt)), expected)


class ConfigurationOrderTieTest(_KeyTest):
    """Same tier, same subnet lengths: configuration order decides (port-only and src-prefix
    tiers), and reversing the configuration reverses the winner."""

    def runTest(self) -> None:
        first = [rule(protocol="udp", port=53, ignore_address="dst"),
                 rule(protocol="udp", port=53, ignore_address="src"),
                 rule(protocol="udp", port=123, src_prefix_aggr={"subnet": "10.0.0.0/8", "plen": 24}),
                 rule(protocol="udp", port=123, src_prefix_aggr={"subnet": "10.0.0.0/8", "plen": 28})]
        self.fabric_port(FABRIC_PORT)
        self.route("0.0.0.0/0", FABRIC_PORT)
        self.vmi_port(VMI_PORT)
        for rules, dns, ntp in (
                (first, "vrf 1 udp 10.1.0.5/32:0 -> 0.0.0.0/0:53", "vrf 1 udp 10.1.0.0/24:0 -> 8.8.8.8/32:123"),
                (first[::-1], "vrf 1 udp 0.0.0.0/0:0 -> 8.8.8.8/32:53", "vrf 1 udp 10.1.0.0/28:0 -> 8.8.8.8/32:123")):
            v = vmi(*rules)
            entries = self.fatflow(v)
            self.assertEqual(str(self.key_of(v, frame("10.1.0.5", "8.8.8.8", 17, 5000, 53))), dns)
            self.assertEqual(str(self.key_of(v, frame("10.1.0.5", "8.8.8.8", 17, 5000, 123))), ntp)
            self.delete(entries)  # a configuration change at run time: the new rules apply at once


class PortMatchedButNoRuleTest(_KeyTest):
    """Decision (docs/pipeline.md): a port matched but none of that port's rules matches the
    addresses -> no rule applies, a normal flow; the port-0 rule is not consulted."""

    def runTest(self) -> None:
        v = vmi(rule(protocol="udp", port=53, src_prefix_aggr={"subnet": "10.0.0.0/8", "plen": 24}),
                rule(protocol="udp", port=0, ignore_address="src"))
        self.setup_vmi(v)
        self.assertEqual(str(self.key_of(v, frame("11.0.0.1", "8.8.8.8", 17, 5000, 53))),
                         "vrf 1 udp 11.0.0.1/32:5000 -> 8.8.8.8/32:53")
        # neither port matched: now the port-0 rule applies
        self.assertEqual(str(self.key_of(v, frame("11.0.0.1", "8.8.8.8", 17, 5000, 54))),
                         "vrf 1 udp 0.0.0.0/0:0 -> 8.8.8.8/32:0")


class FamiliesTest(_KeyTest):
    """A rule without prefixes applies to both families; a prefix rule only to its own. Port
    matching is family-independent: an IPv6 packet on a port that only an IPv4 prefix rule
    uses gets a normal flow, not the port-0 rule."""

    def runTest(self) -> None:
        v = vmi(rule(protocol="udp", port=53, ignore_address="dst"),
                rule(protocol="tcp", port=80, src_prefix_aggr={"subnet": "10.0.0.0/8", "plen": 24}),
                rule(protocol="tcp", port=0, ignore_address="src"))
        self.setup_vmi(v)
        expectations = [
            (frame("10.1.0.5", "8.8.8.8", 17, 5000, 53), "vrf 1 udp 10.1.0.5/32:0 -> 0.0.0.0/0:53"),
            (frame("2001:db8:1::5", "2001:4860::1", 17, 5000, 53), "vrf 1 udp [2001:db8:1::5]/128:0 -> [::]/0:53"),
            (frame("10.1.0.5", "8.8.8.8", 6, 5000, 80), "vrf 1 tcp 10.1.0.0/24:0 -> 8.8.8.8/32:80"),
            (frame("2001:db8:1::5", "2001:4860::1", 6, 5000, 80),
             "vrf 1 tcp [2001:db8:1::5]/128:5000 -> [2001:4860::1]/128:80"),
            (frame("2001:db8:1::5", "2001:4860::1", 6, 5000, 81), "vrf 1 tcp [::]/0:0 -> [2001:4860::1]/128:0"),
        ]
        for pkt, expected in expectations:
            self.assertEqual(str(self.key_of(v, pkt)), expected)


class IcmpTest(_KeyTest):
    """ICMP / ICMPv6 echo: the identifier is the source pseudo-port, never port-matched; a
    protocol rule zeroes it. Without a rule the key keeps it."""

    def runTest(self) -> None:
        v = vmi(rule(protocol="icmpv6", port=0, ignore_address="dst",
                     src_prefix_aggr={"subnet": "2001:db8::/32", "plen": 64}))
        self.setup_vmi(v)
        self.assertEqual(str(self.key_of(v, frame("2001:db8:1::5", "2001:4860::1", 58, 77))),
                         "vrf 1 icmpv6 [2001:db8:1::]/64:0 -> [::]/0:0")
        self.assertEqual(str(self.key_of(v, frame("10.1.0.5", "8.8.8.8", 1, 77))),
                         "vrf 1 icmp 10.1.0.5/32:77 -> 8.8.8.8/32:0")


class DirectionsTest(_KeyTest):
    """Which VMI's rules apply: to-VM traffic uses the destination VMI's rules (local = packet
    dst); fabric-to-fabric transit traffic gets vmi 0 and a normal flow; another VMI (8, no
    rules) is not touched by VMI 7's rules, also when it sends to VMI 7 (the sender's rules)."""

    def runTest(self) -> None:
        v = vmi(rule(protocol="udp", port=53, ignore_address="dst",
                     src_prefix_aggr={"subnet": "10.0.0.0/8", "plen": 28}))
        self.setup_vmi(v, default_routes=False)
        self.vmi_port(VMI2_PORT, VMI2_ID)
        self.route("10.1.0.5/32", VMI_PORT, dst_vmi_id=VMI_ID, dst_mac=VMI_MAC)
        self.route("8.0.0.0/8", FABRIC_PORT)
        # to-VM: the reply of a DNS query, keyed by VMI 7's rule with the packet's orientation
        reply = frame("8.8.8.8", "10.1.0.5", 17, 53, 5000, src_mac=FABRIC_MAC)
        self.send(FABRIC_PORT, reply)
        self.expect(routed(reply, VMI_MAC), VMI_PORT)
        d = self.next_digest()
        self.assertEqual((str(d.key), d.vmi_id, d.direction), ("vrf 1 udp 0.0.0.0/0:53 -> 10.1.0.0/28:0", VMI_ID,
                                                               Direction.TO_VM))
        # transit: fabric -> fabric
        transit = frame("9.9.9.9", "8.8.8.8", 17, 5000, 53, src_mac=FABRIC_MAC)
        self.send(FABRIC_PORT, transit)
        self.expect(routed(transit), FABRIC_PORT)
        d = self.next_digest()
        self.assertEqual((str(d.key), d.vmi_id, d.direction), ("vrf 1 udp 9.9.9.9/32:5000 -> 8.8.8.8/32:53", 0, None))
        # VMI 8 (port 2): its own (empty) rule set, to the fabric and to VMI 7
        other = vmi(port=VMI2_PORT)
        for pkt, out_port, out_mac in ((frame("10.0.0.1", "8.8.8.8", 17, 5000, 53), FABRIC_PORT, NEXT_HOP_MAC),
                                       (frame("10.0.0.1", "10.1.0.5", 17, 5000, 53), VMI_PORT, VMI_MAC)):
            key = self.key_of(other, pkt, port=VMI2_PORT, out_port=out_port, out_mac=out_mac)
            self.assertTrue(key.is_normal and key.sport == 5000, f"VMI 7's rule applied to VMI 8: {key}")


class RuleRemovalTest(_KeyTest):
    """Deleting a VMI's rule entries at run time: the next packet gets a normal flow."""

    def runTest(self) -> None:
        v = vmi(rule(protocol="udp", port=53, ignore_address="dst"))
        self.vmi_port(VMI_PORT)
        self.route("0.0.0.0/0", FABRIC_PORT)
        entries = [e for e in self.fatflow(v) if e.table_id.endswith(("rule_v4", "rule_v6"))]
        self.assertEqual(len(entries), 2, "a port-only rule is one entry per family")
        self.assertEqual(str(self.key_of(v, frame("10.1.0.5", "8.8.8.8", 17, 5000, 53))),
                         "vrf 1 udp 10.1.0.5/32:0 -> 0.0.0.0/0:53")
        self.delete(entries)
        self.assertEqual(str(self.key_of(vmi(), frame("10.1.0.5", "8.8.8.8", 17, 5001, 53))),
                         "vrf 1 udp 10.1.0.5/32:5001 -> 8.8.8.8/32:53")


"""Port match (spec 3.2): which packet port a fat-flow rule keeps. One port matched: that port;
both: the smaller one, on a tie the destination port; neither: the port-0 rules. Matching is
per protocol (a TCP rule port does not match UDP) and the same for IPv4 and IPv6."""

from __future__ import annotations

from fatflow_base import FABRIC_PORT, VMI_PORT, FatFlowTest, frame, reference_key, routed, rule, vmi
from p4fatflow.key import Direction

RULES = (rule(protocol="tcp", port=80), rule(protocol="tcp", port=8080), rule(protocol="udp", port=53),
         rule(protocol="sctp", port=3868), rule(protocol="udp", port=0, ignore_address="src"))

# (protocol, sport, dport) -> (key sport, key dport); addresses stay whole (the rules have none)
CASES = [
    ((6, 8080, 80), (0, 80), "both match, dport smaller"),
    ((6, 80, 8080), (80, 0), "both match, sport smaller"),
    ((17, 53, 53), (0, 53), "tie: dport wins"),
    ((6, 80, 40000), (80, 0), "only sport matches"),
    ((6, 40000, 8080), (0, 8080), "only dport matches"),
    ((132, 3868, 3868), (0, 3868), "SCTP tie"),
    ((132, 5000, 3868), (0, 3868), "SCTP dport"),
    ((6, 40000, 443), (40000, 443), "TCP, no port matched, no TCP port-0 rule: normal flow"),
    ((17, 80, 8080), (0, 0), "TCP ports on UDP do not match: the UDP port-0 rule"),
]


class PortMatchTest(FatFlowTest):
    """Every port-match outcome, IPv4 and IPv6, checked in the key of the miss digest."""

    def runTest(self) -> None:
        v = vmi(*RULES)
        self.setup_vmi(v)
        for src, dst in (("10.1.0.5", "8.8.8.8"), ("2001:db8:1::5", "2001:4860::1")):
            for (proto, sport, dport), (ksport, kdport), why in CASES:
                with self.subTest(f"{why} ({src})"):
                    pkt = frame(src, dst, proto, sport, dport)
                    self.send(VMI_PORT, pkt)
                    self.expect(routed(pkt), FABRIC_PORT)
                    key = self.next_digest().key
                    self.assertEqual((key.sport, key.dport), (ksport, kdport), f"{why}: {key}")
                    self.assertEqual(key, reference_key(v, pkt, Direction.FROM_VM))
                    if (ksport, kdport) == (0, 0):
                        self.assertEqual(key.src_plen, 0, "the port-0 rule ignores the source")

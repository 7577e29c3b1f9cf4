"""Mirroring through the analyzer clone session (id 100, an I2E clone: the packet as it
arrived): the first packets of new flows on ports with mirror_new_flows, and the packets of
flows with mirror=1 that are not offloaded. A session pointing at the CPU port delivers the
copies as packet-ins with reason PUNT_REASON_MIRROR, the ingress port and the VMI."""

from __future__ import annotations

import finsy
from fatflow_base import ANALYZER_PORT, FABRIC_PORT, VMI_ID, VMI_PORT, FatFlowTest, frame, routed, rule, vmi
from p4fatflow import dataplane as dp

PUNT_REASON_MIRROR = 2  # p4src/include/defines.p4
DNS = rule(protocol="udp", port=53, ignore_address="dst", src_prefix_aggr={"subnet": "10.0.0.0/8", "plen": 28})


class _Mirror(FatFlowTest):
    mirror_new_flows = True
    miss_policy = dp.MISS_POLICY_FORWARD

    def setUp(self) -> None:
        super().setUp()
        self.setup_vmi(vmi(DNS), mirror_new_flows=self.mirror_new_flows, miss_policy=self.miss_policy)
        self.analyzer()


class MirrorNewFlowTest(_Mirror):
    """A new flow's packet is copied to the analyzer unchanged (no MAC rewrite, TTL as sent)
    and forwarded routed; an installed non-mirrored flow is not copied."""

    def runTest(self) -> None:
        pkt = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
        self.send(VMI_PORT, pkt)
        self.expect(pkt, ANALYZER_PORT)
        self.expect(routed(pkt), FABRIC_PORT)
        self.expect_nothing_else()
        self.install(self.next_digest().key)
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), FABRIC_PORT)
        self.expect_nothing_else()


class NoMirrorWithoutPortFlagTest(_Mirror):
    """mirror_new_flows = 0: new flows are not copied."""

    mirror_new_flows = False

    def runTest(self) -> None:
        pkt = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), FABRIC_PORT)
        self.expect_nothing_else()
        self.next_digest()


class MirrorFlowContextTest(_Mirror):
    """The flow's context decides: mirror=1 offloaded=0 copies every packet; offloaded=1 stops
    the copies (the application is done with the flow); mirror=0 never copies; a dropped flow
    is neither forwarded nor copied."""

    mirror_new_flows = False

    def runTest(self) -> None:
        first = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
        self.send(VMI_PORT, first)
        self.expect(routed(first), FABRIC_PORT)
        key = self.next_digest().key
        entry = self.install(key, mirror=1, offloaded=0)
        pkt = frame("10.0.0.2", "8.8.8.8", 17, 5002, 53)
        for _ in range(2):
            self.send(VMI_PORT, pkt)
            self.expect(pkt, ANALYZER_PORT)
            self.expect(routed(pkt), FABRIC_PORT)
        for params, copied in (({"mirror": 1, "offloaded": 1}, False), ({"mirror": 0, "offloaded": 0}, False),
                               ({"mirror": 1, "offloaded": 0}, True)):
            self.modify([finsy.P4TableEntry(entry.table_id, match=entry.match,
                                            action=finsy.P4TableAction(dp.FLOW_FORWARD, egress_port=0, **params))])
            self.send(VMI_PORT, pkt)
            if copied:
                self.expect(pkt, ANALYZER_PORT)
            self.expect(routed(pkt), FABRIC_PORT)
            self.expect_nothing_else()
        self.modify([finsy.P4TableEntry(entry.table_id, match=entry.match, action=finsy.P4TableAction(dp.FLOW_DROP))])
        self.send(VMI_PORT, pkt)
        self.expect_nothing_else()


class MirrorOnMissDropTest(_Mirror):
    """Miss policy drop with mirror_new_flows: the new flow's packet is not forwarded, but the
    analyzer still gets its copy (and the controller its digest)."""

    miss_policy = dp.MISS_POLICY_DROP

    def runTest(self) -> None:
        pkt = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
        self.send(VMI_PORT, pkt)
        self.expect(pkt, ANALYZER_PORT)
        self.expect_nothing_else()
        self.next_digest()


class MirrorToCpuTest(FatFlowTest):
    """A clone session pointing at the CPU port: the copy arrives as a packet-in with reason
    MIRROR, egress_port 0, the original bytes, and the port it entered on and its VMI (the clone
    preserves meta.ingress_port and meta.vmi_id: clone_preserving_field_list)."""

    def runTest(self) -> None:
        self.setup_vmi(vmi(DNS), mirror_new_flows=True)
        self.insert([finsy.P4CloneSessionEntry(dp.ANALYZER_CLONE_SESSION_ID, replicas=[self.cpu_port])])
        pkt = frame("10.0.0.1", "8.8.8.8", 17, 5000, 53)
        self.send(VMI_PORT, pkt)
        self.expect(routed(pkt), FABRIC_PORT)
        pin = self.next_packet_in()
        self.assertEqual((pin["reason"], pin["egress_port"], pin["_pad"]), (PUNT_REASON_MIRROR, 0, 0))
        self.assertEqual((pin["ingress_port"], pin["vmi_id"]), (VMI_PORT, VMI_ID))
        self.assertEqual(pin.payload, bytes(pkt))
        self.expect_nothing_else()
        self.next_digest()


class MirrorToCpuToVmTest(FatFlowTest):
    """A to-VM packet entering on a fabric port with mirror_new_flows: its mirrored packet-in
    says it entered on the fabric port and belongs to the VMI its route resolves to; a transit
    packet (fabric to fabric) belongs to no VMI (0)."""

    def runTest(self) -> None:
        v = vmi(DNS)
        self.vmi_port(VMI_PORT, VMI_ID, v.vrf)
        self.fabric_port(FABRIC_PORT, v.vrf, mirror_new_flows=True)
        self.fatflow(v)
        self.route("10.0.0.1/32", VMI_PORT, vrf=v.vrf, dst_vmi_id=VMI_ID)
        self.route("0.0.0.0/0", FABRIC_PORT, vrf=v.vrf)
        self.insert([finsy.P4CloneSessionEntry(dp.ANALYZER_CLONE_SESSION_ID, replicas=[self.cpu_port])])
        for dst, out, vmi_id in (("10.0.0.1", VMI_PORT, VMI_ID), ("9.9.9.9", FABRIC_PORT, 0)):
            pkt = frame("8.8.8.8", dst, 17, 53, 5000)
            self.send(FABRIC_PORT, pkt)
            self.expect(routed(pkt), out)
            pin = self.next_packet_in()
            self.assertEqual((pin["reason"], pin["ingress_port"], pin["vmi_id"], pin["egress_port"]),
                             (PUNT_REASON_MIRROR, FABRIC_PORT, vmi_id, 0))
            self.assertEqual(pin.payload, bytes(pkt))
            self.next_digest()
        self.expect_nothing_else()

"""A Read whose answer is larger than gRPC's 4 MB message limit is split into several
ReadResponses instead of failing (RESOURCE_EXHAUSTED at the client)."""

from __future__ import annotations

from finsy.proto import p4r
from test_robust_harness import ServerThread

from softswitch.device import Device
from softswitch.p4info import build_p4info

CELLS = 1 << 18  # about 5.5 MB of RegisterEntry
PROGRAM = r"""
#include <core.p4>
#include <v1model.p4>
struct m_t { }
struct h_t { }
parser P(packet_in pkt, out h_t hdr, inout m_t meta, inout standard_metadata_t sm) {
    state start { transition accept; }
}
control VC(inout h_t hdr, inout m_t meta) { apply { } }
control I(inout h_t hdr, inout m_t meta, inout standard_metadata_t sm) {
    register<bit<32>>(32wCELLS) big;
    apply { big.write(0, 32w0xdeadbeef); }
}
control E(inout h_t hdr, inout m_t meta, inout standard_metadata_t sm) { apply { } }
control CC(inout h_t hdr, inout m_t meta) { apply { } }
control D(packet_out pkt, in h_t hdr) { apply { } }
V1Switch(P(), VC(), I(), E(), CC(), D()) main;
""".replace("CELLS", str(CELLS))


def test_read_larger_than_a_grpc_message_is_split() -> None:
    s = ServerThread()
    try:
        info = build_p4info(Device.compile(PROGRAM).ir)
        s.set_pipeline(PROGRAM.encode(), info, cookie=3)
        s.receive(1, b"\x00" * 64)
        e = p4r.Entity()
        e.register_entry.register_id = info.registers[0].preamble.id
        req = p4r.ReadRequest(device_id=0, entities=[e])
        responses = list(s.stub.Read(req, timeout=60))
        entries = [x.register_entry for r in responses for x in r.entities]
        assert len(responses) > 1
        assert all(r.ByteSize() < 4 << 20 for r in responses)
        assert len(entries) == CELLS
        assert [x.index.index for x in entries] == list(range(CELLS))
        assert entries[0].data.bitstring == bytes.fromhex("deadbeef")
    finally:
        s.close()

"""Table insertion times and packet hit times come from the same clock: the device's."""

from __future__ import annotations

from v1harness import Harness, eth

from softswitch.interp.tables import Exact, TableEntry

PROGRAM = """
struct headers_t { eth_t eth; }
struct meta_t { bit<8> x; }
parser P(packet_in pkt, out headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    state start { pkt.extract(h.eth); transition accept; }
}
control V(inout headers_t h, inout meta_t m) { apply { } }
control I(inout headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    action fwd(bit<9> p) { sm.egress_spec = p; }
    table t { key = { h.eth.dst: exact; } actions = { fwd; NoAction; } support_timeout = true; }
    apply { t.apply(); }
}
control E(inout headers_t h, inout meta_t m, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t h, inout meta_t m) { apply { } }
control D(packet_out pkt, in headers_t h) { apply { pkt.emit(h.eth); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""


def test_insert_and_hit_use_the_device_clock() -> None:
    h = Harness(PROGRAM)  # the device clock reads h.now (1 s), far from time.monotonic_ns()
    assert h.dev.program is not None
    table = h.dev.program.compiled.tables["I.t"]
    h.now = 7_000_000_000
    e = TableEntry((Exact(5),), "I.fwd", (3,), idle_timeout_ns=10**9)
    table.insert(e)
    assert e.last_hit_ns == 7_000_000_000
    h.now = 9_000_000_000
    assert h.send(1, eth(5, 1, 0x800)) == [(3, eth(5, 1, 0x800))]
    assert e.last_hit_ns == 9_000_000_000

"""Compound in-arguments of a control apply are passed without a copy when nothing can
alias them; with a possible alias (the same variable, or a type holding the other's,
passed inout in the same call) the copy-in semantics must still show."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from v1harness import Harness, eth

PROGRAM = """
struct headers_t { eth_t eth; }
struct meta_t { bit<48> x; bit<48> y; }
parser P(packet_in pkt, out headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    state start { pkt.extract(h.eth); transition accept; }
}
control V(inout headers_t h, inout meta_t m) { apply { } }
control SameVar(in meta_t a, inout meta_t b) {
    apply { b.x = a.x + 1; b.y = a.x; }               // b.y gets the value from before the call
}
control Nested(in eth_t e, inout headers_t hh) {
    apply { hh.eth.dst = 48w7; hh.eth.type = (bit<16>)e.dst; }   // e.dst: the old dst
}
control NoAlias(in meta_t a, in standard_metadata_t s, inout headers_t hh) {
    apply { hh.eth.src = a.y + (bit<48>)s.ingress_port; }
}
control Forward(in meta_t a, inout standard_metadata_t sm) {
    NoAlias() na;
    headers_t local;
    apply { sm.egress_spec = (bit<9>)a.x; local.eth.setValid(); na.apply(a, sm, local); }
}
control I(inout headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    SameVar() sv; Nested() ne; NoAlias() na; Forward() fw;
    apply {
        m.x = h.eth.src & 48w0xF;
        sv.apply(m, m);
        ne.apply(h.eth, h);
        na.apply(m, sm, h);
        fw.apply(m, sm);
    }
}
control E(inout headers_t h, inout meta_t m, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t h, inout meta_t m) { apply { } }
control D(packet_out pkt, in headers_t h) { apply { pkt.emit(h.eth); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""

H = Harness(PROGRAM)


@settings(max_examples=40)
@given(st.integers(0, 2**48 - 1), st.integers(0, 2**48 - 1), st.integers(1, 20))
def test_in_args_keep_copy_in_semantics(dst: int, src: int, port: int) -> None:
    out = H.send(port, eth(dst, src, 0x1234))
    x = src & 0xF
    m_x, m_y = x + 1, x  # after SameVar: y is x from before the call, not x + 1
    assert m_x == m_y + 1
    want = eth(7, m_y + port, dst & 0xFFFF)  # Nested read the old dst; NoAlias wrote src
    assert out == [(m_x, want)]

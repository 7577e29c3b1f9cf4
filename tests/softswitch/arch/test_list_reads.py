"""Field lists reading several fields of one header share the header's field dict in
the generated code; the values must be those of the plain reads, in order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from v1harness import Harness, eth

from softswitch.arch import hashes

PROGRAM = """
struct headers_t { eth_t eth; eth_t inner; }
struct meta_t { bit<16> x; bit<32> h1; bit<32> h2; }
parser P(packet_in pkt, out headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    state start { pkt.extract(h.eth); pkt.extract(h.inner); transition accept; }
}
control V(inout headers_t h, inout meta_t m) { apply { } }
control I(inout headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    apply {
        m.x = h.inner.type ^ 16w0x5555;
        hash(m.h1, HashAlgorithm.crc32, 32w0,
             {h.eth.dst, h.inner.src, h.eth.type, m.x, h.eth.src, h.inner.dst, 8w0xAB, h.eth.dst}, 33w0x100000000);
        hash(m.h2, HashAlgorithm.crc32, 32w0, {h.inner.type, h.inner.type, h.inner.type}, 33w0x100000000);
        h.eth.dst = (bit<48>)m.h1;
        h.eth.src = (bit<48>)m.h2;
        sm.egress_spec = 1;
    }
}
control E(inout headers_t h, inout meta_t m, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t h, inout meta_t m) { apply { } }
control D(packet_out pkt, in headers_t h) { apply { pkt.emit(h.eth); pkt.emit(h.inner); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""

H = Harness(PROGRAM)


@settings(max_examples=40)
@given(st.integers(0, 2**48 - 1), st.integers(0, 2**48 - 1), st.integers(0, 2**16 - 1),
       st.integers(0, 2**48 - 1), st.integers(0, 2**48 - 1), st.integers(0, 2**16 - 1))
def test_shared_field_reads_equal_plain_reads(d: int, s: int, t: int, d2: int, s2: int, t2: int) -> None:
    ((port, frame),) = H.send(2, eth(d, s, t) + eth(d2, s2, t2))
    x = t2 ^ 0x5555
    h1 = hashes.crc32(hashes.pack_bits([(d, 48), (s2, 48), (t, 16), (x, 16), (s, 48), (d2, 48), (0xAB, 8),
                                        (d, 48)]))
    h2 = hashes.crc32(hashes.pack_bits([(t2, 16)] * 3))
    assert (port, frame) == (1, eth(h1, h2, t) + eth(d2, s2, t2))

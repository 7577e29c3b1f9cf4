"""Runs of scalar field assignments read each header / struct field dict once in the
generated code; a device compiled without that (and without shared list reads) must
produce the same frames for random inputs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from v1harness import PRELUDE, eth

from softswitch.device import Device
from softswitch.interp import codegen

PROGRAM = PRELUDE + """
header ip_t { bit<8> a; bit<8> b; bit<16> c; bit<32> d; }
struct inner_t { bit<32> x; bit<32> y; bool f; }
struct headers_t { eth_t eth; ip_t ip; ip_t ip2; }
struct meta_t { inner_t i; inner_t j; bit<32> z; }
parser P(packet_in pkt, out headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    state start {
        pkt.extract(h.eth);
        m.i.x = (bit<32>)h.eth.type;
        m.i.y = m.i.x + 1;
        m.i.f = h.eth.type == 16w0x800;
        transition select(h.eth.type) { 0x800: ip; default: accept; }
    }
    state ip { pkt.extract(h.ip); transition accept; }
}
control V(inout headers_t h, inout meta_t m) { apply { } }
control I(inout headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    action swap() {
        h.ip.a = h.ip.b;
        h.ip.b = h.ip.a;                  // reads the value just written
        m.j.x = m.i.x ^ m.i.y;
        m.j.y = (bit<32>)h.ip.c;
    }
    apply {
        m.j.f = h.ip.isValid();
        m.z = m.i.x;
        m.i.x = m.i.y;
        m.i.y = m.z;                      // a rotation through a run
        if (h.ip.isValid()) {
            swap();
            h.ip.c = h.ip.c + (bit<16>)m.j.x;
            h.ip.d = (m.j.f ? m.i.x : m.i.y) | (h.ip.d & 0xFF00FF00);
            h.ip.c = h.ip.c[7:0] ++ h.ip.c[15:8];
            h.ip2.setValid();             // a compound write ends the run
            h.ip2.a = h.ip.a;
            h.ip2.b = h.ip2.a + 1;
            h.ip2.d = m.i.x;
            h.ip2.c = (bit<16>)m.i.y;
        }
        h.eth.src = (bit<48>)m.i.x;
        h.eth.dst = (bit<48>)m.i.y;
        sm.egress_spec = 1;
    }
}
control E(inout headers_t h, inout meta_t m, inout standard_metadata_t sm) { apply { } }
control C(inout headers_t h, inout meta_t m) { apply { } }
control D(packet_out pkt, in headers_t h) { apply { pkt.emit(h.eth); pkt.emit(h.ip); pkt.emit(h.ip2); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""


def device(optimised: bool, monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[Device, list[Any]]:
    if not optimised:
        assert monkeypatch is not None
        monkeypatch.setattr(codegen, "_scalar_field_assign", lambda s: False)
        monkeypatch.setattr(codegen, "_plain_read", lambda e: False)
    dev = Device()
    loaded = Device.compile(PROGRAM, "t.p4")
    dev.commit(loaded)
    out: list[Any] = []
    dev.on_transmit = lambda p, f: out.append((p, f))
    return dev, out


FAST = device(True)


@pytest.fixture(scope="module")
def slow() -> Any:
    mp = pytest.MonkeyPatch()
    try:
        d = device(False, mp)
    finally:
        mp.undo()
    return d


def test_the_optimisations_apply_only_to_the_fast_device(slow: Any) -> None:
    def src(d: Any) -> str:
        return "\n".join(d[0].program.compiled.sources)

    assert ".fields\n" in src(FAST) and ".fields\n" not in src(slow)


@settings(max_examples=60)
@given(st.integers(0, 2**16 - 1), st.binary(min_size=8, max_size=8), st.booleans())
def test_assign_runs_equal_plain_code(slow: Any, etype: int, ipb: bytes, ip: bool) -> None:
    frame = eth(1, 2, 0x800 if ip else etype, ipb)
    (fdev, fout), (sdev, sout) = FAST, slow
    fout.clear()
    sout.clear()
    fdev.receive(3, frame)
    sdev.receive(3, frame)
    assert fout == sout and len(fout) == 1

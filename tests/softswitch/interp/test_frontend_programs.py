"""Real P4 snippets through the frontend (softswitch.frontend.load_program) and the
interpreter, with a small fake v1model-ish architecture."""

from __future__ import annotations

from typing import Any

import pytest
from irb import Ctx, MiniV1

from softswitch import ir
from softswitch.frontend import load_program
from softswitch.interp import PacketIn, PacketOut, compile_program
from softswitch.interp.tables import Exact, Lpm, TableEntry, Ternary

PRELUDE = """
#include <core.p4>
#include <v1model.p4>
header ethernet_t { bit<48> dstAddr; bit<48> srcAddr; bit<16> etherType; }
header ipv4_t { bit<4> version; bit<4> ihl; bit<8> diffserv; bit<16> totalLen; bit<16> identification;
  bit<3> flags; bit<13> fragOffset; bit<8> ttl; bit<8> protocol; bit<16> hdrChecksum;
  bit<32> srcAddr; bit<32> dstAddr; }
struct headers { ethernet_t ethernet; ipv4_t ipv4; }
parser MyParser(packet_in packet, out headers hdr, inout metadata meta,
                inout standard_metadata_t standard_metadata) {
    state start { packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) { 0x800: parse_ipv4; default: accept; } }
    state parse_ipv4 { packet.extract(hdr.ipv4); transition accept; }
}
control MyVerifyChecksum(inout headers hdr, inout metadata meta) { apply { } }
control MyEgress(inout headers hdr, inout metadata meta, inout standard_metadata_t standard_metadata) { apply { } }
control MyComputeChecksum(inout headers hdr, inout metadata meta) { apply { } }
control MyDeparser(packet_out packet, in headers hdr) {
    apply { packet.emit(hdr.ethernet); packet.emit(hdr.ipv4); } }
V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(), MyComputeChecksum(), MyDeparser()) main;
"""


def build(meta: str, ingress: str) -> tuple[Any, ir.Program, MiniV1]:
    # the ingress must be declared before main: splice it in before the V1Switch line
    head, main = PRELUDE.rsplit("V1Switch", 1)
    src = head.replace("struct headers", f"struct metadata {{ {meta} }}\nstruct headers") + ingress + "\nV1Switch" + main
    prog = load_program(src, "test.p4")
    arch = MiniV1()
    return compile_program(prog, arch), prog, arch


def packet(dst_ip: int, src_ip: int = 0x0A000001, proto: int = 6, ttl: int = 64) -> bytes:
    eth = bytes.fromhex("001122334455" "66778899aabb" "0800")
    ip = bytes([0x45, 0, 0, 20, 0, 0, 0, 0, ttl, proto, 0, 0]) + src_ip.to_bytes(4, "big") + dst_ip.to_bytes(4, "big")
    return eth + ip + b"payload"


def run(cp: Any, prog: ir.Program, data: bytes) -> tuple[str, Any, Any, Any, bytes]:
    hdr_t = prog.types["headers"]
    meta_t = prog.types["metadata"]
    sm_t = prog.types["standard_metadata_t"]
    h, m, sm = cp.new_value(hdr_t), cp.new_value(meta_t), cp.new_value(sm_t)
    p = PacketIn(data)
    ctx = Ctx(packet_length=len(data))
    err = cp.run_parser("MyParser", [p, h, m, sm], ctx)
    cp.run_control("MyIngress", [h, m, sm], ctx)
    out = PacketOut()
    cp.run_control("MyDeparser", [out, h], ctx)
    return err, h, m, sm, out.data + p.remaining()


FORWARD = """
control MyIngress(inout headers hdr, inout metadata meta, inout standard_metadata_t standard_metadata) {
    counter(16, CounterType.packets) c;
    direct_counter(CounterType.packets_and_bytes) lpm_hits;
    action drop() { mark_to_drop(standard_metadata); }
    action ipv4_forward(bit<48> dstAddr, bit<9> port) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.srcAddr = hdr.ethernet.dstAddr;
        hdr.ethernet.dstAddr = dstAddr;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
    }
    table ipv4_lpm {
        key = { hdr.ipv4.dstAddr: lpm; }
        actions = { ipv4_forward; drop; NoAction; }
        default_action = drop();
        counters = lpm_hits;
    }
    table acl {
        key = { hdr.ipv4.srcAddr: ternary; hdr.ipv4.protocol : exact @name("proto"); }
        actions = { NoAction; drop; }
        const entries = { (0x0a000000 &&& 0xff000000, 17): drop(); (_, 6) : NoAction(); }
    }
    apply {
        if (hdr.ipv4.isValid()) {
            ipv4_lpm.apply();
            switch (acl.apply().action_run) { drop: { meta.cls = 1; } default: { meta.cls = 2; } }
            c.count((bit<32>) meta.cls);
            if (hdr.ipv4.ttl == 0) { exit; }
            meta.cls = meta.cls |+| 250;
        }
    }
}
"""


@pytest.fixture(scope="module")
def fwd() -> tuple[Any, ir.Program, MiniV1]:
    return build("bit<8> cls;", FORWARD)


def test_forwarding_program_tables_and_names(fwd: tuple[Any, ir.Program, MiniV1]) -> None:
    cp, _, _ = fwd
    assert set(cp.tables) == {"MyIngress.ipv4_lpm", "MyIngress.acl"}
    assert cp.table_of_direct_counter == {"MyIngress.lpm_hits": "MyIngress.ipv4_lpm"}
    assert {"MyIngress.c", "MyIngress.lpm_hits"} <= set(cp.instances)
    acl = cp.tables["MyIngress.acl"]
    assert acl.key_names == ("hdr.ipv4.srcAddr", "proto")
    ents = list(acl.entries())
    assert [(e.matches, e.action, e.priority) for e in ents] == [
        ((Ternary(0x0A000000, 0xFF000000), Exact(17)), "MyIngress.drop", 2),
        ((None, Exact(6)), "NoAction", 1)]


def test_forwarding_program_runs_packets(fwd: tuple[Any, ir.Program, MiniV1]) -> None:
    cp, prog, arch = fwd
    lpm = cp.tables["MyIngress.ipv4_lpm"]
    e = TableEntry((Lpm(0xC0A80000, 16),), "MyIngress.ipv4_forward", (0xAABBCCDDEEFF, 3))
    lpm.insert(e)
    err, h, m, sm, out = run(cp, prog, packet(0xC0A80102))
    assert err == "NoError"
    assert sm.fields["egress_spec"] == 3 and h.fields["ipv4"].fields["ttl"] == 63
    assert m.fields["cls"] == 252  # NoAction on the acl (proto 6) -> 2, then |+| 250
    assert out[:6] == bytes.fromhex("aabbccddeeff") and out[6:12] == bytes.fromhex("001122334455")
    assert out.endswith(b"payload") and out[22] == 63
    assert (e.packets, e.bytes) == (1, len(packet(0))) and arch.counts[-1] == ("MyIngress.c", 2)
    # lpm miss -> default drop (ttl untouched); acl drop for 10/8 udp -> 1, then |+| 250
    err, h, m, sm, _ = run(cp, prog, packet(0x01020304, src_ip=0x0A0B0C0D, proto=17, ttl=1))
    assert sm.fields["egress_spec"] == 511 and m.fields["cls"] == 251
    assert lpm.default_entry.packets == 0 and e.packets == 1  # misses not counted (BMv2)
    # hit with ttl 1 -> 0 -> exit before the |+|
    err, h, m, sm, _ = run(cp, prog, packet(0xC0A80909, ttl=1))
    assert h.fields["ipv4"].fields["ttl"] == 0 and m.fields["cls"] == 2


def test_non_ip_packet_skips_ingress(fwd: tuple[Any, ir.Program, MiniV1]) -> None:
    cp, prog, _ = fwd
    data = bytes(12) + b"\x86\xdd" + b"x" * 10
    err, h, m, _sm, out = run(cp, prog, data)
    assert err == "NoError" and not h.fields["ipv4"].valid and out == data and m.fields["cls"] == 0


LOCALS = """
control MyIngress(inout headers hdr, inout metadata meta, inout standard_metadata_t standard_metadata) {
    bit<8> acc = 1;
    action twice(inout bit<8> v) { v = v + v; }
    action bump(bit<8> by) { meta.a = meta.a + by; if (meta.a > 10) { return; } meta.b = 1; }
    apply {
        twice(acc);
        twice(acc);
        meta.c = acc;
        bump(5);
        bump(7);
        bit<16> wide = meta.a ++ meta.c;
        meta.w = wide[11:4];
        meta.s = (int<8>) meta.a;
        meta.s = meta.s |-| 100;
        switch (meta.c) { 1: { meta.d = 1; } 3: 4: { meta.d = 34; } default: { meta.d = 99; } }
    }
}
"""


def test_locals_actions_return_switch_slices_signed() -> None:
    cp, prog, _ = build("bit<8> a; bit<8> b; bit<8> c; bit<8> d; bit<8> w; int<8> s;", LOCALS)
    for _ in range(2):  # the control-local initialiser runs on every packet
        _, _, m, _, _ = run(cp, prog, packet(1))
        f = m.fields
        assert f["c"] == 4 and f["a"] == 12 and f["b"] == 1 and f["d"] == 34
        assert f["w"] == ((12 << 8 | 4) >> 4) & 0xFF
        assert f["s"] == -88


SIGNED = """
control MyIngress(inout headers hdr, inout metadata meta, inout standard_metadata_t standard_metadata) {
    action set_s(int<8> v, bool b) { meta.s = v; meta.b = b; }
    table t { key = { meta.k: exact; } actions = { set_s; } default_action = set_s(-3, true);
              const entries = { 1 : set_s(-128, false); } }
    apply { t.apply(); }
}
"""


def test_signed_and_bool_action_data() -> None:
    cp, prog, _ = build("bit<8> k; int<8> s; bool b;", SIGNED)
    t = cp.tables["MyIngress.t"]
    assert t.default_entry.args == (0xFD, 1) and next(t.entries()).args == (0x80, 0)
    _, _, m, _, _ = run(cp, prog, packet(1))
    assert m.fields["s"] == -3 and m.fields["b"] is True
    t.insert(TableEntry((Exact(0),), "MyIngress.set_s", (0x7F, 0)))
    _, _, m, _, _ = run(cp, prog, packet(1))
    assert m.fields["s"] == 127 and m.fields["b"] is False

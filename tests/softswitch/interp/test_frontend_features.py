"""More language features through the frontend: stacks, unions, varbit, functions,
nested control instances, explicit const entry priorities, serializable enums."""

from __future__ import annotations

from typing import Any

from irb import Ctx, MiniV1

from softswitch import ir
from softswitch.frontend import load_program
from softswitch.interp import PacketIn, PacketOut, compile_program
from softswitch.interp.tables import Lpm, Range, TableEntry

SRC = """
#include <core.p4>
#include <v1model.p4>
enum bit<8> Kind { A = 1, B = 2 }
header eth_t { bit<48> dst; bit<48> src; bit<16> type; }
header tag_t { bit<8> v; bit<8> next; }
header opt_t { bit<8> len; varbit<64> data; }
header four_t { bit<32> x; }
header two_t { bit<16> y; }
header_union u_t { four_t four; two_t two; }
struct headers { eth_t eth; tag_t[3] tags; opt_t opt; u_t u; }
struct metadata { bit<8> ntags; bit<8> last; bit<16> peek; Kind kind; bit<8> f; bit<8> g;
                  bit<8> r; bit<8> inner; bit<8> cls; }

bit<8> add3(in bit<8> a, out bit<8> o) { o = a + 3; return a + 1; }

parser P(packet_in pkt, out headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.eth);
        meta.peek = pkt.lookahead<bit<16>>();
        transition select(hdr.eth.type) {
            0x1000 &&& 0xF000: tags;
            0x2000 .. 0x20FF: opt;
            0x3004: four;
            0x3002: two;
            default: accept;
        }
    }
    state tags {
        pkt.extract(hdr.tags.next);
        meta.ntags = meta.ntags + 1;
        meta.last = hdr.tags.last.v;
        transition select(hdr.tags.last.next) { 1: tags; default: accept; }
    }
    state opt {
        pkt.extract(hdr.opt, ((bit<32>) pkt.lookahead<bit<8>>()) * 8);
        transition accept;
    }
    state four { pkt.extract(hdr.u.four); transition accept; }
    state two { pkt.extract(hdr.u.two); transition accept; }
}
"""

SRC2 = """
control VC(inout headers hdr, inout metadata meta) { apply { } }
control Inner(inout metadata meta) {
    action mark(bit<8> v) { meta.inner = v; }
    @name("renamed_t") table t { key = { meta.ntags: exact; } actions = { mark; NoAction; }
        default_action = mark(77); }
    apply { t.apply(); }
}
control I(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) {
    Inner() inner1;
    action cls(bit<8> c) { meta.cls = c; }
    table ranges {
        key = { meta.peek: range; hdr.eth.dst: lpm @name("dst"); }
        actions = { cls; NoAction; }
        entries = {
            (0x1000 .. 0x1FFF, 0x010000000000 &&& 0xFF0000000000): cls(1);
            (_, _) : cls(9);
            (0x1000 .. 0x10FF, _) : cls(2);
        }
    }
    apply {
        meta.f = add3(meta.ntags, meta.g);
        meta.kind = Kind.B;
        if (meta.kind == Kind.B) { meta.r = (bit<8>) meta.kind; }
        inner1.apply(meta);
        ranges.apply();
        if (hdr.u.two.isValid()) { hdr.u.four.setValid(); hdr.u.four.x = 0x01020304; }
        hdr.tags.pop_front(1);
    }
}
control E(inout headers hdr, inout metadata meta, inout standard_metadata_t sm) { apply { } }
control CC(inout headers hdr, inout metadata meta) { apply { } }
control D(packet_out pkt, in headers hdr) { apply { pkt.emit(hdr); } }
V1Switch(P(), VC(), I(), E(), CC(), D()) main;
"""


def setup() -> tuple[Any, ir.Program]:
    prog = load_program(SRC + SRC2, "features.p4")
    return compile_program(prog, MiniV1()), prog


CP, PROG = setup()


def run(data: bytes) -> tuple[str, Any, Any, bytes]:
    h = CP.new_value(PROG.types["headers"])
    m = CP.new_value(PROG.types["metadata"])
    sm = CP.new_value(PROG.types["standard_metadata_t"])
    p = PacketIn(data)
    err = CP.run_parser("P", [p, h, m, sm], Ctx())
    CP.run_control("I", [h, m, sm], Ctx())
    out = PacketOut()
    CP.run_control("D", [out, h], Ctx())
    return err, h, m, out.data + p.remaining()


ETH = bytes.fromhex("010203040506" "0a0b0c0d0e0f")


def test_names_of_nested_instances_and_const_entry_priorities() -> None:
    assert set(CP.tables) == {"I.inner1.renamed_t", "I.ranges"}
    assert "I.inner1.mark" in CP.actions
    ents = list(CP.tables["I.ranges"].entries())
    # no explicit priorities: p4c numbers them N..1, the first entry highest
    assert [e.priority for e in ents] == [3, 2, 1]
    assert not any(e.is_const for e in ents)  # ``entries`` (not ``const entries``)


def test_stack_parsing_pop_front_and_function_out_param() -> None:
    err, h, m, out = run(ETH + b"\x10\x00" + b"\x05\x01\x06\x01\x07\x00" + b"rest")
    assert err == "NoError"
    assert m.fields["ntags"] == 3 and m.fields["last"] == 7 and m.fields["peek"] == 0x0501
    assert m.fields["f"] == 4 and m.fields["g"] == 6 and m.fields["r"] == 2
    assert m.fields["inner"] == 77  # default action of the nested table, its arg
    tags = h.fields["tags"]
    assert [t.fields["v"] for t in tags.elems[:2]] == [6, 7] and not tags.elems[2].valid
    assert tags.next_index == 2
    assert out == ETH + b"\x10\x00" + b"\x06\x01\x07\x00" + b"rest"


def test_stack_overflow_is_stack_out_of_bounds() -> None:
    err, *_ = run(ETH + b"\x10\x00" + b"\x05\x01" * 4)
    assert err == "StackOutOfBounds"


def test_range_lpm_table_priorities() -> None:
    t = CP.tables["I.ranges"]
    assert t.needs_priority and t.key_names == ("meta.peek", "dst")
    t.insert(TableEntry((Range(0x0500, 0x05FF), Lpm(0x010203000000, 24)), "I.cls", (5,), priority=1000))
    _, _, m, _ = run(ETH + b"\x10\x00" + b"\x05\x00")
    assert m.fields["cls"] == 5
    t.delete((Range(0x0500, 0x05FF), Lpm(0x010203000000, 24)), 1000)
    # peek 0x1080, dst 01:02:..: entry 1 (prio 3) beats entry 3 (prio 1)
    _, _, m, _ = run(ETH + b"\x10\x00" + b"\x10\x80")
    assert m.fields["cls"] == 1
    _, _, m, _ = run(ETH + b"\x10\x00" + b"\x05\x00")
    assert m.fields["cls"] == 9
    t.clear()  # initial ``entries`` are not const: clear removes them
    _, _, m, _ = run(ETH + b"\x10\x00" + b"\x05\x00")
    assert len(t) == 0 and m.fields["cls"] == 0


def test_varbit_extract_and_emit_roundtrip() -> None:
    data = ETH + b"\x20\x10" + b"\x02" + b"tail"
    err, h, _, out = run(data)
    assert err == "NoError" and h.fields["opt"].valid and h.fields["opt"].fields["len"] == 2
    assert out == data


def test_header_union_only_one_member_valid() -> None:
    err, h, _, out = run(ETH + b"\x30\x02" + b"\xAA\xBB" + b"zz")
    u = h.fields["u"]
    assert err == "NoError"
    assert u.fields["four"].valid and not u.fields["two"].valid
    assert out == ETH + b"\x30\x02" + bytes([1, 2, 3, 4]) + b"zz"

"""Parsers (extract, select, errors, stacks), packet_in/packet_out, deparsing."""

from __future__ import annotations

import pytest
from irb import BOOL, Ctx, P, assign, bit, block, builtin, c, call, compile_one, control, mem, program, var

from softswitch import ir
from softswitch.interp.api import PacketTooShort
from softswitch.interp.packet import PacketIn, PacketOut

ETH = ir.HeaderT("eth_t", (("dst", bit(48)), ("src", bit(48)), ("type", bit(16))))
VLAN = ir.HeaderT("vlan_t", (("pcp", bit(3)), ("cfi", bit(1)), ("vid", bit(12)), ("type", bit(16))))
STK = ir.StackT(VLAN, 2)
HDRS = ir.StructT("headers", (("eth", ETH), ("vlans", STK), ("tail", ir.HeaderT("t_t", (("b", bit(8)),)))))
META = ir.StructT("meta_t", (("n", bit(8)), ("peek", bit(16))))
VOID = ir.VoidT()
PKT = ir.ExternT("packet_in")
OUT = ir.ExternT("packet_out")
pkt = var("pkt", PKT)
hdr = var("hdr", HDRS)
meta = var("meta", META)


def pm(target: ir.Expr, method: str, *args: tuple[str, ir.Expr], t: ir.Type = VOID, ext: str = "packet_in"):
    return ir.ExternMethodCall(P, t, target, ext, method, tuple(ir.Arg(d, e) for d, e in args))


def extract(h: ir.Expr) -> ir.CallStmt:
    return call(pm(pkt, "extract", ("out", h)))


def parser(states: list[ir.ParserState]) -> ir.ParserDecl:
    params = (ir.Param("pkt", "", PKT), ir.Param("hdr", "out", HDRS), ir.Param("meta", "inout", META))
    return ir.ParserDecl("Prs", params, (), (), tuple(states))


def state(name: str, stmts: list[ir.Stmt], tr: ir.Transition) -> ir.ParserState:
    return ir.ParserState(name, tuple(stmts), tr)


def sel(key: ir.Expr | list[ir.Expr], *cases: tuple[tuple[ir.KeySet, ...], str]) -> ir.Select:
    keys = tuple(key) if isinstance(key, list) else (key,)
    return ir.Select(keys, tuple(ir.SelectCase(ks, s) for ks, s in cases))


VL = mem(hdr, "vlans")
STD_STATES = [
    state("start", [extract(mem(hdr, "eth"))],
          sel(mem(mem(hdr, "eth"), "type"), ((ir.KsExact(0x8100),), "vlan"),
              ((ir.KsMask(0x0800, 0xFF00),), "tail"), ((ir.KsRange(0x9000, 0x90FF),), "accept"),
              ((ir.KsExact(0x1234),), "reject"), ((ir.KsExact(0x1235),), "peek"))),
    state("vlan", [extract(mem(VL, "next")),
                   assign(mem(meta, "n"), ir.Cast(P, bit(8), mem(VL, "lastIndex")))],
          sel(mem(mem(VL, "last"), "type"), ((ir.KsExact(0x8100),), "vlan"), ((ir.KsDefault(),), "tail"))),
    state("tail", [extract(mem(hdr, "tail"))], ir.Goto("accept")),
    state("peek", [assign(mem(meta, "peek"), pm(pkt, "lookahead", t=bit(16))),
                   call(pm(pkt, "advance", ("in", c(16, bit(32))))),
                   call(ir.ExternFunctionCall(P, ir.VoidT(), "verify",
                                              (ir.Arg("in", ir.Binary(P, BOOL, "==", mem(meta, "peek"),
                                                                      c(0xAAAA, bit(16)))),
                                               ir.Arg("in", ir.ErrorConst(P, ir.ErrorT(), "BadPeek")))))],
          ir.Goto("tail")),
]


def parse(data: bytes, states: list[ir.ParserState] | None = None):
    cp = compile_one(program(parsers={"Prs": parser(states or STD_STATES)}))
    h = cp.new_value(HDRS)
    mt = cp.new_value(META)
    p = PacketIn(data)
    err = cp.run_parser("Prs", [p, h, mt], Ctx())
    return err, h, mt, p


def eth(t: int) -> bytes:
    return bytes(range(1, 13)) + t.to_bytes(2, "big")


def test_extract_and_masked_select() -> None:
    err, h, _, p = parse(eth(0x0806) + b"\x07rest")
    assert err == "NoError"
    assert h.fields["eth"].fields == {"dst": 0x010203040506, "src": 0x0708090A0B0C, "type": 0x0806}
    assert h.fields["tail"].valid and h.fields["tail"].fields["b"] == 7
    assert p.remaining() == b"rest"


def test_range_accept_nomatch_and_explicit_reject() -> None:
    assert parse(eth(0x9010))[0] == "NoError"
    err, h, _, _ = parse(eth(0x7777))
    assert err == "NoMatch" and h.fields["eth"].valid
    assert parse(eth(0x1234))[0] == "NoError"  # transition reject without an error (BMv2)


def test_packet_too_short_leaves_header_invalid() -> None:
    err, h, _, _ = parse(eth(0x0800))
    assert err == "PacketTooShort" and not h.fields["tail"].valid


def test_header_stack_next_last_and_overflow() -> None:
    v1 = (0x2005).to_bytes(2, "big") + (0x8100).to_bytes(2, "big")
    v2 = (0x0006).to_bytes(2, "big") + (0x0800).to_bytes(2, "big")
    err, h, mt, _ = parse(eth(0x8100) + v1 + v2 + b"\x09")
    assert err == "NoError"
    s = h.fields["vlans"]
    assert s.next_index == 2 and mt.fields["n"] == 1
    assert s.elems[0].fields["vid"] == 5 and s.elems[0].fields["pcp"] == 1
    assert s.elems[1].fields["vid"] == 6 and h.fields["tail"].fields["b"] == 9
    err, *_ = parse(eth(0x8100) + v1 + v1 + v1 + b"\x09")
    assert err == "StackOutOfBounds"


def test_lookahead_advance_and_verify() -> None:
    err, h, mt, _ = parse(eth(0x1235) + b"\xaa\xaa\x05")
    assert err == "NoError" and mt.fields["peek"] == 0xAAAA and h.fields["tail"].fields["b"] == 5
    err, _, mt, _ = parse(eth(0x1235) + b"\xab\xaa\x05")
    assert err == "BadPeek"


def test_multi_key_select_and_parser_timeout() -> None:
    states = [
        state("start", [], sel([mem(meta, "n"), mem(meta, "peek")],
                               ((ir.KsExact(1), ir.KsMask(0, 0)), "loop"),
                               ((ir.KsDefault(), ir.KsExact(7)), "accept"))),
        state("loop", [], ir.Goto("loop")),
    ]
    cp = compile_one(program(parsers={"Prs": parser(states)}))

    def go(n: int, peek: int) -> str:
        mt = cp.new_value(META)
        mt.fields.update(n=n, peek=peek)
        return cp.run_parser("Prs", [PacketIn(b""), cp.new_value(HDRS), mt], Ctx())
    assert go(0, 7) == "NoError"
    assert go(0, 8) == "NoMatch"
    assert go(1, 7) == "ParserTimeout"


def test_packet_in_unaligned_fields_and_signed() -> None:
    t = ir.HeaderT("u", (("a", bit(3)), ("b", ir.IntT(5)), ("c", bit(4)), ("d", bit(12))))
    h = compile_one(program()).new_value(t)
    p = PacketIn(bytes([0b101_11110, 0xAB, 0xCD]))
    p.extract(h)
    assert h.fields == {"a": 5, "b": -2, "c": 0xA, "d": 0xBCD} and p.offset_bits == 24
    o = PacketOut()
    o.emit(h)
    assert o.data == bytes([0b101_11110, 0xAB, 0xCD])
    p2 = PacketIn(b"\x01")
    with pytest.raises(PacketTooShort, match="advance"):
        p2.advance(9)
    assert p2.length() == 1
    nib = ir.HeaderT("n", (("x", bit(4)),))
    a, b = compile_one(program()).new_value(nib), compile_one(program()).new_value(nib)
    p3 = PacketIn(b"\x5a")
    p3.extract(a)
    p3.extract(b)
    assert (a.fields["x"], b.fields["x"]) == (5, 0xA)
    with pytest.raises(PacketTooShort):
        p3.extract(a)


def test_deparser_emits_valid_headers_in_order_with_stacks() -> None:
    emit = lambda e: call(pm(var("po", OUT), "emit", ("in", e), ext="packet_out"))  # noqa: E731
    dep = control("Dep", [("po", "", OUT), ("hdr", "in", HDRS)], [emit(mem(hdr, "eth")), emit(VL),
                                                                     emit(mem(hdr, "tail"))])
    cp = compile_one(program(controls={"Dep": dep}))
    h = cp.new_value(HDRS)
    h.fields["eth"].valid = True
    h.fields["eth"].fields.update(dst=1, src=2, type=0x8100)
    s = h.fields["vlans"]
    s.elems[1].valid = True
    s.elems[1].fields.update(vid=3, type=0x0800)
    po = PacketOut()
    cp.run_control("Dep", [po, h], Ctx())
    assert po.data == (1).to_bytes(6, "big") + (2).to_bytes(6, "big") + b"\x81\x00" + b"\x00\x03\x08\x00"


def test_push_pop_front_and_variable_index() -> None:
    idx = mem(var("meta", META), "n")
    ctl = control("C", [("hdr", "inout", HDRS), ("meta", "inout", META)], [
        call(builtin(VL, "push_front", c(1, bit(32)))),
        assign(mem(ir.Index(P, VLAN, VL, c(0, bit(32))), "vid"), c(42, bit(12))),
        call(builtin(ir.Index(P, VLAN, VL, c(0, bit(32))), "setValid")),
        assign(mem(meta, "peek"), ir.Cast(P, bit(16), mem(ir.Index(P, VLAN, VL, idx), "vid"))),
    ])
    cp = compile_one(program(controls={"C": ctl}))
    h = cp.new_value(HDRS)
    h.fields["vlans"].elems[0].valid = True
    h.fields["vlans"].elems[0].fields["vid"] = 7
    h.fields["vlans"].next_index = 1
    mt = cp.new_value(META)
    mt.fields["n"] = 1
    cp.run_control("C", [h, mt], Ctx())
    s = h.fields["vlans"]
    assert [e.fields["vid"] for e in s.elems] == [42, 7] and s.next_index == 2
    assert mt.fields["peek"] == 7
    ctl2 = control("C", [("hdr", "inout", HDRS), ("meta", "inout", META)],
                   [call(builtin(VL, "pop_front", c(1, bit(32))))])
    cp2 = compile_one(program(controls={"C": ctl2}))
    cp2.run_control("C", [h, mt], Ctx())
    assert s.elems[0].fields["vid"] == 7 and not s.elems[1].valid and s.next_index == 1
    _ = block


def test_stack_last_in_a_control_out_of_range_reads_invalid_header() -> None:
    ctl = control("C", [("hdr", "inout", HDRS), ("meta", "inout", META)], [
        ir.If(P, builtin(mem(VL, "last"), "isValid"), assign(mem(meta, "n"), c(1, bit(8))),
              assign(mem(meta, "n"), c(2, bit(8)))),
        assign(mem(mem(VL, "last"), "vid"), c(5, bit(12))),  # dropped: no element
    ])
    cp = compile_one(program(controls={"C": ctl}))
    h, mt = cp.new_value(HDRS), cp.new_value(META)
    cp.run_control("C", [h, mt], Ctx())
    assert mt.fields["n"] == 2 and all(e.fields["vid"] == 0 for e in h.fields["vlans"].elems)

"""Whole realistic programs load, and their IR has the expected shape."""

from __future__ import annotations

from pathlib import Path

from softswitch import ir
from softswitch.frontend import load_file

PROGRAMS = Path(__file__).parent / "programs"
REPO = Path(__file__).resolve().parents[3]


def _load(name: str) -> ir.Program:
    return load_file(PROGRAMS / name)


def test_basic_l3_shape() -> None:
    p = _load("basic_l3.p4")
    assert p.main == ir.MainInstance("V1Switch", ("MyParser", "MyVerifyChecksum", "MyIngress", "MyEgress",
                                                  "MyComputeChecksum", "MyDeparser"), "main", p.main.pos)
    parser = p.parsers["MyParser"]
    assert [s.name for s in parser.states] == ["start", "parse_ethernet", "parse_ipv4"]
    sel = parser.states[1].transition
    assert isinstance(sel, ir.Select)
    assert [c.keysets for c in sel.cases] == [(ir.KsExact(0x800),), (ir.KsDefault(),)]
    assert [c.state for c in sel.cases] == ["parse_ipv4", "accept"]
    ing = p.controls["MyIngress"]
    (t,) = ing.tables
    assert t.name == "ipv4_lpm" and t.size == 1024
    assert [(k.source_text, k.match_kind) for k in t.keys] == [("hdr.ipv4.dstAddr", "lpm")]
    assert [(a.action, a.top_level) for a in t.actions] == [("ipv4_forward", False), ("drop", False),
                                                           ("NoAction", True)]
    assert t.default_action.action == "drop" and not t.default_action.is_const
    fwd = next(a for a in ing.actions if a.name == "ipv4_forward")
    assert [(q.name, q.direction, q.type) for q in fwd.params] == [("dstAddr", "", ir.BitT(48)),
                                                                  ("port", "", ir.BitT(9))]
    # ttl - 1: the literal takes the width of ttl
    ttl = fwd.body.stmts[-1]
    assert isinstance(ttl, ir.Assign) and isinstance(ttl.rhs, ir.Binary)
    assert ttl.rhs.right == ir.Const(ttl.rhs.right.pos, ir.BitT(8), 1)
    vc = p.controls["MyVerifyChecksum"].apply.stmts[0]
    assert isinstance(vc, ir.CallStmt) and isinstance(vc.call, ir.ExternFunctionCall)
    assert vc.call.name == "verify_checksum"
    assert [a.direction for a in vc.call.args] == ["in", "in", "in", ""]
    assert isinstance(vc.call.type_args[0], ir.TupleT) and len(vc.call.type_args[0].elems) == 11
    assert vc.call.type_args[1] == ir.BitT(16)
    assert p.source_files[0].endswith("basic_l3.p4")
    assert any(f.endswith("v1model.p4") for f in p.source_files)


def test_calc_const_entries_and_lookahead() -> None:
    p = _load("calc.p4")
    calc = p.controls["MyIngress"].tables[0]
    assert calc.entries_const and calc.default_action.is_const
    assert [(e.keysets, e.action) for e in calc.entries or ()] == [
        ((ir.KsExact(0x2B),), "operation_add"), ((ir.KsExact(0x2D),), "operation_sub"),
        ((ir.KsExact(0x26),), "operation_and"), ((ir.KsExact(0x7C),), "operation_or"),
        ((ir.KsExact(0x5E),), "operation_xor")]
    sel = p.parsers["MyParser"].states[1].transition
    assert isinstance(sel, ir.Select) and len(sel.keys) == 3
    look = sel.keys[0]
    assert isinstance(look, ir.Member) and look.member == "p"
    assert isinstance(look.expr, ir.ExternMethodCall) and look.expr.method == "lookahead"
    assert look.expr.type_args == (p.types["p4calc_t"],)
    assert sel.cases[1].keysets == (ir.KsDefault(),) * 3  # default expanded per key
    add = next(a for a in p.controls["MyIngress"].actions if a.name == "operation_add")
    call = add.body.stmts[0]
    assert isinstance(call, ir.CallStmt) and isinstance(call.call, ir.ActionCall)
    assert call.call.action == "send_back" and call.call.args[0].direction == ""


def test_source_routing_stack_ops() -> None:
    p = _load("source_routing.p4")
    hdrs = p.types["headers"]
    assert isinstance(hdrs, ir.StructT)
    stack = hdrs.field_type("srcRoutes")
    assert isinstance(stack, ir.StackT) and stack.size == 9
    st = p.parsers["MyParser"].states[1]
    ext = st.stmts[0]
    assert isinstance(ext, ir.CallStmt) and isinstance(ext.call, ir.ExternMethodCall)
    nxt = ext.call.args[0].expr
    assert isinstance(nxt, ir.Member) and nxt.member == "next" and ext.call.args[0].direction == "out"
    ing = p.controls["MyIngress"]
    nhop = next(a for a in ing.actions if a.name == "srcRoute_nhop")
    cast = nhop.body.stmts[0].rhs  # type: ignore[attr-defined]
    assert isinstance(cast, ir.Cast) and cast.type == ir.BitT(9)
    assert isinstance(cast.expr, ir.Member) and isinstance(cast.expr.expr, ir.Index)
    pop = nhop.body.stmts[1]
    assert isinstance(pop, ir.CallStmt) and isinstance(pop.call, ir.BuiltinMethodCall)
    assert pop.call.method == "pop_front" and pop.call.args[0].expr.value == 1  # type: ignore[attr-defined]
    push = next(a for a in ing.actions if a.name == "push_hop").body.stmts
    assert [s.call.method for s in push[:2]] == ["push_front", "setValid"]  # type: ignore[attr-defined]


def test_firewall_registers_and_hash() -> None:
    p = _load("firewall.p4")
    ing = p.controls["MyIngress"]
    regs = [i for i in ing.locals if isinstance(i, ir.Instance)]
    assert [(r.name, r.type) for r in regs] == [
        ("bloom_filter_1", ir.ExternT("register", (ir.BitT(1), ir.BitT(32)))),
        ("bloom_filter_2", ir.ExternT("register", (ir.BitT(1), ir.BitT(32))))]
    assert regs[0].ctor_args[0] == ir.Const(regs[0].ctor_args[0].pos, ir.BitT(32), 4096)
    ch = next(a for a in ing.actions if a.name == "compute_hashes")
    h = ch.body.stmts[0].call  # type: ignore[attr-defined]
    assert isinstance(h, ir.ExternFunctionCall) and h.name == "hash"
    assert [a.direction for a in h.args] == ["out", "in", "in", "in", "in"]
    assert h.type_args[0] == ir.BitT(32) and h.type_args[3] == ir.BitT(32)
    assert h.type_args[2] == ir.TupleT((ir.BitT(32), ir.BitT(32), ir.BitT(16), ir.BitT(16), ir.BitT(8)))
    # register write: the literal 1 becomes bit<1>, the index keeps bit<32>
    calls = []

    def walk(s: ir.Stmt) -> None:
        if isinstance(s, ir.CallStmt) and isinstance(s.call, ir.ExternMethodCall):
            calls.append(s.call)
        for sub in (getattr(s, "stmts", ()) or ()):
            walk(sub)
        for attr in ("then", "else_"):
            if getattr(s, attr, None) is not None:
                walk(getattr(s, attr))
    walk(ing.apply)
    write = next(c for c in calls if c.method == "write")
    assert write.extern == "register" and write.args[1].expr.type == ir.BitT(1)
    read = next(c for c in calls if c.method == "read")
    assert read.args[0].direction == "out" and read.type == ir.VoidT()
    # the apply().hit member
    assert "PortId_t" in p.types and p.types["PortId_t"] == ir.BitT(9)


def test_ecmp_hash_counter_switch_entries() -> None:
    p = _load("ecmp.p4")
    ing = p.controls["MyIngress"]
    grp, nhop = ing.tables
    assert grp.direct_counter == "ecmp_group_counter"
    assert grp.default_action == ir.DefaultAction("NoAction", True, (), False, grp.default_action.pos)
    assert [k.source_text for k in nhop.keys] == ["meta.ecmp_select", "hdr.ipv4.dstAddr[31:24]"]
    assert nhop.keys[0].annotations[0].args == ("select",)
    assert isinstance(nhop.keys[1].expr, ir.Slice) and nhop.keys[1].expr.type == ir.BitT(8)
    e0, e1 = nhop.entries or ()
    assert e0.keysets == (ir.KsExact(0), ir.KsMask(0x0A, 0xFF)) and e0.priority is None
    assert e0.args == (0x000000000101, 0x0A000101, 1)
    assert e1.keysets == (ir.KsExact(1), ir.KsDefault()) and e1.priority == 10
    sw = ing.apply.stmts[0].then.stmts[0]  # type: ignore[attr-defined]
    assert isinstance(sw, ir.Switch) and [c.labels for c in sw.cases] == [("set_ecmp_select",), ("drop",)]
    h = next(a for a in ing.actions if a.name == "set_ecmp_select").body.stmts[0].call  # type: ignore[attr-defined]
    assert h.type_args[0] == ir.BitT(14) and h.type_args[1] == ir.BitT(16) and h.type_args[3] == ir.BitT(32)
    sel = p.parsers["MyParser"].states[1].transition
    assert sel.cases[0].keysets == (ir.KsMask(6, 0xFE),)  # type: ignore[union-attr]
    verify = p.parsers["MyParser"].states[1].stmts[1].call  # type: ignore[attr-defined]
    assert verify.name == "verify" and verify.args[1].expr == ir.ErrorConst(verify.args[1].expr.pos,
                                                                             ir.ErrorT(), "HeaderTooShort")


def test_fatflow_pipeline_loads() -> None:
    p = load_file(REPO / "p4src" / "fatflow_v1model.p4")
    assert p.main is not None and p.main.package == "V1Switch"
    assert len(p.main.args) == 6

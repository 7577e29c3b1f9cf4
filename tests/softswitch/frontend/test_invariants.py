"""The invariants softswitch/ir.py promises: concrete types, folded constants, inserted
casts, unique local names, arguments in parameter order with directions."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from softswitch import ir

P4 = Callable[..., ir.Program]


def _exprs(node: object) -> Iterator[ir.Expr]:
    """Every expression reachable from node (dataclass fields, tuples)."""
    if isinstance(node, ir.Expr):
        yield node
    if isinstance(node, (list, tuple)):
        for x in node:
            yield from _exprs(x)
        return
    if isinstance(node, ir.Type) or not hasattr(node, "__dataclass_fields__"):
        return
    for name in node.__dataclass_fields__:  # type: ignore[attr-defined]
        if name in ("type", "pos"):
            continue
        yield from _exprs(getattr(node, name))


def test_no_infint_in_runtime_expressions(p4: P4) -> None:
    p = p4(locals_="action a(bit<8> v) { meta.m32 = (bit<32>)v * 3 + 7; }",
           apply="""meta.m8 = 3; meta.m16 = meta.m16 + 1; if (meta.m8 < 200 && 5 == meta.m8) { a(1); }
                    meta.m32 = meta.m32 << 3; hdr.stack[1].a = 2; meta.s8 = meta.s8 - -1;""")
    for decl in (p.controls["I"], p.parsers["P"]):
        seen = list(_exprs(decl))
        assert seen
        for e in seen:
            assert not isinstance(e.type, ir.InfIntT), e
        for e in seen:
            if isinstance(e, ir.Binary) and e.op not in ("<<", ">>", "++", "&&", "||"):
                assert e.left.type == e.right.type, e


def test_constants_are_folded(p4: P4) -> None:
    p = p4(decls="const bit<16> BASE = 0x100;\nconst bit<16> DERIVED = BASE + 2 * 8;\nenum bit<4> En { A = 1 + 2 }",
           apply="meta.m16 = DERIVED; meta.m8 = (bit<8>)(BASE >> 4); meta.m16 = 16w0xFFFF + 1; meta.flag = 2 > 1;"
                 "hdr.h.a = (bit<8>)En.A; meta.m32 = hdr.h.minSizeInBits();")
    assert p.constants["DERIVED"] == ir.Const(p.constants["DERIVED"].pos, ir.BitT(16), 0x110)
    assert p.types["En"] == ir.SerEnumT("En", ir.BitT(4), (("A", 3),))
    s = p.controls["I"].apply.stmts
    assert [type(x.rhs).__name__ for x in s] == ["Const"] * 6  # type: ignore[attr-defined]
    assert [x.rhs.value for x in s] == [0x110, 0x10, 0, True, 3, 56]  # type: ignore[attr-defined]
    assert s[1].rhs.type == ir.BitT(8)  # type: ignore[attr-defined]


def test_literal_widths_follow_context(p4: P4) -> None:
    p = p4(apply="meta.m16 = meta.m16 + 1; meta.flag = meta.m32 == 5; meta.m8 = meta.flag ? 8w1 : 2;"
                 "meta.s8 = meta.s8 + (-1);")
    s = p.controls["I"].apply.stmts
    assert s[0].rhs.right == ir.Const(s[0].rhs.right.pos, ir.BitT(16), 1)  # type: ignore[attr-defined]
    assert s[1].rhs.right.type == ir.BitT(32)  # type: ignore[attr-defined]
    assert isinstance(s[2].rhs, ir.Mux) and s[2].rhs.else_.type == ir.BitT(8)  # type: ignore[attr-defined]
    assert s[3].rhs.right == ir.Const(s[3].rhs.right.pos, ir.IntT(8), -1)  # type: ignore[attr-defined]


def test_casts_inserted_for_serializable_enums(p4: P4) -> None:
    p = p4(decls="enum bit<8> Op { ADD = 1, SUB = 2 }",
           locals_="Op op = Op.ADD;",
           apply="meta.m8 = op; meta.flag = hdr.h.a == op; meta.m8 = Op.SUB;")
    s = p.controls["I"].apply.stmts
    assert isinstance(s[0].rhs, ir.Cast) and s[0].rhs.type == ir.BitT(8)  # type: ignore[attr-defined]
    assert isinstance(s[0].rhs.expr, ir.VarRef)  # type: ignore[attr-defined]
    cmp = s[1].rhs  # type: ignore[attr-defined]
    assert isinstance(cmp.right, ir.Cast) and cmp.right.type == ir.BitT(8)
    assert s[2].rhs == ir.Const(s[2].rhs.pos, ir.BitT(8), 2)  # type: ignore[attr-defined]
    init = p.controls["I"].locals[0].init  # type: ignore[union-attr]
    assert init == ir.Const(init.pos, p.types["Op"], 1)


def test_locals_renamed_unique_per_block(p4: P4) -> None:
    p = p4(locals_="""
    bit<8> tmp;
    action a1() { bit<8> tmp = 1; meta.m8 = tmp; }
    action a2(bit<8> port) { bit<8> tmp = 2; meta.m8 = tmp + port; }
    action a3(bit<8> port, bit<8> tmp) { meta.m8 = port + tmp; }
""", apply="""
    bit<8> port = 1;
    { bit<8> port = 2; meta.m8 = port; }
    meta.m8 = port + tmp;
""")
    c = p.controls["I"]
    names: list[str] = [v.name for v in c.locals if isinstance(v, ir.VarDecl)]
    for a in c.actions:
        names += [s.name for s in a.body.stmts if isinstance(s, ir.VarDecl)]
    top = [s for s in c.apply.stmts if isinstance(s, ir.VarDecl)]
    inner = [s for s in c.apply.stmts[1].stmts if isinstance(s, ir.VarDecl)]  # type: ignore[attr-defined]
    names += [s.name for s in top + inner]
    assert len(names) == len(set(names)), names
    assert [s.original_name for s in top + inner] == ["port", "port"]
    # references resolve to the innermost declaration
    inner_use = c.apply.stmts[1].stmts[1].rhs  # type: ignore[attr-defined]
    assert inner_use.name == inner[0].name and inner_use.original_name == "port"
    outer_use = c.apply.stmts[2].rhs.left  # type: ignore[attr-defined]
    assert outer_use.name == top[0].name
    # action parameters may share a slot with each other but not with control locals
    a2, a3 = c.actions[1], c.actions[2]
    assert a2.params[0].name == "port" and a3.params[0].name == "port"
    assert a3.params[1].name != "tmp" and a3.params[1].annotations[0].args == ("tmp",)
    body_ref = a3.body.stmts[0].rhs.right  # type: ignore[attr-defined]
    assert body_ref.name == a3.params[1].name and body_ref.original_name == "tmp"


def test_args_in_parameter_order_with_directions_and_defaults(p4: P4) -> None:
    p = p4(decls="extern void ext_fn(in bit<8> a, out bit<8> b, inout bit<16> c, bit<8> d = 8w9);",
           apply="ext_fn(c = meta.m16, b = meta.m8, a = 1); hash(meta.m16, HashAlgorithm.crc16, 16w0, {hdr.h.a}, 32w8);")
    call = p.controls["I"].apply.stmts[0].call  # type: ignore[attr-defined]
    assert [a.direction for a in call.args] == ["in", "out", "inout", ""]
    assert [getattr(a.expr, "member", getattr(a.expr, "value", None)) for a in call.args] == [1, "m8", "m16", 9]
    h = p.controls["I"].apply.stmts[1].call  # type: ignore[attr-defined]
    assert [a.direction for a in h.args] == ["out", "in", "in", "in", "in"]


def test_dont_care_out_argument(p4: P4) -> None:
    p = p4(locals_="register<bit<8>>(4) r;", apply="r.read(_, 0);")
    call = p.controls["I"].apply.stmts[0].call  # type: ignore[attr-defined]
    assert isinstance(call.args[0].expr, ir.DontCare) and call.args[0].expr.type == ir.BitT(8)


def test_params_keep_names_and_readonly_in_params(p4: P4) -> None:
    p = p4()
    d = p.controls["D"]
    assert [(q.name, q.direction) for q in d.params] == [("pkt", ""), ("hdr", "in")]
    assert p.parsers["P"].params[0].type == ir.ExternT("packet_in")


def test_readonly_parameter_is_per_action(p4: P4) -> None:
    p = p4(decls="action ga(inout bit<8> v) { v = 2; }",
           locals_="action a1(bit<8> v) { meta.m8 = v; }\n    action a2(inout bit<8> v) { v = 1; }",
           apply="a2(meta.m8);")
    a2 = p.controls["I"].actions[1]
    assert a2.params[0].name == "v" and isinstance(a2.body.stmts[0], ir.Assign)

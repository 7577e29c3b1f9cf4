"""Grammar coverage: one small program per language feature."""

from __future__ import annotations

from collections.abc import Callable

from softswitch import ir
from softswitch.frontend import load_program

P4 = Callable[..., ir.Program]


def _ingress(p: ir.Program) -> ir.ControlDecl:
    return p.controls["I"]


def test_typedef_type_const_enums_error_match_kind(p4: P4) -> None:
    p = p4(decls="""
typedef bit<12> vlan_t;
type bit<32> ip_t;
const vlan_t MAXV = 12w4095;
enum Color { RED, GREEN }
enum bit<8> Proto { TCP = 6, UDP = 17, }
error { MyError }
match_kind { my_kind }
const bool DBG = true;
const int<8> NEG = -3;
const bit<8> SHIFTED = 1 << 3;
""")
    assert p.types["vlan_t"] == ir.BitT(12) and p.types["ip_t"] == ir.BitT(32)
    assert p.constants["MAXV"] == ir.Const(p.constants["MAXV"].pos, ir.BitT(12), 4095)
    assert p.types["Color"] == ir.EnumT("Color", ("RED", "GREEN"))
    assert p.types["Proto"] == ir.SerEnumT("Proto", ir.BitT(8), (("TCP", 6), ("UDP", 17)))
    assert p.errors[:7] == ("NoError", "PacketTooShort", "NoMatch", "StackOutOfBounds", "HeaderTooShort",
                            "ParserTimeout", "ParserInvalidArgument")
    assert p.errors[-1] == "MyError"
    assert p.match_kinds == ("exact", "ternary", "lpm", "range", "optional", "selector", "my_kind")
    assert p.constants["DBG"].value is True  # type: ignore[union-attr]
    assert p.constants["NEG"].value == -3 and p.constants["NEG"].type == ir.IntT(8)  # type: ignore[union-attr]
    assert p.constants["SHIFTED"].value == 8  # type: ignore[union-attr]


def test_header_union_stack_tuple_varbit_bool(p4: P4) -> None:
    p = p4(decls="""
header opt_t { bit<8> len; varbit<320> data; }
struct s_t { tuple<bit<8>, bool> t; u_t u; opt_t o; h_t[2] hs; }
""")
    s = p.types["s_t"]
    assert isinstance(s, ir.StructT)
    assert s.field_type("t") == ir.TupleT((ir.BitT(8), ir.BoolT()))
    assert isinstance(s.field_type("u"), ir.HeaderUnionT)
    assert s.field_type("hs") == ir.StackT(p.types["h_t"], 2)
    assert p.types["opt_t"].field_type("data") == ir.VarbitT(320)  # type: ignore[union-attr]


def test_annotations_keep_raw_body(p4: P4) -> None:
    p = p4(decls="""
@controller_header("packet_in")
header pin_t { @id(1) bit<9> ingress_port; @brief("a \\"quoted\\" thing") bit<7> pad; }
""", locals_="""
    @name("fwd.set_port") @hidden
    action set_port(@id(7) bit<9> port) { sm.egress_spec = port; }
    @name(".my_table") @some_pragma(1, "two", x + y)
    table t { key = { hdr.h.a: exact @name("a_key"); } actions = { @tableonly set_port; @defaultonly NoAction; } }
""", apply="t.apply();")
    pin = p.types["pin_t"]
    assert pin.annotations[0] == ir.Annotation("controller_header", '"packet_in"', ("packet_in",),  # type: ignore[union-attr]
                                               pin.annotations[0].pos)  # type: ignore[union-attr]
    act = _ingress(p).actions[0]
    assert [(a.name, a.args) for a in act.annotations] == [("name", ("fwd.set_port",)), ("hidden", ())]
    assert act.params[0].annotations[0].args == (7,)
    t = _ingress(p).tables[0]
    assert t.annotations[1].name == "some_pragma" and t.annotations[1].body == '1, "two", x + y'
    assert t.annotations[1].args == ()  # not all literals
    assert [a.annotations[0].name for a in t.actions] == ["tableonly", "defaultonly"]
    assert t.keys[0].annotations[0].args == ("a_key",)


def test_extern_declarations_generic_methods(p4: P4) -> None:
    p = p4(decls="""
extern Thing<T> {
    Thing(bit<32> size, @optional bool flag);
    T get(in bit<32> index);
    void put<V>(in V v, in T t);
    abstract T compute(in T x);
}
extern bit<16> my_fn<A>(in A a, in bit<8> b = 8w1);
""", locals_="Thing<bit<16>>(32w10) th;",
        apply="meta.m16 = th.get(3); th.put(meta.m8, 16w7); meta.m16 = my_fn(meta.m32);")
    ext = p.externs["Thing"]
    assert ext.type_params == ("T",) and len(ext.constructors) == 1
    assert [m.name for m in ext.methods] == ["get", "put", "compute"]
    assert ext.methods[1].type_params == ("V",)
    assert ext.methods[0].return_type == ir.TypeVarT("T")
    s0, s1, s2 = _ingress(p).apply.stmts
    get = s0.rhs  # type: ignore[attr-defined]
    assert isinstance(get, ir.ExternMethodCall) and get.type == ir.BitT(16)
    assert get.args[0].expr == ir.Const(get.args[0].expr.pos, ir.BitT(32), 3)
    put = s1.call  # type: ignore[attr-defined]
    assert put.type_args == (ir.BitT(8),) and put.args[1].expr.type == ir.BitT(16)
    fn = s2.rhs  # type: ignore[attr-defined]
    assert isinstance(fn, ir.ExternFunctionCall) and len(fn.args) == 2
    assert fn.args[1].expr == ir.Const(fn.args[1].expr.pos, ir.BitT(8), 1)  # default filled in
    assert fn.type_args == (ir.BitT(32),)


def test_parser_select_forms(p4: P4) -> None:
    p = p4(states="""
    bit<8> pv;
    counter(8, CounterType.packets) pc;
    state start {
        pkt.extract(hdr.h);
        bit<16> tmp = hdr.h.b;
        transition select(hdr.h.a, tmp) {
            (1, 2): s1;
            (0x10 &&& 0xF0, _): s2;
            (3..5, default): accept;
            (8w9, 0x00_FF): reject;
            default: s1;
        }
    }
    state s1 { pkt.advance(32); transition s2; }
    state s2 {
        pv = pkt.lookahead<bit<8>>();
        transition select(pv) { 0: accept; }
    }
    state s3 { }
""")
    pr = p.parsers["P"]
    assert [s.name for s in pr.states] == ["start", "s1", "s2", "s3"]
    assert [type(x).__name__ for x in pr.locals] == ["VarDecl", "Instance"]
    sel = pr.states[0].transition
    assert isinstance(sel, ir.Select)
    assert [c.keysets for c in sel.cases] == [
        (ir.KsExact(1), ir.KsExact(2)),
        (ir.KsMask(0x10, 0xF0), ir.KsDefault()),
        (ir.KsRange(3, 5), ir.KsDefault()),
        (ir.KsExact(9), ir.KsExact(255)),
        (ir.KsDefault(), ir.KsDefault()),
    ]
    assert [c.state for c in sel.cases] == ["s1", "s2", "accept", "reject", "s1"]
    assert pr.states[1].transition == ir.Goto("s2", pr.states[1].transition.pos)  # type: ignore[union-attr]
    assert isinstance(pr.states[3].transition, ir.Goto) and pr.states[3].transition.state == "reject"
    adv = pr.states[1].stmts[0].call  # type: ignore[attr-defined]
    assert adv.method == "advance" and adv.args[0].expr.type == ir.BitT(32)


def test_control_locals_and_statements(p4: P4) -> None:
    p = p4(locals_="""
    bit<8> x = 1;
    const bit<8> K = 5;
    action a(in bit<8> v, bit<8> cp) { meta.m8 = v + cp; }
    action b() { exit; }
""", apply="""
    bit<8> y;
    ;
    {
        y = x |+| K;
        y = y |-| 8w2;
    }
    if (meta.flag) { a(y, 3); } else if (!meta.flag) { b(); } else { return; }
    switch (meta.m8) {
        1:
        2: { y = 0; }
        K: { y = 1; }
        default: { }
    }
    meta.m16 = hdr.h.a ++ y;
    meta.m8 = meta.flag ? x : y;
    meta.m32 = (bit<32>)hdr.h.b << 2 >> 1;
    meta.s8 = -meta.s8;
    meta.m8 = ~meta.m8 & 0x0f ^ 3 | 1;
    meta.flag = meta.m8 <= 3 || meta.m8 >= 9 && meta.m8 != 4;
    hdr.h.c[7:0] = meta.m8;
""")
    c = _ingress(p)
    assert [type(s).__name__ for s in c.apply.stmts] == [
        "VarDecl", "Empty", "Block", "If", "Switch", "Assign", "Assign", "Assign", "Assign", "Assign", "Assign",
        "Assign"]
    sw = c.apply.stmts[4]
    assert isinstance(sw, ir.Switch)
    assert [c_.body is None for c_ in sw.cases] == [True, False, False, False]
    assert sw.cases[2].labels[0] == ir.Const(sw.cases[2].labels[0].pos, ir.BitT(8), 5)  # type: ignore[union-attr]
    assert sw.cases[3].labels == ("default",)
    act_a = c.actions[0]
    assert [(q.name, q.direction) for q in act_a.params] == [("v", "in"), ("cp", "")]
    call = c.apply.stmts[3].then.stmts[0].call  # type: ignore[attr-defined]
    assert isinstance(call, ir.ActionCall) and [a.direction for a in call.args] == ["in", ""]
    assert call.args[1].expr.type == ir.BitT(8)
    concat = c.apply.stmts[5].rhs  # type: ignore[attr-defined]
    assert concat.op == "++" and concat.type == ir.BitT(16)
    shift = c.apply.stmts[7].rhs  # type: ignore[attr-defined]
    assert shift.op == ">>" and shift.left.op == "<<" and isinstance(shift.left.left, ir.Cast)
    # precedence: ((~m8 & 0x0f) ^ 3) | 1
    bits = c.apply.stmts[9].rhs  # type: ignore[attr-defined]
    assert bits.op == "|" and bits.left.op == "^" and bits.left.left.op == "&"
    logic = c.apply.stmts[10].rhs  # type: ignore[attr-defined]
    assert logic.op == "||" and logic.right.op == "&&"
    sl = c.apply.stmts[11].lhs  # type: ignore[attr-defined]
    assert isinstance(sl, ir.Slice) and (sl.hi, sl.lo) == (7, 0)


def test_table_properties(p4: P4) -> None:
    p = p4(locals_="""
    direct_counter(CounterType.packets) dc;
    direct_meter<bit<2>>(MeterType.bytes) dm;
    action_selector(HashAlgorithm.crc16, 32w64, 32w14) sel;
    action set(bit<8> v) { meta.m8 = v; dm.read(meta.m8[1:0]); }
    table t {
        key = {
            hdr.h.a: ternary;
            hdr.h.b: range @name("bee");
            hdr.h.c: optional;
            hdr.h.isValid(): exact;
            meta.m32: selector;
        }
        actions = { set; NoAction; }
        const default_action = set(7);
        entries = {
            (0x1 &&& 0xf, 1..9, 5, true, _): set(1);
            priority = 7: (_, _, _, false, 3): NoAction();
            (default, default, default, default, default): set(2) @my_entry;
        }
        size = 64;
        support_timeout = true;
        counters = dc;
        meters = dm;
        psa_idle_timeout = 1;
        max_group_size = 8;
    }
""", apply="if (t.apply().miss) { meta.m8 = 2; }")
    t = _ingress(p).tables[0]
    assert [k.match_kind for k in t.keys] == ["ternary", "range", "optional", "exact", "selector"]
    assert t.keys[3].source_text == "hdr.h.isValid()"
    assert t.default_action.is_const and t.default_action.args == (7,)
    assert not t.entries_const
    e0, e1, e2 = t.entries or ()
    assert e0.keysets == (ir.KsMask(1, 0xF), ir.KsRange(1, 9), ir.KsExact(5), ir.KsExact(True), ir.KsDefault())
    assert e1.priority == 7 and e1.action == "NoAction" and e1.top_level
    assert e2.annotations[0].name == "my_entry" and e2.keysets == (ir.KsDefault(),) * 5
    assert (t.size, t.support_timeout, t.direct_counter, t.direct_meter, t.implementation) == (
        64, True, "dc", "dm", None)
    assert [n for n, _ in t.other_properties] == ["psa_idle_timeout", "max_group_size"]


def test_functions_and_top_level_actions(p4: P4) -> None:
    p = p4(decls="""
bit<8> max8(in bit<8> a, in bit<8> b) {
    if (a > b) { return a; }
    return b;
}
action global_drop(inout standard_metadata_t s) { mark_to_drop(s); }
""", apply="meta.m8 = max8(meta.m8, 3); global_drop(sm);")
    f = p.functions["max8"]
    assert f.return_type == ir.BitT(8) and [q.direction for q in f.params] == ["in", "in"]
    assert "global_drop" in p.actions
    s0, s1 = _ingress(p).apply.stmts
    assert isinstance(s0.rhs, ir.FunctionCall)  # type: ignore[attr-defined]
    assert s0.rhs.args[1].expr == ir.Const(s0.rhs.args[1].expr.pos, ir.BitT(8), 3)  # type: ignore[attr-defined]
    assert isinstance(s1.call, ir.ActionCall) and s1.call.top_level  # type: ignore[attr-defined]


def test_literals(p4: P4) -> None:
    p = p4(apply="""
    meta.m32 = 32w0xDEAD_BEEF;
    meta.m8 = 8w0b1010_1010;
    meta.m8 = 0o17;
    meta.s8 = 8s3;
    meta.s8 = -8s3;
    meta.m16 = 16w1_000;
    meta.m8 = 0d12;
    log_msg("value {}", {meta.m8});
    log_msg("plain");
""")
    vals = [s.rhs.value for s in _ingress(p).apply.stmts[:7]]  # type: ignore[attr-defined]
    assert vals == [0xDEADBEEF, 0xAA, 0o17, 3, -3, 1000, 12]
    lm = _ingress(p).apply.stmts[7].call  # type: ignore[attr-defined]
    assert isinstance(lm.args[0].expr, ir.StrConst) and lm.args[0].expr.value == "value {}"
    assert lm.type_args == (ir.TupleT((ir.BitT(8),)),)
    assert len(_ingress(p).apply.stmts[8].call.args) == 1  # type: ignore[attr-defined]


def test_struct_and_list_expressions(p4: P4) -> None:
    p = p4(decls="struct pair_t { bit<8> x; bit<16> y; }", apply="""
    pair_t pr = { 1, 2 };
    pr = { y = 3, x = 4 };
    hdr.h = { 1, 2, 3 };
    digest<pair_t>(1, pr);
    digest(1, { meta.m8, meta.m16 });
""")
    st = _ingress(p).apply.stmts
    init = st[0].init  # type: ignore[attr-defined]
    assert isinstance(init, ir.StructExpr) and init.fields[1][1] == ir.Const(init.fields[1][1].pos, ir.BitT(16), 2)
    kv = st[1].rhs  # type: ignore[attr-defined]
    assert [n for n, _ in kv.fields] == ["x", "y"] and kv.fields[0][1].value == 4
    assert isinstance(st[2].rhs, ir.StructExpr) and st[2].rhs.type.name == "h_t"  # type: ignore[attr-defined]
    d = st[4].call  # type: ignore[attr-defined]
    assert d.type_args == (ir.TupleT((ir.BitT(8), ir.BitT(16))),)


def test_sub_parser_and_control_instances() -> None:
    src = """#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; }
struct H { h_t h; }
struct M { bit<8> x; }
parser Sub(packet_in b, out h_t h) { state start { b.extract(h); transition accept; } }
parser P(packet_in b, out H hdr, inout M m, inout standard_metadata_t sm) {
    Sub() sub;
    state start { sub.apply(b, hdr.h); transition accept; }
}
control Inner(inout M m)(bit<8> inc) { apply { m.x = m.x + inc; } }
control VC(inout H hdr, inout M m) { apply { } }
control I(inout H hdr, inout M m, inout standard_metadata_t sm) {
    Inner(8w3) inner;
    apply { inner.apply(m); }
}
control E(inout H hdr, inout M m, inout standard_metadata_t sm) { apply { } }
control CC(inout H hdr, inout M m) { apply { } }
control D(packet_out b, in H hdr) { apply { b.emit(hdr); } }
V1Switch(P(), VC(), I(), E(), CC(), D()) main;
"""
    p = load_program(src)
    sub = p.parsers["P"].locals[0]
    assert isinstance(sub, ir.Instance) and sub.type == ir.ParserT("Sub")
    call = p.parsers["P"].states[0].stmts[0].call  # type: ignore[attr-defined]
    assert isinstance(call, ir.SubApply) and [a.direction for a in call.args] == ["", "out"]
    inner = p.controls["I"].locals[0]
    assert isinstance(inner, ir.Instance) and inner.ctor_args[0].value == 3  # type: ignore[attr-defined]
    assert p.controls["Inner"].ctor_params[0].name == "inc"


def test_field_annotations_are_kept(p4: P4) -> None:
    p = p4(decls="struct fl_t { @field_list(1, 2) bit<8> a; bit<8> b; @field_list(2) bool c; }")
    s = p.types["fl_t"]
    assert isinstance(s, ir.StructT)
    assert [[(a.name, a.args) for a in fa] for fa in s.field_annotations] == [
        [("field_list", (1, 2))], [], [("field_list", (2,))]]
    std = p.types["standard_metadata_t"]
    assert isinstance(std, ir.StructT) and std.field_annotations[5][0].args == ("queueing_metadata.enq_timestamp",)


def test_explicit_type_arguments_everywhere(p4text: Callable[..., str]) -> None:
    src = p4text(
        states="state start { pkt.extract<h_t>(hdr.h); transition accept; }",
        locals_="action dbg() { clone_preserving_field_list(CloneType.I2E, (bit<32>)100, 8w0); }\n"
                "table t { key = { hdr.h.a: exact; } actions = { dbg(); NoAction(); } }",
        apply="t.apply(); update_checksum_with_payload<tuple<bit<8>, bit<16>>, bit<16>>("
              "meta.m8 == 1w1 ++ 7w1, { hdr.h.a, hdr.h.b }, hdr.h.b, HashAlgorithm.csum16);"
              "random<bit<8>>(meta.m8, 0, 255);")
    src = src.replace("V1Switch(P()", "V1Switch<headers_t, meta_t>(P()")
    p = load_program(src)
    assert p.main is not None and p.main.args[0] == "P"
    ext = p.parsers["P"].states[0].stmts[0].call  # type: ignore[attr-defined]
    assert ext.type_args == (p.types["h_t"],)
    upd = p.controls["I"].apply.stmts[1].call  # type: ignore[attr-defined]
    assert upd.type_args == (ir.TupleT((ir.BitT(8), ir.BitT(16))), ir.BitT(16))
    cond = upd.args[0].expr
    assert cond.op == "==" and cond.right == ir.Const(cond.right.pos, ir.BitT(8), 0x81)  # ++ binds tighter
    rnd = p.controls["I"].apply.stmts[2].call  # type: ignore[attr-defined]
    assert rnd.type_args == (ir.BitT(8),) and rnd.args[2].expr.value == 255


def test_soft_keywords_as_names(p4: P4) -> None:
    p = p4(decls="header kw_t { bit<8> type; bit<8> key; bit<8> actions; bit<8> entries; bit<8> priority;"
                 " bit<8> state; bit<8> apply; bit<8> size; }\nstruct kws_t { kw_t kw; }",
           locals_="kws_t k; action set(bit<8> type, bit<8> key) { k.kw.type = type; k.kw.key = key; }",
           apply="k.kw.type = 1; k.kw.key = k.kw.actions + k.kw.entries + k.kw.priority + k.kw.state"
                 " + k.kw.apply + k.kw.size; bit<8> type = 3; bit<8> key = type; sm.priority = 1;")
    kw = p.types["kw_t"]
    assert [n for n, _ in kw.fields] == ["type", "key", "actions", "entries", "priority", "state", "apply",  # type: ignore[union-attr]
                                         "size"]
    stmts = p.controls["I"].apply.stmts
    assert [type(s).__name__ for s in stmts] == ["Assign", "Assign", "VarDecl", "VarDecl", "Assign"]
    assert stmts[3].init.original_name == "type"  # type: ignore[attr-defined]
    assert [q.name for q in p.controls["I"].actions[0].params] == ["type", "key"]


def test_type_parameter_names_are_scoped_to_their_declaration(p4text: Callable[..., str]) -> None:
    # v1model.p4 declares register<T, I>, direct_meter<T>, counter<I>, ...; a program's
    # own types of those names must not change how v1model.p4 parses (p4c scopes them).
    load_program(p4text(decls="struct T { bit<8> x; }", locals_="T t;", apply="t.x = 1;"), "t.p4")
    load_program("struct T { bit<8> x; }\n" + p4text(), "t.p4")  # declared before v1model.p4
    # with V1MODEL_VERSION >= 20200408, counter<I> / meter<I> / register<T, I> meet control I
    p = load_program("#define V1MODEL_VERSION 20200408\n" + p4text(
        locals_="counter<bit<4>>(16, CounterType.packets) c; register<bit<8>, bit<4>>(16) r;",
        apply="c.count(4w1); r.write(4w2, meta.m8);"), "t.p4")
    assert "I" in p.controls
    # a generic function's type parameter is a type inside the function (a local of type T)
    p = load_program(p4text(decls="struct O { bit<8> x; }\nT same<T>(in T v) { T w = v; return w; }",
                            apply="meta.m8 = same(meta.m8);"), "t.p4")
    assert "same" in p.functions

"""Controls: actions and copy-in/copy-out, exit/return, switch, table apply, externs, functions."""

from __future__ import annotations

import pytest
from irb import (
    BOOL,
    Ctx,
    FakeArch,
    P,
    assign,
    binop,
    bit,
    block,
    builtin,
    c,
    call,
    compile_one,
    control,
    mem,
    program,
    var,
)

from softswitch import ir
from softswitch.interp.tables import Exact, TableEntry, Ternary

H = ir.HeaderT("h_t", (("a", bit(8)), ("b", bit(8))))
M = ir.StructT("m_t", (("x", bit(8)), ("y", bit(8)), ("flag", BOOL), ("h", H)))
m = var("m", M)
MX, MY = mem(m, "x"), mem(m, "y")
PARAMS = [("m", "inout", M)]


def run(ctl: ir.ControlDecl, init: dict | None = None, arch: FakeArch | None = None, **prog_kw):
    cp = compile_one(program(controls={ctl.name: ctl}, **prog_kw), arch)
    val = cp.new_value(M)
    val.fields.update(init or {})
    ctx = Ctx()
    cp.run_control(ctl.name, [val], ctx)
    return val, cp, ctx


def act(name: str, params: list[tuple[str, str, ir.Type]], *body: ir.Stmt, **kw) -> ir.ActionDecl:
    return ir.ActionDecl(name, tuple(ir.Param(n, d, t) for n, d, t in params), block(*body),
                         original_name=name, **kw)


def acall(name: str, *args: tuple[str, ir.Expr], top: bool = False) -> ir.CallStmt:
    return call(ir.ActionCall(P, ir.VoidT(), name, tuple(ir.Arg(d, e) for d, e in args), top))


def test_action_copy_in_copy_out() -> None:
    # swap(inout a, inout b) with a write through param then out param defaults to 0
    a = act("swap", [("p", "inout", bit(8)), ("q", "inout", bit(8)), ("o", "out", bit(8))],
            ir.VarDecl(P, "tmp", bit(8), var("p", bit(8))),
            assign(var("p", bit(8)), var("q", bit(8))),
            assign(var("q", bit(8)), var("tmp", bit(8))),
            assign(mem(m, "flag"), binop("==", var("o", bit(8)), c(0, bit(8)))))
    ctl = control("C", PARAMS, [acall("swap", ("inout", MX), ("inout", MY), ("out", mem(mem(m, "h"), "a")))],
                  actions=(a,))
    val, _, _ = run(ctl, {"x": 1, "y": 2})
    assert (val.fields["x"], val.fields["y"], val.fields["flag"]) == (2, 1, True)


def test_in_param_is_a_copy() -> None:
    a = act("f", [("hh", "in", H)], assign(mem(var("hh", H), "a"), c(9, bit(8))),
            assign(MX, mem(var("hh", H), "a")))
    ctl = control("C", PARAMS, [acall("f", ("in", mem(m, "h")))], actions=(a,))
    val, _, _ = run(ctl)
    assert val.fields["x"] == 9 and val.fields["h"].fields["a"] == 0


def test_exit_stops_everything_but_copies_out() -> None:
    a = act("a1", [("p", "inout", bit(8))], assign(var("p", bit(8)), c(5, bit(8))), ir.Exit(P),
            assign(var("p", bit(8)), c(6, bit(8))))
    ctl = control("C", PARAMS, [acall("a1", ("inout", MX)), assign(MY, c(1, bit(8)))], actions=(a,))
    val, _, _ = run(ctl)
    assert val.fields["x"] == 5 and val.fields["y"] == 0


def test_return_ends_action_and_apply() -> None:
    a = act("a1", [], assign(MX, c(1, bit(8))), ir.Return(P), assign(MX, c(2, bit(8))))
    ctl = control("C", PARAMS, [acall("a1"), assign(MY, c(3, bit(8))),
                                ir.If(P, binop("==", MY, c(3, bit(8))), ir.Return(P)),
                                assign(MY, c(4, bit(8)))], actions=(a,))
    val, _, _ = run(ctl)
    assert (val.fields["x"], val.fields["y"]) == (1, 3)


def test_headers_validity_and_setvalid_keeps_fields() -> None:
    hh = mem(m, "h")
    ctl = control("C", PARAMS, [
        assign(mem(m, "flag"), builtin(hh, "isValid")),
        assign(mem(hh, "a"), c(7, bit(8))),
        call(builtin(hh, "setValid")),
        ir.If(P, builtin(hh, "isValid"), assign(MX, mem(hh, "a"))),
    ])
    val, _, _ = run(ctl)
    assert val.fields["flag"] is False and val.fields["x"] == 7 and val.fields["h"].valid


def test_uninitialised_local_header_is_invalid_each_run() -> None:
    ctl = control("C", PARAMS, [
        ir.VarDecl(P, "lh", H),
        ir.If(P, builtin(var("lh", H), "isValid"), assign(MX, c(1, bit(8)))),
        call(builtin(var("lh", H), "setValid")),
    ])
    cp = compile_one(program(controls={"C": ctl}))
    for _ in range(2):
        val = cp.new_value(M)
        cp.run_control("C", [val], Ctx())
        assert val.fields["x"] == 0


def test_switch_on_values_with_fallthrough_and_default() -> None:
    sw = ir.Switch(P, MX, (
        ir.SwitchCase((c(1, bit(8)),), None),
        ir.SwitchCase((c(2, bit(8)),), block(assign(MY, c(12, bit(8))))),
        ir.SwitchCase((c(3, bit(8)),), block(assign(MY, c(3, bit(8))))),
        ir.SwitchCase(("default",), block(assign(MY, c(99, bit(8))))),
    ))
    ctl = control("C", PARAMS, [sw])
    cp = compile_one(program(controls={"C": ctl}))
    got = {}
    for x in (1, 2, 3, 4):
        val = cp.new_value(M)
        val.fields["x"] = x
        cp.run_control("C", [val], Ctx())
        got[x] = val.fields["y"]
    assert got == {1: 12, 2: 12, 3: 3, 4: 99}


def _fwd_table(kind: str = "exact", counters: bool = False, timeout: bool = False,
               entries: tuple[ir.ConstEntry, ...] | None = None) -> tuple[ir.TableDecl, tuple[ir.ActionDecl, ...]]:
    setx = act("set_y", [("v", "", bit(8))], assign(MY, var("v", bit(8))))
    drop = act("drop", [], assign(mem(m, "flag"), c(True, BOOL)))
    t = ir.TableDecl("t", (ir.TableKey(MX, kind, "m.x"),),
                     (ir.ActionRef("set_y"), ir.ActionRef("drop"), ir.ActionRef("NoAction", True)),
                     ir.DefaultAction("drop", False, (), False), entries=entries,
                     support_timeout=timeout, direct_counter="cnt" if counters else None,
                     original_name="t")
    return t, (setx, drop)


def test_table_hit_miss_action_data_counters_timeout_and_switch() -> None:
    t, acts = _fwd_table(counters=True, timeout=True)
    apply = ir.TableApply(P, ir.TableResultT("t"), "t")
    sw = ir.Switch(P, ir.Member(P, ir.EnumT("action_list", ()), apply, "action_run"), (
        ir.SwitchCase(("set_y",), block(assign(mem(mem(m, "h"), "b"), c(1, bit(8))))),
        ir.SwitchCase(("drop",), block(assign(mem(mem(m, "h"), "b"), c(2, bit(8))))),
    ))
    cnt = ir.Instance("cnt", ir.ExternT("direct_counter"), (), original_name="cnt")
    ctl = control("Ing", PARAMS, [sw], actions=acts, tables=(t,), locals=(cnt,))
    arch = FakeArch()
    cp = compile_one(program(controls={"Ing": ctl}), arch)
    assert set(cp.tables) == {"Ing.t"}
    assert cp.table_of_direct_counter == {"Ing.cnt": "Ing.t"}
    assert "Ing.cnt" in cp.instances and arch.instantiated[0][0] == "Ing.cnt"
    assert {"Ing.set_y", "Ing.drop", "NoAction"} <= set(cp.actions)
    table = cp.tables["Ing.t"]
    assert table.action_params["Ing.set_y"] == (8,)
    e = TableEntry((Exact(5),), "Ing.set_y", (42,))
    table.insert(e)
    val = cp.new_value(M)
    val.fields["x"] = 5
    ctx = Ctx(packet_length=100, now_ns=123456789)
    cp.run_control("Ing", [val], ctx)
    assert val.fields["y"] == 42 and val.fields["h"].fields["b"] == 1
    assert (e.packets, e.bytes, e.last_hit_ns) == (1, 100, 123456789)
    val = cp.new_value(M)
    val.fields["x"] = 6
    cp.run_control("Ing", [val], ctx)
    assert val.fields["flag"] is True and val.fields["h"].fields["b"] == 2
    assert table.default_entry.packets == 0 and e.packets == 1  # misses are not counted (BMv2)


def test_hit_miss_members_and_const_entries_priorities() -> None:
    entries = (
        ir.ConstEntry((ir.KsMask(0x10, 0xF0),), "set_y", False, (1,)),
        ir.ConstEntry((ir.KsDefault(),), "set_y", False, (2,)),
    )
    t, acts = _fwd_table("ternary", entries=entries)
    hit = ir.Member(P, BOOL, ir.TableApply(P, ir.TableResultT("t"), "t"), "hit")
    ctl = control("C", PARAMS, [ir.If(P, hit, assign(mem(m, "flag"), c(True, BOOL)))],
                  actions=acts, tables=(t,))
    cp = compile_one(program(controls={"C": ctl}))
    table = cp.tables["C.t"]
    ents = list(table.entries())
    assert [e.priority for e in ents] == [2, 1] and all(e.is_const for e in ents)
    assert ents[0].matches == (Ternary(0x10, 0xF0),) and ents[1].matches == (None,)
    for x, y in ((0x15, 1), (0x25, 2)):
        val = cp.new_value(M)
        val.fields["x"] = x
        cp.run_control("C", [val], Ctx())
        assert val.fields["y"] == y and val.fields["flag"] is True


def test_extern_calls_with_out_and_inout_cells() -> None:
    reg = ir.Instance("r", ir.ExternT("register", (bit(8),)), (), original_name="r")
    rref = ir.InstanceRef(P, ir.ExternT("register", (bit(8),)), "r")
    write = ir.ExternMethodCall(P, ir.VoidT(), rref, "register", "write",
                                (ir.Arg("in", c(3, bit(32))), ir.Arg("in", c(77, bit(8)))))
    read = ir.ExternMethodCall(P, ir.VoidT(), rref, "register", "read",
                               (ir.Arg("out", MX), ir.Arg("in", c(3, bit(32)))))
    inc = ir.ExternFunctionCall(P, bit(8), "inc", (ir.Arg("inout", MY),))
    ctl = control("C", PARAMS, [call(write), call(read), assign(mem(mem(m, "h"), "a"), inc),
                                call(ir.ExternFunctionCall(P, ir.VoidT(), "log", (ir.Arg("in", MX),)))],
                  locals=(reg,))
    val, cp, ctx = run(ctl, {"y": 10})
    assert val.fields["x"] == 77 and val.fields["y"] == 11 and val.fields["h"].fields["a"] == 7
    assert ctx.log == [(77,)]
    assert "C.r" in cp.instances


def test_functions_return_values_and_out_params() -> None:
    fd = ir.FunctionDecl("addo", bit(8), (ir.Param("a", "in", bit(8)), ir.Param("o", "out", bit(8))),
                         block(assign(var("o", bit(8)), c(1, bit(8))),
                               ir.Return(P, binop("+", var("a", bit(8)), c(1, bit(8))))))
    fc = ir.FunctionCall(P, bit(8), "addo", (ir.Arg("in", MX), ir.Arg("out", MY)))
    ctl = control("C", PARAMS, [assign(MX, fc)])
    val, _, _ = run(ctl, {"x": 255}, functions={"addo": fd})
    assert val.fields["x"] == 0 and val.fields["y"] == 1


def test_sub_control_instances_get_nested_names_and_exit_propagates() -> None:
    t, acts = _fwd_table()
    inner = control("Inner", PARAMS, [call(ir.TableApply(P, ir.TableResultT("t"), "t")), ir.Exit(P)],
                    actions=acts, tables=(t,))
    inst = ir.Instance("inner_i", ir.ControlT("Inner"), (), original_name="inner_i")
    sub = call(ir.SubApply(P, ir.VoidT(), "inner_i", (ir.Arg("inout", m),)))
    outer = control("Outer", PARAMS, [sub, assign(MX, c(99, bit(8)))], locals=(inst,))
    cp = compile_one(program(controls={"Outer": outer, "Inner": inner}))
    assert "Outer.inner_i.t" in cp.tables and "Outer.inner_i.set_y" in cp.actions
    # main-less program: both blocks compile; run Outer
    val = cp.new_value(M)
    cp.run_control("Outer", [val], Ctx())
    assert val.fields["flag"] is True and val.fields["x"] == 0


def test_top_level_action_and_name_annotation() -> None:
    top = act("set_x_top", [("v", "", bit(8))])
    ann = (ir.Annotation("name", '".renamed"', (".renamed",)),)
    t = ir.TableDecl("t", (ir.TableKey(MX, "exact", "m.x"),), (ir.ActionRef("NoAction", True),),
                     ir.DefaultAction("NoAction", True, (), True), annotations=ann, original_name="t")
    ctl = control("C", PARAMS, [call(ir.TableApply(P, ir.TableResultT("t"), "t"))], tables=(t,))
    _val, cp, _ = run(ctl, actions={"set_x_top": top})
    assert set(cp.tables) == {"renamed"} and cp.tables["renamed"].default_is_const


def test_unknown_variable_is_a_compile_failure_naming_it() -> None:
    from softswitch.interp import CompileFailure
    ctl = control("C", PARAMS, [assign(var("nope", bit(8)), c(1, bit(8)))])
    with pytest.raises(CompileFailure, match="nope"):
        compile_one(program(controls={"C": ctl}))


def test_whole_parameter_assignment_reaches_the_callers_object() -> None:
    other = ir.StructT("o_t", (("m2", M),))
    ctl = control("C", [("m", "inout", M), ("o", "inout", other)],
                  [assign(m, mem(var("o", other), "m2")), assign(MX, c(4, bit(8)))])
    cp = compile_one(program(controls={"C": ctl}))
    val, o = cp.new_value(M), cp.new_value(other)
    o.fields["m2"].fields["y"] = 9
    o.fields["m2"].fields["h"].valid = True
    cp.run_control("C", [val, o], Ctx())
    assert val.fields["y"] == 9 and val.fields["x"] == 4 and val.fields["h"].valid
    assert o.fields["m2"].fields["x"] == 0  # a copy was assigned, not an alias


def test_unknown_block_name_is_a_key_error_listing_the_blocks() -> None:
    cp = compile_one(program(controls={"C": control("C", PARAMS, [])}))
    with pytest.raises(KeyError, match="have C"):
        cp.run_control("Nope", [], Ctx())

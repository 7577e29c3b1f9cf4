"""Tiny helpers to build IR by hand for interpreter unit tests, and a fake architecture."""

from __future__ import annotations

from typing import Any

from softswitch import ir
from softswitch.interp import compile_program
from softswitch.interp.compiler import Compiled

P = ir.NOPOS
BOOL = ir.BoolT()


def bit(w: int) -> ir.BitT:
    return ir.BitT(w)


def sint(w: int) -> ir.IntT:
    return ir.IntT(w)


def c(v: int | bool, t: ir.Type) -> ir.Const:
    return ir.Const(P, t, v)


def var(name: str, t: ir.Type) -> ir.VarRef:
    return ir.VarRef(P, t, name)


def mem(e: ir.Expr, name: str) -> ir.Member:
    t = e.type
    if isinstance(t, (ir.HeaderT, ir.StructT)):
        return ir.Member(P, t.field_type(name), e, name)
    if isinstance(t, ir.HeaderUnionT):
        return ir.Member(P, dict(t.fields)[name], e, name)
    if isinstance(t, ir.StackT):
        ft: ir.Type = t.elem if name in ("next", "last") else bit(32)
        return ir.Member(P, ft, e, name)
    raise TypeError(t)


def binop(op: str, a: ir.Expr, b: ir.Expr, t: ir.Type | None = None) -> ir.Binary:
    if t is None:
        t = BOOL if op in ("==", "!=", "<", "<=", ">", ">=", "&&", "||") else a.type
    return ir.Binary(P, t, op, a, b)


def assign(lhs: ir.Expr, rhs: ir.Expr) -> ir.Assign:
    return ir.Assign(P, lhs, rhs)


def call(e: ir.Expr) -> ir.CallStmt:
    return ir.CallStmt(P, e)


def block(*stmts: ir.Stmt) -> ir.Block:
    return ir.Block(P, tuple(stmts))


def builtin(target: ir.Expr, method: str, *args: ir.Expr) -> ir.BuiltinMethodCall:
    t: ir.Type = BOOL if method == "isValid" else ir.VoidT()
    return ir.BuiltinMethodCall(P, t, target, method, tuple(ir.Arg("in", a) for a in args))


def program(*, parsers: dict[str, ir.ParserDecl] | None = None,
            controls: dict[str, ir.ControlDecl] | None = None,
            actions: dict[str, ir.ActionDecl] | None = None,
            functions: dict[str, ir.FunctionDecl] | None = None,
            instances: dict[str, ir.Instance] | None = None) -> ir.Program:
    acts = {"NoAction": ir.ActionDecl("NoAction", (), block(), original_name="NoAction")}
    acts.update(actions or {})
    return ir.Program(types={}, constants={}, errors=("NoError", "PacketTooShort", "NoMatch"),
                      match_kinds=("exact", "ternary", "lpm"), externs={}, extern_functions={},
                      functions=functions or {}, actions=acts, parsers=parsers or {},
                      controls=controls or {}, packages={}, instances=instances or {})


def control(name: str, params: list[tuple[str, str, ir.Type]], body: list[ir.Stmt], *,
            actions: tuple[ir.ActionDecl, ...] = (), tables: tuple[ir.TableDecl, ...] = (),
            locals: tuple[ir.VarDecl | ir.Instance, ...] = ()) -> ir.ControlDecl:
    return ir.ControlDecl(name, tuple(ir.Param(n, d, t) for n, d, t in params), (), locals,
                          actions, tables, block(*body))


class Ctx:
    def __init__(self, packet_length: int = 64, now_ns: int = 1000) -> None:
        self.packet_length = packet_length
        self.now_ns = now_ns
        self.log: list[Any] = []


class FakeArch:
    """Records instantiations; externs: ``counter.count(i)`` logs, ``reg.read(out v, i)``
    and ``reg.write(i, v)`` on a dict, function ``log(x)`` logs, ``inc(inout x)`` adds 1."""

    def __init__(self) -> None:
        self.instantiated: list[tuple[str, ir.Instance]] = []

    def instantiate(self, cp_name: str, inst: ir.Instance) -> object:
        self.instantiated.append((cp_name, inst))
        return {"name": cp_name, "cells": {}}

    def bind_method(self, obj: Any, call: ir.ExternMethodCall) -> Any:
        if call.method == "read":
            def read(ctx: Any, args: list[Any]) -> None:
                args[0].value = obj["cells"].get(args[1], 0)
            return read
        if call.method == "write":
            def write(ctx: Any, args: list[Any]) -> None:
                obj["cells"][args[0]] = args[1]
            return write
        if call.method == "count":
            def count(ctx: Any, args: list[Any]) -> None:
                ctx.log.append((obj["name"], *args))
            return count
        raise NotImplementedError(call.method)

    def bind_function(self, call: ir.ExternFunctionCall) -> Any:
        if call.name == "log":
            def log(ctx: Any, args: list[Any]) -> None:
                ctx.log.append(tuple(args))
            return log
        if call.name == "inc":
            def inc(ctx: Any, args: list[Any]) -> int:
                args[0].value += 1
                return 7
            return inc
        raise NotImplementedError(call.name)


class MiniV1:
    """Just enough of v1model for these tests: mark_to_drop, counters, no-op checksums."""

    def __init__(self) -> None:
        self.counts: list[tuple[str, int]] = []

    def instantiate(self, cp_name: str, inst: ir.Instance) -> object:
        return cp_name

    def bind_method(self, obj: Any, call: ir.ExternMethodCall) -> Any:
        if call.method == "count":
            return lambda ctx, args: self.counts.append((obj, args[0] if args else -1))
        return lambda ctx, args: None

    def bind_function(self, call: ir.ExternFunctionCall) -> Any:
        if call.name == "mark_to_drop":
            def drop(ctx: Any, args: list[Any]) -> None:
                args[0].value.fields["egress_spec"] = 511
            return drop
        return lambda ctx, args: None


def run_expr(e: ir.Expr, env: dict[str, tuple[ir.Type, Any]] | None = None) -> Any:
    """Evaluate expression ``e`` in a control whose inout params are ``env``'s variables."""
    env = env or {}
    names = list(env)
    params = [(n, "inout", t) for n, (t, _) in env.items()]
    out_t = e.type
    wrapper = ir.StructT("R", (("r", out_t),))
    params.append(("res", "inout", wrapper))
    ctl = control("C", params, [assign(mem(var("res", wrapper), "r"), e)])
    cp = compile_program(program(controls={"C": ctl}), FakeArch())
    from softswitch.interp.values import zero_value
    res = zero_value(wrapper)
    cp.run_control("C", [env[n][1] for n in names] + [res], Ctx())
    return res.fields["r"]


def compile_one(prog: ir.Program, arch: FakeArch | None = None) -> Compiled:
    return compile_program(prog, arch or FakeArch())

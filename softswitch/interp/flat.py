"""The flat code generator: a whole sequence of top-level blocks as straight-line code
inside one generated Python function.

compiler.py gives every block a frame (a list) and reaches every field through
``f[n].fields[...]`` chains, calls one ``def`` per action, table and state. Here an
architecture's driver (e.g. arch/fastpath.py) asks a :class:`FlatBuilder` for the
source lines of each top-level block applied to its own variables, and composes them
into one function:

* header fields, validity bits and varbit lengths, struct members (flattened) are
  Python locals (flatloc.py); a value object is built only where one must exist
  (extern arguments, handing the packet back to a generic path);
* sub-controls, actions and tables are inlined: a table builds its key tuple from
  locals, calls the same ``Table.lookup`` the generic path uses (exact tables: a dict
  ``get``), counts the hit and dispatches on the entry's action with the action's body
  inlined;
* parsers are inlined state by state (an acyclic state graph only) and read the frame
  directly (flatparse.py); the deparser packs valid headers into one int.

The generated code is a different *compilation* of the same IR with the same
semantics as compiler.py / codegen.py (tests compare the two). Anything not handled
raises :class:`FlatUnsupported` while generating, and the caller keeps the generic
path for the whole program. Not handled: header stacks, header unions, tuples as
variables, functions, sub-parsers, ``return`` in controls and actions, a table
applied inside a short-circuit or conditional operand, extern calls with out / inout
arguments inside expressions, parser loops, ``lookahead`` of a header.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any

from softswitch import ir
from softswitch.interp.codegen import FrameGen, _may_alias, collect_vardecls
from softswitch.interp.flatloc import BLoc, FlatUnsupported, HLoc, Loc, SLoc, zero_lit

if TYPE_CHECKING:
    from softswitch.interp.flatblocks import FlatBuilder

__all__ = ["FlatGen", "FlatUnsupported"]

_COMPOUND = (ir.HeaderT, ir.StructT, ir.HeaderUnionT, ir.StackT, ir.TupleT)
_CALLS = (ir.ExternMethodCall, ir.ExternFunctionCall, ir.FunctionCall, ir.TableApply, ir.ActionCall,
          ir.SubApply, ir.BuiltinMethodCall)


def _has_call(e: object) -> bool:
    """Whether expression ``e`` contains a call (isValid() included, to be safe)."""
    if isinstance(e, _CALLS):
        return not (isinstance(e, ir.BuiltinMethodCall) and e.method == "isValid")
    if isinstance(e, (list, tuple)):
        return any(_has_call(x) for x in e)
    if is_dataclass(e) and not isinstance(e, type):
        return any(_has_call(getattr(e, f.name)) for f in fields(e)
                   if isinstance(getattr(e, f.name), (ir.Expr, list, tuple)))
    return False


@dataclass
class _Blk:
    """One parser / control instance being inlined."""

    decl: ir.ParserDecl | ir.ControlDecl
    path: tuple[str, ...]
    scope: dict[str, Loc]
    instances: dict[str, object] = field(default_factory=dict)
    subs: dict[str, ir.Instance] = field(default_factory=dict)


class FlatGen(FrameGen):
    """Expressions and statements over locations (see module docstring)."""

    def __init__(self, fb: FlatBuilder, blk: _Blk) -> None:
        super().__init__(fb.pe, {}, None, f"{'parser' if isinstance(blk.decl, ir.ParserDecl) else 'control'} "
                         f"{'.'.join(blk.path)}")
        self.fb = fb
        self.names = fb.names
        self.blk = blk
        self.scope = blk.scope
        self.applied: dict[int, tuple[str, str]] = {}

    def fail(self, msg: str, pos: ir.Pos = ir.NOPOS) -> Exception:  # type: ignore[override]
        return FlatUnsupported(f"{pos}: {self.where}: {msg}")

    def tmp(self) -> str:
        return self.names.tmp()

    # ------------------------------------------------------------ locations

    def loc(self, e: ir.Expr) -> Loc:
        if isinstance(e, ir.VarRef):
            got = self.scope.get(e.name)
            if got is None:
                raise self.fail(f"unknown variable {e.name}", e.pos)
            return got
        if isinstance(e, ir.Member) and not isinstance(e.expr, ir.TableApply):
            base = self.loc(e.expr)
            if isinstance(base, HLoc) and e.member in base.fields:
                return base.fields[e.member]
            if isinstance(base, SLoc) and e.member in base.members:
                return base.members[e.member]
            if isinstance(base, BLoc):
                return f"{base.d}[{e.member!r}]"
        raise self.fail(f"{type(e).__name__} of type {e.type} is not a flat location", e.pos)

    def hloc(self, e: ir.Expr) -> HLoc:
        loc = self.loc(e)
        if not isinstance(loc, HLoc):
            raise self.fail("expected a header", e.pos)
        return loc

    # ------------------------------------------------------------ expressions

    def _ex_VarRef(self, e: ir.VarRef) -> str:
        return self.names.materialise(self.loc(e))

    def _ex_Member(self, e: ir.Member) -> str:
        if isinstance(e.expr, ir.TableApply):
            got = self.applied.get(id(e.expr))
            if got is None:
                raise self.fail("table result outside a statement condition", e.pos)
            if e.member == "hit":
                return got[0]
            if e.member == "miss":
                return f"(not {got[0]})"
            return got[1]
        return self.names.materialise(self.loc(e))

    def _ex_Index(self, e: ir.Index) -> str:
        raise self.fail("header stacks", e.pos)

    def _ex_InstanceRef(self, e: ir.InstanceRef) -> str:
        return self.pe.bind(self.fb.instance(self.blk, e), "i")

    def value(self, e: ir.Expr) -> str:
        return self.ex(e)  # locations materialise fresh objects

    def _ex_ListExpr(self, e: ir.ListExpr) -> str:
        return "[" + ", ".join(self.value(x) for x in e.items) + "]"

    def zero(self, t: ir.Type) -> str:
        if isinstance(t, _COMPOUND):
            return super().zero(t)
        return zero_lit(t)

    def _ex_BuiltinMethodCall(self, e: ir.BuiltinMethodCall) -> str:
        if e.method == "isValid":
            return self.hloc(e.target).valid
        if e.method in ("minSizeInBits", "minSizeInBytes"):
            return super()._ex_BuiltinMethodCall(e)
        raise self.fail(f"{e.method}() in an expression", e.pos)

    def _ex_ExternMethodCall(self, e: ir.ExternMethodCall) -> str:
        if e.extern in ("packet_in", "packet_out"):
            return self.fb.packets.expr(self, e)
        if any(a.direction in ("out", "inout") for a in e.args):
            raise self.fail("extern call with out arguments in an expression", e.pos)
        fn = self.pe.bind(self.fb.bind_method(self.blk, e), "m")
        return f"{fn}(ctx, [{', '.join(self.value(a.expr) for a in e.args)}])"

    def _ex_ExternFunctionCall(self, e: ir.ExternFunctionCall) -> str:
        if e.name == "verify":
            return f"_verify({self.ex(e.args[0].expr)}, {self.ex(e.args[1].expr)})"
        if any(a.direction in ("out", "inout") for a in e.args):
            raise self.fail("extern call with out arguments in an expression", e.pos)
        fn = self.pe.bind(self.fb.arch.bind_function(e), "x")
        return f"{fn}(ctx, [{', '.join(self.value(a.expr) for a in e.args)}])"

    def _ex_TableApply(self, e: ir.TableApply) -> str:
        raise self.fail("table apply inside an expression", e.pos)

    def _ex_ActionCall(self, e: ir.ActionCall) -> str:
        raise self.fail("action call inside an expression", e.pos)

    def _ex_SubApply(self, e: ir.SubApply) -> str:
        raise self.fail("apply inside an expression", e.pos)

    def _ex_FunctionCall(self, e: ir.FunctionCall) -> str:
        raise self.fail("functions", e.pos)

    # ------------------------------------------------------------ table applies in conditions

    def hoist(self, e: ir.Expr, ind: str, out: list[str], cond: bool = False) -> None:
        """Apply the tables expression ``e`` applies before evaluating it (only where
        they are evaluated unconditionally)."""
        if isinstance(e, ir.TableApply):
            if cond:
                raise self.fail("table applied in a conditional operand", e.pos)
            out.extend(self.table_apply(e, ind))
            return
        if isinstance(e, ir.Binary):
            self.hoist(e.left, ind, out, cond)
            self.hoist(e.right, ind, out, cond or e.op in ("&&", "||"))
        elif isinstance(e, ir.Mux):
            self.hoist(e.cond, ind, out, cond)
            self.hoist(e.then, ind, out, True)
            self.hoist(e.else_, ind, out, True)
        elif isinstance(e, (ir.Member, ir.Unary, ir.Cast, ir.Slice)):
            self.hoist(e.expr, ind, out, cond)

    # ------------------------------------------------------------ l-values

    def assign(self, lv: ir.Expr, v: str) -> list[str]:
        if isinstance(lv, ir.DontCare):
            return []
        if isinstance(lv, ir.Slice):
            return super().assign(lv, v)
        loc = self.loc(lv)
        if isinstance(loc, str):
            return [f"{loc} = {v}"]
        t = self.tmp()
        return [f"{t} = {v}", *self.names.unpack_lines(loc, t, "")]

    def assign_expr(self, lv: ir.Expr, rhs: ir.Expr, ind: str) -> list[str]:
        """``lv = rhs`` (compound values copied location to location when possible)."""
        if isinstance(rhs.type, _COMPOUND) and not isinstance(lv, ir.DontCare):
            dst = self.loc(lv)
            if (isinstance(rhs, (ir.VarRef, ir.Member)) and not isinstance(rhs, ir.Member)) or (
                    isinstance(rhs, ir.Member) and not isinstance(rhs.expr, ir.TableApply)):
                return self.names.copy_lines(dst, self.loc(rhs), ind)
            if isinstance(rhs, ir.StructExpr) and isinstance(dst, (SLoc, HLoc)):
                temps = [(n, self.tmp()) for n, _ in rhs.fields]
                out = [f"{ind}{t} = {self.value(x)}" for (_, t), (_, x) in zip(temps, rhs.fields, strict=True)]
                if isinstance(dst, HLoc):
                    out.append(f"{ind}{dst.valid} = True")
                for n, t in temps:
                    sub = dst.fields[n] if isinstance(dst, HLoc) else dst.members[n]
                    out += self.names.unpack_lines(sub, t, ind)
                return out
        out = [ind + ln for ln in self.assign(lv, self.value(rhs))]
        if (isinstance(lv.type, ir.VarbitT) and isinstance(lv, ir.Member) and isinstance(rhs, ir.Member)
                and isinstance(lv.expr.type, ir.HeaderT) and isinstance(rhs.expr.type, ir.HeaderT)):
            d, s = self.hloc(lv.expr), self.hloc(rhs.expr)
            if d.vlen and s.vlen:
                out.append(f"{ind}{d.vlen} = {s.vlen}")
        return out

    # ------------------------------------------------------------ statements

    def stmts(self, ss: Any, ind: str, in_routine: bool = True) -> list[str]:
        out: list[str] = []
        for s in ss:
            out.extend(self.stmt(s, ind, in_routine))
        return out or [ind + "pass"]

    def stmt(self, s: ir.Stmt, ind: str, in_routine: bool = True) -> list[str]:
        if isinstance(s, ir.Assign):
            return self.assign_expr(s.lhs, s.rhs, ind)
        if isinstance(s, ir.CallStmt):
            return self.call_stmt(s.call, ind)
        if isinstance(s, ir.Block):
            return self.stmts(s.stmts, ind) if s.stmts else []
        if isinstance(s, ir.If):
            out: list[str] = []
            self.hoist(s.cond, ind, out)
            out += [f"{ind}if {self.ex(s.cond)}:", *self.stmts((s.then,), ind + "    ")]
            if s.else_ is not None:
                out += [f"{ind}else:", *self.stmts((s.else_,), ind + "    ")]
            return out
        if isinstance(s, ir.VarDecl):
            loc = self.scope[s.name]
            if s.init is None:
                return self.names.zero_lines(loc, s.type, ind)
            return self.assign_expr(ir.VarRef(s.pos, s.type, s.name), s.init, ind)
        if isinstance(s, ir.Exit):
            return [ind + "raise _Exit()"]
        if isinstance(s, ir.Switch):
            out = []
            self.hoist(s.expr, ind, out)
            return out + self.switch(s, ind, True)
        if isinstance(s, ir.Empty):
            return []
        raise self.fail(f"statement {type(s).__name__}", s.pos)

    def action_run_name(self, label: str) -> str:
        return label

    def call_stmt(self, e: ir.Expr, ind: str) -> list[str]:
        if isinstance(e, ir.TableApply):
            return self.table_apply(e, ind)
        if isinstance(e, ir.ActionCall):
            adecl, _, scope = self.fb.action_decl(self.blk, e.action, e.top_level, e.pos)
            return self.inline_routine(e.args, adecl.params, adecl.body.stmts, scope, ind)
        if isinstance(e, ir.SubApply):
            return self.fb.sub_apply(self, e, ind)
        if isinstance(e, ir.BuiltinMethodCall):
            if e.method == "setValid":
                return [f"{ind}{self.hloc(e.target).valid} = True"]
            if e.method == "setInvalid":
                return [f"{ind}{self.hloc(e.target).valid} = False"]
            return [f"{ind}{self.ex(e)}"]
        if isinstance(e, ir.ExternMethodCall) and e.extern in ("packet_in", "packet_out"):
            return self.fb.packets.stmt(self, e, ind)
        if isinstance(e, ir.ExternFunctionCall) and e.name == "verify":
            return [f"{ind}if not {self.ex(e.args[0].expr)}: raise _Reject({self.ex(e.args[1].expr)})"]
        if isinstance(e, (ir.ExternMethodCall, ir.ExternFunctionCall)):
            return self.extern_call(e, ind)
        return [f"{ind}{self.ex(e)}"]

    def extern_call(self, e: ir.ExternMethodCall | ir.ExternFunctionCall, ind: str) -> list[str]:
        if isinstance(e, ir.ExternFunctionCall):
            inlined = self.inline_extern(e, ind)
            if inlined is not None:
                return inlined
        out: list[str] = []
        post: list[str] = []
        vals: list[str] = []
        for a in e.args:
            if a.direction in ("out", "inout"):
                c = self.tmp()
                if isinstance(a.expr, ir.DontCare):
                    init = "None"
                elif a.direction == "inout":
                    loc = self.loc(a.expr)
                    init = loc.obj if isinstance(loc, BLoc) else self.names.materialise(loc)
                else:
                    init = self.zero(a.expr.type)
                out.append(f"{ind}{c} = _Cell({init})")
                vals.append(c)
                if not isinstance(a.expr, ir.DontCare):
                    post.extend(ind + ln for ln in self.assign(a.expr, f"{c}.value"))
            else:
                vals.append(self.value(a.expr))
        fn = (self.fb.bind_method(self.blk, e) if isinstance(e, ir.ExternMethodCall)
              else self.fb.arch.bind_function(e))
        out.append(f"{ind}{self.pe.bind(fn, 'x')}(ctx, [{', '.join(vals)}])")
        return out + post

    def inline_extern(self, e: ir.ExternFunctionCall, ind: str) -> list[str] | None:
        """The architecture's own source for the call (its optional ``flat_function``),
        when every argument is free of calls (so evaluating arguments only where the
        lines use them changes nothing) and every out / inout argument is a scalar
        location; None otherwise."""
        hook = getattr(self.fb.arch, "flat_function", None)
        if hook is None or any(_has_call(a.expr) for a in e.args):
            return None
        pre: list[str] = []
        post: list[str] = []
        outs: dict[int, str] = {}
        for i, a in enumerate(e.args):
            if a.direction not in ("out", "inout"):
                continue
            if isinstance(a.expr, ir.DontCare) or isinstance(a.expr.type, _COMPOUND):
                return None
            loc = self.loc(a.expr)
            if not isinstance(loc, str):
                return None
            t = self.tmp()
            outs[i] = t
            pre.append(f"{ind}{t} = {loc if a.direction == 'inout' else self.zero(a.expr.type)}")
            post.extend(ind + ln for ln in self.assign(a.expr, t))
        lines: list[str] | None = hook(e, self.ex, outs, self.tmp, self.pe.bind)
        if lines is None:
            return None
        return pre + [ind + ln for ln in lines] + post

    def inline_routine(self, args: tuple[ir.Arg, ...], params: tuple[ir.Param, ...], body: Any,
                       scope: dict[str, Loc], ind: str, read_only_in: bool = False,
                       body_gen: FlatGen | None = None) -> list[str]:
        """An action (``scope``: its control's, shared) or a sub-block (``scope``:
        its own) inlined with copy-in / copy-out; compound inout by reference."""
        out: list[str] = []
        copyouts: list[str] = []
        binds: list[tuple[str, Loc]] = []
        for a, p in zip(args, params, strict=False):
            compound = isinstance(p.type, _COMPOUND)
            if compound and (a.direction == "inout" or (
                    read_only_in and a.direction in ("in", "") and not _may_alias(a, args))):
                binds.append((p.name, self.loc(a.expr)))
                continue
            loc = self.names.new_loc(p.type, p.name)
            if a.direction == "out":
                out += self.names.zero_lines(loc, p.type, ind)
            elif compound and isinstance(a.expr, (ir.VarRef, ir.Member)):
                out += self.names.copy_lines(loc, self.loc(a.expr), ind) if not isinstance(
                    self.loc(a.expr), BLoc) else self._unpack_expr(loc, a.expr, ind)
            else:
                out += self._unpack_expr(loc, a.expr, ind)
            binds.append((p.name, loc))
            if a.direction in ("out", "inout") and not isinstance(a.expr, ir.DontCare):
                copyouts += self._store_loc(a.expr, loc, ind)
        saved = {n: scope.get(n) for n, _ in binds}
        for n, loc in binds:
            scope[n] = loc
        try:
            vars_: dict[str, ir.Type] = {}
            collect_vardecls(body, vars_)
            for n, t in vars_.items():
                scope[n] = self.names.new_loc(t, n)
            g = body_gen or (self if scope is self.scope else self.fb.gen_for(self, scope))
            inner = g.stmts(body, ind + "    " if copyouts else ind)
        finally:
            for n, old in saved.items():
                if old is None:
                    scope.pop(n, None)
                else:
                    scope[n] = old
        if copyouts:
            return [*out, f"{ind}try:", *inner, f"{ind}except _Exit:",
                    *("    " + c for c in copyouts), f"{ind}    raise", *copyouts]
        return out + inner

    def _unpack_expr(self, loc: Loc, e: ir.Expr, ind: str) -> list[str]:
        if isinstance(loc, str):
            return [f"{ind}{loc} = {self.value(e)}"]
        t = self.tmp()
        return [f"{ind}{t} = {self.value(e)}", *self.names.unpack_lines(loc, t, ind)]

    def _store_loc(self, lv: ir.Expr, loc: Loc, ind: str) -> list[str]:
        dst = self.loc(lv)
        if isinstance(dst, str) and isinstance(loc, str):
            return [f"{ind}{dst} = {loc}"]
        return self.names.copy_lines(dst, loc, ind)

    def table_apply(self, e: ir.TableApply, ind: str) -> list[str]:
        return self.fb.tables.apply(self, e, ind)

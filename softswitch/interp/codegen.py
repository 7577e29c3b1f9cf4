"""Python source generation for one frame (a parser/control instance, a function or a
top-level action): typed IR expressions and statements -> Python source text.

Every variable of the frame lives in a slot of one Python list ``f`` (``f[0]`` is the
architecture's per-packet context); names are unique per parser/control (ir.py), so
slot numbers are fixed at compile time and actions share their control's frame.
Expressions become single Python expressions (bit<N> arithmetic masked inline,
int<N> wrapped to two's complement inline); statements become Python statements in the
body of one generated ``def`` per action / apply / parser state. See compiler.py for the
semantics notes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from softswitch import ir
from softswitch.interp.fastvals import copier, maker
from softswitch.interp.packet import header_layout
from softswitch.interp.values import Cell, zero_value

__all__ = ["ProgramEnv", "FrameGen", "CompileFailure", "width_of", "collect_vardecls"]


class CompileFailure(Exception):
    """The IR holds something this interpreter cannot run; the message names it and where."""


class ProgramEnv:
    """The namespace shared by all generated code of one program."""

    def __init__(self, env: dict[str, Any]) -> None:
        self.env = env
        self._n = 0
        self.sources: list[str] = []

    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"_{hint}{self._n}"

    def bind(self, obj: Any, hint: str = "c") -> str:
        name = self.fresh(hint)
        self.env[name] = obj
        return name

    def define(self, src: str) -> None:
        self.sources.append(src)
        try:
            code = compile(src, "<softswitch-generated>", "exec")
        except (SyntaxError, MemoryError, RecursionError) as e:
            if isinstance(e, (MemoryError, RecursionError)) or "too many" in str(e) or "nested" in str(e):
                # Python's limits (about 200 nested parentheses, 100 indentation levels)
                first = src.split("\n", 1)[0].removesuffix(":")
                raise CompileFailure(f"program nested too deeply for softswitch's code generator "
                                     f"({first.removeprefix('def ')}: {type(e).__name__}: {e.args[0] if e.args else ''}); "
                                     f"split the expression or the nested statements") from None
            # a bug in this module: show the source
            raise CompileFailure(f"internal error generating code: {e}\n{src}") from e
        exec(code, self.env)


def _no_effects(e: ir.Expr) -> bool:
    """An expression whose evaluation calls nothing that can change state: constants,
    variables, field paths, operators, casts, conditionals, isValid()."""
    if isinstance(e, (ir.Const, ir.EnumConst, ir.ErrorConst, ir.StrConst, ir.VarRef)):
        return True
    if isinstance(e, ir.Member):
        return not isinstance(e.expr, ir.TableApply) and _no_effects(e.expr)
    if isinstance(e, ir.Index):
        return _no_effects(e.expr) and _no_effects(e.index)
    if isinstance(e, (ir.Slice, ir.Unary, ir.Cast)):
        return _no_effects(e.expr)
    if isinstance(e, ir.Binary):
        return _no_effects(e.left) and _no_effects(e.right)
    if isinstance(e, ir.Mux):
        return _no_effects(e.cond) and _no_effects(e.then) and _no_effects(e.else_)
    if isinstance(e, ir.BuiltinMethodCall):
        return e.method == "isValid" and not e.args and _no_effects(e.target)
    return False


def _field_bases(e: ir.Expr, out: list[ir.Expr]) -> None:
    """Append the header / struct paths whose fields expression ``e`` (effect free)
    reads."""
    if isinstance(e, ir.Member):
        if isinstance(e.expr.type, (ir.HeaderT, ir.StructT)) and _plain_read(e.expr):
            out.append(e.expr)
        else:
            _field_bases(e.expr, out)
    elif isinstance(e, ir.Index):
        _field_bases(e.expr, out)
        _field_bases(e.index, out)
    elif isinstance(e, (ir.Slice, ir.Unary, ir.Cast)):
        _field_bases(e.expr, out)
    elif isinstance(e, ir.Binary):
        _field_bases(e.left, out)
        _field_bases(e.right, out)
    elif isinstance(e, ir.Mux):
        _field_bases(e.cond, out)
        _field_bases(e.then, out)
        _field_bases(e.else_, out)
    elif isinstance(e, ir.BuiltinMethodCall):
        _field_bases(e.target, out)


def _scalar_field_assign(s: Any) -> bool:
    """``path.field = value`` with a scalar field of a header / struct reached by a plain
    path, and a value free of effects: it cannot replace any header or struct object."""
    return (isinstance(s, ir.Assign) and isinstance(s.lhs, ir.Member)
            and isinstance(s.lhs.expr.type, (ir.HeaderT, ir.StructT))
            and not isinstance(s.lhs.type, (*_COMPOUND, ir.VarbitT)) and _plain_read(s.lhs.expr)
            and not isinstance(s.rhs.type, _COMPOUND) and _no_effects(s.rhs))


def _plain_read(e: ir.Expr) -> bool:
    """A constant, variable or field / constant-index path of headers and structs:
    evaluating it calls nothing and changes nothing."""
    while isinstance(e, ir.Member) and isinstance(e.expr.type, (ir.HeaderT, ir.StructT)):
        e = e.expr
    return isinstance(e, (ir.VarRef, ir.Const))


def _root_name(e: ir.Expr) -> str | None:
    """The variable an l-value expression is part of (None if not a plain l-value)."""
    while isinstance(e, (ir.Member, ir.Index)):
        e = e.expr
    return e.name if isinstance(e, ir.VarRef) else None


def _contains(outer: ir.Type, inner: ir.Type) -> bool:
    """Whether a value of type ``outer`` is or holds a value of type ``inner``."""
    if outer == inner:
        return True
    if isinstance(outer, (ir.StructT, ir.HeaderT, ir.HeaderUnionT)):
        return any(_contains(ft, inner) for _, ft in outer.fields)
    if isinstance(outer, ir.StackT):
        return _contains(outer.elem, inner)
    if isinstance(outer, ir.TupleT):
        return any(_contains(et, inner) for et in outer.elems)
    return False


def _may_alias(a: ir.Arg, args: tuple[ir.Arg, ...]) -> bool:
    """Whether compound in-argument ``a`` may share objects with a compound inout
    argument of the same call (passed by reference, so the callee's writes through it
    would show through ``a`` without a copy). Distinct variables can only share
    objects when they are parameters bound by reference to overlapping l-values, which
    needs one's type to hold the other's; the same variable always may."""
    ra = _root_name(a.expr)
    if ra is None:
        return True
    for b in args:
        if b is a or b.direction != "inout" or not isinstance(b.expr.type, _COMPOUND):
            continue
        if _root_name(b.expr) in (None, ra):
            return True
        if _contains(a.expr.type, b.expr.type) or _contains(b.expr.type, a.expr.type):
            return True
    return False


def width_of(t: ir.Type) -> int:
    if isinstance(t, (ir.BitT, ir.IntT)):
        return t.width
    if isinstance(t, ir.BoolT):
        return 1
    if isinstance(t, ir.SerEnumT):
        return width_of(t.underlying)
    raise CompileFailure(f"type {t} has no bit width")


def _under(t: ir.Type) -> ir.Type:
    return t.underlying if isinstance(t, ir.SerEnumT) else t


_COMPOUND = (ir.HeaderT, ir.StructT, ir.HeaderUnionT, ir.StackT, ir.TupleT)


def collect_vardecls(stmts: Any, out: dict[str, ir.Type]) -> None:
    """All VarDecl names/types in statements (recursively)."""
    for s in stmts:
        if isinstance(s, ir.VarDecl):
            out[s.name] = s.type
        elif isinstance(s, ir.Block):
            collect_vardecls(s.stmts, out)
        elif isinstance(s, ir.If):
            collect_vardecls((s.then,), out)
            if s.else_ is not None:
                collect_vardecls((s.else_,), out)
        elif isinstance(s, ir.Switch):
            for c in s.cases:
                if c.body is not None:
                    collect_vardecls(c.body.stmts, out)


def _swrap(x: str, w: int) -> str:
    h = 1 << (w - 1)
    return f"(((({x}) + {h}) & {(1 << w) - 1}) - {h})"


def _is_simple(e: ir.Expr) -> bool:
    """No calls inside: safe to evaluate twice."""
    if isinstance(e, (ir.Const, ir.VarRef, ir.EnumConst, ir.ErrorConst)):
        return True
    if isinstance(e, ir.Member):
        return _is_simple(e.expr)
    if isinstance(e, ir.Slice):
        return _is_simple(e.expr)
    if isinstance(e, ir.Index):
        return _is_simple(e.expr) and _is_simple(e.index)
    if isinstance(e, (ir.Unary, ir.Cast)):
        return _is_simple(e.expr)
    if isinstance(e, ir.Binary):
        return _is_simple(e.left) and _is_simple(e.right)
    return False


class FrameGen:
    """Generates code for one frame. ``resolver`` answers the names the frame cannot
    (instances, actions, tables, functions): it is the owning compiler."""

    def __init__(self, pe: ProgramEnv, slots: dict[str, int], resolver: Any, where: str) -> None:
        self.pe = pe
        self.slots = slots
        self.r = resolver
        self.where = where
        # in a parser, stack .next/.last out of range reject with StackOutOfBounds; in a
        # control (value undefined by the spec) they read a fresh invalid header
        self.in_parser = where.startswith("parser ")
        self._tmp = 0
        #: during a run of scalar field assignments (_assign_run): base expression ->
        #: the temp holding its field dict
        self._fields_of: dict[str, str] = {}

    def fail(self, msg: str, pos: ir.Pos = ir.NOPOS) -> CompileFailure:
        return CompileFailure(f"{pos}: {self.where}: {msg}")

    def tmp(self) -> str:
        self._tmp += 1
        return f"_t{self._tmp}"

    # ------------------------------------------------------------------ expressions

    def slot(self, name: str, pos: ir.Pos) -> int:
        i = self.slots.get(name)
        if i is None:
            raise self.fail(f"unknown variable {name!r}", pos)
        return i

    def ex(self, e: ir.Expr) -> str:
        m = getattr(self, "_ex_" + type(e).__name__, None)
        if m is None:
            raise self.fail(f"expression {type(e).__name__} is not supported", e.pos)
        return str(m(e))

    def _ex_Const(self, e: ir.Const) -> str:
        return repr(e.value)

    def _ex_EnumConst(self, e: ir.EnumConst) -> str:
        return repr(e.member)

    def _ex_ErrorConst(self, e: ir.ErrorConst) -> str:
        return repr(e.name)

    def _ex_StrConst(self, e: ir.StrConst) -> str:
        return repr(e.value)

    def _ex_VarRef(self, e: ir.VarRef) -> str:
        return f"f[{self.slot(e.name, e.pos)}]"

    def _ex_InstanceRef(self, e: ir.InstanceRef) -> str:
        return self.pe.bind(self.r.instance(e), "i")

    def _ex_Member(self, e: ir.Member) -> str:
        bt = e.expr.type
        if isinstance(e.expr, ir.TableApply) or isinstance(bt, ir.TableResultT):
            b = self.ex(e.expr)
            if e.member == "hit":
                return f"{b}[0]"
            if e.member == "miss":
                return f"(not {b}[0])"
            if e.member == "action_run":
                return f"{b}[1]"
            raise self.fail(f"table result has no member {e.member}", e.pos)
        b = self.ex(e.expr)
        if isinstance(bt, ir.StackT):
            if e.member == "size":
                return str(bt.size)
            if e.member == "next":
                return f"_stk_next({b})" if self.in_parser else f"_stk_get({b}, {b}.next_index)"
            if e.member == "last":
                return f"_stk_last({b})" if self.in_parser else f"_stk_get({b}, {b}.next_index - 1)"
            if e.member == "lastIndex":
                return f"_stk_last_index({b})"
            raise self.fail(f"header stack has no member {e.member}", e.pos)
        if self._fields_of:
            cached = self._fields_of.get(self._uncached(e.expr))
            if cached is not None:
                return f"{cached}[{e.member!r}]"
        return f"{b}.fields[{e.member!r}]"

    def _uncached(self, e: ir.Expr) -> str:
        """``ex(e)`` as written outside an assignment run (the key of _fields_of)."""
        saved, self._fields_of = self._fields_of, {}
        try:
            return self.ex(e)
        finally:
            self._fields_of = saved

    def _ex_Index(self, e: ir.Index) -> str:
        b = self.ex(e.expr)
        if isinstance(e.index, ir.Const):
            return f"{b}.elems[{int(e.index.value)}]"
        return f"_stk_get({b}, {self.ex(e.index)})"

    def _ex_Slice(self, e: ir.Slice) -> str:
        b = self.ex(e.expr)
        return f"(({b} >> {e.lo}) & {(1 << (e.hi - e.lo + 1)) - 1})"

    def _ex_Unary(self, e: ir.Unary) -> str:
        x = self.ex(e.expr)
        t = _under(e.type)
        if e.op == "!":
            return f"(not {x})"
        if e.op == "-":
            if isinstance(t, ir.BitT):
                return f"((-{x}) & {(1 << t.width) - 1})"
            if isinstance(t, ir.IntT):
                return _swrap(f"-{x}", t.width)
            return f"(-{x})"
        if e.op == "~":
            if isinstance(t, ir.BitT):
                return f"({x} ^ {(1 << t.width) - 1})"
            return f"(~{x})"
        raise self.fail(f"unary operator {e.op}", e.pos)

    def _ex_Binary(self, e: ir.Binary) -> str:
        op = e.op
        a = self.ex(e.left)
        b = self.ex(e.right)
        if op == "&&":
            return f"({a} and {b})"
        if op == "||":
            return f"({a} or {b})"
        lt = _under(e.left.type)
        if op in ("==", "!="):
            if isinstance(lt, _COMPOUND):
                r = f"_eq({a}, {b})"
                return r if op == "==" else f"(not {r})"
            return f"({a} {op} {b})"
        if op in ("<", "<=", ">", ">="):
            return f"({a} {op} {b})"
        t = _under(e.type)
        if op == "++":
            rt = _under(e.right.type)
            lw, rw = width_of(lt), width_of(rt)
            v = f"((({a}) & {(1 << lw) - 1}) << {rw}) | (({b}) & {(1 << rw) - 1})"
            return _swrap(v, lw + rw) if isinstance(t, ir.IntT) else f"({v})"
        if not isinstance(t, (ir.BitT, ir.IntT)):
            raise self.fail(f"operator {op} on type {t}", e.pos)
        w = t.width
        m = (1 << w) - 1
        signed = isinstance(t, ir.IntT)
        if op in ("&", "|", "^"):
            # Python's bitwise ops on signed ints are already two's complement in range
            return f"({a} {op} {b})"
        if op in ("+", "-", "*"):
            v = f"{a} {op} {b}"
            return _swrap(v, w) if signed else f"(({v}) & {m})"
        if op == "|+|" or op == "|-|":
            pyop = "+" if op == "|+|" else "-"
            if signed:
                return f"min(max({a} {pyop} {b}, {-(1 << (w - 1))}), {(1 << (w - 1)) - 1})"
            return f"min({a} + {b}, {m})" if pyop == "+" else f"max({a} - {b}, 0)"
        if op == "/":
            return f"_sdiv({a}, {b})" if signed else f"_div({a}, {b})"
        if op == "%":
            return f"_smod({a}, {b})" if signed else f"_mod({a}, {b})"
        if op == ">>":
            if isinstance(e.right, ir.Const) and e.right.value >= w:
                return f"({a} >> {w})"  # 0, or -1 for a negative signed value
            return f"({a} >> {b})"  # Python >> on negative ints is arithmetic
        if op == "<<":
            if isinstance(e.right, ir.Const):
                if e.right.value >= w:
                    return "0"
                v = f"{a} << {int(e.right.value)}"
                return _swrap(v, w) if signed else f"(({v}) & {m})"
            return f"_sshl({a}, {b}, {w})" if signed else f"_shl({a}, {b}, {w}, {m})"
        raise self.fail(f"binary operator {op}", e.pos)

    def cast(self, x: str, src: ir.Type, dst: ir.Type) -> str:
        s = _under(src)
        d = _under(dst)
        if isinstance(d, ir.BitT):
            if isinstance(s, ir.BoolT):
                return f"(1 if {x} else 0)"
            if isinstance(s, ir.BitT) and s.width <= d.width:
                return x
            return f"({x} & {(1 << d.width) - 1})"
        if isinstance(d, ir.IntT):
            if isinstance(s, ir.BoolT):
                return f"(1 if {x} else 0)" if d.width > 1 else f"(-1 if {x} else 0)"
            if isinstance(s, ir.IntT) and s.width <= d.width:
                return x
            if isinstance(s, ir.BitT) and s.width < d.width:
                return x
            return _swrap(x, d.width)
        if isinstance(d, ir.BoolT):
            if isinstance(s, ir.BoolT):
                return x
            return f"({x} != 0)"
        return x

    def _ex_Cast(self, e: ir.Cast) -> str:
        return self.cast(self.ex(e.expr), e.expr.type, e.type)

    def _ex_Mux(self, e: ir.Mux) -> str:
        return f"({self.ex(e.then)} if {self.ex(e.cond)} else {self.ex(e.else_)})"

    def value(self, e: ir.Expr) -> str:
        """An expression whose compound value is a fresh copy (for assignment / copy-in)."""
        s = self.ex(e)
        if isinstance(e.type, _COMPOUND) and isinstance(e, (ir.VarRef, ir.Member, ir.Index)):
            return f"{self.pe.bind(copier(e.type), 'cp')}({s})"
        return s

    def _ex_ListExpr(self, e: ir.ListExpr) -> str:
        if len(e.items) >= 3 and all(_plain_read(x) for x in e.items):
            return self._list_shared_bases(e.items)
        return "[" + ", ".join(self.value(x) for x in e.items) + "]"

    def _list_shared_bases(self, items: tuple[ir.Expr, ...]) -> str:
        """A list of plain reads (no calls, so nothing can change while it is built) in
        which fields of the same header / struct are read through its field dict once,
        bound by the first item that reads it (e.g. the IPv4 fields of a checksum)."""
        def base_of(x: ir.Expr) -> str | None:
            if (isinstance(x, ir.Member) and isinstance(x.expr.type, (ir.HeaderT, ir.StructT))
                    and not isinstance(x.type, _COMPOUND)):
                return self.ex(x.expr)
            return None

        count: dict[str, int] = {}
        for x in items:
            b = base_of(x)
            if b is not None:
                count[b] = count.get(b, 0) + 1
        bound: dict[str, str] = {}
        out: list[str] = []
        for x in items:
            b = base_of(x)
            if b is None or count[b] < 2:
                out.append(self.value(x))
                continue
            assert isinstance(x, ir.Member)
            if b in bound:
                out.append(f"{bound[b]}[{x.member!r}]")
            else:
                bound[b] = t = self.tmp()
                out.append(f"({t} := {b}.fields)[{x.member!r}]")
        return "[" + ", ".join(out) + "]"

    def _ex_StructExpr(self, e: ir.StructExpr) -> str:
        t = e.type
        items = ", ".join(f"{n!r}: {self.value(x)}" for n, x in e.fields)
        if isinstance(t, ir.HeaderT):
            return f"_Header({self.pe.bind(t, 'T')}, True, {{{items}}})"
        if isinstance(t, ir.StructT):
            return f"_Struct({self.pe.bind(t, 'T')}, {{{items}}})"
        raise self.fail(f"struct expression of type {t}", e.pos)

    def zero(self, t: ir.Type) -> str:
        if isinstance(t, (ir.BitT, ir.IntT, ir.VarbitT, ir.SerEnumT)):
            return "0"
        if isinstance(t, ir.BoolT):
            return "False"
        if isinstance(t, _COMPOUND):
            return f"{self.pe.bind(maker(t), 'mk')}()"
        return repr(zero_value(t))

    # ------------------------------------------------------------------ calls

    def _ex_BuiltinMethodCall(self, e: ir.BuiltinMethodCall) -> str:
        t = e.target.type
        b = self.ex(e.target)
        if e.method == "isValid":
            return f"_union_valid({b})" if isinstance(t, ir.HeaderUnionT) else f"{b}.valid"
        if e.method in ("minSizeInBits", "minSizeInBytes") and isinstance(t, ir.HeaderT):
            bits = sum(width_of(ft) for _, ft in t.fields if not isinstance(ft, ir.VarbitT))
            return str(bits if e.method == "minSizeInBits" else (bits + 7) // 8)
        # void built-ins used as an expression: run them through a helper def
        return self.call_helper(e)

    def call_helper(self, e: ir.Expr) -> str:
        """Wrap a call that needs statements (write-backs) in its own generated def."""
        name = self.pe.fresh("call")
        sub = FrameGen(self.pe, self.slots, self.r, self.where)
        sub.in_parser = self.in_parser
        lines = sub.call_lines(e, result="_r")
        src = f"def {name}(f):\n" + "".join(f"    {ln}\n" for ln in lines) + "    return _r\n"
        self.pe.define(src)
        return f"{name}(f)"

    def _ex_ExternMethodCall(self, e: ir.ExternMethodCall) -> str:
        if e.extern == "packet_in" or e.extern == "packet_out":
            if e.method in ("length", "lookahead") or not any(a.direction in ("out", "inout") for a in e.args):
                return self.packet_call(e)
        if not any(a.direction in ("out", "inout") for a in e.args):
            fn = self.pe.bind(self.r.bind_method(e), "m")
            return f"{fn}(f[0], [{', '.join(self.value(a.expr) for a in e.args)}])"
        return self.call_helper(e)

    def _ex_ExternFunctionCall(self, e: ir.ExternFunctionCall) -> str:
        if e.name == "verify":
            return f"_verify({self.ex(e.args[0].expr)}, {self.ex(e.args[1].expr)})"
        if not any(a.direction in ("out", "inout") for a in e.args):
            fn = self.pe.bind(self.r.bind_function(e), "x")
            return f"{fn}(f[0], [{', '.join(self.value(a.expr) for a in e.args)}])"
        return self.call_helper(e)

    def _ex_TableApply(self, e: ir.TableApply) -> str:
        return f"{self.r.table_fn(e.table, e.pos)}(f)"

    def _ex_ActionCall(self, e: ir.ActionCall) -> str:
        return self.call_helper(e)

    def _ex_SubApply(self, e: ir.SubApply) -> str:
        return self.call_helper(e)

    def _ex_FunctionCall(self, e: ir.FunctionCall) -> str:
        return self.call_helper(e)

    def packet_call(self, e: ir.ExternMethodCall) -> str:
        p = self.ex(e.target)
        if e.method == "length":
            return f"{p}.length()"
        if e.method == "lookahead":
            return f"{p}.lookahead({self.pe.bind(e.type, 'T')})"
        if e.method == "advance":
            return f"{p}.advance({self.ex(e.args[0].expr)})"
        if e.method == "emit":
            a = e.args[0].expr
            if isinstance(a.type, ir.HeaderT):
                lay = self.pe.bind(header_layout(a.type), "L")
                # the validity test inline: no call at all for an invalid header
                return f"((_eh := {self.ex(a)}).valid and {p}.emit_header(_eh, {lay}))"
            return f"{p}.emit({self.ex(a)})"
        if e.method == "extract":
            a = e.args[0].expr
            bits = f", {self.ex(e.args[1].expr)}" if len(e.args) > 1 else ""
            if not isinstance(a.type, ir.HeaderT):
                raise self.fail(f"extract into a {a.type}", e.pos)
            lay = self.pe.bind(header_layout(a.type), "L")
            if isinstance(a, ir.Member) and isinstance(a.expr.type, ir.StackT) and a.member == "next":
                return f"_extract_next({p}, {self.ex(a.expr)}, {lay}{bits})"
            if isinstance(a, ir.Member) and isinstance(a.expr.type, ir.HeaderUnionT):
                u = self.ex(a.expr)
                return f"({p}.extract_layout({self.ex(a)}, {lay}{bits}), _union_only({u}, {a.member!r}))"
            return f"{p}.extract_layout({self.ex(a)}, {lay}{bits})"
        raise self.fail(f"{e.extern}.{e.method} is not supported", e.pos)

    def _args_in(self, args: tuple[ir.Arg, ...], params: tuple[ir.Param, ...] | None,
                 lines: list[str], read_only_in: bool = False) -> list[str]:
        """Evaluate all arguments into temps before any copy-in (an argument may read what
        another copy-in would overwrite). ``read_only_in``: the callee cannot write its
        in / directionless parameters nor hand them out (a control or parser apply: the
        frontend rejects writes to read-only parameters and there is no return value),
        so a compound in-argument is passed without a copy unless another argument of
        the call could alias it (_may_alias)."""
        temps: list[str] = []
        for i, a in enumerate(args):
            t = self.tmp()
            ptype = params[i].type if params is not None and i < len(params) else a.expr.type
            if a.direction == "out":
                lines.append(f"{t} = {self.zero(ptype)}")
            elif a.direction == "inout" and isinstance(a.expr.type, _COMPOUND):
                # by reference: copy-in/copy-out is only observable through aliasing
                lines.append(f"{t} = {self.ex(a.expr)}")
            elif (read_only_in and a.direction in ("in", "") and isinstance(a.expr.type, _COMPOUND)
                  and not _may_alias(a, args)):
                lines.append(f"{t} = {self.ex(a.expr)}")
            else:
                lines.append(f"{t} = {self.value(a.expr)}")
            temps.append(t)
        return temps

    def call_lines(self, e: ir.Expr, result: str | None = None) -> list[str]:
        """Statements performing call ``e`` (``result`` receives its value if given)."""
        lines: list[str] = []
        res = f"{result} = " if result else ""
        if isinstance(e, (ir.ExternMethodCall, ir.ExternFunctionCall)):
            if isinstance(e, ir.ExternMethodCall) and e.extern in ("packet_in", "packet_out"):
                lines.append(res + self.packet_call(e))
                return lines
            if isinstance(e, ir.ExternFunctionCall) and e.name == "verify":
                lines.append(res + self._ex_ExternFunctionCall(e))
                return lines
            cells: list[str] = []
            post: list[str] = []
            for a in e.args:
                if a.direction in ("out", "inout"):
                    c = self.tmp()
                    init = self.ex(a.expr) if a.direction == "inout" else "None"
                    if a.direction == "out" and not isinstance(a.expr, ir.DontCare):
                        init = self.zero(a.expr.type)
                    lines.append(f"{c} = _Cell({init})")
                    cells.append(c)
                    if not isinstance(a.expr, ir.DontCare):
                        post.extend(self.assign(a.expr, f"{c}.value"))
                else:
                    cells.append(self.value(a.expr))
            fn = self.pe.bind(self.r.bind_method(e) if isinstance(e, ir.ExternMethodCall)
                              else self.r.bind_function(e), "x")
            lines.append(f"{res}{fn}(f[0], [{', '.join(cells)}])")
            lines.extend(post)
            return lines
        if isinstance(e, ir.BuiltinMethodCall):
            t = e.target.type
            b = self.ex(e.target)
            union_parent = (isinstance(e.target, ir.Member)
                            and isinstance(e.target.expr.type, ir.HeaderUnionT))
            if e.method == "setValid":
                if isinstance(t, ir.HeaderUnionT):
                    raise self.fail("setValid on a header union", e.pos)
                lines.append(f"{b}.valid = True")
                if union_parent:
                    assert isinstance(e.target, ir.Member)
                    lines.append(f"_union_only({self.ex(e.target.expr)}, {e.target.member!r})")
            elif e.method == "setInvalid":
                lines.append(f"_union_set_invalid({b})" if isinstance(t, ir.HeaderUnionT)
                             else f"{b}.valid = False")
            elif e.method in ("push_front", "pop_front"):
                lines.append(f"_{e.method}({b}, {self.ex(e.args[0].expr)})")
            else:
                lines.append(res + self._ex_BuiltinMethodCall(e))
                return lines
            if result:
                lines.append(f"{result} = None")
            return lines
        if isinstance(e, ir.ActionCall):
            info = self.r.action_info(e.action, e.top_level, e.pos)
            return self._routine_call(lines, e.args, info, result, is_action=True)
        if isinstance(e, ir.FunctionCall):
            info = self.r.function_info(e.function, e.pos)
            return self._routine_call(lines, e.args, info, result, is_action=False)
        if isinstance(e, ir.SubApply):
            info = self.r.sub_info(e.instance, e.pos)
            return self._routine_call(lines, e.args, info, result, is_action=False, read_only_in=True)
        if isinstance(e, ir.TableApply):
            lines.append(res + self._ex_TableApply(e))
            return lines
        lines.append(res + self.ex(e))
        return lines

    def _routine_call(self, lines: list[str], args: tuple[ir.Arg, ...], info: Any,
                      result: str | None, is_action: bool, read_only_in: bool = False) -> list[str]:
        """Call a generated routine ``info`` (RoutineInfo from compiler.py): copy-in into
        its frame, run, copy-out (also when ``exit`` unwinds through it)."""
        temps = self._args_in(args, info.params, lines, read_only_in)
        g = "f" if info.shared_frame else self.tmp()
        if not info.shared_frame:
            lines.append(f"{g} = {info.frame_name}")
            lines.append(f"{g}[0] = f[0]")
        for t, s in zip(temps, info.param_slots, strict=False):
            lines.append(f"{g}[{s}] = {t}")
        pre = f"{result} = " if result else ""
        copyouts: list[str] = []
        for i, a in enumerate(args):
            if a.direction in ("out", "inout") and not isinstance(a.expr, ir.DontCare):
                copyouts.extend(self.assign(a.expr, f"{g}[{info.param_slots[i]}]"))
        call = f"{pre}{info.fn_name}({g})"
        if copyouts:
            lines.append("try:")
            lines.append(f"    {call}")
            lines.append("except _Exit:")
            lines.extend("    " + c for c in copyouts)
            lines.append("    raise")
            lines.extend(copyouts)
        else:
            lines.append(call)
        return lines

    # ------------------------------------------------------------------ l-values

    def assign(self, lv: ir.Expr, v: str) -> list[str]:
        """Statements storing Python expression ``v`` into l-value ``lv``."""
        if isinstance(lv, ir.VarRef):
            return [f"f[{self.slot(lv.name, lv.pos)}] = {v}"]
        if isinstance(lv, ir.DontCare):
            return []
        if isinstance(lv, ir.Member):
            bt = lv.expr.type
            b = self.ex(lv.expr)
            if isinstance(bt, ir.StackT):
                if lv.member == "next":
                    return [f"_stk_set_next({b}, {v})" if self.in_parser
                            else f"_stk_set({b}, {b}.next_index, {v})"]
                if lv.member == "last":
                    return [f"_stk_set({b}, {b}.next_index - 1, {v})"]
                raise self.fail(f"cannot assign to stack member {lv.member}", lv.pos)
            cached = self._fields_of.get(self._uncached(lv.expr)) if self._fields_of else None
            out = [f"{cached}[{lv.member!r}] = {v}" if cached is not None else f"{b}.fields[{lv.member!r}] = {v}"]
            if isinstance(bt, ir.HeaderUnionT):
                out.append(f"if {b}.fields[{lv.member!r}].valid: _union_only({b}, {lv.member!r})")
            return out
        if isinstance(lv, ir.Index):
            b = self.ex(lv.expr)
            if isinstance(lv.index, ir.Const):
                return [f"{b}.elems[{int(lv.index.value)}] = {v}"]
            return [f"_stk_set({b}, {self.ex(lv.index)}, {v})"]
        if isinstance(lv, ir.Slice):
            t = self.tmp()
            m = (1 << (lv.hi - lv.lo + 1)) - 1
            base_t = _under(lv.expr.type)
            bw = width_of(base_t)
            keep = ((1 << bw) - 1) ^ (m << lv.lo)
            new = f"(({self.ex(lv.expr)} & {keep}) | (({t} & {m}) << {lv.lo}))"
            if isinstance(base_t, ir.IntT):
                new = _swrap(new, bw)
            return [f"{t} = {v}", *self.assign(lv.expr, new)]
        raise self.fail(f"{type(lv).__name__} is not an l-value", lv.pos)

    # ------------------------------------------------------------------ statements

    def stmts(self, ss: Any, ind: str, in_routine: bool) -> list[str]:
        out: list[str] = []
        items = list(ss)
        i = 0
        while i < len(items):
            j = i
            while j < len(items) and _scalar_field_assign(items[j]):
                j += 1
            if j - i >= 2:
                out.extend(self._assign_run(items[i:j], ind))
                i = j
                continue
            out.extend(self.stmt(items[i], ind, in_routine))
            i += 1
        return out or [ind + "pass"]

    def _assign_run(self, run: list[ir.Assign], ind: str) -> list[str]:
        """Consecutive assignments of call-free values to scalar fields of headers /
        structs: no statement of the run can replace a header or struct object, so the
        field dict of a header / struct written more than once is looked up once, at the
        start of the run, and used by the run's writes and reads."""
        count: dict[str, int] = {}
        reads: list[ir.Expr] = []
        for a in run:
            assert isinstance(a.lhs, ir.Member)
            reads.append(a.lhs.expr)
            _field_bases(a.rhs, reads)
        for e in reads:
            b = self.ex(e)
            count[b] = count.get(b, 0) + 1
        out: list[str] = []
        for b, n in count.items():
            if n >= 2:
                t = self.tmp()
                out.append(f"{ind}{t} = {b}.fields")
                self._fields_of[b] = t
        try:
            for a in run:
                out.extend(ind + ln for ln in self.assign(a.lhs, self.value(a.rhs)))
        finally:
            self._fields_of = {}
        return out

    def stmt(self, s: ir.Stmt, ind: str, in_routine: bool) -> list[str]:
        if isinstance(s, ir.Assign):
            out = [ind + ln for ln in self.assign(s.lhs, self.value(s.rhs))]
            if (isinstance(s.lhs.type, ir.VarbitT) and isinstance(s.lhs, ir.Member)
                    and isinstance(s.rhs, ir.Member) and isinstance(s.lhs.expr.type, ir.HeaderT)
                    and isinstance(s.rhs.expr.type, ir.HeaderT)):
                # a varbit field takes its source's length with its value (BMv2's
                # assign_VL); the length lives in the header (values.Header.vlen)
                out.append(f"{ind}{self.ex(s.lhs.expr)}.vlen = {self.ex(s.rhs.expr)}.vlen")
            return out
        if isinstance(s, ir.CallStmt):
            return [ind + ln for ln in self.call_lines(s.call)]
        if isinstance(s, ir.Block):
            return self.stmts(s.stmts, ind, in_routine) if s.stmts else []
        if isinstance(s, ir.If):
            out = [f"{ind}if {self.ex(s.cond)}:", *self.stmts((s.then,), ind + "    ", in_routine)]
            if s.else_ is not None:
                out.append(f"{ind}else:")
                out.extend(self.stmts((s.else_,), ind + "    ", in_routine))
            return out
        if isinstance(s, ir.VarDecl):
            init = self.value(s.init) if s.init is not None else self.zero(s.type)
            return [f"{ind}f[{self.slot(s.name, s.pos)}] = {init}"]
        if isinstance(s, ir.Exit):
            return [ind + "raise _Exit()"]
        if isinstance(s, ir.Return):
            if s.value is not None:
                return [f"{ind}return {self.value(s.value)}"]
            return [ind + "return"]
        if isinstance(s, ir.Switch):
            return self.switch(s, ind, in_routine)
        if isinstance(s, ir.Empty):
            return []
        raise self.fail(f"statement {type(s).__name__} is not supported", s.pos)

    def switch(self, s: ir.Switch, ind: str, in_routine: bool) -> list[str]:
        t = self.tmp()
        out = [f"{ind}{t} = {self.ex(s.expr)}"]
        groups: list[tuple[list[str], ir.Block]] = []
        pending: list[str] = []
        for c in s.cases:
            for lab in c.labels:
                if isinstance(lab, str):
                    pending.append("default" if lab == "default" else repr(self.r.action_run_name(lab)))
                elif isinstance(lab, ir.Const):
                    pending.append(repr(lab.value))
                elif isinstance(lab, (ir.EnumConst, ir.ErrorConst)):
                    pending.append(self.ex(lab))
                else:
                    raise self.fail("switch label must be constant", c.pos)
            if c.body is not None:
                groups.append((pending, c.body))
                pending = []
        default_body: ir.Block | None = None
        first = True
        for labels, body in groups:
            if "default" in labels:
                default_body = body
                continue
            kw = "if" if first else "elif"
            first = False
            cond = f"{t} == {labels[0]}" if len(labels) == 1 else f"{t} in ({', '.join(labels)},)"
            out.append(f"{ind}{kw} {cond}:")
            out.extend(self.stmts(body.stmts, ind + "    ", in_routine))
        if default_body is not None:
            if first:
                out.extend(self.stmts(default_body.stmts, ind, in_routine))
            else:
                out.append(f"{ind}else:")
                out.extend(self.stmts(default_body.stmts, ind + "    ", in_routine))
        return out


def make_fn(pe: ProgramEnv, name: str, body: list[str], params: str = "f") -> Callable[..., Any]:
    src = f"def {name}({params}):\n" + "\n".join(body) + "\n"
    pe.define(src)
    fn: Callable[..., Any] = pe.env[name]
    return fn


_ = Cell  # re-exported to generated code through ops.base_env

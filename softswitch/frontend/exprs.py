"""Expression elaboration and type checking (a mixin of the Elaborator)."""

from __future__ import annotations

from typing import Any

from lark import Token, Tree

from softswitch import ir
from softswitch.frontend.diagnostics import did_you_mean
from softswitch.frontend.host import Host
from softswitch.frontend.typeutil import (
    MAX_WIDTH,
    Scope,
    SemanticError,
    Sym,
    check_width,
    fits,
    is_bits,
    parse_int_literal,
    type_str,
    wrap,
)

__all__ = ["ExprMixin", "substitute", "unify"]

_ARITH = {"+", "-", "*", "/", "%", "|+|", "|-|", "&", "|", "^"}
_CMP = {"==", "!=", "<", "<=", ">", ">="}
_HEADER_METHODS = ("isValid", "setValid", "setInvalid", "minSizeInBits", "minSizeInBytes")
_STACK_METHODS = ("push_front", "pop_front")


def substitute(t: ir.Type, env: dict[str, ir.Type]) -> ir.Type:
    """``t`` with bound type variables replaced."""
    match t:
        case ir.TypeVarT(name):
            return env.get(name, t)
        case ir.ExternT(name, args):
            return ir.ExternT(name, tuple(substitute(a, env) for a in args))
        case ir.TupleT(elems):
            return ir.TupleT(tuple(substitute(e, env) for e in elems))
        case ir.StackT(elem, size):
            return ir.StackT(substitute(elem, env), size)
    return t


def unify(param: ir.Type, arg: ir.Type, env: dict[str, ir.Type]) -> None:
    """Bind type variables of ``param`` from the argument type (first binding wins)."""
    if isinstance(param, ir.TypeVarT):
        if param.name not in env and not isinstance(arg, (ir.InfIntT, ir.DontCareT)):
            env[param.name] = arg
    elif isinstance(param, ir.ExternT) and isinstance(arg, ir.ExternT) and len(param.type_args) == len(arg.type_args):
        for p, a in zip(param.type_args, arg.type_args, strict=False):
            unify(p, a, env)


def _has_typevar(t: ir.Type) -> bool:
    match t:
        case ir.TypeVarT():
            return True
        case ir.ExternT(_, args) | ir.TupleT(args):
            return any(_has_typevar(a) for a in args)
    return False


class ExprMixin(Host):
    """Typed expressions; relies on the Elaborator's tables (self.types, ...)."""

    # ------------------------------------------------------------------ helpers

    def pos(self, node: Any) -> ir.Pos:
        if isinstance(node, Token):
            return self.lines.pos(node.line or 0, node.column or 0)
        if isinstance(node, Tree):
            meta = node.meta
            if not getattr(meta, "empty", True):
                return self.lines.pos(meta.line, meta.column)
            for c in node.children:
                if isinstance(c, (Tree, Token)):
                    p = self.pos(c)
                    if p.line:
                        return p
        return self.cur_pos

    def coerce(self, e: ir.Expr, want: ir.Type, what: str = "expression") -> ir.Expr:
        """``e`` converted implicitly to ``want`` (compile-time ints and lists only)."""
        have = e.type
        if have == want or isinstance(want, ir.TypeVarT) or isinstance(e, ir.DontCare):
            return e
        if isinstance(have, ir.InfIntT) and isinstance(e, ir.Const) and not isinstance(e.value, bool):
            if isinstance(want, (ir.BitT, ir.IntT)):
                v = int(e.value)
                if v >= 0 and not fits(v, want):
                    raise SemanticError(e.pos, f"value {v} does not fit in {type_str(want)} ({what})")
                if isinstance(want, ir.IntT) and not fits(v, want):
                    raise SemanticError(e.pos, f"value {v} does not fit in {type_str(want)} ({what})")
                return ir.Const(e.pos, want, wrap(v, want))
            if isinstance(want, ir.InfIntT):
                return e
        if isinstance(have, ir.SerEnumT) and have.underlying == want:
            # A serializable enum converts implicitly to its underlying type.
            if isinstance(e, ir.Const):
                return ir.Const(e.pos, want, e.value)
            return ir.Cast(e.pos, want, e)
        if isinstance(e, (ir.ListExpr, ir.StructExpr)) and isinstance(want, (ir.StructT, ir.HeaderT)):
            return self._to_struct(e, want, what)
        if isinstance(e, ir.ListExpr) and isinstance(want, ir.TupleT) and len(want.elems) == len(e.items):
            items = tuple(self.coerce(i, t, what) for i, t in zip(e.items, want.elems, strict=False))
            return ir.ListExpr(e.pos, want, items)
        raise SemanticError(e.pos, f"cannot convert {type_str(have)} to {type_str(want)} in {what}"
                            + (" (use an explicit cast)" if is_bits(have) and is_bits(want) else ""))

    def _to_struct(self, e: ir.ListExpr | ir.StructExpr, want: ir.StructT | ir.HeaderT,
                   what: str) -> ir.Expr:
        names = [n for n, _ in want.fields]
        if isinstance(e, ir.ListExpr):
            if len(e.items) != len(want.fields):
                raise SemanticError(e.pos, f"{type_str(want)} has {len(want.fields)} fields, "
                                    f"the list has {len(e.items)} ({what})")
            given = dict(zip(names, e.items, strict=False))
        else:
            given = dict(e.fields)
            for n in given:
                if n not in names:
                    raise SemanticError(e.pos, f"no field '{n}' in {type_str(want)}{did_you_mean(n, names)}")
            missing = [n for n in names if n not in given]
            if missing:
                raise SemanticError(e.pos, f"missing field(s) {', '.join(missing)} of {type_str(want)}")
        fields = tuple((n, self.coerce(given[n], t, f"field {n}")) for n, t in want.fields)
        return ir.StructExpr(e.pos, want, fields)

    def concrete(self, e: ir.Expr, what: str) -> ir.Expr:
        """Reject compile-time-only values where a runtime value is needed."""
        if isinstance(e.type, ir.InfIntT):
            raise SemanticError(e.pos, f"cannot infer a width for {what}; give the integer a width "
                                "(e.g. 8w5) or cast it")
        if isinstance(e, ir.ListExpr):
            return ir.ListExpr(e.pos, e.type, tuple(self.concrete(i, what) for i in e.items))
        return e

    def const_int(self, t: Any, sc: Scope, what: str) -> int:
        e = self.expr(t, sc)
        if not isinstance(e, ir.Const) or isinstance(e.value, bool):
            raise SemanticError(self.pos(t), f"{what} must be a compile-time integer constant")
        return int(e.value)

    # --------------------------------------------------------------- expressions

    def expr(self, t: Any, sc: Scope, want: ir.Type | None = None, what: str = "expression") -> ir.Expr:
        """Typed expression ``t``; converted implicitly to ``want`` when given (``what``
        names the context in messages)."""
        e = self._expr(t, sc, want)
        return self.coerce(e, want, what) if want is not None else e

    def _expr(self, t: Any, sc: Scope, want: ir.Type | None) -> ir.Expr:
        p = self.pos(t)
        if isinstance(t, Token):  # a bare INTEGER etc. inlined by '?' rules
            raise SemanticError(p, f"unexpected token '{t}'")
        k = t.data
        ch = t.children
        if k == "int_lit":
            value, ty = parse_int_literal(str(ch[0]))
            if isinstance(ty, (ir.BitT, ir.IntT)):
                check_width(ty.width, p, f"literal {ch[0]}")
            if not isinstance(ty, ir.InfIntT) and not fits(value, ty):
                if isinstance(ty, ir.BitT) or value >= 0:
                    raise SemanticError(p, f"literal {ch[0]} does not fit in {type_str(ty)}")
            return ir.Const(p, ty, value)
        if k == "true_lit":
            return ir.Const(p, ir.BoolT(), True)
        if k == "false_lit":
            return ir.Const(p, ir.BoolT(), False)
        if k == "str_lit":
            try:
                text = bytes(str(ch[0])[1:-1], "utf-8").decode("unicode_escape")
            except UnicodeDecodeError as e:
                raise SemanticError(p, f"invalid escape sequence in string literal {ch[0]}: {e.reason}") from None
            return ir.StrConst(p, ir.StringT(), text)
        if k in ("name_ref", "dot_name_ref"):
            name = self.name_of(ch[0])
            return self.ref(name, sc if k == "name_ref" else self.globals, p)
        if k == "type_member":
            return self.type_member(str(ch[0]), self.name_of(ch[1]), p)
        if k == "error_member":
            n = self.name_of(ch[0])
            if n not in self.errors:
                raise SemanticError(p, f"no error 'error.{n}'{did_you_mean(n, self.errors)}")
            return ir.ErrorConst(p, ir.ErrorT(), n)
        if k == "empty_list":
            return ir.ListExpr(p, ir.TupleT(()), ())
        if k == "list_expr":
            items = tuple(self.expr(c, sc) for c in ch[0].children)
            if isinstance(want, ir.TupleT) and len(want.elems) == len(items):
                items = tuple(self.coerce(i, w) for i, w in zip(items, want.elems, strict=False))
            elif isinstance(want, (ir.StructT, ir.HeaderT)) and len(want.fields) == len(items):
                items = tuple(self.coerce(i, w) for i, (_, w) in zip(items, want.fields, strict=False))
            return ir.ListExpr(p, ir.TupleT(tuple(i.type for i in items)), items)
        if k == "struct_expr":
            fields = []
            for kv in ch:
                fname = str(kv.children[0])
                ftype = None
                if isinstance(want, (ir.StructT, ir.HeaderT)):
                    ftype = dict(want.fields).get(fname)
                fields.append((fname, self.expr(kv.children[1], sc, ftype)))
            return ir.StructExpr(p, ir.TupleT(tuple(f.type for _, f in fields)), tuple(fields))
        if k == "member":
            return self.member(t, sc)
        if k == "index":
            base = self.expr(ch[0], sc)
            if not isinstance(base.type, ir.StackT):
                raise SemanticError(p, f"cannot index a value of type {type_str(base.type)}")
            idx = self.expr(ch[1], sc)
            if isinstance(idx, ir.Const) and isinstance(idx.type, ir.InfIntT):
                if not 0 <= int(idx.value) < base.type.size:
                    raise SemanticError(idx.pos, f"index {idx.value} out of bounds for "
                                        f"{type_str(base.type)}")
                idx = ir.Const(idx.pos, ir.BitT(32), int(idx.value))
            elif not is_bits(idx.type):
                raise SemanticError(idx.pos, f"a stack index must be bit<N> or int<N>, not {type_str(idx.type)}")
            return ir.Index(p, base.type.elem, base, idx)
        if k == "slice":
            base = self.expr(ch[0], sc)
            hi = self.const_int(ch[1], sc, "slice bound")
            lo = self.const_int(ch[2], sc, "slice bound")
            if not is_bits(base.type):
                raise SemanticError(p, f"cannot slice a value of type {type_str(base.type)}")
            w = base.type.width  # type: ignore[attr-defined]
            if not (0 <= lo <= hi < w):
                raise SemanticError(p, f"slice [{hi}:{lo}] out of range for {type_str(base.type)}")
            ty = ir.BitT(hi - lo + 1)
            if isinstance(base, ir.Const):
                return ir.Const(p, ty, (int(base.value) >> lo) & ((1 << (hi - lo + 1)) - 1))
            return ir.Slice(p, ty, base, hi, lo)
        if k in ("call", "generic_call"):
            return self.call(t, sc)
        if k == "unop":
            return self.unop(str(ch[0]), self.expr(ch[1], sc), p)
        if k == "cast":
            ty = self.type_ref(ch[0])
            return self.cast(self.expr(ch[1], sc, None), ty, p)
        if k in ("binop", "lor", "land", "bor", "bxor", "band"):
            if k == "binop":
                op, lt, rt = str(ch[1]), ch[0], ch[2]
            else:
                op = {"lor": "||", "land": "&&", "bor": "|", "bxor": "^", "band": "&"}[k]
                lt, rt = ch[0], ch[1]
            return self.binop(op, self.expr(lt, sc), self.expr(rt, sc), p)
        if k == "mux":
            c = self.expr(ch[0], sc, ir.BoolT())
            a = self.expr(ch[1], sc, want)
            b = self.expr(ch[2], sc, want)
            a, b = self.unify_operands(a, b, "?:")
            if isinstance(c, ir.Const):
                return a if c.value else b
            if isinstance(a.type, ir.InfIntT):
                raise SemanticError(p, "cannot infer the width of '?:' with integer literals on "
                                    "both sides; give one a width")
            return ir.Mux(p, a.type, c, a, b)
        raise SemanticError(p, f"unsupported expression ({k})")

    def name_of(self, t: Any) -> str:
        if isinstance(t, Tree):
            return str(t.children[0])
        return str(t)

    def ref(self, name: str, sc: Scope, p: ir.Pos) -> ir.Expr:
        s = sc.lookup(name)
        if s is None:
            raise SemanticError(p, f"'{name}' is not declared{did_you_mean(name, sc.names())}")
        return self.sym_expr(s, name, p)

    def sym_expr(self, s: Sym, name: str, p: ir.Pos) -> ir.Expr:
        if s.kind == "var":
            assert s.type is not None
            return ir.VarRef(p, s.type, s.name, name)
        if s.kind == "const":
            v = s.value
            assert v is not None
            return _repos(v, p)
        if s.kind == "instance":
            assert s.type is not None
            return ir.InstanceRef(p, s.type, s.name, s.top_level)
        raise SemanticError(p, f"'{name}' is a {s.kind} and cannot be used as a value here")

    def type_member(self, tname: str, member: str, p: ir.Pos) -> ir.Expr:
        ty = self.types.get(tname)
        if isinstance(ty, ir.EnumT):
            if member not in ty.members:
                raise SemanticError(p, f"no member '{member}' in enum {tname}{did_you_mean(member, ty.members)}")
            return ir.EnumConst(p, ty, member)
        if isinstance(ty, ir.SerEnumT):
            vals = dict(ty.members)
            if member not in vals:
                raise SemanticError(p, f"no member '{member}' in enum {tname}{did_you_mean(member, vals)}")
            return ir.Const(p, ty, vals[member])
        raise SemanticError(p, f"'{tname}.{member}': {tname} is not an enum")

    def member(self, t: Tree, sc: Scope) -> ir.Expr:
        p = self.pos(t)
        base = self.expr(t.children[0], sc)
        m = self.name_of(t.children[1])
        bt = base.type
        if isinstance(bt, (ir.HeaderT, ir.StructT, ir.HeaderUnionT)):
            for n, ft in bt.fields:
                if n == m:
                    if isinstance(base, ir.StructExpr):
                        return dict(base.fields)[m]
                    return ir.Member(p, ft, base, m)
            kind = {ir.HeaderT: "header", ir.StructT: "struct", ir.HeaderUnionT: "header_union"}[type(bt)]
            hint = did_you_mean(m, [n for n, _ in bt.fields])
            if m in _HEADER_METHODS:
                hint = f"; '{m}' is a method: call it as {m}()"
            raise SemanticError(p, f"no field '{m}' in {kind} {bt.name}{hint}")
        if isinstance(bt, ir.StackT):
            if m in ("next", "last"):
                if self.context != "parser":
                    raise SemanticError(p, f"'{m}' of a header stack can only be used in a parser")
                return ir.Member(p, bt.elem, base, m)
            if m == "lastIndex":
                return ir.Member(p, ir.BitT(32), base, m)
            if m == "size":
                return ir.Const(p, ir.BitT(32), bt.size)
            raise SemanticError(p, f"no member '{m}' on a header stack"
                                f"{did_you_mean(m, ['next', 'last', 'lastIndex', 'size'])}")
        if isinstance(bt, ir.TableResultT):
            if m in ("hit", "miss"):
                return ir.Member(p, ir.BoolT(), base, m)
            if m == "action_run":
                return ir.Member(p, ir.VoidT(), base, m)
            raise SemanticError(p, f"no member '{m}' on a table apply result; expected hit, miss or action_run")
        raise SemanticError(p, f"no member '{m}' in a value of type {type_str(bt)}")

    # ---------------------------------------------------------------- operators

    def unify_operands(self, a: ir.Expr, b: ir.Expr, op: str) -> tuple[ir.Expr, ir.Expr]:
        if isinstance(a.type, ir.SerEnumT) and a.type != b.type:
            a = self.coerce(a, a.type.underlying, f"operand of '{op}'")
        if isinstance(b.type, ir.SerEnumT) and a.type != b.type:
            b = self.coerce(b, b.type.underlying, f"operand of '{op}'")
        if isinstance(a.type, ir.InfIntT) and not isinstance(b.type, ir.InfIntT):
            a = self.coerce(a, b.type, f"operand of '{op}'")
        elif isinstance(b.type, ir.InfIntT) and not isinstance(a.type, ir.InfIntT):
            b = self.coerce(b, a.type, f"operand of '{op}'")
        if a.type != b.type:
            raise SemanticError(a.pos, f"operands of '{op}' have different types "
                                f"{type_str(a.type)} and {type_str(b.type)}; use a cast")
        return a, b

    def unop(self, op: str, e: ir.Expr, p: ir.Pos) -> ir.Expr:
        t = e.type
        if op == "!":
            if not isinstance(t, ir.BoolT):
                raise SemanticError(p, f"'!' needs a bool operand, not {type_str(t)}")
            if isinstance(e, ir.Const):
                return ir.Const(p, t, not e.value)
            return ir.Unary(p, t, "!", e)
        if op == "+":
            return e
        if not (is_bits(t) or isinstance(t, ir.InfIntT)):
            raise SemanticError(p, f"'{op}' needs an integer operand, not {type_str(t)}")
        if op == "~" and isinstance(t, ir.InfIntT):
            raise SemanticError(p, "'~' needs an operand with a width; give the integer a width")
        if isinstance(e, ir.Const):
            v = -int(e.value) if op == "-" else ~int(e.value)
            return ir.Const(p, t, wrap(v, t))
        return ir.Unary(p, t, op, e)

    def binop(self, op: str, a: ir.Expr, b: ir.Expr, p: ir.Pos) -> ir.Expr:
        if op in ("&&", "||"):
            for x in (a, b):
                if not isinstance(x.type, ir.BoolT):
                    raise SemanticError(x.pos, f"'{op}' needs bool operands, not {type_str(x.type)}")
            if isinstance(a, ir.Const) and isinstance(b, ir.Const):
                return ir.Const(p, ir.BoolT(), (a.value and b.value) if op == "&&" else (a.value or b.value))
            return ir.Binary(p, ir.BoolT(), op, a, b)
        if op == "++":
            for x in (a, b):
                if not is_bits(x.type):
                    raise SemanticError(x.pos, f"operands of '++' need a width, not {type_str(x.type)}")
            wa, wb = a.type.width, b.type.width  # type: ignore[attr-defined]
            check_width(wa + wb, p, "the result of '++'")
            ty: ir.Type = ir.IntT(wa + wb) if isinstance(a.type, ir.IntT) else ir.BitT(wa + wb)
            if isinstance(a, ir.Const) and isinstance(b, ir.Const):
                return ir.Const(p, ty, wrap(((int(a.value) & ((1 << wa) - 1)) << wb) | (int(b.value) & ((1 << wb) - 1)), ty))
            return ir.Binary(p, ty, op, a, b)
        if op in ("<<", ">>"):
            if not (is_bits(a.type) or isinstance(a.type, ir.InfIntT)):
                raise SemanticError(a.pos, f"cannot shift a value of type {type_str(a.type)}")
            if isinstance(b, ir.Const) and isinstance(b.type, ir.InfIntT):
                if int(b.value) < 0:
                    raise SemanticError(b.pos, "shift amount must not be negative")
                if isinstance(a, ir.Const):
                    return ir.Const(p, a.type, _shift(op, int(a.value), int(b.value), a.type, b.pos))
                b = ir.Const(b.pos, ir.BitT(max(8, int(b.value).bit_length())), int(b.value))
            elif not isinstance(b.type, ir.BitT):
                raise SemanticError(b.pos, f"shift amount must be an unsigned bit<N>, not {type_str(b.type)}")
            if isinstance(a.type, ir.InfIntT):
                raise SemanticError(a.pos, "cannot shift an integer without a width by a run-time "
                                    "amount; give it a width")
            if isinstance(a, ir.Const) and isinstance(b, ir.Const):
                return ir.Const(p, a.type, _shift(op, int(a.value), int(b.value), a.type, b.pos))
            return ir.Binary(p, a.type, op, a, b)
        if op in ("/", "%"):
            # As p4c (and the spec): '/' and '%' are defined for bit<N> and for
            # non-negative int only, at compile time as at run time.
            for x in (a, b):
                xt = x.type.underlying if isinstance(x.type, ir.SerEnumT) else x.type
                if isinstance(xt, ir.IntT):
                    raise SemanticError(p, f"'{op}' cannot operate on signed values ({type_str(x.type)}); "
                                        f"P4 defines it only on bit<N> and non-negative int")
                if isinstance(x, ir.Const) and isinstance(x.type, ir.InfIntT) and int(x.value) < 0:
                    raise SemanticError(p, f"'{op}' is not defined on negative numbers")
        a, b = self.unify_operands(a, b, op)
        t = a.type
        if op in _CMP:
            if op not in ("==", "!=") and not (is_bits(t) or isinstance(t, ir.InfIntT)):
                raise SemanticError(p, f"'{op}' needs integer operands, not {type_str(t)}")
            if isinstance(a, ir.Const) and isinstance(b, ir.Const):
                return ir.Const(p, ir.BoolT(), _compare(op, a.value, b.value))
            return ir.Binary(p, ir.BoolT(), op, a, b)
        if op not in _ARITH:
            raise SemanticError(p, f"unsupported operator '{op}'")
        if not (is_bits(t) or isinstance(t, ir.InfIntT)):
            raise SemanticError(p, f"'{op}' needs integer operands, not {type_str(t)}")
        if op in ("|+|", "|-|") and isinstance(t, ir.InfIntT):
            raise SemanticError(p, f"'{op}' needs operands with a width")
        if isinstance(a, ir.Const) and isinstance(b, ir.Const):
            return ir.Const(p, t, _fold(op, int(a.value), int(b.value), t, p))
        if op in ("/", "%") and isinstance(b, ir.Const) and int(b.value) == 0:
            raise SemanticError(p, "division by zero")
        return ir.Binary(p, t, op, a, b)

    def cast(self, e: ir.Expr, ty: ir.Type, p: ir.Pos) -> ir.Expr:
        src = e.type
        if src == ty:
            return e
        ok = False
        if isinstance(ty, (ir.BitT, ir.IntT)):
            ok = isinstance(src, (ir.BitT, ir.IntT, ir.InfIntT, ir.SerEnumT)) or (
                isinstance(src, ir.BoolT) and ty == ir.BitT(1))
            if isinstance(src, ir.BitT) and isinstance(ty, ir.IntT) and src.width != ty.width:
                ok = False
            if isinstance(src, ir.IntT) and isinstance(ty, ir.BitT) and src.width != ty.width:
                ok = False
        elif isinstance(ty, ir.BoolT):
            ok = src == ir.BitT(1) or isinstance(src, ir.InfIntT)
        elif isinstance(ty, ir.SerEnumT):
            ok = is_bits(src) or isinstance(src, ir.InfIntT)
        elif isinstance(ty, (ir.StructT, ir.HeaderT, ir.TupleT)) and isinstance(e, (ir.ListExpr, ir.StructExpr)):
            return self.coerce(e, ty, "cast")
        if not ok:
            raise SemanticError(p, f"cannot cast {type_str(src)} to {type_str(ty)}")
        if isinstance(e, ir.Const):
            if isinstance(ty, ir.BoolT):
                return ir.Const(p, ty, bool(e.value))
            under = ty.underlying if isinstance(ty, ir.SerEnumT) else ty
            return ir.Const(p, ty, wrap(int(e.value), under))
        return ir.Cast(p, ty, e)


def _compare(op: str, a: Any, b: Any) -> bool:
    return bool({"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def _shift(op: str, a: int, b: int, t: ir.Type, pb: ir.Pos) -> int:
    """``a << b`` or ``a >> b`` folded in type ``t`` (``pb``: the amount's position)."""
    if op == ">>":
        return wrap(a >> b, t)
    if isinstance(t, (ir.BitT, ir.IntT)):
        return wrap(a << min(b, t.width), t)  # shifting by the width or more gives 0
    if b > MAX_WIDTH:
        raise SemanticError(pb, f"shift amount {b} is too large for an integer without a width "
                                f"(at most {MAX_WIDTH})")
    return wrap(a << b, t)


def _fold(op: str, a: int, b: int, t: ir.Type, p: ir.Pos) -> int:
    if op in ("/", "%"):
        if b == 0:
            raise SemanticError(p, "division by zero in a constant expression")
        if a < 0 or b < 0 or isinstance(t, ir.IntT):  # refused by binop before folding
            raise SemanticError(p, f"'{op}' is not defined on negative numbers")
    if op in ("|+|", "|-|"):
        v = a + b if op == "|+|" else a - b
        if isinstance(t, ir.BitT):
            return max(0, min(v, (1 << t.width) - 1))
        if isinstance(t, ir.IntT):
            return max(-(1 << (t.width - 1)), min(v, (1 << (t.width - 1)) - 1))
    v = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a // b,
         "%": lambda: a % b, "&": lambda: a & b, "|": lambda: a | b, "^": lambda: a ^ b}[op]()
    return wrap(v, t)


def _repos(v: ir.Expr, p: ir.Pos) -> ir.Expr:
    """A folded constant at the position of the reference."""
    if isinstance(v, ir.Const):
        return ir.Const(p, v.type, v.value)
    if isinstance(v, ir.EnumConst):
        return ir.EnumConst(p, v.type, v.member)
    if isinstance(v, ir.ErrorConst):
        return ir.ErrorConst(p, v.type, v.name)
    if isinstance(v, ir.StrConst):
        return ir.StrConst(p, v.type, v.value)
    return v

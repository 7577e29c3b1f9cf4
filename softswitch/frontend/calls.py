"""Call classification, overload resolution, argument binding and type-argument
inference (a mixin of the Elaborator)."""

from __future__ import annotations

from typing import Any

from lark import Token, Tree

from softswitch import ir
from softswitch.frontend.diagnostics import did_you_mean
from softswitch.frontend.exprs import _has_typevar, substitute, unify
from softswitch.frontend.host import Host, RawArg
from softswitch.frontend.typeutil import Scope, SemanticError, type_str

__all__ = ["CallMixin", "RawArg"]



class CallMixin(Host):
    def raw_args(self, t: Tree | None) -> list[RawArg]:
        out: list[RawArg] = []
        if t is None:
            return out
        for a in t.children:
            if a.data == "dontcare_arg":
                out.append((None, "_", self.pos(a)))
            elif a.data == "named_arg":
                out.append((str(a.children[0]), a.children[1], self.pos(a)))
            else:
                out.append((None, a.children[0], self.pos(a)))
        return out

    def call(self, t: Tree, sc: Scope) -> ir.Expr:
        p = self.pos(t)
        ch = t.children
        if t.data == "generic_call":
            callee, targs = ch[0], tuple(self.type_arg(a) for a in ch[2].children)
            args = self.raw_args(ch[3])
        else:
            callee, targs = ch[0], ()
            args = self.raw_args(ch[1])
        if isinstance(callee, Tree) and callee.data in ("name_ref", "dot_name_ref"):
            name = self.name_of(callee.children[0])
            scope = sc if callee.data == "name_ref" else self.globals
            s = scope.lookup(name)
            if s is None:
                raise SemanticError(p, f"'{name}' is not declared{did_you_mean(name, scope.names())}")
            if s.kind == "action":
                decl = s.decl
                assert isinstance(decl, ir.ActionDecl)
                bound = self.bind(decl.params, args, sc, p, {}, f"action {name}")
                return ir.ActionCall(p, ir.VoidT(), s.name, bound, s.top_level)
            if s.kind == "function":
                fdecl = s.decl
                assert isinstance(fdecl, ir.FunctionDecl)
                env: dict[str, ir.Type] = dict(zip(fdecl.type_params, targs, strict=False))
                bound = self.bind(fdecl.params, args, sc, p, env, f"function {name}")
                return ir.FunctionCall(p, substitute(fdecl.return_type, env), name, bound)
            if s.kind == "extern_fn":
                if name == "verify" and self.context != "parser":
                    raise SemanticError(p, "verify() can only be called in a parser")
                sig, bound, env = self.overload(self.extern_functions[name], args, sc, p, targs, {},
                                                f"extern function {name}")
                rt = self.result_type(sig, env, p)
                return ir.ExternFunctionCall(p, rt, name, bound, tuple(env[n] for n in sig.type_params))
            if s.kind == "table":
                raise SemanticError(p, f"'{name}' is a table: apply it with {name}.apply()")
            raise SemanticError(p, f"'{name}' is not callable")
        if isinstance(callee, Tree) and callee.data == "member":
            base_t, m = callee.children[0], self.name_of(callee.children[1])
            if isinstance(base_t, Tree) and base_t.data == "name_ref":
                s = sc.lookup(self.name_of(base_t.children[0]))
                if s is not None and s.kind == "table":
                    if m != "apply":
                        raise SemanticError(p, f"a table has only the method apply(), not '{m}'")
                    if args:
                        raise SemanticError(p, "table apply() takes no arguments")
                    if self.context != "control":
                        raise SemanticError(p, f"table {self.name_of(base_t.children[0])} can only be applied in the apply block of a control")
                    first = self.table_applied.setdefault(s.name, p)
                    if first != p:
                        raise SemanticError(p, f"table {self.name_of(base_t.children[0])} is applied more "
                                            f"than once (first at {first}); p4c allows one call site "
                                            "per table")
                    return ir.TableApply(p, ir.TableResultT(s.name), s.name)
            base = self.expr(base_t, sc)
            return self.method_call(base, m, args, targs, sc, p)
        raise SemanticError(p, "this expression cannot be called")

    def method_call(self, base: ir.Expr, m: str, args: list[RawArg], targs: tuple[ir.Type, ...],
                    sc: Scope, p: ir.Pos) -> ir.Expr:
        bt = base.type
        if isinstance(bt, ir.ExternT):
            decl = self.externs[bt.name]
            sigs = tuple(s for s in decl.methods if s.name == m)
            if not sigs:
                raise SemanticError(p, f"extern {bt.name} has no method '{m}'"
                                    f"{did_you_mean(m, [s.name for s in decl.methods])}")
            env = dict(zip(decl.type_params, bt.type_args, strict=False))
            sig, bound, env = self.overload(sigs, args, sc, p, targs, env, f"{bt.name}.{m}")
            rt = self.result_type(sig, env, p)
            return ir.ExternMethodCall(p, rt, base, bt.name, m, bound, tuple(env[n] for n in sig.type_params))
        if isinstance(bt, (ir.ParserT, ir.ControlT)) and isinstance(base, ir.InstanceRef):
            if m != "apply":
                raise SemanticError(p, f"{type_str(bt)} instances have only the method apply()")
            bdecl: ir.ParserDecl | ir.ControlDecl | None = (
                self.parsers.get(bt.name) if isinstance(bt, ir.ParserT) else self.controls.get(bt.name))
            if bdecl is None:
                raise SemanticError(p, f"{type_str(bt)} is only a type; it has no body to apply")
            bound = self.bind(bdecl.params, args, sc, p, {}, f"{bt.name}.apply")
            return ir.SubApply(p, ir.VoidT(), base.name, bound)
        if isinstance(bt, (ir.HeaderT, ir.HeaderUnionT)):
            allowed = ("isValid",) if isinstance(bt, ir.HeaderUnionT) else (
                "isValid", "setValid", "setInvalid", "minSizeInBits", "minSizeInBytes")
            if m not in allowed:
                raise SemanticError(p, f"no method '{m}' on {type_str(bt)}{did_you_mean(m, allowed)}")
            if args:
                raise SemanticError(p, f"{m}() takes no arguments")
            if m in ("minSizeInBits", "minSizeInBytes"):
                bits = sum(ft.width for _, ft in bt.fields if isinstance(ft, (ir.BitT, ir.IntT)))
                return ir.Const(p, ir.InfIntT(), bits if m == "minSizeInBits" else (bits + 7) // 8)
            if m in ("setValid", "setInvalid"):
                self.check_lvalue(base, f"{m}()")
            btype: ir.Type = ir.BoolT() if m == "isValid" else ir.VoidT()
            return ir.BuiltinMethodCall(p, btype, base, m, ())
        if isinstance(bt, ir.StackT):
            if m not in ("push_front", "pop_front"):
                raise SemanticError(p, f"no method '{m}' on a header stack"
                                    f"{did_you_mean(m, ['push_front', 'pop_front'])}")
            if len(args) != 1 or args[0][1] == "_":
                raise SemanticError(p, f"{m}() takes one argument: the number of elements")
            n = self.expr(args[0][1], sc)
            if not isinstance(n, ir.Const) or int(n.value) < 0:
                raise SemanticError(n.pos, f"the argument of {m}() must be a non-negative constant")
            self.check_lvalue(base, f"{m}()")
            return ir.BuiltinMethodCall(p, ir.VoidT(), base, m,
                                        (ir.Arg("in", ir.Const(n.pos, ir.BitT(32), int(n.value))),))
        raise SemanticError(p, f"no method '{m}' on a value of type {type_str(bt)}")

    def result_type(self, sig: ir.MethodSig, env: dict[str, ir.Type], p: ir.Pos) -> ir.Type:
        for n in sig.type_params:
            if n not in env:
                raise SemanticError(p, f"cannot infer type argument {n} of {sig.name}; give it "
                                    f"explicitly, e.g. {sig.name}<bit<8>>(...)")
        rt = substitute(sig.return_type, env)
        if _has_typevar(rt):
            raise SemanticError(p, f"cannot infer the result type of {sig.name}")
        return rt

    def overload(self, sigs: tuple[ir.MethodSig, ...], args: list[RawArg], sc: Scope, p: ir.Pos,
                 targs: tuple[ir.Type, ...], env0: dict[str, ir.Type], what: str
                 ) -> tuple[ir.MethodSig, tuple[ir.Arg, ...], dict[str, ir.Type]]:
        fitting = [s for s in sigs if _arity_ok(s.params, args)]
        if not fitting:
            counts = sorted({len(s.params) for s in sigs})
            raise SemanticError(p, f"{what} takes {' or '.join(map(str, counts))} argument(s), "
                                f"{len(args)} given")
        last: SemanticError | None = None
        for sig in fitting:
            env = dict(env0)
            if targs:
                if len(targs) != len(sig.type_params):
                    last = SemanticError(p, f"{what} takes {len(sig.type_params)} type argument(s), "
                                         f"{len(targs)} given")
                    continue
                env.update(zip(sig.type_params, targs, strict=False))
            try:
                bound = self.bind(sig.params, args, sc, p, env, what)
            except SemanticError as e:
                last = e
                continue
            return sig, bound, env
        assert last is not None
        raise last

    def bind(self, params: tuple[ir.Param, ...], args: list[RawArg], sc: Scope, p: ir.Pos,
             env: dict[str, ir.Type], what: str) -> tuple[ir.Arg, ...]:
        """Arguments in parameter order with defaults filled in; infers type variables into env."""
        names = [q.name for q in params]
        given: dict[int, RawArg] = {}
        positional = True
        for i, a in enumerate(args):
            if a[0] is None:
                if not positional:
                    raise SemanticError(a[2], f"positional argument after named arguments in call of {what}")
                if i >= len(params):
                    raise SemanticError(p, f"too many arguments for {what}: expected {len(params)}, "
                                        f"got {len(args)}")
                given[i] = a
            else:
                positional = False
                if a[0] not in names:
                    raise SemanticError(a[2], f"{what} has no parameter '{a[0]}'{did_you_mean(a[0], names)}")
                given[names.index(a[0])] = a
        # First pass: elaborate, inferring type variables from sized arguments.
        elab: dict[int, ir.Expr] = {}
        for i, q in enumerate(params):
            if i not in given:
                continue
            _, tree, apos = given[i]
            if tree == "_":
                if q.direction not in ("out", "inout", "in", ""):
                    raise SemanticError(apos, f"'_' is not allowed for parameter {q.name}")
                elab[i] = ir.DontCare(apos, ir.DontCareT())
                continue
            want = None if _has_typevar(q.type) else q.type
            if q.direction in ("out", "inout"):
                want = None
            e = self.expr(tree, sc, want, f"argument '{q.name}' of {what}")
            unify(q.type, e.type, env)
            elab[i] = e
        out: list[ir.Arg] = []
        for i, q in enumerate(params):
            if i not in elab:
                if q.default is not None:
                    out.append(ir.Arg(q.direction, q.default))
                    continue
                if ir.annotation(q.annotations, "optional") is not None:
                    continue
                raise SemanticError(p, f"missing argument for parameter '{q.name}' of {what}")
            e = elab[i]
            qt = substitute(q.type, env)
            if isinstance(e, ir.DontCare):
                out.append(ir.Arg(q.direction, ir.DontCare(e.pos, qt if not _has_typevar(qt) else ir.DontCareT())))
                continue
            if q.direction in ("out", "inout"):
                self.check_lvalue(e, f"argument for {q.direction} parameter '{q.name}' of {what}")
                if not _has_typevar(qt) and e.type != qt:
                    raise SemanticError(e.pos, f"argument for {q.direction} parameter '{q.name}' of {what} "
                                        f"has type {type_str(e.type)}, expected {type_str(qt)}")
            else:
                if _has_typevar(qt):
                    if isinstance(e.type, ir.InfIntT):
                        raise SemanticError(e.pos, f"cannot infer the type of parameter '{q.name}' of {what} "
                                            "from an integer without a width; give it a width (e.g. 32w0)")
                    e = self.concrete(e, f"argument '{q.name}' of {what}")
                else:
                    e = self.coerce(e, qt, f"argument '{q.name}' of {what}")
            out.append(ir.Arg(q.direction, e))
        return tuple(out)

    def check_lvalue(self, e: ir.Expr, what: str) -> None:
        root = e
        while True:
            if isinstance(root, (ir.Member, ir.Slice)):
                if isinstance(root, ir.Member) and isinstance(root.expr.type, ir.StackT) \
                        and root.member not in ("next", "last"):
                    break
                if isinstance(root, ir.Member) and isinstance(root.expr.type, ir.TableResultT):
                    break
                root = root.expr
            elif isinstance(root, ir.Index):
                root = root.expr
            else:
                break
        if isinstance(root, ir.VarRef):
            if root.name in self.readonly:
                raise SemanticError(e.pos, f"cannot write '{root.original_name or root.name}' in {what}: "
                                    "it is a read-only (in or directionless) parameter")
            return
        if isinstance(root, ir.Const):
            raise SemanticError(e.pos, f"{what} must be an l-value, not a constant")
        raise SemanticError(e.pos, f"{what} must be an l-value (a variable, field, stack element or slice)")

    def type_arg(self, t: Any) -> ir.Type:
        if isinstance(t, Token):
            return self.type_ref(t)
        if t.data == "type_arg":
            return self.type_ref(t.children[0])
        return self.type_ref(t)


def _arity_ok(params: tuple[ir.Param, ...], args: list[RawArg]) -> bool:
    if any(a[0] is not None for a in args):
        return len(args) <= len(params)
    required = sum(1 for q in params if q.default is None and ir.annotation(q.annotations, "optional") is None)
    return required <= len(args) <= len(params)



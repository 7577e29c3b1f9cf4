"""Parse tree -> typed IR: top-level declarations and types.

The Elaborator walks the lark tree once, in source order (P4 requires declaration
before use), checks types and builds the IR directly; expressions, calls and blocks
live in mixins (exprs.py, calls.py, blocks.py) to keep the modules small.
"""

from __future__ import annotations

from typing import Any

from lark import Token, Tree

from softswitch import ir
from softswitch.frontend.blocks import BlockMixin
from softswitch.frontend.calls import CallMixin
from softswitch.frontend.diagnostics import Diagnostic, FrontendError, did_you_mean
from softswitch.frontend.exprs import ExprMixin
from softswitch.frontend.preprocess import LineMap
from softswitch.frontend.typeutil import (
    MAX_STACK_SIZE,
    Scope,
    SemanticError,
    Sym,
    check_width,
    parse_int_literal,
    type_str,
)

__all__ = ["Elaborator", "elaborate"]


def elaborate(tree: Tree, lines: LineMap) -> ir.Program:
    return Elaborator(lines).program(tree)


def _annotation(t: Tree, pos: ir.Pos) -> ir.Annotation:
    name = str(t.children[0])
    body = str(t.children[1]) if len(t.children) > 1 else ""
    return ir.Annotation(name, body, _anno_args(body), pos)


def _anno_args(body: str) -> tuple[str | int, ...]:
    """Literal arguments of an annotation body: strings and integers, else ()."""
    out: list[str | int] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c in " \t\r\n,":
            i += 1
        elif c == '"':
            j = i + 1
            buf = []
            while j < n and body[j] != '"':
                if body[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(body[j])
                j += 1
            out.append("".join(buf))
            i = j + 1
        else:
            j = i
            while j < n and body[j] not in " \t\r\n,":
                j += 1
            try:
                out.append(parse_int_literal(body[i:j])[0])
            except ValueError:
                return ()
            i = j
    return tuple(out)


class Elaborator(ExprMixin, CallMixin, BlockMixin):
    def __init__(self, lines: LineMap) -> None:
        self.lines = lines
        self.diags: list[Diagnostic] = []
        self.cur_pos = ir.NOPOS
        self.types: dict[str, ir.Type] = {}
        self.type_decl_names: list[str] = []
        self.constants: dict[str, ir.Const | ir.EnumConst | ir.ErrorConst | ir.StrConst] = {}
        self.errors: list[str] = []
        self.match_kinds: list[str] = []
        self.externs: dict[str, ir.ExternDecl] = {}
        self.extern_functions: dict[str, tuple[ir.MethodSig, ...]] = {}
        self.functions: dict[str, ir.FunctionDecl] = {}
        self.actions: dict[str, ir.ActionDecl] = {}
        self.parsers: dict[str, ir.ParserDecl] = {}
        self.controls: dict[str, ir.ControlDecl] = {}
        self.packages: dict[str, ir.PackageDecl] = {}
        self.block_types: dict[str, tuple[str, tuple[ir.Param, ...]]] = {}
        self.instances: dict[str, ir.Instance] = {}
        self.main: ir.MainInstance | None = None
        self.globals = Scope()
        # Declarations that failed: later references to them report nothing more.
        self.failed: set[str] = set()
        self.tparams: set[str] = set()
        self.readonly: set[str] = set()

    # ---------------------------------------------------------------- program

    def program(self, tree: Tree) -> ir.Program:
        for d in tree.children:
            if not isinstance(d, Tree):
                continue
            self.cur_pos = self.pos(d)
            try:
                self.decl(d)
            except SemanticError as e:
                self.diags.append(Diagnostic(e.pos, "error", e.message))
                self.note_failed(d)
            except FrontendError:
                raise
            except RecursionError:
                self.diags.append(Diagnostic(self.cur_pos, "error", "program nested too deeply: this declaration's "
                                             "statements or expressions nest beyond softswitch's limit"))
            except Exception as e:
                self.diags.append(Diagnostic(self.cur_pos, "error", f"internal: {type(e).__name__}: {e}"))
            self.tparams = set()
        if self.main is None and not self.diags:
            files = self.lines.files()
            end = self.lines.main_end or (ir.Pos(files[0], 1, 1) if files else self.lines.pos(1, 1))
            self.diags.append(Diagnostic(end, "error", "no 'main' package instantiation; "
                                         "a v1model program ends with V1Switch(...) main;"))
        if any(d.severity == "error" for d in self.diags):
            raise FrontendError(self.diags)
        named = {n: self.types[n] for n in self.type_decl_names}
        return ir.Program(
            types=named, constants=dict(self.constants), errors=tuple(self.errors),
            match_kinds=tuple(self.match_kinds), externs=dict(self.externs),
            extern_functions=dict(self.extern_functions), functions=dict(self.functions),
            actions=dict(self.actions), parsers=dict(self.parsers), controls=dict(self.controls),
            packages=dict(self.packages), instances=dict(self.instances), main=self.main,
            source_files=self.lines.files(),
        )

    def note_failed(self, d: Tree) -> None:
        if d.data in ("parser_decl", "control_decl"):
            head = self.parts(d)[0]
            self.failed.add(self.name_of(self.parts(head)[0]))

    def annos(self, t: Tree) -> tuple[ir.Annotation, ...]:
        return tuple(_annotation(c, self.pos(c)) for c in t.children
                     if isinstance(c, Tree) and c.data == "annotation")

    def parts(self, t: Tree) -> list[Any]:
        """Children that are not annotations."""
        return [c for c in t.children if not (isinstance(c, Tree) and c.data == "annotation")]

    def declare_global(self, name: str, sym: Sym, p: ir.Pos) -> None:
        old = self.globals.syms.get(name)
        if old is not None and not (old.kind == "extern_fn" and sym.kind == "extern_fn"):
            raise SemanticError(p, f"'{name}' is already declared")
        self.globals.syms[name] = sym

    def declare_type(self, name: str, t: ir.Type, p: ir.Pos) -> None:
        if name in self.types or name in self.externs or name in self.block_types:
            raise SemanticError(p, f"type '{name}' is already declared")
        self.types[name] = t
        self.type_decl_names.append(name)

    def decl(self, d: Tree) -> None:
        k = d.data
        p = self.pos(d)
        parts = self.parts(d)
        if k == "const_decl":
            ty = self.type_ref(parts[0])
            name = self.name_of(parts[1])
            v = self.expr(parts[2], self.globals, ty)
            if not isinstance(v, (ir.Const, ir.EnumConst, ir.ErrorConst, ir.StrConst)):
                raise SemanticError(p, f"the value of constant '{name}' is not a compile-time constant")
            self.declare_global(name, Sym("const", name, ty, False, v), p)
            self.constants[name] = v
        elif k in ("typedef_decl", "newtype_decl"):
            self.declare_type(self.name_of(parts[1]), self.type_ref(parts[0]), p)
        elif k in ("header_decl", "struct_decl", "union_decl"):
            name = self.name_of(parts[0])
            fields: list[tuple[str, ir.Type]] = []
            field_annos: list[tuple[ir.Annotation, ...]] = []
            for f in parts[1:]:
                fp = self.parts(f)
                fname = self.name_of(fp[1])
                if any(n == fname for n, _ in fields):
                    raise SemanticError(self.pos(f), f"duplicate field '{fname}' in {name}")
                ft = self.type_ref(fp[0])
                if k == "header_decl" and not isinstance(ft, (ir.BitT, ir.IntT, ir.VarbitT, ir.BoolT, ir.SerEnumT)):
                    raise SemanticError(self.pos(f), f"field '{fname}' of header {name} has type "
                                        f"{type_str(ft)}; header fields must be bit<N>, int<N>, varbit<N>, "
                                        "bool or a serializable enum")
                fields.append((fname, ft))
                field_annos.append(self.annos(f))
            cls = {"header_decl": ir.HeaderT, "struct_decl": ir.StructT, "union_decl": ir.HeaderUnionT}[k]
            self.declare_type(name, cls(name, tuple(fields), self.annos(d), tuple(field_annos)), p)
        elif k == "enum_decl":
            name = self.name_of(parts[0])
            self.declare_type(name, ir.EnumT(name, tuple(self.name_of(n) for n in parts[1].children)), p)
        elif k == "ser_enum_decl":
            under = self.type_ref(parts[0])
            if not isinstance(under, (ir.BitT, ir.IntT)):
                raise SemanticError(p, f"a serializable enum needs bit<N> or int<N>, not {type_str(under)}")
            name = self.name_of(parts[1])
            members = []
            for m in parts[2:]:
                v = self.expr(m.children[1], self.globals, under)
                if not isinstance(v, ir.Const):
                    raise SemanticError(self.pos(m), "enum member values must be constants")
                members.append((self.name_of(m.children[0]), int(v.value)))
            self.declare_type(name, ir.SerEnumT(name, under, tuple(members)), p)
        elif k == "error_decl":
            for n in d.children[0].children:
                if self.name_of(n) not in self.errors:
                    self.errors.append(self.name_of(n))
        elif k == "match_kind_decl":
            for n in d.children[0].children:
                if self.name_of(n) not in self.match_kinds:
                    self.match_kinds.append(self.name_of(n))
        elif k == "extern_obj":
            self.extern_obj(d, parts, p)
        elif k == "extern_fn":
            sig = self.fn_proto(parts[0], self.annos(d))
            self.extern_functions[sig.name] = (*self.extern_functions.get(sig.name, ()), sig)
            self.declare_global(sig.name, Sym("extern_fn", sig.name, None, False), p)
        elif k == "action_decl":
            a = self.top_action(d)
            self.actions[a.name] = a
            self.declare_global(a.name, Sym("action", a.name, None, False, top_level=True, decl=a), p)
        elif k in ("parser_type", "control_type"):
            kind, name, _tps, params, _ = self.block_head(parts[0])
            self.block_types[name] = (kind, params)
        elif k == "parser_decl":
            pd = self.parser_decl(d)
            self.parsers[pd.name] = pd
        elif k == "control_decl":
            cd = self.control_decl(d)
            self.controls[cd.name] = cd
        elif k == "package_decl":
            name = self.name_of(parts[0])
            rest = parts[1:]
            ptps: tuple[str, ...] = ()
            if rest and isinstance(rest[0], Tree) and rest[0].data == "type_params":
                ptps = self.type_params(rest[0])
                rest = rest[1:]
            self.tparams = set(ptps)
            params = self.params(rest[0])
            self.packages[name] = ir.PackageDecl(name, params, ptps, p)
        elif k == "function_decl":
            self.function_decl(d, parts, p)
        elif k == "instantiation":
            self.top_instantiation(d, parts, p)
        else:
            raise SemanticError(p, f"unsupported declaration ({k})")

    # ------------------------------------------------------------------ types

    def type_params(self, t: Tree) -> tuple[str, ...]:
        return tuple(str(c) for c in t.children if isinstance(c, Token) and c.type == "NAME")

    def type_ref(self, t: Any) -> ir.Type:
        p = self.pos(t)
        if isinstance(t, Token):
            return self.named_type(str(t), p)
        k = t.data
        ch = t.children
        if k == "bool_t":
            return ir.BoolT()
        if k == "error_t":
            return ir.ErrorT()
        if k == "string_t":
            return ir.StringT()
        if k == "bit1_t":
            return ir.BitT(1)
        if k in ("bit_t", "int_t", "varbit_t"):
            w = self.width(ch[0])
            name = {"bit_t": "bit", "int_t": "int", "varbit_t": "varbit"}[k]
            check_width(w, p, f"{name}<{w}>")
            return {"bit_t": ir.BitT, "int_t": ir.IntT, "varbit_t": ir.VarbitT}[k](w)
        if k == "infint_t":
            return ir.InfIntT()
        if k == "void_t":
            return ir.VoidT()
        if k == "dontcare_t":
            return ir.DontCareT()
        if k in ("named_t", "typevar_t"):
            return self.named_type(str(ch[0]), p)
        if k == "type_arg":
            return self.type_ref(ch[0])
        if k == "specialized_t":
            name = str(ch[0])
            args = tuple(self.type_arg(a) for a in ch[2].children)
            if name in self.externs:
                decl = self.externs[name]
                if len(args) != len(decl.type_params):
                    raise SemanticError(p, f"extern {name} takes {len(decl.type_params)} type argument(s), "
                                        f"{len(args)} given")
                return ir.ExternT(name, args)
            base = self.named_type(name, p)
            if isinstance(base, (ir.ParserT, ir.ControlT, ir.PackageT)):
                return base
            raise SemanticError(p, f"type {name} takes no type arguments")
        if k == "tuple_t":
            return ir.TupleT(tuple(self.type_arg(a) for a in ch[0].children))
        if k == "stack_t":
            elem = self.type_ref(ch[0])
            size = self.const_int(ch[1], self.globals, "header stack size")
            if not isinstance(elem, (ir.HeaderT, ir.HeaderUnionT, ir.TypeVarT)):
                raise SemanticError(p, f"a stack element must be a header or header_union, not {type_str(elem)}")
            if size <= 0:
                raise SemanticError(p, "a header stack needs a positive size")
            if size > MAX_STACK_SIZE:
                raise SemanticError(p, f"header stack size {size} is too large; p4c and softswitch support "
                                       f"at most {MAX_STACK_SIZE} elements")
            return ir.StackT(elem, size)
        raise SemanticError(p, f"unsupported type ({k})")

    def width(self, t: Tree) -> int:
        c = t.children[0]
        if isinstance(c, Token):
            v, _ = parse_int_literal(str(c))
        else:
            v = self.const_int(c, self.globals, "width")
        if v < 0:
            raise SemanticError(self.pos(t), "a width must not be negative")
        return v

    def named_type(self, name: str, p: ir.Pos) -> ir.Type:
        if name in self.tparams:
            return ir.TypeVarT(name)
        if name in self.types:
            return self.types[name]
        if name in self.externs:
            decl = self.externs[name]
            if decl.type_params:
                raise SemanticError(p, f"extern {name} needs type arguments, e.g. {name}<bit<32>>")
            return ir.ExternT(name, ())
        if name in self.block_types:
            kind = self.block_types[name][0]
            return ir.ParserT(name) if kind == "parser" else ir.ControlT(name)
        if name in self.parsers:
            return ir.ParserT(name)
        if name in self.controls:
            return ir.ControlT(name)
        if name in self.packages:
            return ir.PackageT(name)
        known = [*self.types, *self.externs, *self.block_types, *self.parsers, *self.controls, *self.packages]
        raise SemanticError(p, f"unknown type '{name}'{did_you_mean(name, known)}")

    # ------------------------------------------------------------ signatures

    def params(self, t: Tree | None) -> tuple[ir.Param, ...]:
        if t is None:
            return ()
        out: list[ir.Param] = []
        for q in t.children:
            parts = self.parts(q)
            direction = {"dir_in": "in", "dir_out": "out", "dir_inout": "inout", "dir_none": ""}[parts[0].data]
            ty = self.type_ref(parts[1])
            name = self.name_of(parts[2])
            default = self.expr(parts[3], self.globals, ty) if len(parts) > 3 else None
            if any(o.name == name for o in out):
                raise SemanticError(self.pos(q), f"duplicate parameter '{name}'")
            out.append(ir.Param(name, direction, ty, self.annos(q), default, self.pos(q)))
        return tuple(out)

    def fn_proto(self, t: Tree, annotations: tuple[ir.Annotation, ...]) -> ir.MethodSig:
        ch = t.children
        name = self.name_of(ch[1])
        rest = ch[2:]
        tps: tuple[str, ...] = ()
        if rest and isinstance(rest[0], Tree) and rest[0].data == "type_params":
            tps = self.type_params(rest[0])
            rest = rest[1:]
        saved = self.tparams
        self.tparams = saved | set(tps)
        try:
            rt = self.type_ref(ch[0].children[0] if ch[0].data == "type_or_void" else ch[0])
            params = self.params(rest[0] if rest else None)
        finally:
            self.tparams = saved
        return ir.MethodSig(name, params, rt, tps, annotations, self.pos(t))

    def extern_obj(self, d: Tree, parts: list[Any], p: ir.Pos) -> None:
        name = str(parts[0])
        rest = parts[1:]
        tps: tuple[str, ...] = ()
        if rest and isinstance(rest[0], Tree) and rest[0].data == "type_params":
            tps = self.type_params(rest[0])
            rest = rest[1:]
        if name in self.externs or name in self.types:
            raise SemanticError(p, f"type '{name}' is already declared")
        # Declared before the members so that methods may mention the type itself.
        self.externs[name] = ir.ExternDecl(name, tps, (), (), self.annos(d), p)
        self.tparams = set(tps)
        ctors, methods = [], []
        for m in rest:
            mp = self.parts(m)
            if m.data == "ctor":
                if str(mp[0]) != name:
                    raise SemanticError(self.pos(m), f"constructor '{mp[0]}' must be named {name}")
                ctors.append(ir.MethodSig(name, self.params(mp[1]), ir.VoidT(), (), self.annos(m), self.pos(m)))
            else:
                methods.append(self.fn_proto(mp[0], self.annos(m)))
        self.externs[name] = ir.ExternDecl(name, tps, tuple(ctors), tuple(methods), self.annos(d), p)

    def function_decl(self, d: Tree, parts: list[Any], p: ir.Pos) -> None:
        sig = self.fn_proto(parts[0], self.annos(d))
        self.tparams = set(sig.type_params)
        body = self.function_body(sig, parts[1])
        fd = ir.FunctionDecl(sig.name, sig.return_type, sig.params, body, sig.type_params, p)
        self.functions[sig.name] = fd
        self.declare_global(sig.name, Sym("function", sig.name, None, False, decl=fd), p)

    # ---------------------------------------------------------- instantiation

    def ctor_args(self, t: Tree, sigs: tuple[ir.MethodSig, ...], sc: Scope, what: str,
                  env: dict[str, ir.Type]) -> tuple[ir.Expr, ...]:
        args = self.raw_args_inst(t)
        if not sigs:
            if args:
                raise SemanticError(self.pos(t), f"{what} takes no constructor arguments")
            return ()
        _sig, bound, _ = self.overload(sigs, args, sc, self.pos(t), (), env, what)
        return tuple(a.expr for a in bound)

    def raw_args_inst(self, t: Tree | None) -> list[tuple[str | None, Any, ir.Pos]]:
        if t is None:
            return []
        return [(None, a.children[0] if a.data == "inst_arg" else a, self.pos(a)) for a in t.children]

    def top_instantiation(self, d: Tree, parts: list[Any], p: ir.Pos) -> None:
        ty = self.type_ref(parts[0])
        name = self.name_of(parts[2])
        if isinstance(ty, ir.PackageT):
            pkg = self.packages[ty.name]
            args = []
            for a in parts[1].children:
                if a.data != "ctor_call" or a.children[1].children:
                    raise SemanticError(self.pos(a), f"arguments of package {ty.name} must be parser/control "
                                        "instantiations without arguments, e.g. MyIngress()")
                bname = str(a.children[0])
                if bname in self.failed:
                    return  # already reported
                if bname not in self.parsers and bname not in self.controls:
                    known = [*self.parsers, *self.controls]
                    raise SemanticError(self.pos(a), f"no parser or control named '{bname}'"
                                        f"{did_you_mean(bname, known)}")
                args.append((bname, self.pos(a)))
            if len(args) != len(pkg.params):
                raise SemanticError(p, f"package {ty.name} takes {len(pkg.params)} arguments, {len(args)} given")
            bound: dict[str, tuple[ir.Type, str]] = {}
            for (bname, ap), q in zip(args, pkg.params, strict=False):
                want = "parser" if isinstance(q.type, ir.ParserT) else "control"
                have = "parser" if bname in self.parsers else "control"
                if want != have:
                    raise SemanticError(ap, f"argument '{q.name}' of {ty.name} must be a {want}, "
                                        f"but {bname} is a {have}")
                self.check_block_signature(bname, q, ap, bound)
            if self.main is not None:
                raise SemanticError(p, "more than one package instantiation")
            if name != "main":
                raise SemanticError(p, f"the package instance must be called 'main', not '{name}'")
            self.main = ir.MainInstance(ty.name, tuple(b for b, _ in args), name, p)
            return
        inst = self.make_instance(ty, parts[1], name, self.annos(d), p, self.globals, name)
        self.instances[name] = inst
        self.declare_global(name, Sym("instance", name, ty, False, top_level=True, decl=inst), p)

    def check_block_signature(self, bname: str, q: ir.Param, p: ir.Pos,
                              bound: dict[str, tuple[ir.Type, str]]) -> None:
        """The block's parameter list must match the package parameter's type (counts,
        directions, types). Type variables are bound by name across all blocks of the
        package (v1model names them H and M everywhere), so every block must agree on
        the header and metadata types."""
        decl: ir.ParserDecl | ir.ControlDecl = self.parsers.get(bname) or self.controls[bname]
        tname = q.type.name  # type: ignore[attr-defined]
        if tname not in self.block_types:
            return
        proto = self.block_types[tname][1]
        if len(proto) != len(decl.params):
            raise SemanticError(p, f"{bname} has {len(decl.params)} parameters but {tname} needs {len(proto)}")
        for a, b in zip(decl.params, proto, strict=False):
            if a.direction != b.direction:
                raise SemanticError(a.pos, f"parameter '{a.name}' of {bname} must be "
                                    f"'{b.direction or 'directionless'}' as in {tname}, not "
                                    f"'{a.direction or 'directionless'}'")
            if isinstance(b.type, ir.TypeVarT):
                have = bound.get(b.type.name)
                if have is None:
                    bound[b.type.name] = (a.type, bname)
                elif have[0] != a.type:
                    raise SemanticError(a.pos, f"parameter '{a.name}' of {bname} has type {type_str(a.type)}, "
                                        f"but {have[1]} uses {type_str(have[0])} for {b.type.name}")
            elif a.type != b.type:
                raise SemanticError(a.pos, f"parameter '{a.name}' of {bname} must have type "
                                    f"{type_str(b.type)} as in {tname}, not {type_str(a.type)}")

    def make_instance(self, ty: ir.Type, args_t: Tree, name: str, annotations: tuple[ir.Annotation, ...],
                      p: ir.Pos, sc: Scope, original: str) -> ir.Instance:
        if isinstance(ty, ir.ExternT):
            decl = self.externs[ty.name]
            env = dict(zip(decl.type_params, ty.type_args, strict=False))
            args = self.ctor_args(args_t, decl.constructors, sc, f"constructor of {ty.name}", env)
        elif isinstance(ty, (ir.ParserT, ir.ControlT)):
            d = self.parsers.get(ty.name) if isinstance(ty, ir.ParserT) else self.controls.get(ty.name)
            if d is None:
                raise SemanticError(p, f"{ty.name} is only a type; declare a parser/control body to instantiate")
            ctor = (ir.MethodSig(ty.name, d.ctor_params, ir.VoidT()),) if d.ctor_params else ()
            args = self.ctor_args(args_t, ctor, sc, f"instantiation of {ty.name}", {})
        else:
            raise SemanticError(p, f"cannot instantiate {type_str(ty)}")
        for a in args:
            if not isinstance(a, (ir.Const, ir.EnumConst, ir.ErrorConst, ir.StrConst, ir.ListExpr, ir.StructExpr)):
                raise SemanticError(a.pos, "constructor arguments must be compile-time constants")
        return ir.Instance(name, ty, args, annotations, original, p)

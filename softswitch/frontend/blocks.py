"""Parsers, controls, actions, tables and statements (a mixin of the Elaborator)."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from typing import Any

from lark import Token, Tree

from softswitch import ir
from softswitch.frontend.diagnostics import Diagnostic, did_you_mean
from softswitch.frontend.host import Host
from softswitch.frontend.typeutil import Scope, SemanticError, Sym, is_bits, type_str

__all__ = ["BlockMixin", "source_text"]


def source_text(t: Any) -> str:
    """An expression as p4c prints it (used for table key names)."""
    if isinstance(t, Token):
        return str(t)
    k, ch = t.data, t.children
    if k == "name":
        return str(ch[0])
    if k == "name_ref":
        return source_text(ch[0])
    if k == "dot_name_ref":
        return "." + source_text(ch[0])
    if k in ("member", "type_member"):
        return f"{source_text(ch[0])}.{source_text(ch[1])}"
    if k == "error_member":
        return f"error.{source_text(ch[0])}"
    if k == "index":
        return f"{source_text(ch[0])}[{source_text(ch[1])}]"
    if k == "slice":
        return f"{source_text(ch[0])}[{source_text(ch[1])}:{source_text(ch[2])}]"
    if k == "call":
        args = ", ".join(source_text(a.children[-1]) if isinstance(a, Tree) and a.children else "_"
                         for a in ch[1].children)
        return f"{source_text(ch[0])}({args})"
    if k == "int_lit":
        return str(ch[0])
    if k in ("true_lit", "false_lit"):
        return "true" if k == "true_lit" else "false"
    if k == "binop":
        return f"{source_text(ch[0])} {ch[1]} {source_text(ch[2])}"
    if k in ("lor", "land", "bor", "bxor", "band"):
        op = {"lor": "||", "land": "&&", "bor": "|", "bxor": "^", "band": "&"}[k]
        return f"{source_text(ch[0])} {op} {source_text(ch[1])}"
    if k == "unop":
        return f"{ch[0]}{source_text(ch[1])}"
    return str(k)


class BlockMixin(Host):
    # ------------------------------------------------------------ naming

    def begin_block(self, context: str = "control") -> None:
        self.context = context
        self.used: set[str] = set()
        self.action_param_names: set[str] = set()
        self.readonly = set()
        self.table_decls: dict[str, ir.TableDecl] = {}
        self.table_applied: dict[str, ir.Pos] = {}  # unique table name -> its one apply() call site

    def fresh(self, name: str) -> str:
        """A name unique in the current parser/control (p4c style ``name_0``)."""
        if name not in self.used and name not in self.action_param_names:
            self.used.add(name)
            return name
        i = 0
        while f"{name}_{i}" in self.used or f"{name}_{i}" in self.action_param_names:
            i += 1
        self.used.add(f"{name}_{i}")
        return f"{name}_{i}"

    def check_new(self, sc: Scope, name: str, p: ir.Pos) -> None:
        """P4 forbids two declarations of one name in the same scope."""
        if name in sc.syms:
            raise SemanticError(p, f"'{name}' is already declared in this scope")

    def bind_params(self, params: tuple[ir.Param, ...], sc: Scope) -> tuple[ir.Param, ...]:
        out = []
        for q in params:
            u = self.fresh(q.name)
            sc.syms[q.name] = Sym("var", u, q.type)
            if q.direction in ("in", ""):
                self.readonly.add(u)
            out.append(q if u == q.name else ir.Param(u, q.direction, q.type, q.annotations, q.default, q.pos))
        return tuple(out)

    def block_head(self, t: Tree) -> tuple[str, str, tuple[str, ...], tuple[ir.Param, ...],
                                                       tuple[ir.Annotation, ...]]:
        parts = self.parts(t)
        kind = "parser" if t.data == "parser_head" else "control"
        name = self.name_of(parts[0])
        rest = parts[1:]
        tps: tuple[str, ...] = ()
        if rest and isinstance(rest[0], Tree) and rest[0].data == "type_params":
            tps = self.type_params(rest[0])
            rest = rest[1:]
        self.tparams = set(tps)
        params = self.params(rest[0])
        return kind, name, tps, params, self.annos(t)

    def ctor_params(self, t: Tree) -> tuple[ir.Param, ...]:
        return self.params(t.children[0]) if t.children else ()

    # ------------------------------------------------------------ parsers

    def parser_decl(self, d: Tree) -> ir.ParserDecl:
        parts = self.parts(d)
        _, name, tps, params, annos = self.block_head(parts[0])
        if tps:
            raise SemanticError(self.pos(d), f"generic parser '{name}' is not supported")
        if name in self.types or name in self.parsers or name in self.controls:
            raise SemanticError(self.pos(d), f"'{name}' is already declared")
        ctor = self.ctor_params(parts[1])
        self.begin_block("parser")
        sc = self.globals.child()
        params = self.bind_params(params, sc)
        ctor = self.bind_params(ctor, sc)
        locals_: list[ir.VarDecl | ir.Instance] = []
        states_t = [c for c in parts[2:] if c.data == "parser_state"]
        state_names = [self.name_of(self.parts(s)[0]) for s in states_t]
        for i, s in enumerate(states_t):
            if state_names[i] in state_names[:i]:
                raise SemanticError(self.pos(s), f"duplicate parser state '{state_names[i]}'")
        for c in parts[2:]:
            if c.data != "parser_state":
                self.local_decl(c, sc, locals_)
        if "start" not in state_names:
            raise SemanticError(self.pos(d), f"parser {name} has no 'start' state")
        states = []
        for s in states_t:
            self.cur_pos = self.pos(s)
            states.append(self.parser_state(s, sc, state_names))
        states.sort(key=lambda s: s.name != "start")
        return ir.ParserDecl(name, params, ctor, tuple(locals_), tuple(states), annos, self.pos(d))

    def parser_state(self, t: Tree, sc: Scope, state_names: list[str]) -> ir.ParserState:
        parts = self.parts(t)
        name = self.name_of(parts[0])
        if name in ("accept", "reject"):
            raise SemanticError(self.pos(t), f"state '{name}' is implicit and cannot be declared")
        inner = sc.child()
        stmts: list[ir.Stmt] = []
        transition: ir.Transition = ir.Goto("reject", self.pos(t))
        for c in parts[1:]:
            if c.data in ("goto", "select"):
                transition = self.transition(c, inner, state_names)
            else:
                self.stmt_into(c, inner, stmts)
        return ir.ParserState(name, tuple(stmts), transition, self.annos(t), self.pos(t))

    def state_ref(self, t: Any, state_names: list[str]) -> str:
        n = self.name_of(t)
        if n not in state_names and n not in ("accept", "reject"):
            raise SemanticError(self.pos(t), f"no parser state '{n}'"
                                f"{did_you_mean(n, [*state_names, 'accept', 'reject'])}")
        return n

    def transition(self, t: Tree, sc: Scope, state_names: list[str]) -> ir.Transition:
        p = self.pos(t)
        if t.data == "goto":
            return ir.Goto(self.state_ref(t.children[0], state_names), p)
        keys = []
        for k in t.children[0].children:
            e = self.concrete(self.expr(k, sc), "a select key")
            if not (is_bits(e.type) or isinstance(e.type, (ir.BoolT, ir.ErrorT, ir.EnumT, ir.SerEnumT))):
                raise SemanticError(e.pos, f"cannot select on a value of type {type_str(e.type)}")
            keys.append(e)
        cases = []
        for c in t.children[1:]:
            kss = self.keysets(c.children[0], [k.type for k in keys], sc, "select")
            cases.append(ir.SelectCase(kss, self.state_ref(c.children[1], state_names), self.pos(c)))
        return ir.Select(tuple(keys), tuple(cases), p)

    def keysets(self, t: Tree, key_types: list[ir.Type], sc: Scope, what: str) -> tuple[ir.KeySet, ...]:
        simple = t.children if t.data == "tuple_keyset" else [t.children[0] if t.data == "keyset" else t]
        if len(simple) == 1 and simple[0].data in ("ks_default", "ks_dontcare"):
            return tuple(ir.KsDefault() for _ in key_types)
        if len(simple) != len(key_types):
            raise SemanticError(self.pos(t), f"{what} has {len(key_types)} key(s) but the keyset has {len(simple)}")
        return tuple(self.keyset(s, kt, sc) for s, kt in zip(simple, key_types, strict=False))

    def keyset(self, t: Tree, kt: ir.Type, sc: Scope) -> ir.KeySet:
        k = t.data
        if k in ("ks_default", "ks_dontcare"):
            return ir.KsDefault()
        if k == "ks_expr":
            e = self.expr(t.children[0], sc, kt)
            if isinstance(e, ir.Const):
                return ir.KsExact(e.value)
            if isinstance(e, ir.EnumConst):
                return ir.KsExact(e.member)
            if isinstance(e, ir.ErrorConst):
                return ir.KsExact(e.name)
            raise SemanticError(e.pos, "a keyset must be a compile-time constant")
        a = self.expr(t.children[0], sc, kt)
        b = self.expr(t.children[1], sc, kt)
        if not (isinstance(a, ir.Const) and isinstance(b, ir.Const)) or (not is_bits(kt) and not isinstance(kt, ir.SerEnumT)):
            raise SemanticError(self.pos(t), "masks and ranges need compile-time integer constants on a bit<N>/int<N> key")
        if k == "ks_mask":
            return ir.KsMask(int(a.value), int(b.value))
        return ir.KsRange(int(a.value), int(b.value))

    # ------------------------------------------------------------ locals

    def local_decl(self, c: Tree, sc: Scope, locals_: list[ir.VarDecl | ir.Instance]) -> None:
        parts = self.parts(c)
        p = self.pos(c)
        self.cur_pos = p
        if c.data == "const_decl":
            self.const_local(parts, sc, p)
        elif c.data == "var_decl":
            ty = self.type_ref(parts[0])
            orig = self.name_of(parts[1])
            init = self.expr(parts[2], sc, ty, f"initializer of '{orig}'") if len(parts) > 2 else None
            u = self.fresh(orig)
            self.check_new(sc, orig, p)
            sc.syms[orig] = Sym("var", u, ty)
            locals_.append(ir.VarDecl(p, u, ty, init, orig))
        elif c.data == "instantiation":
            ty = self.type_ref(parts[0])
            orig = self.name_of(parts[2])
            u = self.fresh(orig)
            inst = self.make_instance(ty, parts[1], u, self.annos(c), p, sc, orig)
            self.check_new(sc, orig, p)
            sc.syms[orig] = Sym("instance", u, ty, False, decl=inst)
            locals_.append(inst)
        else:
            raise SemanticError(p, f"unsupported local declaration ({c.data})")

    def const_local(self, parts: list[Any], sc: Scope, p: ir.Pos) -> None:
        ty = self.type_ref(parts[0])
        name = self.name_of(parts[1])
        v = self.expr(parts[2], sc, ty)
        if not isinstance(v, (ir.Const, ir.EnumConst, ir.ErrorConst, ir.StrConst)):
            raise SemanticError(p, f"the value of constant '{name}' is not a compile-time constant")
        self.check_new(sc, name, p)
        sc.syms[name] = Sym("const", name, ty, False, v)

    # ------------------------------------------------------------ controls

    def control_decl(self, d: Tree) -> ir.ControlDecl:
        parts = self.parts(d)
        _, name, tps, params, annos = self.block_head(parts[0])
        if tps:
            raise SemanticError(self.pos(d), f"generic control '{name}' is not supported")
        if name in self.types or name in self.parsers or name in self.controls:
            raise SemanticError(self.pos(d), f"'{name}' is already declared")
        ctor = self.ctor_params(parts[1])
        self.begin_block()
        sc = self.globals.child()
        params = self.bind_params(params, sc)
        ctor = self.bind_params(ctor, sc)
        locals_: list[ir.VarDecl | ir.Instance] = []
        actions: list[ir.ActionDecl] = []
        tables: list[ir.TableDecl] = []
        for c in parts[2:-1]:
            try:
                if c.data == "action_decl":
                    actions.append(self.action_decl(c, sc))
                elif c.data == "table_decl":
                    self.cur_pos = self.pos(c)
                    tables.append(self.table_decl(c, sc))
                else:
                    self.local_decl(c, sc, locals_)
            except SemanticError as e:
                self.diags.append(Diagnostic(e.pos, "error", e.message))
        body = self.block(parts[-1], sc.child())
        return ir.ControlDecl(name, params, ctor, tuple(locals_), tuple(actions), tuple(tables), body,
                              annos, self.pos(d))

    def action_decl(self, c: Tree, sc: Scope) -> ir.ActionDecl:
        parts = self.parts(c)
        p = self.pos(c)
        self.cur_pos = p
        orig = self.name_of(parts[0])
        params = self.params(parts[1])
        for before, q in pairwise(params):
            if before.direction == "" and q.direction != "":
                raise SemanticError(q.pos, f"parameter '{q.name}' of action {orig}: parameters with a "
                                    "direction must come before the directionless (control-plane) ones")
        inner = sc.child()
        bound = []
        readonly_before = set(self.readonly)
        for q in params:
            # Parameters of different actions may share a slot (they are bound at each
            # call); they must not collide with the control's own names.
            u = q.name
            if u in self.used:
                i = 0
                while f"{q.name}_{i}" in self.used:
                    i += 1
                u = f"{q.name}_{i}"
            inner.syms[q.name] = Sym("var", u, q.type)
            if q.direction in ("in", ""):
                self.readonly.add(u)
            annos = q.annotations
            if u != q.name and ir.annotation(annos, "name") is None:
                # Keep the control-plane name of a renamed parameter.
                annos = (*annos, ir.Annotation("name", f'"{q.name}"', (q.name,), q.pos))
            bound.append(ir.Param(u, q.direction, q.type, annos, q.default, q.pos))
        self.check_new(sc, orig, p)
        u = self.fresh(orig)
        outer_context, self.context = self.context, "action"
        try:
            body = self.block(parts[2], inner)
        finally:
            self.context = outer_context
        # Read-only-ness of a parameter slot holds only inside this action (another
        # action may have an inout parameter of the same name).
        self.readonly = readonly_before
        self.action_param_names.update(q.name for q in bound)
        decl = ir.ActionDecl(u, tuple(bound), body, self.annos(c), orig, p)
        sc.syms[orig] = Sym("action", u, None, False, decl=decl)
        return decl

    def top_action(self, c: Tree) -> ir.ActionDecl:
        self.begin_block()
        return self.action_decl(c, self.globals.child())

    def function_body(self, sig: ir.MethodSig, t: Tree) -> ir.Block:
        self.begin_block("function")
        sc = self.globals.child()
        self.bind_params(sig.params, sc)
        self.return_type = sig.return_type
        try:
            return self.block(t, sc)
        finally:
            self.return_type = None

    # ------------------------------------------------------------ tables

    def table_decl(self, c: Tree, sc: Scope) -> ir.TableDecl:
        parts = self.parts(c)
        p = self.pos(c)
        orig = self.name_of(parts[0])
        keys: list[ir.TableKey] = []
        actions: list[ir.ActionRef] = []
        default: ir.DefaultAction | None = None
        entries: tuple[ir.ConstEntry, ...] | None = None
        entries_const = True
        size: int | None = None
        timeout = False
        counter = meter = impl = None
        others: list[tuple[str, ir.Expr]] = []
        delta: int | None = None
        for prop in parts[1:]:
            pp = self.parts(prop)
            if prop.data == "key_prop":
                for ke in pp:
                    kp = self.parts(ke)
                    e = self.concrete(self.expr(kp[0], sc), "a table key")
                    mk = self.name_of(kp[1])
                    if mk not in self.match_kinds:
                        raise SemanticError(self.pos(kp[1]), f"unknown match kind '{mk}'"
                                            f"{did_you_mean(mk, self.match_kinds)}")
                    if isinstance(e.type, (ir.ErrorT, ir.EnumT)):
                        # No bit representation and no P4Runtime encoding (a match field is a
                        # bytestring): only serializable enums can be matched on.
                        what = "error" if isinstance(e.type, ir.ErrorT) else "a non-serializable enum"
                        raise SemanticError(e.pos, f"table {orig}: key '{source_text(kp[0])}' has type "
                                            f"{type_str(e.type)} ({what}); a table key must be bit<N>, "
                                            f"int<N>, bool or a serializable enum (enum bit<N>)")
                    if not (is_bits(e.type) or isinstance(e.type, (ir.BoolT, ir.SerEnumT))):
                        raise SemanticError(e.pos, f"a table key cannot have type {type_str(e.type)}")
                    keys.append(ir.TableKey(e, mk, source_text(kp[0]), self.annos(ke), self.pos(ke)))
            elif prop.data == "actions_prop":
                for ar in pp:
                    arp = self.parts(ar)
                    s, _ = self.action_sym(arp[0], sc, f"table {orig}")
                    if len(arp) > 1 and arp[1].children:
                        raise SemanticError(self.pos(ar), "arguments in a table's actions list are not supported")
                    if any(a.action == s.name and a.top_level == s.top_level for a in actions):
                        raise SemanticError(self.pos(ar), f"action '{self.name_of(arp[0].children[0])}' "
                                            f"is listed twice in table {orig}")
                    actions.append(ir.ActionRef(s.name, s.top_level, self.annos(ar), self.pos(ar)))
            elif prop.data == "entries_prop":
                is_const = bool(pp) and isinstance(pp[0], Tree) and pp[0].data == "const_kw"
                entries_const = is_const
                ents = []
                for en in (pp[1:] if is_const else pp):
                    ents.append(self.const_entry(en, keys, actions, sc, orig))
                entries = tuple(ents)
            else:
                is_const = isinstance(pp[0], Tree) and pp[0].data == "const_kw"
                if is_const:
                    pp = pp[1:]
                pname = self.name_of(pp[0])
                val = pp[1]
                if pname == "default_action":
                    act, args = self.action_with_args(val, sc, actions, orig, "default_action")
                    default = ir.DefaultAction(act.name, act.top_level, args, is_const, self.pos(prop))
                elif pname == "size":
                    size = self.const_int(val, sc, "table size")
                elif pname == "support_timeout":
                    v = self.expr(val, sc, ir.BoolT())
                    if not isinstance(v, ir.Const):
                        raise SemanticError(v.pos, "support_timeout must be true or false")
                    timeout = bool(v.value)
                elif pname in ("counters", "meters"):
                    e = self.expr(val, sc)
                    if not isinstance(e, ir.InstanceRef):
                        raise SemanticError(e.pos, f"{pname} must name an extern instance")
                    want = {"counters": "direct_counter", "meters": "direct_meter"}[pname]
                    if not isinstance(e.type, ir.ExternT) or e.type.name != want:
                        raise SemanticError(e.pos, f"{pname} must be a {want} instance, not {type_str(e.type)}")
                    if pname == "counters":
                        counter = e.name
                    else:
                        meter = e.name
                elif pname == "implementation":
                    e = self.expr(val, sc)
                    raise SemanticError(e.pos, f"table {orig}: implementation = {source_text(val)}: action "
                                        "profiles and action selectors are not supported by softswitch "
                                        "(a table takes direct action entries only)")
                elif pname == "largest_priority_wins":
                    e = self.expr(val, sc, ir.BoolT())
                    if not isinstance(e, ir.Const):
                        raise SemanticError(e.pos, "largest_priority_wins must be true or false")
                    if not e.value:
                        raise SemanticError(e.pos, f"table {orig}: largest_priority_wins = false is not "
                                            "supported: softswitch's tables, like P4Runtime, give "
                                            "precedence to the largest priority")
                    others.append((pname, e))
                elif pname == "priority_delta":
                    e = self.expr(val, sc)
                    if not (isinstance(e, ir.Const) and not isinstance(e.value, bool) and int(e.value) > 0):
                        raise SemanticError(e.pos, "priority_delta must be a positive compile-time integer")
                    delta = int(e.value)
                    others.append((pname, e))
                else:
                    others.append((pname, self.expr(val, sc)))
        lpm = [k for k in keys if k.match_kind == "lpm"]
        if len(lpm) > 1:
            raise SemanticError(lpm[1].pos, f"table {orig}: more than one lpm key ('{lpm[0].source_text}' "
                                f"and '{lpm[1].source_text}'); BMv2 allows only one LPM field per table")
        if delta is not None and entries:
            entries = self.entry_priorities(entries, delta, orig)
        if default is None:
            default = ir.DefaultAction("NoAction", True, (), False, p)
        u = self.fresh(orig)
        td = ir.TableDecl(u, tuple(keys), tuple(actions), default, entries, entries_const, size, timeout,
                          counter, meter, impl, tuple(others), self.annos(c), orig, p)
        self.check_new(sc, orig, p)
        sc.syms[orig] = Sym("table", u, None, False, decl=td)
        self.table_decls[u] = td
        return td

    def entry_priorities(self, entries: tuple[ir.ConstEntry, ...], delta: int,
                         table: str) -> tuple[ir.ConstEntry, ...]:
        """Explicit priorities for the entries of a table with ``priority_delta``, as p4c's
        EntryPriorities numbers them (largest wins): without any ``priority = N``, the last
        entry gets 1 and each earlier one ``delta`` more; otherwise an entry without one
        gets the previous entry's priority minus ``delta``."""
        n = len(entries)
        if all(e.priority is None for e in entries):
            return tuple(replace(e, priority=1 + (n - 1 - i) * delta) for i, e in enumerate(entries))
        out: list[ir.ConstEntry] = []
        cur = 0
        for i, e in enumerate(entries):
            if e.priority is not None:
                cur = e.priority
            elif i == 0:
                raise SemanticError(e.pos, f"table {table}: the first entry needs a priority when "
                                    "other entries have one")
            if cur < 1:
                raise SemanticError(e.pos, f"table {table}: priority_delta = {delta} gives this entry "
                                    f"priority {cur}; entry priorities must be positive")
            out.append(replace(e, priority=cur))
            cur -= delta
        return tuple(out)

    def action_sym(self, t: Tree, sc: Scope, what: str) -> tuple[Sym, str]:
        name = self.name_of(t.children[0])
        scope = self.globals if t.data == "dot_name" else sc
        s = scope.lookup(name)
        if s is None or s.kind != "action":
            actions = [n for n, y in _all_syms(scope) if y.kind == "action"]
            raise SemanticError(self.pos(t), f"unknown action '{name}' in {what}{did_you_mean(name, actions)}")
        return s, name

    def action_with_args(self, val: Any, sc: Scope, actions: list[ir.ActionRef], table: str,
                         what: str) -> tuple[Sym, tuple[int, ...]]:
        if isinstance(val, Tree) and val.data == "call":
            callee, args_t = val.children[0], val.children[1]
        else:
            callee, args_t = val, None
        if not (isinstance(callee, Tree) and callee.data in ("name_ref", "dot_name_ref")):
            raise SemanticError(self.pos(val), f"{what} must be an action call such as a(1)")
        s, name = self.action_sym(Tree("dot_name" if callee.data == "dot_name_ref" else "action_name",
                                       callee.children, callee.meta), sc, f"table {table}")
        return s, self.cp_args(s, name, args_t, sc, actions, table, what, self.pos(val))

    def cp_args(self, s: Sym, name: str, args_t: Tree | None, sc: Scope,
                actions: list[ir.ActionRef], table: str, what: str, p: ir.Pos) -> tuple[int, ...]:
        if not any(a.action == s.name and a.top_level == s.top_level for a in actions):
            raise SemanticError(p, f"{what} '{name}' is not in the actions of table {table}"
                                f"{did_you_mean(name, [a.action for a in actions])}")
        decl = s.decl
        assert isinstance(decl, ir.ActionDecl)
        raw = self.raw_args(args_t)
        bound = self.bind(decl.params, raw, sc, p, {}, f"action {name}")
        out = []
        for a in bound:
            if not isinstance(a.expr, ir.Const):
                raise SemanticError(a.expr.pos, f"arguments of {what} must be compile-time constants")
            out.append(int(a.expr.value))
        return tuple(out)

    def const_entry(self, en: Tree, keys: list[ir.TableKey], actions: list[ir.ActionRef],
                    sc: Scope, table: str) -> ir.ConstEntry:
        annos = self.annos(en)
        parts = self.parts(en)
        prio = None
        if isinstance(parts[0], Tree) and parts[0].data == "entry_priority":
            prio = self.const_int(parts[0].children[0], sc, "entry priority")
            parts = parts[1:]
        kss = self.keysets(parts[0], [k.expr.type for k in keys], sc, f"entry of table {table}")
        s, name = self.action_sym(parts[1], sc, f"table {table}")
        args_t = parts[2] if len(parts) > 2 and isinstance(parts[2], Tree) and parts[2].data == "args" else None
        args = self.cp_args(s, name, args_t, sc, actions, table, "entry action", self.pos(en))
        return ir.ConstEntry(kss, s.name, s.top_level, args, prio, annos, self.pos(en))

    # ------------------------------------------------------------ statements

    def block(self, t: Tree, sc: Scope) -> ir.Block:
        stmts: list[ir.Stmt] = []
        for c in self.parts(t):
            self.stmt_into(c, sc, stmts)
        return ir.Block(self.pos(t), tuple(stmts))

    def stmt_into(self, c: Tree, sc: Scope, out: list[ir.Stmt]) -> None:
        try:
            s = self.stmt(c, sc)
        except SemanticError as e:
            self.diags.append(Diagnostic(e.pos, "error", e.message))
            return
        if s is not None:
            out.append(s)

    def stmt(self, t: Tree, sc: Scope) -> ir.Stmt | None:
        p = self.pos(t)
        k = t.data
        ch = t.children
        if k == "statement":
            return self.stmt(ch[0], sc)
        if k == "block":
            return self.block(t, sc.child())
        if k == "assign":
            lhs = self.expr(ch[0], sc)
            self.check_lvalue(lhs, "the left side of '='")
            rhs = self.expr(ch[1], sc, lhs.type, "assignment")
            return ir.Assign(p, lhs, rhs)
        if k == "call_stmt":
            if not (isinstance(ch[0], Tree) and ch[0].data in ("call", "generic_call")):
                raise SemanticError(p, "this statement has no effect; expected an assignment or a call")
            return ir.CallStmt(p, self.expr(ch[0], sc))
        if k == "if_stmt":
            cond = self.expr(ch[0], sc, ir.BoolT(), "if condition")
            then = self.as_block_stmt(ch[1], sc)
            els = self.as_block_stmt(ch[2], sc) if len(ch) > 2 else None
            return ir.If(p, cond, then, els)
        if k == "exit_stmt":
            if self.context == "parser":
                raise SemanticError(p, "'exit' is not allowed in a parser")
            return ir.Exit(p)
        if k == "return_stmt":
            rt = getattr(self, "return_type", None)
            if ch:
                if rt is None or isinstance(rt, ir.VoidT):
                    raise SemanticError(p, "return with a value outside a function returning a value")
                return ir.Return(p, self.expr(ch[0], sc, rt))
            if rt is not None and not isinstance(rt, ir.VoidT):
                raise SemanticError(p, f"missing return value of type {type_str(rt)}")
            return ir.Return(p, None)
        if k == "empty_stmt":
            return ir.Empty(p)
        if k == "switch_stmt":
            return self.switch(t, sc)
        if k == "var_decl":
            parts = self.parts(t)
            ty = self.type_ref(parts[0])
            orig = self.name_of(parts[1])
            init = self.expr(parts[2], sc, ty, f"initializer of '{orig}'") if len(parts) > 2 else None
            if isinstance(ty, ir.InfIntT):
                raise SemanticError(p, f"variable '{orig}' needs a type with a width")
            self.check_new(sc, orig, p)
            u = self.fresh(orig)
            sc.syms[orig] = Sym("var", u, ty)
            return ir.VarDecl(p, u, ty, init, orig)
        if k == "const_decl":
            self.const_local(self.parts(t), sc, p)
            return None
        if k == "instantiation":
            raise SemanticError(p, "instantiations are allowed only among the locals of a parser or control")
        raise SemanticError(p, f"unsupported statement ({k})")

    def as_block_stmt(self, t: Tree, sc: Scope) -> ir.Stmt:
        s = self.stmt(t, sc.child())
        return s if s is not None else ir.Empty(self.pos(t))

    def switch(self, t: Tree, sc: Scope) -> ir.Switch:
        p = self.pos(t)
        e = self.expr(t.children[0], sc)
        on_action = isinstance(e, ir.Member) and isinstance(e.expr, ir.TableApply) and e.member == "action_run"
        if not on_action and not (is_bits(e.type) or isinstance(e.type, (ir.EnumT, ir.SerEnumT, ir.ErrorT))):
            raise SemanticError(e.pos, f"cannot switch on a value of type {type_str(e.type)}")
        table = None
        if isinstance(e, ir.Member) and isinstance(e.expr, ir.TableApply) and on_action:
            table = self.table_decls.get(e.expr.table)
        cases: list[ir.SwitchCase] = []
        seen: set[object] = set()
        for c in t.children[1:]:
            label_t = c.children[0]
            body = self.block(c.children[1], sc.child()) if len(c.children) > 1 else None
            label: str | ir.Expr
            if label_t.data == "default_label":
                label = "default"
            elif on_action:
                lt = label_t.children[0]
                if not (isinstance(lt, Tree) and lt.data in ("name_ref", "dot_name_ref")):
                    raise SemanticError(self.pos(lt), "switch labels on action_run must be action names")
                s, name = self.action_sym(Tree("action_name", lt.children, lt.meta), sc, "switch")
                assert table is not None
                if not any(a.action == s.name and a.top_level == s.top_level for a in table.actions):
                    raise SemanticError(self.pos(lt), f"action '{name}' is not an action of table "
                                        f"{table.original_name}{did_you_mean(name, [a.action for a in table.actions])}")
                label = s.name
            else:
                le = self.expr(label_t.children[0], sc, e.type)
                if not isinstance(le, (ir.Const, ir.EnumConst, ir.ErrorConst)):
                    raise SemanticError(le.pos, "switch labels must be compile-time constants")
                label = le
            key = label if isinstance(label, str) else getattr(label, "value", getattr(label, "member", None))
            if key in seen:
                raise SemanticError(self.pos(c), "duplicate switch label")
            seen.add(key)
            cases.append(ir.SwitchCase((label,), body, self.pos(c)))
        if cases and cases[-1].body is None:
            raise SemanticError(cases[-1].pos, "the last switch case needs a body")
        return ir.Switch(p, e, tuple(cases))


def _all_syms(sc: Scope) -> list[tuple[str, Sym]]:
    out: list[tuple[str, Sym]] = []
    s: Scope | None = sc
    while s is not None:
        out.extend(s.syms.items())
        s = s.parent
    return out

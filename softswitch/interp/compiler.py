"""Compile a typed IR program once into generated Python functions (no IR walk per packet).

Each parser / control instance gets one frame (a Python list; ``f[0]`` is the per-packet
context of the architecture) and one generated ``def`` per action, per parser state and
for the apply body; tables get a generated apply helper that builds the key tuple,
calls ``Table.lookup`` and dispatches on the entry's control-plane action name.

Semantics, P4_16 spec unless noted (BMv2 where the spec leaves a choice):

* ``bit<N>`` arithmetic wraps modulo 2**N; ``int<N>`` wraps two's complement; ``|+|``
  ``|-|`` saturate (signed too). ``<<`` by >= width gives 0; ``>>`` of ``int<N>`` is
  arithmetic. Division / modulo by zero give 0 (BMv2 leaves it undefined); signed ``/``
  truncates toward zero.
* Casts: bit<->int reinterpret/truncate/extend as the spec says; bool<->bit<1> as 1/0;
  serializable enums are their underlying type.
* Uninitialised variables and ``out`` parameters at entry hold BMv2's zero values
  (0, false, invalid headers with zero fields) -- this is what p4c+BMv2 show.
  ``setValid`` does not zero fields (BMv2). Reading a field of an invalid header reads
  the stored value (BMv2).
* Copy-in/copy-out for actions, functions and sub-parsers/controls: ``in`` args are
  copied; ``out`` args start at zero values; ``inout`` args of compound type are passed by
  reference (copy-in/copy-out is observable only through aliasing, which p4c rejects for
  most programs) and written back; copy-out also happens when ``exit`` unwinds through
  the call. Top-level blocks get the caller's objects and mutate them in place; a whole
  compound parameter replaced by assignment is copied back into the caller's object.
* Extern calls: ``in`` args are passed as values (externs must not mutate them), ``out``/
  ``inout`` as values.Cell written back after the call; ``_`` discards.
* Parsers: ``transition reject`` without an error reports "NoError" (BMv2 leaves
  parser_error unchanged); no select match -> NoMatch; ``.next`` past the end ->
  StackOutOfBounds; more than 10000 state transitions -> ParserTimeout.
* Tables: on a hit the entry's action runs with its args; direct counters count hits
  only (BMv2 ``apply_action``: ``if (hit && with_counters) update_counters``), so the
  default entry's counters stay 0; with ``support_timeout`` a hit stores ``ctx.now_ns``
  in ``last_hit_ns``.
  Const entries without explicit priority get priorities as p4c's EntryPriorities pass
  does (largest wins, the first entry highest: N, N-1, ..., 1; an unnumbered entry after
  a numbered one gets the previous priority - 1). Default size 1024 (BMv2).
* ``action_run`` values and switch labels are the IR's unique action names.
* Out-of-range variable stack indexes in controls read a fresh invalid header and
  writes are dropped (the spec leaves the value undefined).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from softswitch import ir
from softswitch.interp import tables as tb
from softswitch.interp.api import Architecture
from softswitch.interp.codegen import (
    CompileFailure,
    FrameGen,
    ProgramEnv,
    collect_vardecls,
    make_fn,
    width_of,
)
from softswitch.interp.fastvals import maker
from softswitch.interp.ops import base_env
from softswitch.names import control_plane_name

__all__ = ["compile_program", "Compiled", "CompileFailure", "PARSER_STEP_LIMIT"]

PARSER_STEP_LIMIT = 10000


@dataclass(slots=True)
class RoutineInfo:
    """How generated code calls a routine (action, function, sub-block)."""

    fn_name: str
    params: tuple[ir.Param, ...]
    param_slots: tuple[int, ...]
    shared_frame: bool
    frame_name: str = ""


def _cp_name(path: tuple[str, ...], local: str, original: str, annotations: tuple[ir.Annotation, ...]) -> str:
    return control_plane_name(path, original or local, annotations)


def _const_value(e: ir.Expr) -> Any:
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.EnumConst):
        return e.member
    if isinstance(e, (ir.ErrorConst,)):
        return e.name
    if isinstance(e, ir.StrConst):
        return e.value
    return None


def _priorities(entries: tuple[ir.ConstEntry, ...]) -> list[int]:
    """p4c EntryPriorities for a table that needs priorities (largest wins, delta 1)."""
    if all(e.priority is None for e in entries):
        n = len(entries)
        return [n - i for i in range(n)]
    out: list[int] = []
    cur = 1
    for i, e in enumerate(entries):
        if e.priority is not None:
            cur = e.priority
        elif i == 0:
            raise CompileFailure(f"{e.pos}: the first const entry must have a priority when others do")
        out.append(cur)
        cur -= 1
    return out


def _field_match(ks: ir.KeySet, kind: str, w: int, where: str) -> tb.FieldMatch:
    full = (1 << w) - 1
    if isinstance(ks, ir.KsDefault):
        if kind == "exact":
            raise CompileFailure(f"{where}: default keyset on an exact key")
        return None
    if isinstance(ks, ir.KsExact):
        v = int(ks.value) & full  # type: ignore[arg-type]
        if kind == "exact":
            return tb.Exact(v)
        if kind == "ternary":
            return tb.Ternary(v, full)
        if kind == "lpm":
            return tb.Lpm(v, w)
        if kind == "range":
            return tb.Range(v, v)
        if kind == "optional":
            return tb.OptionalMatch(v)
    if isinstance(ks, ir.KsMask):
        m = ks.mask & full
        v = ks.value & m
        if kind == "ternary":
            return tb.Ternary(v, m)
        if kind == "lpm":
            plen = bin(m).count("1")
            if m != full ^ ((1 << (w - plen)) - 1):
                raise CompileFailure(f"{where}: lpm mask {m:#x} is not a prefix")
            return tb.Lpm(v, plen)
        if kind == "exact" and m == full:
            return tb.Exact(v)
    if isinstance(ks, ir.KsRange) and kind == "range":
        return tb.Range(ks.lo & full, ks.hi & full)
    raise CompileFailure(f"{where}: keyset {ks} does not fit match kind {kind}")


class _Block:
    """One parser or control instance being compiled; the resolver of its FrameGen."""

    def __init__(self, pc: _ProgramCompiler, decl: ir.ParserDecl | ir.ControlDecl,
                 path: tuple[str, ...], ctor_args: tuple[ir.Expr, ...]) -> None:
        self.pc = pc
        self.decl = decl
        self.path = path
        self.name = ".".join(path)
        slots: dict[str, int] = {}
        types: dict[str, ir.Type] = {}

        def add(n: str) -> None:
            if n not in slots:
                slots[n] = len(slots) + 1

        for p in decl.params:
            add(p.name)
        for p in decl.ctor_params:
            add(p.name)
        for loc in decl.locals:
            if isinstance(loc, ir.VarDecl):
                add(loc.name)
        if isinstance(decl, ir.ControlDecl):
            for a in decl.actions:
                for p in a.params:
                    add(p.name)
                collect_vardecls(a.body.stmts, types)
            collect_vardecls(decl.apply.stmts, types)
        else:
            for st in decl.states:
                collect_vardecls(st.stmts, types)
        for n in types:
            add(n)
        self.slots = slots
        self.frame: list[Any] = [None] * (len(slots) + 1)
        for p, carg in zip(decl.ctor_params, ctor_args, strict=False):
            self.frame[slots[p.name]] = _const_value(carg)
        self.frame_name = pc.pe.bind(self.frame, "F")
        self.param_slots = tuple(slots[p.name] for p in decl.params)
        self.gen = FrameGen(pc.pe, slots, self, f"{'parser' if isinstance(decl, ir.ParserDecl) else 'control'} {self.name}")
        self.instances: dict[str, object] = {}
        self.subs: dict[str, RoutineInfo] = {}
        self.actions: dict[str, RoutineInfo] = {}
        self.table_fns: dict[str, str] = {}
        self._instantiate()
        init_lines = self._init_lines()
        #: no local variables to reset: callers skip calling init_fn
        self.init_empty = init_lines == ["    pass"]
        self.init_fn = make_fn(pc.pe, pc.pe.fresh("init"), init_lines)
        if isinstance(decl, ir.ControlDecl):
            self._compile_control(decl)
        else:
            self._compile_parser(decl)

    # ---------------------------------------------------------------- resolver API

    def instance(self, e: ir.InstanceRef) -> object:
        if e.top_level:
            return self.pc.top_instance(e.name, e.pos)
        if e.name in self.instances:
            return self.instances[e.name]
        if e.name in self.pc.top_instances:
            return self.pc.top_instances[e.name]
        raise CompileFailure(f"{e.pos}: {self.name}: unknown instance {e.name!r}")

    def bind_method(self, e: ir.ExternMethodCall) -> Any:
        if not isinstance(e.target, ir.InstanceRef):
            raise CompileFailure(f"{e.pos}: {self.name}: method call on a {type(e.target).__name__} "
                                 f"of extern {e.extern} is not supported")
        return self.pc.arch.bind_method(self.instance(e.target), e)

    def bind_function(self, e: ir.ExternFunctionCall) -> Any:
        return self.pc.arch.bind_function(e)

    def table_fn(self, name: str, pos: ir.Pos) -> str:
        fn = self.table_fns.get(name)
        if fn is None:
            raise CompileFailure(f"{pos}: {self.name}: unknown table {name!r}")
        return fn

    def action_info(self, name: str, top_level: bool, pos: ir.Pos) -> RoutineInfo:
        if not top_level and name in self.actions:
            return self.actions[name]
        return self.pc.top_action(name, pos)

    def function_info(self, name: str, pos: ir.Pos) -> RoutineInfo:
        return self.pc.function(name, pos)

    def sub_info(self, name: str, pos: ir.Pos) -> RoutineInfo:
        info = self.subs.get(name)
        if info is None:
            raise CompileFailure(f"{pos}: {self.name}: {name!r} is not a parser/control instance here")
        return info

    def action_run_name(self, label: str) -> str:
        return label

    # ---------------------------------------------------------------- building

    def _instantiate(self) -> None:
        for loc in self.decl.locals:
            if not isinstance(loc, ir.Instance):
                continue
            cp = _cp_name(self.path, loc.name, loc.original_name, loc.annotations)
            t = loc.type
            if isinstance(t, ir.ExternT):
                obj = self.pc.arch.instantiate(cp, loc)
                self.instances[loc.name] = obj
                self.pc.instances[cp] = obj
            elif isinstance(t, (ir.ParserT, ir.ControlT)):
                sub_decl = (self.pc.program.parsers.get(t.name) if isinstance(t, ir.ParserT)
                            else self.pc.program.controls.get(t.name))
                if sub_decl is None:
                    raise CompileFailure(f"{loc.pos}: {self.name}: unknown block type {t.name}")
                sub = _Block(self.pc, sub_decl, tuple(cp.split(".")), loc.ctor_args)
                self.subs[loc.name] = sub.routine()
            else:
                raise CompileFailure(f"{loc.pos}: {self.name}: cannot instantiate a {t}")

    def _init_lines(self) -> list[str]:
        lines: list[str] = []
        for loc in self.decl.locals:
            if isinstance(loc, ir.VarDecl):
                lines.extend(self.gen.stmt(loc, "    ", False))
        return lines or ["    pass"]

    def routine(self) -> RoutineInfo:
        """How a SubApply calls this block (own frame; init then run)."""
        return RoutineInfo(self.entry_name, self.decl.params, self.param_slots, False, self.frame_name)

    def _compile_control(self, decl: ir.ControlDecl) -> None:
        pe = self.pc.pe
        for a in decl.actions:
            self.actions[a.name] = RoutineInfo(pe.fresh("a"), a.params,
                                               tuple(self.slots[p.name] for p in a.params), True)
            self.pc.actions[_cp_name(self.path, a.name, a.original_name, a.annotations)] = a
        for t in decl.tables:
            self.table_fns[t.name] = pe.fresh("tbl")
        for a in decl.actions:
            info = self.actions[a.name]
            g = FrameGen(pe, self.slots, self, f"action {self.name}.{a.original_name or a.name}")
            make_fn(pe, info.fn_name, g.stmts(a.body.stmts, "    ", True))
        for t in decl.tables:
            self._compile_table(t)
        apply_name = pe.fresh("apply")
        self.apply_fn = make_fn(pe, apply_name, self.gen.stmts(decl.apply.stmts, "    ", True))
        self.entry_name = pe.fresh("ctl")
        if self.init_empty:  # the entry is the apply function itself
            pe.define(f"{self.entry_name} = {apply_name}\n")
        else:
            make_fn(pe, self.entry_name, [f"    {pe.bind(self.init_fn, 'I')}(f)",
                                          f"    {pe.bind(self.apply_fn, 'P')}(f)"])

    def _action_decl(self, name: str, top_level: bool, pos: ir.Pos) -> tuple[str, ir.ActionDecl]:
        if not top_level:
            for a in self.decl.actions if isinstance(self.decl, ir.ControlDecl) else ():
                if a.name == name:
                    return _cp_name(self.path, a.name, a.original_name, a.annotations), a
        a2 = self.pc.program.actions.get(name)
        if a2 is None:
            raise CompileFailure(f"{pos}: {self.name}: unknown action {name!r}")
        return _cp_name((), a2.name, a2.original_name, a2.annotations), a2

    def _compile_table(self, t: ir.TableDecl) -> None:
        pe = self.pc.pe
        cp = _cp_name(self.path, t.name, t.original_name, t.annotations)
        where = f"table {cp}"
        key_widths = []
        key_srcs = []
        for k in t.keys:
            if k.match_kind not in ("exact", "lpm", "ternary", "range", "optional"):
                raise CompileFailure(f"{k.pos}: {where}: match kind {k.match_kind} is not supported")
            kt = k.expr.type
            w = width_of(kt)
            key_widths.append(w)
            src = self.gen.ex(k.expr)
            u = kt.underlying if isinstance(kt, ir.SerEnumT) else kt
            if isinstance(u, ir.BoolT):
                src = f"(1 if {src} else 0)"
            elif isinstance(u, ir.IntT):
                src = f"({src} & {(1 << w) - 1})"
            key_srcs.append(src)
        action_params: dict[str, tuple[int, ...]] = {}
        runners: dict[str, tuple[Any, tuple[bool, str], tuple[bool, str]]] = {}
        table_only: list[str] = []
        default_only: list[str] = []
        refs = list(t.actions)
        da = t.default_action
        if not any(r.action == da.action and r.top_level == da.top_level for r in refs):
            refs.append(ir.ActionRef(da.action, da.top_level))
        for ref in refs:
            acp, adecl = self._action_decl(ref.action, ref.top_level, ref.pos)
            data = [p for p in adecl.params if p.direction == ""]
            action_params[acp] = tuple(width_of(p.type) for p in data)
            if ir.annotation(ref.annotations, "tableonly") is not None:
                table_only.append(acp)
            if ir.annotation(ref.annotations, "defaultonly") is not None:
                default_only.append(acp)
            info = self.action_info(ref.action, ref.top_level, ref.pos)
            runners[acp] = (self._runner(adecl, info), (True, ref.action), (False, ref.action))
        dcp, _ = self._action_decl(da.action, da.top_level, da.pos)
        def cp_args(action: str, args: tuple[int, ...]) -> tuple[int, ...]:
            # int<N> / bool action data folded by the frontend -> control-plane unsigned ints
            ws = action_params.get(action, ())
            return tuple((int(a) & ((1 << w) - 1)) if i < len(ws) and (w := ws[i]) else int(a)
                         for i, a in enumerate(args))

        table = tb.Table(cp, t, tuple(key_widths), action_params, dcp, cp_args(dcp, da.args),
                         default_is_const=da.is_const, size=t.size,
                         table_only=table_only, default_only=default_only)
        if t.entries:
            prios = _priorities(t.entries) if table.needs_priority else [0] * len(t.entries)
            for ce, prio in zip(t.entries, prios, strict=True):
                ecp, _ = self._action_decl(ce.action, ce.top_level, ce.pos)
                matches = tuple(_field_match(ks, k.match_kind, w, f"{ce.pos}: {where} key {k.source_text}")
                                for ks, k, w in zip(ce.keysets, t.keys, key_widths, strict=True))
                try:
                    table.insert(tb.TableEntry(matches, ecp, cp_args(ecp, ce.args), priority=prio,
                                               is_const=t.entries_const))
                except tb.TableError as e:
                    raise CompileFailure(f"{ce.pos}: const entry: {e}") from e
        self.pc.tables[cp] = table
        if t.direct_counter is not None:
            inst = next((loc for loc in self.decl.locals if isinstance(loc, ir.Instance)
                         and loc.name == t.direct_counter), None)
            if inst is None:
                raise CompileFailure(f"{t.pos}: {where}: unknown direct counter {t.direct_counter}")
            self.pc.table_of_direct_counter[_cp_name(self.path, inst.name, inst.original_name,
                                                     inst.annotations)] = cp
        tn = pe.bind(table, "T")
        look = pe.bind(table.lookup, "lk")
        acts = pe.bind(runners, "A")
        if not key_srcs:
            keyexpr = "()"
        else:
            keyexpr = "(" + ", ".join(key_srcs) + ",)"
        count = ["    _e.packets += 1", "    _e.bytes += f[0].packet_length"] if t.direct_counter else []
        body = [f"    _e = {look}({keyexpr})",
                "    if _e is None:",
                f"        _e = {tn}.default_entry",
                f"        _r = {acts}[_e.action]",
                "        _r[0](f, _e.args)",
                "        return _r[2]",
                *count,
                *(["    _e.last_hit_ns = f[0].now_ns"] if t.support_timeout else []),
                f"    _r = {acts}[_e.action]",
                "    _r[0](f, _e.args)",
                "    return _r[1]"]
        make_fn(pe, self.table_fns[t.name], body)

    def _runner(self, adecl: ir.ActionDecl, info: RoutineInfo) -> Any:
        """``run(f, args)``: bind control-plane action data to the action's params, run it."""
        pe = self.pc.pe
        g = "f" if info.shared_frame else "g"
        lines = [] if info.shared_frame else [f"    g = {info.frame_name}", "    g[0] = f[0]"]
        i = 0
        for p, s in zip(adecl.params, info.param_slots, strict=True):
            if p.direction == "":
                u = p.type.underlying if isinstance(p.type, ir.SerEnumT) else p.type
                v = f"a[{i}]"
                if isinstance(u, ir.BoolT):
                    v = f"(a[{i}] != 0)"
                elif isinstance(u, ir.IntT):
                    h = 1 << (u.width - 1)
                    v = f"(((a[{i}] + {h}) & {(1 << u.width) - 1}) - {h})"
                lines.append(f"    {g}[{s}] = {v}")
                i += 1
            else:
                lines.append(f"    {g}[{s}] = {self.gen.zero(p.type)}")
        lines.append(f"    {info.fn_name}({g})")
        return make_fn(pe, pe.fresh("run"), lines, "f, a")

    def _compile_parser(self, decl: ir.ParserDecl) -> None:
        pe = self.pc.pe
        names = {st.name: pe.fresh("st") for st in decl.states}
        for st in decl.states:
            g = FrameGen(pe, self.slots, self, f"parser {self.name} state {st.name}")
            lines = g.stmts(st.stmts, "    ", False)
            lines.extend(self._transition(g, st.transition, names))
            make_fn(pe, names[st.name], lines)
        if "start" not in names:
            raise CompileFailure(f"{decl.pos}: parser {self.name} has no start state")
        self.run_name = pe.fresh("prun")
        make_fn(pe, self.run_name, [
            f"    st = {names['start']}",
            "    c = 0",
            "    while st is not None:",
            "        c += 1",
            f"        if c > {PARSER_STEP_LIMIT}:",
            "            raise _Reject('ParserTimeout')",
            "        st = st(f)",
        ])
        self.entry_name = pe.fresh("psub")
        if self.init_empty:  # the entry is the state loop itself
            pe.define(f"{self.entry_name} = {self.run_name}\n")
        else:
            make_fn(pe, self.entry_name, [f"    {pe.bind(self.init_fn, 'I')}(f)", f"    {self.run_name}(f)"])

    def _target(self, state: str, names: dict[str, str]) -> str:
        if state == "accept":
            return "return None"
        if state == "reject":
            return "raise _Reject('NoError')"
        if state not in names:
            raise CompileFailure(f"parser {self.name}: transition to unknown state {state!r}")
        return f"return {names[state]}"

    def _transition(self, g: FrameGen, tr: ir.Transition, names: dict[str, str]) -> list[str]:
        if isinstance(tr, ir.Goto):
            return ["    " + self._target(tr.state, names)]
        lines: list[str] = []
        keys = []
        for i, k in enumerate(tr.keys):
            kv = f"_k{i}"
            lines.append(f"    {kv} = {g.ex(k)}")
            keys.append((kv, k.type))
        for case in tr.cases:
            conds = []
            for (kv, kt), ks in zip(keys, case.keysets, strict=True):
                u = kt.underlying if isinstance(kt, ir.SerEnumT) else kt
                if isinstance(ks, ir.KsDefault):
                    continue
                if isinstance(ks, ir.KsExact):
                    val = ks.value
                    if isinstance(u, ir.IntT) and isinstance(val, int) and not isinstance(val, bool):
                        h = 1 << (u.width - 1)
                        val = ((val + h) & ((1 << u.width) - 1)) - h
                    conds.append(f"{kv} == {val!r}")
                elif isinstance(ks, ir.KsMask):
                    w = width_of(u)
                    m = ks.mask & ((1 << w) - 1)
                    conds.append(f"({kv} & {m}) == {ks.value & m}")
                elif isinstance(ks, ir.KsRange):
                    if isinstance(u, ir.IntT):
                        conds.append(f"{ks.lo} <= {kv} <= {ks.hi}")
                    else:
                        conds.append(f"{ks.lo} <= {kv} <= {ks.hi}")
            tgt = self._target(case.state, names)
            if conds:
                lines.append(f"    if {' and '.join(conds)}:")
                lines.append(f"        {tgt}")
            else:
                lines.append(f"    {tgt}")
                return lines
        lines.append("    raise _Reject('NoMatch')")
        return lines


@dataclass
class Compiled:
    """The concrete CompiledProgram (see api.py)."""

    program: ir.Program
    tables: dict[str, tb.Table] = field(default_factory=dict)
    instances: dict[str, object] = field(default_factory=dict)
    actions: dict[str, ir.ActionDecl] = field(default_factory=dict)
    table_of_direct_counter: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, _Block] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def new_value(self, t: ir.Type) -> Any:
        """A fresh zero value (type-specialised constructor, see fastvals.py)."""
        return maker(t)()

    _parsers: dict[str, Any] = field(default_factory=dict, repr=False)
    _controls: dict[str, Any] = field(default_factory=dict, repr=False)

    def _missing(self, kind: str, decl_name: str) -> KeyError:
        have = sorted(self._parsers if kind == "parser" else self._controls)
        return KeyError(f"no top-level {kind} named {decl_name!r} (have {', '.join(have)})")

    def run_parser(self, decl_name: str, args: list[Any], ctx: Any) -> str:
        try:
            run = self._parsers[decl_name]
        except KeyError:
            raise self._missing("parser", decl_name) from None
        return run(args, ctx)  # type: ignore[no-any-return]

    def run_control(self, decl_name: str, args: list[Any], ctx: Any) -> None:
        try:
            run = self._controls[decl_name]
        except KeyError:
            raise self._missing("control", decl_name) from None
        run(args, ctx)

    # Optional fast paths for an architecture's per-packet driver (not part of the
    # CompiledProgram protocol): the callables run_parser / run_control / new_value
    # would use, looked up once.

    def parser_runner(self, decl_name: str) -> Callable[[list[Any], Any], str]:
        """``run(args, ctx)`` equal to ``run_parser(decl_name, args, ctx)``."""
        try:
            return self._parsers[decl_name]  # type: ignore[no-any-return]
        except KeyError:
            raise self._missing("parser", decl_name) from None

    def control_runner(self, decl_name: str) -> Callable[[list[Any], Any], None]:
        """``run(args, ctx)`` equal to ``run_control(decl_name, args, ctx)``."""
        try:
            return self._controls[decl_name]  # type: ignore[no-any-return]
        except KeyError:
            raise self._missing("control", decl_name) from None

    def value_maker(self, t: ir.Type) -> Callable[[], Any]:
        """``make()`` equal to ``new_value(t)``."""
        return maker(t)


def _top_runner(pe: ProgramEnv, blk: _Block) -> Any:
    """A generated ``run(args, ctx)`` for a top-level block: binds the arguments to the
    frame, runs, maps parser outcomes to error names, and copies a whole compound
    out/inout parameter replaced by assignment back into the caller's object."""
    n = len(blk.param_slots)
    names = [f"a{i}" for i in range(n)]
    lines = [f"    f = {blk.frame_name}", "    f[0] = ctx"]
    if n:
        lines.append(f"    {', '.join(names)}{',' if n == 1 else ''} = args")
        lines.extend(f"    f[{s}] = {a}" for s, a in zip(blk.param_slots, names, strict=True))
    init = [] if blk.init_empty else [f"{pe.bind(blk.init_fn, 'I')}(f)"]
    backs = [f"    if f[{s}] is not {a}: _assign_into({a}, f[{s}])"
             for s, a, p in zip(blk.param_slots, names, blk.decl.params, strict=True)
             if p.direction in ("out", "inout") and isinstance(p.type, (ir.HeaderT, ir.StructT, ir.HeaderUnionT,
                                                                         ir.StackT, ir.TupleT))]
    if isinstance(blk.decl, ir.ParserDecl):
        lines += ["    err = 'NoError'", "    try:", *(f"        {i}" for i in init), f"        {blk.run_name}(f)",
                  "    except _Reject as r:", "        err = r.error",
                  "    except _TooShort:", "        err = 'PacketTooShort'",
                  "    except _HdrTooShort:", "        err = 'HeaderTooShort'",
                  *backs, "    return err"]
    else:
        lines += ["    try:", *(f"        {i}" for i in init), f"        {pe.bind(blk.apply_fn, 'P')}(f)",
                  "    except _Exit:", "        pass", *backs]
    return make_fn(pe, pe.fresh("run_" + blk.decl.name.replace(".", "_") + "_"), lines, "args, ctx")


class _ProgramCompiler:
    def __init__(self, program: ir.Program, arch: Architecture) -> None:
        self.program = program
        self.arch = arch
        self.pe = ProgramEnv(base_env())
        self.out = Compiled(program)
        self.tables = self.out.tables
        self.instances = self.out.instances
        self.actions = self.out.actions
        self.table_of_direct_counter = self.out.table_of_direct_counter
        self.top_instances: dict[str, object] = {}
        self._top_actions: dict[str, RoutineInfo] = {}
        self._functions: dict[str, RoutineInfo] = {}
        for name, a in program.actions.items():
            self.actions[_cp_name((), name, a.original_name, a.annotations)] = a
        for name, inst in program.instances.items():
            if isinstance(inst.type, ir.ExternT):
                cp = _cp_name((), name, inst.original_name, inst.annotations)
                obj = arch.instantiate(cp, inst)
                self.top_instances[name] = obj
                self.instances[cp] = obj

    def top_instance(self, name: str, pos: ir.Pos) -> object:
        if name not in self.top_instances:
            raise CompileFailure(f"{pos}: unknown top-level instance {name!r}")
        return self.top_instances[name]

    def _own_frame_routine(self, kind: str, name: str, params: tuple[ir.Param, ...],
                           body: ir.Block) -> tuple[RoutineInfo, dict[str, int]]:
        slots: dict[str, int] = {}
        for p in params:
            slots.setdefault(p.name, len(slots) + 1)
        types: dict[str, ir.Type] = {}
        collect_vardecls(body.stmts, types)
        for n in types:
            slots.setdefault(n, len(slots) + 1)
        frame: list[Any] = [None] * (len(slots) + 1)
        info = RoutineInfo(self.pe.fresh("fn" if kind == "function" else "a"), params,
                           tuple(slots[p.name] for p in params), False, self.pe.bind(frame, "F"))
        return info, slots

    def top_action(self, name: str, pos: ir.Pos) -> RoutineInfo:
        info = self._top_actions.get(name)
        if info is not None:
            return info
        a = self.program.actions.get(name)
        if a is None:
            raise CompileFailure(f"{pos}: unknown action {name!r}")
        info, slots = self._own_frame_routine("action", name, a.params, a.body)
        self._top_actions[name] = info
        g = FrameGen(self.pe, slots, _TopResolver(self), f"action {name}")
        make_fn(self.pe, info.fn_name, g.stmts(a.body.stmts, "    ", True))
        return info

    def function(self, name: str, pos: ir.Pos) -> RoutineInfo:
        info = self._functions.get(name)
        if info is not None:
            return info
        fd = self.program.functions.get(name)
        if fd is None:
            raise CompileFailure(f"{pos}: unknown function {name!r}")
        info, slots = self._own_frame_routine("function", name, fd.params, fd.body)
        self._functions[name] = info
        g = FrameGen(self.pe, slots, _TopResolver(self), f"function {name}")
        make_fn(self.pe, info.fn_name, g.stmts(fd.body.stmts, "    ", True))
        return info

    def compile(self) -> Compiled:
        p = self.program
        names = list(p.main.args) if p.main is not None else [*p.parsers, *p.controls]
        for n in names:
            if n in self.out.blocks:
                continue
            decl: ir.ParserDecl | ir.ControlDecl | None = p.parsers.get(n) or p.controls.get(n)
            if decl is None:
                raise CompileFailure(f"main argument {n!r} is not a parser or control declaration")
            blk = _Block(self, decl, (n,), ())
            self.out.blocks[n] = blk
            runner = _top_runner(self.pe, blk)
            (self.out._parsers if isinstance(decl, ir.ParserDecl) else self.out._controls)[n] = runner
        self.out.sources = self.pe.sources
        return self.out


class _TopResolver:
    """Resolver for top-level actions and functions (no tables or local instances)."""

    def __init__(self, pc: _ProgramCompiler) -> None:
        self.pc = pc

    def instance(self, e: ir.InstanceRef) -> object:
        return self.pc.top_instance(e.name, e.pos)

    def bind_method(self, e: ir.ExternMethodCall) -> Any:
        if not isinstance(e.target, ir.InstanceRef):
            raise CompileFailure(f"{e.pos}: method call on a non-instance is not supported here")
        return self.pc.arch.bind_method(self.instance(e.target), e)

    def bind_function(self, e: ir.ExternFunctionCall) -> Any:
        return self.pc.arch.bind_function(e)

    def table_fn(self, name: str, pos: ir.Pos) -> str:
        raise CompileFailure(f"{pos}: table {name!r} applied outside a control")

    def action_info(self, name: str, top_level: bool, pos: ir.Pos) -> RoutineInfo:
        return self.pc.top_action(name, pos)

    def function_info(self, name: str, pos: ir.Pos) -> RoutineInfo:
        return self.pc.function(name, pos)

    def sub_info(self, name: str, pos: ir.Pos) -> RoutineInfo:
        raise CompileFailure(f"{pos}: {name!r} applied outside a parser/control")

    def action_run_name(self, label: str) -> str:
        return label


def compile_program(program: ir.Program, arch: Architecture) -> Compiled:
    """Compile ``program`` for ``arch`` (extern instances are created now). Raises
    CompileFailure naming the construct the interpreter cannot run."""
    return _ProgramCompiler(program, arch).compile()

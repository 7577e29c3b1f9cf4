"""Which objects p4c's P4Info lists, and in which order (used by ``softswitch.p4info``).

softswitch has no midend, but p4c writes the P4Info from the program *after its
frontend* (``P4::serializeP4RuntimeIfRequired`` runs right after ``FrontEnd::run`` in
``backends/bmv2/simple_switch/main.cpp``), and several frontend passes decide what the
P4Info contains. This module replays their effect on the IR instead of transforming it:

* ``RemoveAllUnusedDeclarations`` (unusedDeclarations.cpp): tables never applied are
  removed, then the actions only they referred to.
* ``Inline`` (inlining.cpp, ``GeneralInliner::preorder(P4Control)``): every control
  instantiated inside another control is inlined; its locals (actions, tables, extern
  instances) are copied into the caller's locals right after the instance declaration,
  recursively. Only the controls of ``main`` remain, so order is "declaration order in
  the flattened control".
* ``InlineActions`` (actionsInlining.cpp): an action called from another action is
  inlined into it; unless a table or the apply block uses it too, it disappears.
* ``LocalizeAllActions`` (localizeActions.cpp): a top-level action (``NoAction``) is
  copied into each control that uses it; ``LocalizeActions::postorder(P4Control)``
  *prepends* the copies, in order of first use (tables in declaration order, then the
  apply block). Then ``FindRepeatedActionUses`` / ``DuplicateActions`` give each user (a
  table, or one direct call) its own copy, inserted where the original was.
* ``RemoveActionParameters`` (removeParameters.cpp): a copy used by a table loses its
  directional parameters (they are bound in the actions list); a copy called directly
  from an apply block loses *all* of them, and becomes a parameterless action.

The serializer (control-plane/p4RuntimeSerializer.cpp, ``P4RuntimeAnalyzer::analyze``)
then walks the evaluated blocks breadth first (``forAllEvaluatedBlocks``): top-level
extern instances, then each control of ``main`` in parameter order (``analyzeControl``
adds its actions in ``controlLocals`` order), then each control's tables and extern
instances. Actions are deduplicated by id, first copy wins: since tables come before the
apply block, an action both used by a table and called directly keeps its (directionless)
parameters; one only called directly has none.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from softswitch import ir
from softswitch.names import control_plane_name

__all__ = ["Block", "ObjectNames", "collect_names", "EXTERN_KINDS", "explicit_id", "P4InfoError",
           "walk_stmt_exprs"]

#: v1model extern types whose instances are P4Info objects
EXTERN_KINDS = frozenset({"counter", "direct_counter", "meter", "direct_meter", "register"})


class P4InfoError(Exception):
    """The program cannot be described in P4Info (e.g. duplicate @id)."""


@dataclass(frozen=True, slots=True)
class Block:
    """One control instance in the program: its declaration and its name path."""

    decl: ir.ControlDecl
    path: tuple[str, ...]


@dataclass(slots=True)
class ObjectNames:
    """Everything control-plane visible, by fully qualified name, in p4c's order."""

    tables: dict[str, tuple[Block, ir.TableDecl]] = field(default_factory=dict)
    #: control-plane action name -> declaration
    actions: dict[str, ir.ActionDecl] = field(default_factory=dict)
    #: control-plane action name -> the parameters p4c lists (see RemoveActionParameters)
    action_params: dict[str, tuple[ir.Param, ...]] = field(default_factory=dict)
    #: control-plane name -> (extern type name, instance)
    externs: dict[str, tuple[str, ir.Instance]] = field(default_factory=dict)
    #: direct counter / meter name -> table name
    direct_owner: dict[str, str] = field(default_factory=dict)
    #: digest control-plane name -> struct type
    digests: dict[str, ir.StructT | ir.HeaderT] = field(default_factory=dict)
    #: controller header type name -> header type
    controller_headers: dict[str, ir.HeaderT] = field(default_factory=dict)
    #: explicit @id per (prefix, name); filled by the caller
    explicit_ids: dict[tuple[int, str], int] = field(default_factory=dict)


def explicit_id(annotations: Sequence[ir.Annotation], prefix: int, what: str) -> int | None:
    """``@id(N)`` with the 8-bit resource prefix added when N has none."""
    a = ir.annotation(tuple(annotations), "id")
    if a is None:
        return None
    if not a.args or not isinstance(a.args[0], int) or a.args[0] < 0 or a.args[0] > 0xFFFFFFFF:
        raise P4InfoError(f"{what}: @id should be an unsigned 32-bit integer, got @id({a.body})")
    value = a.args[0]
    if value >> 24 and value >> 24 != prefix:
        raise P4InfoError(f"{what}: @id({value:#x}) has the wrong 8-bit prefix (expected {prefix:#x})")
    return value | (prefix << 24)


# ------------------------------------------------------------------ IR walking


def walk_stmt_exprs(s: ir.Stmt | None) -> Iterator[ir.Expr]:
    """Every expression reachable from a statement, in source order."""
    if s is None:
        return
    if isinstance(s, ir.Block):
        for x in s.stmts:
            yield from walk_stmt_exprs(x)
    elif isinstance(s, ir.If):
        yield from _walk_expr(s.cond)
        yield from walk_stmt_exprs(s.then)
        yield from walk_stmt_exprs(s.else_)
    elif isinstance(s, ir.CallStmt):
        yield from _walk_expr(s.call)
    elif isinstance(s, ir.Assign):
        yield from _walk_expr(s.lhs)
        yield from _walk_expr(s.rhs)
    elif isinstance(s, ir.VarDecl) and s.init is not None:
        yield from _walk_expr(s.init)
    elif isinstance(s, ir.Return) and s.value is not None:
        yield from _walk_expr(s.value)
    elif isinstance(s, ir.Switch):
        yield from _walk_expr(s.expr)
        for c in s.cases:
            yield from walk_stmt_exprs(c.body)


def _walk_expr(e: ir.Expr) -> Iterator[ir.Expr]:
    yield e
    args: tuple[ir.Arg, ...] = getattr(e, "args", ()) or ()
    for a in args:
        if isinstance(a, ir.Arg):
            yield from _walk_expr(a.expr)
    for attr in ("expr", "left", "right", "cond", "then", "else_", "target"):
        sub = getattr(e, attr, None)
        if isinstance(sub, ir.Expr):
            yield from _walk_expr(sub)


def _source_order(items: list[ir.ActionDecl | ir.TableDecl | ir.Instance]) -> None:
    """Sort a control's locals back into declaration order (the IR keeps actions,
    tables and instances apart). Positions from different files are not comparable,
    so then the IR's own order stays."""
    if len({i.pos.file for i in items}) <= 1:
        items.sort(key=lambda i: (i.pos.line, i.pos.col))


# ------------------------------------------------------------- one control of main


@dataclass(slots=True)
class _Flat:
    """A control of ``main`` with its sub-controls inlined, as p4c's frontend leaves it."""

    program: ir.Program
    #: (block, local) in the flattened ``controlLocals`` order
    locals: list[tuple[Block, ir.ActionDecl | ir.TableDecl | ir.Instance]] = field(default_factory=list)
    #: (block, expression) of the inlined apply block, in source order
    body: list[tuple[Block, ir.Expr]] = field(default_factory=list)

    def flatten(self, block: Block) -> None:
        decl = block.decl
        items: list[ir.ActionDecl | ir.TableDecl | ir.Instance] = [
            loc for loc in decl.locals if isinstance(loc, ir.Instance)]
        items += [*decl.actions, *decl.tables]
        _source_order(items)
        for item in items:
            self.locals.append((block, item))
            sub = self._sub_block(block, item)
            if sub is not None:
                self.flatten(sub)

    def _sub_block(self, block: Block, item: object) -> Block | None:
        if isinstance(item, ir.Instance) and isinstance(item.type, ir.ControlT):
            sub = self.program.controls.get(item.type.name)
            if sub is not None:
                name = control_plane_name(block.path, item.original_name or item.name, item.annotations)
                return Block(sub, tuple(name.split(".")))
        return None

    def inline_body(self, block: Block, stmt: ir.Stmt, depth: int = 0) -> None:
        # A sub-control's apply is replaced by its body at the call site.
        for e in walk_stmt_exprs(stmt):
            self.body.append((block, e))
            if isinstance(e, ir.SubApply) and depth < 64:
                inst = next((i for i in block.decl.locals if isinstance(i, ir.Instance) and i.name == e.instance),
                            None)
                sub = self._sub_block(block, inst)
                if sub is not None:
                    self.inline_body(sub, sub.decl.apply, depth + 1)


def _table_action_uses(t: ir.TableDecl) -> list[tuple[str, bool]]:
    """(action, top_level) in the order the table's properties mention them. p4c's
    CreateBuiltins appends ``NoAction`` to the actions list of a table without
    ``default_action``, and then ``default_action = NoAction()``."""
    uses: list[tuple[ir.Pos, str, bool]] = [(r.pos, r.action, r.top_level) for r in t.actions]
    implicit = not any(r.action == t.default_action.action and r.top_level == t.default_action.top_level
                       for r in t.actions)
    if not implicit:
        uses.append((t.default_action.pos, t.default_action.action, t.default_action.top_level))
    uses += [(c.pos, c.action, c.top_level) for c in t.entries or ()]
    if len({p.file for p, _, _ in uses}) <= 1:
        uses.sort(key=lambda u: (u[0].line, u[0].col))
    out = [(a, top) for _, a, top in uses]
    if implicit:
        out.append((t.default_action.action, t.default_action.top_level))
    return out


def _action_cp(program: ir.Program, block: Block, name: str, top_level: bool) -> tuple[str, ir.ActionDecl] | None:
    if not top_level:
        for a in block.decl.actions:
            if a.name == name:
                return control_plane_name(block.path, a.original_name or a.name, a.annotations), a
    d = program.actions.get(name)
    if d is None:
        return None
    return control_plane_name((), d.original_name or d.name, d.annotations), d


def _collect_control(out: ObjectNames, program: ir.Program, top: Block) -> None:
    flat = _Flat(program)
    flat.flatten(top)
    flat.inline_body(top, top.decl.apply)

    applied = {(b.path, e.table) for b, e in flat.body if isinstance(e, ir.TableApply)}
    tables = [(b, t) for b, t in flat.locals if isinstance(t, ir.TableDecl) and (b.path, t.name) in applied]

    # Users of each action, in the order p4c's passes meet them: tables (in flattened
    # declaration order), then the apply block.
    by_table: set[str] = set()
    first_use: dict[str, ir.ActionDecl] = {}

    def use(block: Block, name: str, top_level: bool, from_table: bool) -> None:
        found = _action_cp(program, block, name, top_level)
        if found is not None:
            if from_table:
                by_table.add(found[0])
            first_use.setdefault(*found)

    for b, t in tables:
        for name, top_level in _table_action_uses(t):
            use(b, name, top_level, True)
    for b, e in flat.body:
        if isinstance(e, ir.ActionCall):
            use(b, e.action, e.top_level, False)

    # LocalizeAllActions: the copies of top-level actions come first (in order of first
    # use), then the control's own actions in flattened declaration order.
    own = [(control_plane_name(b.path, a.original_name or a.name, a.annotations), a, b)
           for b, a in flat.locals if isinstance(a, ir.ActionDecl)]
    own_cps = {cp for cp, _, _ in own}
    ordered = [(cp, d, top) for cp, d in first_use.items() if cp not in own_cps]
    ordered += [(cp, a, b) for cp, a, b in own if cp in first_use and first_use[cp] is a]
    for cp, decl, _ in ordered:
        if cp in out.actions:
            continue  # P4RuntimeAnalyzer::addAction: the first copy with this id wins
        out.actions[cp] = decl
        out.action_params[cp] = tuple(p for p in decl.params if p.direction == "") if cp in by_table else ()

    local_insts: dict[tuple[tuple[str, ...], str], str] = {}
    for b, inst in flat.locals:
        if isinstance(inst, ir.Instance) and isinstance(inst.type, ir.ExternT) and inst.type.name in EXTERN_KINDS:
            cp = control_plane_name(b.path, inst.original_name or inst.name, inst.annotations)
            out.externs.setdefault(cp, (inst.type.name, inst))
            local_insts[(b.path, inst.name)] = cp
    for b, t in tables:
        cp = control_plane_name(b.path, t.original_name or t.name, t.annotations)
        out.tables.setdefault(cp, (b, t))
        for res in (t.direct_counter, t.direct_meter):
            if res is not None and (b.path, res) in local_insts:
                out.direct_owner[local_insts[(b.path, res)]] = cp

    # digest(): analyzeControl looks into every action of the control (the actions
    # they call are inlined into them), then into the apply block.
    def action_exprs(decl: ir.ActionDecl, block: Block, depth: int = 0) -> Iterator[ir.Expr]:
        for e in walk_stmt_exprs(decl.body):
            yield e
            if isinstance(e, ir.ActionCall) and depth < 64:
                found = _action_cp(program, block, e.action, e.top_level)
                if found is not None:
                    yield from action_exprs(found[1], block, depth + 1)

    calls = [e for _, d, b in ordered for e in action_exprs(d, b)] + [e for _, e in flat.body]
    for e in calls:
        if isinstance(e, ir.ExternFunctionCall) and e.name == "digest":
            dt = e.type_args[0] if e.type_args else e.args[-1].expr.type
            if isinstance(dt, ir.StructT | ir.HeaderT):
                out.digests.setdefault(control_plane_name((), dt.name, dt.annotations), dt)


def collect_names(program: ir.Program) -> ObjectNames:
    """Find every P4Runtime-visible object of ``program`` and its control-plane name."""
    out = ObjectNames()
    # Top-level extern instances are children of the top-level block: visited first.
    for inst_name, inst in program.instances.items():
        if isinstance(inst.type, ir.ExternT) and inst.type.name in EXTERN_KINDS:
            cp = control_plane_name((), inst.original_name or inst_name, inst.annotations)
            out.externs[cp] = (inst.type.name, inst)
    if program.main is not None:
        for arg in program.main.args:
            if arg in program.controls:
                _collect_control(out, program, Block(program.controls[arg], (arg,)))
    for ty in program.types.values():
        if isinstance(ty, ir.HeaderT) and ir.annotation(ty.annotations, "controller_header"):
            out.controller_headers.setdefault(ty.name, ty)
    return out

"""FlatBuilder: the entry point of the flat code generator (see flat.py), and the
inlining of blocks, sub-blocks, actions and tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from softswitch import ir
from softswitch.interp.api import Architecture
from softswitch.interp.codegen import ProgramEnv, collect_vardecls, width_of
from softswitch.interp.compiler import Compiled, _const_value, _cp_name
from softswitch.interp.flat import FlatGen, _Blk
from softswitch.interp.flatloc import FlatUnsupported, Loc, Names
from softswitch.interp.flatparse import FlatPackets
from softswitch.interp.ops import base_env

__all__ = ["FlatBuilder", "FlatUnsupported"]


class FlatBuilder:
    """Builds one generated function out of top-level blocks of ``compiled``'s program,
    sharing its tables and extern instances (control-plane state is the same).

    The architecture declares its variables (:meth:`var`, :meth:`packet_in`,
    :meth:`packet_out`), asks for the lines of each block (:meth:`block_lines`), adds
    its own lines around them and calls :meth:`define`. Generated block code refers to
    the architecture's per-packet context as the local ``ctx``; the architecture's own
    locals must not start with an underscore."""

    def __init__(self, compiled: Compiled, arch: Architecture) -> None:
        self.compiled = compiled
        self.program = compiled.program
        self.arch = arch
        self.pe = ProgramEnv(base_env())
        self.names = Names(self.pe.bind)
        self.vars: dict[str, Loc] = {}
        self.types: dict[str, ir.Type] = {}
        from softswitch.interp.flattables import FlatTables
        self.tables = FlatTables(self)
        self.packets = FlatPackets(self)
        self._top_instances = {
            n: compiled.instances[_cp_name((), n, i.original_name, i.annotations)]
            for n, i in self.program.instances.items() if isinstance(i.type, ir.ExternT)}

    # ------------------------------------------------------------ the architecture's API

    def var(self, name: str, t: ir.Type, boxed: bool = False) -> None:
        """Declare variable ``name`` of type ``t``; ``boxed``: a struct of scalars kept
        as a values.Struct in local ``name`` (set by the architecture's lines, see
        :meth:`box_lines`)."""
        self.vars[name] = self.names.new_loc(t, name, boxed)
        self.types[name] = t

    def zero_lines(self, name: str, ind: str) -> list[str]:
        """Lines giving every location of a (non-boxed) variable its zero value."""
        return self.names.zero_lines(self.vars[name], self.types[name], ind)

    def box_lines(self, name: str, obj: str, ind: str) -> list[str]:
        """Lines binding boxed variable ``name`` to the struct in expression ``obj``."""
        loc = self.vars[name]
        from softswitch.interp.flatloc import BLoc
        assert isinstance(loc, BLoc)
        return [f"{ind}{loc.obj} = {obj}", f"{ind}{loc.d} = {loc.obj}.fields"]

    def packet_in(self, name: str) -> None:
        self.packets.declare_in(name)

    def packet_out(self, name: str) -> None:
        self.packets.declare_out(name)

    def packet_in_lines(self, name: str, data: str, ind: str) -> list[str]:
        return self.packets.in_lines(data, ind)

    def packet_in_remaining(self, name: str) -> str:
        return self.packets.remaining()

    def packet_out_lines(self, name: str, ind: str) -> list[str]:
        return self.packets.out_lines(ind)

    def packet_out_bytes(self, name: str) -> str:
        return self.packets.out_bytes()

    def materialise(self, name: str) -> str:
        """An expression building the value object of variable ``name`` from the locals."""
        return self.names.materialise(self.vars[name])

    def field(self, name: str, *path: str) -> str:
        """An expression (and assignment target) for a scalar field of a variable."""
        loc: Any = self.vars[name]
        for p in path:
            from softswitch.interp.flatloc import BLoc, HLoc, SLoc
            if isinstance(loc, BLoc):
                return f"{loc.d}[{p!r}]"
            loc = loc.fields[p] if isinstance(loc, HLoc) else loc.members[p] if isinstance(loc, SLoc) else None
        assert isinstance(loc, str)
        return loc

    def valid_bytes(self, name: str, size_of: Callable[[ir.HeaderT], int]) -> str:
        return self.names.valid_bytes(self.vars[name], size_of)

    def bind(self, obj: object, hint: str = "c") -> str:
        return self.pe.bind(obj, hint)

    def define(self, fn_name: str, params: str, lines: list[str]) -> Callable[..., Any]:
        src = f"def {fn_name}({params}):\n" + "\n".join(lines) + "\n"
        self.pe.define(src)
        fn: Callable[..., Any] = self.pe.env[fn_name]
        return fn

    @property
    def sources(self) -> list[str]:
        return self.pe.sources

    def block_lines(self, decl_name: str, args: list[str], ind: str, err: str = "") -> list[str]:
        """Lines running top-level block ``decl_name`` on the declared variables
        ``args`` (in parameter order). A parser stores its error name ("NoError" on
        accept) in local ``err``; a control's ``exit`` ends it normally."""
        decl: ir.ParserDecl | ir.ControlDecl | None = (self.program.parsers.get(decl_name)
                                                       or self.program.controls.get(decl_name))
        if decl is None:
            raise FlatUnsupported(f"no top-level block {decl_name}")
        scope: dict[str, Loc] = {}
        for p, a in zip(decl.params, args, strict=True):
            if isinstance(p.type, ir.ExternT):
                self.packets.bind_param(p.name, a)
                scope[p.name] = a
                continue
            scope[p.name] = self.vars[a]
        blk = self._blk(decl, (decl_name,), scope, ())
        g = FlatGen(self, blk)
        if isinstance(decl, ir.ParserDecl):
            body = self._init(g, blk, ind + "    ") + self.packets.parser_body(g, decl, ind + "    ")
            return [f"{ind}{err} = 'NoError'", f"{ind}try:", *body,
                    f"{ind}except _Reject as _rj:", f"{ind}    {err} = _rj.error",
                    f"{ind}except _TooShort:", f"{ind}    {err} = 'PacketTooShort'",
                    f"{ind}except _HdrTooShort:", f"{ind}    {err} = 'HeaderTooShort'"]
        body = self._init(g, blk, ind + "    ") + g.stmts(decl.apply.stmts, ind + "    ")
        return [f"{ind}try:", *body, f"{ind}except _Exit:", f"{ind}    pass"]

    # ------------------------------------------------------------ blocks

    def _blk(self, decl: ir.ParserDecl | ir.ControlDecl, path: tuple[str, ...], scope: dict[str, Loc],
             ctor_args: tuple[ir.Expr, ...]) -> _Blk:
        blk = _Blk(decl, path, scope)
        for loc in decl.locals:
            if isinstance(loc, ir.Instance):
                cp = _cp_name(path, loc.name, loc.original_name, loc.annotations)
                if isinstance(loc.type, ir.ExternT):
                    blk.instances[loc.name] = self.compiled.instances[cp]
                else:
                    blk.subs[loc.name] = loc
            elif isinstance(loc, ir.VarDecl):
                scope[loc.name] = self.names.new_loc(loc.type, loc.name)
        vars_: dict[str, ir.Type] = {}
        if isinstance(decl, ir.ControlDecl):
            collect_vardecls(decl.apply.stmts, vars_)
            for a in decl.actions:
                collect_vardecls(a.body.stmts, vars_)
        else:
            for st in decl.states:
                collect_vardecls(st.stmts, vars_)
        for n, t in vars_.items():
            scope[n] = self.names.new_loc(t, n)
        for p, carg in zip(decl.ctor_params, ctor_args, strict=False):
            scope[p.name] = repr(_const_value(carg))
        return blk

    def _init(self, g: FlatGen, blk: _Blk, ind: str) -> list[str]:
        out: list[str] = []
        for loc in blk.decl.locals:
            if isinstance(loc, ir.VarDecl):
                out += g.stmt(loc, ind)
        return out

    def sub_apply(self, g: FlatGen, e: ir.SubApply, ind: str) -> list[str]:
        inst = g.blk.subs.get(e.instance)
        if inst is None:
            raise FlatUnsupported(f"{e.pos}: unknown sub-block {e.instance}")
        t = inst.type
        if not isinstance(t, ir.ControlT):
            raise FlatUnsupported(f"{e.pos}: sub-parsers")
        decl = self.program.controls[t.name]
        cp = _cp_name(g.blk.path, inst.name, inst.original_name, inst.annotations)
        scope: dict[str, Loc] = {}
        blk = self._blk(decl, tuple(cp.split(".")), scope, inst.ctor_args)
        body = (*(x for x in decl.locals if isinstance(x, ir.VarDecl)), *decl.apply.stmts)
        return g.inline_routine(e.args, decl.params, body, scope, ind, read_only_in=True,
                                body_gen=FlatGen(self, blk))

    def gen_for(self, g: FlatGen, scope: dict[str, Loc]) -> FlatGen:
        """A generator for a top-level action's body (its own scope)."""
        ng = FlatGen(self, _Blk(g.blk.decl, (), scope))
        ng.applied = g.applied
        return ng

    def instance(self, blk: _Blk, e: ir.InstanceRef) -> object:
        if not e.top_level and e.name in blk.instances:
            return blk.instances[e.name]
        if e.name in self._top_instances:
            return self._top_instances[e.name]
        raise FlatUnsupported(f"{e.pos}: unknown instance {e.name}")

    def bind_method(self, blk: _Blk, e: ir.ExternMethodCall) -> Any:
        if not isinstance(e.target, ir.InstanceRef):
            raise FlatUnsupported(f"{e.pos}: method call on a non-instance")
        return self.arch.bind_method(self.instance(blk, e.target), e)

    def action_decl(self, blk: _Blk, name: str, top_level: bool,
                    pos: ir.Pos) -> tuple[ir.ActionDecl, str, dict[str, Loc]]:
        """The action, its control-plane name and the scope its body runs in."""
        if not top_level and isinstance(blk.decl, ir.ControlDecl):
            for a in blk.decl.actions:
                if a.name == name:
                    return a, _cp_name(blk.path, a.name, a.original_name, a.annotations), blk.scope
        a2 = self.program.actions.get(name)
        if a2 is None:
            raise FlatUnsupported(f"{pos}: unknown action {name}")
        return a2, _cp_name((), a2.name, a2.original_name, a2.annotations), {}


_ = width_of

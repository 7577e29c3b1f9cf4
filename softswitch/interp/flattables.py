"""Tables inlined by the flat code generator: the key tuple built from locals, the same
``Table.lookup`` as the generic path, the hit counted and the entry's action inlined
(compiler.py ``_compile_table`` / ``_runner`` semantics)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from softswitch import ir
from softswitch.interp.codegen import width_of
from softswitch.interp.compiler import _cp_name
from softswitch.interp.flatloc import FlatUnsupported, Loc
from softswitch.interp.tables import CACHE_MISS

if TYPE_CHECKING:
    from softswitch.interp.flat import FlatGen
    from softswitch.interp.flatblocks import FlatBuilder

__all__ = ["FlatTables"]


class FlatTables:
    def __init__(self, fb: FlatBuilder) -> None:
        self.fb = fb

    def apply(self, g: FlatGen, e: ir.TableApply, ind: str) -> list[str]:
        decl = g.blk.decl
        t = next((x for x in decl.tables if x.name == e.table), None) if isinstance(decl, ir.ControlDecl) else None
        if t is None:
            raise FlatUnsupported(f"{e.pos}: unknown table {e.table}")
        if t.direct_meter is not None:
            raise FlatUnsupported(f"{e.pos}: direct meters")
        cp = _cp_name(g.blk.path, t.name, t.original_name, t.annotations)
        table = self.fb.compiled.tables[cp]
        pe = self.fb.pe
        keys: list[str] = []
        for k in t.keys:
            kt = k.expr.type
            u = kt.underlying if isinstance(kt, ir.SerEnumT) else kt
            src = g.ex(k.expr)
            if isinstance(u, ir.BoolT):
                src = f"(1 if {src} else 0)"
            elif isinstance(u, ir.IntT):
                src = f"({src} & {(1 << width_of(u)) - 1})"
            keys.append(src)
        key = "(" + ", ".join(keys) + ",)" if keys else "()"
        en, hit, run = g.tmp(), g.tmp(), g.tmp()
        if table.lookup_cache is not None:
            # a remembered result (lpm / ternary tables) without a call
            ktup, miss = g.tmp(), pe.bind(CACHE_MISS, "cm")
            out = [f"{ind}{ktup} = {key}",
                   f"{ind}{en} = {pe.bind(table.lookup_cache, 'lc')}.get({ktup}, {miss})",
                   f"{ind}if {en} is {miss}:",
                   f"{ind}    {en} = {pe.bind(table.lookup, 'lk')}({ktup})"]
        else:
            out = [f"{ind}{en} = {pe.bind(table.lookup, 'lk')}({key})"]
        out += [f"{ind}if {en} is None:",
                f"{ind}    {en} = {pe.bind(table, 'T')}.default_entry",
                f"{ind}    {hit} = False",
                f"{ind}else:"]
        if t.direct_counter:
            out += [f"{ind}    {en}.packets += 1", f"{ind}    {en}.bytes += ctx.packet_length"]
        if t.support_timeout:
            out.append(f"{ind}    {en}.last_hit_ns = ctx.now_ns")
        out.append(f"{ind}    {hit} = True")
        refs = list(t.actions)
        da = t.default_action
        if not any(r.action == da.action and r.top_level == da.top_level for r in refs):
            refs.append(ir.ActionRef(da.action, da.top_level))
        act = g.tmp()
        out.append(f"{ind}{act} = {en}.action")
        kw = "if"
        for ref in refs:
            adecl, acp, scope = self.fb.action_decl(g.blk, ref.action, ref.top_level, ref.pos)
            out.append(f"{ind}{kw} {act} == {acp!r}:")
            kw = "elif"
            out += self._action(g, adecl, scope, en, ind + "    ")
            out.append(f"{ind}    {run} = {ref.action!r}")
        out.append(f"{ind}else:")
        out.append(f"{ind}    raise KeyError({act})")
        g.applied[id(e)] = (hit, run)
        return out

    def _action(self, g: FlatGen, adecl: ir.ActionDecl, scope: dict[str, Loc], en: str,
                ind: str) -> list[str]:
        """The action's parameters bound from the entry's data, then its body."""
        names = self.fb.names
        out: list[str] = []
        binds = []
        i = 0
        data = g.tmp()
        if any(p.direction == "" for p in adecl.params):
            out.append(f"{ind}{data} = {en}.args")
        for p in adecl.params:
            loc = names.new_loc(p.type, p.name)
            if p.direction == "":
                if not isinstance(loc, str):
                    raise FlatUnsupported(f"{adecl.pos}: compound action data")
                u = p.type.underlying if isinstance(p.type, ir.SerEnumT) else p.type
                v = f"{data}[{i}]"
                if isinstance(u, ir.BoolT):
                    v = f"({v} != 0)"
                elif isinstance(u, ir.IntT):
                    h = 1 << (u.width - 1)
                    v = f"((({v} + {h}) & {(1 << u.width) - 1}) - {h})"
                out.append(f"{ind}{loc} = {v}")
                i += 1
            else:
                out += names.zero_lines(loc, p.type, ind)
            binds.append((p.name, loc))
        saved = {n: scope.get(n) for n, _ in binds}
        for n, loc in binds:
            scope[n] = loc
        try:
            body = g.inline_routine((), (), adecl.body.stmts, scope, ind)  # type: ignore[arg-type]
        finally:
            for n, old in saved.items():
                if old is None:
                    scope.pop(n, None)
                else:
                    scope[n] = old
        return out + body

"""Locations of the flat code generator (flat.py): where a P4 variable lives in one
generated Python function.

* a scalar: one Python local (a str, the local's name; or a subscript ``d['x']`` of a
  boxed struct's field dict, which is an assignment target too);
* a header (:class:`HLoc`): a local for its validity, one per field, one for the
  varbit length;
* a struct (:class:`SLoc`): its members' locations, flattened;
* a boxed struct (:class:`BLoc`): a real ``values.Struct`` of scalar fields held in a
  local, its field dict in another (for a value the architecture's externs share,
  e.g. v1model's standard_metadata).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from softswitch import ir
from softswitch.interp.fastvals import copier, maker
from softswitch.interp.values import zero_value

__all__ = ["Loc", "HLoc", "SLoc", "BLoc", "FlatUnsupported", "Names", "zero_lit"]


class FlatUnsupported(Exception):
    """The flat generator cannot compile this construct; the program keeps the generic path."""


@dataclass
class HLoc:
    type: ir.HeaderT
    valid: str
    fields: dict[str, str]
    vlen: str | None


@dataclass
class SLoc:
    type: ir.StructT
    members: dict[str, Loc]


@dataclass
class BLoc:
    type: ir.StructT
    obj: str
    d: str


Loc = str | HLoc | SLoc | BLoc


def zero_lit(t: ir.Type) -> str:
    if isinstance(t, (ir.BitT, ir.IntT, ir.VarbitT, ir.SerEnumT)):
        return "0"
    if isinstance(t, ir.BoolT):
        return "False"
    if isinstance(t, (ir.EnumT, ir.ErrorT, ir.StringT)):
        return repr(zero_value(t))
    raise FlatUnsupported(f"no scalar zero for {t}")


_COMPOUND = (ir.HeaderT, ir.StructT, ir.HeaderUnionT, ir.StackT, ir.TupleT)


class Names:
    """Unique local names and the objects generated code refers to."""

    def __init__(self, bind: Any) -> None:
        self._n = 0
        self.bind = bind  # ProgramEnv.bind

    def local(self, hint: str) -> str:
        self._n += 1
        return f"_v{self._n}_{re.sub(r'[^0-9A-Za-z]', '_', hint)[:24]}"

    def tmp(self) -> str:
        self._n += 1
        return f"_t{self._n}"

    def new_loc(self, t: ir.Type, hint: str, boxed: bool = False) -> Loc:
        if isinstance(t, ir.HeaderT):
            vb = any(isinstance(ft, ir.VarbitT) for _, ft in t.fields)
            return HLoc(t, self.local(hint + "_valid"), {n: self.local(f"{hint}_{n}") for n, _ in t.fields},
                        self.local(hint + "_vlen") if vb else None)
        if isinstance(t, ir.StructT):
            if boxed:
                if any(isinstance(ft, _COMPOUND) for _, ft in t.fields):
                    raise FlatUnsupported(f"boxed struct {t.name} with compound members")
                return BLoc(t, self.local(hint), self.local(hint + "_d"))
            return SLoc(t, {n: self.new_loc(ft, f"{hint}_{n}") for n, ft in t.fields})
        if isinstance(t, _COMPOUND):
            raise FlatUnsupported(f"a variable of type {type(t).__name__}")
        return self.local(hint)

    # ---------------------------------------------------------------- code

    def zero_lines(self, loc: Loc, t: ir.Type, ind: str) -> list[str]:
        if isinstance(loc, str):
            return [f"{ind}{loc} = {zero_lit(t)}"]
        if isinstance(loc, HLoc):
            names = [loc.valid, *loc.fields.values()]
            out = [f"{ind}{loc.valid} = False"]
            out += [f"{ind}{loc.fields[n]} = {zero_lit(ft)}" for n, ft in loc.type.fields]
            if loc.vlen:
                out.append(f"{ind}{loc.vlen} = 0")
            del names
            return out
        if isinstance(loc, BLoc):
            return [f"{ind}{loc.obj} = {self.bind(maker(loc.type), 'mk')}()", f"{ind}{loc.d} = {loc.obj}.fields"]
        out = []
        for n, ft in loc.type.fields:
            out += self.zero_lines(loc.members[n], ft, ind)
        return out

    def materialise(self, loc: Loc) -> str:
        """An expression building a fresh value object from the locals."""
        if isinstance(loc, str):
            return loc
        if isinstance(loc, HLoc):
            items = ", ".join(f"{n!r}: {v}" for n, v in loc.fields.items())
            vl = f", {loc.vlen}" if loc.vlen else ""
            return f"_Header({self.bind(loc.type, 'T')}, {loc.valid}, {{{items}}}{vl})"
        if isinstance(loc, BLoc):
            return f"{self.bind(copier(loc.type), 'cp')}({loc.obj})"
        items = ", ".join(f"{n!r}: {self.materialise(m)}" for n, m in loc.members.items())
        return f"_Struct({self.bind(loc.type, 'T')}, {{{items}}})"

    def unpack_lines(self, loc: Loc, src: str, ind: str) -> list[str]:
        """Statements making ``loc`` hold the value object in variable ``src``."""
        if isinstance(loc, str):
            return [f"{ind}{loc} = {src}"]
        if isinstance(loc, HLoc):
            out = [f"{ind}{loc.valid} = {src}.valid", f"{ind}_uf = {src}.fields"]
            out += [f"{ind}{v} = _uf[{n!r}]" for n, v in loc.fields.items()]
            if loc.vlen:
                out.append(f"{ind}{loc.vlen} = {src}.vlen")
            return out
        if isinstance(loc, BLoc):
            return [f"{ind}if {src} is not {loc.obj}: _assign_into({loc.obj}, {src})"]
        out = []
        for n, m in loc.members.items():
            t = self.tmp()
            out.append(f"{ind}{t} = {src}.fields[{n!r}]")
            out += self.unpack_lines(m, t, ind)
        return out

    def copy_lines(self, dst: Loc, src: Loc, ind: str) -> list[str]:
        """``dst = src`` between two locations of the same type (all reads first)."""
        if isinstance(dst, BLoc) or isinstance(src, BLoc):
            t = self.tmp()
            return [f"{ind}{t} = {self.materialise(src)}", *self.unpack_lines(dst, t, ind)]
        d: list[str] = []
        s: list[str] = []
        _leaves(dst, src, d, s)
        if not d or d == s:
            return []
        return [f"{ind}{', '.join(d)}, = {', '.join(s)},"]

    def valid_bytes(self, loc: Loc, size_of: Any) -> str:
        """An expression: the sum of ``size_of(header type)`` over the valid headers of
        ``loc`` (an architecture's packet-length bookkeeping)."""
        parts: list[str] = []
        _valid_parts(loc, parts, size_of)
        return " + ".join(parts) if parts else "0"


def _leaves(dst: Loc, src: Loc, d: list[str], s: list[str]) -> None:
    if isinstance(dst, str) and isinstance(src, str):
        d.append(dst)
        s.append(src)
    elif isinstance(dst, HLoc) and isinstance(src, HLoc):
        d.append(dst.valid)
        s.append(src.valid)
        for n, v in dst.fields.items():
            d.append(v)
            s.append(src.fields[n])
        if dst.vlen and src.vlen:
            d.append(dst.vlen)
            s.append(src.vlen)
    elif isinstance(dst, SLoc) and isinstance(src, SLoc):
        for n, m in dst.members.items():
            _leaves(m, src.members[n], d, s)
    else:
        raise FlatUnsupported("copy between locations of different shapes")


def _valid_parts(loc: Loc, parts: list[str], size_of: Any) -> None:
    if isinstance(loc, HLoc):
        parts.append(f"({int(size_of(loc.type))} if {loc.valid} else 0)")
    elif isinstance(loc, SLoc):
        for m in loc.members.values():
            _valid_parts(m, parts, size_of)

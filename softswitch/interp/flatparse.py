"""Parsers, ``packet_in`` and ``packet_out`` in the flat code generator (flat.py).

The frame is read straight from the bytes (locals ``_pd`` data, ``_po`` offset in
bits, ``_pn`` length in bits) into header locals; states are inlined along the
transitions (an acyclic state graph only: the code is a tree, a state reached on
several paths is generated once per path). The deparser appends each valid header's
fields to one int (``_oa``, ``_ob`` bits). Semantics as packet.py and compiler.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from softswitch import ir
from softswitch.interp.api import PacketTooShort
from softswitch.interp.codegen import width_of
from softswitch.interp.flatloc import BLoc, FlatUnsupported, HLoc, Loc, SLoc

if TYPE_CHECKING:
    from softswitch.interp.flat import FlatGen
    from softswitch.interp.flatblocks import FlatBuilder

__all__ = ["FlatPackets", "MAX_INLINED_STATES"]

#: parser states inlined per parser (states on several paths count once per path)
MAX_INLINED_STATES = 200


def _lookahead(data: bytes, off: int, nbits: int, n: int) -> int:
    end = off + n
    if end > nbits:
        raise PacketTooShort(f"need {n} bits at bit offset {off}, packet has {nbits} bits")
    if n == 0:
        return 0
    return (int.from_bytes(data[off >> 3:(end + 7) >> 3], "big") >> (-end & 7)) & ((1 << n) - 1)


def _fwidth(t: ir.Type) -> int:
    return width_of(t)


class FlatPackets:
    def __init__(self, fb: FlatBuilder) -> None:
        self.fb = fb
        self.in_name = ""
        self.out_name = ""
        self._la = fb.pe.bind(_lookahead, "la")
        self._states = 0

    def declare_in(self, name: str) -> None:
        self.in_name = name

    def declare_out(self, name: str) -> None:
        self.out_name = name

    def bind_param(self, param: str, var: str) -> None:
        if var not in (self.in_name, self.out_name):
            raise FlatUnsupported(f"extern parameter {param} bound to {var}")

    def in_lines(self, data: str, ind: str) -> list[str]:
        return [f"{ind}_pd = {data}", f"{ind}_po = 0", f"{ind}_pn = len(_pd) << 3"]

    def remaining(self) -> str:
        return "_pd[(_po + 7) >> 3:]"

    def out_lines(self, ind: str) -> list[str]:
        return [f"{ind}_oa = 0", f"{ind}_ob = 0"]

    def out_bytes(self) -> str:
        return "(_oa << (-_ob & 7)).to_bytes((_ob + 7) >> 3, 'big')"

    # ------------------------------------------------------------ calls

    def expr(self, g: FlatGen, e: ir.ExternMethodCall) -> str:
        if e.method == "length":
            return "len(_pd)"
        if e.method == "lookahead":
            t = e.type
            u = t.underlying if isinstance(t, ir.SerEnumT) else t
            if isinstance(u, ir.BoolT):
                return f"bool({self._la}(_pd, _po, _pn, 1))"
            if isinstance(u, ir.IntT):
                w = u.width
                return f"(({self._la}(_pd, _po, _pn, {w}) ^ {1 << (w - 1)}) - {1 << (w - 1)})"
            if isinstance(u, ir.BitT):
                return f"{self._la}(_pd, _po, _pn, {u.width})"
            raise FlatUnsupported(f"{e.pos}: lookahead<{t}>")
        raise FlatUnsupported(f"{e.pos}: {e.extern}.{e.method} in an expression")

    def stmt(self, g: FlatGen, e: ir.ExternMethodCall, ind: str) -> list[str]:
        if e.method == "extract" and len(e.args) in (1, 2):
            a = e.args[0].expr
            bits = g.ex(e.args[1].expr) if len(e.args) > 1 else None
            return self.extract(g.hloc(a), bits, ind)
        if e.method == "advance":
            return [f"{ind}_e = _po + {g.ex(e.args[0].expr)}", f"{ind}if _e > _pn: raise _TooShort()",
                    f"{ind}_po = _e"]
        if e.method == "emit":
            return self.emit(g.loc(e.args[0].expr), ind)
        if e.method in ("length", "lookahead"):
            return [f"{ind}{self.expr(g, e)}"]
        raise FlatUnsupported(f"{e.pos}: {e.extern}.{e.method}")

    def extract(self, h: HLoc, bits: str | None, ind: str) -> list[str]:
        t = h.type
        fixed = sum(_fwidth(ft) for _, ft in t.fields if not isinstance(ft, ir.VarbitT))
        vb = next(((n, ft.max_width) for n, ft in t.fields if isinstance(ft, ir.VarbitT)), None)
        out: list[str] = []
        if vb is None:
            out += [f"{ind}_e = _po + {fixed}", f"{ind}if _e > _pn: raise _TooShort()",
                    f"{ind}_x = (int.from_bytes(_pd[_po >> 3:(_e + 7) >> 3], 'big') >> (-_e & 7))"
                    f" & {(1 << fixed) - 1}"]
        else:
            out += [f"{ind}_vb = {bits if bits is not None else 0}",
                    f"{ind}if _vb > {vb[1]} or _vb < 0: raise _HdrTooShort()",
                    f"{ind}_e = _po + {fixed} + _vb", f"{ind}if _e > _pn: raise _TooShort()",
                    f"{ind}_x = (int.from_bytes(_pd[_po >> 3:(_e + 7) >> 3], 'big') >> (-_e & 7))"
                    f" & ((1 << ({fixed} + _vb)) - 1)"]
        # shifts from the end: fields after a varbit field shift by constants, those
        # before it by a constant plus the varbit length
        after = 0
        var_after = False
        parts: list[tuple[str, str]] = []
        for n, ft in reversed(t.fields):
            loc = h.fields[n]
            sh = f"({after} + _vb)" if var_after else str(after)
            if isinstance(ft, ir.VarbitT):
                parts.append((loc, f"(_x >> {sh}) & ((1 << _vb) - 1)"))
                var_after = True
                continue
            u = ft.underlying if isinstance(ft, ir.SerEnumT) else ft
            w = _fwidth(ft)
            v = f"(_x >> {sh}) & {(1 << w) - 1}"
            if isinstance(u, ir.IntT):
                v = f"((({v}) ^ {1 << (w - 1)}) - {1 << (w - 1)})"
            elif isinstance(u, ir.BoolT) and vb is None:
                v = f"bool({v})"
            parts.append((loc, v))
            after += w
        out += [f"{ind}{loc} = {v}" for loc, v in reversed(parts)]
        if h.vlen:
            out.append(f"{ind}{h.vlen} = _vb")
        out += [f"{ind}{h.valid} = True", f"{ind}_po = _e"]
        return out

    def emit(self, loc: Loc, ind: str) -> list[str]:
        if isinstance(loc, SLoc):
            out: list[str] = []
            for m in loc.members.values():
                out += self.emit(m, ind)
            return out
        if not isinstance(loc, HLoc) or isinstance(loc, BLoc):
            raise FlatUnsupported("emit of a non-header")
        t = loc.type
        if loc.vlen is None:
            total = sum(_fwidth(ft) for _, ft in t.fields)
            shift = total
            terms = []
            for n, ft in t.fields:
                w = _fwidth(ft)
                shift -= w
                x = f"({loc.fields[n]} & {(1 << w) - 1})"
                terms.append(f"({x} << {shift})" if shift else x)
            packed = " | ".join(terms) or "0"
            return [f"{ind}if {loc.valid}:", f"{ind}    _oa = (_oa << {total}) | {packed}",
                    f"{ind}    _ob += {total}"]
        out = [f"{ind}if {loc.valid}:"]
        for n, ft in t.fields:
            ws = loc.vlen if isinstance(ft, ir.VarbitT) else str(_fwidth(ft))
            out += [f"{ind}    _oa = (_oa << {ws}) | ({loc.fields[n]} & ((1 << {ws}) - 1))",
                    f"{ind}    _ob += {ws}"]
        return out

    # ------------------------------------------------------------ parser states

    def parser_body(self, g: FlatGen, decl: ir.ParserDecl, ind: str) -> list[str]:
        states = {st.name: st for st in decl.states}
        if "start" not in states:
            raise FlatUnsupported(f"{decl.pos}: parser without a start state")
        self._states = 0
        return self._state(g, states, "start", (), ind)

    def _goto(self, g: FlatGen, states: dict[str, ir.ParserState], name: str, path: tuple[str, ...],
              ind: str) -> list[str]:
        if name == "accept":
            return [f"{ind}pass"]
        if name == "reject":
            return [f"{ind}raise _Reject('NoError')"]
        if name in path:
            raise FlatUnsupported(f"parser loop through state {name}")
        if name not in states:
            raise FlatUnsupported(f"transition to unknown state {name}")
        return self._state(g, states, name, path, ind)

    def _state(self, g: FlatGen, states: dict[str, ir.ParserState], name: str, path: tuple[str, ...],
               ind: str) -> list[str]:
        self._states += 1
        if self._states > MAX_INLINED_STATES:
            raise FlatUnsupported("parser too large to inline")
        st = states[name]
        path = (*path, name)
        out = g.stmts(st.stmts, ind) if st.stmts else []
        tr = st.transition
        if isinstance(tr, ir.Goto):
            return out + self._goto(g, states, tr.state, path, ind)
        keys: list[tuple[str, ir.Type]] = []
        for k in tr.keys:
            kv = g.tmp()
            out.append(f"{ind}{kv} = {g.ex(k)}")
            keys.append((kv, k.type))
        kw = "if"
        for case in tr.cases:
            conds: list[str] = []
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
                    m = ks.mask & ((1 << width_of(u)) - 1)
                    conds.append(f"({kv} & {m}) == {ks.value & m}")
                elif isinstance(ks, ir.KsRange):
                    conds.append(f"{ks.lo} <= {kv} <= {ks.hi}")
            body = self._goto(g, states, case.state, path, ind + "    ")
            if not conds:
                out += [f"{ind}{'else' if kw == 'elif' else 'if True'}:", *body]
                return out
            out += [f"{ind}{kw} {' and '.join(conds)}:", *body]
            kw = "elif"
        if kw == "if":
            return [*out, f"{ind}raise _Reject('NoMatch')"]
        return [*out, f"{ind}else:", f"{ind}    raise _Reject('NoMatch')"]

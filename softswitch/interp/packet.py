"""core.p4's ``packet_in`` and ``packet_out`` over Python bytes.

Headers are read and written most-significant bit first, as P4 lays them out on the
wire. Offsets are kept in bits, so headers that are not byte-aligned work; the
deparser output is padded with zero bits to a whole byte (BMv2 rejects such programs;
we accept them).

Varbit fields: ``extract(hdr, bits)`` reads the varbit field with ``bits`` bits. Its
value is stored as an int (values.py) and its length in the header's ``vlen``, so that
``emit`` writes back what was read, also from copies of the header. A varbit field that
was never extracted is emitted with length 0.
"""

from __future__ import annotations

from typing import Any

from softswitch import ir
from softswitch.interp.api import PacketTooShort
from softswitch.interp.values import Header, HeaderUnion, Stack, Struct

__all__ = ["PacketIn", "PacketOut", "HeaderLayout", "header_layout", "HeaderTooShort"]


class HeaderTooShort(Exception):
    """extract(hdr, bits) with more bits than the varbit field can hold."""


class HeaderLayout:
    """Precomputed wire layout of one header type: ``fields`` as (name, shift, mask)
    relative to the header read as one big integer of ``width`` bits."""

    __slots__ = ("fields", "pack", "type", "unpack", "varbit", "width")

    def __init__(self, t: ir.HeaderT) -> None:
        self.type = t
        fixed = 0
        self.varbit: tuple[str, int] | None = None
        widths: list[tuple[str, int]] = []
        for name, ft in t.fields:
            if isinstance(ft, ir.VarbitT):
                self.varbit = (name, ft.max_width)
                widths.append((name, -1))
                continue
            w = _field_width(ft, t.name, name)
            fixed += w
            widths.append((name, w))
        self.width = fixed
        fields: list[tuple[str, int, int]] = []
        shift = fixed
        for name, w in widths:
            if w < 0:
                fields.append((name, -1, 0))
                continue
            shift -= w
            fields.append((name, shift, (1 << w) - 1))
        self.fields = tuple(fields)
        codec: tuple[Any, Any] = _gen_codec(t, self.fields) if self.varbit is None else (None, None)
        self.unpack: Any = codec[0]
        self.pack: Any = codec[1]


def _gen_codec(t: ir.HeaderT, fields: tuple[tuple[str, int, int], ...]) -> tuple[Any, Any]:
    """Straight-line ``unpack(fields_dict, int)`` and ``pack(fields_dict) -> int`` for a
    fixed-size header (generated once per header type: no per-field loop per packet)."""
    signed = {n: (ft.underlying if isinstance(ft, ir.SerEnumT) else ft) for n, ft in t.fields}
    un = ["def unpack(f, v):"]
    pk = []
    for name, shift, mask in fields:
        ft = signed[name]
        if isinstance(ft, ir.IntT):
            w = ft.width
            un.append(f"    x = (v >> {shift}) & {mask}")
            un.append(f"    f[{name!r}] = x - {1 << w} if x >> {w - 1} else x")
        elif isinstance(ft, ir.BoolT):
            un.append(f"    f[{name!r}] = bool((v >> {shift}) & 1)")
        else:
            un.append(f"    f[{name!r}] = (v >> {shift}) & {mask}")
        pk.append(f"((f[{name!r}] & {mask}) << {shift})")
    if len(un) == 1:
        un.append("    pass")
    src = "\n".join(un) + "\ndef pack(f):\n    return " + (" | ".join(pk) or "0") + "\n"
    env: dict[str, Any] = {"__builtins__": {"bool": bool}}
    exec(compile(src, f"<header {t.name}>", "exec"), env)
    return env["unpack"], env["pack"]


def _field_width(t: ir.Type, hname: str, fname: str) -> int:
    if isinstance(t, (ir.BitT, ir.IntT)):
        return t.width
    if isinstance(t, ir.BoolT):
        return 1
    if isinstance(t, ir.SerEnumT):
        return _field_width(t.underlying, hname, fname)
    raise TypeError(f"header {hname}: field {fname} has non-serializable type {t}")


_layouts: dict[int, HeaderLayout] = {}


def header_layout(t: ir.HeaderT) -> HeaderLayout:
    """The cached layout of header type ``t`` (keyed by identity, verified)."""
    lay = _layouts.get(id(t))
    if lay is None or lay.type is not t:
        lay = HeaderLayout(t)
        _layouts[id(t)] = lay
    return lay


def _signed_fields(t: ir.HeaderT) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, ft in t.fields:
        u = ft.underlying if isinstance(ft, ir.SerEnumT) else ft
        if isinstance(u, ir.IntT):
            out[name] = u.width
    return out


class PacketIn:
    """The packet being parsed. ``offset_bits`` is the read position."""

    __slots__ = ("_nbits", "data", "offset_bits")

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.offset_bits = 0
        self._nbits = len(self.data) * 8

    def length(self) -> int:
        """Packet length in bytes (core.p4 ``length()``)."""
        return len(self.data)

    def remaining(self) -> bytes:
        """The unparsed payload (from the first whole byte at or after the offset)."""
        return self.data[(self.offset_bits + 7) >> 3:]

    def _read(self, nbits: int) -> int:
        off = self.offset_bits
        end = off + nbits
        if end > self._nbits:
            raise PacketTooShort(f"need {nbits} bits at bit offset {off}, packet has {self._nbits} bits")
        if nbits == 0:
            return 0
        sb = off >> 3
        eb = (end + 7) >> 3
        v = int.from_bytes(self.data[sb:eb], "big")
        pad = (eb << 3) - end
        if pad:
            v >>= pad
        if off & 7:
            v &= (1 << nbits) - 1
        return v

    def extract(self, hdr: Header, bits: int | None = None) -> None:
        """Fill ``hdr`` from the packet and make it valid. ``bits`` is the length of the
        varbit field for headers that have one. On PacketTooShort the header is left
        unchanged (and the offset not advanced)."""
        self.extract_layout(hdr, header_layout(hdr.type), bits)

    def extract_layout(self, hdr: Header, lay: HeaderLayout, bits: int | None = None) -> None:
        if lay.varbit is None:
            lay.unpack(hdr.fields, self._read(lay.width))
            hdr.valid = True
            self.offset_bits += lay.width
            return
        vname, vmax = lay.varbit
        vbits = 0 if bits is None else bits
        if vbits > vmax or vbits < 0:
            raise HeaderTooShort(f"header {lay.type.name}: varbit field {vname} holds at most "
                                 f"{vmax} bits, extract asked for {vbits}")
        total = lay.width + vbits
        v = self._read(total)
        f = hdr.fields
        shift = total
        for (name, ft) in lay.type.fields:
            if isinstance(ft, ir.VarbitT):
                w = vbits
            else:
                w = _field_width(ft, lay.type.name, name)
            shift -= w
            f[name] = (v >> shift) & ((1 << w) - 1)
        for name, w in _signed_cache(lay):
            x = f[name]
            if x >> (w - 1):
                f[name] = x - (1 << w)
        hdr.vlen = vbits
        hdr.valid = True
        self.offset_bits += total

    def lookahead_bits(self, nbits: int) -> int:
        """The next ``nbits`` bits as an unsigned int, without advancing."""
        return self._read(nbits)

    def lookahead(self, t: ir.Type) -> Any:
        """``lookahead<T>()``: bit/int/bool values or a (valid) header of fixed size."""
        if isinstance(t, ir.HeaderT):
            lay = header_layout(t)
            h = Header(t, False, {n: 0 for n, _ in t.fields})
            save = self.offset_bits
            self.extract_layout(h, lay)
            self.offset_bits = save
            return h
        if isinstance(t, ir.BoolT):
            return bool(self._read(1))
        if isinstance(t, ir.IntT):
            v = self._read(t.width)
            return v - (1 << t.width) if v >> (t.width - 1) else v
        if isinstance(t, (ir.BitT, ir.SerEnumT)):
            return self._read(_field_width(t, "lookahead", "T"))
        raise TypeError(f"lookahead<{t}> is not supported")

    def advance(self, bits: int) -> None:
        """Skip ``bits`` bits (PacketTooShort past the end, as BMv2)."""
        if self.offset_bits + bits > self._nbits:
            raise PacketTooShort(f"advance({bits}) at bit offset {self.offset_bits} passes the end "
                                 f"of a {self._nbits}-bit packet")
        self.offset_bits += bits


_signed_by_layout: dict[int, tuple[HeaderLayout, tuple[tuple[str, int], ...]]] = {}


def _signed_cache(lay: HeaderLayout) -> tuple[tuple[str, int], ...]:
    got = _signed_by_layout.get(id(lay))
    if got is None or got[0] is not lay:
        got = (lay, tuple(_signed_fields(lay.type).items()))
        _signed_by_layout[id(lay)] = got
    return got[1]


class PacketOut:
    """The packet being deparsed: ``emit`` appends valid headers; ``data`` is the result."""

    __slots__ = ("_acc", "_bits")

    def __init__(self) -> None:
        self._acc = 0
        self._bits = 0

    def emit(self, v: Any) -> None:
        """Emit a header (if valid), or recursively the members of a struct (in field
        order), a header stack (elements in order) or a header union (its valid member)."""
        if type(v) is Header:
            if v.valid:
                self.emit_header(v, header_layout(v.type))
        elif type(v) is Struct:
            for x in v.fields.values():
                self.emit(x)
        elif type(v) is Stack:
            for x in v.elems:
                self.emit(x)
        elif type(v) is HeaderUnion:
            for x in v.fields.values():
                self.emit(x)
        else:
            raise TypeError(f"emit of a {type(v).__name__} value; only headers, structs, stacks and unions")

    def emit_header(self, h: Header, lay: HeaderLayout) -> None:
        """Append a valid header's fields (caller checked validity)."""
        f = h.fields
        if lay.varbit is None:
            self._acc = (self._acc << lay.width) | lay.pack(f)
            self._bits += lay.width
            return
        acc = self._acc
        bits = self._bits
        for name, ft in lay.type.fields:
            if isinstance(ft, ir.VarbitT):
                w = h.vlen
            else:
                w = _field_width(ft, lay.type.name, name)
            acc = (acc << w) | (f[name] & ((1 << w) - 1))
            bits += w
        self._acc = acc
        self._bits = bits

    @property
    def data(self) -> bytes:
        """The emitted bytes (zero bits pad the last byte when the total is not whole bytes)."""
        bits = self._bits
        pad = (-bits) & 7
        return (self._acc << pad).to_bytes((bits + pad) >> 3, "big")

"""Turning interpreter values into bit fields, and header sizes.

Used by hash / checksum (which serialise a field list the way BMv2 does), by digests
(which need the field values of a struct) and by the packet-length bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from softswitch import ir
from softswitch.interp.values import Header, HeaderUnion, Stack, Struct

__all__ = ["scalar_width", "to_unsigned", "flatten", "header_bytes", "valid_header_bytes",
           "make_packer", "make_int_packer", "int_pack_widths", "make_valid_bytes"]


def scalar_width(t: ir.Type) -> int | None:
    """Bit width of a scalar type, None for non-scalars."""
    if isinstance(t, (ir.BitT, ir.IntT)):
        return t.width
    if isinstance(t, ir.BoolT):
        return 1
    if isinstance(t, ir.SerEnumT):
        return scalar_width(t.underlying)
    return None


def to_unsigned(value: Any, width: int) -> int:
    """Two's complement view of an int / bool value in ``width`` bits."""
    return int(value) & ((1 << width) - 1)


def flatten(value: Any, t: ir.Type, out: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """The ``(unsigned value, width)`` fields of ``value`` (of type ``t``) in order.

    Like BMv2's field-list serialisation, an invalid header contributes nothing.
    ``varbit`` fields contribute their current value at their declared maximum width
    (BMv2 uses the actual length; we do not track it; documented)."""
    if out is None:
        out = []
    w = scalar_width(t)
    if w is not None:
        out.append((to_unsigned(value, w), w))
        return out
    if isinstance(t, ir.VarbitT):
        out.append((to_unsigned(value, t.max_width), t.max_width))
        return out
    if isinstance(t, ir.HeaderT):
        assert isinstance(value, Header), value
        if value.valid:
            for name, ft in t.fields:
                flatten(value.fields[name], ft, out)
        return out
    if isinstance(t, ir.StructT):
        assert isinstance(value, Struct), value
        for name, ft in t.fields:
            flatten(value.fields[name], ft, out)
        return out
    if isinstance(t, ir.HeaderUnionT):
        assert isinstance(value, HeaderUnion), value
        for name, ft in t.fields:
            flatten(value.fields[name], ft, out)
        return out
    if isinstance(t, ir.StackT):
        assert isinstance(value, Stack), value
        for elem in value.elems:
            flatten(elem, t.elem, out)
        return out
    if isinstance(t, ir.TupleT):
        assert isinstance(value, list), value
        for item, et in zip(value, t.elems, strict=True):
            flatten(item, et, out)
        return out
    raise TypeError(f"cannot serialise a value of type {t} into bits")


_HEADER_BYTES: dict[int, tuple[ir.HeaderT, int]] = {}


def header_bytes(t: ir.HeaderT) -> int:
    """Size of a header on the wire in bytes (varbit counted at maximum width)."""
    hit = _HEADER_BYTES.get(id(t))
    if hit is not None and hit[0] is t:
        return hit[1]
    n = _header_bytes(t)
    _HEADER_BYTES[id(t)] = (t, n)  # keeps t alive, so the id stays unique
    return n


def _header_bytes(t: ir.HeaderT) -> int:
    bits = 0
    for _, ft in t.fields:
        w = scalar_width(ft)
        if w is None and isinstance(ft, ir.VarbitT):
            w = ft.max_width
        bits += w or 0
    return (bits + 7) // 8


def valid_header_bytes(value: Any) -> int:
    """Total wire size of the valid headers inside a (headers struct) value."""
    if isinstance(value, Header):
        return header_bytes(value.type) if value.valid else 0
    if isinstance(value, Struct):
        return sum(valid_header_bytes(v) for v in value.fields.values())
    if isinstance(value, HeaderUnion):
        return sum(valid_header_bytes(v) for v in value.fields.values())
    if isinstance(value, Stack):
        return sum(valid_header_bytes(v) for v in value.elems)
    return 0


# ------------------------------------------------------------------ precompiled
#
# The per-packet paths (hash / checksum inputs, the length register) run these
# closures built once per call site / type instead of walking types per packet.

_Packer = Callable[[Any, int, int], tuple[int, int]]


def _packer(t: ir.Type) -> _Packer:
    w = scalar_width(t)
    if w is not None:
        mask = (1 << w) - 1

        def scalar(v: Any, acc: int, n: int) -> tuple[int, int]:
            return (acc << w) | (int(v) & mask), n + w
        return scalar
    if isinstance(t, ir.VarbitT):
        return _packer(ir.BitT(t.max_width))
    if isinstance(t, ir.HeaderT):
        parts = [(name, _packer(ft)) for name, ft in t.fields]

        def header(v: Any, acc: int, n: int) -> tuple[int, int]:
            if not v.valid:
                return acc, n
            f = v.fields
            for name, p in parts:
                acc, n = p(f[name], acc, n)
            return acc, n
        return header
    if isinstance(t, (ir.StructT, ir.HeaderUnionT)):
        sparts = [(name, _packer(ft)) for name, ft in t.fields]

        def struct(v: Any, acc: int, n: int) -> tuple[int, int]:
            f = v.fields
            for name, p in sparts:
                acc, n = p(f[name], acc, n)
            return acc, n
        return struct
    if isinstance(t, ir.StackT):
        ep = _packer(t.elem)

        def stack(v: Any, acc: int, n: int) -> tuple[int, int]:
            for e in v.elems:
                acc, n = ep(e, acc, n)
            return acc, n
        return stack
    if isinstance(t, ir.TupleT):
        tparts = [_packer(et) for et in t.elems]

        def tup(v: Any, acc: int, n: int) -> tuple[int, int]:
            for item, p in zip(v, tparts, strict=True):
                acc, n = p(item, acc, n)
            return acc, n
        return tup
    raise TypeError(f"cannot serialise a value of type {t} into bits")


def int_pack_widths(t: ir.Type) -> list[int] | None:
    """The widths :func:`make_int_packer` packs a tuple of scalars with (a varbit at
    its maximum width); None for any other type."""
    if not isinstance(t, ir.TupleT):
        return None
    widths: list[int] = []
    for et in t.elems:
        w = scalar_width(et)
        if w is None and isinstance(et, ir.VarbitT):
            w = et.max_width
        if w is None:
            return None
        widths.append(w)
    return widths


def make_int_packer(t: ir.Type) -> tuple[Callable[[Any], int], int] | None:
    """For a tuple of scalars (a field-list expression such as the IPv4 header fields
    of a checksum): ``(fn, nbits)`` where ``fn(v)`` is the fields packed MSB first
    into one int of ``nbits`` bits, computed by one generated expression with the
    masks and shifts precomputed. None for any other type (use make_packer)."""
    widths = int_pack_widths(t)
    if widths is None:
        return None
    if not widths:
        return (lambda v: 0), 0
    names = [f"a{i}" for i in range(len(widths))]
    terms: list[str] = []
    shift = sum(widths)
    for name, w in zip(names, widths, strict=True):
        shift -= w
        term = f"({name} & {(1 << w) - 1})"
        terms.append(f"({term} << {shift})" if shift else term)
    src = f"def pack_int(v):\n    {', '.join(names)}, = v\n    return {' | '.join(terms)}\n"
    env: dict[str, Any] = {}
    exec(compile(src, "<int_packer>", "exec"), env)
    fn: Callable[[Any], int] = env["pack_int"]
    return fn, sum(widths)


def make_packer(t: ir.Type) -> Callable[[Any], bytes]:
    """A function serialising values of type ``t`` exactly like
    ``hashes.pack_bits(flatten(v, t))`` (BMv2's field-list bytes)."""
    ip = make_int_packer(t)
    if ip is not None:
        pack_int, nbits = ip
        if nbits == 0:
            return lambda v: b""
        ipad = (-nbits) % 8
        nbytes = (nbits + ipad) // 8

        def pack_tuple(v: Any) -> bytes:
            return (pack_int(v) << ipad).to_bytes(nbytes, "big")
        return pack_tuple
    p = _packer(t)

    def pack(v: Any) -> bytes:
        acc, n = p(v, 0, 0)
        if n == 0:
            return b""
        pad = (-n) % 8
        return (acc << pad).to_bytes((n + pad) // 8, "big")
    return pack


def make_valid_bytes(t: ir.Type) -> Callable[[Any], int]:
    """A function equal to :func:`valid_header_bytes` for values of type ``t``.

    For a struct / header union, one generated function tests each member header's
    ``valid`` flag in turn (no generator, no per-member call); nested structs and stacks
    call their own precompiled function."""
    if isinstance(t, ir.HeaderT):
        size = header_bytes(t)
        return lambda v: size if v.valid else 0
    if isinstance(t, (ir.StructT, ir.HeaderUnionT)):
        env: dict[str, Any] = {}
        lines = ["def valid_bytes(v):", "    f = v.fields", "    n = 0"]
        for i, (name, ft) in enumerate(t.fields):
            if isinstance(ft, ir.HeaderT):
                lines.append(f"    if f[{name!r}].valid: n += {header_bytes(ft)}")
            elif isinstance(ft, (ir.StructT, ir.HeaderUnionT, ir.StackT)):
                env[f"_s{i}"] = make_valid_bytes(ft)
                lines.append(f"    n += _s{i}(f[{name!r}])")
        lines.append("    return n")
        exec(compile("\n".join(lines), f"<valid_bytes {t.name}>", "exec"), env)
        fn: Callable[[Any], int] = env["valid_bytes"]
        return fn
    if isinstance(t, ir.StackT):
        if isinstance(t.elem, ir.HeaderT):
            esize = header_bytes(t.elem)
            return lambda v: esize * sum(1 for e in v.elems if e.valid)
        ef = make_valid_bytes(t.elem)
        return lambda v: sum(ef(e) for e in v.elems)
    return lambda v: 0

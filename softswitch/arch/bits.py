"""Turning interpreter values into bit fields, and header sizes.

Used by hash / checksum (which serialise a field list the way BMv2 does), by digests
(which need the field values of a struct) and by the packet-length bookkeeping.
"""

from __future__ import annotations

from typing import Any

from softswitch import ir
from softswitch.interp.values import Header, HeaderUnion, Stack, Struct

__all__ = ["scalar_width", "to_unsigned", "flatten", "header_bytes", "valid_header_bytes"]


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


def header_bytes(t: ir.HeaderT) -> int:
    """Size of a header on the wire in bytes (varbit counted at maximum width)."""
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

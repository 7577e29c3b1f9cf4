"""The generated (inlined) makers / copiers of fastvals agree with values.zero_value /
copy_value on deeply nested types, for random contents (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from softswitch import ir
from softswitch.interp.fastvals import copier, maker
from softswitch.interp.values import Header, HeaderUnion, Stack, Struct, copy_value, zero_value

H = ir.HeaderT("h", (("a", ir.BitT(8)), ("b", ir.IntT(4)), ("c", ir.BoolT())))
G = ir.HeaderT("g", (("x", ir.BitT(32)),))
U = ir.HeaderUnionT("u", (("h", H), ("g", G)))
E = ir.EnumT("E", ("One", "Two"))
LEAF = ir.StructT("leaf", (("z", ir.BitT(3)), ("hh", H)))
MID = ir.StructT("mid", (("l1", LEAF), ("n", ir.BitT(16)), ("l2", LEAF), ("e", E)))
TOP = ir.StructT("top", (("p", ir.BitT(8)), ("m", MID), ("u", U), ("st", ir.StackT(G, 2)),
                         ("t", ir.TupleT((ir.BitT(8), ir.BoolT()))), ("g", G), ("err", ir.ErrorT()),
                         ("m2", MID)))


def shape(v: Any) -> Any:
    if isinstance(v, Header):
        return ("H", v.type.name, v.valid, list(v.fields.items()))
    if isinstance(v, (Struct, HeaderUnion)):
        return (type(v).__name__, v.type.name, [(k, shape(x)) for k, x in v.fields.items()])
    if isinstance(v, Stack):
        return ("K", v.next_index, [shape(e) for e in v.elems])
    if isinstance(v, list):
        return ["L", *map(shape, v)]
    return v


def objects(v: Any) -> list[int]:
    """ids of all mutable objects inside v (to check a copy shares none)."""
    if isinstance(v, (int, str)):
        return []
    out = [id(v)]
    if isinstance(v, (Header, Struct, HeaderUnion)):
        out.append(id(v.fields))
        for x in v.fields.values():
            if not isinstance(x, (int, str)):
                out += objects(x)
    elif isinstance(v, Stack):
        for e in v.elems:
            out += objects(e)
    elif isinstance(v, list):
        for x in v:
            out += objects(x)
    return out


def fill(v: Any, draw: Any) -> None:
    if isinstance(v, Header):
        v.valid = draw(st.booleans())
        for k, x in v.fields.items():
            v.fields[k] = (not x) if isinstance(x, bool) else draw(st.integers(-8, 300))
    elif isinstance(v, (Struct, HeaderUnion)):
        for k, x in v.fields.items():
            if isinstance(x, (Header, Struct, HeaderUnion, Stack)):
                fill(x, draw)
            elif isinstance(x, int) and not isinstance(x, bool):
                v.fields[k] = draw(st.integers(0, 255))
    elif isinstance(v, Stack):
        v.next_index = draw(st.integers(0, len(v.elems)))
        for e in v.elems:
            fill(e, draw)


def test_maker_equals_zero_value() -> None:
    for t in (H, LEAF, MID, TOP):
        a, b = maker(t)(), maker(t)()
        assert shape(a) == shape(zero_value(t))
        assert not set(objects(a)) & set(objects(b))


@given(st.data())
def test_copier_equals_copy_value(data: st.DataObject) -> None:
    v = maker(TOP)()
    fill(v, data.draw)
    c = copier(TOP)(v)
    assert shape(c) == shape(copy_value(v)) == shape(v)
    assert not set(objects(c)) & set(objects(v))
    assert c.fields["m"].fields["l1"].fields["hh"].type is H

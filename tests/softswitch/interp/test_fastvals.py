"""Type-specialised makers/copiers agree with values.zero_value / copy_value; p4c const
entry priority numbering."""

from __future__ import annotations

import pytest
from irb import BOOL, bit

from softswitch import ir
from softswitch.interp.compiler import CompileFailure, _priorities
from softswitch.interp.fastvals import copier, maker
from softswitch.interp.values import Header, Stack, Struct, zero_value

H = ir.HeaderT("h", (("a", bit(8)), ("b", ir.IntT(4)), ("c", BOOL)))
INNER = ir.StructT("inner", (("x", bit(3)),))
# scalar and compound fields interleaved: declaration order must survive
S = ir.StructT("s", (("p", bit(8)), ("h", H), ("q", BOOL), ("st", ir.StackT(H, 2)), ("i", INNER),
                     ("e", ir.SerEnumT("E", bit(8), (("A", 1),))), ("err", ir.ErrorT())))


def shape(v: object) -> object:
    if isinstance(v, Header):
        return ("H", v.type.name, v.valid, list(v.fields.items()))
    if isinstance(v, Struct):
        return ("S", v.type.name, [(k, shape(x)) for k, x in v.fields.items()])
    if isinstance(v, Stack):
        return ("K", v.next_index, [shape(e) for e in v.elems])
    return v


def test_maker_matches_zero_value_including_field_order() -> None:
    for t in (H, INNER, S, ir.StackT(H, 3)):
        assert shape(maker(t)()) == shape(zero_value(t))
    a, b = maker(S)(), maker(S)()
    assert a.fields["h"] is not b.fields["h"] and a.fields["st"].elems[0] is not b.fields["st"].elems[0]


def test_copier_is_deep_and_equal() -> None:
    v = maker(S)()
    v.fields["p"] = 9
    v.fields["h"].valid = True
    v.fields["h"].fields["b"] = -3
    v.fields["st"].elems[1].fields["a"] = 4
    v.fields["st"].next_index = 1
    v.fields["i"].fields["x"] = 5
    c = copier(S)(v)
    assert shape(c) == shape(v)
    c.fields["h"].fields["a"] = 1
    c.fields["st"].elems[1].fields["a"] = 1
    c.fields["i"].fields["x"] = 1
    assert v.fields["h"].fields["a"] == 0 and v.fields["st"].elems[1].fields["a"] == 4
    assert v.fields["i"].fields["x"] == 5


def _ce(prio: int | None) -> ir.ConstEntry:
    return ir.ConstEntry((ir.KsDefault(),), "a", False, (), priority=prio)


def test_const_entry_priorities_like_p4c() -> None:
    assert _priorities((_ce(None), _ce(None), _ce(None))) == [3, 2, 1]
    assert _priorities((_ce(10), _ce(None), _ce(None), _ce(50), _ce(None))) == [10, 9, 8, 50, 49]
    with pytest.raises(CompileFailure, match="first const entry"):
        _priorities((_ce(None), _ce(5)))

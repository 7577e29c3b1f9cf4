"""Type-specialised constructors and copiers for compound values.

``values.zero_value`` / ``values.copy_value`` walk the type / value with isinstance
checks per field; per packet that dominates (metadata structs with dozens of fields are
created and copied several times). Here each struct / header / stack type gets one
generated function that builds a zero value or copies a value field by field, knowing
at generation time which fields are scalars. Results are identical to values.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from softswitch import ir
from softswitch.interp.values import Header, HeaderUnion, Stack, Struct, copy_value, zero_value

__all__ = ["maker", "copier"]

_makers: dict[int, tuple[ir.Type, Callable[[], Any]]] = {}
_copiers: dict[int, tuple[ir.Type, Callable[[Any], Any]]] = {}


def _scalar(t: ir.Type) -> bool:
    return not isinstance(t, (ir.HeaderT, ir.StructT, ir.HeaderUnionT, ir.StackT, ir.TupleT))


def maker(t: ir.Type) -> Callable[[], Any]:
    """A function returning a fresh zero value of ``t`` (as values.zero_value)."""
    got = _makers.get(id(t))
    if got is not None and got[0] is t:
        return got[1]
    fn: Callable[[], Any]
    if isinstance(t, ir.HeaderT):
        proto = {n: zero_value(ft) for n, ft in t.fields}

        def fn() -> Any:
            return Header(t, False, proto.copy())
    elif isinstance(t, ir.StructT):
        # declaration order: compound members hold a placeholder in the prototype and are
        # replaced in place (assigning an existing key keeps its position)
        proto_s = {n: (zero_value(ft) if _scalar(ft) else None) for n, ft in t.fields}
        subs = [(n, maker(ft)) for n, ft in t.fields if not _scalar(ft)]

        def fn() -> Any:
            d = proto_s.copy()
            for n, mk in subs:
                d[n] = mk()
            return Struct(t, d)
    elif isinstance(t, ir.StackT):
        em = maker(t.elem)
        size = t.size

        def fn() -> Any:
            return Stack(t, [em() for _ in range(size)], 0)
    else:
        def fn() -> Any:
            return zero_value(t)
    _makers[id(t)] = (t, fn)
    return fn


def copier(t: ir.Type) -> Callable[[Any], Any]:
    """A function returning a deep copy of a value of type ``t`` (as values.copy_value)."""
    got = _copiers.get(id(t))
    if got is not None and got[0] is t:
        return got[1]
    fn: Callable[[Any], Any]
    if isinstance(t, ir.HeaderT):
        def fn(v: Any) -> Any:
            return Header(v.type, v.valid, v.fields.copy())
    elif isinstance(t, ir.StructT):
        subs = [(n, copier(ft)) for n, ft in t.fields if not _scalar(ft)]
        if not subs:
            def fn(v: Any) -> Any:
                return Struct(v.type, v.fields.copy())
        else:
            def fn(v: Any) -> Any:
                d = v.fields.copy()  # keeps declaration order; compound members replaced
                for n, cp in subs:
                    d[n] = cp(d[n])
                return Struct(v.type, d)
    elif isinstance(t, ir.StackT):
        ec = copier(t.elem)

        def fn(v: Any) -> Any:
            return Stack(v.type, [ec(e) for e in v.elems], v.next_index)
    else:
        fn = copy_value
    _copiers[id(t)] = (t, fn)
    return fn


_ = HeaderUnion

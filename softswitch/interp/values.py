"""Run-time values of the interpreter, shared with architectures and the runtime.

Representation (fixed; architectures rely on it):

* ``bit<N>``: a Python int in [0, 2**N); ``int<N>``: a Python int in [-2**(N-1), 2**(N-1));
  ``bool``: bool; ``error``: the member name (str); non-serializable enum: member name
  (str); serializable enum: int of the underlying type; ``string``: str.
* header: :class:`Header`; struct: :class:`Struct`; header union: :class:`HeaderUnion`;
  header stack: :class:`Stack`; tuple / list expression: a Python ``list``.

Field dicts keep the declaration order of the type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from softswitch import ir

__all__ = ["Header", "Struct", "HeaderUnion", "Stack", "Cell", "zero_value", "copy_value"]


class Header:
    """A header value. ``vlen`` is the current length in bits of its varbit field (a
    header has at most one; 0 when it has none or it was never extracted): the field's
    value alone (an int) does not say how many bits the deparser must write. It lives in
    the header object so that every copy (assignment, clone, replica) keeps it, as
    BMv2's copies of a variable-length field keep their width."""

    __slots__ = ("fields", "type", "valid", "vlen")

    def __init__(self, type: ir.HeaderT, valid: bool, fields: dict[str, Any], vlen: int = 0) -> None:
        self.type = type
        self.valid = valid
        self.fields = fields
        self.vlen = vlen

    def copy(self) -> Header:
        return Header(self.type, self.valid, dict(self.fields), self.vlen)

    def __repr__(self) -> str:
        return f"Header({self.type.name}, valid={self.valid}, {self.fields})"


class Struct:
    __slots__ = ("fields", "type")

    def __init__(self, type: ir.StructT, fields: dict[str, Any]) -> None:
        self.type = type
        self.fields = fields

    def copy(self) -> Struct:
        return Struct(self.type, {k: copy_value(v) for k, v in self.fields.items()})

    def __repr__(self) -> str:
        return f"Struct({self.type.name}, {self.fields})"


class HeaderUnion:
    __slots__ = ("fields", "type")

    def __init__(self, type: ir.HeaderUnionT, fields: dict[str, Header]) -> None:
        self.type = type
        self.fields = fields

    def copy(self) -> HeaderUnion:
        return HeaderUnion(self.type, {k: v.copy() for k, v in self.fields.items()})


class Stack:
    __slots__ = ("elems", "next_index", "type")

    def __init__(self, type: ir.StackT, elems: list[Any], next_index: int = 0) -> None:
        self.type = type
        self.elems = elems
        self.next_index = next_index

    def copy(self) -> Stack:
        return Stack(self.type, [e.copy() for e in self.elems], self.next_index)


@dataclass(slots=True)
class Cell:
    """A box for an out / inout argument of an extern call: the extern reads and writes
    ``value``; the interpreter copies it back into the l-value after the call."""

    value: Any


def copy_value(v: Any) -> Any:
    """Deep copy of a value (scalars are immutable and returned as they are)."""
    if isinstance(v, (Header, Struct, HeaderUnion, Stack)):
        return v.copy()
    if isinstance(v, list):
        return [copy_value(x) for x in v]
    return v


def zero_value(t: ir.Type, types: dict[str, ir.Type] | None = None) -> Any:
    """The value an uninitialised variable of type ``t`` holds on BMv2: 0, False,
    invalid headers with zero fields, the first enum member, error.NoError."""
    if isinstance(t, (ir.BitT, ir.IntT, ir.VarbitT, ir.InfIntT)):
        return 0
    if isinstance(t, ir.BoolT):
        return False
    if isinstance(t, ir.HeaderT):
        return Header(t, False, {n: zero_value(ft) for n, ft in t.fields})
    if isinstance(t, ir.StructT):
        return Struct(t, {n: zero_value(ft) for n, ft in t.fields})
    if isinstance(t, ir.HeaderUnionT):
        return HeaderUnion(t, {n: zero_value(ft) for n, ft in t.fields})
    if isinstance(t, ir.StackT):
        return Stack(t, [zero_value(t.elem) for _ in range(t.size)], 0)
    if isinstance(t, ir.EnumT):
        return t.members[0] if t.members else ""
    if isinstance(t, ir.SerEnumT):
        return 0
    if isinstance(t, ir.ErrorT):
        return "NoError"
    if isinstance(t, ir.StringT):
        return ""
    if isinstance(t, ir.TupleT):
        return [zero_value(e) for e in t.elems]
    return None

"""Run-time helpers referenced by the generated code (see compiler.py).

Everything here is called per packet, so it stays small and branch-light. Generated
code reaches these through the shared module namespace built by :func:`base_env`.
"""

from __future__ import annotations

from typing import Any

from softswitch import ir
from softswitch.interp.api import PacketTooShort
from softswitch.interp.packet import HeaderLayout, HeaderTooShort, PacketIn, PacketOut
from softswitch.interp.values import Cell, Header, HeaderUnion, Stack, Struct, copy_value, zero_value

__all__ = ["ExitSignal", "ParserReject", "base_env", "assign_into"]


class ExitSignal(Exception):
    """``exit``: unwinds to the top-level control run (copy-outs happen on the way)."""


class ParserReject(Exception):
    """The parser goes to ``reject`` with error ``error`` (a name)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def div(a: int, b: int) -> int:
    # BMv2 has no defined result for division by zero; we give 0 instead of crashing.
    return a // b if b else 0


def mod(a: int, b: int) -> int:
    return a % b if b else 0


def sdiv(a: int, b: int) -> int:
    # truncation toward zero, as C and BMv2 do for signed values
    if not b:
        return 0
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def smod(a: int, b: int) -> int:
    if not b:
        return 0
    return a - sdiv(a, b) * b


def shl(a: int, b: int, w: int, m: int) -> int:
    return (a << b) & m if b < w else 0


def sshl(a: int, b: int, w: int) -> int:
    if b >= w:
        return 0
    h = 1 << (w - 1)
    return (((a << b) + h) & ((1 << w) - 1)) - h


def eq(a: Any, b: Any) -> bool:
    """== on any values: headers equal when both invalid or both valid with equal fields."""
    ta = type(a)
    if ta is Header:
        if not a.valid and not b.valid:
            return True
        return bool(a.valid == b.valid and all(eq(x, b.fields[k]) for k, x in a.fields.items()))
    if ta is Struct or ta is HeaderUnion:
        return all(eq(x, b.fields[k]) for k, x in a.fields.items())
    if ta is Stack:
        return all(eq(x, y) for x, y in zip(a.elems, b.elems, strict=True))
    if ta is list:
        return len(a) == len(b) and all(eq(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def stk_get(s: Stack, i: int) -> Any:
    # Out-of-range variable index in a control: P4 leaves the value undefined; we read a
    # fresh invalid header (BMv2 would abort the packet).
    if 0 <= i < len(s.elems):
        return s.elems[i]
    return zero_value(s.type.elem)


def stk_set(s: Stack, i: int, v: Any) -> None:
    if 0 <= i < len(s.elems):
        s.elems[i] = v


def stk_next(s: Stack) -> Any:
    if s.next_index >= len(s.elems):
        raise ParserReject("StackOutOfBounds")
    return s.elems[s.next_index]


def stk_last(s: Stack) -> Any:
    if s.next_index == 0:
        raise ParserReject("StackOutOfBounds")
    return s.elems[s.next_index - 1]


def stk_set_next(s: Stack, v: Any) -> None:
    if s.next_index >= len(s.elems):
        raise ParserReject("StackOutOfBounds")
    s.elems[s.next_index] = v


def stk_last_index(s: Stack) -> int:
    # bit<32>; with nextIndex == 0 this wraps to 2**32-1 (undefined in the spec)
    return (s.next_index - 1) & 0xFFFFFFFF


def push_front(s: Stack, n: int) -> None:
    size = len(s.elems)
    n = min(n, size)
    if n <= 0:
        return
    fresh = [zero_value(s.type.elem) for _ in range(n)]
    s.elems[:] = fresh + s.elems[: size - n]
    s.next_index = min(s.next_index + n, size)


def pop_front(s: Stack, n: int) -> None:
    size = len(s.elems)
    n = min(n, size)
    if n <= 0:
        return
    fresh = [zero_value(s.type.elem) for _ in range(n)]
    s.elems[:] = s.elems[n:] + fresh
    s.next_index = max(s.next_index - n, 0)


def union_valid(u: HeaderUnion) -> bool:
    return any(h.valid for h in u.fields.values())


def union_only(u: HeaderUnion, name: str) -> None:
    """Member ``name`` became valid: the others become invalid (spec 8.20)."""
    for k, h in u.fields.items():
        if k != name:
            h.valid = False


def union_set_invalid(u: HeaderUnion) -> None:
    for h in u.fields.values():
        h.valid = False


def extract_next(pkt: PacketIn, s: Stack, lay: HeaderLayout, bits: int | None = None) -> None:
    if s.next_index >= len(s.elems):
        raise ParserReject("StackOutOfBounds")
    pkt.extract_layout(s.elems[s.next_index], lay, bits)
    s.next_index += 1


def emit_hdr(pkt: PacketOut, h: Header, lay: HeaderLayout) -> None:
    if h.valid:
        pkt.emit_header(h, lay)


def verify(cond: bool, err: str) -> None:
    if not cond:
        raise ParserReject(err)


def assign_into(dst: Any, src: Any) -> None:
    """Make the (caller-owned) object ``dst`` hold the value of ``src`` in place, so that a
    top-level argument replaced by an assignment inside a control is seen by the caller."""
    if dst is src:
        return
    t = type(dst)
    if t is Header:
        dst.valid = src.valid
        dst.fields.update(src.fields)
    elif t is Struct or t is HeaderUnion:
        dst.fields.update(src.fields)
    elif t is Stack:
        dst.elems[:] = src.elems
        dst.next_index = src.next_index
    elif t is list:
        dst[:] = src


def base_env() -> dict[str, Any]:
    """The namespace the generated code runs in (helpers under short names)."""
    return {
        "__builtins__": {"min": min, "max": max, "len": len, "int": int, "bool": bool,
                         "True": True, "False": False, "None": None},
        "_Exit": ExitSignal, "_Reject": ParserReject, "_TooShort": PacketTooShort,
        "_HdrTooShort": HeaderTooShort,
        "_div": div, "_mod": mod, "_sdiv": sdiv, "_smod": smod, "_shl": shl, "_sshl": sshl,
        "_eq": eq, "_stk_get": stk_get, "_stk_set": stk_set, "_stk_next": stk_next,
        "_stk_last": stk_last, "_stk_set_next": stk_set_next, "_stk_last_index": stk_last_index,
        "_push_front": push_front, "_pop_front": pop_front, "_union_valid": union_valid,
        "_union_only": union_only, "_union_set_invalid": union_set_invalid,
        "_extract_next": extract_next, "_emit_hdr": emit_hdr, "_verify": verify,
        "_cp": copy_value, "_Cell": Cell, "_Header": Header, "_Struct": Struct,
        "_zero": zero_value, "_ir": ir, "_assign_into": assign_into,
    }

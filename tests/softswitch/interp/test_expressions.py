"""Expressions: width rules, wrap-around, saturation, shifts, casts, slices, concat."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from irb import BOOL, Ctx, assign, binop, bit, c, compile_one, control, mem, program, run_expr, sint, var

from softswitch import ir
from softswitch.interp.values import Struct

P = ir.NOPOS


def to_signed(v: int, w: int) -> int:
    v &= (1 << w) - 1
    return v - (1 << w) if v >> (w - 1) else v


def reference(op: str, a: int, b: int, w: int, signed: bool) -> int:
    m = (1 << w) - 1
    norm = (lambda x: to_signed(x, w)) if signed else (lambda x: x & m)
    lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, m)
    if op == "+":
        return norm(a + b)
    if op == "-":
        return norm(a - b)
    if op == "*":
        return norm(a * b)
    if op == "|+|":
        return max(lo, min(hi, a + b))
    if op == "|-|":
        return max(lo, min(hi, a - b))
    if op == "&":
        return norm(a & b)
    if op == "|":
        return norm(a | b)
    if op == "^":
        return norm(a ^ b)
    if op == "<<":
        return 0 if b >= w else norm(a << b)
    if op == ">>":
        return a >> min(b, w)  # arithmetic for negative (signed) values
    raise AssertionError(op)


@cache
def binary_runner(op: str, w: int, signed: bool, shift_w: int = 8) -> Any:
    t: ir.Type = sint(w) if signed else bit(w)
    bt: ir.Type = bit(shift_w) if op in ("<<", ">>") else t
    s = ir.StructT("S", (("a", t), ("b", bt), ("r", t)))
    v = var("s", s)
    ctl = control("C", [("s", "inout", s)], [assign(mem(v, "r"), binop(op, mem(v, "a"), mem(v, "b"), t))])
    cp = compile_one(program(controls={"C": ctl}))

    def run(a: int, b: int) -> int:
        obj = Struct(s, {"a": a, "b": b, "r": 0})
        cp.run_control("C", [obj], Ctx())
        return int(obj.fields["r"])
    return run


OPS = ["+", "-", "*", "|+|", "|-|", "&", "|", "^", "<<", ">>"]


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(OPS), w=st.sampled_from([1, 3, 8, 16, 32, 48, 64]), data=st.data())
def test_unsigned_binary_ops_match_reference(op: str, w: int, data: st.DataObject) -> None:
    a = data.draw(st.integers(0, (1 << w) - 1))
    if op in ("<<", ">>"):
        b = data.draw(st.integers(0, 255))
    else:
        b = data.draw(st.integers(0, (1 << w) - 1))
    assert binary_runner(op, w, False)(a, b) == reference(op, a, b, w, False)


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(OPS), w=st.sampled_from([2, 4, 8, 16, 32, 64]), data=st.data())
def test_signed_binary_ops_match_reference(op: str, w: int, data: st.DataObject) -> None:
    a = data.draw(st.integers(-(1 << (w - 1)), (1 << (w - 1)) - 1))
    if op in ("<<", ">>"):
        b = data.draw(st.integers(0, 255))
    else:
        b = data.draw(st.integers(-(1 << (w - 1)), (1 << (w - 1)) - 1))
    assert binary_runner(op, w, True)(a, b) == reference(op, a, b, w, True)


def test_huge_shift_amount_does_not_blow_up() -> None:
    assert binary_runner("<<", 8, False, 32)(0xFF, 0xFFFFFFFF) == 0
    assert binary_runner(">>", 8, True, 32)(-5, 0xFFFFFFFF) == -1


def test_saturating_examples() -> None:
    assert run_expr(binop("|+|", c(250, bit(8)), c(10, bit(8)))) == 255
    assert run_expr(binop("|-|", c(5, bit(8)), c(10, bit(8)))) == 0
    assert run_expr(binop("|+|", c(120, sint(8)), c(10, sint(8)))) == 127
    assert run_expr(binop("|-|", c(-120, sint(8)), c(10, sint(8)))) == -128


def test_division_and_modulo() -> None:
    assert run_expr(binop("/", c(200, bit(8)), c(7, bit(8)))) == 28
    assert run_expr(binop("%", c(200, bit(8)), c(7, bit(8)))) == 4
    assert run_expr(binop("/", c(200, bit(8)), c(0, bit(8)))) == 0


def test_unary_ops() -> None:
    assert run_expr(ir.Unary(P, bit(8), "-", c(1, bit(8)))) == 255
    assert run_expr(ir.Unary(P, bit(8), "~", c(0x0F, bit(8)))) == 0xF0
    assert run_expr(ir.Unary(P, sint(8), "-", c(-128, sint(8)))) == -128
    assert run_expr(ir.Unary(P, sint(8), "~", c(5, sint(8)))) == -6
    assert run_expr(ir.Unary(P, BOOL, "!", c(True, BOOL))) is False


@pytest.mark.parametrize(("left", "right", "rt", "expected"), [
    (c(0xA, bit(4)), c(0x5, bit(4)), bit(8), 0xA5),
    (c(1, bit(1)), c(0, bit(16)), bit(17), 1 << 16),
    (c(-1, sint(4)), c(0, bit(4)), sint(8), -16),
    (c(0x12, bit(8)), c(-1, sint(8)), bit(16), 0x12FF),
])
def test_concatenation_widths_add(left: ir.Expr, right: ir.Expr, rt: ir.Type, expected: int) -> None:
    assert run_expr(binop("++", left, right, rt)) == expected


@pytest.mark.parametrize(("value", "src", "dst", "expected"), [
    (0x1FF, bit(9), bit(8), 0xFF),
    (0xFF, bit(8), bit(16), 0xFF),
    (-1, sint(8), bit(8), 0xFF),
    (0xFF, bit(8), sint(8), -1),
    (0x7F, bit(8), sint(8), 127),
    (-2, sint(8), sint(16), -2),
    (0x1234, sint(16), sint(8), 0x34),
    (0x80, sint(16), sint(8), -128),
    (1, bit(1), BOOL, True),
    (0, bit(1), BOOL, False),
    (True, BOOL, bit(1), 1),
    (False, BOOL, bit(1), 0),
    (5, bit(8), bit(8), 5),
])
def test_casts(value: int, src: ir.Type, dst: ir.Type, expected: int | bool) -> None:
    got = run_expr(ir.Cast(P, dst, c(value, src)))
    assert got == expected and type(got) is type(expected)


def test_cast_to_serializable_enum_truncates_to_underlying() -> None:
    e = ir.SerEnumT("E", bit(4), (("A", 1),))
    assert run_expr(ir.Cast(P, e, c(0x31, bit(8)))) == 1


def test_comparisons_and_logic_short_circuit() -> None:
    s = ir.StructT("S", (("x", bit(8)),))
    v = var("s", s)
    # false && (x/0 would be harmless; use an extern-free expression that would differ)
    e = binop("||", binop("<", mem(v, "x"), c(10, bit(8))), binop("==", mem(v, "x"), c(99, bit(8))))
    assert run_expr(e, {"s": (s, Struct(s, {"x": 3}))}) is True
    assert run_expr(e, {"s": (s, Struct(s, {"x": 99}))}) is True
    assert run_expr(e, {"s": (s, Struct(s, {"x": 50}))}) is False
    assert run_expr(binop(">=", c(-1, sint(8)), c(0, sint(8)))) is False


def test_mux_and_slice_read() -> None:
    s = ir.StructT("S", (("x", bit(16)), ("y", sint(8))))
    v = var("s", s)
    val = Struct(s, {"x": 0xABCD, "y": -2})
    assert run_expr(ir.Slice(P, bit(8), mem(v, "x"), 11, 4), {"s": (s, val)}) == 0xBC
    assert run_expr(ir.Slice(P, bit(4), mem(v, "y"), 7, 4), {"s": (s, val)}) == 0xF
    m = ir.Mux(P, bit(16), binop("==", mem(v, "x"), c(0xABCD, bit(16))), c(1, bit(16)), c(2, bit(16)))
    assert run_expr(m, {"s": (s, val)}) == 1


def test_slice_as_lvalue_keeps_other_bits_and_sign() -> None:
    s = ir.StructT("S", (("x", bit(16)), ("y", sint(8))))
    v = var("s", s)
    ctl = control("C", [("s", "inout", s)], [
        assign(ir.Slice(P, bit(8), mem(v, "x"), 11, 4), c(0x12, bit(8))),
        assign(ir.Slice(P, bit(1), mem(v, "y"), 7, 7), c(1, bit(1))),
    ])
    cp = compile_one(program(controls={"C": ctl}))
    obj = Struct(s, {"x": 0xABCD, "y": 1})
    cp.run_control("C", [obj], Ctx())
    assert obj.fields == {"x": 0xA12D, "y": -127}


def test_struct_and_list_expressions() -> None:
    h = ir.HeaderT("h", (("a", bit(8)), ("b", bit(8))))
    s = ir.StructT("S", (("h", h),))
    v = var("s", s)
    ctl = control("C", [("s", "inout", s)], [
        assign(mem(v, "h"), ir.StructExpr(P, h, (("a", c(1, bit(8))), ("b", c(2, bit(8)))))),
    ])
    cp = compile_one(program(controls={"C": ctl}))
    obj = cp.new_value(s)
    cp.run_control("C", [obj], Ctx())
    assert obj.fields["h"].valid and obj.fields["h"].fields == {"a": 1, "b": 2}
    lst = ir.ListExpr(P, ir.TupleT((bit(8), BOOL)), (c(3, bit(8)), c(True, BOOL)))
    assert run_expr(lst) == [3, True]

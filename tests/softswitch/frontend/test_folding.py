"""Constant folding agrees with modular bit<N> / int<N> arithmetic."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from softswitch import ir
from softswitch.frontend import load_program

OPS = ["+", "-", "*", "&", "|", "^", "|+|", "|-|", "<<", ">>"]


def _expected(op: str, a: int, b: int, w: int, signed: bool) -> int:
    lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)
    if op == "|+|":
        return max(lo, min(hi, a + b))
    if op == "|-|":
        return max(lo, min(hi, a - b))
    if op == "<<":
        v = a << b
    elif op == ">>":
        v = a >> b  # arithmetic for int<N>, as P4 specifies
    else:
        v = {"+": a + b, "-": a - b, "*": a * b, "&": a & b, "|": a | b, "^": a ^ b}[op]
    v &= (1 << w) - 1
    if signed and v >> (w - 1):
        v -= 1 << w
    return v


case = st.tuples(st.sampled_from(OPS), st.integers(1, 64), st.booleans(), st.integers(0, 2**64), st.integers(0, 2**64))


@settings(max_examples=25, deadline=None)
@given(st.lists(case, min_size=1, max_size=8))
def test_folded_constants_match_modular_arithmetic(cases: list[tuple[str, int, bool, int, int]]) -> None:
    decls = []
    expected = []
    for i, (op, w, signed, x, y) in enumerate(cases):
        if signed and w < 2:
            w = 2
        if signed:
            a = x % (1 << w) - (1 << (w - 1))
            b = y % (1 << w) - (1 << (w - 1))
        else:
            a, b = x % (1 << w), y % (1 << w)
        if op in ("<<", ">>"):
            b = y % (w + 2)
        t = f"int<{w}>" if signed else f"bit<{w}>"
        a_text = f"(({t})({a}))"
        b_text = str(b) if op in ("<<", ">>") else f"(({t})({b}))"
        decls.append(f"const {t} C{i} = {a_text} {op} {b_text};")
        expected.append((f"C{i}", _expected(op, a, b, w, signed), ir.IntT(w) if signed else ir.BitT(w)))
    src = "#include <core.p4>\n" + "\n".join(decls) + "\n"
    src += ("parser P(packet_in p); control C(); package S(P p, C c);\n"
            "parser MP(packet_in p) { state start { transition accept; } }\ncontrol MC() { apply { } }\n"
            "S(MP(), MC()) main;\n")
    p = load_program(src)
    for name, want, ty in expected:
        c = p.constants[name]
        assert isinstance(c, ir.Const) and c.type == ty
        assert c.value == want, (name, src)

"""Specialised per-packet code paths of softswitch.arch compared with the generic ones
they replace, on many inputs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from softswitch import ir
from softswitch.arch.bits import make_valid_bytes, valid_header_bytes
from softswitch.interp.values import Header, HeaderUnion, Stack, Struct

H1 = ir.HeaderT("h1_t", (("a", ir.BitT(4)), ("b", ir.BitT(12))))
H2 = ir.HeaderT("h2_t", (("x", ir.BitT(32)), ("y", ir.BitT(8)), ("z", ir.BoolT())))
U = ir.HeaderUnionT("u_t", (("p", H1), ("q", H2)))
INNER = ir.StructT("inner_t", (("h", H2), ("n", ir.BitT(8))))
S = ir.StackT(H1, 3)
HDRS = ir.StructT("hdrs_t", (("e", H1), ("n", ir.BitT(16)), ("i", INNER), ("u", U), ("s", S), ("f", H2)))


@given(st.lists(st.booleans(), min_size=8, max_size=8))
def test_generated_valid_bytes_equals_generic(valid: list[bool]) -> None:
    def h(t: ir.HeaderT, ok: bool) -> Header:
        return Header(t, ok, {n: 0 for n, _ in t.fields})

    v = Struct(HDRS, {
        "e": h(H1, valid[0]), "n": 7,
        "i": Struct(INNER, {"h": h(H2, valid[1]), "n": 1}),
        "u": HeaderUnion(U, {"p": h(H1, valid[2]), "q": h(H2, valid[3])}),
        "s": Stack(S, [h(H1, valid[4]), h(H1, valid[5]), h(H1, valid[6])], 0),
        "f": h(H2, valid[7]),
    })
    got = make_valid_bytes(HDRS)(v)
    assert got == valid_header_bytes(v)
    assert isinstance(got, int)
    assert make_valid_bytes(H2)(v.fields["f"]) == valid_header_bytes(v.fields["f"])
    assert make_valid_bytes(S)(v.fields["s"]) == valid_header_bytes(v.fields["s"])

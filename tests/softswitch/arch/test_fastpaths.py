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


STD = ir.StructT("standard_metadata_t", (
    ("ingress_port", ir.BitT(9)), ("egress_spec", ir.BitT(9)), ("instance_type", ir.BitT(32)),
    ("ingress_global_timestamp", ir.BitT(48)), ("enq_qdepth", ir.BitT(19)), ("parser_error", ir.ErrorT()),
    ("flag", ir.BoolT()), ("packet_length", ir.BitT(32))))


@given(st.lists(st.integers(0, 2**64), min_size=6, max_size=6), st.sampled_from(["NoError", "PacketTooShort"]))
def test_std_writer_equals_set_std(vals: list[int], err: str) -> None:
    from softswitch.arch.v1model import make_std_writer, set_std

    names = ("ingress_port", "egress_spec", "no_such_field", "ingress_global_timestamp", "enq_qdepth",
             "packet_length", "parser_error")
    args: list[int | str] = [*vals, err]
    generic = Struct(STD, {n: 0 for n, _ in STD.fields})
    fast = Struct(STD, dict(generic.fields))
    for n, v in zip(names, args, strict=True):
        set_std(generic, n, v)
    make_std_writer(STD, names)(fast.fields, *args)
    assert fast.fields == generic.fields
    assert list(fast.fields) == list(generic.fields)

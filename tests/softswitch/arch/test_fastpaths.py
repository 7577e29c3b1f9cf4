"""Specialised per-packet code paths of softswitch.arch compared with the generic ones
they replace, on many inputs."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from softswitch import ir
from softswitch.arch import hashes
from softswitch.arch.bits import flatten, make_int_packer, make_packer, make_valid_bytes, valid_header_bytes
from softswitch.arch.v1model import PacketContext, V1Model, make_std_writer, set_std
from softswitch.interp.values import Cell, Header, HeaderUnion, Stack, Struct

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


# ------------------------------------------------------------------ checksums

_POS = ir.Pos("t.p4", 1, 1)
_ALGO_T = ir.EnumT("HashAlgorithm", ("crc32", "crc16", "csum16", "xor16"))
_WIDTHS = st.lists(st.sampled_from([1, 2, 3, 4, 6, 8, 9, 13, 16, 32, 48, 128, 320]), min_size=0, max_size=14)


def _elem_type(w: int) -> ir.Type:
    return ir.BoolT() if w == 1 else ir.VarbitT(w) if w == 320 else ir.BitT(w)


def _values(draw: st.DrawFn, widths: list[int]) -> list[int | bool]:
    out: list[int | bool] = []
    for w in widths:
        # bools for bool fields; otherwise values that may exceed the width (masked like BMv2)
        out.append(draw(st.booleans()) if w == 1 else draw(st.integers(0, 2 ** (w + 3))))
    return out


def _call(name: str, t: ir.TupleT, constant_algo: bool, cw: int = 16) -> ir.ExternFunctionCall:
    algo: ir.Expr = (ir.EnumConst(_POS, _ALGO_T, "csum16") if constant_algo
                     else ir.VarRef(_POS, _ALGO_T, "algo"))
    args = (ir.Arg("in", ir.VarRef(_POS, ir.BoolT(), "cond")), ir.Arg("in", ir.VarRef(_POS, t, "data")),
            ir.Arg("inout" if name.startswith("update") else "in", ir.VarRef(_POS, ir.BitT(cw), "csum")),
            ir.Arg("in", algo))
    return ir.ExternFunctionCall(_POS, ir.VoidT(), name, args)


def _std() -> Struct:
    return Struct(STD_CS, {n: 0 for n, _ in STD_CS.fields})


STD_CS = ir.StructT("standard_metadata_t", (("checksum_error", ir.BitT(1)), ("packet_length", ir.BitT(32))))


@given(st.data(), _WIDTHS)
def test_int_packer_and_packer_equal_flatten(data: st.DataObject, widths: list[int]) -> None:
    t = ir.TupleT(tuple(_elem_type(w) for w in widths))
    v = _values(data.draw, widths)
    want = hashes.pack_bits(flatten(v, t))
    assert make_packer(t)(v) == want
    ip = make_int_packer(t)
    assert ip is not None
    fn, nbits = ip
    assert nbits == sum(widths)
    assert hashes.pack_bits([(fn(v), nbits)]) == want


@given(st.data(), _WIDTHS, st.binary(max_size=9), st.booleans(), st.sampled_from([8, 16]))
def test_specialised_csum16_equals_generic(data: st.DataObject, widths: list[int], payload: bytes,
                                           cond: bool, cw: int) -> None:
    t = ir.TupleT(tuple(_elem_type(w) for w in widths))
    v = _values(data.draw, widths)
    arch = V1Model()
    for with_payload in (False, True):
        suffix = "_with_payload" if with_payload else ""
        want = hashes.csum16(hashes.pack_bits(flatten(v, t)) + (payload if with_payload else b""))
        assert want == hashes.csum16_packed(make_int_packer(t)[0](v), sum(widths),  # type: ignore[index]
                                            payload if with_payload else b"")
        # update: specialised (constant csum16) vs generic (algorithm known only at run time)
        cells = []
        for const in (True, False):
            fn = arch.bind_function(_call("update_checksum" + suffix, t, const, cw))
            std = _std()
            ctx = PacketContext(packet_length=0, now_ns=0, std=std, payload=payload)
            c = Cell(12345 & ((1 << cw) - 1))
            fn(ctx, [cond, v, c, "csum16"])
            cells.append(c.value)
        assert cells[0] == cells[1] == ((want & ((1 << cw) - 1)) if cond else 12345 & ((1 << cw) - 1))
        # verify with the right, a wrong and an out-of-range checksum value
        for given_csum in (want & ((1 << cw) - 1), (want + 1) & ((1 << cw) - 1), want | (1 << cw)):
            errs = []
            for const in (True, False):
                fn = arch.bind_function(_call("verify_checksum" + suffix, t, const, cw))
                std = _std()
                ctx = PacketContext(packet_length=0, now_ns=0, std=std, payload=payload)
                fn(ctx, [cond, v, given_csum, "csum16"])
                errs.append(std.fields["checksum_error"])
            assert errs[0] == errs[1]


def test_log_msg_formats_only_when_info_is_enabled(caplog: Any) -> None:
    import logging

    class Loud:
        formatted = 0

        def __str__(self) -> str:
            Loud.formatted += 1
            return "v"

    call = ir.ExternFunctionCall(_POS, ir.VoidT(), "log_msg", (ir.Arg("in", ir.VarRef(_POS, ir.StringT(), "s")),
                                                                ir.Arg("in", ir.VarRef(_POS, ir.TupleT(()), "d"))))
    fn = V1Model().bind_function(call)
    ctx = PacketContext(packet_length=0, now_ns=0, std=_std())
    with caplog.at_level(logging.WARNING, logger="softswitch.p4"):
        fn(ctx, ["x {}", [Loud()]])
    assert Loud.formatted == 0 and not caplog.records
    with caplog.at_level(logging.INFO, logger="softswitch.p4"):
        fn(ctx, ["x {}", [Loud()]])
    assert Loud.formatted == 1 and [r.getMessage() for r in caplog.records] == ["x v"]

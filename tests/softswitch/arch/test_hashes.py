"""BMv2-compatible hash / checksum algorithms and field serialisation."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from softswitch import ir
from softswitch.arch import hashes
from softswitch.arch.bits import flatten, header_bytes, valid_header_bytes
from softswitch.interp.values import Header, Struct

CHECK = b"123456789"


def test_crc16_is_crc16_arc() -> None:
    # the catalogue check value of CRC-16/ARC (poly 0x8005, reflected, init 0)
    assert hashes.crc16(CHECK) == 0xBB3D
    assert hashes.crc16(b"") == 0


def test_crc32_matches_zlib_check_value() -> None:
    assert hashes.crc32(CHECK) == 0xCBF43926


@given(st.binary(max_size=64))
def test_crc32_equals_zlib(data: bytes) -> None:
    assert hashes.crc32(data) == zlib.crc32(data)


def _crc16_bitwise(data: bytes) -> int:
    # reference: reflected CRC-16 with reversed polynomial 0xA001
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


@given(st.binary(max_size=64))
def test_crc16_table_equals_bitwise(data: bytes) -> None:
    assert hashes.crc16(data) == _crc16_bitwise(data)


def test_crc8_check_value() -> None:
    assert hashes.crc8(CHECK) == 0xF4


def test_csum16_ipv4_header_example() -> None:
    hdr = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert hashes.csum16(hdr) == 0xB861
    # a header with its checksum in place sums to zero
    full = hdr[:10] + (0xB861).to_bytes(2, "big") + hdr[12:]
    assert hashes.csum16(full) == 0


def _csum16_loop(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@given(st.binary(max_size=80) | st.sampled_from([b"\xff\xff", b"\xff\xff\xff\xff", b"", b"\0\0"]))
def test_csum16_equals_word_loop(data: bytes) -> None:
    assert hashes.csum16(data) == _csum16_loop(data)


def test_csum16_pads_odd_length_at_the_end() -> None:
    assert hashes.csum16(b"\x01") == (~0x0100) & 0xFFFF


def test_xor16_and_identity() -> None:
    assert hashes.xor16(bytes.fromhex("12345678")) == 0x1234 ^ 0x5678
    assert hashes.xor16(bytes.fromhex("123456")) == 0x1234 ^ 0x5600
    assert hashes.identity(bytes.fromhex("0a000001")) == 0x0A000001
    assert hashes.identity(bytes(range(1, 11))) == int.from_bytes(bytes(range(1, 9)), "big")


def test_pack_bits_is_msb_first_and_zero_padded() -> None:
    assert hashes.pack_bits([(0xA, 4), (0xB, 4)]) == b"\xab"
    assert hashes.pack_bits([(1, 1)]) == b"\x80"
    assert hashes.pack_bits([(0x1FF, 9), (0, 7)]) == b"\xff\x80"
    assert hashes.pack_bits([]) == b""


def test_hash_result_base_plus_modulo_truncated() -> None:
    assert hashes.hash_result(1000, 5, 16, 32) == 5 + 1000 % 16
    assert hashes.hash_result(0xFFFF, 0, 0, 8) == 0xFF  # max == 0: no modulo, truncated
    with pytest.raises(ValueError, match="not supported"):
        hashes.compute("toeplitz", b"")


H = ir.HeaderT("h_t", (("a", ir.BitT(4)), ("b", ir.BitT(12)), ("s", ir.IntT(8))))


def test_flatten_skips_invalid_headers_like_bmv2() -> None:
    valid = Header(H, True, {"a": 1, "b": 2, "s": -1})
    invalid = Header(H, False, {"a": 1, "b": 2, "s": -1})
    assert flatten(valid, H) == [(1, 4), (2, 12), (0xFF, 8)]
    assert flatten(invalid, H) == []
    t = ir.TupleT((ir.BitT(8), H, ir.BoolT()))
    assert flatten([7, invalid, True], t) == [(7, 8), (1, 1)]


def test_header_sizes() -> None:
    s_t = ir.StructT("hs", (("x", H), ("y", H)))
    v = Struct(s_t, {"x": Header(H, True, {"a": 0, "b": 0, "s": 0}), "y": Header(H, False, {"a": 0, "b": 0, "s": 0})})
    assert header_bytes(H) == 3
    assert valid_header_bytes(v) == 3


@given(st.integers(0, 15), st.integers(0, 4095), st.integers(-128, 127), st.booleans(), st.integers(0, 255))
def test_precompiled_packer_equals_flatten(a: int, b: int, s: int, valid: bool, x: int) -> None:
    from softswitch.arch.bits import make_packer, make_valid_bytes

    t = ir.TupleT((ir.BitT(8), H, ir.BoolT(), ir.IntT(4)))
    v = [x, Header(H, valid, {"a": a, "b": b, "s": s}), valid, -3]
    assert make_packer(t)(v) == hashes.pack_bits(flatten(v, t))
    s_t = ir.StructT("hs", (("x", H), ("n", ir.BitT(8)), ("y", H)))
    sv = Struct(s_t, {"x": Header(H, valid, {"a": 0, "b": 0, "s": 0}), "n": 1,
                      "y": Header(H, True, {"a": 0, "b": 0, "s": 0})})
    assert make_valid_bytes(s_t)(sv) == valid_header_bytes(sv) == (6 if valid else 3)

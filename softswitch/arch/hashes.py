"""Hash and checksum algorithms of v1model, bit-compatible with BMv2.

BMv2 (``src/bm_sim/calculations.cpp``) first serialises the field list into a byte
buffer and then runs the algorithm over the bytes:

* fields are packed MSB first, bit by bit, with no alignment between fields; the last
  byte is padded with zero bits (so ``{bit<4> a, bit<4> b}`` is one byte ``ab``);
* the fields of an INVALID header given as a whole are skipped (BMv2's
  ``BufBuilder`` only deparses valid headers);
* ``*_with_payload`` appends the unparsed payload bytes after the fields.

Algorithms (parameters checked against BMv2's source):

* ``crc16``: CRC-16/ARC (a.k.a. CRC-16/IBM): poly 0x8005, init 0, input and output
  reflected, no final xor. ``crc16(b"123456789") == 0xBB3D``.
* ``crc32``: CRC-32/ISO-HDLC (zlib): poly 0x04C11DB7, init and xorout 0xFFFFFFFF,
  reflected. ``crc32(b"123456789") == 0xCBF43926``.
* ``crc16_custom`` / ``crc32_custom``: BMv2's defaults equal crc16 / crc32 (the
  parameters are only changeable through BMv2's Thrift API, which we do not have).
* ``csum16``: the Internet checksum (RFC 1071): one's complement of the one's
  complement sum of big-endian 16-bit words, an odd last byte padded with 0.
* ``xor16``: XOR of big-endian 16-bit words, an odd last byte padded with 0.
* ``identity``: the first min(8, len) bytes as a big-endian integer.
* ``crc8`` (BMv2 ``crc8_custom`` default): poly 0x07, init 0, not reflected.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable

__all__ = [
    "crc16", "crc32", "crc8", "csum16", "xor16", "identity", "ALGORITHMS", "HASH_WIDTHS",
    "pack_bits", "compute", "hash_result", "csum16_packed",
]


def _reflect(value: int, nbits: int) -> int:
    out = 0
    for _ in range(nbits):
        out = (out << 1) | (value & 1)
        value >>= 1
    return out


def _make_table(poly: int, width: int) -> list[int]:
    top = 1 << (width - 1)
    mask = (1 << width) - 1
    table = []
    for dividend in range(256):
        rem = dividend << (width - 8)
        for _ in range(8):
            rem = ((rem << 1) ^ poly) if rem & top else (rem << 1)
        table.append(rem & mask)
    return table


_CRC16_TABLE = _make_table(0x8005, 16)
_CRC8_TABLE = _make_table(0x07, 8)
_REFLECT8 = [_reflect(i, 8) for i in range(256)]


def crc16(data: bytes) -> int:
    """CRC-16/ARC, BMv2's ``crc16`` (table-driven the way BMv2 does it)."""
    rem = 0
    for byte in data:
        rem = (_CRC16_TABLE[_REFLECT8[byte] ^ (rem >> 8)] ^ (rem << 8)) & 0xFFFF
    return _reflect(rem, 16)


def crc32(data: bytes) -> int:
    """BMv2's ``crc32`` is exactly zlib's CRC-32."""
    return zlib.crc32(data) & 0xFFFFFFFF


def crc8(data: bytes) -> int:
    rem = 0
    for byte in data:
        rem = _CRC8_TABLE[byte ^ rem]
    return rem


def csum16(data: bytes) -> int:
    if len(data) % 2:
        data = data + b"\x00"
    # the one's complement sum of 16-bit words is the number mod 0xFFFF (2**16 == 1),
    # except that a non-zero multiple of 0xFFFF folds to 0xFFFF, not 0
    n = int.from_bytes(data, "big")
    total = n % 0xFFFF
    if total == 0 and n:
        total = 0xFFFF
    return (~total) & 0xFFFF


def csum16_packed(acc: int, nbits: int, payload: bytes = b"") -> int:
    """``csum16(pack_bits(fields) + payload)`` without building the bytes: ``acc`` is
    the fields packed MSB first into ``nbits`` bits."""
    nbytes = (nbits + 7) // 8
    n = acc << (nbytes * 8 - nbits)
    if payload:
        n = (n << (8 * len(payload))) | int.from_bytes(payload, "big")
        nbytes += len(payload)
    if nbytes & 1:
        n <<= 8
    total = n % 0xFFFF
    if total == 0 and n:
        total = 0xFFFF
    return (~total) & 0xFFFF


def xor16(data: bytes) -> int:
    if len(data) % 2:
        data = data + b"\x00"
    out = 0
    for i in range(0, len(data), 2):
        out ^= (data[i] << 8) | data[i + 1]
    return out


def identity(data: bytes) -> int:
    return int.from_bytes(data[:8], "big") if data else 0


#: v1model HashAlgorithm member -> function of the serialised bytes
ALGORITHMS: dict[str, Callable[[bytes], int]] = {
    "crc16": crc16,
    "crc32": crc32,
    "crc16_custom": crc16,
    "crc32_custom": crc32,
    "crc8_custom": crc8,
    "csum16": csum16,
    "xor16": xor16,
    "identity": identity,
}

#: natural output width of each algorithm (identity: up to 64 bits)
HASH_WIDTHS: dict[str, int] = {
    "crc16": 16, "crc32": 32, "crc16_custom": 16, "crc32_custom": 32, "crc8_custom": 8,
    "csum16": 16, "xor16": 16, "identity": 64,
}


def pack_bits(fields: Iterable[tuple[int, int]]) -> bytes:
    """Concatenate ``(value, width)`` pairs MSB first; pad the tail with zero bits.
    Values must already be unsigned and fit their width."""
    acc = 0
    nbits = 0
    for value, width in fields:
        if width <= 0:
            continue
        acc = (acc << width) | (value & ((1 << width) - 1))
        nbits += width
    if nbits == 0:
        return b""
    pad = (-nbits) % 8
    return (acc << pad).to_bytes((nbits + pad) // 8, "big")


def compute(algorithm: str, data: bytes) -> int:
    """Run ``algorithm`` (a HashAlgorithm member name) over ``data``."""
    try:
        fn = ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(
            f"hash algorithm {algorithm!r} is not supported by softswitch "
            f"(supported: {', '.join(sorted(ALGORITHMS))})"
        ) from None
    return fn(data)


def hash_result(h: int, base: int, max_: int, out_width: int) -> int:
    """v1model ``hash()`` result as BMv2 computes it: ``base + (h % max)``, truncated to
    the output width. BMv2 divides by zero when ``max == 0``; we return ``base + h``
    instead (documented difference)."""
    value = base + (h % max_ if max_ > 0 else h)
    return value & ((1 << out_width) - 1)

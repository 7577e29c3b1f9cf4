"""Byte strings of P4Runtime <-> Python ints (P4Runtime spec, "Bytestrings").

The server accepts any length as long as the value fits the field's width (canonical
or padded); it always answers in canonical form (shortest, at least one byte).
"""

from __future__ import annotations

from softswitch.runtime.errors import Code, P4RTError

__all__ = ["decode", "encode", "encode_padded"]


def decode(data: bytes, width: int, what: str) -> int:
    """The unsigned value of ``data`` for a ``width``-bit field.

    Raises INVALID_ARGUMENT for an empty string and OUT_OF_RANGE for a value that does
    not fit in ``width`` bits."""
    if not data:
        raise P4RTError(Code.INVALID_ARGUMENT, f"{what}: empty byte string")
    value = int.from_bytes(data, "big")
    if width >= 0 and value >> width:
        raise P4RTError(Code.OUT_OF_RANGE,
                        f"{what}: value 0x{data.hex()} does not fit in {width} bits")
    return value


def encode(value: int, width: int) -> bytes:
    """Canonical byte string of an unsigned (or two's complement, for int<W>) value."""
    if value < 0:
        value &= (1 << width) - 1
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def encode_padded(value: int, width: int) -> bytes:
    """Byte string of exactly ceil(width / 8) bytes (packet-in metadata, digests use the
    canonical form too; this is for callers that want fixed lengths)."""
    if value < 0:
        value &= (1 << width) - 1
    return value.to_bytes(max(1, (width + 7) // 8), "big")

"""Hostile frames for the fuzz tests (tests/integration/test_robust_fuzz.py, bench/bench_fuzz.py).

A seeded generator (:func:`fuzz_frames`) builds frames by hand (struct, no scapy: a million of them
must be cheap): valid IPv4/IPv6 TCP/UDP/SCTP/ICMP, VLAN-tagged, IPv4 options, fragments, IPv6
extension headers, jumbo frames, and the hostile ones: truncated anywhere, IHL < 5, IHL longer than
the frame, wrong total length, bad header checksum, TTL 0/1, unknown ethertypes, double VLAN tags,
runts (0-13 bytes), random bytes, random bit flips in the headers.

:func:`expected_forward` is the oracle, written from docs/pipeline.md (not from the P4 source): the
v1model parser extracts Ethernet, one VLAN tag, IPv4 (+ options) or IPv6 and the L4 header of
TCP/UDP/SCTP/ICMP(v6) (echo: 4 more bytes), the L4 header only of first IPv4 fragments; a parser
error (a header cut short, IHL < 5) or a wrong IPv4 header checksum drops the packet, so do non-IP
frames and TTL/hop limit <= 1. Everything else entering a VMI port is routed (the fuzz
configuration has default routes for both families). Every frame carries a 6-byte tag at its end
(``b"FZ"`` + index), so a test can tell which frames came out.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["FuzzFrame", "fuzz_frames", "expected_forward", "tag_of", "KINDS", "ipv4_frame", "ipv6_frame"]

ROUTER_MAC = bytes.fromhex("0200000000aa")
VM_MAC = bytes.fromhex("020000000101")
TAG = b"FZ"

# The fuzz's flows come from small pools, so valid frames keep hitting a bounded set of flows.
_SRC4 = [bytes([10, 0, 0, i]) for i in (3, 5, 17, 33, 200)]
_DST4 = [bytes([20, 0, 1, i]) for i in range(1, 9)] + [bytes([8, 8, 4, 4]), bytes([203, 0, 113, 7])]
_SRC6 = [bytes.fromhex("20010db8000000000000000000000003"), bytes.fromhex("20010db8000000000000000000000011")]
_DST6 = [bytes.fromhex(f"2600000000000000000000000000000{i}") for i in range(1, 5)]
_SPORTS = (1111, 2222, 3333)
_DPORTS = (53, 80, 443)


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return int(~s & 0xFFFF)


def _l4(proto: int, sport: int, dport: int, v6: bool, payload: bytes) -> bytes:
    if proto == 6:
        return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 0x02, 8192, 0, 0) + payload
    if proto == 17:
        return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if proto == 132:
        return struct.pack("!HHII", sport, dport, 7, 0) + payload
    if proto == (58 if v6 else 1):
        return struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, sport, 1) + payload
    return payload


def ipv4_frame(src: bytes, dst: bytes, proto: int, sport: int = 0, dport: int = 0, *, payload: bytes = b"",
               ttl: int = 64, options: bytes = b"", frag: int = 0, mf: bool = False, vlan: int | None = None,
               total_len: int | None = None, good_csum: bool = True, l4: bytes | None = None) -> bytes:
    """An Ethernet + IPv4 frame; ``options`` must be a multiple of 4 bytes (at most 40)."""
    body = _l4(proto, sport, dport, False, payload) if l4 is None else l4
    ihl = 5 + len(options) // 4
    tl = 4 * ihl + len(body) if total_len is None else total_len
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tl & 0xFFFF, 7, (0x2000 if mf else 0) | frag, ttl, proto, 0,
                      src, dst) + options
    c = _csum(hdr)
    if not good_csum:
        c = (c + 1) & 0xFFFF or 1
    hdr = hdr[:10] + struct.pack("!H", c) + hdr[12:]
    eth = ROUTER_MAC + VM_MAC + (struct.pack("!HH", 0x8100, vlan) if vlan is not None else b"") + b"\x08\x00"
    return eth + hdr + body


def ipv6_frame(src: bytes, dst: bytes, nh: int, sport: int = 0, dport: int = 0, *, payload: bytes = b"",
               hlim: int = 64, ext: bytes = b"", vlan: int | None = None, l4_proto: int | None = None) -> bytes:
    """An Ethernet + IPv6 frame; with ``ext`` (extension headers), ``nh`` is the fixed header's next
    header and the L4 of ``l4_proto`` follows the extensions."""
    body = ext + _l4(l4_proto if l4_proto is not None else nh, sport, dport, True, payload)
    hdr = struct.pack("!IHBB16s16s", 0x60000000, len(body), nh, hlim, src, dst)
    eth = ROUTER_MAC + VM_MAC + (struct.pack("!HH", 0x8100, vlan) if vlan is not None else b"") + b"\x86\xdd"
    return eth + hdr + body


# ------------------------------------------------------------------------------- the oracle
_L4_LEN = {6: 20, 17: 8, 132: 12}


def expected_forward(frame: bytes) -> bool:
    """Whether the pipeline forwards ``frame`` entering a VMI port (module docstring)."""
    n = len(frame)
    if n < 14:
        return False
    off = 12
    etype = struct.unpack_from("!H", frame, off)[0]
    off = 14
    if etype == 0x8100:
        if n < 18:
            return False
        etype = struct.unpack_from("!H", frame, 16)[0]
        off = 18
    if etype == 0x0800:
        if n < off + 20:
            return False
        ihl = frame[off] & 0x0F
        if ihl < 5 or n < off + 4 * ihl:
            return False
        hdr = frame[off:off + 4 * ihl]
        if _csum(hdr[:10] + b"\0\0" + hdr[12:]) != struct.unpack_from("!H", hdr, 10)[0]:
            return False
        frag = struct.unpack_from("!H", hdr, 6)[0] & 0x1FFF
        proto, ttl = hdr[9], hdr[8]
        l4 = off + 4 * ihl
        need = 0
        if frag == 0:
            need = _L4_LEN.get(proto, 0)
            if proto == 1:
                need = 8 if n >= l4 + 4 and frame[l4] in (0, 8) else 4
        if n < l4 + need:
            return False
        return ttl > 1
    if etype == 0x86DD:
        if n < off + 40:
            return False
        nh, hlim = frame[off + 6], frame[off + 7]
        l4 = off + 40
        need = _L4_LEN.get(nh, 0)
        if nh == 58:
            need = 8 if n >= l4 + 4 and frame[l4] in (128, 129) else 4
        if n < l4 + need:
            return False
        return hlim > 1
    return False


def tag_of(frame: bytes) -> int | None:
    """The fuzz index a frame carries at its end, if it does."""
    if len(frame) >= 6 and frame[-6:-4] == TAG:
        return int.from_bytes(frame[-4:], "big")
    return None


# ------------------------------------------------------------------------------- the generator
@dataclass(frozen=True, slots=True)
class FuzzFrame:
    index: int
    kind: str
    data: bytes
    forward: bool  # the oracle's verdict


def _valid(r: random.Random, payload: bytes) -> bytes:
    """A well-formed frame of the pools: IPv4 or IPv6, TCP/UDP/SCTP/ICMP or another protocol."""
    sport, dport = r.choice(_SPORTS), r.choice(_DPORTS)
    if r.random() < 0.6:
        proto = r.choice((6, 17, 17, 132, 1, 47))
        return ipv4_frame(r.choice(_SRC4), r.choice(_DST4), proto, sport, dport, payload=payload)
    nh = r.choice((6, 17, 58, 132))
    return ipv6_frame(r.choice(_SRC6), r.choice(_DST6), nh, sport, dport, payload=payload)


def _options(r: random.Random) -> bytes:
    words = r.randint(1, 10)
    choice = r.random()
    if choice < 0.4:
        return b"\x01" * (4 * words - 1) + b"\x00"  # NOPs then EOL
    if choice < 0.7:  # record route, well formed
        length = min(39, 3 + 4 * r.randint(1, 9))
        opt = bytes([7, length, 4]) + bytes(length - 3)
        return (opt + b"\x00" * 40)[:4 * ((len(opt) + 3) // 4)]
    return r.randbytes(4 * words)  # garbage options: the pipeline does not look inside


def _kind_frame(kind: str, r: random.Random, payload: bytes) -> bytes:
    sport, dport = r.choice(_SPORTS), r.choice(_DPORTS)
    s4, d4, s6, d6 = r.choice(_SRC4), r.choice(_DST4), r.choice(_SRC6), r.choice(_DST6)
    if kind == "valid":
        return _valid(r, payload)
    if kind == "vlan":
        f = _valid(r, payload)
        return f[:12] + struct.pack("!HH", 0x8100, r.randint(0, 4095)) + f[12:]
    if kind == "ipv4_options":
        return ipv4_frame(s4, d4, r.choice((6, 17, 1)), sport, dport, payload=payload, options=_options(r))
    if kind == "ipv4_fragment":
        if r.random() < 0.5:  # first fragment
            return ipv4_frame(s4, d4, r.choice((6, 17)), sport, dport, payload=payload, mf=True)
        # a later fragment: no L4 header, even if its bytes look like one (or are too short for one)
        return ipv4_frame(s4, d4, r.choice((6, 17, 1)), payload=payload, frag=r.randint(1, 0x1FFF),
                          mf=r.random() < 0.5, l4=r.randbytes(r.randint(0, 3)) + payload)
    if kind == "ipv6_ext":
        nh = r.choice((0, 43, 44, 60, 51, 50))
        ext = bytes([17, 0]) + r.randbytes(6)
        return ipv6_frame(s6, d6, nh, sport, dport, payload=payload, ext=ext, l4_proto=17)
    if kind == "jumbo":
        return ipv4_frame(s4, d4, 17, sport, dport, payload=r.randbytes(8900) + payload) if r.random() < 0.5 else \
            ipv6_frame(s6, d6, 6, sport, dport, payload=r.randbytes(8900) + payload)
    if kind == "truncated":  # a valid frame cut anywhere inside its headers
        f = _valid(r, b"")
        return f[:r.randint(0, len(f) - 1)]
    if kind == "bad_ihl":
        f = ipv4_frame(s4, d4, 17, sport, dport, payload=payload)
        ihl = r.randint(0, 4)
        hdr = bytearray(f[14:34])
        hdr[0] = 0x40 | ihl
        hdr[10:12] = b"\0\0"
        hdr[10:12] = struct.pack("!H", _csum(bytes(hdr)))
        return f[:14] + bytes(hdr) + f[34:]
    if kind == "ihl_too_long":  # IHL promises options the frame does not have
        f = ipv4_frame(s4, d4, 17, sport, dport)
        hdr = bytearray(f[14:34])
        hdr[0] = 0x40 | r.randint(6, 15)
        hdr[10:12] = b"\0\0"
        tail = r.randbytes(r.randint(0, 7))
        hdr[10:12] = struct.pack("!H", _csum(bytes(hdr) + tail))  # even right over what is there
        return f[:14] + bytes(hdr) + tail
    if kind == "bad_total_len":  # BMv2 does not check it: forwarded
        return ipv4_frame(s4, d4, 17, sport, dport, payload=payload, total_len=r.choice((0, 19, 65535, 1)))
    if kind == "bad_checksum":
        return ipv4_frame(s4, d4, r.choice((6, 17)), sport, dport, payload=payload, good_csum=False)
    if kind == "ttl":
        return ipv4_frame(s4, d4, 17, sport, dport, payload=payload, ttl=r.randint(0, 1)) if r.random() < 0.5 else \
            ipv6_frame(s6, d6, 17, sport, dport, payload=payload, hlim=r.randint(0, 1))
    if kind == "ethertype":
        et = r.choice((0x0806, 0x88CC, 0x8847, 0x88A8, 0x0000, 0xFFFF, 0x0801, 0x86DC, r.randint(0, 0xFFFF)))
        if et in (0x0800, 0x86DD, 0x8100):
            et = 0x9000
        return ROUTER_MAC + VM_MAC + struct.pack("!H", et) + r.randbytes(r.randint(0, 80)) + payload
    if kind == "double_vlan":
        f = _valid(r, payload)
        return f[:12] + struct.pack("!HHHH", 0x8100, 1, 0x8100, 2) + f[12:]
    if kind == "runt":
        return r.randbytes(r.randint(0, 13))
    if kind == "random":
        return r.randbytes(r.randint(14, 1600)) + payload
    if kind == "bitflip":
        flipped = bytearray(_valid(r, payload))
        for _ in range(r.randint(1, 4)):
            pos = r.randrange(0, min(len(flipped) - len(payload), 78))
            flipped[pos] ^= 1 << r.randrange(8)
        return bytes(flipped)
    raise ValueError(kind)


#: kind -> weight: about a third of the frames are well formed (they make and hit flows)
KINDS: dict[str, int] = {
    "valid": 14, "vlan": 4, "ipv4_options": 5, "ipv4_fragment": 5, "ipv6_ext": 4, "jumbo": 1,
    "truncated": 10, "bad_ihl": 5, "ihl_too_long": 5, "bad_total_len": 3, "bad_checksum": 5, "ttl": 4,
    "ethertype": 6, "double_vlan": 3, "runt": 4, "random": 8, "bitflip": 10,
}


def fuzz_frames(count: int, seed: int, *, start: int = 0) -> Iterator[FuzzFrame]:
    """``count`` frames, deterministic for a seed; frame ``i`` ends with the tag ``FZ`` + i (runts
    and truncated frames lose it)."""
    r = random.Random(seed)
    kinds, weights = list(KINDS), list(KINDS.values())
    for i in range(start, start + count):
        kind = r.choices(kinds, weights)[0]
        payload = TAG + i.to_bytes(4, "big")
        data = _kind_frame(kind, r, payload)
        yield FuzzFrame(i, kind, data, expected_forward(data))

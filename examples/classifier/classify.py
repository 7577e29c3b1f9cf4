"""Classify the first packets of a flow: DNS, TLS or SSH, by port and payload (pure, no I/O).

The analyzer port receives each mirrored packet *as it arrived* at the switch (an I2E clone:
Ethernet, optional 802.1Q tag, IPv4 or IPv6, TCP or UDP). :func:`parse_frame` takes such a frame
apart; :func:`classify` decides:

- **dns**: UDP (or TCP, with its 2-byte length prefix) to or from port 53 whose payload is a DNS
  message: a 12-byte header with opcode 0-2 (query, inverse, status), at least one question, and
  the first question's name well formed (labels of 1-63 bytes, or a compression pointer);
- **tls**: TCP whose payload starts a TLS record of type handshake (0x16) and version 3.x
  (0x03 0x00-0x04) holding a ClientHello (handshake type 1), on any port; the server name
  (SNI) is extracted when present;
- **ssh**: TCP whose payload starts with the identification string ``SSH-`` (RFC 4253 4.2), on
  any port.

A packet without payload (a TCP SYN, a bare ACK) says nothing yet: :func:`classify` returns None
and the application waits for the flow's next mirrored packet (the flow stays mirrored until the
application offloads it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address

__all__ = ["FlowClass", "Parsed", "Classification", "parse_frame", "classify", "DNS_PORT"]

DNS_PORT = 53
_ETH_IPV4, _ETH_IPV6, _ETH_VLAN, _ETH_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
_TCP, _UDP = 6, 17
# IPv6 extension headers walked to reach TCP/UDP: hop-by-hop, routing, destination options
_IPV6_EXT = {0, 43, 60}


class FlowClass(StrEnum):
    DNS = "dns"
    TLS = "tls"
    SSH = "ssh"
    OTHER = "other"  # given up on: no known payload after the application's limit

    @property
    def tag(self) -> bytes:
        """The flow's ``info`` tag (at most 16 bytes)."""
        return self.value.encode()


@dataclass(frozen=True, slots=True)
class Parsed:
    """The parts of a mirrored frame the classifier looks at."""

    src_mac: bytes
    dst_mac: bytes
    src: IPv4Address | IPv6Address
    dst: IPv4Address | IPv6Address
    protocol: int
    sport: int
    dport: int
    tcp_flags: int  # 0 for UDP
    payload: bytes

    @property
    def five_tuple(self) -> tuple[str, str, int, int, int]:
        return (str(self.src), str(self.dst), self.protocol, self.sport, self.dport)

    def conversation(self) -> tuple[tuple[str, int], tuple[str, int], int]:
        """Both directions of a 5-tuple give the same value (for per-flow state)."""
        a, b = (str(self.src), self.sport), (str(self.dst), self.dport)
        return (min(a, b), max(a, b), self.protocol)


@dataclass(frozen=True, slots=True)
class Classification:
    cls: FlowClass
    detail: str = ""  # e.g. the DNS question or the TLS server name, for the log


def parse_frame(frame: bytes) -> Parsed | None:
    """Ethernet [802.1Q] IPv4/IPv6 TCP/UDP, or None for anything else (ARP, ICMP, fragments)."""
    if len(frame) < 14:
        return None
    dst_mac, src_mac = frame[0:6], frame[6:12]
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    off = 14
    while ethertype in (_ETH_VLAN, _ETH_QINQ):
        if len(frame) < off + 4:
            return None
        (ethertype,) = struct.unpack_from("!H", frame, off + 2)
        off += 4
    src: IPv4Address | IPv6Address
    dst: IPv4Address | IPv6Address
    if ethertype == _ETH_IPV4:
        if len(frame) < off + 20:
            return None
        ihl = (frame[off] & 0x0F) * 4
        total = struct.unpack_from("!H", frame, off + 2)[0]
        frag = struct.unpack_from("!H", frame, off + 6)[0]
        if ihl < 20 or frag & 0x3FFF:  # a fragment: no L4 header to trust
            return None
        proto = frame[off + 9]
        src, dst = IPv4Address(frame[off + 12:off + 16]), IPv4Address(frame[off + 16:off + 20])
        end = min(len(frame), off + total) if total >= ihl else len(frame)
        off += ihl
    elif ethertype == _ETH_IPV6:
        if len(frame) < off + 40:
            return None
        plen = struct.unpack_from("!H", frame, off + 4)[0]
        proto = frame[off + 6]
        src, dst = IPv6Address(frame[off + 8:off + 24]), IPv6Address(frame[off + 24:off + 40])
        end = min(len(frame), off + 40 + plen)
        off += 40
        while proto in _IPV6_EXT and off + 2 <= end:
            proto, off = frame[off], off + (frame[off + 1] + 1) * 8
    else:
        return None
    if proto == _UDP:
        if end < off + 8:
            return None
        sport, dport = struct.unpack_from("!HH", frame, off)
        return Parsed(src_mac, dst_mac, src, dst, proto, sport, dport, 0, frame[off + 8:end])
    if proto == _TCP:
        if end < off + 20:
            return None
        sport, dport = struct.unpack_from("!HH", frame, off)
        data_off = (frame[off + 12] >> 4) * 4
        if data_off < 20:
            return None
        return Parsed(src_mac, dst_mac, src, dst, proto, sport, dport, frame[off + 13], frame[off + data_off:end])
    return None


def _dns_name(msg: bytes, off: int) -> tuple[str, int] | None:
    labels: list[str] = []
    while off < len(msg):
        n = msg[off]
        if n == 0:
            return ".".join(labels) + ".", off + 1
        if n & 0xC0 == 0xC0:  # compression pointer: fine in a question, the name ends here
            return ".".join(labels) + ".*", off + 2
        if n > 63 or off + 1 + n > len(msg):
            return None
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
        if len(labels) > 127:
            return None
    return None


def dns_question(msg: bytes) -> str | None:
    """The first question's name and type if ``msg`` is a plausible DNS message, else None."""
    if len(msg) < 12 + 5:
        return None
    _id, flags, qdcount, _an, _ns, _ar = struct.unpack_from("!HHHHHH", msg, 0)
    if (flags >> 11) & 0x0F > 2 or not 1 <= qdcount <= 16:
        return None
    got = _dns_name(msg, 12)
    if got is None:
        return None
    name, off = got
    if off + 4 > len(msg):
        return None
    qtype = struct.unpack_from("!H", msg, off)[0]
    qtypes = {1: "A", 28: "AAAA", 5: "CNAME", 15: "MX", 16: "TXT", 2: "NS", 12: "PTR", 33: "SRV", 65: "HTTPS"}
    return f"{name} {qtypes.get(qtype, qtype)}"


def tls_server_name(payload: bytes) -> str | None:
    """'' or the SNI if ``payload`` starts a TLS handshake record with a ClientHello, else None."""
    if len(payload) < 6 or payload[0] != 0x16 or payload[1] != 0x03 or payload[2] > 0x04 or payload[5] != 0x01:
        return None
    try:
        body = payload[9:5 + struct.unpack_from("!H", payload, 3)[0]]
        off = 2 + 32  # client_version, random
        off += 1 + body[off]  # session id
        off += 2 + struct.unpack_from("!H", body, off)[0]  # cipher suites
        off += 1 + body[off]  # compression methods
        end = off + 2 + struct.unpack_from("!H", body, off)[0]
        off += 2
        while off + 4 <= min(end, len(body)):
            etype, elen = struct.unpack_from("!HH", body, off)
            if etype == 0:  # server_name: list length, type 0 host_name, name length, name
                nlen = struct.unpack_from("!H", body, off + 7)[0]
                return body[off + 9:off + 9 + nlen].decode("ascii", "replace")
            off += 4 + elen
    except (IndexError, struct.error):
        pass  # a ClientHello split over segments: the record header is enough
    return ""


def classify(p: Parsed) -> Classification | None:
    """The flow's class from this packet, or None when the packet does not tell (no payload yet,
    or an unknown payload: the caller decides when to give up)."""
    payload = p.payload
    if not payload:
        return None
    if DNS_PORT in (p.sport, p.dport):
        msg = payload[2:] if p.protocol == _TCP else payload
        q = dns_question(msg)
        if q is not None:
            return Classification(FlowClass.DNS, q)
    if p.protocol == _TCP:
        if payload.startswith(b"SSH-"):
            banner = payload.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
            return Classification(FlowClass.SSH, banner[:64].decode("ascii", "replace"))
        sni = tls_server_name(payload)
        if sni is not None:
            return Classification(FlowClass.TLS, f"ClientHello sni={sni or '-'}")
    return None

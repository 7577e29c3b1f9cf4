"""Payloads of the first packets of DNS, TLS and SSH conversations, as real clients send them
(for the demo's traffic and the tests; built by hand, no TLS or DNS library needed)."""

from __future__ import annotations

import os
import struct

__all__ = ["dns_query", "tls_client_hello", "ssh_banner"]


def dns_query(name: str, qtype: int = 1, ident: int = 0x1234) -> bytes:
    """A recursive query for ``name`` (type A by default)."""
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)


def tls_client_hello(server_name: str) -> bytes:
    """A TLS 1.2-framed ClientHello (as TLS 1.3 clients send it) with the server_name extension."""
    host = server_name.encode()
    sni = struct.pack("!HBH", len(host) + 3, 0, len(host)) + host
    exts = struct.pack("!HH", 0, len(sni)) + sni
    exts += struct.pack("!HHBH", 43, 3, 2, 0x0304)  # supported_versions: a 2-byte list, TLS 1.3
    ciphers = struct.pack("!HHHH", 6, 0x1301, 0x1302, 0x1303)
    body = struct.pack("!H", 0x0303) + os.urandom(32) + b"\x20" + os.urandom(32) + ciphers + b"\x01\x00"
    body += struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def ssh_banner(software: str = "OpenSSH_9.6") -> bytes:
    return f"SSH-2.0-{software}\r\n".encode()

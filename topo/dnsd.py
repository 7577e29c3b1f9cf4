"""A tiny DNS responder for labs: answers every A query with one address (and every other query
with an empty answer), so ``dig`` in a VM has something real to talk to across the switch.

    python -m topo.dnsd LISTEN_ADDRESS [--port 53] [--answer 192.0.2.53]
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
from collections.abc import Sequence
from ipaddress import IPv4Address

__all__ = ["answer", "main"]


def answer(query: bytes, addr: IPv4Address) -> bytes | None:
    """The response to one query message (None if it is not a well-formed single-question query)."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack_from("!HHH", query)
    if flags & 0x8000 or qdcount != 1:
        return None
    i = 12
    while i < len(query) and query[i] != 0:
        i += 1 + query[i]
    end = i + 5  # zero label, qtype, qclass
    if end > len(query):
        return None
    question = query[12:end]
    qtype, qclass = struct.unpack_from("!HH", query, i + 1)
    rd = flags & 0x0100
    records = b""
    if qtype == 1 and qclass == 1:
        records = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + addr.packed
    header = struct.pack("!HHHHHH", ident, 0x8080 | rd, 1, 1 if records else 0, 0, 0)
    return header + question + records


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m topo.dnsd", description=__doc__.split("\n\n")[0])
    ap.add_argument("listen", help="address to listen on (IPv4)")
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--answer", default="192.0.2.53", help="the address every A query gets")
    args = ap.parse_args(argv)
    addr = IPv4Address(args.answer)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((args.listen, args.port))
        print(f"dnsd: {args.listen}:{args.port}, every A query -> {addr}", flush=True)
        while True:
            data, peer = s.recvfrom(4096)
            reply = answer(data, addr)
            if reply is not None:
                s.sendto(reply, peer)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)

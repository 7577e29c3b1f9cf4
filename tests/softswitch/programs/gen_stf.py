"""Regenerate the .stf files of this corpus: ``python gen_stf.py``.

Expected packets are built with scapy (IPv4 checksums by scapy) and hash-dependent
choices are computed here with independent reference implementations (zlib's CRC-32
and a bit-by-bit CRC-16/ARC), never with softswitch's own code.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

HERE = Path(__file__).parent


def hx(pkt: object) -> str:
    return bytes(pkt).hex()  # type: ignore[call-overload]


def crc16_ref(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def ip2i(a: str) -> int:
    return int.from_bytes(bytes(int(x) for x in a.split(".")), "big")


def write(name: str, lines: list[str]) -> None:
    (HERE / f"{name}.stf").write_text("\n".join(lines) + "\n")


def l3_forward() -> None:
    eth = Ether(dst="00:00:00:00:01:00", src="00:00:00:00:00:aa")
    good = eth / IP(src="10.0.0.1", dst="10.0.1.5", ttl=64) / TCP(sport=1234, dport=80)
    out = Ether(dst="00:00:00:00:02:02", src="00:00:00:00:01:00") / \
        IP(src="10.0.0.1", dst="10.0.1.5", ttl=63) / TCP(sport=1234, dport=80)
    host = eth / IP(src="10.0.0.1", dst="10.0.1.1", ttl=10) / UDP(sport=1, dport=2)
    host_out = Ether(dst="00:00:00:00:03:03", src="00:00:00:00:01:00") / \
        IP(src="10.0.0.1", dst="10.0.1.1", ttl=9) / UDP(sport=1, dport=2)
    bad = bytearray(bytes(good))
    bad[14 + 10] ^= 0xFF  # corrupt the IPv4 checksum: dropped
    ttl1 = eth / IP(src="10.0.0.1", dst="10.0.1.5", ttl=1) / TCP()
    miss = eth / IP(src="10.0.0.1", dst="192.168.0.1", ttl=64) / TCP()
    write("l3_forward", [
        "# routes: a /24 and a more specific /32 (longest prefix wins)",
        "add MyIngress.ipv4_lpm hdr.ipv4.dstAddr:0x0a000100/24 MyIngress.ipv4_forward(dstAddr:0x000000000202, port:2)",
        "add MyIngress.ipv4_lpm hdr.ipv4.dstAddr:0x0a000101/32 MyIngress.ipv4_forward(dstAddr:0x000000000303, port:3)",
        f"packet 1 {hx(good)}",
        f"expect 2 {hx(out)}$",
        f"packet 1 {hx(host)}",
        f"expect 3 {hx(host_out)}$",
        "# bad checksum, TTL 1 and a route miss are all dropped",
        f"packet 1 {bytes(bad).hex()}",
        f"packet 1 {hx(ttl1)}",
        f"packet 1 {hx(miss)}",
    ])


def tunnel() -> None:
    eth = Ether(dst="00:00:00:00:01:00", src="00:00:00:00:00:aa", type=0x0800)
    ip = IP(src="10.0.0.1", dst="10.0.2.2", ttl=64) / UDP(sport=5, dport=6)
    plain = eth / ip
    tun_hdr = struct.pack("!HH", 0x0800, 7)
    encap = bytes(Ether(dst="00:00:00:00:01:00", src="00:00:00:00:00:aa", type=0x1212)) + tun_hdr + bytes(ip)
    transit = bytes(Ether(dst="00:00:00:00:01:00", src="00:00:00:00:00:aa", type=0x1212)) + \
        struct.pack("!HH", 0x0800, 9) + bytes(ip)
    write("tunnel", [
        "add MyIngress.ipv4_encap hdr.ipv4.dstAddr:0x0a000202 MyIngress.encap(dst_id:7, port:2)",
        "add MyIngress.tunnel_exact hdr.tunnel.dst_id:9 MyIngress.tunnel_forward(port:3)",
        "add MyIngress.tunnel_exact hdr.tunnel.dst_id:7 MyIngress.decap(port:4)",
        "# encapsulation",
        f"packet 1 {hx(plain)}",
        f"expect 2 {encap.hex()}$",
        "# transit: forwarded unchanged",
        f"packet 2 {transit.hex()}",
        f"expect 3 {transit.hex()}$",
        "# decapsulation at the last hop",
        f"packet 2 {encap.hex()}",
        f"expect 4 {hx(plain)}$",
        "# unknown tunnel id: default drop",
        f"packet 2 {(bytes(encap[:14]) + struct.pack('!HH', 0x0800, 99) + bytes(ip)).hex()}",
    ])


def firewall() -> None:
    inside = Ether(dst="00:00:00:00:00:02", src="00:00:00:00:00:01") / \
        IP(src="10.0.0.1", dst="8.8.8.8") / TCP(sport=40000, dport=443)
    reply = Ether(dst="00:00:00:00:00:01", src="00:00:00:00:00:02") / \
        IP(src="8.8.8.8", dst="10.0.0.1") / TCP(sport=443, dport=40000)
    other = Ether(dst="00:00:00:00:00:01", src="00:00:00:00:00:02") / \
        IP(src="8.8.4.4", dst="10.0.0.1") / TCP(sport=443, dport=40000)
    key = struct.pack("!IIHHB", ip2i("10.0.0.1"), ip2i("8.8.8.8"), 40000, 443, 6)
    p1, p2 = crc16_ref(key) % 4096, zlib.crc32(key) % 4096
    write("firewall", [
        "# a reply before the inside opened the flow is dropped",
        f"packet 2 {hx(reply)}",
        f"packet 1 {hx(inside)}",
        f"expect 2 {hx(inside)}$",
        f"# the bloom filter bits: crc16 -> {p1}, crc32 -> {p2}",
        f"check_register MyIngress.bloom1 {p1} == 1",
        f"check_register MyIngress.bloom2 {p2} == 1",
        f"packet 2 {hx(reply)}",
        f"expect 1 {hx(reply)}$",
        "# another outside host is still blocked",
        f"packet 2 {hx(other)}",
    ])


def ecmp() -> None:
    def flow(sport: int) -> tuple[Ether, int]:
        p = Ether(dst="00:00:00:00:01:00", src="00:00:00:00:00:aa") / \
            IP(src="10.0.0.1", dst="10.0.3.3") / TCP(sport=sport, dport=80)
        key = struct.pack("!IIBHH", ip2i("10.0.0.1"), ip2i("10.0.3.3"), 6, sport, 80)
        return p, crc16_ref(key) % 2

    lines = [
        "add MyIngress.ecmp_group hdr.ipv4.dstAddr:0x0a000300/24 MyIngress.set_ecmp_select(base:0, count:2)",
        "add MyIngress.ecmp_nhop meta.ecmp_select:0 MyIngress.set_nhop(nhop_dmac:0x000000000a0a, port:2)",
        "add MyIngress.ecmp_nhop meta.ecmp_select:1 MyIngress.set_nhop(nhop_dmac:0x000000000b0b, port:3)",
    ]
    seen = {0: 0, 1: 0}
    nbytes = {0: 0, 1: 0}
    sport = 1000
    while min(seen.values()) < 2:
        p, sel = flow(sport)
        sport += 1
        if seen[sel] >= 2:
            continue
        seen[sel] += 1
        nbytes[sel] += len(bytes(p))
        out = p.copy()
        out[Ether].dst = "00:00:00:00:0a:0a" if sel == 0 else "00:00:00:00:0b:0b"
        lines += [f"# sport {sport - 1}: crc16 % 2 = {sel}", f"packet 1 {hx(p)}",
                  f"expect {2 + sel} {hx(out)}$"]
    lines += [
        "check_counter MyIngress.port_counter(2) packets == 2",
        "check_counter MyIngress.port_counter(3) packets == 2",
        f"check_counter MyIngress.port_counter(2) bytes == {nbytes[0]}",
        f"check_counter MyIngress.port_counter(3) bytes == {nbytes[1]}",
    ]
    write("ecmp", lines)


def source_routing() -> None:
    eth = bytes(Ether(dst="00:00:00:00:00:02", src="00:00:00:00:00:01", type=0x1234))
    payload = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2))
    hops = [(0, 2), (0, 3), (1, 4)]

    def stack(hs: list[tuple[int, int]]) -> bytes:
        return b"".join(struct.pack("!H", (bos << 15) | port) for bos, port in hs)

    lines = []
    for i in range(len(hops)):
        rest = hops[i:]
        pkt = eth + stack(rest) + payload
        out_rest = rest[1:]
        out_eth = eth if out_rest else eth[:12] + b"\x08\x00"
        lines += [f"packet 1 {pkt.hex()}", f"expect {rest[0][1]} {(out_eth + stack(out_rest) + payload).hex()}$"]
    plain = eth[:12] + bytes([8, 0]) + payload
    lines += ["# not source routed: dropped", f"packet 1 {plain.hex()}"]
    write("source_routing", lines)


def calc() -> None:
    eth = bytes(Ether(dst="00:00:00:00:00:02", src="00:00:00:00:00:01", type=0x1234))
    back = bytes(Ether(dst="00:00:00:00:00:01", src="00:00:00:00:00:02", type=0x1234))
    lines = []
    for op, a, b, res in [("+", 7, 5, 12), ("-", 5, 7, (5 - 7) & 0xFFFFFFFF), ("&", 0xF0, 0x3C, 0x30),
                          ("|", 0xF0, 0x0F, 0xFF), ("^", 0xFF, 0x0F, 0xF0)]:
        req = eth + struct.pack("!BBBBIII", 0x50, 0x34, 1, ord(op), a, b, 0)
        rsp = back + struct.pack("!BBBBIII", 0x50, 0x34, 1, ord(op), a, b, res)
        lines += [f"# {a} {op} {b}", f"packet 3 {req.hex()}", f"expect 3 {rsp.hex()}$"]
    lines += ["# unknown op and a wrong version are dropped",
              f"packet 3 {(eth + struct.pack('!BBBBIII', 0x50, 0x34, 1, ord('*'), 1, 2, 0)).hex()}",
              f"packet 3 {(eth + struct.pack('!BBBBIII', 0x50, 0x34, 2, ord('+'), 1, 2, 0)).hex()}"]
    write("calc", lines)


def mcast_clone() -> None:
    bcast = Ether(dst="ff:ff:ff:ff:ff:ff", src="00:00:00:00:00:01", type=0x0800) / (b"\x11" * 20)
    uni = Ether(dst="00:00:00:00:00:09", src="00:00:00:00:00:01", type=0x0800) / (b"\x22" * 20)
    to4 = Ether(dst="00:00:00:00:00:04", src="00:00:00:00:00:01", type=0x0800) / (b"\x33" * 20)

    def with_src(p: Ether, mac: int) -> str:
        q = bytearray(bytes(p))
        q[6:12] = mac.to_bytes(6, "big")
        return q.hex()

    clone_out = bytearray(bytes(uni))
    clone_out[0:6] = (0).to_bytes(6, "big")  # not_preserved reads 0 in the clone
    clone_out[6:12] = (0xAB).to_bytes(6, "big")  # the preserved tag
    e2e = bytearray(bytes(to4))
    e2e[12:14] = b"\xe2\xe0"
    write("mcast_clone", [
        "mc_mgrp_create 1",
        "mc_node_create 10 1 2",
        "mc_node_create 20 3",
        "mc_node_associate 1 0",
        "mc_node_associate 1 1",
        "mirroring_add 5 7",
        "mirroring_add 6 8",
        "# broadcast: one replica per (rid, port), egress_rid in the source MAC",
        f"packet 0 {hx(bcast)}",
        f"expect 1 {with_src(bcast, 10)}$",
        f"expect 2 {with_src(bcast, 10)}$",
        f"expect 3 {with_src(bcast, 20)}$",
        "# unicast with an I2E clone to session 5 (port 7)",
        f"packet 0 {hx(uni)}",
        f"expect 2 {hx(uni)}$",
        f"expect 7 {clone_out.hex()}$",
        "# to port 4: an E2E clone to session 6 (port 8)",
        f"packet 0 {hx(to4)}",
        f"expect 4 {hx(to4)}$",
        f"expect 8 {e2e.hex()}$",
    ])


def digest() -> None:
    a = Ether(dst="00:00:00:00:00:02", src="00:00:00:00:0a:0a", type=0x0800) / (b"\x00" * 10)
    b = Ether(dst="00:00:00:00:00:02", src="00:00:00:00:0b:0b", type=0x0800) / (b"\x00" * 10)
    write("digest", [
        f"packet 3 {hx(a)}",
        f"expect 1 {hx(a)}$",
        "expect_digest learn_t 0x000000000a0a 3",
        "add MyIngress.smac hdr.ethernet.srcAddr:0x000000000a0a MyIngress.known()",
        "# known now: no digest",
        f"packet 3 {hx(a)}",
        f"expect 1 {hx(a)}$",
        f"packet 5 {hx(b)}",
        f"expect 1 {hx(b)}$",
        "expect_digest learn_t 0x000000000b0b 5",
    ])


def parser_error() -> None:
    good = bytes(Ether(dst="00:00:00:00:00:02", src="00:00:00:00:00:01") / IP(src="1.1.1.1", dst="2.2.2.2"))
    short = good[:14 + 10]  # IPv4 header cut after 10 bytes
    short_out = b"\xee" * 6 + short[6:]
    bad_type = bytes(Ether(dst="00:00:00:00:00:02", src="00:00:00:00:00:01", type=0xDEAD)) + b"\x01\x02"
    write("parser_error", [
        f"packet 0 {good.hex()}",
        f"expect 1 {good.hex()}$",
        "# PacketTooShort: ingress still runs; the unparsed bytes stay as payload",
        f"packet 0 {short.hex()}",
        f"expect 3 {short_out.hex()}$",
        "# verify() failure with a program-defined error",
        f"packet 0 {bad_type.hex()}",
        f"expect 2 {bad_type.hex()}$",
    ])


def acl() -> None:
    def pkt(dst: str, proto: int, dport: int) -> str:
        l4 = TCP(sport=1, dport=dport) if proto == 6 else UDP(sport=1, dport=dport)
        return hx(Ether(dst="00:00:00:00:00:02", src="00:00:00:00:00:01") / IP(src="10.0.0.1", dst=dst) / l4)

    web = pkt("10.1.2.3", 6, 443)
    dns = pkt("10.1.2.3", 17, 53)
    other = pkt("10.9.9.9", 6, 22)
    write("acl", [
        "# STF priorities as in BMv2's CLI: the LOWER number wins",
        "add MyIngress.acl 10 hdr.ipv4.dstAddr:0x0a010000&&&0xffff0000 hdr.ipv4.protocol:0x06&&&0xff "
        "hdr.l4.dstPort:400..500 MyIngress.to_port(port:2)",
        "add MyIngress.acl 20 hdr.ipv4.dstAddr:0x0a000000&&&0xff000000 hdr.ipv4.protocol:0&&&0 "
        "hdr.l4.dstPort:0..65535 MyIngress.to_port(port:3)",
        "add MyIngress.acl 5 hdr.ipv4.dstAddr:0x0a010203&&&0xffffffff hdr.ipv4.protocol:0x11&&&0xff "
        "hdr.l4.dstPort:53..53 MyIngress.to_port(port:4)",
        f"packet 1 {web}",
        f"expect 2 {web}$",
        f"packet 1 {dns}",
        f"expect 4 {dns}$",
        f"packet 1 {other}",
        f"expect 3 {other}$",
        "# outside 10/8 with the default changed from drop to port 5",
        "setdefault MyIngress.acl MyIngress.to_port(port:5)",
        f"packet 1 {pkt('192.168.1.1', 6, 80)}",
        f"expect 5 {pkt('192.168.1.1', 6, 80)}$",
    ])


def varbit_copy() -> None:
    from scapy.layers.inet import IPOption_RR

    def pkt(last: int, nrr: int) -> str:
        # record-route options: 3 + 4 * nrr bytes, padded by scapy to whole words
        rr = IPOption_RR(routers=[f"192.0.2.{i + 1}" for i in range(nrr)])
        return hx(Ether(dst="00:00:00:00:01:00", src="00:00:00:00:00:aa") /
                  IP(src="10.0.0.9", dst=f"10.0.0.{last}", options=[rr]) / UDP(sport=7, dport=9) / b"payload!")

    lines = [
        "mirroring_add 5 7",
        "mirroring_add 6 8",
        "mc_mgrp_create 1",
        "mc_node_create 10 1 2",
        "mc_node_create 20 3",
        "mc_node_associate 1 0",
        "mc_node_associate 1 1",
        "mc_mgrp_create 2",
        "mc_node_create 30 5",
        "mc_node_associate 2 2",
    ]
    for nrr in (1, 9):  # 8 and 40 bytes of options (40 = the varbit's maximum)
        lines += [
            f"# options with {nrr} record-route slot(s): the I2E clone keeps them",
            f"packet 0 {pkt(1, nrr)}", f"expect 2 {pkt(1, nrr)}$", f"expect 7 {pkt(1, nrr)}$",
            "# E2E clone",
            f"packet 0 {pkt(2, nrr)}", f"expect 4 {pkt(2, nrr)}$", f"expect 8 {pkt(2, nrr)}$",
            "# multicast replicas",
            f"packet 0 {pkt(3, nrr)}", f"expect 1 {pkt(3, nrr)}$", f"expect 2 {pkt(3, nrr)}$",
            f"expect 3 {pkt(3, nrr)}$",
            "# resubmitted, then cloned I2E",
            f"packet 0 {pkt(4, nrr)}", f"expect 2 {pkt(4, nrr)}$", f"expect 7 {pkt(4, nrr)}$",
            "# a multicast replica recirculated",
            f"packet 0 {pkt(5, nrr)}", f"expect 6 {pkt(5, nrr)}$",
            "# struct assignment, header assignment, varbit field assignment",
            f"packet 0 {pkt(6, nrr)}", f"expect 2 {pkt(6, nrr)}$",
            f"packet 0 {pkt(7, nrr)}", f"expect 2 {pkt(7, nrr)}$",
            f"packet 0 {pkt(8, nrr)}", f"expect 2 {pkt(8, nrr)}$",
        ]
    write("varbit_copy", lines)


if __name__ == "__main__":
    for fn in (acl, l3_forward, tunnel, firewall, ecmp, source_routing, calc, mcast_clone, digest, parser_error,
               varbit_copy):
        fn()

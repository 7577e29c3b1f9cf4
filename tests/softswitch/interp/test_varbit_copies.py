"""Varbit lengths at scale (issue 7): the length of a varbit field lives in its header
(``Header.vlen``), so copies keep it and nothing outlives a packet. The old side table
keyed by object id grew to 4096 entries and, when it was cleared in the middle of a
packet with two varbit headers, emitted the first one without its bits."""

from __future__ import annotations

import gc
import struct

from softswitch.device import CloneSession, Device, Replica
from softswitch.interp.values import Header

PROG = r"""
#include <core.p4>
#include <v1model.p4>
header eth_t { bit<48> dst; bit<48> src; bit<16> type; }
header ipv4_t { bit<4> version; bit<4> ihl; bit<64> mid; bit<32> src; bit<32> dst; }
header opts_t { varbit<320> data; }
header tcp_t { bit<64> ports_seq; bit<32> ack; bit<4> dataOffset; bit<12> flags; bit<48> rest; }
struct meta_t { }
struct headers_t { eth_t eth; ipv4_t ipv4; opts_t ip_opts; tcp_t tcp; opts_t tcp_opts; opts_t saved; }

parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.eth); pkt.extract(hdr.ipv4);
                  pkt.extract(hdr.ip_opts, ((bit<32>)hdr.ipv4.ihl - 5) * 32); transition tcp; }
    state tcp { pkt.extract(hdr.tcp);
                pkt.extract(hdr.tcp_opts, ((bit<32>)hdr.tcp.dataOffset - 5) * 32); transition accept; }
}
control VC(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        sm.egress_spec = 2;
        clone(CloneType.I2E, 5);
        hdr.saved = hdr.tcp_opts;     // a header copy, emitted in place of the original
        hdr.tcp_opts.setInvalid();
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control CC(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.eth); pkt.emit(hdr.ipv4); pkt.emit(hdr.ip_opts); pkt.emit(hdr.tcp);
            pkt.emit(hdr.tcp_opts); pkt.emit(hdr.saved); }
}
V1Switch(P(), VC(), I(), E(), CC(), D()) main;
"""


def frame(i: int) -> bytes:
    ip_words, tcp_words = i % 11, (i // 11) % 11  # 0..10 words of options each
    ip_opts = bytes((i + k) & 0xFF for k in range(4 * ip_words))
    tcp_opts = bytes((3 * i + k) & 0xFF for k in range(4 * tcp_words))
    eth = b"\x00\x00\x00\x00\x00\x02" + struct.pack("!IH", i, 1) + b"\x08\x00"
    ipv4 = bytes([0x40 | (5 + ip_words)]) + bytes(8) + struct.pack("!II", 0x0A000000 + i, 0x0A000001)
    tcp = struct.pack("!QI", i, 0) + bytes([(5 + tcp_words) << 4, 0x10]) + bytes(6)
    return eth + ipv4 + ip_opts + tcp + tcp_opts + b"payload" + bytes([i & 0xFF])


def live_headers() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Header)


def test_many_packets_keep_every_varbit_and_retain_no_headers() -> None:
    dev = Device()
    dev.commit(Device.compile(PROG))
    dev.clone_sessions[5] = CloneSession([Replica(3, 0)])
    out: list[tuple[int, bytes]] = []
    dev.on_transmit = lambda port, f: out.append((port, f))

    def run(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            f = frame(i)
            out.clear()
            dev.receive(1, f)
            # the original (options copied through hdr.saved) and the I2E clone
            assert sorted(out) == [(2, f), (3, f)], f"packet {i}"

    run(0, 500)
    before = live_headers()
    run(500, 6000)  # more varbit extracts than the old table's 4096 entries
    assert live_headers() <= before
    assert dev.counters["error"] == 0

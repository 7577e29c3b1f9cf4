"""v1model externs through a real program: hash algorithms (BMv2 parameters, base +
h % max), counters (bytes = ingress length), registers (width truncation, out of
range), meters, random, log_msg, update_checksum_with_payload."""

from __future__ import annotations

import logging
import struct
import zlib

import pytest
from v1harness import Harness, eth

from softswitch.arch.externs import RED, MeterConfig

PROG = r"""
header res_t {
    bit<16> h_csum; bit<16> h_xor; bit<32> h_id; bit<32> h_crc32; bit<16> h_crc16;
    bit<8> rnd; bit<16> reg_oob; bit<16> reg_1; bit<8> color; bit<16> pl_csum;
}
struct meta_t { }
struct headers_t { eth_t eth; res_t res; }

parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.eth); transition accept; }
}
control VC(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    counter(4, CounterType.packets_and_bytes) pkts;
    register<bit<16>>(2) regs;
    meter(2, MeterType.packets) m;
    apply {
        hdr.res.setValid();
        hash(hdr.res.h_csum, HashAlgorithm.csum16, 16w0, { hdr.eth.src }, 32w65536);
        hash(hdr.res.h_xor, HashAlgorithm.xor16, 16w0, { hdr.eth.dst }, 32w65536);
        hash(hdr.res.h_id, HashAlgorithm.identity, 32w0, { hdr.eth.type, 16w0xbeef }, 64w0x100000000);
        hash(hdr.res.h_crc32, HashAlgorithm.crc32, 32w100, { hdr.eth.src }, 32w1000);
        hash(hdr.res.h_crc16, HashAlgorithm.crc16, 16w0, { hdr.eth.dst, 4w0xa, 4w0x5 }, 32w65536);
        random(hdr.res.rnd, 8w10, 8w12);
        regs.write(1, 16w0xffff);
        regs.write(7, 16w0x1234);
        regs.read(hdr.res.reg_oob, 7);
        regs.read(hdr.res.reg_1, 1);
        pkts.count(0);
        m.execute_meter(32w0, hdr.res.color);
        log_msg("port {} type {}", { sm.ingress_port, hdr.eth.type });
        sm.egress_spec = 1;
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control CC(inout headers_t hdr, inout meta_t meta) {
    apply {
        update_checksum_with_payload(true, { hdr.eth.type }, hdr.res.pl_csum, HashAlgorithm.csum16);
    }
}
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.res); } }
V1Switch(P(), VC(), I(), E(), CC(), D()) main;
"""

FMT = "!HHIIHBHHBH"
NAMES = ["h_csum", "h_xor", "h_id", "h_crc32", "h_crc16", "rnd", "reg_oob", "reg_1", "color", "pl_csum"]


def inet_csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def crc16_arc(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def run(h: Harness, frame: bytes) -> dict[str, int]:
    [(port, out)] = h.send(2, frame)
    assert port == 1
    vals = struct.unpack(FMT, out[14:14 + struct.calcsize(FMT)])
    return dict(zip(NAMES, vals, strict=True))


def test_externs(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(PROG)
    dst, src = 0x0102030405FF, 0xA0B0C0D0E0F1
    payload = b"hello"
    frame = eth(dst, src, 0x0800, payload)
    with caplog.at_level(logging.INFO, logger="softswitch.p4"):
        r = run(h, frame)
    assert r["h_csum"] == inet_csum(src.to_bytes(6, "big"))
    assert r["h_xor"] == 0x0102 ^ 0x0304 ^ 0x05FF
    assert r["h_id"] == 0x0800BEEF
    assert r["h_crc32"] == 100 + zlib.crc32(src.to_bytes(6, "big")) % 1000
    # 4-bit fields are packed into one byte (BMv2 serialises bit by bit)
    assert r["h_crc16"] == crc16_arc(dst.to_bytes(6, "big") + b"\xa5")
    assert 10 <= r["rnd"] <= 12
    assert r["reg_oob"] == 0  # out of range: nothing read (the out argument stays 0)
    assert r["reg_1"] == 0xFFFF
    assert r["color"] == 0  # unconfigured meter: GREEN
    # the payload is what follows the deparsed headers: the frame's unparsed bytes
    assert r["pl_csum"] == inet_csum(b"\x08\x00" + payload)
    assert "port 2 type 2048" in caplog.text

    regs = h.instance("I.regs")
    assert regs.values == [0, 0xFFFF] and regs.width == 16
    pkts = h.instance("I.pkts")
    assert (pkts.packets[0], pkts.bytes[0]) == (1, len(frame))

    m = h.instance("I.m")
    m.set_config(0, MeterConfig(cir=1, cburst=1, pir=1, pburst=1))
    assert run(h, frame)["color"] == 0
    assert run(h, frame)["color"] == RED  # same instant: the buckets are empty
    assert pkts.packets[0] == 3 and pkts.bytes[0] == 3 * len(frame)

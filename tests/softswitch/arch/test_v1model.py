"""The v1model pipeline through real programs: standard_metadata as BMv2 sets it,
resubmit / recirculate with preserved field lists, truncate, digests, drops, asserts."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from v1harness import Harness, eth

REPORT = r"""
header report_t {
    bit<16> ingress_port; bit<32> instance_type; bit<32> packet_length;
    bit<48> in_ts; bit<48> eg_ts; bit<16> egress_rid; bit<16> egress_port;
    bit<8> resubmits; bit<8> recircs; bit<8> scratch;
}
struct digest_t { bit<48> src; bit<16> type; }
struct meta_t {
    @field_list(1) bit<8> resubmits;
    @field_list(2) bit<8> recircs;
    bit<8> scratch;
}
struct headers_t { eth_t eth; report_t report; }

parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.eth); transition accept; }
}
control VC(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        meta.scratch = (bit<8>)sm.instance_type + 7;  // the instance type seen by ingress
        sm.egress_spec = 1;
        if (hdr.eth.type == 1) {
            if (meta.resubmits < 2) {
                meta.resubmits = meta.resubmits + 1;
                resubmit_preserving_field_list(1);
            }
        } else if (hdr.eth.type == 2) {
            sm.egress_spec = 2;
        } else if (hdr.eth.type == 3) {
            truncate(16);
        } else if (hdr.eth.type == 4) {
            digest<digest_t>(1, { hdr.eth.src, hdr.eth.type });
            mark_to_drop(sm);
        } else if (hdr.eth.type == 5) {
            sm.egress_spec = 5;
        } else if (hdr.eth.type == 6) {
            assert(hdr.eth.dst == 0);
        } else if (hdr.eth.type == 7) {
            hdr.eth.setInvalid();
        }
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        if (hdr.eth.type == 2 && meta.recircs < 1) {
            meta.recircs = meta.recircs + 1;
            recirculate_preserving_field_list(2);
        }
        if (sm.egress_port == 5) {
            mark_to_drop(sm);
        }
        hdr.report.setValid();
        hdr.report.ingress_port = (bit<16>)sm.ingress_port;
        hdr.report.instance_type = sm.instance_type;
        hdr.report.packet_length = sm.packet_length;
        hdr.report.in_ts = sm.ingress_global_timestamp;
        hdr.report.eg_ts = sm.egress_global_timestamp;
        hdr.report.egress_rid = sm.egress_rid;
        hdr.report.egress_port = (bit<16>)sm.egress_port;
        hdr.report.resubmits = meta.resubmits;
        hdr.report.recircs = meta.recircs;
        hdr.report.scratch = meta.scratch;
    }
}
control CC(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.report); } }
V1Switch(P(), VC(), I(), E(), CC(), D()) main;
"""

REPORT_FMT = "!HII6s6sHHBBB"
REPORT_LEN = struct.calcsize(REPORT_FMT)


def report(frame: bytes, offset: int = 14) -> dict[str, Any]:
    vals = struct.unpack(REPORT_FMT, frame[offset:offset + REPORT_LEN])
    names = ["ingress_port", "instance_type", "packet_length", "in_ts", "eg_ts", "egress_rid",
             "egress_port", "resubmits", "recircs", "scratch"]
    d = dict(zip(names, vals, strict=True))
    d["in_ts"] = int.from_bytes(d["in_ts"], "big")
    d["eg_ts"] = int.from_bytes(d["eg_ts"], "big")
    return d


@pytest.fixture
def h() -> Harness:
    return Harness(REPORT)


def test_standard_metadata_of_a_normal_packet(h: Harness) -> None:
    h.now += 5_000_000  # 5 ms after commit
    frame = eth(0xA, 0xB, 0x0800, b"payload!")
    [(port, out)] = h.send(9, frame)
    assert port == 1
    r = report(out)
    assert r["ingress_port"] == 9
    assert r["instance_type"] == 0
    assert r["packet_length"] == len(frame)
    assert r["in_ts"] == 5000 and r["eg_ts"] == 5000  # microseconds since start
    assert r["egress_port"] == 1
    assert r["scratch"] == 7  # metadata survives ingress -> egress
    assert out[14 + REPORT_LEN:] == b"payload!"  # unparsed payload follows the headers


def test_resubmit_preserves_only_the_field_list(h: Harness) -> None:
    [(_, out)] = h.send(3, eth(0, 0, 1))
    r = report(out)
    assert r["resubmits"] == 2  # preserved through two resubmits
    # BMv2 resets the rest of standard_metadata for a resubmitted packet (ingress_port
    # included) and marks a unicast packet NORMAL when it is enqueued
    assert r["ingress_port"] == 0
    assert r["instance_type"] == 0
    assert r["scratch"] == 6 + 7  # but ingress saw RESUBMIT (6)


def test_recirculate_reenters_with_the_deparsed_frame(h: Harness) -> None:
    frame = eth(0, 0, 2)
    [(port, out)] = h.send(4, frame)
    assert port == 2
    first_pass = report(out, 14 + REPORT_LEN)  # the first report became payload
    second_pass = report(out)
    assert first_pass["recircs"] == 1 and first_pass["instance_type"] == 0
    # ingress saw RECIRC (4); egress sees NORMAL again (BMv2 sets it at enqueue)
    assert second_pass["scratch"] == 4 + 7
    assert second_pass["instance_type"] == 0
    assert second_pass["recircs"] == 1
    assert second_pass["ingress_port"] == 0  # standard_metadata was reset
    assert second_pass["packet_length"] == len(frame) + REPORT_LEN


def test_truncate(h: Harness) -> None:
    [(_, out)] = h.send(1, eth(0, 0, 3, b"x" * 40))
    assert len(out) == 16


def test_digest_is_emitted_even_when_the_packet_is_dropped(h: Harness) -> None:
    assert h.send(1, eth(0, 0xABCDEF, 4)) == []
    assert h.digests == [("digest_t", (0xABCDEF, 4))]
    assert h.dev.stats()["drop"] == 1
    assert h.dev.program is not None
    assert h.dev.program.digests == {"digest_t": [("src", 48), ("type", 16)]}


def test_mark_to_drop_in_egress_drops(h: Harness) -> None:
    assert h.send(1, eth(0, 0, 5)) == []
    assert h.dev.stats()["drop"] == 1


def test_failed_assert_drops_the_packet_and_is_counted(h: Harness) -> None:
    assert h.send(1, eth(1, 0, 6)) == []
    assert h.dev.stats()["error"] == 1
    assert len(h.send(1, eth(0, 0, 6))) == 1  # assertion holds


def test_packet_length_follows_header_validity(h: Harness) -> None:
    frame = eth(0, 0, 7, b"abcd")
    [(_, out)] = h.send(1, frame)
    # eth was invalidated in ingress: BMv2's length register drops by 14 bytes
    assert report(out, 0)["packet_length"] == len(frame) - 14
    assert out[REPORT_LEN:] == b"abcd"


def test_multicast_replicas_get_egress_rid() -> None:
    from softswitch.device import Replica

    h = Harness(REPORT.replace("sm.egress_spec = 1;", "sm.egress_spec = 1; sm.mcast_grp = 3;"))
    h.dev.multicast_groups[3] = [Replica(4, 40), Replica(6, 60)]
    outs = h.send(1, eth(0, 0, 0x0800))
    assert [(p, report(f)["egress_rid"], report(f)["instance_type"]) for p, f in outs] == \
        [(4, 40, 5), (6, 60, 5)]
    h.dev.multicast_groups.clear()
    assert h.send(1, eth(0, 0, 0x0800)) == []  # an empty / unknown group drops


CLONE3 = r"""
header rep_t { bit<8> keep; bit<8> lose; bit<32> instance_type; bit<16> ingress_port; }
struct meta_t { bit<8> keep; bit<8> lose; }
struct headers_t { eth_t eth; rep_t rep; }
parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start { pkt.extract(hdr.eth); transition accept; }
}
control VC(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        meta.keep = 5;
        meta.lose = 6;
        clone3(CloneType.I2E, 32w9, { meta.keep, sm.ingress_port });
        sm.egress_spec = 1;
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        hdr.rep.setValid();
        hdr.rep.keep = meta.keep;
        hdr.rep.lose = meta.lose;
        hdr.rep.instance_type = sm.instance_type;
        hdr.rep.ingress_port = (bit<16>)sm.ingress_port;
    }
}
control CC(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.rep); } }
V1Switch(P(), VC(), I(), E(), CC(), D()) main;
"""


def test_clone3_preserves_the_fields_named_in_its_data() -> None:
    from softswitch.device import CloneSession, Replica

    h = Harness(CLONE3)
    h.dev.clone_sessions[9] = CloneSession([Replica(3, 77)], packet_length_bytes=20)
    outs = h.send(6, eth(0, 0, 0x0800, b"p" * 30))
    # the clone is enqueued before the original (simple_switch order)
    assert [p for p, _ in outs] == [3, 1]
    clone, orig = outs[0][1], outs[1][1]
    assert struct.unpack("!BBIH", orig[14:22]) == (5, 6, 0, 6)
    assert len(clone) == 20  # the session truncates
    assert struct.unpack("!BBIH", clone[14:20] + b"\0\0")[:2] == (5, 0)
    h.dev.clone_sessions[9] = CloneSession([Replica(3, 77)])
    clone = h.send(6, eth(0, 0, 0x0800))[0][1]
    # keep and ingress_port preserved, lose zeroed, instance_type I2E clone
    assert struct.unpack("!BBIH", clone[14:22]) == (5, 0, 1, 6)

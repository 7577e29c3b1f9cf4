"""Device: compile / commit, controller packet-in / packet-out headers on the CPU port,
drops without program / port, stats, PRE reset on commit."""

from __future__ import annotations

import re

import pytest

from softswitch.device import CloneSession, CompileError, Device, Replica

CPU = 64

PROG = r"""
#include <core.p4>
#include <v1model.p4>

@controller_header("packet_in")
header packet_in_t { bit<9> ingress_port; bit<7> _pad; }
@controller_header("packet_out")
header packet_out_t { bit<9> egress_port; bit<7> _pad; }
header eth_t { bit<48> dst; bit<48> src; bit<16> type; }
struct meta_t { }
struct headers_t { packet_in_t packet_in; packet_out_t packet_out; eth_t eth; }

parser P(packet_in pkt, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start {
        transition select(sm.ingress_port) {
            64: parse_packet_out;
            default: parse_eth;
        }
    }
    state parse_packet_out { pkt.extract(hdr.packet_out); transition parse_eth; }
    state parse_eth { pkt.extract(hdr.eth); transition accept; }
}
control VC(inout headers_t hdr, inout meta_t meta) { apply { } }
control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply {
        if (hdr.packet_out.isValid()) {
            sm.egress_spec = hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
        } else if (hdr.eth.type == 0x88cc) {
            sm.egress_spec = 64;
            hdr.packet_in.setValid();
            hdr.packet_in.ingress_port = sm.ingress_port;
        } else {
            sm.egress_spec = 9;
        }
    }
}
control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) { apply { } }
control CC(inout headers_t hdr, inout meta_t meta) { apply { } }
control D(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.packet_in); pkt.emit(hdr.eth); }
}
V1Switch(P(), VC(), I(), E(), CC(), D()) main;
"""

FRAME = bytes(6) + bytes.fromhex("020000000001") + b"\x88\xcc" + b"lldp"


@pytest.fixture(scope="module")
def loaded():  # type: ignore[no-untyped-def]
    return Device.compile(PROG, "dev.p4")


def test_controller_header_layouts(loaded) -> None:  # type: ignore[no-untyped-def]
    assert loaded.packet_in_header == [("ingress_port", 9), ("_pad", 7)]
    assert loaded.packet_out_header == [("egress_port", 9), ("_pad", 7)]
    assert loaded.digests == {}


def test_packet_in_strips_the_controller_header(loaded) -> None:  # type: ignore[no-untyped-def]
    dev = Device(cpu_port=CPU)
    dev.commit(loaded)
    got: list[tuple[bytes, dict[str, int]]] = []
    dev.on_packet_in = lambda payload, meta: got.append((payload, meta))
    dev.receive(5, FRAME)
    assert got == [(FRAME, {"ingress_port": 5, "_pad": 0})]
    assert dev.stats()["packet_in"] == 1


def test_packet_out_prepends_the_controller_header(loaded) -> None:  # type: ignore[no-untyped-def]
    dev = Device(cpu_port=CPU)
    dev.commit(loaded)
    sent: list[tuple[int, bytes]] = []
    dev.on_transmit = lambda port, frame: sent.append((port, frame))
    dev.packet_out(FRAME[:12] + b"\x08\x00data", {"egress_port": 3})
    assert sent == [(3, FRAME[:12] + b"\x08\x00data")]
    with pytest.raises(ValueError, match="egress_port"):
        dev.packet_out(FRAME, {"egress_port": 512})
    assert dev.stats()["packet_out"] == 2


def test_without_cpu_port_the_cpu_is_a_plain_port(loaded) -> None:  # type: ignore[no-untyped-def]
    dev = Device()
    dev.commit(loaded)
    sent: list[tuple[int, bytes]] = []
    dev.on_transmit = lambda port, frame: sent.append((port, frame))
    dev.receive(5, FRAME)
    # transmitted as is: the packet_in header (ingress_port 5 in 9 bits, 7 pad bits)
    # then the frame
    assert sent == [(64, (5 << 7).to_bytes(2, "big") + FRAME)]


def test_drops_are_counted(loaded) -> None:  # type: ignore[no-untyped-def]
    dev = Device()
    dev.receive(1, FRAME)  # no program yet
    assert dev.stats()["drop_no_program"] == 1
    dev.commit(loaded)
    dev.receive(1, FRAME[:12] + b"\x08\x00")  # to port 9, nobody listens
    s = dev.stats()
    assert s["rx"] == 2 and s["tx"] == 1 and s["drop_no_port"] == 1
    assert s["program"] == "dev.p4"


def test_commit_resets_pre_state(loaded) -> None:  # type: ignore[no-untyped-def]
    dev = Device()
    groups = dev.multicast_groups
    dev.multicast_groups[1] = [Replica(1, 0)]
    dev.clone_sessions[5] = CloneSession([Replica(2, 0)])
    dev.commit(loaded)
    assert dev.multicast_groups == {} and dev.clone_sessions == {}
    assert dev.multicast_groups is groups  # the runtime may hold the dict


def test_compile_errors_are_p4c_style() -> None:
    with pytest.raises(CompileError) as ei:
        Device.compile("#include <v1model.p4>\ncontrol C() { apply { x = 1; } }\n", "bad.p4")
    assert re.search(r"^bad\.p4:\d+:\d+: error: ", str(ei.value), re.M), str(ei.value)


def test_a_program_without_v1switch_is_rejected() -> None:
    with pytest.raises(CompileError, match="V1Switch"):
        Device.compile("#include <core.p4>\nheader h_t { bit<8> f; }\n", "nomain.p4")


def test_an_unsupported_constant_hash_algorithm_is_refused_at_load_time() -> None:
    # BMv2 has no HashAlgorithm.random calculation either; failing every packet instead
    # of the load would hide the problem until traffic flows.
    body = "bit<16> h; hash(h, HashAlgorithm.random, 16w0, { hdr.eth.src }, 32w1024); sm.egress_spec = 9;"
    src = PROG.replace("sm.egress_spec = 9;", body)
    with pytest.raises(CompileError, match=r"dev\.p4:\d+:\d+: .*HashAlgorithm\.random is not supported"):
        Device.compile(src, "dev.p4")
    # a supported constant algorithm still loads
    Device.compile(src.replace("HashAlgorithm.random", "HashAlgorithm.crc16"), "dev.p4")

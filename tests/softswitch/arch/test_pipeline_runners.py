"""The pipeline's looked-up-once runners (Compiled.parser_runner / control_runner /
value_maker) give the same results as the CompiledProgram protocol path that a
compiled program without them takes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from v1harness import PRELUDE, eth

from softswitch.arch import hashes
from softswitch.arch.pipeline import Pipeline
from softswitch.device import Device

PROGRAM = PRELUDE + """
header ipv4_t { bit<4> version; bit<4> ihl; bit<8> tos; bit<16> len; bit<16> id; bit<3> flags;
                bit<13> frag; bit<8> ttl; bit<8> proto; bit<16> csum; bit<32> src; bit<32> dst; }
struct headers_t { eth_t eth; ipv4_t ipv4; }
struct meta_t { bit<8> seen; }
parser P(packet_in pkt, out headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    state start { pkt.extract(h.eth); transition select(h.eth.type) { 0x800: ip; default: accept; } }
    state ip { pkt.extract(h.ipv4); transition accept; }
}
control V(inout headers_t h, inout meta_t m) {
    apply { verify_checksum(h.ipv4.isValid(), {h.ipv4.version, h.ipv4.ihl, h.ipv4.tos, h.ipv4.len,
            h.ipv4.id, h.ipv4.flags, h.ipv4.frag, h.ipv4.ttl, h.ipv4.proto, h.ipv4.src, h.ipv4.dst},
            h.ipv4.csum, HashAlgorithm.csum16); }
}
control I(inout headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    apply {
        if (sm.checksum_error == 1) { mark_to_drop(sm); return; }
        sm.egress_spec = (bit<9>)h.eth.dst[3:0];
        if (h.ipv4.isValid()) { h.ipv4.ttl = h.ipv4.ttl - 1; } else { h.ipv4.setValid(); h.ipv4.ttl = 7; }
    }
}
control E(inout headers_t h, inout meta_t m, inout standard_metadata_t sm) {
    apply { h.eth.src = (bit<48>)sm.packet_length; if (h.ipv4.ttl == 0) { h.ipv4.setInvalid(); } }
}
control C(inout headers_t h, inout meta_t m) {
    apply { update_checksum(h.ipv4.isValid(), {h.ipv4.version, h.ipv4.ihl, h.ipv4.tos, h.ipv4.len,
            h.ipv4.id, h.ipv4.flags, h.ipv4.frag, h.ipv4.ttl, h.ipv4.proto, h.ipv4.src, h.ipv4.dst},
            h.ipv4.csum, HashAlgorithm.csum16); }
}
control D(packet_out pkt, in headers_t h) { apply { pkt.emit(h.eth); pkt.emit(h.ipv4); } }
V1Switch(P(), V(), I(), E(), C(), D()) main;
"""


class ProtocolOnly:
    """A CompiledProgram exposing only the protocol (no optional fast-path methods)."""

    def __init__(self, compiled: Any) -> None:
        self._c = compiled
        self.program = compiled.program
        self.tables = compiled.tables
        self.instances = compiled.instances
        self.actions = compiled.actions
        self.table_of_direct_counter = compiled.table_of_direct_counter

    def new_value(self, t: Any) -> Any:
        return self._c.new_value(t)

    def run_parser(self, name: str, args: list[Any], ctx: Any) -> str:
        return self._c.run_parser(name, args, ctx)  # type: ignore[no-any-return]

    def run_control(self, name: str, args: list[Any], ctx: Any) -> None:
        self._c.run_control(name, args, ctx)


class Pre:
    multicast_groups: dict[int, Any] = {}
    clone_sessions: dict[int, Any] = {}


COMPILED = Device.compile(PROGRAM, "t.p4").compiled
FAST = Pipeline(COMPILED, Pre(), clock_ns=lambda: 5_000)
SLOW = Pipeline(ProtocolOnly(COMPILED), Pre(), clock_ns=lambda: 5_000)  # type: ignore[arg-type]


@settings(max_examples=60)
@given(st.integers(0, 15), st.binary(min_size=0, max_size=40), st.booleans(), st.integers(0, 3),
       st.booleans())
def test_fast_runners_equal_protocol_path(port: int, body: bytes, ipv4: bool, ttl: int, good: bool) -> None:
    ip = b""
    if ipv4:
        ip = bytes([0x45, 0, 0, 40, 0, 1, 0, 0, ttl, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
        csum = hashes.csum16(ip) if good else 0x1234
        ip = ip[:10] + csum.to_bytes(2, "big") + ip[12:]
    frame = eth(port, 2, 0x800 if ipv4 else 0x86DD, ip + body)
    a, b = FAST.process(1, frame), SLOW.process(1, frame)
    assert (a.events, a.drops, a.errors) == (b.events, b.drops, b.errors)
    assert len(a.events) == (0 if ipv4 and not good else 1)
    assert FAST._run_parser is not None and not hasattr(SLOW.compiled, "parser_runner")

"""The P4Runtime server with the real Device and a real program pushed over gRPC:
packet-out -> data port, data port -> packet-in, digests from the pipeline, direct
counters and idle timeouts driven by real table hits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from finsy.proto import p4r
from rt_client import Client

from softswitch.device import Device
from softswitch.p4info import build_p4info
from softswitch.runtime.server import P4RuntimeServer

PROGRAM = r"""
#include <core.p4>
#include <v1model.p4>

const bit<9> CPU_PORT = 64;

@controller_header("packet_in")
header packet_in_t { bit<9> ingress_port; bit<7> _pad; }
@controller_header("packet_out")
header packet_out_t { bit<9> egress_port; bit<7> _pad; }
header ethernet_t { bit<48> dst; bit<48> src; bit<16> etherType; }

struct learn_t { bit<48> src; bit<9> port; }
struct metadata_t { }
struct headers_t { packet_out_t packet_out; packet_in_t packet_in; ethernet_t ethernet; }

parser P(packet_in pkt, out headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    state start {
        transition select(sm.ingress_port) { CPU_PORT: parse_out; default: parse_eth; }
    }
    state parse_out { pkt.extract(hdr.packet_out); transition parse_eth; }
    state parse_eth { pkt.extract(hdr.ethernet); transition accept; }
}

control VC(inout headers_t hdr, inout metadata_t meta) { apply { } }

control I(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    direct_counter(CounterType.packets_and_bytes) fwd_ctr;
    action to_port(bit<9> port) { sm.egress_spec = port; }
    action to_cpu() { sm.egress_spec = CPU_PORT; }
    table fwd {
        key = { hdr.ethernet.dst: exact; }
        actions = { to_port; to_cpu; }
        default_action = to_cpu();
        support_timeout = true;
        counters = fwd_ctr;
    }
    apply {
        if (hdr.packet_out.isValid()) {
            sm.egress_spec = hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
        } else {
            digest<learn_t>(1, { hdr.ethernet.src, sm.ingress_port });
            fwd.apply();
        }
    }
}

control E(inout headers_t hdr, inout metadata_t meta, inout standard_metadata_t sm) {
    apply {
        if (sm.egress_port == CPU_PORT) {
            hdr.packet_in.setValid();
            hdr.packet_in.ingress_port = sm.ingress_port;
            hdr.packet_in._pad = 0;
        }
    }
}

control CC(inout headers_t hdr, inout metadata_t meta) { apply { } }

control D(packet_out pkt, in headers_t hdr) {
    apply { pkt.emit(hdr.packet_in); pkt.emit(hdr.ethernet); }
}

V1Switch(P(), VC(), I(), E(), CC(), D()) main;
"""

INFO = build_p4info(Device.compile(PROGRAM, "rt.p4").ir)
IDS = {o.preamble.name: o.preamble.id for kind in ("tables", "actions", "digests") for o in getattr(INFO, kind)}
FRAME = bytes.fromhex("0a0000000002" "0a0000000001" "0800") + b"payload"


@pytest.fixture
async def real() -> AsyncIterator[tuple[P4RuntimeServer, Client, list[tuple[int, bytes]]]]:
    dev = Device(device_id=0, cpu_port=64)
    sent: list[tuple[int, bytes]] = []
    dev.on_transmit = lambda port, frame: sent.append((port, frame))
    srv = P4RuntimeServer(dev, idle_sweep_interval=0.05)
    await srv.start("127.0.0.1:0")
    c = Client(srv.port, election=1)
    await c.connect()
    await c.set_pipeline(PROGRAM, INFO)
    yield srv, c, sent
    await c.close()
    await srv.stop(0)


async def test_packet_out_goes_to_the_port(real: tuple[P4RuntimeServer, Client, list[tuple[int, bytes]]]) -> None:
    _srv, c, sent = real
    req = p4r.StreamMessageRequest()
    req.packet.payload = FRAME
    req.packet.metadata.add(metadata_id=1, value=b"\x03")
    req.packet.metadata.add(metadata_id=2, value=b"\x00")
    await c.send(req)
    for _ in range(100):
        if sent:
            break
        await asyncio.sleep(0.01)
    assert sent == [(3, FRAME)]


async def test_packet_in_digest_and_counters(real: tuple[P4RuntimeServer, Client, list[tuple[int, bytes]]]) -> None:
    srv, c, sent = real
    de = p4r.Entity()
    de.digest_entry.digest_id = IDS["learn_t"]
    de.digest_entry.config.max_list_size = 1
    de.digest_entry.config.ack_timeout_ns = 10**9
    await c.write((p4r.Update.INSERT, de))
    srv.device.receive(5, FRAME)  # default action: to the CPU
    pin = await c.recv("packet")
    assert pin.packet.payload == FRAME
    assert [(m.metadata_id, m.value) for m in pin.packet.metadata] == [(1, b"\x05"), (2, b"\x00")]
    dig = await c.recv("digest")
    assert [m.bitstring for m in dig.digest.data[0].struct.members] == [bytes.fromhex("0a0000000001"), b"\x05"]
    # an entry with an idle timeout, hit by packets: counters count, no idle report while hit
    e = p4r.Entity()
    te = e.table_entry
    te.table_id = IDS["I.fwd"]
    te.match.add(field_id=1).exact.value = bytes.fromhex("0a0000000002")
    te.action.action.action_id = IDS["I.to_port"]
    te.action.action.params.add(param_id=1, value=b"\x02")
    te.idle_timeout_ns = 1_000_000_000
    await c.write((p4r.Update.INSERT, e))
    for _ in range(4):
        srv.device.receive(5, FRAME)
        await asyncio.sleep(0.1)
    assert [p for p, _ in sent] == [2, 2, 2, 2]
    (got,) = await c.read(p4r.Entity(table_entry=p4r.TableEntry(table_id=IDS["I.fwd"])))
    assert got.table_entry.counter_data.packet_count == 4
    assert got.table_entry.counter_data.byte_count == 4 * len(FRAME)
    assert await c.nothing("idle_timeout_notification", 0.3)
    # then idle: reported
    msg = await c.recv("idle_timeout_notification", timeout=3)
    assert msg.idle_timeout_notification.table_entry[0].match[0].exact.value == bytes.fromhex("0a0000000002")

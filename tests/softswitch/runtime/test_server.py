"""P4Runtime server over a real gRPC socket with the fake device."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from finsy.proto import p4i, p4r, rpc_code
from rt_client import Client, WriteFailed
from rt_fakes import SOURCE, build_ir

from softswitch.p4info import build_p4info
from softswitch.runtime.server import P4RuntimeServer

INFO = build_p4info(build_ir())
T = {t.preamble.name: t.preamble.id for t in INFO.tables}
A = {a.preamble.name: a.preamble.id for a in INFO.actions}
FWD, ACL = T["MyIngress.fwd"], T["MyIngress.acl"]
INS, MOD, DEL = p4r.Update.INSERT, p4r.Update.MODIFY, p4r.Update.DELETE


def fwd_entry(mac: bytes, port: int | None = 1, action: str = "MyIngress.set_port") -> p4r.Entity:
    e = p4r.Entity()
    te = e.table_entry
    te.table_id = FWD
    te.match.add(field_id=1).exact.value = mac
    te.action.action.action_id = A[action]
    if port is not None and action == "MyIngress.set_port":
        te.action.action.params.add(param_id=1, value=port.to_bytes(2, "big"))
    return e


def acl_entry(src: int, mask: int, lo: int = 0, hi: int = 65535, priority: int = 10,
              idle_ns: int = 0) -> p4r.Entity:
    e = p4r.Entity()
    te = e.table_entry
    te.table_id = ACL
    te.match.add(field_id=1).ternary.CopyFrom(
        p4r.FieldMatch.Ternary(value=src.to_bytes(4, "big"), mask=mask.to_bytes(4, "big")))
    if (lo, hi) != (0, 65535):
        te.match.add(field_id=2).range.CopyFrom(
            p4r.FieldMatch.Range(low=lo.to_bytes(2, "big"), high=hi.to_bytes(2, "big")))
    te.action.action.action_id = A["MyIngress.allow"]
    te.priority = priority
    te.idle_timeout_ns = idle_ns
    return e


MAC = bytes.fromhex("0a0000000001")


async def test_capabilities(server: P4RuntimeServer, client: Client) -> None:
    resp = await client.stub.Capabilities(p4r.CapabilitiesRequest())
    assert resp.p4runtime_api_version.startswith("1.")


async def test_write_before_pipeline_is_failed_precondition(client: Client) -> None:
    with pytest.raises(WriteFailed) as ei:
        await client.write((INS, fwd_entry(MAC)))
    assert ei.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_insert_read_modify_delete(primed: Client) -> None:
    await primed.write((INS, fwd_entry(MAC, 3)))
    (got,) = await primed.read(p4r.Entity(table_entry=p4r.TableEntry(table_id=FWD)))
    te = got.table_entry
    assert te.match[0].exact.value == MAC
    assert te.action.action.action_id == A["MyIngress.set_port"]
    assert te.action.action.params[0].value == b"\x03"  # canonical form
    await primed.write((MOD, fwd_entry(MAC, 7)))
    (got,) = await primed.read(p4r.Entity(table_entry=p4r.TableEntry(table_id=0)))
    assert got.table_entry.action.action.params[0].value == b"\x07"
    await primed.write((DEL, fwd_entry(MAC, None)))
    assert await primed.read(p4r.Entity(table_entry=p4r.TableEntry(table_id=FWD))) == []


async def test_per_update_errors_continue_on_error(primed: Client) -> None:
    other = bytes.fromhex("0a0000000002")
    bad_width = fwd_entry(other, 1)
    bad_width.table_entry.match[0].exact.value = b"\x01" * 7  # 56 bits into a 48-bit field
    unknown_action = fwd_entry(other, 1)
    unknown_action.table_entry.action.action.action_id = 12345
    with pytest.raises(WriteFailed) as ei:
        await primed.write((INS, fwd_entry(MAC)), (INS, fwd_entry(MAC)), (MOD, fwd_entry(other)),
                           (INS, bad_width), (INS, unknown_action), (INS, fwd_entry(other, 2)))
    assert ei.value.code == grpc.StatusCode.UNKNOWN
    assert ei.value.codes == [rpc_code.OK, rpc_code.ALREADY_EXISTS, rpc_code.NOT_FOUND,
                              rpc_code.OUT_OF_RANGE, rpc_code.INVALID_ARGUMENT, rpc_code.OK]
    assert "does not fit in 48 bits" in ei.value.errors[3].message
    entries = await primed.read(p4r.Entity(table_entry=p4r.TableEntry(table_id=FWD)))
    assert len(entries) == 2  # the good updates were applied


async def test_invalid_arguments(primed: Client) -> None:
    no_prio = acl_entry(0x0A000000, 0xFF000000, priority=0)
    bad_ternary = acl_entry(0x0A000001, 0xFF000000)
    bad_range = acl_entry(1, 0xFF, lo=10, hi=5)
    defaultonly = fwd_entry(MAC, action="NoAction")
    unknown_table = fwd_entry(MAC)
    unknown_table.table_entry.table_id = 0x02FFFFFF
    missing_exact = fwd_entry(MAC)
    del missing_exact.table_entry.match[:]
    empty_value = fwd_entry(MAC)
    empty_value.table_entry.match[0].exact.value = b""
    with pytest.raises(WriteFailed) as ei:
        await primed.write(*[(INS, e) for e in (no_prio, bad_ternary, bad_range, defaultonly, unknown_table,
                                                missing_exact, empty_value)])
    assert ei.value.codes == [rpc_code.INVALID_ARGUMENT] * 7
    assert "priority must be > 0" in ei.value.errors[0].message
    assert "outside mask" in ei.value.errors[1].message
    assert "unknown table id" in ei.value.errors[4].message
    assert "exact field hdr.eth.dst missing" in ei.value.errors[5].message
    assert "empty byte string" in ei.value.errors[6].message
    assert "@defaultonly" in ei.value.errors[3].message


async def test_table_full_is_resource_exhausted(primed: Client) -> None:
    await primed.write(*[(INS, fwd_entry(bytes([0, 0, 0, 0, 0, i]))) for i in range(4)])
    with pytest.raises(WriteFailed) as ei:
        await primed.write((INS, fwd_entry(bytes([0, 0, 0, 0, 0, 9]))))
    assert ei.value.codes == [rpc_code.RESOURCE_EXHAUSTED]


async def test_default_entry(primed: Client) -> None:
    e = p4r.Entity()
    e.table_entry.table_id = ACL
    e.table_entry.is_default_action = True
    e.table_entry.action.action.action_id = A["MyIngress.allow"]
    await primed.write((MOD, e))
    req = p4r.Entity(table_entry=p4r.TableEntry(table_id=ACL, is_default_action=True))
    (got,) = await primed.read(req)
    assert got.table_entry.is_default_action and got.table_entry.action.action.action_id == A["MyIngress.allow"]
    with pytest.raises(WriteFailed) as ei:
        await primed.write((INS, e))
    assert ei.value.codes == [rpc_code.INVALID_ARGUMENT]
    await primed.write((DEL, e))  # back to the program's default
    (got,) = await primed.read(req)
    assert got.table_entry.action.action.action_id == A["MyIngress.deny"]


async def test_ternary_range_priority_and_counter_data(primed: Client, server: P4RuntimeServer) -> None:
    e = acl_entry(0x0A000000, 0xFF000000, 80, 90, priority=5)
    e.table_entry.counter_data.packet_count = 3
    await primed.write((INS, e))
    (got,) = await primed.read(p4r.Entity(table_entry=p4r.TableEntry(table_id=ACL)))
    assert got.table_entry.priority == 5
    assert got.table_entry.match[1].range.low == b"\x50"
    assert got.table_entry.counter_data.packet_count == 3
    # direct counter entry write / read
    dc = p4r.Entity()
    dc.direct_counter_entry.table_entry.CopyFrom(e.table_entry)
    dc.direct_counter_entry.table_entry.ClearField("action")
    dc.direct_counter_entry.table_entry.ClearField("counter_data")
    dc.direct_counter_entry.data.packet_count = 42
    await primed.write((MOD, dc))
    (got,) = await primed.read(p4r.Entity(direct_counter_entry=p4r.DirectCounterEntry(
        table_entry=p4r.TableEntry(table_id=ACL))))
    assert got.direct_counter_entry.data.packet_count == 42


async def test_counters_and_registers(primed: Client, server: P4RuntimeServer) -> None:
    cid = INFO.counters[0].preamble.id
    rid = INFO.registers[0].preamble.id
    ce = p4r.Entity()
    ce.counter_entry.counter_id = cid
    ce.counter_entry.index.index = 2
    ce.counter_entry.data.packet_count = 5
    ce.counter_entry.data.byte_count = 500
    re = p4r.Entity()
    re.register_entry.register_id = rid
    re.register_entry.index.index = 1
    re.register_entry.data.bitstring = b"\x12\x34"
    await primed.write((MOD, ce), (MOD, re))
    assert server.pipeline is not None
    assert server.pipeline.loaded.compiled.instances["MyIngress.pkt_ctr"].bytes[2] == 500  # type: ignore[attr-defined]
    got = await primed.read(p4r.Entity(counter_entry=p4r.CounterEntry(counter_id=cid)))
    assert len(got) == 8 and got[2].counter_entry.data.byte_count == 500
    (got_r,) = await primed.read(p4r.Entity(register_entry=p4r.RegisterEntry(
        register_id=rid, index=p4r.Index(index=1))))
    assert got_r.register_entry.data.bitstring == b"\x12\x34"
    ce.counter_entry.index.index = 8
    with pytest.raises(WriteFailed) as ei:
        await primed.write((MOD, ce), (INS, re))
    assert ei.value.codes == [rpc_code.OUT_OF_RANGE, rpc_code.INVALID_ARGUMENT]


async def test_pre_entries(primed: Client, server: P4RuntimeServer) -> None:
    mg = p4r.Entity()
    g = mg.packet_replication_engine_entry.multicast_group_entry
    g.multicast_group_id = 7
    g.replicas.add(egress_port=1, instance=1)
    g.replicas.add(port=b"\x02", instance=1)
    cs = p4r.Entity()
    s = cs.packet_replication_engine_entry.clone_session_entry
    s.session_id = 5
    s.replicas.add(egress_port=64, instance=0)
    s.packet_length_bytes = 128
    await primed.write((INS, mg), (INS, cs))
    assert [(r.egress_port, r.instance) for r in server.device.multicast_groups[7]] == [(1, 1), (2, 1)]
    assert server.device.clone_sessions[5].packet_length_bytes == 128
    with pytest.raises(WriteFailed) as ei:
        await primed.write((INS, mg), (DEL, cs), (DEL, cs))
    assert ei.value.codes == [rpc_code.ALREADY_EXISTS, rpc_code.OK, rpc_code.NOT_FOUND]
    got = await primed.read(p4r.Entity(packet_replication_engine_entry=p4r.PacketReplicationEngineEntry(
        multicast_group_entry=p4r.MulticastGroupEntry())))
    assert [r.egress_port for r in got[0].packet_replication_engine_entry.multicast_group_entry.replicas] == [1, 2]


async def test_pipeline_config_actions_and_get(server: P4RuntimeServer, client: Client) -> None:
    R = p4r.SetForwardingPipelineConfigRequest
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await client.stub.GetForwardingPipelineConfig(p4r.GetForwardingPipelineConfigRequest(device_id=0))
    assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await client.set_pipeline(action=R.VERIFY)
    assert server.pipeline is None
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await client.set_pipeline(action=R.COMMIT)
    assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await client.set_pipeline(action=R.VERIFY_AND_SAVE, cookie=77)
    assert server.pipeline is None
    await client.set_pipeline(action=R.COMMIT)
    assert server.pipeline is not None and server.pipeline.cookie == 77
    G = p4r.GetForwardingPipelineConfigRequest
    resp = await client.stub.GetForwardingPipelineConfig(G(device_id=0, response_type=G.ALL))
    assert resp.config.p4_device_config == SOURCE.encode() and resp.config.cookie.cookie == 77
    assert [t.preamble.name for t in resp.config.p4info.tables] == ["MyIngress.fwd", "MyIngress.acl"]
    resp = await client.stub.GetForwardingPipelineConfig(G(device_id=0, response_type=G.COOKIE_ONLY))
    assert resp.config.cookie.cookie == 77 and not resp.config.p4_device_config
    assert not resp.config.HasField("p4info")
    resp = await client.stub.GetForwardingPipelineConfig(G(device_id=0, response_type=G.DEVICE_CONFIG_AND_COOKIE))
    assert resp.config.p4_device_config and not resp.config.HasField("p4info")
    # reconcile with the same program keeps state
    await client.write((INS, fwd_entry(MAC)))
    await client.set_pipeline(action=R.RECONCILE_AND_COMMIT, cookie=78)
    assert len(await client.read(p4r.Entity(table_entry=p4r.TableEntry(table_id=FWD)))) == 1


async def test_bad_program_and_mismatching_p4info(server: P4RuntimeServer, client: Client) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await client.set_pipeline(source="garbage")
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "error: fake compiler" in (ei.value.details() or "")
    wrong = p4i.P4Info()
    wrong.CopyFrom(INFO)
    wrong.tables[0].preamble.id += 1
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await client.set_pipeline(p4info=wrong)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "MyIngress.fwd" in (ei.value.details() or "")
    assert server.pipeline is None


async def test_arbitration_two_clients(server: P4RuntimeServer, client: Client) -> None:
    # client (election 10) is primary
    await client.set_pipeline()
    backup = Client(server.port, election=5)
    resp = await backup.connect()
    assert resp.arbitration.status.code == rpc_code.ALREADY_EXISTS
    assert resp.arbitration.election_id.low == 10
    with pytest.raises(WriteFailed) as ei:
        await backup.write((INS, fwd_entry(MAC)))
    assert ei.value.code == grpc.StatusCode.PERMISSION_DENIED
    # a third client with a higher election id takes over; everybody is told
    top = Client(server.port, election=20)
    resp = await top.connect()
    assert resp.arbitration.status.code == rpc_code.OK
    upd = await client.recv("arbitration")
    assert upd.arbitration.status.code == rpc_code.ALREADY_EXISTS and upd.arbitration.election_id.low == 20
    with pytest.raises(WriteFailed) as ei:
        await client.write((INS, fwd_entry(MAC)))
    assert ei.value.code == grpc.StatusCode.PERMISSION_DENIED
    await top.write((INS, fwd_entry(MAC)))
    # the primary leaves: the highest remaining client becomes primary and is told so
    await top.close()
    upd = await client.recv("arbitration")
    assert upd.arbitration.status.code == rpc_code.OK
    await client.write((DEL, fwd_entry(MAC, None)))
    # duplicate election id is refused
    dup = Client(server.port, election=5)
    with pytest.raises((grpc.aio.AioRpcError, EOFError)):
        await dup.connect()
    await dup.close()
    await backup.close()


async def test_wrong_device_id(server: P4RuntimeServer) -> None:
    c = Client(server.port, election=1, device_id=9)
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await c.connect()
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND
    await c.close()


async def test_packet_out_and_in(primed: Client, server: P4RuntimeServer) -> None:
    req = p4r.StreamMessageRequest()
    req.packet.payload = b"\x01\x02"
    req.packet.metadata.add(metadata_id=1, value=b"\x03")
    await primed.send(req)
    for _ in range(50):
        if server.device.packets_out:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.01)
    assert server.device.packets_out == [(b"\x01\x02", {"egress_port": 3})]  # type: ignore[attr-defined]
    bad = p4r.StreamMessageRequest()
    bad.packet.payload = b"x"
    bad.packet.metadata.add(metadata_id=9, value=b"\x01")
    await primed.send(bad)
    err = await primed.recv("error")
    assert err.error.canonical_code == rpc_code.INVALID_ARGUMENT
    assert server.device.on_packet_in is not None
    server.device.on_packet_in(b"payload", {"ingress_port": 4, "_pad": 0})
    pin = await primed.recv("packet")
    assert pin.packet.payload == b"payload"
    assert [(m.metadata_id, m.value) for m in pin.packet.metadata] == [(1, b"\x04"), (2, b"\x00")]


async def test_digests_batching_ack_and_suppression(primed: Client, server: P4RuntimeServer) -> None:
    did = INFO.digests[0].preamble.id
    emit = server.device.on_digest
    assert emit is not None
    emit("learn_t", (1, 2))  # no DigestEntry yet: dropped
    de = p4r.Entity()
    de.digest_entry.digest_id = did
    de.digest_entry.config.max_list_size = 2
    de.digest_entry.config.max_timeout_ns = 10**9 * 60
    de.digest_entry.config.ack_timeout_ns = 10**9 * 60
    await primed.write((INS, de))
    emit("learn_t", (0xA, 1))
    emit("learn_t", (0xA, 1))  # duplicate in the pending list: suppressed
    emit("learn_t", (0xB, 2))
    msg = await primed.recv("digest")
    d = msg.digest
    assert d.digest_id == did
    assert [[m.bitstring for m in x.struct.members] for x in d.data] == [[b"\x0a", b"\x01"], [b"\x0b", b"\x02"]]
    # sent and unacked: suppressed
    emit("learn_t", (0xA, 1))
    emit("learn_t", (0xC, 3))
    assert await primed.nothing("digest")
    ack = p4r.StreamMessageRequest()
    ack.digest_ack.digest_id = did
    ack.digest_ack.list_id = d.list_id
    await primed.send(ack)
    await asyncio.sleep(0.1)
    emit("learn_t", (0xA, 1))  # acked: allowed again, completes a list of 2 with 0xC
    msg = await primed.recv("digest")
    assert [x.struct.members[0].bitstring for x in msg.digest.data] == [b"\x0c", b"\x0a"]
    # timeout-based flush
    de.digest_entry.config.max_list_size = 100
    de.digest_entry.config.max_timeout_ns = 50_000_000
    await primed.write((MOD, de))
    emit("learn_t", (0xD, 4))
    msg = await primed.recv("digest", timeout=2)
    assert len(msg.digest.data) == 1
    (got,) = await primed.read(p4r.Entity(digest_entry=p4r.DigestEntry(digest_id=did)))
    assert got.digest_entry.config.max_list_size == 100


async def test_idle_timeout_notifications_repeat_while_idle(primed: Client, server: P4RuntimeServer) -> None:
    await primed.write((INS, acl_entry(0x0A000000, 0xFF000000, idle_ns=100_000_000)))
    msg = await primed.recv("idle_timeout_notification", timeout=3)
    (te,) = msg.idle_timeout_notification.table_entry
    assert te.table_id == ACL and te.idle_timeout_ns == 100_000_000
    assert te.time_since_last_hit.elapsed_ns >= 100_000_000
    # still idle: notified again (not deleted)
    await primed.recv("idle_timeout_notification", timeout=3)
    assert len(await primed.read(p4r.Entity(table_entry=p4r.TableEntry(table_id=ACL)))) == 1
    req = p4r.Entity(table_entry=p4r.TableEntry(table_id=ACL))
    req.table_entry.time_since_last_hit.SetInParent()
    (got,) = await primed.read(req)
    assert got.table_entry.time_since_last_hit.elapsed_ns >= 100_000_000


async def test_idle_timeout_on_table_without_support_is_invalid(primed: Client) -> None:
    e = fwd_entry(MAC)
    e.table_entry.idle_timeout_ns = 1000
    with pytest.raises(WriteFailed) as ei:
        await primed.write((INS, e))
    assert ei.value.codes == [rpc_code.INVALID_ARGUMENT]


async def test_idle_sweeps_follow_bmv2_every_other_sweep(primed: Client, server: P4RuntimeServer) -> None:
    server.idle_sweep_interval = 3600.0  # the periodic task sleeps; sweeps are driven by hand
    await asyncio.sleep(0.1)  # let an already scheduled sweep run
    await primed.write((INS, acl_entry(0x0A000000, 0xFF000000, idle_ns=1)))
    await asyncio.sleep(0.01)
    assert [server.sweep_idle() for _ in range(5)] == [1, 0, 1, 0, 1]
    assert server.pipeline is not None
    (e,) = server.pipeline.loaded.compiled.tables["MyIngress.acl"].entries()
    e.last_hit_ns = 10**30  # "hit" in the future: not idle
    assert server.sweep_idle() == 0

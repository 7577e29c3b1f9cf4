"""FlowManager (flows.py) against a fake SwitchSession (flow_support.FakeSwitch): learning, de-duplication,
backlog, policy decisions in the entry, capacity and recycling, lifetime 0, aging, hold, adoption, stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address

import pytest
from finsy.proto import p4r
from flow_support import (
    FakeSwitch,
    Stored,
    codec,
    digest_data,
    digest_list,
    digest_of,
    ib,
    profile,
    until,
    v4key,
    v6key,
)
from p4fatflow import dataplane as dp
from p4fatflow.flowcodec import FlowCodec, FlowContext
from p4fatflow.flows import FlowManager, FlowSettings
from p4fatflow.hold import KeyResolver, PortView
from p4fatflow.key import FlowKey, PacketFields
from p4fatflow.policy import Decision, NewFlow, PortDefaults
from p4fatflow.records import FlowRecord, Reason, RecordBus
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

VMI_PORT, FABRIC_PORT, VMI_ID, FP = 1, 3, 7, 0xBEEF
INVALID_ARGUMENT = 3  # google.rpc.Code


class FixedPolicy:
    """Returns ``decision`` for every flow and remembers what it saw."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.seen: list[NewFlow] = []

    def decide(self, flow: NewFlow, defaults: PortDefaults) -> Decision:
        self.seen.append(flow)
        return self.decision


@dataclass
class Rig:
    fm: FlowManager
    sw: FakeSwitch
    records: list[FlowRecord] = field(default_factory=list)

    @property
    def codec(self) -> FlowCodec:
        return self.fm.codec

    def ik(self, key: FlowKey) -> bytes:
        return self.codec.index_key(*self.codec.key_values(key))

    def send(self, *keys: FlowKey, **kw: int) -> p4r.DigestList:
        msg = digest_of(*keys, **({"vmi_id": VMI_ID, "direction": dp.DIRECTION_FROM_VM, "ingress_port": VMI_PORT} | kw))
        self.fm.digest_list(msg)
        return msg

    def entry(self, key: FlowKey) -> p4r.TableEntry:
        return self.sw.table[self.ik(key)].entry


async def make_rig(settings: FlowSettings | None = None, *, policy: object = None, sw: FakeSwitch | None = None,
                   start: bool = True) -> Rig:
    fc = codec()
    bus = RecordBus()
    fm = FlowManager("s1", fc, settings or FlowSettings(), policy=policy, records=bus)  # type: ignore[arg-type]
    fm.port_defaults = {VMI_PORT: PortDefaults(egress_port=FABRIC_PORT, lifetimes={6: 40}, default_lifetime=60)}
    fm.fingerprints = {VMI_ID: FP}
    rig = Rig(fm, sw or FakeSwitch(fc))
    bus.subscribe(rig.records.extend)
    if start:
        await fm.start(rig.sw.session)
    return rig


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = await make_rig()
    yield r
    await r.fm.stop()


async def test_learns_installs_and_acks(rig: Rig) -> None:
    keys = [v4key(sport=1000 + i) for i in range(3)] + [v6key()]
    msg = rig.send(*keys)
    await rig.fm.drain()
    assert rig.sw.acks == [(msg.digest_id, msg.list_id)]
    assert set(rig.sw.table) == {rig.ik(k) for k in keys}
    assert len(rig.fm) == 4 and rig.fm.stats.setups == 4 and rig.fm.stats.digests == 4
    te = rig.entry(keys[0])
    ids = profile().flow_v4
    assert te.action.action.action_id == ids.forward_id
    assert [p.value for p in te.action.action.params] == [b"\x00", b"\x00", ib(FABRIC_PORT)]
    assert te.idle_timeout_ns == 40 * 10**9  # tcp lifetime from the port's defaults
    ctx = FlowContext.from_metadata(te.metadata, egress_port=FABRIC_PORT)
    assert ctx is not None
    assert (ctx.vmi_id, ctx.ingress_port, ctx.direction, ctx.fingerprint, ctx.lifetime) == (
        VMI_ID, VMI_PORT, dp.DIRECTION_FROM_VM, FP, 40)
    assert ctx.first_seen_ns > 0
    assert rig.entry(keys[3]).idle_timeout_ns == 60 * 10**9  # udp: the default lifetime
    assert rig.sw.table[rig.ik(keys[3])].entry.table_id == profile().flow_v6.table_id


async def test_repeated_digests_and_in_flight_keys_are_not_inserted_twice() -> None:
    rig = await make_rig()
    rig.sw.gate = asyncio.Event()
    a, b = v4key(sport=1), v4key(sport=2)
    rig.send(a, a, b)  # a twice in one list
    await until(lambda: not rig.fm._digests)  # decided, Write in flight
    rig.send(a)  # in flight
    await until(lambda: not rig.fm._digests)
    rig.sw.gate.set()
    await rig.fm.drain()
    rig.send(b)  # installed
    await rig.fm.drain()
    inserts = rig.sw.updates(p4r.Update.INSERT)
    assert len(inserts) == 2
    assert rig.fm.stats.duplicates == 3 and rig.fm.stats.setups == 2
    assert len(rig.sw.acks) == 3  # every list is acked, duplicates included
    await rig.fm.stop()


async def test_backlog_limit_drops_counts_and_acks() -> None:
    rig = await make_rig(FlowSettings(max_inflight=1, backlog_limit=2))
    rig.sw.gate = asyncio.Event()
    first = rig.send(v4key(sport=1))
    await until(lambda: not rig.fm._digests)  # the only Write slot is taken
    second = rig.send(v4key(sport=2), v4key(sport=3))  # backlog 2: at the limit
    third = rig.send(v4key(sport=4))  # beyond it
    assert rig.fm.stats.digest_drops == 1
    assert rig.sw.acks == [(third.digest_id, third.list_id)]  # acked at once, never decided
    rig.sw.gate.set()
    await rig.fm.drain()
    assert {(m.digest_id, m.list_id) for m in (first, second, third)} == set(rig.sw.acks)
    assert rig.ik(v4key(sport=4)) not in rig.fm.index
    assert len(rig.fm) == 3 and rig.fm._backlog == 0
    await rig.fm.stop()


async def test_policy_decision_reaches_the_entry() -> None:
    pol = FixedPolicy(Decision(egress_port=9, lifetime=33, mirror=True, offloaded=True, info=b"app"))
    rig = await make_rig(policy=pol)
    key = v6key()
    rig.send(key)
    await rig.fm.drain()
    assert len(pol.seen) == 1
    seen = pol.seen[0]
    assert (seen.version, seen.vmi_id, seen.direction, seen.ingress_port, seen.key) == (
        6, VMI_ID, dp.DIRECTION_FROM_VM, VMI_PORT, key)
    te = rig.entry(key)
    assert te.action.action.action_id == profile().flow_v6.forward_id
    assert [p.value for p in te.action.action.params] == [b"\x01", b"\x01", b"\x09"]
    assert te.idle_timeout_ns == 33 * 10**9
    assert FlowContext.from_metadata(te.metadata, egress_port=9) == FlowContext(
        False, True, True, 9, 33, VMI_ID, VMI_PORT, dp.DIRECTION_FROM_VM,
        FlowContext.from_metadata(te.metadata).first_seen_ns, FP, b"app")  # type: ignore[union-attr]
    ctx, packets, nbytes = await rig.fm.context_of(rig.ik(key)) or (None, -1, -1)
    assert ctx is not None and ctx.egress_port == 9 and ctx.info == b"app" and (packets, nbytes) == (0, 0)
    await rig.fm.stop()


async def test_drop_decision_installs_the_drop_action() -> None:
    rig = await make_rig(policy=FixedPolicy(Decision(drop=True, lifetime=15)))
    rig.send(v4key())
    await rig.fm.drain()
    te = rig.entry(v4key())
    assert te.action.action.action_id == profile().flow_v4.drop_id and not te.action.action.params
    ctx = FlowContext.from_metadata(te.metadata)
    assert ctx is not None and ctx.verdict_drop and ctx.lifetime == 15
    await rig.fm.stop()


async def test_already_exists_counts_as_installed(rig: Rig) -> None:
    key = v4key()
    rig.sw.table[rig.ik(key)] = Stored(p4r.TableEntry(table_id=profile().flow_v4.table_id))  # e.g. a race
    rig.send(key)
    await rig.fm.drain()
    assert rig.fm.stats.setups == 1 and rig.fm.stats.insert_errors == 0
    assert rig.ik(key) in rig.fm.index


async def test_other_insert_errors_are_counted_not_installed() -> None:
    sw = FakeSwitch(codec(), code_of=lambda u: 3 if u.type == p4r.Update.INSERT else None)
    rig = await make_rig(sw=sw)
    msg = rig.send(v4key())
    await rig.fm.drain()
    assert rig.fm.stats.insert_errors == 1 and rig.fm.stats.setups == 0 and len(rig.fm) == 0
    assert rig.sw.acks == [(msg.digest_id, msg.list_id)]
    assert not rig.fm._pending
    await rig.fm.stop()


async def test_resource_exhausted_recycles_and_retries() -> None:
    rig = await make_rig(sw=FakeSwitch(codec(), capacity=2))
    rig.fm.port_defaults = {}
    rig.fm.fallback_defaults = PortDefaults(lifetimes={6: 100, 17: 10})
    old = v4key(proto=17, sport=1)  # nearest to expiry
    rig.send(v4key(proto=6, sport=2), old)
    await rig.fm.drain()
    rig.sw.table[rig.ik(old)].packets = 4
    rig.sw.table[rig.ik(old)].nbytes = 400
    new = v4key(proto=6, sport=3)
    rig.send(new)
    await rig.fm.drain()
    assert set(rig.sw.table) == {rig.ik(v4key(proto=6, sport=2)), rig.ik(new)}
    assert rig.fm.stats.recycles == 1 and rig.fm.stats.setups == 3 and rig.fm.stats.insert_errors == 0
    assert [(r.reason, r.key, r.packets, r.bytes) for r in rig.records] == [(Reason.RECYCLED, old, 4, 400)]
    # the first INSERT of `new` was refused (table full before max_flows), the retry went in
    assert [rig.codec.index_key_of_entry(u.entity.table_entry) for u in rig.sw.updates(p4r.Update.INSERT)
            ].count(rig.ik(new)) == 2
    await rig.fm.stop()


async def test_capacity_recycles_the_nearest_in_the_same_write() -> None:
    rig = await make_rig(FlowSettings(max_flows=2))
    rig.fm.port_defaults = {}
    rig.fm.fallback_defaults = PortDefaults(lifetimes={6: 100, 17: 10})
    keep, old = v4key(proto=6, sport=2), v4key(proto=17, sport=1)
    rig.send(keep, old)
    await rig.fm.drain()
    rig.sw.table[rig.ik(old)].packets = 2
    new = v6key(proto=6)
    rig.send(new)
    await rig.fm.drain()
    # The victim's delete goes in the same Write as the insert, ahead of it: never above max_flows.
    last = rig.sw.writes[-1]
    assert [u.type for u in last] == [p4r.Update.DELETE, p4r.Update.INSERT]
    assert rig.codec.index_key_of_entry(last[0].entity.table_entry) == rig.ik(old)
    assert set(rig.sw.table) == {rig.ik(keep), rig.ik(new)} and len(rig.fm) == 2
    assert [(r.reason, r.key, r.packets) for r in rig.records] == [(Reason.RECYCLED, old, 2)]
    ctx = rig.records[0].context
    assert ctx is not None and ctx.lifetime == 10 and ctx.vmi_id == VMI_ID
    await rig.fm.stop()


async def test_lifetime_zero_makes_a_record_per_digest_and_no_entry() -> None:
    rig = await make_rig(policy=FixedPolicy(Decision(lifetime=0)))
    key = v4key()
    m1 = rig.send(key)
    m2 = rig.send(key)
    await rig.fm.drain()
    assert not rig.sw.table and not rig.sw.updates()
    assert rig.fm.stats.lifetime0 == 2 and rig.fm.stats.setups == 0
    assert [(r.reason, r.key, r.packets) for r in rig.records] == [(Reason.LIFETIME0, key, 1)] * 2
    assert set(rig.sw.acks) == {(m1.digest_id, m1.list_id), (m2.digest_id, m2.list_id)}
    await rig.fm.stop()


def idle_msg(rig: Rig, *keys: FlowKey) -> p4r.IdleTimeoutNotification:
    msg = p4r.IdleTimeoutNotification(timestamp=1)
    for k in keys:
        te = msg.table_entry.add()
        te.CopyFrom(rig.entry(k))
    return msg


async def test_idle_notifications_read_delete_and_record_with_counters(rig: Rig) -> None:
    a, b = v4key(sport=1), v4key(sport=2)
    rig.send(a, b)
    await rig.fm.drain()
    rig.sw.table[rig.ik(a)].packets, rig.sw.table[rig.ik(a)].nbytes = 7, 700
    rig.fm.idle_timeouts(idle_msg(rig, a))
    await until(lambda: rig.ik(a) not in rig.fm.index)
    assert rig.ik(a) not in rig.sw.table and rig.ik(b) in rig.sw.table
    assert [(r.reason, r.key, r.packets, r.bytes) for r in rig.records] == [(Reason.IDLE, a, 7, 700)]
    rec = rig.records[0]
    assert rec.context is not None and rec.context.lifetime == 40
    assert rec.last_seen_ns == max(rec.first_seen_ns, rec.end_ns - 40 * 10**9)
    assert rig.fm.stats.expiries == 1
    assert rig.sw.reads[-1][0].table_entry.HasField("counter_data")


async def test_idle_but_hit_again_is_kept(rig: Rig) -> None:
    a = v4key()
    rig.send(a)
    await rig.fm.drain()
    rig.sw.table[rig.ik(a)].since_hit_ns = 1_000_000  # hit 1 ms ago (lifetime 40 s)
    assert await rig.fm.remove([rig.ik(a)], Reason.IDLE, check_idle=True) == 0
    assert rig.ik(a) in rig.fm.index and rig.ik(a) in rig.sw.table and not rig.records
    rig.sw.table[rig.ik(a)].since_hit_ns = 39 * 10**9  # really idle
    assert await rig.fm.remove([rig.ik(a)], Reason.IDLE, check_idle=True) == 1
    assert rig.ik(a) not in rig.fm.index and [r.reason for r in rig.records] == [Reason.IDLE]


async def test_remove_of_unknown_or_absent_keys(rig: Rig) -> None:
    a = v4key()
    rig.send(a)
    await rig.fm.drain()
    del rig.sw.table[rig.ik(a)]  # gone from the switch behind our back
    assert await rig.fm.remove([rig.ik(a)], Reason.DELETED) == 0
    assert rig.ik(a) not in rig.fm.index and not rig.records


# ---- hold ---------------------------------------------------------------------------------------

PKT = PacketFields(ip_address("10.0.0.5"), ip_address("20.0.0.9"), 6, 4000, 80)
FRAME = bytes(Ether() / IP(src="10.0.0.5", dst="20.0.0.9") / TCP(sport=4000, dport=80))
HELD_KEY = FlowKey.normal(PKT, 10)


def packet_in(payload: bytes, ingress: int, egress: int, reason: int) -> p4r.PacketIn:
    pin = profile().packet_in_ids
    msg = p4r.PacketIn(payload=payload)
    for name, value in (("ingress_port", ingress), ("egress_port", egress), ("reason", reason)):
        msg.metadata.add(metadata_id=pin[name], value=ib(value))
    return msg


async def hold_rig(policy: object = None, settings: FlowSettings | None = None) -> Rig:
    rig = await make_rig(settings, policy=policy)
    rig.fm.resolver = KeyResolver({VMI_PORT: PortView(VMI_PORT, 10, VMI_ID), FABRIC_PORT: PortView(FABRIC_PORT, 10)})
    return rig


def frame_n(i: int) -> bytes:
    return FRAME + bytes([i])


async def test_held_packets_are_released_by_packet_out_when_installed() -> None:
    rig = await hold_rig()
    for i in range(4):  # the 4th is over the per-flow limit
        rig.fm.packet_in(packet_in(frame_n(i), VMI_PORT, FABRIC_PORT, dp.PUNT_REASON_FLOW_MISS_HOLD))
    assert len(rig.fm.hold) == 3 and rig.fm.hold.dropped == 1 and not rig.sw.packets_out
    rig.send(HELD_KEY)
    await rig.fm.drain()
    out_id = profile().packet_out_ids["egress_port"]
    assert rig.sw.packets_out == [(frame_n(i), {out_id: FABRIC_PORT}) for i in range(3)]
    assert rig.fm.hold.released == 3 and len(rig.fm.hold) == 0
    # installed meanwhile: released without waiting for a digest
    rig.fm.packet_in(packet_in(frame_n(9), VMI_PORT, FABRIC_PORT, dp.PUNT_REASON_FLOW_MISS_HOLD))
    await until(lambda: len(rig.sw.packets_out) == 4)
    assert rig.sw.packets_out[-1] == (frame_n(9), {out_id: FABRIC_PORT})
    await rig.fm.stop()


async def test_release_follows_the_policy_egress_override() -> None:
    rig = await hold_rig(FixedPolicy(Decision(egress_port=4, lifetime=30)))
    rig.fm.packet_in(packet_in(FRAME, VMI_PORT, FABRIC_PORT, dp.PUNT_REASON_FLOW_MISS_HOLD))
    rig.send(HELD_KEY)
    await rig.fm.drain()
    assert rig.sw.packets_out == [(FRAME, {profile().packet_out_ids["egress_port"]: 4})]
    await rig.fm.stop()


async def test_drop_verdict_drops_held_packets() -> None:
    rig = await hold_rig(FixedPolicy(Decision(drop=True, lifetime=30)))
    rig.fm.packet_in(packet_in(FRAME, VMI_PORT, FABRIC_PORT, dp.PUNT_REASON_FLOW_MISS_HOLD))
    rig.send(HELD_KEY)
    await rig.fm.drain()
    assert not rig.sw.packets_out and rig.fm.hold.dropped_by_verdict == 1
    await rig.fm.stop()


async def test_held_packet_of_an_installed_drop_flow_is_not_released() -> None:
    rig = await hold_rig(FixedPolicy(Decision(drop=True, lifetime=30)))
    rig.send(HELD_KEY)
    await rig.fm.drain()
    rig.fm.packet_in(packet_in(FRAME, VMI_PORT, FABRIC_PORT, dp.PUNT_REASON_FLOW_MISS_HOLD))
    try:
        await rig.fm.drain()  # a release may go through a Read of the flow's context
        assert not rig.sw.packets_out
    finally:
        await rig.fm.stop()


async def test_lifetime_zero_releases_held_packets() -> None:
    rig = await hold_rig(FixedPolicy(Decision(lifetime=0)))
    rig.fm.packet_in(packet_in(FRAME, VMI_PORT, FABRIC_PORT, dp.PUNT_REASON_FLOW_MISS_HOLD))
    rig.send(HELD_KEY)
    await rig.fm.drain()
    assert [p for p, _ in rig.sw.packets_out] == [FRAME] and not rig.sw.table
    await rig.fm.stop()


async def test_unresolvable_held_packet_and_mirror_packet_ins() -> None:
    rig = await hold_rig()
    mirrored: list[tuple[bytes, int]] = []
    rig.fm.on_mirror = lambda payload, port: mirrored.append((payload, port))
    rig.fm.packet_in(packet_in(b"\x00" * 20, VMI_PORT, FABRIC_PORT, dp.PUNT_REASON_FLOW_MISS_HOLD))  # not IP
    rig.fm.packet_in(packet_in(FRAME, 42, FABRIC_PORT, dp.PUNT_REASON_FLOW_MISS_HOLD))  # unknown port
    assert rig.fm.hold.dropped == 2 and len(rig.fm.hold) == 0
    rig.fm.packet_in(packet_in(FRAME, VMI_PORT, 0, 0))
    assert mirrored == [(FRAME, VMI_PORT)]
    await rig.fm.stop()


async def test_failed_write_discards_held_packets_and_forgets_pending() -> None:
    rig = await hold_rig()
    rig.sw.fail_writes = True
    rig.fm.packet_in(packet_in(FRAME, VMI_PORT, FABRIC_PORT, dp.PUNT_REASON_FLOW_MISS_HOLD))
    rig.send(HELD_KEY)
    await rig.fm.drain()
    assert not rig.fm._pending and len(rig.fm) == 0 and len(rig.fm.hold) == 0 and rig.fm.hold.dropped == 1
    rig.sw.fail_writes = False
    rig.send(HELD_KEY)  # learned again from its next digest
    await rig.fm.drain()
    assert rig.ik(HELD_KEY) in rig.fm.index
    await rig.fm.stop()


# ---- adoption, flushes, update, stop ------------------------------------------------------------


def stored(rig: Rig, key: FlowKey, ctx: FlowContext) -> None:
    ik = rig.ik(key)
    up = p4r.WriteRequest.FromString(b"\x08\x01" + rig.codec.insert(ik, ctx)).updates[0]
    rig.sw.table[ik] = Stored(up.entity.table_entry, packets=3, nbytes=300)


async def test_adopts_the_switchs_flows_and_flushes_stale_ones() -> None:
    rig = await make_rig(start=False)
    fresh, stale, foreign = v4key(sport=1), v6key(), v4key(sport=3)
    stored(rig, fresh, FlowContext(lifetime=50, vmi_id=VMI_ID, fingerprint=FP))
    stored(rig, stale, FlowContext(lifetime=50, vmi_id=VMI_ID, fingerprint=FP + 1))
    stored(rig, foreign, FlowContext(lifetime=50))
    rig.sw.table[rig.ik(foreign)].entry.metadata = b"not ours"
    rig.sw.table[rig.ik(foreign)].entry.idle_timeout_ns = 20 * 10**9
    await rig.fm.start(rig.sw.session)
    assert set(rig.fm.index) == {rig.ik(fresh), rig.ik(foreign)}
    assert rig.fm.stats.adopted == 2
    assert [(r.reason, r.key, r.packets) for r in rig.records] == [(Reason.FLUSHED, stale, 3)]
    assert rig.fm.stats.flushed == 1
    rig.send(fresh)  # adopted: a digest for it is a duplicate, not a second insert
    await rig.fm.drain()
    assert rig.fm.stats.duplicates == 1 and not rig.sw.updates(p4r.Update.INSERT)
    # a configuration change: the VMI's fingerprint changes, its flows are flushed
    rig.fm.fingerprints = {VMI_ID: 1}
    assert await rig.fm.flush_stale() == 1
    assert set(rig.fm.index) == {rig.ik(foreign)}
    await rig.fm.stop()


async def test_update_modifies_the_entry(rig: Rig) -> None:
    key = v4key()
    rig.send(key)
    await rig.fm.drain()
    events: list[tuple[str, bytes, FlowContext]] = []
    rig.fm.observers.append(lambda *e: events.append(e))
    new = await rig.fm.update(rig.ik(key), offloaded=True, lifetime=300, info=b"x")
    assert new is not None and new.offloaded and new.lifetime == 300 and new.egress_port == FABRIC_PORT
    te = rig.entry(key)
    assert [p.value for p in te.action.action.params] == [b"\x00", b"\x01", ib(FABRIC_PORT)]
    assert te.idle_timeout_ns == 300 * 10**9
    assert FlowContext.from_metadata(te.metadata, egress_port=FABRIC_PORT) == new
    assert events == [("updated", rig.ik(key), new)]
    assert rig.fm.index.expires(rig.ik(key)) is not None
    assert await rig.fm.update(rig.ik(v6key()), offloaded=True) is None


async def test_update_to_lifetime_zero_does_not_make_the_flow_permanent(rig: Rig) -> None:
    key = v4key()
    rig.send(key)
    await rig.fm.drain()
    with pytest.raises(ValueError, match="lifetime"):  # P4Runtime's 0 would mean "never expires"
        await rig.fm.update(rig.ik(key), lifetime=0)
    assert rig.entry(key).idle_timeout_ns > 0


async def test_stop_clears_state_and_ignores_later_messages() -> None:
    rig = await hold_rig(settings=FlowSettings(max_inflight=1))
    rig.sw.gate = asyncio.Event()
    rig.send(v4key(sport=1))
    await until(lambda: not rig.fm._digests)
    rig.send(v4key(sport=2))  # waits in the backlog
    rig.fm.packet_in(packet_in(FRAME, VMI_PORT, FABRIC_PORT, dp.PUNT_REASON_FLOW_MISS_HOLD))
    assert rig.fm._backlog == 1 and len(rig.fm.hold) == 1
    stopping = asyncio.create_task(rig.fm.stop())
    await asyncio.sleep(0)
    rig.sw.gate.set()  # the Write in flight completes
    await stopping
    assert not rig.fm.active
    assert not rig.fm._pending and not rig.fm._digests and rig.fm._backlog == 0 and len(rig.fm.hold) == 0
    assert rig.fm.hold.dropped == 1
    acks = len(rig.sw.acks)
    rig.send(v4key(sport=5))
    rig.fm.idle_timeouts(p4r.IdleTimeoutNotification())
    assert len(rig.sw.acks) == acks and not rig.fm._digests and not rig.fm._idle
    assert rig.ik(v4key(sport=1)) in rig.fm.index  # what was written stays known until the next adoption


async def test_a_malformed_digest_does_not_stop_learning(rig: Rig) -> None:
    bad = digest_data(v4key(sport=1), vmi_id=VMI_ID, direction=dp.DIRECTION_FROM_VM, ingress_port=VMI_PORT)
    bad.struct.members[2].bitstring = b"\x01\x0a\x00\x00\x01"
    rig.fm.digest_list(digest_list([digest_data(v4key(sport=9)), bad]))
    await rig.fm.drain(timeout=1.0)
    rig.send(v4key(sport=2))
    await rig.fm.drain(timeout=1.0)
    assert rig.ik(v4key(sport=2)) in rig.fm.index


def _records_keys(records: Sequence[FlowRecord]) -> list[FlowKey]:
    return [r.key for r in records]


async def test_many_flows_in_batches() -> None:
    rig = await make_rig(FlowSettings(batch_size=16, max_inflight=2))
    keys = [v4key(src=f"10.0.{i // 200}.{i % 200 + 1}", sport=i) for i in range(300)]
    for i in range(0, 300, 10):
        rig.send(*keys[i:i + 10])
    await rig.fm.drain()
    assert len(rig.fm) == 300 and rig.fm.stats.setups == 300 and len(rig.sw.acks) == 30
    assert max(len(w) for w in rig.sw.writes) <= 16 + 10  # a batch closes after the list that reaches 16
    await rig.fm.stop()


async def test_idle_read_asks_for_time_since_last_hit(rig: Rig) -> None:
    a = v4key()
    rig.send(a)
    await rig.fm.drain()
    rig.fm.idle_timeouts(idle_msg(rig, a))
    await until(lambda: rig.ik(a) not in rig.fm.index)
    assert rig.sw.reads[-1][0].table_entry.HasField("time_since_last_hit")


async def test_preinstall_many_is_one_write_with_its_victims_first_and_updates_the_installed() -> None:
    rig = await make_rig(FlowSettings(max_flows=3))
    rig.fm.port_defaults = {}
    rig.fm.fallback_defaults = PortDefaults(lifetimes={6: 100, 17: 10})
    keep, old = v4key(proto=6, sport=2), v4key(proto=17, sport=1)
    rig.send(keep, old)
    await rig.fm.drain()
    writes_before = len(rig.sw.writes)
    ctx = FlowContext(egress_port=FABRIC_PORT, lifetime=300, vmi_id=VMI_ID, offloaded=True)
    fresh = [v4key(proto=6, sport=10 + i) for i in range(2)]
    items = [(rig.ik(fresh[0]), ctx), (rig.ik(keep), ctx), (rig.ik(fresh[1]), ctx), (rig.ik(fresh[0]), ctx)]
    got = await rig.fm.preinstall_many(items)
    assert got == [True, True, True, True]
    inserts = [w for w in rig.sw.writes[writes_before:] if any(u.type == p4r.Update.INSERT for u in w)]
    # both new flows in one Write, after the delete of the one flow recycled to make room (3 - 2 = 1 free)
    assert len(inserts) == 1 and [u.type for u in inserts[0]] == [p4r.Update.DELETE, p4r.Update.INSERT,
                                                                   p4r.Update.INSERT]
    assert rig.codec.index_key_of_entry(inserts[0][0].entity.table_entry) == rig.ik(old)  # nearest expiry
    assert set(rig.sw.table) == {rig.ik(k) for k in (keep, *fresh)} and len(rig.fm) == 3
    for k in (keep, *fresh):  # the installed one got the new context too
        got_ctx = FlowContext.from_metadata(rig.entry(k).metadata)
        assert got_ctx is not None and got_ctx.lifetime == 300 and got_ctx.offloaded
    assert rig.fm.stats.preinstalled == 2 and rig.fm.stats.recycles == 1
    assert [r.reason for r in rig.records] == [Reason.RECYCLED]
    await rig.fm.stop()


async def test_preinstall_many_reports_each_refused_insert() -> None:
    rig = await make_rig()
    ctx = FlowContext(egress_port=FABRIC_PORT, lifetime=30, vmi_id=VMI_ID)
    a, b = v4key(sport=1), v4key(sport=2)
    refused = rig.ik(b)
    rig.sw.code_of = lambda u: (INVALID_ARGUMENT if u.type == p4r.Update.INSERT
                                and rig.codec.index_key_of_entry(u.entity.table_entry) == refused else None)
    assert await rig.fm.preinstall_many([(rig.ik(a), ctx), (rig.ik(b), ctx)]) == [True, False]
    assert set(rig.sw.table) == {rig.ik(a)} and rig.ik(b) not in rig.fm.index
    assert rig.fm.stats.insert_errors == 1
    await rig.fm.stop()

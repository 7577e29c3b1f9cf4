"""flowcodec.py: the hand-assembled wire of flow entries equals what protobuf builds, and decodes back."""

from __future__ import annotations

import dataclasses
import random
from ipaddress import IPv4Address, IPv6Address

from finsy.proto import p4r
from flow_support import codec, ib, key_ints, key_values, profile, v4key, v6key
from hypothesis import given, settings
from hypothesis import strategies as st
from p4fatflow.flowcodec import CONTEXT_SIZE, FlowCodec, FlowContext, canon, varint
from p4fatflow.key import FlowKey


@st.composite
def flow_keys(draw: st.DrawFn) -> FlowKey:
    version = draw(st.sampled_from([4, 6]))
    top = 32 if version == 4 else 128
    splen, dplen = draw(st.integers(0, top)), draw(st.integers(0, top))

    def addr(plen: int) -> IPv4Address | IPv6Address:
        value = draw(st.integers(0, (1 << top) - 1))
        value &= ((1 << plen) - 1) << (top - plen) if plen else 0
        return IPv4Address(value) if version == 4 else IPv6Address(value)

    return FlowKey(draw(st.integers(0, 0xFFFF)), addr(splen), addr(dplen), draw(st.integers(0, 255)),
                   draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)), splen, dplen)


contexts = st.builds(
    FlowContext, verdict_drop=st.booleans(), mirror=st.booleans(), offloaded=st.booleans(),
    egress_port=st.integers(0, 511), lifetime=st.integers(0, 0xFFFFFFFF), vmi_id=st.integers(0, 0xFFFF),
    ingress_port=st.integers(0, 511), direction=st.integers(0, 3), first_seen_ns=st.integers(0, (1 << 64) - 1),
    fingerprint=st.integers(0, 0xFFFFFFFF),
    info=st.binary(max_size=16).map(lambda b: b.rstrip(b"\x00")))


def expected_entry(key: FlowKey, ctx: FlowContext | None) -> p4r.TableEntry:
    """The same entry built field by field with protobuf."""
    prof = profile()
    ids = prof.flow_v4 if key.version == 4 else prof.flow_v6
    te = p4r.TableEntry(table_id=ids.table_id)
    for fid, value in zip(ids.field_ids, key_ints(key), strict=True):
        te.match.add(field_id=fid, exact=p4r.FieldMatch.Exact(value=ib(value)))
    if ctx is None:
        return te
    if ctx.verdict_drop:
        te.action.action.action_id = ids.drop_id
    else:
        te.action.action.action_id = ids.forward_id
        for pid, v in zip(ids.forward_param_ids, (int(ctx.mirror), int(ctx.offloaded), ctx.egress_port), strict=True):
            te.action.action.params.add(param_id=pid, value=ib(v))
    te.idle_timeout_ns = ctx.lifetime * 1_000_000_000
    te.metadata = ctx.metadata()
    return te


def parse_update(wire: bytes) -> p4r.Update:
    req = p4r.WriteRequest.FromString(b"\x08\x01" + wire)
    assert req.device_id == 1 and len(req.updates) == 1
    update: p4r.Update = req.updates[0]
    return update


@given(st.integers(1, (1 << 63) - 1))
def test_varint_is_protobufs(n: int) -> None:  # idle_timeout_ns: int64, 0 is not serialized
    assert p4r.TableEntry(idle_timeout_ns=n).SerializeToString() == b"\x48" + varint(n)


@given(st.binary(max_size=20))
def test_canon(value: bytes) -> None:
    c = canon(value)
    if value:
        assert int.from_bytes(c, "big") == int.from_bytes(value, "big")
        assert c == ib(int.from_bytes(value, "big"))
    else:
        assert c == b""


@settings(max_examples=300, deadline=None)
@given(flow_keys(), contexts, st.booleans())
def test_insert_wire_equals_the_protobuf_entry_and_decodes_back(key: FlowKey, ctx: FlowContext, modify: bool) -> None:
    fc = codec()
    ik = fc.index_key(key.version, key_values(key))
    assert ik[0] == key.version
    up = parse_update(fc.insert(ik, ctx, modify=modify))
    assert up.type == (p4r.Update.MODIFY if modify else p4r.Update.INSERT)
    te = up.entity.table_entry
    assert te == expected_entry(key, ctx)
    assert fc.index_key_of_entry(te) == ik
    assert fc.flow_key(ik) == key
    assert fc.key_values(key) == (key.version, key_values(key))
    assert fc.table_id_of(ik) == te.table_id
    assert fc.is_v4(ik) == (key.version == 4)
    assert FlowContext.from_metadata(te.metadata, egress_port=ctx.egress_port) == ctx


@settings(max_examples=200, deadline=None)
@given(flow_keys(), st.randoms(use_true_random=False))
def test_delete_and_read_wire_and_padded_shuffled_entries_map_to_the_same_key(key: FlowKey, rnd: random.Random) -> None:
    fc = codec()
    ik = fc.index_key(key.version, key_values(key))
    up = parse_update(fc.delete(ik))
    assert up.type == p4r.Update.DELETE
    assert up.entity.table_entry == expected_entry(key, None)
    read = fc.read_entity(ik)
    assert read.table_entry.HasField("counter_data")
    read.table_entry.ClearField("counter_data")
    assert read.table_entry == expected_entry(key, None)
    assert not fc.read_entity(ik, counters=False).table_entry.HasField("counter_data")
    # an entry read back from a target that pads values to full width, fields in any order
    te = expected_entry(key, None)
    ids = profile().flow_v4 if key.version == 4 else profile().flow_v6
    fields = list(te.match)
    for fm, bits in zip(fields, ids.field_bits, strict=True):
        fm.exact.value = int.from_bytes(fm.exact.value, "big").to_bytes((bits + 7) // 8, "big")
    rnd.shuffle(fields)
    del te.match[:]
    te.match.extend(fields)
    assert fc.index_key_of_entry(te) == ik


def test_digest_values_and_key_values_give_one_index_key() -> None:
    fc = codec()
    for key in (v4key(), v6key(), v4key(src="0.0.0.0", splen=0, sport=0), v6key(dst="::", dplen=0, vrf=0)):
        assert fc.index_key(*fc.key_values(key)) == fc.index_key(key.version, key_values(key))
        assert fc.flow_key(fc.index_key(*fc.key_values(key))) == key


def test_drop_verdict_uses_the_drop_action_without_params() -> None:
    fc = codec()
    ik = fc.index_key(*fc.key_values(v4key()))
    te = parse_update(fc.insert(ik, FlowContext(verdict_drop=True, egress_port=5, lifetime=30))).entity.table_entry
    assert te.action.action.action_id == profile().flow_v4.drop_id
    assert not te.action.action.params
    assert te.idle_timeout_ns == 30_000_000_000
    got = FlowContext.from_metadata(te.metadata)
    assert got is not None and got.verdict_drop


def test_action_cache_distinguishes_families_and_decisions() -> None:
    fc = codec()
    k4, k6 = fc.index_key(*fc.key_values(v4key())), fc.index_key(*fc.key_values(v6key()))
    for mirror in (False, True):
        for port in (0, 3, 300):
            for ik, key in ((k4, v4key()), (k6, v6key())):
                ctx = FlowContext(mirror=mirror, egress_port=port)
                assert parse_update(fc.insert(ik, ctx)).entity.table_entry == expected_entry(key, ctx)


def test_index_key_of_entry_refuses_what_is_not_a_flow_entry() -> None:
    fc = codec()
    good = expected_entry(v4key(), None)
    assert fc.index_key_of_entry(good) is not None
    other_table = p4r.TableEntry.FromString(good.SerializeToString())
    other_table.table_id = profile().config_table_ids["ingress.port_map.port_table"]
    assert fc.index_key_of_entry(other_table) is None
    missing = p4r.TableEntry.FromString(good.SerializeToString())
    del missing.match[3]
    assert fc.index_key_of_entry(missing) is None
    unknown = p4r.TableEntry.FromString(good.SerializeToString())
    unknown.match[0].field_id = 99
    assert fc.index_key_of_entry(unknown) is None
    too_long = p4r.TableEntry.FromString(good.SerializeToString())
    too_long.match[1].exact.value = b"\x01\x02\x03\x04\x05"  # 40 bits in a 32-bit field
    assert fc.index_key_of_entry(too_long) is None
    empty = p4r.TableEntry.FromString(good.SerializeToString())
    empty.match[0].exact.value = b""
    assert fc.index_key_of_entry(empty) is None


@given(contexts)
def test_context_metadata_round_trip(ctx: FlowContext) -> None:
    data = ctx.metadata()
    assert len(data) == CONTEXT_SIZE
    assert FlowContext.from_metadata(data, egress_port=ctx.egress_port) == ctx


def test_foreign_metadata_is_no_context() -> None:
    data = FlowContext(vmi_id=3).metadata()
    assert FlowContext.from_metadata(b"") is None
    assert FlowContext.from_metadata(data[:-1]) is None
    assert FlowContext.from_metadata(b"\x02" + data[1:]) is None


def test_flow_key_does_not_depend_on_the_order_of_field_ids() -> None:
    prof = profile()
    perm = (8, 7, 6, 5, 4, 3, 2, 1)
    other = dataclasses.replace(prof, flow_v4=dataclasses.replace(prof.flow_v4, field_ids=perm),
                                flow_v6=dataclasses.replace(prof.flow_v6, field_ids=perm))
    fc = FlowCodec(other)
    key = v4key()
    ik = fc.index_key(*fc.key_values(key))
    assert fc.flow_key(ik) == key

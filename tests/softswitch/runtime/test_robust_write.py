"""Hypothesis-generated Write batches against the fatflow pipeline on a real server: valid
updates mixed with malformed ones (one defect each, with the code the spec asks for).
The server must answer every update with its code, apply exactly the accepted ones and
keep serving; a Read afterwards must show the state the accepted updates produced.

SOFTSWITCH_FUZZ_EXAMPLES=N runs more examples (the committed default is small)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from finsy.proto import p4i, p4r, rpc_code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_robust_harness import ServerThread, fatflow_build

EXAMPLES = int(os.environ.get("SOFTSWITCH_FUZZ_EXAMPLES", "60"))
OK, IA, OOR, NF, AE, UNIMPL = (rpc_code.OK, rpc_code.INVALID_ARGUMENT, rpc_code.OUT_OF_RANGE,
                               rpc_code.NOT_FOUND, rpc_code.ALREADY_EXISTS, rpc_code.UNIMPLEMENTED)
INS, MOD, DEL = p4r.Update.INSERT, p4r.Update.MODIFY, p4r.Update.DELETE
KIND = {p4i.MatchField.EXACT: "exact", p4i.MatchField.LPM: "lpm", p4i.MatchField.TERNARY: "ternary",
        p4i.MatchField.RANGE: "range", p4i.MatchField.OPTIONAL: "optional"}


@dataclass(frozen=True)
class Field:
    id: int
    width: int
    kind: str


@dataclass(frozen=True)
class Action:
    id: int
    params: tuple[tuple[int, int], ...]  # (id, width)


@dataclass(frozen=True)
class Table:
    id: int
    fields: tuple[Field, ...]
    actions: tuple[Action, ...]       # usable in entries
    default_only: tuple[Action, ...]
    timeout: bool

    @property
    def needs_priority(self) -> bool:
        return any(f.kind != "exact" and f.kind != "lpm" for f in self.fields)


def _model(info: p4i.P4Info) -> list[Table]:
    acts = {a.preamble.id: Action(a.preamble.id, tuple((p.id, p.bitwidth) for p in a.params))
            for a in info.actions}
    out = []
    for t in info.tables:
        out.append(Table(
            t.preamble.id, tuple(Field(m.id, m.bitwidth, KIND[m.match_type]) for m in t.match_fields),
            tuple(acts[r.id] for r in t.action_refs if r.scope != p4i.ActionRef.DEFAULT_ONLY),
            tuple(acts[r.id] for r in t.action_refs if r.scope == p4i.ActionRef.DEFAULT_ONLY),
            t.idle_timeout_behavior == p4i.Table.NOTIFY_CONTROL))
    return out


CONFIG, INFO = fatflow_build()
TABLES = _model(INFO)
TABLE_IDS = {t.id for t in TABLES}
ALL_ACTIONS = {a.preamble.id for a in INFO.actions}

Key = tuple[int, tuple[tuple[int, int, int], ...], int]  # table id, ((field id, value, plen/mask), ...), priority
State = dict[Key, tuple[int, tuple[int, ...]]]      # -> (action id, params)


def _bytes(value: int, width: int, pad: int) -> bytes:
    n = max(1, (value.bit_length() + 7) // 8) + pad
    return value.to_bytes(n, "big")


@st.composite
def _value(draw: st.DrawFn, width: int) -> int:
    # small values so that inserts, modifies and deletes hit the same keys
    return draw(st.one_of(st.integers(0, min(2, (1 << width) - 1)), st.integers(0, (1 << width) - 1)))


@dataclass
class Gen:
    update: p4r.Update
    key: Key | None          # the entry a table update refers to (None: not a valid key)
    expected: int | None     # a fixed code, or None: OK / ALREADY_EXISTS / NOT_FOUND by state
    action: tuple[int, tuple[int, ...]] | None = None
    label: str = ""


DEFECTS = ["none", "none", "none", "table_id", "field_id", "missing_exact", "dup_field", "wrong_kind",
           "too_wide", "empty_value", "lpm_bits", "lpm_plen", "priority", "idle_timeout",
           "action_id", "param_id", "missing_param", "dup_param", "param_too_wide", "foreign_action",
           "default_only", "no_action", "update_type", "no_entity", "other_entity", "default_with_match",
           "negative_priority", "padded", "ternary_outside", "ternary_mask0"]


@st.composite
def gen_update(draw: st.DrawFn) -> Gen:
    t = draw(st.sampled_from(TABLES))
    op = draw(st.sampled_from([INS, INS, MOD, DEL]))
    defect = draw(st.sampled_from(DEFECTS))
    pad = 0
    if defect == "padded":
        pad = draw(st.integers(1, 3))
    u = p4r.Update(type=op)
    te = u.entity.table_entry
    te.table_id = t.id
    key: list[tuple[int, int, int]] = []
    for f in t.fields:
        fm = te.match.add(field_id=f.id)
        v = draw(_value(f.width))
        if f.kind == "exact":
            fm.exact.value = _bytes(v, f.width, pad)
            key.append((f.id, v, 0))
        elif f.kind == "ternary":
            mask = draw(st.sampled_from([(1 << f.width) - 1, 1, 0xFF])) if draw(st.booleans()) else \
                draw(st.integers(1, (1 << f.width) - 1))
            v &= mask
            fm.ternary.value = _bytes(v, f.width, pad)
            fm.ternary.mask = _bytes(mask, f.width, pad)
            key.append((f.id, v, mask))
        else:
            plen = draw(st.sampled_from([f.width, f.width // 2, 1, 8]))
            v &= ((1 << f.width) - 1) ^ ((1 << (f.width - plen)) - 1)
            fm.lpm.value = _bytes(v, f.width, pad)
            fm.lpm.prefix_len = plen
            key.append((f.id, v, plen))
    prio = draw(st.integers(1, 3)) if t.needs_priority else 0
    te.priority = prio
    a = draw(st.sampled_from(t.actions))
    te.action.action.action_id = a.id
    params = []
    for pid, w in a.params:
        v = draw(_value(w))
        te.action.action.params.add(param_id=pid, value=_bytes(v, w, pad))
        params.append(v)
    if t.timeout and draw(st.booleans()):
        te.idle_timeout_ns = draw(st.integers(1, 10**12))
    g = Gen(u, (t.id, tuple(sorted(key)), prio), None, (a.id, tuple(params)), defect)
    fi = draw(st.integers(0, len(t.fields) - 1))
    f = t.fields[fi]
    fm = te.match[fi]
    acting = op != DEL  # DELETE ignores the action

    def bad(code: int) -> Gen:
        g.expected, g.key = code, None
        return g

    if defect == "table_id":
        te.table_id = draw(st.integers(0, 2**32 - 1).filter(lambda x: x not in TABLE_IDS))
        return bad(IA)
    if defect == "field_id":
        fm.field_id = draw(st.integers(0, 2**32 - 1).filter(lambda x: x not in {f.id for f in t.fields}))
        return bad(IA)
    if defect == "missing_exact":
        exact = [i for i, f in enumerate(t.fields) if f.kind == "exact"]
        del te.match[draw(st.sampled_from(exact))]
        return bad(IA)
    if defect == "dup_field":
        te.match.add().CopyFrom(fm)
        return bad(IA)
    if defect == "wrong_kind":
        value = getattr(fm, f.kind).value
        other = draw(st.sampled_from([k for k in ("exact", "lpm", "ternary", "range", "optional") if k != f.kind]))
        fm.ClearField(f.kind)
        if other == "exact":
            fm.exact.value = value
        elif other == "lpm":
            fm.lpm.value, fm.lpm.prefix_len = value, f.width
        elif other == "ternary":
            # a mask with value bits outside it too, for good measure
            fm.ternary.value, fm.ternary.mask = value, draw(st.sampled_from([b"\x00", b"\x01", value]))
        elif other == "range":
            fm.range.low, fm.range.high = value, value
        else:
            fm.optional.value = value
        return bad(IA)
    if defect == "too_wide":
        v = draw(st.integers(1 << f.width, 1 << (f.width + 16)))
        getattr(fm, f.kind).value = _bytes(v, f.width, 0)
        return bad(OOR)
    if defect == "empty_value":
        getattr(fm, f.kind).value = b""
        return bad(IA)
    if defect in ("lpm_bits", "lpm_plen"):
        lpms = [i for i, x in enumerate(t.fields) if x.kind == "lpm"]
        if not lpms:
            return g  # no lpm field: stays valid
        fm = te.match[lpms[0]]
        f = t.fields[lpms[0]]
        if defect == "lpm_plen":
            fm.lpm.prefix_len = draw(st.sampled_from([0, -1, f.width + 1, 2**31 - 1]))
        else:
            plen = draw(st.integers(1, f.width - 1))
            fm.lpm.prefix_len = plen
            fm.lpm.value = _bytes(1 << draw(st.integers(0, f.width - plen - 1)), f.width, 0)
        return bad(IA)
    if defect == "priority":
        te.priority = 0 if t.needs_priority else draw(st.integers(1, 2**31 - 1))
        return bad(IA)
    if defect in ("ternary_outside", "ternary_mask0"):
        terns = [i for i, x in enumerate(t.fields) if x.kind == "ternary"]
        if not terns:
            return g
        fm = te.match[terns[0]]
        if defect == "ternary_mask0":
            fm.ternary.mask = b"\x00"
        else:
            fm.ternary.mask = b"\x01"
            fm.ternary.value = b"\x02"
        return bad(IA)
    if defect == "negative_priority":
        te.priority = draw(st.integers(-(2**31), -1))
        return bad(IA)
    if defect == "idle_timeout":
        te.idle_timeout_ns = draw(st.integers(1, 2**63 - 1)) * (1 if not t.timeout else -1)
        if t.timeout and te.idle_timeout_ns > 0:
            return g
        return bad(IA)
    if defect == "default_with_match":
        te.is_default_action = True
        return bad(IA)
    if defect == "update_type":
        u.type = p4r.Update.UNSPECIFIED
        return bad(IA)
    if defect == "no_entity":
        u.ClearField("entity")
        return bad(IA)
    if defect == "other_entity":
        u.ClearField("entity")
        which = draw(st.sampled_from(["action_profile_member", "action_profile_group", "value_set_entry",
                                      "register_entry", "counter_entry", "meter_entry", "extern_entry"]))
        getattr(u.entity, which).SetInParent()
        g.expected, g.key = -1, None  # any clean refusal
        return g
    if not acting:
        return g  # the action defects below do not matter for DELETE
    act = te.action.action
    if defect == "action_id":
        act.action_id = draw(st.integers(0, 2**32 - 1).filter(lambda x: x not in ALL_ACTIONS))
        return bad(IA)
    if defect == "foreign_action":
        act.action_id = draw(st.sampled_from(sorted(ALL_ACTIONS - {x.id for x in t.actions + t.default_only})))
        return bad(IA)
    if defect == "default_only":
        if not t.default_only:
            return g
        act.action_id = t.default_only[0].id
        del act.params[:]
        return bad(IA)
    if defect == "no_action":
        te.ClearField("action")
        return bad(IA)
    if not a.params:
        return g
    pi = draw(st.integers(0, len(a.params) - 1))
    if defect == "param_id":
        act.params[pi].param_id = draw(st.integers(0, 2**32 - 1).filter(lambda x: x not in {p for p, _ in a.params}))
        return bad(IA)
    if defect == "missing_param":
        del act.params[pi]
        return bad(IA)
    if defect == "dup_param":
        act.params.add().CopyFrom(act.params[pi])
        return bad(IA)
    if defect == "param_too_wide":
        w = a.params[pi][1]
        act.params[pi].value = _bytes(draw(st.integers(1 << w, 1 << (w + 16))), w, 0)
        return bad(OOR)
    return g


def _key_of(te: p4r.TableEntry) -> Key:
    out = []
    for m in te.match:
        if m.HasField("exact"):
            out.append((m.field_id, int.from_bytes(m.exact.value, "big"), 0))
        elif m.HasField("ternary"):
            out.append((m.field_id, int.from_bytes(m.ternary.value, "big"), int.from_bytes(m.ternary.mask, "big")))
        else:
            out.append((m.field_id, int.from_bytes(m.lpm.value, "big"), m.lpm.prefix_len))
    return te.table_id, tuple(sorted(out)), te.priority


def _state(s: ServerThread) -> State:
    out: State = {}
    for te in s.read_all_tables():
        for m in te.match:  # reads answer in canonical form
            which = m.WhichOneof("field_match_type")
            v = getattr(m, which).value
            assert v == _bytes(int.from_bytes(v, "big"), 0, 0), te
        params = tuple(int.from_bytes(p.value, "big") for p in te.action.action.params)
        out[_key_of(te)] = (te.action.action.action_id, params)
    return out


@pytest.fixture(scope="module")
def switch() -> Iterator[ServerThread]:
    s = ServerThread()
    s.set_pipeline(CONFIG, INFO, cookie=1)
    yield s
    s.close()


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(batch=st.lists(gen_update(), min_size=1, max_size=12))
def test_write_batches_apply_exactly_the_good_updates(switch: ServerThread, batch: list[Gen]) -> None:
    state = _state(switch)
    expected: list[int] = []
    for g in batch:
        if g.expected is not None:
            expected.append(g.expected)
            continue
        assert g.key is not None
        key = g.key
        op = g.update.type
        if op == INS:
            code = AE if key in state else OK
            if code == OK:
                assert g.action is not None
                state[key] = g.action
        elif key not in state:
            code = NF
        elif op == MOD:
            assert g.action is not None
            code = OK
            state[key] = g.action
        else:
            code = OK
            del state[key]
        expected.append(code)
    codes = switch.write([g.update for g in batch])
    assert len(codes) == len(batch)
    for g, want, got in zip(batch, expected, codes, strict=True):
        if want == -1:
            assert got in (IA, UNIMPL, NF), (g.label, got, g.update)
        else:
            assert got == want, (g.label, rpc_code.Code.Name(want), rpc_code.Code.Name(got), g.update)
    assert _state(switch) == state


# ----------------------------------------------- other entities in the same batches

DIGEST_ID = INFO.digests[0].preamble.id
DIRECT_TABLES = {d.direct_table_id for d in INFO.direct_counters}


@dataclass
class Other:
    update: p4r.Update
    kind: str                # "mc", "clone", "digest", "bad"
    ident: int = 0
    value: bytes = b""       # what a read answers after an accepted INSERT/MODIFY
    expected: int | None = None


@st.composite
def gen_other(draw: st.DrawFn) -> Other:
    op = draw(st.sampled_from([INS, INS, MOD, DEL]))
    u = p4r.Update(type=op)
    kind = draw(st.sampled_from(["mc", "clone", "digest", "bad_pre", "bad_digest", "direct_counter", "default"]))
    if kind in ("mc", "clone"):
        ident = draw(st.integers(1, 3))
        reps = draw(st.lists(st.tuples(st.integers(0, 511), st.integers(0, 2)), max_size=3,
                             unique=True))
        pre = u.entity.packet_replication_engine_entry
        if kind == "mc":
            g = pre.multicast_group_entry
            g.multicast_group_id = ident
        else:
            g = pre.clone_session_entry
            g.session_id = ident
        for port, inst in reps:
            g.replicas.add(egress_port=port, instance=inst)
        out = p4r.PacketReplicationEngineEntry()
        out.CopyFrom(pre)
        return Other(u, kind, ident, out.SerializeToString(deterministic=True))
    if kind == "bad_pre":
        pre = u.entity.packet_replication_engine_entry
        which = draw(st.sampled_from(["zero_mc", "zero_clone", "dup_replica", "empty"]))
        if which == "zero_mc":
            pre.multicast_group_entry.multicast_group_id = 0
        elif which == "zero_clone":
            pre.clone_session_entry.session_id = 0
        elif which == "dup_replica":
            pre.multicast_group_entry.multicast_group_id = draw(st.integers(10, 12))
            pre.multicast_group_entry.replicas.add(egress_port=1, instance=1)
            pre.multicast_group_entry.replicas.add(egress_port=1, instance=1)
            if op == DEL or op == MOD:
                return Other(u, "bad", expected=NF)  # checked before the replicas
        else:
            pre.SetInParent()
        return Other(u, "bad", expected=IA)
    if kind in ("digest", "bad_digest"):
        de = u.entity.digest_entry
        de.digest_id = DIGEST_ID
        de.config.max_timeout_ns = draw(st.integers(0, 10**9))
        de.config.max_list_size = draw(st.integers(0, 5))
        de.config.ack_timeout_ns = draw(st.integers(0, 10**9))
        if kind == "bad_digest":
            if draw(st.booleans()):
                de.digest_id = draw(st.integers(0, 2**32 - 1).filter(lambda x: x != DIGEST_ID))
            else:
                de.config.max_list_size = -1
                return Other(u, "digest_neg", DIGEST_ID)
            return Other(u, "bad", expected=IA)
        out = p4r.DigestEntry()
        out.CopyFrom(de)
        return Other(u, "digest", DIGEST_ID, out.SerializeToString(deterministic=True))
    if kind == "direct_counter":
        dc = u.entity.direct_counter_entry
        dc.table_entry.table_id = draw(st.sampled_from(sorted(t.id for t in TABLES)))
        dc.table_entry.is_default_action = True
        dc.data.packet_count = draw(st.integers(0, 2**63 - 1))
        ok = op == MOD and dc.table_entry.table_id in DIRECT_TABLES
        return Other(u, "bad", expected=OK if ok else IA)
    # a default entry: MODIFY with a default-only action, or DELETE (reset); INSERT is refused
    t = draw(st.sampled_from(TABLES))
    te = u.entity.table_entry
    te.table_id = t.id
    te.is_default_action = True
    if op != DEL and t.default_only:
        te.action.action.action_id = t.default_only[0].id
    return Other(u, "bad", expected=IA if op == INS else OK)


def _others(s: ServerThread) -> dict[tuple[str, int], bytes]:
    out: dict[tuple[str, int], bytes] = {}
    for kind, make in (("mc", lambda e: e.packet_replication_engine_entry.multicast_group_entry.SetInParent()),
                       ("clone", lambda e: e.packet_replication_engine_entry.clone_session_entry.SetInParent()),
                       ("digest", lambda e: e.digest_entry.SetInParent())):
        req = p4r.Entity()
        make(req)
        for ent in s.read(req):
            if kind == "digest":
                out[(kind, ent.digest_entry.digest_id)] = ent.digest_entry.SerializeToString(deterministic=True)
            else:
                pre = ent.packet_replication_engine_entry
                ident = pre.multicast_group_entry.multicast_group_id if kind == "mc" else pre.clone_session_entry.session_id
                out[(kind, ident)] = pre.SerializeToString(deterministic=True)
    return out


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(batch=st.lists(st.one_of(gen_update(), gen_other()), min_size=1, max_size=12))
def test_mixed_entity_batches(switch: ServerThread, batch: list[Gen | Other]) -> None:
    state = _state(switch)
    others = _others(switch)
    expected: list[int] = []
    for g in batch:
        if isinstance(g, Gen):
            if g.expected is not None:
                expected.append(g.expected)
                continue
            assert g.key is not None and g.action is not None
            op, key = g.update.type, g.key
            if op == INS:
                code = AE if key in state else OK
            else:
                code = OK if key in state else NF
            if code == OK:
                if op == DEL:
                    del state[key]
                else:
                    state[key] = g.action
            expected.append(code)
            continue
        if g.expected is not None:
            expected.append(g.expected)
            continue
        op, okey = g.update.type, (g.kind if g.kind != "digest_neg" else "digest", g.ident)
        exists = okey in others
        if op == INS and exists:
            code = AE
        elif op != INS and not exists:
            code = NF
        elif g.kind == "digest_neg" and op != DEL:
            code = IA
        else:
            code = OK
            if op == DEL:
                del others[okey]
            else:
                others[okey] = g.value
        expected.append(code)
    codes = switch.write([g.update for g in batch])
    for g, want, got in zip(batch, expected, codes, strict=True):
        if want == -1:
            assert got in (IA, UNIMPL, NF), (got, g.update)
        else:
            assert got == want, (rpc_code.Code.Name(want), rpc_code.Code.Name(got), g.update)
    assert _state(switch) == state
    assert _others(switch) == others


def test_replica_ports_beyond_9_bits_are_out_of_range(switch: ServerThread) -> None:
    # regression: any uint32 was accepted and written into the 9-bit egress_port of the copies
    def group(gid: int, **port: int | bytes) -> p4r.Update:
        u = p4r.Update(type=p4r.Update.INSERT)
        g = u.entity.packet_replication_engine_entry.multicast_group_entry
        g.multicast_group_id = gid
        g.replicas.add(instance=1, **port)  # type: ignore[arg-type]
        return u

    def session(sid: int, port: int) -> p4r.Update:
        u = p4r.Update(type=p4r.Update.INSERT)
        c = u.entity.packet_replication_engine_entry.clone_session_entry
        c.session_id = sid
        c.replicas.add(egress_port=port, instance=1)
        return u

    codes = switch.write([group(41, egress_port=512), group(42, egress_port=2**32 - 1),
                          group(43, port=b"\x02\x00"), session(44, 1000), group(45, egress_port=511),
                          group(46, port=b"\x01\xff")])
    assert codes == [rpc_code.OUT_OF_RANGE] * 4 + [rpc_code.OK] * 2
    errs = switch.write_errors([group(47, egress_port=600)])
    assert "egress_port 600" in errs[0].message and "9 bits" in errs[0].message
    for gid in (45, 46):
        u = group(gid, egress_port=0)
        u.type = p4r.Update.DELETE
        assert switch.write([u]) == [0]

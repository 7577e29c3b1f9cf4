"""profile.py: the pipeline's names resolve to ids, and a P4Info that lacks one is refused with a
message naming it."""

from __future__ import annotations

from collections.abc import Callable

import finsy
import pytest
from finsy.proto import p4i
from flow_support import schema
from p4fatflow import dataplane as dp
from p4fatflow.profile import PipelineProfile, ProfileError


def p4info() -> p4i.P4Info:
    info: p4i.P4Info = p4i.P4Info.FromString(schema().p4info.SerializeToString())
    return info


def _table(info: p4i.P4Info, name: str) -> p4i.Table:
    table: p4i.Table = next(t for t in info.tables if t.preamble.name == name)
    return table


def _action(info: p4i.P4Info, name: str) -> p4i.Action:
    action: p4i.Action = next(a for a in info.actions if a.preamble.name == name)
    return action


def test_profile_of_the_pipeline() -> None:
    s = schema()
    prof = PipelineProfile.v1model(s, cpu_port=192)
    assert prof.cpu_port == 192
    for ids, name in ((prof.flow_v4, dp.FLOW_V4_TABLE), (prof.flow_v6, dp.FLOW_V6_TABLE)):
        t = s.tables[name]
        assert ids.table_id == t.id
        assert ids.field_ids == tuple(t.match_fields[f].id for f in dp.FLOW_KEY_FIELDS)
        assert ids.field_bits == tuple(t.match_fields[f].bitwidth for f in dp.FLOW_KEY_FIELDS)
        assert ids.forward_id == s.actions[dp.FLOW_FORWARD].id
        assert ids.drop_id == s.actions[dp.FLOW_DROP].id
        fwd = s.actions[dp.FLOW_FORWARD]
        assert ids.forward_param_ids == tuple(fwd.params[p].id for p in ("mirror", "offloaded", "egress_port"))
        assert ids.size == t.size > 0
    assert prof.flow_v4.field_bits[1] == 32 and prof.flow_v6.field_bits[1] == 128
    assert prof.flow_table_ids == (prof.flow_v4.table_id, prof.flow_v6.table_id)
    assert prof.digest_id == s.digests[dp.FLOW_DIGEST].id
    assert prof.digest_members == dp.FLOW_DIGEST_FIELDS
    assert set(prof.packet_in_ids) >= {"ingress_port", "egress_port", "reason"}
    assert set(prof.packet_out_ids) >= {"egress_port"}
    assert prof.config_table_ids[dp.PORT_TABLE] == s.tables[dp.PORT_TABLE].id
    assert len(prof.config_table_ids) == 11
    assert prof.clone_session_id == dp.ANALYZER_CLONE_SESSION_ID


def _drop_table(name: str) -> Callable[[p4i.P4Info], None]:
    def mutate(info: p4i.P4Info) -> None:
        t = _table(info, name)
        info.tables.remove(t)
        for dc in [c for c in info.direct_counters if c.direct_table_id == t.preamble.id]:
            info.direct_counters.remove(dc)
    return mutate


def _rename_field(table: str, field: str) -> Callable[[p4i.P4Info], None]:
    def mutate(info: p4i.P4Info) -> None:
        f = next(f for f in _table(info, table).match_fields if f.name == field)
        f.name = field + "_x"
    return mutate


def _unlist_action(table: str, action: str) -> Callable[[p4i.P4Info], None]:
    def mutate(info: p4i.P4Info) -> None:
        aid = _action(info, action).preamble.id
        t = _table(info, table)
        ref = next(r for r in t.action_refs if r.id == aid)
        t.action_refs.remove(ref)
    return mutate


def _drop_param(action: str, param: str) -> Callable[[p4i.P4Info], None]:
    def mutate(info: p4i.P4Info) -> None:
        a = _action(info, action)
        a.params.remove(next(p for p in a.params if p.name == param))
    return mutate


def _drop_digest(info: p4i.P4Info) -> None:
    del info.digests[:]


def _swap_digest_members(info: p4i.P4Info) -> None:
    members = info.type_info.structs[dp.FLOW_DIGEST].members
    a, b = type(members[2])(), type(members[3])()
    a.CopyFrom(members[2])
    b.CopyFrom(members[3])
    members[2].CopyFrom(b)
    members[3].CopyFrom(a)


def _drop_metadata(header: str, field: str) -> Callable[[p4i.P4Info], None]:
    def mutate(info: p4i.P4Info) -> None:
        c = next(c for c in info.controller_packet_metadata if c.preamble.name == header)
        c.metadata.remove(next(m for m in c.metadata if m.name == field))
    return mutate


def _drop_controller_header(header: str) -> Callable[[p4i.P4Info], None]:
    def mutate(info: p4i.P4Info) -> None:
        info.controller_packet_metadata.remove(
            next(c for c in info.controller_packet_metadata if c.preamble.name == header))
    return mutate


def _rename_table(info: p4i.P4Info) -> None:
    _table(info, dp.FLOW_V4_TABLE).preamble.name = dp.FLOW_V4_TABLE + "_old"


def _no_timeout(info: p4i.P4Info) -> None:
    _table(info, dp.FLOW_V6_TABLE).idle_timeout_behavior = p4i.Table.NO_TIMEOUT


CASES: list[tuple[str, Callable[[p4i.P4Info], None], tuple[str, ...]]] = [
    ("no flow_v6 table", _drop_table(dp.FLOW_V6_TABLE), (dp.FLOW_V6_TABLE, "table")),
    ("flow_v4 renamed", _rename_table, (repr(dp.FLOW_V4_TABLE), "did you mean")),
    ("no rule_v6 table", _drop_table(dp.RULE_V6_TABLE), (dp.RULE_V6_TABLE,)),
    ("no port table", _drop_table(dp.PORT_TABLE), (dp.PORT_TABLE,)),
    ("flow_v4 src_port renamed", _rename_field(dp.FLOW_V4_TABLE, "src_port"),
     (dp.FLOW_V4_TABLE, "'src_port'", "did you mean 'src_port_x'")),
    ("flow_v6 dst_plen renamed", _rename_field(dp.FLOW_V6_TABLE, "dst_plen"), (dp.FLOW_V6_TABLE, "'dst_plen'")),
    ("flow_v4 without flow_drop", _unlist_action(dp.FLOW_V4_TABLE, dp.FLOW_DROP), (dp.FLOW_V4_TABLE, dp.FLOW_DROP)),
    ("flow_forward without offloaded", _drop_param(dp.FLOW_FORWARD, "offloaded"), (dp.FLOW_FORWARD, "offloaded")),
    ("flow_forward without egress_port", _drop_param(dp.FLOW_FORWARD, "egress_port"),
     (dp.FLOW_FORWARD, "egress_port")),
    ("no digest", _drop_digest, (dp.FLOW_DIGEST, "digest")),
    ("digest members reordered", _swap_digest_members, (dp.FLOW_DIGEST, "members")),
    ("packet_in without reason", _drop_metadata("packet_in", "reason"), ("packet_in", "reason")),
    ("packet_out without egress_port", _drop_metadata("packet_out", "egress_port"), ("packet_out", "egress_port")),
    ("no packet_in header", _drop_controller_header("packet_in"), ("packet_in",)),
    ("flow_v6 without idle timeouts", _no_timeout, (dp.FLOW_V6_TABLE, "idle timeout")),
]


@pytest.mark.parametrize(("mutate", "names"), [(m, n) for _, m, n in CASES], ids=[c[0] for c in CASES])
def test_a_p4info_missing_something_is_refused_naming_it(mutate: Callable[[p4i.P4Info], None],
                                                         names: tuple[str, ...]) -> None:
    info = p4info()
    mutate(info)
    mutated = finsy.P4Schema(info)
    with pytest.raises(ProfileError) as exc:
        PipelineProfile.v1model(mutated)
    for name in names:
        assert name in str(exc.value)


def test_the_unmutated_copy_is_accepted() -> None:
    assert PipelineProfile.v1model(finsy.P4Schema(p4info())) == PipelineProfile.v1model(schema())

"""A committed pipeline seen by the P4Runtime layer: the P4Info indexed by id, next to
the device's loaded program."""

from __future__ import annotations

from dataclasses import dataclass

from finsy.proto import p4i

from softswitch.device import LoadedProgram

__all__ = ["MatchFieldInfo", "ParamInfo", "ActionInfo", "TableInfo", "MetadataInfo", "Pipeline"]

_KINDS = {p4i.MatchField.EXACT: "exact", p4i.MatchField.LPM: "lpm", p4i.MatchField.TERNARY: "ternary",
          p4i.MatchField.RANGE: "range", p4i.MatchField.OPTIONAL: "optional"}


@dataclass(frozen=True, slots=True)
class MatchFieldInfo:
    id: int
    name: str
    width: int
    kind: str
    index: int  # position in the table model's key tuple


@dataclass(frozen=True, slots=True)
class ParamInfo:
    id: int
    name: str
    width: int
    index: int


@dataclass(frozen=True, slots=True)
class ActionInfo:
    id: int
    name: str
    params: dict[int, ParamInfo]
    ordered: tuple[ParamInfo, ...]


@dataclass(frozen=True, slots=True)
class TableInfo:
    id: int
    name: str
    fields: dict[int, MatchFieldInfo]
    ordered: tuple[MatchFieldInfo, ...]
    #: action id -> ActionRef scope
    actions: dict[int, int]
    const_default_action_id: int
    is_const: bool
    needs_priority: bool
    supports_timeout: bool
    direct_counter_id: int
    size: int
    #: every match field is exact: writes and reads take a shorter path
    all_exact: bool = False


@dataclass(frozen=True, slots=True)
class MetadataInfo:
    id: int
    name: str
    width: int


class Pipeline:
    """P4Info + loaded program + cookie, with lookups by id and by name."""

    def __init__(self, p4info: p4i.P4Info, loaded: LoadedProgram, cookie: int, source: bytes,
                 reported: p4i.P4Info | None = None) -> None:
        #: the P4Info generated for the program: every lookup below comes from it
        self.p4info = p4info
        #: what GetForwardingPipelineConfig answers: the P4Info the client sent (it agrees
        #: with the generated one, as compare_p4info checked, but may carry more)
        self.reported_p4info = reported if reported is not None else p4info
        self.loaded = loaded
        self.cookie = cookie
        self.source = source
        #: per table id, what its entries share on the wire (runtime/tables.py, Reads)
        self.wire: dict[int, object] = {}
        self.actions: dict[int, ActionInfo] = {}
        self.action_ids: dict[str, int] = {}
        for a in p4info.actions:
            ordered = tuple(ParamInfo(p.id, p.name, p.bitwidth, i) for i, p in enumerate(a.params))
            self.actions[a.preamble.id] = ActionInfo(a.preamble.id, a.preamble.name,
                                                     {p.id: p for p in ordered}, ordered)
            self.action_ids[a.preamble.name] = a.preamble.id
        direct_counter_of: dict[int, int] = {d.direct_table_id: d.preamble.id for d in p4info.direct_counters}
        self.tables: dict[int, TableInfo] = {}
        self.table_ids: dict[str, int] = {}
        for t in p4info.tables:
            fields = tuple(MatchFieldInfo(m.id, m.name, m.bitwidth, _KINDS.get(m.match_type, m.other_match_type), i)
                           for i, m in enumerate(t.match_fields))
            needs_priority = any(f.kind in ("ternary", "range", "optional") for f in fields)
            self.tables[t.preamble.id] = TableInfo(
                t.preamble.id, t.preamble.name, {f.id: f for f in fields}, fields,
                {r.id: r.scope for r in t.action_refs}, t.const_default_action_id, t.is_const_table,
                needs_priority, t.idle_timeout_behavior == p4i.Table.NOTIFY_CONTROL,
                direct_counter_of.get(t.preamble.id, 0), t.size, all(f.kind == "exact" for f in fields))
            self.table_ids[t.preamble.name] = t.preamble.id
        self.counters = {c.preamble.id: c for c in p4info.counters}
        self.direct_counters = {c.preamble.id: c for c in p4info.direct_counters}
        self.registers = {r.preamble.id: r for r in p4info.registers}
        self.digests = {d.preamble.id: d for d in p4info.digests}
        self.digest_ids = {d.preamble.name: d.preamble.id for d in p4info.digests}
        self.packet_in: dict[int, MetadataInfo] = {}
        self.packet_out: dict[int, MetadataInfo] = {}
        for cm in p4info.controller_packet_metadata:
            target = self.packet_in if cm.preamble.name == "packet_in" else (
                self.packet_out if cm.preamble.name == "packet_out" else None)
            if target is not None:
                for m in cm.metadata:
                    target[m.id] = MetadataInfo(m.id, m.name, m.bitwidth)

"""The pipeline profile: every P4Runtime name and target specific the controller relies on, resolved
to ids once against the P4Info the switch runs.

The controller's knowledge of the P4 program lives in two places only: the names
(:mod:`p4fatflow.dataplane`, constants shared with p4src/include/defines.p4) and this module,
which checks them against a P4Info at start and turns them into the numeric ids the fast paths
use. A second pipeline (TNA for Tofino) is a second profile with the same fields, not a rewrite.

A P4Info that lacks an object the controller needs is refused with a :class:`ProfileError` that
names the missing object and, where one is close, what the P4Info has instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

import finsy
from finsy.p4schema import P4Action, P4Table

from p4fatflow import dataplane as dp

__all__ = ["ProfileError", "FlowTableIds", "PipelineProfile", "V1MODEL_FLOW_KEY_ORDER"]

# The flow tables' key fields in the order the digest carries them (flow_digest_t members 1..8).
V1MODEL_FLOW_KEY_ORDER = dp.FLOW_KEY_FIELDS


class ProfileError(ValueError):
    """The P4Info does not have what the controller needs."""


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True, slots=True)
class FlowTableIds:
    """Ids of one flow table (v4 or v6) and of what its entries use."""

    table_id: int
    field_ids: tuple[int, ...]  # in V1MODEL_FLOW_KEY_ORDER
    field_bits: tuple[int, ...]
    forward_id: int  # flow_forward(mirror, offloaded, egress_port)
    forward_param_ids: tuple[int, int, int]
    drop_id: int
    size: int


@dataclass(frozen=True, slots=True)
class PipelineProfile:
    """What the controller needs from one pipeline's P4Info, as ids."""

    flow_v4: FlowTableIds
    flow_v6: FlowTableIds
    digest_id: int
    digest_members: tuple[str, ...]
    packet_in_ids: dict[str, int]
    packet_out_ids: dict[str, int]
    config_table_ids: dict[str, int]  # every non-flow table the configuration writes
    clone_session_id: int
    cpu_port: int

    @property
    def flow_table_ids(self) -> tuple[int, int]:
        return self.flow_v4.table_id, self.flow_v6.table_id

    @classmethod
    def v1model(cls, schema: finsy.P4Schema, *, cpu_port: int = dp.CPU_PORT) -> PipelineProfile:
        """Resolve p4src/fatflow_v1model.p4's names in ``schema``; ProfileError names what is missing."""
        tables = {t.name: t for t in schema.tables}
        actions = {a.name: a for a in schema.actions}

        def table(name: str) -> P4Table:
            t = tables.get(name)
            if t is None:
                raise ProfileError(f"P4Info has no table {name!r}{_suggest(name, tables)}")
            return t

        def action(name: str) -> P4Action:
            a = actions.get(name)
            if a is None:
                raise ProfileError(f"P4Info has no action {name!r}{_suggest(name, actions)}")
            return a

        def flow_ids(name: str) -> FlowTableIds:
            t = table(name)
            fields = {f.name: f for f in t.match_fields}
            ids, bits = [], []
            for fname in V1MODEL_FLOW_KEY_ORDER:
                f = fields.get(fname)
                if f is None:
                    raise ProfileError(f"table {name!r} has no match field {fname!r}{_suggest(fname, fields)}")
                ids.append(f.id)
                bits.append(f.bitwidth)
            table_actions = {a.name for a in t.actions}
            for needed in (dp.FLOW_FORWARD, dp.FLOW_DROP):
                if needed not in table_actions:
                    raise ProfileError(f"table {name!r} does not list action {needed!r}")
            fwd = action(dp.FLOW_FORWARD)
            params = {p.name: p.id for p in fwd.params}
            try:
                pids = (params["mirror"], params["offloaded"], params["egress_port"])
            except KeyError as exc:
                raise ProfileError(f"action {dp.FLOW_FORWARD!r} has no parameter {exc.args[0]!r}") from None
            if t.pbuf.idle_timeout_behavior == 0 and not _supports_timeout(t):
                raise ProfileError(f"table {name!r} does not support idle timeouts (support_timeout = true)")
            return FlowTableIds(t.id, tuple(ids), tuple(bits), fwd.id, pids, action(dp.FLOW_DROP).id, t.size)

        digests = {d.name: d for d in schema.digests}
        digest = digests.get(dp.FLOW_DIGEST)
        if digest is None:
            raise ProfileError(f"P4Info has no digest {dp.FLOW_DIGEST!r}{_suggest(dp.FLOW_DIGEST, digests)}")
        struct = schema.type_info.structs.get(dp.FLOW_DIGEST)
        members = tuple(m.name for m in struct.pbuf.members) if struct is not None else ()
        if members[: len(dp.FLOW_DIGEST_FIELDS)] != dp.FLOW_DIGEST_FIELDS:
            raise ProfileError(f"digest {dp.FLOW_DIGEST!r} members are {members}, expected {dp.FLOW_DIGEST_FIELDS}")

        def packet_meta(which: str, expected: tuple[str, ...]) -> dict[str, int]:
            cpm = {c.name: c for c in schema.controller_packet_metadata}
            c = cpm.get(which)
            if c is None:
                raise ProfileError(f"P4Info has no controller header {which!r}")
            got = {m.name: m.id for m in c.metadata}
            missing = [n for n in expected if n not in got and not n.startswith("_")]
            if missing:
                raise ProfileError(f"controller header {which!r} lacks {', '.join(missing)}")
            return got

        return cls(
            flow_v4=flow_ids(dp.FLOW_V4_TABLE),
            flow_v6=flow_ids(dp.FLOW_V6_TABLE),
            digest_id=digest.id,
            digest_members=members,
            packet_in_ids=packet_meta("packet_in", dp.PACKET_IN_FIELDS),
            packet_out_ids=packet_meta("packet_out", dp.PACKET_OUT_FIELDS),
            config_table_ids={name: table(name).id for name in dp.CONFIG_TABLES},
            clone_session_id=dp.ANALYZER_CLONE_SESSION_ID,
            cpu_port=cpu_port,
        )


def _supports_timeout(table: P4Table) -> bool:
    # P4Info says so with idle_timeout_behavior NOTIFY_CONTROL (1); NO_TIMEOUT is 0.
    return int(table.pbuf.idle_timeout_behavior) != 0

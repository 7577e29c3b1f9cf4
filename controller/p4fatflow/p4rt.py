"""The pipeline's entities as finsy P4Runtime objects (target-agnostic).

The table-entry builder (dataplane.py) speaks in plain :class:`TableWrite` values; this
module turns them into finsy entities and decodes what the switch sends back.

:func:`encode_table_entry` / :func:`decode_table_entry` translate between TableWrite and the
P4Runtime protobuf with a P4Info (finsy's :class:`finsy.P4Schema` for ids and bit widths), so that
what a Read returns can be compared with what the configuration wants (desired.py). Values are
P4Runtime's canonical bytestrings (shortest big-endian, zero as ``b"\\x00"``); decoding accepts
padded values too, and returns canonical TableWrites, so equal entries compare equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import finsy
from finsy.proto import p4r

from p4fatflow import dataplane as dp
from p4fatflow.dataplane import FlowDigest, TableWrite, decode_flow_digest
from p4fatflow.key import FlowKey

__all__ = [
    "table_entry",
    "table_entries",
    "encode_table_entry",
    "decode_table_entry",
    "flow_entry",
    "flow_digest_entry",
    "decode_digest_list",
]


def table_entry(write: TableWrite) -> finsy.P4TableEntry:
    """A finsy table entry for one TableWrite."""
    # finsy takes canonical values as they are: int (exact), (value, prefix_len) for lpm fields and
    # (value, mask) for ternary ones (it tells the two apart by the P4Info).
    return finsy.P4TableEntry(
        write.table,
        match=finsy.P4TableMatch(dict(write.match)),
        action=finsy.P4TableAction(write.action, **dict(write.params)),
        priority=write.priority,
        metadata=write.metadata,
    )


def table_entries(writes: Iterable[TableWrite]) -> list[finsy.P4TableEntry]:
    return [table_entry(w) for w in writes]


def _bytes(value: int, width: int, what: str) -> bytes:
    """P4Runtime's canonical bytestring: the shortest big-endian encoding, zero as one 0 byte."""
    if value < 0 or value >> width:
        raise ValueError(f"{what}: {value} does not fit {width} bits")
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _int(data: bytes, width: int, what: str) -> int:
    # Padded values (longer than the canonical form) are accepted; the value itself must fit.
    value = int.from_bytes(data, "big")
    if not data or value >> width:
        raise ValueError(f"{what}: {data!r} is not a {width}-bit value")
    return value


def encode_table_entry(schema: finsy.P4Schema, w: TableWrite) -> p4r.TableEntry:
    """The P4Runtime TableEntry of ``w`` (ids and bit widths from ``schema``)."""
    table = schema.tables[w.table]
    te = p4r.TableEntry(table_id=table.id, priority=w.priority, metadata=w.metadata)
    # Fields in P4Info id order, as a Read answers them (P4Runtime itself does not mind the order).
    for name, value in sorted(w.match, key=lambda item: table.match_fields[item[0]].id):
        field = table.match_fields[name]
        kind = str(getattr(field.match_type, "name", field.match_type)).lower()
        what = f"{w.table}.{name}"
        fm = te.match.add(field_id=field.id)
        if kind == dp.MATCH_EXACT and isinstance(value, int):
            fm.exact.value = _bytes(value, field.bitwidth, what)
        elif kind == dp.MATCH_LPM and isinstance(value, tuple):
            fm.lpm.value, fm.lpm.prefix_len = _bytes(value[0], field.bitwidth, what), value[1]
        elif kind == dp.MATCH_TERNARY and isinstance(value, tuple):
            fm.ternary.value = _bytes(value[0], field.bitwidth, what)
            fm.ternary.mask = _bytes(value[1], field.bitwidth, what)
        else:
            raise ValueError(f"{what}: cannot encode {value!r} as a {kind} match")
    action = schema.actions[w.action]
    te.action.action.action_id = action.id
    for name, value in w.params:
        param = action.params[name]
        te.action.action.params.add(param_id=param.id,
                                    value=_bytes(value, param.bitwidth, f"{w.action}({name})"))
    return te


def decode_table_entry(schema: finsy.P4Schema, te: p4r.TableEntry) -> TableWrite:
    """The canonical TableWrite of a P4Runtime TableEntry (e.g. one a Read returned)."""
    table = schema.tables[te.table_id]
    match: list[tuple[str, dp.MatchValue]] = []
    for fm in te.match:
        field = table.match_fields[fm.field_id]
        what = f"{table.name}.{field.name}"
        which = fm.WhichOneof("field_match_type")
        if which == "exact":
            match.append((field.name, _int(fm.exact.value, field.bitwidth, what)))
        elif which == "lpm":
            match.append((field.name, (_int(fm.lpm.value, field.bitwidth, what), fm.lpm.prefix_len)))
        elif which == "ternary":
            match.append((field.name, (_int(fm.ternary.value, field.bitwidth, what),
                                       _int(fm.ternary.mask, field.bitwidth, what))))
        else:
            raise ValueError(f"{what}: {which} matches are not used by this pipeline")
    if te.action.WhichOneof("type") != "action":
        raise ValueError(f"{table.name}: only direct actions are supported (got {te.action.WhichOneof('type')})")
    action = schema.actions[te.action.action.action_id]
    params = tuple(
        (action.params[p.param_id].name,
         _int(p.value, action.params[p.param_id].bitwidth, f"{action.name}({action.params[p.param_id].name})"))
        for p in te.action.action.params
    )
    return TableWrite(table.name, tuple(match), action.name, params, te.priority, te.metadata)


def flow_entry(key: FlowKey, *, idle_timeout_ns: int = 0, mirror: int = 0, offloaded: int = 0,
               egress_port: int = 0, drop: bool = False, metadata: bytes = b"") -> finsy.P4TableEntry:
    """The flow-table entry of a (fat) flow with its forwarding context."""
    if drop:
        action = finsy.P4TableAction(dp.FLOW_DROP)
    else:
        action = finsy.P4TableAction(dp.FLOW_FORWARD, mirror=mirror, offloaded=offloaded,
                                     egress_port=egress_port)
    return finsy.P4TableEntry(
        dp.flow_table(key),
        match=finsy.P4TableMatch(dp.flow_match(key)),
        action=action,
        idle_timeout_ns=idle_timeout_ns,
        metadata=metadata,
    )


def flow_digest_entry(*, max_list_size: int = 1, max_timeout_ns: int = 0,
                      ack_timeout_ns: int = 1_000_000_000) -> finsy.P4DigestEntry:
    """The DigestEntry that turns on miss digests (the ack timeout is the switch-side
    duplicate suppression window of spec 4)."""
    return finsy.P4DigestEntry(dp.FLOW_DIGEST, max_list_size=max_list_size,
                               max_timeout_ns=max_timeout_ns, ack_timeout_ns=ack_timeout_ns)


def decode_digest_list(digest_list: Any) -> list[FlowDigest]:
    """Decode every item of a finsy P4DigestList of flow_digest_t."""
    return [decode_flow_digest(item) for item in digest_list.data]

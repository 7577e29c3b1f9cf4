"""The pipeline's entities as finsy P4Runtime objects (target-agnostic).

The table-entry builder (dataplane.py) speaks in plain :class:`TableWrite` values; this
module turns them into finsy entities and decodes what the switch sends back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import finsy

from p4fatflow import dataplane as dp
from p4fatflow.dataplane import FlowDigest, TableWrite, decode_flow_digest
from p4fatflow.key import FlowKey

__all__ = ["table_entry", "table_entries", "flow_entry", "flow_digest_entry", "decode_digest_list"]


def table_entry(write: TableWrite) -> finsy.P4TableEntry:
    """A finsy table entry for one TableWrite."""
    return finsy.P4TableEntry(
        write.table,
        match=finsy.P4TableMatch(write.match),
        action=finsy.P4TableAction(write.action, **write.params),
        priority=write.priority,
    )


def table_entries(writes: Iterable[TableWrite]) -> list[finsy.P4TableEntry]:
    return [table_entry(w) for w in writes]


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

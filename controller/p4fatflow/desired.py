"""Configuration -> the switch state it asks for, and the difference to what a switch holds (pure).

:func:`desired_state` turns one switch of a :class:`~p4fatflow.settings.FatflowConfig` into table
entries keyed by P4Runtime identity (table, match, priority), the clone session and the digest
settings. :func:`diff_entries` compares that with what a Read returned (p4rt.decode_table_entry)
and gives the inserts, modifies and deletes that make the switch match, ordered so that traffic
keeps being classified while they are applied. A reload therefore changes only what changed: rule
priorities depend on each rule alone (dataplane.rule_priority), VMI ids are stable.

VMI ids (the pipeline's 16-bit ``vmi_id``, 0 = none) are kept across restarts: a VMI's port-table
entry carries ``b"vmi:" + name`` as controller metadata, :func:`vmi_ids_from_port_entries` reads
them back, and :func:`allocate_vmi_ids` keeps them. Priority of sources: a fixed ``id`` in the
configuration; then the id the switch knows; then the lowest free id. When a fixed id is the id a
switch gave another VMI, the fixed one wins and the other VMI gets a new id.

The flow tables (flow_v4 / flow_v6) belong to the flow layer and are never part of a diff.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from ipaddress import ip_network
from types import MappingProxyType

from p4fatflow import dataplane as dp
from p4fatflow.dataplane import EntryId, TableWrite
from p4fatflow.settings import DigestSettings, FatflowConfig, SwitchConfig

__all__ = [
    "EntryId",
    "VMI_METADATA_PREFIX",
    "VMI_ID_MAX",
    "CONFIG_TABLES",
    "DesiredState",
    "EntryDiff",
    "vmi_metadata",
    "vmi_ids_from_port_entries",
    "allocate_vmi_ids",
    "desired_state",
    "diff_entries",
]

VMI_METADATA_PREFIX = b"vmi:"
VMI_ID_MAX = 0xFFFF

CONFIG_TABLES = dp.CONFIG_TABLES  # the configuration's tables, in the order changes are applied
_RANK = {table: i for i, table in enumerate(CONFIG_TABLES)}


def vmi_metadata(name: str) -> bytes:
    """The port-table metadata that names a VMI on the switch."""
    return VMI_METADATA_PREFIX + name.encode("utf-8")


def vmi_ids_from_port_entries(entries: Iterable[TableWrite]) -> dict[str, int]:
    """{VMI name: id} from port-table entries read from a switch (entries without our metadata,
    or with a name that does not decode, are skipped; a name seen twice keeps its first id)."""
    out: dict[str, int] = {}
    for w in entries:
        if w.table != dp.PORT_TABLE or w.action != dp.SET_VMI_PORT:
            continue
        if not w.metadata.startswith(VMI_METADATA_PREFIX):
            continue
        try:
            name = w.metadata[len(VMI_METADATA_PREFIX) :].decode("utf-8")
        except UnicodeDecodeError:
            continue
        vmi_id = w.params_dict.get("vmi_id", 0)
        if name and 1 <= vmi_id <= VMI_ID_MAX:
            out.setdefault(name, vmi_id)
    return out


def allocate_vmi_ids(switch: SwitchConfig, known: Mapping[str, int]) -> dict[str, int]:
    """{VMI name: id} for every VMI of ``switch`` (see the module docstring for the rules)."""
    ids: dict[str, int] = {v.name: v.id for v in switch.vmis if v.id is not None}
    used = set(ids.values())
    for v in switch.vmis:
        recovered = known.get(v.name)
        if v.name not in ids and recovered is not None and 1 <= recovered <= VMI_ID_MAX and recovered not in used:
            ids[v.name] = recovered
            used.add(recovered)
    free = (i for i in range(1, VMI_ID_MAX + 1) if i not in used)
    for v in switch.vmis:
        if v.name not in ids:
            try:
                ids[v.name] = next(free)
            except StopIteration:
                raise ValueError(f"switch {switch.name}: more than {VMI_ID_MAX} VMIs") from None
    return {v.name: ids[v.name] for v in switch.vmis}


@dataclass(frozen=True, slots=True)
class DesiredState:
    """What one switch should hold according to the configuration."""

    entries: Mapping[EntryId, TableWrite]
    clone_sessions: Mapping[int, tuple[int, ...]]
    digest: DigestSettings
    vmi_ids: Mapping[str, int]
    # Per VMI id: everything its flow keys depend on (vrf, effective rules, exclude list). When a
    # VMI's fingerprint changes, flows learned under the old one may carry stale keys.
    vmi_fingerprints: Mapping[int, Hashable]


def _add(entries: dict[EntryId, TableWrite], w: TableWrite) -> None:
    other = entries.setdefault(w.entry_id, w)
    if other != w:  # settings.py refuses configurations that could get here
        raise ValueError(f"two different entries with the identity {w.entry_id}: {other} and {w}")


def desired_state(cfg: FatflowConfig, switch: SwitchConfig, known_vmi_ids: Mapping[str, int]) -> DesiredState:
    """The entries, clone sessions and digest settings ``switch`` should have (``cfg`` is the
    configuration it belongs to; ``known_vmi_ids`` what :func:`vmi_ids_from_port_entries` read)."""
    if switch not in cfg.switches:
        raise ValueError(f"switch {switch.name} is not part of this configuration")
    ids = allocate_vmi_ids(switch, known_vmi_ids)
    entries: dict[EntryId, TableWrite] = {}
    fingerprints: dict[int, Hashable] = {}
    by_port = {v.port: ids[v.name] for v in switch.vmis}
    for v in switch.vmis:
        vmi_id = ids[v.name]
        rules, exclude = v.vmi.effective_rules(), v.vmi.exclude_list()
        fingerprints[vmi_id] = (v.vmi.vrf, rules, exclude)
        _add(entries, dp.vmi_port_entry(v.port, vmi_id, v.vmi.vrf, miss_policy=v.miss_policy,
                                        mirror_new_flows=v.mirror_new_flows, flowtable_enabled=v.flowtable,
                                        metadata=vmi_metadata(v.name)))
        for w in dp.fatflow_entries(vmi_id, rules, exclude):
            _add(entries, w)
        for addr in v.addresses:
            prefix = ip_network(f"{addr}/{addr.max_prefixlen}")
            _add(entries, dp.route_entry(prefix, v.port, vrf=v.vmi.vrf, src_mac=switch.router_mac,
                                         dst_mac=v.mac, dst_vmi_id=vmi_id))
    for f in switch.fabric_ports:
        _add(entries, dp.fabric_port_entry(f.port, f.vn.vrf, miss_policy=f.miss_policy,
                                           mirror_new_flows=f.mirror_new_flows, flowtable_enabled=f.flowtable))
    for r in switch.routes:
        # A route to a VMI's port leads to that VMI: traffic from the fabric to it is to-VM.
        _add(entries, dp.route_entry(r.prefix, r.port, vrf=r.vn.vrf, src_mac=switch.router_mac, dst_mac=r.mac,
                                     dst_vmi_id=by_port.get(r.port, 0)))
    analyzer = switch.flowtable.analyzer_port
    clones = {} if analyzer is None else {dp.ANALYZER_CLONE_SESSION_ID: (analyzer,)}
    return DesiredState(
        entries=MappingProxyType(entries),
        clone_sessions=MappingProxyType(clones),
        digest=switch.flowtable.digest,
        vmi_ids=MappingProxyType(ids),
        vmi_fingerprints=MappingProxyType(fingerprints),
    )


@dataclass(frozen=True, slots=True)
class EntryDiff:
    """What to write so that a switch holds the desired entries, in the order to write it:
    all inserts (port table last), then modifies (port table last), then deletes (port table
    first). New rule rows are thus in place before the rows they replace go away, and a VMI's
    classification entries exist whenever its port entry does."""

    insert: tuple[TableWrite, ...] = ()
    modify: tuple[TableWrite, ...] = ()
    delete: tuple[TableWrite, ...] = ()

    def counts(self) -> dict[str, int]:
        return {"insert": len(self.insert), "modify": len(self.modify), "delete": len(self.delete)}

    def __bool__(self) -> bool:
        return bool(self.insert or self.modify or self.delete)

    def steps(self) -> tuple[tuple[str, tuple[TableWrite, ...]], ...]:
        """(operation, entries) batches in application order; empty batches left out."""
        out = (("insert", self.insert), ("modify", self.modify), ("delete", self.delete))
        return tuple((op, ws) for op, ws in out if ws)


def _order(writes: Iterable[TableWrite], reverse: bool = False) -> tuple[TableWrite, ...]:
    # Deterministic order within a table (repr of the identity), tables in CONFIG_TABLES order.
    ordered = sorted(writes, key=lambda w: (_RANK[w.table], repr(w.entry_id)))
    if reverse:
        ordered.sort(key=lambda w: -_RANK[w.table])  # stable: keeps the order within a table
    return tuple(ordered)


def diff_entries(desired: Mapping[EntryId, TableWrite], actual: Mapping[EntryId, TableWrite]) -> EntryDiff:
    """The writes that turn ``actual`` into ``desired``. Only the configuration's tables are
    compared (flow-table entries on either side are ignored). Same identity with a different
    action, params or metadata is a modify."""
    want = {k: w for k, w in desired.items() if w.table in _RANK}
    have = {k: w for k, w in actual.items() if w.table in _RANK}
    insert = [w for k, w in want.items() if k not in have]
    modify = [w for k, w in want.items() if k in have and have[k] != w]
    delete = [w for k, w in have.items() if k not in want]
    return EntryDiff(_order(insert), _order(modify), _order(delete, reverse=True))

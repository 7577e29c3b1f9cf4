"""The P4 pipeline's P4Runtime names and the fat-flow table entries of one VMI (pure, no I/O).

Every name here is what ``p4c --arch v1model --p4runtime-files`` derives from p4src/fatflow_v1model.p4
(control instance path + declaration name; key fields carry ``@name``). docs/pipeline.md describes
what each table does; change both with the P4.

:func:`fatflow_entries` turns a VMI's fat-flow rules and exclude list into the entries of the
exclude, port-match and rule-precedence tables (spec section 3). The rule tables are ternary and
first-hit-by-priority; the priorities implement spec 3.3 exactly as the reference key function
(controller/p4fatflow/key.py, decision (d)) orders rules:

1. port-only rules (no prefix aggregation), configuration order;
2. src-prefix rules, longer rule subnet first (the LOCAL address is matched);
3. dst-prefix rules, longer rule subnet first (the REMOTE address is matched);
4. src+dst-prefix rules, longer local subnet first, then longer remote subnet;

ties (same tier, same lengths) by configuration order. P4Runtime gives a higher priority number
precedence. The priority of a rule's rows is a function of that rule alone (:func:`rule_priority`),
so adding or removing a rule never renumbers another row; rows that tie on priority never match
the same packet (same lengths: equal subnets, one row, or disjoint ones), and the configuration
order decides only which of two rules with the same match is written.

:class:`TableWrite` is canonical (sorted fields, masked values, "don't care" fields left out), so
an entry built here and one read back from a switch (p4rt.decode_table_entry) compare equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from p4fatflow.config import PORTED_PROTOCOLS, FatFlowRule, IgnoreAddress, PrefixAggr, merge_rules
from p4fatflow.key import Direction, FlowKey, PacketFields

__all__ = [
    # constants shared with p4src/include/defines.p4
    "CPU_PORT",
    "DROP_PORT",
    "ANALYZER_CLONE_SESSION_ID",
    "PORT_KIND_VMI",
    "PORT_KIND_FABRIC",
    "MISS_POLICY_FORWARD",
    "MISS_POLICY_DROP",
    "MISS_POLICY_HOLD",
    "DIRECTION_NONE",
    "DIRECTION_FROM_VM",
    "DIRECTION_TO_VM",
    "DIRECTION_TRANSIT",
    "PUNT_REASON_FLOW_MISS_HOLD",
    "FLOW_TABLE_SIZE",
    # tables
    "PORT_TABLE",
    "ROUTE_V4_TABLE",
    "ROUTE_V6_TABLE",
    "EXCLUDE_SRC_V4_TABLE",
    "EXCLUDE_DST_V4_TABLE",
    "EXCLUDE_SRC_V6_TABLE",
    "EXCLUDE_DST_V6_TABLE",
    "PORT_MATCH_SPORT_TABLE",
    "PORT_MATCH_DPORT_TABLE",
    "RULE_V4_TABLE",
    "RULE_V6_TABLE",
    "FLOW_V4_TABLE",
    "FLOW_V6_TABLE",
    "FLOW_COUNTER_V4",
    "FLOW_COUNTER_V6",
    "CONFIG_TABLES",
    # actions
    "NO_ACTION",
    "SET_VMI_PORT",
    "SET_FABRIC_PORT",
    "DROP_UNCONFIGURED_PORT",
    "SET_NEXT_HOP",
    "DROP_NO_ROUTE",
    "SET_EXCLUDED",
    "SET_SPORT_MATCH",
    "SET_DPORT_MATCH",
    "APPLY_RULE_V4",
    "APPLY_RULE_V6",
    "FLOW_FORWARD",
    "FLOW_DROP",
    "FLOW_MISS",
    # key field / param names
    "FLOW_KEY_FIELDS",
    "RULE_KEY_FIELDS",
    "RULE_PARAMS",
    # digest and controller headers
    "FLOW_DIGEST",
    "FLOW_DIGEST_FIELDS",
    "PACKET_IN_FIELDS",
    "PACKET_OUT_FIELDS",
    # entry builder
    "TableWrite",
    "MatchValue",
    "Match",
    "Params",
    "EntryId",
    "MATCH_EXACT",
    "MATCH_LPM",
    "MATCH_TERNARY",
    "MATCH_FIELDS",
    "rule_priority",
    "rule_order",
    "fatflow_entries",
    "flow_key_of_match",
    "vmi_port_entry",
    "fabric_port_entry",
    "route_entry",
    "flow_table",
    "flow_match",
    "FlowDigest",
    "decode_flow_digest",
]

# ---- constants (p4src/include/defines.p4) --------------------------------------------------------

CPU_PORT = 255
DROP_PORT = 511
ANALYZER_CLONE_SESSION_ID = 100

PORT_KIND_VMI = 1
PORT_KIND_FABRIC = 2

MISS_POLICY_FORWARD = 0
MISS_POLICY_DROP = 1
MISS_POLICY_HOLD = 2

DIRECTION_NONE = 0
DIRECTION_FROM_VM = 1
DIRECTION_TO_VM = 2
DIRECTION_TRANSIT = 3

PUNT_REASON_FLOW_MISS_HOLD = 1

FLOW_TABLE_SIZE = 65536  # per family (FLOW_V4_TABLE_SIZE / FLOW_V6_TABLE_SIZE)

# ---- tables, counters, actions -------------------------------------------------------------------

PORT_TABLE = "ingress.port_map.port_table"
ROUTE_V4_TABLE = "ingress.routing.route_v4"
ROUTE_V6_TABLE = "ingress.routing.route_v6"
EXCLUDE_SRC_V4_TABLE = "ingress.fatflow.exclude_src_v4"
EXCLUDE_DST_V4_TABLE = "ingress.fatflow.exclude_dst_v4"
EXCLUDE_SRC_V6_TABLE = "ingress.fatflow.exclude_src_v6"
EXCLUDE_DST_V6_TABLE = "ingress.fatflow.exclude_dst_v6"
PORT_MATCH_SPORT_TABLE = "ingress.fatflow.port_match_sport"
PORT_MATCH_DPORT_TABLE = "ingress.fatflow.port_match_dport"
RULE_V4_TABLE = "ingress.fatflow.rule_v4"
RULE_V6_TABLE = "ingress.fatflow.rule_v6"
FLOW_V4_TABLE = "ingress.flowtable.flow_v4"
FLOW_V6_TABLE = "ingress.flowtable.flow_v6"
FLOW_COUNTER_V4 = "ingress.flowtable.flow_counter_v4"
FLOW_COUNTER_V6 = "ingress.flowtable.flow_counter_v6"

NO_ACTION = "NoAction"
# params: vmi_id, vrf, miss_policy, mirror_new_flows, flowtable_enabled
SET_VMI_PORT = "ingress.port_map.set_vmi_port"
# params: vrf, miss_policy, mirror_new_flows, flowtable_enabled
SET_FABRIC_PORT = "ingress.port_map.set_fabric_port"
DROP_UNCONFIGURED_PORT = "ingress.port_map.drop_unconfigured_port"
# params: port, src_mac, dst_mac, dst_vmi_id
SET_NEXT_HOP = "ingress.routing.set_next_hop"
DROP_NO_ROUTE = "ingress.routing.drop_no_route"
SET_EXCLUDED = "ingress.fatflow.set_excluded"
SET_SPORT_MATCH = "ingress.fatflow.set_sport_match"
SET_DPORT_MATCH = "ingress.fatflow.set_dport_match"
# params: RULE_PARAMS
APPLY_RULE_V4 = "ingress.fatflow.apply_rule_v4"
APPLY_RULE_V6 = "ingress.fatflow.apply_rule_v6"
# params: mirror, offloaded, egress_port (0 = the route's port)
FLOW_FORWARD = "ingress.flowtable.flow_forward"
FLOW_DROP = "ingress.flowtable.flow_drop"
FLOW_MISS = "ingress.flowtable.flow_miss"

# The tables the configuration owns, in the order a change is applied to them: everything a VMI's
# packets are classified with is in place before its port entry makes packets arrive as that VMI
# (and the port entry goes first when a VMI is removed). The flow tables are the flow layer's.
CONFIG_TABLES = (
    EXCLUDE_SRC_V4_TABLE,
    EXCLUDE_DST_V4_TABLE,
    EXCLUDE_SRC_V6_TABLE,
    EXCLUDE_DST_V6_TABLE,
    PORT_MATCH_SPORT_TABLE,
    PORT_MATCH_DPORT_TABLE,
    RULE_V4_TABLE,
    RULE_V6_TABLE,
    ROUTE_V4_TABLE,
    ROUTE_V6_TABLE,
    PORT_TABLE,
)

FLOW_KEY_FIELDS = ("vrf", "src_addr", "dst_addr", "protocol", "src_port", "dst_port", "src_plen", "dst_plen")
RULE_KEY_FIELDS = ("vmi_id", "protocol", "port", "local_addr", "remote_addr")
RULE_PARAMS = ("local_mask", "local_plen", "remote_mask", "remote_plen")

# ---- digest and controller headers ---------------------------------------------------------------

FLOW_DIGEST = "flow_digest_t"
# Struct members in order. Addresses are 128-bit; an IPv4 address is in the low 32 bits.
FLOW_DIGEST_FIELDS = (
    "ip_version",
    "vrf",
    "src_addr",
    "dst_addr",
    "protocol",
    "src_port",
    "dst_port",
    "src_plen",
    "dst_plen",
    "vmi_id",
    "direction",
    "ingress_port",
    "pkt_src_addr",
    "pkt_dst_addr",
    "pkt_src_port",
    "pkt_dst_port",
)
PACKET_IN_FIELDS = ("ingress_port", "egress_port", "reason", "vmi_id", "_pad")
PACKET_OUT_FIELDS = ("egress_port", "_pad")

# ---- entry builder -------------------------------------------------------------------------------

# Canonical match values (P4Runtime's identity of an entry must compare equal whenever two entries
# are the same entry): exact -> int; lpm -> (value, prefix_len) with the value masked to the prefix;
# ternary -> (value, mask) with the value masked. A field with prefix 0 / mask 0 is "don't care" and
# is left out, as P4Runtime requires.
MatchValue = int | tuple[int, int]
Match = tuple[tuple[str, MatchValue], ...]
Params = tuple[tuple[str, int], ...]
EntryId = tuple[str, Match, int]

MATCH_EXACT = "exact"
MATCH_LPM = "lpm"
MATCH_TERNARY = "ternary"

# (field, match kind, bit width) of every table's key, as declared in p4src (test_dataplane.py checks
# them against the P4Info). TableWrite uses them to canonicalise values it is given.
MATCH_FIELDS: Mapping[str, tuple[tuple[str, str, int], ...]] = {
    PORT_TABLE: (("ingress_port", MATCH_EXACT, 9),),
    ROUTE_V4_TABLE: (("vrf", MATCH_EXACT, 16), ("dst_addr", MATCH_LPM, 32)),
    ROUTE_V6_TABLE: (("vrf", MATCH_EXACT, 16), ("dst_addr", MATCH_LPM, 128)),
    **{t: (("vmi_id", MATCH_EXACT, 16), ("addr", MATCH_LPM, 32))
       for t in (EXCLUDE_SRC_V4_TABLE, EXCLUDE_DST_V4_TABLE)},
    **{t: (("vmi_id", MATCH_EXACT, 16), ("addr", MATCH_LPM, 128))
       for t in (EXCLUDE_SRC_V6_TABLE, EXCLUDE_DST_V6_TABLE)},
    **{t: (("vmi_id", MATCH_EXACT, 16), ("protocol", MATCH_EXACT, 8), ("port", MATCH_EXACT, 16))
       for t in (PORT_MATCH_SPORT_TABLE, PORT_MATCH_DPORT_TABLE)},
    **{t: (("vmi_id", MATCH_EXACT, 16), ("protocol", MATCH_EXACT, 8), ("port", MATCH_EXACT, 16),
           ("local_addr", MATCH_TERNARY, w), ("remote_addr", MATCH_TERNARY, w))
       for t, w in ((RULE_V4_TABLE, 32), (RULE_V6_TABLE, 128))},
    **{t: tuple((f, MATCH_EXACT, {"vrf": 16, "protocol": 8, "src_port": 16, "dst_port": 16,
                                   "src_plen": 8, "dst_plen": 8}.get(f, w)) for f in FLOW_KEY_FIELDS)
       for t, w in ((FLOW_V4_TABLE, 32), (FLOW_V6_TABLE, 128))},
}
_FIELD_INFO: Mapping[str, Mapping[str, tuple[str, int]]] = {
    table: {name: (kind, width) for name, kind, width in fields} for table, fields in MATCH_FIELDS.items()
}

_MAX_PLEN = {4: 32, 6: 128}


def _prefix_mask(width: int, plen: int) -> int:
    return ((1 << width) - 1) ^ ((1 << (width - plen)) - 1)


def _canonical_value(table: str, name: str, value: object) -> MatchValue | None:
    """One match value in canonical form, None for "don't care"; ValueError when it cannot fit."""
    kind, width = _FIELD_INFO.get(table, {}).get(name, ("", 0))
    where = f"{table}.{name}"
    if isinstance(value, str):
        value = ip_network(value, strict=False)
    if isinstance(value, IPv4Network | IPv6Network):
        if width and width != value.max_prefixlen:
            raise ValueError(f"{where}: {value} does not fit a {width}-bit field")
        second = int(value.netmask) if kind == MATCH_TERNARY else value.prefixlen
        value = (int(value.network_address), second)
    if isinstance(value, IPv4Address | IPv6Address):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if kind not in ("", MATCH_EXACT):
            raise ValueError(f"{where}: an {kind} field needs a (value, {'mask' if kind == MATCH_TERNARY else 'prefix_len'}) pair")
        if value < 0 or (width and value >> width):
            raise ValueError(f"{where}: {value} does not fit {width} bits")
        return value
    if (isinstance(value, tuple) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        v, second = value
        if kind == MATCH_EXACT:
            raise ValueError(f"{where}: an exact field needs an int, got {value!r}")
        if second == 0:
            return None  # prefix 0 / mask 0: P4Runtime's "don't care", left out
        if kind == MATCH_LPM:
            if second > width:
                raise ValueError(f"{where}: prefix length {second} is longer than {width} bits")
            return v & _prefix_mask(width, second), second
        if kind == MATCH_TERNARY and (v >> width or second >> width):
            raise ValueError(f"{where}: {value!r} does not fit {width} bits")
        # Ternary (or a table this module does not know, where the pair is taken as given).
        return (v & second, second) if kind == MATCH_TERNARY else (v, second)
    raise ValueError(f"{where}: unsupported match value {value!r}")


@dataclass(frozen=True, slots=True)
class TableWrite:
    """One table entry: comparable and hashable, with P4Runtime's identity in :attr:`entry_id`.

    ``match`` holds canonical values sorted by field name (construction canonicalises whatever it is
    given); a field left out is a wildcard (ternary mask 0, lpm prefix length 0). ``metadata`` is the
    entry's controller metadata (P4Runtime ``TableEntry.metadata``). Use :meth:`of` to build one from
    dicts and friendlier values ("10.0.0.0/8", networks, addresses).
    """

    table: str
    match: Match
    action: str
    params: Params = ()
    priority: int = 0
    metadata: bytes = b""

    def __post_init__(self) -> None:
        match: dict[str, MatchValue] = {}
        for name, value in self.match:
            if name in match:
                raise ValueError(f"{self.table}: match field {name} given twice")
            canonical = _canonical_value(self.table, name, value)
            if canonical is not None:
                match[name] = canonical
        known = _FIELD_INFO.get(self.table)
        unknown = sorted(set(match) - set(known)) if known is not None else []
        if unknown:
            raise ValueError(f"{self.table}: unknown match field(s) {', '.join(unknown)}")
        params = dict(self.params)
        if len(params) != len(self.params):
            raise ValueError(f"{self.table}: an action parameter of {self.action} is given twice")
        object.__setattr__(self, "match", tuple(sorted(match.items())))
        object.__setattr__(self, "params", tuple(sorted(params.items())))
        object.__setattr__(self, "metadata", bytes(self.metadata))

    @classmethod
    def of(cls, table: str, match: Mapping[str, object], action: str,
           params: Mapping[str, int] | None = None, *, priority: int = 0,
           metadata: bytes = b"") -> TableWrite:
        """A TableWrite from dicts; match values may also be "10.0.0.0/8", networks or addresses."""
        return cls(table, tuple(match.items()), action,  # type: ignore[arg-type]
                   tuple((params or {}).items()), priority, metadata)

    @property
    def entry_id(self) -> EntryId:
        """P4Runtime's identity of the entry: (table, match, priority)."""
        return self.table, self.match, self.priority

    @property
    def match_dict(self) -> dict[str, MatchValue]:
        return dict(self.match)

    @property
    def params_dict(self) -> dict[str, int]:
        return dict(self.params)


def _mask(version: int, plen: int) -> int:
    return _prefix_mask(_MAX_PLEN[version], plen)


def _subnet_len(aggr: PrefixAggr | None) -> int:
    return -1 if aggr is None else aggr.subnet.prefixlen


def _tier(rule: FatFlowRule) -> int:
    src, dst = rule.src_prefix_aggr is not None, rule.dst_prefix_aggr is not None
    if not src and not dst:
        return 0
    if src and not dst:
        return 1
    if dst and not src:
        return 2
    return 3


def rule_priority(rule: FatFlowRule) -> int:
    """The rule-table priority of ``rule``'s rows: a pure function of the rule's shape.

    Only rows of one VMI/protocol/port compete for a packet, and two rows of one tier that both
    match a packet always differ in a subnet length (same-length subnets are equal, giving the
    same match and one row, or disjoint). So (4 - tier, local subnet length, remote subnet
    length) orders spec 3.3 exactly, and adding or removing a rule never renumbers another row
    (priority is part of a ternary entry's identity: a renumbered row is a delete + insert).
    Tier 0 port-only (0, 0), 1 src-prefix (src len, 0), 2 dst-prefix (dst len, 0), 3 both
    (src len, dst len). P4Runtime: higher wins, and it must be > 0.
    """
    tier = _tier(rule)
    src, dst = _subnet_len(rule.src_prefix_aggr), _subnet_len(rule.dst_prefix_aggr)
    a, b = {0: (0, 0), 1: (src, 0), 2: (dst, 0), 3: (src, dst)}[tier]
    return (((4 - tier) << 16) | (a << 8) | b) + 1


def rule_order(rules: Sequence[FatFlowRule]) -> tuple[FatFlowRule, ...]:
    """The rules (identical ones merged) in spec 3.3 precedence order, first = strongest.

    Only rules of one (protocol, port) ever compete for a packet, but one global order is
    consistent with every per-port order. It is the order of :func:`rule_priority` (descending).
    """
    merged = merge_rules(rules)
    # sorted() is stable: equal keys keep configuration order (the spec's tie-breaker).
    return tuple(sorted(merged, key=lambda r: -rule_priority(r)))


def _side(version: int, ignored: bool, aggr: PrefixAggr | None) -> tuple[int, int]:
    """(mask, plen) the rule applies to one side of the key."""
    if ignored:
        return 0, 0
    if aggr is None:
        return _mask(version, _MAX_PLEN[version]), _MAX_PLEN[version]
    return _mask(version, aggr.plen), aggr.plen


def _families(rule: FatFlowRule) -> tuple[int, ...]:
    version = rule.version
    return (4, 6) if version is None else (version,)


def _check_vmi_id(vmi_id: int) -> None:
    if isinstance(vmi_id, bool) or not isinstance(vmi_id, int) or not 1 <= vmi_id <= 0xFFFF:
        raise ValueError(
            f"vmi_id must be an integer 1-65535 (0 means 'no VMI' in the pipeline), got {vmi_id!r}"
        )


def _exclude_entries(vmi_id: int, exclude: Sequence[IPv4Network | IPv6Network]) -> list[TableWrite]:
    writes: list[TableWrite] = []
    for net in dict.fromkeys(exclude):
        if not isinstance(net, IPv4Network | IPv6Network):
            raise TypeError(f"exclude list entries must be IPv4Network/IPv6Network, got {net!r}")
        tables = (
            (EXCLUDE_SRC_V4_TABLE, EXCLUDE_DST_V4_TABLE)
            if net.version == 4
            else (EXCLUDE_SRC_V6_TABLE, EXCLUDE_DST_V6_TABLE)
        )
        # A /0 becomes P4Runtime's "don't care" (the field is left out) in TableWrite.
        match = (("vmi_id", vmi_id), ("addr", (int(net.network_address), net.prefixlen)))
        for table in tables:
            writes.append(TableWrite(table, match, SET_EXCLUDED))
    return writes


def _port_match_entries(vmi_id: int, rules: Sequence[FatFlowRule]) -> list[TableWrite]:
    writes: list[TableWrite] = []
    seen: set[tuple[int, int]] = set()
    for rule in rules:
        if rule.port == 0 or rule.protocol not in PORTED_PROTOCOLS:
            continue
        key = (rule.protocol, rule.port)
        if key in seen:
            continue
        seen.add(key)
        for table, action in (
            (PORT_MATCH_SPORT_TABLE, SET_SPORT_MATCH),
            (PORT_MATCH_DPORT_TABLE, SET_DPORT_MATCH),
        ):
            match = (("vmi_id", vmi_id), ("protocol", rule.protocol), ("port", rule.port))
            writes.append(TableWrite(table, match, action))
    return writes


def _rule_entries(vmi_id: int, rules: Sequence[FatFlowRule]) -> list[TableWrite]:
    # Rule-table rows in precedence order; a row whose match repeats an earlier one's could never
    # hit (the earlier row always wins), so it is not written.
    writes: list[TableWrite] = []
    seen: set[tuple[str, Match]] = set()
    for rule in rule_order(rules):
        # Protocols without ports only ever look up port 0 (config.py rejects a nonzero port there).
        port = rule.port if rule.protocol in PORTED_PROTOCOLS else 0
        for version in _families(rule):
            table, action = (RULE_V4_TABLE, APPLY_RULE_V4) if version == 4 else (RULE_V6_TABLE, APPLY_RULE_V6)
            match: list[tuple[str, MatchValue]] = [("vmi_id", vmi_id), ("protocol", rule.protocol), ("port", port)]
            for name, aggr in (("local_addr", rule.src_prefix_aggr), ("remote_addr", rule.dst_prefix_aggr)):
                if aggr is not None:
                    match.append((name, (int(aggr.subnet.network_address), int(aggr.subnet.netmask))))
            local_mask, local_plen = _side(
                version, rule.ignore_address is IgnoreAddress.SRC, rule.src_prefix_aggr
            )
            remote_mask, remote_plen = _side(
                version, rule.ignore_address is IgnoreAddress.DST, rule.dst_prefix_aggr
            )
            params = (("local_mask", local_mask), ("local_plen", local_plen),
                      ("remote_mask", remote_mask), ("remote_plen", remote_plen))
            write = TableWrite(table, tuple(match), action, params, priority=rule_priority(rule))
            # Identity without the priority: a /0 subnet is a wildcard, so such a row has the same
            # match as a port-only row, which always wins; it is not written either.
            identity = (table, write.match)
            if identity in seen:
                continue
            seen.add(identity)
            writes.append(write)
    return writes


def fatflow_entries(
    vmi_id: int, rules: Sequence[FatFlowRule], exclude: Sequence[IPv4Network | IPv6Network]
) -> list[TableWrite]:
    """All exclude, port-match and rule-precedence entries for one VMI (spec section 3).

    - exclude: every network once in exclude_src_* and once in exclude_dst_* of its family;
    - port match: every nonzero (protocol, port) of a TCP/UDP/SCTP rule once in port_match_sport and
      once in port_match_dport (shared by both families, like the key function's port match);
    - rule_v4 / rule_v6: one ternary entry per rule and family (a port-only rule goes to both
      families, a prefix rule to its own), priorities as in :func:`rule_order`.
    """
    _check_vmi_id(vmi_id)
    for i, rule in enumerate(rules, 1):
        if not isinstance(rule, FatFlowRule):
            raise TypeError(f"rule {i}: expected a FatFlowRule, got {type(rule).__name__}")
    return [
        *_exclude_entries(vmi_id, exclude),
        *_port_match_entries(vmi_id, merge_rules(rules)),
        *_rule_entries(vmi_id, rules),
    ]


# ---- ports and routes -----------------------------------------------------------------------------


def vmi_port_entry(port: int, vmi_id: int, vrf: int, *, miss_policy: int = MISS_POLICY_FORWARD,
                   mirror_new_flows: bool = False, flowtable_enabled: bool = True,
                   metadata: bytes = b"") -> TableWrite:
    """The port-table entry making ``port`` the port of VMI ``vmi_id`` in ``vrf``. ``metadata``
    (desired.py: ``b"vmi:" + name``) lets a restarted controller recover the VMI's id."""
    _check_vmi_id(vmi_id)
    return TableWrite.of(PORT_TABLE, {"ingress_port": port}, SET_VMI_PORT,
                         dict(vmi_id=vmi_id, vrf=vrf, miss_policy=miss_policy,
                              mirror_new_flows=int(mirror_new_flows),
                              flowtable_enabled=int(flowtable_enabled)), metadata=metadata)


def fabric_port_entry(port: int, vrf: int, *, miss_policy: int = MISS_POLICY_FORWARD,
                      mirror_new_flows: bool = False, flowtable_enabled: bool = True) -> TableWrite:
    """The port-table entry making ``port`` a fabric (uplink) port in ``vrf``."""
    return TableWrite.of(PORT_TABLE, {"ingress_port": port}, SET_FABRIC_PORT,
                         dict(vrf=vrf, miss_policy=miss_policy, mirror_new_flows=int(mirror_new_flows),
                              flowtable_enabled=int(flowtable_enabled)))


def route_entry(prefix: IPv4Network | IPv6Network, port: int, *, vrf: int, src_mac: int, dst_mac: int,
                dst_vmi_id: int = 0) -> TableWrite:
    """A route of ``vrf`` to the next hop on ``port`` (``dst_vmi_id``: the local VMI the prefix
    belongs to, 0 when it is not local)."""
    table = ROUTE_V4_TABLE if prefix.version == 4 else ROUTE_V6_TABLE
    return TableWrite.of(table, {"vrf": vrf, "dst_addr": prefix}, SET_NEXT_HOP,
                         dict(port=port, src_mac=src_mac, dst_mac=dst_mac, dst_vmi_id=dst_vmi_id))


# ---- flow table and digest -----------------------------------------------------------------------


def flow_table(key: FlowKey) -> str:
    """The flow table of the key's address family."""
    return FLOW_V4_TABLE if key.version == 4 else FLOW_V6_TABLE


def flow_match(key: FlowKey) -> dict[str, int]:
    """The exact match of ``key`` in :func:`flow_table` (all fields present, as P4Runtime requires)."""
    return {
        "vrf": key.vrf,
        "src_addr": int(key.src),
        "dst_addr": int(key.dst),
        "protocol": key.protocol,
        "src_port": key.sport,
        "dst_port": key.dport,
        "src_plen": key.src_plen,
        "dst_plen": key.dst_plen,
    }


def flow_key_of_match(table: str, match: Mapping[str, int]) -> FlowKey:
    """The key of a flow entry read back from ``table`` (the inverse of :func:`flow_match`);
    ``table`` may be the full name or its P4Info alias (``flow_v4``)."""
    if table in (FLOW_V4_TABLE, FLOW_V4_TABLE.rsplit(".", 1)[1]):
        addr: type[IPv4Address] | type[IPv6Address] = IPv4Address
    elif table in (FLOW_V6_TABLE, FLOW_V6_TABLE.rsplit(".", 1)[1]):
        addr = IPv6Address
    else:
        raise ValueError(f"{table!r} is not a flow table ({FLOW_V4_TABLE} or {FLOW_V6_TABLE})")
    missing = [f for f in FLOW_KEY_FIELDS if f not in match]
    if missing:
        raise ValueError(f"{table}: match lacks {', '.join(missing)}")
    return FlowKey(vrf=match["vrf"], src=addr(match["src_addr"]), dst=addr(match["dst_addr"]),
                   protocol=match["protocol"], sport=match["src_port"], dport=match["dst_port"],
                   src_plen=match["src_plen"], dst_plen=match["dst_plen"])


_DIRECTIONS = {DIRECTION_FROM_VM: Direction.FROM_VM, DIRECTION_TO_VM: Direction.TO_VM}


@dataclass(frozen=True, slots=True)
class FlowDigest:
    """One decoded ``flow_digest_t``: the key the pipeline looked up and where the packet came from.

    ``direction`` is None for transit traffic (fabric to fabric, ``vmi_id`` 0).
    """

    key: FlowKey
    vmi_id: int
    direction: Direction | None
    ingress_port: int
    packet: PacketFields


def decode_flow_digest(fields: Mapping[str, int]) -> FlowDigest:
    """Decode a digest given as {member name: int} (FLOW_DIGEST_FIELDS); errors name the bad field."""
    missing = [name for name in FLOW_DIGEST_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"{FLOW_DIGEST} is missing field(s) {', '.join(missing)}")
    version = fields["ip_version"]
    if version not in (4, 6):
        raise ValueError(f"{FLOW_DIGEST}.ip_version must be 4 or 6, got {version}")

    def addr(name: str) -> IPv4Address | IPv6Address:
        value = fields[name]
        if version == 4:
            if value >> 32:
                raise ValueError(f"{FLOW_DIGEST}.{name}: {value:#x} has bits above the IPv4 address")
            return IPv4Address(value)
        return IPv6Address(value)

    direction_code = fields["direction"]
    if direction_code not in (DIRECTION_FROM_VM, DIRECTION_TO_VM, DIRECTION_TRANSIT):
        raise ValueError(f"{FLOW_DIGEST}.direction: unknown value {direction_code}")
    key = FlowKey(
        vrf=fields["vrf"],
        src=addr("src_addr"),
        dst=addr("dst_addr"),
        protocol=fields["protocol"],
        sport=fields["src_port"],
        dport=fields["dst_port"],
        src_plen=fields["src_plen"],
        dst_plen=fields["dst_plen"],
    )
    packet = PacketFields(
        addr("pkt_src_addr"),
        addr("pkt_dst_addr"),
        fields["protocol"],
        fields["pkt_src_port"],
        fields["pkt_dst_port"],
    )
    return FlowDigest(
        key=key,
        vmi_id=fields["vmi_id"],
        direction=_DIRECTIONS.get(direction_code),
        ingress_port=fields["ingress_port"],
        packet=packet,
    )

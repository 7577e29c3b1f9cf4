"""controller/p4fatflow/dataplane.py: the fat-flow table entries, and their agreement with the P4 and
with the reference key function.

The core check runs the entries through a small model of the P4Runtime match semantics (exact, lpm,
ternary-by-priority) and of the apply block of p4src/include/control/fatflow.p4, and compares the
key it builds with controller/p4fatflow/key.py on the golden cases and on random configurations.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Any

import finsy
import pytest
from finsy import p4values
from hypothesis import given, settings
from hypothesis import strategies as st
from p4fatflow import dataplane as dp
from p4fatflow import p4rt
from p4fatflow.config import VMI, VN, FatFlowRule, IgnoreAddress, PrefixAggr, parse_network
from p4fatflow.dataplane import TableWrite, fatflow_entries, rule_order
from p4fatflow.key import Direction, ExcludeList, FlowKey, PacketFields, compile_rules, flow_key

from softswitch.launch import compile_pipeline

P4SRC = Path(__file__).resolve().parents[2] / "p4src"

# Bit widths of the match fields as declared in p4src (defines.p4 typedefs).
_WIDTHS = {
    "vmi_id": 16,
    "protocol": 8,
    "port": 16,
}

# ---- a model of the tables and of Fatflow.apply ------------------------------------------------


def _addr_width(table: str) -> int:
    return 32 if table.endswith("_v4") else 128


def _field_matches(table: str, name: str, spec: Any, value: int) -> bool:
    kind = {f: k for f, k, _ in dp.MATCH_FIELDS[table]}[name]
    if kind == dp.MATCH_TERNARY:
        v, m = int(spec[0]), int(spec[1])
        assert v & ~m == 0, f"{table}.{name}: value {v:#x} has bits outside mask {m:#x}"
        return value & m == v
    if kind == dp.MATCH_LPM:
        v, plen = spec
        width = _addr_width(table)
        assert 0 < plen <= width, f"{table}.{name}: prefix length {plen} (0 must be left out)"
        mask = ((1 << width) - 1) ^ ((1 << (width - plen)) - 1)
        assert v & ~mask == 0, f"{table}.{name}: value {v:#x} has bits outside /{plen}"
        return bool(v == value & mask)
    return bool(spec == value)  # exact


def _lookup(writes: Sequence[TableWrite], table: str, fields: dict[str, int]) -> TableWrite | None:
    hits = [
        w
        for w in writes
        if w.table == table and all(_field_matches(table, n, s, fields[n]) for n, s in w.match)
    ]
    if not hits:
        return None
    if table.startswith("ingress.fatflow.rule_"):
        best = max(w.priority for w in hits)
        top = [w for w in hits if w.priority == best]
        assert len(top) == 1, f"{table}: {len(top)} matching entries share priority {best}"
        return top[0]

    def plen(w: TableWrite) -> int:
        spec = w.match_dict.get("addr")
        return spec[1] if isinstance(spec, tuple) else 0

    return max(hits, key=plen)


def pipeline_key(
    writes: Sequence[TableWrite], vmi_id: int, vrf: int, direction: Direction, pkt: PacketFields
) -> FlowKey:
    """What Fatflow.apply (p4src/include/control/fatflow.p4) builds from these table entries."""
    version = pkt.version
    top = 32 if version == 4 else 128
    ones = (1 << top) - 1
    suffix = "_v4" if version == 4 else "_v6"
    src, dst = int(pkt.src), int(pkt.dst)
    local, remote = (dst, src) if direction is Direction.TO_VM else (src, dst)
    local_mask, remote_mask, local_plen, remote_plen = ones, ones, top, top
    rule_hit, port_sel, matched_port = False, "none", 0

    excluded = (
        _lookup(writes, f"ingress.fatflow.exclude_src{suffix}", {"vmi_id": vmi_id, "addr": src}) is not None
        or _lookup(writes, f"ingress.fatflow.exclude_dst{suffix}", {"vmi_id": vmi_id, "addr": dst})
        is not None
    )
    if not excluded:
        s_hit = d_hit = False
        if pkt.protocol in (6, 17, 132):
            s_hit = (
                _lookup(
                    writes,
                    dp.PORT_MATCH_SPORT_TABLE,
                    {"vmi_id": vmi_id, "protocol": pkt.protocol, "port": pkt.sport},
                )
                is not None
            )
            d_hit = (
                _lookup(
                    writes,
                    dp.PORT_MATCH_DPORT_TABLE,
                    {"vmi_id": vmi_id, "protocol": pkt.protocol, "port": pkt.dport},
                )
                is not None
            )
        if s_hit and d_hit:
            port_sel = "sport" if pkt.sport < pkt.dport else "dport"
        elif s_hit:
            port_sel = "sport"
        elif d_hit:
            port_sel = "dport"
        matched_port = {"sport": pkt.sport, "dport": pkt.dport, "none": 0}[port_sel]
        hit = _lookup(
            writes,
            f"ingress.fatflow.rule{suffix}",
            {
                "vmi_id": vmi_id,
                "protocol": pkt.protocol,
                "port": matched_port,
                "local_addr": local,
                "remote_addr": remote,
            },
        )
        if hit is not None:
            assert hit.action == (dp.APPLY_RULE_V4 if version == 4 else dp.APPLY_RULE_V6)
            rule_hit = True
            local_mask, local_plen = hit.params_dict["local_mask"], hit.params_dict["local_plen"]
            remote_mask, remote_plen = hit.params_dict["remote_mask"], hit.params_dict["remote_plen"]

    if direction is Direction.TO_VM:
        k_src, k_dst, s_plen, d_plen = remote & remote_mask, local & local_mask, remote_plen, local_plen
    else:
        k_src, k_dst, s_plen, d_plen = local & local_mask, remote & remote_mask, local_plen, remote_plen
    sport, dport = pkt.sport, pkt.dport
    if rule_hit:
        sport = sport if port_sel == "sport" else 0
        dport = dport if port_sel == "dport" else 0
    make = IPv4Address if version == 4 else IPv6Address
    return FlowKey(vrf, make(k_src), make(k_dst), pkt.protocol, sport, dport, s_plen, d_plen)


# ---- helpers -----------------------------------------------------------------------------------


def _rule(
    protocol: int,
    port: int,
    ignore: str = "none",
    src: tuple[str, int] | None = None,
    dst: tuple[str, int] | None = None,
) -> FatFlowRule:
    return FatFlowRule(
        protocol=protocol,
        port=port,
        ignore_address=IgnoreAddress(ignore),
        src_prefix_aggr=None if src is None else PrefixAggr(ip_network(src[0]), src[1]),
        dst_prefix_aggr=None if dst is None else PrefixAggr(ip_network(dst[0]), dst[1]),
    )


def _rule_writes(writes: Sequence[TableWrite], table: str) -> list[TableWrite]:
    """The rule-table entries of one table, highest priority first."""
    return sorted((w for w in writes if w.table == table), key=lambda w: -w.priority)


# ---- golden cases ------------------------------------------------------------------------------


def test_golden_case_through_the_tables(key_case: dict[str, Any]) -> None:
    vn = VN(
        name="vn",
        vrf=key_case["vn"]["vrf"],
        subnets=tuple(parse_network(s) for s in key_case["vn"]["subnets"]),
    )
    rules = tuple(FatFlowRule.from_dict(r) for r in key_case["rules"])
    vmi = VMI(name="vmi", port=1, vn=vn, rules=rules)
    writes = fatflow_entries(7, vmi.effective_rules(), vmi.exclude_list())
    pkt = PacketFields.from_dict(key_case["packet"])
    direction = Direction(key_case["packet"]["direction"])

    got = pipeline_key(writes, 7, vmi.vrf, direction, pkt)

    expected = FlowKey.from_dict(key_case["key"])
    assert got == expected, f"{key_case['why']}: tables give {got}, expected {expected}"
    reference = flow_key(
        pkt, direction, vmi.vrf, compile_rules(vmi.effective_rules()), ExcludeList(vmi.exclude_list())
    )
    assert got == reference


# ---- priority order (spec 3.3) -----------------------------------------------------------------


def test_order_is_port_only_then_src_then_dst_then_both() -> None:
    both = _rule(6, 443, src=("10.0.0.0/8", 24), dst=("20.0.0.0/8", 24))
    dst = _rule(6, 443, dst=("20.0.0.0/8", 16))
    src = _rule(6, 443, src=("10.0.0.0/8", 24))
    port_only = _rule(6, 443, ignore="dst")
    assert rule_order([both, dst, src, port_only]) == (port_only, src, dst, both)

    writes = _rule_writes(fatflow_entries(1, [both, dst, src, port_only], []), dp.RULE_V4_TABLE)
    assert [(w.match_dict.get("local_addr"), w.match_dict.get("remote_addr")) for w in writes] == [
        (None, None),
        ((0x0A000000, 0xFF000000), None),
        (None, (0x14000000, 0xFF000000)),
        ((0x0A000000, 0xFF000000), (0x14000000, 0xFF000000)),
    ]
    priorities = [w.priority for w in writes]
    assert (
        priorities == sorted(priorities, reverse=True) and len(set(priorities)) == 4 and min(priorities) > 0
    )


def test_src_prefix_rules_longest_rule_subnet_first() -> None:
    wide = _rule(17, 53, src=("10.0.0.0/8", 24))
    narrow = _rule(17, 53, src=("10.1.0.0/16", 28))
    assert rule_order([wide, narrow]) == (narrow, wide)
    first = _rule_writes(fatflow_entries(1, [wide, narrow], []), dp.RULE_V4_TABLE)[0]
    assert first.match_dict["local_addr"] == (0x0A010000, 0xFFFF0000)
    assert first.params_dict["local_plen"] == 28


def test_dst_prefix_rules_longest_rule_subnet_first() -> None:
    wide = _rule(6, 443, dst=("20.0.0.0/8", 16))
    narrow = _rule(6, 443, dst=("20.5.0.0/16", 24))
    assert rule_order([wide, narrow]) == (narrow, wide)


def test_src_dst_rules_longest_local_then_longest_remote() -> None:
    a = _rule(6, 0, src=("10.0.0.0/8", 24), dst=("20.0.0.0/16", 24))
    b = _rule(6, 0, src=("10.0.0.0/16", 24), dst=("20.0.0.0/8", 24))
    c = _rule(6, 0, src=("10.0.0.0/8", 24), dst=("20.0.0.0/8", 24))
    # b has the longer local subnet; a and c tie on local, a has the longer remote.
    assert rule_order([c, a, b]) == (b, a, c)


def test_ties_keep_configuration_order() -> None:
    first = _rule(17, 53, ignore="dst")
    second = _rule(17, 53, ignore="src")
    assert rule_order([first, second]) == (first, second)
    assert rule_order([second, first]) == (second, first)
    # Same match twice: only the first (winning) entry is written, with the first rule's params.
    writes = _rule_writes(fatflow_entries(1, [second, first], []), dp.RULE_V4_TABLE)
    assert len(writes) == 1
    assert writes[0].params_dict["local_plen"] == 0 and writes[0].params_dict["remote_plen"] == 32


def test_identical_rules_merge() -> None:
    rule = _rule(17, 53, src=("10.0.0.0/8", 24))
    assert fatflow_entries(3, [rule, rule], []) == fatflow_entries(3, [rule], [])


# ---- entry contents ----------------------------------------------------------------------------


def test_port_only_rule_goes_to_both_families_prefix_rule_to_its_own() -> None:
    writes = fatflow_entries(5, [_rule(17, 53, ignore="dst"), _rule(17, 53, src=("2001:db8::/32", 56))], [])
    v4 = _rule_writes(writes, dp.RULE_V4_TABLE)
    v6 = _rule_writes(writes, dp.RULE_V6_TABLE)
    assert len(v4) == 1 and len(v6) == 2
    assert v4[0].params_dict == {"local_mask": 0xFFFFFFFF, "local_plen": 32, "remote_mask": 0, "remote_plen": 0}
    assert v6[0].params_dict == {
        "local_mask": (1 << 128) - 1,
        "local_plen": 128,
        "remote_mask": 0,
        "remote_plen": 0,
    }
    assert v6[1].match_dict["local_addr"] == (
        int(IPv6Address("2001:db8::")),
        int(IPv6Network("2001:db8::/32").netmask),
    )
    assert v6[1].params_dict["local_mask"] == int(IPv6Network("::/56").netmask)
    assert v6[1].params_dict["local_plen"] == 56
    assert all(w.action == dp.APPLY_RULE_V6 for w in v6) and v4[0].action == dp.APPLY_RULE_V4


def test_rule_params_for_each_side_kind() -> None:
    # ignored remote, aggregated local, then untouched remote.
    (w,) = _rule_writes(
        fatflow_entries(1, [_rule(17, 53, "dst", src=("10.0.0.0/8", 28))], []), dp.RULE_V4_TABLE
    )
    assert w.params_dict == {"local_mask": 0xFFFFFFF0, "local_plen": 28, "remote_mask": 0, "remote_plen": 0}
    (w,) = _rule_writes(fatflow_entries(1, [_rule(6, 443, dst=("20.0.0.0/8", 16))], []), dp.RULE_V4_TABLE)
    assert w.params_dict == {
        "local_mask": 0xFFFFFFFF,
        "local_plen": 32,
        "remote_mask": 0xFFFF0000,
        "remote_plen": 16,
    }
    assert w.match_dict == {"vmi_id": 1, "protocol": 6, "port": 443, "remote_addr": (0x14000000, 0xFF000000)}


def test_port_match_entries_once_per_protocol_port_in_both_tables() -> None:
    rules = [
        _rule(6, 80),
        _rule(6, 80, src=("10.0.0.0/8", 24)),
        _rule(6, 0, ignore="src"),
        _rule(17, 80),
        _rule(1, 0, ignore="dst"),
    ]
    writes = fatflow_entries(9, rules, [])
    for table, action in (
        (dp.PORT_MATCH_SPORT_TABLE, dp.SET_SPORT_MATCH),
        (dp.PORT_MATCH_DPORT_TABLE, dp.SET_DPORT_MATCH),
    ):
        rows = [w for w in writes if w.table == table]
        assert sorted((w.match_dict["protocol"], w.match_dict["port"]) for w in rows) == [(6, 80), (17, 80)]
        assert all(w.action == action and w.match_dict["vmi_id"] == 9 and w.priority == 0 for w in rows)


def test_icmp_rule_looks_up_port_zero_and_has_no_port_match() -> None:
    writes = fatflow_entries(2, [_rule(1, 0, "dst", src=("10.0.0.0/8", 24))], [])
    assert not [w for w in writes if w.table in (dp.PORT_MATCH_SPORT_TABLE, dp.PORT_MATCH_DPORT_TABLE)]
    (w,) = _rule_writes(writes, dp.RULE_V4_TABLE)
    assert w.match_dict["port"] == 0 and w.match_dict["protocol"] == 1
    assert not _rule_writes(writes, dp.RULE_V6_TABLE)


def test_exclude_entries_in_both_tables_of_their_family() -> None:
    exclude: list[IPv4Network | IPv6Network] = [
        IPv4Network("10.1.0.1/32"),
        IPv6Network("fe80::/10"),
        IPv4Network("10.1.0.1/32"),
    ]
    writes = fatflow_entries(4, [], exclude)
    by_table = {t: [w.match_dict for w in writes if w.table == t] for t in {w.table for w in writes}}
    fe80 = int(IPv6Address("fe80::"))
    assert by_table == {
        dp.EXCLUDE_SRC_V4_TABLE: [{"vmi_id": 4, "addr": (0x0A010001, 32)}],
        dp.EXCLUDE_DST_V4_TABLE: [{"vmi_id": 4, "addr": (0x0A010001, 32)}],
        dp.EXCLUDE_SRC_V6_TABLE: [{"vmi_id": 4, "addr": (fe80, 10)}],
        dp.EXCLUDE_DST_V6_TABLE: [{"vmi_id": 4, "addr": (fe80, 10)}],
    }
    assert all(w.action == dp.SET_EXCLUDED and w.params == () for w in writes)


def test_exclude_default_route_is_a_wildcard() -> None:
    (src, dst) = fatflow_entries(4, [], [IPv4Network("0.0.0.0/0")])
    assert src.match == (("vmi_id", 4),) and dst.match == (("vmi_id", 4),)


@pytest.mark.parametrize("vmi_id", [0, -1, 0x10000, True])
def test_bad_vmi_id_is_rejected(vmi_id: int) -> None:
    with pytest.raises(ValueError, match="vmi_id"):
        fatflow_entries(vmi_id, [], [])


def test_non_rule_is_rejected() -> None:
    with pytest.raises(TypeError, match="rule 1"):
        fatflow_entries(1, ["udp/53"], [])  # type: ignore[list-item]


def test_match_values_encode_with_finsy() -> None:
    rules = [_rule(17, 53, "dst", src=("10.0.0.0/8", 28)), _rule(6, 0, dst=("2001:db8::/32", 48))]
    writes = fatflow_entries(11, rules, [IPv4Network("169.254.0.0/16"), IPv6Network("2001:db8:1::1/128")])
    for w in writes:
        kinds = {f: k for f, k, _ in dp.MATCH_FIELDS[w.table]}
        for name, value in w.match:
            width = _WIDTHS.get(name, _addr_width(w.table))
            if kinds[name] == dp.MATCH_TERNARY:
                assert isinstance(value, tuple)
                assert p4values.encode_ternary(value, width)
            elif kinds[name] == dp.MATCH_LPM:
                assert isinstance(value, tuple)
                _, plen = p4values.encode_lpm(value, width)
                assert plen == value[1]
            else:
                assert p4values.encode_exact(value, width)


# ---- random configurations: the tables agree with the key function -----------------------------

_V4_SUBNETS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "20.0.0.0/8", "20.5.0.0/16", "0.0.0.0/0"]
_V6_SUBNETS = ["2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::/64", "::/0"]
_V4_ADDRS = ["10.1.2.3", "10.1.2.200", "10.2.0.1", "20.5.6.7", "20.6.0.1", "30.0.0.1", "169.254.1.1"]
_V6_ADDRS = ["2001:db8:1:2::5", "2001:db8:1:3::5", "2001:db8:2::1", "2001:4860::8888", "fe80::1"]
_PORTS = [0, 53, 80, 443, 8080]


@st.composite
def _aggr(draw: st.DrawFn, family: int) -> PrefixAggr:
    subnet = ip_network(draw(st.sampled_from(_V4_SUBNETS if family == 4 else _V6_SUBNETS)))
    plen = draw(st.integers(subnet.prefixlen, subnet.max_prefixlen))
    return PrefixAggr(subnet, plen)


@st.composite
def _rules(draw: st.DrawFn) -> FatFlowRule:
    protocol = draw(st.sampled_from([6, 17, 132, 1, 58]))
    port = draw(st.sampled_from(_PORTS)) if protocol in (6, 17, 132) else 0
    family = draw(st.sampled_from([4, 6]))
    if protocol == 1:
        family = 4
    if protocol == 58:
        family = 6
    ignore = draw(st.sampled_from(list(IgnoreAddress)))
    src = draw(st.none() | _aggr(family)) if ignore is not IgnoreAddress.SRC else None
    dst = draw(st.none() | _aggr(family)) if ignore is not IgnoreAddress.DST else None
    return FatFlowRule(protocol, port, ignore, src, dst)


@st.composite
def _packets(draw: st.DrawFn) -> PacketFields:
    family = draw(st.sampled_from([4, 6]))
    addrs = _V4_ADDRS if family == 4 else _V6_ADDRS
    src = ip_address(draw(st.sampled_from(addrs)))
    dst = ip_address(draw(st.sampled_from(addrs)))
    icmp = 1 if family == 4 else 58
    protocol = draw(st.sampled_from([6, 17, 132, icmp, 47]))
    if protocol in (6, 17, 132):
        sport, dport = draw(st.sampled_from([*_PORTS, 5000])), draw(st.sampled_from([*_PORTS, 5000]))
    elif protocol == icmp:
        sport, dport = draw(st.integers(0, 3)), 0
    else:
        sport = dport = 0
    return PacketFields(src, dst, protocol, sport, dport)


_EXCLUDES = [
    IPv4Network("10.1.2.200/32"),
    IPv4Network("169.254.0.0/16"),
    IPv6Network("fe80::/10"),
    IPv6Network("2001:db8:1:3::5/128"),
]


@settings(max_examples=400, deadline=None)
@given(
    rules=st.lists(_rules(), max_size=6),
    exclude=st.lists(st.sampled_from(_EXCLUDES), max_size=3),
    pkt=_packets(),
    direction=st.sampled_from(list(Direction)),
)
def test_tables_agree_with_key_function(
    rules: list[FatFlowRule],
    exclude: list[IPv4Network | IPv6Network],
    pkt: PacketFields,
    direction: Direction,
) -> None:
    writes = fatflow_entries(3, rules, exclude)
    expected = flow_key(pkt, direction, 1, compile_rules(rules), ExcludeList(exclude))
    assert pipeline_key(writes, 3, 1, direction, pkt) == expected


def test_other_vmis_entries_do_not_apply() -> None:
    writes = fatflow_entries(3, [_rule(17, 53, "dst")], [])
    pkt = PacketFields(IPv4Address("10.1.2.3"), IPv4Address("8.8.8.8"), 17, 5000, 53)
    assert pipeline_key(writes, 3, 1, Direction.FROM_VM, pkt).dst_plen == 0
    assert pipeline_key(writes, 4, 1, Direction.FROM_VM, pkt) == FlowKey.normal(pkt, 1)


# ---- the names agree with the P4 source --------------------------------------------------------


def _p4(path: str) -> str:
    return (P4SRC / path).read_text(encoding="utf-8")


def _all_p4() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(P4SRC.rglob("*.p4")))


def _table_body(table: str) -> str:
    m = re.search(rf"\btable\s+{re.escape(table)}\s*\{{(.*?)\n    \}}", _all_p4(), re.S)
    assert m, f"table {table} not found in p4src"
    return m.group(1)


def _key_names(table: str) -> list[str]:
    return re.findall(r'@name\("([^"]+)"\)', _table_body(table).split("actions")[0])


_TABLES = [
    dp.PORT_TABLE,
    dp.ROUTE_V4_TABLE,
    dp.ROUTE_V6_TABLE,
    dp.EXCLUDE_SRC_V4_TABLE,
    dp.EXCLUDE_DST_V4_TABLE,
    dp.EXCLUDE_SRC_V6_TABLE,
    dp.EXCLUDE_DST_V6_TABLE,
    dp.PORT_MATCH_SPORT_TABLE,
    dp.PORT_MATCH_DPORT_TABLE,
    dp.RULE_V4_TABLE,
    dp.RULE_V6_TABLE,
    dp.FLOW_V4_TABLE,
    dp.FLOW_V6_TABLE,
]


@pytest.mark.parametrize("name", _TABLES)
def test_table_names_follow_the_control_instances(name: str) -> None:
    top, instance, table = name.split(".")
    assert top == "ingress"
    main = _p4("fatflow_v1model.p4")
    m = re.search(rf"\b(\w+)\(\)\s+{instance};", main)
    assert m, f"no control instance {instance} in fatflow_v1model.p4"
    control = m.group(1)
    control_src = re.search(rf"\bcontrol\s+{control}\(.*?\n\}}", _all_p4(), re.S)
    assert control_src and re.search(rf"\btable\s+{table}\b", control_src.group(0)), (
        f"table {table} is not declared in control {control}"
    )


@pytest.mark.parametrize(
    "action",
    [
        dp.SET_VMI_PORT,
        dp.SET_FABRIC_PORT,
        dp.DROP_UNCONFIGURED_PORT,
        dp.SET_NEXT_HOP,
        dp.DROP_NO_ROUTE,
        dp.SET_EXCLUDED,
        dp.SET_SPORT_MATCH,
        dp.SET_DPORT_MATCH,
        dp.APPLY_RULE_V4,
        dp.APPLY_RULE_V6,
        dp.FLOW_FORWARD,
        dp.FLOW_DROP,
        dp.FLOW_MISS,
    ],
)
def test_action_names_exist(action: str) -> None:
    _, instance, name = action.split(".")
    assert re.search(rf"\baction\s+{name}\(", _all_p4()), f"action {name} not in p4src"
    assert re.search(rf"\(\)\s+{instance};", _p4("fatflow_v1model.p4"))


def test_key_field_names() -> None:
    assert tuple(_key_names("flow_v4")) == dp.FLOW_KEY_FIELDS
    assert tuple(_key_names("flow_v6")) == dp.FLOW_KEY_FIELDS
    assert tuple(_key_names("rule_v4")) == dp.RULE_KEY_FIELDS
    assert tuple(_key_names("rule_v6")) == dp.RULE_KEY_FIELDS
    for table in ("exclude_src_v4", "exclude_dst_v4", "exclude_src_v6", "exclude_dst_v6"):
        assert _key_names(table) == ["vmi_id", "addr"]
    for table in ("port_match_sport", "port_match_dport"):
        assert _key_names(table) == ["vmi_id", "protocol", "port"]
    assert _key_names("port_table") == ["ingress_port"]
    assert _key_names("route_v4") == ["vrf", "dst_addr"]


def test_flow_tables_have_timeouts_counters_and_size() -> None:
    for table in ("flow_v4", "flow_v6"):
        body = _table_body(table)
        assert "support_timeout = true;" in body
        assert re.search(r"counters = flow_counter_v[46];", body)
        size = re.search(r"size = (\w+);", body)
        assert size, table
        m = re.search(rf"#define\s+{size.group(1)}\s+(\d+)", _p4("include/defines.p4"))
        assert m and int(m.group(1)) == dp.FLOW_TABLE_SIZE


def test_rule_action_params() -> None:
    for action in ("apply_rule_v4", "apply_rule_v6"):
        m = re.search(rf"action\s+{action}\(([^)]*)\)", _all_p4())
        assert m
        params = tuple(p.split()[-1] for p in m.group(1).split(","))
        assert params == dp.RULE_PARAMS


def _struct_fields(src: str, kind: str, name: str) -> tuple[str, ...]:
    m = re.search(rf"{kind}\s+{name}\s*\{{(.*?)\}}", src, re.S)
    assert m, f"{kind} {name} not found"
    body = re.sub(r"//[^\n]*", "", m.group(1))
    return tuple(line.split()[-1].rstrip(";") for line in body.splitlines() if line.strip())


def test_digest_and_controller_header_fields() -> None:
    headers = _p4("include/headers.p4")
    assert _struct_fields(headers, "struct", dp.FLOW_DIGEST) == dp.FLOW_DIGEST_FIELDS
    assert _struct_fields(headers, "header", "packet_in_t") == dp.PACKET_IN_FIELDS
    assert _struct_fields(headers, "header", "packet_out_t") == dp.PACKET_OUT_FIELDS
    assert re.search(rf"digest<{dp.FLOW_DIGEST}>\(", _all_p4())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CPU_PORT", dp.CPU_PORT),
        ("DROP_PORT", dp.DROP_PORT),
        ("ANALYZER_CLONE_SESSION_ID", dp.ANALYZER_CLONE_SESSION_ID),
        ("PORT_KIND_VMI", dp.PORT_KIND_VMI),
        ("PORT_KIND_FABRIC", dp.PORT_KIND_FABRIC),
        ("MISS_POLICY_FORWARD", dp.MISS_POLICY_FORWARD),
        ("MISS_POLICY_DROP", dp.MISS_POLICY_DROP),
        ("MISS_POLICY_HOLD", dp.MISS_POLICY_HOLD),
        ("DIRECTION_NONE", dp.DIRECTION_NONE),
        ("DIRECTION_FROM_VM", dp.DIRECTION_FROM_VM),
        ("DIRECTION_TO_VM", dp.DIRECTION_TO_VM),
        ("DIRECTION_TRANSIT", dp.DIRECTION_TRANSIT),
        ("PUNT_REASON_FLOW_MISS_HOLD", dp.PUNT_REASON_FLOW_MISS_HOLD),
    ],
)
def test_constants_match_defines(name: str, value: int) -> None:
    m = re.search(rf"const\s+\w+(?:<\d+>)?\s+{name}\s*=\s*(\w+);", _p4("include/defines.p4"))
    assert m, f"{name} not in defines.p4"
    assert int(m.group(1), 0) == value


# ---- flow table match and digest decoding ------------------------------------------------------


def test_flow_match_v4_and_v6() -> None:
    key = FlowKey(1, IPv4Address("10.0.0.0"), IPv4Address("0.0.0.0"), 17, 0, 53, 28, 0)
    assert dp.flow_table(key) == dp.FLOW_V4_TABLE
    assert dp.flow_match(key) == {
        "vrf": 1,
        "src_addr": 0x0A000000,
        "dst_addr": 0,
        "protocol": 17,
        "src_port": 0,
        "dst_port": 53,
        "src_plen": 28,
        "dst_plen": 0,
    }
    assert tuple(dp.flow_match(key)) == dp.FLOW_KEY_FIELDS
    key6 = FlowKey(2, IPv6Address("2001:db8::"), IPv6Address("::1"), 6, 1, 2, 56, 128)
    assert dp.flow_table(key6) == dp.FLOW_V6_TABLE
    assert dp.flow_match(key6)["src_addr"] == int(IPv6Address("2001:db8::"))


def _digest(**over: int) -> dict[str, int]:
    fields = {
        "ip_version": 4,
        "vrf": 1,
        "src_addr": 0x0A000000,
        "dst_addr": 0,
        "protocol": 17,
        "src_port": 0,
        "dst_port": 53,
        "src_plen": 28,
        "dst_plen": 0,
        "vmi_id": 7,
        "direction": dp.DIRECTION_FROM_VM,
        "ingress_port": 1,
        "pkt_src_addr": 0x0A000001,
        "pkt_dst_addr": 0x08080808,
        "pkt_src_port": 5000,
        "pkt_dst_port": 53,
    }
    fields.update(over)
    return fields


def test_decode_flow_digest() -> None:
    d = dp.decode_flow_digest(_digest())
    assert d.key == FlowKey(1, IPv4Address("10.0.0.0"), IPv4Address("0.0.0.0"), 17, 0, 53, 28, 0)
    assert d.vmi_id == 7 and d.direction is Direction.FROM_VM and d.ingress_port == 1
    assert d.packet == PacketFields(IPv4Address("10.0.0.1"), IPv4Address("8.8.8.8"), 17, 5000, 53)
    assert dp.decode_flow_digest(_digest(direction=dp.DIRECTION_TO_VM)).direction is Direction.TO_VM
    assert dp.decode_flow_digest(_digest(direction=dp.DIRECTION_TRANSIT, vmi_id=0)).direction is None
    v6 = dp.decode_flow_digest(
        _digest(
            ip_version=6,
            src_addr=int(IPv6Address("2001:db8::")),
            src_plen=56,
            pkt_src_addr=int(IPv6Address("2001:db8::5")),
            pkt_dst_addr=int(IPv6Address("2001:4860::8888")),
        )
    )
    assert v6.key.src == IPv6Address("2001:db8::") and v6.key.dst == IPv6Address("::")


@pytest.mark.parametrize(
    ("over", "problem"),
    [
        ({"ip_version": 5}, "ip_version"),
        ({"direction": 9}, "direction"),
        ({"src_addr": 1 << 40}, "src_addr"),
        ({"src_plen": 33}, "src_plen"),
    ],
)
def test_decode_flow_digest_rejects_bad_fields(over: dict[str, int], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        dp.decode_flow_digest(_digest(**over))


def test_decode_flow_digest_names_missing_fields() -> None:
    fields = _digest()
    del fields["vmi_id"]
    with pytest.raises(ValueError, match="vmi_id"):
        dp.decode_flow_digest(fields)


def test_flow_key_of_match_inverts_flow_match() -> None:
    from ipaddress import ip_address

    from p4fatflow.dataplane import flow_key_of_match, flow_match, flow_table
    from p4fatflow.key import FlowKey

    for key in (FlowKey(1, ip_address("10.0.0.16"), ip_address("0.0.0.0"), 17, 0, 53, 28, 0),
                FlowKey(9, ip_address("2001:db8::"), ip_address("2001:db8:1::5"), 6, 443, 0, 56, 128)):
        assert flow_key_of_match(flow_table(key), flow_match(key)) == key
        assert flow_key_of_match(flow_table(key).rsplit(".", 1)[1], flow_match(key)) == key
    with pytest.raises(ValueError, match="not a flow table"):
        flow_key_of_match("ingress.routing.route_v4", {})
    with pytest.raises(ValueError, match="lacks src_plen"):
        flow_key_of_match("flow_v4", {k: 0 for k in ("vrf", "src_addr", "dst_addr", "protocol", "src_port",
                                                    "dst_port", "dst_plen")})


# ---- TableWrite: canonical, comparable, hashable -------------------------------------------------


def test_tablewrite_canonicalises_its_match() -> None:
    a = TableWrite.of(dp.RULE_V4_TABLE, {"port": 53, "vmi_id": 1, "protocol": 17,
                                         "local_addr": (0x0A0102FF, 0xFF000000), "remote_addr": (5, 0)},
                      dp.APPLY_RULE_V4, {"remote_plen": 0, "local_plen": 28, "local_mask": 1, "remote_mask": 0},
                      priority=7)
    # sorted by field name, ternary value masked, mask 0 ("don't care") left out
    assert a.match == (("local_addr", (0x0A000000, 0xFF000000)), ("port", 53), ("protocol", 17), ("vmi_id", 1))
    assert [n for n, _ in a.params] == sorted(dp.RULE_PARAMS)
    b = TableWrite.of(dp.RULE_V4_TABLE, {"vmi_id": 1, "protocol": 17, "port": 53,
                                         "local_addr": IPv4Network("10.0.0.0/8")},
                      dp.APPLY_RULE_V4, {"local_mask": 1, "local_plen": 28, "remote_mask": 0, "remote_plen": 0},
                      priority=7)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.entry_id == (dp.RULE_V4_TABLE, a.match, 7)
    lpm = TableWrite.of(dp.ROUTE_V4_TABLE, {"vrf": 1, "dst_addr": "10.1.2.3/8"}, dp.SET_NEXT_HOP)
    assert lpm.match_dict == {"vrf": 1, "dst_addr": (0x0A000000, 8)}
    assert lpm == TableWrite.of(dp.ROUTE_V4_TABLE, {"vrf": 1, "dst_addr": (0x0A0102FF, 8)}, dp.SET_NEXT_HOP)
    assert TableWrite.of(dp.ROUTE_V4_TABLE, {"vrf": 1, "dst_addr": "0.0.0.0/0"}, dp.SET_NEXT_HOP).match == (
        ("vrf", 1),)
    assert lpm != dataclasses.replace(lpm, metadata=b"x")


@pytest.mark.parametrize(
    ("table", "match", "problem"),
    [
        (dp.PORT_TABLE, {"ingress_port": 512}, "does not fit 9 bits"),
        (dp.PORT_TABLE, {"port": 1}, "unknown match field"),
        (dp.ROUTE_V4_TABLE, {"vrf": 1, "dst_addr": "2001:db8::/32"}, "does not fit a 32-bit field"),
        (dp.ROUTE_V4_TABLE, {"vrf": 1, "dst_addr": 5}, "needs a (value, prefix_len) pair"),
        (dp.ROUTE_V4_TABLE, {"vrf": 1, "dst_addr": (5, 33)}, "longer than 32 bits"),
        (dp.PORT_TABLE, {"ingress_port": (1, 1)}, "exact field needs an int"),
        (dp.PORT_TABLE, {"ingress_port": True}, "unsupported match value"),
    ],
)
def test_tablewrite_rejects_bad_match_values(table: str, match: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        TableWrite.of(table, match, "a")


def test_tablewrite_rejects_a_field_twice() -> None:
    with pytest.raises(ValueError, match="given twice"):
        TableWrite(dp.PORT_TABLE, (("ingress_port", 1), ("ingress_port", 2)), dp.SET_FABRIC_PORT)


# ---- sparse priorities ---------------------------------------------------------------------------


def test_rule_priority_depends_only_on_the_rule() -> None:
    port_only = _rule(6, 443, ignore="dst")
    src16, src8 = _rule(6, 443, src=("10.1.0.0/16", 24)), _rule(6, 443, src=("10.0.0.0/8", 24))
    dst = _rule(6, 443, dst=("20.0.0.0/8", 16))
    both = _rule(6, 443, src=("10.0.0.0/8", 24), dst=("20.0.0.0/16", 24))
    prios = [dp.rule_priority(r) for r in (port_only, src16, src8, dst, both)]
    assert prios == sorted(prios, reverse=True) and len(set(prios)) == 5 and min(prios) > 0
    alone = _rule_writes(fatflow_entries(1, [src8], []), dp.RULE_V4_TABLE)
    among = _rule_writes(fatflow_entries(1, [both, port_only, src8, dst], []), dp.RULE_V4_TABLE)
    assert alone[0] in among


def _rule_rows(writes: Sequence[TableWrite]) -> set[TableWrite]:
    return {w for w in writes if w.table in (dp.RULE_V4_TABLE, dp.RULE_V6_TABLE)}


@settings(max_examples=300, deadline=None)
@given(rules=st.lists(_rules(), max_size=6), extra=_rules(), where=st.integers(0, 6))
def test_adding_a_rule_changes_no_other_row(rules: list[FatFlowRule], extra: FatFlowRule, where: int) -> None:
    before = _rule_rows(fatflow_entries(3, rules, []))
    after = _rule_rows(fatflow_entries(3, [*rules[:where], extra, *rules[where:]], []))
    own = {(w.table, w.match) for w in _rule_rows(fatflow_entries(3, [extra], []))}
    # rows the new rule does not share a match with are untouched (same identity and contents)...
    assert {w for w in before if (w.table, w.match) not in own} <= after
    # ...and anything new is one of the new rule's rows (or the row it now wins over)
    assert all((w.table, w.match) in own for w in after - before)
    # the priority is part of the identity: no row of another rule is renumbered
    assert {w.entry_id for w in before if (w.table, w.match) not in own} <= {w.entry_id for w in after}


# ---- P4Runtime encoding against the pipeline's P4Info --------------------------------------------


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> finsy.P4Schema:
    build = compile_pipeline(tmp_path_factory.mktemp("p4info"), P4SRC / "fatflow_v1model.p4")
    return finsy.P4Schema(build.p4info)


def test_match_fields_agree_with_the_p4info(schema: finsy.P4Schema) -> None:
    from_p4info = {
        t.name: tuple((f.name, str(f.match_type.name).lower(), f.bitwidth) for f in t.match_fields)
        for t in schema.tables
    }
    assert from_p4info == dict(dp.MATCH_FIELDS)


def _one_of_each_table() -> list[TableWrite]:
    rules = [_rule(17, 53, "dst", src=("10.0.0.0/8", 28)), _rule(6, 443, src=("2001:db8::/32", 48),
                                                                 dst=("2001:db8:1::/48", 64)),
             _rule(6, 0, ignore="src")]
    exclude = [IPv4Network("10.0.0.1/32"), IPv6Network("fe80::/10"), IPv4Network("0.0.0.0/0")]
    k4 = FlowKey(1, IPv4Address("10.0.0.0"), IPv4Address("0.0.0.0"), 17, 0, 53, 28, 0)
    k6 = FlowKey(0xFFFF, IPv6Address("2001:db8::"), IPv6Address("::1"), 6, 65535, 0, 48, 128)
    return [
        *fatflow_entries(0xFFFF, rules, exclude),
        dp.vmi_port_entry(0, 1, 0, metadata=b"vmi:\xc3\xa9t\xc3\xa9", miss_policy=dp.MISS_POLICY_HOLD),
        dp.fabric_port_entry(510, 0xFFFF, mirror_new_flows=True, flowtable_enabled=False),
        dp.route_entry(IPv4Network("0.0.0.0/0"), 3, vrf=0, src_mac=0, dst_mac=(1 << 48) - 1),
        dp.route_entry(IPv6Network("2001:db8::3/128"), 1, vrf=10, src_mac=1, dst_mac=2, dst_vmi_id=7),
        TableWrite.of(dp.flow_table(k4), dp.flow_match(k4), dp.FLOW_FORWARD,
                      {"mirror": 1, "offloaded": 0, "egress_port": 0}, metadata=bytes(range(20))),
        TableWrite.of(dp.flow_table(k6), dp.flow_match(k6), dp.FLOW_DROP),
    ]


def test_encode_decode_round_trip_for_every_table(schema: finsy.P4Schema) -> None:
    writes = _one_of_each_table()
    assert {w.table for w in writes} == {t.name for t in schema.tables}
    for w in writes:
        te = p4rt.encode_table_entry(schema, w)
        assert p4rt.decode_table_entry(schema, te) == w
        # canonical bytestrings: the shortest encoding, zero as one byte
        values = [getattr(m, m.WhichOneof("field_match_type")).value for m in te.match]
        values += [p.value for p in te.action.action.params]
        assert all(v == b"\x00" or v[0] != 0 for v in values), w
        assert [m.field_id for m in te.match] == sorted(m.field_id for m in te.match)
        # finsy, given the same write (p4rt.table_entry), encodes the same entry
        assert p4rt.decode_table_entry(schema, p4rt.table_entry(w).encode(schema).table_entry) == w


def test_decode_accepts_padded_values(schema: finsy.P4Schema) -> None:
    w = dp.route_entry(IPv4Network("10.0.0.0/8"), 3, vrf=1, src_mac=0, dst_mac=5)
    te = p4rt.encode_table_entry(schema, w)
    te.match[0].exact.value = b"\x00\x01"
    te.match[1].lpm.value = b"\x00" * 4 + te.match[1].lpm.value
    assert p4rt.decode_table_entry(schema, te) == w
    te.match[0].exact.value = b"\x01\x00\x00"  # 65536 does not fit the 16-bit vrf
    with pytest.raises(ValueError, match="vrf"):
        p4rt.decode_table_entry(schema, te)


def test_encode_refuses_values_that_do_not_fit(schema: finsy.P4Schema) -> None:
    w = TableWrite.of(dp.PORT_TABLE, {"ingress_port": 1}, dp.SET_FABRIC_PORT,
                      {"vrf": 1, "miss_policy": 4, "mirror_new_flows": 0, "flowtable_enabled": 1})
    with pytest.raises(ValueError, match="miss_policy"):
        p4rt.encode_table_entry(schema, w)

"""Unit tests of the reference key function: spec 3.1-3.4 and the shared decisions (a)-(f)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

import pytest
from p4fatflow.config import VMI, VN, FatFlowRule, parse_network
from p4fatflow.key import (
    Direction,
    ExcludeList,
    FlowKey,
    PacketFields,
    PortSide,
    compile_rules,
    flow_key,
    l4_ports,
    select_rule,
)

FROM_VM = Direction.FROM_VM
TO_VM = Direction.TO_VM


def rule(
    protocol: str | int = "udp",
    port: int = 53,
    ignore: str = "none",
    src: tuple[str, int] | None = None,
    dst: tuple[str, int] | None = None,
) -> FatFlowRule:
    d: dict[str, Any] = {"protocol": protocol, "port": port, "ignore_address": ignore}
    if src is not None:
        d["src_prefix_aggr"] = {"subnet": src[0], "plen": src[1]}
    if dst is not None:
        d["dst_prefix_aggr"] = {"subnet": dst[0], "plen": dst[1]}
    return FatFlowRule.from_dict(d)


def pkt(src: str, dst: str, protocol: int = 17, sport: int = 5000, dport: int = 53) -> PacketFields:
    return PacketFields(ip_address(src), ip_address(dst), protocol, sport, dport)


def key(
    rules: list[FatFlowRule] | None,
    p: PacketFields,
    direction: Direction = FROM_VM,
    exclude: ExcludeList | None = None,
    vrf: int = 1,
) -> FlowKey:
    return flow_key(p, direction, vrf, None if rules is None else compile_rules(rules), exclude)


def k(src: str, src_plen: int, dst: str, dst_plen: int, protocol: int, sport: int, dport: int) -> FlowKey:
    return FlowKey(1, ip_address(src), ip_address(dst), protocol, sport, dport, src_plen, dst_plen)


# --- port match (3.2, decisions (b), (c)) ---------------------------------------------------------


def test_dport_match_keeps_dport_zeroes_sport() -> None:
    assert key([rule(port=53)], pkt("10.0.0.1", "8.8.8.8", 17, 5000, 53)) == k(
        "10.0.0.1", 32, "8.8.8.8", 32, 17, 0, 53
    )


def test_sport_match_keeps_sport_zeroes_dport() -> None:
    assert key([rule(port=53)], pkt("10.0.0.1", "8.8.8.8", 17, 53, 5000)) == k(
        "10.0.0.1", 32, "8.8.8.8", 32, 17, 53, 0
    )


@pytest.mark.parametrize(
    ("sport", "dport", "expected"),
    [(8080, 80, (0, 80)), (80, 8080, (80, 0)), (443, 80, (0, 80)), (80, 443, (80, 0))],
)
def test_both_ports_match_smaller_wins(sport: int, dport: int, expected: tuple[int, int]) -> None:
    rules = [rule("tcp", 443), rule("tcp", 8080), rule("tcp", 80)]
    got = key(rules, pkt("10.0.0.1", "1.2.3.4", 6, sport, dport))
    assert (got.sport, got.dport) == expected


def test_both_ports_equal_tie_dport_wins() -> None:
    found = select_rule(pkt("10.0.0.1", "1.2.3.4", 17, 53, 53), FROM_VM, compile_rules([rule()]), None)
    assert found is not None and found.side is PortSide.DPORT and found.port == 53
    assert key([rule()], pkt("10.0.0.1", "1.2.3.4", 17, 53, 53)) == k(
        "10.0.0.1", 32, "1.2.3.4", 32, 17, 0, 53
    )


def test_port0_rule_applies_only_when_neither_port_matches() -> None:
    rules = [rule("tcp", 0, "dst"), rule("tcp", 80)]
    assert key(rules, pkt("10.0.0.1", "1.2.3.4", 6, 1234, 443)) == k("10.0.0.1", 32, "0.0.0.0", 0, 6, 0, 0)
    # dport 80 matches: the port-0 rule (listed first) is not consulted.
    assert key(rules, pkt("10.0.0.1", "1.2.3.4", 6, 1234, 80)) == k("10.0.0.1", 32, "1.2.3.4", 32, 6, 0, 80)


def test_no_port_match_and_no_port0_rule_is_normal_flow() -> None:
    p = pkt("10.0.0.1", "1.2.3.4", 6, 1234, 443)
    assert key([rule("tcp", 80)], p) == FlowKey.normal(p, 1)


def test_matched_port_without_address_match_is_normal_flow_not_port0() -> None:
    # Decision (c): port 53 matched, its only rule's subnet misses; the port-0 rule would match but
    # must not be consulted.
    rules = [rule("udp", 53, src=("192.168.0.0/16", 24)), rule("udp", 0, "src")]
    p = pkt("10.0.0.1", "8.8.8.8", 17, 5000, 53)
    assert key(rules, p) == FlowKey.normal(p, 1)
    assert select_rule(p, FROM_VM, compile_rules(rules), None) is None


def test_packet_port_zero_never_matches_a_rule_port() -> None:
    rules = [rule("udp", 53), rule("udp", 0, "dst")]
    got = key(rules, pkt("10.0.0.1", "8.8.8.8", 17, 0, 1234))
    assert got == k("10.0.0.1", 32, "0.0.0.0", 0, 17, 0, 0)


def test_rules_are_per_protocol() -> None:
    p = pkt("10.0.0.1", "8.8.8.8", 6, 5000, 53)
    assert key([rule("udp", 53, "dst"), rule("udp", 0, "src")], p) == FlowKey.normal(p, 1)


def test_sctp_ports_match_like_tcp() -> None:
    got = key([rule("sctp", 3868)], pkt("10.0.0.1", "1.1.1.1", 132, 3868, 9999))
    assert (got.sport, got.dport) == (3868, 0)


# --- ICMP and other protocols (decision (a)) -----------------------------------------------------


def test_icmp_rule_zeroes_echo_identifier() -> None:
    p = pkt("10.0.0.1", "8.8.8.8", 1, 77, 0)
    assert key([rule("icmp", 0, "dst")], p) == k("10.0.0.1", 32, "0.0.0.0", 0, 1, 0, 0)
    assert key([], p) == k("10.0.0.1", 32, "8.8.8.8", 32, 1, 77, 0)


def test_icmp_ignores_rule_ports_of_other_protocols() -> None:
    # An ICMP echo id equal to a UDP rule port means nothing: ICMP always uses its port-0 rules.
    p = pkt("10.0.0.1", "8.8.8.8", 1, 53, 0)
    assert key([rule("udp", 53, "dst")], p) == FlowKey.normal(p, 1)


def test_icmpv6_rule() -> None:
    p = pkt("2001:db8:5::7", "2001:4860::1", 58, 9, 0)
    got = key([rule("icmpv6", 0, "none", src=("2001:db8::/32", 48))], p)
    assert got == k("2001:db8:5::", 48, "2001:4860::1", 128, 58, 0, 0)


def test_other_protocol_port0_rule() -> None:
    p = pkt("10.0.0.1", "1.2.3.4", 47, 0, 0)
    assert key([rule(47, 0, "src")], p) == k("0.0.0.0", 0, "1.2.3.4", 32, 47, 0, 0)


@pytest.mark.parametrize("protocol", [6, 17, 132])
def test_l4_ports_ported_protocols_pass_through(protocol: int) -> None:
    assert l4_ports(protocol, 1234, 80) == (1234, 80)


@pytest.mark.parametrize(("protocol", "icmp_type"), [(1, 8), (1, 0), (58, 128), (58, 129)])
def test_l4_ports_echo_uses_identifier(protocol: int, icmp_type: int) -> None:
    assert l4_ports(protocol, 0, 0, icmp_type=icmp_type, icmp_id=4242) == (4242, 0)


@pytest.mark.parametrize(("protocol", "icmp_type"), [(1, 3), (1, 11), (58, 1), (58, 135)])
def test_l4_ports_other_icmp_is_zero(protocol: int, icmp_type: int) -> None:
    assert l4_ports(protocol, 7, 9, icmp_type=icmp_type, icmp_id=4242) == (0, 0)


def test_l4_ports_other_protocol_is_zero() -> None:
    assert l4_ports(47, 1234, 80) == (0, 0)


def test_l4_ports_rejects_icmp_without_type_and_echo_without_id() -> None:
    with pytest.raises(ValueError, match="icmp_type is required"):
        l4_ports(1, 0, 0)
    with pytest.raises(ValueError, match="icmp_id is required"):
        l4_ports(58, 0, 0, icmp_type=128)
    with pytest.raises(ValueError, match="dport"):
        l4_ports(6, 1, 70000)


# --- precedence (3.3, decision (d)) --------------------------------------------------------------

PORT_ONLY = rule("tcp", 443, "dst")
SRC_PREFIX = rule("tcp", 443, src=("10.0.0.0/8", 24))
DST_PREFIX = rule("tcp", 443, dst=("20.0.0.0/8", 16))
BOTH_PREFIX = rule("tcp", 443, src=("10.0.0.0/8", 16), dst=("20.0.0.0/8", 8))
P443 = pkt("10.1.2.3", "20.5.6.7", 6, 40000, 443)
EXPECTED = {
    PORT_ONLY: k("10.1.2.3", 32, "0.0.0.0", 0, 6, 0, 443),
    SRC_PREFIX: k("10.1.2.0", 24, "20.5.6.7", 32, 6, 0, 443),
    DST_PREFIX: k("10.1.2.3", 32, "20.5.0.0", 16, 6, 0, 443),
    BOTH_PREFIX: k("10.1.0.0", 16, "20.0.0.0", 8, 6, 0, 443),
}
TIERS = [PORT_ONLY, SRC_PREFIX, DST_PREFIX, BOTH_PREFIX]


def test_each_tier_alone_builds_its_key() -> None:
    for r in TIERS:
        assert key([r], P443) == EXPECTED[r], str(r)


@pytest.mark.parametrize(
    ("winner", "loser"), [(TIERS[i], TIERS[j]) for i in range(4) for j in range(i + 1, 4)], ids=str
)
@pytest.mark.parametrize("winner_first", [True, False])
def test_tiers_pairwise_regardless_of_configuration_order(
    winner: FatFlowRule, loser: FatFlowRule, winner_first: bool
) -> None:
    rules = [winner, loser] if winner_first else [loser, winner]
    assert key(rules, P443) == EXPECTED[winner]


def test_prefix_tier_that_misses_falls_through_to_next_tier() -> None:
    missing_src = rule("tcp", 443, src=("192.168.0.0/16", 24))
    assert key([missing_src, DST_PREFIX], P443) == EXPECTED[DST_PREFIX]


def test_src_dst_rule_needs_both_sides() -> None:
    remote_misses = rule("tcp", 443, src=("10.0.0.0/8", 16), dst=("30.0.0.0/8", 8))
    assert key([remote_misses], P443) == FlowKey.normal(P443, 1)


@pytest.mark.parametrize("longer_first", [True, False])
def test_src_prefix_longest_local_match_wins(longer_first: bool) -> None:
    short, long = rule("tcp", 443, src=("10.0.0.0/8", 20)), rule("tcp", 443, src=("10.1.0.0/16", 28))
    rules = [long, short] if longer_first else [short, long]
    assert key(rules, P443) == k("10.1.2.0", 28, "20.5.6.7", 32, 6, 0, 443)
    # Outside the longer subnet the shorter one still applies.
    other = pkt("10.9.2.3", "20.5.6.7", 6, 40000, 443)
    assert key(rules, other) == k("10.9.0.0", 20, "20.5.6.7", 32, 6, 0, 443)


@pytest.mark.parametrize("longer_first", [True, False])
def test_dst_prefix_longest_remote_match_wins(longer_first: bool) -> None:
    short, long = rule("tcp", 443, dst=("20.0.0.0/8", 12)), rule("tcp", 443, dst=("20.5.0.0/16", 24))
    rules = [long, short] if longer_first else [short, long]
    assert key(rules, P443) == k("10.1.2.3", 32, "20.5.6.0", 24, 6, 0, 443)


def test_src_dst_longest_local_before_longest_remote() -> None:
    local_long = rule("tcp", 443, src=("10.1.0.0/16", 24), dst=("20.0.0.0/8", 8))
    remote_long = rule("tcp", 443, src=("10.0.0.0/8", 8), dst=("20.5.0.0/16", 24))
    for rules in ([local_long, remote_long], [remote_long, local_long]):
        assert key(rules, P443) == k("10.1.2.0", 24, "20.0.0.0", 8, 6, 0, 443)


def test_src_dst_equal_local_then_longest_remote() -> None:
    remote_short = rule("tcp", 443, src=("10.0.0.0/8", 16), dst=("20.0.0.0/8", 8))
    remote_long = rule("tcp", 443, src=("10.0.0.0/8", 8), dst=("20.5.0.0/16", 24))
    for rules in ([remote_short, remote_long], [remote_long, remote_short]):
        assert key(rules, P443) == k("10.0.0.0", 8, "20.5.6.0", 24, 6, 0, 443)


def test_src_dst_longest_local_that_misses_remote_falls_back_to_shorter_local() -> None:
    local_long_miss = rule("tcp", 443, src=("10.1.0.0/16", 24), dst=("30.0.0.0/8", 8))
    local_short_hit = rule("tcp", 443, src=("10.0.0.0/8", 16), dst=("20.0.0.0/8", 16))
    assert key([local_long_miss, local_short_hit], P443) == k("10.1.0.0", 16, "20.5.0.0", 16, 6, 0, 443)


def test_ties_go_to_configuration_order() -> None:
    first, second = rule("tcp", 443, "dst"), rule("tcp", 443, "src")
    assert key([first, second], P443) == k("10.1.2.3", 32, "0.0.0.0", 0, 6, 0, 443)
    assert key([second, first], P443) == k("0.0.0.0", 0, "20.5.6.7", 32, 6, 0, 443)
    same_subnet_a = rule("tcp", 443, src=("10.0.0.0/8", 16))
    same_subnet_b = rule("tcp", 443, src=("10.0.0.0/8", 24))
    assert key([same_subnet_a, same_subnet_b], P443).src_plen == 16
    assert key([same_subnet_b, same_subnet_a], P443).src_plen == 24


def test_prefix_rules_apply_only_to_their_family_port_only_to_both() -> None:
    v6_src = rule("udp", 53, src=("2001:db8::/32", 48))
    v4_dst = rule("udp", 53, dst=("0.0.0.0/0", 8))
    p4 = pkt("10.0.0.1", "8.8.8.8")
    p6 = pkt("2001:db8:1:2::5", "2001:4860::8888")
    assert key([v6_src, v4_dst], p4) == k("10.0.0.1", 32, "8.0.0.0", 8, 17, 0, 53)
    assert key([v6_src, v4_dst], p6) == k("2001:db8:1::", 48, "2001:4860::8888", 128, 17, 0, 53)
    port_only = rule("udp", 53, "dst")
    assert key([port_only], p6) == k("2001:db8:1:2::5", 128, "::", 0, 17, 0, 53)
    assert key([rule("udp", 53, dst=("10.0.0.0/8", 16))], p6) == FlowKey.normal(p6, 1)


def test_compiled_rules_precompute_ports_and_order() -> None:
    compiled = compile_rules([BOTH_PREFIX, DST_PREFIX, SRC_PREFIX, PORT_ONLY, rule("tcp", 0), PORT_ONLY])
    assert compiled.ports(6) == frozenset({443})
    assert compiled.ports(17) == frozenset()
    assert compiled.candidates(6, 443) == (PORT_ONLY, SRC_PREFIX, DST_PREFIX, BOTH_PREFIX)
    assert len(compiled) == 5  # the duplicate PORT_ONLY merged
    assert compiled.protocols == frozenset({6})


# --- key building (3.4, decision (e)) ------------------------------------------------------------


def test_to_vm_local_is_packet_dst_and_ports_are_not_swapped() -> None:
    r = rule("udp", 53, "dst", src=("10.0.0.0/8", 28))
    reply = pkt("8.8.8.8", "10.0.0.7", 17, 53, 5000)
    assert key([r], reply, TO_VM) == k("0.0.0.0", 0, "10.0.0.0", 28, 17, 53, 0)
    # The same packet seen as from-VM: 8.8.8.8 is outside the src subnet: normal flow.
    assert key([r], reply, FROM_VM) == FlowKey.normal(reply, 1)


def test_to_vm_dst_aggregation_applies_to_packet_src() -> None:
    r = rule("tcp", 0, "src", dst=("20.0.0.0/8", 16))
    got = key([r], pkt("20.5.6.7", "10.1.0.5", 6, 443, 40000), TO_VM)
    assert got == k("20.5.0.0", 16, "0.0.0.0", 0, 6, 0, 0)


def test_no_vmi_means_normal_flow() -> None:
    p = pkt("10.0.0.1", "8.8.8.8")
    assert key(None, p) == k("10.0.0.1", 32, "8.8.8.8", 32, 17, 5000, 53)
    assert key(None, p, vrf=7).vrf == 7


def test_vrf_is_carried_into_fat_keys() -> None:
    assert key([rule(port=0, ignore="src")], pkt("10.0.0.1", "8.8.8.8"), vrf=42).vrf == 42


def test_ipv6_ignore_gives_unspecified_address_plen_0() -> None:
    got = key([rule("tcp", 0, "src")], pkt("2001:db8::5", "2001:4860::1", 6, 1, 2))
    assert got == k("::", 0, "2001:4860::1", 128, 6, 0, 0)


def test_ipv6_src_and_dst_aggregation() -> None:
    r = rule("tcp", 22, src=("2001:db8::/32", 64), dst=("2001:4860::/32", 120))
    got = key([r], pkt("2001:db8:0:7:1:2:3:4", "2001:4860::1:ff", 6, 50000, 22))
    assert got == k("2001:db8:0:7::", 64, "2001:4860::1:0", 120, 6, 0, 22)


def test_aggregation_to_plen_equal_to_subnet_and_to_full_length() -> None:
    whole = rule("udp", 53, src=("10.0.0.0/8", 8))
    host = rule("udp", 53, src=("10.0.0.0/8", 32))
    p = pkt("10.20.30.40", "8.8.8.8")
    assert key([whole], p).src == IPv4Address("10.0.0.0")
    assert key([host], p) == k("10.20.30.40", 32, "8.8.8.8", 32, 17, 0, 53)


# --- exclude list (3.1, decision (f)) ------------------------------------------------------------


def _exclude(extra: tuple[str, ...] = ()) -> ExcludeList:
    vn = VN("red", 1, (parse_network("10.1.0.0/24"), parse_network("2001:db8:1::/64")))
    return ExcludeList(VMI("vm1", 1, vn, exclude=tuple(parse_network(e) for e in extra)).exclude_list())


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("10.1.0.5", "10.1.0.1"),
        ("10.1.0.5", "10.1.0.2"),
        ("10.1.0.1", "8.8.8.8"),  # source side excluded too
        ("10.1.0.5", "169.254.1.1"),
        ("2001:db8:1::5", "2001:db8:1::2"),
        ("fe80::1", "2001:4860::1"),
        ("2001:db8:2::5", "febf::1"),  # last /10 block of fe80::/10
    ],
)
def test_excluded_addresses_give_normal_flows(src: str, dst: str) -> None:
    p = pkt(src, dst)
    assert key([rule("udp", 0, "src"), rule("udp", 53, "dst")], p, exclude=_exclude()) == FlowKey.normal(p, 1)


@pytest.mark.parametrize("dst", ["10.1.0.3", "10.1.1.1", "169.255.0.1", "2001:db8:1::3", "fec0::1"])
def test_addresses_next_to_excluded_ones_are_not_excluded(dst: str) -> None:
    p = pkt("10.1.0.5" if ":" not in dst else "2001:db8:1::5", dst)
    assert key([rule("udp", 53, "dst")], p, exclude=_exclude()).dst_plen == 0


def test_exclude_extras_and_to_vm_direction() -> None:
    ex = _exclude(("192.0.2.0/24", "2001:db8:ff::/48"))
    r = [rule("udp", 0, "src")]
    for p, direction in [
        (pkt("10.1.0.5", "192.0.2.9"), FROM_VM),
        (pkt("192.0.2.9", "10.1.0.5"), TO_VM),
        (pkt("2001:db8:ff:1::1", "2001:db8:1::5"), TO_VM),
    ]:
        assert key(r, p, direction, ex) == FlowKey.normal(p, 1)
    assert key(r, pkt("10.1.0.5", "192.0.3.9"), FROM_VM, ex).src_plen == 0


def test_exclude_list_membership() -> None:
    ex = ExcludeList([ip_network("10.0.0.0/8"), ip_network("10.1.0.1/32"), ip_network("fe80::/10")])
    assert ip_address("10.200.0.1") in ex
    assert ip_address("11.0.0.0") not in ex
    assert ip_address("fe80::1") in ex
    assert ip_address("::ffff:10.0.0.1") not in ex  # families are distinct
    assert "10.0.0.1" not in ex
    assert len(ex) == 3
    assert ex == ExcludeList(reversed(ex.networks))


# --- FlowKey -------------------------------------------------------------------------------------


def test_flow_key_str_shows_prefixes() -> None:
    assert str(k("10.0.0.0", 28, "0.0.0.0", 0, 17, 0, 53)) == "vrf 1 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53"
    six = k("2001:db8:0:1200::", 56, "::", 0, 17, 0, 53)
    assert str(six) == "vrf 1 udp [2001:db8:0:1200::]/56:0 -> [::]/0:53"
    assert str(k("1.1.1.1", 32, "2.2.2.2", 32, 47, 0, 0)) == "vrf 1 47 1.1.1.1/32:0 -> 2.2.2.2/32:0"


def test_flow_key_dict_round_trip_and_networks() -> None:
    fk = k("2001:db8:0:1200::", 56, "::", 0, 17, 0, 53)
    assert FlowKey.from_dict(fk.to_dict()) == fk
    assert fk.src_network == ip_network("2001:db8:0:1200::/56")
    assert fk.dst_network == ip_network("::/0")
    assert not fk.is_normal
    with pytest.raises(ValueError, match="exactly"):
        FlowKey.from_dict({**fk.to_dict(), "extra": 1})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(src=IPv4Address("10.0.0.1"), src_plen=24), "beyond its prefix length"),
        (dict(dst=IPv6Address("::1")), "different address families"),
        (dict(src_plen=33), "src_plen"),
        (dict(dport=70000), "dport"),
        (dict(protocol=256), "protocol"),
        (dict(vrf=-1), "vrf"),
    ],
)
def test_flow_key_rejects_inconsistent_fields(fields: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = dict(
        vrf=1,
        src=IPv4Address("10.0.0.0"),
        dst=IPv4Address("1.2.3.4"),
        protocol=17,
        sport=0,
        dport=53,
        src_plen=24,
        dst_plen=32,
    )
    FlowKey(**base)
    with pytest.raises(ValueError, match=message):
        FlowKey(**{**base, **fields})


def test_flow_keys_sort_within_a_family_and_across_with_sort_key() -> None:
    a, b = k("10.0.0.1", 32, "1.1.1.1", 32, 6, 1, 2), k("10.0.0.2", 32, "1.1.1.1", 32, 6, 1, 2)
    assert sorted([b, a]) == [a, b]
    six = k("::1", 128, "::2", 128, 6, 1, 2)
    assert sorted([six, b, a], key=FlowKey.sort_key) == [a, b, six]


def test_packet_fields_validate() -> None:
    with pytest.raises(ValueError, match="different address families"):
        pkt("10.0.0.1", "::1")
    with pytest.raises(ValueError, match="sport"):
        pkt("10.0.0.1", "10.0.0.2", 17, -1, 0)

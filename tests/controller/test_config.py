"""Configuration model: rule parsing and validation (spec 2), VN/VMI/topology, derived exclude list (3.1)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

import pytest
from p4fatflow.config import (
    VMI,
    VN,
    ConfigError,
    FatFlowRule,
    IgnoreAddress,
    PrefixAggr,
    Topology,
    merge_rules,
    parse_network,
)

WHERE = "vmi vm1 rule 2"


def aggr(subnet: str, plen: Any) -> dict[str, Any]:
    return {"subnet": subnet, "plen": plen}


# --- accepted rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "number"), [("tcp", 6), ("udp", 17), ("sctp", 132), ("icmp", 1), ("icmpv6", 58), ("UDP", 17)]
)
def test_protocol_names(name: str, number: int) -> None:
    port = 0 if number in (1, 58) else 80
    assert (
        FatFlowRule.from_dict({"protocol": name, "port": port, "ignore_address": "none"}).protocol == number
    )


def test_protocol_numbers_and_defaults() -> None:
    r = FatFlowRule.from_dict({"protocol": 17, "port": 53})
    assert r == FatFlowRule(17, 53, IgnoreAddress.NONE)
    assert FatFlowRule.from_dict({"protocol": "icmp"}) == FatFlowRule(1, 0, IgnoreAddress.NONE)
    assert FatFlowRule.from_dict({"protocol": 0, "port": 0}).protocol == 0
    assert FatFlowRule.from_dict({"protocol": 255, "port": 0}).protocol == 255


@pytest.mark.parametrize(
    "d",
    [
        {"protocol": "tcp", "port": 0, "ignore_address": "none", "src_prefix_aggr": aggr("10.0.0.0/8", 28)},
        {"protocol": "tcp", "port": 0, "ignore_address": "none", "dst_prefix_aggr": aggr("10.0.0.0/8", 28)},
        {
            "protocol": "tcp",
            "port": 0,
            "ignore_address": "none",
            "src_prefix_aggr": aggr("10.0.0.0/8", 28),
            "dst_prefix_aggr": aggr("20.0.0.0/8", 8),
        },
        {"protocol": "udp", "port": 53, "ignore_address": "dst", "src_prefix_aggr": aggr("10.0.0.0/8", 32)},
        {"protocol": "udp", "port": 53, "ignore_address": "src", "dst_prefix_aggr": aggr("::/0", 128)},
        {
            "protocol": "icmpv6",
            "port": 0,
            "ignore_address": "dst",
            "src_prefix_aggr": aggr("2001:db8::/32", 48),
        },
        {"protocol": 47, "port": 0, "ignore_address": "src"},
    ],
)
def test_allowed_combinations_round_trip(d: dict[str, Any]) -> None:
    r = FatFlowRule.from_dict(d)
    assert r.to_dict() == {**d, "protocol": d["protocol"]}
    assert FatFlowRule.from_dict(r.to_dict()) == r


def test_subnet_host_bits_are_normalised() -> None:
    r = FatFlowRule.from_dict(
        {
            "protocol": "udp",
            "port": 53,
            "src_prefix_aggr": aggr("10.1.2.3/8", 24),
            "dst_prefix_aggr": aggr("10.9.9.9/16", 24),
        }
    )
    assert r.src_prefix_aggr == PrefixAggr(IPv4Network("10.0.0.0/8"), 24)
    assert r.dst_prefix_aggr is not None and r.dst_prefix_aggr.subnet == IPv4Network("10.9.0.0/16")
    six = FatFlowRule.from_dict({"protocol": "udp", "port": 53, "src_prefix_aggr": aggr("2000::1/64", 64)})
    assert six.src_prefix_aggr is not None and six.src_prefix_aggr.subnet == IPv6Network("2000::/64")


def test_rule_labels() -> None:
    assert FatFlowRule.from_dict({"protocol": "udp", "port": 53}).label == "udp/53"
    assert FatFlowRule.from_dict({"protocol": "icmp"}).label == "icmp"
    assert FatFlowRule.from_dict({"protocol": 47, "port": 0}).label == "47/0"


# --- rejected rules: each names the rule and the field ------------------------------------------

REJECTED: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, rule dict, rule label in the message, field named in the message)
    (
        "ignore-src-with-src-aggr",
        {"protocol": "udp", "port": 53, "ignore_address": "src", "src_prefix_aggr": aggr("10.0.0.0/8", 28)},
        "(udp/53)",
        "src_prefix_aggr",
    ),
    (
        "ignore-dst-with-dst-aggr",
        {"protocol": "udp", "port": 53, "ignore_address": "dst", "dst_prefix_aggr": aggr("10.0.0.0/8", 28)},
        "(udp/53)",
        "dst_prefix_aggr",
    ),
    (
        "plen-shorter-than-subnet",
        {"protocol": "udp", "port": 53, "src_prefix_aggr": aggr("10.0.0.0/16", 8)},
        "(udp/53)",
        "src_prefix_aggr.plen",
    ),
    (
        "ipv4-plen-over-32",
        {"protocol": "udp", "port": 53, "dst_prefix_aggr": aggr("10.0.0.0/8", 33)},
        "(udp/53)",
        "dst_prefix_aggr.plen",
    ),
    (
        "ipv6-plen-over-128",
        {"protocol": "udp", "port": 53, "src_prefix_aggr": aggr("2001:db8::/32", 129)},
        "(udp/53)",
        "src_prefix_aggr.plen",
    ),
    (
        "plen-not-int",
        {"protocol": "udp", "port": 53, "src_prefix_aggr": aggr("10.0.0.0/8", "28")},
        "(udp/53)",
        "src_prefix_aggr.plen",
    ),
    (
        "mixed-families",
        {
            "protocol": "udp",
            "port": 53,
            "src_prefix_aggr": aggr("10.0.0.0/8", 24),
            "dst_prefix_aggr": aggr("2001:db8::/32", 48),
        },
        "(udp/53)",
        "dst_prefix_aggr",
    ),
    ("port-too-big", {"protocol": "udp", "port": 65536}, "(udp/65536)", "port"),
    ("port-negative", {"protocol": "tcp", "port": -1}, "(tcp/-1)", "port"),
    ("port-string", {"protocol": "tcp", "port": "80"}, "(tcp/80)", "port"),
    ("port-bool", {"protocol": "tcp", "port": True}, "(tcp/True)", "port"),
    ("port-missing", {"protocol": "tcp"}, "(tcp)", "port"),
    ("protocol-too-big", {"protocol": 256, "port": 0}, WHERE, "protocol"),
    ("protocol-negative", {"protocol": -1, "port": 0}, WHERE, "protocol"),
    ("protocol-unknown-name", {"protocol": "tpc", "port": 80}, WHERE, "protocol"),
    ("protocol-missing", {"port": 80}, WHERE, "protocol"),
    ("icmp-with-port", {"protocol": "icmp", "port": 8}, "(icmp/8)", "port"),
    ("icmpv6-with-port", {"protocol": "icmpv6", "port": 128}, "(icmpv6/128)", "port"),
    ("portless-protocol-with-port", {"protocol": 47, "port": 5}, "(47/5)", "port"),
    (
        "icmp-with-ipv6-subnet",
        {"protocol": "icmp", "port": 0, "src_prefix_aggr": aggr("2001:db8::/32", 48)},
        "(icmp)",
        "src_prefix_aggr.subnet",
    ),
    (
        "icmpv6-with-ipv4-subnet",
        {"protocol": "icmpv6", "port": 0, "dst_prefix_aggr": aggr("10.0.0.0/8", 24)},
        "(icmpv6)",
        "dst_prefix_aggr.subnet",
    ),
    ("unknown-key", {"protocol": "udp", "port": 53, "prio": 1}, "(udp/53)", "prio"),
    (
        "unknown-aggr-key",
        {"protocol": "udp", "port": 53, "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 24, "x": 1}},
        "(udp/53)",
        "src_prefix_aggr.x",
    ),
    (
        "aggr-missing-plen",
        {"protocol": "udp", "port": 53, "src_prefix_aggr": {"subnet": "10.0.0.0/8"}},
        "(udp/53)",
        "src_prefix_aggr.plen",
    ),
    (
        "aggr-bad-subnet",
        {"protocol": "udp", "port": 53, "src_prefix_aggr": aggr("10.0.0.300/8", 24)},
        "(udp/53)",
        "src_prefix_aggr.subnet",
    ),
    (
        "aggr-subnet-without-length",
        {"protocol": "udp", "port": 53, "src_prefix_aggr": aggr("10.0.0.0", 24)},
        "(udp/53)",
        "src_prefix_aggr.subnet",
    ),
    (
        "aggr-not-a-mapping",
        {"protocol": "udp", "port": 53, "dst_prefix_aggr": "10.0.0.0/8"},
        "(udp/53)",
        "dst_prefix_aggr",
    ),
    (
        "ignore-unknown",
        {"protocol": "udp", "port": 53, "ignore_address": "both"},
        "(udp/53)",
        "ignore_address",
    ),
]


@pytest.mark.parametrize(("d", "label", "field"), [r[1:] for r in REJECTED], ids=[r[0] for r in REJECTED])
def test_rejected_rule_names_rule_and_field(d: dict[str, Any], label: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        FatFlowRule.from_dict(d, where=WHERE)
    message = str(info.value)
    assert message.startswith(WHERE), message
    assert label in message.split(": ")[0], message
    assert info.value.field == field, message
    assert f": {field}: " in message, message


def test_error_without_where_still_names_the_rule() -> None:
    with pytest.raises(ConfigError, match=r"^rule \(udp/53\): src_prefix_aggr: "):
        FatFlowRule.from_dict(
            {
                "protocol": "udp",
                "port": 53,
                "ignore_address": "src",
                "src_prefix_aggr": aggr("10.0.0.0/8", 28),
            }
        )


def test_direct_construction_is_validated_too() -> None:
    ok = PrefixAggr(IPv4Network("10.0.0.0/8"), 24)
    with pytest.raises(ConfigError, match=r"^rule \(udp/53\): src_prefix_aggr: not allowed"):
        FatFlowRule(17, 53, IgnoreAddress.SRC, src_prefix_aggr=ok)
    with pytest.raises(ConfigError, match=r"plen: 40 is longer than an IPv4 address"):
        PrefixAggr(IPv4Network("10.0.0.0/8"), 40)
    with pytest.raises(ConfigError, match="ignore_address"):
        FatFlowRule(17, 53, "none")  # type: ignore[arg-type]


# --- VN, VMI, topology ---------------------------------------------------------------------------

RED = {"name": "red", "vrf": 1, "subnets": ["10.1.0.0/24", "2001:db8:1::/64"]}


def test_vn_from_dict_and_round_trip() -> None:
    vn = VN.from_dict({**RED, "rules": [{"protocol": "udp", "port": 53, "ignore_address": "dst"}]})
    assert vn.subnets == (IPv4Network("10.1.0.0/24"), IPv6Network("2001:db8:1::/64"))
    assert vn.rules == (FatFlowRule(17, 53, IgnoreAddress.DST),)
    assert VN.from_dict(vn.to_dict()) == vn


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ({**RED, "vrf": 70000}, "vn red: vrf: "),
        ({**RED, "vrf": "1"}, "vn red: vrf: "),
        ({**RED, "subnets": ["10.1.0.0/31"]}, "vn red: subnets: 10.1.0.0/31 is too small"),
        ({**RED, "subnets": ["10.1.0.0/24", "10.1.0.9/24"]}, "vn red: subnets: a subnet is listed twice"),
        ({**RED, "subnets": ["nonsense"]}, "vn red: subnets: "),
        ({**RED, "colour": "red"}, "vn red: colour: unknown key"),
        ({"name": "red"}, "vn red: vrf: missing"),
        ({**RED, "name": ""}, "vn: name: "),
        (
            {**RED, "rules": [{"protocol": "udp", "port": 1}, {"protocol": "udp", "port": 99999}]},
            "vn red rule 2 (udp/99999): port: ",
        ),
    ],
)
def test_vn_rejections(d: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        VN.from_dict(d)
    assert str(info.value).startswith(message), str(info.value)


def test_vmi_rule_errors_are_numbered_from_one() -> None:
    red = VN.from_dict(RED)
    d = {
        "name": "vm1",
        "port": 1,
        "vn": "red",
        "rules": [
            {"protocol": "udp", "port": 53},
            {"protocol": "udp", "port": 53, "ignore_address": "sideways"},
        ],
    }
    with pytest.raises(ConfigError, match=r"^vmi vm1 rule 2 \(udp/53\): ignore_address: "):
        VMI.from_dict(d, {"red": red})


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ({"name": "vm1", "port": 1, "vn": "blue"}, "vmi vm1: vn: unknown vn 'blue'"),
        ({"name": "vm1", "port": 511, "vn": "red"}, "vmi vm1: port: "),
        ({"name": "vm1", "port": -1, "vn": "red"}, "vmi vm1: port: "),
        ({"name": "vm1", "vn": "red"}, "vmi vm1: port: missing"),
        ({"name": "vm1", "port": 1, "vn": "red", "exclude": ["1.2.3.4"]}, "vmi vm1: exclude: "),
        ({"name": "vm1", "port": 1, "vn": "red", "mtu": 1500}, "vmi vm1: mtu: unknown key"),
    ],
)
def test_vmi_rejections(d: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        VMI.from_dict(d, {"red": VN.from_dict(RED)})
    assert str(info.value).startswith(message), str(info.value)


def test_effective_rules_vmi_first_then_vn_identical_merged() -> None:
    a = FatFlowRule(17, 53, IgnoreAddress.DST)
    b = FatFlowRule(6, 80, IgnoreAddress.NONE)
    c = FatFlowRule(6, 0, IgnoreAddress.SRC)
    vn = VN("red", 1, rules=(c, a))
    vmi = VMI("vm1", 1, vn, rules=(b, a))
    assert vmi.effective_rules() == (b, a, c)
    assert VMI("vm2", 2, vn).effective_rules() == (c, a)
    assert merge_rules([a, a, b], [b, c]) == (a, b, c)


def test_exclude_list_is_derived_from_vn_subnets() -> None:
    vn = VN.from_dict({**RED, "subnets": ["10.1.0.0/24", "10.2.0.0/16", "2001:db8:1::/64"]})
    vmi = VMI("vm1", 1, vn, exclude=(parse_network("192.0.2.0/24"), parse_network("169.254.0.0/16")))
    assert vmi.exclude_list() == tuple(
        ip_network(n)
        for n in [
            "10.1.0.1/32",
            "10.1.0.2/32",
            "10.2.0.1/32",
            "10.2.0.2/32",
            "2001:db8:1::1/128",
            "2001:db8:1::2/128",
            "169.254.0.0/16",
            "fe80::/10",
            "192.0.2.0/24",  # the operator's extra; its duplicate of 169.254/16 appears once
        ]
    )


def test_exclude_list_without_subnets_still_has_link_local() -> None:
    assert VMI("vm1", 1, VN("empty", 3)).exclude_list() == (
        ip_network("169.254.0.0/16"),
        ip_network("fe80::/10"),
    )


TOPO = {
    "vns": [RED, {"name": "blue", "vrf": 2, "subnets": ["10.9.0.0/24"]}],
    "vmis": [
        {"name": "vm1", "port": 1, "vn": "red", "rules": [{"protocol": "udp", "port": 53}]},
        {"name": "vm2", "port": 2, "vn": "blue", "exclude": ["192.0.2.0/24"]},
    ],
}


def test_topology_from_dict_lookup_and_round_trip() -> None:
    topo = Topology.from_dict(TOPO)
    vm2 = topo.vmi_by_port(2)
    assert vm2 is not None and vm2.name == "vm2" and vm2.vrf == 2
    assert topo.vmi_by_port(3) is None
    assert topo.vn("red") is not None and topo.vmi("vm1") is not None
    assert Topology.from_dict(topo.to_dict()) == topo


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"vmis": [*TOPO["vmis"], {"name": "vm3", "port": 1, "vn": "red"}]},
            "vmi vm3: port: port 1 is already vmi vm1",
        ),
        ({"vmis": [*TOPO["vmis"], {"name": "vm1", "port": 3, "vn": "red"}]}, "vmi vm1: name: defined twice"),
        ({"vns": [*TOPO["vns"], RED]}, "vn red: name: defined twice"),
        ({"switches": []}, "topology: switches: unknown key"),
    ],
)
def test_topology_rejections(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Topology.from_dict({**TOPO, **change})
    assert str(info.value).startswith(message), str(info.value)


def test_topology_rejects_vmi_whose_vn_is_not_in_it() -> None:
    outside = VN("green", 5)
    with pytest.raises(ConfigError, match="vmi vm1: vn: vn green is not part of this topology"):
        Topology(vns=(VN("red", 1),), vmis=(VMI("vm1", 1, outside),))

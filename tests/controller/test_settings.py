"""controller/p4fatflow/settings.py: the configuration file -> FatflowConfig, and its error reports."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml
from p4fatflow import dataplane as dp
from p4fatflow.config import IgnoreAddress
from p4fatflow.settings import (
    ConfigFileError,
    FabricPort,
    Problem,
    VmiPort,
    config_to_yaml,
    load_config,
    parse_config,
)
from p4fatflow.settings_schema import MAX_CONFIG_BYTES, MAX_DEPTH

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "fatflowd.yaml"
BAD = ROOT / "examples" / "bad"


def base() -> dict[str, Any]:
    """A small valid configuration as data (tests change a copy and dump it)."""
    return {
        "version": 1,
        "vns": [{"name": "blue", "vrf": 10, "subnets": ["10.0.0.0/8", "2001:db8::/32"]}],
        "switches": [{
            "name": "sw1", "address": "127.0.0.1:9559", "device_id": 1, "p4info": "p.txtpb",
            "device_config": "p.p4", "router_mac": "02:00:00:00:00:aa",
            "vmis": [{"name": "vm1", "port": 1, "vn": "blue", "mac": "02:00:00:00:01:01",
                      "addresses": ["10.0.0.3"]}],
            "fabric_ports": [{"port": 3, "vn": "blue"}],
            "routes": [{"vn": "blue", "prefix": "0.0.0.0/0", "port": 3, "mac": "02:00:00:00:00:bb"}],
        }],
    }


def problems(change: Callable[[dict[str, Any]], None] | None = None, text: str | None = None) -> list[Problem]:
    """The problems of base() after ``change`` (or of ``text``); fails if it loads."""
    if text is None:
        d = base()
        if change is not None:
            change(d)
        text = yaml.safe_dump(d, sort_keys=False)
    with pytest.raises(ConfigFileError) as info:
        parse_config(text, "t.yaml")
    return list(info.value.problems)


def find(found: list[Problem], path: str, fragment: str) -> Problem:
    hits = [p for p in found if p.path == path and fragment in p.message]
    assert hits, f"no problem at {path} saying {fragment!r} in:\n" + "\n".join(map(str, found))
    return hits[0]


# ---- the example ---------------------------------------------------------------------------------


def test_example_file_loads_with_its_values() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.source == str(EXAMPLE)
    sw = cfg.switch("sw1")
    # paths are relative to the file
    assert sw.p4info == EXAMPLE.parent / "../build/fatflow.p4info.txtpb"
    assert sw.election_id == 10 and sw.device_id == 1 and sw.cpu_port == 255
    assert sw.router_mac == 0x0200000000AA
    # the switch overrides max_flows and udp's lifetime, and keeps the other lifetimes
    assert cfg.flowtable.max_flows == 65536 and sw.flowtable.max_flows == 10000
    assert sw.flowtable.lifetime_for(17) == 20 and cfg.flowtable.lifetime_for(17) == 30
    assert sw.flowtable.lifetime_for(6) == 300 and sw.flowtable.lifetime_for(47) == 120
    assert sw.flowtable.lifetime_for(132) == 60  # the default
    assert sw.flowtable.digest.max_timeout_ns == 5_000_000 and sw.flowtable.digest.ack_timeout_ns == 10**9
    vm1, vm2 = sw.vmis
    assert vm1.addresses == (IPv4Address("10.0.0.3"), IPv6Address("2001:db8::3"))
    assert vm1.miss_policy == dp.MISS_POLICY_FORWARD and vm2.miss_policy == dp.MISS_POLICY_HOLD
    assert vm1.id is None and vm2.id == 7
    assert vm1.vmi.rules[0].ignore_address is IgnoreAddress.SRC
    # VN rules reach the VMI through the existing model
    assert len(vm1.vmi.effective_rules()) == 3 and vm1.vmi.exclude == (ip_network("192.0.2.0/24"),)
    assert isinstance(sw.port(3), FabricPort) and isinstance(sw.port(2), VmiPort) and sw.port(9) is None
    assert [vn.name for vn in sw.topology.vns] == ["blue"] and sw.topology.vmi("vm2") is not None


def test_config_to_yaml_round_trips(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLE)
    text = config_to_yaml(cfg)
    again = parse_config(text, "again", tmp_path)  # paths are written resolved: base_dir is moot
    assert dataclasses.replace(again, source=cfg.source) == cfg
    assert config_to_yaml(again) == text


def test_config_to_yaml_prints_token_paths_never_tokens(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cr3t-t0ken\n")
    d = base()
    d["api"] = {"token_file": "token", "tls": {"cert": "c.pem", "key": "k.pem"}}
    (tmp_path / "f.yaml").write_text(yaml.safe_dump(d))
    cfg = load_config(tmp_path / "f.yaml")
    assert cfg.api.token_file == tmp_path / "token"
    out = config_to_yaml(cfg)
    assert str(tmp_path / "token") in out and "s3cr3t" not in out


def test_defaults() -> None:
    cfg = parse_config(yaml.safe_dump(base()))
    assert cfg.api.listen == "127.0.0.1:50051" and cfg.api.metrics_listen == "127.0.0.1:9464"
    assert cfg.api.token_file is None and cfg.api.tls is None
    ft = cfg.switches[0].flowtable
    assert (ft.max_flows, ft.default_lifetime, ft.analyzer_port, ft.policy) == (65536, 60, None, "default")
    assert (ft.hold.per_flow, ft.hold.total, ft.digest.max_list_size) == (3, 4096, 128)
    vm = cfg.switches[0].vmis[0]
    assert vm.flowtable and not vm.mirror_new_flows and vm.egress_port == 0


def test_mirror_new_flows_resolves_to_the_flowtable_default() -> None:
    d = base()
    d["flowtable"] = {"mirror_new_flows": True}
    d["switches"][0]["vmis"].append({"name": "vm2", "port": 2, "vn": "blue", "mac": "02:00:00:00:00:01",
                                     "mirror_new_flows": False})
    sw = parse_config(yaml.safe_dump(d)).switches[0]
    assert sw.vmis[0].mirror_new_flows is True and sw.vmis[1].mirror_new_flows is False
    assert sw.fabric_ports[0].mirror_new_flows is True


def test_policy_options_are_replaced_not_merged() -> None:
    d = base()
    d["flowtable"] = {"policy": "firewall", "policy_options": {"deny_ports": {"tcp": [23]}, "drop_lifetime": 5}}
    d["switches"][0]["flowtable"] = {"policy_options": {"drop_lifetime": 9}}
    cfg = parse_config(yaml.safe_dump(d))
    assert dict(cfg.flowtable.policy_options) == {"deny_ports": {"tcp": [23]}, "drop_lifetime": 5}
    assert dict(cfg.switches[0].flowtable.policy_options) == {"drop_lifetime": 9}
    assert cfg.switches[0].flowtable.policy == "firewall"


def test_switch_lookup_suggests_a_name() -> None:
    cfg = parse_config(yaml.safe_dump(base()))
    with pytest.raises(KeyError, match="did you mean 'sw1'"):
        cfg.switch("sw2")


def test_unquoted_mac_is_not_a_base_60_number() -> None:
    text = yaml.safe_dump(base()).replace("'02:00:00:00:01:01'", "02:00:00:00:01:01")
    assert "mac: 02:00:00:00:01:01" in text
    assert parse_config(text).switches[0].vmis[0].mac == 0x020000000101


def test_analyzer_may_be_the_cpu_port() -> None:
    d = base()
    d["flowtable"] = {"analyzer_port": 255}
    assert parse_config(yaml.safe_dump(d)).switches[0].flowtable.analyzer_port == 255


# ---- the invalid examples ------------------------------------------------------------------------

_BAD_EXPECTED: dict[str, list[tuple[str, str, int]]] = {
    "unknown_keys.yaml": [
        ("flowtable.max_flow", "did you mean 'max_flows'", 4),
        ("switches[0].adress", "did you mean 'address'", 9),
        ("switches[0]", "missing required key 'address'", 8),
        ("switches[0].vmis[0].miss_policy", "did you mean 'hold'", 15),
    ],
    "bad_references.yaml": [
        ("switches[0].vmis[0].vn", "unknown vn 'bleu' (did you mean 'blue'?)", 15),
        ("switches[0].vmis[1].addresses[0]", "not in any subnet of vn blue", 16),
        ("switches[0].fabric_ports[0].port", "already vmi vm2", 18),
        ("switches[0].flowtable.analyzer_port", "already vmi vm1", 13),
        ("switches[0].routes[0].port", "port 9 is not a VMI or fabric port", 20),
    ],
    "bad_rules.yaml": [
        ("vns[0].rules[0].src_prefix_aggr", "not allowed with ignore_address src", 11),
        ("vns[0].rules[1].dst_prefix_aggr.plen", "shorter than the prefix length", 14),
        ("switches[0].vmis[0].rules[0].src_prefix_aggr.subnet", "icmp is IPv4-only", 28),
    ],
    "bad_values.yaml": [
        ("vns[0].vrf", "70000 is out of range 0-65535", 4),
        ("switches[0].device_id", "expected an integer, got string 'one'", 8),
        ("switches[0].cpu_port", "511 is out of range 0-510", 12),
        ("switches[0].vmis[0].flowtable", "expected true or false", 14),
    ],
    "bad_limits.yaml": [
        ("flowtable.max_flows", "more than the flow tables hold", 4),
        ("flowtable.lifetime.300", "out of range 0-255", 5),
        ("flowtable.lifetime.6", "the same protocol as 'tcp'", 5),
        ("flowtable.hold.total", "less than per_flow", 6),
        ("switches[0].address", "port 99999 is out of range", 11),
    ],
}


@pytest.mark.parametrize("name", sorted(_BAD_EXPECTED))
def test_bad_examples_report_every_problem_with_path_and_line(name: str) -> None:
    with pytest.raises(ConfigFileError) as info:
        load_config(BAD / name)
    found = list(info.value.problems)
    for path, fragment, line in _BAD_EXPECTED[name]:
        p = find(found, path, fragment)
        assert p.line == line and p.file == str(BAD / name)
    assert len(found) == len(_BAD_EXPECTED[name]), "\n".join(map(str, found))
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(_BAD_EXPECTED)


def test_error_text_lists_one_problem_per_line() -> None:
    with pytest.raises(ConfigFileError) as info:
        load_config(BAD / "bad_values.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.problems)
    assert lines[0] == f"{BAD / 'bad_values.yaml'}:4: vns[0].vrf: 70000 is out of range 0-65535"
    assert str(Problem("f", "", "empty", None)) == "f: empty"


# ---- structural problems -------------------------------------------------------------------------


def test_missing_keys_and_version() -> None:
    found = problems(text="vns: []\n")
    find(found, "", "missing required key 'version'")
    find(found, "", "missing required key 'switches'")
    find(problems(lambda d: d.update(version=2)), "version", "unsupported version 2")
    find(problems(lambda d: d["switches"][0]["vmis"][0].pop("mac")), "switches[0].vmis[0]", "'mac'")


def test_unknown_rule_key_suggests_the_right_one() -> None:
    def change(d: dict[str, Any]) -> None:
        d["vns"][0]["rules"] = [{"protocol": "udp", "port": 53, "ignore_adress": "dst"}]

    find(problems(change), "vns[0].rules[0].ignore_adress", "did you mean 'ignore_address'")


def test_duplicate_yaml_keys_are_errors() -> None:
    text = yaml.safe_dump(base(), sort_keys=False).replace("version: 1\n", "version: 1\nversion: 1\n")
    p = find(problems(text=text), "version", "given twice")
    assert p.line == 2


def test_yaml_syntax_error_has_a_line() -> None:
    (p,) = problems(text="version: 1\nswitches: [\n  {name: a\n")
    assert p.message.startswith("YAML:") and p.line is not None


def test_empty_file() -> None:
    (p,) = problems(text="# nothing\n")
    assert "empty" in p.message


def test_bool_is_not_an_integer() -> None:
    find(problems(lambda d: d["switches"][0]["vmis"][0].update(port=True)), "switches[0].vmis[0].port",
         "expected an integer")


def test_huge_file_is_refused_quickly() -> None:
    text = "version: 1\n" + "#" * (MAX_CONFIG_BYTES + 10)
    t0 = time.monotonic()
    (p,) = problems(text=text)
    assert "larger than" in p.message and time.monotonic() - t0 < 1.0


def test_deep_file_is_refused_quickly() -> None:
    t0 = time.monotonic()
    (p,) = problems(text="a: " + "[" * 100_000 + "]" * 100_000)
    assert f"deeper than {MAX_DEPTH}" in p.message and time.monotonic() - t0 < 5.0


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
              f"*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    t0 = time.monotonic()
    (p,) = problems(text="\n".join(lines) + "\n")
    assert "more than" in p.message and time.monotonic() - t0 < 10.0


def test_unsupported_yaml_tag() -> None:
    find(problems(text="version: !!python/object:os.system 1\nswitches: []\n"), "version", "cannot read")


# ---- semantic problems ---------------------------------------------------------------------------


def _add_vmi(d: dict[str, Any], **over: Any) -> None:
    vmi = {"name": "vm2", "port": 2, "vn": "blue", "mac": "02:00:00:00:00:02"} | over
    d["switches"][0]["vmis"].append(vmi)


def test_duplicate_names() -> None:
    find(problems(lambda d: d["vns"].append({"name": "blue", "vrf": 11})), "vns[1].name", "defined twice")
    find(problems(lambda d: d["switches"].append(copy.deepcopy(d["switches"][0]) | {"device_id": 2})),
         "switches[1].name", "already switches[0]")
    find(problems(lambda d: _add_vmi(d, name="vm1")), "switches[0].vmis[1].name", "already switches[0].vmis[0]")


def test_same_device_twice() -> None:
    def change(d: dict[str, Any]) -> None:
        d["switches"].append(copy.deepcopy(d["switches"][0]) | {"name": "sw2"})
        d["switches"][1]["vmis"][0]["name"] = "vm9"

    find(problems(change), "switches[1].device_id", "the same device as switch 'sw1'")


def test_ports_are_used_once() -> None:
    find(problems(lambda d: _add_vmi(d, port=3)), "switches[0].fabric_ports[0].port", "already vmi vm2")
    p = find(problems(lambda d: _add_vmi(d, port=255)), "switches[0].vmis[1].port", "already the CPU port")
    assert "switches[0].cpu_port" in p.message
    find(problems(lambda d: d.update(flowtable={"analyzer_port": 3})), "flowtable.analyzer_port",
         "already a fabric port")


def test_duplicate_fixed_vmi_ids() -> None:
    def change(d: dict[str, Any]) -> None:
        d["switches"][0]["vmis"][0]["id"] = 5
        _add_vmi(d, id=5)

    find(problems(change), "switches[0].vmis[1].id", "id 5 is already switches[0].vmis[0]")


def test_routes_are_unique_per_vrf_and_prefix() -> None:
    def change(d: dict[str, Any]) -> None:
        d["switches"][0]["routes"].append({"vn": "blue", "prefix": "10.0.0.3/32", "port": 3, "mac": "02:00:00:00:00:01"})
        d["switches"][0]["routes"].append({"vn": "blue", "prefix": "0.0.0.0/0", "port": 1, "mac": "02:00:00:00:00:01"})

    found = problems(change)
    find(found, "switches[0].routes[1].prefix", "already switches[0].vmis[0].addresses[0]")
    find(found, "switches[0].routes[2].prefix", "already switches[0].routes[0].prefix")


def test_vmi_address_may_not_be_the_gateway() -> None:
    find(problems(lambda d: _add_vmi(d, addresses=["10.0.0.1"])), "switches[0].vmis[1].addresses[0]",
         "gateway or service")
    find(problems(lambda d: _add_vmi(d, addresses=["10.0.0.300"])), "switches[0].vmis[1].addresses[0]",
         "not an IPv4 or IPv6 address")


def test_egress_port_must_exist() -> None:
    find(problems(lambda d: _add_vmi(d, egress_port=7)), "switches[0].vmis[1].egress_port",
         "port 7 is not a VMI or fabric port")
    d = base()
    _add_vmi(d, egress_port=3)
    assert parse_config(yaml.safe_dump(d)).switches[0].vmis[1].egress_port == 3


def test_conflicting_rules_between_vmi_and_vn() -> None:
    def change(d: dict[str, Any]) -> None:
        d["vns"][0]["rules"] = [{"protocol": "udp", "port": 53, "ignore_address": "src"}]
        d["switches"][0]["vmis"][0]["rules"] = [{"protocol": "udp", "port": 53, "ignore_address": "dst"}]

    find(problems(change), "switches[0].vmis[0].rules", "match the same packets")
    # identical rules at both levels merge (spec 2): no conflict
    d = base()
    d["vns"][0]["rules"] = [{"protocol": "udp", "port": 53, "ignore_address": "src"}]
    d["switches"][0]["vmis"][0]["rules"] = [{"protocol": "udp", "port": 53, "ignore_address": "src"}]
    assert len(parse_config(yaml.safe_dump(d)).switches[0].vmis[0].vmi.effective_rules()) == 1


def test_bad_subnet_and_tiny_subnet() -> None:
    find(problems(lambda d: d["vns"][0].update(subnets=["10.0.0.0"])), "vns[0].subnets[0]", "no prefix length")
    find(problems(lambda d: d["vns"][0].update(subnets=["10.0.0.0/31"])), "vns[0].subnets", "too small")


def test_tls_cert_and_key_go_together() -> None:
    find(problems(lambda d: d["switches"][0].update(tls={"cert": "c.pem"})), "switches[0].tls", "go together")


def test_all_problems_are_reported_not_just_the_first() -> None:
    def change(d: dict[str, Any]) -> None:
        d["switches"][0]["vmis"][0]["vn"] = "green"
        d["switches"][0]["fabric_ports"][0]["vn"] = "red"
        d["switches"][0]["routes"][0]["vn"] = "grey"

    assert len(problems(change)) == 3


def test_load_config_missing_or_binary_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigFileError, match="UTF-8"):
        load_config(tmp_path / "bin.yaml")


def test_digest_backlog_reaches_the_flow_layer_and_round_trips() -> None:
    from p4fatflow.node import _flow_settings
    from p4fatflow.settings import config_to_yaml

    d = base()
    d["flowtable"] = {"digest": {"backlog": 300}}
    cfg = parse_config(yaml.safe_dump(d))
    assert cfg.switches[0].flowtable.digest.backlog == 300
    assert cfg.switches[0].flowtable.digest.max_list_size == 128  # merged key by key
    assert _flow_settings(cfg.switches[0]).backlog_limit == 300
    assert parse_config(config_to_yaml(cfg)).switches[0].flowtable.digest.backlog == 300
    d["flowtable"] = {"digest": {"backlog": 0}}
    with pytest.raises(ConfigFileError, match=r"flowtable\.digest\.backlog"):
        parse_config(yaml.safe_dump(d))

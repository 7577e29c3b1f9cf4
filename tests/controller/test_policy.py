"""policy.py: the default policy, the firewall and load-balancer examples, option errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flow_support import key_values, v4key, v6key
from hypothesis import given
from hypothesis import strategies as st
from p4fatflow import dataplane as dp
from p4fatflow.key import FlowKey
from p4fatflow.policy import (
    POLICIES,
    Decision,
    DefaultPolicy,
    FirewallPolicy,
    LoadBalancerPolicy,
    NewFlow,
    PolicyError,
    PortDefaults,
    make_policy,
)
from p4fatflow.settings import ConfigFileError, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fatflowd.yaml"


def nf(key: FlowKey, *, vmi: int = 7, direction: int = dp.DIRECTION_FROM_VM, port: int = 1) -> NewFlow:
    return NewFlow(key.version, key_values(key), vmi, direction, port)


def test_new_flow_fields() -> None:
    key = v6key(proto=17, dport=53)
    flow = nf(key)
    assert flow.protocol == 17 and flow.dst_port == 53 and flow.key == key
    assert nf(v4key(sport=0, dport=0)).dst_port == 0


def test_default_policy_uses_the_port_defaults_and_protocol_lifetimes() -> None:
    pol = DefaultPolicy()
    d = PortDefaults(egress_port=4, mirror=True, lifetimes={17: 20}, default_lifetime=90)
    assert pol.decide(nf(v4key(proto=17)), d) == Decision(egress_port=4, lifetime=20, mirror=True)
    assert pol.decide(nf(v4key(proto=6)), d) == Decision(egress_port=4, lifetime=90, mirror=True)
    other = PortDefaults(lifetimes={6: 0})
    assert pol.decide(nf(v4key(proto=6)), other) == Decision(lifetime=0)
    # the cache is per defaults object: the first answer does not leak to the other port
    assert pol.decide(nf(v4key(proto=6)), d).lifetime == 90


def test_default_policy_takes_no_options() -> None:
    with pytest.raises(PolicyError, match="default"):
        DefaultPolicy({"x": 1})


def test_default_policy_cache_survives_a_reload_with_reused_ids() -> None:
    # A reload builds new PortDefaults; one may land at the address of an old one. The cache is
    # keyed by id() but checks identity, so an entry of the old object never answers for the new.
    pol = DefaultPolicy()
    old = PortDefaults(egress_port=1, lifetimes={6: 10})
    assert pol.decide(nf(v4key()), old).lifetime == 10
    new = PortDefaults(egress_port=2, lifetimes={6: 99})
    # what an address reuse looks like to the cache: the new object's id already has an entry
    pol._cache[(id(new), 6)] = (old, Decision(egress_port=1, lifetime=10))
    assert pol.decide(nf(v4key()), new) == Decision(egress_port=2, lifetime=99)
    assert pol.decide(nf(v4key()), old).lifetime == 10  # the old object still gets its own


def test_firewall_denies_ports_and_prefixes() -> None:
    fw = FirewallPolicy({"deny_ports": {"tcp": [23], "udp": [69]}, "deny_prefixes": ["192.0.2.0/24", "2001:db8:bad::/48"],
                         "drop_lifetime": 15})
    d = PortDefaults(egress_port=3, default_lifetime=60)
    drop = Decision(drop=True, lifetime=15)
    assert fw.decide(nf(v4key(proto=6, dport=23)), d) == drop
    assert fw.decide(nf(v4key(proto=17, dport=69)), d) == drop
    assert fw.decide(nf(v4key(proto=17, dport=23)), d) == Decision(egress_port=3, lifetime=60)  # tcp only
    assert fw.decide(nf(v4key(dst="192.0.2.7")), d) == drop
    assert fw.decide(nf(v4key(dst="192.0.3.7")), d) == Decision(egress_port=3, lifetime=60)
    assert fw.decide(nf(v6key(dst="2001:db8:bad:1::1")), d) == drop
    assert fw.decide(nf(v6key(dst="2001:db8:bad0::1")), d).drop is False
    assert FirewallPolicy({}).drop.lifetime == 30


def test_firewall_prefix_is_the_remote_side_for_to_vm_flows() -> None:
    fw = FirewallPolicy({"deny_prefixes": ["192.0.2.0/24"]})
    into_vm = nf(v4key(src="192.0.2.9", dst="10.0.0.5"), direction=dp.DIRECTION_TO_VM)
    assert fw.decide(into_vm, PortDefaults()).drop


@pytest.mark.parametrize(("options", "named"), [
    ({"deny_ports": {"icmp": [1]}}, "icmp"),
    ({"deny_prefixes": ["10.0.0.300/8"]}, "deny_prefixes"),
    ({"deny_portz": {}}, "deny_portz"),
    ({"drop_lifetime": 5, "color": "red"}, "color"),
])
def test_firewall_bad_options_name_the_option(options: dict[str, Any], named: str) -> None:
    with pytest.raises(PolicyError, match=named):
        FirewallPolicy(options)


@pytest.mark.parametrize(("options", "named"), [
    ({"deny_ports": [23]}, "deny_ports"),
    ({"deny_ports": {"tcp": ["telnet"]}}, "deny_ports"),
    ({"deny_ports": {"tcp": [70000]}}, "deny_ports"),
    ({"drop_lifetime": "soon"}, "drop_lifetime"),
])
def test_firewall_bad_option_values_are_policy_errors(options: dict[str, Any], named: str) -> None:
    with pytest.raises(PolicyError, match=named):
        FirewallPolicy(options)


def test_load_balancer_is_stable_per_key_and_spreads() -> None:
    lb = LoadBalancerPolicy({"backends": [5, 6, 7], "service_ports": [443]})
    d = PortDefaults(egress_port=3, mirror=True, lifetimes={6: 45})
    keys = [v4key(src=f"10.0.{i // 250}.{i % 250 + 1}", sport=1000 + i, dport=443) for i in range(600)]
    first = [lb.decide(nf(k), d) for k in keys]
    again = [LoadBalancerPolicy({"backends": [5, 6, 7], "service_ports": [443]}).decide(nf(k), d) for k in keys]
    assert first == again  # stable per key, also across instances (a restarted controller)
    counts = Counter(x.egress_port for x in first)
    assert set(counts) == {5, 6, 7}
    assert min(counts.values()) > 600 // 3 // 2  # spread, not all on one backend
    for x in first:
        assert x.lifetime == 45 and x.mirror and not x.drop
        assert x.info == b"lb:" + x.egress_port.to_bytes(2, "big")
    # not a service port: the defaults
    assert lb.decide(nf(v4key(dport=80)), d) == Decision(egress_port=3, lifetime=45, mirror=True)


@given(st.lists(st.integers(1, 510), min_size=1, max_size=5))
def test_load_balancer_without_service_ports_balances_everything(backends: list[int]) -> None:
    lb = LoadBalancerPolicy({"backends": backends})
    for k in (v4key(), v6key(), v4key(dport=80)):
        assert lb.decide(nf(k), PortDefaults()).egress_port in backends


@pytest.mark.parametrize(("options", "named"), [
    ({}, "backends"),
    ({"backends": []}, "backends"),
    ({"backends": [0]}, "backends"),
    ({"backends": [511]}, "backends"),
    ({"backends": ["p1"]}, "backends"),
    ({"backends": [1], "weights": [1]}, "weights"),
])
def test_load_balancer_bad_options_name_the_option(options: dict[str, Any], named: str) -> None:
    with pytest.raises(PolicyError, match=named):
        LoadBalancerPolicy(options)


def test_make_policy() -> None:
    assert set(POLICIES) == {"default", "firewall", "loadbalancer"}
    assert isinstance(make_policy("default"), DefaultPolicy)
    assert isinstance(make_policy("firewall", {"deny_ports": {"tcp": [23]}}), FirewallPolicy)
    assert isinstance(make_policy("loadbalancer", {"backends": [2]}), LoadBalancerPolicy)
    with pytest.raises(PolicyError, match="nat"):
        make_policy("nat")


def test_bad_policy_options_are_a_configuration_error(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "  policy: default" in text and "  policy_options: {}" in text
    text = text.replace("  policy: default", "  policy: firewall").replace(
        "  policy_options: {}", "  policy_options: {deny_portz: {tcp: [23]}}")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigFileError, match="deny_portz"):
        load_config(bad)

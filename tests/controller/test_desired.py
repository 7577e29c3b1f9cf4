"""controller/p4fatflow/desired.py: configuration -> desired switch state, stable VMI ids, the diff."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from p4fatflow import dataplane as dp
from p4fatflow.dataplane import EntryId, TableWrite
from p4fatflow.desired import (
    CONFIG_TABLES,
    EntryDiff,
    allocate_vmi_ids,
    desired_state,
    diff_entries,
    vmi_ids_from_port_entries,
    vmi_metadata,
)
from p4fatflow.key import FlowKey
from p4fatflow.settings import FatflowConfig, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fatflowd.yaml"


def base() -> dict[str, Any]:
    return {
        "version": 1,
        "vns": [{"name": "blue", "vrf": 10, "subnets": ["10.0.0.0/8"],
                 "rules": [{"protocol": "udp", "port": 53, "ignore_address": "dst",
                            "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}}]}],
        "switches": [{
            "name": "sw1", "address": "127.0.0.1:9559", "device_id": 1, "p4info": "p.txtpb",
            "device_config": "p.p4", "router_mac": "02:00:00:00:00:aa",
            "vmis": [{"name": "vm1", "port": 1, "vn": "blue", "mac": "02:00:00:00:01:01",
                      "addresses": ["10.0.0.3"],
                      "rules": [{"protocol": "tcp", "port": 443,
                                 "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 24}}]}],
            "fabric_ports": [{"port": 3, "vn": "blue"}],
            "routes": [{"vn": "blue", "prefix": "0.0.0.0/0", "port": 3, "mac": "02:00:00:00:00:bb"}],
        }],
    }


def cfg_of(d: Mapping[str, Any]) -> FatflowConfig:
    return parse_config(yaml.safe_dump(dict(d)))


def state_of(d: Mapping[str, Any], known: Mapping[str, int] | None = None) -> dict[EntryId, TableWrite]:
    cfg = cfg_of(d)
    return dict(desired_state(cfg, cfg.switches[0], known or {}).entries)


def apply(actual: dict[EntryId, TableWrite], diff: EntryDiff) -> dict[EntryId, TableWrite]:
    """What a switch holds after the diff's writes (a model of P4Runtime insert/modify/delete)."""
    out = dict(actual)
    for op, writes in diff.steps():
        for w in writes:
            if op == "insert":
                assert w.entry_id not in out, f"insert of an existing entry {w}"
            else:
                assert w.entry_id in out, f"{op} of a missing entry {w}"
            if op == "delete":
                del out[w.entry_id]
            else:
                out[w.entry_id] = w
    return out


def changed(change: Callable[[dict[str, Any]], None]) -> tuple[dict[EntryId, TableWrite], EntryDiff]:
    """(old entries, diff to the changed configuration); the diff is applied and re-checked."""
    before = state_of(base())
    d = base()
    change(d)
    after = state_of(d, vmi_ids_from_port_entries(before.values()))
    diff = diff_entries(after, before)
    assert apply(before, diff) == after
    assert not diff_entries(after, apply(before, diff))
    return before, diff


def rows_of(writes: tuple[TableWrite, ...]) -> Counter[str]:
    return Counter(w.table.rsplit(".", 1)[1] for w in writes)


# ---- desired state -------------------------------------------------------------------------------


def test_example_counts() -> None:
    cfg = load_config(EXAMPLE)
    state = desired_state(cfg, cfg.switch("sw1"), {})
    counts = Counter(w.table.rsplit(".", 1)[1] for w in state.entries.values())
    # vm1 excludes 10.0.0.1, .2, 169.254/16, 192.0.2/24 (v4) and ::1, ::2, fe80::/10 (v6);
    # vm2 the same without 192.0.2/24. Ports matched: vm1 tcp/22, udp/53, tcp/443; vm2 udp/53,
    # tcp/443. Rules v4: vm1 3, vm2 2; v6: vm1's port-only tcp/22. Routes: two defaults and three
    # host routes (vm1 v4 + v6, vm2 v4). Port table: two VMIs and one fabric port.
    assert counts == {
        "exclude_src_v4": 7, "exclude_dst_v4": 7, "exclude_src_v6": 6, "exclude_dst_v6": 6,
        "port_match_sport": 5, "port_match_dport": 5, "rule_v4": 5, "rule_v6": 1,
        "route_v4": 3, "route_v6": 2, "port_table": 3,
    }
    assert state.vmi_ids == {"vm1": 1, "vm2": 7}  # vm2's id is fixed, vm1 gets the lowest free
    assert state.clone_sessions == {}
    assert state.digest == cfg.switch("sw1").flowtable.digest
    assert all(k == w.entry_id for k, w in state.entries.items())


def test_port_and_route_entries() -> None:
    cfg = cfg_of(base())
    state = desired_state(cfg, cfg.switches[0], {})
    entries = list(state.entries.values())
    (vmi_port,) = [w for w in entries if w.action == dp.SET_VMI_PORT]
    assert vmi_port.metadata == b"vmi:vm1"
    assert vmi_port.params_dict == {"vmi_id": 1, "vrf": 10, "miss_policy": 0, "mirror_new_flows": 0,
                                    "flowtable_enabled": 1}
    (fabric,) = [w for w in entries if w.action == dp.SET_FABRIC_PORT]
    assert fabric.match == (("ingress_port", 3),) and fabric.params_dict["vrf"] == 10
    routes = {w.match_dict.get("dst_addr"): w.params_dict for w in entries if w.table == dp.ROUTE_V4_TABLE}
    assert routes == {
        # the VMI's host route leads to its MAC and carries its id (to-VM traffic)
        (0x0A000003, 32): {"port": 1, "src_mac": 0x0200000000AA, "dst_mac": 0x020000000101, "dst_vmi_id": 1},
        # the default route: a /0 is "don't care", so the field is left out of the match
        None: {"port": 3, "src_mac": 0x0200000000AA, "dst_mac": 0x0200000000BB, "dst_vmi_id": 0},
    }


def test_route_to_a_vmi_port_carries_its_id() -> None:
    d = base()
    d["switches"][0]["routes"].append({"vn": "blue", "prefix": "10.9.0.0/16", "port": 1, "mac": "02:00:00:00:09:09"})
    entries = state_of(d, {"vm1": 12}).values()
    (w,) = [w for w in entries if w.match_dict.get("dst_addr") == (0x0A090000, 16)]
    assert w.params_dict["dst_vmi_id"] == 12 and w.params_dict["port"] == 1


def test_analyzer_clone_session_and_flags() -> None:
    d = base()
    d["flowtable"] = {"analyzer_port": 7, "mirror_new_flows": True}
    d["switches"][0]["vmis"][0] |= {"miss_policy": "hold", "flowtable": False}
    cfg = cfg_of(d)
    state = desired_state(cfg, cfg.switches[0], {})
    assert state.clone_sessions == {dp.ANALYZER_CLONE_SESSION_ID: (7,)}
    (port,) = [w for w in state.entries.values() if w.action == dp.SET_VMI_PORT]
    assert port.params_dict["miss_policy"] == dp.MISS_POLICY_HOLD
    assert port.params_dict["mirror_new_flows"] == 1 and port.params_dict["flowtable_enabled"] == 0


def test_switch_must_belong_to_the_configuration() -> None:
    other = cfg_of(base())
    with pytest.raises(ValueError, match="not part of"):
        desired_state(load_config(EXAMPLE), other.switches[0], {})


# ---- VMI ids -------------------------------------------------------------------------------------


def _two_vmis(fixed: int | None = None) -> dict[str, Any]:
    d = base()
    d["switches"][0]["vmis"].append({"name": "vm2", "port": 2, "vn": "blue", "mac": "02:00:00:00:00:02",
                                     "id": fixed})
    return d


def test_vmi_ids_are_recovered_from_the_port_entries() -> None:
    first = state_of(_two_vmis(), {"vm1": 40, "vm2": 41})
    known = vmi_ids_from_port_entries(first.values())
    assert known == {"vm1": 40, "vm2": 41}
    # a restarted controller with the same configuration computes the same entries
    assert state_of(_two_vmis(), known) == first


def test_fixed_id_wins_over_a_recovered_one() -> None:
    cfg = cfg_of(_two_vmis(fixed=5))
    ids = allocate_vmi_ids(cfg.switches[0], {"vm1": 5, "vm2": 9})
    assert ids == {"vm1": 1, "vm2": 5}  # vm1's old id is vm2's fixed id: vm1 gets the lowest free
    assert allocate_vmi_ids(cfg.switches[0], {"vm1": 1, "vm2": 9}) == {"vm1": 1, "vm2": 5}
    assert allocate_vmi_ids(cfg.switches[0], {"vm1": 0, "vm3": 2}) == {"vm1": 1, "vm2": 5}


def test_new_vmi_does_not_take_a_recovered_id() -> None:
    cfg = cfg_of(_two_vmis())
    assert allocate_vmi_ids(cfg.switches[0], {"vm2": 1}) == {"vm1": 2, "vm2": 1}


def test_vmi_ids_from_port_entries_skips_foreign_entries() -> None:
    good = dp.vmi_port_entry(1, 3, 10, metadata=vmi_metadata("vm1"))
    entries = [
        good,
        dp.vmi_port_entry(2, 4, 10),  # no metadata
        dp.vmi_port_entry(5, 6, 10, metadata=b"vmi:\xff\xfe"),  # not UTF-8
        dp.vmi_port_entry(7, 8, 10, metadata=vmi_metadata("vm1")),  # the same name again
        dp.fabric_port_entry(3, 10),
        TableWrite.of(dp.ROUTE_V4_TABLE, {"vrf": 1}, dp.SET_NEXT_HOP, metadata=b"vmi:x"),
    ]
    assert vmi_ids_from_port_entries(entries) == {"vm1": 3}


# ---- the diff ------------------------------------------------------------------------------------


def test_initial_diff_inserts_everything_port_table_last() -> None:
    want = state_of(base())
    diff = diff_entries(want, {})
    assert diff.counts() == {"insert": len(want), "modify": 0, "delete": 0}
    assert [w.table for w in diff.insert][-2:] == [dp.PORT_TABLE, dp.PORT_TABLE]
    ranks = [CONFIG_TABLES.index(w.table) for w in diff.insert]
    assert ranks == sorted(ranks)


def test_reload_with_the_same_configuration_is_empty() -> None:
    first = state_of(base())
    again = state_of(copy.deepcopy(base()), vmi_ids_from_port_entries(first.values()))
    diff = diff_entries(again, first)
    assert not diff and diff.counts() == {"insert": 0, "modify": 0, "delete": 0} and diff.steps() == ()


def test_add_and_remove_a_rule_touch_only_its_rows() -> None:
    rule = {"protocol": "tcp", "port": 80, "dst_prefix_aggr": {"subnet": "20.0.0.0/8", "plen": 16}}
    _, diff = changed(lambda d: d["switches"][0]["vmis"][0]["rules"].insert(0, rule))
    # one rule row, and tcp/80 into both port-match tables; nothing renumbered
    assert rows_of(diff.insert) == {"rule_v4": 1, "port_match_sport": 1, "port_match_dport": 1}
    assert not diff.modify and not diff.delete

    def remove(d: dict[str, Any]) -> None:
        d["switches"][0]["vmis"][0]["rules"] = []

    _, diff = changed(remove)
    assert rows_of(diff.delete) == {"rule_v4": 1, "port_match_sport": 1, "port_match_dport": 1}
    assert not diff.insert and not diff.modify


def test_changing_a_rules_aggregation_is_one_modify() -> None:
    def change(d: dict[str, Any]) -> None:
        d["vns"][0]["rules"][0]["src_prefix_aggr"]["plen"] = 24

    _, diff = changed(change)
    assert not diff.insert and not diff.delete
    (w,) = diff.modify
    assert w.table == dp.RULE_V4_TABLE and w.params_dict["local_plen"] == 24


def test_changing_a_rules_subnet_inserts_before_it_deletes() -> None:
    def change(d: dict[str, Any]) -> None:
        d["vns"][0]["rules"][0]["src_prefix_aggr"]["subnet"] = "10.1.0.0/16"

    _, diff = changed(change)
    assert rows_of(diff.insert) == {"rule_v4": 1} and rows_of(diff.delete) == {"rule_v4": 1}
    assert [op for op, _ in diff.steps()] == ["insert", "delete"]


def test_add_and_remove_a_vmi() -> None:
    def add(d: dict[str, Any]) -> None:
        d["switches"][0]["vmis"].append({"name": "vm2", "port": 2, "vn": "blue", "mac": "02:00:00:00:00:02",
                                         "addresses": ["10.0.0.4"]})

    before, diff = changed(add)
    assert not diff.modify and not diff.delete
    assert all(w.match_dict.get("vmi_id", 2) == 2 for w in diff.insert)  # only vm2's (id 2) entries
    assert diff.insert[-1].table == dp.PORT_TABLE and diff.insert[-1].metadata == b"vmi:vm2"
    assert rows_of(diff.insert)["route_v4"] == 1

    def remove(d: dict[str, Any]) -> None:
        d["switches"][0]["vmis"] = []
        d["switches"][0]["routes"] = []

    before, diff = changed(remove)
    assert not diff.insert and not diff.modify
    assert diff.delete[0].table == dp.PORT_TABLE  # the VMI's port goes first
    left = apply(before, diff)
    assert [w.table for w in left.values()] == [dp.PORT_TABLE]  # only the fabric port stays


def test_add_a_route_and_change_a_port() -> None:
    def route(d: dict[str, Any]) -> None:
        d["switches"][0]["routes"].append({"vn": "blue", "prefix": "20.0.0.0/8", "port": 3, "mac": "02:00:00:00:00:cc"})

    _, diff = changed(route)
    assert diff.counts() == {"insert": 1, "modify": 0, "delete": 0}

    def policy(d: dict[str, Any]) -> None:
        d["switches"][0]["vmis"][0]["miss_policy"] = "drop"

    _, diff = changed(policy)
    assert diff.counts() == {"insert": 0, "modify": 1, "delete": 0}
    assert diff.modify[0].params_dict["miss_policy"] == dp.MISS_POLICY_DROP


def test_metadata_difference_is_a_modify() -> None:
    want = state_of(base())
    have = {k: (TableWrite(w.table, w.match, w.action, w.params, w.priority) if w.metadata else w)
            for k, w in want.items()}
    diff = diff_entries(want, have)
    assert diff.counts() == {"insert": 0, "modify": 1, "delete": 0}


def test_flow_entries_are_never_diffed() -> None:
    from ipaddress import IPv4Address

    key = FlowKey(10, IPv4Address("10.0.0.0"), IPv4Address("0.0.0.0"), 17, 0, 53, 28, 0)
    flow = TableWrite.of(dp.flow_table(key), dp.flow_match(key), dp.FLOW_FORWARD,
                         {"mirror": 0, "offloaded": 0, "egress_port": 0})
    want = state_of(base())
    assert not diff_entries(want, {**want, flow.entry_id: flow})
    assert not diff_entries({**want, flow.entry_id: flow}, want)


def test_fingerprints_follow_what_keys_depend_on() -> None:
    cfg = cfg_of(base())
    fp = desired_state(cfg, cfg.switches[0], {}).vmi_fingerprints
    d = base()
    d["switches"][0]["routes"].append({"vn": "blue", "prefix": "20.0.0.0/8", "port": 3, "mac": "02:00:00:00:00:cc"})
    cfg2 = cfg_of(d)
    assert desired_state(cfg2, cfg2.switches[0], {}).vmi_fingerprints == fp
    d["vns"][0]["rules"][0]["src_prefix_aggr"]["plen"] = 24
    cfg3 = cfg_of(d)
    fp3 = desired_state(cfg3, cfg3.switches[0], {}).vmi_fingerprints
    assert set(fp3) == set(fp) == {1} and fp3[1] != fp[1]
    hash(fp3[1])

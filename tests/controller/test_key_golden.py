"""Every golden case of key-cases.json through the config model and the reference key function."""

from __future__ import annotations

from typing import Any

from p4fatflow.config import VMI, VN, FatFlowRule, parse_network
from p4fatflow.key import Direction, ExcludeList, FlowKey, PacketFields, compile_rules, flow_key


def _vmi_for(case: dict[str, Any]) -> VMI:
    # Each case is one VMI in one VN; the rules are the VMI's (VN-level rules merge the same way).
    vn = VN(
        name="vn",
        vrf=case["vn"]["vrf"],
        subnets=tuple(parse_network(s) for s in case["vn"]["subnets"]),
    )
    rules = tuple(
        FatFlowRule.from_dict(r, where=f"case {case['name']} rule {i}")
        for i, r in enumerate(case["rules"], 1)
    )
    return VMI(name="vmi", port=1, vn=vn, rules=rules)


def test_golden_case(key_case: dict[str, Any]) -> None:
    vmi = _vmi_for(key_case)
    pkt = PacketFields.from_dict(key_case["packet"])
    direction = Direction(key_case["packet"]["direction"])
    got = flow_key(
        pkt, direction, vmi.vrf, compile_rules(vmi.effective_rules()), ExcludeList(vmi.exclude_list())
    )
    expected = FlowKey.from_dict(key_case["key"])
    assert got == expected, f"{key_case['why']}: got {got}, expected {expected}"
    assert got.to_dict() == key_case["key"]


def test_golden_case_same_when_rules_come_from_the_vn(key_case: dict[str, Any]) -> None:
    # VN-level rules are expanded onto the VMI with no precedence: the key must not change.
    vmi = _vmi_for(key_case)
    vn = VN(name=vmi.vn.name, vrf=vmi.vn.vrf, subnets=vmi.vn.subnets, rules=vmi.rules)
    moved = VMI(name="vmi", port=1, vn=vn)
    pkt = PacketFields.from_dict(key_case["packet"])
    direction = Direction(key_case["packet"]["direction"])
    got = flow_key(
        pkt, direction, moved.vrf, compile_rules(moved.effective_rules()), ExcludeList(moved.exclude_list())
    )
    assert got == FlowKey.from_dict(key_case["key"])


def test_golden_rules_round_trip(key_case: dict[str, Any]) -> None:
    for raw in key_case["rules"]:
        rule = FatFlowRule.from_dict(raw)
        assert FatFlowRule.from_dict(rule.to_dict()) == rule


def test_golden_file_has_unique_names_and_covers_both_directions(key_cases: list[dict[str, Any]]) -> None:
    names = [c["name"] for c in key_cases]
    assert len(names) == len(set(names))
    assert {c["packet"]["direction"] for c in key_cases} == {"from_vm", "to_vm"}

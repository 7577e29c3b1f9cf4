"""The flow keys the pipeline computes, as reported in miss digests over real P4Runtime:
every golden case of key-cases.json, the worked examples of seed 004, and a property test
that the data plane and the reference key function (controller/p4fatflow/key.py) agree on
random rules and packets (seed 004, 9.2(b))."""

from __future__ import annotations

import random
from ipaddress import ip_address
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lab import Lab, frame, open_lab
from p4fatflow.config import VMI, VN, FatFlowRule, parse_network
from p4fatflow.key import Direction, ExcludeList, FlowKey, PacketFields, compile_rules, flow_key

VMI_PORT, FABRIC_PORT, VMI_ID = 1, 3, 7


async def _setup(lab: Lab, vmi: VMI, routes: list[tuple[str, Direction]]) -> None:
    await lab.vmi_port(VMI_PORT, vmi_id=VMI_ID, vrf=vmi.vn.vrf)
    await lab.fabric_port(FABRIC_PORT, vrf=vmi.vn.vrf)
    await lab.fatflow(VMI_ID, vmi)
    for dst, direction in routes:
        plen = 32 if ip_address(dst).version == 4 else 128
        if direction is Direction.FROM_VM:
            await lab.route(f"{dst}/{plen}", FABRIC_PORT, vrf=vmi.vn.vrf)
        else:
            await lab.route(f"{dst}/{plen}", VMI_PORT, vrf=vmi.vn.vrf, dst_vmi_id=VMI_ID)


def _send(lab: Lab, pkt: PacketFields, direction: Direction) -> None:
    port = VMI_PORT if direction is Direction.FROM_VM else FABRIC_PORT
    lab.send(port, frame(str(pkt.src), str(pkt.dst), pkt.protocol, pkt.sport, pkt.dport))


def _reference(vmi: VMI, pkt: PacketFields, direction: Direction) -> FlowKey:
    return flow_key(pkt, direction, vmi.vn.vrf, compile_rules(vmi.effective_rules()),
                    ExcludeList(vmi.exclude_list()))


def _vmi_for_case(case: dict[str, Any]) -> VMI:
    vn = VN(name="vn", vrf=case["vn"]["vrf"], subnets=tuple(parse_network(s) for s in case["vn"]["subnets"]))
    rules = tuple(FatFlowRule.from_dict(r, where=f"case {case['name']}") for r in case["rules"])
    return VMI(name="vmi", port=VMI_PORT, vn=vn, rules=rules)


async def test_golden_case_key_from_the_data_plane(lab: Lab, key_case: dict[str, Any]) -> None:
    vmi = _vmi_for_case(key_case)
    pkt = PacketFields.from_dict(key_case["packet"])
    direction = Direction(key_case["packet"]["direction"])
    await _setup(lab, vmi, [(str(pkt.dst), direction)])
    _send(lab, pkt, direction)
    digest = await lab.next_digest()
    expected = FlowKey.from_dict(key_case["key"])
    assert digest.key == expected, f"{key_case['why']}: pipeline said {digest.key}, golden {expected}"
    assert digest.key == _reference(vmi, pkt, direction)
    assert digest.vmi_id == VMI_ID and digest.direction is direction
    assert (digest.packet.src, digest.packet.dst) == (pkt.src, pkt.dst)


def _rule(d: dict[str, Any]) -> FatFlowRule:
    return FatFlowRule.from_dict(d)


VN_POOL = VN(name="pool", vrf=1, subnets=(parse_network("10.1.0.0/24"),))


async def test_seed_example_1_fifteen_flows_one_fat_flow(lab: Lab) -> None:
    vmi = VMI(name="vmx", port=VMI_PORT, vn=VN_POOL, rules=(_rule(
        {"protocol": "udp", "port": 53, "ignore_address": "dst",
         "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}}),))
    rng = random.Random(4)
    flows = [PacketFields(ip_address(f"10.0.0.{i}"), ip_address(f"{rng.randint(1, 99)}.28.2.1"), 17,
                          rng.randint(1024, 65535), 53) for i in range(1, 16)]
    await _setup(lab, vmi, [])
    await lab.route("0.0.0.0/0", FABRIC_PORT)
    for f in flows:
        _send(lab, f, Direction.FROM_VM)
    keys = {(await lab.next_digest()).key for _ in flows}
    assert [str(k) for k in keys] == ["vrf 1 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53"]


async def test_seed_example_2_two_fat_flows(lab: Lab) -> None:
    vmi = VMI(name="vmx", port=VMI_PORT, vn=VN_POOL, rules=(_rule(
        {"protocol": "tcp", "port": 0, "ignore_address": "none",
         "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28},
         "dst_prefix_aggr": {"subnet": "20.0.0.0/8", "plen": 28}}),))
    flows = [PacketFields(ip_address(f"10.0.0.{16 + i}"), ip_address(f"20.0.0.{1 + i}"), 6, 5000 + i, 22)
             for i in range(14)]
    flows.append(PacketFields(ip_address("10.0.0.31"), ip_address("20.0.0.17"), 6, 26492, 22))
    await _setup(lab, vmi, [])
    await lab.route("20.0.0.0/8", FABRIC_PORT)
    for f in flows:
        _send(lab, f, Direction.FROM_VM)
    keys = sorted([str((await lab.next_digest()).key) for _ in flows])
    assert sorted(set(keys)) == ["vrf 1 tcp 10.0.0.16/28:0 -> 20.0.0.0/28:0",
                                 "vrf 1 tcp 10.0.0.16/28:0 -> 20.0.0.16/28:0"]
    assert keys.count("vrf 1 tcp 10.0.0.16/28:0 -> 20.0.0.16/28:0") == 1


# ---- property: data plane == reference key function on random rules and packets ----------

POOLS = {4: ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "20.0.0.0/8", "20.5.0.0/16"],
         6: ["2001:db8::/32", "2001:db8:1::/48", "2001:db8:1:2::/64", "2001:4860::/32"]}
HOSTS = {4: ["10.1.2", "10.1.0", "10.7.7", "20.5.6", "20.9.9", "11.0.0", "169.254.0"],
         6: ["2001:db8:1:2::", "2001:db8:1::", "2001:db8:7:7::", "2001:4860:0:1::", "2001:4861::", "fe80::"]}
PROTOS = {"tcp": 6, "udp": 17, "sctp": 132}
PORTS = [0, 53, 80, 443, 8080]


@st.composite
def rules(draw: st.DrawFn) -> FatFlowRule:
    proto = draw(st.sampled_from(list(PROTOS)))
    family = draw(st.sampled_from([4, 6]))
    max_plen = 32 if family == 4 else 128
    ignore = draw(st.sampled_from(["none", "src", "dst"]))
    d: dict[str, Any] = {"protocol": proto, "port": draw(st.sampled_from(PORTS)), "ignore_address": ignore}
    if ignore != "src" and draw(st.booleans()):
        net = parse_network(draw(st.sampled_from(POOLS[family])))
        d["src_prefix_aggr"] = {"subnet": str(net), "plen": draw(st.integers(net.prefixlen, max_plen))}
    if ignore != "dst" and draw(st.booleans()):
        net = parse_network(draw(st.sampled_from(POOLS[family])))
        d["dst_prefix_aggr"] = {"subnet": str(net), "plen": draw(st.integers(net.prefixlen, max_plen))}
    return FatFlowRule.from_dict(d)


@st.composite
def packets(draw: st.DrawFn) -> tuple[PacketFields, Direction]:
    family = draw(st.sampled_from([4, 6]))

    def addr() -> str:
        first = draw(st.sampled_from(HOSTS[family]))
        last = draw(st.integers(1, 254))
        return f"{first}.{last}" if family == 4 else f"{first}{last:x}"

    local, remote = addr(), addr()
    proto = draw(st.sampled_from(list(PROTOS.values())))
    lport = draw(st.sampled_from([*PORTS[1:], 1234, 40000]))
    rport = draw(st.sampled_from([*PORTS[1:], 1234, 40000]))
    direction = draw(st.sampled_from(list(Direction)))
    if direction is Direction.FROM_VM:
        return PacketFields(ip_address(local), ip_address(remote), proto, lport, rport), direction
    return PacketFields(ip_address(remote), ip_address(local), proto, rport, lport), direction


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(rule_set=st.lists(rules(), min_size=1, max_size=6),
       traffic=st.lists(packets(), min_size=1, max_size=8, unique_by=lambda p: (p[0], p[1])))
async def test_data_plane_and_reference_key_function_agree(target: Any, build: Any, rule_set: list[FatFlowRule],
                                                           traffic: list[tuple[PacketFields, Direction]]) -> None:
    vmi = VMI(name="vmr", port=VMI_PORT, vn=VN(name="vn", vrf=1, subnets=(parse_network("10.1.0.0/24"),
                                                  parse_network("2001:db8:1::/64"))),
              rules=tuple(rule_set))

    async def scenario() -> None:
        async with open_lab(target, build.p4info, build.device_config) as lab:
            await _setup(lab, vmi, [(str(p.dst), d) for p, d in traffic if d is Direction.TO_VM])
            await lab.route("0.0.0.0/0", FABRIC_PORT)
            await lab.route("::/0", FABRIC_PORT)
            for pkt, direction in traffic:
                _send(lab, pkt, direction)
                digest = await lab.next_digest()
                assert digest.key == _reference(vmi, pkt, direction), (
                    f"{direction} {pkt} with rules {[r.to_dict() for r in rule_set]}")

    await scenario()

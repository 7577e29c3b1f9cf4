"""fatflowd learns flows from real packets through the target, as fat flows (seed 004 section 9).

Each test writes a real configuration, runs fatflowd against $FATFLOW_TARGET, sends packets
through the switch's ports, and checks what the switch then holds (read back over P4Runtime)
against the reference key function: every packet's key installed once, fat flows collapsed as
the seed says, and a second round of the same packets hitting those entries (direct counters).
"""

from __future__ import annotations

from collections import Counter
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from ffd import config_dict, eventually, frame, running_fatflowd, send_paced, switch_flows, write_config
from p4fatflow.key import Direction, ExcludeList, FlowKey, PacketFields, compile_rules, flow_key
from p4fatflow.settings import FatflowConfig
from targets import SwitchProcess

from softswitch.launch import PipelineBuild

VM1, FABRIC = 1, 3
VM1_V4, VM1_V6 = "10.0.0.3", "2001:db8::3"


def expected_key(cfg: FatflowConfig, direction: Direction, src: str, dst: str, proto: int, sport: int,
                 dport: int) -> FlowKey:
    vmi = cfg.switch("sw1").vmis[0].vmi
    pkt = PacketFields(ip_address(src), ip_address(dst), proto, sport, dport)
    return flow_key(pkt, direction, vmi.vrf, compile_rules(vmi.effective_rules()), ExcludeList(vmi.exclude_list()))


async def learn(tmp_path: Path, switch: SwitchProcess, build: PipelineBuild, rules: list[dict[str, Any]],
                packets: list[tuple[Direction, str, str, int, int, int]]) -> tuple[dict[FlowKey, int], dict[FlowKey, Any]]:
    """Send ``packets`` twice through fatflowd + the target; returns (packets per expected key,
    the switch's flows after round 2)."""
    cfg = write_config(tmp_path / "fatflowd.yaml", config_dict([("sw1", switch, 10)], build, rules=rules))
    frames: list[tuple[int, int, bytes]] = []
    per_key: Counter[FlowKey] = Counter()
    for direction, src, dst, proto, sport, dport in packets:
        per_key[expected_key(cfg, direction, src, dst, proto, sport, dport)] += 1
        into, out = (VM1, FABRIC) if direction is Direction.FROM_VM else (FABRIC, VM1)
        frames.append((into, out, frame(src, dst, proto, sport, dport)))
    async with running_fatflowd(tmp_path / "fatflowd.yaml") as daemon:
        node = daemon.nodes["sw1"]
        for into, out, f in frames:  # round 1: misses, digests, learning (forward miss policy)
            assert await send_paced(switch, into, [f], out) == 1
        await eventually(lambda: node.flows.stats.setups >= len(per_key), what="every flow installed")
        await node.flows.drain()
        before = await switch_flows(node)
        for into, out, f in frames:  # round 2: every packet hits its installed (fat) flow
            assert await send_paced(switch, into, [f], out) == 1
        after = await switch_flows(node)
        assert node.flows.stats.insert_errors == 0
    assert set(before) == set(per_key), "installed keys differ from the reference key function"
    hits = {k: after[k][0] - before[k][0] for k in per_key}
    assert hits == dict(per_key), "round 2: a packet missed its fat flow"
    return dict(per_key), after


def _v6(prefix: str, host: int) -> str:
    return str(ip_address(prefix) + host)


@pytest.mark.parametrize("family", [4, 6])
async def test_9_1c_ignore_src_with_dst_prefix_aggregation_both_directions(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild, family: int) -> None:
    remote_net = "20.0.0.0/8" if family == 4 else "2001:db8:20::/48"
    plen = 28 if family == 4 else 124
    rules = [{"protocol": "tcp", "port": 80, "ignore_address": "src",
              "dst_prefix_aggr": {"subnet": remote_net, "plen": plen}}]
    vm = VM1_V4 if family == 4 else VM1_V6
    base = "20.0.0.0" if family == 4 else "2001:db8:20::"
    packets = []
    for h in range(1, 16):  # 15 remote hosts of one /28 (/124): one fat flow per direction
        remote = _v6(base, h)
        packets.append((Direction.FROM_VM, vm, remote, 6, 40000 + h, 80))
        packets.append((Direction.TO_VM, remote, vm, 6, 80, 40000 + h))
    per_key, _ = await learn(tmp_path, switch, ff_build, rules, packets)
    assert len(per_key) == 2 and all(n == 15 for n in per_key.values())
    for k in per_key:  # the VM's side is ignored, the remote side aggregated
        local_plen, remote_plen = (k.src_plen, k.dst_plen) if k.dport == 80 else (k.dst_plen, k.src_plen)
        assert (local_plen, remote_plen) == (0, plen)


@pytest.mark.parametrize("family", [4, 6])
async def test_9_1d_ignore_dst_with_src_prefix_aggregation_both_directions(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild, family: int) -> None:
    # Seed 004's first worked example: 10/8 -> /28, UDP 53, resolver ignored. To-VM traffic enters
    # from the fabric towards the VMI's own addresses, so its local side is the VM's address.
    if family == 4:
        rules = [{"protocol": "udp", "port": 53, "ignore_address": "dst",
                  "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}}]
        srcs = [f"10.0.0.{h}" for h in range(3, 16)]  # 10.0.0.3..15: one /28
        resolver = "8.8.8.8"
    else:
        rules = [{"protocol": "udp", "port": 53, "ignore_address": "dst",
                  "src_prefix_aggr": {"subnet": "2001:db8::/32", "plen": 124}}]
        srcs = [_v6("2001:db8::", h) for h in range(3, 16)]
        resolver = "2001:4860::8888"
    packets = [(Direction.FROM_VM, s, resolver, 17, 2000 + i, 53) for i, s in enumerate(srcs)]
    packets += [(Direction.TO_VM, resolver, VM1_V4 if family == 4 else VM1_V6, 17, 53, 3000 + i) for i in range(5)]
    per_key, _ = await learn(tmp_path, switch, ff_build, rules, packets)
    assert sorted(per_key.values()) == [5, len(srcs)]
    fat = max(per_key, key=lambda k: per_key[k])
    assert (fat.src_plen, fat.dst_plen, fat.sport, fat.dport) == (28 if family == 4 else 124, 0, 0, 53)
    assert int(fat.dst) == 0


async def test_9_1e_both_prefix_aggregations_seed_example_2(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    # Seed 004's second worked example: 10.0.0.16..31 -> 20.0.0.1..15 collapse to one fat flow,
    # 10.0.0.31 -> 20.0.0.17 is the second. (The VMI owns the sources: from-VM.)
    rules = [{"protocol": "tcp", "port": 0, "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28},
              "dst_prefix_aggr": {"subnet": "20.0.0.0/8", "plen": 28}}]
    packets = [(Direction.FROM_VM, f"10.0.0.{16 + i}", f"20.0.0.{1 + i % 15}", 6, 30000 + i, 22) for i in range(16)]
    packets.append((Direction.FROM_VM, "10.0.0.31", "20.0.0.17", 6, 31000, 22))
    per_key, _ = await learn(tmp_path, switch, ff_build, rules, packets)
    assert sorted(str(k) for k in per_key) == [
        "vrf 10 tcp 10.0.0.16/28:0 -> 20.0.0.0/28:0", "vrf 10 tcp 10.0.0.16/28:0 -> 20.0.0.16/28:0"]
    assert sorted(per_key.values()) == [1, 16]


async def test_9_1e_both_prefix_aggregations_ipv6_to_vm(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    rules = [{"protocol": "tcp", "port": 443, "src_prefix_aggr": {"subnet": "2001:db8::/32", "plen": 64},
              "dst_prefix_aggr": {"subnet": "2001:db8:99::/48", "plen": 120}}]
    packets = [(Direction.TO_VM, _v6("2001:db8:99::", h), VM1_V6, 6, 443, 50000 + h) for h in range(1, 12)]
    per_key, _ = await learn(tmp_path, switch, ff_build, rules, packets)
    assert list(per_key.values()) == [11]
    (k,) = per_key
    assert (str(k.src), k.src_plen, str(k.dst), k.dst_plen, k.sport, k.dport) == (
        "2001:db8:99::", 120, "2001:db8::", 64, 443, 0)


async def test_9_1g_exclude_list_gives_normal_flows(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    # DNS to the VN's service address (10.0.0.2) and gateway (.1), and to 169.254/16, are excluded:
    # normal 5-tuple flows although a fat-flow rule matches; the public resolver is aggregated.
    rules = [{"protocol": "udp", "port": 53, "ignore_address": "dst",
              "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 24}}]
    packets = [(Direction.FROM_VM, f"10.0.0.{h}", dst, 17, 5000 + h, 53)
               for h in range(3, 9) for dst in ("10.0.0.2", "10.0.0.1", "169.254.169.254", "8.8.8.8")]
    per_key, _ = await learn(tmp_path, switch, ff_build, rules, packets)
    normal = [k for k in per_key if k.is_normal]
    assert len(normal) == 18 and all(per_key[k] == 1 for k in normal)
    fat = [k for k in per_key if not k.is_normal]
    assert len(fat) == 1 and per_key[fat[0]] == 6 and fat[0].src_plen == 24


async def test_9_3a_several_fat_flow_rules_on_one_interface(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    # Several records on one VMI; traffic for each must pick the right one (spec 3.3 precedence).
    rules = [
        {"protocol": "udp", "port": 53, "ignore_address": "dst"},  # port-only: wins over prefix rules
        {"protocol": "udp", "port": 53, "ignore_address": "none",
         "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 16}},
        {"protocol": "tcp", "port": 443, "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 24}},
        {"protocol": "tcp", "port": 443, "src_prefix_aggr": {"subnet": "10.0.0.0/16", "plen": 28}},  # longer subnet
        {"protocol": "tcp", "port": 0, "dst_prefix_aggr": {"subnet": "30.0.0.0/8", "plen": 8}},
    ]
    packets = [(Direction.FROM_VM, f"10.0.0.{h}", "8.8.8.8", 17, 6000 + h, 53) for h in range(3, 7)]
    packets += [(Direction.FROM_VM, f"10.0.0.{h}", "203.0.113.5", 6, 7000 + h, 443) for h in range(3, 7)]
    packets += [(Direction.FROM_VM, f"10.0.0.{h}", f"30.1.2.{h}", 6, 8000 + h, 8080) for h in range(3, 7)]
    per_key, _ = await learn(tmp_path, switch, ff_build, rules, packets)
    shapes = sorted((k.protocol, k.src_plen, k.dst_plen, k.sport, k.dport) for k in per_key)
    # dns: src whole, dst ignored; https: the 10.0/16 rule's /28; tcp any port: 4 flows, dst /8
    assert shapes == sorted([(17, 32, 0, 0, 53)] * 4 + [(6, 28, 32, 0, 443)] + [(6, 32, 8, 0, 0)] * 4)

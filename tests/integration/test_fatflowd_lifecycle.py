"""The flow lifecycle of seed 000 through fatflowd and a real target: lifetimes and expiry records,
lifetime 0, recycling at capacity, the hold miss policy, mirroring and offload, and a configuration
reload applied as a diff (seed 004 section 9.3(b))."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from ffd import (
    Collector,
    config_dict,
    eventually,
    frame,
    running_fatflowd,
    send_paced,
    switch_flows,
    write_config,
)
from finsy.proto import p4r
from p4fatflow.records import Reason
from p4fatflow.settings import load_config
from targets import SwitchProcess

from softswitch.launch import PipelineBuild

VM1, VM2, FABRIC, ANALYZER = 1, 2, 3, 4


async def test_lifetime_expiry_deletes_the_entry_and_emits_a_record_with_counters(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    write_config(tmp_path / "ff.yaml", config_dict([("sw1", switch, 10)], ff_build, rules=[],
                                                   flowtable={"lifetime": {"default": 60, "udp": 1}}))
    async with running_fatflowd(tmp_path / "ff.yaml") as daemon:
        node, records = daemon.nodes["sw1"], Collector(daemon)
        udp, tcp = frame("10.0.0.3", "8.8.8.8", 17, 1111, 53), frame("10.0.0.3", "9.9.9.9", 6, 2222, 443)
        assert await send_paced(switch, VM1, [udp, tcp], FABRIC) == 2
        await eventually(lambda: node.flows.stats.setups == 2, what="both flows installed")
        assert await send_paced(switch, VM1, [udp, udp], FABRIC) == 2  # 2 hits on the installed entry
        rec = (await eventually(lambda: records.by_reason("idle"), 15, "the UDP flow's expiry record"))[0]
        assert (str(rec.key), rec.packets, rec.reason) == ("vrf 10 udp 10.0.0.3/32:1111 -> 8.8.8.8/32:53", 2,
                                                            Reason.IDLE)
        assert rec.bytes == 2 * len(udp) and rec.context is not None and rec.context.lifetime == 1
        assert rec.first_seen_ns <= rec.last_seen_ns <= rec.end_ns
        flows = await switch_flows(node)
        assert [str(k) for k in flows] == ["vrf 10 tcp 10.0.0.3/32:2222 -> 9.9.9.9/32:443"]  # TCP lives 60 s
        assert len(node.flows.index) == 1 and node.flows.stats.expiries == 1


async def test_lifetime_zero_expires_after_each_packet(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    # Seed 000's benchmark mode: no entry is ever installed; every packet is a new flow and its
    # record (the packet is still forwarded by the port's miss policy).
    write_config(tmp_path / "ff.yaml", config_dict([("sw1", switch, 10)], ff_build, rules=[],
                                                   flowtable={"lifetime": {"default": 60, "udp": 0}}))
    async with running_fatflowd(tmp_path / "ff.yaml") as daemon:
        node, records = daemon.nodes["sw1"], Collector(daemon)
        udp = frame("10.0.0.3", "8.8.8.8", 17, 1111, 53)
        for n in range(1, 4):
            assert await send_paced(switch, VM1, [udp], FABRIC) == 1
            await eventually(lambda n=n: len(records.by_reason("lifetime0")) == n, what=f"record {n}")
        assert node.flows.stats.setups == 0 and len(node.flows.index) == 0
        assert await switch_flows(node) == {}


async def test_recycle_at_capacity_keeps_max_flows_and_evicts_the_oldest(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    write_config(tmp_path / "ff.yaml", config_dict([("sw1", switch, 10)], ff_build, rules=[],
                                                   flowtable={"max_flows": 10}))
    async with running_fatflowd(tmp_path / "ff.yaml") as daemon:
        node, records = daemon.nodes["sw1"], Collector(daemon)
        frames = [frame("10.0.0.3", f"8.8.{i}.8", 17, 1000 + i, 53) for i in range(25)]
        for f in frames:
            assert await send_paced(switch, VM1, [f], FABRIC) == 1
            await node.flows.drain()
            assert len(await switch_flows(node)) <= 10
        await eventually(lambda: node.flows.stats.recycles == 15, what="15 recycles")
        flows = await switch_flows(node)
        assert sorted(str(k.dst) for k in flows) == sorted(f"8.8.{i}.8" for i in range(15, 25))
        recycled = records.by_reason("recycled")
        assert sorted(str(r.key.dst) for r in recycled) == sorted(f"8.8.{i}.8" for i in range(15))
        assert all(r.packets == 0 for r in recycled)  # the first packet was a miss, not a hit
        assert node.flows.stats.setups == 25


async def test_hold_queues_three_packets_per_flow_and_releases_them_after_the_insert(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    # The digest is held back by the switch for up to 300 ms (max_timeout), so the five punted
    # packets all reach the controller before the flow is installed: 3 are queued, 2 dropped.
    write_config(tmp_path / "ff.yaml", config_dict(
        [("sw1", switch, 10)], ff_build, rules=[], vm2={"miss_policy": "hold"},
        flowtable={"digest": {"max_list_size": 64, "max_timeout_ms": 300, "ack_timeout_ms": 1000}}))
    async with running_fatflowd(tmp_path / "ff.yaml") as daemon:
        node = daemon.nodes["sw1"]
        pkts = [frame("10.0.0.4", "8.8.8.8", 6, 4000, 443, payload=bytes([i]) * 8, src_mac="02:00:00:00:01:02")
                for i in range(5)]
        for p in pkts:
            switch.peers[VM2].send(p)
        out = []
        while (got := await switch.peers[FABRIC].recv(3.0)) is not None:
            out.append(got)
        hold = node.flows.hold
        assert (hold.queued, hold.dropped, hold.released) == (3, 2, 3)
        assert len(out) == 3 and [o[-8:] for o in out] == [bytes([i]) * 8 for i in range(3)]  # in order
        # From now on the flow is installed: packets are forwarded by the switch, not punted.
        assert await send_paced(switch, VM2, [pkts[0]], FABRIC) == 1
        assert hold.released == 3


async def test_mirroring_until_offloaded(tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    # Seed 000's port-mirroring test: new flows on vm1 are copied to the analyzer, and the flow's
    # packets keep being copied until an application marks it offloaded.
    write_config(tmp_path / "ff.yaml", config_dict([("sw1", switch, 10)], ff_build, rules=[],
                                                   flowtable={"analyzer_port": ANALYZER},
                                                   vm1={"mirror_new_flows": True}))
    async with running_fatflowd(tmp_path / "ff.yaml") as daemon:
        node = daemon.nodes["sw1"]
        f = frame("10.0.0.3", "8.8.8.8", 6, 5555, 443)
        assert await send_paced(switch, VM1, [f], FABRIC) == 1
        assert await switch.peers[ANALYZER].recv(2.0) is not None  # the new flow's first packet
        await eventually(lambda: node.flows.stats.setups == 1, what="flow installed")
        assert await send_paced(switch, VM1, [f], FABRIC) == 1
        assert await switch.peers[ANALYZER].recv(2.0) is not None  # installed, not offloaded: mirrored
        (key,) = list(node.flows.index)
        ctx = await node.flows.update(key, offloaded=True, info=b"tls")
        assert ctx is not None and ctx.offloaded and ctx.mirror
        assert await send_paced(switch, VM1, [f], FABRIC) == 1
        assert await switch.peers[ANALYZER].recv(0.5) is None  # offloaded: no more copies
        got = await node.flows.context_of(key)
        assert got is not None and got[0] is not None and got[0].info == b"tls" and got[1] == 2


async def _config_counts(node: object) -> Counter[str]:
    counts: Counter[str] = Counter()
    ids = {v: k for k, v in node.profile.config_table_ids.items()}  # type: ignore[attr-defined]
    entities = [p4r.Entity(table_entry=p4r.TableEntry(table_id=t)) for t in ids]
    async for e in node.session.read(entities):  # type: ignore[attr-defined]
        counts[ids[e.table_entry.table_id].rsplit(".", 1)[1]] += 1
    return counts


async def test_9_3b_reload_writes_only_the_difference_and_leaves_nothing_behind(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    dns = {"protocol": "udp", "port": 53, "ignore_address": "dst",
           "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}}
    https = {"protocol": "tcp", "port": 443, "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 24}}
    ssh = {"protocol": "tcp", "port": 22, "ignore_address": "src"}
    a = config_dict([("sw1", switch, 10)], ff_build, rules=[dns, https])
    b = config_dict([("sw1", switch, 10)], ff_build, rules=[dns, ssh], vm2={"miss_policy": "drop"})
    write_config(tmp_path / "a.yaml", a)
    write_config(tmp_path / "b.yaml", b)
    async with running_fatflowd(tmp_path / "a.yaml") as daemon:
        node = daemon.nodes["sw1"]
        counts_a = await _config_counts(node)
        vm1_flow = frame("10.0.0.3", "8.8.8.8", 17, 1000, 53)
        vm2_flow = frame("10.0.0.4", "9.9.9.9", 17, 1000, 53, src_mac="02:00:00:00:01:02")
        assert await send_paced(switch, VM1, [vm1_flow], FABRIC) == 1
        assert await send_paced(switch, VM2, [vm2_flow], FABRIC) == 1
        await eventually(lambda: node.flows.stats.setups == 2, what="two flows")

        (report,) = await daemon.apply(load_config(tmp_path / "b.yaml"))
        # https -> ssh on vm1: https's 2 port-match rows and 1 rule row (IPv4 prefix rule) go, ssh's
        # 2 port-match rows and 2 rule rows (port-only: both families) come; vm2's port entry changes.
        assert (report.inserted, report.modified, report.deleted, report.failed) == (4, 1, 3, 0)
        assert report.flows_flushed == 1  # vm1's rules changed; vm2's flow keeps its key
        assert [str(k.src) for k in await switch_flows(node)] == ["10.0.0.4"]
        (again,) = await daemon.apply(load_config(tmp_path / "b.yaml"))
        assert (again.inserted, again.modified, again.deleted, again.flows_flushed) == (0, 0, 0, 0)

        (back,) = await daemon.apply(load_config(tmp_path / "a.yaml"))
        assert (back.inserted, back.modified, back.deleted) == (3, 1, 4)
        assert await _config_counts(node) == counts_a  # A -> B -> A: the same entries, nothing left over

        def sizes() -> tuple[int, ...]:  # what the controller keeps per configuration
            f = node.flows
            return (len(node.vmi_ids), len(f.port_defaults), len(f.fingerprints), len(f.resolver.ports),
                    len(daemon.nodes))

        before = sizes()
        for _ in range(5):  # seed 004 9.3(b): add/update/delete over and over, nothing grows
            await daemon.apply(load_config(tmp_path / "b.yaml"))
            await daemon.apply(load_config(tmp_path / "a.yaml"))
            assert await _config_counts(node) == counts_a and sizes() == before
        await asyncio.sleep(0)

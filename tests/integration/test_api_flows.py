"""The flow calls of the fatflowd API against fatflowd + a real target ($FATFLOW_TARGET): UpdateFlow
(seed 000's flowtable_update: addressed by any packet of the flow, unset fields unchanged, pending and
pre-installed flows), UpdateFlows, GetFlow, DeleteFlow, ListFlows, WatchFlows, and every kind of bad
request. What the switch holds is read back over P4Runtime (ffd.switch_flows), not taken from the API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from apitest import api_daemon
from ffd import eventually, frame, send_paced, switch_flows
from p4fatflow.api.client import (
    AsyncFatflowClient,
    FatflowError,
    InvalidArgument,
    NotFound,
    to_dict,
    update_request,
)
from p4fatflow.api.pb import pb
from p4fatflow.key import FlowKey
from targets import SwitchProcess

from softswitch.launch import PipelineBuild

VM1, VM2, FABRIC = 1, 2, 3
DNS = ("10.0.0.3", "8.8.8.8", 17, 1111, 53)  # vm1's DNS rule: key vrf 10 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53
DNS_KEY = "vrf 10 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53"


async def learn(switch: SwitchProcess, daemon: object, *frames: bytes, port: int = VM1, out: int = FABRIC) -> None:
    node = daemon.nodes["sw1"]  # type: ignore[attr-defined]
    before = node.flows.stats.setups
    assert await send_paced(switch, port, list(frames), out) == len(frames)
    await eventually(lambda: node.flows.stats.setups >= before + len(frames), what="flows learned")


async def test_update_by_any_packet_of_a_fat_flow_changes_only_the_given_fields(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address), AsyncFatflowClient(address) as ff:
        node = daemon.nodes["sw1"]
        await learn(switch, daemon, frame(*DNS))
        # another packet of the same fat flow (other destination, other source port) addresses it
        r = await ff.update_flow(packet=("10.0.0.3", "1.1.1.1", 17, 2222, 53), vmi="vm1", lifetime=30,
                                 offloaded=True, info=b"app-7")
        assert r.status == pb.UpdateFlowResult.APPLIED and r.flow.text == DNS_KEY
        flows = {str(k): v for k, v in (await switch_flows(node)).items()}
        ctx = flows[DNS_KEY][2]
        assert (ctx.lifetime, ctx.offloaded, ctx.mirror, ctx.verdict_drop, ctx.info) == (30, True, False, False,
                                                                                         b"app-7")
        # only the verdict: everything else stays
        r = await ff.update_flow(packet=DNS, vrf=10, verdict="drop")
        ctx = {str(k): v for k, v in (await switch_flows(node)).items()}[DNS_KEY][2]
        assert (ctx.lifetime, ctx.offloaded, ctx.verdict_drop, ctx.info) == (30, True, True, b"app-7")
        # the switch now drops the flow's packets (the verdict is in the entry's action)
        assert await send_paced(switch, VM1, [frame(*DNS)], FABRIC, timeout=0.5) == 0
        got = await ff.get_flow(packet=DNS, vmi="vm1")
        assert got.packets == 1 and got.context.verdict == pb.VERDICT_DROP and got.context.vmi == "vm1"
        assert got.context.direction == "from_vm" and got.fat


async def test_update_addressed_to_vm_through_the_vrf_and_egress_override(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build, rules=[]) as (daemon, address), \
            AsyncFatflowClient(address) as ff:
        # a to-VM flow from the fabric to vm2 (10.0.0.4): with only the VRF, dst names the VMI
        await learn(switch, daemon, frame("8.8.4.4", "10.0.0.4", 6, 443, 40000), port=FABRIC, out=VM2)
        r = await ff.update_flow(packet=("8.8.4.4", "10.0.0.4", 6, 443, 40000), vrf=10, egress_port=VM1)
        assert r.flow.text == "vrf 10 tcp 8.8.4.4/32:443 -> 10.0.0.4/32:40000"
        assert r.flow.context.direction == "to_vm" and r.flow.context.vmi == "vm2"
        assert r.flow.context.egress_port == VM1
        # the packet now leaves on port 1 (the egress override), not on vm2's port
        switch.peers[FABRIC].send(frame("8.8.4.4", "10.0.0.4", 6, 443, 40000))
        assert await switch.peers[VM1].recv(2.0) is not None


async def test_update_before_learning_is_kept_and_applied_when_the_flow_is_learned(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address), AsyncFatflowClient(address) as ff:
        node = daemon.nodes["sw1"]
        r = await ff.update_flow(packet=DNS, vmi="vm1", lifetime=45, offloaded=True)
        assert r.status == pb.UpdateFlowResult.PENDING and r.flow.text == DNS_KEY
        assert (await ff.get_stats()).switches[0].pending_updates == 1
        with pytest.raises(NotFound, match="waits for it to be learned"):
            await ff.get_flow(packet=DNS, vmi="vm1")
        await learn(switch, daemon, frame(*DNS))

        async def applied() -> bool:
            ctx = {str(k): v for k, v in (await switch_flows(node)).items()}[DNS_KEY][2]
            return bool(ctx.lifetime == 45 and ctx.offloaded)

        for _ in range(100):
            if await applied():
                break
            await asyncio.sleep(0.02)
        assert await applied()
        assert daemon.api.hub.pending_applied == 1 and (await ff.get_stats()).switches[0].pending_updates == 0


async def test_pending_update_expires_after_its_time(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address), AsyncFatflowClient(address) as ff:
        r = await ff.update_flow(packet=DNS, vmi="vm1", lifetime=45, pending_ms=100)
        assert r.status == pb.UpdateFlowResult.PENDING
        await asyncio.sleep(0.2)
        await learn(switch, daemon, frame(*DNS))
        await asyncio.sleep(0.2)
        got = await ff.get_flow(packet=DNS, vmi="vm1")
        assert got.context.lifetime == 60 and daemon.api.hub.pending_applied == 0


async def test_preinstall_installs_the_flow_before_its_first_packet(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address), AsyncFatflowClient(address) as ff:
        node = daemon.nodes["sw1"]
        r = await ff.update_flow(packet=DNS, vmi="vm1", lifetime=120, offloaded=True, preinstall=True)
        assert r.status == pb.UpdateFlowResult.PREINSTALLED
        flows = {str(k): v for k, v in (await switch_flows(node)).items()}
        assert flows[DNS_KEY][2].lifetime == 120 and flows[DNS_KEY][2].vmi_id == node.vmi_ids["vm1"]
        assert flows[DNS_KEY][2].fingerprint == node.flows.fingerprints[node.vmi_ids["vm1"]]
        # its first packet hits the entry: no digest, no new setup
        assert await send_paced(switch, VM1, [frame(*DNS)], FABRIC) == 1
        assert (await ff.get_flow(packet=DNS, vmi="vm1")).packets == 1
        assert node.flows.stats.digests == 0 and node.flows.stats.preinstalled == 1


async def test_bad_requests_are_refused_with_the_field_named_and_nothing_changes(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address), AsyncFatflowClient(address) as ff:
        node = daemon.nodes["sw1"]
        await learn(switch, daemon, frame(*DNS))
        before = await switch_flows(node)
        cases = [
            (dict(packet=("10.0.0.300", "8.8.8.8", 17, 1, 53), vmi="vm1"), grpc.StatusCode.INVALID_ARGUMENT,
             "packet.src: '10.0.0.300' is not an IPv4 or IPv6 address"),
            (dict(packet=("10.0.0.3", "2001:db8::9", 17, 1, 53), vmi="vm1"), grpc.StatusCode.INVALID_ARGUMENT,
             "packet.dst: 2001:db8::9 is IPv6 but src 10.0.0.3 is IPv4"),
            (dict(packet=("10.0.0.3", "8.8.8.8", 17, 70000, 53), vmi="vm1"), grpc.StatusCode.INVALID_ARGUMENT,
             "packet.sport: 70000 is out of range 0-65535"),
            (dict(packet=("10.0.0.3", "8.8.8.8", 300, 0, 0), vmi="vm1"), grpc.StatusCode.INVALID_ARGUMENT,
             "packet.protocol: 300 is out of range 0-255"),
            (dict(packet=("10.0.0.3", "8.8.8.8", 47, 5, 0), vmi="vm1"), grpc.StatusCode.INVALID_ARGUMENT,
             "packet.sport: protocol 47 has no ports"),
            (dict(packet=DNS, vmi="vm1", lifetime=0), grpc.StatusCode.OUT_OF_RANGE,
             "lifetime: 0 s is out of range 1-31536000"),
            (dict(packet=DNS, vmi="vm1", lifetime=40_000_000), grpc.StatusCode.OUT_OF_RANGE, "lifetime: 40000000"),
            (dict(packet=DNS, vmi="vm1", info=b"x" * 17), grpc.StatusCode.INVALID_ARGUMENT,
             "info: 17 bytes, at most 16"),
            (dict(packet=DNS, vmi="vm1", egress_port=9), grpc.StatusCode.INVALID_ARGUMENT,
             "egress_port: 9 is not a VMI or fabric port of switch sw1"),
            (dict(packet=DNS, vmi="vm1", mirror=True), grpc.StatusCode.FAILED_PRECONDITION,
             "mirror: switch sw1 has no analyzer_port"),
            (dict(packet=DNS, vmi="vm_1"), grpc.StatusCode.NOT_FOUND,
             "vmi: no VMI 'vm_1' on switch sw1 (did you mean 'vm1'?)"),
            (dict(packet=DNS, switch="sw2", vmi="vm1"), grpc.StatusCode.NOT_FOUND,
             "switch: no switch 'sw2' (did you mean 'sw1'?)"),
            (dict(packet=DNS, vrf=11), grpc.StatusCode.NOT_FOUND, "vrf: switch sw1 has no vrf 11 (it has 10)"),
        ]
        for kw, code, text in cases:
            with pytest.raises(FatflowError) as info:
                await ff.update_flow(**kw)
            assert info.value.code == code, (kw, info.value)
            assert text in info.value.details, (kw, info.value.details)
        # an unknown flow
        with pytest.raises(NotFound, match=r"flow vrf 10 udp 10.0.0.3/32:1111 -> 8.8.8.8/32:54 is not installed"):
            await ff.get_flow(packet=("10.0.0.3", "8.8.8.8", 17, 1111, 54), vrf=10, vmi="")
        with pytest.raises(NotFound):
            await ff.delete_flow(key={"vrf": 10, "src": "10.0.0.3", "src_plen": 32, "dst": "8.8.8.8", "dst_plen": 32,
                                      "protocol": 17, "sport": 1, "dport": 2})
        with pytest.raises(InvalidArgument, match=r"key: src 10\.0\.0\.3 has bits set beyond its prefix length 28"):
            await ff.get_flow(key={"vrf": 10, "src": "10.0.0.3", "src_plen": 28, "dst": "0.0.0.0", "dst_plen": 0,
                                   "protocol": 17, "sport": 0, "dport": 53})
        assert await switch_flows(node) == before and not daemon.api.hub.pending["sw1"]


async def test_update_flows_batch_results_in_order_with_errors_per_item(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build, rules=[]) as (daemon, address), \
            AsyncFatflowClient(address) as ff:
        node = daemon.nodes["sw1"]
        frames = [frame("10.0.0.3", f"9.9.9.{i}", 6, 1000 + i, 80) for i in range(20)]
        await learn(switch, daemon, *frames)
        reqs = [update_request(packet=("10.0.0.3", f"9.9.9.{i}", 6, 1000 + i, 80), vmi="vm1", lifetime=100 + i,
                               tag=i) for i in range(20)]
        reqs.insert(5, update_request(packet=("10.0.0.3", "9.9.9.1", 6, 1, 80), vmi="vm1", lifetime=0, tag=99))
        r = await ff.update_flows(reqs)
        assert [x.tag for x in r.results] == [*range(5), 99, *range(5, 20)]
        bad = r.results[5]
        assert bad.status == pb.UpdateFlowResult.FAILED and bad.code == grpc.StatusCode.OUT_OF_RANGE.value[0]
        assert bad.message.startswith("updates[5].lifetime")
        assert all(x.status == pb.UpdateFlowResult.APPLIED for i, x in enumerate(r.results) if i != 5)
        lifetimes = sorted(v[2].lifetime for v in (await switch_flows(node)).values())
        assert lifetimes == list(range(100, 120))


async def test_delete_flow_removes_the_entry_and_publishes_a_record(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address), AsyncFatflowClient(address) as ff:
        node = daemon.nodes["sw1"]
        await learn(switch, daemon, frame(*DNS))
        assert await send_paced(switch, VM1, [frame(*DNS)] * 2, FABRIC) == 2
        got = await ff.delete_flow(packet=DNS, vmi="vm1")
        assert got.text == DNS_KEY and got.packets == 2
        assert await switch_flows(node) == {} and node.flows.stats.deleted == 1


async def test_list_flows_filters_sorts_and_pages(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address), AsyncFatflowClient(address) as ff:
        tcp = [frame("10.0.0.3", f"9.9.9.{i}", 6, 1000 + i, 80) for i in range(6)]  # normal (dst not 20/8)
        await learn(switch, daemon, frame(*DNS), frame("2001:db8::3", "2001:4860::8888", 17, 5, 53), *tcp)
        await learn(switch, daemon, frame("10.0.0.4", "9.9.9.9", 6, 7, 22, src_mac="02:00:00:00:01:02"), port=VM2)
        # counters: the DNS fat flow gets 3 more packets, the first TCP flow 1
        assert await send_paced(switch, VM1, [frame(*DNS)] * 3 + [tcp[0]], FABRIC) == 4
        everything = await ff.list_flows()
        assert everything.total == 9 and len(everything.flows) == 9 and not everything.next_page_token
        keys = [FlowKey.from_dict(to_dict(f.key)) for f in everything.flows]
        assert keys == sorted(keys, key=FlowKey.sort_key)  # key order: vrf, family, addresses, ...
        top = await ff.list_flows(sort="packets", page_size=2)
        assert [(f.text, f.packets) for f in top.flows] == [
            (DNS_KEY, 3), ("vrf 10 tcp 10.0.0.3/32:1000 -> 9.9.9.0/32:80", 1)]
        assert top.total == 9 and top.next_page_token
        pages, token = [], ""
        while True:
            page = await ff.list_flows(page_size=4, page_token=token)
            pages.append([f.text for f in page.flows])
            token = page.next_page_token
            if not token:
                break
        assert [len(p) for p in pages] == [4, 4, 1]
        assert [t for p in pages for t in p] == [f.text for f in everything.flows]
        assert [f.text for f in (await ff.list_flows(fat_only=True)).flows] == [DNS_KEY]
        v6 = await ff.list_flows(family=6)
        assert [f.text for f in v6.flows] == ["vrf 10 udp [2001:db8::3]/128:5 -> [2001:4860::8888]/128:53"]
        assert {f.context.vmi for f in (await ff.list_flows(vmi="vm2")).flows} == {"vm2"}
        assert len((await ff.list_flows(protocol=6)).flows) == 7
        assert all(f.age_ms >= 0 and f.HasField("lifetime_left_ms") for f in everything.flows)
        with pytest.raises(NotFound, match="did you mean 'vm1'"):
            await ff.list_flows(vmi="vm-1")


async def test_watch_flows_created_updated_expired_with_counters(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build, flowtable={"lifetime": {"default": 60, "udp": 1}}) as (
            daemon, address), AsyncFatflowClient(address) as ff:
        events: list[object] = []

        async def watch() -> None:
            async for batch in ff.watch_flows():
                events.extend(batch.events)

        task = asyncio.create_task(watch())
        await eventually(lambda: daemon.api.hub.watchers, what="the watcher registered")
        await learn(switch, daemon, frame(*DNS))
        assert await send_paced(switch, VM1, [frame(*DNS)] * 2, FABRIC) == 2
        await ff.update_flow(packet=DNS, vmi="vm1", offloaded=True)
        await eventually(lambda: any(e.kind == pb.FlowEvent.EXPIRED for e in events), 15,  # type: ignore[attr-defined]
                         "the expiry event")
        task.cancel()
        kinds = [(pb.FlowEvent.Kind.Name(e.kind), e.flow.text) for e in events]  # type: ignore[attr-defined]
        assert kinds == [("CREATED", DNS_KEY), ("UPDATED", DNS_KEY), ("EXPIRED", DNS_KEY)]
        expired = events[2]
        assert expired.reason == "idle" and expired.flow.packets == 2  # type: ignore[attr-defined]
        assert expired.flow.context.offloaded  # type: ignore[attr-defined]


async def test_a_slow_watcher_skips_events_and_never_blocks_fatflowd(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build, rules=[]) as (daemon, address):
        hub = daemon.api.hub
        # a watcher with room for 5 events that nobody reads
        w = hub.watch("", None, 0, frozenset((pb.FlowEvent.CREATED, pb.FlowEvent.UPDATED, pb.FlowEvent.EXPIRED)), 5)
        frames = [frame("10.0.0.3", f"9.9.9.{i}", 6, 1000 + i, 80) for i in range(12)]
        await learn(switch, daemon, *frames)
        assert len(w.queue) == 5 and w.skipped == 7
        # through the API: a real stream with a queue of 3, read only after 12 more events
        async with AsyncFatflowClient(address) as ff:
            stream = ff.watch_flows(queue=3, created=True)
            first = asyncio.ensure_future(stream.__anext__())
            await eventually(lambda: len(hub.watchers) == 2, what="stream watcher")
            frames = [frame("10.0.0.3", f"9.9.8.{i}", 6, 1000 + i, 80) for i in range(12)]
            await learn(switch, daemon, *frames)  # not blocked by the stalled watcher
            got = [await first]
            while sum(len(b.events) for b in got) + sum(b.skipped for b in got) < 12:
                got.append(await stream.__anext__())
            # Every event is either delivered or counted as skipped (how many are skipped depends
            # on how much gRPC's stream buffers absorb; the bounded queue itself is checked above).
            assert sum(b.skipped for b in got) + sum(len(b.events) for b in got) == 12
            assert daemon.nodes["sw1"].flows.stats.setups == 24  # learning went on meanwhile
            await stream.aclose()
        hub.watchers.discard(w)


async def test_preinstall_of_many_flows_in_one_call_installs_each_before_its_first_packet(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address), AsyncFatflowClient(address) as ff:
        node = daemon.nodes["sw1"]
        packets = [("10.0.0.3", f"20.0.{i}.1", 6, 40000 + i, 8080) for i in range(40)]
        reply = await ff.update_flows([update_request(packet=p, vmi="vm1", lifetime=200, preinstall=True, tag=i)
                                       for i, p in enumerate(packets)])
        assert [r.status for r in reply.results] == [pb.UpdateFlowResult.PREINSTALLED] * 40
        assert [r.tag for r in reply.results] == list(range(40))
        texts = {r.flow.text for r in reply.results}
        flows = {str(k): v for k, v in (await switch_flows(node)).items()}
        assert set(flows) == texts and all(v[2].lifetime == 200 for v in flows.values())
        assert node.flows.stats.preinstalled == len(texts)
        # every first packet hits its entry: no digest
        assert await send_paced(switch, VM1, [frame(*p) for p in packets], FABRIC) == 40
        assert node.flows.stats.digests == 0

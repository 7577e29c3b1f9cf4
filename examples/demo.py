"""`make demo`: softswitch + the fat-flow pipeline + a fat-flow configuration + traffic.

Starts a softswitch process, pushes p4src/fatflow_v1model.p4 over P4Runtime (finsy),
configures one subscriber VMI with the fat-flow rules below, sends a traffic mix of many
subscribers of a 10/8 pool to a few servers (DNS, HTTPS, SSH, and DNS to the VN's own
service address, which the exclude list keeps out of fat flows), learns the keys from the
miss digests, installs them, sends the traffic again, and prints how many flows collapsed
into how many fat flows, with the prefix lengths and the counters the switch kept.

This is a demonstration harness, not the controller: the controller (flow lifecycle,
aging, enrichment API) comes in a later issue.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from ipaddress import ip_network
from pathlib import Path

import finsy
from finsy.p4client import P4ClientError
from p4fatflow import dataplane as dp
from p4fatflow import p4rt
from p4fatflow.config import VMI, VN, FatFlowRule
from p4fatflow.key import Direction, ExcludeList, FlowKey, PacketFields, compile_rules, flow_key

from softswitch.launch import compile_pipeline, start_softswitch

REPO = Path(__file__).resolve().parents[1]
SUBSCRIBER_PORT, UPLINK_PORT = 1, 2
VMI_ID, VRF = 1, 10
ROUTER_MAC, UPLINK_MAC = 0x0200000000AA, 0x0200000000BB

RULES = (
    # seed 004 example 1: DNS from the pool, /28 groups, resolver ignored
    {"protocol": "udp", "port": 53, "ignore_address": "dst",
     "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}},
    # HTTPS: /26 groups of subscribers towards the /24 of the servers
    {"protocol": "tcp", "port": 443, "ignore_address": "none",
     "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 26},
     "dst_prefix_aggr": {"subnet": "203.0.113.0/24", "plen": 24}},
    # seed 004 example 2: any other TCP port from the pool to 20/8, /28 on both sides
    {"protocol": "tcp", "port": 0, "ignore_address": "none",
     "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28},
     "dst_prefix_aggr": {"subnet": "20.0.0.0/8", "plen": 28}},
)


@dataclass(frozen=True)
class Flow:
    """One packet flow (a 5-tuple) of the traffic mix."""

    what: str
    pkt: PacketFields


def traffic_mix(seed: int) -> list[Flow]:
    rng = random.Random(seed)

    def pf(src: str, dst: str, proto: int, sport: int, dport: int) -> PacketFields:
        return PacketFields.from_dict({"src": src, "dst": dst, "protocol": proto, "sport": sport, "dport": dport})

    flows = []
    resolvers = ["8.8.8.8", "1.1.1.1", "9.9.9.9"]
    for host in range(1, 241):  # 240 subscribers of 10.0.1.0/24 ask a public resolver
        flows.append(Flow("dns", pf(f"10.0.1.{host}", rng.choice(resolvers), 17, rng.randint(1024, 65535), 53)))
    for host in range(1, 121):  # 120 subscribers of 10.0.2.0/24 open HTTPS to three servers
        server = f"203.0.113.{rng.choice([10, 11, 12])}"
        flows.append(Flow("https", pf(f"10.0.2.{host}", server, 6, rng.randint(1024, 65535), 443)))
    for host in range(16, 32):  # seed 004 example 2: 10.0.3.16..31 ssh to 20.0.0.1..15
        flows.append(Flow("ssh", pf(f"10.0.3.{host}", f"20.0.0.{host - 15}", 6, rng.randint(1024, 65535), 22)))
    flows.append(Flow("ssh", pf("10.0.3.31", "20.0.0.17", 6, 26492, 22)))
    for host in range(1, 11):  # DNS to the VN's service address 10.0.0.2: excluded, normal flows
        flows.append(Flow("dns-vn", pf(f"10.0.4.{host}", "10.0.0.2", 17, rng.randint(1024, 65535), 53)))
    return flows


def frame_of(pkt: PacketFields) -> bytes:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import raw

    l4 = TCP(sport=pkt.sport, dport=pkt.dport) if pkt.protocol == 6 else UDP(sport=pkt.sport, dport=pkt.dport)
    return raw(Ether(src="02:00:00:00:01:01", dst="02:00:00:00:00:aa")
               / IP(src=str(pkt.src), dst=str(pkt.dst)) / l4 / b"fat-flow demo payload")


def describe(rule: FatFlowRule) -> str:
    d = rule.to_dict()
    parts = [f"{d['protocol']}/{d['port'] or 'any'}", f"ignore {d['ignore_address']}"]
    for side in ("src", "dst"):
        aggr = d.get(f"{side}_prefix_aggr")
        if aggr:
            parts.append(f"{side} {aggr['subnet']} -> /{aggr['plen']}")
    return ", ".join(parts)


class Learner:
    """The learning loop in miniature: digest -> dedupe -> batched insert (spec 4)."""

    def __init__(self, sw: finsy.Switch) -> None:
        self.sw = sw
        self.digests = 0
        self.keys: dict[FlowKey, set[PacketFields]] = defaultdict(set)
        self.installed: set[FlowKey] = set()
        self.last_activity = time.monotonic()

    async def settle(self, quiet: float = 0.5, limit: float = 20.0) -> None:
        """Wait until no digest has arrived for ``quiet`` seconds (all learned)."""
        deadline = time.monotonic() + limit
        while time.monotonic() - self.last_activity < quiet and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    async def run(self) -> None:
        async for dl in self.sw.read_digests(dp.FLOW_DIGEST):
            self.last_activity = time.monotonic()
            await self.sw.write([dl.ack()])
            new = []
            for d in p4rt.decode_digest_list(dl):
                self.digests += 1
                self.keys[d.key].add(d.packet)
                if d.key not in self.installed:  # the controller-side half of dedupe
                    self.installed.add(d.key)
                    new.append(p4rt.flow_entry(d.key, idle_timeout_ns=60_000_000_000))
            if new:
                try:
                    await self.sw.insert(new)
                except P4ClientError as e:
                    # a race with an entry already there is not an error (spec 4)
                    if any(err.canonical_code.name != "ALREADY_EXISTS" for err in e.details.values()):
                        raise
            self.last_activity = time.monotonic()


async def read_counters(sw: finsy.Switch) -> dict[FlowKey, tuple[int, int]]:
    """Packets and bytes of every flow entry, read back from the switch."""
    out: dict[FlowKey, tuple[int, int]] = {}
    for table in (dp.FLOW_V4_TABLE, dp.FLOW_V6_TABLE):
        async for e in sw.read(finsy.P4TableEntry(table, counter_data=finsy.P4CounterData())):
            m = e.match
            assert m is not None
            key = dp.flow_key_of_match(table, dict(m))
            cd = e.counter_data
            out[key] = (cd.packet_count, cd.byte_count) if cd else (0, 0)
    return out


async def send_all(target: object, flows: list[Flow], rounds_label: str) -> int:
    peers = target.peers  # type: ignore[attr-defined]
    sink, sent, received = peers[UPLINK_PORT], 0, 0
    for f in flows:
        peers[SUBSCRIBER_PORT].send(frame_of(f.pkt))
        sent += 1
        if sent % 32 == 0:  # pace the sender a little: one core runs the switch too
            received += len(sink.drain())
            await asyncio.sleep(0.005)
    deadline = time.monotonic() + 10
    while received < sent and time.monotonic() < deadline:
        got = await sink.recv(0.5)
        if got is None:
            break
        received += 1 + len(sink.drain())
    print(f"  {rounds_label}: sent {sent} packets, {received} forwarded to the uplink")
    return received


async def demo(workdir: Path, seed: int) -> int:
    print("p4-fatflow demo: softswitch + p4src/fatflow_v1model.p4 over P4Runtime\n")
    build = compile_pipeline(workdir / "build", REPO / "p4src" / "fatflow_v1model.p4")
    print(f"compiled the pipeline: {build.device_config.name} + {build.p4info.name}")
    vn = VN(name="subscribers", vrf=VRF, subnets=(ip_network("10.0.0.0/8"),))
    vmi = VMI(name="pool", port=SUBSCRIBER_PORT, vn=vn,
              rules=tuple(FatFlowRule.from_dict(r, where=f"demo rule {i}") for i, r in enumerate(RULES, 1)))
    flows = traffic_mix(seed)

    with start_softswitch(workdir / "switch", ports=(SUBSCRIBER_PORT, UPLINK_PORT), device_id=1) as target:
        print(f"softswitch is up on {target.address} (log: {target.log_path})")
        opts = finsy.SwitchOptions(p4info=build.p4info, p4blob=build.device_config, device_id=1)
        async with finsy.Switch("demo", target.address, opts) as sw:
            print("pushed the pipeline; configuring VMI 'pool' on port 1, uplink on port 2:")
            for r in vmi.effective_rules():
                print(f"  rule {describe(r)}")
            writes = [dp.vmi_port_entry(SUBSCRIBER_PORT, VMI_ID, VRF),
                      dp.route_entry(ip_network("0.0.0.0/0"), UPLINK_PORT, vrf=VRF, src_mac=ROUTER_MAC,
                                     dst_mac=UPLINK_MAC),
                      *dp.fatflow_entries(VMI_ID, vmi.effective_rules(), vmi.exclude_list())]
            await sw.insert(p4rt.table_entries(writes))
            # batch up to 64 digests or 10 ms, suppress unacked duplicates for 1 s
            await sw.insert([p4rt.flow_digest_entry(max_list_size=64, max_timeout_ns=10_000_000,
                                                    ack_timeout_ns=1_000_000_000)])
            print(f"  {len(writes)} table entries written\n")

            learner = Learner(sw)
            task = asyncio.create_task(learner.run())
            print("traffic:")
            await send_all(target, flows, "round 1 (new flows: digests, learning)")
            await learner.settle()
            before = await read_counters(sw)
            await send_all(target, flows, "round 2 (installed fat flows: hits)")
            await asyncio.sleep(0.5)
            task.cancel()
            after = await read_counters(sw)

    return report(flows, vmi, learner, before, after)


def report(flows: list[Flow], vmi: VMI, learner: Learner, before: dict[FlowKey, tuple[int, int]],
           after: dict[FlowKey, tuple[int, int]]) -> int:
    rules = compile_rules(vmi.effective_rules())
    exclude = ExcludeList(vmi.exclude_list())
    expected = {f.pkt: flow_key(f.pkt, Direction.FROM_VM, VRF, rules, exclude) for f in flows}
    by_key: dict[FlowKey, list[Flow]] = defaultdict(list)
    for f in flows:
        by_key[expected[f.pkt]].append(f)
    learned = set(learner.keys)
    fat = [k for k in learned if len(by_key.get(k, ())) > 1 or k.src_plen < 32 or k.dst_plen < 32]
    print(f"\n{len(flows)} packet flows (5-tuples) became {len(learned)} flow-table entries "
          f"from {learner.digests} miss digests: {len(fat)} fat flows, {len(learned) - len(fat)} normal flows.\n")
    print("flows: packet flows in it; round 2: its hits in round 2; pkts/bytes: the entry's direct counter")
    print(f"{'flow key (vrf proto src/plen:port -> dst/plen:port)':<56} {'flows':>5} {'round 2':>7} "
          f"{'pkts':>5} {'bytes':>6}  traffic")

    def hits(table: dict[FlowKey, tuple[int, int]], key: FlowKey) -> int:
        return table.get(key, (0, 0))[0]

    for key in sorted(learned, key=lambda k: (-len(by_key.get(k, ())), k.sort_key())):
        kinds = Counter(f.what for f in by_key.get(key, ()))
        pkts, nbytes = after.get(key, (0, 0))
        print(f"{key!s:<56} {len(by_key.get(key, ())):>5} {hits(after, key) - hits(before, key):>7} "
              f"{pkts:>5} {nbytes:>6}  " + ", ".join(f"{n} {w}" for w, n in sorted(kinds.items())))
    mismatched = learned ^ set(expected.values())
    missed_in_round_2 = sum(1 for k in learned
                            if hits(after, k) - hits(before, k) != len(by_key.get(k, ())))
    print()
    if mismatched:
        print(f"MISMATCH: pipeline and reference key function disagree on {len(mismatched)} keys")
        return 1
    if missed_in_round_2:
        print(f"MISMATCH: {missed_in_round_2} fat flows were not hit by every packet of round 2")
        return 1
    print("every key the pipeline reported equals the controller's reference key function, and in round 2")
    print("every packet hit its installed (fat) flow: the counters above are the switch's direct counters.")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=7, help="traffic mix seed")
    ap.add_argument("--keep", metavar="DIR", help="keep the build and switch log in DIR")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("finsy").setLevel(logging.CRITICAL)  # no gNMI on softswitch: expected
    if args.keep:
        return asyncio.run(demo(Path(args.keep), args.seed))
    with tempfile.TemporaryDirectory(prefix="fatflow-demo-") as tmp:
        return asyncio.run(demo(Path(tmp), args.seed))


if __name__ == "__main__":
    sys.exit(main())

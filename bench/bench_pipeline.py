"""Packets/s through p4src/fatflow_v1model.p4 on softswitch, in-process (no gRPC, no sockets).

Goal (project requirement): >= 20,000 packets/s on one core for flow-table HITS. Three paths are
measured on one Device programmed like examples/demo.py (one VMI, default routes, the fat-flow rules
of one realistic config, written through p4fatflow.dataplane):

* hit:  every packet's (fat) flow is installed in flow_v4/flow_v6 -> no digest, forwarded;
* miss: flows never installed -> one flow_digest_t per packet, forwarded (miss policy forward);
* l3:   the same traffic as "hit" with flowtable_enabled=0 on the port (routing only).

Each path: a warm-up pass, then the best of --runs timed passes of --packets packets
(time.perf_counter). Every pass is checked (digests, transmitted, errors); a mismatch aborts.

    python bench/bench_pipeline.py [--packets N] [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402
from p4fatflow import dataplane as dp  # noqa: E402
from p4fatflow.config import VMI, VN, FatFlowRule  # noqa: E402
from p4fatflow.key import FlowKey  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Packet  # noqa: E402

from softswitch.device import Device  # noqa: E402
from softswitch.interp.tables import Exact, FieldMatch, Lpm, Table, TableEntry, Ternary  # noqa: E402

VMI_PORT, UPLINK_PORT = 1, 2
VMI_ID, VRF = 1, 10
ROUTER_MAC, UPLINK_MAC = 0x0200000000AA, 0x0200000000BB
# The demo's VN rules (examples/demo.yaml) plus an IPv6 DNS rule for this benchmark's traffic.
DEMO_RULES = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "demo.yaml").read_text())["vns"][0]["rules"]
RULES = (
    *DEMO_RULES,
    {"protocol": "udp", "port": 53, "ignore_address": "dst",
     "src_prefix_aggr": {"subnet": "2001:db8::/32", "plen": 56}},
)


def frame(src: str, dst: str, proto: int, sport: int, dport: int) -> bytes:
    l3: Packet = IPv6(src=src, dst=dst) if ip_address(src).version == 6 else IP(src=src, dst=dst)
    l4: Packet = TCP(sport=sport, dport=dport) if proto == 6 else UDP(sport=sport, dport=dport)
    return bytes(Ether(src="02:00:00:00:01:01", dst="02:00:00:00:00:aa") / l3 / l4 / (b"x" * 32))


def traffic(net: int, n: int = 64) -> list[bytes]:
    """4 x ``n`` flows from the VMI: IPv4 UDP DNS, IPv4 TCP 443, IPv4 TCP 22, IPv6 UDP DNS + TCP.
    ``net`` picks the subscribers' /24 (10.<net>.x.y / 2001:db8:<net>::), so two values give
    disjoint flow sets."""
    out: list[bytes] = []
    for i in range(n):
        h = i + 1
        out.append(frame(f"10.{net}.1.{h}", "8.8.8.8", 17, 10000 + i, 53))
        out.append(frame(f"10.{net}.2.{h}", f"203.0.113.{10 + i % 3}", 6, 20000 + i, 443))
        out.append(frame(f"10.{net}.3.{h}", f"20.0.0.{h}", 6, 30000 + i, 22))
        proto, dport = (17, 53) if i % 2 else (6, 80)  # v6 DNS (fat) and v6 HTTP (normal flows)
        out.append(frame(f"2001:db8:{net}:{i:x}::5", "2001:4860::8888", proto, 40000 + i, dport))
    return out


def to_entry(table: Table, actions: dict[str, Any], w: dp.TableWrite) -> TableEntry:
    """A dataplane TableWrite as a softswitch TableEntry (names -> positions, P4Runtime forms)."""
    matches: list[FieldMatch] = []
    # the match is a mapping or (as p4fatflow.dataplane now writes it) a tuple of pairs;
    # an lpm value is "addr/len" or (value, prefix length)
    given: dict[str, Any] = dict(w.match)
    args = tuple(dict(w.params)[p.name] for p in actions[w.action].params if p.direction == "")
    for name, kind in zip(table.key_names, table.key_kinds, strict=True):
        v = given.get(name)
        if v is None:
            matches.append(None)
        elif kind == "exact":
            assert isinstance(v, int)
            matches.append(Exact(v))
        elif kind == "lpm" and isinstance(v, tuple):
            matches.append(Lpm(v[0], v[1]))
        elif kind == "lpm":
            assert isinstance(v, str)
            net: IPv4Network | IPv6Network = ip_network(v)
            matches.append(Lpm(int(net.network_address), net.prefixlen))
        elif kind == "ternary":
            assert isinstance(v, tuple)
            matches.append(Ternary(v[0], v[1]))
        else:
            raise ValueError(f"{table.name}: match kind {kind} not handled")
    return TableEntry(tuple(matches), w.action, args, priority=w.priority)


@dataclass
class Bench:
    dev: Device
    tables: dict[str, Table]
    actions: dict[str, Any]
    tx: int = 0
    digests: list[tuple[int, ...]] | None = None

    def write(self, writes: Sequence[dp.TableWrite], modify: bool = False) -> None:
        for w in writes:
            t = self.tables[w.table]
            e = to_entry(t, self.actions, w)
            t.modify(e) if modify else t.insert(e)

    def run(self, frames: Sequence[bytes]) -> tuple[float, dict[str, int]]:
        """Send ``frames`` on the VMI port; (seconds, event deltas)."""
        c = self.dev.counters
        before = {k: c[k] for k in ("digest", "drop", "error")}
        self.tx = 0
        recv = self.dev.receive
        t0 = time.perf_counter()
        for f in frames:
            recv(VMI_PORT, f)
        dt = time.perf_counter() - t0
        delta = {k: c[k] - v for k, v in before.items()}
        delta["tx"] = self.tx
        return dt, delta


def setup() -> Bench:
    src = (REPO / "p4src" / "fatflow_v1model.p4").read_text()
    loaded = Device.compile(src, "p4src/fatflow_v1model.p4", [str(REPO / "p4src")])
    dev = Device(cpu_port=dp.CPU_PORT)
    dev.commit(loaded)
    b = Bench(dev, loaded.compiled.tables, loaded.compiled.actions)

    def on_tx(port: int, _frame: bytes) -> None:
        if port != UPLINK_PORT:
            raise AssertionError(f"frame left on port {port}, expected {UPLINK_PORT}")
        b.tx += 1

    def on_digest(_name: str, values: tuple[int, ...]) -> None:
        if b.digests is not None:
            b.digests.append(values)

    dev.on_transmit = on_tx
    dev.on_digest = on_digest
    vn = VN(name="subscribers", vrf=VRF, subnets=(ip_network("10.0.0.0/8"), ip_network("2001:db8::/32")))
    vmi = VMI(name="pool", port=VMI_PORT, vn=vn,
              rules=tuple(FatFlowRule.from_dict(r, where=f"rule {i}") for i, r in enumerate(RULES, 1)))
    b.write([dp.vmi_port_entry(VMI_PORT, VMI_ID, VRF),
             *(dp.route_entry(ip_network(p), UPLINK_PORT, vrf=VRF, src_mac=ROUTER_MAC, dst_mac=UPLINK_MAC)
               for p in ("0.0.0.0/0", "::/0")),
             *dp.fatflow_entries(VMI_ID, vmi.effective_rules(), vmi.exclude_list())])
    return b


def learn(b: Bench, flows: Sequence[bytes]) -> int:
    """Send every flow once, install the key of each digest (as the controller would)."""
    b.digests = []
    b.run(flows)
    keys: set[FlowKey] = {dp.decode_flow_digest(dict(zip(dp.FLOW_DIGEST_FIELDS, v, strict=True))).key
                          for v in b.digests}
    b.digests = None
    # TableWrite.of builds from dicts where p4fatflow.dataplane has it (its newer API)
    mk: Any = getattr(dp.TableWrite, "of", dp.TableWrite)
    b.write([mk(dp.flow_table(k), dict(dp.flow_match(k)), dp.FLOW_FORWARD,
                {"mirror": 0, "offloaded": 0, "egress_port": 0}) for k in keys])
    return len(keys)


def measure(b: Bench, label: str, frames: list[bytes], runs: int, digests_per_pkt: int) -> dict[str, Any]:
    b.run(frames[: max(1, len(frames) // 10)])  # warm-up
    times: list[float] = []
    for _ in range(runs):
        dt, d = b.run(frames)
        want = {"tx": len(frames), "digest": digests_per_pkt * len(frames), "drop": 0, "error": 0}
        if d != want:
            raise SystemExit(f"FAIL [{label}]: events {d}, expected {want} - the benchmark is not "
                             f"measuring what it claims")
        times.append(dt)
    best = min(times)
    return {"path": label, "packets": len(frames), "runs": runs, "best_s": best,
            "pps": len(frames) / best, "us_per_pkt": best / len(frames) * 1e6,
            "all_pps": [len(frames) / t for t in times]}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=20_000, help="packets per timed run (default 20000)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per path, best is reported (default 5)")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    args = ap.parse_args(argv)

    b = setup()
    hit_flows, miss_flows = traffic(net=0), traffic(net=100)
    installed = learn(b, hit_flows)
    mix = (hit_flows * (args.packets // len(hit_flows) + 1))[: args.packets]
    miss = (miss_flows * (args.packets // len(miss_flows) + 1))[: args.packets]
    results = [measure(b, "hit", mix, args.runs, 0)]
    hits = sum(e.packets for t in (dp.FLOW_V4_TABLE, dp.FLOW_V6_TABLE) for e in b.tables[t].entries())
    if hits != len(mix) // 10 + args.runs * len(mix):  # warm-up + timed runs, per direct counters
        raise SystemExit(f"FAIL [hit]: flow entries' direct counters total {hits} packets")
    results.append(measure(b, "miss", miss, args.runs, 1))
    b.write([dp.vmi_port_entry(VMI_PORT, VMI_ID, VRF, flowtable_enabled=False)], modify=True)
    results.append(measure(b, "l3", mix, args.runs, 0))

    machine = {"python": platform.python_version(), "implementation": platform.python_implementation(),
               "cpu": cpu_model(), "platform": platform.platform()}
    goal = 20_000
    hit_pps = results[0]["pps"]
    if args.json:
        print(json.dumps({"machine": machine, "flows": len(hit_flows), "flow_entries": installed,
                          "goal_pps": goal, "goal_met": hit_pps >= goal, "results": results}, indent=2))
        return 0
    print(f"machine: Python {machine['python']} ({machine['implementation']}), CPU {machine['cpu']}")
    print(f"traffic: {len(hit_flows)} flows (v4 UDP DNS, v4 TCP 443, v4 TCP 22, v6 UDP DNS/TCP 80) "
          f"-> {installed} flow entries; {args.packets} packets/run, best of {args.runs}")
    names = {"hit": "flow-table hit", "miss": "flow-table miss (digest)", "l3": "L3 only (flowtable off)"}
    for r in results:
        print(f"{names[r['path']]:<26} {r['pps']:>9,.0f} packets/s  ({r['us_per_pkt']:.1f} us/packet)")
    verdict = "MET" if hit_pps >= goal else "NOT MET"
    print(f"RESULT: {hit_pps:,.0f} packets/s on flow-table hits; goal >= {goal:,} packets/s: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

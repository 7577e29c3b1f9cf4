"""End-to-end flow setup: new flows offered as packets to softswitch, learned by fatflowd.

    .venv/bin/python bench/bench_e2e.py [--rate 10000] [--seconds 4] [--half]

A generator process sends one packet of each new flow (unique 5-tuples, normal flows) into a
softswitch port at ``--rate`` new flows per second; the switch reports each miss in a digest,
fatflowd (in this process) decides and installs it. After the offered load stops and a settle
time, it counts the flows installed on the switch: lost = offered - installed. It also reports
the digest-to-entry latency (digest list received -> its Write answered) p50 / p99, which the
issue asks for at half the goal rate (``--half`` runs both rates, goal and half).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration"))


def generator(sock_path: str, rate: int, count: int, ready: Any, go: Any) -> None:
    """Build ``count`` new-flow frames, say ready, then send them at ``rate`` per second."""
    from lab import frame

    from softswitch.ports import UnixPortPeer

    frames = [frame(f"10.{1 + i // 65000}.{(i // 250) % 250}.{i % 250 + 1}", "8.8.8.8", 17, 1024 + i % 60000, 53)
              for i in range(count)]
    peer = UnixPortPeer(sock_path)
    peer.sock.setblocking(True)
    ready.set()
    go.wait()
    t0 = time.perf_counter()
    for i, f in enumerate(frames):
        due = t0 + i / rate
        while time.perf_counter() < due:
            pass
        peer.sock.sendto(f, sock_path)
    peer.close()


async def run(rate: int, seconds: float) -> dict[str, Any]:
    import logging

    logging.getLogger("finsy").setLevel(logging.ERROR)
    from ffd import config_dict, running_fatflowd, write_config
    from targets import pipeline_for, switch_process

    count = int(rate * seconds)
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        tmpd = Path(tmp)
        build = pipeline_for(tmpd / "build")
        with switch_process(tmpd / "sw", ports=(1, 3)) as sw:
            cfg = config_dict([("sw1", sw, 10)], build, rules=[],
                              flowtable={"max_flows": 131072, "lifetime": {"default": 300},
                                         "digest": {"max_list_size": 256, "max_timeout_ms": 2,
                                                    "ack_timeout_ms": 1000}})
            cfg["switches"][0]["vmis"] = cfg["switches"][0]["vmis"][:1]
            # Misses are dropped after their digest: the benchmark measures flow setup, and a
            # forwarded copy of every packet would only load the sink.
            cfg["switches"][0]["vmis"][0]["miss_policy"] = "drop"
            write_config(tmpd / "ff.yaml", cfg)
            async with running_fatflowd(tmpd / "ff.yaml") as daemon:
                node = daemon.nodes["sw1"]
                sock = str(sw.peers[1].path)
                ctx = mp.get_context("spawn")
                ready, go = ctx.Event(), ctx.Event()
                gen = ctx.Process(target=generator, args=(sock, rate, count, ready, go))
                gen.start()
                while not ready.is_set():  # frames are built before the clock starts
                    await asyncio.sleep(0.05)
                go.set()
                t0 = time.perf_counter()
                while gen.is_alive():
                    await asyncio.sleep(0.05)
                    sw.peers[3].drain()
                offered_s = time.perf_counter() - t0
                deadline = time.perf_counter() + 10
                while node.flows.stats.setups < count and time.perf_counter() < deadline:
                    await asyncio.sleep(0.05)
                    sw.peers[3].drain()
                done_s = time.perf_counter() - t0
                await node.flows.drain()
                installed = len(node.flows.index)
                lat = sorted(node.flows.stats.latencies)
                st = node.flows.stats
                return {
                    "offered_rate": rate, "offered": count, "offer_seconds": round(offered_s, 2),
                    "installed": installed, "lost": count - installed,
                    "install_rate": round(installed / done_s), "digests": st.digests,
                    "digest_drops": st.digest_drops, "duplicates": st.duplicates,
                    "latency_p50_ms": round(1000 * statistics.median(lat), 2) if lat else None,
                    "latency_p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 2) if lat else None,
                }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--half", action="store_true", help="also run at half the rate (latency)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = [asyncio.run(run(args.rate, args.seconds))]
    if args.half:
        results.append(asyncio.run(run(args.rate // 2, args.seconds)))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"offered {r['offered']:,} new flows at {r['offered_rate']:,}/s ({r['offer_seconds']} s): "
                  f"installed {r['installed']:,} ({r['install_rate']:,}/s), lost {r['lost']:,}; "
                  f"digest->entry latency p50 {r['latency_p50_ms']} ms, p99 {r['latency_p99_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the fatflowd API over real gRPC: a softswitch process, fatflowd as a process, this
script as the client (three processes on the machine's cores).

    .venv/bin/python bench/bench_api.py [--flows 20000] [--batch 500] [--inflight 4] [--seconds 5] [--json]

Measures (docs/benchmarks.md, "fatflowd API"):

1. pre-install: UpdateFlows(preinstall) of --flows flows (one Write per batch);
2. UpdateFlow throughput: UpdateFlows batches over the installed flows, --inflight calls at a time,
   each update changing the lifetime (a MODIFY of the entry on the switch) - goal >= 20,000 updates/s;
3. latency at half that rate: batches paced to half the measured rate, p50/p99 of a batch's round trip
   (what each update in it waits), and unary UpdateFlow p50/p99 at 200 calls/s;
4. WatchFlows: one watcher reading the "updated" events of step 2 - events/s received, events skipped
   (goal: keeps up with >= 10,000 events/s, nothing skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "controller"))
sys.path.insert(0, str(ROOT))

from p4fatflow.api.client import AsyncFatflowClient, update_request  # noqa: E402
from p4fatflow.api.pb import pb  # noqa: E402

from softswitch.launch import compile_pipeline, start_softswitch  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(target: Any, build: Any, api: str, max_flows: int) -> dict[str, Any]:
    return {
        "version": 1, "api": {"listen": api, "metrics_listen": None},
        "flowtable": {"max_flows": max_flows, "lifetime": {"default": 600}},
        "vns": [{"name": "blue", "vrf": 10, "subnets": ["10.0.0.0/8", "2001:db8::/64"]}],
        "switches": [{
            "name": "sw1", "address": target.address, "device_id": target.device_id, "election_id": 10,
            "p4info": str(build.p4info), "device_config": str(build.device_config), "cpu_port": target.cpu_port,
            "router_mac": "02:00:00:00:00:aa",
            "vmis": [{"name": "vm1", "port": 1, "vn": "blue", "mac": "02:00:00:00:01:01", "addresses": ["10.0.0.3", "2001:db8::3"]}],
            "fabric_ports": [{"port": 3, "vn": "blue"}],
            "routes": [{"vn": "blue", "prefix": "0.0.0.0/0", "port": 3, "mac": "02:00:00:00:00:bb"},
                       {"vn": "blue", "prefix": "::/0", "port": 3, "mac": "02:00:00:00:00:bb"}],
        }],
    }


V4_FLOWS = 60000  # flows past this many are IPv6 (each flow table holds 65,536)


def packet(i: int) -> tuple[str, str, int, int, int]:
    if i >= V4_FLOWS:  # --flows beyond one table (--cold): the rest in the IPv6 table
        return ("2001:db8::3", f"2001:db8:20::{i >> 16:x}:{i & 0xffff:x}", 6, 10000 + i % 50000, 443)
    return ("10.0.0.3", f"20.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", 6, 10000 + i % 50000, 443)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def run(args: argparse.Namespace, address: str) -> dict[str, Any]:
    out: dict[str, Any] = {"flows": args.flows, "batch": args.batch, "inflight": args.inflight, "brief": args.brief}
    async with AsyncFatflowClient(address, timeout=120) as ff:
        for _ in range(200):
            try:
                s = await ff.get_stats()
                if s.switches and s.switches[0].state == "primary":
                    break
            except Exception:
                pass
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)

        # 1. pre-install
        t0 = time.perf_counter()
        for i in range(0, args.flows, args.batch):
            reqs = [update_request(packet=packet(j), vmi="vm1", lifetime=600, preinstall=True)
                    for j in range(i, min(args.flows, i + args.batch))]
            r = await ff.update_flows(reqs)
            bad = [x for x in r.results if x.status != pb.UpdateFlowResult.PREINSTALLED]
            assert not bad, bad[0]
        dt = time.perf_counter() - t0
        out["preinstall_per_s"] = args.flows / dt

        # prebuilt batches (the client's own cost is not what is measured)
        batches = []
        for i in range(0, args.flows, args.batch):
            batches.append(pb.UpdateFlowsRequest(brief=args.brief, updates=[
                update_request(packet=packet(j), vmi="vm1", lifetime=300 + (j % 7)) for j in range(i, min(args.flows,
                                                                                                     i + args.batch))]))
        alt = []
        for b in batches:
            c = pb.UpdateFlowsRequest()
            c.CopyFrom(b)
            for u in c.updates:
                u.lifetime += 100
            alt.append(c)

        # 4. a watcher of the updated events during step 2
        received = 0
        skipped = 0
        first_ev: float | None = None
        last_ev = 0.0

        async def watch() -> None:
            nonlocal received, skipped, first_ev, last_ev
            async for b in ff.watch_flows(updated=True):
                if first_ev is None:
                    first_ev = time.perf_counter()
                received += len(b.events)
                skipped += b.skipped
                last_ev = time.perf_counter()

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.5)

        # 2. throughput
        done = 0
        stop = time.perf_counter() + args.seconds
        k = 0

        async def worker() -> None:
            nonlocal done, k
            while time.perf_counter() < stop:
                i = k
                k += 1
                req = (batches if (i // len(batches)) % 2 == 0 else alt)[i % len(batches)]
                r = await ff.call("UpdateFlows", req)
                done += sum(1 for x in r.results if x.status == pb.UpdateFlowResult.APPLIED)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.inflight)))
        dt = time.perf_counter() - t0
        rate = done / dt
        out["updates_per_s"] = rate
        out["updates"] = done
        await asyncio.sleep(1.0)
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher
        span = (last_ev - first_ev) if first_ev is not None else 0.0
        out["watch_events"] = received
        out["watch_skipped"] = skipped
        out["watch_events_per_s"] = received / span if span > 0 else 0.0

        # 3. latency at half the rate: batches of --batch paced to rate/2
        half = rate / 2
        interval = args.batch / half
        lat: list[float] = []
        t_next = time.perf_counter()
        end = t_next + args.seconds
        pending: set[asyncio.Task[None]] = set()
        i = 0

        async def one(req: Any) -> None:
            t = time.perf_counter()
            await ff.call("UpdateFlows", req)
            lat.append(time.perf_counter() - t)

        while t_next < end:
            now = time.perf_counter()
            if now < t_next:
                await asyncio.sleep(t_next - now)
            task = asyncio.create_task(one((batches if i % 2 else alt)[i % len(batches)]))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
            t_next += interval
        await asyncio.gather(*pending)
        out["half_rate_per_s"] = half
        out["batch_latency_p50_ms"] = pct(lat, 0.5) * 1000
        out["batch_latency_p99_ms"] = pct(lat, 0.99) * 1000

        # unary UpdateFlow latency at 200 calls/s
        ulat: list[float] = []
        for j in range(400):
            t = time.perf_counter()
            await ff.update_flow(packet=packet(j), vmi="vm1", lifetime=200 + j % 2)
            ulat.append(time.perf_counter() - t)
            await asyncio.sleep(max(0.0, 0.005 - (time.perf_counter() - t)))
        out["unary_latency_p50_ms"] = pct(ulat, 0.5) * 1000
        out["unary_latency_p99_ms"] = pct(ulat, 0.99) * 1000
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--inflight", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--brief", action="store_true", help="UpdateFlows without the flows in the results")
    ap.add_argument("--cold", action="store_true",
                    help="120,000 flows (60,000 IPv4 + 60,000 IPv6): more than the API's caches hold (65,536 "
                         "keys, addresses), so every update pays for its key and addresses as a first update does")
    args = ap.parse_args()
    if args.cold:
        args.flows = max(args.flows, 120_000)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        build = compile_pipeline(work / "build", ROOT / "p4src" / "fatflow_v1model.p4")
        target = stack.enter_context(start_softswitch(work / "sw", ports=(1, 2, 3, 4)))
        api = f"127.0.0.1:{free_port()}"
        cfg = work / "fatflowd.yaml"
        cfg.write_text(yaml.safe_dump(config(target, build, api, min(max(args.flows * 2, 1000), 131072))))
        log = (work / "fatflowd.log").open("w")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "controller"), str(ROOT)]))
        proc = subprocess.Popen([sys.executable, "-m", "p4fatflow.daemon", str(cfg), "--log-level", "warning"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            result = asyncio.run(run(args, api))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:24} {v:,.1f}" if isinstance(v, float) else f"{k:24} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

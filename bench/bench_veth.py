"""Packets/s of p4src/fatflow_v1model.p4 on softswitch through real interfaces (veth pairs).

Goal (issue 7, part 4): at least the optimised BMv2 simple_switch_grpc's 36,600 packets/s on
flow-table hits, measured with the same entries and traffic as bench_pipeline.py. BMv2 is not
installed here: that figure is the anchor, not measured by this script.

Needs root. A private network namespace ``ssveth<pid>`` holds two veth pairs::

    generator --v1b== v1a (port 1, VMI) [softswitch] (port 2, uplink) v2a ==v2b--> generator

The **switch** is a separate process in the namespace: a ``Device`` programmed by
bench_pipeline's ``setup()`` / ``learn()`` (flows installed), with softswitch's own AF_PACKET
port back-ends (``softswitch.ports.attach_ports``) on an asyncio loop, as ``softswitch -i``
runs them. The **generator**, another process, keeps at most ``--window`` frames in flight
(sent on v1b, not yet seen on v2b), so the switch is never idle and nothing is dropped, and
times ``--packets`` forwarded frames after a warm-up. Every frame must arrive on v2b: a
lost frame (or one that did not come out on the uplink) fails the run (exit 1).

    python bench/bench_veth.py [--packets N] [--runs N] [--window N] [--switch-repo DIR] [--json]

``--switch-repo`` runs the switch from another checkout (e.g. ``git worktree add /tmp/base
HEAD~N``) for a baseline measured in the same minutes. The namespace is deleted at the end,
also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
GOAL = 36_600  # optimised BMv2 simple_switch_grpc on this pipeline (not measured here)


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_netns(ns: str) -> None:
    sh("ip", "netns", "add", ns)
    for a, b in (("v1a", "v1b"), ("v2a", "v2b")):
        sh("ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b)
    # no IPv6 autoconfiguration, router solicitations or MLD: only our frames on the links
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
    for dev in ("v1a", "v1b", "v2a", "v2b"):
        sh("ip", "-n", ns, "link", "set", dev, "up")


def del_netns(ns: str) -> None:
    subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ------------------------------------------------------------------ switch process


def switch_main(repo: str, profile: str | None) -> int:
    """Program the device (flows installed), attach v1a / v2a, serve until SIGTERM; then
    print the device counters as JSON."""
    import asyncio

    sys.path.insert(0, str(Path(repo) / "bench"))
    import bench_pipeline as bp  # the switch repo's own copy (and its softswitch)

    from softswitch.ports import attach_ports

    b = bp.setup()
    flows = bp.traffic(0)
    bp.learn(b, flows)
    dev = b.dev
    dev.on_transmit = None
    dev.counters.clear()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        closers = attach_ports(dev, [f"{bp.VMI_PORT}@v1a", f"{bp.UPLINK_PORT}@v2a"], loop=loop)
        print("READY", flush=True)
        try:
            await stop.wait()
        finally:
            for c in closers:
                c.close()

    if profile:  # cProfile of the whole switch process (set-up excluded), for --profile
        import cProfile

        cProfile.runctx("asyncio.run(serve())", globals(), {"asyncio": asyncio, "serve": serve}, profile)
    else:
        asyncio.run(serve())
    print(json.dumps(dict(dev.counters)), flush=True)
    return 0


# ------------------------------------------------------------------ generator process


def open_port(ifname: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    return s


def generator_main(packets: int, runs: int, window: int) -> int:
    """Send the hit traffic on v1b with at most ``window`` frames in flight; time each run of
    ``packets`` frames seen on v2b. Prints one JSON object."""
    sys.path.insert(0, str(REPO / "bench"))
    import bench_pipeline as bp

    flows = bp.traffic(0)
    tx, rx = open_port("v1b"), open_port("v2b")
    rx.setblocking(False)
    want_len = {len(f) for f in flows}
    nflows = len(flows)

    def run(n: int) -> float:
        sent = got = 0
        t0 = time.perf_counter()
        deadline = t0 + 30 + n / 1000
        while got < n:
            while sent < n and sent - got < window:
                tx.send(flows[sent % nflows])
                sent += 1
            drained = False
            while True:
                try:
                    frame, addr = rx.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                if len(frame) not in want_len:
                    raise SystemExit(f"FAIL: unexpected {len(frame)}-byte frame on the uplink")
                got += 1
                drained = True
            if not drained:
                if time.perf_counter() > deadline:
                    raise SystemExit(f"FAIL: {n - got} of {n} frames never came out of the uplink")
                select.select([rx], [], [], 0.05)
        return time.perf_counter() - t0

    run(max(window * 4, packets // 10))  # warm-up
    times = [run(packets) for _ in range(runs)]
    pps = [packets / t for t in times]
    print(json.dumps({"packets": packets, "runs": runs, "window": window, "all_pps": pps,
                      "pps": max(pps)}), flush=True)
    return 0


# ------------------------------------------------------------------ orchestration


def measure(ns: str, switch_repo: str, packets: int, runs: int, window: int,
            profile: str | None = None) -> dict[str, Any]:
    py = sys.executable
    here = str(Path(__file__).resolve())
    env = dict(os.environ, PYTHONPATH=switch_repo)
    prof = ["--profile", str(Path(profile).resolve())] if profile else []
    sw = subprocess.Popen(["ip", "netns", "exec", ns, py, here, "--role", "switch", "--switch-repo", switch_repo,
                           *prof],
                          stdout=subprocess.PIPE, text=True, env=env, cwd=switch_repo)
    try:
        assert sw.stdout is not None
        line = sw.stdout.readline()
        if line.strip() != "READY":
            raise SystemExit(f"FAIL: the switch did not start (said {line!r})")
        gen = subprocess.run(["ip", "netns", "exec", ns, py, here, "--role", "generator",
                              "--packets", str(packets), "--runs", str(runs), "--window", str(window)],
                             stdout=subprocess.PIPE, text=True, check=False)
        if gen.returncode != 0:
            raise SystemExit(f"FAIL: generator exit {gen.returncode}: {gen.stdout.strip()}")
        result: dict[str, Any] = json.loads(gen.stdout)
    finally:
        sw.send_signal(signal.SIGTERM)
        try:
            out, _ = sw.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            sw.kill()
            out, _ = sw.communicate()
    counters = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    if counters.get("error", 0) or counters.get("drop", 0) or counters.get("digest", 0):
        raise SystemExit(f"FAIL: switch counters {counters}: not all packets were flow-table hits")
    result["switch_counters"] = counters
    return result


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=20_000, help="frames per timed run (default 20000)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs, best is reported (default 5)")
    ap.add_argument("--window", type=int, default=64, help="frames in flight (default 64)")
    ap.add_argument("--switch-repo", default=str(REPO), help="checkout the switch runs from")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--profile", help="write a cProfile of the switch process to this file")
    ap.add_argument("--role", choices=("switch", "generator"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role == "switch":
        return switch_main(args.switch_repo, args.profile)
    if args.role == "generator":
        return generator_main(args.packets, args.runs, args.window)
    if os.geteuid() != 0:
        print("bench_veth: needs root (network namespace, veth pairs, AF_PACKET)", file=sys.stderr)
        return 2
    ns = f"ssveth{os.getpid()}"
    try:
        make_netns(ns)
        r = measure(ns, str(Path(args.switch_repo).resolve()), args.packets, args.runs, args.window,
                    args.profile)
    finally:
        del_netns(ns)
    r["goal_pps"] = GOAL
    r["goal_met"] = r["pps"] >= GOAL
    r["switch_repo"] = args.switch_repo
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    passes = ", ".join(f"{p:,.0f}" for p in r["all_pps"])
    print(f"switch from {args.switch_repo}; {args.packets} frames/run, window {args.window}; passes: {passes}")
    verdict = "MET" if r["goal_met"] else "NOT MET"
    print(f"RESULT: {r['pps']:,.0f} packets/s through veth on flow-table hits; "
          f"goal >= {GOAL:,} (optimised BMv2, not measured here): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

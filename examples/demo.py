"""`make demo`: the whole system in one command, checked, and torn down at the end.

A small lab around one switch of examples/demo.yaml (network namespaces through topo/ when run as
root, softswitch Unix-socket ports otherwise), the switch (softswitch, or ``--target bmv2``:
simple_switch_grpc with p4c's build/fatflow.json), fatflowd with that configuration, the example
application (examples/classifier on the analyzer port), and a traffic mix: many subscribers of a
10/8 pool (and of 2001:db8:100::/48) to a few servers, DNS, HTTPS and SSH. It ends with flows vs
fat flows, the classifier's enrichment, an expiry and its record, a recycle at capacity, and the
metrics; it exits 1 when a key the pipeline installed differs from the reference key function's or
a flow is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from p4fatflow.api.client import AsyncFatflowClient, FatflowError
from p4fatflow.key import Direction, ExcludeList, FlowKey, PacketFields, compile_rules, flow_key
from p4fatflow.settings import load_config
from rich.console import Console
from rich.table import Table

from examples.classifier.payloads import dns_query, ssh_banner, tls_client_hello
from examples.classifier.sources import AfPacketSource
from softswitch.launch import compile_pipeline, free_port

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "examples" / "demo.yaml"
POOL_PORT, UPLINK_PORT, ANALYZER_PORT = 1, 2, 4
POOL_MAC, ROUTER_MAC = "02:00:00:00:01:01", "02:00:00:00:00:aa"
console = Console(highlight=False)


class DemoFailed(Exception):
    pass


@dataclass(frozen=True)
class Flow:
    what: str
    pkt: PacketFields
    payload: bytes

    def frame(self) -> bytes:
        from scapy.layers.inet import IP, TCP, UDP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether
        from scapy.packet import raw

        p = self.pkt
        l3 = IPv6(src=str(p.src), dst=str(p.dst)) if p.src.version == 6 else IP(src=str(p.src), dst=str(p.dst))
        l4 = TCP(sport=p.sport, dport=p.dport, flags="PA") if p.protocol == 6 else UDP(sport=p.sport, dport=p.dport)
        return raw(Ether(src=POOL_MAC, dst=ROUTER_MAC) / l3 / l4 / self.payload)


def traffic_mix(seed: int) -> list[Flow]:
    rng = random.Random(seed)

    def f(what: str, src: str, dst: str, proto: int, dport: int, payload: bytes) -> Flow:
        return Flow(what, PacketFields.from_dict({"src": src, "dst": dst, "protocol": proto,
                                                  "sport": rng.randint(1024, 65535), "dport": dport}), payload)

    flows = []
    for h in range(1, 241):  # 240 subscribers of 10.0.1.0/24 ask three public resolvers
        flows.append(f("dns", f"10.0.1.{h}", rng.choice(["8.8.8.8", "1.1.1.1", "9.9.9.9"]), 17, 53,
                       dns_query(rng.choice(["example.org", "example.com", "example.net"]))))
    for h in range(1, 121):  # 120 subscribers of 10.0.2.0/24 open HTTPS to three servers
        flows.append(f("https", f"10.0.2.{h}", f"203.0.113.{rng.choice([10, 11, 12])}", 6, 443,
                       tls_client_hello("www.example.org")))
    for h in range(16, 32):  # seed 004 example 2: 10.0.3.16..31 ssh to 20.0.0.1..15
        flows.append(f("ssh", f"10.0.3.{h}", f"20.0.0.{h - 15}", 6, 22, ssh_banner()))
    for h in range(1, 11):  # DNS to the VN's service address 10.0.0.2: excluded, so normal flows
        flows.append(f("dns-vn", f"10.0.4.{h}", "10.0.0.2", 17, 53, dns_query("svc.internal")))
    for h in range(1, 41):  # IPv6: 40 subscribers ask a resolver, 40 open HTTPS
        flows.append(f("dns6", f"2001:db8:100:1::{h:x}", "2001:4860:4860::8888", 17, 53, dns_query("example.org", 28)))
        flows.append(f("https6", f"2001:db8:100:2::{h:x}", f"2001:db8:ffff::{rng.choice([10, 11])}", 6, 443,
                       tls_client_hello("v6.example.org")))
    return flows


# ---- the lab: ports, switch, fatflowd --------------------------------------------------------------


class NsPeer:
    """A lab host's eth0 (AF_PACKET socket opened inside its namespace)."""

    def __init__(self, netns: str) -> None:
        self.src = AfPacketSource("eth0", netns)

    def send(self, frame: bytes) -> None:
        self.src.sock.send(frame)

    def drain(self) -> int:
        n = 0
        while True:
            try:
                _, addr = self.src.sock.recvfrom(65535)
            except BlockingIOError:
                return n
            n += addr[2] != 4  # not our own transmissions

    def close(self) -> None:
        self.src.close()


@dataclass
class Lab:
    mode: str  # netns | unix
    api: str
    metrics: str | None
    analyzer: str  # the classifier's --source
    peers: dict[int, Any]


def write_config(run: Path, target: str, mode: str) -> tuple[Path, dict[str, Any]]:
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["api"]["listen"] = f"127.0.0.1:{free_port()}"
    cfg["api"]["metrics_listen"] = f"127.0.0.1:{free_port()}"
    sw = cfg["switches"][0]
    sw["address"] = f"127.0.0.1:{free_port()}"
    if target == "bmv2":
        sw["p4info"], sw["device_config"] = str(REPO / "build/fatflow.p4info.txtpb"), str(REPO / "build/fatflow.json")
    else:
        build = compile_pipeline(run / "build", REPO / "p4src" / "fatflow_v1model.p4")
        sw["p4info"], sw["device_config"] = str(build.p4info), str(build.device_config)
    path = run / "fatflowd.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path, cfg


@contextlib.contextmanager
def lab(run: Path, target: str, mode: str) -> Iterator[Lab]:
    from topo import lab as topo_lab

    config, cfg = write_config(run, target, mode)
    api, metrics = cfg["api"]["listen"], cfg["api"]["metrics_listen"]
    if mode == "netns":
        prefix = "ffdemo"
        topo_lab.down(run / "lab", prefix)
        state = topo_lab.up(config, target=target, run_dir=run / "lab", prefix=prefix,
                            say=lambda s: console.print(f"  [dim]{s}[/]"))
        peers: dict[int, Any] = {}
        try:
            for h in state.hosts:
                if h["role"] in ("vm", "fabric"):
                    peers[h["port"]] = NsPeer(h["namespace"])
            yield Lab(mode, api, metrics, f"{prefix}-analyzer:eth0", peers)
        finally:
            for p in peers.values():
                p.close()
            topo_lab.down(run / "lab", prefix)
        return
    from softswitch.launch import start_softswitch

    with start_softswitch(run / "switch", ports=(POOL_PORT, UPLINK_PORT, ANALYZER_PORT)) as target_proc:
        cfg["switches"][0]["address"] = target_proc.address
        config.write_text(yaml.safe_dump(cfg, sort_keys=False))
        analyzer = target_proc.peers.pop(ANALYZER_PORT)
        analyzer.sock.close()
        marker = f"ffdemo:{run}"
        ffd = topo_lab.start_fatflowd(config, run / "fatflowd.log", marker)
        try:
            topo_lab.wait_fatflowd_ready(ffd, run / "fatflowd.log", cfg["switches"][0]["name"], time.monotonic() + 60)
            yield Lab(mode, api, metrics, f"unix:{analyzer.path}", target_proc.peers)
        finally:
            topo_lab.stop_process(ffd)


@contextlib.contextmanager
def classifier(lab_: Lab, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    from topo import lab as topo_lab

    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "examples.classifier", "--source", lab_.analyzer,
                                 "--api", lab_.api, "--lifetime", "dns=20"], stdout=out, stderr=subprocess.STDOUT,
                                cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while "reading mirrored copies" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise DemoFailed(f"the classifier did not start:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield proc
    finally:
        topo_lab.stop_process(proc, timeout=5)


# ---- the story -------------------------------------------------------------------------------------


async def send(lab_: Lab, flows: list[Flow]) -> None:
    pool = lab_.peers[POOL_PORT]
    for i, f in enumerate(flows, 1):
        for _ in range(500):
            try:
                pool.send(f.frame())
                break
            except BlockingIOError:
                await asyncio.sleep(0.002)
        if i % 32 == 0:  # pace a little: the same cores run the switch, fatflowd and the classifier
            lab_.peers[UPLINK_PORT].drain()
            await asyncio.sleep(0.01)
    lab_.peers[UPLINK_PORT].drain()


async def settle(ff: AsyncFatflowClient, what: str, quiet: float = 0.6, limit: float = 20.0) -> Any:
    """Wait until fatflowd's counters stop moving."""
    last, since, deadline = None, time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline:
        s = (await ff.get_stats()).switches[0]
        now = (s.setups, s.flows, s.pending_updates)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return s
        await asyncio.sleep(0.1)
    raise DemoFailed(f"{what}: fatflowd did not settle within {limit:.0f} s")


async def list_flows(ff: AsyncFatflowClient) -> list[Any]:
    return list((await ff.list_flows(page_size=10000)).flows)


def key_text(k: FlowKey) -> str:
    return str(k)


async def story(lab_: Lab, cfg_path: Path, seed: int) -> int:
    cfg = load_config(cfg_path)
    sw = cfg.switches[0]
    vmi = sw.vmis[0].vmi
    rules, exclude = compile_rules(vmi.effective_rules()), ExcludeList(vmi.exclude_list())
    flows = traffic_mix(seed)
    expected = {f.pkt: flow_key(f.pkt, Direction.FROM_VM, vmi.vn.vrf, rules, exclude) for f in flows}
    by_key: dict[FlowKey, list[Flow]] = defaultdict(list)
    for f in flows:
        by_key[expected[f.pkt]].append(f)
    problems: list[str] = []
    async with AsyncFatflowClient(lab_.api) as ff:
        events: list[Any] = []

        async def watch() -> None:
            async for batch in ff.watch_flows(expired=True):
                events.extend(batch.events)
        watcher = asyncio.create_task(watch())
        try:
            with console.status(f"round 1: {len(flows)} new flows (first packets: digests, mirrored copies)"):
                t0 = time.monotonic()
                await send(lab_, flows)
                s1 = await settle(ff, "round 1")
            console.print(f"[green]✓[/] round 1: sent {len(flows)} packets of {len(flows)} flows in "
                          f"{time.monotonic() - t0:.1f} s; fatflowd installed {s1.setups} flows "
                          f"({s1.digests} digests, {s1.duplicates} duplicates)")
            with console.status("round 2: the same flows again (installed fat flows: hits)"):
                await send(lab_, flows)
                await asyncio.sleep(1.0)
                everything = await list_flows(ff)
            # in a netns lab the fabric host's kernel answers some packets (ICMPv6 errors): real
            # to-VM flows, learned too, but not part of the mix the demo checks
            listed = [f for f in everything if f.context.direction == "from_vm"]
            others = [f for f in everything if f.context.direction != "from_vm"]
            if others:
                console.print(f"  [dim]{len(others)} other flows learned from the lab hosts' own packets, e.g. "
                              f"{others[0].text} (not checked)[/]")
            installed = {f.text: f for f in listed}
            want = {key_text(k) for k in by_key}
            missing, extra = want - set(installed), set(installed) - want
            if missing:
                problems.append(f"{len(missing)} expected flows missing, e.g. {sorted(missing)[:3]}")
            if extra:
                problems.append(f"{len(extra)} installed keys the reference key function does not give, "
                                f"e.g. {sorted(extra)[:3]}")
            fat = [f for f in listed if f.fat]
            console.print(f"[green]✓[/] round 2: [bold]{len(flows)} packet flows (5-tuples) became {len(listed)} "
                          f"flow-table entries: {len(fat)} fat flows, {len(listed) - len(fat)} normal flows[/] "
                          f"({len(flows) - len(listed)} entries saved)")
            table = Table(title="flows vs fat flows (ListFlows; counters read from the switch)")
            for col in ("flow key (vrf proto src/plen:port -> dst/plen:port)", "flows", "pkts", "info", "flags"):
                table.add_column(col, justify="left" if col.startswith("flow key") or col == "info" else "right")
            ranked = sorted(listed, key=lambda f: (-len(by_key_text(by_key).get(f.text, ())), f.text))
            for f in ranked[:12]:
                table.add_row(f.text, str(len(by_key_text(by_key).get(f.text, ()))), str(f.packets),
                              f.context.info.decode(errors="replace") or "-",
                              ("O" if f.context.offloaded else "-") + ("M" if f.context.mirror else "-"))
            if len(ranked) > 12:
                table.add_row(f"... {len(ranked) - 12} more", "", "", "", "")
            console.print(table)

            # enrichment: the classifier's tags
            tags = Counter(f.context.info.decode(errors="replace") or "(none)" for f in listed)
            untagged = [f.text for f in listed if not f.context.info]
            console.print(f"[green]✓[/] enrichment: the classifier tagged and offloaded "
                          f"{sum(n for t, n in tags.items() if t != '(none)')} flows: "
                          + ", ".join(f"{n} {t}" for t, n in sorted(tags.items())))
            if untagged:
                problems.append(f"{len(untagged)} flows were not classified, e.g. {untagged[:2]}")
            wrong = [f.text for f in listed if f.context.info and
                     f.context.info.decode() != {"dns": "dns", "dns6": "dns", "dns-vn": "dns", "https": "tls", "https6": "tls",
                                                 "ssh": "ssh"}[by_key_text(by_key)[f.text][0].what]]
            if wrong:
                problems.append(f"{len(wrong)} flows tagged with the wrong class, e.g. {wrong[:2]}")

            # expiry: one flow gets a 1 s lifetime, its record comes back on WatchFlows
            victim = next((f for f in ranked if not f.fat), ranked[-1])
            with console.status(f"expiry: lifetime 1 s for {victim.text}"):
                vk = victim.key
                await ff.update_flow(key={"vrf": vk.vrf, "src": vk.src, "dst": vk.dst, "protocol": vk.protocol,
                                          "sport": vk.sport, "dport": vk.dport, "src_plen": vk.src_plen,
                                          "dst_plen": vk.dst_plen}, lifetime=1)
                rec = await wait_event(events, lambda e: e.flow.text == victim.text, 15)
            if rec is None:
                problems.append(f"no expiry record for {victim.text}")
            else:
                console.print(f"[green]✓[/] expiry: {rec.flow.text} expired ({rec.reason}), record: "
                              f"{rec.flow.packets} packets, {rec.flow.bytes} bytes, info "
                              f"{rec.flow.context.info.decode(errors='replace') or '-'}")

            # recycle at capacity
            with console.status("recycle: max_flows = the flows installed now, then one new flow"):
                now = (await ff.get_stats()).switches[0]
                await ff.configure_flowtable(max_flows=now.flows)
                newcomer = Flow("dns", PacketFields.from_dict({"src": "10.9.9.9", "dst": "8.8.8.8", "protocol": 17,
                                                               "sport": 4242, "dport": 53}), dns_query("late.example"))
                await send(lab_, [newcomer])
                rec = await wait_event(events, lambda e: e.reason == "recycled", 15)
            if rec is None:
                problems.append("no flow was recycled at capacity")
            else:
                console.print(f"[green]✓[/] recycle: at max_flows {now.flows}, the new flow "
                              f"{key_text(flow_key(newcomer.pkt, Direction.FROM_VM, vmi.vn.vrf, rules, exclude))} "
                              f"took the place of {rec.flow.text} (record reason {rec.reason})")

            # metrics
            s = (await ff.get_stats()).switches[0]
            console.print(f"[green]✓[/] metrics (GetStats): flows {s.flows}/{s.max_flows}, setups {s.setups}, "
                          f"recycles {s.recycles}, expiries {s.expiries}, digests {s.digests}, "
                          f"duplicates {s.duplicates}")
            if lab_.metrics:
                try:
                    with urllib.request.urlopen(f"http://{lab_.metrics}/metrics", timeout=2) as r:
                        text = r.read().decode()
                    lines = [ln for ln in text.splitlines() if ln.startswith("fatflow") and "{" in ln][:8]
                    console.print("  Prometheus (" + lab_.metrics + "/metrics):\n    " + "\n    ".join(lines))
                except OSError as e:
                    console.print(f"  [dim]Prometheus endpoint {lab_.metrics} is not up ({e}); GetStats only[/]")
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, FatflowError):
                await watcher
    if problems:
        for p in problems:
            console.print(f"[red bold]MISMATCH[/]: {p}")
        return 1
    console.print("[green bold]checked:[/] every installed key equals the reference key function's, no flow is "
                  "missing, every flow carries its class")
    return 0


_TEXT_CACHE: dict[int, dict[str, list[Flow]]] = {}


def by_key_text(by_key: dict[FlowKey, list[Flow]]) -> dict[str, list[Flow]]:
    got = _TEXT_CACHE.get(id(by_key))
    if got is None:
        got = _TEXT_CACHE[id(by_key)] = {key_text(k): v for k, v in by_key.items()}
    return got


async def wait_event(events: list[Any], match: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in events:
            if match(e):
                return e
        await asyncio.sleep(0.05)
    return None


def choose_mode(requested: str) -> str:
    if requested != "auto":
        return requested
    if os.geteuid() == 0 and shutil.which("ip") and Path("/var/run/netns").parent.exists():
        return "netns"
    return "unix"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--target", choices=["softswitch", "bmv2"], default=os.environ.get("TARGET") or "softswitch")
    ap.add_argument("--mode", choices=["auto", "netns", "unix"], default="auto",
                    help="auto: network namespaces as root, Unix-socket ports otherwise")
    ap.add_argument("--seed", type=int, default=7, help="traffic mix seed")
    ap.add_argument("--keep", metavar="DIR", help="keep configuration and logs in DIR")
    args = ap.parse_args(argv)
    mode = choose_mode(args.mode)
    if args.target == "bmv2":
        missing = [t for t in ("simple_switch_grpc",) if shutil.which(t) is None]
        missing += [str(p.relative_to(REPO)) for p in (REPO / "build/fatflow.json",) if not p.exists()]
        if missing:
            console.print(f"[red bold]BMv2 demo not run[/]: {', '.join(missing)} missing. It needs simple_switch_grpc "
                          f"on PATH and build/fatflow.json from 'make p4' with p4c installed.")
            return 2
        if os.geteuid() != 0:
            console.print("[red bold]BMv2 demo not run[/]: BMv2 ports are veth pairs, which need root")
            return 2
        mode = "netns"

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        run = Path(args.keep) if args.keep else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ffdemo-")))
        run.mkdir(parents=True, exist_ok=True)
        for old in ("fatflowd.log", "classifier.log", "fatflowd.yaml"):
            (run / old).unlink(missing_ok=True)
        console.rule(f"p4-fatflow demo: {args.target}, {'network namespaces' if mode == 'netns' else 'Unix-socket ports'}")
        try:
            with console.status("starting the lab: switch, fatflowd"):
                lab_ = stack.enter_context(lab(run, args.target, mode))
            console.print(f"[green]✓[/] lab up: {args.target}, fatflowd API {lab_.api} ({mode})")
            with console.status("starting the classifier (examples/classifier)"):
                stack.enter_context(classifier(lab_, run / "classifier.log"))
            console.print(f"[green]✓[/] classifier on the analyzer port ({lab_.analyzer})")
            rc = asyncio.run(story(lab_, run / "fatflowd.yaml", args.seed))
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: tearing down[/]")
            return 130
        except Exception as e:  # a demo reports, tears down, exits 1
            console.print(f"[red bold]demo failed[/]: {type(e).__name__}: {e}")
            for log in ("fatflowd.log", "classifier.log"):
                with contextlib.suppress(OSError):
                    console.print(f"[dim]--- {log} (tail)\n{(run / log).read_text(errors='replace')[-1500:]}[/]")
            return 1
        finally:
            console.print("[dim]tearing down: classifier, fatflowd, switch, lab[/]")
    console.print(f"done in {time.monotonic() - started:.0f} s (exit {rc})")
    return rc


if __name__ == "__main__":
    sys.exit(main())

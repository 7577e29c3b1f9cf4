"""``fatflowctl``: the command line of the fatflowd API (docs/api.md).

    fatflowctl [--address HOST:PORT] [--token-file F] [--ca F] [--json] COMMAND ...

    flows list [--switch S] [--vmi V] [-4|-6] [--fat] [--protocol P] [--sort packets|bytes|age] [--limit N]
    flows show   [--switch S] [--vmi V | --vrf N] SRC DST PROTO [SPORT DPORT]    (or --key "vrf ... -> ...")
    flows update [--switch S] [--vmi V | --vrf N] SRC DST PROTO [SPORT DPORT] [--lifetime S] [--offload|
                 --no-offload] [--mirror|--no-mirror] [--drop|--forward] [--egress-port P] [--info TEXT]
                 [--preinstall]
    flows delete ... | flows watch [...] [--count N] | flows top [--rows N] [--interval S]
    config show | config validate FILE | config apply FILE | config diff FILE
    ports [--switch S]                     the VMIs and their fat-flow rules (as Contrail's ``vif --get``)
    flowtable [--switch S] [--max-flows N] [--port P [--enable|--disable] [--egress-port E]]
    stats [--switch S]                     entries per table and the flow counters (``vrmemstats``)

Human tables by default, ``--json`` for scripts. Exit status: 0 ok; 1 not found or failed (``config
diff``: the configurations differ); 2 usage error or invalid configuration/argument; 3 cannot connect
or not authenticated. The address defaults to $FATFLOW_API or 127.0.0.1:50051, the token to
$FATFLOW_TOKEN or --token-file.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from p4fatflow.api.client import FatflowClient, FatflowError, env_address, to_dict
from p4fatflow.api.pb import pb
from p4fatflow.config import protocol_label, protocol_number

__all__ = ["main", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_CONNECT"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONNECT = 0, 1, 2, 3

_EXIT_BY_CODE = {
    grpc.StatusCode.NOT_FOUND: EXIT_FAILED, grpc.StatusCode.INVALID_ARGUMENT: EXIT_USAGE,
    grpc.StatusCode.OUT_OF_RANGE: EXIT_USAGE, grpc.StatusCode.FAILED_PRECONDITION: EXIT_USAGE,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_CONNECT, grpc.StatusCode.PERMISSION_DENIED: EXIT_CONNECT,
    grpc.StatusCode.UNAVAILABLE: EXIT_CONNECT, grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_CONNECT,
}


class Usage(Exception):
    pass


# ---- output ---------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "") -> str:
    """Plain aligned columns (numbers right-aligned), stable for scripts that grep and for tests."""
    cells = [[str(c) for c in headers]] + [[("-" if c is None or c == "" else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(r[i].replace(".", "", 1).replace(",", "").isdigit() or r[i] == "-" for r in cells[1:]) and rows
               for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append((indent + "  ".join(parts)).rstrip())
    return "\n".join(lines)


def info_text(info: bytes) -> str:
    """An info tag as set with --info (printable text) or --info-hex: `dns (646e73)`, or the hex."""
    if not info:
        return "-"
    text = info.rstrip(b"\0")
    if text and all(32 <= b < 127 for b in text):
        return f"{text.decode()} ({info.hex()})"
    return info.hex()


def duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def action(ctx: Any) -> str:
    if ctx.verdict == pb.VERDICT_DROP:
        return "D"
    return f"F->{ctx.egress_port}" if ctx.egress_port else "F"


def flags(ctx: Any) -> str:
    return "".join(c for c, on in (("O", ctx.offloaded), ("M", ctx.mirror)) if on) or "-"


FLOW_HEADERS = ("Switch", "Flow key (vrf proto src/plen:port -> dst/plen:port)", "Action", "Flags", "Pkts", "Bytes",
                "Age", "Lifetime", "Left", "VMI", "Dir")


def flow_row(f: Any) -> list[object]:
    c = f.context
    return [f.switch, f.text, action(c), flags(c), f.packets, f.bytes, duration(f.age_ms), f"{c.lifetime}s",
            duration(f.lifetime_left_ms) if f.HasField("lifetime_left_ms") else "-", c.vmi or "-", c.direction or "-"]


def flow_detail(f: Any) -> str:
    c = f.context
    k = f.key
    lines = [
        f"flow      {f.text}",
        f"switch    {f.switch}",
        f"key       vrf {k.vrf}  src {k.src}/{k.src_plen}  dst {k.dst}/{k.dst_plen}  proto {k.protocol}"
        f"  sport {k.sport}  dport {k.dport}  ({'fat' if f.fat else 'normal'} flow)",
        f"action    {action(c)}  (verdict {'drop' if c.verdict == pb.VERDICT_DROP else 'forward'}, egress "
        f"{c.egress_port or 'route'})",
        f"flags     offloaded {'yes' if c.offloaded else 'no'}, mirror {'yes' if c.mirror else 'no'}",
        f"lifetime  {c.lifetime}s" + (f", {duration(f.lifetime_left_ms)} left" if f.HasField("lifetime_left_ms") else ""),
        f"counters  {f.packets} packets, {f.bytes} bytes",
        f"age       {duration(f.age_ms)}",
        f"vmi       {c.vmi or '-'} (id {c.vmi_id}), {c.direction or '-'}, ingress port {c.ingress_port}",
        f"info      {info_text(c.info)}",
    ]
    return "\n".join(lines)


class Out:
    def __init__(self, as_json: bool) -> None:
        self.json = as_json

    def emit(self, msg: Any, human: Callable[[Any], str]) -> None:
        if self.json:
            print(json.dumps(to_dict(msg), indent=2))
        else:
            text = human(msg)
            if text:
                print(text)


# ---- arguments -------------------------------------------------------------------------------------


def _protocol(text: str) -> int:
    try:
        return protocol_number(int(text) if text.isdigit() else text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_flow_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--switch", default="", help="the switch (may be left out when fatflowd drives one)")
    p.add_argument("--vmi", default="", help="the VMI whose rules key the packet")
    p.add_argument("--vrf", type=int, help="the VRF (without --vmi: the VMI owning src/dst, else transit)")
    p.add_argument("--key", help='the exact key instead of a packet: "vrf 10 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53"')
    p.add_argument("packet", nargs="*", metavar="SRC DST PROTO [SPORT DPORT]",
                   help="any packet of the flow (ICMP: SPORT = echo id)")


def parse_key(text: str) -> dict[str, Any]:
    """``vrf 10 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53`` (as listed) -> FlowKey fields."""
    try:
        left, right = text.split("->")
        words = left.split()
        if words[0] != "vrf":
            raise ValueError
        vrf, proto, src = int(words[1]), _protocol(words[2]), words[3]
        dst = right.strip()

        def endpoint(e: str) -> tuple[str, int, int]:
            addr_plen, port = e.rsplit(":", 1)
            addr, plen = addr_plen.rsplit("/", 1)
            return addr.strip("[]"), int(plen), int(port)

        s, sp, sport = endpoint(src)
        d, dp, dport = endpoint(dst)
    except (ValueError, IndexError, argparse.ArgumentTypeError):
        raise Usage(f"--key: cannot read {text!r} (expected e.g. 'vrf 10 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53')") from None
    return {"vrf": vrf, "src": s, "src_plen": sp, "dst": d, "dst_plen": dp, "protocol": proto, "sport": sport,
            "dport": dport}


def flow_target(a: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {"switch": a.switch, "vmi": a.vmi, "vrf": a.vrf}
    if a.key:
        if a.packet:
            raise Usage("give a packet or --key, not both")
        kw["key"] = parse_key(a.key)
        return kw
    if len(a.packet) not in (3, 5):
        raise Usage("a flow is SRC DST PROTO [SPORT DPORT] (or --key)")
    src, dst, proto = a.packet[:3]
    try:
        sport, dport = (int(a.packet[3]), int(a.packet[4])) if len(a.packet) == 5 else (0, 0)
    except ValueError:
        raise Usage(f"SPORT and DPORT must be numbers, got {a.packet[3]!r} {a.packet[4]!r}") from None
    try:
        kw["packet"] = (src, dst, _protocol(proto), sport, dport)
    except argparse.ArgumentTypeError as exc:
        raise Usage(f"PROTO: {exc}") from None
    return kw


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fatflowctl", description="Command line of the fatflowd API.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="exit status: 0 ok, 1 not found/failed, 2 usage/invalid, 3 cannot connect")
    ap.add_argument("--address", default=env_address(), help="fatflowd's API (default $FATFLOW_API or %(default)s)")
    ap.add_argument("--token-file", help="file holding the bearer token (default: $FATFLOW_TOKEN)")
    ap.add_argument("--ca", help="CA certificate: connect with TLS")
    ap.add_argument("--cert", help="client certificate (TLS)")
    ap.add_argument("--key-file", dest="tls_key", help="client private key (TLS)")
    ap.add_argument("--server-name", help="TLS server name override")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    sub = ap.add_subparsers(dest="cmd", required=True)

    flows = sub.add_parser("flows", help="list, show, update, delete, watch flows").add_subparsers(dest="sub",
                                                                                                  required=True)
    p = flows.add_parser("list", help="the flows the switches hold (flow -l)")
    p.add_argument("--switch", default="")
    p.add_argument("--vmi", default="")
    fam = p.add_mutually_exclusive_group()
    fam.add_argument("-4", dest="family", action="store_const", const=4, default=0)
    fam.add_argument("-6", dest="family", action="store_const", const=6)
    p.add_argument("--fat", action="store_true", help="only fat flows")
    p.add_argument("--protocol", type=_protocol)
    p.add_argument("--sort", choices=["key", "packets", "bytes", "age"], default="key")
    p.add_argument("--limit", type=int, default=0, help="at most N flows (default: all)")
    for name, helptext in (("show", "one flow, read from the switch"), ("delete", "delete a flow")):
        _add_flow_args(flows.add_parser(name, help=helptext))
    p = flows.add_parser("update", help="change a flow's context (flowtable_update); unset = unchanged")
    _add_flow_args(p)
    p.add_argument("--lifetime", type=int)
    p.add_argument("--offload", dest="offloaded", action="store_true", default=None)
    p.add_argument("--no-offload", dest="offloaded", action="store_false")
    p.add_argument("--mirror", dest="mirror", action="store_true", default=None)
    p.add_argument("--no-mirror", dest="mirror", action="store_false")
    p.add_argument("--drop", dest="verdict", action="store_const", const="drop")
    p.add_argument("--forward", dest="verdict", action="store_const", const="forward")
    p.add_argument("--egress-port", type=int)
    p.add_argument("--info", help="opaque info, up to 16 bytes of text")
    p.add_argument("--info-hex", help="opaque info as hex")
    p.add_argument("--preinstall", action="store_true", help="install it now if it is not learned yet")
    p.add_argument("--pending-ms", type=int, default=0, help="how long an update waits for its flow (default 10 s)")
    p = flows.add_parser("watch", help="created / updated / expired events as they happen")
    p.add_argument("--switch", default="")
    p.add_argument("--vmi", default="")
    p.add_argument("--created", action="store_true")
    p.add_argument("--updated", action="store_true")
    p.add_argument("--expired", action="store_true")
    p.add_argument("--count", type=int, default=0, help="stop after N events")
    p = flows.add_parser("top", help="live view of the busiest flows and the setup/expiry rates")
    p.add_argument("--switch", default="")
    p.add_argument("--rows", type=int, default=20)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--iterations", type=int, default=0, help="stop after N refreshes (default: until Ctrl-C)")

    config = sub.add_parser("config", help="show, validate, apply, diff the configuration").add_subparsers(
        dest="sub", required=True)
    config.add_parser("show", help="the running configuration, every value explicit")
    for name, helptext in (("validate", "check a file (nothing changes)"),
                           ("apply", "validate, then apply as a diff"),
                           ("diff", "the running configuration vs FILE (exit 1 if they differ)")):
        config.add_parser(name, help=helptext).add_argument("file")

    p = sub.add_parser("ports", help="VMIs and fabric ports with their fat-flow rules (vif --get)")
    p.add_argument("--switch", default="")
    p = sub.add_parser("flowtable", help="max flows, per-port enable/disable and egress (flowtable_conf)")
    p.add_argument("--switch", default="", help="the switch (may be left out when fatflowd drives one)")
    p.add_argument("--max-flows", type=int, help="flows the controller installs at most (then recycles)")
    p.add_argument("--port", type=int, action="append", default=[], help="a port to change (repeatable)")
    p.add_argument("--enable", dest="enable", action="store_true", default=None,
                   help="the --port(s) look up and learn flows")
    p.add_argument("--disable", dest="enable", action="store_false",
                   help="the --port(s) only route: no flow lookup, no learning")
    p.add_argument("--egress-port", type=int, help="the --port(s)' next hop: egress override of their new flows (0 = none, the route's port)")
    p = sub.add_parser("stats", help="entries per table and flow counters (vrmemstats)")
    p.add_argument("--switch", default="")
    _json_anywhere(ap)
    return ap


def _json_anywhere(parser: argparse.ArgumentParser) -> None:
    """Accept --json after the command too (``fatflowctl flows list --json``), as before it."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                            help="machine-readable output (also before the command)")
        return
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            _json_anywhere(child)


# ---- commands --------------------------------------------------------------------------------------


def cmd_flows_list(c: FatflowClient, a: argparse.Namespace, out: Out) -> int:
    flows: list[Any] = []
    token = ""
    total = 0
    while True:
        size = min(1000, a.limit - len(flows)) if a.limit else 1000
        r = c.list_flows(switch=a.switch, vmi=a.vmi, family=a.family, fat_only=a.fat, protocol=a.protocol,
                         sort=a.sort, page_size=size, page_token=token)
        flows.extend(r.flows)
        total = r.total
        token = r.next_page_token
        if not token or (a.limit and len(flows) >= a.limit):
            break
    resp = pb.ListFlowsResponse(flows=flows, total=total)
    out.emit(resp, lambda m: table(FLOW_HEADERS, [flow_row(f) for f in m.flows])
             + f"\n{len(m.flows)} of {m.total} flow(s); fat {sum(1 for f in m.flows if f.fat)}")
    return EXIT_OK


def cmd_flows_show(c: FatflowClient, a: argparse.Namespace, out: Out) -> int:
    out.emit(c.get_flow(**flow_target(a)), flow_detail)
    return EXIT_OK


def cmd_flows_delete(c: FatflowClient, a: argparse.Namespace, out: Out) -> int:
    out.emit(c.delete_flow(**flow_target(a)), lambda f: f"deleted {f.text} ({f.packets} packets, {f.bytes} bytes)")
    return EXIT_OK


def cmd_flows_update(c: FatflowClient, a: argparse.Namespace, out: Out) -> int:
    info: bytes | None = None
    if a.info is not None:
        info = a.info.encode()
    elif a.info_hex is not None:
        try:
            info = bytes.fromhex(a.info_hex)
        except ValueError:
            raise Usage(f"--info-hex: {a.info_hex!r} is not hex") from None
    r = c.update_flow(**flow_target(a), lifetime=a.lifetime, offloaded=a.offloaded, mirror=a.mirror,
                      verdict=a.verdict, egress_port=a.egress_port, info=info, preinstall=a.preinstall,
                      pending_ms=a.pending_ms)
    status = pb.UpdateFlowResult.Status.Name(r.status).lower()

    def human(m: Any) -> str:
        if m.status == pb.UpdateFlowResult.PENDING:
            return f"pending: {m.flow.text} is not learned yet; the update applies when it is"
        return f"{status}: " + flow_detail(m.flow)

    out.emit(r, human)
    return EXIT_OK


def _event_line(ev: Any) -> str:
    kind = pb.FlowEvent.Kind.Name(ev.kind).lower()
    f = ev.flow
    extra = f" {ev.reason} {f.packets}p {f.bytes}B" if ev.kind == pb.FlowEvent.EXPIRED else ""
    return f"{kind:8} {f.switch} {f.text} {action(f.context)} {flags(f.context)} lifetime {f.context.lifetime}s{extra}"


def cmd_flows_watch(c: FatflowClient, a: argparse.Namespace, out: Out) -> int:
    n = 0
    for batch in c.watch_flows(switch=a.switch, vmi=a.vmi, created=a.created, updated=a.updated,
                               expired=a.expired):
        if batch.skipped:
            print(json.dumps({"skipped": batch.skipped}) if out.json else f"... {batch.skipped} event(s) skipped "
                  "(this watcher was too slow)", flush=True)
        for ev in batch.events:
            print(json.dumps(to_dict(ev)) if out.json else _event_line(ev), flush=True)
            n += 1
            if a.count and n >= a.count:
                return EXIT_OK
    return EXIT_OK


def cmd_flows_top(c: FatflowClient, a: argparse.Namespace, out: Out) -> int:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    prev: dict[str, tuple[float, int, int]] = {}
    last_stats: tuple[float, int, int] | None = None
    console = Console()
    if not console.is_terminal:  # a pipe or a file: no wrapping of the keys at 80 columns
        console = Console(width=200)

    def snapshot() -> Any:
        nonlocal last_stats
        now = time.monotonic()
        stats = c.get_stats(switch=a.switch)
        flows = c.list_flows(switch=a.switch, sort="packets", page_size=a.rows)
        setups = sum(s.setups for s in stats.switches)
        ends = sum(s.expiries + s.recycles + s.flushed + s.deleted + s.lifetime0 for s in stats.switches)
        rates = (0.0, 0.0)
        if last_stats is not None and now > last_stats[0]:
            dt = now - last_stats[0]
            rates = ((setups - last_stats[1]) / dt, (ends - last_stats[2]) / dt)
        last_stats = (now, setups, ends)
        rows = []
        for f in flows.flows:
            k = f"{f.switch} {f.text}"
            p = prev.get(k)
            pps = (f.packets - p[1]) / (now - p[0]) if p is not None and now > p[0] else 0.0
            bps = (f.bytes - p[2]) / (now - p[0]) if p is not None and now > p[0] else 0.0
            prev[k] = (now, f.packets, f.bytes)
            rows.append((f, pps, bps))
        if out.json:
            return {"setups_per_s": rates[0], "expiries_per_s": rates[1],
                    "flows": sum(s.flows for s in stats.switches),
                    "top": [{**to_dict(f), "pps": pps, "bps": bps} for f, pps, bps in rows]}
        t = Table(title=f"fatflow top - {sum(s.flows for s in stats.switches)} flows, "
                        f"{rates[0]:.0f} setups/s, {rates[1]:.0f} expiries/s", expand=False)
        for h in ("Switch", "Flow key", "Pkts", "Bytes", "pps", "B/s", "Age", "Left", "Action"):
            t.add_column(h, justify="right" if h in ("Pkts", "Bytes", "pps", "B/s") else "left")
        for f, pps, bps in rows:
            t.add_row(f.switch, f.text, str(f.packets), str(f.bytes), f"{pps:.0f}", f"{bps:.0f}",
                      duration(f.age_ms), duration(f.lifetime_left_ms) if f.HasField("lifetime_left_ms") else "-",
                      action(f.context))
        return t

    i = 0
    if out.json:
        while True:
            print(json.dumps(snapshot()), flush=True)
            i += 1
            if a.iterations and i >= a.iterations:
                return EXIT_OK
            time.sleep(a.interval)
    if not console.is_terminal:
        # Batch mode, as `top -b`: a live view drawn on a pipe or a file would show only at the end.
        while True:
            console.print(snapshot())
            i += 1
            if a.iterations and i >= a.iterations:
                return EXIT_OK
            time.sleep(a.interval)
    with Live(snapshot(), console=console, refresh_per_second=4, transient=False) as live:
        while not a.iterations or i < a.iterations - 1:
            time.sleep(a.interval)
            live.update(snapshot())
            i += 1
    return EXIT_OK


def _problems(problems: Sequence[Any]) -> str:
    return "\n".join(f"{p.file}:{p.line}: {p.path}: {p.message}" if p.line else f"{p.file}: {p.path}: {p.message}"
                     for p in problems)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise Usage(f"cannot read {path}: {exc.strerror}") from None


def cmd_config(c: FatflowClient, a: argparse.Namespace, out: Out) -> int:
    if a.sub == "show":
        r = c.get_config()
        out.emit(r, lambda m: m.yaml.rstrip())
        return EXIT_OK
    text = _read(a.file)
    if a.sub == "validate":
        v = c.validate_config(text, a.file)
        out.emit(v, lambda m: f"{a.file}: valid ({len(m.switches)} switch(es))" if m.valid else "")
        if not v.valid:
            if not out.json:
                print(f"{a.file}: invalid configuration:\n{_problems(v.problems)}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_OK
    if a.sub == "diff":
        v = c.validate_config(text, a.file)
        if not v.valid:
            print(f"{a.file}: invalid configuration:\n{_problems(v.problems)}", file=sys.stderr)
            return EXIT_USAGE
        running = c.get_config().yaml
        diff = list(difflib.unified_diff(running.splitlines(), v.normalized_yaml.splitlines(), "running", a.file,
                                         lineterm=""))
        if out.json:
            print(json.dumps({"same": not diff, "diff": diff}, indent=2))
        elif diff:
            print("\n".join(diff))
        else:
            print(f"{a.file}: the same as the running configuration")
        return EXIT_FAILED if diff else EXIT_OK
    r = c.apply_config(text, a.file)
    return _applied(r, out, a.file)


def _applied(r: Any, out: Out, what: str) -> int:
    if not r.valid:
        out.emit(r, lambda m: "")
        print(f"{what}: invalid configuration, nothing changed:\n{_problems(r.problems)}", file=sys.stderr)
        return EXIT_USAGE

    def human(m: Any) -> str:
        rows = [[s.switch, "started" if s.started else "applied", s.inserted, s.modified, s.deleted, s.failed,
                 s.flows_flushed, s.entries] for s in m.switches]
        rows += [[name, "stopped", 0, 0, 0, 0, 0, 0] for name in m.stopped]
        text = table(("Switch", "Result", "Inserted", "Modified", "Deleted", "Failed", "Flows flushed", "Entries"), rows)
        errors = [f"{s.switch}: {e}" for s in m.switches for e in s.errors]
        return text + ("\n" + "\n".join(errors) if errors else "")

    out.emit(r, human)
    return EXIT_FAILED if any(s.failed for s in r.switches) else EXIT_OK


_IGNORE = {"src": "Sip", "dst": "Dip", "none": "-"}


def ports_text(m: Any) -> str:
    blocks = []
    for p in m.ports:
        head = (f"vif {p.switch}/{p.port}  {p.kind}" + (f" {p.name} (id {p.vmi_id})" if p.kind == "vmi" else "")
                + f"  vn {p.vn} vrf {p.vrf}" + (f"  mac {p.mac}" if p.mac else ""))
        lines = [head,
                 f"    Flowtable: {'enabled' if p.flowtable else 'disabled'}  Miss: {p.miss_policy}  "
                 f"Mirror new flows: {'yes' if p.mirror_new_flows else 'no'}  Egress: {p.egress_port or 'route'}"]
        if p.kind == "vmi":
            lines.append(f"    Addresses: {' '.join(p.addresses) or '-'}")
            if p.rules:
                lines.append("    FatFlows (Protocol/Port): " + ", ".join(
                    f"{r.protocol}:{r.port or '*'}" for r in p.rules))
                rows = [[f"{r.protocol}:{r.port or '*'}", protocol_label(r.protocol), _IGNORE.get(r.ignore_address, "-"),
                         f"{r.src_subnet} /{r.src_plen}" if r.src_subnet else "-",
                         f"{r.dst_subnet} /{r.dst_plen}" if r.dst_subnet else "-"] for r in p.rules]
                lines.append(table(("Proto:Port", "Name", "Ignore", "AggrSrc (subnet /plen)", "AggrDst (subnet /plen)"),
                                   rows, indent="        "))
            else:
                lines.append("    FatFlows (Protocol/Port): -")
            lines.append(f"    FatFlows exclude prefix list: {' '.join(p.exclude) or '-'}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def stats_text(m: Any) -> str:
    blocks = []
    for s in m.switches:
        rows = [[t.table, t.entries, t.capacity or "-"] for t in s.tables]
        counters = [("flows", s.flows), ("max flows", s.max_flows), ("setups", s.setups), ("recycles", s.recycles),
                    ("expiries", s.expiries), ("deleted", s.deleted), ("flushed", s.flushed), ("lifetime 0", s.lifetime0),
                    ("adopted", s.adopted), ("digests", s.digests), ("digest drops", s.digest_drops),
                    ("duplicates", s.duplicates), ("capacity drops", s.capacity_drops),
                    ("insert errors", s.insert_errors), ("hold queued", s.hold_queued),
                    ("hold released", s.hold_released), ("hold drops", s.hold_drops), ("held now", s.hold_held),
                    ("pending updates", s.pending_updates)]
        blocks.append(f"switch {s.switch} ({s.state}): {s.flows}/{s.max_flows} flows, {s.vmis} VMIs, "
                      f"{s.config_entries} configuration entries\n"
                      + table(("Table", "Entries", "Capacity"), rows) + "\n\n"
                      + table(("Counter", "Value"), counters))
    return "\n\n".join(blocks) + f"\n\nflow records published: {m.records}; watchers: {m.watchers}"


def cmd_ports(c: FatflowClient, a: argparse.Namespace, out: Out) -> int:
    out.emit(c.list_ports(switch=a.switch), ports_text)
    return EXIT_OK


def cmd_stats(c: FatflowClient, a: argparse.Namespace, out: Out) -> int:
    out.emit(c.get_stats(switch=a.switch), stats_text)
    return EXIT_OK


def cmd_flowtable(c: FatflowClient, a: argparse.Namespace, out: Out) -> int:
    if (a.enable is not None or a.egress_port is not None) and not a.port:
        raise Usage("--enable/--disable/--egress-port need --port")
    if a.max_flows is None and not a.port:
        raise Usage("nothing to change: give --max-flows and/or --port")
    ports = [{"port": p, "enable": a.enable, "egress_port": a.egress_port} for p in a.port]
    return _applied(c.configure_flowtable(switch=a.switch, max_flows=a.max_flows, ports=ports), out, "flowtable")


COMMANDS: dict[tuple[str, str | None], Callable[[FatflowClient, argparse.Namespace, Out], int]] = {
    ("flows", "list"): cmd_flows_list, ("flows", "show"): cmd_flows_show, ("flows", "update"): cmd_flows_update,
    ("flows", "delete"): cmd_flows_delete, ("flows", "watch"): cmd_flows_watch, ("flows", "top"): cmd_flows_top,
    ("config", None): cmd_config, ("ports", None): cmd_ports, ("stats", None): cmd_stats,
    ("flowtable", None): cmd_flowtable,
}


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    fn = COMMANDS.get((a.cmd, getattr(a, "sub", None))) or COMMANDS[(a.cmd, None)]
    token = os.environ.get("FATFLOW_TOKEN") if not a.token_file else None
    try:
        client = FatflowClient(a.address, token=token, token_file=a.token_file, ca=a.ca, cert=a.cert, key=a.tls_key,
                               server_name=a.server_name, timeout=a.timeout)
    except OSError as exc:
        print(f"fatflowctl: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with client:
            return fn(client, a, Out(a.json))
    except Usage as exc:
        print(f"fatflowctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FatflowError as exc:
        code = _EXIT_BY_CODE.get(exc.code, EXIT_FAILED)
        what = {EXIT_CONNECT: f"cannot use fatflowd at {a.address}: "}.get(code, "")
        print(f"fatflowctl: {what}{exc.details} ({exc.code.name})", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

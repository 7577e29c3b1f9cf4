"""The example application (examples/classifier) end to end, and what the controller learns from a
mirrored packet-in.

- fatflowd + $FATFLOW_TARGET, vm1 with mirror_new_flows and analyzer port 4; the classifier runs as
  a real process on the analyzer port's far end (a softswitch Unix-socket peer, or an AF_PACKET
  socket on the veth for FATFLOW_PORTS=veth / bmv2). DNS, TLS (after a payload-less SYN) and SSH
  conversations, IPv4 and IPv6: each is classified from its mirrored copies, offloaded by
  UpdateFlows with its class's lifetime and info tag, after which its packets are forwarded but no
  longer copied, and `fatflowctl flows show` shows the tag.
- softswitch: a copy sent to the CPU port (analyzer_port = cpu_port) says where the packet entered
  and which VMI it belongs to (the clone preserves meta.ingress_port and meta.vmi_id).
- the classifier's decisions on hand-made and odd frames (pure).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import finsy
import pytest
from apitest import api_config
from ffd import VM1_MAC, eventually, frame, running_fatflowd, send_paced
from lab import Lab
from p4fatflow import dataplane as dp
from p4fatflow.api.client import AsyncFatflowClient
from p4fatflow.config import VMI, VN, FatFlowRule, parse_network
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import raw
from targets import PORTS_MODE, SwitchProcess

from examples.classifier.classify import FlowClass, classify, parse_frame
from examples.classifier.payloads import dns_query, ssh_banner, tls_client_hello
from softswitch.launch import PipelineBuild

REPO = Path(__file__).resolve().parents[2]
VM1, FABRIC, ANALYZER = 1, 3, 4
LIFETIMES = {"dns": 25, "tls": 700, "ssh": 3000}


def _source_spec(switch: SwitchProcess) -> str:
    """The analyzer port's far end for the application; the test's own peer of it is closed."""
    peer = switch.peers.pop(ANALYZER)
    if PORTS_MODE == "unix":
        peer.close()
        assert switch._sockdir is not None
        return f"unix:{switch._sockdir / f'p{ANALYZER}'}"
    ifname = str(peer.sock.getsockname()[0])
    peer.close()
    return ifname


class App:
    """The classifier as a process; its JSON events collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def of(self, kind: str, packet: tuple[str, str, int, int, int] | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind and (packet is None or tuple(e["packet"]) == packet)]


@contextlib.asynccontextmanager
async def classifier(source: str, api: str) -> AsyncIterator[App]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "examples.classifier", "--source", source, "--api", api, "--json",
        *(a for c, s in LIFETIMES.items() for a in ("--lifetime", f"{c}={s}")),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    app = App(proc)
    try:
        await eventually(lambda: app.of("ready"), 20, "the classifier to be ready")
        yield app
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await asyncio.wait_for(app.reader, 5)
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        assert "Traceback" not in err, err


def _frame(pkt: tuple[str, str, int, int, int], payload: bytes) -> bytes:
    src, dst, proto, sport, dport = pkt
    return frame(src, dst, proto, sport, dport, payload=payload, src_mac=VM1_MAC)


async def test_classifier_offloads_tags_and_stops_the_copies(tmp_path: Path, switch: SwitchProcess,
                                                             ff_build: PipelineBuild) -> None:
    path, address = api_config(tmp_path, switch, ff_build, flowtable={"analyzer_port": ANALYZER},
                               vm1={"mirror_new_flows": True})
    dns = ("10.0.0.3", "8.8.8.8", 17, 5353, 53)
    tls = ("2001:db8::3", "2001:db8:ffff::10", 6, 40000, 443)
    ssh = ("10.0.0.3", "198.51.100.7", 6, 40001, 22)
    expect = {dns: ("dns", dns_query("example.org")), tls: ("tls", tls_client_hello("www.example.org")),
              ssh: ("ssh", ssh_banner())}
    source = _source_spec(switch)
    async with running_fatflowd(path), classifier(source, address) as app, \
            AsyncFatflowClient(address) as ff:
        # the TLS conversation starts with a SYN without payload: copied, nothing to classify yet
        assert await send_paced(switch, VM1, [_frame(tls, b"")], FABRIC) == 1
        await eventually(lambda: app.of("copy", tls), 10, "the SYN's copy")
        assert not app.of("classified", tls)
        for pkt, (_, payload) in expect.items():
            assert await send_paced(switch, VM1, [_frame(pkt, payload)], FABRIC) == 1
        await eventually(lambda: all(app.of("classified", p) for p in expect), 15, "three classifications")
        for pkt, (cls, _) in expect.items():
            (ev,) = app.of("classified", pkt)
            assert ev["class"] == cls and ev["status"] in ("APPLIED", "PENDING"), ev

        async def offloaded(pkt: tuple[str, str, int, int, int]) -> Any:
            try:
                f = await ff.get_flow(vmi="vm1", packet=pkt)
            except Exception:  # not learned yet (a PENDING update waits for it)
                return None
            return f if f.context.offloaded else None

        for pkt, (cls, _) in expect.items():
            for _ in range(200):
                f = await offloaded(pkt)
                if f is not None:
                    break
                await asyncio.sleep(0.05)
            assert f is not None, (f"{cls} flow never offloaded", app.of("classified", pkt), await ff.get_flow(vmi="vm1", packet=pkt))
            assert f.context.info == cls.encode() and f.context.lifetime == LIFETIMES[cls], f
            assert f.context.mirror, "offloaded, not unmirrored: the application's view stays in the context"
        # offloaded: forwarded, no longer copied
        copies = {p: len(app.of("copy", p)) for p in expect}
        for pkt, (_, payload) in expect.items():
            assert await send_paced(switch, VM1, [_frame(pkt, payload)] * 3, FABRIC) == 3
        await asyncio.sleep(0.8)
        assert {p: len(app.of("copy", p)) for p in expect} == copies, "an offloaded flow is still mirrored"
        # the tag as an operator sees it
        for pkt, (cls, _) in expect.items():
            src, dst, proto, sport, dport = pkt
            # a process of its own, awaited: fatflowd runs on this event loop
            ctl = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "p4fatflow.ctl", "--address", address, "flows", "show", "--vmi", "vm1",
                src, dst, str(proto), str(sport), str(dport), cwd=REPO, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT)
            stdout = (await asyncio.wait_for(ctl.communicate(), 60))[0].decode()
            assert ctl.returncode == 0, stdout
            assert f"info      {cls} ({cls.encode().hex()})" in stdout, stdout
            assert "offloaded yes" in stdout and f"lifetime  {LIFETIMES[cls]}s" in stdout, stdout
    summary = app.of("summary")
    assert summary and summary[0]["class_dns"] == summary[0]["class_tls"] == summary[0]["class_ssh"] == 1, summary


# ---- the controller's view of a mirrored packet: packet-in with ingress port and VMI (softswitch) ----

VN1 = VN(name="vn1", vrf=1, subnets=(parse_network("10.1.0.0/24"),))
DNS_RULE = FatFlowRule.from_dict({"protocol": "udp", "port": 53, "ignore_address": "dst",
                                  "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}})
VMI_ID = 7
PUNT_REASON_MIRROR = 2  # p4src/include/defines.p4


async def test_mirrored_packet_in_says_where_it_entered_and_its_vmi(lab: Lab) -> None:
    await lab.vmi_port(VM1, vmi_id=VMI_ID, vrf=1, mirror_new_flows=1)
    await lab.fabric_port(FABRIC, vrf=1, mirror_new_flows=1)
    await lab.fatflow(VMI_ID, VMI(name="vm1", port=VM1, vn=VN1, rules=(DNS_RULE,)))
    await lab.route("10.1.0.5/32", VM1, dst_vmi_id=VMI_ID)
    await lab.route("0.0.0.0/0", FABRIC)
    await lab.analyzer(lab.target.cpu_port)  # analyzer_port = cpu_port: copies go to the controller
    cases = [  # (in port, frame, out port, expected vmi)
        (VM1, frame("10.1.0.5", "8.8.8.8", 17, 5000, 53), FABRIC, VMI_ID),    # from-VM
        (FABRIC, frame("8.8.8.8", "10.1.0.5", 17, 53, 5000), VM1, VMI_ID),    # to-VM: the route's VMI
        (FABRIC, frame("8.8.8.8", "9.9.9.9", 17, 53, 5001), FABRIC, 0),       # transit: no VMI
    ]
    for port, data, out, vmi_id in cases:
        lab.send(port, data)
        assert await lab.recv(out) is not None
        pin = await asyncio.wait_for(lab.packet_ins.get(), 5)
        assert pin["reason"] == PUNT_REASON_MIRROR and pin["egress_port"] == 0
        assert (pin["ingress_port"], pin["vmi_id"]) == (port, vmi_id), pin
        assert pin.payload == data, "the copy is the packet as it arrived"
        await lab.next_digest()
    # a held packet's packet-in carries its VMI too
    await lab.sw.delete([finsy.P4CloneSessionEntry(dp.ANALYZER_CLONE_SESSION_ID)])
    await lab.vmi_port(2, vmi_id=8, vrf=1, miss_policy=dp.MISS_POLICY_HOLD)
    lab.send(2, frame("10.1.0.6", "8.8.8.8", 17, 5002, 53))
    pin = await asyncio.wait_for(lab.packet_ins.get(), 5)
    assert (pin["reason"], pin["ingress_port"], pin["vmi_id"], pin["egress_port"]) == \
        (dp.PUNT_REASON_FLOW_MISS_HOLD, 2, 8, FABRIC)


# ---- the classifier's decisions (pure) --------------------------------------------------------------


@pytest.mark.parametrize(("pkt", "expected"), [
    (Ether() / IP() / UDP(sport=1024, dport=53) / dns_query("example.org"), FlowClass.DNS),
    (Ether() / IPv6() / UDP(sport=53, dport=1024) / dns_query("example.org", 28), FlowClass.DNS),
    (Ether() / IP() / TCP(sport=1024, dport=53) / (b"\x00\x1d" + dns_query("example.org")), FlowClass.DNS),
    (Ether() / IP() / UDP(sport=1024, dport=53) / b"not a dns message at all", None),
    (Ether() / IP() / UDP(sport=1024, dport=5353) / dns_query("example.org"), None),   # DNS needs port 53
    (Ether() / IP() / TCP(sport=1024, dport=443) / tls_client_hello("a.example"), FlowClass.TLS),
    (Ether() / IPv6() / TCP(sport=1024, dport=8443) / tls_client_hello("b.example"), FlowClass.TLS),
    (Ether() / IP() / TCP(sport=1024, dport=443) / (b"\x17\x03\x03\x00\x10" + b"x" * 16), None),  # app data
    (Ether() / Dot1Q(vlan=7) / IP() / TCP(sport=1024, dport=22) / ssh_banner(), FlowClass.SSH),
    (Ether() / IP() / TCP(sport=1024, dport=2222) / ssh_banner("dropbear"), FlowClass.SSH),
    (Ether() / IP() / TCP(sport=1024, dport=22, flags="S"), None),                     # no payload yet
    (Ether() / IP(flags="MF") / UDP(sport=1024, dport=53) / dns_query("x.example"), None),  # a fragment
])
def test_classify(pkt: Any, expected: FlowClass | None) -> None:
    p = parse_frame(raw(pkt))
    got = classify(p) if p is not None else None
    assert (got.cls if got else None) == expected


def test_client_hello_server_name_is_reported() -> None:
    p = parse_frame(raw(Ether() / IP() / TCP(dport=443) / tls_client_hello("www.example.org")))
    assert p is not None
    c = classify(p)
    assert c is not None and c.detail == "ClientHello sni=www.example.org"

"""IPFIX export to a real collector: nfdump's ``nfcapd`` (Debian package ``nfdump``, installed here
with apt-get when missing and we are root; the test is skipped, saying why, otherwise). fatflowd runs
in this process against a real target; flows are learned from real packets, expire, and their records
are read back from nfcapd's file with ``nfdump -r FILE -o json``: keys, prefix lengths (nfdump's
src/dst mask), VRF, input interface, counters and the number of records."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ffd import Collector, config_dict, eventually, frame, running_fatflowd, send_paced, write_config
from targets import SwitchProcess

from softswitch.launch import PipelineBuild, free_port

VM1, FABRIC = 1, 3


def _nfdump_tools() -> None:
    if shutil.which("nfcapd") and shutil.which("nfdump"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("SKIPPED LOUDLY: nfcapd/nfdump not installed and cannot install them (needs root and "
                    "apt-get: apt-get install nfdump)")
    subprocess.run(["apt-get", "install", "-y", "-qq", "nfdump"], check=False, capture_output=True, timeout=600)
    if not (shutil.which("nfcapd") and shutil.which("nfdump")):
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nfdump"], check=False, capture_output=True, timeout=600)
    if not (shutil.which("nfcapd") and shutil.which("nfdump")):
        pytest.skip("SKIPPED LOUDLY: apt-get install nfdump failed")


@pytest.fixture
def nfcapd(tmp_path: Path) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    """A real nfcapd on 127.0.0.1:<port>, writing to tmp_path/nf; yields (port, dir, process)."""
    _nfdump_tools()
    port, out = free_port(), tmp_path / "nf"
    out.mkdir()
    proc = subprocess.Popen(["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", str(out), "-t", "3600"],
                            stdout=(tmp_path / "nfcapd.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        yield port, out, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _read_back(out: Path, proc: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    """Stop nfcapd (SIGTERM: it closes its current file) and read every flow back as JSON."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    files = sorted(p for p in out.iterdir() if p.name.startswith("nfcapd.") and "current" not in p.name)
    assert files, list(out.iterdir())
    flows: list[dict[str, Any]] = []
    for f in files:
        res = subprocess.run(["nfdump", "-r", str(f), "-o", "json"], capture_output=True, text=True, check=True)
        flows += [r for r in json.loads(res.stdout or "[]") if r.get("type") == "FLOW"]
    return flows


async def test_expired_flows_reach_nfcapd_with_keys_prefix_lengths_and_counters(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild,
        nfcapd: tuple[int, Path, subprocess.Popen[bytes]]) -> None:
    port, out, proc = nfcapd
    rules = [  # fat flows: DNS aggregated to the VM's /28 with the remote ignored; TCP /28 -> /28
        {"protocol": "udp", "port": 53, "ignore_address": "dst", "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}},
        {"protocol": "tcp", "port": 0, "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28},
         "dst_prefix_aggr": {"subnet": "20.0.0.0/8", "plen": 28}},
    ]
    cfg = config_dict([("sw1", switch, 10)], ff_build, rules=rules, flowtable={"lifetime": {"default": 1}})
    cfg["export"] = {"ipfix": {"collector": f"127.0.0.1:{port}", "observation_domain": 42, "template_refresh_s": 1}}
    cfg["api"] = {"listen": f"127.0.0.1:{free_port()}", "metrics_listen": None}
    write_config(tmp_path / "ff.yaml", cfg)
    async with running_fatflowd(tmp_path / "ff.yaml") as daemon:
        records = Collector(daemon)
        dns = [frame("10.0.0.3", f"8.8.{i}.8", 17, 1000 + i, 53) for i in range(3)]  # one fat flow
        tcp = [frame("10.0.0.3", f"20.0.0.{i + 1}", 6, 4000 + i, 443) for i in range(2)]  # one fat flow
        normal = [frame("10.0.0.3", "9.9.9.9", 6, 5555, 80)]  # no rule matches 9.9.9.9: a normal flow
        v6 = [frame("2001:db8::3", "2001:4860::8888", 17, 6000, 123)]  # normal IPv6 flow
        frames = dns + tcp + normal + v6
        assert await send_paced(switch, VM1, frames, FABRIC) == len(frames)
        node = daemon.nodes["sw1"]
        await eventually(lambda: node.flows.stats.setups == 4, 10, "4 flows installed")
        assert await send_paced(switch, VM1, frames, FABRIC) == len(frames)  # hits: counted on the entries
        await eventually(lambda: len(records.by_reason("idle")) == 4, 20, "4 idle expiries")
        exporter = daemon.exporter
        assert exporter is not None
        await eventually(lambda: exporter.stats.records == 4, 5, "4 records exported")
    flows = _read_back(out, proc)
    assert len(flows) == 4, flows
    got = {(f.get("src4_addr") or f.get("src6_addr"), f["src_mask"], f.get("dst4_addr") or f.get("dst6_addr"),
            f["dst_mask"], f["proto"], f["src_port"], f["dst_port"]): f for f in flows}
    want_keys = {r.key: r for r in records.by_reason("idle")}
    assert set(got) == {(str(k.src), k.src_plen, str(k.dst), k.dst_plen, k.protocol, k.sport, k.dport)
                        for k in want_keys}
    assert ("10.0.0.0", 28, "0.0.0.0", 0, 17, 0, 53) in got  # the DNS fat flow: 3 packet flows
    assert ("10.0.0.0", 28, "20.0.0.0", 28, 6, 0, 0) in got  # the TCP fat flow (port 0 rule: any port)
    assert ("10.0.0.3", 32, "9.9.9.9", 32, 6, 5555, 80) in got
    assert ("2001:db8::3", 128, "2001:4860::8888", 128, 17, 6000, 123) in got
    for k, r in want_keys.items():
        f = got[(str(k.src), k.src_plen, str(k.dst), k.dst_plen, k.protocol, k.sport, k.dport)]
        assert (f["in_packets"], f["in_bytes"]) == (r.packets, r.bytes)  # counters from the switch's entry
        assert int(f["ingress_vrf"]) == 10 and f["input_snmp"] == VM1
    by_key = {(k[0], k[4]): f for k, f in got.items()}
    # round 2 hits every entry; round 1's later packets hit too if their entry was in place already
    assert 3 <= by_key[("10.0.0.0", 17)]["in_packets"] <= 5 and 2 <= by_key[("10.0.0.0", 6)]["in_packets"] <= 3
    log = (tmp_path / "nfcapd.log").read_text()
    assert "Observation domain 42" in log and "Sequence Errors: 0" in log, log


async def test_templates_are_resent_so_a_collector_started_late_still_decodes(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild,
        nfcapd: tuple[int, Path, subprocess.Popen[bytes]]) -> None:
    # nfcapd is killed and restarted on the same port after fatflowd sent its first templates: the
    # restarted collector knows no template until the refresh (1 s), then decodes the records.
    port, out, proc = nfcapd
    cfg = config_dict([("sw1", switch, 10)], ff_build, rules=[], flowtable={"lifetime": {"default": 1}})
    cfg["export"] = {"ipfix": {"collector": f"127.0.0.1:{port}", "template_refresh_s": 1}}
    cfg["api"] = {"listen": f"127.0.0.1:{free_port()}", "metrics_listen": None}
    write_config(tmp_path / "ff.yaml", cfg)
    async with running_fatflowd(tmp_path / "ff.yaml") as daemon:
        exporter = daemon.exporter
        assert exporter is not None
        await eventually(lambda: exporter.stats.templates >= 1, 5, "the first templates")
        proc.kill()
        proc.wait()
        proc2 = subprocess.Popen(["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", str(out), "-t", "3600"],
                                 stdout=(tmp_path / "nfcapd2.log").open("wb"), stderr=subprocess.STDOUT)
        try:
            await asyncio.sleep(0.5)
            records = Collector(daemon)
            frames = [frame("10.0.0.3", f"8.8.8.{i + 1}", 17, 1000 + i, 53) for i in range(5)]
            assert await send_paced(switch, VM1, frames, FABRIC) == 5
            await eventually(lambda: len(records.by_reason("idle")) == 5, 20, "5 idle expiries")
            await eventually(lambda: exporter.stats.records == 5, 5, "5 records exported")
            flows = _read_back(out, proc2)
        finally:
            if proc2.poll() is None:
                proc2.kill()
                proc2.wait()
    assert sorted(f["dst4_addr"] for f in flows) == [f"8.8.8.{i + 1}" for i in range(5)]
    assert all(f["src_mask"] == 32 and f["dst_mask"] == 32 and f["in_packets"] == 0 for f in flows)

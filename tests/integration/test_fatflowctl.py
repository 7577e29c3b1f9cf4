"""fatflowctl as a real subprocess against fatflowd + a real target: the human tables (flow -l, vif --get,
vrmemstats views), --json, errors and exit codes (0 ok, 1 not found/failed, 2 usage/invalid, 3 cannot
connect/unauthenticated)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from apitest import TOKEN, api_daemon, free_port
from ffd import eventually, frame, send_paced, switch_flows
from targets import SwitchProcess

from softswitch.launch import PipelineBuild

VM1, FABRIC = 1, 3
DNS_KEY = "vrf 10 udp 10.0.0.0/28:0 -> 0.0.0.0/0:53"


async def ctl(address: str, *args: str, token_file: Path | None = None, timeout: float = 60) -> tuple[int, str, str]:
    """Run ``fatflowctl`` (python -m p4fatflow.ctl) without blocking the event loop fatflowd runs on."""
    cmd = [sys.executable, "-m", "p4fatflow.ctl", "--address", address]
    if token_file is not None:
        cmd += ["--token-file", str(token_file)]
    env = {k: v for k, v in os.environ.items() if k not in ("FATFLOW_TOKEN", "FATFLOW_API")}
    proc = await asyncio.create_subprocess_exec(*cmd, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def ctl_json(address: str, *args: str) -> Any:
    code, out, err = await ctl(address, "--json", *args)
    assert code == 0, err
    return json.loads(out)


async def learn_some(switch: SwitchProcess, daemon: Any) -> None:
    node = daemon.nodes["sw1"]
    frames = [frame("10.0.0.3", "8.8.8.8", 17, 1111, 53), frame("10.0.0.3", "9.9.9.9", 6, 2222, 443),
              frame("2001:db8::3", "2001:4860::8888", 17, 5, 53)]
    assert await send_paced(switch, VM1, frames, FABRIC) == 3
    await eventually(lambda: node.flows.stats.setups == 3, what="3 flows")
    assert await send_paced(switch, VM1, [frames[0]] * 2, FABRIC) == 2


async def test_flows_list_show_update_delete(tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address):
        await learn_some(switch, daemon)
        code, out, err = await ctl(address, "flows", "list", "--sort", "packets")
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].split()[:3] == ["Switch", "Flow", "key"] and "Left" in lines[0]
        assert lines[1].startswith("sw1") and DNS_KEY in lines[1]
        rest = lines[1][lines[1].index(DNS_KEY) + len(DNS_KEY):].split()  # Action Flags Pkts Bytes Age ...
        assert rest[:4] == ["F", "-", "2", str(2 * len(frame("10.0.0.3", "8.8.8.8", 17, 1111, 53)))]
        assert rest[5] == "60s" and rest[7:] == ["vm1", "from_vm"]
        assert lines[-1] == "3 of 3 flow(s); fat 1"
        data = await ctl_json(address, "flows", "list", "-6")
        assert [f["text"] for f in data["flows"]] == ["vrf 10 udp [2001:db8::3]/128:5 -> [2001:4860::8888]/128:53"]
        assert data["total"] == 1 and data["flows"][0]["key"]["src_plen"] == 128
        # update by another packet of the fat flow; show it
        code, out, err = await ctl(address, "flows", "update", "--vmi", "vm1", "10.0.0.3", "4.4.4.4", "udp", "999", "53",
                                   "--lifetime", "90", "--offload", "--info", "tag1")
        assert code == 0, err
        assert out.startswith("applied: flow      " + DNS_KEY)
        code, out, err = await ctl(address, "flows", "show", "--key", DNS_KEY)
        assert code == 0, err
        assert "offloaded yes" in out and "lifetime  90s" in out and "counters  2 packets" in out
        assert f"info      tag1 ({b'tag1'.hex()})" in out and "(fat flow)" in out
        shown = await ctl_json(address, "flows", "show", "--vrf", "10", "10.0.0.3", "8.8.8.8", "17", "1111", "53")
        assert shown["context"]["offloaded"] is True and shown["context"]["lifetime"] == 90 and shown["packets"] == 2
        ctx = {str(k): v for k, v in (await switch_flows(daemon.nodes["sw1"])).items()}[DNS_KEY][2]
        assert ctx.offloaded and ctx.lifetime == 90
        code, out, err = await ctl(address, "flows", "delete", "--vmi", "vm1", "10.0.0.3", "8.8.8.8", "udp", "1", "53")
        assert code == 0 and out.startswith(f"deleted {DNS_KEY} (2 packets")
        # not found: exit 1
        code, out, err = await ctl(address, "flows", "show", "--key", DNS_KEY)
        assert code == 1 and "is not installed on switch sw1 (NOT_FOUND)" in err and out == ""


async def test_errors_and_exit_codes(tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build, token=True) as (_daemon, address):
        tok = tmp_path / "token"
        code, _, err = await ctl(address, "stats")
        assert code == 3 and "missing or wrong bearer token" in err and err.rstrip().endswith("(UNAUTHENTICATED)")
        code, _, err = await ctl(address, "flows", "update", "10.0.0.3", "8.8.8.8", "udp", "1", "53", "--vmi", "vm1",
                                 "--lifetime", "0", token_file=tok)
        assert code == 2 and "lifetime: 0 s is out of range 1-31536000 (OUT_OF_RANGE)" in err
        code, _, err = await ctl(address, "flows", "show", "10.0.0.3", "8.8.8.x", "udp", "1", "53", "--vrf", "10",
                                 token_file=tok)
        assert code == 2 and "packet.dst: '8.8.8.x' is not an IPv4 or IPv6 address" in err
        code, _, err = await ctl(address, "flows", "show", "10.0.0.3", "8.8.8.8", "tcpp", token_file=tok)
        assert code == 2 and "PROTO: unknown protocol 'tcpp'" in err
        code, _, err = await ctl(address, "ports", "--switch", "sw", token_file=tok)
        assert code == 1 and "no switch 'sw' (did you mean 'sw1'?)" in err
        code, _, err = await ctl(address, "flows", "bogus", token_file=tok)
        assert code == 2 and "invalid choice" in err
        code, _, err = await ctl(f"127.0.0.1:{free_port()}", "stats", timeout=30)
        assert code == 3 and "cannot use fatflowd at" in err and "(UNAVAILABLE)" in err
        code, out, err = await ctl(address, "--json", "stats", token_file=tok)
        assert code == 0 and json.loads(out)["switches"][0]["switch"] == "sw1"


async def test_ports_and_stats_tables(tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address):
        await learn_some(switch, daemon)
        code, out, err = await ctl(address, "ports")
        assert code == 0, err
        vm1 = out.split("\n\n")[0].splitlines()
        assert vm1[0] == "vif sw1/1  vmi vm1 (id 1)  vn blue vrf 10  mac 02:00:00:00:01:01"
        assert vm1[1] == "    Flowtable: enabled  Miss: forward  Mirror new flows: no  Egress: route"
        assert vm1[2] == "    Addresses: 10.0.0.3 2001:db8::3"
        assert vm1[3] == "    FatFlows (Protocol/Port): 17:53, 6:*"
        assert vm1[4].split() == ["Proto:Port", "Name", "Ignore", "AggrSrc", "(subnet", "/plen)", "AggrDst", "(subnet",
                                  "/plen)"]
        assert vm1[5].split() == ["17:53", "udp", "Dip", "10.0.0.0/8", "/28", "-"]
        assert vm1[6].split() == ["6:*", "tcp", "-", "10.0.0.0/8", "/28", "20.0.0.0/8", "/28"]
        assert vm1[7].startswith("    FatFlows exclude prefix list: 10.0.0.1/32 10.0.0.2/32")
        assert "vif sw1/3  fabric  vn blue vrf 10" in out
        data = await ctl_json(address, "ports")
        assert [p["name"] for p in data["ports"]] == ["vm1", "vm2", ""]
        code, out, err = await ctl(address, "stats")
        assert code == 0, err
        assert out.startswith("switch sw1 (primary): 3/1000 flows, 2 VMIs,")
        rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("ingress.")}
        assert rows["ingress.flowtable.flow_v4"] == ["2", "65536"] and rows["ingress.flowtable.flow_v6"] == ["1", "65536"]
        assert rows["ingress.port_map.port_table"] == ["3", "-"]
        counters = dict(line.rsplit(None, 1) for line in out.splitlines() if line[:1].islower() and "  " in line
                        and not line.startswith(("ingress", "switch", "flow records")))
        assert counters["setups"] == "3" and counters["recycles"] == "0" and counters["hold drops"] == "0"


async def test_config_show_validate_apply_diff_and_flowtable(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address):
        code, shown, err = await ctl(address, "config", "show")
        assert code == 0 and yaml.safe_load(shown)["switches"][0]["name"] == "sw1"
        same = tmp_path / "same.yaml"
        same.write_text(shown)
        code, out, _ = await ctl(address, "config", "diff", str(same))
        assert code == 0 and "the same as the running configuration" in out
        doc = yaml.safe_load(shown)
        doc["switches"][0]["flowtable"]["max_flows"] = 500
        new = tmp_path / "new.yaml"
        new.write_text(yaml.safe_dump(doc, sort_keys=False))
        code, out, _ = await ctl(address, "config", "diff", str(new))
        assert code == 1 and "-    max_flows: 1000\n+    max_flows: 500" in out
        code, out, _ = await ctl(address, "config", "validate", str(new))
        assert code == 0 and out.strip() == f"{new}: valid (1 switch(es))"
        code, out, err = await ctl(address, "config", "apply", str(new))
        assert code == 0, err
        assert out.splitlines()[0].split() == ["Switch", "Result", "Inserted", "Modified", "Deleted", "Failed", "Flows",
                                               "flushed", "Entries"]
        assert out.splitlines()[1].split()[:6] == ["sw1", "applied", "0", "0", "0", "0"]
        assert daemon.cfg.switch("sw1").flowtable.max_flows == 500
        doc["switches"][0]["vmis"][0]["vn"] = "bleu"
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump(doc, sort_keys=False))
        for sub in ("validate", "apply", "diff"):
            code, out, err = await ctl(address, "config", sub, str(bad))
            assert code == 2 and "switches[0].vmis[0].vn: unknown vn 'bleu' (did you mean 'blue'?)" in err, sub
        assert daemon.cfg.switch("sw1").vmis[0].vn.name == "blue"
        code, _, err = await ctl(address, "config", "apply", str(tmp_path / "missing.yaml"))
        assert code == 2 and "cannot read" in err
        # flowtable_conf
        code, out, err = await ctl(address, "flowtable", "--port", "1", "--disable", "--max-flows", "300")
        assert code == 0, err
        assert out.splitlines()[1].split()[:4] == ["sw1", "applied", "0", "1"]  # one port entry modified
        sw = daemon.cfg.switch("sw1")
        assert sw.flowtable.max_flows == 300 and not sw.vmis[0].flowtable and sw.vmis[1].flowtable
        code, _, err = await ctl(address, "flowtable", "--disable")
        assert code == 2 and "--enable/--disable/--egress-port need --port" in err


async def test_watch_and_top(tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    async with api_daemon(tmp_path, switch, ff_build) as (daemon, address):
        watch = asyncio.create_task(ctl(address, "flows", "watch", "--count", "3"))
        watch_json = asyncio.create_task(ctl(address, "--json", "flows", "watch", "--created", "--count", "3"))
        await eventually(lambda: len(daemon.api.hub.watchers) == 2, 30, "two watchers")
        await learn_some(switch, daemon)
        code, out, err = await watch
        assert code == 0, err
        lines = out.splitlines()
        assert len(lines) == 3 and all(line.startswith("created  sw1 vrf 10") for line in lines)
        assert any(DNS_KEY in line for line in lines)
        code, out, err = await watch_json
        events = [json.loads(line) for line in out.splitlines()]
        assert [e["kind"] for e in events] == ["CREATED"] * 3 and {e["flow"]["switch"] for e in events} == {"sw1"}
        code, out, err = await ctl(address, "flows", "top", "--iterations", "2", "--interval", "0.2", "--rows", "5")
        assert code == 0, err
        # on a pipe, batch mode (as `top -b`): a table per refresh
        assert out.count("fatflow top - 3 flows") == 2 and DNS_KEY in out
        # ... printed as it goes, not only at the end: the first table arrives while top still runs
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "p4fatflow.ctl", "--address", address, "flows", "top", "--interval", "0.2",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        try:
            assert proc.stdout is not None
            line = b""
            while b"fatflow top" not in line:
                line = await asyncio.wait_for(proc.stdout.readline(), 30)
                assert line, "fatflowctl flows top ended without a table"
            assert proc.returncode is None
        finally:
            proc.kill()
            await proc.wait()
        code, out, err = await ctl(address, "--json", "flows", "top", "--iterations", "2", "--interval", "0.2")
        frames = [json.loads(line) for line in out.splitlines()]
        assert len(frames) == 2 and frames[1]["flows"] == 3 and frames[0]["top"][0]["text"] == DNS_KEY
        assert "setups_per_s" in frames[1] and "expiries_per_s" in frames[1]


def test_token_from_environment_is_used(tmp_path: Path) -> None:
    # no server needed: the client sends what it was given (FATFLOW_TOKEN) and fails to connect (exit 3)
    import subprocess

    env = dict(os.environ, FATFLOW_TOKEN=TOKEN, FATFLOW_API=f"127.0.0.1:{free_port()}")
    r = subprocess.run([sys.executable, "-m", "p4fatflow.ctl", "--timeout", "5", "stats"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3 and env["FATFLOW_API"] in r.stderr

"""fatflowd as a real process and real signals: SIGTERM stops it gracefully (exit status 0 within a
few seconds, every installed flow left on the switch, adopted by the next fatflowd), SIGHUP re-reads
the file and applies it as a diff (the switch's configuration tables become the new file's desired
state; an invalid file changes nothing and its problems are logged). Logs are JSON lines here
(``--log-format json``), so the test reads events, not prose."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import finsy
import grpc
from ffd import (
    config_dict,
    eventually,
    fatflowd_process,
    flow_entry_count,
    frame,
    running_fatflowd,
    send_paced,
    write_config,
)
from finsy.proto import p4r, p4r_grpc
from p4fatflow import desired, p4rt
from p4fatflow.profile import PipelineProfile
from p4fatflow.settings import load_config
from targets import SwitchProcess

from softswitch.launch import PipelineBuild

VM1, FABRIC = 1, 3


def events(log: Path, event: str | None = None) -> list[dict[str, Any]]:
    """fatflowd's JSON log lines, optionally only those of one event. Lines that gRPC's C core
    writes to stderr on its own (absl warnings) are not fatflowd's and are skipped; every line
    fatflowd wrote must parse."""
    out = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [e for e in out if event is None or e.get("event") == event]


async def config_entries(target: SwitchProcess, build: PipelineBuild) -> dict[Any, Any]:
    """The switch's configuration-table entries, decoded as desired.py's identities -> TableWrite."""
    schema = finsy.P4Schema(build.p4info, build.device_config)
    profile = PipelineProfile.v1model(schema, cpu_port=target.cpu_port)
    out: dict[Any, Any] = {}
    async with grpc.aio.insecure_channel(target.address) as channel:
        stub = p4r_grpc.P4RuntimeStub(channel)
        entities = [p4r.Entity(table_entry=p4r.TableEntry(table_id=t)) for t in profile.config_table_ids.values()]
        async for reply in stub.Read(p4r.ReadRequest(device_id=target.device_id, entities=entities), timeout=30):
            for e in reply.entities:
                w = p4rt.decode_table_entry(schema, e.table_entry)
                out[w.entry_id] = w
    return out


def expected_entries(config: Path, actual: dict[Any, Any]) -> dict[Any, Any]:
    cfg = load_config(config)
    known = desired.vmi_ids_from_port_entries(actual.values())
    return dict(desired.desired_state(cfg, cfg.switch("sw1"), known).entries)


async def wait_ready(log: Path, proc: subprocess.Popen[bytes]) -> None:
    def ready() -> bool:
        assert proc.poll() is None, f"fatflowd exited with {proc.returncode}:\n{log.read_text()}"
        return bool(log.exists() and events(log, "apply"))
    await eventually(ready, 30, "fatflowd primary and reconciled (event apply)")


async def test_sigterm_exits_0_within_seconds_and_leaves_every_flow_for_the_next_fatflowd(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    cfg, log = tmp_path / "ff.yaml", tmp_path / "fatflowd.log"
    write_config(cfg, config_dict([("sw1", switch, 10)], ff_build, rules=[]))
    frames = [frame("10.0.0.3", f"8.0.{i // 200}.{i % 200 + 1}", 17, 1000 + i, 53) for i in range(30)]
    with fatflowd_process(cfg, log, "--log-format", "json") as proc:
        await wait_ready(log, proc)
        assert await send_paced(switch, VM1, frames, FABRIC) == 30
        deadline = time.monotonic() + 15
        while await flow_entry_count(switch) < 30 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await flow_entry_count(switch) == 30
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(proc.wait, 10)
        took = time.monotonic() - sent
    assert rc == 0, log.read_text()
    assert took < 5.0, f"SIGTERM to exit took {took:.2f} s"
    assert await flow_entry_count(switch) == 30  # nothing was deleted on the way out
    stopped = events(log, "stopped")
    assert [(e["switch"], e["flows"]) for e in stopped] == [("sw1", 30)]
    assert events(log, "stopping") and all(e["level"] in ("INFO", "DEBUG") for e in events(log, "stopping"))
    async with running_fatflowd(cfg) as daemon:  # the next controller adopts every flow, relearns none
        node = daemon.nodes["sw1"]
        assert node.flows.stats.adopted == 30 and len(node.flows.index) == 30
        assert await send_paced(switch, VM1, frames, FABRIC) == 30
        await asyncio.sleep(0.3)
        assert node.flows.stats.digests == 0 and node.flows.stats.setups == 0


async def test_sighup_applies_the_changed_file_as_a_diff_and_an_invalid_file_changes_nothing(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    cfg, log = tmp_path / "ff.yaml", tmp_path / "fatflowd.log"
    base = config_dict([("sw1", switch, 10)], ff_build, rules=[])
    write_config(cfg, base)
    with fatflowd_process(cfg, log, "--log-format", "json") as proc:
        await wait_ready(log, proc)
        before = await config_entries(switch, ff_build)
        assert before == expected_entries(cfg, before)

        # A VMI gains a fat-flow rule and an address, and its miss policy changes; vm2 is unchanged.
        changed = config_dict([("sw1", switch, 10)], ff_build, rules=[
            {"protocol": "tcp", "port": 443, "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}}],
            vm1={"addresses": ["10.0.0.3", "10.0.0.5", "2001:db8::3"], "miss_policy": "drop"})
        write_config(cfg, changed)
        want = expected_entries(cfg, before)
        assert want != before
        proc.send_signal(signal.SIGHUP)
        reload_ev = await eventually(lambda: events(log, "reload"), 15, "the reload applied")
        after = await config_entries(switch, ff_build)
        assert after == want
        added = set(after) - set(before)
        modified = {k for k in set(after) & set(before) if after[k] != before[k]}
        assert added and modified  # rule rows and the host route inserted; vm1's port entry modified
        assert set(before) - set(after) == set()  # nothing of the old file needed deleting
        assert "inserted" in reload_ev[0]["message"] and reload_ev[0]["event"] == "reload"

        # An invalid file: refused, every problem logged, the switch untouched, the process running.
        bad = dict(changed, vns=[{"name": "blue", "vrf": 10, "subnets": ["10.0.0.0/8"],
                                  "rules": [{"protocol": "tcp", "port": 80,
                                             "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 4}}]}])
        bad["switches"][0]["vmis"][1]["vn"] = "bleu"
        cfg.write_text(json.dumps(bad))  # JSON is YAML
        proc.send_signal(signal.SIGHUP)
        refused = (await eventually(lambda: events(log, "reload_refused"), 15, "the reload refused"))[0]
        assert refused["level"] == "ERROR"
        problems = refused["problems"]
        assert any("switches[0].vmis[1].vn: unknown vn 'bleu'" in p for p in problems), problems
        assert any("vns[0].rules[0].src_prefix_aggr.plen" in p for p in problems), problems
        await asyncio.sleep(0.5)
        assert await config_entries(switch, ff_build) == want
        assert proc.poll() is None and len(events(log, "reload")) == 1

        # Back to a valid file (the original): applied as a diff again, deleting what it added.
        write_config(cfg, base)
        proc.send_signal(signal.SIGHUP)
        await eventually(lambda: len(events(log, "reload")) == 2, 15, "the second reload")
        assert await config_entries(switch, ff_build) == before
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 10) == 0

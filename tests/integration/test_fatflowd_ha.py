"""Restarts, failover and many switches: the switch holds the flow state, so a controller restart
loses nothing and writes nothing twice, a switch restart is healed without a person, a backup
controller takes over from a dead primary within 3 seconds, and one process drives several
switches. The controllers that die here are real ``fatflowd`` processes killed with SIGKILL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ffd import (
    config_dict,
    eventually,
    fatflowd_process,
    flow_entry_count,
    frame,
    running_fatflowd,
    send_paced,
    switch_flows,
    write_config,
)
from targets import SwitchProcess

from softswitch.launch import PipelineBuild

VM1, FABRIC = 1, 3


def _frames(n: int, base: int = 0) -> list[bytes]:
    return [frame("10.0.0.3", f"8.{base}.{i // 200}.{i % 200 + 1}", 17, 1000 + i, 53) for i in range(n)]


async def test_controller_restart_loses_no_flow_and_writes_no_duplicate(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    cfg = tmp_path / "ff.yaml"
    write_config(cfg, config_dict([("sw1", switch, 10)], ff_build, rules=[]))
    frames = _frames(40)
    with fatflowd_process(cfg, tmp_path / "fatflowd-1.log") as proc:
        await eventually(lambda: "configuration entries" in (tmp_path / "fatflowd-1.log").read_text(), 30,
                         "fatflowd primary with its configuration applied")
        assert await send_paced(switch, VM1, frames, FABRIC) == 40
        deadline = time.monotonic() + 15
        while await flow_entry_count(switch) < 40 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await flow_entry_count(switch) == 40
        proc.kill()  # SIGKILL: no goodbye
        proc.wait()
    async with running_fatflowd(cfg) as daemon:  # the restarted controller
        node = daemon.nodes["sw1"]
        assert node.flows.stats.adopted == 40 and len(node.flows.index) == 40
        before = await switch_flows(node)
        assert await send_paced(switch, VM1, frames, FABRIC) == 40  # every packet hits its entry
        after = await switch_flows(node)
        assert set(before) == set(after) and len(after) == 40
        assert all(after[k][0] == before[k][0] + 1 for k in after)
        assert node.flows.stats.setups == 0 and node.flows.stats.digests == 0  # nothing relearned


async def test_switch_restart_is_detected_and_healed(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    write_config(tmp_path / "ff.yaml", config_dict([("sw1", switch, 10)], ff_build, rules=[]))
    async with running_fatflowd(tmp_path / "ff.yaml") as daemon:
        node = daemon.nodes["sw1"]
        frames = _frames(10)
        assert await send_paced(switch, VM1, frames, FABRIC) == 10
        await eventually(lambda: node.flows.stats.setups == 10, what="10 flows")
        entries = node.last_apply.entries if node.last_apply else 0
        switch.kill()  # the switch crashes: pipeline, configuration and flows are gone
        await eventually(lambda: not node.ready.is_set(), what="the controller noticing")
        switch.start()
        await asyncio.wait_for(node.ready.wait(), 15)
        assert node.session.pipeline_pushes == 2 and node.last_apply is not None
        assert (node.last_apply.inserted, node.last_apply.entries) == (entries, entries)
        assert len(node.flows.index) == 0  # nothing to adopt: relearn from traffic
        assert await send_paced(switch, VM1, frames, FABRIC) == 10
        await eventually(lambda: len(node.flows.index) == 10, what="flows relearned")
        assert len(await switch_flows(node)) == 10


async def test_backup_takes_over_from_a_dead_primary_within_3_seconds(
        tmp_path: Path, switch: SwitchProcess, ff_build: PipelineBuild) -> None:
    primary_cfg, backup_cfg = tmp_path / "primary.yaml", tmp_path / "backup.yaml"
    write_config(primary_cfg, config_dict([("sw1", switch, 20)], ff_build, rules=[]))
    write_config(backup_cfg, config_dict([("sw1", switch, 10)], ff_build, rules=[]))
    log = tmp_path / "primary.log"
    with fatflowd_process(primary_cfg, log) as proc:
        await eventually(lambda: "primary (election id 20)" in log.read_text()
                         and "configuration entries" in log.read_text(), 30, "the primary, configured")
        from p4fatflow.daemon import Fatflowd
        from p4fatflow.settings import load_config

        backup = Fatflowd(load_config(backup_cfg), backup_cfg)
        backup.start()
        try:
            node = backup.nodes["sw1"]
            await eventually(lambda: node.session.state.value == "backup", 10, "the backup connected")
            frames = _frames(30)
            assert await send_paced(switch, VM1, frames, FABRIC) == 30
            deadline = time.monotonic() + 15
            while await flow_entry_count(switch) < 30 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert await flow_entry_count(switch) == 30 and len(node.flows.index) == 0  # the backup wrote nothing
            killed = time.monotonic()
            proc.kill()
            await asyncio.wait_for(node.ready.wait(), 10)
            takeover = time.monotonic() - killed
            assert takeover < 3.0, f"takeover took {takeover:.2f} s"
            assert len(node.flows.index) == 30 and node.flows.stats.adopted == 30  # no flow lost
            new = _frames(5, base=1)
            assert await send_paced(switch, VM1, new, FABRIC) == 5  # and the new primary learns
            await eventually(lambda: node.flows.stats.setups == 5, what="learning resumed")
            assert await flow_entry_count(switch) == 35
        finally:
            await backup.stop()


async def test_one_process_drives_many_switches_each_with_its_own_state(
        tmp_path: Path, switch: SwitchProcess, switch2: SwitchProcess, ff_build: PipelineBuild) -> None:
    write_config(tmp_path / "ff.yaml", config_dict([("sw1", switch, 10), ("sw2", switch2, 10)], ff_build, rules=[]))
    async with running_fatflowd(tmp_path / "ff.yaml") as daemon:
        n1, n2 = daemon.nodes["sw1"], daemon.nodes["sw2"]
        assert await send_paced(switch, VM1, _frames(6), FABRIC) == 6
        assert await send_paced(switch2, VM1, _frames(4, base=2), FABRIC) == 4
        await eventually(lambda: (n1.flows.stats.setups, n2.flows.stats.setups) == (6, 4), what="both switches")
        f1, f2 = await switch_flows(n1), await switch_flows(n2)
        assert len(f1) == 6 and len(f2) == 4 and not set(f1) & set(f2)
        assert {str(k.dst).split(".")[1] for k in f1} == {"0"} and {str(k.dst).split(".")[1] for k in f2} == {"2"}

"""Helpers for tests that run fatflowd (in-process or as a process) against a real target.

The configuration is real YAML, loaded by the real loader; the target is $FATFLOW_TARGET
(targets.py); packets go through the target's real ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from lab import frame
from p4fatflow.daemon import Fatflowd
from p4fatflow.records import FlowRecord
from p4fatflow.settings import FatflowConfig, load_config
from targets import SwitchProcess

from softswitch.launch import PipelineBuild

__all__ = ["config_dict", "write_config", "running_fatflowd", "fatflowd_process", "flow_entry_count", "Collector", "eventually",
           "send_flows", "frame"]

ROUTER_MAC = "02:00:00:00:00:aa"
VM1_MAC, VM2_MAC, UPLINK_MAC = "02:00:00:00:01:01", "02:00:00:00:01:02", "02:00:00:00:00:bb"

DEFAULT_RULES: list[dict[str, Any]] = [
    {"protocol": "udp", "port": 53, "ignore_address": "dst",
     "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28}},
    {"protocol": "tcp", "port": 0, "src_prefix_aggr": {"subnet": "10.0.0.0/8", "plen": 28},
     "dst_prefix_aggr": {"subnet": "20.0.0.0/8", "plen": 28}},
]


def config_dict(switches: list[tuple[str, SwitchProcess, int]], build: PipelineBuild, *,
                rules: list[dict[str, Any]] | None = None, vn_rules: list[dict[str, Any]] | None = None,
                flowtable: dict[str, Any] | None = None, vm1: dict[str, Any] | None = None,
                vm2: dict[str, Any] | None = None) -> dict[str, Any]:
    """A configuration with VN blue (vrf 10, 10/8 and 2001:db8::/32), vm1 on port 1, vm2 on port 2,
    uplink on port 3; ``switches`` = (name, target, election id). Keyword dicts override keys."""
    ft: dict[str, Any] = {"max_flows": 1000, "lifetime": {"default": 60},
                          "digest": {"max_list_size": 64, "max_timeout_ms": 2, "ack_timeout_ms": 1000}}
    ft.update(flowtable or {})
    sws = []
    for i, (name, target, election) in enumerate(switches):
        suffix = "" if i == 0 else f"-{name}"  # VMI names are unique in a file
        v1: dict[str, Any] = {"name": "vm1" + suffix, "port": 1, "vn": "blue", "mac": VM1_MAC,
                              "addresses": ["10.0.0.3", "2001:db8::3"],
                              "rules": DEFAULT_RULES if rules is None else rules}
        v1.update(vm1 or {})
        v2: dict[str, Any] = {"name": "vm2" + suffix, "port": 2, "vn": "blue", "mac": VM2_MAC, "addresses": ["10.0.0.4"]}
        v2.update(vm2 or {})
        sws.append({
            "name": name, "address": target.address, "device_id": target.device_id, "election_id": election,
            "p4info": str(build.p4info), "device_config": str(build.device_config), "cpu_port": target.cpu_port,
            "router_mac": ROUTER_MAC, "vmis": [v1, v2], "fabric_ports": [{"port": 3, "vn": "blue"}],
            "routes": [{"vn": "blue", "prefix": "0.0.0.0/0", "port": 3, "mac": UPLINK_MAC},
                       {"vn": "blue", "prefix": "::/0", "port": 3, "mac": UPLINK_MAC}],
        })
    return {"version": 1, "api": {"metrics_listen": None}, "flowtable": ft,
            "vns": [{"name": "blue", "vrf": 10, "subnets": ["10.0.0.0/8", "2001:db8::/32"],
                     "rules": vn_rules or []}],
            "switches": sws}


def write_config(path: Path, cfg: dict[str, Any]) -> FatflowConfig:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return load_config(path)


@contextlib.asynccontextmanager
async def running_fatflowd(config_path: Path, *, ready_timeout: float = 30.0) -> AsyncIterator[Fatflowd]:
    """fatflowd in this process (same event loop), every switch primary and reconciled."""
    daemon = Fatflowd(load_config(config_path), config_path)
    daemon.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(n.ready.wait() for n in daemon.nodes.values())), ready_timeout)
        yield daemon
    finally:
        await daemon.stop()


@contextlib.contextmanager
def fatflowd_process(config_path: Path, log_path: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """The real ``fatflowd`` command as a process (extra command-line ``args``); SIGKILLed at the
    end if it is still running."""
    log = log_path.open("ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "p4fatflow.daemon", str(config_path), "--log-level", "info", *args],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        log.close()


async def flow_entry_count(target: Any) -> int:
    """Flow entries on the switch, read by a plain P4Runtime client (no arbitration needed)."""
    import grpc
    from finsy.proto import p4r, p4r_grpc

    async with grpc.aio.insecure_channel(target.address) as channel:
        stub = p4r_grpc.P4RuntimeStub(channel)
        req = p4r.ReadRequest(device_id=target.device_id, entities=[p4r.Entity(table_entry=p4r.TableEntry())])
        n = 0
        async for reply in stub.Read(req, timeout=30):
            n += sum(1 for e in reply.entities if len(e.table_entry.match) == 8)  # the flow tables' 8-field keys
        return n


class Collector:
    """Flow records published by a daemon, kept for assertions."""

    def __init__(self, daemon: Fatflowd) -> None:
        self.records: list[FlowRecord] = []
        daemon.records.subscribe(self.records.extend)

    def by_reason(self, reason: str) -> list[FlowRecord]:
        return [r for r in self.records if r.reason.value == reason]


async def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns a truthy value (awaited if it returns an awaitable); fail with
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {value!r})")
        await asyncio.sleep(0.02)


async def send_flows(target: SwitchProcess, port: int, frames: list[bytes], *, pace: int = 32) -> None:
    """Send frames into ``port``, pacing a little (one core runs the switch too)."""
    peer = target.peers[port]
    for i, f in enumerate(frames, 1):
        for _ in range(1000):  # a full socket buffer (the switch is behind): wait, then resend
            try:
                peer.send(f)
                break
            except BlockingIOError:
                await asyncio.sleep(0.002)
        if i % pace == 0:
            for peer in target.peers.values():
                peer.drain()
            await asyncio.sleep(0.003)


async def switch_flows(node: Any) -> dict[Any, tuple[int, int, Any]]:
    """Every flow entry the switch holds: FlowKey -> (packets, bytes, FlowContext), read back over
    P4Runtime (the switch is the source of truth)."""
    from finsy.proto import p4r
    from p4fatflow.flowcodec import FlowContext

    out: dict[Any, tuple[int, int, Any]] = {}
    tables = node.codec.profile.flow_table_ids
    entities = [p4r.Entity(table_entry=p4r.TableEntry(table_id=t, counter_data=p4r.CounterData())) for t in tables]
    async for e in node.session.read(entities):
        te = e.table_entry
        k = node.codec.index_key_of_entry(te)
        out[node.codec.flow_key(k)] = (te.counter_data.packet_count, te.counter_data.byte_count,
                                       FlowContext.from_metadata(te.metadata))
    return out


async def send_paced(target: SwitchProcess, port: int, frames: list[bytes], out_port: int | None = None,
                     timeout: float = 2.0) -> int:
    """Send frames one by one; with ``out_port``, wait for each to come out there. Returns how many
    came out (or were sent, without ``out_port``)."""
    got = 0
    for f in frames:
        target.peers[port].send(f)
        if out_port is None:
            got += 1
            await asyncio.sleep(0.001)
        elif await target.peers[out_port].recv(timeout) is not None:
            got += 1
    return got

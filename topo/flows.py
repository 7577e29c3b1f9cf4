"""Read the flow tables of a lab's switch over P4Runtime (a plain gRPC Read, any role may read).

    python -m topo flows [--run-dir build/lab]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import finsy
import grpc
from finsy.proto import p4r, p4r_grpc
from p4fatflow.flowcodec import FlowCodec
from p4fatflow.key import FlowKey
from p4fatflow.profile import PipelineProfile

__all__ = ["SwitchFlow", "read_flows", "format_flows"]


@dataclass(frozen=True, slots=True)
class SwitchFlow:
    key: FlowKey
    packets: int
    bytes: int


def read_flows(address: str, device_id: int, p4info: Path, cpu_port: int = 255,
               timeout: float = 10.0) -> list[SwitchFlow]:
    """Every entry of the IPv4 and IPv6 flow tables, with its direct counters."""
    codec = FlowCodec(PipelineProfile.v1model(finsy.P4Schema(Path(p4info)), cpu_port=cpu_port))
    req = p4r.ReadRequest(device_id=device_id, entities=[
        p4r.Entity(table_entry=p4r.TableEntry(table_id=t, counter_data=p4r.CounterData()))
        for t in codec.profile.flow_table_ids])
    out: list[SwitchFlow] = []
    with grpc.insecure_channel(address) as channel:
        for resp in p4r_grpc.P4RuntimeStub(channel).Read(req, timeout=timeout):
            for e in resp.entities:
                te = e.table_entry
                k = codec.index_key_of_entry(te)
                if k is not None:
                    out.append(SwitchFlow(codec.flow_key(k), te.counter_data.packet_count,
                                          te.counter_data.byte_count))
    return sorted(out, key=lambda f: f.key.sort_key())


def format_flows(flows: list[SwitchFlow]) -> str:
    lines = [f"{len(flows)} flow(s)", f"{'flow key (vrf proto src/plen:port -> dst/plen:port)':60} {'pkts':>7} {'bytes':>9}"]
    lines += [f"{f.key!s:60} {f.packets:>7} {f.bytes:>9}" for f in flows]
    return "\n".join(lines)

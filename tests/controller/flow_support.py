"""Helpers for the unit tests of the controller's flow layer (not a test module).

- the pipeline's P4Info, compiled once per process (``schema()``, ``profile()``, ``codec()``);
- digests built as real ``p4r.DigestList`` messages (P4Data struct members in flow_digest_t order,
  canonical bytestrings);
- :class:`FakeSwitch`: a stand-in for :class:`p4fatflow.session.SwitchSession` that records every
  call and keeps a small flow table, so FlowManager can be tested without a process.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import cast

import finsy
from finsy.proto import p4d, p4r
from p4fatflow import dataplane as dp
from p4fatflow.flowcodec import FlowCodec, canon
from p4fatflow.key import FlowKey
from p4fatflow.profile import PipelineProfile
from p4fatflow.session import OK, SwitchSession, WriteError

from softswitch.launch import PipelineBuild, compile_pipeline

REPO_ROOT = Path(__file__).resolve().parents[2]
P4_MAIN = REPO_ROOT / "p4src" / "fatflow_v1model.p4"

ALREADY_EXISTS, NOT_FOUND, RESOURCE_EXHAUSTED, INVALID_ARGUMENT = 6, 5, 8, 3


@functools.cache
def build() -> PipelineBuild:
    out = Path(tempfile.mkdtemp(prefix="ffunit-p4-"))
    return compile_pipeline(out, P4_MAIN)


@functools.cache
def schema() -> finsy.P4Schema:
    return finsy.P4Schema(build().p4info)


@functools.cache
def profile() -> PipelineProfile:
    return PipelineProfile.v1model(schema())


def codec() -> FlowCodec:
    return FlowCodec(profile())


def ib(value: int) -> bytes:
    """Canonical bytestring of a non-negative int."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def key_ints(key: FlowKey) -> list[int]:
    return [key.vrf, int(key.src), int(key.dst), key.protocol, key.sport, key.dport, key.src_plen, key.dst_plen]


def key_values(key: FlowKey) -> list[bytes]:
    return [ib(i) for i in key_ints(key)]


def v4key(src: str = "10.0.0.1", dst: str = "20.0.0.1", proto: int = 6, sport: int = 1234, dport: int = 80,
          vrf: int = 1, splen: int = 32, dplen: int = 32) -> FlowKey:
    return FlowKey(vrf, IPv4Address(src), IPv4Address(dst), proto, sport, dport, splen, dplen)


def v6key(src: str = "2001:db8::1", dst: str = "2001:db8:1::2", proto: int = 17, sport: int = 5353,
          dport: int = 53, vrf: int = 2, splen: int = 128, dplen: int = 128) -> FlowKey:
    return FlowKey(vrf, IPv6Address(src), IPv6Address(dst), proto, sport, dport, splen, dplen)


def digest_data(key: FlowKey, *, vmi_id: int = 0, direction: int = dp.DIRECTION_TRANSIT, ingress_port: int = 1,
                pkt_sport: int | None = None, pkt_dport: int | None = None) -> p4d.P4Data:
    """One flow_digest_t as the switch sends it (struct of canonical bitstrings, member order of
    dataplane.FLOW_DIGEST_FIELDS)."""
    values = {
        "ip_version": key.version, "vrf": key.vrf, "src_addr": int(key.src), "dst_addr": int(key.dst),
        "protocol": key.protocol, "src_port": key.sport, "dst_port": key.dport, "src_plen": key.src_plen,
        "dst_plen": key.dst_plen, "vmi_id": vmi_id, "direction": direction, "ingress_port": ingress_port,
        "pkt_src_addr": int(key.src), "pkt_dst_addr": int(key.dst),
        "pkt_src_port": key.sport if pkt_sport is None else pkt_sport,
        "pkt_dst_port": key.dport if pkt_dport is None else pkt_dport,
    }
    data = p4d.P4Data()
    for name in dp.FLOW_DIGEST_FIELDS:
        data.struct.members.add().bitstring = ib(values[name])
    return data


_list_ids = iter(range(1, 1 << 62))


def digest_list(items: Iterable[p4d.P4Data], *, list_id: int | None = None) -> p4r.DigestList:
    msg = p4r.DigestList(digest_id=profile().digest_id, list_id=next(_list_ids) if list_id is None else list_id,
                         timestamp=time.time_ns())
    msg.data.extend(items)
    return msg


def digest_of(*keys: FlowKey, **kw: int) -> p4r.DigestList:
    return digest_list(digest_data(k, **kw) for k in keys)


# ---- a fake switch session ---------------------------------------------------------------------


@dataclass
class Stored:
    entry: p4r.TableEntry
    packets: int = 0
    nbytes: int = 0
    since_hit_ns: int | None = None


@dataclass
class FakeSwitch:
    """Records calls and keeps the flow tables by index key. ``code_of`` may force the code of an
    update (return None to let the table decide); ``capacity`` makes INSERTs beyond it
    RESOURCE_EXHAUSTED; ``fail_writes`` raises WriteError for whole Writes."""

    codec: FlowCodec
    capacity: int | None = None
    code_of: Callable[[p4r.Update], int | None] | None = None
    fail_writes: bool = False
    fail_reads: bool = False
    table: dict[bytes, Stored] = field(default_factory=dict)
    writes: list[list[p4r.Update]] = field(default_factory=list)
    reads: list[list[p4r.Entity]] = field(default_factory=list)
    acks: list[tuple[int, int]] = field(default_factory=list)
    packets_out: list[tuple[bytes, dict[int, int]]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set up, each Write waits for it

    @property
    def session(self) -> SwitchSession:
        return cast(SwitchSession, self)

    def updates(self, kind: int | None = None) -> list[p4r.Update]:
        return [u for w in self.writes for u in w if kind is None or u.type == kind]

    async def write_wire(self, updates: Sequence[bytes]) -> list[int]:
        if not updates:
            return []
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_writes:
            raise WriteError(14, "switch gone")
        req = p4r.WriteRequest.FromString(b"\x08\x01" + b"".join(updates))
        assert len(req.updates) == len(updates), "every wire update must parse as exactly one Update"
        self.writes.append(list(req.updates))
        return [self._apply(u) for u in req.updates]

    def _apply(self, u: p4r.Update) -> int:
        forced = self.code_of(u) if self.code_of is not None else None
        if forced is not None:
            return forced
        te = u.entity.table_entry
        k = self.codec.index_key_of_entry(te)
        assert k is not None, f"not a flow entry: {te}"
        if u.type == p4r.Update.INSERT:
            if k in self.table:
                return ALREADY_EXISTS
            if self.capacity is not None and len(self.table) >= self.capacity:
                return RESOURCE_EXHAUSTED
            self.table[k] = Stored(p4r.TableEntry.FromString(te.SerializeToString()))
            return OK
        if u.type == p4r.Update.MODIFY:
            if k not in self.table:
                return NOT_FOUND
            self.table[k].entry = p4r.TableEntry.FromString(te.SerializeToString())
            return OK
        if k not in self.table:
            return NOT_FOUND
        del self.table[k]
        return OK

    def _answer(self, k: bytes, since_hit: bool) -> p4r.Entity:
        s = self.table[k]
        te = p4r.TableEntry.FromString(s.entry.SerializeToString())
        te.counter_data.packet_count = s.packets
        te.counter_data.byte_count = s.nbytes
        if since_hit and s.since_hit_ns is not None:  # as real targets: only when the filter asks
            te.time_since_last_hit.elapsed_ns = s.since_hit_ns
        return p4r.Entity(table_entry=te)

    async def read(self, entities: Iterable[p4r.Entity]) -> AsyncIterator[p4r.Entity]:
        ents = list(entities)
        self.reads.append(ents)
        if self.fail_reads:
            raise WriteError(14, "switch gone")
        for e in ents:
            te = e.table_entry
            if not te.match:  # wildcard over one table
                for stored in list(self.table):
                    if self.codec.table_id_of(stored) == te.table_id:
                        yield self._answer(stored, te.HasField("time_since_last_hit"))
                continue
            k = self.codec.index_key_of_entry(te)
            if k is not None and k in self.table:
                yield self._answer(k, te.HasField("time_since_last_hit"))

    async def read_all(self, entities: Iterable[p4r.Entity]) -> list[p4r.Entity]:
        return [e async for e in self.read(entities)]

    async def read_wire(self, entities: list[bytes]) -> list[p4r.Entity]:
        """Pre-encoded ReadRequest ``entities`` fields (as SwitchSession.read_wire takes them)."""
        return await self.read_all(p4r.ReadRequest.FromString(b"".join(entities)).entities)

    def ack_digest(self, digest_id: int, list_id: int) -> None:
        self.acks.append((digest_id, list_id))

    def packet_out(self, payload: bytes, metadata: dict[int, int]) -> None:
        self.packets_out.append((payload, dict(metadata)))


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (not a timing assertion: a generous bound) until ``cond()`` holds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.002)


def key_canon(values: Sequence[bytes]) -> list[bytes]:
    return [canon(v) for v in values]

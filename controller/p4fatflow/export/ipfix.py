"""IPFIX (RFC 7011) export of flow records over UDP.

:class:`IpfixEncoder` turns flows (:class:`IpfixFlow`) into IPFIX messages: one template per
address family (ids 256 IPv4, 257 IPv6) with the fat-flow key's prefix lengths as fields, data sets
of fixed-length records, a message header with the export time, the observation domain and the
sequence number (RFC 7011 section 3.1: the number of data records sent in this domain before this
message, modulo 2^32; template records do not count). Messages stay within ``max_message`` bytes
(1400 by default: one unfragmented UDP datagram on an Ethernet path).

:class:`IpfixExporter` subscribes to the daemon's :class:`RecordBus`. The subscriber only queues
(bounded; beyond ``max_queue`` records are dropped and counted): encoding and sending run in the
exporter's own task, a chunk at a time, so expiring 100,000 flows never blocks the flow layer.
Templates go out in the first message and again every ``template_refresh_s`` seconds (UDP transport,
RFC 7011 section 8.4), alone if there are no records to carry them. With ``periodic_s``, the flows
the switches hold are read (``FlowManager.snapshot``) every ``periodic_s`` seconds and exported with
flowEndReason 2 (active timeout) and the counts since their previous export; a flow's final record
then carries only what was not exported before (octetDeltaCount/packetDeltaCount are deltas).

Fields (IANA IE id, length) of both templates: flowStartMilliseconds (152, 8), flowEndMilliseconds
(153, 8), octetDeltaCount (1, 8), packetDeltaCount (2, 8), source/destination address (8/12 IPv4,
27/28 IPv6), sourceTransportPort (7, 2), destinationTransportPort (11, 2), protocolIdentifier (4, 1),
source/destination prefix length (9/13 IPv4, 29/30 IPv6, 1 each), flowEndReason (136, 1),
ingressVRFID (234, 4), ingressInterface (10, 4). The addresses are the fat-flow key's (masked to the
prefix length; 0.0.0.0/0 for an ignored address); a port the rule ignores is 0. For ICMP the key's
ports are the echo identifier and 0, exported as they are.

flowEndReason: idle -> 1 (idle timeout), recycled -> 5 (lack of resources), flushed and deleted ->
4 (forced end), lifetime0 -> 1 (a lifetime of 0 is an idle timeout of 0), periodic -> 2 (active
timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from p4fatflow.records import FlowRecord, Reason, RecordBus

if TYPE_CHECKING:
    from p4fatflow.flows import FlowManager, FlowSnapshot

__all__ = [
    "IPFIX_VERSION", "TEMPLATE_V4", "TEMPLATE_V6", "V4_FIELDS", "V6_FIELDS", "END_REASONS", "END_ACTIVE",
    "IpfixFlow", "IpfixEncoder", "IpfixExporter", "ExporterStats", "flow_of_record", "parse_hostport",
]

log = logging.getLogger("p4fatflow.export.ipfix")

IPFIX_VERSION = 10
TEMPLATE_SET_ID = 2
TEMPLATE_V4, TEMPLATE_V6 = 256, 257
HEADER = struct.Struct("!HHIII")  # version, length, export time, sequence number, observation domain
SET_HEADER = struct.Struct("!HH")  # set id, length

# (IANA information element id, length); the order is the record's layout.
V4_FIELDS: tuple[tuple[int, int], ...] = (
    (152, 8), (153, 8), (1, 8), (2, 8), (8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (9, 1), (13, 1), (136, 1),
    (234, 4), (10, 4))
V6_FIELDS: tuple[tuple[int, int], ...] = (
    (152, 8), (153, 8), (1, 8), (2, 8), (27, 16), (28, 16), (7, 2), (11, 2), (4, 1), (29, 1), (30, 1), (136, 1),
    (234, 4), (10, 4))
_V4 = struct.Struct("!QQQQ4s4sHHBBBBII")
_V6 = struct.Struct("!QQQQ16s16sHHBBBBII")
assert _V4.size == sum(n for _, n in V4_FIELDS) and _V6.size == sum(n for _, n in V6_FIELDS)

END_IDLE, END_ACTIVE, END_OF_FLOW, END_FORCED, END_RESOURCES = 1, 2, 3, 4, 5
END_REASONS: Mapping[Reason, int] = {
    Reason.IDLE: END_IDLE, Reason.RECYCLED: END_RESOURCES, Reason.FLUSHED: END_FORCED,
    Reason.DELETED: END_FORCED, Reason.LIFETIME0: END_IDLE,
}
_U64 = (1 << 64) - 1


class IpfixFlow(NamedTuple):
    """One data record. ``src``/``dst`` are packed addresses (4 or 16 bytes: the family)."""

    src: bytes
    dst: bytes
    protocol: int
    sport: int
    dport: int
    src_plen: int
    dst_plen: int
    packets: int
    octets: int
    start_ms: int
    end_ms: int
    end_reason: int
    vrf: int
    ingress_interface: int


def flow_of_record(rec: FlowRecord, *, exported: tuple[int, int] = (0, 0)) -> IpfixFlow:
    """A flow record as an IPFIX data record; ``exported`` = (packets, bytes) sent before (periodic)."""
    k = rec.key
    ctx = rec.context
    end_ms = rec.last_seen_ns // 1_000_000
    start_ms = rec.first_seen_ns // 1_000_000 or end_ms
    return IpfixFlow(k.src.packed, k.dst.packed, k.protocol, k.sport, k.dport, k.src_plen, k.dst_plen,
                     max(0, rec.packets - exported[0]), max(0, rec.bytes - exported[1]), start_ms, end_ms,
                     END_REASONS[rec.reason], k.vrf, ctx.ingress_port if ctx else 0)


def _template_record(template_id: int, fields: Sequence[tuple[int, int]]) -> bytes:
    return struct.pack("!HH", template_id, len(fields)) + b"".join(struct.pack("!HH", ie, n) for ie, n in fields)


_TEMPLATES = _template_record(TEMPLATE_V4, V4_FIELDS) + _template_record(TEMPLATE_V6, V6_FIELDS)
TEMPLATE_SET = SET_HEADER.pack(TEMPLATE_SET_ID, SET_HEADER.size + len(_TEMPLATES)) + _TEMPLATES


class IpfixEncoder:
    """IPFIX messages of one observation domain, with its sequence number."""

    def __init__(self, observation_domain: int = 1, max_message: int = 1400) -> None:
        if max_message < HEADER.size + len(TEMPLATE_SET) + SET_HEADER.size + _V6.size:
            raise ValueError(f"max_message {max_message} cannot hold the templates and one record")
        self.observation_domain = observation_domain
        self.max_message = max_message
        self.sequence = 0  # data records sent so far (mod 2^32)

    @staticmethod
    def _pack(f: IpfixFlow) -> bytes:
        s = _V4 if len(f.src) == 4 else _V6
        return s.pack(f.start_ms & _U64, f.end_ms & _U64, min(f.octets, _U64), min(f.packets, _U64), f.src, f.dst,
                      f.sport, f.dport, f.protocol, f.src_plen, f.dst_plen, f.end_reason, f.vrf, f.ingress_interface)

    def messages(self, flows: Iterable[IpfixFlow], *, export_time: int | None = None,
                 templates: bool = False) -> list[bytes]:
        """Encode ``flows`` into as few messages as fit; the templates lead the first message when
        ``templates`` (a message of templates alone when there are no flows)."""
        now = int(time.time()) if export_time is None else export_time
        by_family: dict[int, list[bytes]] = {4: [], 16: []}
        for f in flows:
            by_family[len(f.src)].append(self._pack(f))
        out: list[bytes] = []
        body: list[bytes] = [TEMPLATE_SET] if templates else []
        size = HEADER.size + (len(TEMPLATE_SET) if templates else 0)
        count = 0

        def flush() -> None:
            nonlocal body, size, count
            out.append(HEADER.pack(IPFIX_VERSION, size, now & 0xFFFFFFFF, self.sequence, self.observation_domain)
                       + b"".join(body))
            self.sequence = (self.sequence + count) & 0xFFFFFFFF
            body, size, count = [], HEADER.size, 0

        for width, template_id in ((4, TEMPLATE_V4), (16, TEMPLATE_V6)):
            records = by_family[width]
            i = 0
            while i < len(records):
                room = (self.max_message - size - SET_HEADER.size) // len(records[i])
                if room <= 0:
                    flush()
                    continue
                chunk = records[i:i + room]
                data = b"".join(chunk)
                body.append(SET_HEADER.pack(template_id, SET_HEADER.size + len(data)) + data)
                size += SET_HEADER.size + len(data)
                count += len(chunk)
                i += len(chunk)
        if body:
            flush()
        return out


def parse_hostport(value: str) -> tuple[str, int]:
    """``127.0.0.1:4739`` / ``[::1]:4739`` / ``collector:4739`` -> (host, port)."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass(slots=True)
class ExporterStats:
    records: int = 0  # data records sent
    messages: int = 0  # IPFIX messages sent (templates-only ones included)
    templates: int = 0  # times the templates were sent
    dropped: int = 0  # records dropped: queue full, or the collector unreachable at the time
    send_errors: int = 0  # send failures (e.g. ICMP port unreachable reported on the socket)
    periodic: int = 0  # periodic (active timeout) records sent


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, stats: ExporterStats) -> None:
        self.stats = stats

    def error_received(self, exc: Exception) -> None:
        self.stats.send_errors += 1
        log.debug("IPFIX collector: %s", exc)


class IpfixExporter:
    """Flow records from a :class:`RecordBus` to an IPFIX collector over UDP (see the module docstring)."""

    CHUNK = 512  # records encoded per step of the exporter task

    def __init__(self, collector: str, bus: RecordBus, *, observation_domain: int = 1, template_refresh_s: float = 60.0,
                 periodic_s: float | None = None, max_message: int = 1400, max_queue: int = 1_000_000,
                 flows: Callable[[], Mapping[str, FlowManager]] | None = None) -> None:
        self.collector = collector
        self.address = parse_hostport(collector)
        self.bus = bus
        self.encoder = IpfixEncoder(observation_domain, max_message)
        self.template_refresh_s = template_refresh_s
        self.periodic_s = periodic_s
        self.max_queue = max_queue
        self.flows = flows
        self.stats = ExporterStats()
        self._queue: deque[FlowRecord] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._unsubscribe: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._templates_at = float("-inf")  # monotonic time the templates were last sent
        self._periodic_at = time.monotonic()
        # periodic export: (switch, index key) -> (packets, bytes) exported so far
        self._exported: dict[tuple[str, bytes], tuple[int, int]] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Subscribe and start the exporter task (in the running event loop)."""
        self._unsubscribe = self.bus.subscribe(self._on_records)
        self._task = asyncio.create_task(self._run(), name="ipfix-exporter")

    async def stop(self, timeout: float = 5.0) -> None:
        """Unsubscribe, send what is queued (within ``timeout``), close the socket."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task
            self._task = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def queued(self) -> int:
        return len(self._queue)

    # ------------------------------------------------------------------ the bus side (hot path: queue only)
    def _on_records(self, records: Sequence[FlowRecord]) -> None:
        room = self.max_queue - len(self._queue)
        if room < len(records):
            self.stats.dropped += len(records) - max(room, 0)
            records = records[:max(room, 0)]
        self._queue.extend(records)
        self._wake.set()

    # ------------------------------------------------------------------ the exporter task
    async def _open(self) -> bool:
        if self._transport is not None:
            return True
        loop = asyncio.get_running_loop()
        host, port = self.address
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            family, addr = infos[0][0], infos[0][4]
            transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self.stats),
                                                               remote_addr=(str(addr[0]), int(addr[1])), family=family)
        except OSError as exc:
            log.error("IPFIX collector %s: cannot open a socket: %s", self.collector, exc,
                      extra={"event": "ipfix_error", "collector": self.collector})
            return False
        self._transport = transport
        log.info("IPFIX export to %s (observation domain %d)", self.collector, self.encoder.observation_domain,
                 extra={"event": "ipfix_start", "collector": self.collector})
        return True

    def _send(self, flows: list[IpfixFlow], *, force_templates: bool = False) -> None:
        assert self._transport is not None
        now = time.monotonic()
        templates = force_templates or now - self._templates_at >= self.template_refresh_s
        for msg in self.encoder.messages(flows, templates=templates):
            try:
                self._transport.sendto(msg)
            except OSError:
                self.stats.send_errors += 1
            self.stats.messages += 1
        if templates:
            self._templates_at = now
            self.stats.templates += 1
        self.stats.records += len(flows)

    async def _run(self) -> None:
        while not await self._open():
            if self._stopping:
                self.stats.dropped += len(self._queue)
                self._queue.clear()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 5.0)
            self._wake.clear()
        while True:
            now = time.monotonic()
            deadlines = [self._templates_at + self.template_refresh_s]
            if self.periodic_s:
                deadlines.append(self._periodic_at + self.periodic_s)
            timeout = max(0.0, min(deadlines) - now)
            if not self._queue and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if self.periodic_s and time.monotonic() - self._periodic_at >= self.periodic_s and not self._stopping:
                self._periodic_at = time.monotonic()
                try:
                    await self._export_active()
                except Exception:
                    log.exception("IPFIX periodic export failed")
            while self._queue:
                chunk = [self._queue.popleft() for _ in range(min(self.CHUNK, len(self._queue)))]
                self._send(self._final_flows(chunk))
                await asyncio.sleep(0)  # let the flow layer run between chunks
            if time.monotonic() - self._templates_at >= self.template_refresh_s:
                self._send([], force_templates=True)
            if self._stopping and not self._queue:
                return

    def _final_flows(self, records: Sequence[FlowRecord]) -> list[IpfixFlow]:
        out: list[IpfixFlow] = []
        exported = self._exported
        for r in records:
            try:
                before = exported.pop((r.switch, r.index_key), (0, 0)) if exported else (0, 0)
                out.append(flow_of_record(r, exported=before))
            except Exception:  # an undecodable key: skip it, never stop the exporter
                self.stats.dropped += 1
                log.exception("IPFIX: cannot export %r", r)
        return out

    def _active_flows(self, switch: str, fm: FlowManager, snaps: Iterable[FlowSnapshot]) -> Iterator[IpfixFlow]:
        now_ns = time.time_ns()
        for index_key, ctx, packets, nbytes, idle_ns in snaps:
            before = self._exported.get((switch, index_key), (0, 0))
            if packets <= before[0] and nbytes <= before[1]:
                continue  # nothing new since the last export
            self._exported[(switch, index_key)] = (packets, nbytes)
            k = fm.codec.flow_key(index_key)
            end_ms = (now_ns - (idle_ns or 0)) // 1_000_000
            start_ms = (ctx.first_seen_ns // 1_000_000 if ctx is not None else 0) or end_ms
            yield IpfixFlow(k.src.packed, k.dst.packed, k.protocol, k.sport, k.dport, k.src_plen, k.dst_plen,
                            packets - before[0], nbytes - before[1], start_ms, end_ms, END_ACTIVE, k.vrf,
                            ctx.ingress_port if ctx is not None else 0)

    async def _export_active(self) -> None:
        if self.flows is None:
            return
        for switch, fm in list(self.flows().items()):
            if not fm.active:
                continue
            snaps = await fm.snapshot()
            flows = list(self._active_flows(switch, fm, snaps))
            for i in range(0, len(flows), self.CHUNK):
                self._send(flows[i:i + self.CHUNK])
                await asyncio.sleep(0)
            self.stats.periodic += len(flows)

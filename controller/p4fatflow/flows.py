"""The flow lifecycle of one switch: learning, lifetimes and aging, capacity and recycling, hold,
adoption of what the switch already has, flushes (spec section 4, seed 000).

Learning: digest lists -> de-duplication against the index and the in-flight inserts -> a policy
decision per new flow -> batched, pipelined inserts (idle timeout = lifetime, the flow's context in
the entry's metadata) -> digest acks. At most ``max_inflight`` Writes are in flight; while they are,
the next batch is being decided. The digest backlog is bounded: beyond it a digest list is acked and
dropped (counted) and its flows are learned again from their next packet. ALREADY_EXISTS (a race,
or an entry adopted from a previous controller) counts as installed.

Aging: idle-timeout notifications -> Read of those entries (context, direct counters) -> batched
deletes -> flow records (reason idle). Capacity: at ``max_flows`` the flow nearest to expiry
(flowindex.py) is recycled in the same Write that inserts the new one; RESOURCE_EXHAUSTED is
handled the same way. Lifetime 0 ("expire after each packet", seed 000's benchmark mode) installs
nothing: each packet of such a flow is a miss, a digest, a decision and a record.

This module knows no API, CLI or gRPC: it talks to a :class:`SwitchSession`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from finsy.proto import p4r

from p4fatflow import dataplane as dp
from p4fatflow.flowcodec import FlowCodec, FlowContext, canon
from p4fatflow.flowindex import FlowIndex
from p4fatflow.hold import HoldQueues, KeyResolver, parse_frame
from p4fatflow.policy import DefaultPolicy, NewFlow, Policy, PortDefaults
from p4fatflow.records import FlowRecord, Reason, RecordBus
from p4fatflow.session import OK, SwitchSession, WriteError

__all__ = ["FlowSettings", "FlowStats", "FlowManager", "FlowSnapshot"]

log = logging.getLogger("p4fatflow.flows")

_ALREADY_EXISTS, _NOT_FOUND, _RESOURCE_EXHAUSTED = 6, 5, 8
_READ_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class FlowSettings:
    max_flows: int = 65536
    batch_size: int = 1024  # flows per Write
    max_inflight: int = 4  # Writes in flight
    backlog_limit: int = 65536  # digest entries waiting to be decided
    hold_per_flow: int = 3
    hold_total: int = 4096


@dataclass(slots=True)
class FlowStats:
    digests: int = 0
    setups: int = 0
    duplicates: int = 0
    digest_drops: int = 0
    recycles: int = 0
    expiries: int = 0
    flushed: int = 0
    deleted: int = 0
    insert_errors: int = 0
    capacity_drops: int = 0
    lifetime0: int = 0
    adopted: int = 0
    malformed: int = 0  # digest entries that could not be decoded (or whose policy call failed)
    preinstalled: int = 0  # installed through the API before their first packet
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


class FlowSnapshot(NamedTuple):
    """One flow entry as read back from the switch (FlowManager.snapshot)."""

    index_key: bytes
    context: FlowContext | None
    packets: int
    bytes: int
    idle_ns: int | None  # time since the last hit, when the switch reports it


class FlowManager:
    """Flows of one switch (see the module docstring)."""

    def __init__(self, switch: str, codec: FlowCodec, settings: FlowSettings, *, policy: Policy | None = None,
                 records: RecordBus | None = None) -> None:
        self.switch = switch
        self.codec = codec
        self.settings = settings
        self.policy: Policy = policy or DefaultPolicy()
        self.records = records or RecordBus()
        self.index = FlowIndex()
        self.stats = FlowStats()
        self.hold = HoldQueues(settings.hold_per_flow, settings.hold_total)
        self.port_defaults: Mapping[int, PortDefaults] = {}
        self.fallback_defaults = PortDefaults()
        self.fingerprints: Mapping[int, int] = {}
        self.resolver = KeyResolver({})
        self.on_mirror: Callable[[bytes, int], None] | None = None
        self.observers: list[Callable[[str, bytes, FlowContext], None]] = []  # "created" events
        self._pending: dict[bytes, FlowContext] = {}
        self._digests: deque[tuple[p4r.DigestList, float]] = deque()
        self._backlog = 0
        self._idle: deque[p4r.IdleTimeoutNotification] = deque()
        self._wake_learn = asyncio.Event()
        self._wake_expire = asyncio.Event()
        self._session: SwitchSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight = asyncio.Semaphore(settings.max_inflight)
        self._commits: set[asyncio.Task[None]] = set()
        self._expiring: set[bytes] = set()
        self._pin = profile_packet_in(codec)

    # ----------------------------------------------------------------------- lifecycle
    @property
    def active(self) -> bool:
        return self._session is not None

    def __len__(self) -> int:
        return len(self.index)

    def accept(self, session: SwitchSession) -> None:
        """Queue what the switch reports from now on (the session just became primary); the
        loops start with :meth:`start`, after the configuration is applied and flows adopted.
        A digest dropped here would not be acked, and its flow not reported again before the
        ack timeout."""
        self._session = session

    async def start(self, session: SwitchSession) -> None:
        """Adopt the switch's flows, then learn and age (the session is primary)."""
        if self._tasks:
            await self.stop()
        self._session = session
        await self.adopt()
        self._tasks = [asyncio.create_task(self._learn_loop(), name=f"{self.switch}-learn"),
                       asyncio.create_task(self._expire_loop(), name=f"{self.switch}-expire")]

    async def stop(self) -> None:
        self._session = None
        for t in self._tasks:
            t.cancel()
        running = [t for t in (*self._tasks, *self._commits) if t is not asyncio.current_task()]
        if running:
            # In-flight Writes may finish (their acks are moot); a stuck one is cancelled.
            _, stuck = await asyncio.wait(running, timeout=5.0)
            for t in stuck:
                log.warning("switch %s: stopping: task %s did not finish, cancelled", self.switch, t.get_name())
                t.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=1.0)
        self._tasks = []
        self._pending.clear()
        self._digests.clear()
        self._backlog = 0
        self._idle.clear()
        self._expiring.clear()
        self.hold.clear()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every digest received so far is decided and its Write completed."""
        deadline = time.monotonic() + timeout
        while (self._digests or self._commits or self._pending) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    # ----------------------------------------------------------------------- stream input
    def digest_list(self, msg: p4r.DigestList) -> None:
        session = self._session
        if session is None:
            return
        n = len(msg.data)
        self.stats.digests += n
        if self._backlog + n > self.settings.backlog_limit:
            # Never an unbounded queue: ack so the switch reports these flows again on their
            # next packet, and count them.
            self.stats.digest_drops += n
            session.ack_digest(msg.digest_id, msg.list_id)
            return
        self._backlog += n
        self._digests.append((msg, time.monotonic()))
        self._wake_learn.set()

    def idle_timeouts(self, msg: p4r.IdleTimeoutNotification) -> None:
        if self._session is not None:
            self._idle.append(msg)
            self._wake_expire.set()

    def packet_in(self, msg: p4r.PacketIn) -> None:
        meta = {m.metadata_id: int.from_bytes(m.value, "big") for m in msg.metadata}
        ingress, egress, reason = (meta.get(self._pin[0], 0), meta.get(self._pin[1], 0), meta.get(self._pin[2], 0))
        if reason != dp.PUNT_REASON_FLOW_MISS_HOLD:
            if self.on_mirror is not None:
                self.on_mirror(msg.payload, ingress)
            return
        pkt = parse_frame(msg.payload)
        found = self.resolver.resolve(ingress, egress, pkt) if pkt is not None else None
        if found is None:
            self.hold.dropped += 1
            return
        key_obj = found[0]
        version, values = self.codec.key_values(key_obj)
        key = self.codec.index_key(version, values)
        if key in self.index:  # installed meanwhile: release it as the flow's context says
            self._spawn(self._release_installed(key, egress, msg.payload))
            return
        self.hold.add(key, msg.payload, egress)

    # ----------------------------------------------------------------------- learning
    async def _learn_loop(self) -> None:
        while True:
            await self._wake_learn.wait()
            self._wake_learn.clear()
            while self._digests:
                await self._inflight.acquire()
                try:
                    work = self._decide()
                except Exception:
                    self._inflight.release()
                    raise
                task = asyncio.create_task(self._commit(*work))
                self._commits.add(task)
                task.add_done_callback(self._commits.discard)
                await asyncio.sleep(0)  # let stream messages in between batches

    def _decide(self) -> tuple[list[bytes], list[bytes], list[bytes], list[tuple[int, int]], list[float]]:
        """Take up to batch_size digest entries; return (victims, keys, updates, acks, arrivals)."""
        codec, index, pending, policy = self.codec, self.index, self._pending, self.policy
        defaults_of, fallback, fps = self.port_defaults, self.fallback_defaults, self.fingerprints
        max_flows, limit = self.settings.max_flows, self.settings.batch_size
        victims: list[bytes] = []
        keys: list[bytes] = []
        updates: list[bytes] = []
        acks: list[tuple[int, int]] = []
        arrivals: list[float] = []
        now_ns = time.time_ns()
        taken = 0
        lifetime0: list[FlowRecord] = []
        while self._digests and taken < limit:
            msg, arrived = self._digests.popleft()
            n = len(msg.data)
            taken += n
            self._backlog -= n
            acks.append((msg.digest_id, msg.list_id))
            for item in msg.data:
                try:
                    m = item.struct.members
                    version = m[0].bitstring[-1]
                    if version != 4 and version != 6:
                        raise ValueError(f"ip_version {version}")
                    values = [m[1].bitstring, m[2].bitstring, m[3].bitstring, m[4].bitstring, m[5].bitstring,
                              m[6].bitstring, m[7].bitstring, m[8].bitstring]
                    for i, v in enumerate(values):  # targets that pad bytestrings (canonical ones pass as they are)
                        if len(v) > 1 and not v[0]:
                            values[i] = canon(v)
                    key = codec.index_key(version, values)
                    if key in index or key in pending:
                        self.stats.duplicates += 1
                        continue
                    vmi = int.from_bytes(m[9].bitstring, "big")
                    direction = m[10].bitstring[-1]
                    port = int.from_bytes(m[11].bitstring, "big")
                    d = policy.decide(NewFlow(version, values, vmi, direction, port), defaults_of.get(port, fallback))
                    ctx = FlowContext(d.drop, d.mirror, d.offloaded, d.egress_port, d.lifetime, vmi, port, direction,
                                      now_ns, fps.get(vmi, 0), d.info)
                    if d.lifetime <= 0:
                        self.stats.lifetime0 += 1
                        lifetime0.append(FlowRecord(self.switch, key, ctx, 1, 0, now_ns, Reason.LIFETIME0, codec))
                        self._release_held(key, ctx)
                        continue
                    if len(index) + len(pending) >= max_flows:
                        victim = index.pop_nearest()
                        if victim is None:  # everything is in flight: nothing to recycle yet
                            self.stats.capacity_drops += 1
                            continue
                        victims.append(victim)
                    pending[key] = ctx
                    keys.append(key)
                    updates.append(codec.insert(key, ctx))
                    arrivals.append(arrived)
                except Exception as exc:  # a malformed digest entry or a failing policy: skip it, count it
                    self.stats.malformed += 1
                    if self.stats.malformed == 1 or self.stats.malformed % 10000 == 0:
                        log.warning("switch %s: digest entry skipped (%d so far): %r", self.switch,
                                    self.stats.malformed, exc)
        self.records.publish(lifetime0)
        return victims, keys, updates, acks, arrivals

    async def _commit(self, victims: list[bytes], keys: list[bytes], updates: list[bytes],
                      acks: list[tuple[int, int]], arrivals: list[float]) -> None:
        session = self._session
        try:
            if session is None:
                return
            # Recycled flows: their records (a Read: context, counters) first, then their deletes
            # in the same Write as the inserts, ahead of them: the switch never holds more than
            # max_flows flows, not even for a moment.
            recycled = await self._records_of(session, victims, Reason.RECYCLED) if victims else []
            deletes = [self.codec.delete(v) for v in victims]
            try:
                codes = await session.write_wire(deletes + updates)
            except Exception as exc:  # WriteError, or anything unexpected: never leave keys pending
                log.warning("switch %s: flow inserts failed: %s", self.switch, exc)
                for k in keys:
                    self._pending.pop(k, None)
                    self.hold.discard(k)
                now_s = int(time.time())
                for v in victims:  # not deleted after all: keep them indexed, first to recycle
                    self.index.add(v, now_s)
                return
            self.stats.recycles += len(victims)
            self.records.publish(recycled)
            now = time.monotonic()
            now_s = int(time.time())
            retry: list[bytes] = []
            lat = self.stats.latencies
            for k, code, arrived in zip(keys, codes[len(deletes):], arrivals, strict=True):
                ctx = self._pending.pop(k, None)
                if ctx is None:
                    continue
                if code == OK or code == _ALREADY_EXISTS:
                    self.index.add(k, now_s + ctx.lifetime)
                    self.stats.setups += 1
                    lat.append(now - arrived)
                    self._release_held(k, ctx)
                    for obs in self.observers:
                        obs("created", k, ctx)
                elif code == _RESOURCE_EXHAUSTED:
                    retry.append(k)
                    self._pending[k] = ctx
                else:
                    self.stats.insert_errors += 1
                    self.hold.discard(k)
            if retry:
                await self._retry_full(session, retry)
            for digest_id, list_id in acks:
                session.ack_digest(digest_id, list_id)
        finally:
            self._inflight.release()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._commits.add(task)
        task.add_done_callback(self._commits.discard)

    async def _retry_full(self, session: SwitchSession, keys: list[bytes]) -> None:
        """The table was full before max_flows: recycle one flow per insert and try once more."""
        victims = [v for v in (self.index.pop_nearest() for _ in keys) if v is not None]
        recycled = await self._records_of(session, victims, Reason.RECYCLED)
        ctxs = [self._pending.pop(k) for k in keys]
        try:
            codes = await session.write_wire([self.codec.delete(v) for v in victims] +
                                             [self.codec.insert(k, c) for k, c in zip(keys, ctxs, strict=True)])
        except WriteError:
            return
        self.stats.recycles += len(victims)
        self.records.publish(recycled)
        now_s = int(time.time())
        for k, c, code in zip(keys, ctxs, codes[len(victims):], strict=True):
            if code in (OK, _ALREADY_EXISTS):
                self.index.add(k, now_s + c.lifetime)
                self.stats.setups += 1
                self._release_held(k, c)
            else:
                self.stats.insert_errors += 1
                self.hold.discard(k)

    # ----------------------------------------------------------------------- hold
    def _release_held(self, key: bytes, ctx: FlowContext) -> None:
        held = self.hold.take(key)
        if held:
            self._release([(h.egress_port, h.payload) for h in held], ctx)

    async def _release_installed(self, key: bytes, egress: int, payload: bytes) -> None:
        got = await self.context_of(key)
        if got is None or got[0] is None:
            self.hold.dropped += 1  # gone meanwhile (expired, recycled): its next packet is a new miss
            return
        self._release([(egress, payload)], got[0])

    def _release(self, packets: Iterable[tuple[int, bytes]], ctx: FlowContext | None) -> None:
        session = self._session
        if session is None:
            return
        out_id = self._pin[3]
        for egress, payload in packets:
            if ctx is not None and ctx.verdict_drop:
                self.hold.dropped_by_verdict += 1
                continue
            port = ctx.egress_port if ctx is not None and ctx.egress_port else egress
            session.packet_out(payload, {out_id: port})
            self.hold.released += 1

    # ----------------------------------------------------------------------- aging
    async def _expire_loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # races with its timeout, and this loop would then never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake_expire.wait()
            self._wake_expire.clear()
            self.hold.expire()
            while self._idle:
                keys: dict[bytes, None] = {}
                expiring, index = self._expiring, self.index
                while self._idle and len(keys) < 2 * _READ_CHUNK:
                    for te in self._idle.popleft().table_entry:
                        k = self.codec.index_key_of_entry(te, known=index)
                        if k is not None and k in index and k not in expiring:
                            keys[k] = None
                if keys:
                    # Up to max_inflight batches (Read + delete) overlap; a key being expired is
                    # not taken again if the switch reports it once more meanwhile.
                    batch = list(keys)
                    expiring.update(batch)
                    await self._inflight.acquire()
                    self._spawn(self._expire_batch(batch))

    async def _expire_batch(self, keys: list[bytes]) -> None:
        try:
            await self.remove(keys, Reason.IDLE, check_idle=True)
        except WriteError as exc:
            log.warning("switch %s: expiring flows failed: %s", self.switch, exc)
        finally:
            self._expiring.difference_update(keys)
            self._inflight.release()

    async def remove(self, keys: Sequence[bytes], reason: Reason, *, check_idle: bool = False) -> int:
        """Delete flows, publish their records; returns how many were deleted. With
        ``check_idle``, a flow hit since it was reported idle is kept."""
        session = self._session
        if session is None or not keys:
            return 0
        present: set[bytes] = set()
        records = await self._records_of(session, keys, reason, check_idle=check_idle, present=present)
        gone = [r.index_key for r in records]
        codes = await session.write_wire([self.codec.delete(k) for k in gone])
        done = 0
        for k, code in zip(gone, codes, strict=True):
            if code in (OK, _NOT_FOUND):
                self.index.remove(k)
                done += 1
        for k in set(keys) - present:
            self.index.remove(k)  # not on the switch any more: forget it
        records = [r for r in records if r.index_key not in self.index]
        self.records.publish(records)
        counter = {Reason.IDLE: "expiries", Reason.FLUSHED: "flushed", Reason.DELETED: "deleted"}.get(reason)
        if counter:
            setattr(self.stats, counter, getattr(self.stats, counter) + len(records))
        return done

    async def _records_of(self, session: SwitchSession, keys: Sequence[bytes], reason: Reason, *,
                          check_idle: bool = False, present: set[bytes] | None = None) -> list[FlowRecord]:
        """Read the entries of ``keys`` (context + counters) and make their records; ``present``
        collects the keys the switch still has (also those kept as active)."""
        out: list[FlowRecord] = []
        now_ns = time.time_ns()
        for i in range(0, len(keys), _READ_CHUNK):
            entities = [self.codec.read_wire(k, idle=check_idle) for k in keys[i:i + _READ_CHUNK]]
            try:
                entries = await session.read_wire(entities)
            except WriteError:
                entries = []
            wanted = set(keys[i:i + _READ_CHUNK])
            for e in entries:
                te = e.table_entry
                k = self.codec.index_key_of_entry(te, known=wanted)
                if k is None:
                    continue
                if present is not None:
                    present.add(k)
                ctx = FlowContext.from_metadata(te.metadata)
                if check_idle and te.HasField("time_since_last_hit") and ctx is not None:
                    if te.time_since_last_hit.elapsed_ns < ctx.lifetime * 1_000_000_000 // 2:
                        continue  # hit again since the notification: still active
                cd = te.counter_data
                out.append(FlowRecord(self.switch, k, ctx, cd.packet_count, cd.byte_count, now_ns, reason, self.codec))
        return out

    # ----------------------------------------------------------------------- enrichment
    async def context_of(self, key: bytes) -> tuple[FlowContext | None, int, int] | None:
        """(context, packets, bytes) of an installed flow read from the switch; None if absent."""
        return (await self.contexts([key])).get(key)

    async def update(self, key: bytes, **changes: object) -> FlowContext | None:
        """Change an installed flow's context (lifetime, offloaded, mirror, verdict_drop,
        egress_port, info): one MODIFY of its entry. None if the flow is not installed."""
        return (await self.update_many([(key, changes)]))[0]

    # ----------------------------------------------------------------------- API support
    # Batched forms of context_of/update, pre-install and a snapshot with counters, for the
    # fatflowd API (p4fatflow.api); this layer still knows nothing of who asks.
    def _entry_context(self, key: bytes, te: p4r.TableEntry) -> FlowContext | None:
        egress = 0
        if te.action.action.action_id == self.codec.forward_id(key) and len(te.action.action.params) > 2:
            egress = int.from_bytes(te.action.action.params[2].value, "big")
        return FlowContext.from_metadata(te.metadata, egress_port=egress)

    async def contexts(self, keys: Sequence[bytes]) -> dict[bytes, tuple[FlowContext | None, int, int]]:
        """context_of for many flows (one Read per 1000); flows not on the switch are left out."""
        session = self._session
        out: dict[bytes, tuple[FlowContext | None, int, int]] = {}
        if session is None:
            return out
        for i in range(0, len(keys), _READ_CHUNK):
            for e in await session.read_all([self.codec.read_entity(k) for k in keys[i:i + _READ_CHUNK]]):
                te = e.table_entry
                k = self.codec.index_key_of_entry(te)
                if k is not None:
                    out[k] = (self._entry_context(k, te), te.counter_data.packet_count, te.counter_data.byte_count)
        return out

    async def update_many(self, changes: Sequence[tuple[bytes, Mapping[str, object]]], *,
                          known: Mapping[bytes, FlowContext] | None = None) -> list[FlowContext | None]:
        """update() for many flows: one Read of the contexts not in ``known`` (the caller's copy of
        contexts this layer reported) and one Write of MODIFYs. None for a flow not installed (or
        whose MODIFY failed), in order."""
        for _, ch in changes:
            lifetime = ch.get("lifetime")
            if lifetime is not None and (isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime <= 0):
                # idle_timeout_ns 0 means "never expires" to P4Runtime; lifetime 0 flows are never
                # installed, so an installed flow's lifetime stays >= 1 (delete it to end it now).
                raise ValueError(f"lifetime of an installed flow must be an integer >= 1 s, got {lifetime!r}")
        session = self._session
        if session is None or not changes:
            return [None] * len(changes)
        known = known or {}
        missing = [k for k, _ in changes if k not in known]
        read = await self.contexts(missing) if missing else {}
        news: list[FlowContext | None] = []
        wires: list[bytes] = []
        for k, ch in changes:
            old: FlowContext | None = known.get(k)
            if old is None:
                got = read.get(k)
                old = got[0] if got is not None else None
            if old is None:
                news.append(None)
                continue
            new = dataclasses.replace(old, **ch)  # type: ignore[arg-type]
            news.append(new)
            wires.append(self.codec.insert(k, new, modify=True))
        codes = iter(await session.write_wire(wires)) if wires else iter(())
        now_s = int(time.time())
        out: list[FlowContext | None] = []
        for (k, ch), done in zip(changes, news, strict=True):
            if done is None:
                out.append(None)
                continue
            if next(codes) != OK:
                out.append(None)
                continue
            if "lifetime" in ch:
                self.index.add(k, now_s + done.lifetime)
            for obs in self.observers:
                obs("updated", k, done)
            out.append(done)
        return out

    async def preinstall(self, key: bytes, ctx: FlowContext) -> bool:
        """Install a flow before its first packet with the given context (recycling the flow nearest
        to expiry at max_flows); observers see it "created". False if the switch refused it."""
        return (await self.preinstall_many([(key, ctx)]))[0]

    async def preinstall_many(self, items: Sequence[tuple[bytes, FlowContext]]) -> list[bool]:
        """:meth:`preinstall` for many flows: flows already installed get their new context in one
        MODIFY Write, new ones are inserted in one Write, preceded by the deletes of the flows
        recycled to make room for them (never above max_flows)."""
        session = self._session
        if session is None:
            return [False] * len(items)
        out: list[bool] = [False] * len(items)
        first: dict[bytes, int] = {}
        again: list[int] = []  # a key given twice: the later one is an update of the first
        installed: list[int] = []
        new: list[int] = []
        for i, (key, _) in enumerate(items):
            if key in first:
                again.append(i)
                continue
            first[key] = i
            (installed if key in self.index else new).append(i)
        if installed:
            got = await self.update_many([(items[i][0], dataclasses.asdict(items[i][1])) for i in installed])
            for i, ctx in zip(installed, got, strict=True):
                out[i] = ctx is not None
        if new:
            victims: list[bytes] = []
            room = self.settings.max_flows - len(self.index) - len(self._pending)
            while len(victims) < len(new) - room:
                victim = self.index.pop_nearest()
                if victim is None:
                    break
                victims.append(victim)
            recycled = await self._records_of(session, victims, Reason.RECYCLED) if victims else []
            codes = await session.write_wire([*(self.codec.delete(v) for v in victims),
                                              *(self.codec.insert(items[i][0], items[i][1]) for i in new)])
            self.stats.recycles += len(victims)
            self.records.publish(recycled)
            now_s = int(time.time())
            for i, code in zip(new, codes[len(victims):], strict=True):
                key, ctx = items[i]
                if code not in (OK, _ALREADY_EXISTS):
                    self.stats.insert_errors += 1
                    continue
                self.index.add(key, now_s + ctx.lifetime)
                self.stats.setups += 1
                self.stats.preinstalled += 1
                for obs in self.observers:
                    obs("created", key, ctx)
                out[i] = True
        for i in again:
            key, ctx = items[i]
            out[i] = key in self.index and await self.update_many([(key, dataclasses.asdict(ctx))]) != [None]
        return out

    async def snapshot(self, *, timeout: float | None = None) -> list[FlowSnapshot]:
        """Every flow entry the switch holds, with its context, counters and idle time (one Read,
        bounded by ``timeout``; WriteError if the switch does not answer)."""
        session = self._session
        if session is None:
            return []
        entities = [p4r.Entity(table_entry=p4r.TableEntry(table_id=t, counter_data=p4r.CounterData(),
                                                          time_since_last_hit=p4r.TableEntry.IdleTimeout()))
                    for t in self.codec.profile.flow_table_ids]
        out: list[FlowSnapshot] = []
        async for e in session.read(entities, timeout=timeout):
            te = e.table_entry
            k = self.codec.index_key_of_entry(te)
            if k is None:
                continue
            idle = te.time_since_last_hit.elapsed_ns if te.HasField("time_since_last_hit") else None
            out.append(FlowSnapshot(k, self._entry_context(k, te), te.counter_data.packet_count,
                                    te.counter_data.byte_count, idle))
        return out

    # ----------------------------------------------------------------------- adoption, flushes
    async def adopt(self) -> tuple[int, int]:
        """Rebuild the index from the switch's flow tables (a restarted controller loses no flow and
        writes no duplicate); flush flows whose VMI rules changed since they were installed.
        Returns (adopted, flushed)."""
        session = self._session
        assert session is not None
        self.index.clear()
        stale: list[bytes] = []
        now_s = int(time.time())
        entities = [p4r.Entity(table_entry=p4r.TableEntry(table_id=t)) for t in self.codec.profile.flow_table_ids]
        async for e in session.read(entities):
            te = e.table_entry
            k = self.codec.index_key_of_entry(te)
            if k is None:
                continue
            ctx = FlowContext.from_metadata(te.metadata)
            lifetime = ctx.lifetime if ctx else te.idle_timeout_ns // 1_000_000_000
            self.index.add(k, now_s + lifetime)
            if ctx is not None and self.fingerprints and ctx.fingerprint != self.fingerprints.get(ctx.vmi_id, 0):
                stale.append(k)
        self.stats.adopted = len(self.index) - len(stale)
        if stale:
            await self.remove(stale, Reason.FLUSHED)
        return len(self.index), len(stale)

    async def flush_stale(self) -> int:
        """After a configuration change: flush flows whose key may no longer follow from the rules
        (their VMI's fingerprint changed). Returns the number flushed."""
        session = self._session
        if session is None:
            return 0
        stale: list[bytes] = []
        entities = [p4r.Entity(table_entry=p4r.TableEntry(table_id=t)) for t in self.codec.profile.flow_table_ids]
        async for e in session.read(entities):
            te = e.table_entry
            ctx = FlowContext.from_metadata(te.metadata)
            if ctx is not None and ctx.fingerprint != self.fingerprints.get(ctx.vmi_id, 0):
                k = self.codec.index_key_of_entry(te)
                if k is not None:
                    stale.append(k)
        if stale:
            await self.remove(stale, Reason.FLUSHED)
        return len(stale)


def profile_packet_in(codec: FlowCodec) -> tuple[int, int, int, int]:
    """(ingress_port, egress_port, reason) packet-in ids and the packet-out egress_port id."""
    pin, pout = codec.profile.packet_in_ids, codec.profile.packet_out_ids
    return pin["ingress_port"], pin["egress_port"], pin["reason"], pout["egress_port"]

"""The API's view of the flow layer of every switch (see the module docstring of
:mod:`p4fatflow.api.server`): the contexts this controller wrote, the updates waiting for a flow
not learned yet, and the watchers of WatchFlows with their bounded queues."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from p4fatflow.api.errors import ApiError
from p4fatflow.api.pb import pb
from p4fatflow.flowcodec import FlowContext
from p4fatflow.records import FlowRecord

if TYPE_CHECKING:
    from p4fatflow.daemon import Fatflowd

__all__ = ["CREATED", "EXPIRED", "UPDATED", "FlowHub", "Watcher"]

log = logging.getLogger("p4fatflow.api")

EXPIRED = pb.FlowEvent.EXPIRED
CREATED, UPDATED = pb.FlowEvent.CREATED, pb.FlowEvent.UPDATED


class Watcher:
    __slots__ = ("family", "kinds", "limit", "queue", "skipped", "switch", "vmi_id", "wake")

    def __init__(self, switch: str, vmi_id: int | None, family: int, kinds: frozenset[int], limit: int) -> None:
        self.switch = switch
        self.vmi_id = vmi_id
        self.family = family
        self.kinds = kinds
        self.limit = limit
        self.queue: deque[tuple[Any, ...]] = deque()
        self.skipped = 0
        self.wake = asyncio.Event()

    def wants(self, kind: int, switch: str, key: bytes, ctx: FlowContext | None) -> bool:
        if kind not in self.kinds or (self.switch and switch != self.switch):
            return False
        if self.family and key[0] != self.family:
            return False
        return self.vmi_id is None or (ctx is not None and ctx.vmi_id == self.vmi_id)

    def push(self, event: tuple[Any, ...]) -> None:
        if len(self.queue) >= self.limit:
            self.skipped += 1  # never block the flow layer: this watcher loses the event
            return
        self.queue.append(event)
        self.wake.set()


@dataclasses.dataclass(slots=True)
class _Pending:
    changes: dict[str, object]
    deadline: float


class FlowHub:
    """The API's view of the flow layer of every switch (see the module docstring)."""

    def __init__(self, daemon: Fatflowd, *, pending_s: float = 10.0, max_pending: int = 65536) -> None:
        self.daemon = daemon
        self.pending_s = pending_s
        self.max_pending = max_pending
        self.contexts: dict[str, dict[bytes, FlowContext]] = {}
        self.pending: dict[str, dict[bytes, _Pending]] = {}
        self.watchers: set[Watcher] = set()
        self.pending_applied = 0
        self.pending_expired = 0
        self._hooked: dict[str, Any] = {}  # switch -> the FlowManager hooked
        self._observers: dict[str, Callable[[str, bytes, FlowContext], None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe = daemon.records.subscribe(self._records)

    def close(self) -> None:
        self._unsubscribe()
        for name in list(self._hooked):
            self._unhook(name)
        for t in self._tasks:
            t.cancel()

    # -- hooks
    def sync(self) -> None:
        """Hook the flow managers of the daemon's current nodes (switches come and go with configs)."""
        nodes = self.daemon.nodes
        for name in list(self._hooked):
            node = nodes.get(name)
            if node is None or node.flows is not self._hooked[name]:
                self._unhook(name)
        for name, node in nodes.items():
            if name not in self._hooked:
                obs = self._observer(name)
                node.flows.observers.append(obs)
                self._hooked[name] = node.flows
                self._observers[name] = obs
                self.contexts.setdefault(name, {})
                self.pending.setdefault(name, {})

    def _unhook(self, name: str) -> None:
        flows = self._hooked.pop(name)
        obs = self._observers.pop(name, None)
        if obs is not None and obs in flows.observers:
            flows.observers.remove(obs)
        self.contexts.pop(name, None)
        self.pending.pop(name, None)

    def _observer(self, switch: str) -> Callable[[str, bytes, FlowContext], None]:
        contexts = self.contexts.setdefault(switch, {})
        pending = self.pending.setdefault(switch, {})

        def observe(event: str, key: bytes, ctx: FlowContext) -> None:
            contexts[key] = ctx
            if event == "created" and pending:
                p = pending.pop(key, None)
                if p is not None and p.deadline >= time.monotonic():
                    self._spawn(self._apply_pending(switch, key, ctx, p))
            if self.watchers:
                kind = CREATED if event == "created" else UPDATED
                ev = (kind, switch, key, ctx, 0, 0, "", time.time_ns())
                for w in self.watchers:
                    if w.wants(kind, switch, key, ctx):
                        w.push(ev)

        return observe

    def _records(self, records: Sequence[FlowRecord]) -> None:
        watchers = self.watchers
        for r in records:
            ctxs = self.contexts.get(r.switch)
            if ctxs is not None:
                ctxs.pop(r.index_key, None)
            if watchers:
                ev = (EXPIRED, r.switch, r.index_key, r.context, r.packets, r.bytes, r.reason.value, r.end_ns)
                for w in watchers:
                    if w.wants(EXPIRED, r.switch, r.index_key, r.context):
                        w.push(ev)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply_pending(self, switch: str, key: bytes, ctx: FlowContext, p: _Pending) -> None:
        node = self.daemon.nodes.get(switch)
        if node is None:
            return
        try:
            got = await node.flows.update_many([(key, p.changes)], known={key: ctx})
            if got[0] is not None:
                self.pending_applied += 1
        except Exception:
            log.exception("switch %s: a pending update could not be applied", switch)

    def expire_pending(self) -> int:
        now = time.monotonic()
        n = 0
        for pend in self.pending.values():
            old = [k for k, p in pend.items() if p.deadline < now]
            for k in old:
                del pend[k]
            n += len(old)
        self.pending_expired += n
        return n

    def add_pending(self, switch: str, key: bytes, changes: dict[str, object], ttl_s: float) -> None:
        pend = self.pending.setdefault(switch, {})
        if key not in pend and sum(len(p) for p in self.pending.values()) >= self.max_pending:
            self.expire_pending()
            if sum(len(p) for p in self.pending.values()) >= self.max_pending:
                raise ApiError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                               f"{self.max_pending} updates already wait for flows to be learned")
        old = pend.get(key)
        merged = {**old.changes, **changes} if old is not None else dict(changes)
        pend[key] = _Pending(merged, time.monotonic() + ttl_s)

    def watch(self, switch: str, vmi_id: int | None, family: int, kinds: frozenset[int], limit: int) -> Watcher:
        w = Watcher(switch, vmi_id, family, kinds, limit)
        self.watchers.add(w)
        return w

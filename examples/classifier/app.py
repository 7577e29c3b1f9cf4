"""The classifier application: mirrored first packets in, UpdateFlow out.

Seed 000's port-mirroring test made real. fatflowd installs the new flows of a port with
``mirror_new_flows`` with mirror=1, so the switch copies their packets to the analyzer port until
someone marks them offloaded. This application is that someone: it reads the copies from the
analyzer port (:mod:`examples.classifier.sources`), classifies each conversation by port and
payload (:mod:`examples.classifier.classify`: DNS, TLS, SSH) and calls ``UpdateFlows`` on
fatflowd's API with ``offloaded = true`` (the copies stop), a lifetime per class and an ``info``
tag (``b"dns"``, ``b"tls"``, ``b"ssh"``), which ``fatflowctl flows show`` and ``ListFlows`` show.

A conversation whose mirrored packets say nothing (a TCP SYN, an unknown payload) is watched
until ``give_up`` copies, then tagged ``other``. Updates are batched: whatever was classified
while the previous ``UpdateFlows`` call was in flight goes into the next one.

The VMI of a frame: the source MAC of a from-VM frame is its VMI's ``mac`` (``ListPorts``);
otherwise the server resolves the packet by address (docs/api.md, "Addressing a flow").
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from p4fatflow.api.client import AsyncFatflowClient, FatflowError, Unavailable, update_request

from examples.classifier.classify import Classification, FlowClass, Parsed, classify, parse_frame
from examples.classifier.sources import FrameSource

__all__ = ["Options", "ClassifierApp", "DEFAULT_LIFETIMES"]

#: seconds a classified flow lives without traffic: DNS exchanges are short, SSH sessions idle long
DEFAULT_LIFETIMES: dict[FlowClass, int] = {FlowClass.DNS: 30, FlowClass.TLS: 600, FlowClass.SSH: 3600,
                                           FlowClass.OTHER: 120}

Conversation = tuple[tuple[str, int], tuple[str, int], int]
Emit = Callable[[dict[str, Any]], None]


@dataclass
class Options:
    lifetimes: dict[FlowClass, int] = field(default_factory=lambda: dict(DEFAULT_LIFETIMES))
    give_up: int = 6            # mirrored copies of an unclassified conversation before "other"
    max_batch: int = 512        # updates per UpdateFlows call
    switch: str = ""            # the switch the analyzer port belongs to ("" = fatflowd's only one)
    rechecks: int = 3           # a PENDING update is sent again up to this many times,
    recheck_s: float = 0.5      # after 0.5 s, 1 s, 1.5 s


@dataclass
class _Conv:
    copies: int = 0
    cls: FlowClass | None = None
    requested: float = 0.0
    rechecks: int = 0


class ClassifierApp:
    def __init__(self, source: FrameSource, client: AsyncFatflowClient, opts: Options, emit: Emit) -> None:
        self.source = source
        self.client = client
        self.opts = opts
        self.emit = emit
        self.vmi_by_mac: dict[bytes, tuple[str, str]] = {}
        self.convs: dict[Conversation, _Conv] = {}
        self.queue: asyncio.Queue[tuple[Parsed, Classification]] = asyncio.Queue()
        self.stats: Counter[str] = Counter()

    async def load_ports(self) -> None:
        """VMI MACs -> (switch, VMI name), from ListPorts (fatflowd may still be starting: 15 s)."""
        deadline = time.monotonic() + 15
        while True:
            try:
                ports = await self.client.list_ports(self.opts.switch)
                break
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        for p in ports.ports:
            if p.kind == "vmi" and p.mac:
                self.vmi_by_mac[bytes.fromhex(p.mac.replace(":", ""))] = (p.switch, p.name)

    def on_frame(self, frame: bytes) -> None:
        self.stats["frames"] += 1
        p = parse_frame(frame)
        if p is None:
            self.stats["not_ip_tcp_udp"] += 1
            return
        conv = self.convs.setdefault(p.conversation(), _Conv())
        conv.copies += 1
        self.emit({"event": "copy", "packet": list(p.five_tuple), "copies": conv.copies,
                   "payload": len(p.payload)})
        if conv.cls is not None:
            # a copy sent before the offload reached the switch, or the update failed: retry late ones
            self.stats["copies_after_classification"] += 1
            if conv.copies > self.opts.give_up and time.monotonic() - conv.requested > 2.0:
                self._request(p, conv, Classification(conv.cls, "still mirrored: update again"))
            return
        c = classify(p)
        if c is None and conv.copies >= self.opts.give_up:
            c = Classification(FlowClass.OTHER, f"no known payload in {conv.copies} copies")
        if c is not None:
            self._request(p, conv, c)

    def _request(self, p: Parsed, conv: _Conv, c: Classification) -> None:
        conv.cls = c.cls
        conv.requested = time.monotonic()
        self.stats[f"class_{c.cls.value}"] += 1
        self.queue.put_nowait((p, c))

    def _update(self, p: Parsed, c: Classification) -> Any:
        switch, vmi = self.vmi_by_mac.get(p.src_mac, (self.opts.switch, ""))
        return update_request(switch=switch, vmi=vmi, packet=p.five_tuple, offloaded=True,
                              lifetime=self.opts.lifetimes[c.cls], info=c.cls.tag)

    async def updater(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < self.opts.max_batch:
                batch.append(self.queue.get_nowait())
            try:
                reply = await self.client.update_flows([self._update(p, c) for p, c in batch])
                results = list(reply.results)
            except FatflowError as e:
                self.stats["update_errors"] += len(batch)
                self.emit({"event": "error", "error": str(e), "updates": len(batch)})
                for p, _ in batch:
                    self.convs.pop(p.conversation(), None)  # classify again from the next copy
                continue
            self.stats["update_calls"] += 1
            for (p, c), r in zip(batch, results, strict=True):
                status = type(r).Status.Name(r.status)
                self.stats[f"update_{status.lower()}"] += 1
                if status == "FAILED":
                    self.convs.pop(p.conversation(), None)
                elif status == "PENDING":
                    # fatflowd keeps it until the flow is learned; ask again a little later in case
                    # the flow was being installed just then (the update is idempotent)
                    conv = self.convs.get(p.conversation())
                    if conv is not None and conv.rechecks < self.opts.rechecks:
                        conv.rechecks += 1
                        asyncio.get_running_loop().call_later(self.opts.recheck_s * conv.rechecks,
                                                              self.queue.put_nowait, (p, c))
                self.emit({"event": "classified", "packet": list(p.five_tuple), "class": c.cls.value,
                           "detail": c.detail, "status": status, "flow": r.flow.text,
                           "lifetime": self.opts.lifetimes[c.cls], "message": r.message})

    async def run(self, stop: asyncio.Event) -> None:
        await self.load_ports()
        self.emit({"event": "ready", "source": self.source.name, "vmis": len(self.vmi_by_mac)})
        updater = asyncio.create_task(self.updater())
        stopper = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                recv = asyncio.ensure_future(self.source.recv())
                done, _ = await asyncio.wait({recv, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if recv not in done:
                    recv.cancel()
                    break
                self.on_frame(recv.result())
            # let the last classifications reach fatflowd
            deadline = time.monotonic() + 2.0
            while not self.queue.empty() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            updater.cancel()
            stopper.cancel()
            self.emit({"event": "summary", **dict(sorted(self.stats.items())),
                       "conversations": len(self.convs)})


def human(ev: dict[str, Any]) -> str | None:
    """One line per event for a terminal (copies are left out: there can be many)."""
    kind = ev["event"]
    if kind == "ready":
        return f"classifier: reading mirrored copies from {ev['source']} ({ev['vmis']} VMI MACs known)"
    if kind == "classified":
        src, dst, proto, sport, dport = ev["packet"]
        return (f"{ev['class']:>5}  {src}:{sport} -> {dst}:{dport}/{proto}  {ev['detail']}\n"
                f"       UpdateFlow offloaded, lifetime {ev['lifetime']}s, info {ev['class']!r}: "
                f"{ev['status']} {ev['flow']}{'  ' + ev['message'] if ev['message'] else ''}")
    if kind == "error":
        return f"classifier: UpdateFlows failed: {ev['error']}"
    if kind == "summary":
        return "classifier: " + json.dumps({k: v for k, v in ev.items() if k != "event"})
    return None

"""A P4Runtime PTF base test: standard test params, a P4Runtime client (finsy) on a background
event loop, writes that are undone in tearDown, and readable batch-write errors.

Test params (``ptf --test-params "k=v;k=v"``), the names the p4lang PTF tests use:

==========  ==============================================================================
grpcaddr    the switch's P4Runtime server, e.g. ``'127.0.0.1:9559'``
device_id   the P4Runtime device id (``simple_switch_grpc --device-id``)
cpu_port    the CPU port (``--cpu-port``); packet-in / packet-out travel there
p4info      the P4Info file (text or binary protobuf)
config      the device config pushed with it: BMv2 JSON from p4c, or softswitch's ``.p4``
==========  ==============================================================================

Everything a test writes through :meth:`P4RuntimeTest.insert` is deleted again in tearDown, in
reverse order, and tearDown then checks that the switch holds no table entry, clone session or
multicast group: a test that leaves something behind fails (ERROR in tearDown) and the leftovers
are wiped so that the next test starts clean. Only standard P4Runtime is used, so the same tests
run against softswitch and BMv2 ``simple_switch_grpc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import finsy
import ptf
from ptf import testutils
from ptf.base_tests import BaseTest

T = TypeVar("T")

logging.getLogger("finsy").setLevel(logging.CRITICAL)

PARAMS = ("grpcaddr", "device_id", "cpu_port", "p4info", "config")


class TestParamError(RuntimeError):
    pass


def test_param(name: str) -> Any:
    """One ``--test-params`` value; a missing one is an error that says how to pass it."""
    params = testutils.test_params_get()
    if name not in params:
        raise TestParamError(
            f"test param {name!r} missing: run e.g. ptf --test-params \"grpcaddr='127.0.0.1:9559';device_id=1;"
            "cpu_port=255;p4info='build/fatflow.p4info.txtpb';config='build/fatflow.json'\" (see docs/labs.md)")
    return params[name]


def describe(entity: Any, schema: Any = None) -> str:
    """A one-line description of a finsy entity for failure messages (P4Info-aware with ``schema``)."""
    if isinstance(entity, finsy.P4TableEntry):
        shown: Any
        try:
            shown = entity.match_str(schema) if schema is not None else None
        except Exception:
            shown = None
        if shown is None:
            shown = dict(entity.match) if entity.match is not None else {}
        act = entity.action
        action = "" if act is None else f" -> {getattr(act, 'name', act)}{dict(getattr(act, 'args', {}) or {})}"
        prio = f" priority {entity.priority}" if entity.priority else ""
        return f"table {entity.table_id} match {shown}{action}{prio}"
    if isinstance(entity, finsy.P4CloneSessionEntry):
        return f"clone session {entity.session_id} replicas {list(entity.replicas)}"
    if isinstance(entity, finsy.P4DigestEntry):
        return f"digest {entity.digest_id}"
    return repr(entity)


def _ent_list(entities: Any) -> list[Any]:
    return [entities] if not isinstance(entities, list | tuple) else list(entities)


class P4RuntimeTest(BaseTest):
    """Connects to the switch (pushing the pipeline when it does not run it yet), and collects
    what the switch reports on the stream: digests, idle-timeout notifications, packet-ins.

    Subclasses call :meth:`insert` / :meth:`modify` / :meth:`delete` and the readers below.
    ``digest_names`` lists the digests to turn on (a DigestEntry each, removed in tearDown).
    """

    digest_names: Sequence[str] = ()
    digest_ack_timeout_ns = 1_000_000_000

    def setUp(self) -> None:
        super().setUp()
        self.dataplane = ptf.dataplane_instance
        self.cpu_port = int(test_param("cpu_port"))
        self.device_id = int(test_param("device_id"))
        self._written: list[Any] = []  # entities to delete in tearDown, in insertion order
        self._unacked: list[finsy.P4DigestList] = []
        #: ack each digest list as a controller does; a test of the ack cache turns this off
        self.ack_digests = True
        self.digests: queue.Queue[finsy.P4DigestList] = queue.Queue()
        self.idle_notes: queue.Queue[finsy.P4IdleTimeoutNotification] = queue.Queue()
        self.packet_ins: queue.Queue[finsy.P4PacketIn] = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="p4runtime", daemon=True)
        self._thread.start()
        self._readers: list[Any] = []
        self._stream_lock: asyncio.Lock | None = None  # created on the loop
        self.sw: finsy.Switch | None = None
        # A cleanup, not tearDown: it also runs when a subclass's setUp fails half-way.
        self.addCleanup(self._finish)
        opts = finsy.SwitchOptions(p4info=Path(test_param("p4info")), p4blob=Path(test_param("config")),
                                   device_id=self.device_id)
        sw = finsy.Switch("ptf", str(test_param("grpcaddr")), opts)
        self.call(sw.__aenter__(), timeout=120)  # the first test may push (compile) the pipeline
        self.sw = sw
        # The previous test's session may still be primary for a moment (its stream is closing):
        # writes need this one to be primary.
        self.wait_for(lambda: sw.is_primary, 10, "this client to become the primary controller")
        leftovers = self._leftovers()
        if leftovers:
            logging.warning("switch not clean before %s, wiping: %s", self.id(),
                            "; ".join(describe(e, self.sw.p4info) for e in leftovers))
            self._wipe()
        for coro in (self._read_digests(), self._read_idle(), self._read_packets()):
            self._readers.append(asyncio.run_coroutine_threadsafe(coro, self._loop))
        if self.digest_names:
            self.insert([finsy.P4DigestEntry(name, max_list_size=1, max_timeout_ns=0,
                                             ack_timeout_ns=self.digest_ack_timeout_ns)
                         for name in self.digest_names])
        self.dataplane.flush()

    def _finish(self) -> None:
        try:
            self._undo()
        finally:
            self._disconnect()

    # -- plumbing ------------------------------------------------------------------------------
    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the client's event loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _disconnect(self) -> None:
        for r in self._readers:
            r.cancel()
        if self.sw is not None:
            with contextlib.suppress(Exception):
                self.call(self.sw.__aexit__(None, None, None), timeout=10)
            self.sw = None
        with contextlib.suppress(Exception):
            self.call(_cancel_all(), timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    def _undo(self) -> None:
        """Delete what the test wrote (reverse order), then insist that nothing is left."""
        if self.sw is None:
            return
        assert self.sw is not None
        for dl in self._unacked:  # leave no digest suppressed in the switch's ack cache
            with contextlib.suppress(Exception):
                self.call(self._stream_write(dl.ack()))
        written, self._written = self._written, []
        problems: list[str] = []
        for entity in reversed(written):
            try:
                self.call(self.sw.delete([entity]))
            except finsy.P4ClientError as exc:
                problems.append(f"could not delete {describe(entity, self.sw.p4info)}: {exc.code.name} {exc.message}")
        leftovers = self._leftovers()
        if leftovers:
            problems.append("left on the switch after the test's own deletes: "
                            + "; ".join(describe(e, self.sw.p4info) for e in leftovers))
            self._wipe()
        if problems:
            raise AssertionError("tearDown: " + "\n  ".join(problems))

    def _leftovers(self) -> list[Any]:
        assert self.sw is not None
        found: list[Any] = []
        for wildcard in (finsy.P4TableEntry(), finsy.P4CloneSessionEntry(), finsy.P4MulticastGroupEntry()):
            found += self.call(self._collect(wildcard))
        return found

    def _wipe(self) -> None:
        assert self.sw is not None
        with contextlib.suppress(finsy.P4ClientError):
            self.call(self.sw.delete_many([finsy.P4TableEntry(), finsy.P4CloneSessionEntry(),
                                           finsy.P4MulticastGroupEntry()]))

    async def _collect(self, entity: Any) -> list[Any]:
        assert self.sw is not None
        return [e async for e in self.sw.read(entity)]

    async def _stream_write(self, message: Any) -> None:
        """Send one StreamChannel message. gRPC allows one pending write per stream: a digest ack
        from the reader and a packet-out from the test must not overlap (INTERNAL otherwise)."""
        assert self.sw is not None
        if self._stream_lock is None:
            self._stream_lock = asyncio.Lock()
        async with self._stream_lock:
            await self.sw.write([message])

    async def _read_digests(self) -> None:
        assert self.sw is not None
        for name in self.digest_names:  # one digest type in this pipeline; more would need a task each
            async for dl in self.sw.read_digests(name):
                # Ack before the test sees it: the switch suppresses an unacked duplicate for
                # ack_timeout_ns, and a test that ends right after would leave it unacked.
                if self.ack_digests:
                    await self._stream_write(dl.ack())
                else:
                    self._unacked.append(dl)
                self.digests.put(dl)

    async def _read_idle(self) -> None:
        assert self.sw is not None
        async for note in self.sw.read_idle_timeouts():
            self.idle_notes.put(note)

    async def _read_packets(self) -> None:
        assert self.sw is not None
        async for pkt in self.sw.read_packets():
            self.packet_ins.put(pkt)

    # -- writes --------------------------------------------------------------------------------
    def _write(self, op: str, entities: list[Any]) -> None:
        assert self.sw is not None
        method = {"INSERT": self.sw.insert, "MODIFY": self.sw.modify, "DELETE": self.sw.delete}[op]
        try:
            self.call(method(entities))
        except finsy.P4ClientError as exc:
            raise self.failureException(self.write_error_text(op, entities, exc, self.sw.p4info)) from None

    @staticmethod
    def write_error_text(op: str, entities: Sequence[Any], exc: finsy.P4ClientError, schema: Any = None) -> str:
        """A failed batch, update by update: which of the updates failed, with what code and why."""
        if not exc.details:
            return (f"P4Runtime Write ({op}, {len(entities)} update(s)) failed: {exc.code.name}: {exc.message}\n"
                    + "\n".join(f"  [{i}] {describe(e, schema)}" for i, e in enumerate(entities)))
        lines = [f"P4Runtime Write ({op}) failed for {len(exc.details)} of {len(entities)} update(s):"]
        for i, err in sorted(exc.details.items()):
            what = describe(entities[i], schema) if i < len(entities) else f"update {i}"
            lines.append(f"  [{i}] {op} {what}: {err.canonical_code.name}: {err.message}")
        return "\n".join(lines)

    def insert(self, entities: Any) -> None:
        """Insert entities (one batch); each is deleted again in tearDown."""
        ents = _ent_list(entities)
        assert self.sw is not None
        try:
            self.call(self.sw.insert(ents))
        except finsy.P4ClientError as exc:
            # Track what did get in, so that the cleanup removes it: the updates without an
            # error detail, or (no details at all) what a read finds.
            if exc.details:
                self._written += [e for i, e in enumerate(ents) if i not in exc.details]
            else:
                self._written += [e for e in ents if self._exists(e)]
            raise self.failureException(self.write_error_text("INSERT", ents, exc, self.sw.p4info)) from None
        self._written += ents

    def _exists(self, entity: Any) -> bool:
        probe: Any
        if isinstance(entity, finsy.P4TableEntry):
            probe = finsy.P4TableEntry(entity.table_id, match=entity.match, priority=entity.priority)
        elif isinstance(entity, finsy.P4CloneSessionEntry):
            probe = finsy.P4CloneSessionEntry(entity.session_id)
        else:
            return False
        try:
            return bool(self.read(probe))
        except Exception:
            return False

    def modify(self, entities: Any) -> None:
        """Modify entities this test inserted (they are still deleted in tearDown)."""
        self._write("MODIFY", _ent_list(entities))

    def delete(self, entities: Any) -> None:
        """Delete entities now (and no longer in tearDown)."""
        ents = _ent_list(entities)
        self._write("DELETE", ents)
        for e in ents:
            for i, w in enumerate(self._written):
                if _same_entity(w, e):
                    del self._written[i]
                    break

    def read(self, entity: Any) -> list[Any]:
        """Everything a (wildcard) read of ``entity`` returns; order is the switch's."""
        return self.call(self._collect(entity))

    # -- stream --------------------------------------------------------------------------------
    def next_digest_list(self, timeout: float = 5.0) -> finsy.P4DigestList:
        try:
            return self.digests.get(timeout=timeout)
        except queue.Empty:
            raise self.failureException(f"no digest within {timeout} s") from None

    def no_digest_list(self, timeout: float = 0.5) -> finsy.P4DigestList | None:
        """None when no digest arrives within ``timeout``, else the one that did."""
        try:
            return self.digests.get(timeout=timeout)
        except queue.Empty:
            return None

    def next_packet_in(self, timeout: float = 5.0) -> finsy.P4PacketIn:
        try:
            return self.packet_ins.get(timeout=timeout)
        except queue.Empty:
            raise self.failureException(f"no packet-in within {timeout} s") from None

    def no_packet_in(self, timeout: float = 0.5) -> finsy.P4PacketIn | None:
        try:
            return self.packet_ins.get(timeout=timeout)
        except queue.Empty:
            return None

    def next_idle_notification(self, timeout: float = 10.0) -> finsy.P4IdleTimeoutNotification:
        try:
            return self.idle_notes.get(timeout=timeout)
        except queue.Empty:
            raise self.failureException(f"no idle-timeout notification within {timeout} s") from None

    def packet_out(self, payload: bytes, **metadata: int) -> None:
        assert self.sw is not None
        self.call(self._stream_write(finsy.P4PacketOut(payload, **metadata)))

    def direct_counter(self, entry: finsy.P4TableEntry) -> tuple[int, int]:
        """(packets, bytes) of the direct counter of a table entry."""
        replies = self.read(finsy.P4DirectCounterEntry(
            table_entry=finsy.P4TableEntry(entry.table_id, match=entry.match, priority=entry.priority)))
        if len(replies) != 1:
            raise self.failureException(f"expected one direct counter for {describe(entry)}, got {replies}")
        return replies[0].packet_count, replies[0].byte_count

    def wait_for(self, predicate: Any, timeout: float, what: str, interval: float = 0.1) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise self.failureException(f"timed out after {timeout} s waiting for {what}")
            time.sleep(interval)


async def _cancel_all() -> None:
    """Cancel and reap what is left on the loop (gRPC call tasks), so that stopping it is quiet."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _same_entity(a: Any, b: Any) -> bool:
    if isinstance(a, finsy.P4TableEntry) and isinstance(b, finsy.P4TableEntry):
        return (a.table_id, dict(a.match or {}), a.priority) == (b.table_id, dict(b.match or {}), b.priority)
    if isinstance(a, finsy.P4CloneSessionEntry) and isinstance(b, finsy.P4CloneSessionEntry):
        return bool(a.session_id == b.session_id)
    if isinstance(a, finsy.P4DigestEntry) and isinstance(b, finsy.P4DigestEntry):
        return bool(a.digest_id == b.digest_id)
    return a == b


"""Regression tests at scale for the runtime's resource defects (issue 7, part 2):
digest bookkeeping bounded by what is outstanding, idle-timeout sweeps that only look
at due entries and split their notifications, bounded stream outboxes, and Writes that
let the event loop run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from finsy.proto import p4r, p4r_grpc, rpc_code
from rt_client import Client
from test_server import ACL, FWD, fwd_entry

from softswitch.interp import tables as tm
from softswitch.runtime.digests import DigestQueue
from softswitch.runtime.server import P4RuntimeServer
from softswitch.runtime.stream import StreamClient

INS, DEL = p4r.Update.INSERT, p4r.Update.DELETE


def _collector() -> tuple[list[p4r.StreamMessageResponse], Callable[[p4r.StreamMessageResponse], bool]]:
    sent: list[p4r.StreamMessageResponse] = []

    def send(m: p4r.StreamMessageResponse) -> bool:
        sent.append(m)
        return True

    return sent, send


def _config(max_list_size: int, max_timeout_ns: int, ack_timeout_ns: int) -> p4r.DigestEntry.Config:
    return p4r.DigestEntry.Config(max_list_size=max_list_size, max_timeout_ns=max_timeout_ns,
                                  ack_timeout_ns=ack_timeout_ns)


# ------------------------------------------------------------------ digests


async def test_digest_bookkeeping_is_freed_by_acks_and_ack_timeouts() -> None:
    sent, send = _collector()
    q = DigestQueue(send)
    q.configure(7, (32,), _config(1, 0, 200_000_000))  # one list per item, 200 ms ack timeout
    n = 20_000
    for i in range(n):
        q.offer(7, (i,))
    assert len(sent) == n
    out = q.outstanding()
    assert out["unacked"] == n and out["lists"] == n
    # one timer per digest, not one per list sent (the defect kept 20,000 handles)
    assert out["timers"] <= 2
    for i in range(n):
        q.offer(7, (i,))  # all suppressed: sent and unacked
    assert len(sent) == n
    for m in sent[: n // 2]:
        q.ack(7, m.digest.list_id)
    assert q.outstanding()["unacked"] == n // 2
    q.offer(7, (0,))  # acked: learned again
    assert len(sent) == n + 1
    await asyncio.sleep(0.4)  # the rest expire
    assert q.outstanding() == {"pending": 0, "unacked": 0, "lists": 0, "expiry_heap": 0, "timers": 0}
    q.offer(7, (n - 1,))  # expired: learned again
    assert len(sent) == n + 2
    q.close()


async def test_digest_pending_duplicates_at_scale() -> None:
    sent, send = _collector()
    q = DigestQueue(send)
    q.configure(7, (32, 16), _config(0, 10**12, 10**12))  # flushed by hand only
    n = 50_000
    for _ in range(3):
        for i in range(n):
            q.offer(7, (i, i & 0xFFFF))
    q.flush(7)
    (msg,) = sent
    assert len(msg.digest.data) == n
    assert [m.bitstring for m in msg.digest.data[n - 1].struct.members] == [
        (n - 1).to_bytes(2, "big"), ((n - 1) & 0xFFFF).to_bytes(2, "big")]
    q.close()
    assert q.outstanding()["timers"] == 0


async def test_undelivered_digest_list_does_not_silence_its_data() -> None:
    sent: list[p4r.StreamMessageResponse] = []
    deliver = False

    def send(m: p4r.StreamMessageResponse) -> bool:
        if deliver:
            sent.append(m)
        return deliver

    q = DigestQueue(send)
    q.configure(7, (8,), _config(1, 0, 10**12))
    q.offer(7, (1,))  # no client takes it
    assert q.lists_dropped == 1 and q.outstanding()["unacked"] == 0
    deliver = True
    q.offer(7, (1,))
    assert len(sent) == 1
    q.close()


# ------------------------------------------------------------- idle timeouts


def _fill_acl(server: P4RuntimeServer, n: int, idle_ns: int) -> tm.Table:
    assert server.pipeline is not None
    table = server.pipeline.loaded.compiled.tables["MyIngress.acl"]
    table.size = n
    for i in range(n):
        e = tm.TableEntry((tm.Ternary(i, 0xFFFFFFFF), None), "MyIngress.allow", (), 1, idle_ns)
        table.insert(e)
        e.last_hit_ns -= 2 * idle_ns  # idle since long ago
        server.idle.track(ACL, e)
    return table


async def test_idle_notifications_of_65536_entries_are_split_under_grpc_limits(
        primed: Client, server: P4RuntimeServer) -> None:
    server.idle_sweep_interval = 3600.0  # sweeps are driven by hand
    await asyncio.sleep(0.1)
    n = 65_536
    table = _fill_acl(server, n, 10**9)
    assert server.sweep_idle() == n
    got = 0
    sizes = []
    while got < n:
        msg = await primed.recv("idle_timeout_notification", timeout=10)  # a default 4 MB client
        sizes.append(msg.ByteSize())
        got += len(msg.idle_timeout_notification.table_entry)
    assert got == n and len(sizes) > 1
    assert max(sizes) <= (1 << 20) + 1024
    te = msg.idle_timeout_notification.table_entry[-1]
    assert te.table_id == ACL and te.priority == 1 and te.idle_timeout_ns == 10**9
    assert te.time_since_last_hit.elapsed_ns >= 2 * 10**9
    # BMv2's ageing: not the next sweep, again the one after; a hit starts a new period
    assert server.sweep_idle() == 0
    for e in list(table.entries())[: n // 2]:
        e.last_hit_ns = table.clock_ns()
    assert server.sweep_idle() == n // 2


async def test_idle_sweep_looks_only_at_due_entries(primed: Client, server: P4RuntimeServer) -> None:
    server.idle_sweep_interval = 3600.0
    await asyncio.sleep(0.1)
    table = _fill_acl(server, 20_000, 3600 * 10**9)
    for e in table.entries():
        e.last_hit_ns = table.clock_ns()  # recently hit: due in an hour
    server.idle.track(ACL, next(iter(table.entries())))  # re-tracked: its old item is stale
    # hits only write last_hit_ns: the first sweep finds the entries it had as due,
    # reports none and files them under their new deadline (an hour away) ...
    assert server.sweep_idle() == 0
    # ... so the next sweep looks at no entry at all
    gen = server.idle.sweep(server.pipeline, lambda m: None, chunk=1)  # type: ignore[arg-type]
    examined = [1 for _ in gen]
    assert examined == []
    # an entry deleted over P4Runtime is never reported
    e = next(iter(table.entries()))
    e.last_hit_ns -= 7200 * 10**9
    server.idle.track(ACL, e)
    ent = p4r.Entity()
    ent.table_entry.table_id = ACL
    ent.table_entry.match.add(field_id=1).ternary.CopyFrom(
        p4r.FieldMatch.Ternary(value=b"\x00", mask=b"\xff\xff\xff\xff"))
    ent.table_entry.priority = 1
    await primed.write((DEL, ent))
    assert server.sweep_idle() == 0


# ------------------------------------------------------------------ streams


async def test_slow_stream_reader_has_a_bounded_outbox_and_drops_are_counted() -> None:
    import rt_fakes

    dev = rt_fakes.FakeDevice()
    srv = P4RuntimeServer(dev, idle_sweep_interval=3600, stream_max_messages=100)  # type: ignore[arg-type]
    await srv.start("127.0.0.1:0")
    try:
        fast = Client(srv.port, election=10)
        await fast.connect()
        await fast.set_pipeline()
        # a second, backup client that never reads its stream
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}")
        stream = p4r_grpc.P4RuntimeStub(channel).StreamChannel()
        req = p4r.StreamMessageRequest()
        req.arbitration.device_id = 0
        req.arbitration.election_id.low = 20  # it becomes primary: packet-ins go to it
        await stream.write(req)
        for _ in range(100):
            if srv.sessions.primary() is not None and srv.sessions.primary() is not srv.sessions.clients[0]:
                break
            await asyncio.sleep(0.01)
        slow = srv.sessions.primary()
        assert isinstance(slow, StreamClient) and slow.election_id == 20
        assert dev.on_packet_in is not None
        n = 20_000
        for i in range(n):
            dev.on_packet_in(bytes(1000), {"ingress_port": i & 0x1FF, "_pad": 0})
            if i % 1000 == 0:
                await asyncio.sleep(0)  # let gRPC take what the transport accepts
        assert len(slow) <= 100
        assert slow.dropped["packet"] > n // 2
        assert srv.stats()["stream_dropped"] == {"packet": slow.dropped["packet"]}  # type: ignore[comparison-overlap]
        # arbitration updates are never dropped: a new primary is announced to it
        top = Client(srv.port, election=30)
        await top.connect()
        assert len(slow) <= 101
        last = slow._out[-1][0]
        assert isinstance(last, p4r.StreamMessageResponse)
        assert last.arbitration.status.code == rpc_code.ALREADY_EXISTS and last.arbitration.election_id.low == 30
        # the stuck client reads again: it gets its backlog, then the arbitration update
        kinds = []
        while True:
            m = await asyncio.wait_for(stream.read(), 5)
            kinds.append(m.WhichOneof("update"))
            if kinds[-1] == "arbitration" and m.arbitration.election_id.low == 30:
                break
        assert kinds.count("packet") + slow.dropped["packet"] >= n - 1
        stream.cancel()
        await channel.close()
        await top.close()
        await fast.close()
    finally:
        await srv.stop(0)


# ------------------------------------------------------------------- writes


async def test_large_write_lets_the_event_loop_run_and_writes_stay_in_order(
        primed: Client, server: P4RuntimeServer) -> None:
    assert server.pipeline is not None
    server.pipeline.loaded.compiled.tables["MyIngress.fwd"].size = 100_000
    n = 20_000
    big = [(INS, fwd_entry(i.to_bytes(6, "big"), 1)) for i in range(1, n + 1)]
    ticks_during_write = 0
    stop = False

    async def ticker() -> None:
        nonlocal ticks_during_write
        while not stop:
            if server._write_lock.locked():
                ticks_during_write += 1
            await asyncio.sleep(0)

    t = asyncio.create_task(ticker())
    w1 = asyncio.create_task(primed.write(*big))
    await asyncio.sleep(0)
    # sent while the big Write runs: applied after it, so the delete finds its entry
    w2 = asyncio.create_task(primed.write((DEL, fwd_entry((1).to_bytes(6, "big"), None)),
                                          (INS, fwd_entry(b"\xff" * 6, 2))))
    await asyncio.gather(w1, w2)
    stop = True
    await t
    assert ticks_during_write > 1  # the loop ran between slices of the Write
    model = server.pipeline.loaded.compiled.tables["MyIngress.fwd"]
    assert len(model) == n
    assert model.get((tm.Exact(1),), 0) is None and model.get((tm.Exact(0xFFFFFFFFFFFF),), 0) is not None


# -------------------------------------------------------------------- reads


async def test_large_read_lets_the_event_loop_run_and_sees_no_write_in_the_middle(
        primed: Client, server: P4RuntimeServer) -> None:
    assert server.pipeline is not None
    table = server.pipeline.loaded.compiled.tables["MyIngress.fwd"]
    table.size = 100_000
    n = 30_000
    for i in range(1, n + 1):
        table.insert(tm.TableEntry((tm.Exact(i),), "MyIngress.set_port", (1,)))
    ticks_during_read = 0
    stop = False

    async def ticker() -> None:
        nonlocal ticks_during_read
        while not stop:
            if server._write_lock.locked():
                ticks_during_read += 1
            await asyncio.sleep(0)

    req = p4r.Entity()
    req.table_entry.table_id = FWD
    t = asyncio.create_task(ticker())
    r = asyncio.create_task(primed.read(req))
    await asyncio.sleep(0.01)  # the Read is encoding (holding the lock)
    w = asyncio.create_task(primed.write((INS, fwd_entry(b"\xff" * 6, 2))))
    entities = await r
    await w
    stop = True
    await t
    assert ticks_during_read > 1  # the loop ran between slices of the Read's encoding
    # the Write waited for the Read: the answer is the table as it was, whole
    assert len(entities) == n
    assert len(table) == n + 1


# ----------------------------------------------------------------------- gc


def test_gc_freezer_freezes_after_enough_entries_and_a_commit_unfreezes() -> None:
    import gc

    from softswitch.runtime.gcpause import GcFreezer

    f = GcFreezer(after=3)
    try:
        f.written(2)
        assert f.freezes == 0
        f.written(1)
        assert f.freezes == 1 and gc.get_freeze_count() > 0
        f.reset()
        assert gc.get_freeze_count() == 0
        GcFreezer(after=0).written(10**6)  # disabled
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()

"""Controller benchmarks (issue 6): the flow layer alone, against a P4Runtime server that accepts
and discards writes, running in another process.

    .venv/bin/python bench/bench_controller.py [--flows 200000] [--memory-flows 1000000]

Measures, in one run:
- flow setups/s: digest lists in -> dedupe + policy -> entries written (one Write per batch) ->
  acks, with the server keeping a window of unacked digest lists in flight (anchor: the minimal
  finsy learner of examples/demo.py's kind, measured in the same run against the same server);
- memory of the controller per active flow with --memory-flows flows installed (RSS delta);
- expiries: idle-timeout notifications for 100,000 installed flows -> Read -> delete -> records;
- recycling at capacity: setups/s with max_flows far below the offered flows, against uncapped.

The server is written for the benchmark: it answers arbitration, pipeline pushes, Writes
(counting updates, changing nothing), Reads (echoing the entries asked for, with counters) and
sends digest lists / idle notifications it pre-built before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import psutil
from finsy.proto import p4d, p4r

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# ---------------------------------------------------------------------------------------------- server
def _canon(v: int) -> bytes:
    return v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")


def _digest_item(i: int) -> p4d.P4Data:
    src = (10 << 24) | i
    vals = [4, 10, src, 0x08080808, 17, 1024 + i % 60000, 53, 32, 32, 1, 1, 1, src, 0x08080808, 1024 + i % 60000, 53]
    d = p4d.P4Data()
    for v in vals:
        d.struct.members.add().bitstring = _canon(v)
    return d


class _Server:
    def __init__(self, digest_id: int, flows: int, list_size: int, window: int, idle_table: int) -> None:
        self.digest_id, self.flows, self.list_size, self.window = digest_id, flows, list_size, window
        self.idle_table = idle_table
        self.updates = 0
        self.sender: asyncio.Future[None] | None = None
        self.acked = 0
        self.ack_event = asyncio.Event()
        self.lists: list[bytes] = []
        for start in range(0, flows, list_size):
            msg = p4r.StreamMessageResponse()
            dl = msg.digest
            dl.digest_id, dl.list_id, dl.timestamp = digest_id, start // list_size + 1, 0
            for i in range(start, min(start + list_size, flows)):
                dl.data.append(_digest_item(i))
            self.lists.append(msg.SerializeToString())

    async def write(self, request: bytes, context: Any) -> bytes:
        self.updates += len(p4r.WriteRequest.FromString(request).updates)
        return b""

    async def read(self, request: p4r.ReadRequest, context: Any) -> Any:
        out = p4r.ReadResponse()
        for e in request.entities:
            if e.HasField("table_entry") and len(e.table_entry.match):
                te = out.entities.add().table_entry
                te.CopyFrom(e.table_entry)
                te.counter_data.packet_count, te.counter_data.byte_count = 3, 300
        yield out

    async def get_config(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "No forwarding pipeline config set")

    async def set_config(self, request: Any, context: Any) -> Any:
        return p4r.SetForwardingPipelineConfigResponse()

    async def stream(self, requests: Any, context: Any) -> Any:
        out: asyncio.Queue[bytes | None] = asyncio.Queue()

        async def reader() -> None:
            try:
                await _read(requests)
            except Exception as exc:
                print(f"bench server: stream reader failed: {exc!r}", file=sys.stderr)
            out.put_nowait(None)

        async def _read(requests: Any) -> None:
            async for req in requests:
                which = req.WhichOneof("update")
                if which == "arbitration":
                    msg = p4r.StreamMessageResponse()
                    msg.arbitration.device_id = req.arbitration.device_id
                    msg.arbitration.election_id.CopyFrom(req.arbitration.election_id)
                    msg.arbitration.status.code = 0
                    out.put_nowait(msg.SerializeToString())
                    self.sender = asyncio.ensure_future(self._send_digests(out))
                elif which == "digest_ack":
                    self.acked += 1
                    self.ack_event.set()

        task = asyncio.ensure_future(reader())
        try:
            while (item := await out.get()) is not None:
                yield item
        finally:
            task.cancel()

    async def _send_digests(self, out: asyncio.Queue[bytes | None]) -> None:
        await asyncio.sleep(0.5)  # let the controller adopt (empty tables) and start learning
        for n, raw in enumerate(self.lists):
            while n - self.acked >= self.window:
                self.ack_event.clear()
                await self.ack_event.wait()
            out.put_nowait(raw)
        # then report every flow idle, in ~1 MB notifications
        if self.idle_table:
            while self.acked < len(self.lists):
                self.ack_event.clear()
                await self.ack_event.wait()
            await asyncio.sleep(0.5)
            msg = p4r.StreamMessageResponse()
            note = msg.idle_timeout_notification
            for i in range(self.flows):
                d = _digest_item(i)
                te = note.table_entry.add()
                te.table_id = self.idle_table
                for fid, member in enumerate(d.struct.members[1:9], 1):
                    fm = te.match.add()
                    fm.field_id = fid
                    fm.exact.value = member.bitstring
                if len(note.table_entry) == 5000:
                    out.put_nowait(msg.SerializeToString())
                    msg = p4r.StreamMessageResponse()
                    note = msg.idle_timeout_notification
            if len(note.table_entry):
                out.put_nowait(msg.SerializeToString())


def run_server(port: int, digest_id: int, flows: int, list_size: int, window: int, idle_table: int,
               ready: Any) -> None:
    async def main() -> None:
        srv = _Server(digest_id, flows, list_size, window, idle_table)
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 256 << 20),
                                          ("grpc.max_send_message_length", 256 << 20)])
        handlers = {
            "Write": grpc.unary_unary_rpc_method_handler(srv.write, request_deserializer=None,
                                                         response_serializer=None),
            "Read": grpc.unary_stream_rpc_method_handler(srv.read, request_deserializer=p4r.ReadRequest.FromString,
                                                         response_serializer=p4r.ReadResponse.SerializeToString),
            "GetForwardingPipelineConfig": grpc.unary_unary_rpc_method_handler(
                srv.get_config, request_deserializer=p4r.GetForwardingPipelineConfigRequest.FromString,
                response_serializer=p4r.GetForwardingPipelineConfigResponse.SerializeToString),
            "SetForwardingPipelineConfig": grpc.unary_unary_rpc_method_handler(
                srv.set_config, request_deserializer=p4r.SetForwardingPipelineConfigRequest.FromString,
                response_serializer=p4r.SetForwardingPipelineConfigResponse.SerializeToString),
            "StreamChannel": grpc.stream_stream_rpc_method_handler(
                srv.stream, request_deserializer=p4r.StreamMessageRequest.FromString, response_serializer=None),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("p4.v1.P4Runtime", handlers),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------- controller
def _dbg(what: str) -> None:
    if os.environ.get("BENCH_DEBUG"):
        print(f"bench: {what}", file=sys.stderr)


class _Adapter:
    """Session listener wiring a bare FlowManager (no configuration layer)."""

    def __init__(self, flows: Any) -> None:
        self.flows = flows
        self.started = asyncio.Event()
        self.first_idle = 0.0

    async def session_primary(self, session: Any, pushed: bool) -> None:
        await self.flows.start(session)
        self.started.set()

    async def session_not_primary(self, session: Any) -> None:
        await self.flows.stop()

    def digest_list(self, session: Any, msg: Any) -> None:
        self.flows.digest_list(msg)

    def idle_timeouts(self, session: Any, msg: Any) -> None:
        if self.first_idle == 0.0:
            self.first_idle = time.perf_counter()
        self.flows.idle_timeouts(msg)

    def packet_in(self, session: Any, msg: Any) -> None:
        pass


async def run_controller(build: Any, port: int, flows: int, max_flows: int, expire: bool) -> dict[str, float]:
    import finsy
    from p4fatflow.flowcodec import FlowCodec
    from p4fatflow.flows import FlowManager, FlowSettings
    from p4fatflow.profile import PipelineProfile
    from p4fatflow.session import SessionOptions, SwitchSession

    schema = finsy.P4Schema(build.p4info, build.device_config)
    codec = FlowCodec(PipelineProfile.v1model(schema))
    fm = FlowManager("bench", codec, FlowSettings(max_flows=max_flows, backlog_limit=1 << 30))
    expired = 0

    def count(records: Any) -> None:
        nonlocal expired
        expired += sum(1 for r in records if r.reason.value == "idle")

    fm.records.subscribe(count)
    adapter = _Adapter(fm)
    session = SwitchSession(SessionOptions("bench", f"127.0.0.1:{port}", 1, 10, build.p4info, build.device_config),
                            adapter)
    gc.collect()
    rss0 = psutil.Process().memory_info().rss
    task = asyncio.create_task(session.run())
    await adapter.started.wait()
    while fm.stats.digests == 0:
        await asyncio.sleep(0.001)
    t0 = time.perf_counter()
    last = t0
    while fm.stats.setups < flows:
        await asyncio.sleep(0.005)
        if os.environ.get("BENCH_DEBUG") and time.perf_counter() - last > 1:
            last = time.perf_counter()
            print(f"setups {fm.stats.setups}, digests {fm.stats.digests}, dups {fm.stats.duplicates}, "
                  f"malformed {fm.stats.malformed}, index {len(fm.index)}", file=sys.stderr)
    t1 = time.perf_counter()
    _dbg("setups done")
    await fm.drain()
    gc.collect()
    rss1 = psutil.Process().memory_info().rss
    out = {"setups_per_s": flows / (t1 - t0), "flows_installed": len(fm.index), "recycles": fm.stats.recycles,
           "rss_per_flow_bytes": (rss1 - rss0) / max(1, len(fm.index))}
    if expire:
        last = time.perf_counter()
        while expired < flows:
            await asyncio.sleep(0.002)
            if os.environ.get("BENCH_DEBUG") and time.perf_counter() - last > 1:
                last = time.perf_counter()
                print(f"expired {expired}, index {len(fm.index)}, idle queued {len(fm._idle)}", file=sys.stderr)
        t2 = adapter.first_idle  # the first notification's arrival
        out["expiries_per_s"] = flows / (time.perf_counter() - t2)
        out["expiry_seconds_for_all"] = time.perf_counter() - t2
    _dbg("measured; stopping")
    await session.stop()
    task.cancel()
    _dbg("stopped")
    return out


async def run_minimal_learner(build: Any, port: int, flows: int) -> dict[str, float]:
    """The anchor: a minimal finsy learner (decode with finsy, insert P4TableEntry lists, ack)."""
    import finsy
    from p4fatflow import dataplane as dp
    from p4fatflow import p4rt

    opts = finsy.SwitchOptions(p4info=build.p4info, p4blob=build.device_config, device_id=1)
    done = 0
    t0 = 0.0
    async with finsy.Switch("anchor", f"127.0.0.1:{port}", opts) as sw:
        seen: set[Any] = set()
        async for dl in sw.read_digests(dp.FLOW_DIGEST, queue_size=1000):
            if t0 == 0.0:
                t0 = time.perf_counter()
            new = []
            for d in p4rt.decode_digest_list(dl):
                if d.key not in seen:
                    seen.add(d.key)
                    new.append(p4rt.flow_entry(d.key, idle_timeout_ns=60_000_000_000))
            await sw.insert(new)
            await sw.write([dl.ack()])
            done += len(new)
            if done >= flows:
                break
    return {"setups_per_s": flows / (time.perf_counter() - t0)}


def _with_server(build: Any, flows: int, *, list_size: int = 256, window: int = 16, idle: bool = False,
                 fn: str = "controller", max_flows: int = 1 << 30) -> dict[str, float]:
    import finsy
    from p4fatflow.profile import PipelineProfile

    from softswitch.launch import free_port

    schema = finsy.P4Schema(build.p4info, build.device_config)
    profile = PipelineProfile.v1model(schema)
    port = free_port()
    ctx = mp.get_context("spawn")  # grpc does not survive fork
    ready = ctx.Event()
    proc = ctx.Process(target=run_server, args=(port, profile.digest_id, flows, list_size, window,
                                               profile.flow_v4.table_id if idle else 0, ready), daemon=True)
    proc.start()
    ready.wait(30)
    try:
        # A fresh loop per phase, not closed: the measurement is over when the coroutine returns,
        # and cancelling a session mid-stream at shutdown is not what is being measured.
        loop = asyncio.new_event_loop()
        coro = (run_minimal_learner(build, port, flows) if fn == "anchor"
                else run_controller(build, port, flows, max_flows, idle))
        return loop.run_until_complete(asyncio.wait_for(coro, 600))
    finally:
        proc.kill()
        proc.join()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", type=int, default=200_000)
    ap.add_argument("--anchor-flows", type=int, default=20_000)
    ap.add_argument("--memory-flows", type=int, default=1_000_000)
    ap.add_argument("--expire-flows", type=int, default=100_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import logging

    logging.basicConfig(level=os.environ.get("BENCH_LOG", "WARNING"))
    logging.getLogger("finsy").setLevel(logging.ERROR)
    from softswitch.launch import compile_pipeline

    build = compile_pipeline(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-controller",
                             REPO / "p4src" / "fatflow_v1model.p4")
    results: dict[str, Any] = {}
    results["anchor_minimal_finsy_learner"] = _with_server(build, args.anchor_flows, fn="anchor")
    results["setups"] = _with_server(build, args.flows)
    results["recycling_at_capacity"] = _with_server(build, args.flows, max_flows=args.flows // 4)
    results["expiries"] = _with_server(build, args.expire_flows, idle=True)
    results["memory"] = _with_server(build, args.memory_flows)
    results["recycling_rate_vs_uncapped"] = (results["recycling_at_capacity"]["setups_per_s"]
                                             / results["setups"]["setups_per_s"])
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        a = results["anchor_minimal_finsy_learner"]["setups_per_s"]
        s = results["setups"]["setups_per_s"]
        print(f"flow setups/s, controller alone (discard server): {s:,.0f}  (minimal finsy learner: {a:,.0f})")
        r = results["recycling_at_capacity"]
        print(f"recycling at capacity (max_flows = flows/4): {r['setups_per_s']:,.0f} setups/s, "
              f"{r['recycles']:,} recycles, {results['recycling_rate_vs_uncapped']:.0%} of uncapped")
        e = results["expiries"]
        print(f"expiries: {args.expire_flows:,} in {e['expiry_seconds_for_all']:.2f} s ({e['expiries_per_s']:,.0f}/s)")
        m = results["memory"]
        print(f"memory: {m['rss_per_flow_bytes']:.0f} bytes/flow (RSS delta) with {m['flows_installed']:,} flows")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""P4Runtime write / read / digest throughput of a running softswitch (issue 7, part 3).

A softswitch process serves P4Runtime on loopback; this process is the client (real
gRPC, its own core). The program, written under the benchmark's temp dir, has one
5-tuple exact table of 1,048,576 entries with ``support_timeout`` and a direct counter,
and a digest of the 5-tuple on a miss. Measured:

* insert rate from pre-built protobuf WriteRequests, batches of 1,000 and 100 (the
  server's cost; the client only serialises);
* insert rate of unbatched Writes (one update each), one at a time and 32 in flight, from this
  process (grpc.aio) and from build/p4rt_load, a compiled gRPC client (bench/p4rt_load.cc, built
  by ``make bench``): the server apart from a Python client, which spends about as much CPU per
  call as the server;
* finsy's client-side encoding rate (P4TableEntry -> protobuf), which is what a finsy
  controller pays before any byte is sent;
* a Read of all entries;
* frame ingestion alone: frames that miss, injected in bulk by another process
  (blocking sends, so the port's queue never runs dry), with no DigestEntry;
* digest entries delivered per second for the same frames with a DigestEntry
  (``max_list_size`` 100, ``max_timeout_ns`` 10 ms), lists acked as they arrive;
* the runtime's digest path alone, in this process: ``DigestQueue.offer`` -> lists ->
  encoded and serialised StreamMessageResponses (no ports, no pipeline);
* forwarding: a probe process sends a frame every millisecond on its own port (4,
  hitting an installed entry, out on port 3) and timestamps the frames coming out; the
  longest gap is reported for every phase above (and idle).

    python bench/bench_p4rt.py [--entries 100000] [--digests 20000] [--json]
    python bench/bench_p4rt.py --switch-repo /tmp/base   # the switch from another tree
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing as mp
import os
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import finsy
import grpc
from finsy.proto import p4r, p4r_grpc

from softswitch.device import Device
from softswitch.launch import Target, start_softswitch
from softswitch.p4info import build_p4info
from softswitch.runtime.digests import DigestQueue

REPO = Path(__file__).resolve().parents[1]
#: the compiled load client (bench/p4rt_load.cc), built by `make bench`
LOAD_CLIENT = REPO / "build" / "p4rt_load"

PROGRAM = r"""
#include <core.p4>
#include <v1model.p4>

header ethernet_t { bit<48> dst; bit<48> src; bit<16> etype; }
header ipv4_t {
    bit<4> version; bit<4> ihl; bit<8> tos; bit<16> len; bit<16> id; bit<3> flags;
    bit<13> frag; bit<8> ttl; bit<8> proto; bit<16> csum; bit<32> src; bit<32> dst;
}
header l4_t { bit<16> sport; bit<16> dport; }
struct headers_t { ethernet_t eth; ipv4_t ipv4; l4_t l4; }
struct flow_t { bit<32> src; bit<32> dst; bit<8> proto; bit<16> sport; bit<16> dport; }
struct meta_t { }

parser P(packet_in pkt, out headers_t h, inout meta_t m, inout standard_metadata_t std) {
    state start { pkt.extract(h.eth); transition select(h.eth.etype) { 0x0800: ip; default: accept; } }
    state ip { pkt.extract(h.ipv4); pkt.extract(h.l4); transition accept; }
}
control VC(inout headers_t h, inout meta_t m) { apply { } }
control I(inout headers_t h, inout meta_t m, inout standard_metadata_t std) {
    direct_counter(CounterType.packets_and_bytes) flow_ctr;
    action fwd(bit<9> port) { std.egress_spec = port; }
    action miss() {
        std.egress_spec = 2;
        digest<flow_t>(1, {h.ipv4.src, h.ipv4.dst, h.ipv4.proto, h.l4.sport, h.l4.dport});
    }
    table flows {
        key = { h.ipv4.src: exact; h.ipv4.dst: exact; h.ipv4.proto: exact;
                h.l4.sport: exact; h.l4.dport: exact; }
        actions = { fwd; miss; }
        default_action = miss();
        size = 1048576;
        support_timeout = true;
        counters = flow_ctr;
    }
    apply { if (h.ipv4.isValid()) { flows.apply(); } else { std.egress_spec = 2; } }
}
control E(inout headers_t h, inout meta_t m, inout standard_metadata_t std) { apply { } }
control C(inout headers_t h, inout meta_t m) { apply { } }
control D(packet_out pkt, in headers_t h) { apply { pkt.emit(h.eth); pkt.emit(h.ipv4); pkt.emit(h.l4); } }
V1Switch(P(), VC(), I(), E(), C(), D()) main;
"""

ELECTION = 1


def five_tuple(i: int) -> tuple[int, int, int, int, int]:
    return (0x0A000000 | (i >> 8), 0xC0000000 | (i & 0xFF), 6, 1024 + (i & 0x3FFF), 443)


def frame(t: tuple[int, int, int, int, int]) -> bytes:
    src, dst, proto, sport, dport = t
    eth = bytes(6) + bytes.fromhex("020000000001") + b"\x08\x00"
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 24, 0, 0, 64, proto, 0, src, dst)
    return eth + ip + struct.pack("!HH", sport, dport) + bytes(16)


def probe_main(send_path: str, recv_path: str, ready: Any, stop: Any, out: Any) -> None:
    """Probe process: a frame hitting entry 0 into ``send_path`` every millisecond,
    and the arrival time (time.monotonic, shared by all processes) of every frame out
    of the switch at ``recv_path`` (bound here)."""
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(recv_path)
    rx.setblocking(False)
    tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    tx.setblocking(False)
    probe = frame(five_tuple(0))
    arrivals: list[float] = []
    while not stop.is_set():
        try:
            tx.sendto(probe, send_path)
        except OSError:  # the port's queue is full: the next probe goes a ms later
            pass
        time.sleep(0.001)
        while True:
            try:
                rx.recv(65536)
            except BlockingIOError:
                break
            arrivals.append(time.monotonic())
            ready.set()
    out.put(arrivals)


def inject_main(send_path: str, frames: list[bytes], out: Any) -> None:
    """Injector process: ``frames`` into the switch's port as fast as it takes them
    (blocking sends wait for room in the port's queue); (start, end) monotonic."""
    tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    t0 = time.monotonic()
    for f in frames:
        tx.sendto(f, send_path)
    out.put((t0, time.monotonic()))


def longest_gap(arrivals: list[float], start: float, end: float) -> float:
    """Longest interval without a forwarded probe frame within [start, end], ending
    at the first arrival after ``end`` if forwarding was stalled then."""
    points = [start] + [a for a in arrivals if start < a <= end]
    after = [a for a in arrivals if a > end]
    points.append(after[0] if after else end)
    return max(b - a for a, b in itertools.pairwise(points))


async def runtime_digest_rate(n: int) -> float:
    """Digest entries/s through DigestQueue alone: offer, lists of 100, encoding, the
    serialisation gRPC does; no ports, no pipeline, no stream."""
    sent: list[bytes] = []

    def send(msg: p4r.StreamMessageResponse) -> bool:
        sent.append(msg.SerializeToString())
        return True

    q = DigestQueue(send)
    cfg = p4r.DigestEntry.Config(max_list_size=100, max_timeout_ns=10_000_000, ack_timeout_ns=10**10)
    q.configure(1, (32, 32, 8, 16, 16), cfg)
    data = [five_tuple(20_000_000 + i) for i in range(n)]
    t0 = time.perf_counter()
    for d in data:
        q.offer(1, d)
    q.flush(1)
    elapsed = time.perf_counter() - t0
    q.close()
    return n / elapsed


class Bench:
    def __init__(self, target: Target, info: Any) -> None:
        self.target = target
        self.info = info
        self.channel = grpc.aio.insecure_channel(target.address, options=[
            ("grpc.max_receive_message_length", 64 << 20)])
        self.stub = p4r_grpc.P4RuntimeStub(self.channel)
        self.table_id = info.tables[0].preamble.id
        self.fwd_id = next(a.preamble.id for a in info.actions if a.preamble.name.endswith(".fwd"))
        self.digest_id = info.digests[0].preamble.id
        self.inbox: asyncio.Queue[p4r.StreamMessageResponse] = asyncio.Queue()
        #: (phase, start, end) on time.monotonic
        self.phases: list[tuple[str, float, float]] = []
        self.mp = mp.get_context("spawn")

    async def phase(self, name: str, coro: Any) -> Any:
        t0 = time.monotonic()
        try:
            return await coro
        finally:
            self.phases.append((name, t0, time.monotonic()))

    def start_probe(self) -> None:
        out = self.target.peers.pop(3)
        out.close()  # the probe process binds port 3's far end
        self.probe_stop = self.mp.Event()
        self.probe_out = self.mp.Queue()
        ready = self.mp.Event()
        self.probe = self.mp.Process(target=probe_main, args=(
            self.target.peers[4].path, out.peer_path, ready, self.probe_stop, self.probe_out))
        self.probe.start()
        if not ready.wait(60):
            raise RuntimeError("the probe process got no frame back from the switch")

    def stop_probe(self) -> list[float]:
        self.probe_stop.set()
        arrivals: list[float] = self.probe_out.get(timeout=30)
        self.probe.join()
        return arrivals

    async def inject(self, frames: list[bytes]) -> tuple[float, float]:
        out = self.mp.Queue()
        p = self.mp.Process(target=inject_main, args=(self.target.peers[1].path, frames, out))
        p.start()
        res: tuple[float, float] = await asyncio.to_thread(out.get)
        await asyncio.to_thread(p.join)
        return res

    async def connect(self, source: str) -> None:
        self.stream = self.stub.StreamChannel()
        req = p4r.StreamMessageRequest()
        req.arbitration.device_id = self.target.device_id
        req.arbitration.election_id.low = ELECTION
        await self.stream.write(req)
        self.reader = asyncio.create_task(self._pump())
        await asyncio.wait_for(self.inbox.get(), 10)
        cfg = p4r.SetForwardingPipelineConfigRequest(
            device_id=self.target.device_id, action=p4r.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT)
        cfg.election_id.low = ELECTION
        cfg.config.p4info.CopyFrom(self.info)
        cfg.config.p4_device_config = source.encode()
        await self.stub.SetForwardingPipelineConfig(cfg)

    async def _pump(self) -> None:
        while True:
            m = await self.stream.read()
            if m is grpc.aio.EOF:
                return
            self.inbox.put_nowait(m)

    def entity(self, i: int) -> p4r.Update:
        u = p4r.Update(type=p4r.Update.INSERT)
        te = u.entity.table_entry
        te.table_id = self.table_id
        for fid, (v, w) in enumerate(zip(five_tuple(i), (4, 4, 1, 2, 2), strict=True), start=1):
            te.match.add(field_id=fid).exact.value = v.to_bytes(w, "big")
        te.action.action.action_id = self.fwd_id
        te.action.action.params.add(param_id=1, value=b"\x03")
        te.idle_timeout_ns = 60 * 10**9
        return u

    def request(self, updates: list[p4r.Update]) -> p4r.WriteRequest:
        req = p4r.WriteRequest(device_id=self.target.device_id, updates=updates)
        req.election_id.low = ELECTION
        return req

    async def insert_batched(self, first: int, n: int, batch: int) -> float:
        reqs = [self.request([self.entity(i) for i in range(s, min(s + batch, first + n))])
                for s in range(first, first + n, batch)]
        t0 = time.perf_counter()
        for r in reqs:
            await self.stub.Write(r)
        return n / (time.perf_counter() - t0)

    async def insert_unbatched(self, first: int, n: int, in_flight: int) -> float:
        reqs = [self.request([self.entity(i)]) for i in range(first, first + n)]
        it = iter(reqs)

        async def worker() -> None:
            for r in it:
                await self.stub.Write(r)

        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(in_flight)])
        return n / (time.perf_counter() - t0)

    async def insert_unbatched_compiled(self, first: int, n: int, in_flight: int, workdir: Path) -> float | str:
        """The same unbatched INSERTs, sent by build/p4rt_load (one channel, ``in_flight`` calls
        in flight); every call must end OK. A string says why it did not run."""
        bodies = (self.request([self.entity(i)]).SerializeToString() for i in range(first, first + n))
        return await run_load_client(self.target.address, in_flight, bodies, workdir / f"unbatched_{first}.bin")

    def finsy_encode_rate(self, n: int) -> float:
        schema = finsy.P4Schema(self.info)
        t0 = time.perf_counter()
        for i in range(n):
            src, dst, proto, sport, dport = five_tuple(i)
            finsy.P4TableEntry(
                "I.flows",
                match=finsy.P4TableMatch({"h.ipv4.src": src, "h.ipv4.dst": dst, "h.ipv4.proto": proto,
                                          "h.l4.sport": sport, "h.l4.dport": dport}),
                action=finsy.P4TableAction("I.fwd", port=3), idle_timeout_ns=60 * 10**9,
            ).encode(schema)
        return n / (time.perf_counter() - t0)

    async def read_all(self) -> tuple[int, float]:
        req = p4r.ReadRequest(device_id=self.target.device_id)
        req.entities.add().table_entry.table_id = self.table_id
        t0 = time.perf_counter()
        n = 0
        async for resp in self.stub.Read(req):
            n += len(resp.entities)
        return n, time.perf_counter() - t0

    async def ingest(self, n: int) -> float:
        """Frames/s the switch takes in through its port (misses, no DigestEntry)."""
        t0, t1 = await self.inject([frame(five_tuple(30_000_000 + i)) for i in range(n)])
        return n / (t1 - t0)

    async def digests(self, n: int) -> tuple[int, float]:
        de = p4r.Update(type=p4r.Update.INSERT)
        de.entity.digest_entry.digest_id = self.digest_id
        c = de.entity.digest_entry.config
        c.max_list_size, c.max_timeout_ns, c.ack_timeout_ns = 100, 10_000_000, 10 * 10**9
        await self.stub.Write(self.request([de]))
        frames = [frame(five_tuple(10_000_000 + i)) for i in range(n)]
        got = 0
        t0 = time.perf_counter()
        sender = asyncio.create_task(self.inject(frames))
        while got < n:
            try:
                m = await asyncio.wait_for(self.inbox.get(), 5)
            except TimeoutError:
                break
            if m.WhichOneof("update") == "digest":
                got += len(m.digest.data)
                ack = p4r.StreamMessageRequest()
                ack.digest_ack.digest_id = m.digest.digest_id
                ack.digest_ack.list_id = m.digest.list_id
                await self.stream.write(ack)
        elapsed = time.perf_counter() - t0
        await sender
        return got, elapsed


async def run_load_client(address: str, in_flight: int, bodies: Iterable[bytes], path: Path) -> float | str:
    """Writes/s of build/p4rt_load sending ``bodies`` (serialised WriteRequests, each once, written
    to ``path`` length-prefixed) with ``in_flight`` calls in flight; every call must end OK. A string
    says why it did not run."""
    if not LOAD_CLIENT.is_file():
        return f"not built ({LOAD_CLIENT.relative_to(REPO)}: make bench)"
    n = 0
    with path.open("wb") as f:
        for body in bodies:
            f.write(struct.pack(">I", len(body)))
            f.write(body)
            n += 1
    proc = await asyncio.create_subprocess_exec(
        str(LOAD_CLIENT), address, "/p4.v1.P4Runtime/Write", str(in_flight), str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"p4rt_load exited {proc.returncode}: {out.decode()} {err.decode()}")
    got = json.loads(out)
    assert got["ok"] == n, got
    return float(got["per_s"])


async def python_grpc_ceiling(workdir: Path, in_flight: int, n: int = 10_000) -> float | str:
    """The anchor for unbatched Writes: a grpc.aio server in this process whose Write handler does
    nothing, driven by the same compiled client: the ceiling of any grpc.aio server here."""
    if not LOAD_CLIENT.is_file():
        return f"not built ({LOAD_CLIENT.relative_to(REPO)}: make bench)"

    async def write(request: bytes, context: Any) -> bytes:
        return b""

    handler = grpc.method_handlers_generic_handler(
        "p4.v1.P4Runtime", {"Write": grpc.unary_unary_rpc_method_handler(write)})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    body = p4r.WriteRequest(device_id=1).SerializeToString()
    try:
        return await run_load_client(f"127.0.0.1:{port}", in_flight, [body] * n, workdir / "empty_writes.bin")
    finally:
        await server.stop(None)


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    src = workdir / "flows.p4"
    src.write_text(PROGRAM)
    loaded = Device.compile(PROGRAM, str(src))
    info = build_p4info(loaded.ir)
    with contextlib.ExitStack() as stack:
        here = os.getcwd()
        if args.switch_repo:  # `python -m softswitch` imports from its working directory first
            repo = str(Path(args.switch_repo).resolve())
            os.environ["PYTHONPATH"] = repo
            os.chdir(repo)
        try:
            target = stack.enter_context(start_softswitch(workdir, ports=(1, 2, 3, 4)))
        finally:
            os.chdir(here)
        target.peers.pop(2).close()  # misses leave on port 2: nobody listens, dropped at once
        b = Bench(target, info)
        await b.connect(PROGRAM)
        n = max(args.entries, 40_000)  # 20,000 go to the unbatched runs
        res: dict[str, Any] = {"entries": n}
        res["finsy_encode_per_s"] = b.finsy_encode_rate(min(n, 20_000))
        res["runtime_digest_per_s"] = await runtime_digest_rate(args.digests)
        await b.insert_batched(0, 1, 1)  # entry 0: what the probes hit
        b.start_probe()
        await b.phase("idle", asyncio.sleep(1.0))
        res["insert_batch1000_per_s"] = await b.phase("insert_batch1000", b.insert_batched(1, n // 2 - 1, 1000))
        res["insert_batch100_per_s"] = await b.phase("insert_batch100",
                                                     b.insert_batched(n // 2, n // 2 - 20_000, 100))
        res["insert_unbatched_1_in_flight_per_s"] = await b.phase(
            "insert_unbatched_1", b.insert_unbatched(n - 20_000, 5_000, 1))
        res["insert_unbatched_32_in_flight_per_s"] = await b.phase(
            "insert_unbatched_32", b.insert_unbatched(n - 15_000, 15_000, 32))
        # the server apart from the Python client: the same kind of INSERTs from a compiled client
        more = n + 1
        res["compiled_client_unbatched_1_in_flight_per_s"] = await b.phase(
            "compiled_unbatched_1", b.insert_unbatched_compiled(more, 5_000, 1, workdir))
        res["compiled_client_unbatched_32_in_flight_per_s"] = await b.phase(
            "compiled_unbatched_32", b.insert_unbatched_compiled(more + 5_000, 15_000, 32, workdir))
        count, secs = await b.phase("read", b.read_all())
        res["read_entries"], res["read_s"] = count, secs
        res["ingest_frames_per_s"] = await b.phase("ingest", b.ingest(args.digests))
        got, secs = await b.phase("digests", b.digests(args.digests))
        res["digest_entries"], res["digest_per_s"] = got, got / secs
        await asyncio.sleep(0.2)
        arrivals = b.stop_probe()
        res["gap_ms"] = {name: round(1000 * longest_gap(arrivals, t0, t1), 1) for name, t0, t1 in b.phases}
        res["probe_frames"] = len(arrivals)
        b.reader.cancel()
        b.stream.cancel()
        await b.channel.close()
    # the switch is gone: this process and the client have the machine
    for k in (1, 32):
        res[f"empty_python_server_{k}_in_flight_per_s"] = await python_grpc_ceiling(workdir, k)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--digests", type=int, default=20_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--switch-repo", default=None, metavar="DIR",
                    help="run the switch from this source tree (PYTHONPATH), e.g. a baseline worktree")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_p4rt_") as tmp:
        res = asyncio.run(run(args, Path(tmp)))
    res["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "load": os.getloadavg()}
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    goals = [("insert, batches of 1000", res["insert_batch1000_per_s"], 30_000, "/s"),
             ("insert, batches of 100", res["insert_batch100_per_s"], 30_000, "/s"),
             ("insert, unbatched, 1 in flight", res["insert_unbatched_1_in_flight_per_s"], 5_000, "/s"),
             ("insert, unbatched, 32 in flight", res["insert_unbatched_32_in_flight_per_s"], 5_000, "/s"),
             ("same, compiled client, 1 in flight", res["compiled_client_unbatched_1_in_flight_per_s"], 5_000, "/s"),
             ("same, compiled client, 32 in flight", res["compiled_client_unbatched_32_in_flight_per_s"], 5_000, "/s"),
             ("digest entries delivered", res["digest_per_s"], 20_000, "/s")]
    for name, v, goal, unit in goals:
        if isinstance(v, str):
            print(f"{name:34s} {v}")
            continue
        print(f"{name:34s} {v:10,.0f}{unit}  goal >= {goal:,}: {'MET' if v >= goal else 'NOT MET'}")
    for k in (1, 32):
        v = res[f"empty_python_server_{k}_in_flight_per_s"]
        print(f"{'anchor: empty grpc.aio server, ' + str(k):34s} " + (v if isinstance(v, str) else
              f"{v:10,.0f}/s  (compiled client, {k} in flight: the ceiling of a grpc.aio server)"))
    print(f"{'finsy P4TableEntry encode':34s} {res['finsy_encode_per_s']:10,.0f}/s  (client side only)")
    print(f"{'Read of all entries':34s} {res['read_entries']:10,} in {res['read_s']:.2f} s  "
          f"goal 100,000 in <= 2 s: {'MET' if res['read_entries'] >= 100_000 and res['read_s'] <= 2 else 'NOT MET'}")
    print(f"{'frames taken in, no digest':34s} {res['ingest_frames_per_s']:10,.0f}/s  (port + pipeline)")
    print(f"{'runtime digest path alone':34s} {res['runtime_digest_per_s']:10,.0f}/s  (in-process, no ports)")
    print("longest forwarding gap (ms):       " + ", ".join(f"{k} {v}" for k, v in res["gap_ms"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

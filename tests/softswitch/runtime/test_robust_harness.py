"""A P4Runtime server on a real Device with p4src/fatflow_v1model.p4, run on its own event
loop in a background thread, so that synchronous (hypothesis) tests can talk to it over
a real socket with plain grpc stubs."""

from __future__ import annotations

import asyncio
import functools
import queue
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
from finsy.proto import p4i, p4r, p4r_grpc, rpc_status
from google.protobuf import text_format

from softswitch.device import Device
from softswitch.launch import compile_pipeline
from softswitch.runtime.server import P4RuntimeServer

ROOT = Path(__file__).resolve().parents[3]
FATFLOW = ROOT / "p4src" / "fatflow_v1model.p4"
CPU_PORT = 255
ELECTION = 7

T = TypeVar("T")


@functools.cache
def fatflow_build() -> tuple[bytes, p4i.P4Info]:
    """The device config (preprocessed P4 source) and P4Info of the fatflow pipeline,
    made by ``softswitch compile`` once per test session."""
    out = Path(tempfile.mkdtemp(prefix="robust-"))
    build = compile_pipeline(out, FATFLOW)
    info = text_format.Parse(build.p4info.read_text(), p4i.P4Info())
    return build.device_config.read_bytes(), info


def ids(info: p4i.P4Info) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind in ("tables", "actions", "digests", "direct_counters"):
        for o in getattr(info, kind):
            out[o.preamble.name] = o.preamble.id
            out[o.preamble.alias] = o.preamble.id
    return out


class ServerThread:
    """Device + P4RuntimeServer on a private event loop; a primary client stream."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sent: list[tuple[int, bytes]] = []
        self.device = Device(device_id=0, cpu_port=CPU_PORT)
        self.device.on_transmit = lambda port, frame: self.sent.append((port, frame))
        self.server = P4RuntimeServer(self.device, idle_sweep_interval=3600)
        self.port = self.run(self.server.start("127.0.0.1:0"))
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = p4r_grpc.P4RuntimeStub(self.channel)
        self.stream_in: queue.Queue[p4r.StreamMessageRequest | None] = queue.Queue()
        self.stream_out: queue.Queue[p4r.StreamMessageResponse | grpc.RpcError | None] = queue.Queue()
        self._open_primary()

    # -------------------------------------------------------------- plumbing

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()
        return self.run(wrapper())

    def _open_primary(self) -> None:
        def requests() -> Iterator[p4r.StreamMessageRequest]:
            while True:
                m = self.stream_in.get()
                if m is None:
                    return
                yield m

        self.call_stream = self.stub.StreamChannel(requests())

        def pump() -> None:
            try:
                for m in self.call_stream:
                    self.stream_out.put(m)
            except grpc.RpcError as e:
                self.stream_out.put(e)
            self.stream_out.put(None)

        threading.Thread(target=pump, daemon=True).start()
        req = p4r.StreamMessageRequest()
        req.arbitration.device_id = 0
        req.arbitration.election_id.low = ELECTION
        self.stream_in.put(req)
        m = self.stream_out.get(timeout=5)
        assert isinstance(m, p4r.StreamMessageResponse) and m.arbitration.status.code == 0, m

    def close(self) -> None:
        self.stream_in.put(None)
        self.call_stream.cancel()
        self.channel.close()
        self.run(self.server.stop(0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    # -------------------------------------------------------------- RPCs

    def set_pipeline(self, config: bytes, info: p4i.P4Info | None, cookie: int = 0,
                     action: int = p4r.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT) -> None:
        req = p4r.SetForwardingPipelineConfigRequest(device_id=0, action=action)
        req.election_id.low = ELECTION
        req.config.p4_device_config = config
        req.config.cookie.cookie = cookie
        if info is not None:
            req.config.p4info.CopyFrom(info)
        self.stub.SetForwardingPipelineConfig(req, timeout=30)

    def write(self, updates: list[p4r.Update]) -> list[int]:
        """Per-update canonical codes (all 0 when the RPC succeeded)."""
        req = p4r.WriteRequest(device_id=0, updates=updates)
        req.election_id.low = ELECTION
        try:
            self.stub.Write(req, timeout=10)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNKNOWN, (e.code(), e.details())
            for k, v in e.trailing_metadata() or ():
                if k == "grpc-status-details-bin":
                    st = rpc_status.Status.FromString(v)
                    codes = []
                    for d in st.details:
                        err = p4r.Error()
                        assert d.Unpack(err)
                        codes.append(err.canonical_code)
                    return codes
            raise AssertionError(f"Write failed without details: {e.details()}") from None
        return [0] * len(updates)

    def write_errors(self, updates: list[p4r.Update]) -> list[p4r.Error]:
        req = p4r.WriteRequest(device_id=0, updates=updates)
        req.election_id.low = ELECTION
        try:
            self.stub.Write(req, timeout=10)
        except grpc.RpcError as e:
            for k, v in e.trailing_metadata() or ():
                if k == "grpc-status-details-bin":
                    out = []
                    for d in rpc_status.Status.FromString(v).details:
                        err = p4r.Error()
                        d.Unpack(err)
                        out.append(err)
                    return out
            raise
        return [p4r.Error() for _ in updates]

    def read(self, *entities: p4r.Entity) -> list[p4r.Entity]:
        out: list[p4r.Entity] = []
        for resp in self.stub.Read(p4r.ReadRequest(device_id=0, entities=list(entities)), timeout=10):
            out.extend(resp.entities)
        return out

    def read_all_tables(self) -> list[p4r.TableEntry]:
        e = p4r.Entity()
        e.table_entry.SetInParent()
        return [x.table_entry for x in self.read(e)]

    def cookie(self) -> int:
        req = p4r.GetForwardingPipelineConfigRequest(
            device_id=0, response_type=p4r.GetForwardingPipelineConfigRequest.COOKIE_ONLY)
        return int(self.stub.GetForwardingPipelineConfig(req, timeout=10).config.cookie.cookie)

    def receive(self, port: int, frame: bytes) -> list[tuple[int, bytes]]:
        """Feed ``frame`` to the device on its loop; the frames it transmitted."""
        def go() -> list[tuple[int, bytes]]:
            self.sent.clear()
            self.device.receive(port, frame)
            return list(self.sent)
        return self.call(go)

    def stream_msg(self, timeout: float = 2.0) -> p4r.StreamMessageResponse | grpc.RpcError | None:
        return self.stream_out.get(timeout=timeout)


class Stream:
    def __init__(self, s: ServerThread) -> None:
        self.q: queue.Queue[p4r.StreamMessageRequest | None] = queue.Queue()
        self.out: queue.Queue[p4r.StreamMessageResponse | grpc.RpcError | None] = queue.Queue()

        def requests() -> Iterator[p4r.StreamMessageRequest]:
            while (m := self.q.get()) is not None:
                yield m

        self.call = s.stub.StreamChannel(requests())

        def pump() -> None:
            try:
                for m in self.call:
                    self.out.put(m)
            except grpc.RpcError as e:
                self.out.put(e)
            self.out.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def send(self, m: p4r.StreamMessageRequest) -> None:
        self.q.put(m)

    def get(self, timeout: float = 3.0) -> p4r.StreamMessageResponse | grpc.RpcError | str | None:
        try:
            return self.out.get(timeout=timeout)
        except queue.Empty:
            return "nothing"

    def close(self) -> None:
        self.q.put(None)
        self.call.cancel()


def arbitration(device_id: int, election: int | None) -> p4r.StreamMessageRequest:
    m = p4r.StreamMessageRequest()
    m.arbitration.device_id = device_id
    if election is not None:
        m.arbitration.election_id.low = election
    return m


def serve_fatflow(cookie: int) -> Iterator[ServerThread]:
    """Body of a module fixture: a server running the fatflow pipeline with ``cookie``."""
    config, info = fatflow_build()
    s = ServerThread()
    s.set_pipeline(config, info, cookie=cookie)
    yield s
    s.close()


def assert_alive(s: ServerThread, cookie: int) -> None:
    """The server still answers and still runs the pipeline pushed with ``cookie``."""
    assert s.stub.Capabilities(p4r.CapabilitiesRequest(), timeout=5).p4runtime_api_version
    assert s.cookie() == cookie


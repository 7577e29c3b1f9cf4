"""A raw P4Runtime client (grpc stubs from finsy.proto) that exposes every status code."""

from __future__ import annotations

import asyncio

import grpc
import rt_fakes
from finsy.proto import p4r, p4r_grpc, rpc_status


class WriteFailed(Exception):
    def __init__(self, code: grpc.StatusCode, details: str, errors: list[p4r.Error]) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details
        self.errors = errors

    @property
    def codes(self) -> list[int]:
        return [e.canonical_code for e in self.errors]


class Client:
    def __init__(self, port: int, election: int = 1, device_id: int = 0) -> None:
        self.port = port
        self.election = election
        self.device_id = device_id
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.stub = p4r_grpc.P4RuntimeStub(self.channel)
        self.stream: grpc.aio.StreamStreamCall | None = None
        self.pending: list[p4r.StreamMessageResponse] = []
        self.inbox: asyncio.Queue[p4r.StreamMessageResponse | grpc.aio.AioRpcError | None] = asyncio.Queue()
        self.reader: asyncio.Task[None] | None = None

    async def connect(self, role: str = "") -> p4r.StreamMessageResponse:
        self.stream = self.stub.StreamChannel()
        self.inbox = asyncio.Queue()
        self.reader = asyncio.create_task(self._pump())
        await self.arbitrate(self.election, role)
        return await self.recv("arbitration")

    async def arbitrate(self, election: int, role: str = "") -> None:
        assert self.stream is not None
        self.election = election
        req = p4r.StreamMessageRequest()
        req.arbitration.device_id = self.device_id
        req.arbitration.election_id.high = election >> 64
        req.arbitration.election_id.low = election & 0xFFFFFFFFFFFFFFFF
        if role:
            req.arbitration.role.name = role
        await self.stream.write(req)

    async def send(self, req: p4r.StreamMessageRequest) -> None:
        assert self.stream is not None
        await self.stream.write(req)

    async def _pump(self) -> None:
        # one reader task: cancelling a pending stream.read() would cancel the whole RPC
        assert self.stream is not None
        try:
            while True:
                m = await self.stream.read()
                if m is grpc.aio.EOF:
                    break
                self.inbox.put_nowait(m)
        except grpc.aio.AioRpcError as e:
            self.inbox.put_nowait(e)
        except asyncio.CancelledError:
            pass
        self.inbox.put_nowait(None)

    async def recv(self, kind: str, timeout: float = 3.0) -> p4r.StreamMessageResponse:
        for i, m in enumerate(self.pending):
            if m.WhichOneof("update") == kind:
                return self.pending.pop(i)

        async def next_of_kind() -> p4r.StreamMessageResponse:
            while True:
                m = await self.inbox.get()
                if m is None:
                    self.inbox.put_nowait(None)
                    raise EOFError("stream closed")
                if isinstance(m, grpc.aio.AioRpcError):
                    self.inbox.put_nowait(m)
                    raise m
                if m.WhichOneof("update") == kind:
                    return m
                self.pending.append(m)

        return await asyncio.wait_for(next_of_kind(), timeout)

    async def nothing(self, kind: str, wait: float = 0.3) -> bool:
        """True when no message of ``kind`` arrives within ``wait`` seconds."""
        try:
            await self.recv(kind, wait)
        except TimeoutError:
            return True
        return False

    def _election(self, msg: p4r.WriteRequest | p4r.SetForwardingPipelineConfigRequest) -> None:
        msg.device_id = self.device_id
        msg.election_id.high = self.election >> 64
        msg.election_id.low = self.election & 0xFFFFFFFFFFFFFFFF

    async def set_pipeline(self, source: str = rt_fakes.SOURCE, p4info: object | None = None,
                           action: int = p4r.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT,
                           cookie: int = 0) -> None:
        from softswitch.p4info import build_p4info

        req = p4r.SetForwardingPipelineConfigRequest(action=action)
        self._election(req)
        req.config.p4_device_config = source.encode()
        req.config.cookie.cookie = cookie
        if p4info is None and source == rt_fakes.SOURCE:
            p4info = build_p4info(rt_fakes.build_ir())
        if p4info is not None:
            req.config.p4info.CopyFrom(p4info)  # type: ignore[arg-type]
        await self.stub.SetForwardingPipelineConfig(req)

    async def write(self, *updates: tuple[int, p4r.Entity]) -> None:
        req = p4r.WriteRequest()
        self._election(req)
        for op, entity in updates:
            req.updates.add(type=op, entity=entity)
        try:
            await self.stub.Write(req)
        except grpc.aio.AioRpcError as e:
            errors: list[p4r.Error] = []
            for k, v in e.trailing_metadata() or ():
                if k == "grpc-status-details-bin":
                    st = rpc_status.Status.FromString(v)
                    for d in st.details:
                        err = p4r.Error()
                        d.Unpack(err)
                        errors.append(err)
            raise WriteFailed(e.code(), e.details() or "", errors) from None

    async def read(self, *entities: p4r.Entity) -> list[p4r.Entity]:
        req = p4r.ReadRequest(device_id=self.device_id, entities=list(entities))
        out: list[p4r.Entity] = []
        async for resp in self.stub.Read(req):
            out.extend(resp.entities)
        return out

    async def close(self) -> None:
        if self.stream is not None:
            self.stream.cancel()
        if self.reader is not None:
            self.reader.cancel()
        await self.channel.close()



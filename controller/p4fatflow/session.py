"""One switch's P4Runtime session: the only place in the controller that speaks P4Runtime.

A :class:`SwitchSession` owns the gRPC channel and the StreamChannel of one switch, does client
arbitration (primary / backup by election id), makes sure the switch runs our pipeline (pushes it
when the cookie differs or the switch has none: a restarted switch), and reconnects with a short
backoff when the switch goes away. Services above it (the flow layer, the configuration applier)
see three calls of a :class:`SessionListener` — "you are primary", "you are not", and the stream's
messages — and a small API: ``write`` (per-update status codes), ``write_wire`` (pre-encoded
updates, see flowcodec.py), ``read``, ``ack_digest``, ``packet_out``. They know nothing of gRPC.

Built on finsy's pieces (channel set-up and TLS credentials, :class:`finsy.P4Schema` for the
pipeline and its cookie, :class:`P4ClientError` for decoding per-update errors, and the bundled
``finsy.proto`` modules) rather than on ``finsy.Switch``: the flow layer needs the raw messages
(digests and idle notifications decoded lazily, updates as bytes) to reach its throughput goals.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import finsy
import grpc
from finsy.grpcutil import GRPCCredentialsTLS, GRPCOptions, GRPCStatusCode, grpc_channel
from finsy.p4client import P4ClientError
from finsy.proto import p4r, p4r_grpc, rpc_code

from p4fatflow.flowcodec import _WR_UPDATES, _ld, varint

__all__ = ["SessionOptions", "SessionState", "SessionListener", "SwitchSession", "WriteError", "OK"]

log = logging.getLogger("p4fatflow.session")

OK = 0
_WRITE_METHOD = "/p4.v1.P4Runtime/Write"
_READ_METHOD = "/p4.v1.P4Runtime/Read"


class SessionState(enum.StrEnum):
    DOWN = "down"
    CONNECTING = "connecting"
    BACKUP = "backup"
    PRIMARY = "primary"


@dataclass(frozen=True, slots=True)
class SessionOptions:
    name: str
    address: str
    device_id: int
    election_id: int
    p4info: Path
    device_config: Path
    credentials: GRPCCredentialsTLS | None = None
    reconnect_min_s: float = 0.05
    reconnect_max_s: float = 1.0
    rpc_timeout_s: float = 60.0
    connect_timeout_s: float = 5.0


class SessionListener(Protocol):
    async def session_primary(self, session: SwitchSession, pipeline_pushed: bool) -> None: ...
    async def session_not_primary(self, session: SwitchSession) -> None: ...
    def digest_list(self, session: SwitchSession, msg: p4r.DigestList) -> None: ...
    def idle_timeouts(self, session: SwitchSession, msg: p4r.IdleTimeoutNotification) -> None: ...
    def packet_in(self, session: SwitchSession, msg: p4r.PacketIn) -> None: ...


class WriteError(RuntimeError):
    """A Write that failed as a whole (not per update): not primary, switch gone, ..."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{GRPCStatusCode(code).name if code in GRPCStatusCode._value2member_map_ else code}: {message}")
        self.code = code


class SwitchSession:
    """The P4Runtime session of one switch (see the module docstring)."""

    def __init__(self, options: SessionOptions, listener: SessionListener) -> None:
        self.options = options
        self.listener = listener
        self.schema = finsy.P4Schema(options.p4info, options.device_config)
        self.state = SessionState.DOWN
        self.primary_election_id: int | None = None
        self.connects = 0
        self.pipeline_pushes = 0
        self.became_primary_at: float | None = None
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None  # the StreamChannel call of the current connection
        self._stub: Any = None
        self._raw_write: Any = None
        self._raw_read: Any = None
        self._outbox: asyncio.Queue[p4r.StreamMessageRequest | None] = asyncio.Queue()
        self._primary_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._write_head = b""
        self._primary_event = asyncio.Event()

    # ------------------------------------------------------------------------- lifecycle
    @property
    def name(self) -> str:
        return self.options.name

    @property
    def is_primary(self) -> bool:
        return self.state is SessionState.PRIMARY

    async def wait_primary(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._primary_event.wait(), timeout)

    async def run(self) -> None:
        """Connect, arbitrate and serve the stream until :meth:`stop`; reconnect on failure."""
        backoff = self.options.reconnect_min_s
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the switch went away, refused us, or misbehaved
                log.warning("switch %s: session ended: %s", self.name, _short(exc))
            finally:
                await self._set_state(SessionState.DOWN)
                await self._close_channel()
            if self._stopping:
                break
            backoff = self.options.reconnect_min_s if time.monotonic() - started > 2.0 else min(
                backoff * 2, self.options.reconnect_max_s)
            await asyncio.sleep(backoff)

    async def stop(self) -> None:
        self._stopping = True
        self._outbox.put_nowait(None)
        await self._set_state(SessionState.DOWN)
        await self._close_channel()

    async def _close_channel(self) -> None:
        # End the stream first: cancelling the call stops gRPC's task that consumes _requests();
        # closing only the channel would leave it waiting on the outbox, to be destroyed pending.
        self._outbox.put_nowait(None)
        call, self._call = self._call, None
        if call is not None:
            call.cancel()
        if self._channel is not None:
            channel, self._channel = self._channel, None
            with contextlib.suppress(Exception):
                await channel.close(grace=None)

    async def _run_once(self) -> None:
        self.state = SessionState.CONNECTING
        options = GRPCOptions(max_metadata_size=64 * 1024, max_reconnect_backoff_ms=1000)
        native = list(options.to_native() or [])
        native += [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                   ("grpc.max_send_message_length", 64 * 1024 * 1024)]
        if self.options.credentials is None:
            channel = grpc.aio.insecure_channel(self.options.address, options=native)
        else:
            channel = grpc_channel(self.options.address, credentials=self.options.credentials, options=options)
        self._channel = channel
        self._stub = p4r_grpc.P4RuntimeStub(channel)
        self._raw_write = channel.unary_unary(_WRITE_METHOD, request_serializer=None,
                                              response_deserializer=p4r.WriteResponse.FromString)
        self._raw_read = channel.unary_stream(_READ_METHOD, request_serializer=None,
                                              response_deserializer=p4r.ReadResponse.FromString)
        try:
            # Not just wait_for_ready on the stream: a switch that is down or refuses the TLS
            # handshake must surface here, be logged, and go round the reconnect loop.
            async with asyncio.timeout(self.options.connect_timeout_s):
                await channel.channel_ready()
        except TimeoutError:
            state = channel.get_state(try_to_connect=False).name
            raise ConnectionError(f"cannot connect to {self.options.address} within "
                                  f"{self.options.connect_timeout_s:g} s (channel {state})") from None
        self._outbox = asyncio.Queue()
        self._outbox.put_nowait(self._arbitration_request())
        call = self._call = self._stub.StreamChannel(self._requests(), wait_for_ready=True)
        self.connects += 1
        async for msg in call:
            which = msg.WhichOneof("update")
            if which == "digest":
                self.listener.digest_list(self, msg.digest)
            elif which == "idle_timeout_notification":
                self.listener.idle_timeouts(self, msg.idle_timeout_notification)
            elif which == "packet":
                self.listener.packet_in(self, msg.packet)
            elif which == "arbitration":
                await self._arbitration(msg.arbitration)
            elif which == "error":
                log.warning("switch %s: stream error %s: %s", self.name, msg.error.canonical_code,
                            msg.error.message)
        raise ConnectionError("stream closed by the switch")

    async def _requests(self) -> AsyncIterator[p4r.StreamMessageRequest]:
        while True:
            msg = await self._outbox.get()
            if msg is None:
                return
            yield msg

    def _arbitration_request(self) -> p4r.StreamMessageRequest:
        req = p4r.StreamMessageRequest()
        req.arbitration.device_id = self.options.device_id
        req.arbitration.election_id.high = self.options.election_id >> 64
        req.arbitration.election_id.low = self.options.election_id & 0xFFFFFFFFFFFFFFFF
        return req

    async def _arbitration(self, a: p4r.MasterArbitrationUpdate) -> None:
        code = a.status.code
        self.primary_election_id = (a.election_id.high << 64) | a.election_id.low if a.HasField("election_id") else None
        if code == rpc_code.OK:
            if self.state is not SessionState.PRIMARY:
                await self._become_primary()
        elif code == rpc_code.ALREADY_EXISTS:
            await self._set_state(SessionState.BACKUP)
        elif code == rpc_code.NOT_FOUND:
            # No primary any more (the primary left): ask again; the highest election id wins.
            await self._set_state(SessionState.BACKUP)
            self._outbox.put_nowait(self._arbitration_request())
        else:
            log.warning("switch %s: arbitration refused: %s %s", self.name, code, a.status.message)

    async def _become_primary(self) -> None:
        self.state = SessionState.PRIMARY
        self.became_primary_at = time.monotonic()
        head = varint(self.options.device_id)
        eid = self.options.election_id
        election = b"\x08" + varint(eid >> 64) + b"\x10" + varint(eid & 0xFFFFFFFFFFFFFFFF)
        self._write_head = b"\x08" + head + _ld(3, election)
        self._primary_event.set()
        self._primary_task = asyncio.create_task(self._primary_work(), name=f"{self.name}-primary")

    async def _primary_work(self) -> None:
        try:
            pushed = await self._ensure_pipeline()
            log.info("switch %s: primary (election id %d)%s", self.name, self.options.election_id,
                     ", pipeline pushed" if pushed else "")
            await self.listener.session_primary(self, pushed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("switch %s: primary set-up failed; reconnecting", self.name)
            # A session whose set-up failed must not linger half-primary: drop the stream.
            self._outbox.put_nowait(None)

    async def _set_state(self, state: SessionState) -> None:
        was_primary = self.state is SessionState.PRIMARY
        self.state = state
        if was_primary and state is not SessionState.PRIMARY:
            self._primary_event.clear()
            task, self._primary_task = self._primary_task, None
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            with contextlib.suppress(Exception):
                await self.listener.session_not_primary(self)

    # ------------------------------------------------------------------------- pipeline
    async def _ensure_pipeline(self) -> bool:
        """Push our pipeline unless the switch already runs it (same cookie). True if pushed."""
        cookie = None
        try:
            reply = await self._stub.GetForwardingPipelineConfig(
                p4r.GetForwardingPipelineConfigRequest(
                    device_id=self.options.device_id,
                    response_type=p4r.GetForwardingPipelineConfigRequest.COOKIE_ONLY),
                timeout=self.options.rpc_timeout_s)
            if reply.config.HasField("cookie"):
                cookie = reply.config.cookie.cookie
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
        if cookie == self.schema.p4cookie:
            return False
        req = p4r.SetForwardingPipelineConfigRequest(
            device_id=self.options.device_id, action=p4r.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT,
            config=self.schema.get_pipeline_config())
        req.election_id.high = self.options.election_id >> 64
        req.election_id.low = self.options.election_id & 0xFFFFFFFFFFFFFFFF
        await self._stub.SetForwardingPipelineConfig(req, timeout=self.options.rpc_timeout_s)
        self.pipeline_pushes += 1
        return True

    # ------------------------------------------------------------------------- RPCs
    def _check_ready(self) -> None:
        if self.state is not SessionState.PRIMARY or self._stub is None:
            raise WriteError(GRPCStatusCode.UNAVAILABLE.value, f"switch {self.name} is {self.state.value}")

    async def write_wire(self, updates: Sequence[bytes]) -> list[int]:
        """Send pre-encoded ``updates`` fields (flowcodec) in one Write; the canonical code of each
        update (0 = OK). Raises WriteError if the Write failed as a whole."""
        if not updates:
            return []
        self._check_ready()
        request = b"".join((self._write_head, *updates))
        try:
            await self._raw_write(request, timeout=self.options.rpc_timeout_s)
        except grpc.aio.AioRpcError as exc:
            return _per_update_codes(exc, len(updates))
        return [OK] * len(updates)

    async def write(self, updates: Sequence[p4r.Update]) -> list[int]:
        """Write protobuf updates; per-update codes as :meth:`write_wire`."""
        return await self.write_wire([_ld(_WR_UPDATES, u.SerializeToString()) for u in updates])

    async def read(self, entities: Iterable[p4r.Entity], *, timeout: float | None = None) -> AsyncIterator[p4r.Entity]:
        """Read entities (wildcards allowed); answers are yielded as they stream in. ``timeout``
        (default: rpc_timeout_s) bounds the whole Read."""
        if self._stub is None:
            raise WriteError(GRPCStatusCode.UNAVAILABLE.value, f"switch {self.name} is {self.state.value}")
        req = p4r.ReadRequest(device_id=self.options.device_id, entities=list(entities))
        try:
            async for reply in self._stub.Read(req, timeout=timeout or self.options.rpc_timeout_s):
                for entity in reply.entities:
                    yield entity
        except grpc.aio.AioRpcError as exc:
            raise WriteError(exc.code().value[0], exc.details() or "Read failed") from None

    async def read_wire(self, entities: Sequence[bytes]) -> list[p4r.Entity]:
        """Read with pre-encoded ``entities`` fields of a ReadRequest (flowcodec.read_wire)."""
        if self._raw_read is None:
            raise WriteError(GRPCStatusCode.UNAVAILABLE.value, f"switch {self.name} is {self.state.value}")
        request = b"".join((b"\x08", varint(self.options.device_id), *entities))
        out: list[p4r.Entity] = []
        try:
            async for reply in self._raw_read(request, timeout=self.options.rpc_timeout_s):
                out.extend(reply.entities)
        except grpc.aio.AioRpcError as exc:
            raise WriteError(exc.code().value[0], exc.details() or "Read failed") from None
        return out

    async def read_all(self, entities: Iterable[p4r.Entity]) -> list[p4r.Entity]:
        return [e async for e in self.read(entities)]

    def ack_digest(self, digest_id: int, list_id: int) -> None:
        msg = p4r.StreamMessageRequest()
        msg.digest_ack.digest_id = digest_id
        msg.digest_ack.list_id = list_id
        self._outbox.put_nowait(msg)

    def packet_out(self, payload: bytes, metadata: dict[int, int]) -> None:
        msg = p4r.StreamMessageRequest()
        msg.packet.payload = payload
        for mid, value in metadata.items():
            m = msg.packet.metadata.add()
            m.metadata_id = mid
            m.value = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
        self._outbox.put_nowait(msg)


def _per_update_codes(exc: grpc.aio.AioRpcError, count: int) -> list[int]:
    err = P4ClientError(exc, "Write")
    details = err.details
    if not details:
        raise WriteError(err.code.value, err.message) from None
    codes = [OK] * count
    for index, detail in details.items():
        if 0 <= index < count:
            codes[index] = detail.canonical_code.value
    return codes


def _short(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"

"""P4Runtime v1 server (grpc.aio) for one :class:`softswitch.device.Device`.

Everything runs on the asyncio event loop that serves gRPC; the device is only touched
from that loop. See docs/softswitch.md, "P4Runtime and P4Info", for the behaviour and
the differences from BMv2/PI.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

import grpc
from finsy.proto import p4i, p4r, p4r_grpc, rpc_code, rpc_status
from google.protobuf import any_pb2

from softswitch.device import CompileError, Device, LoadedProgram
from softswitch.p4info import P4InfoError, build_p4info
from softswitch.runtime import externs, tables
from softswitch.runtime.codec import decode, encode
from softswitch.runtime.device_config import DeviceConfigError, check_self_contained
from softswitch.runtime.digests import DigestQueue
from softswitch.runtime.errors import Code, P4RTError
from softswitch.runtime.gcpause import GcFreezer
from softswitch.runtime.idle import IdleTracker
from softswitch.runtime.p4info_check import compare_p4info
from softswitch.runtime.pipeline import Pipeline
from softswitch.runtime.stream import MAX_BYTES, MAX_MESSAGES, Sessions, StreamClient
from softswitch.runtime.write import WRITE_SLICE_S, apply_updates

__all__ = ["P4RuntimeServer", "P4RUNTIME_API_VERSION", "compare_p4info", "tls_credentials"]

log = logging.getLogger("softswitch.runtime")

P4RUNTIME_API_VERSION = "1.3.0"
#: the largest ReadResponse sent (bytes, about); a Read answers with as many as needed
READ_CHUNK_BYTES = 1 << 20
#: table entries encoded between two looks at the clock (and at the response's size)
_READ_CHECK_EVERY = 256

_GRPC_CODE = {c.value[0]: c for c in grpc.StatusCode}


def tls_credentials(cert: bytes, key: bytes, ca: bytes | None = None, *,
                    require_client_auth: bool = False) -> grpc.ServerCredentials:
    """Server TLS credentials (PEM): the server's certificate chain and key; with ``ca``, client
    certificates are verified against it, and required with ``require_client_auth`` (as
    simple_switch_grpc's --grpc-server-cacert / --grpc-server-with-client-auth)."""
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                       require_client_auth=require_client_auth)


def _bytes_or_message(m: bytes | p4r.ReadResponse) -> bytes:
    """Read's response serializer: bytes go out as they are (already a ReadResponse)."""
    return m if isinstance(m, bytes) else m.SerializeToString()  # type: ignore[no-any-return]


def _grpc_code(code: int) -> grpc.StatusCode:
    return _GRPC_CODE.get(code, grpc.StatusCode.UNKNOWN)


class P4RuntimeServer(p4r_grpc.P4RuntimeServicer):  # type: ignore[misc]
    """Serves P4Runtime for ``device``.

    ``idle_sweep_interval``: seconds between idle-timeout sweeps (BMv2's ageing
    monitor: 1 s); an entry that stays idle is reported every second sweep.
    ``stream_max_messages`` / ``stream_max_bytes``: the bounds of each stream client's
    outbox (:mod:`softswitch.runtime.stream`)."""

    def __init__(self, device: Device, *, idle_sweep_interval: float = 1.0,
                 stream_max_messages: int = MAX_MESSAGES, stream_max_bytes: int = MAX_BYTES) -> None:
        self.device = device
        self.idle_sweep_interval = idle_sweep_interval
        self.stream_max_messages = stream_max_messages
        self.stream_max_bytes = stream_max_bytes
        self.pipeline: Pipeline | None = None
        self._saved: Pipeline | None = None
        self.sessions = Sessions(device.device_id)
        self._server: grpc.aio.Server | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self.digests = DigestQueue(self.sessions.send_to_primary)
        self.idle = IdleTracker()
        #: freezes long-lived objects after big Writes (see runtime/gcpause.py)
        self.gc = GcFreezer()
        self.port = 0
        self._compile_lock = asyncio.Lock()
        #: Writes and pipeline commits run one at a time: a Write yields to the event
        #: loop between slices of its updates, and must neither interleave with another
        #: Write nor see the pipeline change under it
        self._write_lock = asyncio.Lock()
        #: packet-ins dropped because there was no primary client
        self.packet_in_no_primary = 0
        device.on_digest = self._on_digest
        device.on_packet_in = self._on_packet_in

    # ----------------------------------------------------------------- lifecycle

    async def start(self, address: str = "127.0.0.1:0", credentials: grpc.ServerCredentials | None = None) -> int:
        """Bind and start serving (TLS with ``credentials``, see :func:`tls_credentials`); returns
        the bound port."""
        # no SO_REUSEPORT: a second switch on the same port must fail, not share it
        self._server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        self._add_to_server(self._server)
        if credentials is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, credentials)
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {address}")
        await self._server.start()
        self._idle_task = asyncio.create_task(self._idle_loop())
        return self.port

    def _add_to_server(self, server: grpc.aio.Server) -> None:
        """The P4Runtime service, as p4r_grpc.add_P4RuntimeServicer_to_server registers it,
        except that Read yields ReadResponses already serialized (bytes)."""
        R = p4r
        handlers = {
            "Write": grpc.unary_unary_rpc_method_handler(
                self.Write, request_deserializer=R.WriteRequest.FromString,
                response_serializer=R.WriteResponse.SerializeToString),
            "Read": grpc.unary_stream_rpc_method_handler(
                self.Read, request_deserializer=R.ReadRequest.FromString,
                response_serializer=_bytes_or_message),
            "SetForwardingPipelineConfig": grpc.unary_unary_rpc_method_handler(
                self.SetForwardingPipelineConfig,
                request_deserializer=R.SetForwardingPipelineConfigRequest.FromString,
                response_serializer=R.SetForwardingPipelineConfigResponse.SerializeToString),
            "GetForwardingPipelineConfig": grpc.unary_unary_rpc_method_handler(
                self.GetForwardingPipelineConfig,
                request_deserializer=R.GetForwardingPipelineConfigRequest.FromString,
                response_serializer=R.GetForwardingPipelineConfigResponse.SerializeToString),
            "StreamChannel": grpc.stream_stream_rpc_method_handler(
                self.StreamChannel, request_deserializer=R.StreamMessageRequest.FromString,
                response_serializer=R.StreamMessageResponse.SerializeToString),
            "Capabilities": grpc.unary_unary_rpc_method_handler(
                self.Capabilities, request_deserializer=R.CapabilitiesRequest.FromString,
                response_serializer=R.CapabilitiesResponse.SerializeToString),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("p4.v1.P4Runtime", handlers),))
        server.add_registered_method_handlers("p4.v1.P4Runtime", handlers)

    async def stop(self, grace: float | None = 0.2) -> None:
        if self._idle_task is not None:
            self._idle_task.cancel()
        for c in list(self.sessions.clients):
            c.end()
        self.digests.close()
        if self._server is not None:
            await self._server.stop(grace)

    def install(self, loaded: LoadedProgram, p4info: p4i.P4Info | None = None, cookie: int = 0,
                source: bytes | None = None) -> None:
        """Commit ``loaded`` to the device (all state reset) and serve it."""
        info = build_p4info(loaded.ir)
        if p4info is not None:
            problems = compare_p4info(info, p4info)
            if problems:
                raise ValueError("the P4Info does not match the program:\n  " + "\n  ".join(problems[:20]))
        pipe = Pipeline(info, loaded, cookie, source if source is not None else loaded.source.encode(), p4info)
        self.device.commit(loaded)
        self._commit(pipe)

    def _commit(self, pipe: Pipeline) -> None:
        self.digests.close()
        self.gc.reset()
        self.pipeline = pipe
        for t in pipe.tables.values():
            # entries are new; give const entries a hit time so idle scans start now
            model = pipe.loaded.compiled.tables.get(t.name)
            if model is not None:
                for e in model.entries():
                    e.last_hit_ns = e.last_hit_ns or model.clock_ns()
        self.idle.rebuild(pipe)

    def stats(self) -> dict[str, object]:
        """Counters of the P4Runtime layer (drops for slow or absent clients)."""
        return {"stream_dropped": dict(self.sessions.dropped()),
                "packet_in_no_primary": self.packet_in_no_primary,
                "digest_lists_dropped": self.digests.lists_dropped}

    def _check_primary(self, device_id: int, election_id: p4r.Uint128, role: str) -> None:
        self.sessions.check_primary(device_id, election_id, role)

    # ---------------------------------------------------------- device callbacks

    def _on_digest(self, type_name: str, values: tuple[int, ...]) -> None:
        pipe = self.pipeline
        if pipe is None:
            return
        did = pipe.digest_ids.get(type_name)
        if did is not None:
            self.digests.offer(did, tuple(values))

    def _on_packet_in(self, payload: bytes, metadata: dict[str, int]) -> None:
        pipe = self.pipeline
        msg = p4r.StreamMessageResponse()
        msg.packet.payload = payload
        if pipe is not None:
            for m in pipe.packet_in.values():
                if m.name in metadata:
                    msg.packet.metadata.add(metadata_id=m.id, value=encode(metadata[m.name], m.width))
        if self.sessions.primary("") is None:
            self.packet_in_no_primary += 1
            log.debug("packet-in dropped: no primary client")
        else:
            self.sessions.send_to_primary(msg)  # counted by the client when its outbox is full

    # ------------------------------------------------------------------ idle timeouts

    async def _idle_loop(self) -> None:
        while True:
            await asyncio.sleep(self.idle_sweep_interval)
            pipe = self.pipeline
            if pipe is None:
                continue
            try:
                # the sweep yields every few thousand entries, so that a sweep that
                # reports many entries does not stall forwarding
                gen = self.idle.sweep(pipe, self.sessions.send_to_primary)
                for _ in gen:
                    await asyncio.sleep(0)
            except Exception:  # a bug here must not kill the server
                log.exception("idle timeout sweep failed")

    def sweep_idle(self) -> int:
        """One whole ageing sweep now (tests, tools); the number of entries reported.
        See :mod:`softswitch.runtime.idle` for BMv2's semantics."""
        pipe = self.pipeline
        if pipe is None:
            return 0
        return self.idle.sweep_now(pipe, self.sessions.send_to_primary)

    # ------------------------------------------------------------------------ RPCs

    async def Capabilities(self, request: p4r.CapabilitiesRequest, context: grpc.aio.ServicerContext
                           ) -> p4r.CapabilitiesResponse:
        return p4r.CapabilitiesResponse(p4runtime_api_version=P4RUNTIME_API_VERSION)

    async def SetForwardingPipelineConfig(self, request: p4r.SetForwardingPipelineConfigRequest,
                                          context: grpc.aio.ServicerContext
                                          ) -> p4r.SetForwardingPipelineConfigResponse:
        A = p4r.SetForwardingPipelineConfigRequest
        try:
            self._check_primary(request.device_id, request.election_id, request.role)
            verified: Pipeline | None = None
            if request.action in (A.VERIFY, A.VERIFY_AND_SAVE, A.VERIFY_AND_COMMIT, A.RECONCILE_AND_COMMIT):
                # compiling takes from a fraction of a second to as long as a pathological
                # source makes it: do it off the event loop, so that packets, streams and
                # other RPCs are served meanwhile (one compile at a time)
                async with self._compile_lock:
                    verified = await asyncio.to_thread(self._verify, request.config)
                # the client may have lost primary status while the program compiled
                self._check_primary(request.device_id, request.election_id, request.role)
            async with self._write_lock:  # never in the middle of a Write
                self._set_pipeline(request, verified)
        except P4RTError as e:
            await context.abort(_grpc_code(e.code), e.message)
        except Exception as e:  # a compiler bug: report it, keep serving
            log.exception("SetForwardingPipelineConfig failed")
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(e).__name__}: {e}")
        return p4r.SetForwardingPipelineConfigResponse()

    def _verify(self, config: p4r.ForwardingPipelineConfig) -> Pipeline:
        try:
            source = config.p4_device_config.decode("utf-8")
        except UnicodeDecodeError as e:
            raise P4RTError(Code.INVALID_ARGUMENT,
                            f"p4_device_config must be P4 source text (UTF-8): {e}") from None
        if not source.strip():
            raise P4RTError(Code.INVALID_ARGUMENT, "p4_device_config is empty (it must be the P4 source)")
        try:
            check_self_contained(source)
        except DeviceConfigError as e:
            raise P4RTError(Code.INVALID_ARGUMENT, str(e)) from None
        try:
            loaded = self.device.compile(source, "program.p4")
        except CompileError as e:
            raise P4RTError(Code.INVALID_ARGUMENT, f"P4 program does not compile:\n{e}") from None
        try:
            expected = build_p4info(loaded.ir)
        except P4InfoError as e:
            raise P4RTError(Code.INVALID_ARGUMENT, f"P4Info generation failed: {e}") from None
        if config.HasField("p4info") and config.p4info.ByteSize():
            problems = compare_p4info(expected, config.p4info)
            if problems:
                raise P4RTError(Code.INVALID_ARGUMENT,
                                "the P4Info does not match the program (generate it with "
                                "`softswitch compile PROG.p4 --p4runtime-files X.p4info.txtpb`):\n  "
                                + "\n  ".join(problems[:20]))
            reported = config.p4info
        else:
            reported = expected
        # the internals follow the program; the client's P4Info is what Get answers
        return Pipeline(expected, loaded, config.cookie.cookie, config.p4_device_config, reported)

    def _set_pipeline(self, request: p4r.SetForwardingPipelineConfigRequest,
                      verified: Pipeline | None = None) -> None:
        """Carry out ``request``; ``verified`` is its config already compiled by _verify."""
        A = p4r.SetForwardingPipelineConfigRequest
        action = request.action

        def verify() -> Pipeline:
            return verified if verified is not None else self._verify(request.config)

        if action == A.VERIFY:
            verify()
        elif action == A.VERIFY_AND_SAVE:
            self._saved = verify()
        elif action == A.VERIFY_AND_COMMIT:
            pipe = verify()
            self.device.commit(pipe.loaded)
            self._commit(pipe)
            self._saved = None
        elif action == A.COMMIT:
            if self._saved is None:
                raise P4RTError(Code.FAILED_PRECONDITION, "COMMIT without a config saved by VERIFY_AND_SAVE")
            self.device.commit(self._saved.loaded)
            self._commit(self._saved)
            self._saved = None
        elif action == A.RECONCILE_AND_COMMIT:
            pipe = verify()
            if self.pipeline is None:
                self.device.commit(pipe.loaded)
                self._commit(pipe)
            elif pipe.source == self.pipeline.source:
                # same program: forwarding state is kept; the cookie and the P4Info the
                # client sent (which agrees with the program) are the new ones
                self.pipeline.cookie = pipe.cookie
                self.pipeline.reported_p4info = pipe.reported_p4info
            else:
                raise P4RTError(Code.UNIMPLEMENTED, "RECONCILE_AND_COMMIT of a different program would lose "
                                                    "forwarding state; use VERIFY_AND_COMMIT")
        else:
            raise P4RTError(Code.INVALID_ARGUMENT, f"unknown SetForwardingPipelineConfig action {action}")

    async def GetForwardingPipelineConfig(self, request: p4r.GetForwardingPipelineConfigRequest,
                                          context: grpc.aio.ServicerContext
                                          ) -> p4r.GetForwardingPipelineConfigResponse:
        if request.device_id != self.device.device_id:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"device id {request.device_id} is not this device")
        resp = p4r.GetForwardingPipelineConfigResponse()
        pipe = self.pipeline
        if pipe is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no forwarding pipeline config set")
        assert pipe is not None
        R = p4r.GetForwardingPipelineConfigRequest
        cfg = resp.config
        cfg.cookie.cookie = pipe.cookie
        if request.response_type in (R.ALL, R.P4INFO_AND_COOKIE):
            cfg.p4info.CopyFrom(pipe.reported_p4info)
        if request.response_type in (R.ALL, R.DEVICE_CONFIG_AND_COOKIE):
            cfg.p4_device_config = pipe.source
        return resp

    async def Write(self, request: p4r.WriteRequest, context: grpc.aio.ServicerContext) -> p4r.WriteResponse:
        try:
            self._check_primary(request.device_id, request.election_id, request.role)
            if self.pipeline is None:
                raise P4RTError(Code.FAILED_PRECONDITION, "no forwarding pipeline config set")
            if request.atomicity != p4r.WriteRequest.CONTINUE_ON_ERROR:
                raise P4RTError(Code.UNIMPLEMENTED, "only CONTINUE_ON_ERROR atomicity is supported")
        except P4RTError as e:
            await context.abort(_grpc_code(e.code), e.message)
        async with self._write_lock:
            # a Write that waited behind another one: the client may no longer be primary
            try:
                self._check_primary(request.device_id, request.election_id, request.role)
            except P4RTError as e:
                await context.abort(_grpc_code(e.code), e.message)
            pipe = self.pipeline
            assert pipe is not None  # commits never remove the pipeline
            errors, failed = await apply_updates(pipe, self.device, self.digests, self.idle,
                                                 list(request.updates))
            self.gc.written(len(errors) - failed)
        if failed:
            status = rpc_status.Status(code=rpc_code.UNKNOWN,
                                       message=f"{failed} of {len(errors)} updates failed")
            for err in errors:
                packed = any_pb2.Any()
                packed.Pack(err)
                status.details.append(packed)
            await context.abort(grpc.StatusCode.UNKNOWN, status.message,
                                trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),))
        return p4r.WriteResponse()

    async def Read(self, request: p4r.ReadRequest, context: grpc.aio.ServicerContext  # type: ignore[override]
                   ) -> AsyncIterator[bytes]:
        """Yields serialized ReadResponses (the Read method is registered with a
        serializer that sends bytes as they are, see :meth:`_add_to_server`)."""
        try:
            if request.device_id != self.device.device_id:
                raise P4RTError(Code.NOT_FOUND, f"device id {request.device_id} is not this device")
            if self.pipeline is None:
                raise P4RTError(Code.FAILED_PRECONDITION, "no forwarding pipeline config set")
            responses = await self._read_all(request)
        except P4RTError as e:
            await context.abort(_grpc_code(e.code), e.message)
            return
        for resp in responses:
            yield resp

    async def _read_all(self, request: p4r.ReadRequest) -> list[bytes]:
        """The whole answer as serialized ReadResponses, before anything is sent (so
        that an error is the RPC's status with nothing sent), encoded with the Write
        lock held (no Write or commit changes the tables under the encoding) and giving
        the event loop back every WRITE_SLICE_S, as Writes do: forwarding must go on
        while a big table is encoded."""
        responses: list[bytes] = []
        async with self._write_lock:
            if self.pipeline is None:  # cannot happen today: commits never remove it
                raise P4RTError(Code.FAILED_PRECONDITION, "no forwarding pipeline config set")
            slice_end = time.perf_counter() + WRITE_SLICE_S
            for _ in self._encode_read(request, responses):
                if time.perf_counter() > slice_end:
                    await asyncio.sleep(0)
                    slice_end = time.perf_counter() + WRITE_SLICE_S
        return responses or [b""]  # an empty ReadResponse when nothing matched

    def _encode_read(self, request: p4r.ReadRequest, responses: list[bytes]) -> Iterator[None]:
        """Append the answer to ``responses`` as serialized ReadResponses of about
        READ_CHUNK_BYTES: one response with all of a big register or of several full
        tables would exceed gRPC's 4 MB message limit. A ReadResponse is the
        concatenation of its ``entities`` fields, so table entries are encoded straight
        to bytes (runtime/tables.py: the part of an entry only a MODIFY changes is
        encoded once and kept) and other entities are serialized one by one. A step
        (None) is yielded every _READ_CHECK_EVERY table entries and after every other
        entity."""
        pipe = self.pipeline
        assert pipe is not None
        chunk: list[bytes] = []
        size = 0
        for entity in request.entities:
            if entity.WhichOneof("entity") == "table_entry":
                for n, te in enumerate(tables.read_table_entries_wire(pipe, entity.table_entry), 1):
                    field = tables.entity_wire(te)
                    if chunk and size + len(field) > READ_CHUNK_BYTES:
                        responses.append(b"".join(chunk))
                        chunk, size = [], 0
                    chunk.append(field)
                    size += len(field)
                    if n % _READ_CHECK_EVERY == 0:
                        yield None
                continue
            for out in self._read_one(entity):
                data = out.SerializeToString()
                field = b"\x0a" + tables.varint(len(data)) + data
                if chunk and size + len(field) > READ_CHUNK_BYTES:
                    responses.append(b"".join(chunk))
                    chunk, size = [], 0
                chunk.append(field)
                size += len(field)
                yield None
        if chunk:
            responses.append(b"".join(chunk))

    def _read_one(self, entity: p4r.Entity) -> Iterator[p4r.Entity]:
        pipe = self.pipeline
        assert pipe is not None
        which = entity.WhichOneof("entity")
        if which == "table_entry":
            for te in tables.read_table_entries(pipe, entity.table_entry):
                yield p4r.Entity(table_entry=te)
        elif which == "direct_counter_entry":
            for dc in tables.read_direct_counters(pipe, entity.direct_counter_entry):
                yield p4r.Entity(direct_counter_entry=dc)
        elif which == "counter_entry":
            for ce in externs.read_counters(pipe, entity.counter_entry):
                yield p4r.Entity(counter_entry=ce)
        elif which == "register_entry":
            for re in externs.read_registers(pipe, entity.register_entry):
                yield p4r.Entity(register_entry=re)
        elif which == "meter_entry":
            for me in externs.read_meters(pipe, entity.meter_entry):
                yield p4r.Entity(meter_entry=me)
        elif which == "packet_replication_engine_entry":
            for pre in externs.read_pre(self.device, entity.packet_replication_engine_entry):
                yield p4r.Entity(packet_replication_engine_entry=pre)
        elif which == "digest_entry":
            ids = [entity.digest_entry.digest_id] if entity.digest_entry.digest_id else list(self.digests.configs)
            for did in ids:
                cfg = self.digests.configs.get(did)
                if cfg is not None:
                    out = p4r.DigestEntry(digest_id=did)
                    out.config.CopyFrom(cfg)
                    yield p4r.Entity(digest_entry=out)
        elif which in ("action_profile_member", "action_profile_group"):
            # Programs with action profiles are refused at load time, so there is never
            # one to read; a wildcard read (what controllers issue when they clean up,
            # e.g. finsy's delete_all) is answered with nothing, as BMv2 does for a
            # program without action profiles.
            profile_id = getattr(entity, which).action_profile_id
            if profile_id:
                raise P4RTError(Code.NOT_FOUND, f"{which}: no action profile with id {profile_id}")
        else:
            raise P4RTError(Code.UNIMPLEMENTED, f"reading {which} is not supported")

    async def StreamChannel(self, request_iterator: AsyncIterator[p4r.StreamMessageRequest],
                            context: grpc.aio.ServicerContext) -> AsyncIterator[p4r.StreamMessageResponse]:
        client = StreamClient(context.peer(), max_messages=self.stream_max_messages,
                              max_bytes=self.stream_max_bytes)
        self.sessions.clients.append(client)
        reader = asyncio.create_task(self._read_stream(client, request_iterator, context))
        try:
            while True:
                msg = await client.get()
                if msg is None:
                    break
                if isinstance(msg, P4RTError):
                    # the status is set here, by the RPC's own task: aborting from the
                    # reader task could leave the stream open with nobody serving it
                    await context.abort(_grpc_code(msg.code), msg.message)
                    return
                yield msg
        finally:
            reader.cancel()
            self.sessions.remove(client)

    async def _read_stream(self, client: StreamClient, requests: AsyncIterator[p4r.StreamMessageRequest],
                           context: grpc.aio.ServicerContext) -> None:
        try:
            async for req in requests:
                which = req.WhichOneof("update")
                if which == "arbitration":
                    err = self.sessions.arbitrate(client, req.arbitration)
                    if err is not None:
                        client.end(err)
                        return
                elif which == "packet":
                    self._packet_out(client, req.packet)
                elif which == "digest_ack":
                    if client is self.sessions.primary(client.role):
                        self.digests.ack(req.digest_ack.digest_id, req.digest_ack.list_id)
                elif which is None:
                    self._stream_error(client, Code.INVALID_ARGUMENT, "empty StreamMessageRequest (no update set)")
                else:
                    self._stream_error(client, Code.UNIMPLEMENTED, f"stream message {which} is not supported")
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
        finally:
            client.end()

    def _stream_error(self, client: StreamClient, code: int, message: str,
                      packet: p4r.PacketOut | None = None) -> None:
        msg = p4r.StreamMessageResponse()
        msg.error.canonical_code = code
        msg.error.message = message
        if packet is not None:
            msg.error.packet_out.packet_out.CopyFrom(packet)
        client.send(msg)

    def _packet_out(self, client: StreamClient, pkt: p4r.PacketOut) -> None:
        if client.election_id is None or client is not self.sessions.primary(client.role):
            self._stream_error(client, Code.PERMISSION_DENIED, "packet-out from a client that is not primary", pkt)
            return
        pipe = self.pipeline
        if pipe is None:
            self._stream_error(client, Code.FAILED_PRECONDITION, "no forwarding pipeline config set", pkt)
            return
        metadata: dict[str, int] = {}
        try:
            for m in pkt.metadata:
                info = pipe.packet_out.get(m.metadata_id)
                if info is None:
                    raise P4RTError(Code.INVALID_ARGUMENT, f"unknown packet_out metadata id {m.metadata_id}")
                if info.name in metadata:
                    raise P4RTError(Code.INVALID_ARGUMENT, f"packet_out metadata {info.name} given twice")
                metadata[info.name] = decode(m.value, info.width, f"packet_out metadata {info.name}")
            self.device.packet_out(pkt.payload, metadata)
        except P4RTError as e:
            self._stream_error(client, e.code, e.message, pkt)
        except Exception as e:
            log.exception("packet-out failed")
            self._stream_error(client, Code.INTERNAL, f"packet-out failed: {type(e).__name__}: {e}", pkt)

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
from dataclasses import dataclass, field
from typing import Any

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
from softswitch.runtime.pipeline import Pipeline

__all__ = ["P4RuntimeServer", "P4RUNTIME_API_VERSION", "compare_p4info"]

log = logging.getLogger("softswitch.runtime")

P4RUNTIME_API_VERSION = "1.3.0"
#: the largest ReadResponse sent (bytes, about); a Read answers with as many as needed
READ_CHUNK_BYTES = 1 << 20

_GRPC_CODE = {c.value[0]: c for c in grpc.StatusCode}


def _grpc_code(code: int) -> grpc.StatusCode:
    return _GRPC_CODE.get(code, grpc.StatusCode.UNKNOWN)


def _u128(v: p4r.Uint128) -> int:
    return (v.high << 64) | v.low


def _set_u128(out: p4r.Uint128, value: int) -> None:
    out.high = value >> 64
    out.low = value & 0xFFFFFFFFFFFFFFFF


@dataclass(eq=False, slots=True)
class _Client:
    """One open StreamChannel."""

    #: messages to send; None ends the stream, a P4RTError ends it with that status
    queue: asyncio.Queue[p4r.StreamMessageResponse | P4RTError | None] = field(default_factory=asyncio.Queue)
    election_id: int | None = None
    role: str = ""
    peer: str = ""


def compare_p4info(expected: p4i.P4Info, given: p4i.P4Info) -> list[str]:
    """Differences in ids, names and shapes between the P4Info generated for a program
    and the one a client sent; empty when they agree."""
    problems: list[str] = []

    def objects(info: p4i.P4Info) -> dict[tuple[str, int], Any]:
        out: dict[tuple[str, int], Any] = {}
        for kind in ("tables", "actions", "counters", "direct_counters", "meters", "direct_meters",
                     "registers", "digests", "controller_packet_metadata", "value_sets", "action_profiles"):
            for o in getattr(info, kind):
                out[(kind, o.preamble.id)] = o
        return out

    exp, got = objects(expected), objects(given)
    for key in sorted(exp.keys() - got.keys()):
        problems.append(f"{key[0]} {exp[key].preamble.name!r} (id {key[1]}) missing from the P4Info sent")
    for key in sorted(got.keys() - exp.keys()):
        problems.append(f"{key[0]} {got[key].preamble.name!r} (id {key[1]}) is not in the program")
    for key in sorted(exp.keys() & got.keys()):
        e, g = exp[key], got[key]
        if e.preamble.name != g.preamble.name:
            problems.append(f"{key[0]} id {key[1]}: name {g.preamble.name!r}, the program has {e.preamble.name!r}")
        if key[0] == "tables":
            ef = [(m.id, m.name, m.bitwidth, m.match_type) for m in e.match_fields]
            gf = [(m.id, m.name, m.bitwidth, m.match_type) for m in g.match_fields]
            if ef != gf:
                problems.append(f"table {e.preamble.name}: match fields {gf}, the program has {ef}")
            eref = sorted((r.id, p4i.ActionRef.Scope.Name(r.scope)) for r in e.action_refs)
            gref = sorted((r.id, p4i.ActionRef.Scope.Name(r.scope) if r.scope in p4i.ActionRef.Scope.values()
                           else r.scope) for r in g.action_refs)
            if eref != gref:
                problems.append(f"table {e.preamble.name}: action refs (id, scope) {gref}, the program has {eref}")
            for attr in ("is_const_table", "idle_timeout_behavior", "const_default_action_id"):
                if getattr(e, attr) != getattr(g, attr):
                    problems.append(f"table {e.preamble.name}: {attr} {getattr(g, attr)}, "
                                    f"the program has {getattr(e, attr)}")
        elif key[0] in ("direct_counters", "direct_meters"):
            if e.direct_table_id != g.direct_table_id:
                problems.append(f"{key[0]} {e.preamble.name}: direct_table_id {g.direct_table_id}, "
                                f"the program has {e.direct_table_id}")
        elif key[0] in ("counters", "meters", "registers"):
            if e.size != g.size:
                problems.append(f"{key[0]} {e.preamble.name}: size {g.size}, the program has {e.size}")
            if key[0] == "registers" and e.type_spec != g.type_spec:
                problems.append(f"register {e.preamble.name}: type_spec differs from the program's")
        elif key[0] == "digests":
            if e.type_spec != g.type_spec:
                problems.append(f"digest {e.preamble.name}: type_spec differs from the program's")
        elif key[0] == "actions":
            ep = [(p.id, p.name, p.bitwidth) for p in e.params]
            gp = [(p.id, p.name, p.bitwidth) for p in g.params]
            if ep != gp:
                problems.append(f"action {e.preamble.name}: params {gp}, the program has {ep}")
        elif key[0] == "controller_packet_metadata":
            em = [(m.id, m.name, m.bitwidth) for m in e.metadata]
            gm = [(m.id, m.name, m.bitwidth) for m in g.metadata]
            if em != gm:
                problems.append(f"controller header {e.preamble.name}: metadata {gm}, the program has {em}")
    return problems


class P4RuntimeServer(p4r_grpc.P4RuntimeServicer):  # type: ignore[misc]
    """Serves P4Runtime for ``device``.

    ``idle_sweep_interval``: seconds between idle-timeout scans; an entry idle for longer
    than its ``idle_timeout_ns`` is reported at most once per interval for as long as
    it stays idle (BMv2 re-reports on each ageing sweep, default 1 s)."""

    def __init__(self, device: Device, *, idle_sweep_interval: float = 1.0) -> None:
        self.device = device
        self.idle_sweep_interval = idle_sweep_interval
        self.pipeline: Pipeline | None = None
        self._saved: Pipeline | None = None
        self._clients: list[_Client] = []
        self._server: grpc.aio.Server | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self.digests = DigestQueue(self._send_to_primary)
        self.port = 0
        self._sweep_no = 0
        self._compile_lock = asyncio.Lock()
        device.on_digest = self._on_digest
        device.on_packet_in = self._on_packet_in

    # ----------------------------------------------------------------- lifecycle

    async def start(self, address: str = "127.0.0.1:0") -> int:
        """Bind and start serving; returns the bound port."""
        # no SO_REUSEPORT: a second switch on the same port must fail, not share it
        self._server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        p4r_grpc.add_P4RuntimeServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot bind gRPC server to {address}")
        await self._server.start()
        self._idle_task = asyncio.create_task(self._idle_loop())
        return self.port

    async def stop(self, grace: float | None = 0.2) -> None:
        if self._idle_task is not None:
            self._idle_task.cancel()
        for c in list(self._clients):
            c.queue.put_nowait(None)
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
        self.pipeline = pipe
        for t in pipe.tables.values():
            # entries are new; give const entries a hit time so idle scans start now
            model = pipe.loaded.compiled.tables.get(t.name)
            if model is not None:
                for e in model.entries():
                    e.last_hit_ns = e.last_hit_ns or model.clock_ns()

    # ----------------------------------------------------------------- arbitration

    def _primary(self, role: str = "") -> _Client | None:
        best: _Client | None = None
        for c in self._clients:
            if c.role == role and c.election_id is not None and (best is None or c.election_id > best.election_id):  # type: ignore[operator]
                best = c
        return best

    def _arbitration_msg(self, client: _Client) -> p4r.StreamMessageResponse:
        primary = self._primary(client.role)
        msg = p4r.StreamMessageResponse()
        a = msg.arbitration
        a.device_id = self.device.device_id
        if client.role:
            a.role.name = client.role
        if primary is not None and primary.election_id is not None:
            _set_u128(a.election_id, primary.election_id)
        if primary is None:
            a.status.code = rpc_code.NOT_FOUND
            a.status.message = "no primary"
        elif primary is client:
            a.status.code = rpc_code.OK
            a.status.message = "you are the primary"
        else:
            a.status.code = rpc_code.ALREADY_EXISTS
            a.status.message = "a client with a higher election id is primary"
        return msg

    def _announce(self, role: str) -> None:
        for c in self._clients:
            if c.role == role and c.election_id is not None:
                c.queue.put_nowait(self._arbitration_msg(c))

    def _check_primary(self, device_id: int, election_id: p4r.Uint128, role: str) -> None:
        if device_id != self.device.device_id:
            raise P4RTError(Code.NOT_FOUND, f"device id {device_id} is not this device ({self.device.device_id})")
        primary = self._primary(role)
        if primary is None:
            raise P4RTError(Code.PERMISSION_DENIED, "no primary client: open a StreamChannel and send "
                                                    "a MasterArbitrationUpdate first")
        if primary.election_id != _u128(election_id):
            raise P4RTError(Code.PERMISSION_DENIED,
                            f"election id {_u128(election_id)} is not the primary's ({primary.election_id})")

    def _send_to_primary(self, msg: p4r.StreamMessageResponse) -> bool:
        primary = self._primary("")
        if primary is None:
            return False
        primary.queue.put_nowait(msg)
        return True

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
        if not self._send_to_primary(msg):
            log.debug("packet-in dropped: no primary client")

    # ------------------------------------------------------------------ idle timeouts

    async def _idle_loop(self) -> None:
        while True:
            await asyncio.sleep(self.idle_sweep_interval)
            try:
                self.sweep_idle()
            except Exception:  # a bug here must not kill the server
                log.exception("idle timeout sweep failed")

    def sweep_idle(self) -> int:
        """One ageing sweep, as BMv2's AgeingMonitor: every entry idle for longer than
        its ``idle_timeout_ns`` is reported, except those reported by the previous
        sweep; so an entry that stays idle is reported every second sweep (2 s with
        BMv2's default 1 s interval) and never deleted. Returns the number reported."""
        pipe = self.pipeline
        if pipe is None:
            return 0
        self._sweep_no += 1
        msg = p4r.StreamMessageResponse()
        n = 0
        for info in pipe.tables.values():
            if not info.supports_timeout:
                continue
            model = pipe.loaded.compiled.tables.get(info.name)
            if model is None:
                continue
            now = model.clock_ns()  # the clock of this table's hit and insertion times
            for e in model.entries():
                if e.idle_timeout_ns <= 0 or now - e.last_hit_ns < e.idle_timeout_ns:
                    continue
                if e.extra.get("idle_reported_sweep") == self._sweep_no - 1 and e.last_notified_ns > e.last_hit_ns:
                    continue  # reported by the previous sweep
                e.extra["idle_reported_sweep"] = self._sweep_no
                e.last_notified_ns = now
                out = tables.encode_entry(pipe, info, e, p4r.TableEntry())
                out.ClearField("counter_data")
                out.time_since_last_hit.elapsed_ns = now - e.last_hit_ns
                msg.idle_timeout_notification.table_entry.append(out)
                n += 1
        if n:
            msg.idle_timeout_notification.timestamp = time.time_ns()
            self._send_to_primary(msg)
        return n

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
        errors: list[p4r.Error] = []
        failed = 0
        for update in request.updates:
            err = p4r.Error(canonical_code=rpc_code.OK)
            try:
                self._write_one(update)
            except P4RTError as e:
                err.canonical_code = e.code
                err.message = e.message
                failed += 1
            except Exception as e:  # a bug must be reported as one failed update, not a dead RPC
                log.exception("write failed")
                err.canonical_code = rpc_code.INTERNAL
                err.message = f"internal error: {type(e).__name__}: {e}"
                failed += 1
            errors.append(err)
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

    def _write_one(self, update: p4r.Update) -> None:
        pipe = self.pipeline
        assert pipe is not None
        if update.type not in (p4r.Update.INSERT, p4r.Update.MODIFY, p4r.Update.DELETE):
            raise P4RTError(Code.INVALID_ARGUMENT, "update type unspecified")
        entity = update.entity
        which = entity.WhichOneof("entity")
        if which == "table_entry":
            tables.write_table_entry(pipe, update.type, entity.table_entry)
        elif which == "direct_counter_entry":
            tables.write_direct_counter(pipe, update.type, entity.direct_counter_entry)
        elif which == "counter_entry":
            externs.write_counter(pipe, update.type, entity.counter_entry)
        elif which == "register_entry":
            externs.write_register(pipe, update.type, entity.register_entry)
        elif which == "meter_entry":
            externs.write_meter(pipe, update.type, entity.meter_entry)
        elif which == "packet_replication_engine_entry":
            externs.write_pre(self.device, update.type, entity.packet_replication_engine_entry)
        elif which == "digest_entry":
            self._write_digest(pipe, update.type, entity.digest_entry)
        elif which is None:
            raise P4RTError(Code.INVALID_ARGUMENT, "update without an entity")
        else:
            raise P4RTError(Code.UNIMPLEMENTED, f"{which} is not supported")

    def _write_digest(self, pipe: Pipeline, op: int, de: p4r.DigestEntry) -> None:
        d = pipe.digests.get(de.digest_id)
        if d is None:
            raise P4RTError(Code.INVALID_ARGUMENT, f"unknown digest id {de.digest_id}")
        exists = de.digest_id in self.digests.configs
        if op == p4r.Update.INSERT and exists:
            raise P4RTError(Code.ALREADY_EXISTS, f"digest {d.preamble.name} is already configured")
        if op in (p4r.Update.MODIFY, p4r.Update.DELETE) and not exists:
            raise P4RTError(Code.NOT_FOUND, f"digest {d.preamble.name} is not configured")
        if op == p4r.Update.DELETE:
            self.digests.configure(de.digest_id, (), None)
            return
        c = de.config
        if c.max_timeout_ns < 0 or c.max_list_size < 0 or c.ack_timeout_ns < 0:
            raise P4RTError(Code.INVALID_ARGUMENT, f"digest {d.preamble.name}: negative config value")
        widths = tuple(w for _, w in pipe.loaded.digests.get(d.preamble.name, []))
        if not widths and d.type_spec.HasField("struct"):
            s = pipe.p4info.type_info.structs.get(d.type_spec.struct.name)
            if s is not None:
                widths = tuple(m.type_spec.bitstring.bit.bitwidth for m in s.members)
        cfg = p4r.DigestEntry.Config()
        cfg.CopyFrom(c)
        self.digests.configure(de.digest_id, widths, cfg)

    async def Read(self, request: p4r.ReadRequest, context: grpc.aio.ServicerContext
                   ) -> AsyncIterator[p4r.ReadResponse]:
        try:
            if request.device_id != self.device.device_id:
                raise P4RTError(Code.NOT_FOUND, f"device id {request.device_id} is not this device")
            if self.pipeline is None:
                raise P4RTError(Code.FAILED_PRECONDITION, "no forwarding pipeline config set")
            # all entities first, so that an error is the RPC's status with nothing sent
            found = [out for entity in request.entities for out in self._read_one(entity)]
        except P4RTError as e:
            await context.abort(_grpc_code(e.code), e.message)
            return
        # split into responses of at most READ_CHUNK_BYTES: one ReadResponse with all of a
        # big register or of several full tables exceeds gRPC's 4 MB message limit
        resp = p4r.ReadResponse()
        size = 0
        for out in found:
            n = out.ByteSize() + 8
            if resp.entities and size + n > READ_CHUNK_BYTES:
                yield resp
                resp, size = p4r.ReadResponse(), 0
            resp.entities.append(out)
            size += n
        yield resp

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
        client = _Client(peer=context.peer())
        self._clients.append(client)
        reader = asyncio.create_task(self._read_stream(client, request_iterator, context))
        try:
            while True:
                msg = await client.queue.get()
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
            if client in self._clients:
                self._clients.remove(client)
            if client.election_id is not None:
                self._announce(client.role)

    async def _read_stream(self, client: _Client, requests: AsyncIterator[p4r.StreamMessageRequest],
                           context: grpc.aio.ServicerContext) -> None:
        try:
            async for req in requests:
                which = req.WhichOneof("update")
                if which == "arbitration":
                    err = self._arbitrate(client, req.arbitration)
                    if err is not None:
                        client.queue.put_nowait(err)
                        return
                elif which == "packet":
                    self._packet_out(client, req.packet)
                elif which == "digest_ack":
                    if client is self._primary(client.role):
                        self.digests.ack(req.digest_ack.digest_id, req.digest_ack.list_id)
                elif which is None:
                    self._stream_error(client, Code.INVALID_ARGUMENT, "empty StreamMessageRequest (no update set)")
                else:
                    self._stream_error(client, Code.UNIMPLEMENTED, f"stream message {which} is not supported")
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
        finally:
            client.queue.put_nowait(None)

    def _arbitrate(self, client: _Client, a: p4r.MasterArbitrationUpdate) -> P4RTError | None:
        if a.device_id != self.device.device_id:
            return P4RTError(Code.NOT_FOUND, f"device id {a.device_id} is not this device ({self.device.device_id})")
        role = a.role.name if a.HasField("role") else ""
        if a.HasField("role") and a.role.HasField("config"):
            return P4RTError(Code.UNIMPLEMENTED, "role configs are not supported")
        election = _u128(a.election_id) if a.HasField("election_id") else None
        if election is None:
            return P4RTError(Code.INVALID_ARGUMENT, "MasterArbitrationUpdate without election_id")
        for c in self._clients:
            if c is not client and c.role == role and c.election_id == election:
                return P4RTError(Code.INVALID_ARGUMENT,
                                 f"election id {election} is already used by another client")
        old_role = client.role
        old_primary = self._primary(role)
        client.role, client.election_id = role, election
        if old_role != role:
            self._announce(old_role)
        if self._primary(role) is not old_primary:
            self._announce(role)  # everybody in the role learns the new primary
        else:
            client.queue.put_nowait(self._arbitration_msg(client))
        return None

    def _stream_error(self, client: _Client, code: int, message: str,
                      packet: p4r.PacketOut | None = None) -> None:
        msg = p4r.StreamMessageResponse()
        msg.error.canonical_code = code
        msg.error.message = message
        if packet is not None:
            msg.error.packet_out.packet_out.CopyFrom(packet)
        client.queue.put_nowait(msg)

    def _packet_out(self, client: _Client, pkt: p4r.PacketOut) -> None:
        if client.election_id is None or client is not self._primary(client.role):
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

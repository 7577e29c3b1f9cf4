"""The v1model packet pipeline with BMv2 simple_switch's observable behaviour.

parser -> verifyChecksum -> ingress -> traffic manager (clone I2E, digest, resubmit,
multicast / unicast / drop) -> egress -> (clone E2E, drop) -> computeChecksum ->
deparser -> (recirculate | transmit). The order of the post-ingress and post-egress
steps follows ``simple_switch.cpp`` (ingress_thread / egress_thread).

Everything runs to completion, single threaded: :meth:`Pipeline.process` returns the
frames to transmit and the digests to report, in the order BMv2 would produce them
with one ingress and one egress thread.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from softswitch import ir
from softswitch.arch.bits import make_valid_bytes
from softswitch.arch.fieldlists import FieldPath
from softswitch.arch.v1model import (
    DROP_PORT,
    INSTANCE_EGRESS_CLONE,
    INSTANCE_INGRESS_CLONE,
    INSTANCE_NORMAL,
    INSTANCE_RECIRC,
    INSTANCE_REPLICATION,
    INSTANCE_RESUBMIT,
    PacketContext,
    V1ModelAssertion,
    get_std,
    make_std_writer,
    set_std,
)
from softswitch.interp.api import CompiledProgram
from softswitch.interp.packet import PacketIn, PacketOut  # the interpreter's packet model
from softswitch.interp.values import Struct, copy_value

__all__ = ["Pipeline", "Result", "Replicas", "MAX_PASSES", "ProgramShapeError"]

log = logging.getLogger("softswitch.v1model")

#: resubmit + recirculate passes allowed per received frame before it is dropped
MAX_PASSES = 32


class ProgramShapeError(Exception):
    """The program's main is not a V1Switch of the expected shape."""


class Replicas(Protocol):
    """What the pipeline reads from the device's PRE state (duck typed: Device)."""

    @property
    def multicast_groups(self) -> Mapping[int, Sequence[Any]]: ...

    @property
    def clone_sessions(self) -> Mapping[int, Any]: ...


@dataclass(slots=True)
class Result:
    """Outcome of one received frame: ``events`` in order, each ("tx", port, frame)
    or ("digest", type name, values); ``drops`` packet instances dropped."""

    events: list[tuple[str, Any, Any]] = field(default_factory=list)
    drops: int = 0
    errors: int = 0


@dataclass(slots=True)
class _IngressJob:
    frame: bytes
    port: int
    meta: Struct | None  # None: a fresh packet
    std: Struct | None
    passes: int


@dataclass(slots=True)
class _EgressJob:
    port: int
    hdr: Any
    meta: Struct
    std: Struct
    payload: bytes
    ingress_length: int
    length_reg: int
    passes: int
    truncate: int | None = None
    valid_bytes: int | None = None  # of hdr, when known (saves recomputing it)


def _copy_fields(fields: tuple[FieldPath, ...], src_meta: Struct, src_std: Struct,
                 dst_meta: Struct, dst_std: Struct) -> None:
    for root, path in fields:
        src: Any = src_meta if root == "meta" else src_std
        dst: Any = dst_meta if root == "meta" else dst_std
        if not path:  # the whole struct
            for k, v in src.fields.items():
                dst.fields[k] = copy_value(v)
            continue
        try:
            for p in path[:-1]:
                src, dst = src.fields[p], dst.fields[p]
            dst.fields[path[-1]] = copy_value(src.fields[path[-1]])
        except (KeyError, AttributeError):
            log.warning("preserved field %s.%s does not exist", root, ".".join(path))


class Pipeline:
    """One committed program on one device. ``pre`` supplies multicast groups and clone
    sessions (read at each use, so P4Runtime updates apply immediately)."""

    def __init__(self, compiled: CompiledProgram, pre: Replicas, *,
                 clock_ns: Callable[[], int] = time.monotonic_ns, arch: Any = None,
                 fast: bool = True) -> None:
        program = compiled.program
        main = program.main
        if main is None or len(main.args) != 6:
            raise ProgramShapeError(
                "the program's main must be V1Switch(parser, verifyChecksum, ingress, egress, "
                f"computeChecksum, deparser); got {main.package + str(main.args) if main else 'no main'}")
        (self.parser, self.verify, self.ingress, self.egress, self.compute,
         self.deparser) = main.args
        pdecl = program.parsers.get(self.parser)
        if pdecl is None or len(pdecl.params) != 4:
            raise ProgramShapeError(f"V1Switch parser {self.parser} must have 4 parameters")
        self.hdr_type: ir.Type = pdecl.params[1].type
        self.meta_type: ir.Type = pdecl.params[2].type
        self.std_type: ir.Type = pdecl.params[3].type
        self._valid_bytes = make_valid_bytes(self.hdr_type)
        # per-packet standard_metadata writes, one generated function per group
        st = self.std_type
        self._w_fresh = make_std_writer(st, ("ingress_port", "instance_type", "ingress_global_timestamp",
                                             "packet_length"))
        self._w_length = make_std_writer(st, ("packet_length",))
        self._w_parser_error = make_std_writer(st, ("parser_error",))
        self._w_instance = make_std_writer(st, ("instance_type",))
        self._w_egress = make_std_writer(st, ("egress_global_timestamp", "enq_timestamp", "enq_qdepth",
                                              "deq_timedelta", "deq_qdepth", "egress_port", "egress_spec",
                                              "packet_length"))
        self.compiled = compiled
        # the per-packet callables, looked up once when the compiled program offers them
        # (softswitch.interp's Compiled does); else through the CompiledProgram protocol
        self._run_parser = self._parser_runner(self.parser)
        self._run_verify = self._control_runner(self.verify)
        self._run_ingress_ctl = self._control_runner(self.ingress)
        self._run_egress_ctl = self._control_runner(self.egress)
        self._run_compute = self._control_runner(self.compute)
        self._run_deparser = self._control_runner(self.deparser)
        self._mk_hdr = self._value_maker(self.hdr_type)
        self._mk_meta = self._value_maker(self.meta_type)
        self._mk_std = self._value_maker(self.std_type)
        self.pre = pre
        self.clock_ns = clock_ns
        self.start_ns = clock_ns()
        #: the generated per-program packet path (arch/fastpath.py), None: generic only
        self._fast: Callable[[int, bytes, Result], None] | None = None
        self.fast_path_reason = "no architecture given"
        if arch is not None and fast:
            from softswitch.arch.fastpath import build_fast_path
            self._fast, self.fast_path_reason = build_fast_path(self, arch)

    # ---------------------------------------------------------------- helpers

    def _ts_us(self, now_ns: int) -> int:
        return ((now_ns - self.start_ns) // 1000) & ((1 << 48) - 1)

    def _parser_runner(self, name: str) -> Callable[[list[Any], Any], str]:
        get = getattr(self.compiled, "parser_runner", None)
        if get is not None:
            try:
                run: Callable[[list[Any], Any], str] = get(name)
                return run
            except KeyError:  # reported per packet by run_parser, as before
                pass
        compiled = self.compiled
        return lambda args, ctx: compiled.run_parser(name, args, ctx)

    def _control_runner(self, name: str) -> Callable[[list[Any], Any], None]:
        get = getattr(self.compiled, "control_runner", None)
        if get is not None:
            try:
                run: Callable[[list[Any], Any], None] = get(name)
                return run
            except KeyError:  # reported per packet by run_control, as before
                pass
        compiled = self.compiled
        return lambda args, ctx: compiled.run_control(name, args, ctx)

    def _value_maker(self, t: ir.Type) -> Callable[[], Any]:
        get = getattr(self.compiled, "value_maker", None)
        if get is not None:
            mk: Callable[[], Any] = get(t)
            return mk
        compiled = self.compiled
        return lambda: compiled.new_value(t)

    def _new_std(self) -> Struct:
        v = self._mk_std()
        assert isinstance(v, Struct)
        return v

    def _new_meta(self) -> Struct:
        v = self._mk_meta()
        assert isinstance(v, Struct)
        return v

    def _parse(self, frame: bytes, std: Struct, meta: Struct, ctx: PacketContext) -> tuple[Any, str, bytes]:
        hdr = self._mk_hdr()
        pin = PacketIn(frame)
        err = self._run_parser([pin, hdr, meta, std], ctx)
        return hdr, err, pin.remaining()

    # ------------------------------------------------------------------ entry

    def process(self, port: int, frame: bytes) -> Result:
        """Run one frame received on ``port`` to completion."""
        res = Result()
        if self._fast is not None:
            try:
                self._fast(port, frame, res)
            except V1ModelAssertion as e:
                log.error("packet dropped: %s", e)
                res.drops += 1
                res.errors += 1
            return res
        self._drain(deque([_IngressJob(frame, port, None, None, 0)]), deque(), res)
        return res

    def _drain(self, ingress_q: deque[_IngressJob], egress_q: deque[_EgressJob], res: Result) -> None:
        while ingress_q or egress_q:
            try:
                if egress_q:
                    self._run_egress(egress_q.popleft(), ingress_q, egress_q, res)
                else:
                    self._run_ingress(ingress_q.popleft(), ingress_q, egress_q, res)
            except V1ModelAssertion as e:
                log.error("packet dropped: %s", e)
                res.drops += 1
                res.errors += 1

    # ------------------------------------------------------- fast path fallbacks

    def slow_after_ingress(self, frame: bytes, port: int, std: Struct, meta: Struct, hdr: Any,
                           ctx: PacketContext, now: int, parsed_bytes: int, payload: bytes,
                           hdr_bytes: int, res: Result) -> None:
        """The fast path hands a packet over after its ingress control."""
        ingress_q: deque[_IngressJob] = deque()
        egress_q: deque[_EgressJob] = deque()
        self._post_ingress(_IngressJob(frame, port, None, None, 0), std, meta, hdr, ctx, now, parsed_bytes,
                           payload, hdr_bytes, ingress_q, egress_q, res)
        self._drain(ingress_q, egress_q, res)

    def slow_after_egress(self, port: int, hdr: Any, meta: Struct, std: Struct, ctx: PacketContext,
                          payload: bytes, ingress_length: int, length_reg: int, res: Result) -> None:
        """The fast path hands a packet over after its egress control."""
        ingress_q: deque[_IngressJob] = deque()
        egress_q: deque[_EgressJob] = deque()
        job = _EgressJob(port, hdr, meta, std, payload, ingress_length, length_reg, 0, ctx.truncate)
        self._post_egress(job, hdr, meta, std, ctx, length_reg, ingress_q, egress_q, res)
        self._drain(ingress_q, egress_q, res)

    # ---------------------------------------------------------------- ingress

    def _run_ingress(self, job: _IngressJob, ingress_q: deque[_IngressJob],
                     egress_q: deque[_EgressJob], res: Result) -> None:
        now = self.clock_ns()
        frame = job.frame
        ingress_length = len(frame)
        std: Struct
        if job.std is None:
            std = self._mk_std()
            # simple_switch receive_(): reset metadata, set ingress port, length,
            # instance type and the ingress timestamp
            self._w_fresh(std.fields, job.port, INSTANCE_NORMAL, self._ts_us(now), ingress_length)
        else:
            std = job.std
            self._w_length(std.fields, ingress_length)
        meta: Struct = job.meta if job.meta is not None else self._mk_meta()
        ctx = PacketContext(ingress_length, now, std, "parser")
        # the parse (as _parse, inline)
        hdr = self._mk_hdr()
        pin = PacketIn(frame)
        err = self._run_parser([pin, hdr, meta, std], ctx)
        payload = pin.remaining()
        parsed_bytes = self._valid_bytes(hdr)
        # a parser error does not drop the packet: BMv2 records it and runs ingress
        self._w_parser_error(std.fields, err)
        ctx.payload = payload
        ctx.stage = "verify"
        self._run_verify([hdr, meta], ctx)
        ctx.stage = "ingress"
        self._run_ingress_ctl([hdr, meta, std], ctx)
        self._post_ingress(job, std, meta, hdr, ctx, now, parsed_bytes, payload, self._valid_bytes(hdr),
                           ingress_q, egress_q, res)

    def _post_ingress(self, job: _IngressJob, std: Struct, meta: Struct, hdr: Any, ctx: PacketContext,
                      now: int, parsed_bytes: int, payload: bytes, hdr_bytes: int,
                      ingress_q: deque[_IngressJob], egress_q: deque[_EgressJob], res: Result) -> None:
        """What simple_switch does after the ingress control (also the fast path's
        fallback for clones, resubmits and multicast)."""
        ingress_length = len(job.frame)
        # BMv2's packet-length register: ingress length adjusted by headers made
        # valid / invalid during ingress
        length_reg = max(0, ingress_length + hdr_bytes - parsed_bytes)
        sf = std.fields
        egress_spec = int(sf.get("egress_spec", 0))
        mgid = int(sf.get("mcast_grp", 0))

        # INGRESS CLONING: the original frame, parsed again, metadata reset except the
        # preserved fields
        if ctx.clone is not None:
            session = self.pre.clone_sessions.get(ctx.clone.session)
            if session is None:
                log.debug("I2E clone to unconfigured session %d ignored", ctx.clone.session)
            else:
                cstd, cmeta = self._new_std(), self._new_meta()
                set_std(cstd, "ingress_port", job.port)  # the parser may branch on it
                pctx = PacketContext(packet_length=ingress_length, now_ns=now, std=cstd, stage="parser")
                chdr, _, cpayload = self._parse(job.frame, cstd, cmeta, pctx)
                cstd, cmeta = self._new_std(), self._new_meta()
                _copy_fields(ctx.clone.fields, meta, std, cmeta, cstd)
                set_std(cstd, "instance_type", INSTANCE_INGRESS_CLONE)
                for rep in session.replicas:
                    egress_q.append(_EgressJob(
                        rep.egress_port, copy_value(chdr), cmeta.copy(), self._with_rid(cstd, rep.instance),
                        cpayload, ingress_length, ingress_length, job.passes,
                        session.packet_length_bytes or None))

        # LEARNING: BMv2 emits the digest whatever happens to the packet next
        if ctx.digest is not None:
            res.events.append(("digest", ctx.digest[0], ctx.digest[1]))

        # RESUBMIT: the original frame re-enters ingress with reset metadata
        if ctx.resubmit is not None:
            if job.passes + 1 >= MAX_PASSES:
                log.error("packet dropped after %d resubmit/recirculate passes", MAX_PASSES)
                res.drops += 1
                return
            rstd, rmeta = self._new_std(), self._new_meta()
            _copy_fields(ctx.resubmit, meta, std, rmeta, rstd)
            set_std(rstd, "instance_type", INSTANCE_RESUBMIT)
            ingress_q.appendleft(_IngressJob(job.frame, job.port, rmeta, rstd, job.passes + 1))
            return

        # MULTICAST: the original is replaced by one copy per PRE replica
        if mgid != 0:
            set_std(std, "instance_type", INSTANCE_REPLICATION)
            replicas = list(self.pre.multicast_groups.get(mgid, ()))
            if not replicas:
                res.drops += 1
            for rep in replicas:
                egress_q.append(_EgressJob(
                    rep.egress_port, copy_value(hdr), meta.copy(), self._with_rid(std, rep.instance),
                    payload, ingress_length, length_reg, job.passes, ctx.truncate, hdr_bytes))
            return

        if egress_spec == DROP_PORT:
            res.drops += 1
            return
        self._w_instance(std.fields, INSTANCE_NORMAL)
        egress_q.append(_EgressJob(egress_spec, hdr, meta, std, payload, ingress_length, length_reg,
                                   job.passes, ctx.truncate, hdr_bytes))

    @staticmethod
    def _with_rid(std: Struct, rid: int) -> Struct:
        s = std.copy()
        set_std(s, "egress_rid", rid)
        return s

    # ----------------------------------------------------------------- egress

    def _run_egress(self, job: _EgressJob, ingress_q: deque[_IngressJob],
                    egress_q: deque[_EgressJob], res: Result) -> None:
        now = self.clock_ns()
        std, hdr, meta = job.std, job.hdr, job.meta
        ts = self._ts_us(now)
        # egress_global_timestamp, enq_timestamp, enq_qdepth, deq_timedelta, deq_qdepth,
        # egress_port, egress_spec, packet_length. BMv2 sets egress_spec to drop_port + 1
        # (512), which a 9-bit field cannot hold; anything but 511 means "not dropped"
        self._w_egress(std.fields, ts, ts, 0, 0, 0, job.port, 0, job.length_reg)
        ctx = PacketContext(job.ingress_length, now, std, "egress", job.payload)
        ctx.truncate = job.truncate
        before = job.valid_bytes if job.valid_bytes is not None else self._valid_bytes(hdr)
        self._run_egress_ctl([hdr, meta, std], ctx)
        length_reg = max(0, job.length_reg + self._valid_bytes(hdr) - before)
        self._post_egress(job, hdr, meta, std, ctx, length_reg, ingress_q, egress_q, res)

    def _post_egress(self, job: _EgressJob, hdr: Any, meta: Struct, std: Struct, ctx: PacketContext,
                     length_reg: int, ingress_q: deque[_IngressJob], egress_q: deque[_EgressJob],
                     res: Result) -> None:
        """What simple_switch does after the egress control (also the fast path's
        fallback for E2E clones, drops in egress and recirculation)."""

        # EGRESS CLONING: headers as they are now, metadata reset except preserved
        if ctx.clone is not None:
            session = self.pre.clone_sessions.get(ctx.clone.session)
            if session is None:
                log.debug("E2E clone to unconfigured session %d ignored", ctx.clone.session)
            else:
                cstd, cmeta = self._new_std(), self._new_meta()
                _copy_fields(ctx.clone.fields, meta, std, cmeta, cstd)
                set_std(cstd, "instance_type", INSTANCE_EGRESS_CLONE)
                for rep in session.replicas:
                    egress_q.append(_EgressJob(
                        rep.egress_port, copy_value(hdr), cmeta.copy(), self._with_rid(cstd, rep.instance),
                        job.payload, job.ingress_length, length_reg, job.passes,
                        session.packet_length_bytes or None))

        if int(std.fields.get("egress_spec", 0)) == DROP_PORT:
            res.drops += 1
            return

        ctx.stage = "compute"
        self._run_compute([hdr, meta], ctx)
        pout = PacketOut()
        ctx.stage = "deparser"
        self._run_deparser([pout, hdr], ctx)
        frame = pout.data + job.payload
        if ctx.truncate is not None and ctx.truncate < len(frame):
            frame = frame[:ctx.truncate]

        # RECIRCULATE: the deparsed frame re-enters ingress, metadata reset
        if ctx.recirculate is not None:
            if job.passes + 1 >= MAX_PASSES:
                log.error("packet dropped after %d resubmit/recirculate passes", MAX_PASSES)
                res.drops += 1
                return
            rstd, rmeta = self._new_std(), self._new_meta()
            _copy_fields(ctx.recirculate, meta, std, rmeta, rstd)
            set_std(rstd, "instance_type", INSTANCE_RECIRC)
            ingress_q.appendleft(_IngressJob(frame, int(get_std(std, "ingress_port")), rmeta, rstd,
                                             job.passes + 1))
            return

        res.events.append(("tx", job.port, frame))

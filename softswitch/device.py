"""A switch device: one loaded program for one architecture, its state, its ports.

Contract between the packet side (architecture, ports) and the P4Runtime server.
The device is NOT thread-safe: every method and callback runs on the one asyncio
event-loop thread of the process (ports feed packets from that loop).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from softswitch import ir
from softswitch.interp.api import CompiledProgram

__all__ = ["Replica", "CloneSession", "LoadedProgram", "Device", "CompileError"]

log = logging.getLogger("softswitch.device")


class CompileError(Exception):
    """A program that cannot be loaded. ``str(e)`` holds p4c-style diagnostics, one per
    line: ``file:line:col: error: message``."""


@dataclass(frozen=True, slots=True)
class Replica:
    egress_port: int
    instance: int  # P4Runtime "instance" (egress_rid)


@dataclass(slots=True)
class CloneSession:
    replicas: list[Replica]
    class_of_service: int = 0
    packet_length_bytes: int = 0  # 0 = no truncation


@dataclass(slots=True)
class LoadedProgram:
    """A compiled program ready to be committed to a device."""

    source: str
    filename: str
    ir: ir.Program
    compiled: CompiledProgram
    #: controller header layouts from @controller_header("packet_in"/"packet_out"):
    #: list of (field name, bit width) in order; None when the program has none.
    packet_in_header: list[tuple[str, int]] | None = None
    packet_out_header: list[tuple[str, int]] | None = None
    #: digest struct type name -> list of (field name, bit width)
    digests: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    #: (additive) the v1model architecture object the program was compiled with
    arch: Any = None


def _controller_header(program: ir.Program, kind: str) -> list[tuple[str, int]] | None:
    from softswitch.arch.bits import scalar_width

    for t in program.types.values():
        if not isinstance(t, ir.HeaderT):
            continue
        for a in t.annotations:
            if a.name == "controller_header" and a.args and a.args[0] == kind:
                layout = []
                for name, ft in t.fields:
                    w = scalar_width(ft)
                    if w is None:
                        raise CompileError(f"{a.pos}: error: @controller_header header {t.name}: "
                                           f"field {name} must be bit<W>")
                    layout.append((name, w))
                if sum(w for _, w in layout) % 8:
                    raise CompileError(f"{a.pos}: error: @controller_header header {t.name} is not "
                                       f"a whole number of bytes")
                return layout
    return None


def _walk_stmts(s: Any, out: list[ir.ExternFunctionCall]) -> None:
    """Collect the digest() calls in an IR tree (types are not walked)."""
    if isinstance(s, ir.ExternFunctionCall):
        if s.name == "digest":
            out.append(s)
        return
    if isinstance(s, (list, tuple)):
        for x in s:
            _walk_stmts(x, out)
        return
    if dataclasses.is_dataclass(s) and not isinstance(s, (ir.Type, type)):
        for f in dataclasses.fields(s):
            _walk_stmts(getattr(s, f.name), out)


def _digests(program: ir.Program) -> dict[str, list[tuple[str, int]]]:
    from softswitch.arch.v1model import digest_layout

    calls: list[ir.ExternFunctionCall] = []
    for decls in (program.controls.values(), program.actions.values(), program.functions.values()):
        for d in decls:
            _walk_stmts(d, calls)
    out: dict[str, list[tuple[str, int]]] = {}
    for c in calls:
        t = c.type_args[0] if c.type_args else c.args[1].expr.type
        try:
            layout = digest_layout(t)
        except ValueError as e:
            raise CompileError(f"{c.pos}: error: {e}") from None
        assert isinstance(t, (ir.StructT, ir.HeaderT))  # digest_layout checked it
        out[t.name] = layout
    return out


_POS = re.compile(r"^(\S+:\d+:\d+):\s*(?:error:\s*)?(.*)$", re.S)


def _diagnostic(msg: str, filename: str) -> str:
    """``msg`` as a p4c-style ``file:line:col: error: ...`` line."""
    m = _POS.match(msg)
    if m:
        return f"{m.group(1)}: error: {m.group(2)}"
    return f"{filename}:1:1: error: {msg}"


class Device:
    """A v1model switch (simple_switch semantics).

    Callbacks set by the owner (the P4Runtime server):

    * ``on_digest(type_name, values)``: a ``digest<T>(receiver, data)`` was executed by a
      packet that finished ingress; ``values`` are T's fields in order (ints).
    * ``on_packet_in(payload, metadata)``: a packet left egress on the CPU port; the
      leading @controller_header("packet_in") header was stripped into ``metadata``
      (field name -> int).
    * ``on_transmit(port, frame)``: a packet leaves on a data port (the port backends
      hook in here; the CLI wires it to the ports).

    ``counters`` (additive) is a Counter of events (``rx``, ``tx``, ``drop``, ...)
    that :meth:`stats` reports; port backends add their own keys to it.
    """

    device_id: int
    cpu_port: int | None
    program: LoadedProgram | None
    multicast_groups: dict[int, list[Replica]]
    clone_sessions: dict[int, CloneSession]
    on_digest: Callable[[str, tuple[int, ...]], None] | None
    on_packet_in: Callable[[bytes, dict[str, int]], None] | None
    on_transmit: Callable[[int, bytes], None] | None

    def __init__(self, *, device_id: int = 0, cpu_port: int | None = None) -> None:
        self.device_id = device_id
        self.cpu_port = cpu_port
        self.program = None
        self.multicast_groups = {}
        self.clone_sessions = {}
        self.on_digest = None
        self.on_packet_in = None
        self.on_transmit = None
        self.counters: Counter[str] = Counter()
        #: (additive) the clock the pipeline reads at commit and per packet (ns);
        #: tests replace it before commit to get exact timestamps
        self.clock_ns: Callable[[], int] = time.monotonic_ns
        self._pipeline: Any = None
        #: commit() builds the generated per-program packet path (arch/fastpath.py);
        #: False: the generic pipeline only (tests compare the two)
        self.fast_path: bool = os.environ.get("SOFTSWITCH_FAST_PATH", "1") != "0"

    @staticmethod
    def compile(source: str, filename: str = "program.p4", include_dirs: Sequence[str] = (),
                defines: Sequence[str] = ()) -> LoadedProgram:
        """Preprocess, parse, type-check and compile; raises CompileError."""
        from softswitch import frontend, interp
        from softswitch.arch import fieldlists
        from softswitch.arch.v1model import V1Model

        try:
            program = frontend.load_program(source, filename, list(include_dirs), list(defines))
        except frontend.FrontendError as e:
            raise CompileError(str(e)) from None
        if program.main is None or len(program.main.args) != 6:
            raise CompileError(f"{filename}:1:1: error: the program has no V1Switch main "
                               "(softswitch implements v1model only)")
        pdecl = program.parsers.get(program.main.args[0])
        if pdecl is None or len(pdecl.params) != 4:
            raise CompileError(f"{filename}:1:1: error: V1Switch parser must have 4 parameters")
        meta_t = pdecl.params[2].type
        lists = None
        if isinstance(meta_t, ir.StructT):
            lists = fieldlists.from_ir(meta_t)
            if lists is None:
                lists = fieldlists.from_source(source, filename, include_dirs, meta_t.name)
        arch = V1Model(field_lists=lists or {}, meta_type=meta_t)
        try:
            compiled = interp.compile_program(program, arch)
        except CompileError:
            raise
        except (interp.CompileFailure, ValueError, TypeError, KeyError, NotImplementedError) as e:
            raise CompileError(_diagnostic(str(e), filename)) from None
        except RecursionError:
            raise CompileError(f"{filename}:1:1: error: program nested too deeply for softswitch's "
                               "code generator") from None
        return LoadedProgram(
            source=source, filename=filename, ir=program, compiled=compiled,
            packet_in_header=_controller_header(program, "packet_in"),
            packet_out_header=_controller_header(program, "packet_out"),
            digests=_digests(program), arch=arch,
        )

    def commit(self, loaded: LoadedProgram) -> None:
        """Make ``loaded`` the running program; all table, extern, PRE state is reset."""
        from softswitch.arch.pipeline import Pipeline

        self._pipeline = Pipeline(loaded.compiled, self, clock_ns=self.clock_ns, arch=loaded.arch,
                                  fast=self.fast_path)
        for table in loaded.compiled.tables.values():
            # entry insertion times on the same clock as the pipeline's hit times
            table.clock_ns = self.clock_ns
        self.program = loaded
        # reset in place: the runtime may hold references to these dicts
        self.multicast_groups.clear()
        self.clone_sessions.clear()

    # ------------------------------------------------------------------ packets

    def receive(self, port: int, frame: bytes) -> None:
        """Process one frame arriving on ``port`` to completion (all replicas, clones,
        resubmits and recirculations), calling the callbacks as it goes. Without a
        program the frame is dropped."""
        self.counters["rx"] += 1
        if self._pipeline is None:
            self.counters["drop_no_program"] += 1
            return
        try:
            res = self._pipeline.process(port, bytes(frame))
        except Exception:
            # a bug or an unsupported construct must not kill the switch: log, drop
            log.exception("error processing a %d-byte frame from port %d; dropped", len(frame), port)
            self.counters["error"] += 1
            self.counters["drop"] += 1
            return
        self.counters["drop"] += res.drops
        self.counters["error"] += res.errors
        for kind, a, b in res.events:
            if kind == "digest":
                self.counters["digest"] += 1
                if self.on_digest is not None:
                    self.on_digest(a, b)
            else:
                self._emit(a, b)

    def _emit(self, port: int, frame: bytes) -> None:
        if self.cpu_port is not None and port == self.cpu_port:
            self.counters["packet_in"] += 1
            layout = self.program.packet_in_header if self.program else None
            meta: dict[str, int] = {}
            payload = frame
            if layout:
                nbytes = sum(w for _, w in layout) // 8
                if len(frame) < nbytes:
                    log.error("frame to the CPU port is shorter (%d) than the packet_in header (%d)",
                              len(frame), nbytes)
                    self.counters["drop"] += 1
                    return
                acc = int.from_bytes(frame[:nbytes], "big")
                shift = nbytes * 8
                for name, w in layout:
                    shift -= w
                    meta[name] = (acc >> shift) & ((1 << w) - 1)
                payload = frame[nbytes:]
            if self.on_packet_in is not None:
                self.on_packet_in(payload, meta)
            else:
                self.counters["drop_no_controller"] += 1
            return
        self.counters["tx"] += 1
        if self.on_transmit is None:
            self.counters["drop_no_port"] += 1
            return
        self.on_transmit(port, frame)

    def packet_out(self, payload: bytes, metadata: dict[str, int]) -> None:
        """A P4Runtime PacketOut: the @controller_header("packet_out") header built from
        ``metadata`` is prepended and the frame enters the pipeline on the CPU port."""
        self.counters["packet_out"] += 1
        layout = self.program.packet_out_header if self.program else None
        header = b""
        if layout:
            acc = 0
            nbits = 0
            for name, w in layout:
                v = int(metadata.get(name, 0))
                if not 0 <= v < (1 << w):
                    raise ValueError(f"packet_out metadata {name}={v} does not fit in {w} bits")
                acc = (acc << w) | v
                nbits += w
            header = acc.to_bytes(nbits // 8, "big")
        port = self.cpu_port if self.cpu_port is not None else 0
        self.receive(port, header + bytes(payload))

    def stats(self) -> dict[str, Any]:
        """Counters for logs and tests: packets received / transmitted / dropped, ..."""
        out: dict[str, Any] = {k: 0 for k in ("rx", "tx", "drop", "packet_in", "packet_out", "digest",
                                               "error")}
        out.update(self.counters)
        out["program"] = self.program.filename if self.program else None
        return out

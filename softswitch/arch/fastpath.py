"""v1model's generated per-program packet path (the "fast path").

One Python function per committed program runs a fresh frame through parser,
verifyChecksum, ingress, the unicast traffic manager, egress, computeChecksum and the
deparser, with the interpreter's flat code generator (interp/flatblocks.py): header
and metadata fields are locals, tables and actions inlined, standard_metadata a real
struct (externs such as mark_to_drop and verify_checksum write it through
``ctx.std``). It does what Pipeline._run_ingress / _run_egress do, in the same order.

Whatever is not the plain unicast case hands the packet, its headers and metadata
materialised as value objects, to the generic pipeline at the same point: after
ingress when a clone, resubmit or multicast was requested; after egress for an E2E
clone, a drop in egress or a recirculation. A program the generator cannot compile
(FlatUnsupported) runs on the generic path only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from softswitch.arch.bits import header_bytes
from softswitch.arch.v1model import DROP_PORT, PacketContext
from softswitch.interp.compiler import Compiled
from softswitch.interp.flatblocks import FlatBuilder
from softswitch.interp.flatloc import FlatUnsupported

if TYPE_CHECKING:
    from softswitch.arch.pipeline import Pipeline, Result

__all__ = ["build_fast_path"]

log = logging.getLogger("softswitch.v1model")

FastFn = Callable[[int, bytes, "Result"], None]


def build_fast_path(pipe: Pipeline, arch: Any) -> tuple[FastFn | None, str]:
    """(the generated function, "") or (None, why the generic path is used)."""
    compiled = pipe.compiled
    if not isinstance(compiled, Compiled):
        return None, "not an interp.Compiled program"
    try:
        fn, _ = _build(pipe, compiled, arch)
    except (FlatUnsupported, KeyError) as e:
        log.info("generic packet path: %s", e)
        return None, str(e)
    return fn, ""


def fast_path_source(pipe: Pipeline, arch: Any) -> str:
    """The generated source (for inspection and tests)."""
    assert isinstance(pipe.compiled, Compiled)
    return _build(pipe, pipe.compiled, arch)[1]


def _build(pipe: Pipeline, compiled: Compiled, arch: Any) -> tuple[FastFn, str]:
    fb = FlatBuilder(compiled, arch)
    fb.var("hdr", pipe.hdr_type)
    fb.var("meta", pipe.meta_type)
    fb.var("std", pipe.std_type, boxed=True)
    fb.packet_in("pkt")
    fb.packet_out("pout")
    b = fb.bind
    P, CLOCK, PC = b(pipe, "P"), b(pipe.clock_ns, "clock"), b(PacketContext, "PC")
    mk_std = b(pipe._mk_std, "mkstd")
    w_fresh, w_perr = b(pipe._w_fresh, "wf"), b(pipe._w_parser_error, "wpe")
    w_inst, w_egr = b(pipe._w_instance, "wi"), b(pipe._w_egress, "we")
    hb = fb.valid_bytes("hdr", header_bytes)
    i = "    "
    m48 = (1 << 48) - 1
    lines = [
        f"{i}now = {CLOCK}()",
        f"{i}ilen = len(frame)",
        f"{i}std = {mk_std}()",
        f"{i}sd = std.fields",
        f"{i}{w_fresh}(sd, port, 0, ((now - {P}.start_ns) // 1000) & {m48}, ilen)",
        f"{i}ctx = {PC}(ilen, now, std, 'parser')",
        *fb.box_lines("std", "std", i),
        *fb.zero_lines("hdr", i),
        *fb.zero_lines("meta", i),
        *fb.packet_in_lines("pkt", "frame", i),
        *fb.block_lines(pipe.parser, ["pkt", "hdr", "meta", "std"], i, err="perr"),
        f"{i}payload = {fb.packet_in_remaining('pkt')}",
        f"{i}parsed = {hb}",
        f"{i}{w_perr}(sd, perr)",
        f"{i}ctx.payload = payload",
        f"{i}ctx.stage = 'verify'",
        *fb.block_lines(pipe.verify, ["hdr", "meta"], i),
        f"{i}ctx.stage = 'ingress'",
        *fb.block_lines(pipe.ingress, ["hdr", "meta", "std"], i),
        f"{i}hbytes = {hb}",
        f"{i}espec = int(sd.get('egress_spec', 0))",
        f"{i}if ctx.clone is not None or ctx.resubmit is not None or int(sd.get('mcast_grp', 0)) != 0:",
        f"{i}    {P}.slow_after_ingress(frame, port, std, {fb.materialise('meta')}, {fb.materialise('hdr')}, "
        "ctx, now, parsed, payload, hbytes, res)",
        f"{i}    return",
        f"{i}if ctx.digest is not None:",
        f"{i}    res.events.append(('digest', ctx.digest[0], ctx.digest[1]))",
        f"{i}if espec == {DROP_PORT}:",
        f"{i}    res.drops += 1",
        f"{i}    return",
        f"{i}lreg = max(0, ilen + hbytes - parsed)",
        f"{i}{w_inst}(sd, 0)",
        # egress (Pipeline._run_egress)
        f"{i}now = {CLOCK}()",
        f"{i}ts = ((now - {P}.start_ns) // 1000) & {m48}",
        f"{i}{w_egr}(sd, ts, ts, 0, 0, 0, espec, 0, lreg)",
        # the ingress context serves egress too, reset as a new one would be: clone and
        # resubmit are None here (else the packet went to the generic path), truncate,
        # packet length, payload and std carry over
        f"{i}ctx.now_ns = now",
        f"{i}ctx.stage = 'egress'",
        f"{i}ctx.recirculate = None",
        f"{i}ctx.digest = None",
        f"{i}ctx.extra.clear()",
        *fb.block_lines(pipe.egress, ["hdr", "meta", "std"], i),
        f"{i}lreg = max(0, lreg + {hb} - hbytes)",
        f"{i}if ctx.clone is not None or int(sd.get('egress_spec', 0)) == {DROP_PORT} "
        "or ctx.recirculate is not None:",
        f"{i}    {P}.slow_after_egress(espec, {fb.materialise('hdr')}, {fb.materialise('meta')}, std, ctx, "
        "payload, ilen, lreg, res)",
        f"{i}    return",
        f"{i}ctx.stage = 'compute'",
        *fb.block_lines(pipe.compute, ["hdr", "meta"], i),
        f"{i}ctx.stage = 'deparser'",
        *fb.packet_out_lines("pout", i),
        *fb.block_lines(pipe.deparser, ["pout", "hdr"], i),
        f"{i}out = {fb.packet_out_bytes('pout')} + payload",
        f"{i}if ctx.truncate is not None and ctx.truncate < len(out):",
        f"{i}    out = out[:ctx.truncate]",
        f"{i}res.events.append(('tx', espec, out))",
    ]
    fn = fb.define("fast_path", "port, frame, res", lines)
    return fn, fb.sources[-1]

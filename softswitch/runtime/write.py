"""The updates of a P4Runtime Write: dispatch per entity, applied in slices.

A Write of tens of thousands of updates takes seconds of pure Python; run to the end
on the event loop it would stop forwarding, streams and every other RPC for that long.
``apply_updates`` gives the loop back every ``WRITE_SLICE_S`` seconds of work. The
server runs one Write at a time (and commits pipelines between Writes only), so the
updates of a Write are still applied in order, none interleaved with another Write's,
and every update gets its own status (CONTINUE_ON_ERROR). A Read or a packet handled
between two slices sees the updates applied so far, as it could on a hardware target
whose driver programs a batch entry by entry.
"""

from __future__ import annotations

import asyncio
import logging
import time

from finsy.proto import p4r, rpc_code

from softswitch.device import Device
from softswitch.runtime import externs, tables
from softswitch.runtime.digests import DigestQueue
from softswitch.runtime.errors import Code, P4RTError
from softswitch.runtime.idle import IdleTracker
from softswitch.runtime.pipeline import Pipeline

__all__ = ["apply_updates", "write_one", "WRITE_SLICE_S"]

log = logging.getLogger("softswitch.runtime")

#: the longest stretch of Write work between two yields to the event loop
WRITE_SLICE_S = 0.005
#: updates applied between two looks at the clock
_CHECK_EVERY = 32

_TYPES = (p4r.Update.INSERT, p4r.Update.MODIFY, p4r.Update.DELETE)


async def apply_updates(pipe: Pipeline, device: Device, digests: DigestQueue, idle: IdleTracker,
                        updates: list[p4r.Update]) -> tuple[list[p4r.Error], int]:
    """Apply ``updates`` in order; one Error per update (OK for the applied ones) and the
    number that failed."""
    errors: list[p4r.Error] = []
    failed = 0
    ok = rpc_code.OK
    slice_end = time.perf_counter() + WRITE_SLICE_S
    for i, update in enumerate(updates):
        if i % _CHECK_EVERY == _CHECK_EVERY - 1 and time.perf_counter() > slice_end:
            await asyncio.sleep(0)
            slice_end = time.perf_counter() + WRITE_SLICE_S
        err = p4r.Error(canonical_code=ok)
        try:
            write_one(pipe, device, digests, idle, update)
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
    return errors, failed


def write_one(pipe: Pipeline, device: Device, digests: DigestQueue, idle: IdleTracker, update: p4r.Update) -> None:
    if update.type not in _TYPES:
        raise P4RTError(Code.INVALID_ARGUMENT, "update type unspecified")
    entity = update.entity
    which = entity.WhichOneof("entity")
    if which == "table_entry":
        te = entity.table_entry
        stored = tables.write_table_entry(pipe, update.type, te)
        if stored is not None and (stored.idle_timeout_ns > 0 or update.type == p4r.Update.MODIFY):
            idle.track(te.table_id, stored)
    elif which == "direct_counter_entry":
        tables.write_direct_counter(pipe, update.type, entity.direct_counter_entry)
    elif which == "counter_entry":
        externs.write_counter(pipe, update.type, entity.counter_entry)
    elif which == "register_entry":
        externs.write_register(pipe, update.type, entity.register_entry)
    elif which == "meter_entry":
        externs.write_meter(pipe, update.type, entity.meter_entry)
    elif which == "packet_replication_engine_entry":
        externs.write_pre(device, update.type, entity.packet_replication_engine_entry)
    elif which == "digest_entry":
        write_digest(pipe, digests, update.type, entity.digest_entry)
    elif which is None:
        raise P4RTError(Code.INVALID_ARGUMENT, "update without an entity")
    else:
        raise P4RTError(Code.UNIMPLEMENTED, f"{which} is not supported")


def write_digest(pipe: Pipeline, digests: DigestQueue, op: int, de: p4r.DigestEntry) -> None:
    d = pipe.digests.get(de.digest_id)
    if d is None:
        raise P4RTError(Code.INVALID_ARGUMENT, f"unknown digest id {de.digest_id}")
    exists = digests.is_configured(de.digest_id)
    if op == p4r.Update.INSERT and exists:
        raise P4RTError(Code.ALREADY_EXISTS, f"digest {d.preamble.name} is already configured")
    if op in (p4r.Update.MODIFY, p4r.Update.DELETE) and not exists:
        raise P4RTError(Code.NOT_FOUND, f"digest {d.preamble.name} is not configured")
    if op == p4r.Update.DELETE:
        digests.configure(de.digest_id, (), None)
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
    digests.configure(de.digest_id, widths, cfg)

"""P4Runtime TableEntry / DirectCounterEntry <-> the table model (softswitch.interp.tables)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from finsy.proto import p4r

from softswitch.interp import tables as tm
from softswitch.runtime.codec import decode, encode
from softswitch.runtime.errors import Code, P4RTError
from softswitch.runtime.pipeline import Pipeline, TableInfo

__all__ = ["write_table_entry", "read_table_entries", "write_direct_counter", "read_direct_counters",
           "table_of", "decode_matches", "encode_entry", "encode_matches"]

_INSERT, _MODIFY, _DELETE = p4r.Update.INSERT, p4r.Update.MODIFY, p4r.Update.DELETE


def table_of(pipe: Pipeline, table_id: int) -> tuple[TableInfo, tm.Table]:
    info = pipe.tables.get(table_id)
    if info is None:
        raise P4RTError(Code.INVALID_ARGUMENT, f"unknown table id {table_id}")
    table = pipe.loaded.compiled.tables.get(info.name)
    if table is None:
        raise P4RTError(Code.INTERNAL, f"table {info.name} is in the P4Info but not in the program")
    return info, table


def _decode_exact(info: TableInfo, match: list[p4r.FieldMatch]) -> tuple[tm.FieldMatch, ...] | None:
    """The common case of an exact-only table with every field given once, canonical
    or not; None sends anything else to the general path (and its error messages)."""
    fields = info.fields
    if len(match) != len(fields):
        return None
    out: list[tm.FieldMatch] = [None] * len(fields)
    for fm in match:
        f = fields.get(fm.field_id)
        if f is None or out[f.index] is not None or fm.WhichOneof("field_match_type") != "exact":
            return None
        data = fm.exact.value
        v = int.from_bytes(data, "big")
        if not data or v >> f.width:
            return None
        out[f.index] = tm.Exact(v)
    return tuple(out)


def decode_matches(info: TableInfo, table: tm.Table, match: list[p4r.FieldMatch]) -> tuple[tm.FieldMatch, ...]:
    """P4Runtime field matches -> one FieldMatch per key (None = don't care)."""
    if info.all_exact:
        fast = _decode_exact(info, match)
        if fast is not None:
            return fast
    out: list[tm.FieldMatch] = [None] * len(table.key_kinds)
    seen: set[int] = set()
    for fm in match:
        f = info.fields.get(fm.field_id)
        if f is None:
            raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name}: unknown match field id {fm.field_id}")
        if fm.field_id in seen:
            raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name}: match field {f.name} given twice")
        seen.add(fm.field_id)
        which = fm.WhichOneof("field_match_type")
        where = f"table {info.name}, field {f.name} ({f.kind}, {f.width} bits)"
        if which != f.kind:
            raise P4RTError(Code.INVALID_ARGUMENT, f"{where}: got a {which} match")
        if which == "exact":
            out[f.index] = tm.Exact(decode(fm.exact.value, f.width, where))
        elif which == "optional":
            out[f.index] = tm.OptionalMatch(decode(fm.optional.value, f.width, where))
        elif which == "lpm":
            plen = fm.lpm.prefix_len
            if plen <= 0 or plen > f.width:
                raise P4RTError(Code.INVALID_ARGUMENT,
                                f"{where}: prefix_len {plen} must be in 1..{f.width} (omit the field for a wildcard)")
            v = decode(fm.lpm.value, f.width, where)
            if v & ((1 << (f.width - plen)) - 1):
                raise P4RTError(Code.INVALID_ARGUMENT, f"{where}: value 0x{v:x} has bits set beyond /{plen}")
            out[f.index] = tm.Lpm(v, plen)
        elif which == "ternary":
            v = decode(fm.ternary.value, f.width, where)
            m = decode(fm.ternary.mask, f.width, where)
            if m == 0:
                raise P4RTError(Code.INVALID_ARGUMENT, f"{where}: mask 0 (omit the field for a wildcard)")
            if v & ~m:
                raise P4RTError(Code.INVALID_ARGUMENT, f"{where}: value 0x{v:x} has bits outside mask 0x{m:x}")
            out[f.index] = tm.Ternary(v, m)
        elif which == "range":
            lo = decode(fm.range.low, f.width, where)
            hi = decode(fm.range.high, f.width, where)
            if lo > hi:
                raise P4RTError(Code.INVALID_ARGUMENT, f"{where}: range low {lo} > high {hi}")
            if lo == 0 and hi == (1 << f.width) - 1:
                raise P4RTError(Code.INVALID_ARGUMENT, f"{where}: full range (omit the field for a wildcard)")
            out[f.index] = tm.Range(lo, hi)
        else:
            raise P4RTError(Code.UNIMPLEMENTED, f"{where}: match type {which} is not supported")
    for f in info.ordered:
        if f.kind == "exact" and out[f.index] is None:
            raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name}: exact field {f.name} missing")
    return tuple(out)


def _decode_action(pipe: Pipeline, info: TableInfo, entry: p4r.TableEntry, default: bool) -> tuple[str, tuple[int, ...]]:
    which = entry.action.WhichOneof("type")
    if which != "action":
        raise P4RTError(Code.UNIMPLEMENTED if which else Code.INVALID_ARGUMENT,
                        f"table {info.name}: " + (f"{which} (action profiles) is not supported" if which
                                                   else "entry has no action"))
    a = entry.action.action
    ainfo = pipe.actions.get(a.action_id)
    if ainfo is None:
        raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name}: unknown action id {a.action_id}")
    scope = info.actions.get(a.action_id)
    if scope is None:
        raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name}: action {ainfo.name} is not in its action list")
    if default and scope == 1:  # TABLE_ONLY
        raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name}: action {ainfo.name} is @tableonly")
    if not default and scope == 2:  # DEFAULT_ONLY
        raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name}: action {ainfo.name} is @defaultonly")
    args: list[int | None] = [None] * len(ainfo.ordered)
    for p in a.params:
        pinfo = ainfo.params.get(p.param_id)
        if pinfo is None:
            raise P4RTError(Code.INVALID_ARGUMENT, f"action {ainfo.name}: unknown param id {p.param_id}")
        if args[pinfo.index] is not None:
            raise P4RTError(Code.INVALID_ARGUMENT, f"action {ainfo.name}: param {pinfo.name} given twice")
        args[pinfo.index] = decode(p.value, pinfo.width, f"action {ainfo.name}, param {pinfo.name}")
    missing = [ainfo.ordered[i].name for i, v in enumerate(args) if v is None]
    if missing:
        raise P4RTError(Code.INVALID_ARGUMENT, f"action {ainfo.name}: missing params {', '.join(missing)}")
    return ainfo.name, tuple(v for v in args if v is not None)


def _model_error(e: tm.TableError) -> P4RTError:
    if isinstance(e, tm.EntryExists):
        return P4RTError(Code.ALREADY_EXISTS, str(e))
    if isinstance(e, tm.EntryNotFound):
        return P4RTError(Code.NOT_FOUND, str(e))
    if isinstance(e, tm.TableFull):
        return P4RTError(Code.RESOURCE_EXHAUSTED, str(e))
    return P4RTError(Code.INVALID_ARGUMENT, str(e))


def write_table_entry(pipe: Pipeline, op: int, entry: p4r.TableEntry) -> tm.TableEntry | None:
    """Apply one update; returns the entry inserted or modified (None for a delete or a
    default entry), for the idle-timeout bookkeeping."""
    info, table = table_of(pipe, entry.table_id)
    if entry.is_default_action:
        _write_default(pipe, info, table, op, entry)
        return None
    if info.is_const:
        raise P4RTError(Code.PERMISSION_DENIED, f"table {info.name} is const (entries = {{...}} in the program)")
    matches = decode_matches(info, table, list(entry.match))
    if info.needs_priority and entry.priority <= 0:
        raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name}: priority must be > 0 (ternary/range/optional keys)")
    if not info.needs_priority and entry.priority != 0:
        raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name}: priority must be 0 (exact/lpm keys only)")
    if entry.idle_timeout_ns and not info.supports_timeout:
        raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name} does not support idle timeout")
    if entry.idle_timeout_ns < 0:
        raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name}: negative idle_timeout_ns")
    try:
        if op == _DELETE:
            table.delete(matches, entry.priority)
            return None
        action, args = _decode_action(pipe, info, entry, default=False)
        new = tm.TableEntry(matches, action, args, entry.priority, entry.idle_timeout_ns,
                            entry.controller_metadata, entry.metadata)
        if op == _INSERT:
            if entry.HasField("counter_data"):
                new.packets = entry.counter_data.packet_count
                new.bytes = entry.counter_data.byte_count
            new.last_hit_ns = table.clock_ns()
            table.insert(new)
            return new
        if op == _MODIFY:
            stored = table.modify(new)
            if entry.HasField("counter_data"):
                stored.packets = entry.counter_data.packet_count
                stored.bytes = entry.counter_data.byte_count
            return stored
        raise P4RTError(Code.INVALID_ARGUMENT, f"unknown update type {op}")
    except tm.TableError as e:
        raise _model_error(e) from None


def _write_default(pipe: Pipeline, info: TableInfo, table: tm.Table, op: int, entry: p4r.TableEntry) -> None:
    if entry.match or entry.priority:
        raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name}: a default entry has no match and no priority")
    if op == _INSERT:
        raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name}: the default entry can only be modified")
    if info.const_default_action_id or table.default_is_const:
        raise P4RTError(Code.PERMISSION_DENIED, f"table {info.name}: the default action is const")
    try:
        if op == _DELETE or not entry.HasField("action"):
            table.reset_default()
        else:
            action, args = _decode_action(pipe, info, entry, default=True)
            table.set_default(action, args)
        if entry.HasField("counter_data"):
            table.default_entry.packets = entry.counter_data.packet_count
            table.default_entry.bytes = entry.counter_data.byte_count
    except tm.TableError as e:
        raise _model_error(e) from None


def encode_matches(info: TableInfo, e: tm.TableEntry, out: p4r.TableEntry) -> None:
    """Append the match fields of ``e`` to ``out`` (canonical byte strings)."""
    if info.all_exact:
        add = out.match.add
        matches = e.matches
        for f in info.ordered:
            v = matches[f.index].value  # type: ignore[union-attr]
            add(field_id=f.id).exact.value = v.to_bytes((v.bit_length() + 7) // 8 or 1, "big")
        return
    for f in info.ordered:
        fm = e.matches[f.index]
        if fm is None:
            continue
        m = out.match.add(field_id=f.id)
        if isinstance(fm, tm.Exact):
            m.exact.value = encode(fm.value, f.width)
        elif isinstance(fm, tm.OptionalMatch):
            m.optional.value = encode(fm.value, f.width)
        elif isinstance(fm, tm.Lpm):
            m.lpm.value = encode(fm.value, f.width)
            m.lpm.prefix_len = fm.plen
        elif isinstance(fm, tm.Ternary):
            m.ternary.value = encode(fm.value, f.width)
            m.ternary.mask = encode(fm.mask, f.width)
        elif isinstance(fm, tm.Range):
            m.range.low = encode(fm.lo, f.width)
            m.range.high = encode(fm.hi, f.width)


def encode_entry(pipe: Pipeline, info: TableInfo, e: tm.TableEntry, request: p4r.TableEntry,
                 is_default: bool = False, out: p4r.TableEntry | None = None) -> p4r.TableEntry:
    """``e`` as a P4Runtime TableEntry, written into ``out`` when given (a field of a
    message under construction: no copy)."""
    if out is None:
        out = p4r.TableEntry()
    out.table_id = info.id
    if is_default:
        out.is_default_action = True
    else:
        encode_matches(info, e, out)
    aid = pipe.action_ids.get(e.action)
    if aid is not None:
        ainfo = pipe.actions[aid]
        act = out.action.action
        act.action_id = aid
        add = act.params.add
        for p, v in zip(ainfo.ordered, e.args, strict=False):
            add(param_id=p.id, value=encode(v, p.width))
    # proto3 scalars: only non-defaults need setting (the message is fresh)
    if e.priority:
        out.priority = e.priority
    if e.controller_metadata:
        out.controller_metadata = e.controller_metadata
    if e.metadata:
        out.metadata = e.metadata
    if e.idle_timeout_ns:
        out.idle_timeout_ns = e.idle_timeout_ns
    if e.is_const:
        out.is_const = True
    if request.HasField("counter_data") or info.direct_counter_id:
        out.counter_data.packet_count = e.packets
        out.counter_data.byte_count = e.bytes
    if request.HasField("time_since_last_hit") and info.supports_timeout and not is_default:
        model = pipe.loaded.compiled.tables.get(info.name)
        now = model.clock_ns() if model is not None else time.monotonic_ns()
        out.time_since_last_hit.elapsed_ns = max(0, now - e.last_hit_ns)
    return out


def _selected(pipe: Pipeline, request: p4r.TableEntry) -> Iterator[tuple[TableInfo, tm.Table]]:
    if request.table_id == 0:
        for tid in pipe.tables:
            yield table_of(pipe, tid)
    else:
        yield table_of(pipe, request.table_id)


def read_table_entries(pipe: Pipeline, request: p4r.TableEntry,
                       new: Callable[[], p4r.TableEntry] = p4r.TableEntry) -> Iterator[p4r.TableEntry]:
    """Entries matching the (possibly wildcard) request, as the spec's read semantics;
    each one is encoded into a message ``new()`` gives (e.g. a field of a response
    under construction, which saves a copy per entry)."""
    for info, table in _selected(pipe, request):
        if request.is_default_action:
            yield encode_entry(pipe, info, table.default_entry, request, is_default=True, out=new())
            continue
        if request.match:
            matches = decode_matches(info, table, list(request.match))
            e = table.get(matches, request.priority)
            if e is not None:
                yield encode_entry(pipe, info, e, request, out=new())
            continue
        for e in table.entries():
            if request.priority and e.priority != request.priority:
                continue
            yield encode_entry(pipe, info, e, request, out=new())


def write_direct_counter(pipe: Pipeline, op: int, dc: p4r.DirectCounterEntry) -> None:
    if op != _MODIFY:
        raise P4RTError(Code.INVALID_ARGUMENT, "direct counter entries can only be modified")
    info, table = table_of(pipe, dc.table_entry.table_id)
    if not info.direct_counter_id:
        raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name} has no direct counter")
    if dc.table_entry.is_default_action:
        e: tm.TableEntry | None = table.default_entry
    else:
        e = table.get(decode_matches(info, table, list(dc.table_entry.match)), dc.table_entry.priority)
    if e is None:
        raise P4RTError(Code.NOT_FOUND, f"table {info.name}: no such entry")
    e.packets = dc.data.packet_count
    e.bytes = dc.data.byte_count


def read_direct_counters(pipe: Pipeline, dc: p4r.DirectCounterEntry) -> Iterator[p4r.DirectCounterEntry]:
    req = dc.table_entry
    tables = [table_of(pipe, req.table_id)] if req.table_id else [table_of(pipe, t) for t in pipe.tables]
    for info, table in tables:
        if not info.direct_counter_id:
            if req.table_id:
                raise P4RTError(Code.INVALID_ARGUMENT, f"table {info.name} has no direct counter")
            continue
        if req.match:
            e = table.get(decode_matches(info, table, list(req.match)), req.priority)
            found = [e] if e is not None else []
        else:
            found = list(table.entries())
        for e in found:
            out = p4r.DirectCounterEntry()
            out.table_entry.CopyFrom(encode_entry(pipe, info, e, p4r.TableEntry()))
            out.table_entry.ClearField("counter_data")
            out.data.packet_count = e.packets
            out.data.byte_count = e.bytes
            yield out

"""The v1model architecture: extern instances and extern calls, BMv2 simple_switch style.

:class:`V1Model` implements :class:`softswitch.interp.api.Architecture`. The per-packet
context it expects (:class:`PacketContext`) is created by the pipeline driver
(:mod:`softswitch.arch.pipeline`), which also acts on what the externs record in it
(clone, resubmit, recirculate, digest, truncate requests).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from softswitch import ir
from softswitch.arch import hashes
from softswitch.arch.bits import int_pack_widths, make_int_packer, make_packer, scalar_width, to_unsigned
from softswitch.arch.externs import (
    GREEN,
    ActionProfileState,
    CounterArray,
    DirectCounter,
    DirectMeter,
    MeterArray,
    RegisterArray,
)
from softswitch.arch.fieldlists import FieldLists, FieldPath
from softswitch.interp.api import ExternFn
from softswitch.interp.values import Cell, Header, Struct

__all__ = [
    "V1Model", "PacketContext", "CloneRequest", "V1ModelAssertion", "DROP_PORT",
    "INSTANCE_NORMAL", "INSTANCE_INGRESS_CLONE", "INSTANCE_EGRESS_CLONE",
    "INSTANCE_RECIRC", "INSTANCE_REPLICATION", "INSTANCE_RESUBMIT", "set_std", "get_std",
    "make_std_writer",
    "digest_layout",
]

log = logging.getLogger("softswitch.v1model")
p4_log = logging.getLogger("softswitch.p4")

DROP_PORT = 511
INSTANCE_NORMAL = 0
INSTANCE_INGRESS_CLONE = 1
INSTANCE_EGRESS_CLONE = 2
INSTANCE_RECIRC = 4
INSTANCE_REPLICATION = 5
INSTANCE_RESUBMIT = 6


class V1ModelAssertion(Exception):
    """``assert()`` / ``assume()`` failed: the packet is dropped (BMv2 aborts)."""


@dataclass(frozen=True, slots=True)
class CloneRequest:
    kind: str  # "I2E" or "E2E"
    session: int
    fields: tuple[FieldPath, ...]


@dataclass(slots=True)
class PacketContext:
    """What one packet instance carries through one pass of a pipeline.

    ``packet_length`` is BMv2's "ingress length" (the frame length when the instance
    entered ingress; what counters count), ``now_ns`` the arrival time
    (``time.monotonic_ns()``)."""

    packet_length: int
    now_ns: int
    std: Struct
    stage: str = "ingress"
    payload: bytes = b""
    clone: CloneRequest | None = None
    resubmit: tuple[FieldPath, ...] | None = None
    recirculate: tuple[FieldPath, ...] | None = None
    digest: tuple[str, tuple[int, ...]] | None = None
    truncate: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_STD_MASKS: dict[int, tuple[ir.StructT, dict[str, int | None]]] = {}


def _std_masks(t: ir.StructT) -> dict[str, int | None]:
    hit = _STD_MASKS.get(id(t))
    if hit is not None and hit[0] is t:
        return hit[1]
    masks: dict[str, int | None] = {}
    for name, ft in t.fields:
        w = scalar_width(ft)
        masks[name] = (1 << w) - 1 if w else None
    _STD_MASKS[id(t)] = (t, masks)
    return masks


def set_std(std: Struct, name: str, value: int | str) -> None:
    """Set a standard_metadata field if this v1model version has it (masked to width;
    error / enum fields are stored as they are)."""
    masks = _std_masks(std.type)
    if name not in masks:
        return
    mask = masks[name]
    std.fields[name] = int(value) & mask if mask is not None else value


def make_std_writer(t: ir.Type, names: tuple[str, ...]) -> Callable[..., None]:
    """A function ``write(fields, v0, v1, ...)`` doing ``set_std`` of each of ``names``
    (in order) with the values given, on the ``fields`` dict of a standard_metadata
    value of type ``t``: one generated function with the masks inlined; names this
    v1model version lacks are skipped. Values must be ints (or, for error / enum
    fields, their member names)."""
    masks = _std_masks(t) if isinstance(t, ir.StructT) else {}
    params = [f"v{i}" for i in range(len(names))]
    lines = [f"def write(d{''.join(', ' + p for p in params)}):"]
    for name, p in zip(names, params, strict=True):
        if name not in masks:
            continue
        mask = masks[name]
        lines.append(f"    d[{name!r}] = {p} & {mask}" if mask is not None else f"    d[{name!r}] = {p}")
    lines.append("    return None")
    env: dict[str, Any] = {}
    exec(compile("\n".join(lines), "<std_writer>", "exec"), env)
    fn: Callable[..., None] = env["write"]
    return fn


def get_std(std: Struct, name: str, default: int = 0) -> Any:
    return std.fields.get(name, default)


def _const(e: ir.Expr) -> Any:
    if isinstance(e, ir.Const):
        return e.value
    if isinstance(e, ir.EnumConst):
        return e.member
    if isinstance(e, ir.StrConst):
        return e.value
    raise ValueError(f"{e.pos}: expected a compile-time constant constructor argument, got {type(e).__name__}")


#: The most elements a counter, meter or register array may have: softswitch keeps
#: every element in memory from the start.
MAX_ARRAY_SIZE = 1 << 24


def _check_size(inst: ir.Instance, kind: str, cp_name: str, size: int) -> None:
    if size > MAX_ARRAY_SIZE:
        raise ValueError(f"{inst.pos}: {kind} {cp_name}: size {size} is too large; "
                         f"softswitch supports at most {MAX_ARRAY_SIZE} elements")


def _enum(v: Any) -> str:
    """Enum argument values are member names; accept "HashAlgorithm.crc16" too."""
    s = str(v)
    return s.rsplit(".", 1)[-1]


def _struct_name(t: ir.Type) -> str:
    if isinstance(t, (ir.StructT, ir.HeaderT)):
        return t.name
    raise ValueError(f"digest data must be a struct, not {t}")


def digest_layout(t: ir.Type) -> list[tuple[str, int]]:
    """(field name, bit width) of a digest struct; every field must be a scalar."""
    if not isinstance(t, (ir.StructT, ir.HeaderT)):
        raise ValueError(f"digest data must be a struct type, not {t}")
    out = []
    for name, ft in t.fields:
        w = scalar_width(ft)
        if w is None:
            raise ValueError(f"digest struct {t.name}: field {name} has non-scalar type {ft}")
        out.append((name, w))
    return out


def _out_width(e: ir.Expr) -> int:
    w = scalar_width(e.type)
    if w is None:
        raise ValueError(f"{e.pos}: expected a bit<W>/int<W> destination, got {e.type}")
    return w


def _set_cell(cell: Any, value: Any) -> None:
    if isinstance(cell, Cell):
        cell.value = value


def _member_path(e: ir.Expr) -> tuple[ir.Expr, tuple[str, ...]]:
    path: list[str] = []
    while isinstance(e, ir.Member):
        path.append(e.member)
        e = e.expr
    return e, tuple(reversed(path))


class V1Model:
    """The v1model architecture (BMv2 simple_switch semantics).

    ``field_lists`` maps a @field_list index to the user-metadata fields it preserves;
    ``meta_type`` is the user metadata struct type (to resolve clone3/resubmit data
    arguments). ``rng`` drives ``random()``."""

    def __init__(self, *, field_lists: FieldLists | None = None, meta_type: ir.Type | None = None,
                 rng: random.Random | None = None) -> None:
        self.field_lists: FieldLists = field_lists or {}
        self.meta_type = meta_type
        self.rng = rng or random.Random()
        self.instances: dict[str, object] = {}

    # ------------------------------------------------------------- instances

    def instantiate(self, cp_name: str, inst: ir.Instance) -> object:
        t = inst.type
        if not isinstance(t, ir.ExternT):
            raise ValueError(f"{inst.pos}: {cp_name}: not an extern instance ({t})")
        args = [_const(a) for a in inst.ctor_args]
        if t.name in ("counter", "meter", "register"):
            _check_size(inst, t.name, cp_name, int(args[0]))
        obj: object
        if t.name == "counter":
            obj = CounterArray(cp_name, int(args[0]), _enum(args[1]))
        elif t.name == "direct_counter":
            obj = DirectCounter(cp_name, _enum(args[0]))
        elif t.name == "meter":
            obj = MeterArray(cp_name, int(args[0]), _enum(args[1]))
        elif t.name == "direct_meter":
            obj = DirectMeter(cp_name, _enum(args[0]))
        elif t.name == "register":
            vt = t.type_args[0] if t.type_args else ir.BitT(32)
            w = scalar_width(vt)
            if w is None:
                raise ValueError(f"{inst.pos}: register {cp_name}: only bit<W>/int<W>/bool "
                                 f"element types are supported, not {vt}")
            reg = RegisterArray(cp_name, int(args[0]), w, isinstance(vt, ir.IntT))
            if len(args) > 1:  # register(size, initial_value)
                reg.values = [reg.normalize(int(args[1]))] * reg.size
            obj = reg
        elif t.name == "action_profile":
            obj = ActionProfileState(cp_name, int(args[0]))
        elif t.name == "action_selector":
            obj = ActionProfileState(cp_name, int(args[1]), _enum(args[0]), int(args[2]))
        elif t.name in ("Checksum16",):
            obj = ActionProfileState(cp_name, 0)
        else:
            raise ValueError(f"{inst.pos}: extern {t.name} ({cp_name}) is not supported by "
                             f"softswitch's v1model")
        self.instances[cp_name] = obj
        return obj

    # --------------------------------------------------------------- methods

    def bind_method(self, obj: object, call: ir.ExternMethodCall) -> ExternFn:
        ext, m = call.extern, call.method
        if isinstance(obj, CounterArray) and m == "count":
            def count(ctx: PacketContext, args: list[Any]) -> None:
                if not obj.count(int(args[0]), ctx.packet_length):
                    log.error("counter %s: index %d out of range (size %d); nothing counted",
                              obj.name, args[0], obj.size)
            return count
        if isinstance(obj, DirectCounter) and m == "count":
            return lambda ctx, args: None  # the interpreter counts the table entry
        if isinstance(obj, RegisterArray) and m == "read":
            def reg_read(ctx: PacketContext, args: list[Any]) -> None:
                v = obj.read(int(args[1]))
                if v is None:
                    log.error("register %s: read at index %d out of range (size %d); "
                              "destination not updated", obj.name, args[1], obj.size)
                    return
                _set_cell(args[0], bool(v) if isinstance(call.args[0].expr.type, ir.BoolT) else v)
            return reg_read
        if isinstance(obj, RegisterArray) and m == "write":
            def reg_write(ctx: PacketContext, args: list[Any]) -> None:
                if not obj.write(int(args[0]), int(args[1])):
                    log.error("register %s: write at index %d out of range (size %d); ignored",
                              obj.name, args[0], obj.size)
            return reg_write
        if isinstance(obj, MeterArray) and m == "execute_meter":
            def meter_exec(ctx: PacketContext, args: list[Any]) -> None:
                c = obj.execute(int(args[0]), ctx.packet_length, ctx.now_ns)
                if c is None:
                    log.error("meter %s: index %d out of range; destination not updated",
                              obj.name, args[0])
                    return
                _set_cell(args[1], c)
            return meter_exec
        if isinstance(obj, DirectMeter) and m == "read":
            return lambda ctx, args: _set_cell(args[0], GREEN)
        if ext == "Checksum16" and m == "get":
            pack0 = make_packer(call.args[0].expr.type)
            return lambda ctx, args: hashes.csum16(pack0(args[0]))
        raise ValueError(f"{call.pos}: {ext}.{m}() is not supported by softswitch's v1model")

    # ------------------------------------------------------------- functions

    def bind_function(self, call: ir.ExternFunctionCall) -> ExternFn:
        name = call.name
        binder = _FUNCTIONS.get(name)
        if binder is None:
            raise ValueError(f"{call.pos}: extern function {name}() is not supported by "
                             f"softswitch's v1model")
        return binder(self, call)

    def flat_function(self, call: ir.ExternFunctionCall, ex: Callable[[ir.Expr], str], outs: dict[int, str],
                      tmp: Callable[[], str], bind: Callable[[object, str], str]) -> list[str] | None:
        """Source lines doing the extern function call inline, for the flat code
        generator (interp/flat.py), or None for a call through bind_function. ``ex``
        gives an argument's expression source, ``outs`` the locals holding out /
        inout arguments (the current value before the lines, copied out after them).

        Inlined: verify_checksum / update_checksum with the constant csum16 over a
        list of scalar fields (the IPv4 header checksum), the computation of
        ``_csum16_fn`` written out (no argument lists, cells or calls)."""
        if call.name not in ("verify_checksum", "update_checksum") or len(call.args) != 4:
            return None
        if _const_algorithm(call.args[3].expr) != "csum16":
            return None
        data = call.args[1].expr
        widths = int_pack_widths(data.type)
        if not isinstance(data, ir.ListExpr) or widths is None or len(widths) != len(data.items):
            return None
        _check_algorithm(call, 3)
        cmask = (1 << _out_width(call.args[2].expr)) - 1
        nbits = sum(widths)
        nbytes = (nbits + 7) // 8
        shift = nbytes * 8 - nbits + (8 if nbytes & 1 else 0)  # as _csum16_fn
        terms: list[str] = []
        pos = nbits
        for item, w in zip(data.items, widths, strict=True):
            pos -= w
            term = f"({ex(item)} & {(1 << w) - 1})"
            terms.append(f"({term} << {pos})" if pos else term)
        n, t = tmp(), tmp()
        lines = [f"if {ex(call.args[0].expr)}:",
                 f"    {n} = ({' | '.join(terms) or '0'})" + (f" << {shift}" if shift else ""),
                 f"    {t} = {n} % 65535",
                 f"    if {t} == 0 and {n}: {t} = 65535"]
        if call.name == "verify_checksum":
            lines.append(f"    if ((~{t}) & {0xFFFF & cmask}) != (int({ex(call.args[2].expr)}) & {cmask}): "
                         f"{bind(set_std, 'setstd')}(ctx.std, 'checksum_error', 1)")
            return lines
        out = outs.get(2)
        if out is None:
            return None
        lines.append(f"    {out} = (~{t}) & {0xFFFF & cmask}")
        return lines

    # --------------------------------------------------------------- helpers

    def data_fields(self, e: ir.Expr) -> tuple[FieldPath, ...]:
        """Fields named by the data argument of clone3/resubmit/recirculate: a list or
        struct expression of metadata / standard_metadata l-values (a whole struct
        means all its fields)."""
        items: tuple[ir.Expr, ...]
        if isinstance(e, ir.ListExpr):
            items = e.items
        elif isinstance(e, ir.StructExpr):
            items = tuple(x for _, x in e.fields)
        else:
            items = (e,)
        out: list[FieldPath] = []
        for it in items:
            root, path = _member_path(it)
            if not isinstance(root, ir.VarRef):
                continue
            rt = root.type
            if isinstance(rt, ir.StructT) and rt.name == "standard_metadata_t":
                out.append(("std", path))
            elif self.meta_type is not None and rt == self.meta_type:
                out.append(("meta", path))
            else:
                log.warning("%s: field list item %s is not user or standard metadata; "
                            "not preserved", it.pos, root.name)
        return tuple(out)

    def field_list(self, index: int) -> tuple[FieldPath, ...]:
        return tuple(self.field_lists.get(index, ()))


# ---------------------------------------------------------------- function binders


def _b_mark_to_drop(arch: V1Model, call: ir.ExternFunctionCall) -> ExternFn:
    def mark_to_drop(ctx: PacketContext, args: list[Any]) -> None:
        std = args[0].value if args and isinstance(args[0], Cell) else ctx.std
        # BMv2's "mark_to_drop" primitive also clears mcast_grp
        set_std(std, "egress_spec", DROP_PORT)
        set_std(std, "mcast_grp", 0)
        if std is not ctx.std:
            set_std(ctx.std, "egress_spec", DROP_PORT)
            set_std(ctx.std, "mcast_grp", 0)
    return mark_to_drop


def _check_algorithm(call: ir.ExternFunctionCall, index: int) -> None:
    """Refuse at load time a constant algorithm softswitch cannot compute (rather than
    failing every packet that reaches the call)."""
    algorithm = _const_algorithm(call.args[index].expr)
    if algorithm is not None and algorithm not in hashes.ALGORITHMS:
        raise ValueError(f"{call.pos}: {call.name}(): HashAlgorithm.{algorithm} is not supported by "
                         f"softswitch (supported: {', '.join(sorted(hashes.ALGORITHMS))})")


def _b_hash(arch: V1Model, call: ir.ExternFunctionCall) -> ExternFn:
    _check_algorithm(call, 1)
    out_w = _out_width(call.args[0].expr)
    pack = make_packer(call.args[3].expr.type)

    def hash_(ctx: PacketContext, args: list[Any]) -> None:
        data = pack(args[3])
        h = hashes.compute(_enum(args[1]), data)
        _set_cell(args[0], hashes.hash_result(h, int(args[2]), int(args[4]), out_w))
    return hash_


def _const_algorithm(e: ir.Expr) -> str | None:
    """The HashAlgorithm member of a constant algorithm argument, else None."""
    return e.member if isinstance(e, ir.EnumConst) else None


def _checksum_binders(with_payload: bool) -> tuple[Callable[[V1Model, ir.ExternFunctionCall], ExternFn],
                                                   Callable[[V1Model, ir.ExternFunctionCall], ExternFn]]:
    def b_verify(arch: V1Model, call: ir.ExternFunctionCall) -> ExternFn:
        _check_algorithm(call, 3)
        cw = _out_width(call.args[2].expr)
        cmask = (1 << cw) - 1
        fast = _csum16_fn(call, with_payload)
        if fast is not None:
            def verify_csum16(ctx: PacketContext, args: list[Any]) -> None:
                if not args[0]:
                    return
                if fast(args[1], ctx) & cmask != int(args[2]) & cmask:
                    set_std(ctx.std, "checksum_error", 1)
            return verify_csum16
        pack = make_packer(call.args[1].expr.type)

        def verify_checksum(ctx: PacketContext, args: list[Any]) -> None:
            if not args[0]:
                return
            data = pack(args[1])
            if with_payload:
                data += ctx.payload
            got = hashes.compute(_enum(args[3]), data) & ((1 << cw) - 1)
            if got != to_unsigned(args[2], cw):
                set_std(ctx.std, "checksum_error", 1)
        return verify_checksum

    def b_update(arch: V1Model, call: ir.ExternFunctionCall) -> ExternFn:
        _check_algorithm(call, 3)
        cw = _out_width(call.args[2].expr)
        cmask = (1 << cw) - 1
        fast = _csum16_fn(call, with_payload)
        if fast is not None:
            def update_csum16(ctx: PacketContext, args: list[Any]) -> None:
                if not args[0]:
                    return
                _set_cell(args[2], fast(args[1], ctx) & cmask)
            return update_csum16
        pack = make_packer(call.args[1].expr.type)

        def update_checksum(ctx: PacketContext, args: list[Any]) -> None:
            if not args[0]:
                return
            data = pack(args[1])
            if with_payload:
                data += ctx.payload
            _set_cell(args[2], hashes.compute(_enum(args[3]), data) & ((1 << cw) - 1))
        return update_checksum

    return b_verify, b_update


def _csum16_fn(call: ir.ExternFunctionCall, with_payload: bool) -> Callable[[Any, PacketContext], int] | None:
    """The specialised checksum of a call site whose algorithm is the constant csum16
    and whose data is a list of scalar fields (e.g. the IPv4 header checksum):
    ``fn(data, ctx)`` packs the fields with precomputed shifts into one int and takes
    the ones' complement sum of it directly (hashes.csum16_packed). None otherwise."""
    if _const_algorithm(call.args[3].expr) != "csum16":
        return None
    ip = make_int_packer(call.args[1].expr.type)
    if ip is None:
        return None
    pack_int, nbits = ip
    if with_payload:
        csum = hashes.csum16_packed

        def csum16_payload(data: Any, ctx: PacketContext) -> int:
            return csum(pack_int(data), nbits, ctx.payload)
        return csum16_payload
    nbytes = (nbits + 7) // 8
    shift = nbytes * 8 - nbits + (8 if nbytes & 1 else 0)  # pad to a byte, then to 16 bits

    def csum16_fields(data: Any, ctx: PacketContext) -> int:
        n = pack_int(data) << shift
        total = n % 0xFFFF
        if total == 0 and n:
            total = 0xFFFF
        return (~total) & 0xFFFF
    return csum16_fields


def _b_clone(arch: V1Model, call: ir.ExternFunctionCall) -> ExternFn:
    with_list = call.name == "clone_preserving_field_list"
    with_data = call.name == "clone3"
    data_fields = arch.data_fields(call.args[2].expr) if with_data else ()

    def clone(ctx: PacketContext, args: list[Any]) -> None:
        fields = arch.field_list(int(args[2])) if with_list else data_fields
        kind = _enum(args[0])
        expected = "I2E" if ctx.stage == "ingress" else "E2E"
        if kind != expected:
            # BMv2 only looks at the clone registers at the end of the stage it is in
            log.warning("clone(%s) called in %s: BMv2 would perform an %s clone", kind, ctx.stage, expected)
        ctx.clone = CloneRequest(expected, int(args[1]), fields)
    return clone


def _b_resubmit(arch: V1Model, call: ir.ExternFunctionCall) -> ExternFn:
    recirc = call.name.startswith("recirculate")
    with_list = call.name.endswith("_preserving_field_list")
    data_fields = arch.data_fields(call.args[0].expr) if (call.args and not with_list) else ()

    def resubmit(ctx: PacketContext, args: list[Any]) -> None:
        fields = arch.field_list(int(args[0])) if with_list else data_fields
        if recirc:
            ctx.recirculate = fields
        else:
            ctx.resubmit = fields
    return resubmit


def _b_truncate(arch: V1Model, call: ir.ExternFunctionCall) -> ExternFn:
    def truncate(ctx: PacketContext, args: list[Any]) -> None:
        ctx.truncate = int(args[0])
    return truncate


def _b_digest(arch: V1Model, call: ir.ExternFunctionCall) -> ExternFn:
    dt = call.type_args[0] if call.type_args else call.args[1].expr.type
    name = _struct_name(dt)
    layout = digest_layout(dt)

    def digest(ctx: PacketContext, args: list[Any]) -> None:
        v = args[1]
        fields = v.fields if isinstance(v, (Struct, Header)) else dict(zip([n for n, _ in layout], v, strict=True))
        # Values are captured at call time (P4 semantics); BMv2 keeps only the last
        # digest() of a packet, so do we.
        ctx.digest = (name, tuple(to_unsigned(fields[n], w) for n, w in layout))
    return digest


def _b_random(arch: V1Model, call: ir.ExternFunctionCall) -> ExternFn:
    def random_(ctx: PacketContext, args: list[Any]) -> None:
        lo, hi = int(args[1]), int(args[2])
        _set_cell(args[0], arch.rng.randint(lo, hi) if lo <= hi else lo)
    return random_


def _fmt_values(v: Any) -> list[Any]:
    if isinstance(v, list):
        return v
    if isinstance(v, (Struct, Header)):
        return list(v.fields.values())
    return [v]


def _b_log_msg(arch: V1Model, call: ir.ExternFunctionCall) -> ExternFn:
    def log_msg(ctx: PacketContext, args: list[Any]) -> None:
        if not p4_log.isEnabledFor(logging.INFO):
            return  # do not format a message nobody sees
        msg = str(args[0])
        if len(args) > 1:
            for v in _fmt_values(args[1]):
                msg = msg.replace("{}", str(int(v) if isinstance(v, bool) else v), 1)
        p4_log.info("%s", msg)
    return log_msg


def _b_assert(arch: V1Model, call: ir.ExternFunctionCall) -> ExternFn:
    where = str(call.pos)

    def assert_(ctx: PacketContext, args: list[Any]) -> None:
        if not args[0]:
            raise V1ModelAssertion(f"{call.name}() failed at {where}")
    return assert_


_verify, _update = _checksum_binders(False)
_verify_p, _update_p = _checksum_binders(True)

_FUNCTIONS: dict[str, Callable[[V1Model, ir.ExternFunctionCall], ExternFn]] = {
    "mark_to_drop": _b_mark_to_drop,
    "hash": _b_hash,
    "verify_checksum": _verify,
    "update_checksum": _update,
    "verify_checksum_with_payload": _verify_p,
    "update_checksum_with_payload": _update_p,
    "clone": _b_clone,
    "clone3": _b_clone,
    "clone_preserving_field_list": _b_clone,
    "resubmit": _b_resubmit,
    "recirculate": _b_resubmit,
    "resubmit_preserving_field_list": _b_resubmit,
    "recirculate_preserving_field_list": _b_resubmit,
    "truncate": _b_truncate,
    "digest": _b_digest,
    "random": _b_random,
    "log_msg": _b_log_msg,
    "assert": _b_assert,
    "assume": _b_assert,
}

"""P4Info generation: IR -> ``p4.config.v1.P4Info``, the way p4c's P4Runtime serializer
(``control-plane/p4RuntimeSerializer.cpp``, ``p4RuntimeSymbolTable.cpp``, v1model arch
handler) writes it for ``p4c --target bmv2 --arch v1model --p4runtime-files x.txtpb``.

Ids. Every top-level object (table, action, counter, ...) gets
``prefix << 24 | (jenkins_one_at_a_time(name) & 0xffffff)`` where ``prefix`` is the
``P4Ids.Prefix`` of its resource type and ``name`` its fully qualified control-plane name
(for a controller header: the header *type* name). Objects with ``@id(N)`` keep N (with
the prefix added when N has none) and are reserved first. The others are then assigned
per resource type in increasing prefix order, names sorted bytewise; a collision is
resolved by linear probing of the 32-bit hash value (as p4c does), so the result is
deterministic and identical to p4c's for the same set of names.

Match fields, action parameters and controller-header fields get ids 1, 2, ... in
declaration order (``@id`` honoured, as p4c's FieldIdAllocator does).

Aliases are the shortest unique dot-separated suffix of the name among all symbols.

Known differences from p4c are listed in docs/softswitch.md ("P4Runtime and P4Info").
"""

from __future__ import annotations

from collections.abc import Sequence

from finsy.proto import p4i, p4t
from google.protobuf import text_format

from softswitch import ir
from softswitch.names import control_plane_name
from softswitch.p4info_annotations import add_documentation, annotation_strings
from softswitch.p4info_collect import ObjectNames, P4InfoError, collect_names, explicit_id

__all__ = [
    "DEFAULT_TABLE_SIZE", "P4InfoError", "jenkins_hash", "build_p4info", "p4info_to_text",
    "p4info_from_text", "ObjectNames", "collect_names",
]

#: p4c's default table size when the ``size`` property is absent
DEFAULT_TABLE_SIZE = 1024

_P = p4i.P4Ids
PREFIX_ACTION = _P.ACTION
PREFIX_TABLE = _P.TABLE
PREFIX_VALUE_SET = _P.VALUE_SET
PREFIX_CONTROLLER_HEADER = _P.CONTROLLER_HEADER
PREFIX_ACTION_PROFILE = _P.ACTION_PROFILE
PREFIX_COUNTER = _P.COUNTER
PREFIX_DIRECT_COUNTER = _P.DIRECT_COUNTER
PREFIX_METER = _P.METER
PREFIX_DIRECT_METER = _P.DIRECT_METER
PREFIX_REGISTER = _P.REGISTER
PREFIX_DIGEST = _P.DIGEST

#: v1model extern type -> P4Ids prefix of its instances
_EXTERN_PREFIX = {
    "counter": PREFIX_COUNTER,
    "direct_counter": PREFIX_DIRECT_COUNTER,
    "meter": PREFIX_METER,
    "direct_meter": PREFIX_DIRECT_METER,
    "register": PREFIX_REGISTER,
}

def jenkins_hash(name: str) -> int:
    """Bob Jenkins' one-at-a-time hash of the UTF-8 bytes of ``name`` (32 bits), the
    hash p4c's P4RuntimeSymbolTable uses for ids."""
    h = 0
    for b in name.encode():
        h = (h + b) & 0xFFFFFFFF
        h = (h + (h << 10)) & 0xFFFFFFFF
        h ^= h >> 6
    h = (h + (h << 3)) & 0xFFFFFFFF
    h ^= h >> 11
    h = (h + (h << 15)) & 0xFFFFFFFF
    return h


# --------------------------------------------------------------------------- ids


class _SuffixSet:
    """Shortest unique dot-separated suffix of each symbol (p4c's P4SymbolSuffixSet)."""

    def __init__(self, names: Sequence[str]) -> None:
        self._count: dict[tuple[str, ...], int] = {}
        for n in set(names):
            parts = n.split(".")
            for k in range(1, len(parts) + 1):
                suffix = tuple(parts[-k:])
                self._count[suffix] = self._count.get(suffix, 0) + 1

    def alias(self, name: str) -> str:
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            if self._count.get(tuple(parts[-k:]), 0) < 2:
                return ".".join(parts[-k:])
        return name


def _assign_ids(symbols: dict[int, list[str]], explicit: dict[tuple[int, str], int]) -> dict[tuple[int, str], int]:
    """p4c's computeIdsForSymbols over all resource types."""
    assigned: set[int] = set()
    ids: dict[tuple[int, str], int] = {}
    for key, value in explicit.items():
        if value in assigned:
            raise P4InfoError(f"@id {value} is assigned to multiple declarations ({key[1]})")
        assigned.add(value)
        ids[key] = value
    for prefix in sorted(symbols):
        # bytewise order, like std::map<cstring, ...>
        for name in sorted(set(symbols[prefix]), key=lambda n: n.encode()):
            if (prefix, name) in ids:
                continue
            value = jenkins_hash(name)
            start = value
            while True:
                candidate = (prefix << 24) | (value & 0xFFFFFF)
                if candidate not in assigned:
                    break
                value = (value + 1) & 0xFFFFFFFF
                if value == start:
                    raise P4InfoError(f"no id left for {name}")
            assigned.add(candidate)
            ids[(prefix, name)] = candidate
    return ids


def _field_ids(annotated: Sequence[Sequence[ir.Annotation]]) -> list[int]:
    """p4c's FieldIdAllocator: @id first, then 1, 2, ... by position skipping used ids."""
    result: list[int | None] = []
    used: set[int] = set()
    for anns in annotated:
        a = ir.annotation(tuple(anns), "id")
        if a is not None and a.args and isinstance(a.args[0], int):
            used.add(a.args[0])
            result.append(a.args[0])
        else:
            result.append(None)
    index = 1
    out: list[int] = []
    for r in result:
        if r is not None:
            index += 1
            out.append(r)
            continue
        while index in used:
            index += 1
        used.add(index)
        out.append(index)
    return out


# ---------------------------------------------------------------------- building


def _width(t: ir.Type) -> int:
    if isinstance(t, ir.BitT | ir.IntT):
        return t.width
    if isinstance(t, ir.BoolT):
        return 1
    if isinstance(t, ir.SerEnumT):
        return _width(t.underlying)
    return 0  # error / string / enum: p4c sets no width


class _TypeInfo:
    """Builds ``type_info`` and P4DataTypeSpecs (p4c's TypeSpecConverter, v1model subset)."""

    def __init__(self, info: p4t.P4TypeInfo) -> None:
        self.info = info

    def spec(self, t: ir.Type, out: p4t.P4DataTypeSpec) -> None:
        if isinstance(t, ir.BitT):
            out.bitstring.bit.bitwidth = t.width
        elif isinstance(t, ir.IntT):
            out.bitstring.int.bitwidth = t.width
        elif isinstance(t, ir.VarbitT):
            out.bitstring.varbit.max_bitwidth = t.max_width
        elif isinstance(t, ir.BoolT):
            out.bool.SetInParent()
        elif isinstance(t, ir.ErrorT):
            out.error.SetInParent()
            if not self.info.HasField("error"):
                self.info.error.SetInParent()
        elif isinstance(t, ir.TupleT):
            for e in t.elems:
                self.spec(e, out.tuple.members.add())
        elif isinstance(t, ir.StructT):
            out.struct.name = t.name
            if t.name not in self.info.structs:
                s = self.info.structs[t.name]
                for fname, ftype in t.fields:
                    m = s.members.add()
                    m.name = fname
                    self.spec(ftype, m.type_spec)
                s.annotations.extend(annotation_strings(t.annotations))
        elif isinstance(t, ir.HeaderT):
            out.header.name = t.name
            if t.name not in self.info.headers:
                h = self.info.headers[t.name]
                for fname, ftype in t.fields:
                    m = h.members.add()
                    m.name = fname
                    if isinstance(ftype, ir.BitT):
                        m.type_spec.bit.bitwidth = ftype.width
                    elif isinstance(ftype, ir.IntT):
                        m.type_spec.int.bitwidth = ftype.width
                    elif isinstance(ftype, ir.VarbitT):
                        m.type_spec.varbit.max_bitwidth = ftype.max_width
                h.annotations.extend(annotation_strings(t.annotations))
        elif isinstance(t, ir.HeaderUnionT):
            out.header_union.name = t.name
            if t.name not in self.info.header_unions:
                u = self.info.header_unions[t.name]
                for fname, ftype in t.fields:
                    m = u.members.add()
                    m.name = fname
                    if isinstance(ftype, ir.HeaderT):
                        self.spec(ftype, p4t.P4DataTypeSpec())
                        m.header.name = ftype.name
        elif isinstance(t, ir.StackT):
            if isinstance(t.elem, ir.HeaderT):
                self.spec(t.elem, p4t.P4DataTypeSpec())
                out.header_stack.header.name = t.elem.name
                out.header_stack.size = t.size
        elif isinstance(t, ir.SerEnumT):
            self.ser_enum(t)
            out.serializable_enum.name = t.name
        elif isinstance(t, ir.EnumT):
            out.enum.name = t.name
            if t.name not in self.info.enums:
                e = self.info.enums[t.name]
                for m in t.members:
                    e.members.add().name = m

    def ser_enum(self, t: ir.SerEnumT) -> None:
        if t.name in self.info.serializable_enums:
            return
        e = self.info.serializable_enums[t.name]
        w = _width(t.underlying)
        e.underlying_type.bitwidth = w
        for mname, value in t.members:
            m = e.members.add()
            m.name = mname
            m.value = (value % (1 << w)).to_bytes(max(1, (w + 7) // 8), "big")


def _explicit_ids(names: ObjectNames) -> None:
    """``@id`` of actions, tables and extern instances (reserved before hashing)."""
    for cp, a in names.actions.items():
        i = explicit_id(a.annotations, PREFIX_ACTION, f"action {cp}")
        if i is not None:
            names.explicit_ids[(PREFIX_ACTION, cp)] = i
    for cp, (_b, t) in names.tables.items():
        i = explicit_id(t.annotations, PREFIX_TABLE, f"table {cp}")
        if i is not None:
            names.explicit_ids[(PREFIX_TABLE, cp)] = i
    for cp, (kind, inst) in names.externs.items():
        i = explicit_id(inst.annotations, _EXTERN_PREFIX[kind], cp)
        if i is not None:
            names.explicit_ids[(_EXTERN_PREFIX[kind], cp)] = i


def build_p4info(program: ir.Program) -> p4i.P4Info:
    """The P4Info p4c would generate for ``program`` (v1model)."""
    names = collect_names(program)
    _explicit_ids(names)
    symbols: dict[int, list[str]] = {
        PREFIX_TABLE: list(names.tables), PREFIX_ACTION: list(names.actions),
        PREFIX_DIGEST: list(names.digests), PREFIX_CONTROLLER_HEADER: list(names.controller_headers),
    }
    for cp, (kind, _inst) in names.externs.items():
        symbols.setdefault(_EXTERN_PREFIX[kind], []).append(cp)
    ids = _assign_ids(symbols, names.explicit_ids)
    suffixes = _SuffixSet([n for lst in symbols.values() for n in lst])

    info = p4i.P4Info()
    info.pkg_info.arch = "v1model"
    if program.main is not None:
        pass  # annotations on the main instance are not kept in the IR
    types = _TypeInfo(info.type_info)

    def preamble(pre: p4i.Preamble, prefix: int, name: str, anns: Sequence[ir.Annotation]) -> None:
        pre.id = ids[(prefix, name)]
        pre.name = name
        pre.alias = suffixes.alias(name)
        pre.annotations.extend(annotation_strings(anns))
        add_documentation(pre, anns)

    noaction_cp = "NoAction"

    for tname, (block, t) in names.tables.items():
        if ir.annotation(t.annotations, "hidden"):
            continue  # P4RuntimeAnalyzer::addTable: @hidden tables are not listed
        pt = info.tables.add()
        preamble(pt.preamble, PREFIX_TABLE, tname, t.annotations)
        keys = [k for k in t.keys if k.match_kind != "selector"]
        for kid, k in zip(_field_ids([k.annotations for k in keys]), keys, strict=True):
            mf = pt.match_fields.add()
            mf.id = kid
            na = ir.annotation(k.annotations, "name")
            mf.name = str(na.args[0]) if na is not None and na.args else k.source_text
            mf.annotations.extend(annotation_strings(k.annotations))
            add_documentation(mf, k.annotations)
            mf.bitwidth = _width(k.expr.type)
            mt = {"exact": p4i.MatchField.EXACT, "lpm": p4i.MatchField.LPM,
                  "ternary": p4i.MatchField.TERNARY, "range": p4i.MatchField.RANGE,
                  "optional": p4i.MatchField.OPTIONAL}.get(k.match_kind)
            if mt is None:
                mf.other_match_type = k.match_kind
            else:
                mf.match_type = mt
            if isinstance(k.expr.type, ir.SerEnumT):
                types.ser_enum(k.expr.type)
                mf.type_name.name = k.expr.type.name

        local_actions = {a.name: a for a in block.decl.actions}

        def action_name(local: str, top_level: bool, path: tuple[str, ...] = block.path,
                        local_actions: dict[str, ir.ActionDecl] = local_actions) -> str:
            if top_level or local not in local_actions:
                d = program.actions[local]
                return control_plane_name((), d.original_name or d.name, d.annotations)
            d = local_actions[local]
            return control_plane_name(path, d.original_name or d.name, d.annotations)

        refs = [(action_name(r.action, r.top_level), r.annotations) for r in t.actions]
        default_cp = action_name(t.default_action.action, t.default_action.top_level)
        if default_cp == noaction_cp and all(n != noaction_cp for n, _ in refs):
            # p4c's frontend adds ``@defaultonly NoAction`` to a table without default_action
            refs.append((noaction_cp, (ir.Annotation("defaultonly"),)))
        for aname, anns in refs:
            ar = pt.action_refs.add()
            ar.id = ids[(PREFIX_ACTION, aname)]
            ar.annotations.extend(annotation_strings(anns))
            if ir.annotation(tuple(anns), "tableonly"):
                ar.scope = p4i.ActionRef.TABLE_ONLY
            elif ir.annotation(tuple(anns), "defaultonly"):
                ar.scope = p4i.ActionRef.DEFAULT_ONLY
        if t.default_action.is_const:
            pt.const_default_action_id = ids[(PREFIX_ACTION, default_cp)]
        for res, owner in names.direct_owner.items():
            if owner == tname:
                kind = names.externs[res][0]
                pt.direct_resource_ids.append(ids[(_EXTERN_PREFIX[kind], res)])
        # Helpers::getTableSize: no size, or size 0, means the v1model default
        pt.size = _size(t.size or DEFAULT_TABLE_SIZE, f"table {tname}")
        if t.support_timeout:
            pt.idle_timeout_behavior = p4i.Table.NOTIFY_CONTROL
        if t.entries is not None:
            if t.entries_const:
                pt.is_const_table = True
            else:
                pt.has_initial_entries = True

    for aname, a in names.actions.items():
        if ir.annotation(a.annotations, "hidden"):
            continue  # P4RuntimeAnalyzer::addAction
        pa = info.actions.add()
        preamble(pa.preamble, PREFIX_ACTION, aname, a.annotations)
        params = list(names.action_params[aname])
        for pid, p in zip(_field_ids([p.annotations for p in params]), params, strict=True):
            pp = pa.params.add()
            pp.id = pid
            na = ir.annotation(p.annotations, "name")
            pp.name = str(na.args[0]) if na is not None and na.args else p.name
            pp.annotations.extend(annotation_strings(p.annotations))
            add_documentation(pp, p.annotations)
            if not isinstance(p.type, ir.EnumT):
                pp.bitwidth = _width(p.type)
            if isinstance(p.type, ir.SerEnumT):
                types.ser_enum(p.type)
                pp.type_name.name = p.type.name

    for cp, (kind, inst) in names.externs.items():
        prefix = _EXTERN_PREFIX[kind]
        if kind == "counter":
            c = info.counters.add()
            preamble(c.preamble, prefix, cp, inst.annotations)
            c.spec.unit = _counter_unit(inst.ctor_args[1] if len(inst.ctor_args) > 1 else None)
            c.size = _size(_const_int(inst.ctor_args[0]), f"counter {cp}")
        elif kind == "direct_counter":
            dc = info.direct_counters.add()
            preamble(dc.preamble, prefix, cp, inst.annotations)
            dc.spec.unit = _counter_unit(inst.ctor_args[0] if inst.ctor_args else None)
            dc_owner = names.direct_owner.get(cp)
            if dc_owner is not None:
                dc.direct_table_id = ids[(PREFIX_TABLE, dc_owner)]
        elif kind == "meter":
            m = info.meters.add()
            preamble(m.preamble, prefix, cp, inst.annotations)
            m.spec.unit = _meter_unit(inst.ctor_args[1] if len(inst.ctor_args) > 1 else None)
            m.size = _size(_const_int(inst.ctor_args[0]), f"meter {cp}")
        elif kind == "direct_meter":
            dm = info.direct_meters.add()
            preamble(dm.preamble, prefix, cp, inst.annotations)
            dm.spec.unit = _meter_unit(inst.ctor_args[0] if inst.ctor_args else None)
            dm_owner = names.direct_owner.get(cp)
            if dm_owner is not None:
                dm.direct_table_id = ids[(PREFIX_TABLE, dm_owner)]
        elif kind == "register":
            r = info.registers.add()
            preamble(r.preamble, prefix, cp, inst.annotations)
            assert isinstance(inst.type, ir.ExternT)
            if inst.type.type_args:
                types.spec(inst.type.type_args[0], r.type_spec)
            r.size = _size(_const_int(inst.ctor_args[0]), f"register {cp}", bits=32)  # int32 in the P4Info

    for hname, h in names.controller_headers.items():
        cm = info.controller_packet_metadata.add()
        ann = ir.annotation(h.annotations, "controller_header")
        cname = str(ann.args[0]) if ann is not None and ann.args else hname
        # p4c: the preamble carries the annotation's name, the id hashes the type name
        cm.preamble.id = ids[(PREFIX_CONTROLLER_HEADER, hname)]
        cm.preamble.name = cname
        cm.preamble.alias = cname
        cm.preamble.annotations.extend(annotation_strings(h.annotations))
        add_documentation(cm.preamble, h.annotations)
        fanns = [h.field_annotations[i] if i < len(h.field_annotations) else () for i in range(len(h.fields))]
        for fid, (fname, ftype), anns in zip(_field_ids(fanns), h.fields, fanns, strict=True):
            if ir.annotation(anns, "hidden"):
                continue  # addControllerHeader skips hidden fields (their ids stay taken)
            md = cm.metadata.add()
            md.id = fid
            md.name = control_plane_name((), fname, anns)
            md.annotations.extend(annotation_strings(anns))
            md.bitwidth = _width(ftype)
            if isinstance(ftype, ir.SerEnumT):
                types.ser_enum(ftype)
                md.type_name.name = ftype.name

    for dname, dt in names.digests.items():
        d = info.digests.add()
        preamble(d.preamble, PREFIX_DIGEST, dname, ())
        types.spec(dt, d.type_spec)

    info.type_info.SetInParent()
    return info


def _size(value: int, what: str, bits: int = 64) -> int:
    """A size for the P4Info (int64, int32 for registers): a negative or too large one
    is the program's error, not a protobuf ValueError."""
    if not 0 <= value < 1 << (bits - 1):
        raise P4InfoError(f"{what}: size {value} must be in 0..{(1 << (bits - 1)) - 1}")
    return value


def _const_int(e: ir.Expr) -> int:
    if isinstance(e, ir.Const) and not isinstance(e.value, bool):
        return e.value
    raise P4InfoError(f"{e.pos}: expected a constant integer constructor argument")


def _counter_unit(e: ir.Expr | None) -> int:
    member = e.member if isinstance(e, ir.EnumConst) else "packets"
    return {"packets": p4i.CounterSpec.PACKETS, "bytes": p4i.CounterSpec.BYTES,
            "packets_and_bytes": p4i.CounterSpec.BOTH}.get(member, p4i.CounterSpec.UNSPECIFIED)


def _meter_unit(e: ir.Expr | None) -> int:
    member = e.member if isinstance(e, ir.EnumConst) else "bytes"
    return {"packets": p4i.MeterSpec.PACKETS, "bytes": p4i.MeterSpec.BYTES}.get(
        member, p4i.MeterSpec.UNSPECIFIED)


_HEADER = "# proto-file: p4/config/v1/p4info.proto\n# proto-message: p4.config.v1.P4Info\n\n"


def p4info_to_text(info: p4i.P4Info) -> str:
    """Text format, with the header comment p4c writes."""
    return _HEADER + str(text_format.MessageToString(info))


def p4info_from_text(text: str) -> p4i.P4Info:
    info = p4i.P4Info()
    text_format.Parse(text, info)
    return info

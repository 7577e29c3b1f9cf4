"""P4Runtime CounterEntry, RegisterEntry, MeterEntry and PacketReplicationEngineEntry
<-> extern state (``CompiledProgram.instances``) and the device's PRE.

Extern objects are used duck-typed (v1model's CounterArray: ``.packets``, ``.bytes``,
``.size``; RegisterArray: ``.values``, ``.size``, ``.width``, ``.normalize``;
MeterArray: ``.set_config``, ``.configs``) so that this module does not depend on an
architecture package.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from finsy.proto import p4r

from softswitch.device import CloneSession, Device, Replica
from softswitch.runtime.codec import decode, encode
from softswitch.runtime.errors import Code, P4RTError
from softswitch.runtime.pipeline import Pipeline

__all__ = ["write_counter", "read_counters", "write_register", "read_registers", "write_meter",
           "read_meters", "write_pre", "read_pre"]

_INSERT, _MODIFY, _DELETE = p4r.Update.INSERT, p4r.Update.MODIFY, p4r.Update.DELETE


def _instance(pipe: Pipeline, name: str) -> Any:
    obj = pipe.loaded.compiled.instances.get(name)
    if obj is None:
        raise P4RTError(Code.INTERNAL, f"{name} is in the P4Info but not in the program")
    return obj


def _indexes(size: int, index: p4r.Index | None, has_index: bool, what: str) -> range:
    if not has_index:
        return range(size)
    assert index is not None
    if not 0 <= index.index < size:
        raise P4RTError(Code.OUT_OF_RANGE, f"{what}: index {index.index} out of range (size {size})")
    return range(index.index, index.index + 1)


# ------------------------------------------------------------------- counters


def write_counter(pipe: Pipeline, op: int, ce: p4r.CounterEntry) -> None:
    if op != _MODIFY:
        raise P4RTError(Code.INVALID_ARGUMENT, "counter entries can only be modified")
    pc = pipe.counters.get(ce.counter_id)
    if pc is None:
        raise P4RTError(Code.INVALID_ARGUMENT, f"unknown counter id {ce.counter_id}")
    c = _instance(pipe, pc.preamble.name)
    for i in _indexes(c.size, ce.index, ce.HasField("index"), f"counter {pc.preamble.name}"):
        c.packets[i] = ce.data.packet_count
        c.bytes[i] = ce.data.byte_count


def _read_ids(known: Mapping[int, object], requested: int, kind: str) -> list[int]:
    """The ids a Read names: all of them for the wildcard 0, else the one requested."""
    if requested == 0:
        return list(known)
    if requested not in known:
        raise P4RTError(Code.INVALID_ARGUMENT, f"unknown {kind} id {requested}")
    return [requested]


def read_counters(pipe: Pipeline, ce: p4r.CounterEntry) -> Iterator[p4r.CounterEntry]:
    for cid in _read_ids(pipe.counters, ce.counter_id, "counter"):
        name = pipe.counters[cid].preamble.name
        c = _instance(pipe, name)
        for i in _indexes(c.size, ce.index, ce.HasField("index") and ce.counter_id != 0, f"counter {name}"):
            out = p4r.CounterEntry(counter_id=cid)
            out.index.index = i
            out.data.packet_count = c.packets[i]
            out.data.byte_count = c.bytes[i]
            yield out


# ------------------------------------------------------------------ registers


def write_register(pipe: Pipeline, op: int, re: p4r.RegisterEntry) -> None:
    if op != _MODIFY:
        raise P4RTError(Code.INVALID_ARGUMENT, "register entries can only be modified")
    pr = pipe.registers.get(re.register_id)
    if pr is None:
        raise P4RTError(Code.INVALID_ARGUMENT, f"unknown register id {re.register_id}")
    r = _instance(pipe, pr.preamble.name)
    what = f"register {pr.preamble.name}"
    if re.data.WhichOneof("data") != "bitstring":
        raise P4RTError(Code.INVALID_ARGUMENT, f"{what}: data must be a bitstring")
    value = decode(re.data.bitstring, r.width, what)
    for i in _indexes(r.size, re.index, re.HasField("index"), what):
        r.values[i] = r.normalize(value)


def read_registers(pipe: Pipeline, re: p4r.RegisterEntry) -> Iterator[p4r.RegisterEntry]:
    for rid in _read_ids(pipe.registers, re.register_id, "register"):
        name = pipe.registers[rid].preamble.name
        r = _instance(pipe, name)
        for i in _indexes(r.size, re.index, re.HasField("index") and re.register_id != 0, f"register {name}"):
            out = p4r.RegisterEntry(register_id=rid)
            out.index.index = i
            out.data.bitstring = encode(r.values[i], r.width)
            yield out


# --------------------------------------------------------------------- meters


def write_meter(pipe: Pipeline, op: int, me: p4r.MeterEntry) -> None:
    from softswitch.arch.externs import MeterConfig  # the v1model meter parameters

    if op != _MODIFY:
        raise P4RTError(Code.INVALID_ARGUMENT, "meter entries can only be modified")
    meters = {m.preamble.id: m for m in pipe.p4info.meters}
    pm = meters.get(me.meter_id)
    if pm is None:
        raise P4RTError(Code.INVALID_ARGUMENT, f"unknown meter id {me.meter_id}")
    m = _instance(pipe, pm.preamble.name)
    cfg = None
    if me.HasField("config"):
        c = me.config
        if c.cir > c.pir:
            raise P4RTError(Code.INVALID_ARGUMENT, f"meter {pm.preamble.name}: cir {c.cir} > pir {c.pir}")
        cfg = MeterConfig(c.cir, c.cburst, c.pir, c.pburst)
    for i in _indexes(m.size, me.index, me.HasField("index"), f"meter {pm.preamble.name}"):
        m.set_config(i, cfg)


def read_meters(pipe: Pipeline, me: p4r.MeterEntry) -> Iterator[p4r.MeterEntry]:
    meters = {m.preamble.id: m for m in pipe.p4info.meters}
    for mid in _read_ids(meters, me.meter_id, "meter"):
        m = _instance(pipe, meters[mid].preamble.name)
        for i in _indexes(m.size, me.index, me.HasField("index") and me.meter_id != 0, meters[mid].preamble.name):
            out = p4r.MeterEntry(meter_id=mid)
            out.index.index = i
            cfg = m.configs[i]
            if cfg is not None:
                out.config.cir, out.config.cburst = cfg.cir, cfg.cburst
                out.config.pir, out.config.pburst = cfg.pir, cfg.pburst
            yield out


# ------------------------------------------------------------------------ PRE


#: v1model's port width (standard_metadata.egress_port)
PORT_BITS = 9


def _replicas(reps: list[p4r.Replica], what: str) -> list[Replica]:
    out: list[Replica] = []
    seen: set[tuple[int, int]] = set()
    for r in reps:
        if r.WhichOneof("port_kind") == "port":
            port = decode(r.port, PORT_BITS, f"{what}: replica port")
        else:
            port = r.egress_port
            if port >> PORT_BITS:
                # standard_metadata.egress_port is bit<9>: such a copy could not be sent
                raise P4RTError(Code.OUT_OF_RANGE,
                                f"{what}: replica egress_port {port} does not fit in {PORT_BITS} bits")
        key = (port, r.instance)
        if key in seen:
            raise P4RTError(Code.INVALID_ARGUMENT, f"{what}: duplicate replica (port {port}, instance {r.instance})")
        seen.add(key)
        out.append(Replica(port, r.instance))
    return out


def _check_existence(op: int, exists: bool, what: str) -> None:
    """INSERT needs a new id; MODIFY and DELETE need an existing one (P4Runtime spec)."""
    if op == _INSERT and exists:
        raise P4RTError(Code.ALREADY_EXISTS, f"{what} already exists")
    if op in (_MODIFY, _DELETE) and not exists:
        raise P4RTError(Code.NOT_FOUND, f"{what} does not exist")


def write_pre(device: Device, op: int, pre: p4r.PacketReplicationEngineEntry) -> None:
    which = pre.WhichOneof("type")
    if which == "multicast_group_entry":
        g = pre.multicast_group_entry
        gid = g.multicast_group_id
        what = f"multicast group {gid}"
        if gid == 0:
            raise P4RTError(Code.INVALID_ARGUMENT, "multicast group id 0 is reserved")
        _check_existence(op, gid in device.multicast_groups, what)
        if op == _DELETE:
            del device.multicast_groups[gid]
        else:
            device.multicast_groups[gid] = _replicas(list(g.replicas), what)
    elif which == "clone_session_entry":
        s = pre.clone_session_entry
        sid = s.session_id
        what = f"clone session {sid}"
        if sid == 0:
            raise P4RTError(Code.INVALID_ARGUMENT, "clone session id 0 is reserved")
        _check_existence(op, sid in device.clone_sessions, what)
        if op == _DELETE:
            del device.clone_sessions[sid]
        else:
            device.clone_sessions[sid] = CloneSession(_replicas(list(s.replicas), what), s.class_of_service,
                                                      s.packet_length_bytes)
    else:
        raise P4RTError(Code.INVALID_ARGUMENT, "empty PacketReplicationEngineEntry")


def _encode_replicas(out: Any, reps: list[Replica]) -> None:
    for r in reps:
        out.add(egress_port=r.egress_port, instance=r.instance)


def read_pre(device: Device, pre: p4r.PacketReplicationEngineEntry) -> Iterator[p4r.PacketReplicationEngineEntry]:
    which = pre.WhichOneof("type")
    if which == "multicast_group_entry":
        gid = pre.multicast_group_entry.multicast_group_id
        for g in ([gid] if gid else sorted(device.multicast_groups)):
            if g not in device.multicast_groups:
                continue
            out = p4r.PacketReplicationEngineEntry()
            out.multicast_group_entry.multicast_group_id = g
            _encode_replicas(out.multicast_group_entry.replicas, device.multicast_groups[g])
            yield out
    elif which == "clone_session_entry":
        sid = pre.clone_session_entry.session_id
        for s in ([sid] if sid else sorted(device.clone_sessions)):
            cs = device.clone_sessions.get(s)
            if cs is None:
                continue
            out = p4r.PacketReplicationEngineEntry()
            e = out.clone_session_entry
            e.session_id = s
            e.class_of_service = cs.class_of_service
            e.packet_length_bytes = cs.packet_length_bytes
            _encode_replicas(e.replicas, cs.replicas)
            yield out
    else:
        raise P4RTError(Code.INVALID_ARGUMENT, "PacketReplicationEngineEntry read needs a multicast group "
                        "or clone session entry")

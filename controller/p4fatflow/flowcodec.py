"""Flow entries and miss digests on the wire, without a per-field protobuf object.

Flow setup is the controller's hot path (issue goal: >= 100,000 setups/s on one core). Building
a ``p4.v1.TableEntry`` with eight ``FieldMatch`` messages costs ~8 us per flow in Python; the
same bytes assembled from precomputed prefixes cost well under 2 us. So:

- a flow's identity is its **match wire**: the serialized ``match`` fields (field 2 of
  TableEntry) exactly as an INSERT/DELETE carries them, built from the digest's canonical
  bytestrings. Prefixed with the IP version it is the key of the controller's flow index, the
  input of DELETE and of a per-entry Read, and decodable back into a :class:`FlowKey`;
- Updates are assembled as bytes and sent with an identity serializer (session.py); everything
  that is not per flow (action, params) is cached per distinct decision.

Field numbers come from the protobuf descriptors (finsy.proto), not typed by hand.
"""

from __future__ import annotations

import struct
from collections.abc import Container, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from finsy.proto import p4r

from p4fatflow.key import FlowKey
from p4fatflow.profile import FlowTableIds, PipelineProfile

__all__ = [
    "varint",
    "canon",
    "FlowContext",
    "CONTEXT_SIZE",
    "FlowCodec",
    "UPDATE_INSERT",
    "UPDATE_MODIFY",
    "UPDATE_DELETE",
]


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_VARINT = [varint(i) for i in range(1 << 14)]  # lengths of updates, entries: table lookups


def _vlen(n: int) -> bytes:
    return _VARINT[n] if n < 16384 else varint(n)


def _tag(number: int, wire_type: int) -> bytes:
    return varint((number << 3) | wire_type)


def _ld(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + varint(len(payload)) + payload


def _num(msg: type, name: str) -> int:
    return int(msg.DESCRIPTOR.fields_by_name[name].number)  # type: ignore[attr-defined]


def canon(value: bytes) -> bytes:
    """P4Runtime's canonical bytestring (no leading zero bytes; zero is one 0 byte)."""
    if len(value) > 1 and value[0] == 0:
        value = value.lstrip(b"\x00") or b"\x00"
    return value


_TE_TABLE_ID = _num(p4r.TableEntry, "table_id")
_TE_MATCH = _num(p4r.TableEntry, "match")
_TE_ACTION = _num(p4r.TableEntry, "action")
_TE_IDLE = _num(p4r.TableEntry, "idle_timeout_ns")
_TE_METADATA = _num(p4r.TableEntry, "metadata")
_TE_COUNTER = _num(p4r.TableEntry, "counter_data")
_TE_SINCE_HIT = _num(p4r.TableEntry, "time_since_last_hit")
_FM_ID = _num(p4r.FieldMatch, "field_id")
_FM_EXACT = _num(p4r.FieldMatch, "exact")
_EXACT_VALUE = _num(p4r.FieldMatch.Exact, "value")
_TA_ACTION = _num(p4r.TableAction, "action")
_A_ID = _num(p4r.Action, "action_id")
_A_PARAMS = _num(p4r.Action, "params")
_P_ID = _num(p4r.Action.Param, "param_id")
_P_VALUE = _num(p4r.Action.Param, "value")
_ENTITY_TE = _num(p4r.Entity, "table_entry")
_UPDATE_TYPE = _num(p4r.Update, "type")
_UPDATE_ENTITY = _num(p4r.Update, "entity")
_WR_UPDATES = _num(p4r.WriteRequest, "updates")

_MATCH_ONLY = p4r.TableEntry
_READ_ENTITIES = _num(p4r.ReadRequest, "entities")

UPDATE_INSERT = int(p4r.Update.INSERT)
UPDATE_MODIFY = int(p4r.Update.MODIFY)
UPDATE_DELETE = int(p4r.Update.DELETE)

# The flow context that travels in the entry's `metadata` (the switch is the source of truth):
# format version, flags, vmi id, ingress port, direction, lifetime (s), first seen (unix ns),
# rule fingerprint of the VMI (crc32 of what its keys depend on), 16 bytes of opaque info.
_CONTEXT = struct.Struct(">BBHHBIQI16s")
CONTEXT_SIZE = _CONTEXT.size
_CONTEXT_VERSION = 1
_FLAG_MIRROR, _FLAG_OFFLOADED, _FLAG_DROP = 1, 2, 4


@dataclass(slots=True)
class FlowContext:
    """What a flow entry carries besides its key: forwarding (action params) and the rest
    (controller metadata). Treat it as immutable (``dataclasses.replace`` for changes); it is not
    frozen only because a frozen dataclass's __init__ costs ~1.5 us more, once per new flow."""

    verdict_drop: bool = False
    mirror: bool = False
    offloaded: bool = False
    egress_port: int = 0
    lifetime: int = 60
    vmi_id: int = 0
    ingress_port: int = 0
    direction: int = 0
    first_seen_ns: int = 0
    fingerprint: int = 0
    info: bytes = b""

    def metadata(self) -> bytes:
        flags = (_FLAG_MIRROR if self.mirror else 0) | (_FLAG_OFFLOADED if self.offloaded else 0) | (
            _FLAG_DROP if self.verdict_drop else 0)
        return _CONTEXT.pack(_CONTEXT_VERSION, flags, self.vmi_id, self.ingress_port, self.direction,
                             self.lifetime, self.first_seen_ns, self.fingerprint, self.info)

    @classmethod
    def from_metadata(cls, data: bytes, *, egress_port: int = 0) -> FlowContext | None:
        """The context of an entry read back; None for metadata this controller did not write."""
        if len(data) != CONTEXT_SIZE or data[0] != _CONTEXT_VERSION:
            return None
        _, flags, vmi, port, direction, lifetime, first, fp, info = _CONTEXT.unpack(data)
        return cls(bool(flags & _FLAG_DROP), bool(flags & _FLAG_MIRROR), bool(flags & _FLAG_OFFLOADED),
                   egress_port, lifetime, vmi, port, direction, first, fp, info.rstrip(b"\x00"))


class _TableCodec:
    """Wire pieces of one flow table (v4 or v6)."""

    def __init__(self, ids: FlowTableIds, version: int) -> None:
        self.ids = ids
        self.version = version
        self.table_prefix = _tag(_TE_TABLE_ID, 0) + varint(ids.table_id)
        self.version_byte = bytes((version,))
        # prefixes[i][n]: everything before an n-byte value of key field i, from the `match` tag on
        prefixes: list[list[bytes]] = []
        for fid, bits in zip(ids.field_ids, ids.field_bits, strict=True):
            width = (bits + 7) // 8
            row = [b""]
            for n in range(1, width + 1):
                exact = _tag(_EXACT_VALUE, 2) + varint(n)  # + value
                fm_head = _tag(_FM_ID, 0) + varint(fid) + _tag(_FM_EXACT, 2) + varint(len(exact) + n)
                row.append(_tag(_TE_MATCH, 2) + varint(len(fm_head) + len(exact) + n) + fm_head + exact)
            prefixes.append(row)
        self.prefixes = prefixes
        self.id_to_index = {fid: i for i, fid in enumerate(ids.field_ids)}
        self.max_len = [(bits + 7) // 8 for bits in ids.field_bits]


class FlowCodec:
    """Encoder/decoder of one pipeline's flow entries (ids from a :class:`PipelineProfile`)."""

    def __init__(self, profile: PipelineProfile) -> None:
        self.profile = profile
        self._v4 = _TableCodec(profile.flow_v4, 4)
        self._v6 = _TableCodec(profile.flow_v6, 6)
        self._by_table = {profile.flow_v4.table_id: self._v4, profile.flow_v6.table_id: self._v6}
        self._action_cache: dict[tuple[int, bool, bool, bool, int], bytes] = {}
        self._tail_cache: dict[tuple[int, bool, bool, bool, int, int], bytes] = {}
        self._wr_tag = _tag(_WR_UPDATES, 2)
        self._entity_tag = _tag(_UPDATE_ENTITY, 2)
        self._te_tag = _tag(_ENTITY_TE, 2)
        self._read_tag = _tag(_READ_ENTITIES, 2)
        self._read_tail = _ld(_TE_COUNTER, b"")
        self._read_tail_idle = self._read_tail + _ld(_TE_SINCE_HIT, b"")
        self._update_heads = {t: _tag(_UPDATE_TYPE, 0) + varint(t) for t in
                              (UPDATE_INSERT, UPDATE_MODIFY, UPDATE_DELETE)}

    # -- keys ---------------------------------------------------------------------------------
    def index_key(self, version: int, values: Sequence[bytes]) -> bytes:
        """The flow-index key of a flow whose eight key fields (canonical bytestrings, in
        FLOW_KEY_FIELDS order) are ``values``: the version byte, then the match wire."""
        pre = (self._v4 if version == 4 else self._v6).prefixes
        v0, v1, v2, v3, v4, v5, v6, v7 = values
        return b"".join((b"\x04" if version == 4 else b"\x06",
                         pre[0][len(v0)], v0, pre[1][len(v1)], v1, pre[2][len(v2)], v2,
                         pre[3][len(v3)], v3, pre[4][len(v4)], v4, pre[5][len(v5)], v5,
                         pre[6][len(v6)], v6, pre[7][len(v7)], v7))

    def index_key_of_entry(self, te: p4r.TableEntry, *, known: Container[bytes] | None = None) -> bytes | None:
        """The index key of a flow entry read back (or reported idle); None if not a flow entry
        or malformed. With ``known`` (keys the caller expects, e.g. the index), an entry whose
        match serializes (in C) to one of them is taken as it is: targets answer with the
        canonical values in field-id order that we wrote. Anything else is decoded field by field."""
        tc = self._by_table.get(te.table_id)
        if tc is None:
            return None
        if known is not None:
            key: bytes = tc.version_byte + _MATCH_ONLY(match=te.match).SerializeToString()
            if key in known:
                return key
        values: list[bytes] = [b""] * len(tc.prefixes)
        for fm in te.match:
            i = tc.id_to_index.get(fm.field_id)
            if i is None:
                return None
            v = canon(fm.exact.value)
            if not v or len(v) > tc.max_len[i]:
                return None
            values[i] = v
        if not all(values):
            return None
        return self.index_key(tc.version, values)

    def flow_key(self, index_key: bytes) -> FlowKey:
        """Decode an index key into the FlowKey it stands for (slow path: records, API)."""
        version = index_key[0]
        msg = p4r.TableEntry.FromString(index_key[1:])
        tc = self._v4 if version == 4 else self._v6
        values = [0] * len(tc.prefixes)
        for fm in msg.match:  # by the P4Info's ids, whatever order a compiler numbered them in
            values[tc.id_to_index[fm.field_id]] = int.from_bytes(fm.exact.value, "big")
        addr: type[IPv4Address] | type[IPv6Address] = IPv4Address if version == 4 else IPv6Address
        vrf, src, dst, proto, sport, dport, splen, dplen = values
        return FlowKey(vrf=vrf, src=addr(src), dst=addr(dst), protocol=proto, sport=sport, dport=dport,
                       src_plen=splen, dst_plen=dplen)

    def key_values(self, key: FlowKey) -> tuple[int, list[bytes]]:
        """(version, canonical values) of a FlowKey (the API's way in)."""
        ints = (key.vrf, int(key.src), int(key.dst), key.protocol, key.sport, key.dport, key.src_plen, key.dst_plen)
        return key.version, [i.to_bytes(max(1, (i.bit_length() + 7) // 8), "big") for i in ints]

    def table_id_of(self, index_key: bytes) -> int:
        return (self._v4 if index_key[0] == 4 else self._v6).ids.table_id

    # -- updates ------------------------------------------------------------------------------
    def _action(self, version: int, ctx: FlowContext) -> bytes:
        ck = (version, ctx.verdict_drop, ctx.mirror, ctx.offloaded, ctx.egress_port)
        wire = self._action_cache.get(ck)
        if wire is None:
            ids = (self._v4 if version == 4 else self._v6).ids
            if ctx.verdict_drop:
                action = _tag(_A_ID, 0) + varint(ids.drop_id)
            else:
                params = b"".join(
                    _ld(_A_PARAMS, _tag(_P_ID, 0) + varint(pid) + _ld(_P_VALUE, _int_bytes(value)))
                    for pid, value in zip(ids.forward_param_ids,
                                          (int(ctx.mirror), int(ctx.offloaded), ctx.egress_port), strict=True))
                action = _tag(_A_ID, 0) + varint(ids.forward_id) + params
            wire = _ld(_TE_ACTION, _ld(_TA_ACTION, action))
            if len(self._action_cache) < 4096:  # distinct decisions are few; bound it anyway
                self._action_cache[ck] = wire
        return wire

    def _tail(self, version: int, ctx: FlowContext) -> bytes:
        """Action, idle timeout and the metadata field's tag + length: all but the metadata bytes."""
        ck = (version, ctx.verdict_drop, ctx.mirror, ctx.offloaded, ctx.egress_port, ctx.lifetime)
        tail = self._tail_cache.get(ck)
        if tail is None:
            tail = b"".join((self._action(version, ctx), _tag(_TE_IDLE, 0),
                             varint(max(ctx.lifetime, 0) * 1_000_000_000), _tag(_TE_METADATA, 2),
                             varint(CONTEXT_SIZE)))
            if len(self._tail_cache) < 4096:
                self._tail_cache[ck] = tail
        return tail

    def insert(self, index_key: bytes, ctx: FlowContext, *, modify: bool = False) -> bytes:
        """One ``updates`` field (WriteRequest field 4, ready to concatenate) that inserts (or
        modifies) the flow with its context; idle timeout = lifetime.

        The hot path of flow setup: the nested length prefixes are computed, not re-encoded."""
        version = index_key[0]
        tc = self._v4 if version == 4 else self._v6
        prefix, tail = tc.table_prefix, self._tail(version, ctx)
        meta = ctx.metadata()
        te_len = len(prefix) + len(index_key) - 1 + len(tail) + CONTEXT_SIZE
        te_head = _vlen(te_len)
        ent_len = 1 + len(te_head) + te_len  # entity: table_entry tag + length + entry
        ent_head = _vlen(ent_len)
        head = self._update_heads[UPDATE_MODIFY if modify else UPDATE_INSERT]
        upd_len = len(head) + 1 + len(ent_head) + ent_len
        return b"".join((self._wr_tag, _vlen(upd_len), head, self._entity_tag, ent_head, self._te_tag, te_head,
                         prefix, memoryview(index_key)[1:], tail, meta))

    def delete(self, index_key: bytes) -> bytes:
        tc = self._v4 if index_key[0] == 4 else self._v6
        prefix = tc.table_prefix
        te_len = len(prefix) + len(index_key) - 1
        te_head = _vlen(te_len)
        ent_len = 1 + len(te_head) + te_len
        ent_head = _vlen(ent_len)
        head = self._update_heads[UPDATE_DELETE]
        upd_len = len(head) + 1 + len(ent_head) + ent_len
        return b"".join((self._wr_tag, _vlen(upd_len), head, self._entity_tag, ent_head, self._te_tag, te_head,
                         prefix, memoryview(index_key)[1:]))

    def read_wire(self, index_key: bytes, *, idle: bool = False) -> bytes:
        """One ``entities`` field of a ReadRequest (wire bytes) asking for exactly this flow entry
        with its direct counter (and, with ``idle``, its time since last hit)."""
        tc = self._v4 if index_key[0] == 4 else self._v6
        tail = self._read_tail_idle if idle else self._read_tail
        te_len = len(tc.table_prefix) + len(index_key) - 1 + len(tail)
        te_head = _vlen(te_len)
        ent_len = 1 + len(te_head) + te_len
        return b"".join((self._read_tag, _vlen(ent_len), self._te_tag, te_head, tc.table_prefix,
                         memoryview(index_key)[1:], tail))

    def read_entity(self, index_key: bytes, *, counters: bool = True, idle: bool = False) -> p4r.Entity:
        """A Read filter for exactly this flow entry (with its direct counter; with ``idle``, its
        time since last hit, which targets only return when asked)."""
        tc = self._v4 if index_key[0] == 4 else self._v6
        te = tc.table_prefix + index_key[1:]
        if counters:
            te += _ld(_TE_COUNTER, b"")
        if idle:
            te += _ld(_TE_SINCE_HIT, b"")
        return p4r.Entity(table_entry=p4r.TableEntry.FromString(te))

    def forward_id(self, index_key: bytes) -> int:
        return (self._v4 if index_key[0] == 4 else self._v6).ids.forward_id

    def is_v4(self, index_key: bytes) -> bool:
        return index_key[0] == 4


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")

"""Reads answered as bytes (runtime/tables.py): every entry parses to exactly the
TableEntry that encode_entry builds, for every match kind and optional field, and a
MODIFY drops the entry's cached encoding."""

from __future__ import annotations

from finsy.proto import p4r

from softswitch.device import Device
from softswitch.p4info import build_p4info
from softswitch.runtime import tables
from softswitch.runtime.pipeline import Pipeline

PROGRAM = r"""
#include <core.p4>
#include <v1model.p4>
header h_t { bit<48> a; bit<32> b; bit<8> c; bit<16> d; }
struct headers_t { h_t h; }
struct meta_t { }
parser P(packet_in pkt, out headers_t hdr, inout meta_t m, inout standard_metadata_t std) {
    state start { pkt.extract(hdr.h); transition accept; }
}
control VC(inout headers_t hdr, inout meta_t m) { apply { } }
control I(inout headers_t hdr, inout meta_t m, inout standard_metadata_t std) {
    direct_counter(CounterType.packets_and_bytes) ctr;
    action set(bit<9> port, bit<48> mac) { std.egress_spec = port; hdr.h.a = mac; }
    action nop() { }
    table exact_lpm {
        key = { hdr.h.a: exact; hdr.h.b: lpm; }
        actions = { set; nop; }
        size = 64;
    }
    table mixed {
        key = { hdr.h.b: ternary; hdr.h.d: range; hdr.h.c: optional; }
        actions = { set; nop; }
        support_timeout = true;
        counters = ctr;
        size = 64;
    }
    table only_exact {
        key = { hdr.h.a: exact; hdr.h.c: exact; }
        actions = { set; nop; }
        size = 64;
        const entries = { (1, 2): nop(); }
    }
    apply { exact_lpm.apply(); mixed.apply(); only_exact.apply(); }
}
control E(inout headers_t hdr, inout meta_t m, inout standard_metadata_t std) { apply { } }
control C(inout headers_t hdr, inout meta_t m) { apply { } }
control D(packet_out pkt, in headers_t hdr) { apply { pkt.emit(hdr.h); } }
V1Switch(P(), VC(), I(), E(), C(), D()) main;
"""

INS, MOD = p4r.Update.INSERT, p4r.Update.MODIFY


def _pipeline() -> Pipeline:
    loaded = Device.compile(PROGRAM, "wire.p4")
    dev = Device()
    dev.clock_ns = lambda: 10**12
    dev.commit(loaded)
    return Pipeline(build_p4info(loaded.ir), loaded, 0, PROGRAM.encode())


def _ids(pipe: Pipeline) -> dict[str, int]:
    out = {n.split(".")[-1]: i for n, i in pipe.table_ids.items()}
    out.update({n.split(".")[-1]: i for n, i in pipe.action_ids.items()})
    return out


def _entry(tid: int, aid: int, args: list[bytes], **kw: object) -> p4r.TableEntry:
    te = p4r.TableEntry(table_id=tid, **kw)  # type: ignore[arg-type]
    te.action.action.action_id = aid
    for i, v in enumerate(args, 1):
        te.action.action.params.add(param_id=i, value=v)
    return te


def _check_all(pipe: Pipeline, request: p4r.TableEntry) -> int:
    expected = list(tables.read_table_entries(pipe, request))
    got = [p4r.TableEntry.FromString(w) for w in tables.read_table_entries_wire(pipe, request)]
    assert got == expected
    # and as a ReadResponse made of entity fields
    resp = p4r.ReadResponse.FromString(b"".join(tables.entity_wire(w)
                                                for w in tables.read_table_entries_wire(pipe, request)))
    assert [e.table_entry for e in resp.entities] == expected
    return len(expected)


def test_wire_entries_equal_protobuf_entries_for_every_match_kind_and_field() -> None:
    pipe = _pipeline()
    ids = _ids(pipe)
    el, mixed, ex = ids["exact_lpm"], ids["mixed"], ids["only_exact"]
    te = _entry(el, ids["set"], [b"\x00\x05", b"\x00" * 6])  # padded values, value 0
    te.match.add(field_id=1).exact.value = b"\x00\x00\x01"
    m = te.match.add(field_id=2)
    m.lpm.value, m.lpm.prefix_len = b"\x0a\x00\x00\x00", 8
    te.controller_metadata = 2**63 + 5
    te.metadata = b"\x00meta"
    tables.write_table_entry(pipe, INS, te)
    te = _entry(el, ids["nop"], [])
    te.match.add(field_id=1).exact.value = b"\xff" * 6
    tables.write_table_entry(pipe, INS, te)
    for i, (val, mask, lo, hi, opt) in enumerate([(0x0A000000, 0xFF000000, 1, 2, None),
                                                  (0, 0, 0, 0, 7), (1, 1, 0, 0xFFFE, 0)]):
        te = _entry(mixed, ids["set"], [bytes([i + 1]), (2**48 - 1).to_bytes(6, "big")],
                    priority=i + 1 if i else 2**31 - 1, idle_timeout_ns=(i + 1) * 10**9 if i != 1 else 0)
        if mask:
            m = te.match.add(field_id=1)
            m.ternary.value, m.ternary.mask = val.to_bytes(4, "big"), mask.to_bytes(4, "big")
        if lo or hi:
            m = te.match.add(field_id=2)
            m.range.low, m.range.high = lo.to_bytes(2, "big"), hi.to_bytes(2, "big")
        if opt is not None:
            te.match.add(field_id=3).optional.value = bytes([opt])
        if i == 2:
            te.counter_data.packet_count = -3  # int64: a controller may write anything
            te.counter_data.byte_count = 2**40
        tables.write_table_entry(pipe, INS, te)
    for tid in (0, el, mixed, ex):
        req = p4r.TableEntry(table_id=tid)
        assert _check_all(pipe, req) == {0: 6, el: 2, mixed: 3, ex: 1}[tid]
        req.counter_data.SetInParent()
        req.time_since_last_hit.SetInParent()
        _check_all(pipe, req)
        req.ClearField("time_since_last_hit")
        req.priority = 2
        _check_all(pipe, req)
    # one entry by its match; the default entry
    req = p4r.TableEntry(table_id=el)
    req.match.add(field_id=1).exact.value = b"\xff" * 6
    assert _check_all(pipe, req) == 1
    assert _check_all(pipe, p4r.TableEntry(table_id=mixed, is_default_action=True)) == 1


def test_modify_drops_the_cached_encoding_and_counters_are_read_fresh() -> None:
    pipe = _pipeline()
    ids = _ids(pipe)
    te = _entry(ids["exact_lpm"], ids["set"], [b"\x01", b"\x02"])
    te.match.add(field_id=1).exact.value = b"\x07"
    tables.write_table_entry(pipe, INS, te)
    req = p4r.TableEntry(table_id=ids["exact_lpm"])
    first = [p4r.TableEntry.FromString(w) for w in tables.read_table_entries_wire(pipe, req)]
    assert first[0].action.action.action_id == ids["set"]
    mod = _entry(ids["exact_lpm"], ids["nop"], [], controller_metadata=9)
    mod.match.add(field_id=1).exact.value = b"\x07"
    tables.write_table_entry(pipe, MOD, mod)
    model = pipe.loaded.compiled.tables["I.exact_lpm"]
    next(iter(model.entries())).packets = 42
    req.counter_data.SetInParent()
    again = [p4r.TableEntry.FromString(w) for w in tables.read_table_entries_wire(pipe, req)]
    assert again[0].action.action.action_id == ids["nop"] and not again[0].action.action.params
    assert again[0].controller_metadata == 9 and again[0].counter_data.packet_count == 42
    assert again == list(tables.read_table_entries(pipe, req))

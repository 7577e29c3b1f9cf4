"""P4Info generation against real p4c output.

Reference: p4lang/p4c, testdata/p4_16_samples/basic_routing-bmv2.p4 and its p4c output
testdata/p4_16_samples_outputs/basic_routing-bmv2.p4.p4info.txtpb (commit 2d948f28).
The expected ids, names, aliases, sizes and match fields below are copied from that
file. The IR is built by hand here (same names, keys, widths, actions, sizes as the
source) so this test exercises the P4Info generator alone; test_p4info_frontend
compiles the P4 source itself when the frontend is available.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from finsy.proto import p4i

from softswitch import ir
from softswitch.p4info import (
    P4InfoError,
    build_p4info,
    jenkins_hash,
    p4info_from_text,
    p4info_to_text,
)

P = ir.NOPOS
B = ir.BitT


def _f(name: str, width: int) -> ir.Expr:
    return ir.VarRef(P, B(width), name)


def _action(name: str, *params: tuple[str, int], annotations: tuple[ir.Annotation, ...] = ()) -> ir.ActionDecl:
    return ir.ActionDecl(name, tuple(ir.Param(n, "", B(w)) for n, w in params), ir.Block(P, ()),
                         annotations, name)


def _table(name: str, keys: list[tuple[str, int, str]], actions: list[str], size: int | None = None,
           **kw: object) -> ir.TableDecl:
    return ir.TableDecl(
        name=name,
        keys=tuple(ir.TableKey(_f(t, w), mk, t) for t, w, mk in keys),
        actions=tuple(ir.ActionRef(a) for a in actions),
        default_action=ir.DefaultAction("NoAction", True, (), False),
        size=size, original_name=name, **kw)  # type: ignore[arg-type]


def _control(name: str, actions: list[ir.ActionDecl], tables: list[ir.TableDecl],
             locals_: tuple[ir.VarDecl | ir.Instance, ...] = (), apply: ir.Block | None = None) -> ir.ControlDecl:
    applies = tuple(ir.CallStmt(P, ir.TableApply(P, ir.TableResultT(t.name), t.name)) for t in tables)
    body = ir.Block(P, applies + (apply.stmts if apply is not None else ()))
    return ir.ControlDecl(name, (), (), locals_, tuple(actions), tuple(tables), body)


NOACTION = ir.ActionDecl("NoAction", (), ir.Block(P, ()),
                         (ir.Annotation("noWarn", '"unused"', ("unused",)),), "NoAction")


def _program(controls: list[ir.ControlDecl], types: dict[str, ir.Type] | None = None,
             instances: dict[str, ir.Instance] | None = None) -> ir.Program:
    return ir.Program(
        types=types or {}, constants={}, errors=("NoError",), match_kinds=("exact", "lpm", "ternary"),
        externs={}, extern_functions={}, functions={}, actions={"NoAction": NOACTION}, parsers={},
        controls={c.name: c for c in controls}, packages={}, instances=instances or {},
        main=ir.MainInstance("V1Switch", tuple(c.name for c in controls)))


def basic_routing() -> ir.Program:
    md = "meta.ingress_metadata."
    ingress = _control("ingress", [
        _action("set_vrf", ("vrf", 12)), _action("on_miss"), _action("fib_hit_nexthop", ("nexthop_index", 16)),
        _action("set_egress_details", ("egress_spec", 9)), _action("set_bd", ("bd", 16))], [
        _table("bd", [(md + "bd", 16, "exact")], ["set_vrf"], 65536),
        _table("ipv4_fib", [(md + "vrf", 12, "exact"), ("hdr.ipv4.dstAddr", 32, "exact")],
               ["on_miss", "fib_hit_nexthop"], 131072),
        _table("ipv4_fib_lpm", [(md + "vrf", 12, "exact"), ("hdr.ipv4.dstAddr", 32, "lpm")],
               ["on_miss", "fib_hit_nexthop"], 16384),
        _table("nexthop", [(md + "nexthop_index", 16, "exact")], ["on_miss", "set_egress_details"], 32768),
        _table("port_mapping", [("standard_metadata.ingress_port", 9, "exact")], ["set_bd"], 32768)])
    egress = _control("egress", [_action("on_miss"), _action("rewrite_src_dst_mac", ("smac", 48), ("dmac", 48))],
                      [_table("rewrite_mac", [(md + "nexthop_index", 16, "exact")],
                              ["on_miss", "rewrite_src_dst_mac"], 32768)])
    return _program([ingress, egress])


#: from basic_routing-bmv2.p4.p4info.txtpb (p4c)
EXPECTED_TABLES = {
    "ingress.bd": (48392551, "bd", 65536), "ingress.ipv4_fib": (41084491, "ipv4_fib", 131072),
    "ingress.ipv4_fib_lpm": (42875950, "ipv4_fib_lpm", 16384), "ingress.nexthop": (43581057, "nexthop", 32768),
    "ingress.port_mapping": (39645634, "port_mapping", 32768),
    "egress.rewrite_mac": (40309161, "rewrite_mac", 32768),
}
EXPECTED_ACTIONS = {
    "NoAction": (21257015, "NoAction"), "ingress.set_vrf": (33505590, "set_vrf"),
    "ingress.on_miss": (22594144, "ingress.on_miss"), "ingress.fib_hit_nexthop": (26104220, "fib_hit_nexthop"),
    "ingress.set_egress_details": (19738113, "set_egress_details"), "ingress.set_bd": (27500220, "set_bd"),
    "egress.on_miss": (28864280, "egress.on_miss"), "egress.rewrite_src_dst_mac": (28966416, "rewrite_src_dst_mac"),
}


def test_jenkins_hash_matches_p4c_noaction_id() -> None:
    # NoAction is 21257015 in every p4c-generated P4Info
    assert (1 << 24) | (jenkins_hash("NoAction") & 0xFFFFFF) == 21257015


def test_basic_routing_ids_names_aliases_match_p4c() -> None:
    info = build_p4info(basic_routing())
    assert info.pkg_info.arch == "v1model"
    got_tables = {t.preamble.name: (t.preamble.id, t.preamble.alias, t.size) for t in info.tables}
    assert got_tables == EXPECTED_TABLES
    got_actions = {a.preamble.name: (a.preamble.id, a.preamble.alias) for a in info.actions}
    assert got_actions == EXPECTED_ACTIONS
    noaction = next(a for a in info.actions if a.preamble.name == "NoAction")
    assert list(noaction.preamble.annotations) == ['@noWarn("unused")']


def test_basic_routing_table_details_match_p4c() -> None:
    info = build_p4info(basic_routing())
    fib = next(t for t in info.tables if t.preamble.name == "ingress.ipv4_fib_lpm")
    assert [(m.id, m.name, m.bitwidth, m.match_type) for m in fib.match_fields] == [
        (1, "meta.ingress_metadata.vrf", 12, p4i.MatchField.EXACT),
        (2, "hdr.ipv4.dstAddr", 32, p4i.MatchField.LPM)]
    # p4c adds "@defaultonly NoAction" to a table without default_action
    assert [(r.id, list(r.annotations), r.scope) for r in fib.action_refs] == [
        (22594144, [], p4i.ActionRef.TABLE_AND_DEFAULT), (26104220, [], p4i.ActionRef.TABLE_AND_DEFAULT),
        (21257015, ["@defaultonly"], p4i.ActionRef.DEFAULT_ONLY)]
    mac = next(a for a in info.actions if a.preamble.name == "egress.rewrite_src_dst_mac")
    assert [(p.id, p.name, p.bitwidth) for p in mac.params] == [(1, "smac", 48), (2, "dmac", 48)]
    assert fib.const_default_action_id == 0 and not fib.is_const_table


def test_text_roundtrip() -> None:
    info = build_p4info(basic_routing())
    text = p4info_to_text(info)
    assert text.startswith("# proto-file: p4/config/v1/p4info.proto")
    assert 'name: "ingress.ipv4_fib_lpm"' in text
    assert p4info_from_text(text) == info


def _counter_program() -> ir.Program:
    ct = ir.EnumT("CounterType", ("packets", "bytes", "packets_and_bytes"))
    digest_t = ir.StructT("learn_t", (("mac", B(48)), ("port", B(9))))
    pin = ir.HeaderT("packet_in_header_t", (("ingress_port", B(9)), ("_pad", B(7))),
                     (ir.Annotation("controller_header", '"packet_in"', ("packet_in",)),))
    insts = (
        ir.Instance("c", ir.ExternT("counter"), (ir.Const(P, B(32), 64), ir.EnumConst(P, ct, "bytes")),
                    (), "c"),
        ir.Instance("dc", ir.ExternT("direct_counter"), (ir.EnumConst(P, ct, "packets_and_bytes"),), (), "dc"),
        ir.Instance("r", ir.ExternT("register", (B(16),)), (ir.Const(P, B(32), 128),),
                    (ir.Annotation("id", "5", (5,)),), "r"),
    )
    digest_call = ir.CallStmt(P, ir.ExternFunctionCall(
        P, ir.VoidT(), "digest", (ir.Arg("in", ir.Const(P, B(32), 1)), ir.Arg("in", ir.VarRef(P, digest_t, "d"))),
        (digest_t,)))
    t = _table("flows", [("hdr.ipv4.srcAddr", 32, "ternary")], ["fwd"], None,
               support_timeout=True, direct_counter="dc",
               annotations=(ir.Annotation("name", '"flow_table"', ("flow_table",)),))
    t = ir.TableDecl(**{**{f: getattr(t, f) for f in t.__dataclass_fields__},
                        "default_action": ir.DefaultAction("fwd", False, (1,), True)})
    ing = _control("MyIngress", [_action("fwd", ("port", 9))], [t], insts, ir.Block(P, (digest_call,)))
    return _program([ing], types={"learn_t": digest_t, "packet_in_header_t": pin})


def test_externs_digests_controller_headers() -> None:
    info = build_p4info(_counter_program())
    (t,) = info.tables
    assert t.preamble.name == "MyIngress.flow_table"
    assert t.size == 1024  # p4c's default
    assert t.idle_timeout_behavior == p4i.Table.NOTIFY_CONTROL
    (fwd,) = [a for a in info.actions if a.preamble.name == "MyIngress.fwd"]
    assert t.const_default_action_id == fwd.preamble.id
    assert t.match_fields[0].match_type == p4i.MatchField.TERNARY
    (c,) = info.counters
    assert (c.preamble.name, c.size, c.spec.unit) == ("MyIngress.c", 64, p4i.CounterSpec.BYTES)
    assert c.preamble.id >> 24 == p4i.P4Ids.COUNTER
    assert c.preamble.id & 0xFFFFFF == jenkins_hash("MyIngress.c") & 0xFFFFFF
    (dc,) = info.direct_counters
    assert dc.spec.unit == p4i.CounterSpec.BOTH and dc.direct_table_id == t.preamble.id
    assert list(t.direct_resource_ids) == [dc.preamble.id]
    (r,) = info.registers
    assert r.preamble.id == (p4i.P4Ids.REGISTER << 24) | 5  # @id honoured, prefix added
    assert r.type_spec.bitstring.bit.bitwidth == 16 and r.size == 128
    (d,) = info.digests
    assert d.preamble.name == "learn_t" and d.type_spec.struct.name == "learn_t"
    assert d.preamble.id >> 24 == p4i.P4Ids.DIGEST
    members = [(m.name, m.type_spec.bitstring.bit.bitwidth) for m in info.type_info.structs["learn_t"].members]
    assert members == [("mac", 48), ("port", 9)]
    (cm,) = info.controller_packet_metadata
    assert cm.preamble.name == "packet_in"
    # the id hashes the header type name, as in p4c
    assert cm.preamble.id == (p4i.P4Ids.CONTROLLER_HEADER << 24) | (jenkins_hash("packet_in_header_t") & 0xFFFFFF)
    assert [(m.id, m.name, m.bitwidth) for m in cm.metadata] == [(1, "ingress_port", 9), (2, "_pad", 7)]


def test_wrong_id_prefix_rejected() -> None:
    prog = _program([_control("I", [_action("a", annotations=(ir.Annotation("id", "0x02000001", (0x02000001,)),))],
                              [_table("t", [], ["a"])])])
    with pytest.raises(P4InfoError, match="wrong 8-bit prefix"):
        build_p4info(prog)


def test_collision_probing_is_linear_and_sorted() -> None:
    # two actions whose @id-free hashes collide are impossible to find quickly, so force
    # one: an explicit @id equal to the hash-derived id of another name pushes that one
    # to the next value.
    taken = (1 << 24) | (jenkins_hash("I.b") & 0xFFFFFF)
    prog = _program([_control("I", [_action("a", annotations=(ir.Annotation("id", str(taken), (taken,)),)),
                                    _action("b")], [_table("t", [], ["a", "b"])])])
    info = build_p4info(prog)
    ids = {a.preamble.name: a.preamble.id for a in info.actions}
    assert ids["I.a"] == taken
    assert ids["I.b"] == (1 << 24) | ((jenkins_hash("I.b") + 1) & 0xFFFFFF)


# ----------------------------------------------------------------------------------
# The same program through the frontend, compared with p4c's whole P4Info.
# Source: p4lang/p4c testdata/p4_16_samples/basic_routing-bmv2.p4
# (SPDX-FileCopyrightText: 2018 VMware, Inc.; SPDX-License-Identifier: Apache-2.0),
# with the V1Switch instantiation written with positional instead of named arguments
# (same blocks, same names). Expected: testdata/p4_16_samples_outputs/
# basic_routing-bmv2.p4.p4info.txtpb as written by p4c (commit 2d948f28).

BASIC_ROUTING_P4 = r"""#include <core.p4>
#include <v1model.p4>

struct ingress_metadata_t {
    bit<12> vrf;
    bit<16> bd;
    bit<16> nexthop_index;
}

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
    bit<16> etherType;
}

header ipv4_t {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  diffserv;
    bit<16> totalLen;
    bit<16> identification;
    bit<3>  flags;
    bit<13> fragOffset;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdrChecksum;
    bit<32> srcAddr;
    bit<32> dstAddr;
}

struct metadata {
    ingress_metadata_t ingress_metadata;
}

struct headers {
    ethernet_t ethernet;
    ipv4_t     ipv4;
}

parser ParserImpl(packet_in packet, out headers hdr, inout metadata meta, inout standard_metadata_t standard_metadata) {
    state parse_ethernet {
        packet.extract(hdr = hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            16w0x800: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr = hdr.ipv4);
        transition accept;
    }
    state start {
        transition parse_ethernet;
    }
}

control egress(inout headers hdr, inout metadata meta, inout standard_metadata_t standard_metadata) {
    action on_miss() {
    }
    action rewrite_src_dst_mac(bit<48> smac, bit<48> dmac) {
        hdr.ethernet.srcAddr = smac;
        hdr.ethernet.dstAddr = dmac;
    }
    table rewrite_mac {
        actions = {
            on_miss;
            rewrite_src_dst_mac;
        }
        key = {
            meta.ingress_metadata.nexthop_index: exact;
        }
        size = 32768;
    }
    apply {
        rewrite_mac.apply();
    }
}

control ingress(inout headers hdr, inout metadata meta, inout standard_metadata_t standard_metadata) {
    action set_vrf(bit<12> vrf) {
        meta.ingress_metadata.vrf = vrf;
    }
    action on_miss() {
    }
    action fib_hit_nexthop(bit<16> nexthop_index) {
        meta.ingress_metadata.nexthop_index = nexthop_index;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 8w1;
    }
    action set_egress_details(bit<9> egress_spec) {
        standard_metadata.egress_spec = egress_spec;
    }
    action set_bd(bit<16> bd) {
        meta.ingress_metadata.bd = bd;
    }
    table bd {
        actions = {
            set_vrf;
        }
        key = {
            meta.ingress_metadata.bd: exact;
        }
        size = 65536;
    }
    table ipv4_fib {
        actions = {
            on_miss;
            fib_hit_nexthop;
        }
        key = {
            meta.ingress_metadata.vrf: exact;
            hdr.ipv4.dstAddr         : exact;
        }
        size = 131072;
    }
    table ipv4_fib_lpm {
        actions = {
            on_miss;
            fib_hit_nexthop;
        }
        key = {
            meta.ingress_metadata.vrf: exact;
            hdr.ipv4.dstAddr         : lpm;
        }
        size = 16384;
    }
    table nexthop {
        actions = {
            on_miss;
            set_egress_details;
        }
        key = {
            meta.ingress_metadata.nexthop_index: exact;
        }
        size = 32768;
    }
    table port_mapping {
        actions = {
            set_bd;
        }
        key = {
            standard_metadata.ingress_port: exact;
        }
        size = 32768;
    }
    apply {
        if (hdr.ipv4.isValid()) {
            port_mapping.apply();
            bd.apply();
            switch (ipv4_fib.apply().action_run) {
                on_miss: {
                    ipv4_fib_lpm.apply();
                }
            }

            nexthop.apply();
        }
    }
}

control DeparserImpl(packet_out packet, in headers hdr) {
    apply {
        packet.emit(hdr = hdr.ethernet);
        packet.emit(hdr = hdr.ipv4);
    }
}

control verifyChecksum(inout headers hdr, inout metadata meta) {
    apply {
        verify_checksum(
        data = { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.totalLen, hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
        checksum = hdr.ipv4.hdrChecksum,
        condition = true,
        algo = HashAlgorithm.csum16);
    }
}

control computeChecksum(inout headers hdr, inout metadata meta) {
    apply {
        update_checksum(
        condition = true,
        data = { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.totalLen, hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl, hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
        algo = HashAlgorithm.csum16,
        checksum = hdr.ipv4.hdrChecksum);
    }
}

V1Switch(ParserImpl(), verifyChecksum(), ingress(), egress(), computeChecksum(), DeparserImpl()) main;
"""

BASIC_ROUTING_P4INFO_P4C = r"""pkg_info {
  arch: "v1model"
}
tables {
  preamble {
    id: 48392551
    name: "ingress.bd"
    alias: "bd"
  }
  match_fields {
    id: 1
    name: "meta.ingress_metadata.bd"
    bitwidth: 16
    match_type: EXACT
  }
  action_refs {
    id: 33505590
  }
  action_refs {
    id: 21257015
    annotations: "@defaultonly"
    scope: DEFAULT_ONLY
  }
  size: 65536
}
tables {
  preamble {
    id: 41084491
    name: "ingress.ipv4_fib"
    alias: "ipv4_fib"
  }
  match_fields {
    id: 1
    name: "meta.ingress_metadata.vrf"
    bitwidth: 12
    match_type: EXACT
  }
  match_fields {
    id: 2
    name: "hdr.ipv4.dstAddr"
    bitwidth: 32
    match_type: EXACT
  }
  action_refs {
    id: 22594144
  }
  action_refs {
    id: 26104220
  }
  action_refs {
    id: 21257015
    annotations: "@defaultonly"
    scope: DEFAULT_ONLY
  }
  size: 131072
}
tables {
  preamble {
    id: 42875950
    name: "ingress.ipv4_fib_lpm"
    alias: "ipv4_fib_lpm"
  }
  match_fields {
    id: 1
    name: "meta.ingress_metadata.vrf"
    bitwidth: 12
    match_type: EXACT
  }
  match_fields {
    id: 2
    name: "hdr.ipv4.dstAddr"
    bitwidth: 32
    match_type: LPM
  }
  action_refs {
    id: 22594144
  }
  action_refs {
    id: 26104220
  }
  action_refs {
    id: 21257015
    annotations: "@defaultonly"
    scope: DEFAULT_ONLY
  }
  size: 16384
}
tables {
  preamble {
    id: 43581057
    name: "ingress.nexthop"
    alias: "nexthop"
  }
  match_fields {
    id: 1
    name: "meta.ingress_metadata.nexthop_index"
    bitwidth: 16
    match_type: EXACT
  }
  action_refs {
    id: 22594144
  }
  action_refs {
    id: 19738113
  }
  action_refs {
    id: 21257015
    annotations: "@defaultonly"
    scope: DEFAULT_ONLY
  }
  size: 32768
}
tables {
  preamble {
    id: 39645634
    name: "ingress.port_mapping"
    alias: "port_mapping"
  }
  match_fields {
    id: 1
    name: "standard_metadata.ingress_port"
    bitwidth: 9
    match_type: EXACT
  }
  action_refs {
    id: 27500220
  }
  action_refs {
    id: 21257015
    annotations: "@defaultonly"
    scope: DEFAULT_ONLY
  }
  size: 32768
}
tables {
  preamble {
    id: 40309161
    name: "egress.rewrite_mac"
    alias: "rewrite_mac"
  }
  match_fields {
    id: 1
    name: "meta.ingress_metadata.nexthop_index"
    bitwidth: 16
    match_type: EXACT
  }
  action_refs {
    id: 28864280
  }
  action_refs {
    id: 28966416
  }
  action_refs {
    id: 21257015
    annotations: "@defaultonly"
    scope: DEFAULT_ONLY
  }
  size: 32768
}
actions {
  preamble {
    id: 21257015
    name: "NoAction"
    alias: "NoAction"
    annotations: "@noWarn(\"unused\")"
  }
}
actions {
  preamble {
    id: 33505590
    name: "ingress.set_vrf"
    alias: "set_vrf"
  }
  params {
    id: 1
    name: "vrf"
    bitwidth: 12
  }
}
actions {
  preamble {
    id: 22594144
    name: "ingress.on_miss"
    alias: "ingress.on_miss"
  }
}
actions {
  preamble {
    id: 26104220
    name: "ingress.fib_hit_nexthop"
    alias: "fib_hit_nexthop"
  }
  params {
    id: 1
    name: "nexthop_index"
    bitwidth: 16
  }
}
actions {
  preamble {
    id: 19738113
    name: "ingress.set_egress_details"
    alias: "set_egress_details"
  }
  params {
    id: 1
    name: "egress_spec"
    bitwidth: 9
  }
}
actions {
  preamble {
    id: 27500220
    name: "ingress.set_bd"
    alias: "set_bd"
  }
  params {
    id: 1
    name: "bd"
    bitwidth: 16
  }
}
actions {
  preamble {
    id: 28864280
    name: "egress.on_miss"
    alias: "egress.on_miss"
  }
}
actions {
  preamble {
    id: 28966416
    name: "egress.rewrite_src_dst_mac"
    alias: "rewrite_src_dst_mac"
  }
  params {
    id: 1
    name: "smac"
    bitwidth: 48
  }
  params {
    id: 2
    name: "dmac"
    bitwidth: 48
  }
}
type_info {
}
"""


def test_basic_routing_through_frontend_equals_p4c_output() -> None:
    from softswitch.device import Device

    loaded = Device.compile(BASIC_ROUTING_P4, "basic_routing-bmv2.p4")
    ours = build_p4info(loaded.ir)
    assert ours == p4info_from_text(BASIC_ROUTING_P4INFO_P4C)
    # and the text is p4c's, byte for byte, after the header comment
    assert p4info_to_text(ours).split("\n", 3)[3] == BASIC_ROUTING_P4INFO_P4C


def test_type_info_for_nested_digest_types() -> None:
    h = ir.HeaderT("h_t", (("a", B(8)), ("b", ir.IntT(4))))
    u = ir.HeaderUnionT("u_t", (("h", h),))
    color = ir.SerEnumT("color_t", B(8), (("RED", 1), ("BLUE", 2)))
    dt = ir.StructT("d_t", (("h", h), ("u", u), ("s", ir.StackT(h, 2)), ("f", ir.BoolT()), ("c", color)))
    call = ir.CallStmt(P, ir.ExternFunctionCall(
        P, ir.VoidT(), "digest", (ir.Arg("in", ir.Const(P, B(32), 1)), ir.Arg("in", ir.VarRef(P, dt, "d"))), (dt,)))
    prog = _program([_control("I", [], [], apply=ir.Block(P, (call,)))])
    info = build_p4info(prog)
    ti = info.type_info
    members = {m.name: m.type_spec for m in ti.structs["d_t"].members}
    assert members["h"].header.name == "h_t"
    assert members["u"].header_union.name == "u_t"
    assert (members["s"].header_stack.header.name, members["s"].header_stack.size) == ("h_t", 2)
    assert members["f"].HasField("bool")
    assert members["c"].serializable_enum.name == "color_t"
    assert (ti.headers["h_t"].members[0].name, ti.headers["h_t"].members[0].type_spec.bit.bitwidth) == ("a", 8)
    assert ti.headers["h_t"].members[1].type_spec.int.bitwidth == 4
    assert ti.header_unions["u_t"].members[0].header.name == "h_t"
    assert [(m.name, m.value) for m in ti.serializable_enums["color_t"].members] == [("RED", b"\x01"), ("BLUE", b"\x02")]


def test_unapplied_tables_and_unreferenced_actions_are_left_out_as_p4c_does() -> None:
    used = _table("used", [("a", 8, "exact")], ["x"])
    unused = _table("unused", [("a", 8, "exact")], ["y"])
    ctl = _control("I", [_action("x"), _action("y"), _action("z"), _action("called")], [used])
    call = ir.CallStmt(P, ir.ActionCall(P, ir.VoidT(), "called", ()))
    ctl = ir.ControlDecl(ctl.name, (), (), (), ctl.actions, (used, unused),
                         ir.Block(P, (*ctl.apply.stmts, call)))
    info = build_p4info(_program([ctl]))
    assert [t.preamble.name for t in info.tables] == ["I.used"]
    assert sorted(a.preamble.name for a in info.actions) == ["I.called", "I.x", "NoAction"]


# ----------------------------------------------------------------------------------
# Our own programs (tests/softswitch/programs/p4info_*.p4), one per rule of p4c that
# shapes the P4Info; the expected values follow from the rule, worked out by hand.

PROGRAMS = Path(__file__).parent / "programs"


def _compile(name: str) -> p4i.P4Info:
    from softswitch.device import Device

    path = PROGRAMS / name
    return build_p4info(Device.compile(path.read_text(), str(path)).ir)


def _actions(info: p4i.P4Info) -> list[tuple[str, list[str]]]:
    return [(a.preamble.name, [p.name for p in a.params]) for a in info.actions]


def test_actions_follow_p4c_frontend_order_and_parameter_removal() -> None:
    info = _compile("p4info_frontend_actions.p4")
    assert _actions(info) == [
        # I: top-level actions first, in order of first use (tables, then apply):
        # NoAction (sub_t, implicit), top_direct (own_t, also called: keeps z),
        # top_eg (only called in I, so its first copy has no parameters)
        ("NoAction", []), ("top_direct", ["z"]), ("top_eg", []),
        # then I's actions with Sub's inlined at the instance: helper is inlined into
        # uses_helper and gone, never_used only served a table never applied
        ("I.early", ["e"]), ("I.sub.sub_act", ["x"]), ("I.sub.sub_set", ["v"]),
        ("I.uses_helper", []), ("I.direct_only", []), ("I.both", ["w"]), ("I.inout_direct", []),
        # E: top_eg was already written (first copy wins), eg_direct is only called
        ("E.eg_direct", []),
    ]
    # top_set is only called from an action: inlined, not a P4Info action
    assert [t.preamble.name for t in info.tables] == ["I.early_t", "I.sub.sub_t", "I.own_t", "E.eg_t"]
    ids = {a.preamble.name: a.preamble.id for a in info.actions}
    (eg_t,) = [t for t in info.tables if t.preamble.name == "E.eg_t"]
    assert [r.id for r in eg_t.action_refs] == [ids["top_eg"], ids["NoAction"]]
    # the digest inside helper() reaches the P4Info through uses_helper
    assert [d.preamble.name for d in info.digests] == ["d_t"]


def test_fatflow_pipeline_lists_noaction_first_like_p4c() -> None:
    from softswitch.device import Device

    path = Path(__file__).parents[2] / "p4src" / "fatflow_v1model.p4"
    info = build_p4info(Device.compile(path.read_text(), str(path)).ir)
    names = [a.preamble.name for a in info.actions]
    # NoAction is used only by ingress.fatflow's tables, but after Inline it is a
    # copy localized into ingress, which LocalizeActions puts ahead of every action
    assert names[0] == "NoAction"
    blocks = [n.split(".")[1] for n in names[1:]]
    assert blocks == sorted(blocks, key=["port_map", "routing", "fatflow", "flowtable"].index)


def test_annotations_documentation_and_size_as_p4c_writes_them() -> None:
    info = _compile("p4info_annotations.p4")
    (t,) = info.tables
    # unparsed bodies are printed token by token with one space; an empty body loses
    # its parentheses; @brief / @description go to doc, not to annotations
    assert list(t.preamble.annotations) == ["@size_note(1 + 2)", "@empty_body"]
    assert t.preamble.doc.brief == "Port table" and not t.preamble.doc.description
    assert t.match_fields[0].doc.brief == "the key" and not t.match_fields[0].annotations
    assert t.size == 1024  # size = 0 means the default (Helpers::getTableSize)
    assert [a.preamble.name for a in info.actions] == ["NoAction", "I.fwd"]  # secret is @hidden
    (fwd,) = [a for a in info.actions if a.preamble.name == "I.fwd"]
    assert list(fwd.preamble.annotations) == ["@my_anno(a , b)"]
    assert (fwd.preamble.doc.brief, fwd.preamble.doc.description) == ("Forward to a port", "Sets egress_spec.")
    assert fwd.params[0].doc.description == "the port" and not fwd.params[0].annotations
    assert [list(r.annotations) for r in t.action_refs] == [[], ["@defaultonly"], ["@defaultonly"]]
    (pin,) = info.controller_packet_metadata
    # field @id honoured, field annotations kept, @hidden fields left out
    assert [(m.id, m.name, list(m.annotations)) for m in pin.metadata] == [
        (1, "ingress_port", []), (5, "pad", ["@my_field_note"])]
    # the preamble has no doc when neither @brief nor @description is present
    assert not pin.preamble.HasField("doc")

/*
 * P4Info conformance: which actions p4c's P4Info lists, in which order, and with which
 * parameters, after its frontend (Inline, InlineActions, LocalizeAllActions,
 * RemoveActionParameters). tests/softswitch/test_p4info.py states the expected result.
 */
#include <core.p4>
#include <v1model.p4>

header h_t {
    bit<8> a;
    bit<8> b;
}

struct d_t {
    bit<8> a;
}

struct headers_t {
    h_t h;
}

struct meta_t {
    bit<8> m;
    d_t    d;
}

// Top-level actions: copied into each control that uses them, ahead of its own actions.
action top_set(bit<8> v) {
}

action top_direct(bit<8> z) {
}

action top_eg(bit<8> g) {
}

parser P(packet_in pk, out headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    state start {
        pk.extract(hdr.h);
        transition accept;
    }
}

control VC(inout headers_t hdr, inout meta_t meta) {
    apply { }
}

control Sub(inout headers_t hdr, inout meta_t meta) {
    action sub_act(bit<8> x) {
        hdr.h.b = x;
    }
    action sub_set(bit<8> v) {
        top_set(v);
        hdr.h.a = v;
    }
    table sub_t {
        key = { hdr.h.a: exact; }
        actions = { sub_act; sub_set; }
    }
    apply {
        sub_t.apply();
    }
}

control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action early(bit<8> e) {
        meta.m = e;
    }
    table early_t {
        key = { hdr.h.b: exact; }
        actions = { early; }
        default_action = early(1);
    }
    Sub() sub;
    action helper(bit<8> y) {
        meta.m = y;
        meta.d.a = y;
        digest<d_t>(1, meta.d);
    }
    action uses_helper() {
        helper(7);
    }
    action direct_only(bit<8> d) {
        hdr.h.b = d;
    }
    action both(bit<8> w) {
        hdr.h.a = w;
    }
    action inout_direct(inout bit<8> v, bit<8> k) {
        v = v + k;
    }
    action never_used(bit<8> n) {
        hdr.h.a = n;
    }
    table own_t {
        key = { hdr.h.b: exact; }
        actions = { uses_helper; both; top_direct; }
    }
    table never_applied {
        key = { hdr.h.b: exact; }
        actions = { never_used; }
    }
    apply {
        top_direct(3);
        top_eg(4);
        early_t.apply();
        sub.apply(hdr, meta);
        own_t.apply();
        direct_only(5);
        both(6);
        inout_direct(meta.m, 2);
    }
}

control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    action eg_direct(bit<8> q) {
        hdr.h.b = q;
    }
    table eg_t {
        key = { hdr.h.a: exact; }
        actions = { top_eg; }
    }
    apply {
        eg_direct(9);
        eg_t.apply();
    }
}

control CC(inout headers_t hdr, inout meta_t meta) {
    apply { }
}

control D(packet_out pk, in headers_t hdr) {
    apply {
        pk.emit(hdr.h);
    }
}

V1Switch(P(), VC(), I(), E(), CC(), D()) main;

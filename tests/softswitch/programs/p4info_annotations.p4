/*
 * P4Info conformance: annotations, documentation and table sizes as p4c writes them
 * (Helpers::addAnnotations / addDocumentation / serializeOneAnnotation /
 * getTableSize). tests/softswitch/test_p4info.py states the expected result.
 */
#include <core.p4>
#include <v1model.p4>

@controller_header("packet_in")
header packet_in_t {
    bit<9> ingress_port;
    @id(5) @my_field_note bit<7> pad;
    @hidden bit<8> internal;
}

header h_t {
    bit<8> a;
}

struct headers_t {
    packet_in_t pin;
    h_t         h;
}

struct meta_t {
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

control I(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    @brief("Forward to a port") @description("Sets egress_spec.") @my_anno(a,b)
    action fwd(@description("the port") bit<9> port) {
        sm.egress_spec = port;
    }
    @hidden
    action secret() {
    }
    @brief("Port table") @size_note(1+2) @empty_body()
    table t {
        key = { hdr.h.a: exact @brief("the key"); }
        actions = { fwd; @defaultonly secret; }
        size = 0;
    }
    apply {
        t.apply();
    }
}

control E(inout headers_t hdr, inout meta_t meta, inout standard_metadata_t sm) {
    apply { }
}

control CC(inout headers_t hdr, inout meta_t meta) {
    apply { }
}

control D(packet_out pk, in headers_t hdr) {
    apply {
        pk.emit(hdr.pin);
        pk.emit(hdr.h);
    }
}

V1Switch(P(), VC(), I(), E(), CC(), D()) main;

/* Copies of a header with a varbit field keep the field's length (issue 7). IPv4 options
   are a varbit header; by the last byte of the IPv4 destination:
     .1  unicast to port 2 with an I2E clone (session 5, port 7)
     .2  unicast to port 4; egress makes an E2E clone (session 6, port 8)
     .3  multicast group 1 (ports 1, 2, 3)
     .4  resubmitted once, then to port 2 with an I2E clone (session 5, port 7)
     .5  multicast group 2 (port 5); the replica is recirculated and then leaves on port 6
     .6  the whole headers struct is copied to a local, options invalidated, struct copied back
     .7  the options header is assigned to a second header, the original invalidated
     .8  the options field alone is assigned to the second header's field
   Every output must carry the options unchanged (the copy at .7/.8 emits them once). */
#include <core.p4>
#define V1MODEL_VERSION 20200408
#include <v1model.p4>

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

header ipv4_options_t {
    varbit<320> options;
}

struct metadata_t {
    @field_list(1)
    bit<8> pass;
}

struct headers_t {
    ethernet_t     ethernet;
    ipv4_t         ipv4;
    ipv4_options_t opts;
    ipv4_options_t saved;
}

parser MyParser(packet_in packet, out headers_t hdr, inout metadata_t meta,
                inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.etherType) {
            0x0800: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        transition select(hdr.ipv4.ihl) {
            5: accept;
            default: parse_options;
        }
    }
    state parse_options {
        packet.extract(hdr.opts, ((bit<32>)hdr.ipv4.ihl - 5) * 32);
        transition accept;
    }
}

control MyVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control MyIngress(inout headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    headers_t copy;
    apply {
        bit<8> sel = hdr.ipv4.dstAddr[7:0];
        if (standard_metadata.instance_type == 4) {  // recirculated
            standard_metadata.egress_spec = 6;
        } else if (sel == 1) {
            standard_metadata.egress_spec = 2;
            clone(CloneType.I2E, 5);
        } else if (sel == 2) {
            standard_metadata.egress_spec = 4;
        } else if (sel == 3) {
            standard_metadata.mcast_grp = 1;
        } else if (sel == 4) {
            if (standard_metadata.instance_type == 6) {  // resubmitted
                standard_metadata.egress_spec = 2;
                clone(CloneType.I2E, 5);
            } else {
                resubmit_preserving_field_list(1);
            }
        } else if (sel == 5) {
            standard_metadata.mcast_grp = 2;
        } else if (sel == 6) {
            copy = hdr;
            hdr.opts.setInvalid();
            hdr = copy;
            standard_metadata.egress_spec = 2;
        } else if (sel == 7) {
            hdr.saved = hdr.opts;
            hdr.opts.setInvalid();
            standard_metadata.egress_spec = 2;
        } else if (sel == 8) {
            hdr.saved.setValid();
            hdr.saved.options = hdr.opts.options;
            hdr.opts.setInvalid();
            standard_metadata.egress_spec = 2;
        } else {
            mark_to_drop(standard_metadata);
        }
    }
}

control MyEgress(inout headers_t hdr, inout metadata_t meta,
                 inout standard_metadata_t standard_metadata) {
    apply {
        if (standard_metadata.instance_type == 0 && standard_metadata.egress_port == 4) {
            clone(CloneType.E2E, 6);
        } else if (standard_metadata.instance_type == 5 && standard_metadata.egress_port == 5) {
            recirculate_preserving_field_list(1);
        }
    }
}

control MyComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control MyDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.opts);
        packet.emit(hdr.saved);
    }
}

V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(), MyComputeChecksum(),
         MyDeparser()) main;

/* Multicast and cloning: broadcast frames go to multicast group 1 (each replica gets
   its egress_rid written into the source MAC); unicast frames go to port 2 and are
   cloned (I2E, session 5) with the preserved metadata field marking the copy; egress
   clones (E2E, session 6) are made of frames leaving on port 4. */
#include <core.p4>
#define V1MODEL_VERSION 20200408
#include <v1model.p4>

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
    bit<16> etherType;
}

struct metadata_t {
    @field_list(1)
    bit<8> tag;
    bit<8> not_preserved;
}

struct headers_t {
    ethernet_t ethernet;
}

parser MyParser(packet_in packet, out headers_t hdr, inout metadata_t meta,
                inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition accept;
    }
}

control MyVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control MyIngress(inout headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    apply {
        if (hdr.ethernet.dstAddr == 0xffffffffffff) {
            standard_metadata.mcast_grp = 1;
        } else if (hdr.ethernet.dstAddr == 0x000000000004) {
            standard_metadata.egress_spec = 4;
        } else {
            standard_metadata.egress_spec = 2;
            meta.tag = 0xab;
            meta.not_preserved = 0xcd;
            clone_preserving_field_list(CloneType.I2E, 5, 1);
        }
    }
}

control MyEgress(inout headers_t hdr, inout metadata_t meta,
                 inout standard_metadata_t standard_metadata) {
    apply {
        if (standard_metadata.instance_type == 5) {
            hdr.ethernet.srcAddr = (bit<48>)standard_metadata.egress_rid;
        } else if (standard_metadata.instance_type == 1) {
            hdr.ethernet.srcAddr = (bit<48>)meta.tag;
            hdr.ethernet.dstAddr = (bit<48>)meta.not_preserved;
        } else if (standard_metadata.instance_type == 2) {
            hdr.ethernet.etherType = 0xe2e0;
        } else if (standard_metadata.egress_port == 4) {
            clone(CloneType.E2E, 6);
        }
    }
}

control MyComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control MyDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.ethernet);
    }
}

V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(), MyComputeChecksum(),
         MyDeparser()) main;

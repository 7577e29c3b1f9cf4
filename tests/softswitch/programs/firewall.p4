/* Stateful firewall: a two-hash register Bloom filter (crc16 + crc32) of the flows
   opened from the inside (port 1). Traffic from the outside (port 2) passes only when
   its reversed 5-tuple is in the filter. */
#include <core.p4>
#include <v1model.p4>

#define BLOOM_SIZE 4096

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

header ports_t {
    bit<16> srcPort;
    bit<16> dstPort;
}

struct metadata_t {
    bit<32> pos1;
    bit<32> pos2;
    bit<1>  bit1;
    bit<1>  bit2;
}

struct headers_t {
    ethernet_t ethernet;
    ipv4_t     ipv4;
    ports_t    l4;
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
        transition select(hdr.ipv4.protocol) {
            6: parse_l4;
            17: parse_l4;
            default: accept;
        }
    }
    state parse_l4 {
        packet.extract(hdr.l4);
        transition accept;
    }
}

control MyVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control MyIngress(inout headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    register<bit<1>>(BLOOM_SIZE) bloom1;
    register<bit<1>>(BLOOM_SIZE) bloom2;

    action drop() {
        mark_to_drop(standard_metadata);
    }
    action positions(bit<32> a, bit<32> b, bit<16> pa, bit<16> pb) {
        hash(meta.pos1, HashAlgorithm.crc16, (bit<32>)0,
             { a, b, pa, pb, hdr.ipv4.protocol }, (bit<32>)BLOOM_SIZE);
        hash(meta.pos2, HashAlgorithm.crc32, (bit<32>)0,
             { a, b, pa, pb, hdr.ipv4.protocol }, (bit<32>)BLOOM_SIZE);
    }
    apply {
        if (!hdr.l4.isValid()) {
            drop();
            return;
        }
        if (standard_metadata.ingress_port == 1) {
            positions(hdr.ipv4.srcAddr, hdr.ipv4.dstAddr, hdr.l4.srcPort, hdr.l4.dstPort);
            bloom1.write(meta.pos1, 1);
            bloom2.write(meta.pos2, 1);
            standard_metadata.egress_spec = 2;
        } else if (standard_metadata.ingress_port == 2) {
            positions(hdr.ipv4.dstAddr, hdr.ipv4.srcAddr, hdr.l4.dstPort, hdr.l4.srcPort);
            bloom1.read(meta.bit1, meta.pos1);
            bloom2.read(meta.bit2, meta.pos2);
            if (meta.bit1 == 1 && meta.bit2 == 1) {
                standard_metadata.egress_spec = 1;
            } else {
                drop();
            }
        } else {
            drop();
        }
    }
}

control MyEgress(inout headers_t hdr, inout metadata_t meta,
                 inout standard_metadata_t standard_metadata) {
    apply { }
}

control MyComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control MyDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.l4);
    }
}

V1Switch(MyParser(), MyVerifyChecksum(), MyIngress(), MyEgress(), MyComputeChecksum(),
         MyDeparser()) main;

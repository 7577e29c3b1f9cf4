/*
 * p4-fatflow: parser and deparser.
 *
 * Parsed: [packet_out (from CPU_PORT only)] Ethernet, at most one 802.1Q tag,
 * IPv4 (options carried by IHL) or IPv6 (no extension headers), then
 * TCP / UDP / SCTP ports, or ICMP / ICMPv6 and, for echo request/reply, the
 * identifier. The parser also fills local_metadata_t.ip_proto and the
 * l4_* fields the fat-flow stage and the digest use.
 */
#ifndef FATFLOW_PARSER_P4
#define FATFLOW_PARSER_P4

#include "headers.p4"

error {
    Ipv4IhlTooSmall
}

parser FatflowParser(packet_in packet,
                     out headers_t hdr,
                     inout local_metadata_t meta,
                     inout standard_metadata_t standard_metadata) {

    state start {
        meta.ip_proto = 0;
        meta.l4_src_port = 0;
        meta.l4_dst_port = 0;
        meta.l4_has_ports = false;
        transition select(standard_metadata.ingress_port) {
            CPU_PORT: parse_packet_out;
            default: parse_ethernet;
        }
    }

    state parse_packet_out {
        packet.extract(hdr.packet_out);
        transition parse_ethernet;
    }

    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_VLAN: parse_vlan;
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            default: accept;
        }
    }

    state parse_vlan {
        packet.extract(hdr.vlan);
        transition select(hdr.vlan.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            ETHERTYPE_IPV6: parse_ipv6;
            default: accept;
        }
    }

    state parse_ipv4 {
        packet.extract(hdr.ipv4);
        // IHL < 5 cannot be a real header; the ingress drops on parser_error.
        verify(hdr.ipv4.ihl >= IPV4_MIN_IHL, error.Ipv4IhlTooSmall);
        meta.ip_proto = hdr.ipv4.protocol;
        transition select(hdr.ipv4.ihl) {
            IPV4_MIN_IHL: parse_ipv4_l4;
            default: parse_ipv4_options;
        }
    }

    state parse_ipv4_options {
        // (IHL - 5) 32-bit words of options.
        packet.extract(hdr.ipv4_options, ((bit<32>)hdr.ipv4.ihl - 32w5) * 32w32);
        transition parse_ipv4_l4;
    }

    state parse_ipv4_l4 {
        // Only the first fragment carries the L4 header; later fragments get
        // a protocol-only key (ports 0).
        transition select(hdr.ipv4.frag_offset, hdr.ipv4.protocol) {
            (13w0, IP_PROTO_TCP): parse_tcp;
            (13w0, IP_PROTO_UDP): parse_udp;
            (13w0, IP_PROTO_SCTP): parse_sctp;
            (13w0, IP_PROTO_ICMP): parse_icmp;
            default: accept;
        }
    }

    state parse_ipv6 {
        packet.extract(hdr.ipv6);
        // Extension headers are not walked: a next_header other than
        // TCP/UDP/SCTP/ICMPv6 is the key's protocol, with ports 0.
        meta.ip_proto = hdr.ipv6.next_header;
        transition select(hdr.ipv6.next_header) {
            IP_PROTO_TCP: parse_tcp;
            IP_PROTO_UDP: parse_udp;
            IP_PROTO_SCTP: parse_sctp;
            IP_PROTO_ICMPV6: parse_icmpv6;
            default: accept;
        }
    }

    state parse_tcp {
        packet.extract(hdr.tcp);
        meta.l4_src_port = hdr.tcp.src_port;
        meta.l4_dst_port = hdr.tcp.dst_port;
        meta.l4_has_ports = true;
        transition accept;
    }

    state parse_udp {
        packet.extract(hdr.udp);
        meta.l4_src_port = hdr.udp.src_port;
        meta.l4_dst_port = hdr.udp.dst_port;
        meta.l4_has_ports = true;
        transition accept;
    }

    state parse_sctp {
        packet.extract(hdr.sctp);
        meta.l4_src_port = hdr.sctp.src_port;
        meta.l4_dst_port = hdr.sctp.dst_port;
        meta.l4_has_ports = true;
        transition accept;
    }

    state parse_icmp {
        packet.extract(hdr.icmp);
        transition select(hdr.icmp.msg_type) {
            ICMP_ECHO_REQUEST: parse_icmp_echo;
            ICMP_ECHO_REPLY: parse_icmp_echo;
            default: accept;
        }
    }

    state parse_icmpv6 {
        packet.extract(hdr.icmpv6);
        transition select(hdr.icmpv6.msg_type) {
            ICMPV6_ECHO_REQUEST: parse_icmp_echo;
            ICMPV6_ECHO_REPLY: parse_icmp_echo;
            default: accept;
        }
    }

    state parse_icmp_echo {
        // DECISION: the echo identifier is the flow's source pseudo-port,
        // the destination port is 0 (both directions of a ping share it).
        packet.extract(hdr.icmp_echo);
        meta.l4_src_port = hdr.icmp_echo.identifier;
        transition accept;
    }
}

control FatflowDeparser(packet_out packet, in headers_t hdr) {
    apply {
        // packet_out is never emitted: packet_io invalidates it.
        packet.emit(hdr.packet_in);
        packet.emit(hdr.ethernet);
        packet.emit(hdr.vlan);
        packet.emit(hdr.ipv4);
        packet.emit(hdr.ipv4_options);
        packet.emit(hdr.ipv6);
        packet.emit(hdr.tcp);
        packet.emit(hdr.udp);
        packet.emit(hdr.sctp);
        packet.emit(hdr.icmp);
        packet.emit(hdr.icmpv6);
        packet.emit(hdr.icmp_echo);
    }
}

#endif  // FATFLOW_PARSER_P4

/*
 * p4-fatflow: header and struct types.
 */
#ifndef FATFLOW_HEADERS_P4
#define FATFLOW_HEADERS_P4

#include "defines.p4"

/* ---- Controller headers -------------------------------------------------- */
// Both are whole bytes (BMv2 and P4Runtime want byte-aligned controller
// headers); the _pad fields are always 0.

// Sent to the controller (on CPU_PORT) in front of the Ethernet header.
// 48 bits. Analyzer copies (PUNT_REASON_MIRROR) carry ingress_port and vmi_id
// too: the clone preserves them (MIRROR_FIELD_LIST_ID, local_metadata_t).
@controller_header("packet_in")
header packet_in_t {
    port_id_t ingress_port;  // where the packet entered the switch
    port_id_t egress_port;   // where the pipeline would have sent it (route or flow
                             // override); 0 for PUNT_REASON_MIRROR
    bit<8>    reason;        // PUNT_REASON_*
    vmi_id_t  vmi_id;        // the VMI the packet belongs to (whose rules applied);
                             // 0 = none (transit, or the flowtable was not reached)
    bit<6>    _pad;
}

// Received from the controller: the packet goes out of egress_port untouched.
@controller_header("packet_out")
header packet_out_t {
    port_id_t egress_port;
    bit<7>    _pad;
}

/* ---- Packet headers ------------------------------------------------------ */

header ethernet_t {
    mac_addr_t dst_addr;
    mac_addr_t src_addr;
    bit<16>    ether_type;
}

header vlan_t {
    bit<3>  pcp;
    bit<1>  dei;
    bit<12> vid;
    bit<16> ether_type;
}

header ipv4_t {
    bit<4>      version;
    bit<4>      ihl;
    bit<6>      dscp;
    bit<2>      ecn;
    bit<16>     total_len;
    bit<16>     identification;
    bit<3>      flags;
    bit<13>     frag_offset;
    bit<8>      ttl;
    bit<8>      protocol;
    bit<16>     hdr_checksum;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
}

// IPv4 options (IHL > 5) are carried, not interpreted: kept so that the
// deparser re-emits them and the header checksum covers them.
header ipv4_options_t {
    varbit<320> options;     // up to 40 bytes (IHL 15)
}

header ipv6_t {
    bit<4>      version;
    bit<8>      traffic_class;
    bit<20>     flow_label;
    bit<16>     payload_len;
    bit<8>      next_header;
    bit<8>      hop_limit;
    ipv6_addr_t src_addr;
    ipv6_addr_t dst_addr;
}

header tcp_t {
    l4_port_t src_port;
    l4_port_t dst_port;
    bit<32>   seq_no;
    bit<32>   ack_no;
    bit<4>    data_offset;
    bit<4>    res;
    bit<8>    flags;
    bit<16>   window;
    bit<16>   checksum;
    bit<16>   urgent_ptr;
}

header udp_t {
    l4_port_t src_port;
    l4_port_t dst_port;
    bit<16>   length;
    bit<16>   checksum;
}

header sctp_t {
    l4_port_t src_port;
    l4_port_t dst_port;
    bit<32>   verification_tag;
    bit<32>   checksum;
}

// Common ICMP / ICMPv6 header.
header icmp_t {
    bit<8>  msg_type;
    bit<8>  code;
    bit<16> checksum;
}

// The rest of an ICMP / ICMPv6 echo request or reply.
header icmp_echo_t {
    bit<16> identifier;
    bit<16> sequence;
}

struct headers_t {
    packet_out_t   packet_out;
    packet_in_t    packet_in;
    ethernet_t     ethernet;
    vlan_t         vlan;
    ipv4_t         ipv4;
    ipv4_options_t ipv4_options;
    ipv6_t         ipv6;
    tcp_t          tcp;
    udp_t          udp;
    sctp_t         sctp;
    icmp_t         icmp;
    icmp_t         icmpv6;
    icmp_echo_t    icmp_echo;
}

/* ---- Digest -------------------------------------------------------------- */

// One digest type for both families: addresses are 128 bits wide; an IPv4
// address sits in the low 32 bits (the upper 96 are 0) and ip_version says
// which family it is. Sent once per flow-table miss (P4Runtime digest
// "flow_digest_t").
struct flow_digest_t {
    bit<8>      ip_version;     // 4 or 6
    vrf_id_t    vrf;
    // The flow key exactly as looked up in flow_v4 / flow_v6.
    ipv6_addr_t src_addr;
    ipv6_addr_t dst_addr;
    bit<8>      protocol;
    l4_port_t   src_port;
    l4_port_t   dst_port;
    plen_t      src_plen;
    plen_t      dst_plen;
    // Context.
    vmi_id_t    vmi_id;         // VMI whose rules applied; 0 = none (transit)
    bit<8>      direction;      // DIRECTION_*
    port_id_t   ingress_port;
    // The packet's own 5-tuple (protocol is the key's protocol). For ICMP /
    // ICMPv6 echo the identifier is pkt_src_port; other non-port protocols: 0.
    ipv6_addr_t pkt_src_addr;
    ipv6_addr_t pkt_dst_addr;
    l4_port_t   pkt_src_port;
    l4_port_t   pkt_dst_port;
}

/* ---- Metadata ------------------------------------------------------------ */

// v1model field list preserved into analyzer clones (Mirror:
// clone_preserving_field_list): the user-metadata fields annotated
// @field_list(1) below. The annotation takes the literal index; keep both equal.
const bit<8> MIRROR_FIELD_LIST_ID = 1;

// Fat-flow stage scratch (spec section 3).
struct fatflow_metadata_t {
    bool        excluded;      // a packet address hit the VMI's exclude list
    bool        sport_hit;     // port_match_sport hit
    bool        dport_hit;     // port_match_dport hit
    bit<2>      port_sel;      // PORT_SEL_*
    l4_port_t   matched_port;  // rule-table key: the kept port, 0 for port-0 rules
    bool        rule_hit;      // a fat-flow rule applies
    // Local = the VM's side, remote = the other side (spec section 1).
    ipv4_addr_t local_v4;
    ipv4_addr_t remote_v4;
    ipv6_addr_t local_v6;
    ipv6_addr_t remote_v6;
    ipv4_addr_t local_mask_v4;
    ipv4_addr_t remote_mask_v4;
    ipv6_addr_t local_mask_v6;
    ipv6_addr_t remote_mask_v6;
    plen_t      local_plen;
    plen_t      remote_plen;
}

// The flow-table key in the packet's own orientation (spec 3.4).
struct flow_key_t {
    ipv4_addr_t src_v4;
    ipv4_addr_t dst_v4;
    ipv6_addr_t src_v6;
    ipv6_addr_t dst_v6;
    bit<8>      protocol;
    l4_port_t   src_port;
    l4_port_t   dst_port;
    plen_t      src_plen;
    plen_t      dst_plen;
}

struct local_metadata_t {
    // Preserved into analyzer clones: clone_preserving_field_list(..., MIRROR_FIELD_LIST_ID)
    // copies the fields annotated @field_list(1) (MIRROR_FIELD_LIST_ID), with their values
    // at the end of ingress, so a copy sent to the controller says where it entered and
    // which VMI it belongs to. Standard metadata cannot be preserved (v1model), hence a
    // copy of the ingress port here.
    @field_list(1)
    port_id_t  ingress_port;     // standard_metadata.ingress_port, set first in ingress
    // Set by the parser.
    bit<8>     ip_proto;         // IPv4 protocol / IPv6 next_header
    l4_port_t  l4_src_port;      // TCP/UDP/SCTP port or ICMP echo identifier, else 0
    l4_port_t  l4_dst_port;      // TCP/UDP/SCTP port, else 0
    bool       l4_has_ports;     // TCP/UDP/SCTP: fat-flow port matching applies
    // Set by port_map.
    bool       drop;             // the packet is dropped; later stages leave it alone
    bit<2>     port_kind;        // PORT_KIND_*
    @field_list(1)
    vmi_id_t   vmi_id;           // VMI whose fat-flow configuration applies (fatflow sets
                                 // the route's VMI for to-VM, 0 for transit); preserved
    vrf_id_t   vrf;
    bit<2>     miss_policy;      // MISS_POLICY_*
    bit<1>     mirror_new_flows;
    bit<1>     flowtable_enabled;
    // Set by routing.
    vmi_id_t   dst_vmi_id;       // route's local VMI, 0 = not local
    // Set by fatflow.
    bit<8>     direction;        // DIRECTION_*
    fatflow_metadata_t ff;
    flow_key_t flow_key;
    // Set by flowtable.
    bool       flow_miss;
    bit<1>     flow_mirror;
    bit<1>     flow_offloaded;
    port_id_t  flow_egress_port; // 0 = use the route's port
    bool       mirror;           // clone to the analyzer session
    bool       punt;             // send to the controller as packet-in
    bit<8>     punt_reason;
    port_id_t  punt_egress_port; // the port the packet would have taken
    flow_digest_t flow_digest;
}

#endif  // FATFLOW_HEADERS_P4

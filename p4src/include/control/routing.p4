/*
 * p4-fatflow: L3 forwarding.
 *
 * route_v4 / route_v6: (vrf, destination prefix) -> next hop. The next hop
 * rewrites the Ethernet addresses, picks the egress port and says whether the
 * destination is a local VMI (dst_vmi_id != 0), which makes fabric -> VMI
 * traffic "to-VM" (spec section 1). A route miss drops the packet (no default
 * route unless the controller writes a /0). TTL / hop limit <= 1 drops the
 * packet (no ICMP time-exceeded is generated); otherwise it is decremented.
 * Written by the controller at configuration time.
 */
#ifndef FATFLOW_ROUTING_P4
#define FATFLOW_ROUTING_P4

#include "../headers.p4"

control Routing(inout headers_t hdr,
                inout local_metadata_t meta,
                inout standard_metadata_t standard_metadata) {

    action set_next_hop(port_id_t port, mac_addr_t src_mac, mac_addr_t dst_mac,
                        vmi_id_t dst_vmi_id) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.src_addr = src_mac;
        hdr.ethernet.dst_addr = dst_mac;
        meta.dst_vmi_id = dst_vmi_id;
    }

    action drop_no_route() {
        meta.drop = true;
        mark_to_drop(standard_metadata);
    }

    table route_v4 {
        key = {
            meta.vrf: exact @name("vrf");
            hdr.ipv4.dst_addr: lpm @name("dst_addr");
        }
        actions = {
            set_next_hop;
            @defaultonly drop_no_route;
        }
        default_action = drop_no_route();
        size = ROUTE_V4_TABLE_SIZE;
    }

    table route_v6 {
        key = {
            meta.vrf: exact @name("vrf");
            hdr.ipv6.dst_addr: lpm @name("dst_addr");
        }
        actions = {
            set_next_hop;
            @defaultonly drop_no_route;
        }
        default_action = drop_no_route();
        size = ROUTE_V6_TABLE_SIZE;
    }

    apply {
        meta.dst_vmi_id = 0;
        if (!meta.drop) {
            if (hdr.ipv4.isValid()) {
                if (hdr.ipv4.ttl <= 1) {
                    meta.drop = true;
                    mark_to_drop(standard_metadata);
                } else {
                    route_v4.apply();
                    hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
                }
            } else if (hdr.ipv6.isValid()) {
                if (hdr.ipv6.hop_limit <= 1) {
                    meta.drop = true;
                    mark_to_drop(standard_metadata);
                } else {
                    route_v6.apply();
                    hdr.ipv6.hop_limit = hdr.ipv6.hop_limit - 1;
                }
            } else {
                // Neither IPv4 nor IPv6: this pipeline only routes IP.
                meta.drop = true;
                mark_to_drop(standard_metadata);
            }
        }
    }
}

#endif  // FATFLOW_ROUTING_P4

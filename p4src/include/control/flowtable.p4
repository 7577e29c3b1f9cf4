/*
 * p4-fatflow: the flow table (spec section 4).
 *
 * flow_v4 / flow_v6: exact match on the fat-flow key built by Fatflow. The
 * controller inserts one entry per learned flow (idle timeout = the flow's
 * lifetime; the direct counter gives the flow record's packets/bytes).
 * A miss sends one flow_digest_t and applies the ingress port's miss policy:
 * forward (the route's next hop), drop, or hold (packet-in, reason
 * PUNT_REASON_FLOW_MISS_HOLD; the controller re-sends it with packet-out).
 */
#ifndef FATFLOW_FLOWTABLE_P4
#define FATFLOW_FLOWTABLE_P4

#include "../headers.p4"

control Flowtable(inout headers_t hdr,
                  inout local_metadata_t meta,
                  inout standard_metadata_t standard_metadata) {

    direct_counter(CounterType.packets_and_bytes) flow_counter_v4;
    direct_counter(CounterType.packets_and_bytes) flow_counter_v6;

    // egress_port 0 keeps the route's port; anything else overrides it (the
    // route's MAC rewrite stays).
    action flow_forward(bit<1> mirror, bit<1> offloaded, port_id_t egress_port) {
        meta.flow_mirror = mirror;
        meta.flow_offloaded = offloaded;
        meta.flow_egress_port = egress_port;
    }

    action flow_drop() {
        meta.drop = true;
        mark_to_drop(standard_metadata);
    }

    action flow_miss() {
        meta.flow_miss = true;
    }

    table flow_v4 {
        key = {
            meta.vrf: exact @name("vrf");
            meta.flow_key.src_v4: exact @name("src_addr");
            meta.flow_key.dst_v4: exact @name("dst_addr");
            meta.flow_key.protocol: exact @name("protocol");
            meta.flow_key.src_port: exact @name("src_port");
            meta.flow_key.dst_port: exact @name("dst_port");
            meta.flow_key.src_plen: exact @name("src_plen");
            meta.flow_key.dst_plen: exact @name("dst_plen");
        }
        actions = {
            flow_forward;
            flow_drop;
            @defaultonly flow_miss;
        }
        default_action = flow_miss();
        counters = flow_counter_v4;
        support_timeout = true;
        size = FLOW_V4_TABLE_SIZE;
    }

    table flow_v6 {
        key = {
            meta.vrf: exact @name("vrf");
            meta.flow_key.src_v6: exact @name("src_addr");
            meta.flow_key.dst_v6: exact @name("dst_addr");
            meta.flow_key.protocol: exact @name("protocol");
            meta.flow_key.src_port: exact @name("src_port");
            meta.flow_key.dst_port: exact @name("dst_port");
            meta.flow_key.src_plen: exact @name("src_plen");
            meta.flow_key.dst_plen: exact @name("dst_plen");
        }
        actions = {
            flow_forward;
            flow_drop;
            @defaultonly flow_miss;
        }
        default_action = flow_miss();
        counters = flow_counter_v6;
        support_timeout = true;
        size = FLOW_V6_TABLE_SIZE;
    }

    apply {
        meta.flow_miss = false;
        meta.flow_mirror = 0;
        meta.flow_offloaded = 0;
        meta.flow_egress_port = 0;

        if (hdr.ipv4.isValid()) {
            flow_v4.apply();
        } else if (hdr.ipv6.isValid()) {
            flow_v6.apply();
        }

        if (meta.flow_miss) {
            meta.flow_digest.vrf = meta.vrf;
            meta.flow_digest.protocol = meta.flow_key.protocol;
            meta.flow_digest.src_port = meta.flow_key.src_port;
            meta.flow_digest.dst_port = meta.flow_key.dst_port;
            meta.flow_digest.src_plen = meta.flow_key.src_plen;
            meta.flow_digest.dst_plen = meta.flow_key.dst_plen;
            meta.flow_digest.vmi_id = meta.vmi_id;
            meta.flow_digest.direction = meta.direction;
            meta.flow_digest.ingress_port = standard_metadata.ingress_port;
            meta.flow_digest.pkt_src_port = meta.l4_src_port;
            meta.flow_digest.pkt_dst_port = meta.l4_dst_port;
            if (hdr.ipv4.isValid()) {
                meta.flow_digest.ip_version = 4;
                meta.flow_digest.src_addr = (ipv6_addr_t)meta.flow_key.src_v4;
                meta.flow_digest.dst_addr = (ipv6_addr_t)meta.flow_key.dst_v4;
                meta.flow_digest.pkt_src_addr = (ipv6_addr_t)hdr.ipv4.src_addr;
                meta.flow_digest.pkt_dst_addr = (ipv6_addr_t)hdr.ipv4.dst_addr;
            } else {
                meta.flow_digest.ip_version = 6;
                meta.flow_digest.src_addr = meta.flow_key.src_v6;
                meta.flow_digest.dst_addr = meta.flow_key.dst_v6;
                meta.flow_digest.pkt_src_addr = hdr.ipv6.src_addr;
                meta.flow_digest.pkt_dst_addr = hdr.ipv6.dst_addr;
            }
            digest<flow_digest_t>(FLOW_DIGEST_RECEIVER, meta.flow_digest);

            if (meta.mirror_new_flows == 1) {
                meta.mirror = true;
            }
            // MISS_POLICY_FORWARD: the packet keeps the route's next hop.
            if (meta.miss_policy == MISS_POLICY_HOLD) {
                meta.punt = true;
                meta.punt_reason = PUNT_REASON_FLOW_MISS_HOLD;
            } else if (meta.miss_policy == MISS_POLICY_DROP ||
                       meta.miss_policy > MISS_POLICY_HOLD) {
                // The undefined value 3 fails closed.
                meta.drop = true;
                mark_to_drop(standard_metadata);
            }
        } else if (!meta.drop) {
            // A forward hit (flow_drop set meta.drop).
            if (meta.flow_mirror == 1 && meta.flow_offloaded == 0) {
                meta.mirror = true;
            }
            if (meta.flow_egress_port != 0) {
                standard_metadata.egress_spec = meta.flow_egress_port;
            }
        }
    }
}

#endif  // FATFLOW_FLOWTABLE_P4

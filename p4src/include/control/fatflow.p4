/*
 * p4-fatflow: fat-flow rule selection and flow-key building (spec section 3).
 *
 * 0. Direction: VMI port -> from-VM (that VMI); fabric port whose route names
 *    a local VMI -> to-VM (the destination VMI); fabric -> fabric -> transit,
 *    vmi_id 0, for which the controller writes no rules: a normal flow.
 *    Local = packet src for from-VM (and transit), packet dst for to-VM.
 * 1. Exclude list: exclude_src_* on the packet source, exclude_dst_* on the
 *    packet destination (the controller writes the VMI's list into both).
 *    A hit makes a normal flow.
 * 2. Port match (TCP/UDP/SCTP only, family-independent): port_match_sport and
 *    port_match_dport hold every nonzero rule port of the VMI per protocol.
 *    One hit: keep that port. Both: the smaller port, tie -> dport. Neither
 *    (or a protocol without ports): matched_port 0, the port-0 rules.
 * 3. Precedence: rule_v4 / rule_v6, ternary on (local, remote) with
 *    controller-computed priorities (controller/p4fatflow/dataplane.py).
 *    DECISION: when a port matched but none of that port's rules matches the
 *    addresses, no rule applies (port-0 rules are not consulted).
 * 4. Key: addresses ANDed with the rule's masks and carrying its plens, in the
 *    packet's orientation; if a rule applied, the kept port stays and the
 *    other becomes 0 (both 0 for port-0 rules, which also zeroes an ICMP
 *    echo identifier). No rule: full addresses, /32 or /128, real ports.
 */
#ifndef FATFLOW_FATFLOW_P4
#define FATFLOW_FATFLOW_P4

#include "../headers.p4"

control Fatflow(inout headers_t hdr, inout local_metadata_t meta) {

    /* -- 1. exclude list ------------------------------------------------- */

    action set_excluded() {
        meta.ff.excluded = true;
    }

    table exclude_src_v4 {
        key = {
            meta.vmi_id: exact @name("vmi_id");
            hdr.ipv4.src_addr: lpm @name("addr");
        }
        actions = {
            set_excluded;
            @defaultonly NoAction;
        }
        default_action = NoAction();
        size = EXCLUDE_V4_TABLE_SIZE;
    }

    table exclude_dst_v4 {
        key = {
            meta.vmi_id: exact @name("vmi_id");
            hdr.ipv4.dst_addr: lpm @name("addr");
        }
        actions = {
            set_excluded;
            @defaultonly NoAction;
        }
        default_action = NoAction();
        size = EXCLUDE_V4_TABLE_SIZE;
    }

    table exclude_src_v6 {
        key = {
            meta.vmi_id: exact @name("vmi_id");
            hdr.ipv6.src_addr: lpm @name("addr");
        }
        actions = {
            set_excluded;
            @defaultonly NoAction;
        }
        default_action = NoAction();
        size = EXCLUDE_V6_TABLE_SIZE;
    }

    table exclude_dst_v6 {
        key = {
            meta.vmi_id: exact @name("vmi_id");
            hdr.ipv6.dst_addr: lpm @name("addr");
        }
        actions = {
            set_excluded;
            @defaultonly NoAction;
        }
        default_action = NoAction();
        size = EXCLUDE_V6_TABLE_SIZE;
    }

    /* -- 2. port match --------------------------------------------------- */

    action set_sport_match() {
        meta.ff.sport_hit = true;
    }

    action set_dport_match() {
        meta.ff.dport_hit = true;
    }

    table port_match_sport {
        key = {
            meta.vmi_id: exact @name("vmi_id");
            meta.ip_proto: exact @name("protocol");
            meta.l4_src_port: exact @name("port");
        }
        actions = {
            set_sport_match;
            @defaultonly NoAction;
        }
        default_action = NoAction();
        size = PORT_MATCH_TABLE_SIZE;
    }

    table port_match_dport {
        key = {
            meta.vmi_id: exact @name("vmi_id");
            meta.ip_proto: exact @name("protocol");
            meta.l4_dst_port: exact @name("port");
        }
        actions = {
            set_dport_match;
            @defaultonly NoAction;
        }
        default_action = NoAction();
        size = PORT_MATCH_TABLE_SIZE;
    }

    /* -- 3. rule precedence ---------------------------------------------- */

    // Masks are all ones for an untouched side, the aggregation mask for an
    // aggregated side and 0 for an ignored side; plens likewise 32 / aggr / 0.
    action apply_rule_v4(ipv4_addr_t local_mask, plen_t local_plen,
                         ipv4_addr_t remote_mask, plen_t remote_plen) {
        meta.ff.rule_hit = true;
        meta.ff.local_mask_v4 = local_mask;
        meta.ff.local_plen = local_plen;
        meta.ff.remote_mask_v4 = remote_mask;
        meta.ff.remote_plen = remote_plen;
    }

    action apply_rule_v6(ipv6_addr_t local_mask, plen_t local_plen,
                         ipv6_addr_t remote_mask, plen_t remote_plen) {
        meta.ff.rule_hit = true;
        meta.ff.local_mask_v6 = local_mask;
        meta.ff.local_plen = local_plen;
        meta.ff.remote_mask_v6 = remote_mask;
        meta.ff.remote_plen = remote_plen;
    }

    table rule_v4 {
        key = {
            meta.vmi_id: exact @name("vmi_id");
            meta.ip_proto: exact @name("protocol");
            meta.ff.matched_port: exact @name("port");
            meta.ff.local_v4: ternary @name("local_addr");
            meta.ff.remote_v4: ternary @name("remote_addr");
        }
        actions = {
            apply_rule_v4;
            @defaultonly NoAction;
        }
        default_action = NoAction();
        size = RULE_V4_TABLE_SIZE;
    }

    table rule_v6 {
        key = {
            meta.vmi_id: exact @name("vmi_id");
            meta.ip_proto: exact @name("protocol");
            meta.ff.matched_port: exact @name("port");
            meta.ff.local_v6: ternary @name("local_addr");
            meta.ff.remote_v6: ternary @name("remote_addr");
        }
        actions = {
            apply_rule_v6;
            @defaultonly NoAction;
        }
        default_action = NoAction();
        size = RULE_V6_TABLE_SIZE;
    }

    apply {
        /* 0. direction and the VMI whose rules apply */
        if (meta.port_kind == PORT_KIND_VMI) {
            meta.direction = DIRECTION_FROM_VM;
        } else if (meta.dst_vmi_id != 0) {
            meta.direction = DIRECTION_TO_VM;
            meta.vmi_id = meta.dst_vmi_id;
        } else {
            meta.direction = DIRECTION_TRANSIT;
            meta.vmi_id = 0;
        }

        /* defaults: no rule, normal flow */
        meta.ff.excluded = false;
        meta.ff.sport_hit = false;
        meta.ff.dport_hit = false;
        meta.ff.port_sel = PORT_SEL_NONE;
        meta.ff.matched_port = 0;
        meta.ff.rule_hit = false;
        meta.ff.local_v4 = 0;
        meta.ff.remote_v4 = 0;
        meta.ff.local_v6 = 0;
        meta.ff.remote_v6 = 0;
        meta.ff.local_mask_v4 = 0xFFFFFFFF;
        meta.ff.remote_mask_v4 = 0xFFFFFFFF;
        meta.ff.local_mask_v6 = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF;
        meta.ff.remote_mask_v6 = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF;
        meta.ff.local_plen = 0;
        meta.ff.remote_plen = 0;

        if (hdr.ipv4.isValid()) {
            meta.ff.local_plen = 32;
            meta.ff.remote_plen = 32;
            if (meta.direction == DIRECTION_TO_VM) {
                meta.ff.local_v4 = hdr.ipv4.dst_addr;
                meta.ff.remote_v4 = hdr.ipv4.src_addr;
            } else {
                meta.ff.local_v4 = hdr.ipv4.src_addr;
                meta.ff.remote_v4 = hdr.ipv4.dst_addr;
            }
        } else if (hdr.ipv6.isValid()) {
            meta.ff.local_plen = 128;
            meta.ff.remote_plen = 128;
            if (meta.direction == DIRECTION_TO_VM) {
                meta.ff.local_v6 = hdr.ipv6.dst_addr;
                meta.ff.remote_v6 = hdr.ipv6.src_addr;
            } else {
                meta.ff.local_v6 = hdr.ipv6.src_addr;
                meta.ff.remote_v6 = hdr.ipv6.dst_addr;
            }
        }

        if (meta.vmi_id != 0) {
            /* 1. exclude list, on both packet addresses */
            if (hdr.ipv4.isValid()) {
                exclude_src_v4.apply();
                exclude_dst_v4.apply();
            } else if (hdr.ipv6.isValid()) {
                exclude_src_v6.apply();
                exclude_dst_v6.apply();
            }

            if (!meta.ff.excluded) {
                /* 2. port match */
                if (meta.l4_has_ports) {
                    port_match_sport.apply();
                    port_match_dport.apply();
                }
                if (meta.ff.sport_hit && meta.ff.dport_hit) {
                    if (meta.l4_src_port < meta.l4_dst_port) {
                        meta.ff.port_sel = PORT_SEL_SPORT;
                    } else {
                        meta.ff.port_sel = PORT_SEL_DPORT;   // smaller, or tie
                    }
                } else if (meta.ff.sport_hit) {
                    meta.ff.port_sel = PORT_SEL_SPORT;
                } else if (meta.ff.dport_hit) {
                    meta.ff.port_sel = PORT_SEL_DPORT;
                }
                if (meta.ff.port_sel == PORT_SEL_SPORT) {
                    meta.ff.matched_port = meta.l4_src_port;
                } else if (meta.ff.port_sel == PORT_SEL_DPORT) {
                    meta.ff.matched_port = meta.l4_dst_port;
                }

                /* 3. rule precedence */
                if (hdr.ipv4.isValid()) {
                    rule_v4.apply();
                } else if (hdr.ipv6.isValid()) {
                    rule_v6.apply();
                }
            }
        }

        /* 4. the key, in the packet's own orientation */
        meta.flow_key.protocol = meta.ip_proto;
        if (meta.direction == DIRECTION_TO_VM) {
            meta.flow_key.src_v4 = meta.ff.remote_v4 & meta.ff.remote_mask_v4;
            meta.flow_key.dst_v4 = meta.ff.local_v4 & meta.ff.local_mask_v4;
            meta.flow_key.src_v6 = meta.ff.remote_v6 & meta.ff.remote_mask_v6;
            meta.flow_key.dst_v6 = meta.ff.local_v6 & meta.ff.local_mask_v6;
            meta.flow_key.src_plen = meta.ff.remote_plen;
            meta.flow_key.dst_plen = meta.ff.local_plen;
        } else {
            meta.flow_key.src_v4 = meta.ff.local_v4 & meta.ff.local_mask_v4;
            meta.flow_key.dst_v4 = meta.ff.remote_v4 & meta.ff.remote_mask_v4;
            meta.flow_key.src_v6 = meta.ff.local_v6 & meta.ff.local_mask_v6;
            meta.flow_key.dst_v6 = meta.ff.remote_v6 & meta.ff.remote_mask_v6;
            meta.flow_key.src_plen = meta.ff.local_plen;
            meta.flow_key.dst_plen = meta.ff.remote_plen;
        }
        meta.flow_key.src_port = meta.l4_src_port;
        meta.flow_key.dst_port = meta.l4_dst_port;
        if (meta.ff.rule_hit) {
            if (meta.ff.port_sel != PORT_SEL_SPORT) {
                meta.flow_key.src_port = 0;
            }
            if (meta.ff.port_sel != PORT_SEL_DPORT) {
                meta.flow_key.dst_port = 0;
            }
        }
    }
}

#endif  // FATFLOW_FATFLOW_P4

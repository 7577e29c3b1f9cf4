/*
 * p4-fatflow: port classification (spec section 1).
 *
 * port_table maps the ingress port to a VMI port (one VMI per port) or a
 * fabric port, with the per-port flowtable settings. A port without an entry
 * drops everything. Written by the controller at configuration time.
 */
#ifndef FATFLOW_PORT_MAP_P4
#define FATFLOW_PORT_MAP_P4

#include "../headers.p4"

control PortMap(inout local_metadata_t meta,
                inout standard_metadata_t standard_metadata) {

    action set_vmi_port(vmi_id_t vmi_id, vrf_id_t vrf, bit<2> miss_policy,
                        bit<1> mirror_new_flows, bit<1> flowtable_enabled) {
        meta.port_kind = PORT_KIND_VMI;
        meta.vmi_id = vmi_id;
        meta.vrf = vrf;
        meta.miss_policy = miss_policy;
        meta.mirror_new_flows = mirror_new_flows;
        meta.flowtable_enabled = flowtable_enabled;
    }

    action set_fabric_port(vrf_id_t vrf, bit<2> miss_policy,
                           bit<1> mirror_new_flows, bit<1> flowtable_enabled) {
        meta.port_kind = PORT_KIND_FABRIC;
        // The VMI is only known after the route lookup (to-VM traffic).
        meta.vmi_id = 0;
        meta.vrf = vrf;
        meta.miss_policy = miss_policy;
        meta.mirror_new_flows = mirror_new_flows;
        meta.flowtable_enabled = flowtable_enabled;
    }

    action drop_unconfigured_port() {
        meta.drop = true;
        mark_to_drop(standard_metadata);
    }

    table port_table {
        key = {
            standard_metadata.ingress_port: exact @name("ingress_port");
        }
        actions = {
            set_vmi_port;
            set_fabric_port;
            @defaultonly drop_unconfigured_port;
        }
        default_action = drop_unconfigured_port();
        size = PORT_TABLE_SIZE;
    }

    apply {
        // What an unconfigured port (the default action) leaves behind.
        meta.port_kind = PORT_KIND_NONE;
        meta.vmi_id = 0;
        meta.vrf = 0;
        meta.miss_policy = MISS_POLICY_FORWARD;
        meta.mirror_new_flows = 0;
        meta.flowtable_enabled = 0;
        port_table.apply();
    }
}

#endif  // FATFLOW_PORT_MAP_P4

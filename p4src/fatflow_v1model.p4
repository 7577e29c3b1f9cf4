/*
 * p4-fatflow: the v1model pipeline (BMv2 simple_switch_grpc, softswitch).
 *
 *   p4c --target bmv2 --arch v1model --p4runtime-files fatflow.p4info.txtpb \
 *       -o build p4src/fatflow_v1model.p4
 *
 * Tables, actions, the digest and the controller headers are described in
 * docs/pipeline.md; their P4Runtime names are constants in
 * controller/p4fatflow/dataplane.py.
 */
#include <core.p4>
#include <v1model.p4>

#include "include/defines.p4"
#include "include/headers.p4"
#include "include/parser.p4"
#include "include/control/checksum.p4"
#include "include/control/port_map.p4"
#include "include/control/routing.p4"
#include "include/control/fatflow.p4"
#include "include/control/flowtable.p4"
#include "include/control/mirror.p4"
#include "include/control/packet_io.p4"

control ingress(inout headers_t hdr,
                inout local_metadata_t meta,
                inout standard_metadata_t standard_metadata) {
    PortMap()         port_map;
    Routing()         routing;
    Fatflow()         fatflow;
    Flowtable()       flowtable;
    Mirror()          mirror;
    PacketIoIngress() packet_io;

    apply {
        meta.ingress_port = standard_metadata.ingress_port;  // preserved into clones
        meta.vmi_id = 0;
        meta.drop = false;
        meta.mirror = false;
        meta.punt = false;
        meta.punt_reason = 0;
        meta.direction = DIRECTION_NONE;

        if (!hdr.packet_out.isValid()) {
            if (standard_metadata.parser_error != error.NoError ||
                    standard_metadata.checksum_error == 1) {
                // Truncated or malformed headers, IPv4 IHL < 5, or a bad
                // IPv4 header checksum (BMv2 only flags these): drop.
                meta.drop = true;
                mark_to_drop(standard_metadata);
            } else {
                port_map.apply(meta, standard_metadata);
                routing.apply(hdr, meta, standard_metadata);
                if (!meta.drop && meta.flowtable_enabled == 1) {
                    fatflow.apply(hdr, meta);
                    flowtable.apply(hdr, meta, standard_metadata);
                }
                mirror.apply(meta);
            }
        }
        packet_io.apply(hdr, meta, standard_metadata);
    }
}

control egress(inout headers_t hdr,
               inout local_metadata_t meta,
               inout standard_metadata_t standard_metadata) {
    // Next-hop rewrites happen in ingress (a held packet reaches the
    // controller already rewritten); analyzer clones (I2E) arrive here as the
    // original packet and leave unchanged unless they go to the CPU port.
    PacketIoEgress() packet_io;

    apply {
        packet_io.apply(hdr, meta, standard_metadata);
    }
}

V1Switch(FatflowParser(),
         FatflowVerifyChecksum(),
         ingress(),
         egress(),
         FatflowComputeChecksum(),
         FatflowDeparser()) main;

/*
 * p4-fatflow: packet-out and packet-in (controller headers, headers.p4).
 *
 * packet-out (PacketIoIngress): a packet from CPU_PORT with a packet_out
 * header skips the pipeline and leaves on packet_out.egress_port as it is
 * (the controller releases held packets, already rewritten for their next
 * hop, this way).
 * packet-in: PacketIoIngress redirects a punted packet (meta.punt) to
 * CPU_PORT; PacketIoEgress adds the packet_in header to everything leaving on
 * CPU_PORT: ingress port, the port the packet would have left on, reason, VMI.
 * An analyzer clone whose session points at CPU_PORT arrives with reason
 * PUNT_REASON_MIRROR, its ingress port and VMI (the clone preserves
 * meta.ingress_port and meta.vmi_id, MIRROR_FIELD_LIST_ID) and egress_port 0.
 */
#ifndef FATFLOW_PACKET_IO_P4
#define FATFLOW_PACKET_IO_P4

#include "../headers.p4"

control PacketIoIngress(inout headers_t hdr,
                        inout local_metadata_t meta,
                        inout standard_metadata_t standard_metadata) {
    apply {
        meta.punt_egress_port = 0;
        if (hdr.packet_out.isValid()) {
            standard_metadata.egress_spec = hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
        } else if (meta.punt && standard_metadata.egress_spec != DROP_PORT) {
            meta.punt_egress_port = standard_metadata.egress_spec;
            standard_metadata.egress_spec = CPU_PORT;
        }
    }
}

control PacketIoEgress(inout headers_t hdr,
                       in local_metadata_t meta,
                       in standard_metadata_t standard_metadata) {
    apply {
        if (standard_metadata.egress_port == CPU_PORT) {
            hdr.packet_in.setValid();
            // meta.ingress_port, not standard_metadata.ingress_port: a clone's
            // standard metadata is reset, its preserved user metadata is not.
            hdr.packet_in.ingress_port = meta.ingress_port;
            hdr.packet_in.vmi_id = meta.vmi_id;
            hdr.packet_in._pad = 0;
            if (standard_metadata.instance_type == INSTANCE_TYPE_INGRESS_CLONE) {
                hdr.packet_in.egress_port = 0;
                hdr.packet_in.reason = PUNT_REASON_MIRROR;
            } else {
                hdr.packet_in.egress_port = meta.punt_egress_port;
                hdr.packet_in.reason = meta.punt_reason;
            }
        }
    }
}

#endif  // FATFLOW_PACKET_IO_P4

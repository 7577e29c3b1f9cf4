/*
 * p4-fatflow: packet-out and packet-in (controller headers, headers.p4).
 *
 * packet-out: a packet from CPU_PORT with a packet_out header skips the
 * pipeline and leaves on packet_out.egress_port as it is (the controller
 * sends held packets already rewritten for their next hop).
 * packet-in: a packet the pipeline punts (meta.punt) goes to CPU_PORT with a
 * packet_in header: ingress port, the port it would have left on, reason.
 */
#ifndef FATFLOW_PACKET_IO_P4
#define FATFLOW_PACKET_IO_P4

#include "../headers.p4"

control PacketIo(inout headers_t hdr,
                 in local_metadata_t meta,
                 inout standard_metadata_t standard_metadata) {
    apply {
        if (hdr.packet_out.isValid()) {
            standard_metadata.egress_spec = hdr.packet_out.egress_port;
            hdr.packet_out.setInvalid();
        } else if (meta.punt && !meta.drop) {
            hdr.packet_in.setValid();
            hdr.packet_in.ingress_port = standard_metadata.ingress_port;
            hdr.packet_in.egress_port = standard_metadata.egress_spec;
            hdr.packet_in.reason = meta.punt_reason;
            hdr.packet_in._pad = 0;
            standard_metadata.egress_spec = CPU_PORT;
        }
    }
}

#endif  // FATFLOW_PACKET_IO_P4

/*
 * p4-fatflow: copies to the analyzer (spec section 4, "Mirroring").
 *
 * An ingress-to-egress clone into ANALYZER_CLONE_SESSION_ID, whose port the
 * controller sets with a P4Runtime CloneSessionEntry. On BMv2 the clone is
 * the packet as it arrived (before the MAC rewrite and TTL decrement).
 * Requested by Flowtable for forward hits with mirror=1 and offloaded=0, and
 * for flow-table misses on ports with mirror_new_flows=1.
 * The clone preserves the user-metadata fields of MIRROR_FIELD_LIST_ID
 * (meta.ingress_port, meta.vmi_id: headers.p4), with their values at the end
 * of ingress, so a copy punted to the controller (session -> CPU_PORT) carries
 * them in its packet_in header.
 */
#ifndef FATFLOW_MIRROR_P4
#define FATFLOW_MIRROR_P4

#include "../headers.p4"

control Mirror(in local_metadata_t meta) {
    apply {
        if (meta.mirror) {
            clone_preserving_field_list(CloneType.I2E, ANALYZER_CLONE_SESSION_ID,
                                        MIRROR_FIELD_LIST_ID);
        }
    }
}

#endif  // FATFLOW_MIRROR_P4

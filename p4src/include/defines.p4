/*
 * p4-fatflow: named constants shared by every control.
 *
 * Values a P4Runtime client needs (CPU port, clone session, miss policies,
 * reason codes, directions) are mirrored in controller/p4fatflow/dataplane.py;
 * change both together.
 */
#ifndef FATFLOW_DEFINES_P4
#define FATFLOW_DEFINES_P4

/* ---- Types --------------------------------------------------------------- */

typedef bit<48>  mac_addr_t;
typedef bit<32>  ipv4_addr_t;
typedef bit<128> ipv6_addr_t;
typedef bit<9>   port_id_t;   // v1model standard_metadata port width
typedef bit<16>  vrf_id_t;
typedef bit<16>  vmi_id_t;    // 0 = "no VMI" (fabric transit); never a real VMI
typedef bit<8>   plen_t;      // prefix length carried in the flow key
typedef bit<16>  l4_port_t;

/* ---- Ethernet / IP protocol numbers ------------------------------------- */

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<16> ETHERTYPE_IPV6 = 0x86DD;
const bit<16> ETHERTYPE_VLAN = 0x8100;

const bit<4> IPV4_MIN_IHL = 5;

const bit<8> IP_PROTO_ICMP   = 1;
const bit<8> IP_PROTO_TCP    = 6;
const bit<8> IP_PROTO_UDP    = 17;
const bit<8> IP_PROTO_ICMPV6 = 58;
const bit<8> IP_PROTO_SCTP   = 132;

const bit<8> ICMP_ECHO_REPLY     = 0;
const bit<8> ICMP_ECHO_REQUEST   = 8;
const bit<8> ICMPV6_ECHO_REQUEST = 128;
const bit<8> ICMPV6_ECHO_REPLY   = 129;

/* ---- Ports, sessions, receivers ----------------------------------------- */

// simple_switch_grpc --cpu-port 255: packet-in/packet-out travel on this port.
const port_id_t CPU_PORT  = 255;
// mark_to_drop() sets egress_spec to this value on v1model/BMv2.
const port_id_t DROP_PORT = 511;

// PRE clone session the controller points at the analyzer port.
const bit<32> ANALYZER_CLONE_SESSION_ID = 100;
// digest() receiver argument; BMv2/P4Runtime ignore it, but it must be constant.
const bit<32> FLOW_DIGEST_RECEIVER = 1;

// standard_metadata.instance_type of an ingress-to-egress clone (BMv2 v1model).
const bit<32> INSTANCE_TYPE_INGRESS_CLONE = 1;

/* ---- Port configuration values (action params of port_table) ------------ */

const bit<2> PORT_KIND_NONE   = 0;   // unconfigured: dropped
const bit<2> PORT_KIND_VMI    = 1;
const bit<2> PORT_KIND_FABRIC = 2;

const bit<2> MISS_POLICY_FORWARD = 0;
const bit<2> MISS_POLICY_DROP    = 1;
const bit<2> MISS_POLICY_HOLD    = 2;   // packet-in to the controller
// 3 is undefined and handled like drop (fail closed).

/* ---- Flow direction (digest field "direction") --------------------------- */

const bit<8> DIRECTION_NONE    = 0;  // flowtable not reached
const bit<8> DIRECTION_FROM_VM = 1;  // entered on a VMI port
const bit<8> DIRECTION_TO_VM   = 2;  // entered on a fabric port, route resolves to a local VMI
const bit<8> DIRECTION_TRANSIT = 3;  // fabric -> fabric, no local VMI (vmi_id 0)

/* ---- Fat-flow port selection (which real port the key keeps) ------------ */

const bit<2> PORT_SEL_NONE  = 0;     // neither port matched: port-0 rules
const bit<2> PORT_SEL_SPORT = 1;
const bit<2> PORT_SEL_DPORT = 2;

/* ---- Packet-in reason codes (packet_in header field "reason") ------------ */

const bit<8> PUNT_REASON_FLOW_MISS_HOLD = 1;  // a held packet of a new flow
const bit<8> PUNT_REASON_MIRROR         = 2;  // an analyzer copy (clone session -> CPU_PORT)

/* ---- Table sizes --------------------------------------------------------- */
// Plain macros: a table's size property must be a compile-time integer.

#define PORT_TABLE_SIZE         512
#define ROUTE_V4_TABLE_SIZE     4096
#define ROUTE_V6_TABLE_SIZE     4096
#define EXCLUDE_V4_TABLE_SIZE   4096
#define EXCLUDE_V6_TABLE_SIZE   4096
#define PORT_MATCH_TABLE_SIZE   4096
#define RULE_V4_TABLE_SIZE      4096
#define RULE_V6_TABLE_SIZE      4096
#define FLOW_V4_TABLE_SIZE      65536
#define FLOW_V6_TABLE_SIZE      65536

#endif  // FATFLOW_DEFINES_P4

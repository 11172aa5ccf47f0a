//! The pipeline's fixed layout: tables, registers, cookies and group ids. `docs/pipeline.md`
//! explains each; change both together.

use ofproto::oxm::Field;

/// Table 0: which port, which network.
pub const CLASSIFIER: u8 = 0;
/// A local port may only send its own MAC and addresses (ARP included).
pub const SPOOF_GUARD: u8 = 10;
/// ARP requests for known addresses are answered here, never flooded.
pub const ARP_RESPONDER: u8 = 20;
/// Egress policy, step 1: IPv4 goes through conntrack (its tenant's zone); anything else passes
/// on to L3.
pub const EGRESS_POLICY: u8 = 30;
/// Egress, step 2: established and related pass, invalid is dropped, new goes on.
pub const EGRESS_STATE: u8 = 31;
/// Egress, step 3: the destination address → its group (reg3).
pub const EGRESS_PEER: u8 = 32;
/// Egress, step 4: the rules of the source's group; allowed → L3.
pub const EGRESS_RULES: u8 = 33;
/// Routing: to the gateway MAC, by destination address within the tenant (reg6), to a host's
/// address, a service range, or out of the host (external networks).
pub const L3: u8 = 40;
/// Network + destination MAC → output port; broadcast → the network's group.
pub const L2_FORWARD: u8 = 50;
/// Ingress policy, step 1: IPv4 not yet tracked on this host goes through conntrack; tracked
/// goes on; anything else to output.
pub const INGRESS_POLICY: u8 = 60;
/// Ingress, step 2: established and related pass, invalid is dropped; new towards another host
/// is committed (its rules are that host's business), new towards a local endpoint goes on.
pub const INGRESS_STATE: u8 = 61;
/// Ingress, step 3: the source address → its group (reg3).
pub const INGRESS_PEER: u8 = 62;
/// Ingress, step 4: the rules of the destination's group; allowed → committed, to output.
pub const INGRESS_RULES: u8 = 63;
/// Output to the port L2_FORWARD chose.
pub const OUTPUT: u8 = 70;

/// Every table the pipeline uses, in order.
pub const TABLES: [(u8, &str); 14] = [
    (CLASSIFIER, "classifier"),
    (SPOOF_GUARD, "spoof-guard"),
    (ARP_RESPONDER, "arp-responder"),
    (EGRESS_POLICY, "egress-conntrack"),
    (EGRESS_STATE, "egress-state"),
    (EGRESS_PEER, "egress-peer"),
    (EGRESS_RULES, "egress-rules"),
    (L3, "l3"),
    (L2_FORWARD, "l2-forward"),
    (INGRESS_POLICY, "ingress-conntrack"),
    (INGRESS_STATE, "ingress-state"),
    (INGRESS_PEER, "ingress-peer"),
    (INGRESS_RULES, "ingress-rules"),
    (OUTPUT, "output"),
];

/// The name of a pipeline table (as in [`TABLES`]); None for a table the pipeline does not use.
pub fn table_name(table: u8) -> Option<&'static str> {
    TABLES.iter().find(|(t, _)| *t == table).map(|(_, n)| *n)
}

/// reg0: where the packet entered (one of the `FROM_*` values).
pub const REG_ORIGIN: u8 = 0;
pub const FROM_LOCAL: u32 = 1;
pub const FROM_UPLINK: u32 = 2;
pub const FROM_TUNNEL: u32 = 3;
// (What the host's gateway port sends counts as FROM_LOCAL: it was made on this host, so it may
// go to other hosts; `in_port` still tells the gateway port apart where that matters.)
/// reg1: the group of the local endpoint that sent the packet (0: none).
pub const REG_SRC_GROUP: u8 = 1;
/// reg2: the group of the local endpoint the packet goes to (0: none).
pub const REG_DST_GROUP: u8 = 2;
/// reg3: the group of the other end, found by its address (0: none or unknown).
pub const REG_PEER_GROUP: u8 = 3;
/// reg4: where L2_FORWARD sends the packet (one of the `TO_*` values).
pub const REG_DEST: u8 = 4;
pub const TO_LOCAL: u32 = 1;
pub const TO_REMOTE: u32 = 2;
/// Out of the gateway port to the outside: a new connection is committed with source NAT to
/// its tenant's transit address.
pub const TO_EXTERNAL: u32 = 3;
/// reg6: the conntrack zone of the packet's tenant (bits 0..15).
pub const REG_ZONE: u8 = 6;
/// reg5: the packet's network, as its segment id (see [`crate::Segment::id`]).
pub const REG_NETWORK: u8 = 5;
/// reg7: the OpenFlow port L2_FORWARD chose.
pub const REG_OUT_PORT: u8 = 7;

pub fn reg(n: u8) -> Field {
    Field::Reg(n)
}

/// The MAC address the gateway of every network answers ARP with (Contiv's choice too).
pub const GATEWAY_MAC: [u8; 6] = [0x00, 0x00, 0x11, 0x11, 0x11, 0x11];

/// The MAC of a host's gateway port (its end in the host's stack), from the host's address:
/// unique per host (a VLAN fabric sees them all), computable by every other host, and apart
/// from endpoint MACs (`02:00:` + address).
pub fn host_gateway_mac(host: std::net::Ipv4Addr) -> [u8; 6] {
    let o = host.octets();
    [0x0a, 0x00, o[0], o[1], o[2], o[3]]
}

/// A tenant's transit address: what its external traffic is translated to inside the bridge
/// (169.254.0.0/16 + its conntrack zone), before the host masquerades it to its own address.
/// Two tenants with one subnet thus never look alike to the host's connection tracking.
pub fn transit_address(zone: u16) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(0xa9fe_0000 | u32::from(zone))
}
/// The range of [`transit_address`]es, which the host masquerades.
pub const TRANSIT_RANGE: (std::net::Ipv4Addr, u8) = (std::net::Ipv4Addr::new(169, 254, 0, 0), 16);
/// The zone whose transit address would be 169.254.169.254 (cloud metadata): never used.
pub const METADATA_ZONE: u16 = 169 * 256 + 254;

/// `ct_mark` bit: the connection entered the bridge from this host's gateway port, so its
/// replies go back there (the host may have translated it, as kube-proxy does for Services).
pub const MARK_FROM_HOST: u32 = 1;

/// `OFPP_IN_PORT`.
pub const IN_PORT: u32 = 0xffff_fff8;

/// What kind of intent object a cookie names: the top byte of every cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CookieKind {
    /// The fixed skeleton of the pipeline (table defaults).
    Pipeline = 1,
    /// A network (its classifier, flooding and unknown-unicast flows).
    Network = 2,
    /// An endpoint (its classifier, spoof-guard, ARP and forwarding flows).
    Endpoint = 3,
    /// An endpoint on another host (ARP answer and forwarding towards its host).
    RemoteEndpoint = 4,
    /// An endpoint group (its default-deny flows, its netprofile's meters).
    Group = 5,
    /// A policy rule.
    Rule = 6,
    /// This host's gateway port and routes through it.
    HostGateway = 7,
    /// A live trace's temporary observation flows (hard timeout): not the compiler's, so the
    /// reconciler leaves them alone ([`crate::FlowSet::from_switch`] skips them).
    Trace = 8,
}

/// `ct_state` bits.
pub const CT_NEW: u32 = 0x01;
pub const CT_EST: u32 = 0x02;
pub const CT_REL: u32 = 0x04;
pub const CT_RPL: u32 = 0x08;
pub const CT_INV: u32 = 0x10;
pub const CT_TRK: u32 = 0x20;

/// A rule's OpenFlow priority in its rules table: higher rules first, and at equal priority a
/// deny before an allow. Default-deny flows sit below every rule.
pub fn rule_priority(priority: u8, allow: bool) -> u16 {
    100 + u16::from(priority) * 2 + u16::from(!allow)
}
pub const DEFAULT_DENY_PRIORITY: u16 = 10;

/// The id of a network's local-only flooding group (for what arrived from a tunnel or the
/// uplink): its segment id with this bit set.
pub const LOCAL_FLOOD_BIT: u32 = 0x4000_0000;

impl CookieKind {
    pub fn from_cookie(cookie: u64) -> Option<CookieKind> {
        match cookie >> 56 {
            1 => Some(CookieKind::Pipeline),
            2 => Some(CookieKind::Network),
            3 => Some(CookieKind::Endpoint),
            4 => Some(CookieKind::RemoteEndpoint),
            5 => Some(CookieKind::Group),
            6 => Some(CookieKind::Rule),
            7 => Some(CookieKind::HostGateway),
            8 => Some(CookieKind::Trace),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CookieKind::Pipeline => "pipeline",
            CookieKind::Network => "network",
            CookieKind::Endpoint => "endpoint",
            CookieKind::RemoteEndpoint => "remote endpoint",
            CookieKind::Group => "group",
            CookieKind::Rule => "rule",
            CookieKind::HostGateway => "host gateway",
            CookieKind::Trace => "live trace",
        }
    }
}

/// The cookie of the flows an object produced: its kind in the top byte, a 56-bit FNV-1a hash of
/// its key below. Stable across restarts and hosts, so a flow on any switch names its object.
pub fn cookie(kind: CookieKind, key: &str) -> u64 {
    ((kind as u64) << 56) | (fnv1a(key) & 0x00ff_ffff_ffff_ffff)
}

/// 64-bit FNV-1a: a stable hash for names derived from keys (cookies, interface names).
pub fn fnv1a(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

//! The pipeline's fixed layout: tables, registers, cookies and group ids. `docs/pipeline.md`
//! explains each; change both together.

use ofproto::oxm::Field;

/// Table 0: which port, which network.
pub const CLASSIFIER: u8 = 0;
/// A local port may only send its own MAC and addresses (ARP included).
pub const SPOOF_GUARD: u8 = 10;
/// ARP requests for known addresses are answered here, never flooded.
pub const ARP_RESPONDER: u8 = 20;
/// Rules on traffic leaving local endpoints (issue 6; today: pass).
pub const EGRESS_POLICY: u8 = 30;
/// Gateway and routing within a tenant (not built; today: pass).
pub const L3: u8 = 40;
/// Network + destination MAC → output port; broadcast → the network's group.
pub const L2_FORWARD: u8 = 50;
/// Rules on traffic arriving at local endpoints (issue 6; today: pass).
pub const INGRESS_POLICY: u8 = 60;
/// Output to the port L2_FORWARD chose.
pub const OUTPUT: u8 = 70;

/// Every table the pipeline uses, in order.
pub const TABLES: [(u8, &str); 8] = [
    (CLASSIFIER, "classifier"),
    (SPOOF_GUARD, "spoof-guard"),
    (ARP_RESPONDER, "arp-responder"),
    (EGRESS_POLICY, "egress-policy"),
    (L3, "l3"),
    (L2_FORWARD, "l2-forward"),
    (INGRESS_POLICY, "ingress-policy"),
    (OUTPUT, "output"),
];

/// reg0: where the packet entered (one of the `FROM_*` values).
pub const REG_ORIGIN: u8 = 0;
pub const FROM_LOCAL: u32 = 1;
pub const FROM_UPLINK: u32 = 2;
pub const FROM_TUNNEL: u32 = 3;
/// reg5: the packet's network, as its segment id (see [`crate::Segment::id`]).
pub const REG_NETWORK: u8 = 5;
/// reg7: the OpenFlow port L2_FORWARD chose.
pub const REG_OUT_PORT: u8 = 7;

pub fn reg(n: u8) -> Field {
    Field::Reg(n)
}

/// The MAC address the gateway of every network answers ARP with (Contiv's choice too).
pub const GATEWAY_MAC: [u8; 6] = [0x00, 0x00, 0x11, 0x11, 0x11, 0x11];

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
}

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
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CookieKind::Pipeline => "pipeline",
            CookieKind::Network => "network",
            CookieKind::Endpoint => "endpoint",
            CookieKind::RemoteEndpoint => "remote endpoint",
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

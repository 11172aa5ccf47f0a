//! The compiler's input: what one host must do, already resolved to ports and numbers.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// How a network's frames are told apart outside this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    /// 802.1Q tag on the uplink (1..=4094).
    Vlan(u16),
    /// VXLAN network identifier (24 bits).
    Vxlan(u32),
}

impl Segment {
    /// The network's id inside the pipeline (reg5) and the id of its flooding group: the VNI
    /// for VXLAN, `0x0100_0000 | tag` for VLAN. netmaster keeps tags unique per encapsulation,
    /// so this is unique per network on every host.
    pub fn id(self) -> u32 {
        match self {
            Segment::Vlan(v) => 0x0100_0000 | u32::from(v),
            Segment::Vxlan(vni) => vni & 0x00ff_ffff,
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Vlan(v) => write!(f, "vlan {v}"),
            Segment::Vxlan(v) => write!(f, "vxlan {v}"),
        }
    }
}

/// A network with at least one endpoint on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// `tenant:network`, the cookie key.
    pub key: String,
    pub segment: Segment,
    /// Answered by ARP with [`crate::layout::GATEWAY_MAC`].
    pub gateway: Option<Ipv4Addr>,
}

/// An endpoint attached to a port of this host's bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The endpoint id, the cookie key.
    pub key: String,
    /// The key of its [`Network`].
    pub network: String,
    pub ofport: u32,
    pub mac: [u8; 6],
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
}

/// An endpoint on another host, in a network that has endpoints here too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEndpoint {
    pub key: String,
    pub network: String,
    /// The VTEP address of its host (VXLAN networks); VLAN networks reach it over the uplink.
    pub vtep: Ipv4Addr,
    pub mac: [u8; 6],
    pub ipv4: Vec<Ipv4Addr>,
}

/// Everything the pipeline needs about one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostState {
    /// The trunk port towards the physical network (VLAN networks leave here, tagged).
    pub uplink_port: Option<u32>,
    /// The VXLAN port (`remote_ip=flow`, `key=flow`).
    pub tunnel_port: Option<u32>,
    pub networks: Vec<Network>,
    pub endpoints: Vec<Endpoint>,
    pub remote_endpoints: Vec<RemoteEndpoint>,
}

/// Why part of a state was left out of the compiled flows. The rest compiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    UnknownNetwork {
        endpoint: String,
        network: String,
    },
    DuplicateNetwork {
        network: String,
    },
    SegmentInUse {
        network: String,
        other: String,
    },
    PortInUse {
        endpoint: String,
        other: String,
        ofport: u32,
    },
    MacInUse {
        endpoint: String,
        other: String,
    },
    AddressInUse {
        endpoint: String,
        other: String,
        address: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::UnknownNetwork { endpoint, network } => {
                write!(f, "endpoint {endpoint}: network {network} is not known")
            }
            Problem::DuplicateNetwork { network } => {
                write!(f, "network {network} is given twice; the second is ignored")
            }
            Problem::SegmentInUse { network, other } => write!(
                f,
                "network {network} has the same segment as {other}; {network} is left out"
            ),
            Problem::PortInUse {
                endpoint,
                other,
                ofport,
            } => write!(
                f,
                "endpoint {endpoint}: OpenFlow port {ofport} already belongs to {other}"
            ),
            Problem::MacInUse { endpoint, other } => write!(
                f,
                "endpoint {endpoint}: its MAC is already used by {other} in the same network"
            ),
            Problem::AddressInUse {
                endpoint,
                other,
                address,
            } => write!(
                f,
                "endpoint {endpoint}: address {address} is already used by {other} in the same network"
            ),
        }
    }
}

pub fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

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
    /// The conntrack zone of its tenant (see [`tenant_zones`]). It is also the tenant's routing
    /// domain: routing between networks happens only between networks of one zone.
    pub zone: u16,
    /// Its IPv4 subnet (address, prefix length), where known.
    pub subnet: Option<(Ipv4Addr, u8)>,
    /// Its endpoints reach every host's address and every host reaches them, through each
    /// host's gateway port; traffic to the service CIDRs goes through the host's stack.
    pub host_access: bool,
    /// Traffic to addresses outside the tenant leaves through the host's gateway port, its
    /// source translated (to the tenant's transit address here, to the host's address by the
    /// host).
    pub external: bool,
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
    /// The key of its endpoint group (`tenant:group`), if it is in one.
    pub group: Option<String>,
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
    /// The key of its endpoint group, if it is in one.
    pub group: Option<String>,
}

/// An endpoint group: the policies that govern its endpoints' traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointGroup {
    /// `tenant:group`, the cookie key.
    pub key: String,
    /// The key of the group's network.
    pub network: String,
    /// Keys of the [`Policy`]s attached to it (`tenant:policy`).
    pub policies: Vec<String>,
    /// Only what rules allow passes, both ways; otherwise what no rule denies passes.
    pub default_deny: bool,
    /// Bandwidth limit and DSCP marking for each of its endpoints.
    pub profile: Option<Profile>,
    /// Its default deny logs what it drops (the first packet of each connection, to netplugin
    /// through the verdict meter: [`crate::logging`]).
    pub log: bool,
}

/// A netprofile as the pipeline applies it to every endpoint of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Profile {
    /// Rate of what one endpoint may send, kilobits per second (a meter per endpoint).
    pub rate_kbps: Option<u32>,
    /// Burst, kilobits (0: OVS's default).
    pub burst_kb: u32,
    /// DSCP set on every IPv4 packet an endpoint sends.
    pub dscp: Option<u8>,
}

/// A named set of rules, attachable to groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `tenant:policy`.
    pub key: String,
    pub rules: Vec<Rule>,
}

/// Which way a rule looks: at connections arriving at the group's endpoints, or leaving them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Direction {
    #[default]
    In,
    Out,
}

/// The other end of a rule's connections.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Peer {
    #[default]
    Any,
    /// The endpoints of a group (`tenant:group`), on any host, known by their addresses.
    Group(String),
    /// Addresses in a prefix (a network's subnet, or a CIDR).
    Cidr(Ipv4Addr, u8),
}

/// One rule of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// `tenant:policy:rule`, the cookie key.
    pub key: String,
    /// 1 (lowest) to 100 (highest); at equal priority a deny wins.
    pub priority: u8,
    pub direction: Direction,
    pub peer: Peer,
    /// IP protocol (6 tcp, 17 udp, 1 icmp, ...); None: any.
    pub protocol: Option<u8>,
    /// Destination ports, first to last (tcp and udp only); None: any.
    pub ports: Option<(u16, u16)>,
    pub allow: bool,
    /// Log what it decides: the first packet of each connection it matches goes to netplugin
    /// too (through the verdict meter, [`crate::logging`]); the packet's fate is the same.
    pub log: bool,
}

/// A conntrack zone per tenant: stable, the same on every host, from a hash of the name; a
/// clash (rare: 16 bits) moves the later name (in sorted order) to the next free zone.
pub fn tenant_zones<'a>(
    tenants: impl IntoIterator<Item = &'a str>,
) -> std::collections::BTreeMap<String, u16> {
    let mut names: Vec<&str> = tenants.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    let mut used = std::collections::HashSet::new();
    let mut out = std::collections::BTreeMap::new();
    for n in names {
        // Zones 1..=65000; 0 is conntrack's default zone, the top is left for others.
        let mut z = (crate::layout::fnv1a(n) % 65000) as u16 + 1;
        // The zone also names the tenant's transit address (169.254.Z/16); the one that would
        // be 169.254.169.254, the cloud metadata address, is never handed out.
        while z == crate::layout::METADATA_ZONE || !used.insert(z) {
            z = z % 65000 + 1;
        }
        out.insert(n.to_string(), z);
    }
    out
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
    /// Every endpoint group of the tenants of these networks (peers included).
    pub groups: Vec<EndpointGroup>,
    pub policies: Vec<Policy>,
    /// The port into this host's own IP stack, if it has one (host access and egress).
    pub gateway_port: Option<GatewayPort>,
    /// The addresses of the other hosts (their VTEPs): host-access networks reach them through
    /// the tunnel or the uplink, at their gateway port's MAC ([`crate::layout::host_gateway_mac`]).
    pub other_hosts: Vec<Ipv4Addr>,
    /// Service ranges (Kubernetes Services): host-access networks send traffic to them into the
    /// host's stack, where kube-proxy's rules apply.
    pub service_cidrs: Vec<(Ipv4Addr, u8)>,
}

/// The port between the bridge and this host's own IP stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayPort {
    pub ofport: u32,
    /// The MAC of the host's end ([`crate::layout::host_gateway_mac`] of `address`).
    pub mac: [u8; 6],
    /// This host's address (its VTEP address), which host-access networks reach here.
    pub address: Ipv4Addr,
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
    UnknownGroup {
        endpoint: String,
        group: String,
    },
    UnknownPolicy {
        group: String,
        policy: String,
    },
    /// Two endpoints of one tenant, in different networks, with one address: routing within the
    /// tenant reaches only the first.
    RouteInUse {
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
            Problem::UnknownGroup { endpoint, group } => write!(
                f,
                "endpoint {endpoint}: group {group} is not known in its network; it is treated as in no group"
            ),
            Problem::UnknownPolicy { group, policy } => {
                write!(f, "group {group}: policy {policy} is not known; left out")
            }
            Problem::RouteInUse {
                endpoint,
                other,
                address,
            } => write!(
                f,
                "endpoint {endpoint}: address {address} is also {other}'s, in another network of the tenant; routing reaches only {other}"
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

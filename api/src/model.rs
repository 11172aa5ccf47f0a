//! The intent objects, with Contiv's REST JSON field names (contivmodel), so that a Contiv user's
//! JSON and scripts work as they are. Values are typed: a `Vlan` can only hold 1–4094, a `Vni`
//! only 1–16777215, a subnet only a valid CIDR; what serde cannot refuse, `validate` does.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Implements `Serialize`/`Deserialize` through `Display`/`FromStr`, so that the JSON form of a
/// value is the same text a person types on the command line.
macro_rules! serde_via_str {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A VLAN id, 1–4094.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Vlan(u16);

impl Vlan {
    pub fn new(id: u32) -> Result<Vlan, String> {
        if (1..=4094).contains(&id) {
            Ok(Vlan(id as u16))
        } else {
            Err(format!("VLAN id {id} is outside 1-4094"))
        }
    }
    pub fn get(self) -> u16 {
        self.0
    }
}

/// A VXLAN network identifier, 1–16777215.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Vni(u32);

impl Vni {
    pub fn new(id: u32) -> Result<Vni, String> {
        if (1..=0xff_ffff).contains(&id) {
            Ok(Vni(id))
        } else {
            Err(format!("VNI {id} is outside 1-16777215"))
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

/// How a network's packets are carried between hosts.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Encap {
    #[default]
    Vlan,
    Vxlan,
}

impl fmt::Display for Encap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encap::Vlan => "vlan",
            Encap::Vxlan => "vxlan",
        })
    }
}

impl FromStr for Encap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "vlan" => Ok(Encap::Vlan),
            "vxlan" => Ok(Encap::Vxlan),
            other => Err(format!("encap \"{other}\" is neither vlan nor vxlan")),
        }
    }
}

/// A range of ids, as Contiv writes them: `"1-4094"`, `"100-200,300"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdRanges(pub Vec<(u32, u32)>);

impl IdRanges {
    pub fn contains(&self, id: u32) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&id))
    }
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|(a, b)| *a..=*b)
    }
}

impl fmt::Display for IdRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl FromStr for IdRanges {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let a: u32 = a
                .trim()
                .parse()
                .map_err(|_| format!("\"{part}\" is not a number or a range a-b"))?;
            let b: u32 = b
                .trim()
                .parse()
                .map_err(|_| format!("\"{part}\" is not a number or a range a-b"))?;
            if a > b {
                return Err(format!("range \"{part}\" ends before it starts"));
            }
            v.push((a, b));
        }
        if v.is_empty() {
            return Err("empty range".into());
        }
        Ok(IdRanges(v))
    }
}
serde_via_str!(IdRanges);

/// An IPv4 subnet, optionally with the range of addresses to allocate from, as Contiv writes it:
/// `"10.1.1.0/24"` or `"10.1.1.10-10.1.1.100/24"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    pub net: Ipv4Net,
    pub range: Option<(Ipv4Addr, Ipv4Addr)>,
}

impl Subnet {
    /// Addresses endpoints may get: the range if given, else the subnet less its network and
    /// broadcast addresses.
    pub fn usable(&self) -> (Ipv4Addr, Ipv4Addr) {
        if let Some(r) = self.range {
            return r;
        }
        let n = u32::from(self.net.network());
        let b = u32::from(self.net.broadcast());
        if self.net.prefix_len() >= 31 {
            (Ipv4Addr::from(n), Ipv4Addr::from(b))
        } else {
            (Ipv4Addr::from(n + 1), Ipv4Addr::from(b - 1))
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.range {
            None => write!(f, "{}", self.net),
            Some((a, b)) => write!(f, "{a}-{b}/{}", self.net.prefix_len()),
        }
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("\"{s}\" is not a valid IPv4 CIDR (like 10.1.0.0/24 or 10.1.0.10-10.1.0.99/24)")
        };
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        let (start, range) = match addr.split_once('-') {
            None => (addr.parse::<Ipv4Addr>().map_err(|_| bad())?, None),
            Some((a, b)) => {
                let a: Ipv4Addr = a.parse().map_err(|_| bad())?;
                let b: Ipv4Addr = b.parse().map_err(|_| bad())?;
                (a, Some((a, b)))
            }
        };
        let net = Ipv4Net::new(start, len).map_err(|_| bad())?.trunc();
        if let Some((a, b)) = range {
            if !net.contains(&b) || u32::from(a) > u32::from(b) {
                return Err(format!(
                    "range in \"{s}\" must lie within the subnet and go upwards"
                ));
            }
        }
        Ok(Subnet { net, range })
    }
}
serde_via_str!(Subnet);

/// `global`: the cluster-wide settings (there is one, named "global").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Global {
    #[serde(default = "global_name")]
    pub name: String,
    /// VLAN ids networks may use.
    #[serde(default = "default_vlans")]
    pub vlans: IdRanges,
    /// VNIs networks may use.
    #[serde(default = "default_vxlans")]
    pub vxlans: IdRanges,
    /// `bridge` or `routing`.
    #[serde(default = "default_fwd_mode")]
    pub fwd_mode: String,
    /// `proxy` (ARP answered by flows) or `flood`.
    #[serde(default = "default_arp_mode")]
    pub arp_mode: String,
    #[serde(default = "default_pvt_subnet")]
    pub pvt_subnet: Subnet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_infra_type: Option<String>,
    /// Weft: the cluster's Kubernetes Service ranges (`serviceCidrs`). Traffic from containers
    /// of `hostAccess` networks to these addresses goes through the host's own IP stack, where
    /// kube-proxy's rules translate it; no host-access network's subnet may overlap one.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "cidr_list"
    )]
    pub service_cidrs: Vec<Ipv4Net>,
}

/// A list of IPv4 CIDRs, each refused with its text when it is not one (ipnet's own error
/// names neither).
fn cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Ipv4Net>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            s.parse().map_err(|_| {
                serde::de::Error::custom(format!(
                    "serviceCidrs: \"{s}\" is not an IPv4 CIDR (like 10.96.0.0/12)"
                ))
            })
        })
        .collect()
}

fn global_name() -> String {
    "global".into()
}
fn default_vlans() -> IdRanges {
    IdRanges(vec![(1, 4094)])
}
fn default_vxlans() -> IdRanges {
    IdRanges(vec![(1, 10000)])
}
fn default_fwd_mode() -> String {
    "bridge".into()
}
fn default_arp_mode() -> String {
    "proxy".into()
}
fn default_pvt_subnet() -> Subnet {
    "172.19.0.0/16".parse().expect("a valid default")
}

impl Default for Global {
    fn default() -> Self {
        Global {
            name: global_name(),
            vlans: default_vlans(),
            vxlans: default_vxlans(),
            fwd_mode: default_fwd_mode(),
            arp_mode: default_arp_mode(),
            pvt_subnet: default_pvt_subnet(),
            network_infra_type: None,
            service_cidrs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    pub tenant_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_network: Option<String>,
}

/// A network's packet tag: a number, or left for netmaster to allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PktTag {
    #[default]
    Allocate,
    Tag(u32),
}

impl Serialize for PktTag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PktTag::Allocate => s.serialize_u32(0),
            PktTag::Tag(t) => s.serialize_u32(*t),
        }
    }
}

impl<'de> Deserialize<'de> for PktTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u32),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(0) => Ok(PktTag::Allocate),
            Raw::N(n) => Ok(PktTag::Tag(n)),
            Raw::S(s) if s == "allocate" || s.is_empty() => Ok(PktTag::Allocate),
            Raw::S(s) => s.parse().map(PktTag::Tag).map_err(|_| {
                serde::de::Error::custom(format!(
                    "pktTag \"{s}\" is neither a number nor \"allocate\""
                ))
            }),
        }
    }
}

/// `data` networks carry containers; `infra` networks carry host traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NwType {
    #[default]
    Data,
    Infra,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    pub tenant_name: String,
    pub network_name: String,
    #[serde(default)]
    pub encap: Encap,
    #[serde(default)]
    pub pkt_tag: PktTag,
    pub subnet: Subnet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_subnet: Option<Ipv6Net>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_gateway: Option<std::net::Ipv6Addr>,
    #[serde(default)]
    pub nw_type: NwType,
    /// Contiv's configured tag for external integrations; kept, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfgd_tag: Option<String>,
    /// Weft (`hostAccess`): each host gets a gateway port from this network into its own IP
    /// stack. The network's containers reach every host's addresses and every host reaches
    /// them, without NAT; their traffic to the global `serviceCidrs` goes through the host's
    /// stack. Every host routes the subnet, so it may overlap no other `hostAccess` network's
    /// subnet, in any tenant, nor a service CIDR.
    #[serde(default, skip_serializing_if = "is_false")]
    pub host_access: bool,
    /// Weft (`external`): traffic from the network's containers to addresses outside the
    /// cluster leaves through the host, its source translated to the host's address. Subnets
    /// of `external` networks may overlap across tenants like any other.
    #[serde(default, skip_serializing_if = "is_false")]
    pub external: bool,
}

fn is_false(v: &bool) -> bool {
    !*v
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointGroup {
    pub tenant_name: String,
    pub group_name: String,
    pub network_name: String,
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_profile: Option<String>,
    /// Addresses of the network reserved for this group's endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_pool: Option<String>,
    /// Weft: only what rules allow reaches the group's endpoints.
    #[serde(default)]
    pub default_deny: bool,
    /// Weft: the default deny logs what it drops (the first packet of each connection, as a
    /// verdict record on the host's netplugin, rate-limited).
    #[serde(default, skip_serializing_if = "is_false")]
    pub log: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfgd_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ext_contracts_grps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetProfile {
    #[serde(rename = "tenantName")]
    pub tenant_name: String,
    #[serde(rename = "profileName")]
    pub profile_name: String,
    /// Like Contiv: "10Mbps", "1gbps", "500kbps".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<String>,
    /// Burst size in kilobytes.
    #[serde(default)]
    pub burst: u32,
    #[serde(rename = "DSCP", default)]
    pub dscp: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    pub tenant_name: String,
    pub policy_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    In,
    Out,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    #[default]
    Allow,
    Deny,
}

/// `tcp`, `udp`, `icmp`, an IP protocol number, or empty for any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    #[default]
    Any,
    Tcp,
    Udp,
    Icmp,
    Number(u8),
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Any => Ok(()),
            Protocol::Tcp => f.write_str("tcp"),
            Protocol::Udp => f.write_str("udp"),
            Protocol::Icmp => f.write_str("icmp"),
            Protocol::Number(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "" => Protocol::Any,
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "icmp" => Protocol::Icmp,
            n => Protocol::Number(n.parse().map_err(|_| {
                format!("protocol \"{n}\" is not tcp, udp, icmp or a number 0-255")
            })?),
        })
    }
}
serde_via_str!(Protocol);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub tenant_name: String,
    pub policy_name: String,
    pub rule_id: String,
    /// 1 (lowest) to 100 (highest).
    #[serde(default = "default_priority")]
    pub priority: u32,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from_endpoint_group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from_network: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from_ip_address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to_endpoint_group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to_network: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to_ip_address: String,
    #[serde(default)]
    pub protocol: Protocol,
    /// 0: any port.
    #[serde(default)]
    pub port: u32,
    /// Weft: the last port of a range starting at `port` (0: just `port`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub port_end: u32,
    #[serde(default)]
    pub action: RuleAction,
    /// Weft: log what the rule decides (the first packet of each connection it matches, as a
    /// verdict record on the host's netplugin, rate-limited); the packet's fate is the same.
    #[serde(default, skip_serializing_if = "is_false")]
    pub log: bool,
}

fn default_priority() -> u32 {
    1
}
fn is_zero(v: &u32) -> bool {
    *v == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppProfile {
    pub tenant_name: String,
    pub app_profile_name: String,
    #[serde(default)]
    pub endpoint_groups: Vec<String>,
}

/// The networks a pod gets, for CNI plugins that ask netmaster (weft-cni's `netmaster`
/// attachment backend): one interface per entry, the `master` one first, with the default route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodAttachment {
    pub pod_namespace: String,
    pub pod_name: String,
    pub attachments: Vec<PodNetwork>,
}

/// One interface of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodNetwork {
    pub tenant_name: String,
    pub network_name: String,
    /// Name inside the pod: eth0, net1, ...
    pub if_name: String,
    /// Empty: netmaster allocates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<Ipv4Addr>,
    #[serde(default)]
    pub master: bool,
}

/// A host running netplugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Node {
    pub name: String,
    pub vtep_ip: Ipv4Addr,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uplink: String,
    /// Where netplugin's inspect API listens (`ADDR:PORT`), reached by netmaster only; empty when
    /// it has none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub inspect: String,
}

/// A container's interface on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    pub endpoint_id: String,
    pub container: String,
    pub host: String,
    pub tenant_name: String,
    pub network_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group_name: String,
    pub interface_name: String,
    pub mac: String,
    pub ipv4: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<std::net::Ipv6Addr>,
    #[serde(default)]
    pub state: String,
}

/// The key of an object within its kind: `tenant`, `tenant:network`, `tenant:policy:rule`, ...
pub trait Keyed {
    /// The kind's name as the REST paths and errors use it.
    const KIND: &'static str;
    fn key(&self) -> String;
}

macro_rules! keyed {
    ($t:ty, $kind:literal, |$s:ident| $key:expr) => {
        impl Keyed for $t {
            const KIND: &'static str = $kind;
            fn key(&self) -> String {
                let $s = self;
                $key
            }
        }
    };
}

keyed!(Global, "global", |s| s.name.clone());
keyed!(Tenant, "tenant", |s| s.tenant_name.clone());
keyed!(Network, "network", |s| format!(
    "{}:{}",
    s.tenant_name, s.network_name
));
keyed!(EndpointGroup, "endpointGroup", |s| format!(
    "{}:{}",
    s.tenant_name, s.group_name
));
keyed!(NetProfile, "netprofile", |s| format!(
    "{}:{}",
    s.tenant_name, s.profile_name
));
keyed!(Policy, "policy", |s| format!(
    "{}:{}",
    s.tenant_name, s.policy_name
));
keyed!(Rule, "rule", |s| format!(
    "{}:{}:{}",
    s.tenant_name, s.policy_name, s.rule_id
));
keyed!(AppProfile, "appProfile", |s| format!(
    "{}:{}",
    s.tenant_name, s.app_profile_name
));
keyed!(PodAttachment, "podAttachment", |s| format!(
    "{}:{}",
    s.pod_namespace, s.pod_name
));
keyed!(Node, "node", |s| s.name.clone());
keyed!(Endpoint, "endpoint", |s| s.endpoint_id.clone());

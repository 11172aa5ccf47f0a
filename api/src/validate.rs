//! Validation: pure functions that return every mistake found, each naming the object, the field
//! and what to do, so that nothing invalid is ever stored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::model::*;
use crate::state::State;

/// One mistake: `network "blue:orange": gateway: 10.2.0.1 is outside subnet 10.1.0.0/24`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub kind: &'static str,
    pub key: String,
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} \"{}\": {}: {}",
            self.kind, self.key, self.field, self.message
        )
    }
}

/// Every error of a failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

struct Errors(Vec<ValidationError>);

impl Errors {
    fn add<T: Keyed>(&mut self, obj: &T, field: &'static str, message: impl Into<String>) {
        self.0.push(ValidationError {
            kind: T::KIND,
            key: obj.key(),
            field,
            message: message.into(),
        });
    }
}

/// Names are what keys are made of: letters, digits, `-`, `_`, `.`; 1 to 64 of them.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("\"{name}\" must be 1 to 64 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "\"{name}\" has '{c}'; use letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

fn cidr(s: &str) -> Result<Ipv4Net, String> {
    s.parse::<Ipv4Net>()
        .or_else(|_| {
            s.parse::<Ipv4Addr>()
                .map(|a| Ipv4Net::new(a, 32).expect("/32 is valid"))
        })
        .map_err(|_| format!("\"{s}\" is not an IPv4 address or CIDR"))
}

/// Parses Contiv's bandwidth notation (`10Mbps`, `500kbps`, `1gbps`) into kilobits per second.
pub fn bandwidth_kbps(s: &str) -> Result<u64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bandwidth \"{s}\" must be a number with a unit, like 10Mbps"))?;
    let k = match unit.trim() {
        "kbps" | "k" => 1,
        "mbps" | "m" => 1_000,
        "gbps" | "g" => 1_000_000,
        other => {
            return Err(format!(
                "bandwidth unit \"{other}\" is not kbps, mbps or gbps"
            ))
        }
    };
    Ok(n * k)
}

fn overlap(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Checks the whole desired state: every object alone, and everything that relates objects
/// (references, uniqueness of tags, overlapping subnets within a tenant, and across tenants
/// for hostAccess networks).
pub fn validate_state(s: &State) -> Result<(), ValidationErrors> {
    let mut e = Errors(Vec::new());
    let g = &s.global;
    if !matches!(g.fwd_mode.as_str(), "bridge" | "routing") {
        e.add(
            g,
            "fwdMode",
            format!("\"{}\" is neither bridge nor routing", g.fwd_mode),
        );
    }
    if !matches!(g.arp_mode.as_str(), "proxy" | "flood") {
        e.add(
            g,
            "arpMode",
            format!("\"{}\" is neither proxy nor flood", g.arp_mode),
        );
    }
    for (a, b) in &g.vlans.0 {
        if *a < 1 || *b > 4094 {
            e.add(g, "vlans", format!("{a}-{b} leaves the VLAN ids 1-4094"));
        }
    }
    for (a, b) in &g.vxlans.0 {
        if *a < 1 || *b > 0xff_ffff {
            e.add(g, "vxlans", format!("{a}-{b} leaves the VNIs 1-16777215"));
        }
    }

    for t in s.tenants.values() {
        if let Err(m) = check_name(&t.tenant_name) {
            e.add(t, "tenantName", m);
        }
    }

    let mut tags: BTreeMap<(Encap, u32), String> = BTreeMap::new();
    for n in s.networks.values() {
        if let Err(m) = check_name(&n.network_name) {
            e.add(n, "networkName", m);
        }
        if !s.tenants.contains_key(&n.tenant_name) {
            e.add(
                n,
                "tenantName",
                format!(
                    "tenant \"{}\" does not exist; create it first",
                    n.tenant_name
                ),
            );
        }
        if let Some(gw) = n.gateway {
            if !n.subnet.net.contains(&gw) {
                e.add(
                    n,
                    "gateway",
                    format!("{gw} is outside subnet {}", n.subnet.net),
                );
            } else if n.subnet.net.prefix_len() < 31
                && (gw == n.subnet.net.network() || gw == n.subnet.net.broadcast())
            {
                e.add(
                    n,
                    "gateway",
                    format!(
                        "{gw} is the network or broadcast address of {}",
                        n.subnet.net
                    ),
                );
            }
        }
        if let (Some(gw), Some(net)) = (n.ipv6_gateway, n.ipv6_subnet) {
            if !net.contains(&gw) {
                e.add(n, "ipv6Gateway", format!("{gw} is outside subnet {net}"));
            }
        } else if n.ipv6_gateway.is_some() {
            e.add(n, "ipv6Gateway", "set without an ipv6Subnet");
        }
        if let PktTag::Tag(t) = n.pkt_tag {
            let (ok, range, what) = match n.encap {
                Encap::Vlan => (Vlan::new(t).is_ok(), &g.vlans, "VLAN id"),
                Encap::Vxlan => (Vni::new(t).is_ok(), &g.vxlans, "VNI"),
            };
            if !ok {
                let bounds = if n.encap == Encap::Vlan {
                    "1-4094"
                } else {
                    "1-16777215"
                };
                e.add(n, "pktTag", format!("{what} {t} is outside {bounds}"));
            } else if !range.contains(t) {
                e.add(n, "pktTag", format!("{what} {t} is outside the global range {range}; widen it with `netctl global set` or pick another"));
            }
            if let Some(other) = tags.insert((n.encap, t), n.key()) {
                e.add(
                    n,
                    "pktTag",
                    format!("{what} {t} is already used by network \"{other}\""),
                );
            }
        }
    }
    // Overlapping subnets within a tenant (across tenants they may overlap: that is the point).
    let nets: Vec<&Network> = s.networks.values().collect();
    for (i, a) in nets.iter().enumerate() {
        for b in &nets[i + 1..] {
            if a.tenant_name == b.tenant_name && overlap(a.subnet.net, b.subnet.net) {
                e.add(
                    *b,
                    "subnet",
                    format!(
                        "{} overlaps {} of network \"{}\" in the same tenant",
                        b.subnet.net,
                        a.subnet.net,
                        a.key()
                    ),
                );
            }
        }
    }
    // Every host routes the subnets of hostAccess networks through its gateway port, and a host
    // has one routing table: those subnets must be disjoint across all tenants, and disjoint
    // from the service ranges. (`external` alone puts no subnet in the host's table: egress
    // leaves the pipeline on a per-tenant transit address.)
    let routed: Vec<&Network> = nets.iter().copied().filter(|n| n.host_access).collect();
    for (i, a) in routed.iter().enumerate() {
        for b in &routed[i + 1..] {
            // Within a tenant an overlap is already refused above.
            if a.tenant_name != b.tenant_name && overlap(a.subnet.net, b.subnet.net) {
                e.add(
                    *b,
                    "subnet",
                    format!(
                        "{} overlaps {} of network \"{}\"; both have hostAccess, so every host \
                         routes both subnets, and a host has one routing table: it could not \
                         tell them apart; give one another subnet",
                        b.subnet.net,
                        a.subnet.net,
                        a.key(),
                    ),
                );
            }
        }
    }
    for c in &g.service_cidrs {
        if *c != c.trunc() {
            e.add(
                g,
                "serviceCidrs",
                format!("{c} has host bits set; write {}", c.trunc()),
            );
            continue;
        }
        for n in &routed {
            if overlap(*c, n.subnet.net) {
                e.add(
                    g,
                    "serviceCidrs",
                    format!(
                        "{c} overlaps subnet {} of hostAccess network \"{}\"; its containers' \
                         traffic to Service addresses goes through the host's stack, so their \
                         own addresses would be taken for Service addresses: give the network \
                         another subnet or change the service range",
                        n.subnet.net,
                        n.key(),
                    ),
                );
            }
        }
    }

    for p in s.netprofiles.values() {
        if let Err(m) = check_name(&p.profile_name) {
            e.add(p, "profileName", m);
        }
        if p.dscp > 63 {
            e.add(p, "DSCP", format!("{} is outside 0-63", p.dscp));
        }
        if let Some(bw) = &p.bandwidth {
            if let Err(m) = bandwidth_kbps(bw) {
                e.add(p, "bandwidth", m);
            }
        }
    }
    for p in s.policies.values() {
        if let Err(m) = check_name(&p.policy_name) {
            e.add(p, "policyName", m);
        }
        if !s.tenants.contains_key(&p.tenant_name) {
            e.add(
                p,
                "tenantName",
                format!("tenant \"{}\" does not exist", p.tenant_name),
            );
        }
    }
    for grp in s.groups.values() {
        if let Err(m) = check_name(&grp.group_name) {
            e.add(grp, "groupName", m);
        }
        let net_key = format!("{}:{}", grp.tenant_name, grp.network_name);
        if !s.networks.contains_key(&net_key) {
            e.add(
                grp,
                "networkName",
                format!("network \"{net_key}\" does not exist"),
            );
        }
        for pol in &grp.policies {
            if !s
                .policies
                .contains_key(&format!("{}:{pol}", grp.tenant_name))
            {
                e.add(
                    grp,
                    "policies",
                    format!(
                        "policy \"{pol}\" does not exist in tenant \"{}\"",
                        grp.tenant_name
                    ),
                );
            }
        }
        if let Some(np) = &grp.net_profile {
            if !s
                .netprofiles
                .contains_key(&format!("{}:{np}", grp.tenant_name))
            {
                e.add(
                    grp,
                    "netProfile",
                    format!(
                        "netprofile \"{np}\" does not exist in tenant \"{}\"",
                        grp.tenant_name
                    ),
                );
            }
        }
        if let (Some(pool), Some(net)) = (&grp.ip_pool, s.networks.get(&net_key)) {
            match pool.split_once('-') {
                Some((a, b)) => match (a.parse::<Ipv4Addr>(), b.parse::<Ipv4Addr>()) {
                    (Ok(a), Ok(b))
                        if net.subnet.net.contains(&a) && net.subnet.net.contains(&b) && a <= b => {
                    }
                    _ => e.add(
                        grp,
                        "ipPool",
                        format!("\"{pool}\" must be a range a-b within {}", net.subnet.net),
                    ),
                },
                None => e.add(
                    grp,
                    "ipPool",
                    format!("\"{pool}\" must be a range like 10.1.0.10-10.1.0.20"),
                ),
            }
        }
    }
    for r in s.rules.values() {
        let pol_key = format!("{}:{}", r.tenant_name, r.policy_name);
        if !s.policies.contains_key(&pol_key) {
            e.add(
                r,
                "policyName",
                format!("policy \"{pol_key}\" does not exist"),
            );
        }
        if !(1..=100).contains(&r.priority) {
            e.add(r, "priority", format!("{} is outside 1-100", r.priority));
        }
        if r.port > 65535 || r.port_end > 65535 {
            e.add(r, "port", "ports are 0-65535");
        }
        if r.port_end != 0 && r.port_end < r.port {
            e.add(
                r,
                "portEnd",
                format!("{} is below port {}", r.port_end, r.port),
            );
        }
        if (r.port != 0 || r.port_end != 0) && !matches!(r.protocol, Protocol::Tcp | Protocol::Udp)
        {
            e.add(r, "port", "a port needs protocol tcp or udp");
        }
        for (side, group, network, ip) in [
            (
                "from",
                &r.from_endpoint_group,
                &r.from_network,
                &r.from_ip_address,
            ),
            ("to", &r.to_endpoint_group, &r.to_network, &r.to_ip_address),
        ] {
            let set = [group, network, ip]
                .iter()
                .filter(|x| !x.is_empty())
                .count();
            if set > 1 {
                e.add(
                    r,
                    "direction",
                    format!("name one {side}-peer: an endpoint group, a network, or an IP address"),
                );
            }
            if !group.is_empty() && !s.groups.contains_key(&format!("{}:{group}", r.tenant_name)) {
                e.add(
                    r,
                    if side == "from" {
                        "fromEndpointGroup"
                    } else {
                        "toEndpointGroup"
                    },
                    format!(
                        "endpoint group \"{group}\" does not exist in tenant \"{}\"",
                        r.tenant_name
                    ),
                );
            }
            if !network.is_empty()
                && !s
                    .networks
                    .contains_key(&format!("{}:{network}", r.tenant_name))
            {
                e.add(
                    r,
                    if side == "from" {
                        "fromNetwork"
                    } else {
                        "toNetwork"
                    },
                    format!(
                        "network \"{network}\" does not exist in tenant \"{}\"",
                        r.tenant_name
                    ),
                );
            }
            if !ip.is_empty() {
                if let Err(m) = cidr(ip) {
                    e.add(
                        r,
                        if side == "from" {
                            "fromIpAddress"
                        } else {
                            "toIpAddress"
                        },
                        m,
                    );
                }
            }
        }
    }
    for a in s.app_profiles.values() {
        for grp in &a.endpoint_groups {
            if !s.groups.contains_key(&format!("{}:{grp}", a.tenant_name)) {
                e.add(
                    a,
                    "endpointGroups",
                    format!(
                        "endpoint group \"{grp}\" does not exist in tenant \"{}\"",
                        a.tenant_name
                    ),
                );
            }
        }
    }
    for p in s.pod_attachments.values() {
        if p.pod_namespace.is_empty() || p.pod_name.is_empty() {
            e.add(p, "podName", "podNamespace and podName are required");
        }
        if p.attachments.is_empty() {
            e.add(p, "attachments", "names no network");
        }
        if p.attachments.iter().filter(|a| a.master).count() > 1 {
            e.add(
                p,
                "attachments",
                "more than one entry says \"master\": true",
            );
        }
        let mut names = BTreeSet::new();
        for a in &p.attachments {
            if a.if_name.is_empty() || a.if_name.len() > 15 || a.if_name.contains(['/', ' ', ':']) {
                e.add(
                    p,
                    "ifName",
                    format!("\"{}\" is not an interface name", a.if_name),
                );
            } else if !names.insert(a.if_name.as_str()) {
                e.add(p, "ifName", format!("\"{}\" is named twice", a.if_name));
            }
            let key = format!("{}:{}", a.tenant_name, a.network_name);
            match s.networks.get(&key) {
                None => e.add(
                    p,
                    "networkName",
                    format!(
                        "network \"{}\" does not exist in tenant \"{}\"",
                        a.network_name, a.tenant_name
                    ),
                ),
                Some(n) => {
                    if let Some(ip) = a.ip_address {
                        if !n.subnet.net.contains(&ip) {
                            e.add(
                                p,
                                "ipAddress",
                                format!(
                                    "{ip} is outside subnet {} of network \"{key}\"",
                                    n.subnet.net
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
    if e.0.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(e.0))
    }
}

/// What operational state refers to, for checks before deleting intent.
#[derive(Debug, Default)]
pub struct InUse {
    /// Network keys (`tenant:network`) with endpoints.
    pub networks: BTreeSet<String>,
    /// Group keys (`tenant:group`) with endpoints.
    pub groups: BTreeSet<String>,
}

impl InUse {
    pub fn from_endpoints<'a>(eps: impl IntoIterator<Item = &'a Endpoint>) -> Self {
        let mut u = InUse::default();
        for ep in eps {
            u.networks
                .insert(format!("{}:{}", ep.tenant_name, ep.network_name));
            if !ep.group_name.is_empty() {
                u.groups
                    .insert(format!("{}:{}", ep.tenant_name, ep.group_name));
            }
        }
        u
    }
}

/// Refuses to remove from `old` what `new` no longer has while endpoints still use it.
pub fn check_removals(old: &State, new: &State, in_use: &InUse) -> Result<(), ValidationErrors> {
    let mut e = Errors(Vec::new());
    for (k, n) in &old.networks {
        if !new.networks.contains_key(k) && in_use.networks.contains(k) {
            e.add(n, "networkName", "still has endpoints; remove them first");
        }
    }
    for (k, g) in &old.groups {
        if !new.groups.contains_key(k) && in_use.groups.contains(k) {
            e.add(g, "groupName", "still has endpoints; remove them first");
        }
    }
    if e.0.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(e.0))
    }
}

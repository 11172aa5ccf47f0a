//! Validation: pure functions that return every mistake found, each naming the object, the field
//! and what to do, so that nothing invalid is ever stored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::model::*;
use crate::state::{Edit, Kind, Object, State};

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

fn err<T: Keyed>(obj: &T, field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        kind: T::KIND,
        key: obj.key(),
        field,
        message: message.into(),
    }
}

impl Errors {
    fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }

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

/// The lookups validation makes in the state it judges: the whole [`State`], or the state a
/// single change leads to ([`validate_edit`]).
pub trait Lookup {
    fn global(&self) -> &Global;
    fn tenant(&self, key: &str) -> Option<&Tenant>;
    fn network(&self, key: &str) -> Option<&Network>;
    fn group(&self, key: &str) -> Option<&EndpointGroup>;
    fn netprofile(&self, key: &str) -> Option<&NetProfile>;
    fn policy(&self, key: &str) -> Option<&Policy>;
    fn rule(&self, key: &str) -> Option<&Rule>;
    fn app_profile(&self, key: &str) -> Option<&AppProfile>;
    fn pod_attachment(&self, key: &str) -> Option<&PodAttachment>;
}

impl Lookup for State {
    fn global(&self) -> &Global {
        &self.global
    }
    fn tenant(&self, key: &str) -> Option<&Tenant> {
        self.tenants.get(key)
    }
    fn network(&self, key: &str) -> Option<&Network> {
        self.networks.get(key)
    }
    fn group(&self, key: &str) -> Option<&EndpointGroup> {
        self.groups.get(key)
    }
    fn netprofile(&self, key: &str) -> Option<&NetProfile> {
        self.netprofiles.get(key)
    }
    fn policy(&self, key: &str) -> Option<&Policy> {
        self.policies.get(key)
    }
    fn rule(&self, key: &str) -> Option<&Rule> {
        self.rules.get(key)
    }
    fn app_profile(&self, key: &str) -> Option<&AppProfile> {
        self.app_profiles.get(key)
    }
    fn pod_attachment(&self, key: &str) -> Option<&PodAttachment> {
        self.pod_attachments.get(key)
    }
}

// The checks of one object against the rest of the state (references, ranges), without the
// checks that relate objects by value (unique tags, overlapping subnets): both
// `validate_state` and `validate_edit` use these, so the two can only agree.

fn check_global(g: &Global, e: &mut Errors) {
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
}

fn check_tenant(t: &Tenant, e: &mut Errors) {
    if let Err(m) = check_name(&t.tenant_name) {
        e.add(t, "tenantName", m);
    }
}

fn tag_what(encap: Encap) -> &'static str {
    match encap {
        Encap::Vlan => "VLAN id",
        Encap::Vxlan => "VNI",
    }
}

fn check_network<L: Lookup + ?Sized>(n: &Network, s: &L, e: &mut Errors) {
    let g = s.global();
    if let Err(m) = check_name(&n.network_name) {
        e.add(n, "networkName", m);
    }
    if s.tenant(&n.tenant_name).is_none() {
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
        let what = tag_what(n.encap);
        let (ok, range) = match n.encap {
            Encap::Vlan => (Vlan::new(t).is_ok(), &g.vlans),
            Encap::Vxlan => (Vni::new(t).is_ok(), &g.vxlans),
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
    }
}

/// `n` has the packet tag network `other` has.
fn tag_taken(n: &Network, t: u32, other: &str) -> ValidationError {
    err(
        n,
        "pktTag",
        format!(
            "{} {t} is already used by network \"{other}\"",
            tag_what(n.encap)
        ),
    )
}

/// `b`'s subnet overlaps `a`'s, in the same tenant.
fn overlap_in_tenant(b: &Network, a: &Network) -> ValidationError {
    err(
        b,
        "subnet",
        format!(
            "{} overlaps {} of network \"{}\" in the same tenant",
            b.subnet.net,
            a.subnet.net,
            a.key()
        ),
    )
}

/// `b`'s subnet overlaps `a`'s, both with hostAccess.
fn overlap_host_access(b: &Network, a: &Network) -> ValidationError {
    err(
        b,
        "subnet",
        format!(
            "{} overlaps {} of network \"{}\"; both have hostAccess, so every host \
             routes both subnets, and a host has one routing table: it could not \
             tell them apart; give one another subnet",
            b.subnet.net,
            a.subnet.net,
            a.key(),
        ),
    )
}

fn service_host_bits(g: &Global, c: &Ipv4Net) -> ValidationError {
    err(
        g,
        "serviceCidrs",
        format!("{c} has host bits set; write {}", c.trunc()),
    )
}

fn service_overlap(g: &Global, c: &Ipv4Net, n: &Network) -> ValidationError {
    err(
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
    )
}

fn check_netprofile(p: &NetProfile, e: &mut Errors) {
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

fn check_policy<L: Lookup + ?Sized>(p: &Policy, s: &L, e: &mut Errors) {
    if let Err(m) = check_name(&p.policy_name) {
        e.add(p, "policyName", m);
    }
    if s.tenant(&p.tenant_name).is_none() {
        e.add(
            p,
            "tenantName",
            format!("tenant \"{}\" does not exist", p.tenant_name),
        );
    }
}

fn check_group<L: Lookup + ?Sized>(grp: &EndpointGroup, s: &L, e: &mut Errors) {
    if let Err(m) = check_name(&grp.group_name) {
        e.add(grp, "groupName", m);
    }
    if grp.log && !grp.default_deny {
        e.add(
            grp,
            "log",
            "only a default deny is logged: log needs defaultDeny (log the rules instead)",
        );
    }
    let net_key = format!("{}:{}", grp.tenant_name, grp.network_name);
    let net = s.network(&net_key);
    if net.is_none() {
        e.add(
            grp,
            "networkName",
            format!("network \"{net_key}\" does not exist"),
        );
    }
    for pol in &grp.policies {
        if s.policy(&format!("{}:{pol}", grp.tenant_name)).is_none() {
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
        if s.netprofile(&format!("{}:{np}", grp.tenant_name)).is_none() {
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
    if let (Some(pool), Some(net)) = (&grp.ip_pool, net) {
        match pool.split_once('-') {
            Some((a, b)) => match (a.parse::<Ipv4Addr>(), b.parse::<Ipv4Addr>()) {
                (Ok(a), Ok(b))
                    if net.subnet.net.contains(&a) && net.subnet.net.contains(&b) && a <= b => {}
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

fn check_rule<L: Lookup + ?Sized>(r: &Rule, s: &L, e: &mut Errors) {
    let pol_key = format!("{}:{}", r.tenant_name, r.policy_name);
    if s.policy(&pol_key).is_none() {
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
    if (r.port != 0 || r.port_end != 0) && !matches!(r.protocol, Protocol::Tcp | Protocol::Udp) {
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
        if !group.is_empty() && s.group(&format!("{}:{group}", r.tenant_name)).is_none() {
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
        if !network.is_empty() && s.network(&format!("{}:{network}", r.tenant_name)).is_none() {
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

fn check_app_profile<L: Lookup + ?Sized>(a: &AppProfile, s: &L, e: &mut Errors) {
    for grp in &a.endpoint_groups {
        if s.group(&format!("{}:{grp}", a.tenant_name)).is_none() {
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

fn check_pod_attachment<L: Lookup + ?Sized>(p: &PodAttachment, s: &L, e: &mut Errors) {
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
        match s.network(&key) {
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

/// The checks of one object alone and of the references it makes.
fn check_object<L: Lookup + ?Sized>(o: &Object, s: &L, e: &mut Errors) {
    match o {
        Object::Global(g) => check_global(g, e),
        Object::Tenant(t) => check_tenant(t, e),
        Object::Network(n) => check_network(n, s, e),
        Object::Group(g) => check_group(g, s, e),
        Object::NetProfile(p) => check_netprofile(p, e),
        Object::Policy(p) => check_policy(p, s, e),
        Object::Rule(r) => check_rule(r, s, e),
        Object::AppProfile(a) => check_app_profile(a, s, e),
        Object::PodAttachment(p) => check_pod_attachment(p, s, e),
    }
}

/// The objects `o` names, whose existence (and, for networks, subnet) its validity depends on:
/// what [`validate_edit`] rechecks when one of them changes or goes.
pub fn references(o: &Object) -> Vec<(Kind, String)> {
    let mut v = Vec::new();
    match o {
        Object::Global(_) | Object::Tenant(_) | Object::NetProfile(_) => {}
        Object::Network(n) => v.push((Kind::Tenant, n.tenant_name.clone())),
        Object::Policy(p) => v.push((Kind::Tenant, p.tenant_name.clone())),
        Object::Group(g) => {
            let t = &g.tenant_name;
            v.push((Kind::Network, format!("{t}:{}", g.network_name)));
            v.extend(
                g.policies
                    .iter()
                    .map(|p| (Kind::Policy, format!("{t}:{p}"))),
            );
            v.extend(
                g.net_profile
                    .iter()
                    .map(|p| (Kind::NetProfile, format!("{t}:{p}"))),
            );
        }
        Object::Rule(r) => {
            let t = &r.tenant_name;
            v.push((Kind::Policy, format!("{t}:{}", r.policy_name)));
            for g in [&r.from_endpoint_group, &r.to_endpoint_group] {
                if !g.is_empty() {
                    v.push((Kind::Group, format!("{t}:{g}")));
                }
            }
            for n in [&r.from_network, &r.to_network] {
                if !n.is_empty() {
                    v.push((Kind::Network, format!("{t}:{n}")));
                }
            }
        }
        Object::AppProfile(a) => v.extend(
            a.endpoint_groups
                .iter()
                .map(|g| (Kind::Group, format!("{}:{g}", a.tenant_name))),
        ),
        Object::PodAttachment(p) => v.extend(p.attachments.iter().map(|a| {
            (
                Kind::Network,
                format!("{}:{}", a.tenant_name, a.network_name),
            )
        })),
    }
    v.sort();
    v.dedup();
    v
}

/// Checks the whole desired state: every object alone, and everything that relates objects
/// (references, uniqueness of tags, overlapping subnets within a tenant, and across tenants
/// for hostAccess networks).
pub fn validate_state(s: &State) -> Result<(), ValidationErrors> {
    let mut e = Errors(Vec::new());
    let g = &s.global;
    check_global(g, &mut e);
    for t in s.tenants.values() {
        check_tenant(t, &mut e);
    }
    let mut tags: BTreeMap<(Encap, u32), String> = BTreeMap::new();
    for n in s.networks.values() {
        check_network(n, s, &mut e);
        if let PktTag::Tag(t) = n.pkt_tag {
            if let Some(other) = tags.insert((n.encap, t), n.key()) {
                e.0.push(tag_taken(n, t, &other));
            }
        }
    }
    // Overlapping subnets within a tenant (across tenants they may overlap: that is the point).
    let nets: Vec<&Network> = s.networks.values().collect();
    for (i, a) in nets.iter().enumerate() {
        for b in &nets[i + 1..] {
            if a.tenant_name == b.tenant_name && overlap(a.subnet.net, b.subnet.net) {
                e.0.push(overlap_in_tenant(b, a));
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
                e.0.push(overlap_host_access(b, a));
            }
        }
    }
    for c in &g.service_cidrs {
        if *c != c.trunc() {
            e.0.push(service_host_bits(g, c));
            continue;
        }
        for n in &routed {
            if overlap(*c, n.subnet.net) {
                e.0.push(service_overlap(g, c, n));
            }
        }
    }
    for p in s.netprofiles.values() {
        check_netprofile(p, &mut e);
    }
    for p in s.policies.values() {
        check_policy(p, s, &mut e);
    }
    for grp in s.groups.values() {
        check_group(grp, s, &mut e);
    }
    for r in s.rules.values() {
        check_rule(r, s, &mut e);
    }
    for a in s.app_profiles.values() {
        check_app_profile(a, s, &mut e);
    }
    for p in s.pod_attachments.values() {
        check_pod_attachment(p, s, &mut e);
    }
    e.into_result()
}

/// What [`validate_edit`] needs of the state a change applies to, beyond lookups: who names an
/// object, and indexes for the checks that relate objects by value. The state itself answers by
/// scanning (a reference for tests); netmaster keeps indexes.
pub trait Indexed: Lookup {
    /// The objects whose [`references`] name the object of `kind` under `key`.
    fn referrers(&self, kind: Kind, key: &str) -> Vec<(Kind, String)>;
    /// The networks with packet tag `tag` of `encap`.
    fn tag_holders(&self, encap: Encap, tag: u32) -> Vec<String>;
    /// The networks with a packet tag of `encap` in `lo..=hi`.
    fn tags_between(&self, encap: Encap, lo: u32, hi: u32) -> Vec<String>;
    /// The networks of `tenant` whose subnet overlaps `net`.
    fn overlapping_in_tenant(&self, tenant: &str, net: Ipv4Net) -> Vec<String>;
    /// The hostAccess networks, of any tenant, whose subnet overlaps `net`.
    fn overlapping_host_access(&self, net: Ipv4Net) -> Vec<String>;
}

impl Indexed for State {
    fn referrers(&self, kind: Kind, key: &str) -> Vec<(Kind, String)> {
        let target = (kind, key.to_string());
        self.objects()
            .filter(|o| references(o).contains(&target))
            .map(|o| (o.kind(), o.key()))
            .collect()
    }
    fn tag_holders(&self, encap: Encap, tag: u32) -> Vec<String> {
        self.tags_between(encap, tag, tag)
    }
    fn tags_between(&self, encap: Encap, lo: u32, hi: u32) -> Vec<String> {
        self.networks
            .values()
            .filter(|n| {
                n.encap == encap && matches!(n.pkt_tag, PktTag::Tag(t) if (lo..=hi).contains(&t))
            })
            .map(Keyed::key)
            .collect()
    }
    fn overlapping_in_tenant(&self, tenant: &str, net: Ipv4Net) -> Vec<String> {
        self.networks
            .values()
            .filter(|n| n.tenant_name == tenant && overlap(n.subnet.net, net))
            .map(Keyed::key)
            .collect()
    }
    fn overlapping_host_access(&self, net: Ipv4Net) -> Vec<String> {
        self.networks
            .values()
            .filter(|n| n.host_access && overlap(n.subnet.net, net))
            .map(Keyed::key)
            .collect()
    }
}

/// The state after `edit`, seen through `base`.
struct After<'a, I: ?Sized> {
    base: &'a I,
    edit: &'a Edit,
    kind: Kind,
    key: String,
}

macro_rules! after_get {
    ($f:ident, $t:ty, $kind:ident) => {
        fn $f(&self, key: &str) -> Option<&$t> {
            if self.kind == Kind::$kind && self.key == key {
                match self.edit {
                    Edit::Put(Object::$kind(v)) => Some(v),
                    _ => None,
                }
            } else {
                self.base.$f(key)
            }
        }
    };
}

impl<I: Lookup + ?Sized> Lookup for After<'_, I> {
    fn global(&self) -> &Global {
        match self.edit {
            Edit::Put(Object::Global(g)) => g,
            _ => self.base.global(),
        }
    }
    after_get!(tenant, Tenant, Tenant);
    after_get!(network, Network, Network);
    after_get!(group, EndpointGroup, Group);
    after_get!(netprofile, NetProfile, NetProfile);
    after_get!(policy, Policy, Policy);
    after_get!(rule, Rule, Rule);
    after_get!(app_profile, AppProfile, AppProfile);
    after_get!(pod_attachment, PodAttachment, PodAttachment);
}

impl<I: Lookup + ?Sized> After<'_, I> {
    fn object(&self, kind: Kind, key: &str) -> Option<Object> {
        Some(match kind {
            Kind::Global => Object::Global(self.global().clone()),
            Kind::Tenant => Object::Tenant(self.tenant(key)?.clone()),
            Kind::Network => Object::Network(self.network(key)?.clone()),
            Kind::Group => Object::Group(self.group(key)?.clone()),
            Kind::NetProfile => Object::NetProfile(self.netprofile(key)?.clone()),
            Kind::Policy => Object::Policy(self.policy(key)?.clone()),
            Kind::Rule => Object::Rule(self.rule(key)?.clone()),
            Kind::AppProfile => Object::AppProfile(self.app_profile(key)?.clone()),
            Kind::PodAttachment => Object::PodAttachment(self.pod_attachment(key)?.clone()),
        })
    }
}

/// Where `validate_state` reports an error: its sections, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Global,
    Tenants,
    Networks,
    OverlapInTenant,
    OverlapHostAccess,
    ServiceCidrs,
    NetProfiles,
    Policies,
    Groups,
    Rules,
    AppProfiles,
    PodAttachments,
}

fn section_of(kind: Kind) -> Section {
    match kind {
        Kind::Global => Section::Global,
        Kind::Tenant => Section::Tenants,
        Kind::Network => Section::Networks,
        Kind::NetProfile => Section::NetProfiles,
        Kind::Policy => Section::Policies,
        Kind::Group => Section::Groups,
        Kind::Rule => Section::Rules,
        Kind::AppProfile => Section::AppProfiles,
        Kind::PodAttachment => Section::PodAttachments,
    }
}

/// Errors with the place `validate_state` would report them in, so both list them alike.
#[derive(Default)]
struct Placed(Vec<((Section, String, String), ValidationError)>);

impl Placed {
    fn add(&mut self, at: (Section, String, String), e: ValidationError) {
        self.0.push((at, e));
    }
    fn into_result(mut self) -> Result<(), ValidationErrors> {
        // Stable: one object's own errors keep their order.
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        Errors(self.0.into_iter().map(|(_, e)| e).collect()).into_result()
    }
}

/// The ranges of ids outside `r` (within 0..=u32::MAX).
fn outside(r: &IdRanges) -> Vec<(u32, u32)> {
    let mut v = r.0.clone();
    v.sort_unstable();
    let mut gaps = Vec::new();
    let mut next: u64 = 0;
    for (a, b) in v {
        if u64::from(a) > next {
            gaps.push((next as u32, a - 1));
        }
        next = next.max(u64::from(b) + 1);
    }
    if next <= u64::from(u32::MAX) {
        gaps.push((next as u32, u32::MAX));
    }
    gaps
}

/// Checks one change against the state it applies to, looking only at what the change
/// touches: the object itself, the objects that name it, and (through `base`'s indexes) the
/// objects it could collide with. When `base` is valid, this gives exactly the errors that
/// `validate_state` gives for the state after the change, in the same order; netmaster's
/// tests compare the two on random changes.
pub fn validate_edit<I: Indexed + ?Sized>(base: &I, edit: &Edit) -> Result<(), ValidationErrors> {
    let after = After {
        base,
        edit,
        kind: edit.kind(),
        key: edit.key(),
    };
    let mut out = Placed::default();
    // The object itself and whatever names it, checked against the state after the change.
    let mut recheck: BTreeSet<(Kind, String)> =
        base.referrers(after.kind, &after.key).into_iter().collect();
    if matches!(edit, Edit::Put(_)) {
        recheck.insert((after.kind, after.key.clone()));
    }
    let g = after.global();
    if let Edit::Put(Object::Global(new)) = edit {
        // Networks whose tags the new ranges leave out.
        for (encap, range) in [(Encap::Vlan, &new.vlans), (Encap::Vxlan, &new.vxlans)] {
            for (lo, hi) in outside(range) {
                for k in base.tags_between(encap, lo, hi) {
                    recheck.insert((Kind::Network, k));
                }
            }
        }
        for (i, c) in new.service_cidrs.iter().enumerate() {
            let at = |k: &str| (Section::ServiceCidrs, format!("{i:010}"), k.to_string());
            if *c != c.trunc() {
                out.add(at(""), service_host_bits(new, c));
                continue;
            }
            for k in base.overlapping_host_access(*c) {
                if let Some(n) = after.network(&k) {
                    out.add(at(&k), service_overlap(new, c, n));
                }
            }
        }
    }
    for (kind, key) in &recheck {
        if let Some(o) = after.object(*kind, key) {
            let mut e = Errors(Vec::new());
            check_object(&o, &after, &mut e);
            for err in e.0 {
                out.add((section_of(*kind), key.clone(), String::new()), err);
            }
        }
    }
    if let Edit::Put(Object::Network(n)) = edit {
        let nk = &after.key;
        let net = n.subnet.net;
        let others = |keys: Vec<String>| -> Vec<&Network> {
            keys.iter()
                .filter(|k| *k != nk)
                .filter_map(|k| base.network(k))
                .collect()
        };
        // Reported on the later of the two in key order, naming the earlier.
        if let PktTag::Tag(t) = n.pkt_tag {
            for m in others(base.tag_holders(n.encap, t)) {
                let mk = m.key();
                let (on, err) = if mk < *nk {
                    (nk.clone(), tag_taken(n, t, &mk))
                } else {
                    (mk, tag_taken(m, t, nk))
                };
                // After the network's own errors, as in `validate_state`.
                out.add((Section::Networks, on, "~tag".into()), err);
            }
        }
        for m in others(base.overlapping_in_tenant(&n.tenant_name, net)) {
            let (a, b) = if m.key() < *nk { (m, n) } else { (n, m) };
            out.add(
                (Section::OverlapInTenant, a.key(), b.key()),
                overlap_in_tenant(b, a),
            );
        }
        if n.host_access {
            for m in others(base.overlapping_host_access(net)) {
                if m.tenant_name == n.tenant_name {
                    continue;
                }
                let (a, b) = if m.key() < *nk { (m, n) } else { (n, m) };
                out.add(
                    (Section::OverlapHostAccess, a.key(), b.key()),
                    overlap_host_access(b, a),
                );
            }
            for (i, c) in g.service_cidrs.iter().enumerate() {
                if *c == c.trunc() && overlap(*c, net) {
                    out.add(
                        (Section::ServiceCidrs, format!("{i:010}"), nk.clone()),
                        service_overlap(g, c, n),
                    );
                }
            }
        }
    }
    out.into_result()
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

/// The error for removing `o` while endpoints still use it (a network or a group).
pub fn in_use_error(o: &Object) -> ValidationError {
    match o {
        Object::Network(n) => err(n, "networkName", "still has endpoints; remove them first"),
        Object::Group(g) => err(g, "groupName", "still has endpoints; remove them first"),
        other => ValidationError {
            kind: other.kind().as_str(),
            key: other.key(),
            field: "name",
            message: "still has endpoints; remove them first".into(),
        },
    }
}

/// Refuses to remove from `old` what `new` no longer has while endpoints still use it.
pub fn check_removals(old: &State, new: &State, in_use: &InUse) -> Result<(), ValidationErrors> {
    let mut e = Errors(Vec::new());
    for (k, n) in &old.networks {
        if !new.networks.contains_key(k) && in_use.networks.contains(k) {
            e.0.push(in_use_error(&Object::Network(n.clone())));
        }
    }
    for (k, g) in &old.groups {
        if !new.groups.contains_key(k) && in_use.groups.contains(k) {
            e.0.push(in_use_error(&Object::Group(g.clone())));
        }
    }
    e.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(json: serde_json::Value) -> State {
        crate::state::Spec::from_json(&json.to_string())
            .unwrap()
            .to_state()
            .unwrap()
    }

    fn net(name: &str, subnet: &str) -> Object {
        Object::Network(
            serde_json::from_value(serde_json::json!({"tenantName": "blue",
                "networkName": name, "subnet": subnet, "pktTag": 7}))
            .unwrap(),
        )
    }

    /// `validate_edit` on a valid state gives what `validate_state` gives for the result.
    fn same(base: &State, edit: &Edit) -> Result<(), ValidationErrors> {
        let mut after = base.clone();
        after.apply(edit);
        let whole = validate_state(&after);
        assert_eq!(validate_edit(base, edit), whole, "{edit:?}");
        whole
    }

    #[test]
    fn a_change_is_judged_as_the_whole_state_would_be() {
        let base = state(serde_json::json!({
            "tenants": [{"tenantName": "blue"}],
            "networks": [{"tenantName": "blue", "networkName": "m", "subnet": "10.1.0.0/16", "pktTag": 7}],
            "policies": [{"tenantName": "blue", "policyName": "p"}],
            "endpointGroups": [{"tenantName": "blue", "groupName": "g", "networkName": "m", "policies": ["p"]}]
        }));
        validate_state(&base).unwrap();
        // Pairwise errors land on the later of the two in key order, naming the earlier.
        let e = same(&base, &Edit::Put(net("z", "10.1.2.0/24"))).unwrap_err();
        assert_eq!(
            e.0.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["blue:z", "blue:z"]
        );
        let e = same(&base, &Edit::Put(net("a", "10.1.2.0/24"))).unwrap_err();
        assert_eq!(
            e.0.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["blue:m", "blue:m"]
        );
        assert!(
            e.to_string().contains("already used by network \"blue:a\""),
            "{e}"
        );
        // Removing what a group names is an error of the group.
        let e = same(&base, &Edit::Delete(Kind::Policy, "blue:p".into())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "endpointGroup \"blue:g\": policies: policy \"p\" does not exist in tenant \"blue\""
        );
        // A global range that leaves a network's tag out is an error of the network.
        let mut g = base.global.clone();
        g.vlans = "100-200".parse().unwrap();
        let e = same(&base, &Edit::Put(Object::Global(g))).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "network \"blue:m\": pktTag: VLAN id 7 is outside the global range 100-200"
            ),
            "{e}"
        );
        same(&base, &Edit::Put(net("n", "10.2.0.0/16"))).unwrap_err(); // tag 7 again
        same(&base, &Edit::Delete(Kind::Group, "blue:g".into())).unwrap();
    }

    #[test]
    fn only_a_default_deny_is_logged_and_rules_say_log() {
        let spec = |group_log: bool, default_deny: bool| {
            state(serde_json::json!({
                "tenants": [{"tenantName": "blue"}],
                "networks": [{"tenantName": "blue", "networkName": "m", "subnet": "10.1.0.0/16", "pktTag": 7}],
                "policies": [{"tenantName": "blue", "policyName": "p"}],
                "rules": [{"tenantName": "blue", "policyName": "p", "ruleId": "1", "log": true}],
                "endpointGroups": [{"tenantName": "blue", "groupName": "g", "networkName": "m",
                    "policies": ["p"], "defaultDeny": default_deny, "log": group_log}]
            }))
        };
        let ok = spec(true, true);
        validate_state(&ok).unwrap();
        assert!(ok.rules.values().all(|r| r.log), "{:?}", ok.rules);
        assert!(ok.groups.values().all(|g| g.log));
        validate_state(&spec(false, false)).unwrap();
        let e = validate_state(&spec(true, false)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "endpointGroup \"blue:g\": log: only a default deny is logged: log needs defaultDeny (log the rules instead)"
        );
    }
}

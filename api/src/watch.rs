//! What netmaster's watch carries, on both ends: the objects a host receives (typed, one
//! protobuf message per kind), the unit each belongs to, and the digest of a unit's keys that
//! lets an agent resume without a new snapshot.
//!
//! Units (see `docs/netmaster.md`, "What a host receives"):
//! - `cluster`: the global settings, every tenant, every node;
//! - `tenant/T`: tenant T's rules and netprofiles;
//! - `net/T:N`: network T:N, its endpoint groups and its endpoints.

use std::fmt;
use std::net::Ipv4Addr;

use crate::model::*;
use crate::proto::agent as pb;

/// The unit holding the global settings, the tenants and the nodes.
pub const CLUSTER: &str = "cluster";

/// The unit of a tenant's rules and netprofiles.
pub fn tenant_unit(tenant: &str) -> String {
    format!("tenant/{tenant}")
}

/// The unit of a network (`tenant:network`), its groups and its endpoints.
pub fn net_unit(tenant: &str, network: &str) -> String {
    format!("net/{tenant}:{network}")
}

/// The tenant a unit belongs to (None for `cluster`).
pub fn unit_tenant(unit: &str) -> Option<&str> {
    if let Some(t) = unit.strip_prefix("tenant/") {
        return Some(t);
    }
    unit.strip_prefix("net/")?.split_once(':').map(|(t, _)| t)
}

/// The kinds a host receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Global,
    Tenant,
    Network,
    EndpointGroup,
    NetProfile,
    Rule,
    Node,
    Endpoint,
}

impl Kind {
    /// The kind's name as store keys and REST paths spell it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Global => Global::KIND,
            Kind::Tenant => Tenant::KIND,
            Kind::Network => Network::KIND,
            Kind::EndpointGroup => EndpointGroup::KIND,
            Kind::NetProfile => NetProfile::KIND,
            Kind::Rule => Rule::KIND,
            Kind::Node => Node::KIND,
            Kind::Endpoint => Endpoint::KIND,
        }
    }

    /// The kind a store key's kind segment names (None: not one a host receives).
    pub fn from_name(name: &str) -> Option<Kind> {
        [
            Kind::Global,
            Kind::Tenant,
            Kind::Network,
            Kind::EndpointGroup,
            Kind::NetProfile,
            Kind::Rule,
            Kind::Node,
            Kind::Endpoint,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    pub fn to_proto(self) -> pb::ObjectKind {
        match self {
            Kind::Global => pb::ObjectKind::Global,
            Kind::Tenant => pb::ObjectKind::Tenant,
            Kind::Network => pb::ObjectKind::Network,
            Kind::EndpointGroup => pb::ObjectKind::EndpointGroup,
            Kind::NetProfile => pb::ObjectKind::Netprofile,
            Kind::Rule => pb::ObjectKind::Rule,
            Kind::Node => pb::ObjectKind::Node,
            Kind::Endpoint => pb::ObjectKind::Endpoint,
        }
    }

    pub fn from_proto(k: pb::ObjectKind) -> Option<Kind> {
        Some(match k {
            pb::ObjectKind::Unspecified => return None,
            pb::ObjectKind::Global => Kind::Global,
            pb::ObjectKind::Tenant => Kind::Tenant,
            pb::ObjectKind::Network => Kind::Network,
            pb::ObjectKind::EndpointGroup => Kind::EndpointGroup,
            pb::ObjectKind::Netprofile => Kind::NetProfile,
            pb::ObjectKind::Rule => Kind::Rule,
            pb::ObjectKind::Node => Kind::Node,
            pb::ObjectKind::Endpoint => Kind::Endpoint,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One object a host receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    Global(Global),
    Tenant(Tenant),
    Network(Network),
    EndpointGroup(EndpointGroup),
    NetProfile(NetProfile),
    Rule(Rule),
    Node(Node),
    Endpoint(Endpoint),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Global(_) => Kind::Global,
            Object::Tenant(_) => Kind::Tenant,
            Object::Network(_) => Kind::Network,
            Object::EndpointGroup(_) => Kind::EndpointGroup,
            Object::NetProfile(_) => Kind::NetProfile,
            Object::Rule(_) => Kind::Rule,
            Object::Node(_) => Kind::Node,
            Object::Endpoint(_) => Kind::Endpoint,
        }
    }

    pub fn key(&self) -> String {
        match self {
            Object::Global(o) => o.key(),
            Object::Tenant(o) => o.key(),
            Object::Network(o) => o.key(),
            Object::EndpointGroup(o) => o.key(),
            Object::NetProfile(o) => o.key(),
            Object::Rule(o) => o.key(),
            Object::Node(o) => o.key(),
            Object::Endpoint(o) => o.key(),
        }
    }

    /// The unit the object belongs to.
    pub fn unit(&self) -> String {
        match self {
            Object::Global(_) | Object::Tenant(_) | Object::Node(_) => CLUSTER.to_string(),
            Object::Network(o) => net_unit(&o.tenant_name, &o.network_name),
            Object::EndpointGroup(o) => net_unit(&o.tenant_name, &o.network_name),
            Object::Endpoint(o) => net_unit(&o.tenant_name, &o.network_name),
            Object::NetProfile(o) => tenant_unit(&o.tenant_name),
            Object::Rule(o) => tenant_unit(&o.tenant_name),
        }
    }

    /// Reads an object of `kind` from its stored JSON.
    pub fn from_json(kind: Kind, json: &[u8]) -> Result<Object, serde_json::Error> {
        Ok(match kind {
            Kind::Global => Object::Global(serde_json::from_slice(json)?),
            Kind::Tenant => Object::Tenant(serde_json::from_slice(json)?),
            Kind::Network => Object::Network(serde_json::from_slice(json)?),
            Kind::EndpointGroup => Object::EndpointGroup(serde_json::from_slice(json)?),
            Kind::NetProfile => Object::NetProfile(serde_json::from_slice(json)?),
            Kind::Rule => Object::Rule(serde_json::from_slice(json)?),
            Kind::Node => Object::Node(serde_json::from_slice(json)?),
            Kind::Endpoint => Object::Endpoint(serde_json::from_slice(json)?),
        })
    }

    pub fn to_proto(&self) -> pb::Object {
        use pb::object::Kind as K;
        let kind = match self {
            Object::Global(o) => K::Global(global_to(o)),
            Object::Tenant(o) => K::Tenant(pb::Tenant {
                tenant_name: o.tenant_name.clone(),
                default_network: o.default_network.clone().unwrap_or_default(),
            }),
            Object::Network(o) => K::Network(network_to(o)),
            Object::EndpointGroup(o) => K::EndpointGroup(group_to(o)),
            Object::NetProfile(o) => K::Netprofile(pb::NetProfile {
                tenant_name: o.tenant_name.clone(),
                profile_name: o.profile_name.clone(),
                bandwidth: o.bandwidth.clone().unwrap_or_default(),
                burst: o.burst,
                dscp: o.dscp,
            }),
            Object::Rule(o) => K::Rule(rule_to(o)),
            Object::Node(o) => K::Node(pb::Node {
                name: o.name.clone(),
                vtep_ip: o.vtep_ip.to_string(),
                uplink: o.uplink.clone(),
                inspect: o.inspect.clone(),
            }),
            Object::Endpoint(o) => K::Endpoint(endpoint_to(o)),
        };
        pb::Object { kind: Some(kind) }
    }

    /// The object a message carries; an unreadable field is named in the error.
    pub fn from_proto(o: &pb::Object) -> Result<Object, String> {
        use pb::object::Kind as K;
        Ok(match o.kind.as_ref().ok_or("an object with no kind")? {
            K::Global(g) => Object::Global(global_from(g)?),
            K::Tenant(t) => Object::Tenant(Tenant {
                tenant_name: t.tenant_name.clone(),
                default_network: opt(&t.default_network),
            }),
            K::Network(n) => Object::Network(network_from(n)?),
            K::EndpointGroup(g) => Object::EndpointGroup(group_from(g)),
            K::Netprofile(p) => Object::NetProfile(NetProfile {
                tenant_name: p.tenant_name.clone(),
                profile_name: p.profile_name.clone(),
                bandwidth: opt(&p.bandwidth),
                burst: p.burst,
                dscp: p.dscp,
            }),
            K::Rule(r) => Object::Rule(rule_from(r)?),
            K::Node(n) => Object::Node(Node {
                name: n.name.clone(),
                vtep_ip: parse(&n.vtep_ip, "node", &n.name, "vtep_ip")?,
                uplink: n.uplink.clone(),
                inspect: n.inspect.clone(),
            }),
            K::Endpoint(e) => Object::Endpoint(endpoint_from(e)?),
        })
    }
}

/// FNV-1a, 64 bits.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// One object's share of its unit's digest: FNV-1a 64 of `kind/key`. A unit's digest is the
/// XOR of its objects' shares, so adding and removing an object are one XOR each.
pub fn digest_of(kind: Kind, key: &str) -> u64 {
    fnv1a(&[kind.name().as_bytes(), b"/", key.as_bytes()])
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn parse<T: std::str::FromStr>(s: &str, kind: &str, key: &str, field: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{kind} \"{key}\": {field} \"{s}\" is unreadable"))
}

fn parse_opt<T: std::str::FromStr>(
    s: &str,
    kind: &str,
    key: &str,
    field: &str,
) -> Result<Option<T>, String> {
    if s.is_empty() {
        Ok(None)
    } else {
        parse(s, kind, key, field).map(Some)
    }
}

fn global_to(g: &Global) -> pb::Global {
    pb::Global {
        name: g.name.clone(),
        vlans: g.vlans.to_string(),
        vxlans: g.vxlans.to_string(),
        fwd_mode: g.fwd_mode.clone(),
        arp_mode: g.arp_mode.clone(),
        pvt_subnet: g.pvt_subnet.to_string(),
        network_infra_type: g.network_infra_type.clone().unwrap_or_default(),
        service_cidrs: g.service_cidrs.iter().map(ToString::to_string).collect(),
    }
}

fn global_from(g: &pb::Global) -> Result<Global, String> {
    let k = &g.name;
    Ok(Global {
        name: g.name.clone(),
        vlans: parse(&g.vlans, "global", k, "vlans")?,
        vxlans: parse(&g.vxlans, "global", k, "vxlans")?,
        fwd_mode: g.fwd_mode.clone(),
        arp_mode: g.arp_mode.clone(),
        pvt_subnet: parse(&g.pvt_subnet, "global", k, "pvt_subnet")?,
        network_infra_type: opt(&g.network_infra_type),
        service_cidrs: g
            .service_cidrs
            .iter()
            .map(|c| parse(c, "global", k, "service_cidrs"))
            .collect::<Result<_, _>>()?,
    })
}

fn network_to(n: &Network) -> pb::Network {
    pb::Network {
        tenant_name: n.tenant_name.clone(),
        network_name: n.network_name.clone(),
        encap: match n.encap {
            Encap::Vlan => pb::Encap::Vlan,
            Encap::Vxlan => pb::Encap::Vxlan,
        } as i32,
        pkt_tag: match n.pkt_tag {
            PktTag::Allocate => 0,
            PktTag::Tag(t) => t,
        },
        subnet: n.subnet.to_string(),
        gateway: n.gateway.map(|g| g.to_string()).unwrap_or_default(),
        ipv6_subnet: n.ipv6_subnet.map(|s| s.to_string()).unwrap_or_default(),
        ipv6_gateway: n.ipv6_gateway.map(|g| g.to_string()).unwrap_or_default(),
        nw_type: match n.nw_type {
            NwType::Data => pb::NwType::Data,
            NwType::Infra => pb::NwType::Infra,
        } as i32,
        cfgd_tag: n.cfgd_tag.clone().unwrap_or_default(),
        host_access: n.host_access,
        external: n.external,
    }
}

fn network_from(n: &pb::Network) -> Result<Network, String> {
    let key = format!("{}:{}", n.tenant_name, n.network_name);
    let f = |s: &str, field| parse_opt(s, "network", &key, field);
    Ok(Network {
        tenant_name: n.tenant_name.clone(),
        network_name: n.network_name.clone(),
        encap: match pb::Encap::try_from(n.encap) {
            Ok(pb::Encap::Vxlan) => Encap::Vxlan,
            Ok(pb::Encap::Vlan) => Encap::Vlan,
            Err(_) => return Err(format!("network \"{key}\": encap {} is unknown", n.encap)),
        },
        pkt_tag: if n.pkt_tag == 0 {
            PktTag::Allocate
        } else {
            PktTag::Tag(n.pkt_tag)
        },
        subnet: parse(&n.subnet, "network", &key, "subnet")?,
        gateway: f(&n.gateway, "gateway")?,
        ipv6_subnet: parse_opt(&n.ipv6_subnet, "network", &key, "ipv6_subnet")?,
        ipv6_gateway: parse_opt(&n.ipv6_gateway, "network", &key, "ipv6_gateway")?,
        nw_type: match pb::NwType::try_from(n.nw_type) {
            Ok(pb::NwType::Infra) => NwType::Infra,
            _ => NwType::Data,
        },
        cfgd_tag: opt(&n.cfgd_tag),
        host_access: n.host_access,
        external: n.external,
    })
}

fn group_to(g: &EndpointGroup) -> pb::EndpointGroup {
    pb::EndpointGroup {
        tenant_name: g.tenant_name.clone(),
        group_name: g.group_name.clone(),
        network_name: g.network_name.clone(),
        policies: g.policies.clone(),
        net_profile: g.net_profile.clone().unwrap_or_default(),
        ip_pool: g.ip_pool.clone().unwrap_or_default(),
        default_deny: g.default_deny,
        cfgd_tag: g.cfgd_tag.clone().unwrap_or_default(),
        ext_contracts_grps: g.ext_contracts_grps.clone(),
        log: g.log,
    }
}

fn group_from(g: &pb::EndpointGroup) -> EndpointGroup {
    EndpointGroup {
        tenant_name: g.tenant_name.clone(),
        group_name: g.group_name.clone(),
        network_name: g.network_name.clone(),
        policies: g.policies.clone(),
        net_profile: opt(&g.net_profile),
        ip_pool: opt(&g.ip_pool),
        default_deny: g.default_deny,
        cfgd_tag: opt(&g.cfgd_tag),
        ext_contracts_grps: g.ext_contracts_grps.clone(),
        log: g.log,
    }
}

fn rule_to(r: &Rule) -> pb::Rule {
    pb::Rule {
        tenant_name: r.tenant_name.clone(),
        policy_name: r.policy_name.clone(),
        rule_id: r.rule_id.clone(),
        priority: r.priority,
        direction: match r.direction {
            Direction::In => pb::Direction::In,
            Direction::Out => pb::Direction::Out,
        } as i32,
        from_endpoint_group: r.from_endpoint_group.clone(),
        from_network: r.from_network.clone(),
        from_ip_address: r.from_ip_address.clone(),
        to_endpoint_group: r.to_endpoint_group.clone(),
        to_network: r.to_network.clone(),
        to_ip_address: r.to_ip_address.clone(),
        protocol: r.protocol.to_string(),
        port: r.port,
        port_end: r.port_end,
        action: match r.action {
            RuleAction::Allow => pb::RuleAction::Allow,
            RuleAction::Deny => pb::RuleAction::Deny,
        } as i32,
        log: r.log,
    }
}

fn rule_from(r: &pb::Rule) -> Result<Rule, String> {
    let key = format!("{}:{}:{}", r.tenant_name, r.policy_name, r.rule_id);
    Ok(Rule {
        tenant_name: r.tenant_name.clone(),
        policy_name: r.policy_name.clone(),
        rule_id: r.rule_id.clone(),
        priority: r.priority,
        direction: match pb::Direction::try_from(r.direction) {
            Ok(pb::Direction::Out) => Direction::Out,
            Ok(pb::Direction::In) => Direction::In,
            Err(_) => {
                return Err(format!(
                    "rule \"{key}\": direction {} is unknown",
                    r.direction
                ))
            }
        },
        from_endpoint_group: r.from_endpoint_group.clone(),
        from_network: r.from_network.clone(),
        from_ip_address: r.from_ip_address.clone(),
        to_endpoint_group: r.to_endpoint_group.clone(),
        to_network: r.to_network.clone(),
        to_ip_address: r.to_ip_address.clone(),
        protocol: parse(&r.protocol, "rule", &key, "protocol")?,
        port: r.port,
        port_end: r.port_end,
        action: match pb::RuleAction::try_from(r.action) {
            Ok(pb::RuleAction::Deny) => RuleAction::Deny,
            Ok(pb::RuleAction::Allow) => RuleAction::Allow,
            Err(_) => return Err(format!("rule \"{key}\": action {} is unknown", r.action)),
        },
        log: r.log,
    })
}

pub fn endpoint_to(e: &Endpoint) -> pb::Endpoint {
    pb::Endpoint {
        endpoint_id: e.endpoint_id.clone(),
        container: e.container.clone(),
        host: e.host.clone(),
        tenant_name: e.tenant_name.clone(),
        network_name: e.network_name.clone(),
        group_name: e.group_name.clone(),
        interface_name: e.interface_name.clone(),
        mac: e.mac.clone(),
        ipv4: e.ipv4.to_string(),
        ipv6: e.ipv6.map(|a| a.to_string()).unwrap_or_default(),
        state: e.state.clone(),
    }
}

pub fn endpoint_from(e: &pb::Endpoint) -> Result<Endpoint, String> {
    let k = &e.endpoint_id;
    Ok(Endpoint {
        endpoint_id: e.endpoint_id.clone(),
        container: e.container.clone(),
        host: e.host.clone(),
        tenant_name: e.tenant_name.clone(),
        network_name: e.network_name.clone(),
        group_name: e.group_name.clone(),
        interface_name: e.interface_name.clone(),
        mac: e.mac.clone(),
        ipv4: parse::<Ipv4Addr>(&e.ipv4, "endpoint", k, "ipv4")?,
        ipv6: parse_opt(&e.ipv6, "endpoint", k, "ipv6")?,
        state: e.state.clone(),
    })
}

/// A network as the watch carries it.
pub fn network_to_proto(n: &Network) -> pb::Network {
    network_to(n)
}

pub fn network_from_proto(n: &pb::Network) -> Result<Network, String> {
    network_from(n)
}

pub fn group_to_proto(g: &EndpointGroup) -> pb::EndpointGroup {
    group_to(g)
}

pub fn group_from_proto(g: &pb::EndpointGroup) -> EndpointGroup {
    group_from(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Object> {
        let j = |v: serde_json::Value| v.to_string().into_bytes();
        vec![
            Object::Global(Global {
                service_cidrs: vec!["10.96.0.0/12".parse().unwrap()],
                network_infra_type: Some("default".into()),
                ..Global::default()
            }),
            Object::Tenant(Tenant {
                tenant_name: "blue".into(),
                default_network: Some("web".into()),
            }),
            Object::from_json(
                Kind::Network,
                &j(
                    serde_json::json!({"tenantName":"blue","networkName":"web","encap":"vxlan",
                    "pktTag": 5000, "subnet":"10.1.0.10-10.1.0.100/24","gateway":"10.1.0.1",
                    "ipv6Subnet":"fd00::/64","hostAccess":true,"cfgdTag":"x"}),
                ),
            )
            .unwrap(),
            Object::from_json(
                Kind::Network,
                &j(
                    serde_json::json!({"tenantName":"blue","networkName":"db","encap":"vlan",
                    "subnet":"10.2.0.0/24","nwType":"infra","external":true}),
                ),
            )
            .unwrap(),
            Object::from_json(
                Kind::EndpointGroup,
                &j(
                    serde_json::json!({"tenantName":"blue","groupName":"front","networkName":"web",
                    "policies":["p1","p2"],"netProfile":"gold","defaultDeny":true,
                    "extContractsGrps":["e"],"log":true}),
                ),
            )
            .unwrap(),
            Object::from_json(
                Kind::NetProfile,
                &j(serde_json::json!({"tenantName":"blue","profileName":"gold",
                    "bandwidth":"10Mbps","burst":100,"DSCP":10})),
            )
            .unwrap(),
            Object::from_json(
                Kind::Rule,
                &j(
                    serde_json::json!({"tenantName":"blue","policyName":"p1","ruleId":"1",
                    "priority":5,"direction":"out","toEndpointGroup":"db","protocol":"tcp",
                    "port":80,"portEnd":90,"action":"deny","fromIpAddress":"10.0.0.0/8",
                    "log":true}),
                ),
            )
            .unwrap(),
            Object::from_json(
                Kind::Rule,
                &j(
                    serde_json::json!({"tenantName":"blue","policyName":"p1","ruleId":"2",
                    "protocol":"47"}),
                ),
            )
            .unwrap(),
            Object::Node(Node {
                name: "host1".into(),
                vtep_ip: "192.168.1.1".parse().unwrap(),
                uplink: "eth1".into(),
                inspect: "192.168.1.1:9103".into(),
            }),
            Object::from_json(
                Kind::Endpoint,
                &j(
                    serde_json::json!({"endpointId":"c1-eth0","container":"c1","host":"host1",
                    "tenantName":"blue","networkName":"web","groupName":"front",
                    "interfaceName":"eth0","mac":"02:00:0a:01:00:02","ipv4":"10.1.0.2",
                    "ipv6":"fd00::2","state":"allocated"}),
                ),
            )
            .unwrap(),
        ]
    }

    #[test]
    fn every_kind_goes_through_protobuf_unchanged() {
        for o in samples() {
            let back = Object::from_proto(&o.to_proto()).unwrap();
            assert_eq!(back, o);
            assert_eq!(Kind::from_proto(o.kind().to_proto()), Some(o.kind()));
            assert_eq!(Kind::from_name(o.kind().name()), Some(o.kind()));
        }
    }

    #[test]
    fn units_group_what_a_host_needs_together() {
        let units: Vec<String> = samples().iter().map(Object::unit).collect();
        assert_eq!(
            units,
            [
                "cluster",
                "cluster",
                "net/blue:web",
                "net/blue:db",
                "net/blue:web",
                "tenant/blue",
                "tenant/blue",
                "tenant/blue",
                "cluster",
                "net/blue:web"
            ]
        );
        assert_eq!(unit_tenant("net/blue:web"), Some("blue"));
        assert_eq!(unit_tenant("tenant/blue"), Some("blue"));
        assert_eq!(unit_tenant(CLUSTER), None);
    }

    #[test]
    fn an_unreadable_field_is_named() {
        let mut o = samples()[9].to_proto();
        if let Some(pb::object::Kind::Endpoint(e)) = o.kind.as_mut() {
            e.ipv4 = "10.1.0.300".into();
        }
        let e = Object::from_proto(&o).unwrap_err();
        assert!(
            e.contains("endpoint \"c1-eth0\": ipv4 \"10.1.0.300\""),
            "{e}"
        );
    }

    #[test]
    fn digests_are_order_free_and_undo_with_xor() {
        let a = digest_of(Kind::Endpoint, "x");
        let b = digest_of(Kind::Network, "blue:web");
        assert_ne!(a, b);
        assert_ne!(digest_of(Kind::Endpoint, "blue:web"), b);
        assert_eq!(a ^ b ^ a, b);
    }
}

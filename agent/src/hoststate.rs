//! The pure step from what netmaster wants (the watched [`View`]) and what this host has (its
//! local ports and its own ports on the bridge) to the compiler's input, [`HostState`]; and back
//! from a compile to the host's routes through the gateway port. No I/O, no locks: the owner of
//! desired state ([`crate::desired`]) calls it with what it holds.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use tracing::warn;
use weft_api::model::{Encap, Endpoint, Keyed, Network, PktTag};
use weft_policy::{HostState, Segment};

use crate::local::LocalPort;
use crate::netmaster::View;

/// What this host is, as the pipeline needs it.
#[derive(Debug, Clone, Default)]
pub struct HostPorts {
    /// This host's name, as netmaster knows it.
    pub host: String,
    /// The integration bridge (ports on another bridge are bare-bridge ports: no flows).
    pub bridge: String,
    pub uplink_port: Option<u32>,
    pub tunnel_port: Option<u32>,
    pub gateway_port: Option<weft_policy::GatewayPort>,
}

/// The pipeline's input: this host's ports joined with netmaster's networks. Built from the
/// same per-object conversions the incremental path uses ([`crate::desired`]), so both agree.
pub fn host_state<'a>(
    view: &View,
    me: &HostPorts,
    local: impl IntoIterator<Item = &'a LocalPort>,
) -> HostState {
    let zones = zones(view);
    HostState {
        uplink_port: me.uplink_port,
        tunnel_port: me.tunnel_port,
        gateway_port: me.gateway_port,
        other_hosts: other_hosts(view, me),
        service_cidrs: service_cidrs(view),
        // Endpoints of other hosts, where the host is known (a host whose lease lapsed is gone
        // from the node list, and its endpoints with it).
        remote_endpoints: view
            .endpoints
            .values()
            .filter_map(|ep| remote_of(view, me, ep))
            .collect(),
        // Every network received: the compiler keeps those this host carries (its endpoints'
        // networks, the other networks of their tenants, host-access networks).
        networks: view
            .networks
            .values()
            .filter_map(|net| network_of(&zones, net))
            .collect(),
        endpoints: local.into_iter().filter_map(|p| local_of(me, p)).collect(),
        groups: view.groups.values().map(|g| group_of(view, g)).collect(),
        policies: policy_keys(view)
            .iter()
            .filter_map(|k| policy_of(view, k))
            .collect(),
    }
}

/// The conntrack zone of every tenant received.
pub fn zones(view: &View) -> BTreeMap<String, u16> {
    weft_policy::tenant_zones(view.tenants.keys().map(String::as_str))
}

/// The addresses of the other hosts.
pub fn other_hosts(view: &View, me: &HostPorts) -> Vec<Ipv4Addr> {
    view.nodes
        .values()
        .filter(|n| n.name != me.host)
        .map(|n| n.vtep_ip)
        .collect()
}

/// The cluster's service ranges.
pub fn service_cidrs(view: &View) -> Vec<(Ipv4Addr, u8)> {
    view.globals
        .values()
        .flat_map(|g| &g.service_cidrs)
        .map(|c| (c.network(), c.prefix_len()))
        .collect()
}

/// An endpoint of another host as the compiler takes it (None: this host's own, its host
/// unknown, or its MAC unreadable).
pub fn remote_of(
    view: &View,
    me: &HostPorts,
    ep: &Endpoint,
) -> Option<weft_policy::RemoteEndpoint> {
    if ep.host == me.host {
        return None;
    }
    let node = view.nodes.get(&ep.host)?;
    Some(weft_policy::RemoteEndpoint {
        key: ep.endpoint_id.clone(),
        network: scoped_key(&ep.tenant_name, &ep.network_name),
        vtep: node.vtep_ip,
        mac: weft_policy::parse_mac(&ep.mac)?,
        ipv4: vec![ep.ipv4],
        group: group_key(ep),
    })
}

/// A network as the compiler takes it (None: its tag not allocated yet, or its tenant unknown).
pub fn network_of(zones: &BTreeMap<String, u16>, net: &Network) -> Option<weft_policy::Network> {
    Some(weft_policy::Network {
        key: net.key(),
        segment: segment_of(net)?,
        gateway: net.gateway,
        zone: *zones.get(&net.tenant_name)?,
        subnet: Some((net.subnet.net.network(), net.subnet.net.prefix_len())),
        host_access: net.host_access,
        external: net.external,
    })
}

/// A local port as the compiler takes it (None: a bare-bridge port, or one without a number).
pub fn local_of(me: &HostPorts, p: &LocalPort) -> Option<weft_policy::Endpoint> {
    let ep = p.endpoint.as_ref()?;
    if p.bridge != me.bridge || p.ofport == 0 {
        return None;
    }
    Some(weft_policy::Endpoint {
        key: p.endpoint_id.clone(),
        network: scoped_key(&ep.tenant_name, &ep.network_name),
        ofport: p.ofport,
        mac: p.mac,
        ipv4: vec![ep.ipv4],
        ipv6: p.ipv6.iter().map(|a| a.addr()).collect(),
        group: group_key(ep),
    })
}

/// The key of an endpoint's group (`tenant:group`), if it is in one.
fn group_key(ep: &Endpoint) -> Option<String> {
    (!ep.group_name.is_empty()).then(|| scoped_key(&ep.tenant_name, &ep.group_name))
}

/// A group as the compiler takes it, its netprofile resolved.
pub fn group_of(view: &View, g: &weft_api::model::EndpointGroup) -> weft_policy::EndpointGroup {
    weft_policy::EndpointGroup {
        key: g.key(),
        network: scoped_key(&g.tenant_name, &g.network_name),
        policies: g
            .policies
            .iter()
            .map(|p| scoped_key(&g.tenant_name, p))
            .collect(),
        default_deny: g.default_deny,
        log: g.log,
        profile: g
            .net_profile
            .as_ref()
            .and_then(|p| view.netprofiles.get(&scoped_key(&g.tenant_name, p)))
            .map(|p| weft_policy::Profile {
                rate_kbps: p
                    .bandwidth
                    .as_deref()
                    .and_then(|b| weft_api::validate::bandwidth_kbps(b).ok())
                    .map(|k| u32::try_from(k).unwrap_or(u32::MAX)),
                burst_kb: p.burst.saturating_mul(8),
                dscp: (p.dscp > 0).then_some((p.dscp & 63) as u8),
            }),
    }
}

/// Every policy key the compiler hears of: those with rules, and those groups name (a policy
/// without rules yet exists, and allows everything).
pub fn policy_keys(view: &View) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = view
        .rules
        .values()
        .map(|r| scoped_key(&r.tenant_name, &r.policy_name))
        .collect();
    for g in view.groups.values() {
        keys.extend(g.policies.iter().map(|p| scoped_key(&g.tenant_name, p)));
    }
    keys
}

/// A policy (`tenant:policy`) with its rules, peers made concrete (a network is its subnet, an
/// address a /32); None when no rule and no group names it.
pub fn policy_of(view: &View, key: &str) -> Option<weft_policy::Policy> {
    let prefix = format!("{key}:");
    let mut named = false;
    let mut rules = vec![];
    for (rkey, r) in view.rules.range(prefix.clone()..) {
        if !rkey.starts_with(&prefix) {
            break;
        }
        // "t:p:" also begins the keys of a policy named "p:x"; those are not this one's.
        if scoped_key(&r.tenant_name, &r.policy_name) != key {
            continue;
        }
        named = true;
        match compile_rule(view, r) {
            Some(rule) => rules.push(rule),
            None => {
                warn!(rule = %rkey, "rule names a peer this agent does not know; left out")
            }
        }
    }
    let (tenant, policy) = key.split_once(':')?;
    named = named
        || view
            .groups
            .values()
            .any(|g| g.tenant_name == tenant && g.policies.iter().any(|p| p == policy));
    named.then(|| weft_policy::Policy {
        key: key.to_string(),
        rules,
    })
}

/// Groups and policies as the compiler takes them.
pub fn policy_state(view: &View) -> (Vec<weft_policy::EndpointGroup>, Vec<weft_policy::Policy>) {
    (
        view.groups.values().map(|g| group_of(view, g)).collect(),
        policy_keys(view)
            .iter()
            .filter_map(|k| policy_of(view, k))
            .collect(),
    )
}

fn compile_rule(view: &View, r: &weft_api::model::Rule) -> Option<weft_policy::Rule> {
    use weft_api::model::{Direction, Protocol, RuleAction};
    let (group, network, ip) = match r.direction {
        Direction::In => (&r.from_endpoint_group, &r.from_network, &r.from_ip_address),
        Direction::Out => (&r.to_endpoint_group, &r.to_network, &r.to_ip_address),
    };
    let peer = if !group.is_empty() {
        weft_policy::Peer::Group(scoped_key(&r.tenant_name, group))
    } else if !network.is_empty() {
        let net = view.networks.get(&scoped_key(&r.tenant_name, network))?;
        weft_policy::Peer::Cidr(net.subnet.net.network(), net.subnet.net.prefix_len())
    } else if !ip.is_empty() {
        let net: ipnet::Ipv4Net = ip
            .parse()
            .or_else(|_| ip.parse::<Ipv4Addr>().map(ipnet::Ipv4Net::from))
            .ok()?;
        weft_policy::Peer::Cidr(net.network(), net.prefix_len())
    } else {
        weft_policy::Peer::Any
    };
    let protocol = match r.protocol {
        Protocol::Any => None,
        Protocol::Tcp => Some(6),
        Protocol::Udp => Some(17),
        Protocol::Icmp => Some(1),
        Protocol::Number(n) => Some(n),
    };
    let ports = (r.port != 0).then(|| {
        let lo = u16::try_from(r.port).unwrap_or(u16::MAX);
        let hi = if r.port_end == 0 {
            lo
        } else {
            u16::try_from(r.port_end).unwrap_or(u16::MAX)
        };
        (lo, hi)
    });
    Some(weft_policy::Rule {
        key: r.key(),
        priority: u8::try_from(r.priority.clamp(1, 100)).unwrap_or(100),
        direction: match r.direction {
            Direction::In => weft_policy::Direction::In,
            Direction::Out => weft_policy::Direction::Out,
        },
        peer,
        protocol,
        ports,
        allow: r.action == RuleAction::Allow,
        log: r.log,
    })
}

/// The key of a tenant's object named `name` (a network, group, policy, netprofile), as
/// [`Keyed::key`] makes it (`tenant:name`), for when only the names are at hand.
pub fn scoped_key(tenant: &str, name: &str) -> String {
    weft_api::model::Policy {
        tenant_name: tenant.to_string(),
        policy_name: name.to_string(),
    }
    .key()
}

/// The segment a network's frames carry, once netmaster has allocated its tag.
pub fn segment_of(net: &Network) -> Option<Segment> {
    match (net.encap, &net.pkt_tag) {
        (Encap::Vlan, PktTag::Tag(t)) => u16::try_from(*t).ok().map(Segment::Vlan),
        (Encap::Vxlan, PktTag::Tag(t)) => Some(Segment::Vxlan(*t)),
        (_, PktTag::Allocate) => None,
    }
}

/// The host's side of what the pipeline routes through the gateway port: every host-access
/// subnet (the host reaches those endpoints), and the transit address of every tenant whose
/// external network this host carries, masqueraded as the host's own when it leaves.
pub fn host_routes(
    state: &HostState,
    compiled: &weft_policy::Compiled,
) -> crate::hostgw::HostRoutes {
    routes_of(
        state.networks.iter(),
        state.gateway_port.as_ref(),
        &compiled.owners,
    )
}

/// The same from the networks handed to the compiler and the cookies of what it carries.
pub fn routes_of<'a>(
    networks: impl IntoIterator<Item = &'a weft_policy::Network>,
    gateway_port: Option<&weft_policy::GatewayPort>,
    owners: &BTreeMap<u64, String>,
) -> crate::hostgw::HostRoutes {
    let Some(gw) = gateway_port else {
        return crate::hostgw::HostRoutes::default();
    };
    let carried = |key: &str| {
        owners.contains_key(&weft_policy::layout::cookie(
            weft_policy::layout::CookieKind::Network,
            key,
        ))
    };
    let mut prefixes = std::collections::BTreeSet::new();
    let mut external = false;
    for n in networks {
        if !carried(&n.key) {
            continue;
        }
        if n.host_access {
            if let Some(net) = n.subnet.and_then(|(a, l)| ipnet::Ipv4Net::new(a, l).ok()) {
                prefixes.insert(net.trunc());
            }
        }
        if n.external {
            external = true;
            prefixes.insert(ipnet::Ipv4Net::from(weft_policy::layout::transit_address(
                n.zone,
            )));
        }
    }
    let (range, len) = weft_policy::layout::TRANSIT_RANGE;
    crate::hostgw::HostRoutes {
        src: Some(gw.address),
        prefixes: prefixes.into_iter().collect(),
        masquerade: external.then(|| ipnet::Ipv4Net::new(range, len).expect("a valid prefix")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_api::model::{Node, Tenant};

    fn network(tenant: &str, name: &str, tag: u32, subnet: &str) -> Network {
        serde_json::from_value(serde_json::json!({
            "tenantName": tenant, "networkName": name, "encap": "vxlan", "pktTag": tag,
            "subnet": subnet, "gateway": subnet.replace(".0/24", ".1"),
        }))
        .unwrap()
    }

    fn endpoint(id: &str, host: &str, tenant: &str, net: &str, ip: [u8; 4]) -> Endpoint {
        Endpoint {
            endpoint_id: id.into(),
            container: id.into(),
            host: host.into(),
            tenant_name: tenant.into(),
            network_name: net.into(),
            group_name: String::new(),
            interface_name: "eth0".into(),
            mac: weft_policy::fmt_mac(&[2, 0, ip[0], ip[1], ip[2], ip[3]]),
            ipv4: ip.into(),
            ipv6: None,
            state: "allocated".into(),
        }
    }

    fn local(ep: &Endpoint, ofport: u32, bridge: &str) -> LocalPort {
        LocalPort {
            endpoint_id: ep.endpoint_id.clone(),
            container_id: ep.container.clone(),
            interface_name: "eth0".into(),
            host_interface: "wf0".into(),
            netns: "/var/run/netns/x".into(),
            bridge: bridge.into(),
            endpoint: Some(ep.clone()),
            vlan: 0,
            mac: weft_policy::parse_mac(&ep.mac).unwrap(),
            ipv4: Some(ipnet::Ipv4Net::new(ep.ipv4, 24).unwrap()),
            gateway: None,
            ipv6: vec!["fd00::5/64".parse().unwrap()],
            mtu: 1450,
            routes: vec![],
            labels: BTreeMap::new(),
            ofport,
        }
    }

    fn view() -> View {
        let mut v = View::default();
        v.complete = true;
        for t in ["blue", "red"] {
            v.tenants.insert(
                t.into(),
                Tenant {
                    tenant_name: t.into(),
                    default_network: None,
                },
            );
        }
        v.networks.insert(
            "blue:web".into(),
            network("blue", "web", 5001, "10.1.1.0/24"),
        );
        v.networks
            .insert("red:web".into(), network("red", "web", 5002, "10.1.1.0/24"));
        for (n, ip) in [("h1", [192, 168, 0, 1]), ("h2", [192, 168, 0, 2])] {
            v.nodes.insert(
                n.into(),
                Node {
                    name: n.into(),
                    vtep_ip: ip.into(),
                    uplink: String::new(),
                    inspect: String::new(),
                },
            );
        }
        v
    }

    fn me() -> HostPorts {
        HostPorts {
            host: "h1".into(),
            bridge: "br-int".into(),
            uplink_port: Some(1),
            tunnel_port: Some(2),
            gateway_port: None,
        }
    }

    #[test]
    fn local_and_remote_endpoints() {
        let mut v = view();
        let mine = endpoint("a", "h1", "blue", "web", [10, 1, 1, 2]);
        let theirs = endpoint("b", "h2", "blue", "web", [10, 1, 1, 3]);
        let gone_host = endpoint("c", "h9", "blue", "web", [10, 1, 1, 4]);
        for e in [&mine, &theirs, &gone_host] {
            v.endpoints.insert(e.endpoint_id.clone(), e.clone());
        }
        let bare = LocalPort {
            endpoint: None,
            ..local(&mine, 8, "br0")
        };
        let ports = [local(&mine, 7, "br-int"), bare];
        let s = host_state(&v, &me(), &ports);
        // Its own endpoint from the port (with the port's IPv6), not from netmaster's list.
        assert_eq!(s.endpoints.len(), 1);
        assert_eq!(s.endpoints[0].ofport, 7);
        assert_eq!(s.endpoints[0].network, "blue:web");
        assert_eq!(
            s.endpoints[0].ipv6,
            vec!["fd00::5".parse::<std::net::Ipv6Addr>().unwrap()]
        );
        // The other host's endpoint through its VTEP; one on an unknown host left out.
        assert_eq!(s.remote_endpoints.len(), 1);
        assert_eq!(s.remote_endpoints[0].key, "b");
        assert_eq!(s.remote_endpoints[0].vtep, Ipv4Addr::new(192, 168, 0, 2));
        assert_eq!(s.other_hosts, vec![Ipv4Addr::new(192, 168, 0, 2)]);
        assert_eq!((s.uplink_port, s.tunnel_port), (Some(1), Some(2)));
        // Both tenants' networks, in different zones.
        assert_eq!(s.networks.len(), 2);
        assert_ne!(s.networks[0].zone, s.networks[1].zone);
    }

    #[test]
    fn a_port_without_a_number_or_network_segment_is_left_out() {
        let mut v = view();
        v.networks.get_mut("red:web").unwrap().pkt_tag = PktTag::Allocate;
        let mine = endpoint("a", "h1", "blue", "web", [10, 1, 1, 2]);
        let s = host_state(&v, &me(), &[local(&mine, 0, "br-int")]);
        assert!(s.endpoints.is_empty());
        assert_eq!(
            s.networks.len(),
            1,
            "a network without its tag yet is left out"
        );
    }

    /// netmaster echoing this host's own endpoint changes nothing (no compile follows).
    #[test]
    fn own_endpoint_records_do_not_change_the_state() {
        let mut v = view();
        let mine = endpoint("a", "h1", "blue", "web", [10, 1, 1, 2]);
        let ports = [local(&mine, 7, "br-int")];
        let before = host_state(&v, &me(), &ports);
        v.endpoints.insert("a".into(), mine.clone());
        assert_eq!(host_state(&v, &me(), &ports), before);
    }

    #[test]
    fn routes_for_host_access_networks_carried() {
        let mut v = view();
        v.networks.get_mut("blue:web").unwrap().host_access = true;
        let mine = endpoint("a", "h1", "blue", "web", [10, 1, 1, 2]);
        let mut hp = me();
        hp.gateway_port = Some(weft_policy::GatewayPort {
            ofport: 3,
            mac: [0x0a, 0, 192, 168, 0, 1],
            address: Ipv4Addr::new(192, 168, 0, 1),
        });
        let s = host_state(&v, &hp, &[local(&mine, 7, "br-int")]);
        let c = weft_policy::compile(&s);
        let r = host_routes(&s, &c);
        assert_eq!(
            r.prefixes,
            vec!["10.1.1.0/24".parse::<ipnet::Ipv4Net>().unwrap()]
        );
        assert_eq!(r.src, Some(Ipv4Addr::new(192, 168, 0, 1)));
        assert!(r.masquerade.is_none());
    }
}

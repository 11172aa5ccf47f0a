//! The policy matrix of a tenant: for each ordered pair of its endpoint groups (from, to), what a
//! new connection from a member of `from` to a member of `to` may use, computed from the intent
//! with the semantics the compiler gives rules (`policy/src/rules.rs`, docs/policy.md):
//!
//! - the sender's group judges with its `out` rules whose peer (`toEndpointGroup`,
//!   `toNetwork`, `toIpAddress`, or any) covers the receiver, the receiver's group with its `in`
//!   rules whose peer covers the sender; both must let the connection through;
//! - within one group's rules the highest priority decides and at equal priority a deny wins
//!   (the compiler's flow priority `100 + 2 × priority + deny`);
//! - no matching rule: allowed, unless the group is `defaultDeny` (both directions);
//! - ports count for tcp and udp only (the compiler ignores them for other protocols);
//! - a network peer is the network's subnet, an address peer its CIDR: it covers a group when it
//!   covers the group's addresses (its endpoints', or its network's subnet when it has none);
//!   when it covers only some of them, the cell says so in its notes.
//!
//! Groups of different tenants never reach each other (routing stays within a tenant), so a
//! matrix is per tenant. Served at `GET /api/v1/tenants/{tenant}/matrix`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;
use weft_api::model::{Direction, Protocol, RuleAction};
use weft_api::state::State;
use weft_api::{Endpoint, EndpointGroup, Rule};

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

/// A tenant's matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Matrix {
    pub tenant: String,
    /// Group names (without the tenant), sorted.
    pub groups: Vec<String>,
    /// One cell per ordered pair, `from` major, in `groups` order (a group to itself included).
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    pub from: String,
    pub to: String,
    /// `any`, `none`, or what is allowed: `tcp/5432`, `tcp/8000-8080`, `tcp`, `udp`, `icmp`,
    /// `proto 47`, `other protocols`.
    pub allowed: Vec<String>,
    /// The same in one string: `any`, `none` or the list joined by `, `.
    pub summary: String,
    /// Rules and defaults that took part (`rule blue:p:1 allow`, `default deny of blue:db`).
    pub decided_by: Vec<String>,
    /// Caveats: a peer that covers only some of a group's addresses, a policy that does not
    /// exist.
    pub notes: Vec<String>,
}

/// A rule as the compiler sees it, with how far its peer covers the group it is judged against.
struct Judged<'a> {
    rule: &'a Rule,
    /// 100 + 2 × priority + deny: higher wins.
    rank: u32,
    allow: bool,
    proto: Option<u8>,
    ports: Option<(u16, u16)>,
}

enum Cover {
    All,
    Some,
    None,
}

fn proto_of(p: Protocol) -> Option<u8> {
    match p {
        Protocol::Any => None,
        Protocol::Tcp => Some(TCP),
        Protocol::Udp => Some(UDP),
        Protocol::Icmp => Some(ICMP),
        Protocol::Number(n) => Some(n),
    }
}

fn ports_of(r: &Rule) -> Option<(u16, u16)> {
    (r.port != 0).then(|| {
        let lo = u16::try_from(r.port).unwrap_or(u16::MAX);
        let hi = if r.port_end == 0 {
            lo
        } else {
            u16::try_from(r.port_end).unwrap_or(u16::MAX)
        };
        (lo, hi)
    })
}

/// The addresses a group stands for: its endpoints', or its network's subnet when it has none.
struct Members {
    addrs: Vec<Ipv4Addr>,
    subnet: Option<Ipv4Net>,
}

fn covers(net: Ipv4Net, m: &Members) -> Cover {
    if m.addrs.is_empty() {
        return match m.subnet {
            Some(s) if net.contains(&s) => Cover::All,
            Some(s) if s.contains(&net) || net.contains(&s.network()) => Cover::Some,
            _ => Cover::None,
        };
    }
    let inside = m.addrs.iter().filter(|a| net.contains(*a)).count();
    if inside == m.addrs.len() {
        Cover::All
    } else if inside > 0 {
        Cover::Some
    } else {
        Cover::None
    }
}

/// The rules of `group`'s policies in `direction` whose peer covers `peer` (a group of the
/// same tenant with its members).
fn rules_for<'a>(
    state: &'a State,
    group: &EndpointGroup,
    direction: Direction,
    peer: &EndpointGroup,
    members: &Members,
    notes: &mut Vec<String>,
) -> Vec<Judged<'a>> {
    let t = &group.tenant_name;
    let mut out = vec![];
    for p in &group.policies {
        let pkey = format!("{t}:{p}");
        if !state.policies.contains_key(&pkey) {
            notes.push(format!(
                "group {t}:{} names policy {p}, which does not exist",
                group.group_name
            ));
            continue;
        }
        let prefix = format!("{pkey}:");
        for (_, r) in state.rules.range(prefix.clone()..) {
            if r.tenant_name != *t || r.policy_name != *p {
                break;
            }
            if r.direction != direction {
                continue;
            }
            let (g, n, ip) = match direction {
                Direction::In => (&r.from_endpoint_group, &r.from_network, &r.from_ip_address),
                Direction::Out => (&r.to_endpoint_group, &r.to_network, &r.to_ip_address),
            };
            let cover = if !g.is_empty() {
                if *g == peer.group_name {
                    Cover::All
                } else {
                    Cover::None
                }
            } else if !n.is_empty() {
                match state.networks.get(&format!("{t}:{n}")) {
                    Some(net) => covers(net.subnet.net.trunc(), members),
                    None => Cover::None,
                }
            } else if !ip.is_empty() {
                match ip
                    .parse::<Ipv4Net>()
                    .or_else(|_| ip.parse::<Ipv4Addr>().map(Ipv4Net::from))
                {
                    Ok(net) => covers(net.trunc(), members),
                    Err(_) => Cover::None,
                }
            } else {
                Cover::All
            };
            match cover {
                Cover::None => continue,
                Cover::Some => notes.push(format!(
                    "rule {t}:{p}:{} covers only some addresses of group {t}:{}; counted as covering it",
                    r.rule_id, peer.group_name
                )),
                Cover::All => {}
            }
            let allow = r.action == RuleAction::Allow;
            let priority = r.priority.clamp(1, 100);
            out.push(Judged {
                rule: r,
                rank: 100 + priority * 2 + u32::from(!allow),
                allow,
                proto: proto_of(r.protocol),
                ports: ports_of(r),
            });
        }
    }
    out
}

/// One group's decision for a new connection of protocol `proto` to port `port`: allowed, and
/// what decided.
fn decide(rules: &[Judged<'_>], group: &EndpointGroup, proto: u8, port: u16) -> (bool, String) {
    let best = rules
        .iter()
        .filter(|j| j.proto.is_none_or(|p| p == proto))
        .filter(|j| match (j.proto, j.ports) {
            (Some(p), Some((lo, hi))) if p == TCP || p == UDP => (lo..=hi).contains(&port),
            _ => true,
        })
        .max_by_key(|j| j.rank);
    match best {
        Some(j) => (
            j.allow,
            format!(
                "rule {}:{}:{} {}",
                j.rule.tenant_name,
                j.rule.policy_name,
                j.rule.rule_id,
                if j.allow { "allow" } else { "deny" }
            ),
        ),
        None if group.default_deny => (
            false,
            format!("default deny of {}:{}", group.tenant_name, group.group_name),
        ),
        None => (true, String::new()),
    }
}

/// The tenant's matrix, or None if there is no such tenant. `endpoints`: every endpoint record
/// (only the tenant's are used).
pub fn matrix(state: &State, endpoints: &[Endpoint], tenant: &str) -> Option<Matrix> {
    state.tenants.get(tenant)?;
    let groups: Vec<&EndpointGroup> = state
        .groups
        .values()
        .filter(|g| g.tenant_name == tenant)
        .collect();
    let members: BTreeMap<&str, Members> = groups
        .iter()
        .map(|g| {
            let addrs = endpoints
                .iter()
                .filter(|e| {
                    e.tenant_name == tenant
                        && e.group_name == g.group_name
                        && e.network_name == g.network_name
                })
                .map(|e| e.ipv4)
                .collect();
            let subnet = state
                .networks
                .get(&format!("{tenant}:{}", g.network_name))
                .map(|n| n.subnet.net.trunc());
            (g.group_name.as_str(), Members { addrs, subnet })
        })
        .collect();
    let mut cells = vec![];
    for from in &groups {
        for to in &groups {
            let mut notes = vec![];
            let egress = rules_for(
                state,
                from,
                Direction::Out,
                to,
                &members[to.group_name.as_str()],
                &mut notes,
            );
            let ingress = rules_for(
                state,
                to,
                Direction::In,
                from,
                &members[from.group_name.as_str()],
                &mut notes,
            );
            notes.sort();
            notes.dedup();
            cells.push(cell(from, to, &egress, &ingress, notes));
        }
    }
    Some(Matrix {
        tenant: tenant.to_string(),
        groups: groups.iter().map(|g| g.group_name.clone()).collect(),
        cells,
    })
}

fn cell(
    from: &EndpointGroup,
    to: &EndpointGroup,
    egress: &[Judged<'_>],
    ingress: &[Judged<'_>],
    notes: Vec<String>,
) -> Cell {
    let mut decided_by = BTreeSet::new();
    let mut judge = |proto: u8, port: u16| {
        let (a, why_a) = decide(egress, from, proto, port);
        let (b, why_b) = decide(ingress, to, proto, port);
        for w in [why_a, why_b] {
            if !w.is_empty() {
                decided_by.insert(w);
            }
        }
        a && b
    };
    let mut allowed = vec![];
    let mut everything = true;
    // tcp and udp: the port ranges between the rules' bounds, judged once each.
    for (proto, name) in [(TCP, "tcp"), (UDP, "udp")] {
        let mut bounds: BTreeSet<u32> = [0, 65536].into();
        for j in egress.iter().chain(ingress) {
            if let (Some(p), Some((lo, hi))) = (j.proto, j.ports) {
                if p == proto {
                    bounds.insert(u32::from(lo));
                    bounds.insert(u32::from(hi) + 1);
                }
            }
        }
        let bounds: Vec<u32> = bounds.into_iter().collect();
        let mut open: Vec<(u32, u32)> = vec![];
        for w in bounds.windows(2) {
            let (lo, hi) = (w[0], w[1] - 1);
            if judge(proto, lo as u16) {
                match open.last_mut() {
                    Some(last) if last.1 + 1 == lo => last.1 = hi,
                    _ => open.push((lo, hi)),
                }
            } else {
                everything = false;
            }
        }
        for (lo, hi) in open {
            allowed.push(match (lo, hi) {
                (0, 65535) => name.to_string(),
                (l, h) if l == h => format!("{name}/{l}"),
                (l, h) => format!("{name}/{l}-{h}"),
            });
        }
    }
    if judge(ICMP, 0) {
        allowed.push("icmp".into());
    } else {
        everything = false;
    }
    // Other protocols the rules name, then one that none names.
    let named: BTreeSet<u8> = egress
        .iter()
        .chain(ingress)
        .filter_map(|j| j.proto)
        .filter(|p| ![TCP, UDP, ICMP].contains(p))
        .collect();
    for p in &named {
        if judge(*p, 0) {
            allowed.push(format!("proto {p}"));
        } else {
            everything = false;
        }
    }
    let other = (2u8..=255)
        .find(|p| ![TCP, UDP].contains(p) && !named.contains(p))
        .unwrap_or(255);
    if judge(other, 0) {
        allowed.push("other protocols".into());
    } else {
        everything = false;
    }
    let summary = if everything {
        allowed = vec!["any".into()];
        "any".to_string()
    } else if allowed.is_empty() {
        "none".to_string()
    } else {
        allowed.join(", ")
    };
    Cell {
        from: from.group_name.clone(),
        to: to.group_name.clone(),
        allowed,
        summary,
        decided_by: decided_by.into_iter().collect(),
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        let spec = r#"{
          "tenants": [{"tenantName": "blue"}, {"tenantName": "red"}],
          "networks": [
            {"tenantName": "blue", "networkName": "web", "encap": "vxlan", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1"},
            {"tenantName": "blue", "networkName": "db", "encap": "vxlan", "subnet": "10.2.0.0/24", "gateway": "10.2.0.1"},
            {"tenantName": "red", "networkName": "web", "encap": "vxlan", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1"}
          ],
          "policies": [{"tenantName": "blue", "policyName": "db-in"}, {"tenantName": "blue", "policyName": "web-out"}],
          "rules": [
            {"tenantName": "blue", "policyName": "db-in", "ruleId": "pg", "direction": "in", "fromEndpointGroup": "web", "protocol": "tcp", "port": 5432, "action": "allow"},
            {"tenantName": "blue", "policyName": "db-in", "ruleId": "ssh", "direction": "in", "fromNetwork": "web", "protocol": "tcp", "port": 22, "action": "allow"},
            {"tenantName": "blue", "policyName": "db-in", "ruleId": "ping", "priority": 5, "direction": "in", "protocol": "icmp", "action": "allow"},
            {"tenantName": "blue", "policyName": "db-in", "ruleId": "no-ping-admin", "priority": 5, "direction": "in", "fromEndpointGroup": "admin", "protocol": "icmp", "action": "deny"},
            {"tenantName": "blue", "policyName": "web-out", "ruleId": "no-high", "direction": "out", "protocol": "tcp", "port": 8000, "portEnd": 8999, "action": "deny"}
          ],
          "endpointGroups": [
            {"tenantName": "blue", "groupName": "web", "networkName": "web", "policies": ["web-out"]},
            {"tenantName": "blue", "groupName": "admin", "networkName": "web"},
            {"tenantName": "blue", "groupName": "db", "networkName": "db", "policies": ["db-in"], "defaultDeny": true},
            {"tenantName": "red", "groupName": "web", "networkName": "web"}
          ]
        }"#;
        weft_api::Spec::from_json(spec)
            .unwrap()
            .apply_to(&State::default(), false)
            .unwrap()
    }

    fn summary(m: &Matrix, from: &str, to: &str) -> String {
        m.cells
            .iter()
            .find(|c| c.from == from && c.to == to)
            .unwrap()
            .summary
            .clone()
    }

    #[test]
    fn cells_follow_the_compilers_semantics() {
        let s = state();
        let m = matrix(&s, &[], "blue").unwrap();
        assert_eq!(m.groups, ["admin", "db", "web"]);
        assert_eq!(m.cells.len(), 9);
        // web → db: Postgres by group, ssh by network, ping by the any-peer rule.
        assert_eq!(summary(&m, "web", "db"), "tcp/22, tcp/5432, icmp");
        // admin is in web's network: ssh by network; its ping is denied at equal priority.
        assert_eq!(summary(&m, "admin", "db"), "tcp/22");
        // db is default deny: it starts nothing (no out rules).
        assert_eq!(summary(&m, "db", "web"), "none");
        // ... not even to itself: its ping rule is an `in` rule, nothing lets it out.
        assert_eq!(summary(&m, "db", "db"), "none");
        // web denies itself tcp 8000-8999 outwards.
        assert_eq!(
            summary(&m, "web", "admin"),
            "tcp/0-7999, tcp/9000-65535, udp, icmp, other protocols"
        );
        // No policy either side.
        assert_eq!(summary(&m, "admin", "web"), "any");
        let c = m
            .cells
            .iter()
            .find(|c| c.from == "admin" && c.to == "db")
            .unwrap();
        assert!(
            c.decided_by
                .contains(&"rule blue:db-in:no-ping-admin deny".to_string()),
            "{c:?}"
        );
        assert!(
            c.decided_by
                .contains(&"default deny of blue:db".to_string()),
            "{c:?}"
        );
        // Another tenant's matrix holds only its groups.
        let red = matrix(&s, &[], "red").unwrap();
        assert_eq!(red.groups, ["web"]);
        assert_eq!(summary(&red, "web", "web"), "any");
        assert!(matrix(&s, &[], "green").is_none());
    }

    #[test]
    fn address_peers_are_judged_on_the_members() {
        let mut s = state();
        s.rules.insert(
            "blue:db-in:one".into(),
            serde_json::from_str(r#"{"tenantName": "blue", "policyName": "db-in", "ruleId": "one", "direction": "in", "fromIpAddress": "10.1.0.5/32", "protocol": "udp", "port": 53, "action": "allow"}"#).unwrap(),
        );
        let ep = |id: &str, group: &str, ip: &str| Endpoint {
            endpoint_id: id.into(),
            container: id.into(),
            host: "h1".into(),
            tenant_name: "blue".into(),
            network_name: "web".into(),
            group_name: group.into(),
            interface_name: "eth0".into(),
            mac: "02:00:00:00:00:01".into(),
            ipv4: ip.parse().unwrap(),
            ipv6: None,
            state: String::new(),
        };
        // Only admin's one member holds 10.1.0.5.
        let eps = [
            ep("a", "admin", "10.1.0.5"),
            ep("w1", "web", "10.1.0.6"),
            ep("w2", "web", "10.1.0.5"),
        ];
        let m = matrix(&s, &eps, "blue").unwrap();
        assert_eq!(summary(&m, "admin", "db"), "tcp/22, udp/53");
        let c = m
            .cells
            .iter()
            .find(|c| c.from == "web" && c.to == "db")
            .unwrap();
        assert_eq!(c.summary, "tcp/22, tcp/5432, udp/53, icmp");
        assert!(
            c.notes.iter().any(|n| n.contains("only some addresses")),
            "{c:?}"
        );
    }
}

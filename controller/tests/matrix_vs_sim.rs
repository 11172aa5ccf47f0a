//! The policy matrix against the compiler: random rules on two groups (peers by group, network,
//! address, any; protocols and port ranges; priorities, deny and allow; default deny either
//! side), compiled by `weft_policy` for one host holding one endpoint of each group and stepped
//! through by its simulator (`weft_policy::sim`). For every probe (tcp and udp on ports around
//! the rules' bounds, icmp), each ordered pair's matrix cell allows the probe exactly when the
//! simulated first packet reaches the other endpoint's port.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use weft_api::state::State;
use weft_controller::matrix::{matrix, Cell};
use weft_policy::model::{
    Direction as PDirection, Endpoint as PEndpoint, EndpointGroup as PGroup, HostState, Network,
    Peer, Policy as PPolicy, Rule as PRule, Segment,
};
use weft_policy::sim::{Bridge, Conntrack, Packet};

const PORTS: [u16; 8] = [19, 20, 21, 22, 25, 30, 31, 80];

#[derive(Debug, Clone)]
struct R {
    on_a: bool,
    priority: u8,
    out: bool,
    /// 0 any, 1 group a, 2 group b, 3 the network, 4 a's address, 5 elsewhere
    peer: u8,
    /// 0 any, 1 tcp, 2 udp, 3 icmp
    proto: u8,
    ports: Option<(u16, u16)>,
    allow: bool,
}

fn rule() -> impl Strategy<Value = R> {
    (
        any::<bool>(),
        1u8..=2,
        any::<bool>(),
        0u8..=5,
        0u8..=3,
        prop::option::of((20u16..=30, 0u16..=5)),
        any::<bool>(),
    )
        .prop_map(|(on_a, priority, out, peer, proto, ports, allow)| R {
            on_a,
            priority,
            out,
            peer,
            proto,
            ports: ports.map(|(lo, len)| (lo, lo + len)),
            allow,
        })
}

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 5, 0, 2);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 5, 0, 3);
const A_MAC: [u8; 6] = [2, 0, 10, 5, 0, 2];
const B_MAC: [u8; 6] = [2, 0, 10, 5, 0, 3];

fn api_state(rules: &[R], deny_a: bool, deny_b: bool) -> State {
    let mut spec = serde_json::json!({
        "tenants": [{"tenantName": "t"}],
        "networks": [{"tenantName": "t", "networkName": "n", "encap": "vxlan", "pktTag": 5001,
                      "subnet": "10.5.0.0/24", "gateway": "10.5.0.1"}],
        "policies": [{"tenantName": "t", "policyName": "pa"}, {"tenantName": "t", "policyName": "pb"}],
        "endpointGroups": [
            {"tenantName": "t", "groupName": "a", "networkName": "n", "policies": ["pa"], "defaultDeny": deny_a},
            {"tenantName": "t", "groupName": "b", "networkName": "n", "policies": ["pb"], "defaultDeny": deny_b}
        ],
        "rules": []
    });
    for (i, r) in rules.iter().enumerate() {
        let dir = if r.out { "out" } else { "in" };
        let mut j = serde_json::json!({
            "tenantName": "t", "policyName": if r.on_a { "pa" } else { "pb" }, "ruleId": format!("r{i}"),
            "priority": r.priority, "direction": dir,
            "action": if r.allow { "allow" } else { "deny" },
        });
        let (g, n, ip) = if r.out {
            ("toEndpointGroup", "toNetwork", "toIpAddress")
        } else {
            ("fromEndpointGroup", "fromNetwork", "fromIpAddress")
        };
        match r.peer {
            1 => j[g] = "a".into(),
            2 => j[g] = "b".into(),
            3 => j[n] = "n".into(),
            4 => j[ip] = "10.5.0.2/32".into(),
            5 => j[ip] = "10.9.0.0/16".into(),
            _ => {}
        }
        match r.proto {
            1 => j["protocol"] = "tcp".into(),
            2 => j["protocol"] = "udp".into(),
            3 => j["protocol"] = "icmp".into(),
            _ => {}
        }
        if let Some((lo, hi)) = r.ports {
            j["port"] = lo.into();
            if hi != lo {
                j["portEnd"] = hi.into();
            }
        }
        spec["rules"].as_array_mut().unwrap().push(j);
    }
    weft_api::Spec::from_json(&spec.to_string())
        .unwrap()
        .apply_to(&State::default(), false)
        .unwrap()
}

fn host_state(rules: &[R], deny_a: bool, deny_b: bool) -> HostState {
    let mut pa = vec![];
    let mut pb = vec![];
    for (i, r) in rules.iter().enumerate() {
        let policy = if r.on_a { "pa" } else { "pb" };
        let rule = PRule {
            key: format!("t:{policy}:r{i}"),
            priority: r.priority,
            direction: if r.out {
                PDirection::Out
            } else {
                PDirection::In
            },
            peer: match r.peer {
                1 => Peer::Group("t:a".into()),
                2 => Peer::Group("t:b".into()),
                3 => Peer::Cidr(Ipv4Addr::new(10, 5, 0, 0), 24),
                4 => Peer::Cidr(A_IP, 32),
                5 => Peer::Cidr(Ipv4Addr::new(10, 9, 0, 0), 16),
                _ => Peer::Any,
            },
            protocol: match r.proto {
                1 => Some(6),
                2 => Some(17),
                3 => Some(1),
                _ => None,
            },
            ports: r.ports,
            allow: r.allow,
            log: false,
        };
        if r.on_a {
            pa.push(rule)
        } else {
            pb.push(rule)
        }
    }
    let ep = |key: &str, port: u32, mac: [u8; 6], ip: Ipv4Addr, group: &str| PEndpoint {
        key: key.into(),
        network: "t:n".into(),
        ofport: port,
        mac,
        ipv4: vec![ip],
        ipv6: vec![],
        group: Some(group.into()),
    };
    let group = |key: &str, policy: &str, default_deny: bool| PGroup {
        key: key.into(),
        network: "t:n".into(),
        policies: vec![policy.into()],
        default_deny,
        profile: None,
        log: false,
    };
    HostState {
        tunnel_port: Some(1),
        networks: vec![Network {
            key: "t:n".into(),
            segment: Segment::Vxlan(5001),
            gateway: Some(Ipv4Addr::new(10, 5, 0, 1)),
            zone: 1,
            subnet: Some((Ipv4Addr::new(10, 5, 0, 0), 24)),
            host_access: false,
            external: false,
        }],
        endpoints: vec![
            ep("ea", 2, A_MAC, A_IP, "t:a"),
            ep("eb", 3, B_MAC, B_IP, "t:b"),
        ],
        groups: vec![group("t:a", "t:pa", deny_a), group("t:b", "t:pb", deny_b)],
        policies: vec![
            PPolicy {
                key: "t:pa".into(),
                rules: pa,
            },
            PPolicy {
                key: "t:pb".into(),
                rules: pb,
            },
        ],
        ..HostState::default()
    }
}

fn endpoint(id: &str, group: &str, ip: Ipv4Addr) -> weft_api::Endpoint {
    weft_api::Endpoint {
        endpoint_id: id.into(),
        container: id.into(),
        host: "h".into(),
        tenant_name: "t".into(),
        network_name: "n".into(),
        group_name: group.into(),
        interface_name: "eth0".into(),
        mac: String::new(),
        ipv4: ip,
        ipv6: None,
        state: String::new(),
    }
}

/// Whether a cell's `allowed` list covers (protocol name, port).
fn covers(c: &Cell, proto: &str, port: u16) -> bool {
    c.allowed.iter().any(|a| {
        if a == "any" || a == proto {
            return true;
        }
        let Some((p, range)) = a.split_once('/') else {
            return false;
        };
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        p == proto && (lo.parse::<u16>().unwrap()..=hi.parse().unwrap()).contains(&port)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn matrix_cells_agree_with_the_simulated_pipeline(
        rules in prop::collection::vec(rule(), 0..6),
        deny_a in any::<bool>(),
        deny_b in any::<bool>(),
    ) {
        let state = api_state(&rules, deny_a, deny_b);
        let eps = [endpoint("ea", "a", A_IP), endpoint("eb", "b", B_IP)];
        let m = matrix(&state, &eps, "t").unwrap();
        let hs = host_state(&rules, deny_a, deny_b);
        let compiled = weft_policy::compile(&hs);
        prop_assert!(compiled.problems.is_empty(), "{:?}", compiled.problems);
        let bridge = Bridge::of(&compiled, hs.tunnel_port);
        for (from, to, in_port, out_port, smac, dmac, src, dst) in [
            ("a", "b", 2, 3, A_MAC, B_MAC, A_IP, B_IP),
            ("b", "a", 3, 2, B_MAC, A_MAC, B_IP, A_IP),
        ] {
            let cell = m.cells.iter().find(|c| c.from == from && c.to == to).unwrap();
            let mut probes: Vec<(&str, u16, Packet)> = vec![(
                "icmp", 0, Packet::icmp_echo(in_port, smac, dmac, src, dst),
            )];
            for p in PORTS {
                probes.push(("tcp", p, Packet::tcp(in_port, smac, dmac, src, dst, p)));
                probes.push(("udp", p, Packet::udp(in_port, smac, dmac, src, dst, p)));
            }
            for (proto, port, packet) in probes {
                let t = bridge.trace(&packet, &Conntrack::new());
                let reached = t.verdict.outputs().iter().any(|o| o.port == out_port);
                prop_assert_eq!(
                    covers(cell, proto, port), reached,
                    "{} → {} {}/{}: matrix says {:?}, the pipeline {:?}\nrules {:?}, default deny a {} b {}",
                    from, to, proto, port, cell.summary, t.verdict, rules, deny_a, deny_b
                );
            }
        }
    }
}

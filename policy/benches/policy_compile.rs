//! Compile time and flow count of a large policy: 1,000 endpoints × 1,000 rules on one host.
//!
//! `cargo bench -p weft-policy --bench policy_compile`. One VXLAN network; 10 groups; 200 local
//! endpoints and 800 on other hosts, spread over the groups; one policy of 1,000 rules (peers: a
//! group, a CIDR, or any; TCP or UDP, single ports and ranges; allow and deny; both directions)
//! attached to every group. Prints the flow count (and what a rules × members expansion would
//! need), a full compile, and the diff of a one-rule and a one-member change.

use std::net::Ipv4Addr;
use std::time::Instant;

use weft_policy::{
    compile, diff, Direction, Endpoint, EndpointGroup, HostState, Network, Peer, Policy,
    RemoteEndpoint, Rule, Segment,
};

const GROUPS: u32 = 10;

fn mac(i: u32) -> [u8; 6] {
    [0x02, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]
}

fn state(local: u32, remote: u32, rules: u32) -> HostState {
    let group = |i: u32| Some(format!("t:g{}", i % GROUPS));
    let addr = |i: u32| Ipv4Addr::from(0x0a40_0000 + 10 + i);
    HostState {
        gateway_port: None,
        other_hosts: vec![],
        service_cidrs: vec![],
        tunnel_port: Some(1),
        networks: vec![Network {
            key: "t:n".into(),
            segment: Segment::Vxlan(9000),
            gateway: Some("10.64.0.1".parse().unwrap()),
            zone: 1,
            subnet: None,
            host_access: false,
            external: false,
        }],
        endpoints: (0..local)
            .map(|i| Endpoint {
                key: format!("l{i}"),
                network: "t:n".into(),
                ofport: 10 + i,
                mac: mac(i),
                ipv4: vec![addr(i)],
                ipv6: vec![],
                group: group(i),
            })
            .collect(),
        remote_endpoints: (local..local + remote)
            .map(|i| RemoteEndpoint {
                key: format!("r{i}"),
                network: "t:n".into(),
                vtep: Ipv4Addr::new(192, 168, 100, (i % 50) as u8 + 2),
                mac: mac(i),
                ipv4: vec![addr(i)],
                group: group(i),
            })
            .collect(),
        groups: (0..GROUPS)
            .map(|g| EndpointGroup {
                key: format!("t:g{g}"),
                network: "t:n".into(),
                policies: vec!["t:p".into()],
                default_deny: g % 2 == 0,
                profile: None,
                log: false,
            })
            .collect(),
        policies: vec![Policy {
            key: "t:p".into(),
            rules: (0..rules)
                .map(|i| Rule {
                    key: format!("t:p:{i}"),
                    priority: (i % 100 + 1) as u8,
                    direction: if i % 4 == 0 {
                        Direction::Out
                    } else {
                        Direction::In
                    },
                    peer: match i % 3 {
                        0 => Peer::Group(format!("t:g{}", i % GROUPS)),
                        1 => Peer::Cidr(Ipv4Addr::from(0x0b00_0000 + (i << 8)), 24),
                        _ => Peer::Any,
                    },
                    protocol: Some(if i % 2 == 0 { 6 } else { 17 }),
                    ports: Some(if i % 5 == 0 {
                        (1000 + i as u16 * 7, 1000 + i as u16 * 7 + 20)
                    } else {
                        (2000 + i as u16, 2000 + i as u16)
                    }),
                    allow: i % 7 != 0,
                    log: false,
                })
                .collect(),
        }],
        ..HostState::default()
    }
}

fn median_ms(mut f: impl FnMut(), runs: usize) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    t[runs / 2]
}

fn main() {
    let (local, remote, rules) = (200, 800, 1000);
    let s = state(local, remote, rules);
    let c = compile(&s);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let flows = c.flows.flows.len();
    let by_kind = c.flows.count_by_kind();
    let members = local + remote;
    println!("policy_compile: {members} endpoints ({local} here, {remote} on other hosts), {GROUPS} groups, {rules} rules on every group");
    println!(
        "  flows: {flows} ({by_kind:?}), groups: {}",
        c.flows.groups.len()
    );
    println!(
        "  a rules x members expansion would need about {} flows",
        u64::from(rules) * u64::from(members)
    );
    let empty_rules = compile(&state(local, remote, 0)).flows.flows.len();
    println!("  of which for the rules: {}", flows - empty_rules);
    let ms = median_ms(
        || {
            std::hint::black_box(compile(std::hint::black_box(&s)));
        },
        11,
    );
    println!("  compile (median of 11): {ms:.1} ms");

    // One rule's port changes.
    let mut s2 = s.clone();
    s2.policies[0].rules[500].ports = Some((4444, 4444));
    let mut d = None;
    let ms = median_ms(|| d = Some(diff(&c.flows, &compile(&s2).flows)), 5);
    let d = d.unwrap();
    println!(
        "  one rule changed: compile + diff {ms:.1} ms, {} flows added, {} deleted",
        d.flows_add.len(),
        d.flows_delete.len()
    );
    // One more member (on another host).
    let mut s3 = s.clone();
    s3.remote_endpoints.push(RemoteEndpoint {
        key: "new".into(),
        network: "t:n".into(),
        vtep: Ipv4Addr::new(192, 168, 100, 2),
        mac: mac(999_999),
        ipv4: vec![Ipv4Addr::new(10, 65, 0, 1)],
        group: Some("t:g3".into()),
    });
    let d = diff(&c.flows, &compile(&s3).flows);
    println!(
        "  one member added: {} flows added, {} deleted, {} groups changed",
        d.flows_add.len(),
        d.flows_delete.len(),
        d.groups_upsert.len()
    );
}

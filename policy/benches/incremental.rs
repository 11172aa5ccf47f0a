//! What one change costs an agent at scale: the incremental compiler against a full compile.
//!
//! `cargo bench -p weft-policy --bench incremental`. One host with 100 local endpoints and
//! 10,000 remote endpoints on 50 other hosts, in 20 VXLAN networks of 5 tenants (one network of
//! each tenant has host access, one is external; the host has its gateway port), 40 groups, 10
//! policies of 5 rules (most on two groups: conjunctions). Each change is measured as the agent
//! pays it: `Incremental::apply`, then `diff_delta` against the installed set; and, for
//! comparison, a full compile and a whole diff.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use weft_policy::{
    compile, diff, diff_delta, tenant_zones, Direction, Endpoint, EndpointGroup, GatewayPort,
    HostState, Incremental, Network, Peer, Policy, RemoteEndpoint, Rule, Segment, StateChange,
};

const TENANTS: u32 = 5;
const NETWORKS_PER_TENANT: u32 = 4;
const NETWORKS: u32 = TENANTS * NETWORKS_PER_TENANT;
const LOCAL: u32 = 100;
const REMOTE: u32 = 10_000;
const HOSTS: u32 = 50;

fn net_key(n: u32) -> String {
    format!("t{}:n{}", n / NETWORKS_PER_TENANT, n % NETWORKS_PER_TENANT)
}

fn group_key(n: u32, g: u32) -> String {
    format!(
        "t{}:g{}-{g}",
        n / NETWORKS_PER_TENANT,
        n % NETWORKS_PER_TENANT
    )
}

fn policy_key(t: u32, p: u32) -> String {
    format!("t{t}:p{p}")
}

/// The `i`-th endpoint of network `n` (locals first, then remotes).
fn addr(n: u32, i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | (n << 16) | (10 + i))
}

fn mac(n: u32, i: u32) -> [u8; 6] {
    [0x02, 0, n as u8, (i >> 16) as u8, (i >> 8) as u8, i as u8]
}

fn local(n: u32, i: u32, port: u32) -> Endpoint {
    Endpoint {
        key: format!("local-{n}-{i}"),
        network: net_key(n),
        ofport: port,
        mac: mac(n, i),
        ipv4: vec![addr(n, i)],
        ipv6: vec![],
        group: Some(group_key(n, i % 2)),
    }
}

fn remote(n: u32, i: u32) -> RemoteEndpoint {
    RemoteEndpoint {
        key: format!("remote-{n}-{i}"),
        network: net_key(n),
        vtep: Ipv4Addr::new(192, 168, 1, (i % HOSTS) as u8 + 2),
        mac: mac(n, i),
        ipv4: vec![addr(n, i)],
        group: Some(group_key(n, i % 2)),
    }
}

fn rule(t: u32, p: u32, r: u32, port: u16) -> Rule {
    let i = p * 5 + r;
    Rule {
        key: format!("{}:{r}", policy_key(t, p)),
        priority: (i % 10 + 1) as u8,
        direction: if r.is_multiple_of(2) {
            Direction::In
        } else {
            Direction::Out
        },
        peer: match r % 3 {
            0 => Peer::Group(group_key(
                t * NETWORKS_PER_TENANT + r % NETWORKS_PER_TENANT,
                0,
            )),
            1 => Peer::Cidr(Ipv4Addr::new(172, 16, i as u8, 0), 24),
            _ => Peer::Any,
        },
        protocol: Some(6),
        ports: Some((port, port + if r == 4 { 15 } else { 0 })),
        allow: r != 3,
        log: false,
    }
}

fn policy(t: u32, p: u32) -> Policy {
    Policy {
        key: policy_key(t, p),
        rules: (0..5)
            .map(|r| rule(t, p, r, 8000 + (p * 100 + r * 20) as u16))
            .collect(),
    }
}

fn state() -> HostState {
    let tenants: Vec<String> = (0..TENANTS).map(|t| format!("t{t}")).collect();
    let zones = tenant_zones(tenants.iter().map(String::as_str));
    let locals_per_net = LOCAL / NETWORKS;
    let remotes_per_net = REMOTE / NETWORKS;
    HostState {
        uplink_port: None,
        tunnel_port: Some(1),
        gateway_port: Some(GatewayPort {
            ofport: 2,
            mac: weft_policy::layout::host_gateway_mac(Ipv4Addr::new(192, 168, 1, 1)),
            address: Ipv4Addr::new(192, 168, 1, 1),
        }),
        other_hosts: (0..HOSTS)
            .map(|h| Ipv4Addr::new(192, 168, 1, h as u8 + 2))
            .collect(),
        service_cidrs: vec![(Ipv4Addr::new(10, 96, 0, 0), 12)],
        networks: (0..NETWORKS)
            .map(|n| Network {
                key: net_key(n),
                segment: Segment::Vxlan(1000 + n),
                gateway: Some(addr(n, 0)),
                zone: zones[&format!("t{}", n / NETWORKS_PER_TENANT)],
                subnet: Some((Ipv4Addr::from(0x0a00_0000 | (n << 16)), 16)),
                host_access: n % NETWORKS_PER_TENANT == 0,
                external: n % NETWORKS_PER_TENANT == 1,
            })
            .collect(),
        endpoints: (0..NETWORKS)
            .flat_map(|n| (1..=locals_per_net).map(move |i| (n, i)))
            .map(|(n, i)| local(n, i, 10 + n * locals_per_net + i))
            .collect(),
        remote_endpoints: (0..NETWORKS)
            .flat_map(|n| (100..100 + remotes_per_net).map(move |i| remote(n, i)))
            .collect(),
        groups: (0..NETWORKS)
            .flat_map(|n| (0..2).map(move |g| (n, g)))
            .map(|(n, g)| {
                let t = n / NETWORKS_PER_TENANT;
                EndpointGroup {
                    key: group_key(n, g),
                    network: net_key(n),
                    // Policy 0 of the tenant on every group of it, policy 1 on the first group of
                    // each network.
                    policies: if g == 0 {
                        vec![policy_key(t, 0), policy_key(t, 1)]
                    } else {
                        vec![policy_key(t, 0)]
                    },
                    default_deny: g == 0,
                    profile: None,
                    log: false,
                }
            })
            .collect(),
        policies: (0..TENANTS)
            .flat_map(|t| (0..2).map(move |p| policy(t, p)))
            .collect(),
    }
}

/// Times `change` (apply and the reconciler's diff), then `undo` (not timed), `iters` times.
fn measure(
    inc: &mut Incremental,
    installed: &mut weft_policy::FlowSet,
    iters: u64,
    change: impl Fn(u64) -> StateChange,
    undo: impl Fn(u64) -> StateChange,
) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let start = Instant::now();
        let delta = inc.apply([change(i)]);
        let d = diff_delta(installed, &delta);
        total += start.elapsed();
        black_box(&d);
        installed.apply_delta(&delta);
        let delta = inc.apply([undo(i)]);
        installed.apply_delta(&delta);
    }
    total
}

fn bench(c: &mut Criterion) {
    let s = state();
    let start = Instant::now();
    let mut inc = Incremental::new(s.clone());
    let built = start.elapsed();
    assert!(inc.problems().is_empty(), "{:?}", inc.problems());
    let mut installed = inc.flows().clone();
    println!(
        "incremental: {} flows, {} groups; Incremental::new {:.1} ms",
        installed.flows.len(),
        installed.groups.len(),
        built.as_secs_f64() * 1e3
    );

    let new_remote = |i: u64| remote(3, 1_000_000 + (i % 1000) as u32);
    let existing = |i: u64| remote(3, 100 + (i % 100) as u32);
    let new_local = |i: u64| {
        let mut e = local(3, 1000 + (i % 100) as u32, 10_000 + (i % 100) as u32);
        e.group = Some(group_key(3, 0));
        e
    };
    // A new remote endpoint with the address of an existing one: the network's remote
    // endpoints are resolved afresh (the fallback for a contested key).
    let clashing = |i: u64| {
        let mut r = new_remote(i);
        r.ipv4 = existing(i).ipv4;
        r
    };
    let changed_rule = |i: u64| {
        let mut p = policy(2, 0);
        p.rules[2].ports = Some((9000 + (i % 100) as u16, 9000 + (i % 100) as u16));
        p
    };
    // What one of each does to the set.
    for (what, change, undo) in [
        (
            "one remote endpoint added",
            StateChange::UpsertRemote(new_remote(0)),
            StateChange::RemoveRemote(new_remote(0).key),
        ),
        (
            "one remote endpoint removed",
            StateChange::RemoveRemote(existing(0).key),
            StateChange::UpsertRemote(existing(0)),
        ),
        (
            "one remote endpoint added with another's address",
            StateChange::UpsertRemote(clashing(0)),
            StateChange::RemoveRemote(clashing(0).key),
        ),
        (
            "one local endpoint added",
            StateChange::UpsertEndpoint(new_local(0)),
            StateChange::RemoveEndpoint(new_local(0).key),
        ),
        (
            "one rule changed",
            StateChange::UpsertPolicy(changed_rule(0)),
            StateChange::UpsertPolicy(policy(2, 0)),
        ),
    ] {
        let d = inc.apply([change]);
        println!(
            "  {what}: {} flows added or replaced, {} removed, {} groups changed",
            d.flows_upsert.len(),
            d.flows_remove.len(),
            d.groups_upsert.len() + d.groups_remove.len()
        );
        inc.apply([undo]);
    }

    let mut g = c.benchmark_group("incremental");
    g.bench_function("remote endpoint added", |b| {
        b.iter_custom(|n| {
            measure(
                &mut inc,
                &mut installed,
                n,
                |i| StateChange::UpsertRemote(new_remote(i)),
                |i| StateChange::RemoveRemote(new_remote(i).key),
            )
        })
    });
    g.bench_function("remote endpoint removed", |b| {
        b.iter_custom(|n| {
            measure(
                &mut inc,
                &mut installed,
                n,
                |i| StateChange::RemoveRemote(existing(i).key),
                |i| StateChange::UpsertRemote(existing(i)),
            )
        })
    });
    g.bench_function("remote endpoint added, address taken", |b| {
        b.iter_custom(|n| {
            measure(
                &mut inc,
                &mut installed,
                n,
                |i| StateChange::UpsertRemote(clashing(i)),
                |i| StateChange::RemoveRemote(clashing(i).key),
            )
        })
    });
    g.bench_function("local endpoint added", |b| {
        b.iter_custom(|n| {
            measure(
                &mut inc,
                &mut installed,
                n,
                |i| StateChange::UpsertEndpoint(new_local(i)),
                |i| StateChange::RemoveEndpoint(new_local(i).key),
            )
        })
    });
    g.bench_function("rule changed", |b| {
        b.iter_custom(|n| {
            measure(
                &mut inc,
                &mut installed,
                n,
                |i| StateChange::UpsertPolicy(changed_rule(i)),
                |_| StateChange::UpsertPolicy(policy(2, 0)),
            )
        })
    });
    g.finish();

    let mut g = c.benchmark_group("full");
    g.sample_size(10);
    let mut s2 = s.clone();
    s2.remote_endpoints.push(new_remote(0));
    g.bench_function("compile and diff (one remote endpoint added)", |b| {
        b.iter(|| diff(&installed, &compile(black_box(&s2)).flows))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

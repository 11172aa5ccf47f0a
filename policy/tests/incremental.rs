//! The incremental compiler against the full one: random host states and random changes
//! (clashes of segments, ports, MACs, addresses and routes; unknown networks, groups and
//! policies; VLAN and VXLAN; host access and egress; the gateway port coming and going;
//! conjunctions; colliding group and conjunction ids). After every step the kept set is what a
//! full compile makes of the kept state, and the step's delta turns the previous set into it.

use std::net::{Ipv4Addr, Ipv6Addr};

use ofproto::instruction::Instruction;
use proptest::prelude::*;
use weft_policy::{
    compile, diff, diff_delta, Direction, Endpoint, EndpointGroup, GatewayPort, HostState,
    Incremental, Network, Peer, Policy, Profile, RemoteEndpoint, Rule, Segment, StateChange,
};

/// Two group keys whose ids collide (the later one in key order moves on), and two rule keys
/// whose conjunction ids collide.
const CLASHING_GROUPS: [&str; 2] = ["a:g102406", "a:g60994"];
const CLASHING_RULES: [&str; 2] = ["a:p:r101000", "a:p:r77317"];

const NETWORKS: [&str; 4] = ["a:n1", "a:n2", "b:n1", "b:n2"];
const GROUPS: [&str; 5] = [
    "a:g1",
    CLASHING_GROUPS[0],
    CLASHING_GROUPS[1],
    "b:g1",
    "b:g2",
];
const POLICIES: [&str; 4] = ["a:p", "a:q", "b:p", "b:q"];

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

fn mac(i: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, i]
}

fn network_key() -> BoxedStrategy<String> {
    // Mostly known networks, sometimes one nobody defines.
    prop_oneof![
        8 => prop::sample::select(&NETWORKS[..]).prop_map(String::from),
        1 => Just("c:unknown".to_string()),
    ]
    .boxed()
}

/// The network a group's endpoints are mostly in.
fn home(group: &str) -> &'static str {
    match group {
        "a:g1" | "a:g102406" => "a:n1",
        "a:g60994" => "a:n2",
        "b:g1" => "b:n1",
        _ => "b:n2",
    }
}

/// A group, and a network: mostly the group's own.
fn group_and_network() -> BoxedStrategy<(Option<String>, String)> {
    (group_key(), network_key(), 0u8..5)
        .prop_map(|(g, n, home_odds)| {
            let n = match &g {
                Some(g) if home_odds > 0 => home(g).to_string(),
                None if home_odds > 0 => NETWORKS[usize::from(home_odds - 1)].to_string(),
                _ => n,
            };
            (g, n)
        })
        .boxed()
}

fn group_key() -> BoxedStrategy<Option<String>> {
    prop_oneof![
        1 => Just(None),
        8 => prop::sample::select(&GROUPS[..]).prop_map(|g| Some(g.to_string())),
        1 => Just(Some("a:nobody".to_string())),
    ]
    .boxed()
}

fn address() -> BoxedStrategy<Ipv4Addr> {
    // A small pool, so that addresses clash within networks and routes within tenants.
    (0u8..2, 1u8..7).prop_map(|(s, h)| ip(10, 0, s, h)).boxed()
}

fn network() -> BoxedStrategy<Network> {
    prop::sample::select(&NETWORKS[..])
        .prop_flat_map(network_for)
        .boxed()
}

fn network_for(key: &'static str) -> BoxedStrategy<Network> {
    (
        Just(key),
        any::<bool>(),
        prop_oneof![
            Just(Segment::Vlan(10)),
            Just(Segment::Vlan(11)),
            Just(Segment::Vxlan(10)),
            Just(Segment::Vxlan(20)),
            Just(Segment::Vxlan(30)),
            Just(Segment::Vxlan(40)),
        ],
        prop::option::of(address()),
        prop_oneof![3 => Just(None), 1 => Just(Some(7u16))],
        prop::option::of(prop_oneof![
            Just((ip(10, 0, 0, 0), 24)),
            Just((ip(10, 0, 1, 0), 24)),
            Just((ip(10, 0, 0, 0), 16)),
        ]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(key, own, segment, gateway, zone, subnet, host_access, external)| Network {
                // The tenant's zone, or now and then another one (a tenant whose zone moved).
                zone: zone.unwrap_or(if key.starts_with("a:") { 1 } else { 2 }),
                key: key.to_string(),
                // Half the time a segment of its own, else one of a few shared ones.
                segment: if own {
                    let i = NETWORKS.iter().position(|n| *n == key).unwrap_or(0) as u32;
                    if i.is_multiple_of(2) {
                        Segment::Vxlan(100 + i)
                    } else {
                        Segment::Vlan(100 + i as u16)
                    }
                } else {
                    segment
                },
                gateway,
                subnet,
                host_access,
                external,
            },
        )
        .boxed()
}

fn endpoint() -> BoxedStrategy<Endpoint> {
    (
        0u8..6,
        group_and_network(),
        prop::option::of(10u32..16),
        prop::option::of(0u8..8),
        prop::collection::vec(address(), 0..3),
        prop::collection::vec(
            prop_oneof![
                Just(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
                Just(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
            ],
            0..2,
        ),
    )
        .prop_map(|(i, (group, network), ofport, m, ipv4, ipv6)| Endpoint {
            key: format!("e{i}"),
            network,
            // Mostly its own port and MAC; some clash.
            ofport: ofport.unwrap_or(10 + u32::from(i)),
            mac: mac(m.unwrap_or(i)),
            ipv4,
            ipv6,
            group,
        })
        .boxed()
}

fn remote() -> BoxedStrategy<RemoteEndpoint> {
    (
        0u8..8,
        group_and_network(),
        1u8..4,
        prop::option::of(0u8..10),
        prop::collection::vec(address(), 0..3),
    )
        .prop_map(|(i, (group, network), v, m, ipv4)| RemoteEndpoint {
            key: format!("r{i}"),
            network,
            vtep: ip(192, 168, 0, v),
            mac: mac(m.unwrap_or(20 + i)),
            ipv4,
            group,
        })
        .boxed()
}

fn profile() -> BoxedStrategy<Option<Profile>> {
    prop::option::of(
        (
            prop::option::of(prop_oneof![Just(1000u32), Just(2000)]),
            0u32..2,
            prop::option::of(Just(10u8)),
        )
            .prop_map(|(rate_kbps, burst_kb, dscp)| Profile {
                rate_kbps,
                burst_kb,
                dscp,
            }),
    )
    .boxed()
}

fn group() -> BoxedStrategy<EndpointGroup> {
    prop::sample::select(&GROUPS[..])
        .prop_flat_map(group_for)
        .boxed()
}

fn group_for(key: &'static str) -> BoxedStrategy<EndpointGroup> {
    (
        Just(key),
        prop_oneof![4 => Just(None), 1 => network_key().prop_map(Some)],
        prop::collection::vec(
            prop_oneof![
                16 => prop::sample::select(&POLICIES[..2]).prop_map(String::from),
                2 => prop::sample::select(&POLICIES[..]).prop_map(String::from),
                1 => Just("a:missing".to_string()),
            ],
            1..4,
        ),
        any::<bool>(),
        profile(),
        any::<bool>(),
    )
        .prop_map(
            |(key, network, policies, default_deny, profile, log)| EndpointGroup {
                key: key.to_string(),
                network: network.unwrap_or_else(|| home(key).to_string()),
                policies,
                default_deny,
                profile,
                log,
            },
        )
        .boxed()
}

fn rule() -> BoxedStrategy<Rule> {
    (
        prop_oneof![
            prop::sample::select(&CLASHING_RULES[..]).prop_map(String::from),
            (0u8..3).prop_map(|i| format!("r{i}")),
        ],
        1u8..4,
        prop_oneof![Just(Direction::In), Just(Direction::Out)],
        prop_oneof![
            Just(Peer::Any),
            group_key().prop_map(|g| Peer::Group(g.unwrap_or_else(|| "b:none".into()))),
            Just(Peer::Cidr(ip(10, 9, 0, 0), 16)),
        ],
        prop::option::of(prop_oneof![Just(6u8), Just(17), Just(1)]),
        prop::option::of(prop_oneof![Just((80u16, 80u16)), Just((8000, 8003))]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(key, priority, direction, peer, protocol, ports, allow, log)| Rule {
                key,
                priority,
                direction,
                peer,
                protocol,
                ports,
                allow,
                log,
            },
        )
        .boxed()
}

fn policy() -> BoxedStrategy<Policy> {
    prop::sample::select(&POLICIES[..])
        .prop_flat_map(policy_for)
        .boxed()
}

fn policy_for(key: &'static str) -> BoxedStrategy<Policy> {
    (Just(key), prop::collection::vec(rule(), 0..5))
        .prop_map(|(key, rules)| Policy {
            key: key.to_string(),
            rules,
        })
        .boxed()
}

fn gateway_port() -> BoxedStrategy<Option<GatewayPort>> {
    prop::option::of(
        (prop_oneof![Just(1u32), Just(20)], 0u8..2).prop_map(|(ofport, m)| {
            GatewayPort {
                ofport,
                // Sometimes an endpoint's MAC: its forwarding flow and the gateway's clash.
                mac: if m == 0 {
                    mac(1)
                } else {
                    [0x0a, 0, 192, 168, 0, 9]
                },
                address: ip(192, 168, 0, 9),
            }
        }),
    )
    .boxed()
}

fn change() -> BoxedStrategy<StateChange> {
    prop_oneof![
        6 => remote().prop_map(StateChange::UpsertRemote),
        3 => (0u8..8).prop_map(|i| StateChange::RemoveRemote(format!("r{i}"))),
        4 => endpoint().prop_map(StateChange::UpsertEndpoint),
        2 => (0u8..6).prop_map(|i| StateChange::RemoveEndpoint(format!("e{i}"))),
        2 => network().prop_map(StateChange::UpsertNetwork),
        1 => prop::sample::select(&NETWORKS[..]).prop_map(|k| StateChange::RemoveNetwork(k.into())),
        2 => group().prop_map(StateChange::UpsertGroup),
        1 => prop::sample::select(&GROUPS[..]).prop_map(|k| StateChange::RemoveGroup(k.into())),
        2 => policy().prop_map(StateChange::UpsertPolicy),
        1 => prop::sample::select(&POLICIES[..]).prop_map(|k| StateChange::RemovePolicy(k.into())),
        1 => (
            prop::option::of(prop_oneof![Just(1u32), Just(2)]),
            prop::option::of(prop_oneof![Just(2u32), Just(3)]),
            gateway_port()
        )
            .prop_map(|(uplink_port, tunnel_port, gateway_port)| StateChange::Ports {
                uplink_port,
                tunnel_port,
                gateway_port
            }),
        1 => prop::collection::vec((1u8..4).prop_map(|v| ip(192, 168, 0, v)), 0..3)
            .prop_map(StateChange::OtherHosts),
        1 => prop::collection::vec(
            prop_oneof![Just((ip(10, 96, 0, 0), 12u8)), Just((ip(10, 0, 0, 0), 24))],
            0..2
        )
        .prop_map(StateChange::ServiceCidrs),
    ]
    .boxed()
}

fn host_state() -> BoxedStrategy<HostState> {
    (
        (
            NETWORKS.map(|k| prop::option::weighted(0.85, network_for(k))),
            GROUPS.map(|k| prop::option::weighted(0.8, group_for(k))),
            POLICIES.map(|k| prop::option::weighted(0.8, policy_for(k))),
            prop::collection::vec(endpoint(), 2..9),
            prop::collection::vec(remote(), 0..8),
        ),
        prop::collection::vec(change(), 0..10),
        prop::option::of(Just(1u32)),
        prop::option::of(Just(2u32)),
        gateway_port(),
    )
        .prop_map(
            |((nets, groups, policies, eps, remotes), changes, uplink, tunnel, gateway_port)| {
                // A state built by upserts (the last of a key counts, as in
                // `Incremental::new`), then shaken by a few random changes.
                let mut inc = Incremental::new(HostState {
                    uplink_port: uplink,
                    tunnel_port: tunnel,
                    gateway_port,
                    other_hosts: vec![ip(192, 168, 0, 1)],
                    networks: nets.into_iter().flatten().collect(),
                    groups: groups.into_iter().flatten().collect(),
                    policies: policies.into_iter().flatten().collect(),
                    endpoints: eps,
                    remote_endpoints: remotes,
                    ..HostState::default()
                });
                inc.apply(changes);
                inc.state()
            },
        )
        .boxed()
}

/// The kept set, owners and problems are the full compile's; the delta leads from `prev` to the
/// new set, and its diff is the whole diff.
fn check(inc: &Incremental, prev: &weft_policy::FlowSet, delta: &weft_policy::Delta) {
    let full = compile(&inc.state());
    assert_eq!(inc.flows(), &full.flows, "flows differ from a full compile");
    assert_eq!(inc.problems(), full.problems);
    assert_eq!(inc.owners(), &full.owners);
    let mut replayed = prev.clone();
    replayed.apply_delta(delta);
    assert_eq!(
        &replayed,
        inc.flows(),
        "the delta does not lead to the new set"
    );
    assert_eq!(diff_delta(prev, delta), diff(prev, inc.flows()));
    inc.verify().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Logging adds the copy to netplugin to the flows of logged rules and default denies, and
    /// nothing else: without it, the flows are those of the same state without logging.
    #[test]
    fn logging_adds_only_the_copy(start in host_state()) {
        let with = compile(&start);
        let mut plain_state = start.clone();
        for g in &mut plain_state.groups {
            g.log = false;
        }
        for p in &mut plain_state.policies {
            for r in &mut p.rules {
                r.log = false;
            }
        }
        let plain = compile(&plain_state);
        let logged_rules: std::collections::BTreeSet<u64> = start
            .policies
            .iter()
            .flat_map(|p| &p.rules)
            .filter(|r| r.log)
            .map(|r| weft_policy::layout::cookie(weft_policy::layout::CookieKind::Rule, &r.key))
            .collect();
        let logged_groups: std::collections::BTreeSet<u64> = start
            .groups
            .iter()
            .filter(|g| g.log && g.default_deny)
            .map(|g| weft_policy::layout::cookie(weft_policy::layout::CookieKind::Group, &g.key))
            .collect();
        let mut stripped = with.flows.clone();
        for f in stripped.flows.values_mut() {
            let mut logs = 0;
            for i in &mut f.instructions {
                if let Instruction::ApplyActions(a) = i {
                    let n = a.len();
                    a.retain(|a| weft_policy::logging::controller_meter(a).is_none());
                    logs += n - a.len();
                }
            }
            f.instructions
                .retain(|i| !matches!(i, Instruction::ApplyActions(a) if a.is_empty()));
            if logs > 0 {
                prop_assert_eq!(logs, 1);
                prop_assert!(f.table == 33 || f.table == 63, "{}", f);
                prop_assert!(
                    logged_rules.contains(&f.cookie) || logged_groups.contains(&f.cookie),
                    "{}", f
                );
            }
        }
        prop_assert_eq!(&stripped, &plain.flows);
        prop_assert!(with.flows.meters.contains_key(&weft_policy::logging::VERDICT_METER));
    }

    #[test]
    fn incremental_equals_full_compile(
        start in host_state(),
        steps in prop::collection::vec(prop::collection::vec(change(), 1..4), 1..20),
    ) {
        let mut inc = Incremental::new(start.clone());
        let first = inc.flows().clone();
        check(&inc, &compile(&start).flows, &weft_policy::Delta::default());
        // The steps' deltas, composed, lead from the first set to the last.
        let mut all = weft_policy::Delta::default();
        for step in steps {
            let prev = inc.flows().clone();
            let delta = inc.apply(step);
            check(&inc, &prev, &delta);
            all.then(delta);
        }
        let mut replayed = first;
        replayed.apply_delta(&all);
        prop_assert_eq!(&replayed, inc.flows());
    }

    #[test]
    fn repeating_a_state_changes_nothing(start in host_state()) {
        let mut inc = Incremental::new(start.clone());
        let again: Vec<StateChange> = start
            .networks.iter().cloned().map(StateChange::UpsertNetwork)
            .chain(start.endpoints.iter().cloned().map(StateChange::UpsertEndpoint))
            .chain(start.remote_endpoints.iter().cloned().map(StateChange::UpsertRemote))
            .chain(start.groups.iter().cloned().map(StateChange::UpsertGroup))
            .chain(start.policies.iter().cloned().map(StateChange::UpsertPolicy))
            .collect();
        let delta = inc.apply(again);
        prop_assert!(delta.is_empty(), "{delta:?}");
        prop_assert!(diff_delta(inc.flows(), &delta).is_empty());
    }
}

/// A change and its undoing within one apply leave nothing to do.
#[test]
fn a_change_undone_in_the_same_apply_is_no_change() {
    let state = HostState {
        tunnel_port: Some(2),
        networks: vec![Network {
            key: "a:n1".into(),
            segment: Segment::Vxlan(10),
            gateway: None,
            zone: 1,
            subnet: None,
            host_access: false,
            external: false,
        }],
        endpoints: vec![Endpoint {
            key: "e0".into(),
            network: "a:n1".into(),
            ofport: 10,
            mac: mac(1),
            ipv4: vec![ip(10, 0, 0, 1)],
            ipv6: vec![],
            group: None,
        }],
        ..HostState::default()
    };
    let mut inc = Incremental::new(state);
    let r = RemoteEndpoint {
        key: "r0".into(),
        network: "a:n1".into(),
        vtep: ip(192, 168, 0, 1),
        mac: mac(2),
        ipv4: vec![ip(10, 0, 0, 2)],
        group: None,
    };
    let d = inc.apply([
        StateChange::UpsertRemote(r),
        StateChange::RemoveRemote("r0".into()),
    ]);
    assert!(d.is_empty(), "{d:?}");
}

fn vxlan(key: &str, vni: u32, zone: u16) -> Network {
    Network {
        key: key.into(),
        segment: Segment::Vxlan(vni),
        gateway: None,
        zone,
        subnet: None,
        host_access: false,
        external: false,
    }
}

fn local(key: &str, net: &str, port: u32, m: u8, addr: Ipv4Addr, group: &str) -> Endpoint {
    Endpoint {
        key: key.into(),
        network: net.into(),
        ofport: port,
        mac: mac(m),
        ipv4: vec![addr],
        ipv6: vec![],
        group: Some(group.into()),
    }
}

fn remote_in(key: &str, net: &str, m: u8, addr: Ipv4Addr, group: &str) -> RemoteEndpoint {
    RemoteEndpoint {
        key: key.into(),
        network: net.into(),
        vtep: ip(192, 168, 0, 1),
        mac: mac(m),
        ipv4: vec![addr],
        group: Some(group.into()),
    }
}

fn plain_group(key: &str, net: &str, policies: &[&str]) -> EndpointGroup {
    EndpointGroup {
        key: key.into(),
        network: net.into(),
        policies: policies.iter().map(|p| p.to_string()).collect(),
        default_deny: true,
        profile: None,
        log: false,
    }
}

/// Applies each step and checks it.
fn check_steps(state: HostState, steps: Vec<Vec<StateChange>>) {
    let mut inc = Incremental::new(state.clone());
    check(&inc, &compile(&state).flows, &weft_policy::Delta::default());
    for step in steps {
        let prev = inc.flows().clone();
        let delta = inc.apply(step);
        check(&inc, &prev, &delta);
    }
}

/// Two group keys with one hash: adding the one first in key order moves the other's id, and
/// every flow that carries it (its members' here and elsewhere, its default deny, the rules
/// that name it).
#[test]
fn a_group_id_moved_by_a_clash() {
    let [first, second] = CLASHING_GROUPS;
    let rule = Rule {
        key: "a:p:1".into(),
        priority: 1,
        direction: Direction::In,
        peer: Peer::Group(second.into()),
        protocol: Some(6),
        ports: Some((80, 80)),
        allow: true,
        log: false,
    };
    let state = HostState {
        tunnel_port: Some(2),
        networks: vec![vxlan("a:n1", 10, 1)],
        endpoints: vec![local("e0", "a:n1", 10, 1, ip(10, 0, 0, 1), second)],
        remote_endpoints: vec![remote_in("r0", "a:n1", 2, ip(10, 0, 0, 2), second)],
        groups: vec![plain_group(second, "a:n1", &["a:p"])],
        policies: vec![Policy {
            key: "a:p".into(),
            rules: vec![rule],
        }],
        ..HostState::default()
    };
    let add = vec![StateChange::UpsertGroup(plain_group(first, "a:n1", &[]))];
    let remove = vec![StateChange::RemoveGroup(first.into())];
    check_steps(state, vec![add, remove]);
}

/// Two rule keys with one hash, in two policies on two groups: the conjunction ids follow the
/// policies' order.
#[test]
fn a_conjunction_id_moved_by_a_clash() {
    let [first, second] = CLASHING_RULES;
    let rule = |key: &str, port: u16| Rule {
        key: key.into(),
        priority: 1,
        direction: Direction::In,
        peer: Peer::Any,
        protocol: Some(6),
        ports: Some((port, port)),
        allow: true,
        log: false,
    };
    let state = HostState {
        tunnel_port: Some(2),
        networks: vec![vxlan("a:n1", 10, 1)],
        endpoints: vec![
            local("e0", "a:n1", 10, 1, ip(10, 0, 0, 1), "a:g1"),
            local("e1", "a:n1", 11, 2, ip(10, 0, 0, 2), "a:g2"),
        ],
        groups: vec![
            plain_group("a:g1", "a:n1", &["a:p", "a:q"]),
            plain_group("a:g2", "a:n1", &["a:p", "a:q"]),
        ],
        policies: vec![Policy {
            key: "a:q".into(),
            rules: vec![rule(second, 80)],
        }],
        ..HostState::default()
    };
    let p = |rules| {
        StateChange::UpsertPolicy(Policy {
            key: "a:p".into(),
            rules,
        })
    };
    check_steps(
        state,
        vec![
            vec![p(vec![rule(first, 443)])],
            vec![p(vec![rule(first, 443), rule(second, 8080)])],
            vec![StateChange::RemovePolicy("a:p".into())],
        ],
    );
}

/// Within one apply, one endpoint gives up its MAC and another takes it: neither clashes, in
/// either order of keys.
#[test]
fn a_mac_handed_over_within_one_apply() {
    let state = HostState {
        tunnel_port: Some(2),
        networks: vec![vxlan("a:n1", 10, 1)],
        endpoints: vec![
            local("e0", "a:n1", 10, 1, ip(10, 0, 0, 1), "a:g1"),
            local("e1", "a:n1", 11, 2, ip(10, 0, 0, 2), "a:g1"),
        ],
        remote_endpoints: vec![remote_in("r0", "a:n1", 3, ip(10, 0, 0, 3), "a:g1")],
        ..HostState::default()
    };
    let with_mac = |k: &str, port: u32, m: u8, a: u8| {
        StateChange::UpsertEndpoint(local(k, "a:n1", port, m, ip(10, 0, 0, a), "a:g1"))
    };
    check_steps(
        state,
        vec![
            // e1 gives up MAC 2 and e0 takes it; then e0 gives it back and e1 takes it again.
            vec![with_mac("e1", 11, 4, 2), with_mac("e0", 10, 2, 1)],
            // A remote endpoint with the MAC e0 took loses it to e0.
            vec![StateChange::UpsertRemote(remote_in(
                "r1",
                "a:n1",
                2,
                ip(10, 0, 0, 9),
                "a:g1",
            ))],
            vec![StateChange::RemoveRemote("r1".into())],
            vec![with_mac("e0", 10, 1, 1), with_mac("e1", 11, 2, 2)],
            // An address handed over between two endpoints, and a remote endpoint's MAC taken.
            vec![with_mac("e0", 10, 1, 5), with_mac("e1", 11, 2, 1)],
            vec![with_mac("e1", 11, 3, 1)],
        ],
    );
}

//! The pipeline simulator on compiled hosts: two hosts' views of one tenant's VXLAN networks
//! (groups, default deny, rules by group, CIDR and port, a conjunction), and what becomes of
//! packets between them.

use std::net::Ipv4Addr;

use expect_test::expect;
use weft_policy::layout::{GATEWAY_MAC, LOCAL_FLOOD_BIT};
use weft_policy::sim::{Arp, Output, Step, Via, L3};
use weft_policy::{
    compile, parse_mac, Bridge, Compiled, Conntrack, Direction, Endpoint, EndpointGroup, HostState,
    Network, Packet, Peer, Policy, RemoteEndpoint, Rule, Segment, Trace, Verdict,
};

const TUNNEL: u32 = 9;
const VTEP_A: &str = "192.168.9.1";
const VTEP_B: &str = "192.168.9.2";

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn mac(s: &str) -> [u8; 6] {
    parse_mac(s).unwrap()
}

/// An endpoint of the scenario: key, host ('A' or 'B'), network, port, MAC, address, group.
struct Ep {
    key: &'static str,
    host: char,
    net: &'static str,
    port: u32,
    mac: &'static str,
    ip: &'static str,
    group: Option<&'static str>,
}

/// Tenant blue: `web` (VXLAN 5001, 10.1.0.0/24) and `db` (VXLAN 5002, 10.2.0.0/24); tenant red:
/// `web` (VXLAN 6001) on the same subnet as blue's. Host A has web-1, web-2, db-2 and red-1
/// (with web-1's address); host B has db-1 and web-3.
const EPS: [Ep; 6] = [
    Ep {
        key: "web-1",
        host: 'A',
        net: "blue:web",
        port: 2,
        mac: "02:00:0a:01:00:02",
        ip: "10.1.0.2",
        group: Some("blue:web"),
    },
    Ep {
        key: "web-2",
        host: 'A',
        net: "blue:web",
        port: 3,
        mac: "02:00:0a:01:00:03",
        ip: "10.1.0.3",
        group: Some("blue:web"),
    },
    Ep {
        key: "db-2",
        host: 'A',
        net: "blue:db",
        port: 4,
        mac: "02:00:0a:02:00:04",
        ip: "10.2.0.4",
        group: Some("blue:db"),
    },
    Ep {
        key: "red-1",
        host: 'A',
        net: "red:web",
        port: 6,
        mac: "02:00:0b:01:00:02",
        ip: "10.1.0.2",
        group: None,
    },
    Ep {
        key: "db-1",
        host: 'B',
        net: "blue:db",
        port: 2,
        mac: "02:00:0a:02:00:05",
        ip: "10.2.0.5",
        group: Some("blue:db"),
    },
    Ep {
        key: "web-3",
        host: 'B',
        net: "blue:web",
        port: 3,
        mac: "02:00:0a:01:00:07",
        ip: "10.1.0.7",
        group: Some("blue:web"),
    },
];

fn ep(key: &str) -> &'static Ep {
    EPS.iter().find(|e| e.key == key).unwrap()
}

fn network(key: &str, vni: u32, subnet: &str, gw: &str, zone: u16) -> Network {
    Network {
        key: key.into(),
        segment: Segment::Vxlan(vni),
        gateway: Some(ip(gw)),
        zone,
        subnet: Some((ip(subnet), 24)),
        host_access: false,
        external: false,
    }
}

fn rule(key: &str, priority: u8, direction: Direction, peer: Peer, port: u16, allow: bool) -> Rule {
    Rule {
        key: key.into(),
        priority,
        direction,
        peer,
        protocol: Some(6),
        ports: Some((port, port)),
        allow,
        log: false,
    }
}

fn group(key: &str, net: &str, policies: &[&str], default_deny: bool) -> EndpointGroup {
    EndpointGroup {
        key: key.into(),
        network: net.into(),
        policies: policies.iter().map(|p| p.to_string()).collect(),
        default_deny,
        profile: None,
        log: false,
    }
}

/// Host `host`'s view: its endpoints, the other host's as remote ones, every group and policy.
/// `db` is default deny and takes Postgres from `web` but not from 10.1.0.3; `web` may not
/// start telnet; `ops` (on both groups: a conjunction) lets the web subnet in on ssh.
fn host(host: char) -> HostState {
    let other_vtep = ip(if host == 'A' { VTEP_B } else { VTEP_A });
    let mut s = HostState {
        tunnel_port: Some(TUNNEL),
        networks: vec![
            network("blue:web", 5001, "10.1.0.0", "10.1.0.1", 1),
            network("blue:db", 5002, "10.2.0.0", "10.2.0.1", 1),
            network("red:web", 6001, "10.1.0.0", "10.1.0.1", 2),
        ],
        groups: vec![
            group("blue:web", "blue:web", &["blue:web-out", "blue:ops"], false),
            group("blue:db", "blue:db", &["blue:db-in", "blue:ops"], true),
        ],
        policies: vec![
            Policy {
                key: "blue:db-in".into(),
                rules: vec![
                    rule(
                        "blue:db-in:pg",
                        10,
                        Direction::In,
                        Peer::Group("blue:web".into()),
                        5432,
                        true,
                    ),
                    rule(
                        "blue:db-in:no-web-2",
                        20,
                        Direction::In,
                        Peer::Cidr(ip("10.1.0.3"), 32),
                        5432,
                        false,
                    ),
                ],
            },
            Policy {
                key: "blue:web-out".into(),
                rules: vec![rule(
                    "blue:web-out:telnet",
                    50,
                    Direction::Out,
                    Peer::Any,
                    23,
                    false,
                )],
            },
            Policy {
                key: "blue:ops".into(),
                rules: vec![rule(
                    "blue:ops:ssh",
                    30,
                    Direction::In,
                    Peer::Cidr(ip("10.1.0.0"), 24),
                    22,
                    true,
                )],
            },
        ],
        ..HostState::default()
    };
    for e in &EPS {
        if e.host == host {
            s.endpoints.push(Endpoint {
                key: e.key.into(),
                network: e.net.into(),
                ofport: e.port,
                mac: mac(e.mac),
                ipv4: vec![ip(e.ip)],
                ipv6: vec![],
                group: e.group.map(Into::into),
            });
        } else {
            s.remote_endpoints.push(RemoteEndpoint {
                key: e.key.into(),
                network: e.net.into(),
                vtep: other_vtep,
                mac: mac(e.mac),
                ipv4: vec![ip(e.ip)],
                group: e.group.map(Into::into),
            });
        }
    }
    s
}

fn compiled(h: char) -> Compiled {
    let c = compile(&host(h));
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    c
}

/// A TCP packet from endpoint `from` to `to`'s address: to its MAC in the same network, to the
/// gateway MAC (routed) in another.
fn tcp(from: &str, to: &str, port: u16) -> Packet {
    let (f, t) = (ep(from), ep(to));
    let dst_mac = if f.net == t.net {
        t.mac
    } else {
        "00:00:11:11:11:11"
    };
    Packet::tcp(f.port, mac(f.mac), mac(dst_mac), ip(f.ip), ip(t.ip), port)
}

fn with_ttl(l3: L3, ttl: u8) -> L3 {
    match l3 {
        L3::Ipv4(v4) => L3::Ipv4(weft_policy::sim::Ipv4 { ttl, ..v4 }),
        other => other,
    }
}

fn tables(t: &Trace) -> Vec<u8> {
    t.steps.iter().map(|s| s.table).collect()
}

fn one_output(t: &Trace) -> &Output {
    match &t.verdict {
        Verdict::Output(o) if o.len() == 1 => &o[0],
        _ => panic!("expected one output:\n{t}"),
    }
}

fn dropped(t: &Trace) -> (u8, &str) {
    match &t.verdict {
        Verdict::Dropped { table, reason } => (*table, reason.as_str()),
        _ => panic!("expected a drop:\n{t}"),
    }
}

/// The step of `table` (the last one, if the packet met it twice).
fn step(t: &Trace, table: u8) -> &Step {
    t.steps
        .iter()
        .rev()
        .find(|s| s.table == table)
        .unwrap_or_else(|| panic!("no step in table {table}:\n{t}"))
}

#[test]
fn an_allowed_connection_goes_through_every_stage_to_the_tunnel_and_the_port() {
    let (a, b) = (compiled('A'), compiled('B'));
    let (sim_a, sim_b) = (Bridge::of(&a, Some(TUNNEL)), Bridge::of(&b, Some(TUNNEL)));

    // web-1 → db-1 (on host B, in the other network): Postgres, which db takes from web.
    let syn = tcp("web-1", "db-1", 5432);
    let at_a = sim_a.trace(&syn, &Conntrack::new());
    assert_eq!(
        tables(&at_a),
        [0, 10, 20, 30, 31, 32, 33, 40, 50, 60, 61, 70],
        "{at_a}"
    );
    // A new connection, judged by the sender's egress rules (none applies), routed, sent to
    // db-1's host in db's network, committed there.
    assert!(step(&at_a, 31).flow.contains("ct_state=+new+trk"), "{at_a}");
    assert_eq!(
        step(&at_a, 40).owner.as_deref(),
        Some("remote endpoint db-1")
    );
    assert_eq!(
        step(&at_a, 50).owner.as_deref(),
        Some("remote endpoint db-1")
    );
    let out = one_output(&at_a);
    assert_eq!(out.port, TUNNEL);
    let tunnel = out.tunnel.expect("sent into the tunnel");
    assert_eq!((tunnel.id, tunnel.remote), (5002, ip(VTEP_B)));
    assert_eq!(out.packet.eth_dst, mac(ep("db-1").mac));
    assert_eq!(at_a.conntrack.connections().len(), 1);
    expect![[r#"
        packet: in_port=2,dl_src=02:00:0a:01:00:02,dl_dst=00:00:11:11:11:11,tcp,nw_src=10.1.0.2,nw_dst=10.2.0.5,nw_ttl=64,tp_src=40000,tp_dst=5432
         0. classifier: in_port=2, priority 100, endpoint web-1
            set_field:0x1389->reg5
            set_field:0x1->reg0
            set_field:0x1->reg6
            set_field:0x18d5751a->reg1
            goto_table:10
        10. spoof-guard: ip,in_port=2,dl_src=02:00:0a:01:00:02,nw_src=10.1.0.2, priority 100, endpoint web-1
            goto_table:20
        20. arp-responder: (anything), priority 0, pipeline
            goto_table:30
        30. egress-conntrack: ip, priority 100, pipeline
            ct(table=31,zone=NXM_NX_REG6[0..15],nat) → zone 1: +new+trk; a clone resumes in table 31
        31. egress-state: ct_state=+new+trk, priority 80, pipeline
            goto_table:32
        32. egress-peer: ip,reg6=0x1,nw_dst=10.2.0.5, priority 100, remote endpoint db-1
            set_field:0x48a2b60d->reg3
            goto_table:33
        33. egress-rules: (anything), priority 0, pipeline
            goto_table:40
        40. l3: ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.2.0.5, priority 300, remote endpoint db-1
            set_field:00:00:11:11:11:11->eth_src
            set_field:02:00:0a:02:00:05->eth_dst
            dec_ttl → ttl 63
            set_field:0x138a->reg5
            goto_table:50
        50. l2-forward: reg0=0x1,reg5=0x138a,dl_dst=02:00:0a:02:00:05, priority 200, remote endpoint db-1
            set_field:0x138a->tun_id
            set_field:192.168.9.2->tun_dst
            set_field:0x9->reg7
            set_field:0x2->reg4
            goto_table:60
        60. ingress-conntrack: ct_state=+trk,ip, priority 110, pipeline
            goto_table:61
        61. ingress-state: ct_state=+new+trk,ip,reg4=0x2, priority 80, pipeline
            ct(commit,zone=NXM_NX_REG6[0..15]) → zone 1, committed: +new+trk
            goto_table:70
        70. output: (anything), priority 0, pipeline
            output:NXM_NX_REG7[] → port 9 (tunnel: VNI 5002, remote 192.168.9.2)
        verdict: output to port 9 (tunnel: VNI 5002, remote VTEP 192.168.9.2): dl_src=00:00:11:11:11:11,dl_dst=02:00:0a:02:00:05,tcp,nw_src=10.1.0.2,nw_dst=10.2.0.5,nw_ttl=63,tp_src=40000,tp_dst=5432
    "#]]
    .assert_eq(&at_a.to_string());

    // Host B: out of the tunnel, to db-1's port, allowed by db's ingress rule, committed.
    let arriving = out.packet.from_tunnel(TUNNEL, 5002, ip(VTEP_A), ip(VTEP_B));
    let at_b = sim_b.trace(&arriving, &Conntrack::new());
    assert_eq!(tables(&at_b), [0, 50, 60, 61, 62, 63, 70], "{at_b}");
    assert_eq!(
        step(&at_b, 62).owner.as_deref(),
        Some("remote endpoint web-1")
    );
    assert_eq!(step(&at_b, 63).owner.as_deref(), Some("rule blue:db-in:pg"));
    let out = one_output(&at_b);
    assert_eq!((out.port, out.tunnel), (ep("db-1").port, None));
    assert_eq!(at_b.conntrack.connections().len(), 1);

    // Within one host and one network: web-1 → web-2 on http, to web-2's port.
    let local = sim_a.trace(&tcp("web-1", "web-2", 80), &Conntrack::new());
    assert_eq!(
        tables(&local),
        [0, 10, 20, 30, 31, 32, 33, 40, 50, 60, 61, 62, 63, 70],
        "{local}"
    );
    assert_eq!(one_output(&local).port, ep("web-2").port);
}

#[test]
fn the_reply_of_a_committed_connection_is_established_on_both_hosts() {
    let (a, b) = (compiled('A'), compiled('B'));
    let (sim_a, sim_b) = (Bridge::of(&a, Some(TUNNEL)), Bridge::of(&b, Some(TUNNEL)));
    let syn = tcp("web-1", "db-1", 5432);
    let at_a = sim_a.trace(&syn, &Conntrack::new());
    let sent = one_output(&at_a).packet;
    let at_b = sim_b.trace(
        &sent.from_tunnel(TUNNEL, 5002, ip(VTEP_A), ip(VTEP_B)),
        &Conntrack::new(),
    );
    let received = one_output(&at_b).packet;

    // db-1 answers web-1 (through its gateway): a reply of what host B committed, so db's
    // default deny does not judge it; routed back into web's network, to host A.
    let answer = received.reply(ep("db-1").port);
    let back_b = sim_b.trace(&answer, &at_b.conntrack);
    assert!(
        step(&back_b, 30).actions[0].contains("+est+rpl+trk"),
        "{back_b}"
    );
    assert!(
        step(&back_b, 31).flow.contains("ct_state=+est+trk"),
        "{back_b}"
    );
    let out = one_output(&back_b);
    let tunnel = out.tunnel.expect("back into the tunnel");
    assert_eq!((tunnel.id, tunnel.remote), (5001, ip(VTEP_A)));
    assert_eq!(out.packet.eth_dst, mac(ep("web-1").mac));
    assert!(back_b.conntrack.connections()[0].seen_reply);

    // Without the connection, the same packet is a new one from db, which db's default deny
    // stops.
    let fresh = sim_b.trace(&answer, &Conntrack::new());
    assert_eq!(
        dropped(&fresh),
        (33, "group blue:db default deny"),
        "{fresh}"
    );

    // Host A: out of the tunnel, a reply of what A committed: to web-1's port.
    let arriving = out.packet.from_tunnel(TUNNEL, 5001, ip(VTEP_B), ip(VTEP_A));
    let back_a = sim_a.trace(&arriving, &at_a.conntrack);
    assert_eq!(tables(&back_a), [0, 50, 60, 61, 70], "{back_a}");
    assert!(
        step(&back_a, 60).actions[0].contains("+est+rpl+trk"),
        "{back_a}"
    );
    assert!(
        step(&back_a, 61).flow.contains("ct_state=+est+trk"),
        "{back_a}"
    );
    let out = one_output(&back_a);
    assert_eq!(out.port, ep("web-1").port);
    assert_eq!(out.packet.l3, with_ttl(answer.l3, 63));
}

#[test]
fn a_deny_rule_is_named_in_the_verdict() {
    let a = compiled('A');
    let sim = Bridge::of(&a, Some(TUNNEL));
    // Ingress: db takes Postgres from web, but not from 10.1.0.3 (web-2), a higher rule.
    let t = sim.trace(&tcp("web-2", "db-2", 5432), &Conntrack::new());
    assert_eq!(dropped(&t), (63, "rule blue:db-in:no-web-2 (deny)"), "{t}");
    assert!(
        t.conntrack.is_empty(),
        "a refused connection leaves nothing behind"
    );
    // The same from web-1 is allowed, by the lower rule.
    let t = sim.trace(&tcp("web-1", "db-2", 5432), &Conntrack::new());
    assert_eq!(one_output(&t).port, ep("db-2").port, "{t}");
    assert_eq!(step(&t, 63).owner.as_deref(), Some("rule blue:db-in:pg"));
    // Egress: web may not start telnet, whoever the peer.
    let t = sim.trace(&tcp("web-1", "web-2", 23), &Conntrack::new());
    assert_eq!(dropped(&t), (33, "rule blue:web-out:telnet (deny)"), "{t}");
}

#[test]
fn default_deny_is_named_by_its_group() {
    let a = compiled('A');
    let sim = Bridge::of(&a, Some(TUNNEL));
    // db takes nothing but Postgres (from web) and ssh (from web's subnet).
    let t = sim.trace(&tcp("web-1", "db-2", 80), &Conntrack::new());
    assert_eq!(dropped(&t), (63, "group blue:db default deny"), "{t}");
    assert_eq!(step(&t, 63).owner.as_deref(), Some("group blue:db"));
    assert!(t.conntrack.is_empty());
    // (The example in docs/observability.md.)
    expect![[r#"
        packet: in_port=2,dl_src=02:00:0a:01:00:02,dl_dst=00:00:11:11:11:11,tcp,nw_src=10.1.0.2,nw_dst=10.2.0.4,nw_ttl=64,tp_src=40000,tp_dst=80
         0. classifier: in_port=2, priority 100, endpoint web-1
            set_field:0x1389->reg5
            set_field:0x1->reg0
            set_field:0x1->reg6
            set_field:0x18d5751a->reg1
            goto_table:10
        10. spoof-guard: ip,in_port=2,dl_src=02:00:0a:01:00:02,nw_src=10.1.0.2, priority 100, endpoint web-1
            goto_table:20
        20. arp-responder: (anything), priority 0, pipeline
            goto_table:30
        30. egress-conntrack: ip, priority 100, pipeline
            ct(table=31,zone=NXM_NX_REG6[0..15],nat) → zone 1: +new+trk; a clone resumes in table 31
        31. egress-state: ct_state=+new+trk, priority 80, pipeline
            goto_table:32
        32. egress-peer: ip,reg6=0x1,nw_dst=10.2.0.4, priority 100, endpoint db-2
            set_field:0x48a2b60d->reg3
            goto_table:33
        33. egress-rules: (anything), priority 0, pipeline
            goto_table:40
        40. l3: ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.2.0.4, priority 300, endpoint db-2
            set_field:00:00:11:11:11:11->eth_src
            set_field:02:00:0a:02:00:04->eth_dst
            dec_ttl → ttl 63
            set_field:0x138a->reg5
            goto_table:50
        50. l2-forward: reg5=0x138a,dl_dst=02:00:0a:02:00:04, priority 200, endpoint db-2
            set_field:0x4->reg7
            set_field:0x1->reg4
            set_field:0x48a2b60d->reg2
            goto_table:60
        60. ingress-conntrack: ct_state=+trk,ip, priority 110, pipeline
            goto_table:61
        61. ingress-state: ct_state=+new+trk, priority 70, pipeline
            goto_table:62
        62. ingress-peer: ip,reg6=0x1,nw_src=10.1.0.2, priority 100, endpoint web-1
            set_field:0x18d5751a->reg3
            goto_table:63
        63. ingress-rules: reg2=0x48a2b60d, priority 10, group blue:db
        verdict: dropped in table 63: group blue:db default deny
    "#]].assert_eq(&t.to_string());
    // Nor may db start anything.
    let t = sim.trace(&tcp("db-2", "web-1", 80), &Conntrack::new());
    assert_eq!(dropped(&t), (33, "group blue:db default deny"), "{t}");
}

#[test]
fn a_spoofed_source_stops_at_the_spoof_guard() {
    let a = compiled('A');
    let sim = Bridge::of(&a, Some(TUNNEL));
    let spoof = "spoof guard: source address not the port's";
    // web-1 sends with web-2's address.
    let mut p = tcp("web-1", "db-2", 5432);
    if let L3::Ipv4(ref mut v4) = p.l3 {
        v4.src = ip("10.1.0.3");
    }
    let t = sim.trace(&p, &Conntrack::new());
    assert_eq!(dropped(&t), (10, spoof), "{t}");
    assert_eq!(tables(&t), [0, 10]);
    // ... or with web-2's MAC.
    let mut p = tcp("web-1", "db-2", 5432);
    p.eth_src = mac(ep("web-2").mac);
    assert_eq!(dropped(&sim.trace(&p, &Conntrack::new())), (10, spoof));
    // ... or claims web-2's address in ARP.
    let p = Packet::arp_request(2, mac(ep("web-1").mac), ip("10.1.0.3"), ip("10.1.0.1"));
    assert_eq!(dropped(&sim.trace(&p, &Conntrack::new())), (10, spoof));
}

#[test]
fn arp_is_answered_by_the_flows_back_out_of_the_port() {
    let a = compiled('A');
    let sim = Bridge::of(&a, Some(TUNNEL));
    let web1 = ep("web-1");
    for (asked, answer_mac) in [
        ("10.1.0.3", ep("web-2").mac),
        // An endpoint on the other host: answered here, never flooded.
        ("10.1.0.7", ep("web-3").mac),
        ("10.1.0.1", "00:00:11:11:11:11"),
    ] {
        let req = Packet::arp_request(web1.port, mac(web1.mac), ip(web1.ip), ip(asked));
        let t = sim.trace(&req, &Conntrack::new());
        assert_eq!(tables(&t), [0, 10, 20], "{t}");
        let out = one_output(&t);
        assert!(out.to_in_port);
        assert_eq!(out.port, web1.port);
        assert_eq!(out.packet.eth_src, mac(answer_mac));
        assert_eq!(out.packet.eth_dst, mac(web1.mac));
        assert_eq!(
            out.packet.l3,
            L3::Arp(Arp {
                op: 2,
                sha: mac(answer_mac),
                spa: ip(asked),
                tha: mac(web1.mac),
                tpa: ip(web1.ip),
            }),
            "{t}"
        );
    }
    assert_eq!(GATEWAY_MAC, mac("00:00:11:11:11:11"));
}

#[test]
fn nothing_crosses_from_one_tenant_to_another() {
    let a = compiled('A');
    let sim = Bridge::of(&a, Some(TUNNEL));
    let red = ep("red-1");
    // red-1 (10.1.0.2 in red:web) to web-2's MAC and address (blue:web, the same subnet):
    // its network knows no such MAC.
    let t = sim.trace(
        &Packet::tcp(
            red.port,
            mac(red.mac),
            mac(ep("web-2").mac),
            ip(red.ip),
            ip("10.1.0.3"),
            80,
        ),
        &Conntrack::new(),
    );
    assert_eq!(
        dropped(&t),
        (50, "no flow matched in table 50 (table default)"),
        "{t}"
    );
    // Routed to blue:db: red's routing domain has no such address.
    let routed = |dst: &str| {
        Packet::tcp(
            red.port,
            mac(red.mac),
            GATEWAY_MAC,
            ip(red.ip),
            ip(dst),
            5432,
        )
    };
    let t = sim.trace(&routed("10.2.0.4"), &Conntrack::new());
    assert_eq!(
        dropped(&t),
        (50, "no flow matched in table 50 (table default)"),
        "{t}"
    );
    // Routed to web-2's address: in red's own subnet, held by no endpoint of red.
    let t = sim.trace(&routed("10.1.0.3"), &Conntrack::new());
    assert_eq!(
        dropped(&t),
        (
            40,
            "network red:web: an address of the tenant's subnet that no endpoint holds"
        ),
        "{t}"
    );
    // Every step met only red's flows: its network (reg5), its tenant (reg6) or its port.
    for s in &t.steps {
        assert!(
            s.owner
                .as_deref()
                .is_some_and(|o| o == "pipeline" || o.contains("red") || o == "endpoint red-1"),
            "{s}"
        );
    }
}

#[test]
fn routed_between_two_networks_of_a_tenant() {
    let a = compiled('A');
    let sim = Bridge::of(&a, Some(TUNNEL));
    // web-1 → db-2 on ssh: routed (blue:web → blue:db), let in by ops's rule, a conjunction
    // (its policy is on both groups).
    let p = tcp("web-1", "db-2", 22);
    assert_eq!(p.eth_dst, GATEWAY_MAC);
    let t = sim.trace(&p, &Conntrack::new());
    let out = one_output(&t);
    assert_eq!(out.port, ep("db-2").port, "{t}");
    assert_eq!(out.packet.eth_src, GATEWAY_MAC);
    assert_eq!(out.packet.eth_dst, mac(ep("db-2").mac));
    assert_eq!(out.packet.l3, with_ttl(p.l3, 63));
    assert_eq!(step(&t, 40).owner.as_deref(), Some("endpoint db-2"));
    assert!(step(&t, 40).actions.iter().any(|a| a == "dec_ttl → ttl 63"));
    let rules = step(&t, 63);
    assert_eq!(rules.owner.as_deref(), Some("rule blue:ops:ssh"));
    assert!(rules.match_.contains("conj_id="), "{t}");
    assert!(
        rules.notes[0].contains("clause 1/2 by reg2=")
            && rules.notes[0].contains("clause 2/2 by tcp"),
        "{t}"
    );
    assert!(rules.ties.is_empty());
    // Only one clause matches ssh from outside web's subnet (db-1, as if host B had let it
    // out): no conjunction, db's default deny.
    let from_db1 = tcp("db-1", "db-2", 22).from_tunnel(TUNNEL, 5002, ip(VTEP_B), ip(VTEP_A));
    let t = sim.trace(&from_db1, &Conntrack::new());
    assert_eq!(dropped(&t), (63, "group blue:db default deny"), "{t}");
}

#[test]
fn a_broadcast_is_flooded_to_the_network_s_ports_and_hosts() {
    let (a, b) = (compiled('A'), compiled('B'));
    let (sim_a, sim_b) = (Bridge::of(&a, Some(TUNNEL)), Bridge::of(&b, Some(TUNNEL)));
    let web1 = ep("web-1");
    // ARP for an address nobody has: not answered, flooded in web's network.
    let req = Packet::arp_request(web1.port, mac(web1.mac), ip(web1.ip), ip("10.1.0.99"));
    let t = sim_a.trace(&req, &Conntrack::new());
    assert_eq!(tables(&t), [0, 10, 20, 30, 40, 50], "{t}");
    assert_eq!(step(&t, 50).owner.as_deref(), Some("network blue:web"));
    let Verdict::Multiple(copies) = &t.verdict else {
        panic!("expected copies:\n{t}");
    };
    // One copy per bucket (in the group's order): web-1's own port, web-2's, host B.
    let fates: Vec<String> = copies
        .iter()
        .map(|c| {
            let Via::Bucket { group, .. } = c.via else {
                panic!("{t}")
            };
            assert_eq!(group, 5001);
            match &c.verdict {
                Verdict::Output(o) => match o[0].tunnel {
                    Some(tun) => format!("tunnel {} {}", tun.id, tun.remote),
                    None => format!("port {}", o[0].port),
                },
                Verdict::Dropped { reason, .. } => reason.clone(),
                v => panic!("{v}"),
            }
        })
        .collect();
    assert_eq!(
        fates,
        [
            "output to the input port 2 skipped (OpenFlow sends a packet back only by IN_PORT)",
            "port 3",
            "tunnel 5001 192.168.9.2",
        ],
        "{t}"
    );
    // Host B floods what came from the tunnel to its own ports only (web-3), never into a
    // tunnel again.
    let tunnel_copy = t
        .verdict
        .outputs()
        .into_iter()
        .find(|o| o.tunnel.is_some())
        .unwrap()
        .packet;
    let t = sim_b.trace(
        &tunnel_copy.from_tunnel(TUNNEL, 5001, ip(VTEP_A), ip(VTEP_B)),
        &Conntrack::new(),
    );
    let Verdict::Multiple(copies) = &t.verdict else {
        panic!("expected copies:\n{t}");
    };
    assert_eq!(copies.len(), 1, "{t}");
    assert_eq!(
        copies[0].via,
        Via::Bucket {
            group: 5001 | LOCAL_FLOOD_BIT,
            bucket: 0
        }
    );
    let outs = t.verdict.outputs();
    assert_eq!(outs.len(), 1);
    assert_eq!((outs[0].port, outs[0].tunnel), (ep("web-3").port, None));
}

#[test]
fn egress_to_the_outside_is_translated_and_its_reply_translated_back() {
    // Host A with its gateway port (50), web external: what the tenant does not route itself
    // leaves through the host, its source translated to the tenant's transit address.
    let mut s = host('A');
    let gw = weft_policy::GatewayPort {
        ofport: 50,
        mac: weft_policy::layout::host_gateway_mac(ip(VTEP_A)),
        address: ip(VTEP_A),
    };
    s.gateway_port = Some(gw);
    s.networks[0].external = true;
    let c = compile(&s);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let sim = Bridge::of(&c, Some(TUNNEL));
    let web1 = ep("web-1");
    let out = Packet::tcp(
        web1.port,
        mac(web1.mac),
        GATEWAY_MAC,
        ip(web1.ip),
        ip("192.0.2.80"),
        443,
    );
    let t = sim.trace(&out, &Conntrack::new());
    let sent = one_output(&t);
    assert_eq!(sent.port, 50, "{t}");
    assert_eq!(sent.packet.eth_dst, gw.mac);
    let transit = weft_policy::layout::transit_address(1);
    let L3::Ipv4(v4) = sent.packet.l3 else {
        panic!("{t}")
    };
    assert_eq!((v4.src, v4.dst), (transit, ip("192.0.2.80")), "{t}");
    assert_eq!(step(&t, 61).owner.as_deref(), Some("host gateway"));

    // The answer, untranslated by the host to the transit address, comes back in through the
    // port: translated back to web-1's address and routed to it.
    let answer = sent.packet.reply(50);
    let back = sim.trace(&answer, &t.conntrack);
    let o = one_output(&back);
    assert_eq!(o.port, web1.port, "{back}");
    let L3::Ipv4(v4) = o.packet.l3 else {
        panic!("{back}")
    };
    assert_eq!((v4.src, v4.dst), (ip("192.0.2.80"), ip(web1.ip)), "{back}");
    // Without the connection, nothing in the bridge knows the transit address's owner.
    let lost = sim.trace(&answer, &Conntrack::new());
    assert_eq!(
        dropped(&lost),
        (50, "no flow matched in table 50 (table default)"),
        "{lost}"
    );
}

/// Host A with every rule and group logged.
fn logged(h: char) -> HostState {
    let mut s = host(h);
    for g in &mut s.groups {
        g.log = true;
    }
    for p in &mut s.policies {
        for r in &mut p.rules {
            r.log = true;
        }
    }
    s
}

#[test]
fn a_logged_rule_sends_one_copy_and_decides_as_without_logging() {
    let plain = compiled('A');
    let logs = compile(&logged('A'));
    assert!(logs.problems.is_empty(), "{:?}", logs.problems);
    let (p, l) = (
        Bridge::of(&plain, Some(TUNNEL)),
        Bridge::of(&logs, Some(TUNNEL)),
    );
    let cases = [
        // allowed by a rule (ingress), by a conjunction, denied by a rule (ingress, egress),
        // by the default deny (both ways), and allowed by no rule at all.
        (tcp("web-1", "db-2", 5432), Some("rule blue:db-in:pg")),
        (tcp("web-1", "db-2", 22), Some("rule blue:ops:ssh")),
        (tcp("web-2", "db-2", 5432), Some("rule blue:db-in:no-web-2")),
        (tcp("web-1", "web-2", 23), Some("rule blue:web-out:telnet")),
        (tcp("web-1", "db-2", 80), Some("group blue:db")),
        (tcp("db-2", "web-1", 80), Some("group blue:db")),
        (tcp("web-1", "web-2", 80), None),
    ];
    for (packet, by) in cases {
        let (a, b) = (
            p.trace(&packet, &Conntrack::new()),
            l.trace(&packet, &Conntrack::new()),
        );
        assert_eq!(
            a.verdict, b.verdict,
            "logging changed the verdict:\n{a}\n{b}"
        );
        assert_eq!(a.conntrack, b.conntrack, "{b}");
        assert!(a.logged.is_empty());
        let owners: Vec<Option<&str>> = b.logged.iter().map(|x| x.owner.as_deref()).collect();
        assert_eq!(owners, by.map(Some).into_iter().collect::<Vec<_>>(), "{b}");
        for x in &b.logged {
            assert_eq!(x.meter, weft_policy::logging::VERDICT_METER);
            assert!(x.table == 33 || x.table == 63, "{b}");
        }
        // The reply of an allowed, logged connection is established: never logged again.
        if let Verdict::Output(o) = &b.verdict {
            let back = o[0].packet.reply(o[0].port);
            let r = l.trace(&back, &b.conntrack);
            assert!(r.logged.is_empty(), "{r}");
            assert!(!matches!(r.verdict, Verdict::Dropped { .. }), "{r}");
        }
    }
    // A logged deny drops, named as before, and says it logged.
    let t = l.trace(&tcp("web-1", "db-2", 80), &Conntrack::new());
    assert_eq!(dropped(&t), (63, "group blue:db default deny"), "{t}");
    assert!(
        t.to_string()
            .ends_with("logged: table 63, group blue:db (meter 65536)\n"),
        "{t}"
    );
}

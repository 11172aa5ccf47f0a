//! Snapshot tests of the compiled pipeline for representative host states, and the diff.
//! Update the snapshots with `UPDATE_EXPECT=1 cargo test -p weft-policy` after reading them.

use std::net::{Ipv4Addr, Ipv6Addr};

use expect_test::expect;
use weft_policy::{compile, diff, parse_mac, Endpoint, HostState, Network, Problem, Segment};

fn ep(key: &str, net: &str, port: u32, mac: &str, ip: &str) -> Endpoint {
    Endpoint {
        key: key.into(),
        network: net.into(),
        ofport: port,
        mac: parse_mac(mac).unwrap(),
        ipv4: vec![ip.parse().unwrap()],
        ipv6: vec![],
        group: None,
    }
}

fn net(key: &str, segment: Segment, gw: Option<&str>) -> Network {
    Network {
        subnet: None,
        host_access: false,
        external: false,
        key: key.into(),
        segment,
        gateway: gw.map(|g| g.parse::<Ipv4Addr>().unwrap()),
        zone: 1,
    }
}

#[test]
fn empty_host_has_only_the_skeleton() {
    let c = compile(&HostState::default());
    assert!(c.problems.is_empty());
    expect![[r#"
        cookie=0x13c11fd413aeee3, table=0, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=10, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=20, priority=0 actions=goto_table:30
        cookie=0x13c11fd413aeee3, table=30, priority=100,ip actions=ct(table=31,zone=NXM_NX_REG6[0..15],nat)
        cookie=0x13c11fd413aeee3, table=30, priority=0 actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=100,ct_state=+est+trk actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=100,ct_state=+rel+trk actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=90,ct_state=+inv+trk actions=drop
        cookie=0x13c11fd413aeee3, table=31, priority=80,ct_state=+new+trk actions=goto_table:32
        cookie=0x13c11fd413aeee3, table=31, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=32, priority=0 actions=set_field:0->reg3,goto_table:33
        cookie=0x13c11fd413aeee3, table=33, priority=0 actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=40, priority=0 actions=goto_table:50
        cookie=0x13c11fd413aeee3, table=50, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=60, priority=110,ct_state=+trk,ip actions=goto_table:61
        cookie=0x13c11fd413aeee3, table=60, priority=100,ip actions=ct(table=61,zone=NXM_NX_REG6[0..15],nat)
        cookie=0x13c11fd413aeee3, table=60, priority=0 actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=100,ct_state=+est+trk actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=100,ct_state=+rel+trk actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=90,ct_state=+inv+trk actions=drop
        cookie=0x13c11fd413aeee3, table=61, priority=80,ct_state=+new+trk,ip,reg4=0x2 actions=ct(commit,zone=NXM_NX_REG6[0..15]),goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=70,ct_state=+new+trk actions=goto_table:62
        cookie=0x13c11fd413aeee3, table=61, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=62, priority=0 actions=set_field:0->reg3,goto_table:63
        cookie=0x13c11fd413aeee3, table=63, priority=0,ip actions=ct(commit,zone=NXM_NX_REG6[0..15]),goto_table:70
        cookie=0x13c11fd413aeee3, table=70, priority=0 actions=output:NXM_NX_REG7[]
        meter=65536,pktps,bands=type=drop,rate=100,burst_size=20
    "#]]
    .assert_eq(&c.flows.to_string());
}

#[test]
fn vlan_network_with_two_endpoints_and_an_uplink() {
    let state = HostState {
        gateway_port: None,
        other_hosts: vec![],
        service_cidrs: vec![],
        groups: vec![],
        policies: vec![],
        uplink_port: Some(1),
        tunnel_port: None,
        remote_endpoints: vec![],
        networks: vec![net("blue:web", Segment::Vlan(100), Some("10.1.0.1"))],
        endpoints: vec![
            ep("c2", "blue:web", 3, "02:00:0a:01:00:03", "10.1.0.3"),
            ep("c1", "blue:web", 2, "02:00:0a:01:00:02", "10.1.0.2"),
        ],
    };
    let c = compile(&state);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    expect![[r#"
        cookie=0x3a27f07b54a6859, table=0, priority=100,in_port=2 actions=set_field:0x1000064->reg5,set_field:0x1->reg0,set_field:0x1->reg6,goto_table:10
        cookie=0x3a27c07b54a6340, table=0, priority=100,in_port=3 actions=set_field:0x1000064->reg5,set_field:0x1->reg0,set_field:0x1->reg6,goto_table:10
        cookie=0x25c51dbd68924c1, table=0, priority=100,in_port=1,dl_vlan=100 actions=pop_vlan,set_field:0x1000064->reg5,set_field:0x2->reg0,set_field:0x1->reg6,goto_table:50
        cookie=0x13c11fd413aeee3, table=0, priority=0 actions=drop
        cookie=0x3a27f07b54a6859, table=10, priority=100,ip,in_port=2,dl_src=02:00:0a:01:00:02,nw_src=10.1.0.2 actions=goto_table:20
        cookie=0x3a27c07b54a6340, table=10, priority=100,ip,in_port=3,dl_src=02:00:0a:01:00:03,nw_src=10.1.0.3 actions=goto_table:20
        cookie=0x3a27f07b54a6859, table=10, priority=100,arp,in_port=2,dl_src=02:00:0a:01:00:02,arp_spa=10.1.0.2,arp_sha=02:00:0a:01:00:02 actions=goto_table:20
        cookie=0x3a27c07b54a6340, table=10, priority=100,arp,in_port=3,dl_src=02:00:0a:01:00:03,arp_spa=10.1.0.3,arp_sha=02:00:0a:01:00:03 actions=goto_table:20
        cookie=0x13c11fd413aeee3, table=10, priority=0 actions=drop
        cookie=0x25c51dbd68924c1, table=20, priority=100,arp,reg5=0x1000064,arp_tpa=10.1.0.1,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:00:00:11:11:11:11->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:00:00:11:11:11:11->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.1->arp_spa,IN_PORT
        cookie=0x3a27f07b54a6859, table=20, priority=100,arp,reg5=0x1000064,arp_tpa=10.1.0.2,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:0a:01:00:02->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:0a:01:00:02->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.2->arp_spa,IN_PORT
        cookie=0x3a27c07b54a6340, table=20, priority=100,arp,reg5=0x1000064,arp_tpa=10.1.0.3,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:0a:01:00:03->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:0a:01:00:03->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.3->arp_spa,IN_PORT
        cookie=0x13c11fd413aeee3, table=20, priority=0 actions=goto_table:30
        cookie=0x13c11fd413aeee3, table=30, priority=100,ip actions=ct(table=31,zone=NXM_NX_REG6[0..15],nat)
        cookie=0x13c11fd413aeee3, table=30, priority=0 actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=100,ct_state=+est+trk actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=100,ct_state=+rel+trk actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=90,ct_state=+inv+trk actions=drop
        cookie=0x13c11fd413aeee3, table=31, priority=80,ct_state=+new+trk actions=goto_table:32
        cookie=0x13c11fd413aeee3, table=31, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=32, priority=0 actions=set_field:0->reg3,goto_table:33
        cookie=0x13c11fd413aeee3, table=33, priority=0 actions=goto_table:40
        cookie=0x3a27f07b54a6859, table=40, priority=300,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.1.0.2 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:0a:01:00:02->eth_dst,dec_ttl,set_field:0x1000064->reg5,goto_table:50
        cookie=0x3a27c07b54a6340, table=40, priority=300,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.1.0.3 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:0a:01:00:03->eth_dst,dec_ttl,set_field:0x1000064->reg5,goto_table:50
        cookie=0x13c11fd413aeee3, table=40, priority=0 actions=goto_table:50
        cookie=0x3a27f07b54a6859, table=50, priority=200,reg5=0x1000064,dl_dst=02:00:0a:01:00:02 actions=set_field:0x2->reg7,set_field:0x1->reg4,goto_table:60
        cookie=0x3a27c07b54a6340, table=50, priority=200,reg5=0x1000064,dl_dst=02:00:0a:01:00:03 actions=set_field:0x3->reg7,set_field:0x1->reg4,goto_table:60
        cookie=0x25c51dbd68924c1, table=50, priority=100,reg5=0x1000064,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:16777316
        cookie=0x25c51dbd68924c1, table=50, priority=50,reg0=0x1,reg5=0x1000064 actions=set_field:0x1->reg7,set_field:0x2->reg4,goto_table:60
        cookie=0x13c11fd413aeee3, table=50, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=60, priority=110,ct_state=+trk,ip actions=goto_table:61
        cookie=0x13c11fd413aeee3, table=60, priority=100,ip actions=ct(table=61,zone=NXM_NX_REG6[0..15],nat)
        cookie=0x13c11fd413aeee3, table=60, priority=0 actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=100,ct_state=+est+trk actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=100,ct_state=+rel+trk actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=90,ct_state=+inv+trk actions=drop
        cookie=0x13c11fd413aeee3, table=61, priority=80,ct_state=+new+trk,ip,reg4=0x2 actions=ct(commit,zone=NXM_NX_REG6[0..15]),goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=70,ct_state=+new+trk actions=goto_table:62
        cookie=0x13c11fd413aeee3, table=61, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=62, priority=0 actions=set_field:0->reg3,goto_table:63
        cookie=0x13c11fd413aeee3, table=63, priority=0,ip actions=ct(commit,zone=NXM_NX_REG6[0..15]),goto_table:70
        cookie=0x25c51dbd68924c1, table=70, priority=100,reg5=0x1000064,reg7=0x1 actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1
        cookie=0x13c11fd413aeee3, table=70, priority=0 actions=output:NXM_NX_REG7[]
        group_id=16777316,type=all,bucket=actions=output:2,bucket=actions=output:3,bucket=actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1
        meter=65536,pktps,bands=type=drop,rate=100,burst_size=20
    "#]].assert_eq(&c.flows.to_string());
}

#[test]
fn vxlan_network_and_ipv6() {
    let mut e = ep("c1", "red:db", 5, "02:00:0a:02:00:02", "10.2.0.2");
    e.ipv6 = vec!["fd00::2".parse::<Ipv6Addr>().unwrap()];
    let state = HostState {
        gateway_port: None,
        other_hosts: vec![],
        service_cidrs: vec![],
        groups: vec![],
        policies: vec![],
        uplink_port: Some(1),
        tunnel_port: None,
        remote_endpoints: vec![],
        networks: vec![net("red:db", Segment::Vxlan(5000), None)],
        endpoints: vec![e],
    };
    let c = compile(&state);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    expect![[r#"
        cookie=0x3a27f07b54a6859, table=0, priority=100,in_port=5 actions=set_field:0x1388->reg5,set_field:0x1->reg0,set_field:0x1->reg6,goto_table:10
        cookie=0x13c11fd413aeee3, table=0, priority=0 actions=drop
        cookie=0x3a27f07b54a6859, table=10, priority=100,ip,in_port=5,dl_src=02:00:0a:02:00:02,nw_src=10.2.0.2 actions=goto_table:20
        cookie=0x3a27f07b54a6859, table=10, priority=100,arp,in_port=5,dl_src=02:00:0a:02:00:02,arp_spa=10.2.0.2,arp_sha=02:00:0a:02:00:02 actions=goto_table:20
        cookie=0x3a27f07b54a6859, table=10, priority=100,ipv6,in_port=5,dl_src=02:00:0a:02:00:02,ipv6_src=:: actions=goto_table:20
        cookie=0x3a27f07b54a6859, table=10, priority=100,ipv6,in_port=5,dl_src=02:00:0a:02:00:02,ipv6_src=fd00::2 actions=goto_table:20
        cookie=0x3a27f07b54a6859, table=10, priority=100,ipv6,in_port=5,dl_src=02:00:0a:02:00:02,ipv6_src=fe80::/10 actions=goto_table:20
        cookie=0x13c11fd413aeee3, table=10, priority=0 actions=drop
        cookie=0x3a27f07b54a6859, table=20, priority=100,arp,reg5=0x1388,arp_tpa=10.2.0.2,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:0a:02:00:02->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:0a:02:00:02->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.2.0.2->arp_spa,IN_PORT
        cookie=0x13c11fd413aeee3, table=20, priority=0 actions=goto_table:30
        cookie=0x13c11fd413aeee3, table=30, priority=100,ip actions=ct(table=31,zone=NXM_NX_REG6[0..15],nat)
        cookie=0x13c11fd413aeee3, table=30, priority=0 actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=100,ct_state=+est+trk actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=100,ct_state=+rel+trk actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=90,ct_state=+inv+trk actions=drop
        cookie=0x13c11fd413aeee3, table=31, priority=80,ct_state=+new+trk actions=goto_table:32
        cookie=0x13c11fd413aeee3, table=31, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=32, priority=0 actions=set_field:0->reg3,goto_table:33
        cookie=0x13c11fd413aeee3, table=33, priority=0 actions=goto_table:40
        cookie=0x3a27f07b54a6859, table=40, priority=300,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.2.0.2 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:0a:02:00:02->eth_dst,dec_ttl,set_field:0x1388->reg5,goto_table:50
        cookie=0x13c11fd413aeee3, table=40, priority=0 actions=goto_table:50
        cookie=0x3a27f07b54a6859, table=50, priority=200,reg5=0x1388,dl_dst=02:00:0a:02:00:02 actions=set_field:0x5->reg7,set_field:0x1->reg4,goto_table:60
        cookie=0x2dbf10a658abf20, table=50, priority=100,reg5=0x1388,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:5000
        cookie=0x13c11fd413aeee3, table=50, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=60, priority=110,ct_state=+trk,ip actions=goto_table:61
        cookie=0x13c11fd413aeee3, table=60, priority=100,ip actions=ct(table=61,zone=NXM_NX_REG6[0..15],nat)
        cookie=0x13c11fd413aeee3, table=60, priority=0 actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=100,ct_state=+est+trk actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=100,ct_state=+rel+trk actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=90,ct_state=+inv+trk actions=drop
        cookie=0x13c11fd413aeee3, table=61, priority=80,ct_state=+new+trk,ip,reg4=0x2 actions=ct(commit,zone=NXM_NX_REG6[0..15]),goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=70,ct_state=+new+trk actions=goto_table:62
        cookie=0x13c11fd413aeee3, table=61, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=62, priority=0 actions=set_field:0->reg3,goto_table:63
        cookie=0x13c11fd413aeee3, table=63, priority=0,ip actions=ct(commit,zone=NXM_NX_REG6[0..15]),goto_table:70
        cookie=0x13c11fd413aeee3, table=70, priority=0 actions=output:NXM_NX_REG7[]
        group_id=5000,type=all,bucket=actions=output:5
        meter=65536,pktps,bands=type=drop,rate=100,burst_size=20
    "#]].assert_eq(&c.flows.to_string());
}

#[test]
fn two_tenants_with_the_same_subnet_never_share_a_flow() {
    let state = HostState {
        gateway_port: None,
        other_hosts: vec![],
        service_cidrs: vec![],
        groups: vec![],
        policies: vec![],
        uplink_port: None,
        tunnel_port: None,
        remote_endpoints: vec![],
        networks: vec![
            net("blue:web", Segment::Vxlan(10), Some("10.0.0.1")),
            Network {
                zone: 2,
                ..net("red:web", Segment::Vxlan(20), Some("10.0.0.1"))
            },
        ],
        endpoints: vec![
            ep("b1", "blue:web", 2, "02:00:00:00:00:02", "10.0.0.2"),
            ep("r1", "red:web", 3, "02:00:00:00:00:02", "10.0.0.2"),
        ],
    };
    let c = compile(&state);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    // Every flow past the classifier that belongs to a network or endpoint matches reg5 of
    // exactly one network, reg6 of its tenant (routing and peers: the tenant is its own routing
    // domain), or the in_port of exactly one endpoint.
    for f in c.flows.flows.values() {
        let text = f.to_string();
        let owner = &c.owners[&f.cookie];
        if owner.starts_with("pipeline") {
            continue;
        }
        let blue = owner.contains("blue") || owner.contains("b1");
        let (mine, theirs, my_zone, their_zone) = if blue {
            ("reg5=0xa", "reg5=0x14", "reg6=0x1", "reg6=0x2")
        } else {
            ("reg5=0x14", "reg5=0xa", "reg6=0x2", "reg6=0x1")
        };
        assert!(!text.contains(theirs), "{owner}: {text}");
        assert!(!text.contains(their_zone), "{owner}: {text}");
        assert!(
            text.contains(mine)
                || text.contains(my_zone)
                || text.contains("in_port=")
                || text.contains("load:0xa->NXM_NX_REG5")
                || text.contains("->NXM_NX_REG5"),
            "{owner}: {text}"
        );
    }
    // Both gateways answer, each in its own network.
    let arp: Vec<String> = c
        .flows
        .flows
        .values()
        .map(|f| f.to_string())
        .filter(|t| t.contains("arp_tpa=10.0.0.1"))
        .collect();
    assert_eq!(arp.len(), 2, "{arp:?}");
}

#[test]
fn conflicts_are_left_out_and_reported() {
    let state = HostState {
        gateway_port: None,
        other_hosts: vec![],
        service_cidrs: vec![],
        groups: vec![],
        policies: vec![],
        uplink_port: None,
        tunnel_port: None,
        remote_endpoints: vec![],
        networks: vec![
            net("t:a", Segment::Vlan(10), None),
            net("t:b", Segment::Vlan(10), None),
        ],
        endpoints: vec![
            ep("e1", "t:a", 2, "02:00:00:00:00:01", "10.0.0.1"),
            ep("e2", "t:a", 2, "02:00:00:00:00:02", "10.0.0.2"),
            ep("e3", "t:a", 3, "02:00:00:00:00:01", "10.0.0.3"),
            ep("e4", "t:a", 4, "02:00:00:00:00:04", "10.0.0.1"),
            ep("e5", "t:zzz", 5, "02:00:00:00:00:05", "10.0.0.5"),
        ],
    };
    let c = compile(&state);
    let text: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
    expect![[r#"
        network t:b has the same segment as t:a; t:b is left out
        endpoint e2: OpenFlow port 2 already belongs to e1
        endpoint e3: its MAC is already used by e1 in the same network
        endpoint e4: address 10.0.0.1 is already used by e1 in the same network
        endpoint e5: network t:zzz is not known"#]]
    .assert_eq(&text.join("\n"));
    assert!(matches!(c.problems[0], Problem::SegmentInUse { .. }));
    // e1 compiled, none of the others.
    let owners: Vec<&String> = c.owners.values().collect();
    assert!(owners.iter().any(|o| o.as_str() == "endpoint e1"));
    assert!(!owners
        .iter()
        .any(|o| o.starts_with("endpoint e") && o.as_str() != "endpoint e1"));
}

#[test]
fn compile_is_deterministic_whatever_the_order() {
    let mut state = HostState {
        gateway_port: None,
        other_hosts: vec![],
        service_cidrs: vec![],
        groups: vec![],
        policies: vec![],
        uplink_port: Some(1),
        tunnel_port: None,
        remote_endpoints: vec![],
        networks: vec![
            net("a:x", Segment::Vlan(7), Some("10.7.0.1")),
            net("b:y", Segment::Vxlan(9), None),
        ],
        endpoints: (0..20)
            .map(|i| {
                ep(
                    &format!("e{i}"),
                    if i % 2 == 0 { "a:x" } else { "b:y" },
                    10 + i,
                    &format!("02:00:00:00:00:{i:02x}"),
                    &format!("10.9.0.{}", i + 2),
                )
            })
            .collect(),
    };
    let a = compile(&state).flows;
    state.endpoints.reverse();
    state.networks.reverse();
    let b = compile(&state).flows;
    assert_eq!(a, b);
    assert!(diff(&a, &b).is_empty());
}

#[test]
fn one_more_endpoint_changes_only_its_flows_and_its_group() {
    let base = HostState {
        gateway_port: None,
        other_hosts: vec![],
        service_cidrs: vec![],
        groups: vec![],
        policies: vec![],
        uplink_port: Some(1),
        tunnel_port: None,
        remote_endpoints: vec![],
        networks: vec![net("blue:web", Segment::Vlan(100), Some("10.1.0.1"))],
        endpoints: vec![ep("c1", "blue:web", 2, "02:00:0a:01:00:02", "10.1.0.2")],
    };
    let mut more = base.clone();
    more.endpoints
        .push(ep("c2", "blue:web", 3, "02:00:0a:01:00:03", "10.1.0.3"));
    let d = diff(&compile(&base).flows, &compile(&more).flows);
    expect![[r#"
        ~ group_id=16777316,type=all,bucket=actions=output:2,bucket=actions=output:3,bucket=actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1
        + cookie=0x3a27c07b54a6340, table=0, priority=100,in_port=3 actions=set_field:0x1000064->reg5,set_field:0x1->reg0,set_field:0x1->reg6,goto_table:10
        + cookie=0x3a27c07b54a6340, table=10, priority=100,ip,in_port=3,dl_src=02:00:0a:01:00:03,nw_src=10.1.0.3 actions=goto_table:20
        + cookie=0x3a27c07b54a6340, table=10, priority=100,arp,in_port=3,dl_src=02:00:0a:01:00:03,arp_spa=10.1.0.3,arp_sha=02:00:0a:01:00:03 actions=goto_table:20
        + cookie=0x3a27c07b54a6340, table=20, priority=100,arp,reg5=0x1000064,arp_tpa=10.1.0.3,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:0a:01:00:03->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:0a:01:00:03->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.3->arp_spa,IN_PORT
        + cookie=0x3a27c07b54a6340, table=40, priority=300,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.1.0.3 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:0a:01:00:03->eth_dst,dec_ttl,set_field:0x1000064->reg5,goto_table:50
        + cookie=0x3a27c07b54a6340, table=50, priority=200,reg5=0x1000064,dl_dst=02:00:0a:01:00:03 actions=set_field:0x3->reg7,set_field:0x1->reg4,goto_table:60
    "#]].assert_eq(&d.to_string());
    // And back.
    let back = diff(&compile(&more).flows, &compile(&base).flows);
    assert_eq!(back.flows_delete.len(), d.flows_add.len());
    assert!(back.flows_add.is_empty());
}

#[test]
fn the_last_endpoint_of_a_network_takes_the_network_with_it() {
    let one = HostState {
        gateway_port: None,
        other_hosts: vec![],
        service_cidrs: vec![],
        groups: vec![],
        policies: vec![],
        uplink_port: Some(1),
        tunnel_port: None,
        remote_endpoints: vec![],
        networks: vec![net("blue:web", Segment::Vlan(100), Some("10.1.0.1"))],
        endpoints: vec![ep("c1", "blue:web", 2, "02:00:0a:01:00:02", "10.1.0.2")],
    };
    let none = HostState {
        gateway_port: None,
        other_hosts: vec![],
        service_cidrs: vec![],
        endpoints: vec![],
        ..one.clone()
    };
    let d = diff(&compile(&one).flows, &compile(&none).flows);
    assert_eq!(d.groups_delete.len(), 1);
    assert!(d.flows_add.is_empty());
    assert_eq!(
        compile(&none).flows,
        compile(&HostState::default()).flows,
        "only the skeleton is left"
    );
}

fn remote(key: &str, net: &str, vtep: &str, mac: &str, ip: &str) -> weft_policy::RemoteEndpoint {
    weft_policy::RemoteEndpoint {
        key: key.into(),
        network: net.into(),
        vtep: vtep.parse().unwrap(),
        mac: parse_mac(mac).unwrap(),
        ipv4: vec![ip.parse().unwrap()],
        group: None,
    }
}

#[test]
fn remote_endpoints_over_vxlan_and_vlan() {
    let state = HostState {
        gateway_port: None,
        other_hosts: vec![],
        service_cidrs: vec![],
        groups: vec![],
        policies: vec![],
        uplink_port: Some(1),
        tunnel_port: Some(2),
        networks: vec![
            net("blue:web", Segment::Vxlan(5001), Some("10.1.0.1")),
            net("blue:db", Segment::Vlan(100), None),
        ],
        endpoints: vec![
            ep("l1", "blue:web", 10, "02:00:00:00:00:10", "10.1.0.10"),
            ep("l2", "blue:db", 11, "02:00:00:00:00:11", "10.2.0.11"),
        ],
        remote_endpoints: vec![
            remote(
                "r1",
                "blue:web",
                "192.0.2.2",
                "02:00:00:00:00:20",
                "10.1.0.20",
            ),
            remote(
                "r2",
                "blue:web",
                "192.0.2.3",
                "02:00:00:00:00:30",
                "10.1.0.30",
            ),
            remote(
                "r3",
                "blue:web",
                "192.0.2.3",
                "02:00:00:00:00:31",
                "10.1.0.31",
            ),
            remote(
                "r4",
                "blue:db",
                "192.0.2.3",
                "02:00:00:00:00:40",
                "10.2.0.40",
            ),
            // In a network with nothing local: ignored.
            remote("r5", "red:x", "192.0.2.3", "02:00:00:00:00:50", "10.9.0.50"),
            // Clashes with l1's address: left out.
            remote(
                "r6",
                "blue:web",
                "192.0.2.3",
                "02:00:00:00:00:60",
                "10.1.0.10",
            ),
        ],
    };
    let c = compile(&state);
    let text: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        text,
        vec!["endpoint r6: address 10.1.0.10 is already used by l1 in the same network"]
    );
    let flows = c.flows.to_string();
    expect![[r#"
        cookie=0x3ad0f07b553b18e, table=0, priority=100,in_port=10 actions=set_field:0x1389->reg5,set_field:0x1->reg0,set_field:0x1->reg6,goto_table:10
        cookie=0x3ad0e07b553afdb, table=0, priority=100,in_port=11 actions=set_field:0x1000064->reg5,set_field:0x1->reg0,set_field:0x1->reg6,goto_table:10
        cookie=0x248f8fe26ea4ef3, table=0, priority=100,in_port=1,dl_vlan=100 actions=pop_vlan,set_field:0x1000064->reg5,set_field:0x2->reg0,set_field:0x1->reg6,goto_table:50
        cookie=0x25c51dbd68924c1, table=0, priority=100,tun_id=0x1389,in_port=2 actions=set_field:0x1389->reg5,set_field:0x3->reg0,set_field:0x1->reg6,goto_table:50
        cookie=0x13c11fd413aeee3, table=0, priority=0 actions=drop
        cookie=0x3ad0f07b553b18e, table=10, priority=100,ip,in_port=10,dl_src=02:00:00:00:00:10,nw_src=10.1.0.10 actions=goto_table:20
        cookie=0x3ad0e07b553afdb, table=10, priority=100,ip,in_port=11,dl_src=02:00:00:00:00:11,nw_src=10.2.0.11 actions=goto_table:20
        cookie=0x3ad0f07b553b18e, table=10, priority=100,arp,in_port=10,dl_src=02:00:00:00:00:10,arp_spa=10.1.0.10,arp_sha=02:00:00:00:00:10 actions=goto_table:20
        cookie=0x3ad0e07b553afdb, table=10, priority=100,arp,in_port=11,dl_src=02:00:00:00:00:11,arp_spa=10.2.0.11,arp_sha=02:00:00:00:00:11 actions=goto_table:20
        cookie=0x13c11fd413aeee3, table=10, priority=0 actions=drop
        cookie=0x25c51dbd68924c1, table=20, priority=100,arp,reg5=0x1389,arp_tpa=10.1.0.1,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:00:00:11:11:11:11->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:00:00:11:11:11:11->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.1->arp_spa,IN_PORT
        cookie=0x3ad0f07b553b18e, table=20, priority=100,arp,reg5=0x1389,arp_tpa=10.1.0.10,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:00:00:00:10->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:00:00:00:10->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.10->arp_spa,IN_PORT
        cookie=0x4dc8307b57be76c, table=20, priority=100,arp,reg5=0x1389,arp_tpa=10.1.0.20,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:00:00:00:20->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:00:00:00:20->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.20->arp_spa,IN_PORT
        cookie=0x4dc8607b57bec85, table=20, priority=100,arp,reg5=0x1389,arp_tpa=10.1.0.30,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:00:00:00:30->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:00:00:00:30->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.30->arp_spa,IN_PORT
        cookie=0x4dc8507b57bead2, table=20, priority=100,arp,reg5=0x1389,arp_tpa=10.1.0.31,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:00:00:00:31->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:00:00:00:31->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.31->arp_spa,IN_PORT
        cookie=0x3ad0e07b553afdb, table=20, priority=100,arp,reg5=0x1000064,arp_tpa=10.2.0.11,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:00:00:00:11->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:00:00:00:11->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.2.0.11->arp_spa,IN_PORT
        cookie=0x4dc8007b57be253, table=20, priority=100,arp,reg5=0x1000064,arp_tpa=10.2.0.40,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:00:00:00:40->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:00:00:00:40->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.2.0.40->arp_spa,IN_PORT
        cookie=0x13c11fd413aeee3, table=20, priority=0 actions=goto_table:30
        cookie=0x13c11fd413aeee3, table=30, priority=100,ip actions=ct(table=31,zone=NXM_NX_REG6[0..15],nat)
        cookie=0x13c11fd413aeee3, table=30, priority=0 actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=100,ct_state=+est+trk actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=100,ct_state=+rel+trk actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=90,ct_state=+inv+trk actions=drop
        cookie=0x13c11fd413aeee3, table=31, priority=80,ct_state=+new+trk actions=goto_table:32
        cookie=0x13c11fd413aeee3, table=31, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=32, priority=0 actions=set_field:0->reg3,goto_table:33
        cookie=0x13c11fd413aeee3, table=33, priority=0 actions=goto_table:40
        cookie=0x3ad0f07b553b18e, table=40, priority=300,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.1.0.10 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:00:00:00:10->eth_dst,dec_ttl,set_field:0x1389->reg5,goto_table:50
        cookie=0x4dc8307b57be76c, table=40, priority=300,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.1.0.20 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:00:00:00:20->eth_dst,dec_ttl,set_field:0x1389->reg5,goto_table:50
        cookie=0x4dc8607b57bec85, table=40, priority=300,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.1.0.30 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:00:00:00:30->eth_dst,dec_ttl,set_field:0x1389->reg5,goto_table:50
        cookie=0x4dc8507b57bead2, table=40, priority=300,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.1.0.31 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:00:00:00:31->eth_dst,dec_ttl,set_field:0x1389->reg5,goto_table:50
        cookie=0x3ad0e07b553afdb, table=40, priority=300,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.2.0.11 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:00:00:00:11->eth_dst,dec_ttl,set_field:0x1000064->reg5,goto_table:50
        cookie=0x4dc8007b57be253, table=40, priority=300,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.2.0.40 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:00:00:00:40->eth_dst,dec_ttl,set_field:0x1000064->reg5,goto_table:50
        cookie=0x13c11fd413aeee3, table=40, priority=0 actions=goto_table:50
        cookie=0x3ad0f07b553b18e, table=50, priority=200,reg5=0x1389,dl_dst=02:00:00:00:00:10 actions=set_field:0xa->reg7,set_field:0x1->reg4,goto_table:60
        cookie=0x3ad0e07b553afdb, table=50, priority=200,reg5=0x1000064,dl_dst=02:00:00:00:00:11 actions=set_field:0xb->reg7,set_field:0x1->reg4,goto_table:60
        cookie=0x4dc8307b57be76c, table=50, priority=200,reg0=0x1,reg5=0x1389,dl_dst=02:00:00:00:00:20 actions=set_field:0x1389->tun_id,set_field:192.0.2.2->tun_dst,set_field:0x2->reg7,set_field:0x2->reg4,goto_table:60
        cookie=0x4dc8607b57bec85, table=50, priority=200,reg0=0x1,reg5=0x1389,dl_dst=02:00:00:00:00:30 actions=set_field:0x1389->tun_id,set_field:192.0.2.3->tun_dst,set_field:0x2->reg7,set_field:0x2->reg4,goto_table:60
        cookie=0x4dc8507b57bead2, table=50, priority=200,reg0=0x1,reg5=0x1389,dl_dst=02:00:00:00:00:31 actions=set_field:0x1389->tun_id,set_field:192.0.2.3->tun_dst,set_field:0x2->reg7,set_field:0x2->reg4,goto_table:60
        cookie=0x4dc8007b57be253, table=50, priority=200,reg0=0x1,reg5=0x1000064,dl_dst=02:00:00:00:00:40 actions=set_field:0x1->reg7,set_field:0x2->reg4,goto_table:60
        cookie=0x25c51dbd68924c1, table=50, priority=110,reg0=0x3,reg5=0x1389,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:1073746825
        cookie=0x25c51dbd68924c1, table=50, priority=100,reg5=0x1389,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:5001
        cookie=0x248f8fe26ea4ef3, table=50, priority=100,reg5=0x1000064,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:16777316
        cookie=0x248f8fe26ea4ef3, table=50, priority=50,reg0=0x1,reg5=0x1000064 actions=set_field:0x1->reg7,set_field:0x2->reg4,goto_table:60
        cookie=0x13c11fd413aeee3, table=50, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=60, priority=110,ct_state=+trk,ip actions=goto_table:61
        cookie=0x13c11fd413aeee3, table=60, priority=100,ip actions=ct(table=61,zone=NXM_NX_REG6[0..15],nat)
        cookie=0x13c11fd413aeee3, table=60, priority=0 actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=100,ct_state=+est+trk actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=100,ct_state=+rel+trk actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=90,ct_state=+inv+trk actions=drop
        cookie=0x13c11fd413aeee3, table=61, priority=80,ct_state=+new+trk,ip,reg4=0x2 actions=ct(commit,zone=NXM_NX_REG6[0..15]),goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=70,ct_state=+new+trk actions=goto_table:62
        cookie=0x13c11fd413aeee3, table=61, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=62, priority=0 actions=set_field:0->reg3,goto_table:63
        cookie=0x13c11fd413aeee3, table=63, priority=0,ip actions=ct(commit,zone=NXM_NX_REG6[0..15]),goto_table:70
        cookie=0x248f8fe26ea4ef3, table=70, priority=100,reg5=0x1000064,reg7=0x1 actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1
        cookie=0x13c11fd413aeee3, table=70, priority=0 actions=output:NXM_NX_REG7[]
        group_id=5001,type=all,bucket=actions=output:10,bucket=actions=set_field:0x1389->tun_id,set_field:192.0.2.2->tun_dst,output:2,bucket=actions=set_field:0x1389->tun_id,set_field:192.0.2.3->tun_dst,output:2
        group_id=16777316,type=all,bucket=actions=output:11,bucket=actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1
        group_id=1073746825,type=all,bucket=actions=output:10
        meter=65536,pktps,bands=type=drop,rate=100,burst_size=20
    "#]].assert_eq(&flows);
}

// --- Policy: groups, rules, conntrack. ---

use weft_policy::{Direction, EndpointGroup, Peer, Policy, Rule};

fn grouped(mut e: Endpoint, g: &str) -> Endpoint {
    e.group = Some(g.into());
    e
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

#[allow(clippy::too_many_arguments)]
fn rule(
    key: &str,
    priority: u8,
    direction: Direction,
    peer: Peer,
    protocol: Option<u8>,
    ports: Option<(u16, u16)>,
    allow: bool,
) -> Rule {
    Rule {
        key: key.into(),
        priority,
        direction,
        peer,
        protocol,
        ports,
        allow,
        log: false,
    }
}

/// blue:web (VXLAN 5001) on this host: web-1 (group web), db-1 (group db), a remote db-2; db
/// takes Postgres from web only, denies the rest by default, and may talk out to 10.9.0.0/16
/// on ports 8000-8015; policy "ops" on both web and db allows ports 22-25 from 10.8.0.0/24
/// (two targets × two port prefixes: a conjunction).
fn policy_state() -> HostState {
    let mut remote_db = remote(
        "db-2",
        "blue:web",
        "192.168.9.2",
        "02:00:0a:01:00:0c",
        "10.1.0.12",
    );
    remote_db.group = Some("blue:db".into());
    HostState {
        gateway_port: None,
        other_hosts: vec![],
        service_cidrs: vec![],
        uplink_port: None,
        tunnel_port: Some(9),
        networks: vec![net("blue:web", Segment::Vxlan(5001), Some("10.1.0.1"))],
        endpoints: vec![
            grouped(
                ep("web-1", "blue:web", 2, "02:00:0a:01:00:02", "10.1.0.2"),
                "blue:web",
            ),
            grouped(
                ep("db-1", "blue:web", 3, "02:00:0a:01:00:03", "10.1.0.3"),
                "blue:db",
            ),
        ],
        remote_endpoints: vec![remote_db],
        groups: vec![
            group("blue:web", "blue:web", &["blue:ops"], false),
            group("blue:db", "blue:web", &["blue:db-in", "blue:ops"], true),
        ],
        policies: vec![
            Policy {
                key: "blue:db-in".into(),
                rules: vec![
                    rule(
                        "blue:db-in:1",
                        10,
                        Direction::In,
                        Peer::Group("blue:web".into()),
                        Some(6),
                        Some((5432, 5432)),
                        true,
                    ),
                    rule(
                        "blue:db-in:2",
                        5,
                        Direction::Out,
                        Peer::Cidr("10.9.0.0".parse().unwrap(), 16),
                        Some(6),
                        Some((8000, 8015)),
                        true,
                    ),
                ],
            },
            Policy {
                key: "blue:ops".into(),
                rules: vec![rule(
                    "blue:ops:ssh",
                    50,
                    Direction::In,
                    Peer::Cidr("10.8.0.0".parse().unwrap(), 24),
                    Some(6),
                    Some((22, 25)),
                    true,
                )],
            },
        ],
    }
}

fn policy_tables(c: &weft_policy::Compiled) -> String {
    c.flows
        .flows
        .values()
        .filter(|f| {
            weft_policy::layout::CookieKind::from_cookie(f.cookie)
                != Some(weft_policy::layout::CookieKind::Pipeline)
                && matches!(f.table, 0 | 30..=33 | 50 | 60..=63)
        })
        .map(|f| format!("{f}\n"))
        .collect()
}

#[test]
fn groups_rules_and_conntrack() {
    let c = compile(&policy_state());
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    expect![[r#"
        cookie=0x36fc22e095c221f, table=0, priority=100,in_port=2 actions=set_field:0x1389->reg5,set_field:0x1->reg0,set_field:0x1->reg6,set_field:0x18d5751a->reg1,goto_table:10
        cookie=0x36804672aa2e741, table=0, priority=100,in_port=3 actions=set_field:0x1389->reg5,set_field:0x1->reg0,set_field:0x1->reg6,set_field:0x48a2b60d->reg1,goto_table:10
        cookie=0x25c51dbd68924c1, table=0, priority=100,tun_id=0x1389,in_port=9 actions=set_field:0x1389->reg5,set_field:0x3->reg0,set_field:0x1->reg6,goto_table:50
        cookie=0x36fc22e095c221f, table=32, priority=100,ip,reg6=0x1,nw_dst=10.1.0.2 actions=set_field:0x18d5751a->reg3,goto_table:33
        cookie=0x36804672aa2e741, table=32, priority=100,ip,reg6=0x1,nw_dst=10.1.0.3 actions=set_field:0x48a2b60d->reg3,goto_table:33
        cookie=0x46801672aa2e228, table=32, priority=100,ip,reg6=0x1,nw_dst=10.1.0.12 actions=set_field:0x48a2b60d->reg3,goto_table:33
        cookie=0x67f007506dd250d, table=33, priority=110,tcp,reg1=0x48a2b60d,nw_dst=10.9.0.0/16,tp_dst=0x1f40/0xfff0 actions=goto_table:40
        cookie=0x548f8fe26ea4ef3, table=33, priority=10,reg1=0x48a2b60d actions=drop
        cookie=0x36fc22e095c221f, table=50, priority=200,reg5=0x1389,dl_dst=02:00:0a:01:00:02 actions=set_field:0x2->reg7,set_field:0x1->reg4,set_field:0x18d5751a->reg2,goto_table:60
        cookie=0x36804672aa2e741, table=50, priority=200,reg5=0x1389,dl_dst=02:00:0a:01:00:03 actions=set_field:0x3->reg7,set_field:0x1->reg4,set_field:0x48a2b60d->reg2,goto_table:60
        cookie=0x46801672aa2e228, table=50, priority=200,reg0=0x1,reg5=0x1389,dl_dst=02:00:0a:01:00:0c actions=set_field:0x1389->tun_id,set_field:192.168.9.2->tun_dst,set_field:0x9->reg7,set_field:0x2->reg4,goto_table:60
        cookie=0x25c51dbd68924c1, table=50, priority=110,reg0=0x3,reg5=0x1389,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:1073746825
        cookie=0x25c51dbd68924c1, table=50, priority=100,reg5=0x1389,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:5001
        cookie=0x36fc22e095c221f, table=62, priority=100,ip,reg6=0x1,nw_src=10.1.0.2 actions=set_field:0x18d5751a->reg3,goto_table:63
        cookie=0x36804672aa2e741, table=62, priority=100,ip,reg6=0x1,nw_src=10.1.0.3 actions=set_field:0x48a2b60d->reg3,goto_table:63
        cookie=0x46801672aa2e228, table=62, priority=100,ip,reg6=0x1,nw_src=10.1.0.12 actions=set_field:0x48a2b60d->reg3,goto_table:63
        cookie=0x636f4974a0a3ae3, table=63, priority=200,reg2=0x18d5751a actions=conjunction(926731892,1/2)
        cookie=0x636f4974a0a3ae3, table=63, priority=200,reg2=0x48a2b60d actions=conjunction(926731892,1/2)
        cookie=0x636f4974a0a3ae3, table=63, priority=200,conj_id=926731892,ip actions=ct(commit,zone=NXM_NX_REG6[0..15]),goto_table:70
        cookie=0x636f4974a0a3ae3, table=63, priority=200,tcp,nw_src=10.8.0.0/24,tp_dst=0x16/0xfffe actions=conjunction(926731892,2/2)
        cookie=0x636f4974a0a3ae3, table=63, priority=200,tcp,nw_src=10.8.0.0/24,tp_dst=0x18/0xfffe actions=conjunction(926731892,2/2)
        cookie=0x67efd7506dd1ff4, table=63, priority=120,tcp,reg2=0x48a2b60d,reg3=0x18d5751a,tp_dst=5432 actions=ct(commit,zone=NXM_NX_REG6[0..15]),goto_table:70
        cookie=0x548f8fe26ea4ef3, table=63, priority=10,reg2=0x48a2b60d actions=drop
    "#]].assert_eq(&policy_tables(&c));
}

/// Whether a packet goes through conntrack never depends on policies: a change of intent can
/// then never leave a datapath flow behind that tracks (or skips tracking) wrongly.
#[test]
fn tracking_does_not_depend_on_policy() {
    let with = compile(&policy_state()).flows;
    let mut s = policy_state();
    s.groups = vec![
        group("blue:web", "blue:web", &[], false),
        group("blue:db", "blue:web", &[], false),
    ];
    s.policies.clear();
    let without = compile(&s).flows;
    let ct_flows = |set: &weft_policy::FlowSet| -> Vec<String> {
        set.flows
            .values()
            .filter(|f| matches!(f.table, 0 | 30 | 31 | 60 | 61))
            .map(|f| f.to_string())
            .collect()
    };
    assert_eq!(ct_flows(&with), ct_flows(&without));
    assert!(ct_flows(&with).iter().any(|f| f.contains("ct(table=31")));
}

#[test]
fn one_rule_or_one_member_changes_only_its_own_flows() {
    let base = policy_state();
    let before = compile(&base).flows;

    // A rule's port changes: only flows with that rule's cookie change.
    let mut s = base.clone();
    s.policies[0].rules[0].ports = Some((5433, 5433));
    let d = diff(&before, &compile(&s).flows);
    let rule_cookie =
        weft_policy::layout::cookie(weft_policy::layout::CookieKind::Rule, "blue:db-in:1");
    assert!(!d.is_empty());
    for f in d.flows_add.iter().chain(&d.flows_delete) {
        assert_eq!(f.cookie, rule_cookie, "{f}");
    }

    // A new remote member of group web: only its own flows (forwarding, ARP, its address as a
    // peer) and its network's flooding group change.
    let mut s = base.clone();
    let mut r = remote(
        "web-9",
        "blue:web",
        "192.168.9.3",
        "02:00:0a:01:00:19",
        "10.1.0.25",
    );
    r.group = Some("blue:web".into());
    s.remote_endpoints.push(r);
    let d = diff(&before, &compile(&s).flows);
    let ep_cookie =
        weft_policy::layout::cookie(weft_policy::layout::CookieKind::RemoteEndpoint, "web-9");
    assert!(d.flows_delete.is_empty(), "{d}");
    assert_eq!(d.flows_add.len(), 5, "{d}");
    for f in &d.flows_add {
        assert_eq!(f.cookie, ep_cookie, "{f}");
    }
    assert_eq!(
        d.groups_upsert.len(),
        1,
        "the flooding group gains a bucket: {d}"
    );
}

#[test]
fn flows_grow_with_rules_plus_members() {
    // n local endpoints in group a, n remote ones in group b; a policy of n rules (each from
    // group b, or a CIDR, on a port range) attached to groups a and c (so the target side has
    // two values and the rules need conjunctions).
    let count = |n: u32| {
        let mut s = HostState {
            gateway_port: None,
            other_hosts: vec![],
            service_cidrs: vec![],
            tunnel_port: Some(9),
            networks: vec![net("t:n", Segment::Vxlan(7000), None)],
            groups: vec![
                group("t:a", "t:n", &["t:p"], true),
                group("t:b", "t:n", &[], false),
                group("t:c", "t:n", &["t:p"], false),
            ],
            ..HostState::default()
        };
        for i in 0..n {
            let ip = Ipv4Addr::from(0x0a00_0000 + i + 10);
            let mac = format!("02:00:00:00:{:02x}:{:02x}", i >> 8, i & 0xff);
            let g = if i == 0 { "t:c" } else { "t:a" };
            s.endpoints.push(grouped(
                ep(&format!("l{i}"), "t:n", 10 + i, &mac, &ip.to_string()),
                g,
            ));
            let rip = Ipv4Addr::from(0x0a10_0000 + i + 10);
            let rmac = format!("02:00:00:01:{:02x}:{:02x}", i >> 8, i & 0xff);
            let mut r = remote(
                &format!("r{i}"),
                "t:n",
                "192.168.9.2",
                &rmac,
                &rip.to_string(),
            );
            r.group = Some("t:b".into());
            s.remote_endpoints.push(r);
        }
        let rules = (0..n)
            .map(|i| {
                let peer = if i % 2 == 0 {
                    Peer::Group("t:b".into())
                } else {
                    Peer::Cidr(Ipv4Addr::from(0x0b00_0000 + (i << 8)), 24)
                };
                let port = 1000 + (i as u16) * 10;
                rule(
                    &format!("t:p:{i}"),
                    (i % 100 + 1) as u8,
                    Direction::In,
                    peer,
                    Some(6),
                    Some((port, port + 1)),
                    i % 3 != 0,
                )
            })
            .collect();
        s.policies = vec![Policy {
            key: "t:p".into(),
            rules,
        }];
        let c = compile(&s);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        c.flows.flows.len()
    };
    let (small, big) = (count(50), count(100));
    // Linear: doubling rules and members at most doubles the flows (a product would quadruple).
    assert!(big <= small * 2 + 10, "{small} flows for 50, {big} for 100");
    assert!(big > small, "{small} {big}");
}

#[test]
fn a_netprofile_is_a_meter_per_endpoint_and_a_dscp_mark() {
    let mut s = policy_state();
    s.groups[0].profile = Some(weft_policy::Profile {
        rate_kbps: Some(2000),
        burst_kb: 256,
        dscp: Some(46),
    });
    let c = compile(&s);
    // web-1 (port 2) is in blue:web; db-1 (port 3) is not.
    let text = c.flows.to_string();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("in_port=2") && (l.contains("table=0,") || l.contains("ip,")))
        .collect();
    expect![[r#"
        cookie=0x36fc22e095c221f, table=0, priority=100,in_port=2 actions=meter:2,set_field:0x1389->reg5,set_field:0x1->reg0,set_field:0x1->reg6,set_field:0x18d5751a->reg1,goto_table:10
        cookie=0x36fc22e095c221f, table=10, priority=100,ip,in_port=2,dl_src=02:00:0a:01:00:02,nw_src=10.1.0.2 actions=set_field:46->ip_dscp,goto_table:20"#]].assert_eq(&lines.join("\n"));
    // Its own meter, and the verdict log's (every host has it).
    assert_eq!(c.flows.meters.len(), 2);
    assert!(c.flows.meters.contains_key(&2));
    assert!(!text.contains("meter:3"));
}

/// Tenant blue: `web` (host access, external) with an endpoint here, `db` with one on another
/// host; tenant red: `web` on the same subnet, external, with an endpoint here. The host has a
/// gateway port, one other host and a service range.
fn routed_state() -> HostState {
    let subnet = |s: &str| {
        let (a, l) = s.split_once('/').unwrap();
        Some((a.parse().unwrap(), l.parse().unwrap()))
    };
    HostState {
        gateway_port: Some(weft_policy::GatewayPort {
            ofport: 50,
            mac: weft_policy::layout::host_gateway_mac("192.168.9.1".parse().unwrap()),
            address: "192.168.9.1".parse().unwrap(),
        }),
        other_hosts: vec!["192.168.9.2".parse().unwrap()],
        service_cidrs: vec![("10.96.0.0".parse().unwrap(), 12)],
        uplink_port: None,
        tunnel_port: Some(9),
        networks: vec![
            Network {
                subnet: subnet("10.1.0.0/24"),
                host_access: true,
                external: true,
                ..net("blue:web", Segment::Vxlan(5000), Some("10.1.0.1"))
            },
            Network {
                subnet: subnet("10.2.0.0/24"),
                ..net("blue:db", Segment::Vxlan(5001), Some("10.2.0.1"))
            },
            Network {
                subnet: subnet("10.1.0.0/24"),
                external: true,
                zone: 2,
                ..net("red:web", Segment::Vxlan(6000), Some("10.1.0.1"))
            },
        ],
        endpoints: vec![
            ep("web-1", "blue:web", 2, "02:00:0a:01:00:02", "10.1.0.2"),
            ep("red-1", "red:web", 3, "02:00:0a:01:00:02", "10.1.0.2"),
        ],
        remote_endpoints: vec![remote(
            "db-1",
            "blue:db",
            "192.168.9.2",
            "02:00:0a:02:00:05",
            "10.2.0.5",
        )],
        groups: vec![],
        policies: vec![],
    }
}

fn tables(c: &weft_policy::Compiled, tables: &[u8]) -> String {
    c.flows
        .flows
        .values()
        .filter(|f| tables.contains(&f.table) && f.priority > 0)
        .map(|f| format!("{f}\n"))
        .collect()
}

#[test]
fn routing_within_a_tenant_host_access_and_egress() {
    let c = compile(&routed_state());
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    // Table 0: the gateway port's traffic enters a host-access network by destination, or a
    // tenant by its transit address; ARP from the host is answered with the gateway MAC.
    // Table 40: routes to every endpoint of the tenant (reg6), the tenant's subnets otherwise
    // dropped, the hosts and the service range for the host-access network, the rest of an
    // external network's traffic out of the gateway port.
    expect![[r#"
        cookie=0x7cee6ea1b7ff1f8, table=0, priority=200,ip,in_port=50,nw_src=169.254.0.0/16 actions=drop
        cookie=0x36fc22e095c221f, table=0, priority=100,in_port=2 actions=set_field:0x1388->reg5,set_field:0x1->reg0,set_field:0x1->reg6,goto_table:10
        cookie=0x32569f313c6dcb6, table=0, priority=100,in_port=3 actions=set_field:0x1770->reg5,set_field:0x1->reg0,set_field:0x2->reg6,goto_table:10
        cookie=0x25c51dbd68924c1, table=0, priority=100,tun_id=0x1388,in_port=9 actions=set_field:0x1388->reg5,set_field:0x3->reg0,set_field:0x1->reg6,goto_table:50
        cookie=0x248f8fe26ea4ef3, table=0, priority=100,tun_id=0x1389,in_port=9 actions=set_field:0x1389->reg5,set_field:0x3->reg0,set_field:0x1->reg6,goto_table:50
        cookie=0x22e35aa3751f6c4, table=0, priority=100,tun_id=0x1770,in_port=9 actions=set_field:0x1770->reg5,set_field:0x3->reg0,set_field:0x2->reg6,goto_table:50
        cookie=0x7cee6ea1b7ff1f8, table=0, priority=100,ip,in_port=50,nw_dst=169.254.0.1 actions=set_field:0x1->reg0,set_field:0x1->reg6,goto_table:30
        cookie=0x7cee6ea1b7ff1f8, table=0, priority=100,ip,in_port=50,nw_dst=169.254.0.2 actions=set_field:0x1->reg0,set_field:0x2->reg6,goto_table:30
        cookie=0x25c51dbd68924c1, table=0, priority=100,ip,in_port=50,nw_dst=10.1.0.0/24 actions=set_field:0x1388->reg5,set_field:0x1->reg0,set_field:0x1->reg6,goto_table:30
        cookie=0x7cee6ea1b7ff1f8, table=0, priority=100,arp,in_port=50,arp_tpa=169.254.0.1,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:00:00:11:11:11:11->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:00:00:11:11:11:11->arp_sha,move:NXM_OF_ARP_TPA[]->NXM_NX_REG3[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],move:NXM_NX_REG3[]->NXM_OF_ARP_SPA[],IN_PORT
        cookie=0x7cee6ea1b7ff1f8, table=0, priority=100,arp,in_port=50,arp_tpa=169.254.0.2,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:00:00:11:11:11:11->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:00:00:11:11:11:11->arp_sha,move:NXM_OF_ARP_TPA[]->NXM_NX_REG3[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],move:NXM_NX_REG3[]->NXM_OF_ARP_SPA[],IN_PORT
        cookie=0x25c51dbd68924c1, table=0, priority=100,arp,in_port=50,arp_tpa=10.1.0.0/24,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:00:00:11:11:11:11->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:00:00:11:11:11:11->arp_sha,move:NXM_OF_ARP_TPA[]->NXM_NX_REG3[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],move:NXM_NX_REG3[]->NXM_OF_ARP_SPA[],IN_PORT
        cookie=0x36fc22e095c221f, table=40, priority=300,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.1.0.2 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:0a:01:00:02->eth_dst,dec_ttl,set_field:0x1388->reg5,goto_table:50
        cookie=0x46804672aa2e741, table=40, priority=300,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.2.0.5 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:0a:02:00:05->eth_dst,dec_ttl,set_field:0x1389->reg5,goto_table:50
        cookie=0x32569f313c6dcb6, table=40, priority=300,ip,reg6=0x2,dl_dst=00:00:11:11:11:11,nw_dst=10.1.0.2 actions=set_field:00:00:11:11:11:11->eth_src,set_field:02:00:0a:01:00:02->eth_dst,dec_ttl,set_field:0x1770->reg5,goto_table:50
        cookie=0x25c51dbd68924c1, table=40, priority=250,ip,reg5=0x1388,dl_dst=00:00:11:11:11:11,nw_dst=192.168.9.1 actions=set_field:00:00:11:11:11:11->eth_src,set_field:0a:00:c0:a8:09:01->eth_dst,set_field:0x32->reg7,set_field:0x1->reg4,dec_ttl,goto_table:60
        cookie=0x25c51dbd68924c1, table=40, priority=250,ip,reg5=0x1388,dl_dst=00:00:11:11:11:11,nw_dst=192.168.9.2 actions=set_field:00:00:11:11:11:11->eth_src,set_field:0a:00:c0:a8:09:02->eth_dst,dec_ttl,set_field:0x1388->tun_id,set_field:192.168.9.2->tun_dst,set_field:0x9->reg7,set_field:0x2->reg4,goto_table:60
        cookie=0x25c51dbd68924c1, table=40, priority=200,ip,reg5=0x1388,dl_dst=00:00:11:11:11:11,nw_dst=10.96.0.0/12 actions=set_field:00:00:11:11:11:11->eth_src,set_field:0a:00:c0:a8:09:01->eth_dst,set_field:0x32->reg7,set_field:0x1->reg4,dec_ttl,goto_table:60
        cookie=0x25c51dbd68924c1, table=40, priority=150,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.1.0.0/24 actions=drop
        cookie=0x248f8fe26ea4ef3, table=40, priority=150,ip,reg6=0x1,dl_dst=00:00:11:11:11:11,nw_dst=10.2.0.0/24 actions=drop
        cookie=0x22e35aa3751f6c4, table=40, priority=150,ip,reg6=0x2,dl_dst=00:00:11:11:11:11,nw_dst=10.1.0.0/24 actions=drop
        cookie=0x25c51dbd68924c1, table=40, priority=100,ip,reg5=0x1388,dl_dst=00:00:11:11:11:11 actions=set_field:00:00:11:11:11:11->eth_src,set_field:0a:00:c0:a8:09:01->eth_dst,set_field:0x32->reg7,set_field:0x3->reg4,dec_ttl,goto_table:60
        cookie=0x22e35aa3751f6c4, table=40, priority=100,ip,reg5=0x1770,dl_dst=00:00:11:11:11:11 actions=set_field:00:00:11:11:11:11->eth_src,set_field:0a:00:c0:a8:09:01->eth_dst,set_field:0x32->reg7,set_field:0x3->reg4,dec_ttl,goto_table:60
    "#]]
    .assert_eq(&tables(&c, &[0, 40]));
    expect![[r#"
        cookie=0x13c11fd413aeee3, table=31, priority=100,ct_state=+est+trk actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=100,ct_state=+rel+trk actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=31, priority=90,ct_state=+inv+trk actions=drop
        cookie=0x13c11fd413aeee3, table=31, priority=80,ct_state=+new+trk actions=goto_table:32
        cookie=0x36fc22e095c221f, table=50, priority=200,reg5=0x1388,dl_dst=02:00:0a:01:00:02 actions=set_field:0x2->reg7,set_field:0x1->reg4,goto_table:60
        cookie=0x25c51dbd68924c1, table=50, priority=200,reg5=0x1388,dl_dst=0a:00:c0:a8:09:01 actions=set_field:0x32->reg7,set_field:0x1->reg4,goto_table:60
        cookie=0x32569f313c6dcb6, table=50, priority=200,reg5=0x1770,dl_dst=02:00:0a:01:00:02 actions=set_field:0x3->reg7,set_field:0x1->reg4,goto_table:60
        cookie=0x46804672aa2e741, table=50, priority=200,reg0=0x1,reg5=0x1389,dl_dst=02:00:0a:02:00:05 actions=set_field:0x1389->tun_id,set_field:192.168.9.2->tun_dst,set_field:0x9->reg7,set_field:0x2->reg4,goto_table:60
        cookie=0x25c51dbd68924c1, table=50, priority=110,reg0=0x3,reg5=0x1388,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:1073746824
        cookie=0x248f8fe26ea4ef3, table=50, priority=110,reg0=0x3,reg5=0x1389,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:1073746825
        cookie=0x22e35aa3751f6c4, table=50, priority=110,reg0=0x3,reg5=0x1770,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:1073747824
        cookie=0x25c51dbd68924c1, table=50, priority=100,reg5=0x1388,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:5000
        cookie=0x248f8fe26ea4ef3, table=50, priority=100,reg5=0x1389,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:5001
        cookie=0x22e35aa3751f6c4, table=50, priority=100,reg5=0x1770,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:6000
        cookie=0x7cee6ea1b7ff1f8, table=61, priority=110,ct_state=+est+rpl+trk,ct_mark=0x1/0x1,ip actions=set_field:00:00:11:11:11:11->eth_src,set_field:0a:00:c0:a8:09:01->eth_dst,set_field:0x32->reg7,set_field:0x1->reg4,goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=100,ct_state=+est+trk actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=100,ct_state=+rel+trk actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=90,ct_state=+inv+trk actions=drop
        cookie=0x7cee6ea1b7ff1f8, table=61, priority=85,ct_state=+new+trk,ip,reg4=0x2,in_port=50 actions=ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:0x1->ct_mark)),goto_table:70
        cookie=0x7cee6ea1b7ff1f8, table=61, priority=85,ct_state=+new+trk,ip,reg4=0x3,reg6=0x1 actions=ct(commit,zone=NXM_NX_REG6[0..15],nat(src=169.254.0.1)),goto_table:70
        cookie=0x7cee6ea1b7ff1f8, table=61, priority=85,ct_state=+new+trk,ip,reg4=0x3,reg6=0x2 actions=ct(commit,zone=NXM_NX_REG6[0..15],nat(src=169.254.0.2)),goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=80,ct_state=+new+trk,ip,reg4=0x2 actions=ct(commit,zone=NXM_NX_REG6[0..15]),goto_table:70
        cookie=0x13c11fd413aeee3, table=61, priority=70,ct_state=+new+trk actions=goto_table:62
        cookie=0x7cee6ea1b7ff1f8, table=63, priority=1000,ip,in_port=50 actions=ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:0x1->ct_mark)),goto_table:70
    "#]]
    .assert_eq(&tables(&c, &[31, 50, 61, 63]));
}

#[test]
fn host_access_networks_are_carried_by_every_host_with_a_gateway() {
    // No local endpoint at all: the host-access network is still here (the host reaches its
    // endpoints), red's network is not.
    let mut s = routed_state();
    s.endpoints.clear();
    let c = compile(&s);
    let owners: std::collections::BTreeSet<&String> = c.owners.values().collect();
    assert!(
        owners.iter().any(|o| o.as_str() == "network blue:web"),
        "{owners:?}"
    );
    assert!(!owners.iter().any(|o| o.contains("red:web")), "{owners:?}");
    assert!(!owners.iter().any(|o| o.contains("blue:db")), "{owners:?}");
    // Without a gateway port, nothing of it.
    s.gateway_port = None;
    let c = compile(&s);
    assert!(
        !c.owners.values().any(|o| o.contains("blue:web")),
        "{:?}",
        c.owners
    );
}

#[test]
fn tenants_route_only_within_themselves() {
    // Red's endpoint and blue's have one address; each tenant's routes name only its own.
    let c = compile(&routed_state());
    let blue = weft_policy::layout::cookie(weft_policy::layout::CookieKind::Endpoint, "web-1");
    let red = weft_policy::layout::cookie(weft_policy::layout::CookieKind::Endpoint, "red-1");
    let routes: Vec<String> = c
        .flows
        .flows
        .values()
        .filter(|f| f.table == 40 && (f.cookie == blue || f.cookie == red))
        .map(|f| f.to_string())
        .collect();
    assert_eq!(routes.len(), 2, "{routes:#?}");
    for r in &routes {
        let zone = if r.contains("set_field:0x1388->reg5") {
            "reg6=0x1"
        } else {
            "reg6=0x2"
        };
        assert!(r.contains(zone), "{r}");
    }
    // Each external tenant has its own transit address: replies from the outside enter only it.
    let transit: Vec<String> = c
        .flows
        .flows
        .values()
        .filter(|f| f.table == 0 && f.to_string().contains("nw_dst=169.254."))
        .map(|f| f.to_string())
        .collect();
    assert_eq!(transit.len(), 2, "{transit:#?}");
    assert!(transit
        .iter()
        .any(|f| f.contains("nw_dst=169.254.0.1") && f.contains("0x1->reg6")));
    assert!(transit
        .iter()
        .any(|f| f.contains("nw_dst=169.254.0.2") && f.contains("0x2->reg6")));
}

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
    }
}

fn net(key: &str, segment: Segment, gw: Option<&str>) -> Network {
    Network {
        key: key.into(),
        segment,
        gateway: gw.map(|g| g.parse::<Ipv4Addr>().unwrap()),
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
        cookie=0x13c11fd413aeee3, table=30, priority=0 actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=40, priority=0 actions=goto_table:50
        cookie=0x13c11fd413aeee3, table=50, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=60, priority=0 actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=70, priority=0 actions=output:NXM_NX_REG7[]
    "#]]
    .assert_eq(&c.flows.to_string());
}

#[test]
fn vlan_network_with_two_endpoints_and_an_uplink() {
    let state = HostState {
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
        cookie=0x3a27f07b54a6859, table=0, priority=100,in_port=2 actions=set_field:0x1000064->reg5,set_field:0x1->reg0,goto_table:10
        cookie=0x3a27c07b54a6340, table=0, priority=100,in_port=3 actions=set_field:0x1000064->reg5,set_field:0x1->reg0,goto_table:10
        cookie=0x25c51dbd68924c1, table=0, priority=100,in_port=1,dl_vlan=100 actions=pop_vlan,set_field:0x1000064->reg5,set_field:0x2->reg0,goto_table:50
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
        cookie=0x13c11fd413aeee3, table=30, priority=0 actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=40, priority=0 actions=goto_table:50
        cookie=0x3a27f07b54a6859, table=50, priority=200,reg5=0x1000064,dl_dst=02:00:0a:01:00:02 actions=set_field:0x2->reg7,goto_table:60
        cookie=0x3a27c07b54a6340, table=50, priority=200,reg5=0x1000064,dl_dst=02:00:0a:01:00:03 actions=set_field:0x3->reg7,goto_table:60
        cookie=0x25c51dbd68924c1, table=50, priority=100,reg5=0x1000064,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:16777316
        cookie=0x25c51dbd68924c1, table=50, priority=50,reg0=0x1,reg5=0x1000064 actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1
        cookie=0x13c11fd413aeee3, table=50, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=60, priority=0 actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=70, priority=0 actions=output:NXM_NX_REG7[]
        group_id=16777316,type=all,bucket=actions=output:2,bucket=actions=output:3,bucket=actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1
    "#]].assert_eq(&c.flows.to_string());
}

#[test]
fn vxlan_network_and_ipv6() {
    let mut e = ep("c1", "red:db", 5, "02:00:0a:02:00:02", "10.2.0.2");
    e.ipv6 = vec!["fd00::2".parse::<Ipv6Addr>().unwrap()];
    let state = HostState {
        uplink_port: Some(1),
        tunnel_port: None,
        remote_endpoints: vec![],
        networks: vec![net("red:db", Segment::Vxlan(5000), None)],
        endpoints: vec![e],
    };
    let c = compile(&state);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    expect![[r#"
        cookie=0x3a27f07b54a6859, table=0, priority=100,in_port=5 actions=set_field:0x1388->reg5,set_field:0x1->reg0,goto_table:10
        cookie=0x13c11fd413aeee3, table=0, priority=0 actions=drop
        cookie=0x3a27f07b54a6859, table=10, priority=100,ip,in_port=5,dl_src=02:00:0a:02:00:02,nw_src=10.2.0.2 actions=goto_table:20
        cookie=0x3a27f07b54a6859, table=10, priority=100,arp,in_port=5,dl_src=02:00:0a:02:00:02,arp_spa=10.2.0.2,arp_sha=02:00:0a:02:00:02 actions=goto_table:20
        cookie=0x3a27f07b54a6859, table=10, priority=100,ipv6,in_port=5,dl_src=02:00:0a:02:00:02,ipv6_src=:: actions=goto_table:20
        cookie=0x3a27f07b54a6859, table=10, priority=100,ipv6,in_port=5,dl_src=02:00:0a:02:00:02,ipv6_src=fd00::2 actions=goto_table:20
        cookie=0x3a27f07b54a6859, table=10, priority=100,ipv6,in_port=5,dl_src=02:00:0a:02:00:02,ipv6_src=fe80::/10 actions=goto_table:20
        cookie=0x13c11fd413aeee3, table=10, priority=0 actions=drop
        cookie=0x3a27f07b54a6859, table=20, priority=100,arp,reg5=0x1388,arp_tpa=10.2.0.2,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:0a:02:00:02->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:0a:02:00:02->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.2.0.2->arp_spa,IN_PORT
        cookie=0x13c11fd413aeee3, table=20, priority=0 actions=goto_table:30
        cookie=0x13c11fd413aeee3, table=30, priority=0 actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=40, priority=0 actions=goto_table:50
        cookie=0x3a27f07b54a6859, table=50, priority=200,reg5=0x1388,dl_dst=02:00:0a:02:00:02 actions=set_field:0x5->reg7,goto_table:60
        cookie=0x2dbf10a658abf20, table=50, priority=100,reg5=0x1388,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:5000
        cookie=0x13c11fd413aeee3, table=50, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=60, priority=0 actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=70, priority=0 actions=output:NXM_NX_REG7[]
        group_id=5000,type=all,bucket=actions=output:5
    "#]].assert_eq(&c.flows.to_string());
}

#[test]
fn two_tenants_with_the_same_subnet_never_share_a_flow() {
    let state = HostState {
        uplink_port: None,
        tunnel_port: None,
        remote_endpoints: vec![],
        networks: vec![
            net("blue:web", Segment::Vxlan(10), Some("10.0.0.1")),
            net("red:web", Segment::Vxlan(20), Some("10.0.0.1")),
        ],
        endpoints: vec![
            ep("b1", "blue:web", 2, "02:00:00:00:00:02", "10.0.0.2"),
            ep("r1", "red:web", 3, "02:00:00:00:00:02", "10.0.0.2"),
        ],
    };
    let c = compile(&state);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    // Every flow past the classifier that belongs to a network or endpoint matches reg5 of
    // exactly one network, or the in_port of exactly one endpoint.
    for f in c.flows.flows.values() {
        let text = f.to_string();
        let owner = &c.owners[&f.cookie];
        if owner.starts_with("pipeline") {
            continue;
        }
        let blue = owner.contains("blue") || owner.contains("b1");
        let (mine, theirs) = if blue {
            ("reg5=0xa", "reg5=0x14")
        } else {
            ("reg5=0x14", "reg5=0xa")
        };
        assert!(!text.contains(theirs), "{owner}: {text}");
        assert!(
            text.contains(mine)
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
        + cookie=0x3a27c07b54a6340, table=0, priority=100,in_port=3 actions=set_field:0x1000064->reg5,set_field:0x1->reg0,goto_table:10
        + cookie=0x3a27c07b54a6340, table=10, priority=100,ip,in_port=3,dl_src=02:00:0a:01:00:03,nw_src=10.1.0.3 actions=goto_table:20
        + cookie=0x3a27c07b54a6340, table=10, priority=100,arp,in_port=3,dl_src=02:00:0a:01:00:03,arp_spa=10.1.0.3,arp_sha=02:00:0a:01:00:03 actions=goto_table:20
        + cookie=0x3a27c07b54a6340, table=20, priority=100,arp,reg5=0x1000064,arp_tpa=10.1.0.3,arp_op=1 actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:02:00:0a:01:00:03->eth_src,set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],set_field:02:00:0a:01:00:03->arp_sha,move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:10.1.0.3->arp_spa,IN_PORT
        + cookie=0x3a27c07b54a6340, table=50, priority=200,reg5=0x1000064,dl_dst=02:00:0a:01:00:03 actions=set_field:0x3->reg7,goto_table:60
    "#]].assert_eq(&d.to_string());
    // And back.
    let back = diff(&compile(&more).flows, &compile(&base).flows);
    assert_eq!(back.flows_delete.len(), d.flows_add.len());
    assert!(back.flows_add.is_empty());
}

#[test]
fn the_last_endpoint_of_a_network_takes_the_network_with_it() {
    let one = HostState {
        uplink_port: Some(1),
        tunnel_port: None,
        remote_endpoints: vec![],
        networks: vec![net("blue:web", Segment::Vlan(100), Some("10.1.0.1"))],
        endpoints: vec![ep("c1", "blue:web", 2, "02:00:0a:01:00:02", "10.1.0.2")],
    };
    let none = HostState {
        endpoints: vec![],
        ..one.clone()
    };
    let d = diff(&compile(&one).flows, &compile(&none).flows);
    assert_eq!(d.groups_delete.len(), 1);
    assert!(d.flows_add.is_empty());
    assert_eq!(
        compile(&none).flows.flows.len(),
        8,
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
    }
}

#[test]
fn remote_endpoints_over_vxlan_and_vlan() {
    let state = HostState {
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
        cookie=0x3ad0f07b553b18e, table=0, priority=100,in_port=10 actions=set_field:0x1389->reg5,set_field:0x1->reg0,goto_table:10
        cookie=0x3ad0e07b553afdb, table=0, priority=100,in_port=11 actions=set_field:0x1000064->reg5,set_field:0x1->reg0,goto_table:10
        cookie=0x248f8fe26ea4ef3, table=0, priority=100,in_port=1,dl_vlan=100 actions=pop_vlan,set_field:0x1000064->reg5,set_field:0x2->reg0,goto_table:50
        cookie=0x25c51dbd68924c1, table=0, priority=100,tun_id=0x1389,in_port=2 actions=set_field:0x1389->reg5,set_field:0x3->reg0,goto_table:50
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
        cookie=0x13c11fd413aeee3, table=30, priority=0 actions=goto_table:40
        cookie=0x13c11fd413aeee3, table=40, priority=0 actions=goto_table:50
        cookie=0x3ad0f07b553b18e, table=50, priority=200,reg5=0x1389,dl_dst=02:00:00:00:00:10 actions=set_field:0xa->reg7,goto_table:60
        cookie=0x3ad0e07b553afdb, table=50, priority=200,reg5=0x1000064,dl_dst=02:00:00:00:00:11 actions=set_field:0xb->reg7,goto_table:60
        cookie=0x4dc8307b57be76c, table=50, priority=200,reg0=0x1,reg5=0x1389,dl_dst=02:00:00:00:00:20 actions=set_field:0x1389->tun_id,set_field:192.0.2.2->tun_dst,output:2
        cookie=0x4dc8607b57bec85, table=50, priority=200,reg0=0x1,reg5=0x1389,dl_dst=02:00:00:00:00:30 actions=set_field:0x1389->tun_id,set_field:192.0.2.3->tun_dst,output:2
        cookie=0x4dc8507b57bead2, table=50, priority=200,reg0=0x1,reg5=0x1389,dl_dst=02:00:00:00:00:31 actions=set_field:0x1389->tun_id,set_field:192.0.2.3->tun_dst,output:2
        cookie=0x4dc8007b57be253, table=50, priority=200,reg0=0x1,reg5=0x1000064,dl_dst=02:00:00:00:00:40 actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1
        cookie=0x25c51dbd68924c1, table=50, priority=110,reg0=0x3,reg5=0x1389,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:1073746825
        cookie=0x25c51dbd68924c1, table=50, priority=100,reg5=0x1389,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:5001
        cookie=0x248f8fe26ea4ef3, table=50, priority=100,reg5=0x1000064,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:16777316
        cookie=0x248f8fe26ea4ef3, table=50, priority=50,reg0=0x1,reg5=0x1000064 actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1
        cookie=0x13c11fd413aeee3, table=50, priority=0 actions=drop
        cookie=0x13c11fd413aeee3, table=60, priority=0 actions=goto_table:70
        cookie=0x13c11fd413aeee3, table=70, priority=0 actions=output:NXM_NX_REG7[]
        group_id=5001,type=all,bucket=actions=output:10,bucket=actions=set_field:0x1389->tun_id,set_field:192.0.2.2->tun_dst,output:2,bucket=actions=set_field:0x1389->tun_id,set_field:192.0.2.3->tun_dst,output:2
        group_id=16777316,type=all,bucket=actions=output:11,bucket=actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1
        group_id=1073746825,type=all,bucket=actions=output:10
    "#]].assert_eq(&flows);
}

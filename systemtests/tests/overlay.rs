//! Several hosts: VXLAN and VLAN networks across hosts, tenants with the same subnet (apart on
//! one host and across hosts, judged by receive counters), forged frames stopped by the sending
//! host's spoof guard, a host joining and a host leaving.

use std::time::Duration;

use systemtests::{arrivals, eventually, reaches, rx_packets, Cluster};
use testsupport::{frames, Netns};

const SPEC: &str = r#"{
  "global": { "vlans": "100-199", "vxlans": "5000-5999" },
  "tenants": [ { "tenantName": "blue" }, { "tenantName": "red" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "web", "encap": "vxlan", "pktTag": 5001,
      "subnet": "10.232.1.0/24", "gateway": "10.232.1.1" },
    { "tenantName": "blue", "networkName": "db", "encap": "vlan", "pktTag": 100,
      "subnet": "10.232.2.0/24", "gateway": "10.232.2.1" },
    { "tenantName": "red", "networkName": "web", "encap": "vxlan", "pktTag": 5002,
      "subnet": "10.232.1.0/24", "gateway": "10.232.1.1" }
  ]
}"#;

/// A container namespace without IPv6: nothing but the test's own traffic moves its counters.
fn container() -> Netns {
    let ns = Netns::new();
    ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    ns
}

#[test]
fn vxlan_and_vlan_across_hosts_and_tenants_apart() {
    let mut cluster = Cluster::new(2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (b1, b2, r1, r2, d1, d2) = (
        container(),
        container(),
        container(),
        container(),
        container(),
        container(),
    );
    cluster.apply(SPEC);
    rt.block_on(async {
        let h = &cluster.hosts;
        h[0].attach(&b1, "b1", "blue", "web", "10.232.1.10")
            .await
            .unwrap();
        h[1].attach(&b2, "b2", "blue", "web", "10.232.1.11")
            .await
            .unwrap();
        // red on host2 with b1's address: the same subnet, another tenant.
        h[1].attach(&r2, "r2", "red", "web", "10.232.1.10")
            .await
            .unwrap();
        // red on host1 with an address no blue container has.
        h[0].attach(&r1, "r1", "red", "web", "10.232.1.13")
            .await
            .unwrap();
        h[0].attach(&d1, "d1", "blue", "db", "10.232.2.10")
            .await
            .unwrap();
        h[1].attach(&d2, "d2", "blue", "db", "10.232.2.11")
            .await
            .unwrap();
    });
    // Every agent learns the other host's endpoints from netmaster's watch.
    assert!(
        eventually(Duration::from_secs(10), || reaches(&b1, "10.232.1.11", 1)),
        "blue:web across hosts (VXLAN)"
    );
    assert!(reaches(&b2, "10.232.1.10", 2));
    assert!(
        eventually(Duration::from_secs(10), || reaches(&d1, "10.232.2.11", 1)),
        "blue:db across hosts (VLAN through the fabric)"
    );
    assert!(
        eventually(Duration::from_secs(10), || reaches(&r1, "10.232.1.10", 1)),
        "red:web across hosts (VXLAN)"
    );
    // b2 → 10.232.1.10 reaches blue's b1 on host1, never red's r2 next to it on host2; r1 →
    // 10.232.1.10 reaches red's r2 on host2, never blue's b1 next to it on host1. Judged by the
    // counters of both twins.
    for (from, to, twin, what) in [
        (&b2, &b1, &r2, "blue b2 (host2) → b1 (host1)"),
        (&r1, &r2, &b1, "red r1 (host1) → r2 (host2)"),
    ] {
        let (to_before, twin_before) = (rx_packets(to, "eth0"), rx_packets(twin, "eth0"));
        assert!(reaches(from, "10.232.1.10", 3), "{what}");
        assert_eq!(
            rx_packets(twin, "eth0"),
            twin_before,
            "{what}: the other tenant's twin received the traffic"
        );
        assert!(
            rx_packets(to, "eth0") >= to_before + 3,
            "{what}: not counted"
        );
    }
    // red cannot reach blue, on either host, nor blue red; judged at the target's counter alone
    // (a leaked ping may be answered by nobody).
    for (from, to, addr, what) in [
        (&r2, &b2, "10.232.1.11", "red r2 → blue b2 (same host)"),
        (&r1, &b2, "10.232.1.11", "red r1 → blue b2 (across hosts)"),
        (&b1, &r1, "10.232.1.13", "blue b1 → red r1 (same host)"),
        (&b2, &r1, "10.232.1.13", "blue b2 → red r1 (across hosts)"),
    ] {
        assert_eq!(
            arrivals(from, addr, 2, to, "eth0"),
            (0, 0),
            "{what}: (packets that arrived, pings answered)\n{}",
            cluster.diagnose()
        );
    }

    // Blue's networks are routed between (VLAN db on host2 → VXLAN web on host1); red's r2,
    // with b1's address on d2's own host, is never the one receiving.
    assert!(
        eventually(Duration::from_secs(10), || reaches(&d2, "10.232.1.10", 1)),
        "blue db → blue web, routed"
    );
    let (b1_before, r2_before) = (rx_packets(&b1, "eth0"), rx_packets(&r2, "eth0"));
    assert!(reaches(&d2, "10.232.1.10", 3));
    assert_eq!(
        rx_packets(&r2, "eth0"),
        r2_before,
        "red's r2 received blue's routed traffic"
    );
    assert!(
        rx_packets(&b1, "eth0") >= b1_before + 3,
        "b1 got the routed pings"
    );

    // Forged frames across hosts: sent raw from b1's interface on host1 to b2 on host2, each
    // must die in host1's spoof guard (b2's counter still, host1's drop flow counting). A
    // truthful frame through the same sender first arrives (the sender and the path work).
    let mac_of = |ns: &Netns| frames::mac(&ns.exec(&["cat", "/sys/class/net/eth0/address"]));
    let (b1_mac, b2_mac, r1_mac) = (mac_of(&b1), mac_of(&b2), mac_of(&r1));
    let ip = |s: &str| -> std::net::Ipv4Addr { s.parse().unwrap() };
    let before = rx_packets(&b2, "eth0");
    frames::send(
        &b1,
        "eth0",
        &[frames::icmp_echo(
            b1_mac,
            b2_mac,
            ip("10.232.1.10"),
            ip("10.232.1.11"),
            1,
        )],
        3,
    );
    assert!(
        testsupport::wait_until(Duration::from_secs(2), || rx_packets(&b2, "eth0")
            >= before + 3),
        "b2 did not receive b1's truthful raw frames"
    );
    let host1 = &cluster.hosts[0].ovs;
    for (what, frame) in [
        (
            "an unassigned source address",
            frames::icmp_echo(b1_mac, b2_mac, ip("10.232.1.99"), ip("10.232.1.11"), 2),
        ),
        (
            "another MAC",
            frames::icmp_echo(
                frames::mac("02:aa:bb:cc:dd:ee"),
                b2_mac,
                ip("10.232.1.10"),
                ip("10.232.1.11"),
                3,
            ),
        ),
        (
            "red r1's MAC and address (its neighbour on host1)",
            frames::icmp_echo(r1_mac, b2_mac, ip("10.232.1.13"), ip("10.232.1.11"), 4),
        ),
        (
            "an ARP reply to b2: the gateway is at b1's MAC",
            frames::arp(
                b1_mac,
                b2_mac,
                2,
                b1_mac,
                ip("10.232.1.1"),
                b2_mac,
                ip("10.232.1.11"),
            ),
        ),
    ] {
        let b0 = rx_packets(&b2, "eth0");
        let drops = frames::spoof_guard_drops(host1, "br-int");
        frames::send(&b1, "eth0", std::slice::from_ref(&frame), 3);
        testsupport::wait_until(Duration::from_secs(2), || {
            frames::spoof_guard_drops(host1, "br-int") >= drops + 3
        });
        std::thread::sleep(Duration::from_millis(300));
        let (arrived, dropped) = (
            rx_packets(&b2, "eth0") - b0,
            frames::spoof_guard_drops(host1, "br-int") - drops,
        );
        assert!(
            arrived == 0 && dropped >= 3,
            "{what}: {arrived} forged frames arrived at b2 on host2, host1's spoof guard \
             dropped {dropped} of 3\n{}",
            host1.ofctl("dump-flows", "br-int", &["table=10"])
        );
    }

    // A third host joins: its container reaches the others.
    let b3 = container();
    cluster.add_host();
    rt.block_on(async {
        cluster.hosts[2]
            .attach(&b3, "b3", "blue", "web", "10.232.1.12")
            .await
            .unwrap();
    });
    assert!(
        eventually(Duration::from_secs(10), || reaches(&b3, "10.232.1.10", 1)
            && reaches(&b3, "10.232.1.11", 1)),
        "the new host's container reaches both others\n{}",
        cluster.diagnose()
    );
    assert!(reaches(&b1, "10.232.1.12", 1));

    // The third host leaves (its agent stops, its lease lapses): the others forget it.
    cluster.hosts[2].stop_agent();
    let before = cluster.hosts[0]
        .ovs
        .ofctl("dump-flows", "br-int", &["table=50"]);
    assert!(before.contains("192.168.231.3"), "{before}");
    assert!(
        eventually(Duration::from_secs(40), || {
            !cluster.hosts[0]
                .ovs
                .ofctl("dump-flows", "br-int", &["table=50"])
                .contains("192.168.231.3")
                && !cluster.hosts[0]
                    .ovs
                    .ofctl("dump-groups", "br-int", &[])
                    .contains("192.168.231.3")
        }),
        "host1 still sends to host3 after its lease lapsed"
    );
    let nodes = cluster.get("/api/v1/inspect/nodes/");
    assert!(!nodes.contains("host3"), "{nodes}");
    assert!(reaches(&b1, "10.232.1.11", 1), "the others still talk");
}

//! Several hosts: VXLAN and VLAN networks across hosts, tenants with the same subnet, a host
//! joining and a host leaving.

use std::time::Duration;

use systemtests::{eventually, reaches, Cluster};
use testsupport::Netns;

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

#[test]
fn vxlan_and_vlan_across_hosts_and_tenants_apart() {
    let mut cluster = Cluster::new(2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (b1, b2, r2, d1, d2) = (
        Netns::new(),
        Netns::new(),
        Netns::new(),
        Netns::new(),
        Netns::new(),
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
    // b2 → 10.232.1.10 reaches blue's b1 on host1, never red's r2 next to it on host2.
    let rx = |ns: &Netns| -> u64 {
        ns.exec(&["cat", "/sys/class/net/eth0/statistics/rx_packets"])
            .trim()
            .parse()
            .unwrap()
    };
    let (r2_before, b1_before) = (rx(&r2), rx(&b1));
    assert!(reaches(&b2, "10.232.1.10", 3));
    assert_eq!(rx(&r2), r2_before, "red's r2 received blue's traffic");
    assert!(rx(&b1) >= b1_before + 3, "b1 answered");
    // red cannot reach blue, on either host.
    assert!(!reaches(&r2, "10.232.1.11", 2));
    // Blue's networks are routed between (VXLAN web on host1 → VLAN db on host2); red's
    // container with b1's address is never the one answering.
    assert!(
        eventually(Duration::from_secs(10), || reaches(&d2, "10.232.1.10", 1)),
        "blue db → blue web, routed"
    );
    let r2_before = rx(&r2);
    assert!(reaches(&d2, "10.232.1.10", 3));
    assert_eq!(
        rx(&r2),
        r2_before,
        "red's r2 received blue's routed traffic"
    );

    // A third host joins: its container reaches the others.
    let b3 = Netns::new();
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

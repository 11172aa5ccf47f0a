//! Restarts under continuous traffic across hosts: netplugin (no packet lost), netmaster (no
//! packet lost; what changed while it was away is applied when it is back). netmaster keeps its
//! intent in etcd here, so a change can be made while it is away: through a second netmaster.

use std::time::Duration;

use systemtests::{eventually, reaches, Cluster, Flood};
use testsupport::Netns;

const SPEC: &str = r#"{
  "global": { "vxlans": "5000-5999" },
  "tenants": [ { "tenantName": "blue" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "web", "encap": "vxlan", "pktTag": 5001,
      "subnet": "10.233.1.0/24", "gateway": "10.233.1.1" },
    { "tenantName": "blue", "networkName": "db", "encap": "vxlan", "pktTag": 5002,
      "subnet": "10.233.2.0/24", "gateway": "10.233.2.1" }
  ]
}"#;

/// Applied through another netmaster while the cluster's own is away.
const WHILE_AWAY: &str = r#"{
  "tenants": [ { "tenantName": "blue" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "api", "encap": "vxlan", "pktTag": 5003,
      "subnet": "10.233.3.0/24", "gateway": "10.233.3.1" }
  ]
}"#;

#[test]
fn netplugin_and_netmaster_restart_under_traffic() {
    let mut cluster = Cluster::with_etcd(2);
    cluster.apply(SPEC);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (a, b, c) = (Netns::new(), Netns::new(), Netns::new());
    rt.block_on(async {
        cluster.hosts[0]
            .attach(&a, "a", "blue", "web", "10.233.1.10")
            .await
            .unwrap();
        cluster.hosts[1]
            .attach(&b, "b", "blue", "web", "10.233.1.11")
            .await
            .unwrap();
    });
    assert!(eventually(Duration::from_secs(10), || reaches(
        &a,
        "10.233.1.11",
        1
    )));

    // netplugin on host2 restarts while a pings b at 100/s.
    let p = Flood::start(&a, "10.233.1.11", 4);
    std::thread::sleep(Duration::from_millis(700));
    cluster.hosts[1].stop_agent();
    std::thread::sleep(Duration::from_millis(300));
    cluster.hosts[1].start_agent();
    let (sent, got) = p.finish();
    assert!(sent > 100);
    assert_eq!(sent, got, "packets lost across a netplugin restart");

    // netmaster goes away: traffic goes on; an endpoint attached meanwhile cannot get an
    // address; a network added meanwhile (through another netmaster on the same etcd) reaches
    // every host when it is back.
    let p = Flood::start(&a, "10.233.1.11", 4);
    std::thread::sleep(Duration::from_millis(500));
    cluster.stop_netmaster();
    let refused = rt.block_on(cluster.hosts[0].attach(&c, "c", "blue", "db", "10.233.2.10"));
    assert!(
        refused.is_err(),
        "attach without netmaster must fail cleanly"
    );
    cluster.apply_via_replica(WHILE_AWAY);
    std::thread::sleep(Duration::from_millis(500));
    cluster.start_netmaster();
    let (sent, got) = p.finish();
    assert!(sent > 100);
    assert_eq!(sent, got, "packets lost while netmaster was away");
    // Back: attaches work again, across hosts.
    let d = Netns::new();
    rt.block_on(async {
        cluster.hosts[0]
            .attach(&c, "c", "blue", "db", "10.233.2.10")
            .await
            .unwrap();
        cluster.hosts[1]
            .attach(&d, "d", "blue", "db", "10.233.2.11")
            .await
            .unwrap();
    });
    assert!(
        eventually(Duration::from_secs(10), || reaches(&c, "10.233.2.11", 1)),
        "agents resumed their watch after netmaster came back"
    );
    // The network added while netmaster was away is in both agents' views.
    let (e, f) = (Netns::new(), Netns::new());
    rt.block_on(async {
        cluster.hosts[0]
            .attach(&e, "e", "blue", "api", "10.233.3.10")
            .await
            .unwrap();
        cluster.hosts[1]
            .attach(&f, "f", "blue", "api", "10.233.3.11")
            .await
            .unwrap();
    });
    assert!(
        eventually(Duration::from_secs(10), || reaches(&e, "10.233.3.11", 1)),
        "the network added while netmaster was away works across hosts"
    );
}

//! Restarts under continuous traffic across hosts: netplugin (no packet lost), netmaster (no
//! packet lost; what changed while it was away is applied when it is back).

use std::process::Stdio;
use std::time::Duration;

use systemtests::{eventually, reaches, Cluster};
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

fn flood(c: &Netns, addr: &str, secs: u32) -> std::process::Child {
    c.command(&[
        "ping",
        "-i",
        "0.01",
        "-w",
        &secs.to_string(),
        "-W",
        "1",
        addr,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()
}

fn sent_received(child: std::process::Child) -> (u64, u64) {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("{text}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .map(|s| s.parse().unwrap())
        .collect();
    (n[0], n[1])
}

#[test]
fn netplugin_and_netmaster_restart_under_traffic() {
    let mut cluster = Cluster::new(2);
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
    let p = flood(&a, "10.233.1.11", 4);
    std::thread::sleep(Duration::from_millis(700));
    cluster.hosts[1].stop_agent();
    std::thread::sleep(Duration::from_millis(300));
    cluster.hosts[1].start_agent();
    let (sent, got) = sent_received(p);
    assert!(sent > 100);
    assert_eq!(sent, got, "packets lost across a netplugin restart");

    // netmaster goes away: traffic goes on; an endpoint attached meanwhile cannot get an
    // address, and the intent changed when it is back reaches every host.
    let p = flood(&a, "10.233.1.11", 4);
    std::thread::sleep(Duration::from_millis(500));
    cluster.stop_netmaster();
    let refused = rt.block_on(cluster.hosts[0].attach(&c, "c", "blue", "db", "10.233.2.10"));
    assert!(
        refused.is_err(),
        "attach without netmaster must fail cleanly"
    );
    std::thread::sleep(Duration::from_millis(1000));
    cluster.start_netmaster();
    let (sent, got) = sent_received(p);
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
}

//! Restarts under continuous traffic across hosts: netplugin (no packet lost), netmaster (no
//! packet lost; what changed while it was away is applied when it is back), then the real
//! `netplugin` and `netmaster` binaries killed with SIGKILL and started again. Each time a 100/s
//! ping runs across the whole restart and resync (asserted), loses nothing, and no flow is
//! replaced (flow ages go on). netmaster keeps its intent in etcd here, so a change can be made
//! while it is away: through a second netmaster.

use std::time::{Duration, Instant};

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

    // netplugin on host2 restarts while a pings b at 100/s: the flood outlasts the restart and
    // the resync that follows (asserted), loses nothing, and the restarted agent replaces no flow
    // (their ages go on).
    let ages = cluster.hosts[1].flow_ages();
    let t = Instant::now();
    let mut p = Flood::start(&a, "10.233.1.11", 6);
    std::thread::sleep(Duration::from_millis(700));
    cluster.hosts[1].stop_agent();
    std::thread::sleep(Duration::from_millis(300));
    cluster.hosts[1].start_agent();
    // start_agent returns once the agent has netmaster's snapshot and the switch holds what it
    // implies: the flood must still run then, and for a while after.
    outlasts(&mut p, "the netplugin restart");
    unchanged(&cluster.hosts[1], &ages, t, "after a netplugin restart");
    let (sent, got) = p.finish();
    assert!(sent > 100);
    assert_eq!(sent, got, "packets lost across a netplugin restart");

    // netmaster goes away: traffic goes on; an endpoint attached meanwhile cannot get an
    // address; a network added meanwhile (through another netmaster on the same etcd) reaches
    // every host when it is back. The flood covers all of it, until both agents have resumed
    // their watch: blue's new network appears on both switches (each carries every network of
    // a tenant it has endpoints of). No port comes or goes while the flood runs: a port change
    // may cost a ping inside Open vSwitch (add_del_ep.rs), and this test is about restarts.
    let ages: Vec<_> = cluster.hosts.iter().map(|h| h.flow_ages()).collect();
    let t = Instant::now();
    let mut p = Flood::start(&a, "10.233.1.11", 10);
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
    let api_vni = "tun_id=0x138b"; // 5003
    assert!(
        eventually(Duration::from_secs(10), || cluster.hosts.iter().all(|h| h
            .ovs
            .ofctl("dump-flows", "br-int", &[])
            .contains(api_vni))),
        "agents resumed their watch after netmaster came back"
    );
    outlasts(&mut p, "netmaster's absence and return");
    for (h, ages) in cluster.hosts.iter().zip(&ages) {
        unchanged(h, ages, t, "after netmaster's absence");
    }
    let (sent, got) = p.finish();
    assert!(sent > 100);
    assert_eq!(sent, got, "packets lost while netmaster was away");
    // Back: attaches work again, across hosts, in the network added meanwhile too.
    let (d, e, f) = (Netns::new(), Netns::new(), Netns::new());
    rt.block_on(async {
        let h = &cluster.hosts;
        h[0].attach(&c, "c", "blue", "db", "10.233.2.10")
            .await
            .unwrap();
        h[1].attach(&d, "d", "blue", "db", "10.233.2.11")
            .await
            .unwrap();
        h[0].attach(&e, "e", "blue", "api", "10.233.3.10")
            .await
            .unwrap();
        h[1].attach(&f, "f", "blue", "api", "10.233.3.11")
            .await
            .unwrap();
    });
    assert!(
        eventually(Duration::from_secs(10), || reaches(&c, "10.233.2.11", 1)),
        "attaches work again after netmaster came back"
    );
    assert!(
        eventually(Duration::from_secs(10), || reaches(&e, "10.233.3.11", 1)),
        "the network added while netmaster was away works across hosts"
    );

    // The real binaries, killed with SIGKILL (no cleanup of any kind): netplugin on host2, then
    // netmaster. Each comes back as a new process; nothing is lost, no flow replaced.
    cluster.start_real_netmaster();
    cluster.hosts[1].start_real_agent();
    assert!(
        eventually(Duration::from_secs(10), || reaches(&a, "10.233.1.11", 1)),
        "a reaches b under the real binaries"
    );
    let ages = cluster.hosts[1].flow_ages();
    let t = Instant::now();
    let mut p = Flood::start(&a, "10.233.1.11", 6);
    std::thread::sleep(Duration::from_millis(500));
    cluster.hosts[1].kill_real_agent();
    std::thread::sleep(Duration::from_millis(300));
    cluster.hosts[1].start_real_agent();
    outlasts(&mut p, "netplugin's SIGKILL and restart");
    unchanged(&cluster.hosts[1], &ages, t, "after netplugin was SIGKILLed");
    let (sent, got) = p.finish();
    assert!(sent > 100);
    assert_eq!(sent, got, "packets lost across netplugin's SIGKILL");
    // The new process serves: an attach on host2 (answered after its flows are confirmed).
    let g = Netns::new();
    rt.block_on(cluster.hosts[1].attach(&g, "g", "blue", "web", "10.233.1.12"))
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || reaches(&g, "10.233.1.10", 1)),
        "a container attached by the restarted netplugin reaches across hosts"
    );

    let ages: Vec<_> = cluster.hosts.iter().map(|h| h.flow_ages()).collect();
    let t = Instant::now();
    let mut p = Flood::start(&a, "10.233.1.11", 6);
    std::thread::sleep(Duration::from_millis(500));
    cluster.kill_real_netmaster();
    std::thread::sleep(Duration::from_millis(500));
    cluster.start_real_netmaster();
    // (start_real_netmaster returns once its REST API answers; that it serves the agents
    // again, the attach below shows, after the flood: it adds a port.)
    outlasts(&mut p, "netmaster's SIGKILL and restart");
    for (h, ages) in cluster.hosts.iter().zip(&ages) {
        unchanged(h, ages, t, "after netmaster was SIGKILLed");
    }
    let (sent, got) = p.finish();
    assert!(sent > 100);
    assert_eq!(sent, got, "packets lost across netmaster's SIGKILL");
    let h = Netns::new();
    rt.block_on(cluster.hosts[0].attach(&h, "h", "blue", "web", "10.233.1.13"))
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || reaches(&h, "10.233.1.11", 1)
            && reaches(&g, "10.233.1.13", 1)),
        "after netmaster's SIGKILL, a new container is known on both hosts"
    );
}

/// The flood must still run now (what it was to cover is over) and for half a second more, so
/// that it has measured past the end.
fn outlasts(p: &mut Flood, what: &str) {
    assert!(
        p.running(),
        "the flood ended before {what} was over: make it longer"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        p.running(),
        "the flood ended right after {what}: make it longer"
    );
}

/// Every flow `h` held at `since` (with the ages in `before`) is still there, not replaced: its
/// age went on by the time that passed. A flush and refill, even in one atomic bundle that loses
/// no packet, would make them young.
fn unchanged(
    h: &systemtests::Host,
    before: &std::collections::BTreeMap<String, f64>,
    since: Instant,
    what: &str,
) {
    let after = h.flow_ages();
    let passed = since.elapsed().as_secs_f64();
    for (flow, age) in before {
        let now = after
            .get(flow)
            .unwrap_or_else(|| panic!("{}: {what}, a flow is gone: {flow}", h.name));
        assert!(
            *now + 0.5 >= age + passed,
            "{}: {what}, a flow was replaced (age {age:.1}s, {now:.1}s {passed:.1}s later): {flow}",
            h.name
        );
    }
}

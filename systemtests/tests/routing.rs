//! Containers beyond their network, with real traffic on two simulated hosts: routing between
//! the networks of one tenant (VXLAN and VLAN, same host and across hosts, policy still applied,
//! never into another tenant with the same subnets), host access without NAT (container ↔ own
//! host and other host, both ways, nothing added by hand), egress to an address outside the
//! cluster (two tenants with one subnet at once, each getting its own replies), and a service
//! address DNAT-ed by the host (standing for kube-proxy) reaching its backend.
//!
//! Isolation is judged on the receiver: a packet that leaked into the wrong tenant raises that
//! container's receive counter even when nobody answers it.

use std::net::IpAddr;
use std::time::Duration;

use systemtests::{eventually, reaches, rx_packets, tcp_connects, Cluster, Listener};
use testsupport::Netns;

/// Whether `c` reaches `addr` with every ping answered, once the path is up (the first packet
/// towards a VTEP the switch has not resolved yet may be lost while it resolves).
fn settles(c: &Netns, addr: &str) -> bool {
    eventually(Duration::from_secs(10), || reaches(c, addr, 3))
}

/// The TTL of one ping's reply (a routed path takes one off each way).
fn reply_ttl(c: &Netns, addr: &str) -> Option<u32> {
    let out = c
        .command(&["ping", "-c", "1", "-W", "1", addr])
        .output()
        .expect("ping");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let at = text.find("ttl=")?;
    text[at + 4..]
        .split(|ch: char| !ch.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// A TCP connection from `from` to `addr:port` that the listener saw coming from `source`.
fn connects_from(from: &Netns, addr: &str, port: u16, l: &Listener, source: &str) -> bool {
    let before = l.peers().len();
    if !tcp_connects(from, addr, port) {
        return false;
    }
    let want: IpAddr = source.parse().unwrap();
    eventually(Duration::from_secs(2), || {
        l.peers()[before..].contains(&want)
    })
}

const ROUTED: &str = r#"{
  "global": { "vlans": "100-199", "vxlans": "5000-5999" },
  "tenants": [ { "tenantName": "blue" }, { "tenantName": "red" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "web", "encap": "vxlan", "pktTag": 5101,
      "subnet": "10.233.1.0/24", "gateway": "10.233.1.1" },
    { "tenantName": "blue", "networkName": "db", "encap": "vlan", "pktTag": 121,
      "subnet": "10.233.2.0/24", "gateway": "10.233.2.1" },
    { "tenantName": "red", "networkName": "web", "encap": "vxlan", "pktTag": 5102,
      "subnet": "10.233.1.0/24", "gateway": "10.233.1.1" },
    { "tenantName": "red", "networkName": "db", "encap": "vxlan", "pktTag": 5103,
      "subnet": "10.233.2.0/24", "gateway": "10.233.2.1" }
  ],
  "endpointGroups": [
    { "tenantName": "blue", "groupName": "web", "networkName": "web" },
    { "tenantName": "blue", "groupName": "db", "networkName": "db", "policies": ["db-in"],
      "defaultDeny": true }
  ],
  "policies": [ { "tenantName": "blue", "policyName": "db-in" } ],
  "rules": [
    { "tenantName": "blue", "policyName": "db-in", "ruleId": "1", "priority": 10,
      "direction": "in", "fromEndpointGroup": "web", "protocol": "tcp", "port": 5432,
      "action": "allow" },
    { "tenantName": "blue", "policyName": "db-in", "ruleId": "2", "priority": 10,
      "direction": "in", "fromNetwork": "web", "protocol": "icmp", "action": "allow" }
  ]
}"#;

#[test]
fn routing_between_the_networks_of_a_tenant() {
    let cluster = Cluster::new(2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    cluster.apply(ROUTED);
    // Blue: web on both hosts, db (VLAN, default-deny, admits tcp/5432 from group web and ICMP
    // from network web) on both hosts, and a web container in no group. Red: the same subnets,
    // with addresses that blue uses too.
    let (bw1, bw2, bdb1, bdb2, bx1) = (
        Netns::new(),
        Netns::new(),
        Netns::new(),
        Netns::new(),
        Netns::new(),
    );
    let (rw1, rdb2, bdbx) = (Netns::new(), Netns::new(), Netns::new());
    rt.block_on(async {
        let h = &cluster.hosts;
        h[0].attach_in_group(&bw1, "bw1", "blue", "web", "web", "10.233.1.10")
            .await
            .unwrap();
        h[1].attach_in_group(&bw2, "bw2", "blue", "web", "web", "10.233.1.11")
            .await
            .unwrap();
        h[0].attach_in_group(&bdb1, "bdb1", "blue", "db", "db", "10.233.2.10")
            .await
            .unwrap();
        h[1].attach_in_group(&bdb2, "bdb2", "blue", "db", "db", "10.233.2.11")
            .await
            .unwrap();
        h[0].attach(&bx1, "bx1", "blue", "web", "10.233.1.12")
            .await
            .unwrap();
        h[0].attach(&bdbx, "bdbx", "blue", "db", "10.233.2.12")
            .await
            .unwrap();
        h[0].attach(&rw1, "rw1", "red", "web", "10.233.1.11")
            .await
            .unwrap();
        h[1].attach(&rdb2, "rdb2", "red", "db", "10.233.2.10")
            .await
            .unwrap();
    });
    let _pg1 = Listener::tcp(&bdb1, 5432);
    let _pg2 = Listener::tcp(&bdb2, 5432);
    let _other = Listener::tcp(&bdb2, 5433);
    let _web = Listener::tcp(&bw1, 80);

    // Same host (VXLAN → VLAN) and across hosts both ways (VXLAN → VLAN over the uplink,
    // VLAN → VXLAN through the tunnel), every ping answered, one hop taken off each way.
    let ok = eventually(Duration::from_secs(20), || {
        reaches(&bw1, "10.233.2.10", 3) && reaches(&bw1, "10.233.2.11", 3)
    });
    assert!(ok, "blue web → blue db\n{}", cluster.diagnose());
    assert_eq!(reply_ttl(&bw1, "10.233.2.10"), Some(63), "a routed hop");
    assert!(settles(&bw2, "10.233.2.10"), "bw2 → bdb1 across hosts");
    // TCP as the rule allows it, from group web, same host and across; not another port.
    assert!(tcp_connects(&bw1, "10.233.2.10", 5432));
    assert!(tcp_connects(&bw1, "10.233.2.11", 5432));
    assert!(tcp_connects(&bw2, "10.233.2.10", 5432));
    assert!(
        !tcp_connects(&bw1, "10.233.2.11", 5433),
        "no rule admits 5433"
    );
    // The container in no group: ICMP comes from network web (allowed), TCP/5432 does not
    // come from group web (refused), while the same probe from bw1 passes.
    assert!(reaches(&bx1, "10.233.2.11", 2));
    assert!(
        !tcp_connects(&bx1, "10.233.2.11", 5432),
        "bx1 is not in group web"
    );
    // db's default-deny holds outward too: it starts nothing towards web, while web reaches
    // web's listener.
    assert!(
        !tcp_connects(&bdb2, "10.233.1.10", 80),
        "db may start nothing"
    );
    assert!(
        tcp_connects(&bw2, "10.233.1.10", 80),
        "the control: web → web"
    );

    // Red's web container asks for 10.233.2.10: in red that is rdb2 (host2), never blue's bdb1
    // (host1, same address). Judge by the receivers' counters.
    assert!(
        eventually(Duration::from_secs(10), || reaches(&rw1, "10.233.2.10", 2)),
        "red web → red db\n{}",
        cluster.diagnose()
    );
    let (blue_before, red_before) = (rx_packets(&bdb1, "eth0"), rx_packets(&rdb2, "eth0"));
    assert!(reaches(&rw1, "10.233.2.10", 10));
    let (blue_after, red_after) = (rx_packets(&bdb1, "eth0"), rx_packets(&rdb2, "eth0"));
    assert!(
        red_after >= red_before + 10,
        "rdb2 got {red_before} → {red_after}"
    );
    assert!(
        blue_after < blue_before + 3,
        "blue's bdb1 received red's pings: {blue_before} → {blue_after}"
    );
    // And the other way: a blue db container (in no group) to 10.233.1.11 reaches blue's bw2
    // (host2), not red's rw1 (on the sender's host).
    let (red_before, blue_before) = (rx_packets(&rw1, "eth0"), rx_packets(&bw2, "eth0"));
    assert!(reaches(&bdbx, "10.233.1.11", 10));
    let (red_after, blue_after) = (rx_packets(&rw1, "eth0"), rx_packets(&bw2, "eth0"));
    assert!(blue_after >= blue_before + 10);
    assert!(
        red_after < red_before + 3,
        "red's rw1 received blue's pings: {red_before} → {red_after}"
    );
}

const HOST_ACCESS: &str = r#"{
  "global": { "vlans": "100-199", "vxlans": "5000-5999" },
  "tenants": [ { "tenantName": "blue" }, { "tenantName": "red" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "web", "encap": "vxlan", "pktTag": 5111,
      "subnet": "10.233.11.0/24", "gateway": "10.233.11.1", "hostAccess": true },
    { "tenantName": "blue", "networkName": "vl", "encap": "vlan", "pktTag": 131,
      "subnet": "10.233.12.0/24", "gateway": "10.233.12.1", "hostAccess": true },
    { "tenantName": "red", "networkName": "web", "encap": "vxlan", "pktTag": 5112,
      "subnet": "10.233.13.0/24", "gateway": "10.233.13.1" }
  ]
}"#;

#[test]
fn host_access_both_ways_without_nat() {
    let cluster = Cluster::new(2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    cluster.apply(HOST_ACCESS);
    let (c1, c2, v1, r1) = (Netns::new(), Netns::new(), Netns::new(), Netns::new());
    rt.block_on(async {
        let h = &cluster.hosts;
        h[0].attach(&c1, "c1", "blue", "web", "10.233.11.10")
            .await
            .unwrap();
        h[1].attach(&c2, "c2", "blue", "web", "10.233.11.11")
            .await
            .unwrap();
        h[1].attach(&v1, "v1", "blue", "vl", "10.233.12.10")
            .await
            .unwrap();
        h[0].attach(&r1, "r1", "red", "web", "10.233.13.10")
            .await
            .unwrap();
    });
    let (h1, h2) = (cluster.hosts[0].ovs.netns(), cluster.hosts[1].ovs.netns());
    let (a1, a2) = (
        cluster.hosts[0].vtep.to_string(),
        cluster.hosts[1].vtep.to_string(),
    );
    let on_h1 = Listener::tcp(h1, 7001);
    let on_h2 = Listener::tcp(h2, 7001);
    let on_c1 = Listener::tcp(&c1, 7002);
    let on_c2 = Listener::tcp(&c2, 7002);
    let on_v1 = Listener::tcp(&v1, 7002);

    // Container → its own host and the other host (VXLAN and VLAN networks), host → local and
    // remote container; each receiver sees the other end's own address.
    let ok = eventually(Duration::from_secs(20), || reaches(&c1, &a1, 2));
    assert!(ok, "c1 → host1\n{}", cluster.diagnose());
    assert!(
        settles(&c1, &a2),
        "c1 → host2\n{}",
        cluster.explain_host_gateway()
    );
    assert!(settles(&c2, &a1), "c2 → host1");
    assert!(settles(&v1, &a1), "v1 (VLAN) → host1");
    assert!(settles(h1, "10.233.11.10"), "host1 → c1");
    assert!(settles(h1, "10.233.11.11"), "host1 → c2 (remote)");
    assert!(settles(h1, "10.233.12.10"), "host1 → v1 (remote, VLAN)");
    assert!(settles(h2, "10.233.11.10"), "host2 → c1 (remote)");
    assert!(connects_from(&c1, &a1, 7001, &on_h1, "10.233.11.10"));
    assert!(connects_from(&c1, &a2, 7001, &on_h2, "10.233.11.10"));
    assert!(connects_from(&v1, &a1, 7001, &on_h1, "10.233.12.10"));
    assert!(connects_from(h1, "10.233.11.10", 7002, &on_c1, &a1));
    assert!(connects_from(h1, "10.233.11.11", 7002, &on_c2, &a1));
    assert!(connects_from(h2, "10.233.11.10", 7002, &on_c1, &a2));
    assert!(connects_from(h1, "10.233.12.10", 7002, &on_v1, &a1));

    // A network without host access stays an island: its container reaches no host, no host
    // reaches it.
    assert!(!reaches(&r1, &a1, 1), "red has no host access");
    assert!(!reaches(h1, "10.233.13.10", 1), "host1 → red");
}

const EXTERNAL: &str = r#"{
  "global": { "vlans": "100-199", "vxlans": "5000-5999" },
  "tenants": [ { "tenantName": "blue" }, { "tenantName": "red" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "out", "encap": "vxlan", "pktTag": 5121,
      "subnet": "10.233.21.0/24", "gateway": "10.233.21.1", "external": true },
    { "tenantName": "red", "networkName": "out", "encap": "vxlan", "pktTag": 5122,
      "subnet": "10.233.21.0/24", "gateway": "10.233.21.1", "external": true }
  ]
}"#;

/// An address outside the cluster: a namespace on the fabric (the physical network), with no
/// route to any container subnet.
const OUTSIDE: &str = "192.168.231.200";

#[test]
fn egress_two_tenants_with_one_subnet_at_once() {
    let cluster = Cluster::new(2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    cluster.apply(EXTERNAL);
    let outside = Netns::new();
    let link = format!("o{}", &outside.name()[outside.name().len() - 6..]);
    cluster.fabric.netns().exec(&[
        "ip",
        "link",
        "add",
        &link,
        "type",
        "veth",
        "peer",
        "name",
        "ext0",
        "netns",
        outside.name(),
    ]);
    cluster
        .fabric
        .netns()
        .exec(&["ip", "link", "set", &link, "up"]);
    cluster.fabric.vsctl(&["add-port", "fabric", &link]);
    outside.exec(&["ip", "addr", "add", &format!("{OUTSIDE}/24"), "dev", "ext0"]);
    outside.exec(&["ip", "link", "set", "ext0", "up"]);
    // A veth hands the fabric's userspace switch TCP with the checksum left to the NIC; a real
    // outside host's NIC would fill it in (the agent does the same for containers).
    std::thread::scope(|s| {
        s.spawn(|| {
            outside.enter_current_thread();
            weft_agent::offload::tx_checksum_off("ext0").expect("offload off on ext0");
        })
        .join()
        .expect("offload thread")
    });
    let routes = outside.exec(&["ip", "route"]);
    assert!(
        !routes.contains("10.233."),
        "the outside knows no container subnet: {routes}"
    );

    // The same address in both tenants, on the same host; and one on the other host.
    let (b1, r1, b2) = (Netns::new(), Netns::new(), Netns::new());
    rt.block_on(async {
        let h = &cluster.hosts;
        h[0].attach(&b1, "b1", "blue", "out", "10.233.21.10")
            .await
            .unwrap();
        h[0].attach(&r1, "r1", "red", "out", "10.233.21.10")
            .await
            .unwrap();
        h[1].attach(&b2, "b2", "blue", "out", "10.233.21.11")
            .await
            .unwrap();
    });
    let listener = Listener::tcp(&outside, 7003);
    let ok = eventually(Duration::from_secs(20), || reaches(&b1, OUTSIDE, 2));
    assert!(ok, "b1 → outside\n{}", cluster.diagnose());
    // Both tenants at once, each with its own replies: 20 pings each, every one answered.
    let (blue, red) = std::thread::scope(|s| {
        let b = s.spawn(|| reaches(&b1, OUTSIDE, 20));
        let r = s.spawn(|| reaches(&r1, OUTSIDE, 20));
        (b.join().unwrap(), r.join().unwrap())
    });
    assert!(blue && red, "blue {blue}, red {red}");
    assert!(settles(&b2, OUTSIDE), "b2 from host2");
    // The outside sees the hosts' addresses, never a container's.
    let (a1, a2) = (
        cluster.hosts[0].vtep.to_string(),
        cluster.hosts[1].vtep.to_string(),
    );
    assert!(
        connects_from(&b1, OUTSIDE, 7003, &listener, &a1),
        "{:?}\n{}",
        listener.peers(),
        cluster.explain_host_gateway()
    );
    assert!(connects_from(&r1, OUTSIDE, 7003, &listener, &a1));
    assert!(connects_from(&b2, OUTSIDE, 7003, &listener, &a2));
    assert!(listener
        .peers()
        .iter()
        .all(|p| !p.to_string().starts_with("10.233.")));
    cluster.fabric.netns().exec(&["ip", "link", "del", &link]);
}

const SERVICES: &str = r#"{
  "global": { "vlans": "100-199", "vxlans": "5000-5999", "serviceCidrs": ["10.233.96.0/24"] },
  "tenants": [ { "tenantName": "blue" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "web", "encap": "vxlan", "pktTag": 5131,
      "subnet": "10.233.31.0/24", "gateway": "10.233.31.1", "hostAccess": true }
  ]
}"#;

#[test]
fn a_service_address_dnated_by_the_host_reaches_its_backend() {
    let cluster = Cluster::new(2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    cluster.apply(SERVICES);
    let (client, local_backend, remote_backend) = (Netns::new(), Netns::new(), Netns::new());
    rt.block_on(async {
        let h = &cluster.hosts;
        h[0].attach(&client, "client", "blue", "web", "10.233.31.10")
            .await
            .unwrap();
        h[0].attach(&local_backend, "be1", "blue", "web", "10.233.31.11")
            .await
            .unwrap();
        h[1].attach(&remote_backend, "be2", "blue", "web", "10.233.31.12")
            .await
            .unwrap();
    });
    let be1 = Listener::tcp(&local_backend, 8080);
    let be2 = Listener::tcp(&remote_backend, 8080);
    // kube-proxy's part, by hand in host1's namespace: two service addresses, one per backend.
    let h1 = cluster.hosts[0].ovs.netns();
    for (svc, be) in [
        ("10.233.96.10", "10.233.31.11"),
        ("10.233.96.11", "10.233.31.12"),
    ] {
        h1.exec(&[
            "iptables",
            "-t",
            "nat",
            "-A",
            "PREROUTING",
            "-d",
            svc,
            "-p",
            "tcp",
            "--dport",
            "80",
            "-j",
            "DNAT",
            "--to-destination",
            &format!("{be}:8080"),
        ]);
    }
    // The backend sees the client's own address; the client's connection completes (its reply
    // went back through the host, which undid the DNAT).
    let ok = eventually(Duration::from_secs(20), || {
        connects_from(&client, "10.233.96.10", 80, &be1, "10.233.31.10")
    });
    assert!(
        ok,
        "client → service → be1 (same host)\n{}",
        cluster.diagnose()
    );
    assert!(
        eventually(Duration::from_secs(10), || connects_from(
            &client,
            "10.233.96.11",
            80,
            &be2,
            "10.233.31.10"
        )),
        "client → service → be2 (other host)\n{}",
        cluster.explain_host_gateway()
    );
    // And straight to a backend, without the service, still works.
    assert!(tcp_connects(&client, "10.233.31.12", 8080));
}

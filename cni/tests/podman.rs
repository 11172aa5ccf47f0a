//! podman as a real CNI runtime: containers started with `--network` on Weft networks of two
//! tenants, on two simulated hosts (one conflist per host and network, each naming that host's
//! netplugin socket), get their addresses and routes, reach their peers on their network (also
//! across hosts) and nothing else; `podman rm` leaves nothing behind.
//!
//! podman's whole configuration lives in a temporary directory of the test (the fixture
//! `common::podman::Podman`), so the machine's own configuration is untouched and tests can run
//! in parallel.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::podman::Podman;
use common::*;
use systemtests::{eventually, Cluster};

fn eth0(p: &Podman, name: &str) -> (String, String) {
    let (ok, a) = p.exec(name, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(ok, "{a}");
    let addr = a
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap()
        .to_string();
    let (ok, r) = p.exec(name, &["ip", "-4", "route", "show", "default"]);
    assert!(ok, "{r}");
    (addr, r.trim().to_string())
}

#[test]
fn podman_containers_on_two_tenants_and_two_hosts() {
    let cl = Cluster::new(2);
    cl.apply(SPEC);
    let (h1, h2) = (&cl.hosts[0], &cl.hosts[1]);
    let p = Podman::new();
    p.network("blue-web-h1", "blue", "web", &h1.socket);
    p.network("blue-web-h2", "blue", "web", &h2.socket);
    p.network("red-web-h1", "red", "web", &h1.socket);
    p.network("red-web-h2", "red", "web", &h2.socket);
    // A pod's second network: no default route of its own.
    p.network_with("blue-db-h1", "blue", "db", &h1.socket, false);

    // Static addresses (podman's --ip, through the ips capability) and one allocated.
    let b1 = p.start("b1", "blue-web-h1", Some("10.233.1.11"));
    let b2 = p.start("b2", "blue-web-h2", Some("10.233.1.12"));
    let r1 = p.start("r1", "red-web-h1", Some("10.233.1.200"));
    let r2 = p.start("r2", "red-web-h2", None);
    // Two networks in one pod: two conflists (podman names the interfaces eth0 and eth1).
    let m = p.start("m1", "blue-web-h1,blue-db-h1", None);
    let ids = [&b1, &b2, &r1, &r2, &m];
    let sandboxes: Vec<PathBuf> = ["b1", "b2", "r1", "r2", "m1"]
        .iter()
        .map(|n| p.sandbox(n))
        .collect();

    assert_eq!(
        eth0(&p, "b1"),
        (
            "10.233.1.11/24".into(),
            "default via 10.233.1.1 dev eth0 ".trim().into()
        )
    );
    assert_eq!(eth0(&p, "b2").0, "10.233.1.12/24");
    assert_eq!(eth0(&p, "r1").0, "10.233.1.200/24");
    let (r2_addr, r2_route) = eth0(&p, "r2");
    assert!(
        r2_addr.starts_with("10.233.1.") && r2_addr.ends_with("/24"),
        "{r2_addr}"
    );
    assert!(r2_route.starts_with("default via 10.233.1.1"), "{r2_route}");
    let r2_ip = r2_addr.split('/').next().unwrap().to_string();

    // Peers on the same network reach each other across hosts; the other tenant does not.
    assert!(
        eventually(Duration::from_secs(15), || p.pings("b1", "10.233.1.12")),
        "blue b1 (host1) -> b2 (host2)\n{}",
        cl.diagnose()
    );
    assert!(p.pings("b2", "10.233.1.11"));
    assert!(
        eventually(Duration::from_secs(15), || p.pings("r1", &r2_ip)),
        "red r1 (host1) -> r2 (host2)\n{}",
        cl.diagnose()
    );
    assert!(!p.pings("b1", "10.233.1.200"), "blue reached red's r1");
    assert!(!p.pings("r1", "10.233.1.11"), "red reached blue's b1");
    assert!(!p.pings("r2", "10.233.1.12"), "red reached blue's b2");
    let m1_web = eth0(&p, "m1").0;
    let blue = ["10.233.1.11/24", "10.233.1.12/24", m1_web.as_str()];
    if !blue.contains(&r2_addr.as_str()) {
        assert!(!p.pings("b1", &r2_ip), "blue reached red's r2");
    }

    let eps = cl.get("/api/v1/inspect/endpoints/");
    assert!(
        eps.contains(b1.as_str()),
        "netmaster's records name the container: {eps}"
    );

    let (ok, m_addrs) = p.exec("m1", &["ip", "-4", "-o", "addr"]);
    assert!(ok, "{m_addrs}");
    assert!(
        m_addrs.contains("eth0") && m_addrs.contains("inet 10.233.1."),
        "{m_addrs}"
    );
    assert!(
        m_addrs.contains("eth1") && m_addrs.contains("inet 10.233.2."),
        "{m_addrs}"
    );
    let (_, m_routes) = p.exec("m1", &["ip", "-4", "route"]);
    assert_eq!(
        m_routes
            .lines()
            .filter(|l| l.starts_with("default"))
            .collect::<Vec<_>>(),
        vec!["default via 10.233.1.1 dev eth0 "],
        "{m_routes}"
    );
    assert!(p.pings("m1", "10.233.1.11"), "m1 -> b1 on blue:web");

    // podman rm: nothing left (veths, ports, namespaces, netmaster's records, weft-cni's notes).
    p.run(&["rm", "-f", "-t", "0", "b1", "b2", "r1", "r2", "m1"]);
    assert_eq!(
        container_ports(&h1.ovs),
        Vec::<String>::new(),
        "ports left on host1"
    );
    assert_eq!(
        container_ports(&h2.ovs),
        Vec::<String>::new(),
        "ports left on host2"
    );
    for s in &sandboxes {
        assert!(!s.exists(), "{} left", s.display());
    }
    let eps = cl.get("/api/v1/inspect/endpoints/");
    for id in ids {
        assert!(
            !eps.contains(id.as_str()),
            "netmaster still has {id}: {eps}"
        );
    }
    assert_eq!(
        state_files(&p.dir().join("cni-state")),
        Vec::<PathBuf>::new()
    );
    let log = p.log();
    assert_eq!(log.matches("ADD ok").count(), 6, "{log}");
    assert_eq!(log.matches("DEL ok").count(), 6, "{log}");
}

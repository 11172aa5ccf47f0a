//! Docker as the runtime on two simulated hosts: each host's netplugin serves the network and IPAM
//! driver, each host runs a dockerd of its own inside the host's namespace, and `docker network
//! create` with the same options on both hosts names the same Weft network. Containers of two
//! tenants (the same subnet in both) get their addresses (`--ip` honoured) and default route,
//! reach their peers on the other host, not the other tenant; `docker rm` and `docker network rm`
//! leave nothing on either host or at netmaster.

use std::time::Duration;

use systemtests::{eventually, Cluster};
use testsupport::Dockerd;

const SPEC: &str = r#"{
  "tenants": [ { "tenantName": "blue" }, { "tenantName": "red" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "app", "encap": "vxlan", "pktTag": 5121,
      "subnet": "10.234.5.0/24", "gateway": "10.234.5.1" },
    { "tenantName": "red", "networkName": "app", "encap": "vxlan", "pktTag": 5122,
      "subnet": "10.234.5.0/24", "gateway": "10.234.5.1" }
  ],
  "endpointGroups": [ { "tenantName": "blue", "groupName": "web", "networkName": "app" } ]
}"#;

fn container_ports(cl: &Cluster, i: usize) -> Vec<String> {
    cl.hosts[i]
        .ovs
        .vsctl(&["list-ports", "br-int"])
        .lines()
        .filter(|p| p.starts_with("wf"))
        .map(str::to_string)
        .collect()
}

#[test]
fn docker_containers_on_two_hosts_and_two_tenants() {
    let mut cl = Cluster::new(2);
    cl.apply(SPEC);
    let pid = std::process::id();
    let drivers = [format!("weft-t{pid}-h1"), format!("weft-t{pid}-h2")];
    for (h, d) in cl.hosts.iter_mut().zip(&drivers) {
        h.serve_docker(d);
    }
    // Each dockerd lives in its host's namespace: Docker moves the container end netplugin left
    // there into the container.
    let dk: Vec<Dockerd> = cl
        .hosts
        .iter()
        .map(|h| Dockerd::start_in(Some(h.ovs.netns())))
        .collect();
    let img: Vec<String> = dk.iter().map(Dockerd::busybox).collect();

    // The same Docker networks on both hosts.
    for (d, driver) in dk.iter().zip(&drivers) {
        for (name, tenant, group) in [("bnet", "blue", Some("web")), ("rnet", "red", None)] {
            let mut args = vec![
                "network",
                "create",
                "-d",
                driver,
                "--ipam-driver",
                driver,
                "--subnet",
                "10.234.5.0/24",
                "--ipam-opt",
            ];
            let t = format!("tenant={tenant}");
            args.extend_from_slice(&[&t, "--ipam-opt", "network=app"]);
            let g = group.map(|g| format!("group={g}"));
            if let Some(g) = &g {
                args.extend_from_slice(&["--opt", g]);
            }
            args.push(name);
            d.run(&args);
        }
    }
    let run = |h: usize, name: &str, net: &str, ip: Option<&str>| {
        // Without IPv6 nothing but the test's own traffic moves a container's counters.
        let mut args = vec![
            "run",
            "-d",
            "--sysctl",
            "net.ipv6.conf.all.disable_ipv6=1",
            "--name",
            name,
            "--network",
            net,
        ];
        if let Some(ip) = ip {
            args.extend_from_slice(&["--ip", ip]);
        }
        args.extend_from_slice(&[&img[h], "sleep", "600"]);
        dk[h].run(&args);
    };
    run(0, "b1", "bnet", Some("10.234.5.11"));
    run(1, "b2", "bnet", None);
    run(0, "r1", "rnet", Some("10.234.5.20"));
    // r2: the same address as b1, in the other tenant. b2: allocated by netmaster.
    run(1, "r2", "rnet", Some("10.234.5.11"));

    assert_eq!(dk[0].addr_of("b1"), "10.234.5.11/24", "--ip is honoured");
    assert_eq!(dk[1].addr_of("r2"), "10.234.5.11/24");
    assert_eq!(dk[0].addr_of("r1"), "10.234.5.20/24");
    let b2 = dk[1].addr_of("b2");
    assert!(b2.starts_with("10.234.5.") && b2.ends_with("/24"), "{b2}");
    let b2 = b2.trim_end_matches("/24").to_string();
    let r1 = "10.234.5.20".to_string();
    assert!(
        !["10.234.5.1", "10.234.5.11", "10.234.5.20"].contains(&b2.as_str()),
        "netmaster gave b2 a taken address: {b2}"
    );
    for (h, c) in [(0, "b1"), (1, "b2"), (0, "r1"), (1, "r2")] {
        let routes = dk[h].run(&["exec", c, "ip", "route"]);
        assert!(
            routes.contains("default via 10.234.5.1 dev eth0"),
            "{c}: {routes}"
        );
    }

    // Across hosts within a tenant; 10.234.5.11 answers each tenant with its own container.
    assert!(
        eventually(Duration::from_secs(15), || dk[0].pings("b1", &b2)),
        "blue b1 (host1) -> b2 (host2)\n{}",
        cl.diagnose()
    );
    assert!(dk[1].pings("b2", "10.234.5.11"), "b2 -> b1");
    assert!(
        eventually(Duration::from_secs(15), || dk[0].pings("r1", "10.234.5.11")),
        "red r1 (host1) -> r2 (host2)\n{}",
        cl.diagnose()
    );
    assert!(dk[1].pings("r2", &r1), "r2 -> r1");
    // b1 and r2 share an address (and so a MAC: MACs are derived from addresses): that each
    // tenant's ping reached its own container, and never the twin, shows only in the twins'
    // receive counters.
    for (h, from, to, twin, what) in [
        (
            1,
            "b2",
            (0, "b1"),
            (1, "r2"),
            "blue b2 (host2) → b1 (host1)",
        ),
        (0, "r1", (1, "r2"), (0, "b1"), "red r1 (host1) → r2 (host2)"),
    ] {
        let (to_before, twin_before) = (dk[to.0].rx_packets(to.1), dk[twin.0].rx_packets(twin.1));
        assert!(dk[h].pings(from, "10.234.5.11"), "{what}");
        assert_eq!(
            dk[twin.0].rx_packets(twin.1),
            twin_before,
            "{what}: the other tenant's twin received the traffic"
        );
        assert!(
            dk[to.0].rx_packets(to.1) >= to_before + 3,
            "{what}: not counted"
        );
    }
    // Across tenants nothing arrives, judged at the target's counter (a leaked ping may be
    // answered by nobody).
    for (h, from, to, addr, what) in [
        (
            0,
            "r1",
            (1, "b2"),
            b2.as_str(),
            "red r1 → blue b2 (across hosts)",
        ),
        (
            1,
            "b2",
            (0, "r1"),
            r1.as_str(),
            "blue b2 → red r1 (across hosts)",
        ),
        (
            1,
            "r2",
            (1, "b2"),
            b2.as_str(),
            "red r2 → blue b2 (same host)",
        ),
        (
            0,
            "b1",
            (0, "r1"),
            r1.as_str(),
            "blue b1 → red r1 (same host)",
        ),
    ] {
        assert_eq!(
            dk[h].arrivals(from, addr, 2, &dk[to.0], to.1),
            (0, 0),
            "{what}: (packets that arrived, pings answered)\n{}",
            cl.diagnose()
        );
    }

    // Docker's endpoints are Weft's, each on its host, with the group of the Docker network.
    let eps = cl.get("/api/v1/inspect/endpoints/");
    assert_eq!(eps.matches("\"docker-").count(), 4, "{eps}");
    assert!(eps.contains("\"groupName\":\"web\""), "{eps}");

    // Removal leaves nothing: no container port on either host, nothing at netmaster.
    for (h, c) in [(0, "b1"), (1, "b2"), (0, "r1"), (1, "r2")] {
        dk[h].run(&["rm", "-f", c]);
    }
    for d in &dk {
        d.run(&["network", "rm", "bnet", "rnet"]);
    }
    for i in 0..2 {
        assert_eq!(
            container_ports(&cl, i),
            Vec::<String>::new(),
            "ports left on host{}",
            i + 1
        );
    }
    let eps = cl.get("/api/v1/inspect/endpoints/");
    assert!(
        !eps.contains("docker-"),
        "endpoints left at netmaster: {eps}"
    );
    drop(dk);
}

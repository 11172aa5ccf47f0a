//! Docker as the runtime: a real dockerd (its own directories and socket) on a simulated host, the
//! network and IPAM driver served by netplugin, containers of two tenants with the same subnet.

mod common;

use std::path::PathBuf;

use common::{runtime_in, Host};
use testsupport::{Dockerd, Ovs, RemoveOnDrop};
use tokio_util::sync::CancellationToken;

const SPEC: &str = r#"{
  "tenants": [ { "tenantName": "blue" }, { "tenantName": "red" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "app", "encap": "vxlan", "pktTag": 5111,
      "subnet": "10.231.9.0/24", "gateway": "10.231.9.1" },
    { "tenantName": "red", "networkName": "app", "encap": "vxlan", "pktTag": 5112,
      "subnet": "10.231.9.0/24", "gateway": "10.231.9.1" }
  ],
  "endpointGroups": [ { "tenantName": "blue", "groupName": "web", "networkName": "app" } ]
}"#;

#[test]
fn docker_networks_of_two_tenants() {
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");
    let rt = runtime_in(&ovs);
    let h = rt.block_on(Host::start(&ovs, SPEC));
    let driver = format!("weft-t{}", std::process::id());
    let sock = PathBuf::from(format!("/run/docker/plugins/{driver}.sock"));
    let _sock = RemoveOnDrop(sock.clone());
    let state = h.dir.path().join("docker-networks.json");
    let cancel = CancellationToken::new();
    rt.block_on(weft_agent::docker::serve(
        h.agent(),
        &sock,
        &state,
        cancel.clone(),
    ))
    .unwrap();
    let dk = Dockerd::start_in(None);
    let img = dk.busybox();

    // Which Weft network: named by IPAM options; a subnet two tenants share is refused.
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec!["network", "create", "-d", &driver, "--ipam-driver", &driver];
        args.extend_from_slice(extra);
        args.push(name);
        dk.try_run(&args)
    };
    let e = create("both", &["--subnet", "10.231.9.0/24"]).unwrap_err();
    assert!(e.contains("blue:app, red:app"), "{e}");
    create(
        "bnet",
        &[
            // A user-configured subnet: Docker honours --ip only then.
            "--subnet",
            "10.231.9.0/24",
            "--ipam-opt",
            "tenant=blue",
            "--ipam-opt",
            "network=app",
            "--opt",
            "tenant=blue",
            "--opt",
            "group=web",
        ],
    )
    .unwrap();
    create(
        "rnet",
        &[
            "--subnet",
            "10.231.9.0/24",
            "--ipam-opt",
            "tenant=red",
            "--ipam-opt",
            "network=app",
        ],
    )
    .unwrap();
    let e = create(
        "nogroup",
        &[
            "--ipam-opt",
            "tenant=blue",
            "--ipam-opt",
            "network=app",
            "--opt",
            "group=nope",
        ],
    )
    .unwrap_err();
    assert!(e.contains("blue:nope does not exist"), "{e}");

    let run = |name: &str, net: &str, ip: Option<&str>| {
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
        args.extend_from_slice(&[&img, "sleep", "600"]);
        dk.run(&args);
    };
    run("b1", "bnet", None);
    run("b2", "bnet", Some("10.231.9.50"));
    // The same address in the other tenant.
    run("r1", "rnet", Some("10.231.9.50"));
    // An address no blue container has: allocated, r2 could get b1's (each network's pool starts
    // at its first address), and a ping to b1's address would then answer itself.
    run("r2", "rnet", Some("10.231.9.60"));

    let b1 = dk.addr_of("b1");
    assert!(b1.starts_with("10.231.9.") && b1.ends_with("/24"), "{b1}");
    assert_eq!(dk.addr_of("b2"), "10.231.9.50/24", "--ip is honoured");
    assert_eq!(dk.addr_of("r1"), "10.231.9.50/24");
    let routes = dk.run(&["exec", "b2", "ip", "route"]);
    assert!(
        routes.contains("default via 10.231.9.1 dev eth0"),
        "{routes}"
    );
    let b1 = b1.trim_end_matches("/24").to_string();
    let r2 = dk.addr_of("r2").trim_end_matches("/24").to_string();

    // Same network: reaches; the twin address answers in its own tenant only. b2 and r1 share
    // an address (and so a MAC): who got the pings shows only in their receive counters.
    let flows = || ovs.ofctl("dump-flows", "br-int", &["--no-stats"]);
    for (from, to, twin) in [("b1", "b2", "r1"), ("r2", "r1", "b2")] {
        let (to_before, twin_before) = (dk.rx_packets(to), dk.rx_packets(twin));
        assert!(dk.pings(from, "10.231.9.50"), "{from} → {to}");
        assert_eq!(
            dk.rx_packets(twin),
            twin_before,
            "{from} → {to}: the other tenant's twin {twin} received the traffic\n{}",
            flows()
        );
        assert!(
            dk.rx_packets(to) >= to_before + 3,
            "{from} → {to}: not counted"
        );
    }
    // Across tenants nothing arrives, judged at the target's counter.
    for (from, to, addr) in [("r2", "b1", &b1), ("b1", "r2", &r2)] {
        assert_eq!(
            dk.arrivals(from, addr, 2, &dk, to),
            (0, 0),
            "{from} → {to}: (packets that arrived, pings answered)\n{}",
            flows()
        );
    }
    // Docker's endpoint is Weft's: in group web, at netmaster.
    let eps = rt.block_on(h.nm_endpoints());
    assert!(eps.contains("\"groupName\":\"web\""), "{eps}");

    // Removal leaves nothing: no container port, no endpoint at netmaster, no reservation.
    for c in ["b1", "b2", "r1", "r2"] {
        dk.run(&["rm", "-f", c]);
    }
    dk.run(&["network", "rm", "bnet", "rnet"]);
    let ports = ovs.vsctl(&["list-ports", "br-int"]);
    assert!(
        ports.lines().all(|l| !l.starts_with("wf")),
        "container ports left: {ports}"
    );
    let eps = rt.block_on(h.nm_endpoints());
    assert!(
        !eps.contains("docker-"),
        "endpoints left at netmaster: {eps}"
    );
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(!saved.contains("blue"), "{saved}");

    drop(dk);
    cancel.cancel();
    drop(h);
    drop(rt);
}

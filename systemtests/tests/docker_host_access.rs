//! Host access through Docker: a `docker run` container on a Docker network of Weft's driver whose
//! Weft network has `"hostAccess": true` answers its node the way kubelet probes it (every ping
//! answered, a TCP connect to the port it listens on, an HTTP GET of its health page) and reaches
//! its node's address. A container on a network without host access, itself working (a peer on
//! its network reaches it), is reached by neither.
//!
//! The Weft networks come from the cluster's intent, as in `docker.rs`: Docker's driver only names
//! a Weft network (`--ipam-opt tenant=… --ipam-opt network=…`), host access is the network's.
//! dockerd runs inside the simulated host's namespace, which is also the node: where netplugin made
//! `weft-gw` and routes the host-access subnet into br-int.

use std::time::Duration;

use systemtests::{eventually, http_get, kubelet_probes, replies, tcp_connects, Cluster, Listener};
use testsupport::Dockerd;

const SPEC: &str = r#"{
  "tenants": [ { "tenantName": "blue" }, { "tenantName": "red" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "app", "encap": "vxlan", "pktTag": 5151,
      "subnet": "10.234.15.0/24", "gateway": "10.234.15.1", "hostAccess": true },
    { "tenantName": "red", "networkName": "app", "encap": "vxlan", "pktTag": 5152,
      "subnet": "10.234.16.0/24", "gateway": "10.234.16.1" }
  ]
}"#;

const PORT: u16 = 8080;
/// A port on the node that the container connects to.
const NODE_PORT: u16 = 7012;

/// What the node and its switch say, and dockerd's last lines, for failure messages.
fn explain(cl: &Cluster, dk: &Dockerd) -> String {
    let log = dk.log();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    format!(
        "{}dockerd (last lines):\n{}",
        cl.explain_host_gateway(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    )
}

#[test]
fn docker_container_with_host_access_answers_its_nodes_probes() {
    let mut cl = Cluster::new(1);
    cl.apply(SPEC);
    let driver = format!("weft-t{}-ha", std::process::id());
    cl.hosts[0].serve_docker(&driver);
    let h = &cl.hosts[0];
    let node = h.ovs.netns();
    let node_addr = h.vtep.to_string();
    // Declared after the cluster: its containers go first, while netplugin still answers.
    let dk = Dockerd::start_in(Some(node));
    let img = dk.busybox();

    for (name, tenant, subnet) in [
        ("bnet", "blue", "10.234.15.0/24"),
        ("rnet", "red", "10.234.16.0/24"),
    ] {
        let t = format!("tenant={tenant}");
        dk.run(&[
            "network",
            "create",
            "-d",
            &driver,
            "--ipam-driver",
            &driver,
            "--subnet",
            subnet,
            "--ipam-opt",
            &t,
            "--ipam-opt",
            "network=app",
            name,
        ]);
    }
    // Each container serves /www/healthz over HTTP (busybox httpd in the foreground).
    let script =
        format!("mkdir -p /www && echo alive > /www/healthz && exec httpd -f -p {PORT} -h /www");
    for (name, net, ip) in [
        ("web1", "bnet", "10.234.15.10"),
        ("island", "rnet", "10.234.16.10"),
        ("peer", "rnet", "10.234.16.11"),
    ] {
        dk.run(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            net,
            "--ip",
            ip,
            &img,
            "sh",
            "-c",
            &script,
        ]);
    }
    assert_eq!(dk.addr_of("web1"), "10.234.15.10/24");

    // The node side: weft-gw, and the host-access subnet routed into it from the node's address.
    assert!(
        node.try_exec(&["ip", "link", "show", "weft-gw"]),
        "no weft-gw in the node's namespace\n{}",
        explain(&cl, &dk)
    );
    let ok = eventually(Duration::from_secs(20), || {
        node.exec(&["ip", "-4", "route", "show", "10.234.15.0/24"])
            .contains("dev weft-gw")
    });
    assert!(ok, "no route via weft-gw\n{}", explain(&cl, &dk));
    let route = node.exec(&["ip", "-4", "route", "show", "10.234.15.0/24"]);
    assert!(route.contains(&format!("src {node_addr}")), "{route}");

    // kubelet's probes from the node: ping, tcpSocket and httpGet, repeatedly.
    if let Err(e) = kubelet_probes(node, "10.234.15.10", PORT, "alive") {
        panic!("{e}\n{}", explain(&cl, &dk));
    }

    // The container reaches its node's address: ping (every reply) and a TCP connection.
    let n = dk.replies("web1", &node_addr, 5);
    assert_eq!(n, 5, "web1 → node: replies of 5\n{}", explain(&cl, &dk));
    let _on_node = Listener::tcp(node, NODE_PORT);
    let r = dk.try_run(&[
        "exec",
        "web1",
        "sh",
        "-c",
        &format!("nc -w 2 {node_addr} {NODE_PORT} </dev/null"),
    ]);
    assert!(
        r.is_ok(),
        "web1 → node:{NODE_PORT} (TCP): {r:?}\n{}",
        explain(&cl, &dk)
    );

    // The control: red's network has no host access. Its container works (a peer on its own
    // network pings it and gets its health page)...
    let ok = eventually(Duration::from_secs(10), || dk.pings("peer", "10.234.16.10"));
    assert!(ok, "peer → island\n{}", explain(&cl, &dk));
    let page = dk.try_run(&[
        "exec",
        "peer",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://10.234.16.10:{PORT}/healthz"),
    ]);
    assert_eq!(page.as_deref().map(str::trim), Ok("alive"), "peer → island");
    // ...but the node reaches neither its address nor its port, and it does not reach the node.
    // (The simulated node has no route to red's subnet at all, so ping sends nothing; a real node
    // would send it to its default gateway, never to br-int.)
    let n = replies(node, "10.234.16.10", 3);
    assert_eq!(n, 0, "node → island: replies of 3");
    assert!(
        !tcp_connects(node, "10.234.16.10", PORT),
        "node connected to red's island"
    );
    assert_eq!(
        http_get(node, &format!("http://10.234.16.10:{PORT}/healthz")),
        None
    );
    let n = dk.replies("island", &node_addr, 3);
    assert_eq!(n, 0, "island → node: replies of 3");

    // Removal leaves no container port on the node's switch.
    dk.run(&["rm", "-f", "web1", "island", "peer"]);
    dk.run(&["network", "rm", "bnet", "rnet"]);
    let ports: Vec<String> = h
        .ovs
        .vsctl(&["list-ports", "br-int"])
        .lines()
        .filter(|p| p.starts_with("wf"))
        .map(str::to_string)
        .collect();
    assert_eq!(ports, Vec::<String>::new(), "ports left on the node");
    drop(dk);
}

//! Host access through a real CNI runtime: a podman container on a Weft network with
//! `"hostAccess": true` answers its node the way kubelet probes it (every ping answered, a TCP
//! connect to the port it listens on, an HTTP GET of its health page) and reaches its node's
//! address; a container on a network without host access is reached by neither.
//!
//! "The node" is the simulated host's network namespace: the one netplugin runs in, where it made
//! the host gateway `weft-gw` and the routes into br-int. podman runs in the root namespace and
//! hands each container's namespace to that netplugin through weft-cni. podman's configuration and
//! storage live in a temporary directory of the test (the fixture `common::podman::Podman`, as in
//! `podman.rs`); its containers are removed when the test ends, also when a check fails, before
//! the cluster (switch, netplugin, namespaces) goes.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::podman::Podman;
use common::*;
use systemtests::{eventually, http_get, kubelet_probes, replies, tcp_connects, Cluster, Listener};

/// What the node and its switch say, and weft-cni's log, for failure messages.
fn explain(cl: &Cluster, p: &Podman) -> String {
    format!("{}weft-cni log:\n{}", cl.explain_host_gateway(), p.log())
}

const SPEC: &str = r#"{
  "global": { "vlans": "100-199", "vxlans": "5000-5999" },
  "tenants": [ { "tenantName": "blue" }, { "tenantName": "red" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "web", "encap": "vxlan", "pktTag": 5141,
      "subnet": "10.233.41.0/24", "gateway": "10.233.41.1", "hostAccess": true },
    { "tenantName": "red", "networkName": "web", "encap": "vxlan", "pktTag": 5142,
      "subnet": "10.233.42.0/24", "gateway": "10.233.42.1" }
  ]
}"#;

const PORT: u16 = 8080;
/// A port on the node that the container connects to.
const NODE_PORT: u16 = 7011;

#[test]
fn podman_container_with_host_access_answers_its_nodes_probes() {
    let cl = Cluster::new(1);
    cl.apply(SPEC);
    let h = &cl.hosts[0];
    let node = h.ovs.netns();
    let node_addr = h.vtep.to_string();
    // Declared after the cluster: its containers go first (CNI DEL still finds netplugin).
    let p = Podman::new();
    p.network("blue-web", "blue", "web", &h.socket);
    p.network("red-web", "red", "web", &h.socket);

    p.start_server("web1", "blue-web", "10.233.41.10", PORT);
    p.start_server("island", "red-web", "10.233.42.10", PORT);
    p.start_server("peer", "red-web", "10.233.42.11", PORT);
    let sandboxes: Vec<PathBuf> = ["web1", "island", "peer"]
        .iter()
        .map(|c| p.sandbox(c))
        .collect();

    // The node side is where netplugin made the host gateway and routes the host-access subnet
    // into it, from the node's address; the network without host access gets no route.
    assert!(
        node.try_exec(&["ip", "link", "show", "weft-gw"]),
        "no weft-gw in the node's namespace\n{}",
        explain(&cl, &p)
    );
    let ok = eventually(Duration::from_secs(20), || {
        node.exec(&["ip", "-4", "route", "show", "10.233.41.0/24"])
            .contains("dev weft-gw")
    });
    assert!(
        ok,
        "no route to the host-access subnet via weft-gw\n{}",
        explain(&cl, &p)
    );
    let route = node.exec(&["ip", "-4", "route", "show", "10.233.41.0/24"]);
    assert!(route.contains(&format!("src {node_addr}")), "{route}");
    let route = node.exec(&["ip", "-4", "route", "show", "10.233.42.0/24"]);
    assert!(route.trim().is_empty(), "red has no host access: {route}");

    // kubelet's probes from the node: ping, tcpSocket and httpGet, repeatedly.
    if let Err(e) = kubelet_probes(node, "10.233.41.10", PORT, "alive") {
        panic!("{e}\n{}", explain(&cl, &p));
    }

    // The container reaches its node's address: ping (every reply) and a TCP connection.
    let n = p.replies("web1", &node_addr, 5);
    assert_eq!(n, 5, "web1 → node: replies of 5\n{}", explain(&cl, &p));
    let _on_node = Listener::tcp(node, NODE_PORT);
    let (ok, out) = p.exec(
        "web1",
        &[
            "sh",
            "-c",
            &format!("nc -w 2 {node_addr} {NODE_PORT} </dev/null"),
        ],
    );
    assert!(
        ok,
        "web1 → node:{NODE_PORT} (TCP): {out}\n{}",
        explain(&cl, &p)
    );

    // The control: red's network has no host access. Its container works (a peer on its own
    // network pings it and gets its health page)...
    let ok = eventually(Duration::from_secs(10), || {
        p.replies("peer", "10.233.42.10", 3) == 3
    });
    assert!(ok, "peer → island\n{}", explain(&cl, &p));
    let (ok, out) = p.exec(
        "peer",
        &[
            "wget",
            "-q",
            "-O",
            "-",
            &format!("http://10.233.42.10:{PORT}/healthz"),
        ],
    );
    assert!(ok && out.trim() == "alive", "peer → island (HTTP): {out}");

    // ...but the node reaches neither its address nor its port, and it does not reach the node.
    // (The simulated node has no route to red's subnet at all, so ping sends nothing; a real node
    // would send it to its default gateway, never to br-int.)
    let n = replies(node, "10.233.42.10", 3);
    assert_eq!(n, 0, "node → island: replies of 3");
    assert!(
        !tcp_connects(node, "10.233.42.10", PORT),
        "node connected to red's island"
    );
    assert_eq!(
        http_get(node, &format!("http://10.233.42.10:{PORT}/healthz")),
        None
    );
    let n = p.replies("island", &node_addr, 3);
    assert_eq!(n, 0, "island → node: replies of 3");

    // podman rm: no container port left on the node's switch, no namespace left.
    p.run(&["rm", "-f", "-t", "0", "web1", "island", "peer"]);
    assert_eq!(container_ports(&h.ovs), Vec::<String>::new());
    for s in &sandboxes {
        assert!(!s.exists(), "{} left", s.display());
    }
}

//! Host access through a real CNI runtime: a podman container on a Weft network with
//! `"hostAccess": true` answers its node the way kubelet probes it (every ping answered, a TCP
//! connect to the port it listens on, an HTTP GET of its health page) and reaches its node's
//! address; a container on a network without host access is reached by neither.
//!
//! "The node" is the simulated host's network namespace: the one netplugin runs in, where it made
//! the host gateway `weft-gw` and the routes into br-int. podman runs in the root namespace and
//! hands each container's namespace to that netplugin through weft-cni. podman's configuration and
//! storage live in a temporary directory of the test (as in `podman.rs`); its containers are
//! removed when the test ends, also when a check fails, before the cluster (switch, netplugin,
//! namespaces) goes.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;
use systemtests::{eventually, Cluster, Listener};
use testsupport::{Netns, TempDir};

/// podman with its own configuration and storage; removes its containers when dropped.
struct Podman {
    dir: TempDir,
}

impl Podman {
    fn new() -> Podman {
        let dir = TempDir::new("weft-podman-ha-");
        let d = dir.path();
        for sub in ["bin", "net.d", "tmp"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(BIN, d.join("bin/weft-cni")).unwrap();
        std::fs::write(
            d.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = []\n\n[network]\nnetwork_backend = \"cni\"\n\
                 cni_plugin_dirs = [\"{bin}\", \"/usr/lib/cni\"]\nnetwork_config_dir = \"{netd}\"\n\n\
                 [engine]\nruntime = \"runc\"\ntmp_dir = \"{tmp}\"\nevents_logger = \"none\"\n\
                 cgroup_manager = \"cgroupfs\"\n",
                bin = d.join("bin").display(),
                netd = d.join("net.d").display(),
                tmp = d.join("tmp").display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                d.join("root").display(),
                d.join("runroot").display()
            ),
        )
        .unwrap();
        let tar = testsupport::busybox_image_tar(d);
        let p = Podman { dir };
        p.run(&["import", tar.to_str().unwrap(), "localhost/weft-busybox"]);
        p
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir().join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir().join("storage.conf"))
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> String {
        testsupport::run(&mut self.cmd(args)).trim().to_string()
    }

    fn try_run(&self, args: &[&str]) -> (bool, String) {
        let o = self.cmd(args).output().unwrap();
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    }

    /// A conflist `name` for `tenant:network` on the netplugin behind `socket`.
    fn network(&self, name: &str, tenant: &str, network: &str, socket: &Path) {
        let conflist = json!({
            "cniVersion": "1.0.0",
            "name": name,
            "plugins": [{
                "type": "weft-cni",
                "tenant": tenant,
                "network": network,
                "agentSocket": socket,
                "stateDir": self.dir().join("cni-state"),
                "logFile": self.dir().join("weft-cni.log"),
                "logLevel": "info",
                "capabilities": {"ips": true, "mac": true}
            }]
        });
        std::fs::write(
            self.dir().join("net.d").join(format!("{name}.conflist")),
            serde_json::to_string_pretty(&conflist).unwrap(),
        )
        .unwrap();
    }

    /// Starts a container on `network` with address `ip`, serving `/www/healthz` ("alive") over
    /// HTTP on `port` (busybox httpd in the foreground as the container's process).
    fn start_server(&self, name: &str, network: &str, ip: &str, port: u16) {
        let script = format!(
            "mkdir -p /www && echo alive > /www/healthz && exec httpd -f -p {port} -h /www"
        );
        let args = [
            "run",
            "-d",
            "--name",
            name,
            "--network",
            network,
            "--ip",
            ip,
            "localhost/weft-busybox",
            "sh",
            "-c",
            &script,
        ];
        let (ok, out) = self.try_run(&args);
        assert!(ok, "podman run {name}: {out}\nlog:\n{}", self.log());
    }

    fn exec(&self, name: &str, args: &[&str]) -> (bool, String) {
        let mut a = vec!["exec", name];
        a.extend(args);
        self.try_run(&a)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("weft-cni.log")).unwrap_or_default()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f", "-t", "0"]).output();
        let _ = self.cmd(&["rmi", "-a", "-f"]).output();
    }
}

/// (transmitted, received) from ping's summary: iputils ("5 packets transmitted, 5 received")
/// and busybox ("5 packets transmitted, 5 packets received").
fn ping_counts(out: &str) -> Option<(u32, u32)> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut parts = line.split(',').map(str::trim);
    let tx = parts.next()?.split_whitespace().next()?.parse().ok()?;
    let rx = parts.next()?.split_whitespace().next()?.parse().ok()?;
    Some((tx, rx))
}

/// `count` pings from the node's namespace; what ping printed (stdout and stderr).
fn ping_from_node(node: &Netns, addr: &str, count: u32) -> String {
    let out = node
        .command(&[
            "ping",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            addr,
        ])
        .output()
        .expect("ping");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// No reply: ping sent and got nothing back, or the node has no route at all (the simulated
/// node has no default route; a real one would send it to its default gateway, never to br-int).
fn unanswered(out: &str) -> bool {
    match ping_counts(out) {
        Some((tx, rx)) => tx > 0 && rx == 0,
        None => out.contains("Network is unreachable"),
    }
}

/// `count` pings from container `c` (busybox ping); its summary.
fn ping_from_container(p: &Podman, c: &str, addr: &str, count: u32) -> String {
    p.exec(c, &["ping", "-c", &count.to_string(), "-W", "1", addr])
        .1
}

fn all_answered(summary: &str, count: u32) -> bool {
    ping_counts(summary) == Some((count, count))
}

/// kubelet's tcpSocket probe: a TCP connection from the node to `addr:port` completes.
fn tcp_probe(node: &Netns, addr: &str, port: u16) -> bool {
    node.try_exec(&["nc", "-z", "-w", "2", addr, &port.to_string()])
}

/// kubelet's httpGet probe: GET `/healthz` from the node; the body, when it answered.
fn http_probe(node: &Netns, addr: &str, port: u16) -> Option<String> {
    let out = node
        .command(&[
            "curl",
            "-sS",
            "--max-time",
            "3",
            &format!("http://{addr}:{port}/healthz"),
        ])
        .output()
        .expect("curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// What the node and its switch say, for failure messages: routes, weft-gw, flows that saw
/// packets, the weft-cni log.
fn explain(cl: &Cluster, p: &Podman) -> String {
    let h = &cl.hosts[0];
    let ns = h.ovs.netns();
    let flows = h.ovs.ofctl("dump-flows", "br-int", &[]);
    let hit: Vec<&str> = flows
        .lines()
        .filter(|l| !l.contains("n_packets=0,"))
        .collect();
    format!(
        "--- {} ({})\nroutes:\n{}\nneigh:\n{}\nweft-gw:\n{}\nports:\n{}\nflows with packets:\n{}\nweft-cni log:\n{}",
        h.name,
        h.vtep,
        ns.exec(&["ip", "route", "show", "table", "all"]),
        ns.exec(&["ip", "neigh"]),
        ns.exec(&["ip", "-s", "link", "show", "weft-gw"]),
        h.ovs.ofctl("dump-ports-desc", "br-int", &[]),
        hit.join("\n"),
        p.log()
    )
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
    let sandboxes: Vec<String> = ["web1", "island", "peer"]
        .iter()
        .map(|c| p.run(&["inspect", "--format", "{{.NetworkSettings.SandboxKey}}", c]))
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

    // Ping from the node: once the path is up, every reply comes back.
    let ok = eventually(Duration::from_secs(20), || {
        all_answered(&ping_from_node(node, "10.233.41.10", 3), 3)
    });
    assert!(ok, "node → web1 (ping)\n{}", explain(&cl, &p));
    let s = ping_from_node(node, "10.233.41.10", 10);
    assert!(
        all_answered(&s, 10),
        "node → web1: {s}\n{}",
        explain(&cl, &p)
    );

    // kubelet's probes: tcpSocket and httpGet, repeatedly (a probe every period).
    let ok = eventually(Duration::from_secs(10), || {
        tcp_probe(node, "10.233.41.10", PORT)
    });
    assert!(ok, "node → web1:{PORT} (TCP)\n{}", explain(&cl, &p));
    for i in 0..5 {
        assert!(
            tcp_probe(node, "10.233.41.10", PORT),
            "TCP probe {i} failed\n{}",
            explain(&cl, &p)
        );
        assert_eq!(
            http_probe(node, "10.233.41.10", PORT).as_deref(),
            Some("alive"),
            "HTTP probe {i}\n{}",
            explain(&cl, &p)
        );
    }

    // The container reaches its node's address: ping (every reply) and a TCP connection.
    let s = ping_from_container(&p, "web1", &node_addr, 5);
    assert!(
        all_answered(&s, 5),
        "web1 → node: {s}\n{}",
        explain(&cl, &p)
    );
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
        all_answered(&ping_from_container(&p, "peer", "10.233.42.10", 3), 3)
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
    let s = ping_from_node(node, "10.233.42.10", 3);
    assert!(unanswered(&s), "node → island: {s}");
    assert!(
        !tcp_probe(node, "10.233.42.10", PORT),
        "node connected to red's island"
    );
    assert_eq!(http_probe(node, "10.233.42.10", PORT), None);
    let s = ping_from_container(&p, "island", &node_addr, 3);
    assert!(unanswered(&s), "island → node: {s}");

    // podman rm: no container port left on the node's switch, no namespace left.
    p.run(&["rm", "-f", "-t", "0", "web1", "island", "peer"]);
    assert_eq!(container_ports(&h.ovs), Vec::<String>::new());
    for s in &sandboxes {
        assert!(!Path::new(s).exists(), "{s} left");
    }
}

//! podman as a real CNI runtime: containers started with `--network` on Weft networks of two
//! tenants, on two simulated hosts (one conflist per host and network, each naming that host's
//! netplugin socket), get their addresses and routes, reach their peers on their network (also
//! across hosts) and nothing else; `podman rm` leaves nothing behind.
//!
//! podman's whole configuration (containers.conf, storage.conf, CNI config and plugin
//! directories, storage, runroot, tmp) lives in a temporary directory of the test, so the
//! machine's own configuration is untouched and tests can run in parallel.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;
use systemtests::{eventually, Cluster};
use testsupport::TempDir;

/// podman with its own configuration and storage; removes its containers when dropped.
struct Podman {
    dir: TempDir,
}

impl Podman {
    fn new() -> Podman {
        let dir = TempDir::new("weft-podman-");
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
        // An image: busybox and its applets, imported from a tarball.
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

    fn network(&self, name: &str, tenant: &str, network: &str, socket: &Path) {
        self.network_with(name, tenant, network, socket, true)
    }

    fn network_with(
        &self,
        name: &str,
        tenant: &str,
        network: &str,
        socket: &Path,
        default_route: bool,
    ) {
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
                "defaultRoute": default_route,
                "capabilities": {"ips": true, "mac": true}
            }]
        });
        std::fs::write(
            self.dir().join("net.d").join(format!("{name}.conflist")),
            serde_json::to_string_pretty(&conflist).unwrap(),
        )
        .unwrap();
    }

    /// Starts a container on `network` (with `--ip` when given); its id.
    fn start(&self, name: &str, network: &str, ip: Option<&str>) -> String {
        let mut args = vec!["run", "-d", "--name", name, "--network", network];
        if let Some(ip) = ip {
            args.extend(["--ip", ip]);
        }
        args.extend(["localhost/weft-busybox", "sleep", "3600"]);
        let (ok, out) = self.try_run(&args);
        assert!(ok, "podman run {name}: {out}\nlog:\n{}", self.log());
        out.trim().lines().last().unwrap().to_string()
    }

    fn exec(&self, name: &str, args: &[&str]) -> (bool, String) {
        let mut a = vec!["exec", name];
        a.extend(args);
        self.try_run(&a)
    }

    fn pings(&self, name: &str, addr: &str) -> bool {
        self.exec(name, &["ping", "-c", "1", "-W", "1", addr]).0
    }

    fn sandbox(&self, name: &str) -> PathBuf {
        PathBuf::from(self.run(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.SandboxKey}}",
            name,
        ]))
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

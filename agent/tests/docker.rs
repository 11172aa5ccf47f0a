//! Docker as the runtime: a real dockerd (its own directories and socket) on a simulated host, the
//! network and IPAM driver served by netplugin, containers of two tenants with the same subnet.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{runtime_in, Host};
use testsupport::{Ovs, TempDir};
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

/// A dockerd of the test's own: data, exec root, socket and pid file in a temp directory, no
/// bridge, no iptables, the vfs storage driver (no mounts to leave behind). Stopped on drop.
struct Dockerd {
    dir: TempDir,
    child: std::process::Child,
}

impl Dockerd {
    fn start() -> Dockerd {
        let dir = TempDir::new("weft-dockerd-");
        let d = dir.path();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--data-root", &p(&d.join("data"))])
            .args(["--exec-root", &p(&d.join("exec"))])
            .args(["--pidfile", &p(&d.join("docker.pid"))])
            .args(["-H", &format!("unix://{}", p(&d.join("docker.sock")))])
            .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd (docker.io)");
        let dk = Dockerd { dir, child };
        for _ in 0..150 {
            if dk.try_run(&["version"]).is_ok() {
                return dk;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("dockerd did not come up: {}", dk.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// `docker ARGS` against this daemon: Ok(stdout) or Err(stderr).
    fn try_run(&self, args: &[&str]) -> Result<String, String> {
        // Debian's client matches Debian's daemon (a newer CLI may be first on PATH).
        let out = Command::new("/usr/bin/docker")
            .arg("-H")
            .arg(format!(
                "unix://{}",
                p(&self.dir.path().join("docker.sock"))
            ))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("docker CLI");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    fn run(&self, args: &[&str]) -> String {
        self.try_run(args)
            .unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")))
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Ok(ids) = self.try_run(&["ps", "-aq"]) {
            for id in ids.split_whitespace() {
                let _ = self.try_run(&["rm", "-f", id]);
            }
        }
        // SIGTERM: dockerd stops its containerd and unmounts what it mounted.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Anything still mounted below our directory goes before the directory does.
        if let Ok(m) = std::fs::read_to_string("/proc/self/mounts") {
            let root = p(self.dir.path());
            let mut points: Vec<&str> = m
                .lines()
                .filter_map(|l| l.split(' ').nth(1))
                .filter(|mp| mp.starts_with(&root))
                .collect();
            points.sort_by_key(|mp| std::cmp::Reverse(mp.len()));
            for mp in points {
                let _ = Command::new("umount").arg("-l").arg(mp).status();
            }
        }
    }
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// A busybox image: /bin/busybox and its applets.
fn image(dk: &Dockerd) -> String {
    let tar = testsupport::busybox_image_tar(dk.dir.path());
    let name = "weft-busybox:test";
    dk.run(&["import", &p(&tar), name]);
    name.to_string()
}

fn addr_of(dk: &Dockerd, c: &str) -> String {
    let out = dk.run(&["exec", c, "ip", "-4", "-o", "addr", "show", "eth0"]);
    out.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("{c}: no IPv4 address: {out}"))
        .to_string()
}

fn pings(dk: &Dockerd, from: &str, to: &str) -> bool {
    (0..3).any(|_| {
        dk.try_run(&["exec", from, "ping", "-c", "1", "-W", "1", to])
            .is_ok()
    })
}

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
    let dk = Dockerd::start();
    let img = image(&dk);

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
        let mut args = vec!["run", "-d", "--name", name, "--network", net];
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
    run("r2", "rnet", None);

    let b1 = addr_of(&dk, "b1");
    assert!(b1.starts_with("10.231.9.") && b1.ends_with("/24"), "{b1}");
    assert_eq!(addr_of(&dk, "b2"), "10.231.9.50/24", "--ip is honoured");
    assert_eq!(addr_of(&dk, "r1"), "10.231.9.50/24");
    let routes = dk.run(&["exec", "b2", "ip", "route"]);
    assert!(
        routes.contains("default via 10.231.9.1 dev eth0"),
        "{routes}"
    );
    let b1 = b1.trim_end_matches("/24").to_string();
    let r2 = addr_of(&dk, "r2").trim_end_matches("/24").to_string();

    // Same network: reaches; the twin address answers in its own tenant only.
    assert!(pings(&dk, "b1", "10.231.9.50"), "b1 → b2");
    assert!(pings(&dk, "r2", "10.231.9.50"), "r2 → r1");
    let flows = || ovs.ofctl("dump-flows", "br-int", &["--no-stats"]);
    assert!(
        !pings(&dk, "r2", &b1),
        "red must not reach blue\n{}",
        flows()
    );
    assert!(!pings(&dk, "b1", &r2), "blue must not reach red");
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

/// The plugin socket lives in Docker's global plugin directory: removed also when a check fails.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

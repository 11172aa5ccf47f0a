//! podman as a real CNI runtime, for the tests that drive weft-cni through it (`podman.rs`,
//! `host_access.rs`).
//!
//! podman's whole configuration (containers.conf, storage.conf, CNI config and plugin
//! directories, storage, runroot, tmp) lives in a temporary directory of the test, so the
//! machine's own configuration is untouched and tests can run in parallel.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use testsupport::TempDir;

use super::BIN;

/// podman with its own configuration and storage; removes its containers when dropped.
pub struct Podman {
    dir: TempDir,
}

impl Podman {
    pub fn new() -> Podman {
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

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir().join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir().join("storage.conf"))
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> String {
        testsupport::run(&mut self.cmd(args)).trim().to_string()
    }

    pub fn try_run(&self, args: &[&str]) -> (bool, String) {
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
    pub fn network(&self, name: &str, tenant: &str, network: &str, socket: &Path) {
        self.network_with(name, tenant, network, socket, true)
    }

    /// [`Podman::network`], saying whether the interface gets the default route.
    pub fn network_with(
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
    pub fn start(&self, name: &str, network: &str, ip: Option<&str>) -> String {
        let mut args = vec!["run", "-d", "--name", name, "--network", network];
        if let Some(ip) = ip {
            args.extend(["--ip", ip]);
        }
        args.extend(["localhost/weft-busybox", "sleep", "3600"]);
        let (ok, out) = self.try_run(&args);
        assert!(ok, "podman run {name}: {out}\nlog:\n{}", self.log());
        out.trim().lines().last().unwrap().to_string()
    }

    /// Starts a container on `network` with address `ip`, serving `/www/healthz` ("alive") over
    /// HTTP on `port` (busybox httpd in the foreground as the container's process).
    pub fn start_server(&self, name: &str, network: &str, ip: &str, port: u16) {
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

    pub fn exec(&self, name: &str, args: &[&str]) -> (bool, String) {
        let mut a = vec!["exec", name];
        a.extend(args);
        self.try_run(&a)
    }

    /// Whether one ping from container `name` to `addr` is answered.
    pub fn pings(&self, name: &str, addr: &str) -> bool {
        self.exec(name, &["ping", "-c", "1", "-W", "1", addr]).0
    }

    /// How many of `count` pings (busybox ping) from container `name` to `addr` are answered.
    pub fn replies(&self, name: &str, addr: &str, count: u32) -> u64 {
        let (_, out) = self.exec(name, &["ping", "-c", &count.to_string(), "-W", "1", addr]);
        testsupport::ping_summary(&out).map_or(0, |(_, r)| r)
    }

    /// The path of container `name`'s network namespace.
    pub fn sandbox(&self, name: &str) -> PathBuf {
        PathBuf::from(self.run(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.SandboxKey}}",
            name,
        ]))
    }

    /// weft-cni's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("weft-cni.log")).unwrap_or_default()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f", "-t", "0"]).output();
        let _ = self.cmd(&["rmi", "-a", "-f"]).output();
    }
}

//! Driving the `weft-cni` binary (and the reference plugins) the way a runtime does: environment
//! variables of the CNI specification, the config on stdin, the answer on stdout.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use testsupport::Netns;

pub mod podman;

/// Two tenants, each with a network of the same subnet, and a second network for blue.
pub const SPEC: &str = r#"{
  "global": { "vlans": "100-199", "vxlans": "5000-5999" },
  "tenants": [ { "tenantName": "blue" }, { "tenantName": "red" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "web", "encap": "vxlan", "pktTag": 5001,
      "subnet": "10.233.1.0/24", "gateway": "10.233.1.1" },
    { "tenantName": "blue", "networkName": "db", "encap": "vxlan", "pktTag": 5003,
      "subnet": "10.233.2.0/24", "gateway": "10.233.2.1" },
    { "tenantName": "red", "networkName": "web", "encap": "vxlan", "pktTag": 5002,
      "subnet": "10.233.1.0/24", "gateway": "10.233.1.1" }
  ]
}"#;

pub const BIN: &str = env!("CARGO_BIN_EXE_weft-cni");

/// One invocation's answer.
#[derive(Debug)]
pub struct Answer {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?} / {}",
                self.stdout, self.stderr
            )
        })
    }

    /// The error object; panics when the call succeeded.
    pub fn error(&self) -> Value {
        assert!(!self.ok, "expected an error, got success: {}", self.stdout);
        let v = self.json();
        assert!(v["code"].is_u64(), "error object without a code: {v}");
        assert!(v["msg"].is_string(), "error object without msg: {v}");
        v
    }

    pub fn code(&self) -> u64 {
        self.error()["code"].as_u64().unwrap()
    }

    pub fn result(&self) -> Value {
        assert!(self.ok, "plugin failed: {} {}", self.stdout, self.stderr);
        self.json()
    }
}

/// The environment of one call.
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub command: String,
    pub container: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    /// Run inside this namespace (`ip netns exec`), as a runtime on that host would.
    pub in_ns: Option<String>,
}

impl Call {
    pub fn new(command: &str, container: &str, netns: &str) -> Call {
        Call {
            command: command.into(),
            container: container.into(),
            netns: netns.into(),
            ifname: "eth0".into(),
            ..Default::default()
        }
    }

    pub fn ifname(mut self, i: &str) -> Call {
        self.ifname = i.into();
        self
    }

    pub fn args(mut self, a: &str) -> Call {
        self.args = a.into();
        self
    }

    pub fn in_ns(mut self, ns: &str) -> Call {
        self.in_ns = Some(ns.into());
        self
    }

    /// Runs `plugin` with `stdin`.
    pub fn run_plugin(&self, plugin: &str, stdin: &str) -> Answer {
        let mut cmd = match &self.in_ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, plugin]);
                c
            }
            None => Command::new(plugin),
        };
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", &self.command)
            .env("CNI_CONTAINERID", &self.container)
            .env("CNI_NETNS", &self.netns)
            .env("CNI_IFNAME", &self.ifname)
            .env("CNI_ARGS", &self.args)
            .env("CNI_PATH", "/usr/lib/cni")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn plugin");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Answer {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn run(&self, stdin: &str) -> Answer {
        self.run_plugin(BIN, stdin)
    }
}

/// A weft-cni network config.
pub fn conf(version: &str, tenant: &str, network: &str, socket: &Path, state: &Path) -> Value {
    json!({
        "cniVersion": version,
        "name": format!("{tenant}-{network}"),
        "type": "weft-cni",
        "tenant": tenant,
        "network": network,
        "agentSocket": socket,
        "stateDir": state,
        "logFile": state.join("weft-cni.log"),
        "logLevel": "debug",
    })
}

/// `conf` with more fields.
pub fn with(mut c: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// `ip -o -4 addr show dev IF` inside `ns`: its IPv4 CIDRs.
pub fn addrs(ns: &Netns, ifname: &str) -> Vec<String> {
    let out = ns
        .command(&["ip", "-o", "-4", "addr", "show", "dev", ifname])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "inet")?;
            w.next().map(str::to_string)
        })
        .collect()
}

/// The default route's gateway inside `ns`.
pub fn default_gw(ns: &Netns) -> Option<String> {
    let out = ns.exec(&["ip", "-4", "route", "show", "default"]);
    let mut w = out.split_whitespace();
    w.find(|x| *x == "via")?;
    w.next().map(str::to_string)
}

pub fn has_link(ns: &Netns, ifname: &str) -> bool {
    ns.try_exec(&["ip", "link", "show", ifname])
}

/// Ports on the host's br-int other than the uplink and tunnel (the containers' veths).
pub fn container_ports(ovs: &testsupport::Ovs) -> Vec<String> {
    ovs.vsctl(&["list-ports", "br-int"])
        .lines()
        .filter(|p| p.starts_with("wf"))
        .map(str::to_string)
        .collect()
}

pub fn state_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                v.extend(state_files(&e.path()));
            } else if !e.path().ends_with("weft-cni.log") {
                v.push(e.path());
            }
        }
    }
    v
}

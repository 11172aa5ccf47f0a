//! `netctl endpoint attach|local|check|detach` against a real netplugin, and `netctl node ls`
//! showing the host it registered.

#[path = "../../agent/tests/common/mod.rs"]
mod common;

use std::process::Command;

use common::{Host, SPEC};
use testsupport::{Netns, Ovs};

fn netctl(h: &Host, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netctl"))
        .arg("--netmaster")
        .arg(&h.rest)
        .arg("--agent-socket")
        .arg(h.socket())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn endpoint_commands_drive_the_agent() {
    let ovs = Ovs::start();
    let rt = common::runtime_in(&ovs);
    rt.block_on(async {
        let h = Host::start(&ovs, SPEC).await;
        let c = Netns::new();
        let netns = c.path().display().to_string();
        let (ok, out, err) = netctl(
            &h,
            &[
                "--json",
                "endpoint",
                "attach",
                "web1",
                "--netns",
                &netns,
                "-t",
                "blue",
                "-n",
                "web",
                "--ip",
                "10.231.1.77",
                "--route-gw",
                "192.168.5.0/24,10.231.1.1",
                "--route-intf",
                "172.20.0.0/16",
                "--pod-name",
                "web-1",
            ],
        );
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["ipv4"], "10.231.1.77/24");
        assert_eq!(v["podName"], "web-1");
        let routes = c.exec(&["ip", "route"]);
        assert!(routes.contains("192.168.5.0/24 via 10.231.1.1"), "{routes}");
        assert!(routes.contains("172.20.0.0/16 dev eth0"), "{routes}");

        let (ok, out, _) = netctl(&h, &["endpoint", "local"]);
        assert!(
            ok && out.contains("web1") && out.contains("10.231.1.77/24"),
            "{out}"
        );
        let (ok, out, err) = netctl(&h, &["endpoint", "check", "web1"]);
        assert!(ok && out.contains("web1: ok"), "{out}{err}");
        let (ok, out, _) = netctl(&h, &["endpoint", "ls"]);
        assert!(
            ok && out.contains("web1-eth0") && out.contains("host1"),
            "{out}"
        );
        let (ok, out, _) = netctl(&h, &["node", "ls"]);
        assert!(
            ok && out.contains("host1") && out.contains("up0"),
            "the agent registered: {out}"
        );

        // Bad input: a clear message, non-zero exit.
        let (ok, _, err) = netctl(
            &h,
            &[
                "endpoint",
                "attach",
                "x",
                "--netns",
                &netns,
                "-t",
                "blue",
                "-n",
                "web",
                "--route-gw",
                "10.0.0.0/8",
            ],
        );
        assert!(!ok && err.contains("expected DST,GW"), "{err}");
        let (ok, _, err) = netctl(
            &h,
            &[
                "endpoint", "attach", "x", "--netns", &netns, "-t", "blue", "-n", "nope",
            ],
        );
        assert!(!ok && err.contains("does not exist"), "{err}");

        let (ok, out, _) = netctl(&h, &["endpoint", "detach", "web1"]);
        assert!(ok && out.contains("detached web1-eth0"), "{out}");
        let (ok, out, _) = netctl(&h, &["endpoint", "detach", "web1"]);
        assert!(ok && out.contains("nothing attached"), "{out}");
        let (ok, _, err) = netctl(&h, &["endpoint", "check", "web1"]);
        assert!(!ok && err.contains("no interface"), "{err}");
    });
}

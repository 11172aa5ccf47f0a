//! The fixtures themselves: they start the real thing, run side by side, and leave nothing behind.

use std::process::Command;

use testsupport::{Etcd, Netns, Ovs};

fn netns_exists(name: &str) -> bool {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

#[test]
fn two_switches_side_by_side_and_nothing_left_after() {
    let (a, b) = (Ovs::start(), Ovs::start());
    a.add_bridge("br-int");
    b.add_bridge("br-int");
    assert!(a.vsctl(&["list-br"]).contains("br-int"));
    assert!(a
        .ofctl("dump-flows", "br-int", &[])
        .contains("OFPST_FLOW reply"));
    assert_eq!(
        b.vsctl(&["get", "bridge", "br-int", "fail_mode"]).trim(),
        "secure"
    );
    let pid = std::fs::read_to_string(a.dir().join("ovs-vswitchd.pid")).unwrap();
    let (dir, ns) = (a.dir().to_path_buf(), a.netns().name().to_string());
    drop(a);
    assert!(
        !testsupport::process_alive(pid.trim()),
        "vswitchd still running"
    );
    assert!(!dir.exists(), "directory left behind");
    assert!(!netns_exists(&ns), "namespace left behind");
}

#[test]
fn netns_runs_commands_inside_and_is_removed() {
    let ns = Netns::new();
    assert!(ns.exec(&["ip", "link", "show", "lo"]).contains("UP"));
    let name = ns.name().to_string();
    assert!(netns_exists(&name));
    drop(ns);
    assert!(!netns_exists(&name));
}

#[test]
fn etcd_starts_on_free_ports_and_stops() {
    let mut etcd = Etcd::start();
    let url = etcd.client_url().to_string();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    etcd.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

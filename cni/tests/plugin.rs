//! The weft-cni binary driven with the environment variables of the CNI specification, against a
//! real netplugin (a one-host cluster: Open vSwitch, netmaster, agent): every command in every
//! version, the address precedence, the webhook backend, and the errors.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use systemtests::Cluster;
use testsupport::{Netns, TempDir};

const VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

fn cluster() -> Cluster {
    let c = Cluster::new(1);
    c.apply(SPEC);
    c
}

#[test]
fn add_check_del_in_every_version() {
    let cl = cluster();
    let h = &cl.hosts[0];
    let state = TempDir::new("weft-cni-state-");
    for (i, v) in VERSIONS.iter().enumerate() {
        let c = Netns::new();
        let id = format!("ctr-{i}");
        let ns = c.path().display().to_string();
        let cf = conf(v, "blue", "web", &h.socket, state.path());
        let add = Call::new("ADD", &id, &ns)
            .args("IgnoreUnknown=1;K8S_POD_NAME=p;K8S_POD_NAMESPACE=default;K8S_POD_UID=u1")
            .run(&cf.to_string());
        let r = add.result();
        assert_eq!(r["cniVersion"], *v, "{r}");
        assert_eq!(r["interfaces"][0]["name"], "eth0");
        assert_eq!(r["interfaces"][0]["sandbox"], ns.as_str());
        // The host end, without a sandbox, on the host.
        let host_end = r["interfaces"][1]["name"].as_str().unwrap();
        assert!(r["interfaces"][1].get("sandbox").is_none(), "{r}");
        assert!(
            h.ovs.netns().try_exec(&["ip", "link", "show", host_end]),
            "{r}"
        );
        let addr = r["ips"][0]["address"].as_str().unwrap().to_string();
        assert!(
            addr.starts_with("10.233.1.") && addr.ends_with("/24"),
            "{r}"
        );
        assert_eq!(r["ips"][0]["gateway"], "10.233.1.1");
        assert_eq!(r["ips"][0]["interface"], 0);
        assert_eq!(
            r["routes"][0],
            json!({"dst": "0.0.0.0/0", "gw": "10.233.1.1"})
        );
        if v.starts_with("0.") {
            assert_eq!(r["ips"][0]["version"], "4", "{v}: {r}");
        } else {
            assert!(r["ips"][0].get("version").is_none(), "{v}: {r}");
        }
        assert_eq!(
            r["interfaces"][0].get("mtu").is_some(),
            *v == "1.1.0",
            "{r}"
        );
        // The container really has it.
        assert_eq!(addrs(&c, "eth0"), vec![addr.clone()]);
        assert_eq!(default_gw(&c).as_deref(), Some("10.233.1.1"));
        let mac = c.exec(&["cat", "/sys/class/net/eth0/address"]);
        assert_eq!(r["interfaces"][0]["mac"], mac.trim());

        // ADD again (a runtime retrying) gives the same interface.
        let again = Call::new("ADD", &id, &ns).run(&cf.to_string()).result();
        assert_eq!(again["ips"][0]["address"], addr.as_str());

        // CHECK with the runtime's record: from 0.4.0 on; before, an incompatible version.
        let ck = with(cf.clone(), json!({ "prevResult": r }));
        let check = Call::new("CHECK", &id, &ns).run(&ck.to_string());
        if v.starts_with("0.3") {
            assert_eq!(check.code(), 1, "{v}: {}", check.stdout);
            assert!(check.error()["details"].as_str().unwrap().contains("0.4.0"));
        } else {
            assert!(check.ok, "{v}: {}", check.stdout);
            // A record that disagrees with the container is found out.
            let mut wrong = r.clone();
            wrong["ips"][0]["address"] = json!("10.233.1.250/24");
            let bad = Call::new("CHECK", &id, &ns)
                .run(&with(cf.clone(), json!({ "prevResult": wrong })).to_string());
            assert_eq!(bad.code(), 101, "{}", bad.stdout);
        }

        // DEL removes it; DEL again succeeds.
        let del = Call::new("DEL", &id, &ns).run(&ck.to_string());
        assert!(del.ok, "{v}: {}", del.stdout);
        assert_eq!(del.stdout, "", "DEL prints nothing");
        assert!(
            !has_link(&c, "eth0"),
            "eth0 still in the container after DEL"
        );
        assert!(Call::new("DEL", &id, &ns).run(&cf.to_string()).ok);
        // and without CNI_NETNS (a runtime whose namespace is gone).
        assert!(Call::new("DEL", &id, "").run(&cf.to_string()).ok);
        if !v.starts_with("0.3") {
            let gone = Call::new("CHECK", &id, &ns).run(&ck.to_string());
            assert_eq!(gone.code(), 101, "CHECK after DEL: {}", gone.stdout);
        }
    }
    assert_eq!(
        container_ports(&h.ovs),
        Vec::<String>::new(),
        "veths left on br-int"
    );
    assert_eq!(state_files(state.path()), Vec::<std::path::PathBuf>::new());
    let log = std::fs::read_to_string(state.path().join("weft-cni.log")).unwrap();
    assert!(log.contains("ADD ok in"), "log: {log}");

    // A container that was never added: DEL succeeds.
    let never = Call::new("DEL", "never-added", "/var/run/netns/none")
        .run(&conf("1.1.0", "blue", "web", &h.socket, state.path()).to_string());
    assert!(never.ok, "{}", never.stdout);
}

#[test]
fn status_gc_and_version() {
    let cl = cluster();
    let h = &cl.hosts[0];
    let state = TempDir::new("weft-cni-state-");
    let cf = conf("1.1.0", "blue", "web", &h.socket, state.path());
    let st = Call::new("STATUS", "", "").run(&cf.to_string());
    assert!(st.ok && st.stdout.is_empty(), "{st:?}");
    // STATUS is 1.1.0's; GC too.
    let old = conf("1.0.0", "blue", "web", &h.socket, state.path());
    assert_eq!(Call::new("STATUS", "", "").run(&old.to_string()).code(), 1);
    assert_eq!(Call::new("GC", "", "").run(&old.to_string()).code(), 1);

    let (a, b) = (Netns::new(), Netns::new());
    for (id, ns) in [("gc-a", &a), ("gc-b", &b)] {
        Call::new("ADD", id, &ns.path().display().to_string())
            .run(&cf.to_string())
            .result();
    }
    assert_eq!(state_files(state.path()).len(), 2);
    // The runtime still knows gc-a only: gc-b goes.
    let gc = with(
        cf.clone(),
        json!({"cni.dev/valid-attachments": [{"containerID": "gc-a", "ifname": "eth0"}]}),
    );
    let r = Call::new("GC", "", "").run(&gc.to_string());
    assert!(r.ok, "{r:?}");
    assert!(has_link(&a, "eth0"));
    assert!(!has_link(&b, "eth0"), "GC left the stale attachment");
    assert_eq!(state_files(state.path()).len(), 1);
    assert_eq!(container_ports(&h.ovs).len(), 1);
    // Another network's GC does not touch blue-web's attachments.
    let other = with(
        conf("1.1.0", "red", "web", &h.socket, state.path()),
        json!({"cni.dev/valid-attachments": []}),
    );
    assert!(Call::new("GC", "", "").run(&other.to_string()).ok);
    assert!(has_link(&a, "eth0"));
    // An empty list: everything of this network goes.
    let all = with(cf.clone(), json!({"cni.dev/valid-attachments": []}));
    assert!(Call::new("GC", "", "").run(&all.to_string()).ok);
    assert!(!has_link(&a, "eth0"));
    assert_eq!(container_ports(&h.ovs), Vec::<String>::new());

    for v in VERSIONS {
        let out = Call::new("VERSION", "", "")
            .run(&json!({"cniVersion": v}).to_string())
            .result();
        assert_eq!(out["cniVersion"], *v);
        assert_eq!(out["supportedVersions"], json!(VERSIONS));
    }
    let bare = Call::new("VERSION", "", "").run("").result();
    assert_eq!(bare["supportedVersions"], json!(VERSIONS));
}

#[test]
fn address_precedence_mac_and_gateway() {
    let cl = cluster();
    let h = &cl.hosts[0];
    let state = TempDir::new("weft-cni-state-");
    let base = conf("1.0.0", "blue", "web", &h.socket, state.path());
    let env_args = "IgnoreUnknown=1;IP=10.233.1.30;MAC=02:00:00:00:00:30";
    let cases = [
        // capability beats args and CNI_ARGS
        (
            json!({"runtimeConfig": {"ips": ["10.233.1.10/24"], "mac": "02:00:00:00:00:10"},
                   "args": {"cni": {"ips": ["10.233.1.20"], "mac": "02:00:00:00:00:20"}}}),
            "10.233.1.10/24",
            "02:00:00:00:00:10",
        ),
        // args beat CNI_ARGS
        (
            json!({"args": {"cni": {"ips": ["10.233.1.20"], "mac": "02:00:00:00:00:20"}}}),
            "10.233.1.20/24",
            "02:00:00:00:00:20",
        ),
        // CNI_ARGS alone
        (json!({}), "10.233.1.30/24", "02:00:00:00:00:30"),
    ];
    for (i, (extra, want_ip, want_mac)) in cases.iter().enumerate() {
        let c = Netns::new();
        let id = format!("prec-{i}");
        let ns = c.path().display().to_string();
        let cf = with(base.clone(), extra.clone());
        let r = Call::new("ADD", &id, &ns)
            .args(env_args)
            .run(&cf.to_string())
            .result();
        assert_eq!(r["ips"][0]["address"], *want_ip, "case {i}: {r}");
        assert_eq!(r["interfaces"][0]["mac"], *want_mac, "case {i}: {r}");
        assert_eq!(addrs(&c, "eth0"), vec![want_ip.to_string()]);
        assert_eq!(
            c.exec(&["cat", "/sys/class/net/eth0/address"]).trim(),
            *want_mac
        );
        assert!(Call::new("DEL", &id, &ns).run(&cf.to_string()).ok);
    }
    // GATEWAY= in CNI_ARGS: the default route goes there instead of the network's gateway.
    let c = Netns::new();
    let ns = c.path().display().to_string();
    let r = Call::new("ADD", "gw", &ns)
        .args("IP=10.233.1.40;GATEWAY=10.233.1.254")
        .run(&base.to_string())
        .result();
    assert_eq!(default_gw(&c).as_deref(), Some("10.233.1.254"));
    assert_eq!(
        r["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": "10.233.1.254"}]),
        "{r}"
    );
    assert!(Call::new("DEL", "gw", &ns).run(&base.to_string()).ok);

    // An address outside the network, or one taken, is refused with netplugin's reason.
    let c2 = Netns::new();
    let ns2 = c2.path().display().to_string();
    let outside = Call::new("ADD", "out", &ns2)
        .args("IP=192.0.2.5")
        .run(&base.to_string());
    let e = outside.error();
    assert_eq!(e["code"], 7, "{e}");
    assert!(!has_link(&c2, "eth0"), "a failed ADD left an interface");
    // An unknown network: the config is wrong, and the message says which.
    let unknown = conf("1.0.0", "blue", "nosuch", &h.socket, state.path());
    let e = Call::new("ADD", "unk", &ns2)
        .run(&unknown.to_string())
        .error();
    assert_eq!(e["code"], 7, "{e}");
    assert!(e["details"].as_str().unwrap().contains("nosuch"), "{e}");
    assert_eq!(container_ports(&h.ovs), Vec::<String>::new());
}

#[test]
fn errors_without_netplugin() {
    testsupport::watchdog(Duration::from_secs(10 * 60));
    let state = TempDir::new("weft-cni-state-");
    let nowhere = state.path().join("no-netplugin.sock");
    let cf = conf("1.0.0", "blue", "web", &nowhere, state.path());
    let ns = "/var/run/netns/whatever";
    // netplugin not there: try again later, naming the socket.
    for cmd in ["ADD", "DEL", "CHECK"] {
        let e = Call::new(cmd, "c1", ns).run(&cf.to_string()).error();
        assert_eq!(e["code"], 11, "{cmd}: {e}");
        assert!(
            e["details"]
                .as_str()
                .unwrap()
                .contains(nowhere.to_str().unwrap()),
            "{e}"
        );
        assert_eq!(e["cniVersion"], "1.0.0");
    }
    let st = conf("1.1.0", "blue", "web", &nowhere, state.path());
    assert_eq!(Call::new("STATUS", "", "").run(&st.to_string()).code(), 50);

    let cases: &[(&str, &str, u64, &str)] = &[
        ("ADD", "", 6, "stdin is empty"),
        ("ADD", "{", 6, "not JSON"),
        (
            "ADD",
            r#"{"cniVersion":"1.0.0","type":"weft-cni"}"#,
            7,
            "\"name\"",
        ),
        (
            "ADD",
            r#"{"cniVersion":"1.0.0","name":"n","type":"weft-cni","tenant":"blue"}"#,
            7,
            "\"network\" is required",
        ),
        (
            "ADD",
            r#"{"cniVersion":"1.0.0","name":"n","type":"weft-cni","tenant":"b","network":"w","mtu":[]}"#,
            7,
            "field \"mtu\"",
        ),
        (
            "ADD",
            r#"{"cniVersion":"9.9.9","name":"n","type":"weft-cni","tenant":"b","network":"w"}"#,
            1,
            "9.9.9",
        ),
        (
            "ADD",
            r#"{"cniVersion":"0.2.0","name":"n","type":"weft-cni","tenant":"b","network":"w"}"#,
            1,
            "supports 0.3.0",
        ),
        (
            "FROB",
            r#"{"cniVersion":"1.0.0","name":"n","type":"weft-cni","tenant":"b","network":"w"}"#,
            4,
            "FROB",
        ),
    ];
    for (cmd, stdin, code, needle) in cases {
        let a = Call::new(cmd, "c1", ns).run(stdin);
        let e = a.error();
        assert_eq!(e["code"], *code, "{stdin}: {e}");
        assert!(
            e["details"].as_str().unwrap().contains(needle),
            "{stdin}: {e}"
        );
    }
    let good = conf("1.0.0", "blue", "web", &nowhere, state.path()).to_string();
    let e = Call::new("ADD", "c1", "").run(&good).error();
    assert_eq!(
        (
            e["code"].as_u64(),
            e["details"].as_str().unwrap().contains("CNI_NETNS")
        ),
        (Some(4), true),
        "{e}"
    );
    let e = Call::new("ADD", "", ns).run(&good).error();
    assert!(
        e["details"].as_str().unwrap().contains("CNI_CONTAINERID"),
        "{e}"
    );
    let e = Call::new("ADD", "c1", ns).args("FOO=1").run(&good).error();
    assert_eq!(e["code"], 4, "{e}");
    let e = Call::new("ADD", "c1", ns)
        .run(
            &with(
                serde_json::from_str(&good).unwrap(),
                json!({"runtimeConfig": {"ips": ["10.0.0.1", "10.0.0.2"]}}),
            )
            .to_string(),
        )
        .error();
    assert_eq!(e["code"], 7, "{e}");
}

/// A webhook in dockin's format on loopback, answering `body` to every request; the requests
/// it saw.
fn webhook(body: Value) -> (String, std::sync::mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/rm/pod", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            r.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
            }
            let _ = tx.send(line);
            let b = body.to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                b.len()
            );
        }
    });
    (url, rx)
}

#[test]
fn webhook_attaches_several_networks_master_first() {
    let cl = cluster();
    let h = &cl.hosts[0];
    let state = TempDir::new("weft-cni-state-");
    let (url, seen) = webhook(json!({
        "code": 0, "reqId": "1", "message": "success",
        "data": [
            {"type": "db", "podIp": "10.233.2.50", "subnetMask": "255.255.255.0",
             "gateway": "10.233.2.1", "ifName": "net1", "master": false},
            {"type": "blue/web", "podIp": "10.233.1.50", "subnetMask": "255.255.255.0",
             "gateway": "10.233.1.1", "ifName": "eth0", "master": true}
        ]
    }));
    let cf = json!({
        "cniVersion": "1.0.0", "name": "multi", "type": "weft-cni", "tenant": "blue",
        "agentSocket": h.socket, "stateDir": state.path(),
        "attachments": {"backend": "webhook", "url": url}
    });
    let c = Netns::new();
    let ns = c.path().display().to_string();
    let r = Call::new("ADD", "multi-1", &ns)
        .args("K8S_POD_NAME=web-0;K8S_POD_NAMESPACE=shop;K8S_POD_UID=42")
        .run(&cf.to_string())
        .result();
    let req = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        req.contains("podName=web-0") && req.contains("podNamespace=shop"),
        "{req}"
    );
    assert_eq!(r["interfaces"][0]["name"], "eth0", "master first: {r}");
    assert_eq!(r["interfaces"][2]["name"], "net1");
    assert!(r["interfaces"][1].get("sandbox").is_none(), "host end: {r}");
    assert_eq!(r["ips"][0]["address"], "10.233.1.50/24");
    assert_eq!(
        r["ips"][1],
        json!({"address": "10.233.2.50/24", "gateway": "10.233.2.1", "interface": 2})
    );
    assert_eq!(
        r["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": "10.233.1.1"}]),
        "{r}"
    );
    assert_eq!(addrs(&c, "eth0"), vec!["10.233.1.50/24"]);
    assert_eq!(addrs(&c, "net1"), vec!["10.233.2.50/24"]);
    assert_eq!(default_gw(&c).as_deref(), Some("10.233.1.1"));
    let ck = with(cf.clone(), json!({"prevResult": r}));
    let check = Call::new("CHECK", "multi-1", &ns).run(&ck.to_string());
    assert!(check.ok, "{check:?}");
    assert!(Call::new("DEL", "multi-1", &ns).run(&cf.to_string()).ok);
    assert!(!has_link(&c, "eth0") && !has_link(&c, "net1"));
    assert_eq!(container_ports(&h.ovs), Vec::<String>::new());
    assert_eq!(state_files(state.path()), Vec::<std::path::PathBuf>::new());

    // The second network fails: the first interface is taken back, nothing is left.
    let (url, _) = webhook(json!({"code": 0, "data": [
        {"type": "web", "ifName": "eth0", "master": true},
        {"type": "nosuch", "ifName": "net1"}]}));
    let e = Call::new("ADD", "multi-4", &ns)
        .run(
            &with(
                cf.clone(),
                json!({"attachments": {"backend": "webhook", "url": url}}),
            )
            .to_string(),
        )
        .error();
    assert_eq!(e["code"], 7, "{e}");
    assert!(e["details"].as_str().unwrap().contains("nosuch"), "{e}");
    assert!(
        !has_link(&c, "eth0"),
        "the first interface of a failed ADD was left"
    );
    assert_eq!(container_ports(&h.ovs), Vec::<String>::new());
    assert_eq!(state_files(state.path()), Vec::<std::path::PathBuf>::new());

    // A webhook that says no: its message reaches the person.
    let (url, _) = webhook(json!({"code": 5, "message": "pod shop/web-1 has no network quota"}));
    let e = Call::new("ADD", "multi-2", &ns)
        .run(
            &with(
                cf.clone(),
                json!({"attachments": {"backend": "webhook", "url": url}}),
            )
            .to_string(),
        )
        .error();
    assert_eq!(e["code"], 102, "{e}");
    assert!(
        e["details"].as_str().unwrap().contains("no network quota"),
        "{e}"
    );
    // A webhook that is not there: try again later.
    let e = Call::new("ADD", "multi-3", &ns)
        .run(&with(cf, json!({"attachments": {"backend": "webhook", "url": "http://127.0.0.1:1/x", "timeoutMs": 500}})).to_string())
        .error();
    assert_eq!(e["code"], 11, "{e}");
}

/// POSTs `body` to netmaster's `path` (from the fabric, where netmaster listens); status, text.
fn nm_post(cl: &Cluster, path: &str, body: Value) -> (u16, String) {
    let url = format!("{}{path}", cl.rest);
    cl.on_fabric(move || async move {
        let r = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("netmaster answers");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    })
}

#[test]
fn netmaster_pod_attachment_records() {
    let cl = cluster();
    let h = &cl.hosts[0];
    let state = TempDir::new("weft-cni-state-");
    let record = json!({
        "podNamespace": "shop", "podName": "web-0",
        "attachments": [
            {"tenantName": "blue", "networkName": "db", "ifName": "net1"},
            {"tenantName": "blue", "networkName": "web", "ifName": "eth0",
             "ipAddress": "10.233.1.60", "master": true}
        ]
    });
    let (st, text) = nm_post(&cl, "/api/v1/podAttachments/shop:web-0/", record.clone());
    assert_eq!(st, 200, "{text}");
    // netmaster validates the record: an address outside the network, a network that is not.
    let mut bad = record.clone();
    bad["attachments"][1]["ipAddress"] = json!("10.99.0.1");
    bad["attachments"][0]["networkName"] = json!("nosuch");
    let (st, text) = nm_post(&cl, "/api/v1/podAttachments/shop:web-0/", bad);
    assert_eq!(st, 400, "{text}");
    assert!(
        text.contains("outside subnet") && text.contains("nosuch"),
        "{text}"
    );

    // weft-cni runs on the host (in its namespace, where netmaster's address is reachable).
    let cf = json!({
        "cniVersion": "1.1.0", "name": "pods", "type": "weft-cni", "tenant": "blue",
        "agentSocket": h.socket, "stateDir": state.path(),
        "attachments": {"backend": "netmaster", "url": cl.rest}
    });
    let c = Netns::new();
    let ns = c.path().display().to_string();
    let host = h.ovs.netns().name().to_string();
    let r = Call::new("ADD", "pod-web-0", &ns)
        .args("K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_UID=9")
        .in_ns(&host)
        .run(&cf.to_string())
        .result();
    assert_eq!(r["interfaces"][0]["name"], "eth0", "master first: {r}");
    assert_eq!(r["interfaces"][2]["name"], "net1", "{r}");
    assert_eq!(r["ips"][0]["address"], "10.233.1.60/24");
    assert_eq!(addrs(&c, "eth0"), vec!["10.233.1.60/24"]);
    let net1 = addrs(&c, "net1");
    assert!(
        net1.len() == 1 && net1[0].starts_with("10.233.2."),
        "{net1:?}"
    );
    assert_eq!(default_gw(&c).as_deref(), Some("10.233.1.1"));
    assert!(
        Call::new("DEL", "pod-web-0", &ns)
            .in_ns(&host)
            .run(&cf.to_string())
            .ok
    );
    assert!(!has_link(&c, "eth0") && !has_link(&c, "net1"));

    // A pod netmaster has no record of; a runtime that does not say which pod.
    let e = Call::new("ADD", "pod-x", &ns)
        .args("K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-9")
        .in_ns(&host)
        .run(&cf.to_string())
        .error();
    assert_eq!(e["code"], 102, "{e}");
    assert!(
        e["details"]
            .as_str()
            .unwrap()
            .contains("no podAttachment \"shop:web-9\""),
        "{e}"
    );
    let e = Call::new("ADD", "pod-x", &ns)
        .in_ns(&host)
        .run(&cf.to_string())
        .error();
    assert_eq!(e["code"], 4, "{e}");
    assert!(
        e["details"].as_str().unwrap().contains("K8S_POD_NAME"),
        "{e}"
    );
    assert_eq!(container_ports(&h.ovs), Vec::<String>::new());
}

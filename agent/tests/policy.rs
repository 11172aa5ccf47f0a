//! Policy on one host with real traffic: groups, rules, default-deny and conntrack (replies of
//! allowed connections pass; an established connection outlives a new deny).

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::{ip_of, no_reply, ping, runtime_in, Host};
use testsupport::{Netns, Ovs};
use weft_api::proto::endpoint as pb;

const SPEC: &str = r#"{
  "tenants": [ { "tenantName": "blue" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "app", "encap": "vxlan", "pktTag": 5101,
      "subnet": "10.231.7.0/24", "gateway": "10.231.7.1" }
  ],
  "endpointGroups": [
    { "tenantName": "blue", "groupName": "web", "networkName": "app" },
    { "tenantName": "blue", "groupName": "db", "networkName": "app",
      "policies": ["db-in"], "defaultDeny": true }
  ],
  "policies": [ { "tenantName": "blue", "policyName": "db-in" } ],
  "rules": [
    { "tenantName": "blue", "policyName": "db-in", "ruleId": "pg", "priority": 10,
      "direction": "in", "fromEndpointGroup": "web", "protocol": "tcp",
      "port": 5432, "portEnd": 5433, "action": "allow" },
    { "tenantName": "blue", "policyName": "db-in", "ruleId": "ping", "priority": 10,
      "direction": "in", "fromEndpointGroup": "web", "protocol": "icmp", "action": "allow" }
  ]
}"#;

/// A TCP listener in `c` on `port` that keeps accepting (busybox-free: netcat-openbsd `-k`).
struct Listener(Child);

impl Listener {
    fn start(c: &Netns, port: u16) -> Listener {
        let child = c
            .command(&["nc", "-k", "-l", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        Listener(child)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP listener in `c` on `port`, on a thread inside the namespace, that reads what its
/// connections send and counts the bytes; stopped when dropped.
struct ByteCounter {
    got: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ByteCounter {
    fn start(c: &Netns, port: u16) -> ByteCounter {
        use std::io::Read;
        use std::sync::atomic::Ordering;
        let got = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (g, halt, path) = (got.clone(), stop.clone(), c.path());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            testsupport::setns_net(std::fs::File::open(path).expect("namespace"));
            let l = std::net::TcpListener::bind(("0.0.0.0", port)).expect("listen");
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            let mut conns: Vec<std::net::TcpStream> = vec![];
            let mut buf = [0u8; 4096];
            while !halt.load(Ordering::Relaxed) {
                if let Ok((s, _)) = l.accept() {
                    s.set_nonblocking(true).unwrap();
                    conns.push(s);
                }
                for s in &mut conns {
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        g.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        rx.recv().expect("listener thread");
        ByteCounter {
            got,
            stop,
            thread: Some(thread),
        }
    }

    fn got(&self) -> u64 {
        self.got.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the count reaches `n` within 3 s.
    fn reaches(&self, n: u64) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if self.got() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for ByteCounter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether a TCP connection from `c` to `addr:port` is accepted within 2 s.
fn connects(c: &Netns, addr: &str, port: u16) -> bool {
    c.try_exec(&["nc", "-z", "-w", "2", addr, &port.to_string()])
}

async fn attach(h: &Host, c: &Netns, id: &str, group: &str) -> String {
    let i = h
        .try_attach(pb::AttachRequest {
            container_id: id.into(),
            netns: c.path().display().to_string(),
            interface_name: "eth0".into(),
            tenant: "blue".into(),
            network: "app".into(),
            group: group.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    ip_of(&i.ipv4)
}

async fn post(h: &Host, path: &str, body: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", h.rest))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {:?}", r.text().await);
}

/// Waits (bounded) until `f` holds; the agent applies intent asynchronously.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..40 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

#[test]
fn groups_rules_default_deny_and_state() {
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");
    let rt = runtime_in(&ovs);
    let (w, d, x) = (Netns::new(), Netns::new(), Netns::new());
    let h = rt.block_on(Host::start(&ovs, SPEC));
    let (wa, da, xa) = rt.block_on(async {
        (
            attach(&h, &w, "w", "web").await,
            attach(&h, &d, "d", "db").await,
            attach(&h, &x, "x", "").await,
        )
    });
    let flows = || ovs.ofctl("dump-flows", "br-int", &["--no-stats"]);
    let _pg = Listener::start(&d, 5433);
    let _web = Listener::start(&w, 80);
    let _x = Listener::start(&x, 80);

    // web → db: what the rules allow (icmp, tcp 5432-5433), and the replies.
    assert!(ping(&w, &da, 2), "web pings db\n{}", flows());
    assert!(connects(&w, &da, 5433), "web reaches db:5433\n{}", flows());
    // The same listener port from a container in no group: db denies by default.
    assert!(ping(&x, &wa, 1), "x is otherwise connected (x → web)");
    assert!(no_reply(&x, &da, 2), "x must not ping db");
    assert!(!connects(&x, &da, 5433), "x must not reach db:5433");
    // db itself may start nothing (default-deny is both ways), but answers what it allowed.
    assert!(no_reply(&d, &wa, 2), "db must not ping web");
    assert!(!connects(&d, &wa, 80), "db must not reach web:80");
    // Groups without policy talk freely.
    assert!(connects(&x, &wa, 80) && connects(&w, &xa, 80));

    // An established connection outlives a new deny; a new one is refused at once. What the
    // receiver got is counted: the sender's nc keeps running even when every segment is dropped.
    let counter = ByteCounter::start(&d, 5432);
    let mut held = w
        .command(&["nc", &da, "5432"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut feed = |line: &[u8]| {
        use std::io::Write;
        let stdin = held.stdin.as_mut().unwrap();
        stdin
            .write_all(line)
            .expect("the established connection is open");
        stdin.flush().unwrap();
    };
    feed(b"hello\n");
    assert!(
        counter.reaches(6),
        "db got {} of 6 bytes before the deny",
        counter.got()
    );
    rt.block_on(post(
        &h,
        "/api/v1/rules/blue:db-in:block/",
        r#"{ "tenantName": "blue", "policyName": "db-in", "ruleId": "block", "priority": 50,
             "direction": "in", "fromEndpointGroup": "web", "action": "deny" }"#,
    ));
    assert!(
        eventually(|| !connects(&w, &da, 5433)),
        "a higher deny blocks new connections\n{}",
        flows()
    );
    assert!(no_reply(&w, &da, 1));
    for _ in 0..5 {
        feed(b"still here\n");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        counter.reaches(6 + 5 * 11),
        "the established connection was cut: db got {} of {} bytes\n{}",
        counter.got(),
        6 + 5 * 11,
        flows()
    );
    let _ = held.kill();
    let _ = held.wait();
    drop(counter);

    // The deny goes: new connections pass again.
    rt.block_on(async {
        let r = reqwest::Client::new()
            .delete(format!("{}/api/v1/rules/blue:db-in:block/", h.rest))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    });
    assert!(eventually(|| connects(&w, &da, 5433)), "{}", flows());
    drop(h);
    drop(rt);
}

const PROFILE_SPEC: &str = r#"{
  "tenants": [ { "tenantName": "blue" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "app", "encap": "vxlan", "pktTag": 5102,
      "subnet": "10.231.8.0/24", "gateway": "10.231.8.1" }
  ],
  "netprofiles": [
    { "tenantName": "blue", "profileName": "slow", "bandwidth": "2Mbps", "burst": 32, "DSCP": 46 }
  ],
  "endpointGroups": [
    { "tenantName": "blue", "groupName": "slow", "networkName": "app", "netProfile": "slow" },
    { "tenantName": "blue", "groupName": "fast", "networkName": "app" }
  ]
}"#;

/// TCP throughput from `c` to an iperf3 server at `addr` for 2 s, bits per second received.
fn throughput(c: &Netns, addr: &str) -> f64 {
    let out = c.exec(&["iperf3", "-c", addr, "-t", "2", "-J"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 JSON");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no result: {out}"))
}

#[test]
fn netprofile_limits_bandwidth_and_marks_dscp() {
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");
    let rt = runtime_in(&ovs);
    let (s, f, r) = (Netns::new(), Netns::new(), Netns::new());
    let h = rt.block_on(Host::start(&ovs, PROFILE_SPEC));
    let ra = rt.block_on(async {
        let attach_in = |c: &Netns, id: &str, group: &str| {
            h.try_attach(pb::AttachRequest {
                container_id: id.into(),
                netns: c.path().display().to_string(),
                interface_name: "eth0".into(),
                tenant: "blue".into(),
                network: "app".into(),
                group: group.into(),
                ..Default::default()
            })
        };
        attach_in(&s, "s", "slow").await.unwrap();
        attach_in(&f, "f", "fast").await.unwrap();
        ip_of(&attach_in(&r, "r", "").await.unwrap().ipv4)
    });
    let mut server = r
        .command(&["iperf3", "-s", "-p", "5201"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let slow = throughput(&s, &ra);
    let fast = throughput(&f, &ra);

    // DSCP 46 (tos 0xb8) on what the slow group sends, nothing on the fast one's.
    let dump = r
        .command(&[
            "tcpdump",
            "-n",
            "-v",
            "-i",
            "eth0",
            "-c",
            "2",
            "icmp[icmptype] = 8",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(ping(&s, &ra, 1) && ping(&f, &ra, 1));
    let seen = String::from_utf8_lossy(&dump.wait_with_output_timeout()).to_string();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        slow < 3.0e6,
        "2 Mbps profile, measured {:.2} Mbps",
        slow / 1e6
    );
    assert!(
        fast > 3.0 * slow,
        "no profile: {:.2} Mbps, profile: {:.2} Mbps",
        fast / 1e6,
        slow / 1e6
    );
    let lines: Vec<&str> = seen.lines().filter(|l| l.contains("tos 0x")).collect();
    assert_eq!(lines.len(), 2, "{seen}");
    assert!(lines[0].contains("tos 0xb8"), "{seen}");
    assert!(lines[1].contains("tos 0x0"), "{seen}");
    eprintln!(
        "netprofile 2Mbps: {:.2} Mbps; no profile: {:.1} Mbps",
        slow / 1e6,
        fast / 1e6
    );
    drop(h);
    drop(rt);
}

trait WaitTimeout {
    fn wait_with_output_timeout(self) -> Vec<u8>;
}

impl WaitTimeout for Child {
    /// The output of a child that should end by itself within 5 s; killed otherwise.
    fn wait_with_output_timeout(mut self) -> Vec<u8> {
        for _ in 0..50 {
            if matches!(self.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.kill();
        self.wait_with_output()
            .map(|o| o.stdout)
            .unwrap_or_default()
    }
}

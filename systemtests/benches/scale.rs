//! The control plane at cluster scale: one netmaster (its own process) holding 100,000 endpoints
//! on 1,000 hosts, 500 networks, 200 tenants and 10,000 rules, and 1,000 simulated agents in
//! this process, each doing the real agent's watch (`weft_agent::netmaster`), view and compile
//! work (`weft_agent::engine`), without a switch. Once on the embedded store, once on a
//! three-member etcd cluster on this machine.
//!
//! Placement: tenant t's 500 endpoints are on 10 hosts in a row (50 each), so each host has 100
//! endpoints in 2 tenants and 1,000 endpoints concern it. Endpoint records are written straight
//! into the store before netmaster starts (the allocator is measured by its own bench). One more agent, `big`, in its own
//! process, has one endpoint in each of 20 tenants: 10,000 endpoints concern it.
//!
//! Reported: time until all agents hold their snapshot and have compiled it; for an endpoint
//! added and for a rule changed, the time until every interested agent has compiled it
//! (p50 / p99), the agents it reached and the bytes sent; netmaster's RSS and CPU; the `big`
//! agent's RSS and its work per remote change; a netmaster restart's reconnect storm.
//!
//! `cargo bench -p systemtests --bench scale` (SCALE_HOSTS, SCALE_CHANGES, SCALE_BACKENDS=
//! embedded,etcd to change the defaults).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testsupport::{free_port, EtcdCluster, TempDir};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use weft_agent::engine::Engine;
use weft_agent::hoststate::HostPorts;
use weft_agent::netmaster::{Netmaster, SharedView};
use weft_api::proto::agent as pb;
use weft_api::proto::agent::agent_service_client::AgentServiceClient;
use weft_controller::store::{Op, Store};

const TENANTS: usize = 200;
const HOSTS_PER_TENANT: usize = 10;
const EPS_PER_TENANT_HOST: usize = 50;
const RULES_PER_TENANT: usize = 50;
const BIG_TENANTS: usize = 20;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The cluster's shape for `hosts` hosts (1,000 by default; smaller for a quick run).
#[derive(Clone, Copy)]
struct Shape {
    hosts: usize,
    tenants: usize,
}

impl Shape {
    fn new(hosts: usize) -> Shape {
        Shape {
            hosts,
            tenants: (hosts * 2 / HOSTS_PER_TENANT).clamp(1, TENANTS),
        }
    }
    /// Networks of tenant t: 500 in all over 200 tenants (3 for even tenants, 2 for odd).
    fn nets(&self, t: usize) -> usize {
        if t.is_multiple_of(2) {
            3
        } else {
            2
        }
    }
    /// The hosts of tenant t.
    fn hosts_of(&self, t: usize) -> Vec<usize> {
        (0..HOSTS_PER_TENANT)
            .map(|k| {
                (t * HOSTS_PER_TENANT / 2 + k * (self.hosts / HOSTS_PER_TENANT).max(1)) % self.hosts
            })
            .collect()
    }
}

fn tenant(t: usize) -> String {
    format!("t{t}")
}

/// The intent: tenants, networks, two groups per network, five policies of ten rules each per
/// tenant, attached to the groups.
fn spec(shape: &Shape) -> serde_json::Value {
    let mut tenants = vec![];
    let mut networks = vec![];
    let mut groups = vec![];
    let mut policies = vec![];
    let mut rules = vec![];
    for t in 0..shape.tenants {
        let tn = tenant(t);
        tenants.push(serde_json::json!({"tenantName": tn}));
        for p in 0..5 {
            policies.push(serde_json::json!({"tenantName": tn, "policyName": format!("p{p}")}));
            for r in 0..RULES_PER_TENANT / 5 {
                let g = format!("g{}", r % (shape.nets(t) * 2));
                let mut rule = serde_json::json!({"tenantName": tn, "policyName": format!("p{p}"),
                    "ruleId": format!("{r}"), "priority": 1 + (r % 10) as u32,
                    "direction": if r % 2 == 0 { "in" } else { "out" },
                    "protocol": "tcp", "port": 1000 + r as u32, "action": "allow"});
                if r % 3 == 0 {
                    rule[if r % 2 == 0 {
                        "fromEndpointGroup"
                    } else {
                        "toEndpointGroup"
                    }] = serde_json::json!(g);
                } else if r % 3 == 1 {
                    rule[if r % 2 == 0 {
                        "fromIpAddress"
                    } else {
                        "toIpAddress"
                    }] = serde_json::json!(format!("192.168.{r}.0/24"));
                }
                rules.push(rule);
            }
        }
        for n in 0..shape.nets(t) {
            networks.push(serde_json::json!({"tenantName": tn, "networkName": format!("n{n}"),
                "encap": "vxlan", "subnet": format!("10.{n}.0.0/16"), "gateway": format!("10.{n}.0.1")}));
            for g in 0..2 {
                groups.push(
                    serde_json::json!({"tenantName": tn, "groupName": format!("g{}", n * 2 + g),
                    "networkName": format!("n{n}"), "policies": [format!("p{}", (n * 2 + g) % 5)],
                    "defaultDeny": g == 0}),
                );
            }
        }
    }
    serde_json::json!({"global": {"vxlans": "1-100000"}, "tenants": tenants, "networks": networks,
        "endpointGroups": groups, "policies": policies, "rules": rules})
}

fn endpoint(id: &str, host: &str, t: usize, n: usize, g: usize, i: usize) -> Vec<u8> {
    let ip = Ipv4Addr::new(10, n as u8, (i / 250 + 1) as u8, (i % 250 + 2) as u8);
    let o = ip.octets();
    serde_json::to_vec(&serde_json::json!({"endpointId": id, "container": id, "host": host,
        "tenantName": tenant(t), "networkName": format!("n{n}"), "groupName": format!("g{g}"),
        "interfaceName": "eth0", "mac": format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]),
        "ipv4": ip.to_string(), "state": "allocated"}))
    .unwrap()
}

/// Writes the intent and the endpoints (records only: the bench measures the watch, not the
/// allocator) straight into the store netmaster will open.
async fn populate(store: Store, shape: &Shape) -> usize {
    let intent = weft_controller::intent::Intent::new(store.clone());
    let spec: weft_api::Spec = serde_json::from_value(spec(shape)).unwrap();
    intent
        .apply(|s| {
            spec.apply_to(s, false)
                .map_err(weft_controller::intent::IntentError::Invalid)
        })
        .await
        .expect("the spec applies");
    let mut ops = vec![];
    let mut n_eps = 0;
    for t in 0..shape.tenants {
        for (k, h) in shape.hosts_of(t).into_iter().enumerate() {
            for e in 0..EPS_PER_TENANT_HOST {
                let i = k * EPS_PER_TENANT_HOST + e;
                let n = i % shape.nets(t);
                let id = format!("e{t}-{i}");
                ops.push(Op::put(
                    format!("/weft/endpoints/{id}"),
                    endpoint(&id, &format!("h{h}"), t, n, n * 2 + i % 2, i),
                ));
            }
        }
    }
    // The big host: one endpoint in each of the first 20 tenants.
    for t in 0..BIG_TENANTS.min(shape.tenants) {
        let id = format!("big-{t}");
        ops.push(Op::put(
            format!("/weft/endpoints/{id}"),
            endpoint(&id, "big", t, 0, 0, 9999),
        ));
    }
    n_eps += ops.len();
    for chunk in ops.chunks(5000) {
        store.txn(vec![], chunk.to_vec(), vec![]).await.unwrap();
    }
    n_eps
}

/// One simulated agent: the real watch, view and engine; every compile reported.
fn spawn_agent(
    url: &str,
    host: String,
    me: usize,
    report: mpsc::UnboundedSender<(usize, i64, Instant, Duration)>,
    cancel: CancellationToken,
) -> SharedView {
    let nm = Netmaster::new(url).unwrap();
    let (view, mut changes) = nm.spawn_watch(host.clone(), cancel.clone());
    let ports = HostPorts {
        host,
        bridge: "br-int".into(),
        uplink_port: None,
        tunnel_port: Some(1),
        gateway_port: None,
    };
    let v = view.clone();
    tokio::spawn(async move {
        let mut engine = Engine::new(ports);
        let empty = BTreeMap::new();
        while let Some(batch) = changes.recv().await {
            let mut batch = batch;
            while let Ok(more) = changes.try_recv() {
                batch.extend(more);
            }
            let t = Instant::now();
            let rev = {
                let view = v.read();
                engine.step(&view, &empty, &batch, &[]);
                view.revision
            };
            let _ = report.send((me, rev, Instant::now(), t.elapsed()));
        }
    });
    view
}

/// How many agents a change reached, and the bytes sent to them, from their counters before
/// and after.
fn reach(before: &[(u64, u64)], after: &[(u64, u64)]) -> (f64, f64) {
    let pairs = || before.iter().zip(after);
    (
        pairs().filter(|(b, a)| a.0 > b.0).count() as f64,
        pairs().map(|(b, a)| (a.1 - b.1) as f64).sum(),
    )
}

fn proc_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// CPU seconds (user + system) a process has used.
fn proc_cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct NetmasterProc {
    child: Child,
    rest: String,
    grpc: String,
}

fn netmaster_bin() -> std::path::PathBuf {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "weft-controller",
            "--bin",
            "netmaster",
        ])
        .status()
        .expect("cargo build netmaster");
    assert!(status.success());
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("netmaster")
}

fn start_netmaster(
    bin: &std::path::Path,
    data: &std::path::Path,
    etcd: &[String],
    ports: (u16, u16),
) -> NetmasterProc {
    let rest = format!("127.0.0.1:{}", ports.0);
    let grpc = format!("127.0.0.1:{}", ports.1);
    let mut cmd = Command::new(bin);
    cmd.arg("--data-dir")
        .arg(data)
        .args(["--listen", &rest, "--grpc-listen", &grpc])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    if !etcd.is_empty() {
        cmd.args(["--etcd", &etcd.join(",")]);
    }
    let child = cmd.spawn().expect("netmaster starts");
    let port = ports.1;
    assert!(
        testsupport::wait_until(Duration::from_secs(60), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "netmaster listens"
    );
    NetmasterProc {
        child,
        rest: format!("http://{rest}"),
        grpc: format!("http://{grpc}"),
    }
}

/// Per-agent compile log: (revision, when) in order.
type Log = Arc<Mutex<Vec<Vec<(i64, Instant)>>>>;

/// When agent `a` first compiled a view at revision `rev` or later.
fn compiled_at(log: &Log, a: usize, rev: i64) -> Option<Instant> {
    log.lock().unwrap()[a]
        .iter()
        .find(|(r, _)| *r >= rev)
        .map(|(_, t)| *t)
}

async fn wait_compiled(
    log: &Log,
    agents: &[usize],
    rev: i64,
    limit: Duration,
) -> Option<Vec<Instant>> {
    let t = Instant::now();
    loop {
        let got: Vec<Option<Instant>> = agents.iter().map(|a| compiled_at(log, *a, rev)).collect();
        if got.iter().all(Option::is_some) {
            return Some(got.into_iter().flatten().collect());
        }
        if t.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn stats_sum(views: &[SharedView]) -> Vec<(u64, u64)> {
    views
        .iter()
        .map(|v| {
            let s = v.stats();
            (s.events, s.bytes)
        })
        .collect()
}

async fn run(backend: &str, shape: Shape, changes: usize, bin: &std::path::Path) {
    println!(
        "\n== {backend}: {} hosts, {} tenants ==",
        shape.hosts, shape.tenants
    );
    let dir = TempDir::new("weft-scale-");
    let cluster = (backend == "etcd").then(|| EtcdCluster::start(3));
    let etcd: Vec<String> = cluster
        .as_ref()
        .map(|c| c.client_urls())
        .unwrap_or_default();
    let t = Instant::now();
    let store = if etcd.is_empty() {
        Store::Embedded(
            weft_controller::store::embedded::Embedded::open(dir.path())
                .await
                .unwrap(),
        )
    } else {
        Store::Etcd(Box::new(
            weft_controller::store::etcd::EtcdStore::connect(&etcd)
                .await
                .unwrap(),
        ))
    };
    let n_eps = populate(store.clone(), &shape).await;
    drop(store);
    println!(
        "store loaded: {n_eps} endpoints in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let ports = (free_port(), free_port());
    let mut nm = start_netmaster(bin, dir.path(), &etcd, ports);
    let pid = nm.child.id();
    println!(
        "netmaster started: RSS {:.0} MB, CPU {:.1} s",
        proc_rss_mb(pid),
        proc_cpu_s(pid)
    );

    // The agents.
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, i64, Instant, Duration)>();
    let log: Log = Arc::new(Mutex::new(vec![vec![]; shape.hosts]));
    let work: Arc<Mutex<Vec<Duration>>> = Arc::default();
    {
        let (log, work) = (log.clone(), work.clone());
        tokio::spawn(async move {
            while let Some((a, rev, at, took)) = rx.recv().await {
                log.lock().unwrap()[a].push((rev, at));
                work.lock().unwrap().push(took);
            }
        });
    }
    let cpu0 = proc_cpu_s(pid);
    let t = Instant::now();
    let views: Vec<SharedView> = (0..shape.hosts)
        .map(|h| spawn_agent(&nm.grpc, format!("h{h}"), h, tx.clone(), cancel.clone()))
        .collect();
    let all: Vec<usize> = (0..shape.hosts).collect();
    let snap = wait_compiled(&log, &all, 1, Duration::from_secs(600))
        .await
        .expect("every agent holds its snapshot");
    let last = snap.iter().max().unwrap().duration_since(t);
    let bytes: u64 = stats_sum(&views).iter().map(|s| s.1).sum();
    println!(
        "snapshot: all {} agents compiled theirs in {:.2} s; {:.1} MB sent ({:.0} kB per agent); netmaster RSS {:.0} MB, CPU {:.1} s",
        shape.hosts,
        last.as_secs_f64(),
        bytes as f64 / 1e6,
        bytes as f64 / 1e3 / shape.hosts as f64,
        proc_rss_mb(pid),
        proc_cpu_s(pid) - cpu0
    );
    work.lock().unwrap().clear();

    // One endpoint added, `changes` times.
    let mut client = AgentServiceClient::connect(nm.grpc.clone()).await.unwrap();
    let mut lat = vec![];
    let mut touched = vec![];
    let mut sent = vec![];
    let cpu0 = proc_cpu_s(pid);
    for c in 0..changes {
        let t_i = c * 7919 % shape.tenants;
        let hosts = shape.hosts_of(t_i);
        let before = stats_sum(&views);
        let start = Instant::now();
        let r = client
            .allocate_endpoint(pb::AllocateEndpointRequest {
                endpoint_id: format!("new-{c}"),
                tenant: tenant(t_i),
                network: "n0".into(),
                host: format!("h{}", hosts[c % hosts.len()]),
                container: format!("new-{c}"),
                interface_name: "eth0".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let done = wait_compiled(&log, &hosts, r.revision, Duration::from_secs(30))
            .await
            .expect("every interested agent compiles the new endpoint");
        lat.push(
            done.iter()
                .max()
                .unwrap()
                .duration_since(start)
                .as_secs_f64()
                * 1e3,
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (t, b) = reach(&before, &stats_sum(&views));
        touched.push(t);
        sent.push(b);
    }
    let cpu = proc_cpu_s(pid) - cpu0;
    let mut w: Vec<f64> = work
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.as_secs_f64() * 1e6)
        .collect();
    println!(
        "endpoint added → every interested agent ({HOSTS_PER_TENANT}) compiled: p50 {:.1} ms, p99 {:.1} ms; agents reached p50 {:.0} (max {:.0}); bytes sent p50 {:.0}; agent work per change p50 {:.0} µs, p99 {:.0} µs; netmaster CPU {:.1} ms per change",
        pct(&mut lat.clone(), 0.5),
        pct(&mut lat, 0.99),
        pct(&mut touched.clone(), 0.5),
        pct(&mut touched, 1.0),
        pct(&mut sent, 0.5),
        pct(&mut w.clone(), 0.5),
        pct(&mut w, 0.99),
        cpu * 1e3 / changes as f64
    );
    work.lock().unwrap().clear();

    // One rule changed, `changes` times (REST): every agent of the tenant compiles it.
    let http = reqwest::Client::new();
    let mut lat = vec![];
    let mut touched = vec![];
    let mut sent = vec![];
    for c in 0..changes {
        let t_i = (c * 104_729 + 3) % shape.tenants;
        let hosts = shape.hosts_of(t_i);
        let port = 20_000 + c as u32;
        let before = stats_sum(&views);
        let start = Instant::now();
        let r = http
            .put(format!("{}/api/v1/rules/{}:p0:1/", nm.rest, tenant(t_i)))
            .json(
                &serde_json::json!({"tenantName": tenant(t_i), "policyName": "p0",
                "ruleId": "1", "priority": 2, "direction": "out", "protocol": "tcp",
                "port": port, "action": "allow", "toIpAddress": "192.168.1.0/24"}),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        // The revision the rule arrived at, as each interested agent saw it.
        let key = format!("{}:p0:1", tenant(t_i));
        let mut revs = vec![];
        for h in &hosts {
            let v = &views[*h];
            let rev = v
                .wait_for(Duration::from_secs(30), |view| {
                    (view.rules.get(&key).map(|r| r.port) == Some(port)).then_some(view.revision)
                })
                .await
                .expect("the rule arrives");
            revs.push(rev);
        }
        let rev = *revs.iter().min().unwrap();
        let done = wait_compiled(&log, &hosts, rev, Duration::from_secs(30))
            .await
            .expect("every interested agent compiles the rule");
        lat.push(
            done.iter()
                .max()
                .unwrap()
                .duration_since(start)
                .as_secs_f64()
                * 1e3,
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (t, b) = reach(&before, &stats_sum(&views));
        touched.push(t);
        sent.push(b);
    }
    let mut w: Vec<f64> = work
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.as_secs_f64() * 1e6)
        .collect();
    println!(
        "rule changed → every interested agent ({HOSTS_PER_TENANT}) compiled: p50 {:.1} ms, p99 {:.1} ms; agents reached p50 {:.0} (max {:.0}); bytes sent p50 {:.0}; agent work per change p50 {:.0} µs, p99 {:.0} µs",
        pct(&mut lat.clone(), 0.5),
        pct(&mut lat, 0.99),
        pct(&mut touched.clone(), 0.5),
        pct(&mut touched, 1.0),
        pct(&mut sent, 0.5),
        pct(&mut w.clone(), 0.5),
        pct(&mut w, 0.99),
    );
    println!(
        "netmaster after the changes: RSS {:.0} MB",
        proc_rss_mb(pid)
    );

    // The big agent, in its own process: RSS and work per remote change.
    big_agent(&nm, &shape, &mut client, changes).await;

    // A netmaster restart: agents resume by revision.
    let before: Vec<_> = views.iter().map(|v| v.stats()).collect();
    let _ = nm.child.kill();
    let _ = nm.child.wait();
    let t = Instant::now();
    nm = start_netmaster(bin, dir.path(), &etcd, ports);
    let started = t.elapsed();
    let t = Instant::now();
    loop {
        let back = views
            .iter()
            .zip(&before)
            .filter(|(v, b)| {
                let s = v.stats();
                s.resumes + s.snapshots > b.resumes + b.snapshots
            })
            .count();
        if back == views.len() || t.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let after: Vec<_> = views.iter().map(|v| v.stats()).collect();
    let resumed = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| a.resumes > b.resumes)
        .count();
    let resnap = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| a.snapshots > b.snapshots)
        .count();
    let bytes: u64 = before
        .iter()
        .zip(&after)
        .map(|(b, a)| a.bytes - b.bytes)
        .sum();
    println!(
        "netmaster restart: up in {:.2} s, then all agents synced again in {:.2} s ({resumed} resumed, {resnap} new snapshots, {:.1} kB sent in all)",
        started.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        bytes as f64 / 1e3
    );
    cancel.cancel();
    let _ = nm.child.kill();
    let _ = nm.child.wait();
}

/// Starts the `big` agent as a child process (this binary, SCALE_CHILD set) and measures it.
async fn big_agent(
    nm: &NetmasterProc,
    shape: &Shape,
    client: &mut AgentServiceClient<tonic::transport::Channel>,
    changes: usize,
) {
    let tenants = BIG_TENANTS.min(shape.tenants);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("SCALE_CHILD", format!("{} big", nm.grpc))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, mut rx) = mpsc::unbounded_channel::<(i64, u64)>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let mut it = line.split_whitespace();
            if let (Some("compiled"), Some(r), Some(us)) = (it.next(), it.next(), it.next()) {
                let _ = tx.send((r.parse().unwrap_or(0), us.parse().unwrap_or(0)));
            }
        }
    });
    rx.recv().await.expect("the big agent compiles");
    tokio::time::sleep(Duration::from_millis(500)).await;
    while rx.try_recv().is_ok() {}
    let rss = proc_rss_mb(pid);
    let cpu0 = proc_cpu_s(pid);
    let mut work = vec![];
    for c in 0..changes {
        let t_i = c % tenants;
        let hosts = shape.hosts_of(t_i);
        let r = client
            .allocate_endpoint(pb::AllocateEndpointRequest {
                endpoint_id: format!("bignews-{c}"),
                tenant: tenant(t_i),
                network: "n1".into(),
                host: format!("h{}", hosts[0]),
                container: format!("bignews-{c}"),
                interface_name: "eth0".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        loop {
            let (rev, us) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("the big agent compiles the change")
                .unwrap();
            work.push(us as f64);
            if rev >= r.revision {
                break;
            }
        }
    }
    let cpu = proc_cpu_s(pid) - cpu0;
    println!(
        "big agent ({} endpoints concern it): RSS {:.1} MB; per remote change: work p50 {:.0} µs, p99 {:.0} µs, process CPU {:.2} ms",
        tenants * HOSTS_PER_TENANT * EPS_PER_TENANT_HOST,
        rss,
        pct(&mut work.clone(), 0.5),
        pct(&mut work, 0.99),
        cpu * 1e3 / changes as f64
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The big agent's process: one simulated agent, each compile printed.
fn child(spec: &str) {
    let (url, host) = spec.split_once(' ').unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _view = spawn_agent(url, host.to_string(), 0, tx, CancellationToken::new());
        while let Some((_, rev, _, took)) = rx.recv().await {
            println!("compiled {rev} {}", took.as_micros());
        }
    });
}

fn main() {
    if let Ok(spec) = std::env::var("SCALE_CHILD") {
        return child(&spec);
    }
    let shape = Shape::new(env_usize("SCALE_HOSTS", 1000));
    let changes = env_usize("SCALE_CHANGES", 100);
    let backends = std::env::var("SCALE_BACKENDS").unwrap_or_else(|_| "embedded,etcd".into());
    let bin = netmaster_bin();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for b in backends.split(',') {
        rt.block_on(run(b, shape, changes, &bin));
    }
}

//! Endpoint attach as a runtime sees it: request to reply, where the reply comes only after the
//! switch confirmed the endpoint's flows. Real netmaster (embedded store), real OVS (userspace
//! datapath), real namespaces and veths; the agent in-process, driven through its endpoint
//! service only. All in one run:
//!
//! 1. **The floor:** what the kernel and ovs-vswitchd alone need per endpoint: a veth made with
//!    its container end directly in the container's namespace under its final name
//!    (`ip link add X type veth peer name eth0 netns NS`) and `ovs-vsctl add-port` (which waits
//!    for ovs-vswitchd), back to back, `FLOOR_N` times (default: `ATTACH_N`, so that both fill
//!    the switch alike; process starts included).
//! 2. **Sequential, flatness:** `ATTACH_N` attaches one after another (p50/p99, and the p50 of
//!    the first and the last `WINDOW` as a ratio: does attach slow down as the host fills?), then
//!    all detached one after another, the same figures.
//! 3. **At once:** `PAR_ROUNDS` rounds of `PAR` concurrent attaches: each request's p50/p99 and
//!    attaches/s (all requests / the rounds' wall time).
//! 4. **Sustained:** `SUSTAINED_N` attaches with `INFLIGHT` in flight at all times: attaches/s
//!    (and the detaches the same way); against ovs-vswitchd's own port-add rate in the same run,
//!    veth ports on a bridge of their own: `OVS_PORTS_N` by OVSDB transactions with `INFLIGHT` in
//!    flight, each confirmed by `cur_cfg` (the `ovsdb` crate, one connection); `OVS_VSCTL_N` by
//!    `INFLIGHT` concurrent `ovs-vsctl add-port` processes (each reads the whole database, so
//!    this slows as the bridge fills: 1,000 took two minutes); `OVS_PORTS_N` in one `ovs-vsctl`
//!    transaction.
//!
//! Every phase starts from a host without endpoints. Run (as root):
//! `cargo bench -p weft-agent --bench attach`; the environment variables above change the sizes
//! (defaults: ATTACH_N=1000 FLOOR_N=ATTACH_N WINDOW=20 PAR=32 PAR_ROUNDS=8 SUSTAINED_N=1000
//! INFLIGHT=32 OVS_PORTS_N=1000 OVS_VSCTL_N=300). On the 2-core VM they took 9 minutes
//! (2026-11-29), most of it the floor and the sequential attaches and detaches, which slow as the
//! switch fills (ovs-vswitchd's own cost, see the floor); smaller ATTACH_N and SUSTAINED_N make a
//! quicker run.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::Host;
use futures::StreamExt;
use testsupport::{Netns, Ovs};
use weft_api::proto::endpoint as pb;

/// One VLAN network large enough for every endpoint of a phase (a /24 holds 253).
const SPEC: &str = r#"{
  "global": { "vlans": "100-199", "vxlans": "5000-5999" },
  "tenants": [ { "tenantName": "blue" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "big", "encap": "vlan", "pktTag": 100,
      "subnet": "10.232.0.0/20", "gateway": "10.232.0.1" }
  ]
}"#;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `p` quantile (nearest rank) of `v`.
fn pct(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn report(what: &str, v: &[Duration]) {
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    println!(
        "{what}: n={} p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  mean {:.1} ms",
        v.len(),
        ms(pct(v, 0.5)),
        ms(pct(v, 0.99)),
        ms(pct(v, 1.0)),
        ms(mean)
    );
}

/// The p50 of the first and of the last `w` of `v` (in the order they ran), and their ratio;
/// then the p50 of each tenth, to show the curve between them.
fn flatness(what: &str, v: &[Duration], w: usize) -> f64 {
    if v.len() < 2 * w || w == 0 {
        println!("{what}: too few ({}) for two windows of {w}", v.len());
        return f64::NAN;
    }
    let (first, last) = (pct(&v[..w], 0.5), pct(&v[v.len() - w..], 0.5));
    let ratio = last.as_secs_f64() / first.as_secs_f64();
    println!(
        "{what}: p50 of 1-{w} {:.1} ms, of {}-{} {:.1} ms: last/first {ratio:.2}",
        ms(first),
        v.len() - w + 1,
        v.len(),
        ms(last)
    );
    if v.len() >= 100 {
        let tenth = v.len() / 10;
        let curve: Vec<String> = (0..10)
            .map(|k| format!("{:.0}", ms(pct(&v[k * tenth..(k + 1) * tenth], 0.5))))
            .collect();
        println!("  p50 of each tenth, ms: {}", curve.join(" "));
    }
    ratio
}

fn req(ns: &Netns, id: &str, ifname: &str) -> pb::AttachRequest {
    pb::AttachRequest {
        container_id: id.into(),
        netns: ns.path().display().to_string(),
        interface_name: ifname.into(),
        tenant: "blue".into(),
        network: "big".into(),
        ..Default::default()
    }
}

/// Runs a command (in the calling thread's namespace: the OVS one), panicking on failure.
fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ip -batch -` with these lines.
fn ip_batch(lines: &[String]) {
    use std::io::Write;
    let mut c = Command::new("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(lines.join("\n").as_bytes())
        .unwrap();
    assert!(c.wait().unwrap().success(), "ip -batch failed");
}

/// `ovs-vsctl` against this OVS, waiting for ovs-vswitchd (no `--no-wait`).
fn vsctl(ovs: &Ovs) -> Command {
    let mut c = Command::new("ovs-vsctl");
    c.arg(format!("--db={}", ovs.db_remote()))
        .arg("--timeout=300");
    c
}

/// A fresh netdev bridge `br-rate` for the port-add rates.
fn new_rate_bridge(ovs: &Ovs) {
    let st = vsctl(ovs)
        .args([
            "add-br",
            "br-rate",
            "--",
            "set",
            "bridge",
            "br-rate",
            "datapath_type=netdev",
        ])
        .status()
        .unwrap();
    assert!(st.success(), "add-br br-rate");
}

/// Removes `br-rate` with its `n` ports (untimed in the figures; printed for information).
fn del_rate_bridge(ovs: &Ovs, n: usize) {
    let t = Instant::now();
    let st = vsctl(ovs).args(["del-br", "br-rate"]).status().unwrap();
    assert!(st.success(), "del-br br-rate");
    println!(
        "  (ovs-vswitchd removed the bridge with {n} ports in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
}

/// `n` namespaces, made on 4 threads.
fn namespaces(n: usize) -> Vec<Netns> {
    let out = Mutex::new(vec![]);
    std::thread::scope(|s| {
        for t in 0..4 {
            let out = &out;
            s.spawn(move || {
                let mine: Vec<Netns> = (t..n).step_by(4).map(|_| Netns::new()).collect();
                out.lock().unwrap().extend(mine);
            });
        }
    });
    out.into_inner().unwrap()
}

/// Waits (up to 10 s) until no endpoint veth is left in the agent's namespace (a detach may
/// return before the kernel has deleted it), so that each phase starts from an empty host.
fn quiesce() {
    let start = Instant::now();
    loop {
        let out = Command::new("ip")
            .args(["-o", "link", "show", "type", "veth"])
            .output()
            .unwrap();
        let left = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.split(": ").nth(1).is_some_and(|n| n.starts_with("wf")))
            .count();
        if left == 0 {
            return;
        }
        if start.elapsed() > Duration::from_secs(10) {
            println!("  (warning: {left} endpoint veths still there 10 s after the detaches)");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Requests with `inflight` in flight at all times; each one's duration and the wall time.
async fn sustained<F, Fut>(n: usize, inflight: usize, f: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let t0 = Instant::now();
    let each: Vec<Duration> = futures::stream::iter(0..n)
        .map(|i| {
            let fut = f(i);
            async move {
                let t = Instant::now();
                fut.await;
                t.elapsed()
            }
        })
        .buffer_unordered(inflight)
        .collect()
        .await;
    (each, t0.elapsed())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let seq_n = env("ATTACH_N", 1000);
    // As many as the sequential attaches, so that both are measured over the same fill.
    let floor_n = env("FLOOR_N", seq_n);
    let window = env("WINDOW", 20);
    let par = env("PAR", 32);
    let par_rounds = env("PAR_ROUNDS", 8);
    let sus_n = env("SUSTAINED_N", 1000);
    let inflight = env("INFLIGHT", 32);
    let ovs_n = env("OVS_PORTS_N", 1000);
    let vsctl_n = env("OVS_VSCTL_N", 300);

    let ovs = Ovs::start();
    // From here on this thread (and every thread it starts) is in the OVS namespace.
    let rt = common::runtime_in(&ovs);
    let t_make = Instant::now();
    let spaces = namespaces(floor_n.max(seq_n).max(par * par_rounds).max(sus_n));
    println!(
        "attach bench: {} namespaces made in {:.1} s; FLOOR_N={floor_n} ATTACH_N={seq_n} \
         WINDOW={window} PAR={par} PAR_ROUNDS={par_rounds} SUSTAINED_N={sus_n} \
         INFLIGHT={inflight} OVS_PORTS_N={ovs_n} OVS_VSCTL_N={vsctl_n}",
        spaces.len(),
        t_make.elapsed().as_secs_f64()
    );
    rt.block_on(async {
        let h = Host::start(&ovs, SPEC).await;

        // 1. The floor, on a bridge of its own in the same ovs-vswitchd.
        ovs.vsctl(&[
            "add-br",
            "br-floor",
            "--",
            "set",
            "bridge",
            "br-floor",
            "datapath_type=netdev",
        ]);
        let mut floor = vec![];
        for (i, ns) in spaces.iter().take(floor_n).enumerate() {
            let x = format!("fl{i}");
            let t = Instant::now();
            sh(&[
                "ip", "link", "add", &x, "type", "veth", "peer", "name", "eth0", "netns",
                ns.name(),
            ]);
            let st = vsctl(&ovs)
                .args(["add-port", "br-floor", &x])
                .status()
                .unwrap();
            assert!(st.success(), "add-port {x}");
            floor.push(t.elapsed());
        }
        report(
            "floor: veth into the netns + ovs-vsctl add-port (waits for vswitchd)",
            &floor,
        );
        let st = vsctl(&ovs).args(["del-br", "br-floor"]).status().unwrap();
        assert!(st.success(), "del-br br-floor");
        ip_batch(
            &(0..floor_n)
                .map(|i| format!("link del fl{i}"))
                .collect::<Vec<_>>(),
        );
        let floor_p50 = pct(&floor, 0.5);
        let floor_flat = flatness("floor", &floor, window);

        // 2. Sequential.
        let mut seq = vec![];
        let t0 = Instant::now();
        for (i, ns) in spaces.iter().take(seq_n).enumerate() {
            let t = Instant::now();
            h.try_attach(req(ns, &format!("s{i}"), "eth0")).await.unwrap();
            seq.push(t.elapsed());
        }
        let seq_wall = t0.elapsed();
        report("attach, sequential", &seq);
        let seq_flat = flatness("attach, sequential", &seq, window);
        if floor.len() == seq.len() && seq.len() >= 100 {
            let tenth = seq.len() / 10;
            let p50 = |v: &[Duration], k: usize| pct(&v[k * tenth..(k + 1) * tenth], 0.5);
            let ratios: Vec<String> = (0..10)
                .map(|k| format!("{:.1}", p50(&seq, k).as_secs_f64() / p50(&floor, k).as_secs_f64()))
                .collect();
            println!("  Weft / floor, p50 of each tenth: {}", ratios.join(" "));
        }
        let mut det = vec![];
        for i in 0..seq_n {
            let t = Instant::now();
            h.detach(&format!("s{i}"), "eth0").await;
            det.push(t.elapsed());
        }
        report("detach, sequential", &det);
        let det_flat = flatness("detach, sequential (host emptying)", &det, window);
        quiesce();

        // 3. PAR at once, in rounds.
        let mut each = vec![];
        let mut walls = Duration::ZERO;
        for r in 0..par_rounds {
            let t0 = Instant::now();
            let done = futures::future::join_all((0..par).map(|k| {
                let rq = req(&spaces[r * par + k], &format!("p{r}-{k}"), "eth1");
                let mut c = h.client.clone();
                async move {
                    let t = Instant::now();
                    c.attach(rq).await.unwrap();
                    t.elapsed()
                }
            }))
            .await;
            walls += t0.elapsed();
            each.extend(done);
        }
        report(&format!("attach, {par} at once (each request)"), &each);
        let par_rate = each.len() as f64 / walls.as_secs_f64();
        println!(
            "attach, {par} at once: {} in {:.2} s of rounds: {par_rate:.1} attaches/s",
            each.len(),
            walls.as_secs_f64()
        );
        let (_, wall) = sustained(par * par_rounds, inflight, |i| {
            let (r, k) = (i / par, i % par);
            let h = &h;
            async move {
                h.detach(&format!("p{r}-{k}"), "eth1").await;
            }
        })
        .await;
        println!("  (detached them, {inflight} in flight, in {:.1} s)", wall.as_secs_f64());
        quiesce();

        // 4. Sustained, INFLIGHT in flight.
        let (sus, sus_wall) = sustained(sus_n, inflight, |i| {
            let rq = req(&spaces[i], &format!("u{i}"), "eth2");
            let mut c = h.client.clone();
            async move {
                c.attach(rq).await.unwrap();
            }
        })
        .await;
        let sus_rate = sus_n as f64 / sus_wall.as_secs_f64();
        report(&format!("attach, {inflight} in flight (each request)"), &sus);
        println!(
            "attach, {inflight} in flight: {sus_n} in {:.1} s: {sus_rate:.1} attaches/s",
            sus_wall.as_secs_f64()
        );
        let (sdet, sdet_wall) = sustained(sus_n, inflight, |i| {
            let h = &h;
            async move {
                h.detach(&format!("u{i}"), "eth2").await;
            }
        })
        .await;
        report(&format!("detach, {inflight} in flight (each request)"), &sdet);
        println!(
            "detach, {inflight} in flight: {sus_n} in {:.1} s: {:.1} detaches/s",
            sdet_wall.as_secs_f64(),
            sus_n as f64 / sdet_wall.as_secs_f64()
        );
        quiesce();

        // ovs-vswitchd's own port-add rate: veth ports on a bridge of their own, three ways.
        ip_batch(
            &(0..ovs_n.max(vsctl_n))
                .map(|i| format!("link add rv{i} type veth peer name rp{i}"))
                .collect::<Vec<_>>(),
        );
        let rv = |i: usize| format!("rv{i}");
        // (a) OVSDB transactions, INFLIGHT in flight, each confirmed by cur_cfg (one
        // connection, the ovsdb crate: no client process per port).
        new_rate_bridge(&ovs);
        let db = ovsdb::Client::connect(&ovs.db_remote()).await.unwrap();
        let (_, wall) = sustained(ovs_n, inflight, |i| {
            let db = &db;
            let spec = ovsdb::vswitch::PortSpec {
                bridge: "br-rate".into(),
                name: rv(i),
                kind: ovsdb::vswitch::PortKind::System,
                tag: None,
                trunks: vec![],
                external_ids: Default::default(),
                ofport_request: None,
            };
            async move {
                ovsdb::vswitch::ensure_port(db, &spec).await.unwrap();
            }
        })
        .await;
        let db_rate = ovs_n as f64 / wall.as_secs_f64();
        println!(
            "ovs-vswitchd: {ovs_n} veth ports by OVSDB transactions, {inflight} in flight, each confirmed: {:.1} s, {db_rate:.1} ports/s",
            wall.as_secs_f64()
        );
        del_rate_bridge(&ovs, ovs_n);
        // (b) INFLIGHT concurrent `ovs-vsctl add-port` processes (each waits for vswitchd).
        new_rate_bridge(&ovs);
        let next = AtomicUsize::new(0);
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..inflight {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= vsctl_n {
                        return;
                    }
                    let st = vsctl(&ovs)
                        .args(["add-port", "br-rate", &rv(i)])
                        .stderr(Stdio::null())
                        .status()
                        .unwrap();
                    assert!(st.success(), "add-port rv{i}");
                });
            }
        });
        let wall = t0.elapsed();
        let vsctl_rate = vsctl_n as f64 / wall.as_secs_f64();
        println!(
            "ovs-vswitchd: {vsctl_n} veth ports by {inflight} concurrent ovs-vsctl add-port: {:.1} s, {vsctl_rate:.1} ports/s",
            wall.as_secs_f64()
        );
        del_rate_bridge(&ovs, vsctl_n);
        // (c) One ovs-vsctl transaction adding them all.
        new_rate_bridge(&ovs);
        let mut one = vsctl(&ovs);
        for i in 0..ovs_n {
            one.args(["--", "add-port", "br-rate", &rv(i)]);
        }
        let t0 = Instant::now();
        assert!(one.status().unwrap().success(), "one transaction of add-ports");
        let wall = t0.elapsed();
        let txn_rate = ovs_n as f64 / wall.as_secs_f64();
        println!(
            "ovs-vswitchd: {ovs_n} veth ports in one ovs-vsctl transaction: {:.2} s, {txn_rate:.0} ports/s",
            wall.as_secs_f64()
        );
        // (Left for the teardown: ovs-vswitchd stops, the namespace with the veths goes.)

        println!("summary:");
        println!(
            "  floor p50 {:.1} ms; Weft sequential attach p50 {:.1} ms = {:.1}x the floor",
            ms(floor_p50),
            ms(pct(&seq, 0.5)),
            pct(&seq, 0.5).as_secs_f64() / floor_p50.as_secs_f64()
        );
        println!(
            "  sequential: {seq_n} attaches in {:.1} s; last/first {window} p50 ratio: attach {seq_flat:.2}, detach {det_flat:.2} (floor {floor_flat:.2})",
            seq_wall.as_secs_f64()
        );
        println!("  {par} at once: {par_rate:.1} attaches/s");
        println!(
            "  sustained ({inflight} in flight): {sus_rate:.1} attaches/s = {:.0}% of ovs-vswitchd's port adds by OVSDB, {inflight} in flight ({db_rate:.1}/s); {:.0}% of {inflight} concurrent ovs-vsctl ({vsctl_rate:.1}/s); {:.1}% of one transaction ({txn_rate:.0}/s)",
            100.0 * sus_rate / db_rate,
            100.0 * sus_rate / vsctl_rate,
            100.0 * sus_rate / txn_rate
        );
    });
}

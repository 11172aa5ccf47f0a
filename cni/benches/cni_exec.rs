//! CNI ADD and DEL as a runtime sees them: from exec of `weft-cni` to its exit, against a real
//! netplugin (one simulated host: Open vSwitch with the userspace datapath, netmaster, agent).
//! 200 pods one after another, then 200 pods with 16 calls at a time. Prints p50/p99/max.
//!
//! `cargo bench -p weft-cni --bench cni_exec` (as root).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use systemtests::Cluster;
use testsupport::{Netns, TempDir};

const PODS: usize = 200;
const CONCURRENCY: usize = 16;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn report(what: &str, v: &mut [Duration], wall: Option<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p99, max) = (pct(v, 0.50), pct(v, 0.99), pct(v, 1.0));
    let extra = wall
        .map(|w| {
            format!(
                ", wall {:.2} s, {:.0} ops/s",
                w.as_secs_f64(),
                v.len() as f64 / w.as_secs_f64()
            )
        })
        .unwrap_or_default();
    println!(
        "{what:<28} n={:<4} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms{extra}",
        v.len(),
        ms(p50),
        ms(p99),
        ms(max)
    );
}

fn timed(call: &Call, stdin: &str) -> Duration {
    let t = Instant::now();
    let a = call.run(stdin);
    let d = t.elapsed();
    assert!(a.ok, "{} failed: {} {}", call.command, a.stdout, a.stderr);
    d
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let cl = Cluster::new(1);
    cl.apply(SPEC);
    let h = &cl.hosts[0];
    let state = TempDir::new("weft-cni-bench-");
    let cf = {
        let mut c = conf("1.1.0", "blue", "web", &h.socket, state.path());
        c["logLevel"] = "error".into();
        c.to_string()
    };
    println!("weft-cni exec-to-exit, {PODS} pods, one host (OVS userspace datapath)");
    let mut v: Vec<Duration> = (0..50)
        .map(|_| timed(&Call::new("VERSION", "", ""), "{\"cniVersion\":\"1.1.0\"}"))
        .collect();
    report("VERSION (process start)", &mut v, None);

    // One after another.
    let pods: Vec<Netns> = (0..PODS).map(|_| Netns::new()).collect();
    let calls: Vec<(Call, Call)> = pods
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            let p = ns.path().display().to_string();
            (
                Call::new("ADD", &format!("seq-{i}"), &p),
                Call::new("DEL", &format!("seq-{i}"), &p),
            )
        })
        .collect();
    let t = Instant::now();
    let mut adds: Vec<Duration> = calls.iter().map(|(a, _)| timed(a, &cf)).collect();
    let add_wall = t.elapsed();
    let t = Instant::now();
    let mut dels: Vec<Duration> = calls.iter().map(|(_, d)| timed(d, &cf)).collect();
    let del_wall = t.elapsed();
    report("ADD sequential", &mut adds, Some(add_wall));
    report("DEL sequential", &mut dels, Some(del_wall));

    // 16 at a time.
    for (label, which) in [("ADD 16 concurrent", 0), ("DEL 16 concurrent", 1)] {
        let next = Arc::new(Mutex::new(0usize));
        let out = Arc::new(Mutex::new(vec![]));
        let calls = Arc::new(
            calls
                .iter()
                .enumerate()
                .map(|(i, (a, d))| {
                    let mut c = if which == 0 { a.clone() } else { d.clone() };
                    c.container = format!("par-{i}");
                    c
                })
                .collect::<Vec<_>>(),
        );
        let t = Instant::now();
        let threads: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let (next, out, calls, cf) = (next.clone(), out.clone(), calls.clone(), cf.clone());
                std::thread::spawn(move || loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        *n - 1
                    };
                    if i >= calls.len() {
                        return;
                    }
                    let d = timed(&calls[i], &cf);
                    out.lock().unwrap().push(d);
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        let wall = t.elapsed();
        report(label, &mut out.lock().unwrap(), Some(wall));
    }
    assert_eq!(container_ports(&h.ovs), Vec::<String>::new(), "ports left");
}

//! Endpoint attach latency as a runtime sees it: request to reply, where the reply comes only
//! after the switch confirmed the endpoint's flows. 200 sequential attaches, then rounds of 16 at
//! once. Real netmaster (embedded store), real OVS (userspace), real namespaces and veths.
//! Run: `cargo bench -p weft-agent --bench attach`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Host, SPEC};
use testsupport::{Netns, Ovs};
use weft_api::proto::endpoint as pb;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, mut v: Vec<Duration>) {
    let n = v.len();
    let mean = v.iter().sum::<Duration>() / n as u32;
    println!(
        "{what}: n={n} p50={:.1} ms p99={:.1} ms max={:.1} ms mean={:.1} ms",
        pct(&mut v, 0.5).as_secs_f64() * 1e3,
        pct(&mut v, 0.99).as_secs_f64() * 1e3,
        pct(&mut v, 1.0).as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3
    );
}

fn req(ns: &Netns, id: &str) -> pb::AttachRequest {
    pb::AttachRequest {
        container_id: id.into(),
        netns: ns.path().display().to_string(),
        interface_name: "eth0".into(),
        tenant: "blue".into(),
        network: "web".into(),
        ..Default::default()
    }
}

fn main() {
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let seq_n: usize = std::env::var("ATTACH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    const ROUNDS: usize = 6;
    const PAR: usize = 16;
    let ovs = Ovs::start();
    let rt = common::runtime_in(&ovs);
    let spaces: Vec<Netns> = (0..seq_n.max(ROUNDS * PAR)).map(|_| Netns::new()).collect();
    rt.block_on(async {
        let h = Host::start(&ovs, SPEC).await;
        // Sequential.
        let mut seq = vec![];
        for (i, ns) in spaces.iter().take(seq_n).enumerate() {
            let t = Instant::now();
            h.try_attach(req(ns, &format!("s{i}"))).await.unwrap();
            seq.push(t.elapsed());
        }
        report("attach, sequential", seq);
        let mut det = vec![];
        for i in 0..seq_n {
            let t = Instant::now();
            h.detach(&format!("s{i}"), "eth0").await;
            det.push(t.elapsed());
        }
        report("detach, sequential", det);

        // 16 at once.
        let mut par = vec![];
        let mut rounds = vec![];
        for r in 0..ROUNDS {
            let t0 = Instant::now();
            let mut tasks = vec![];
            for k in 0..PAR {
                let ns = &spaces[r * PAR + k];
                let rq = req(ns, &format!("p{r}-{k}"));
                let mut c = h.client.clone();
                tasks.push(tokio::spawn(async move {
                    let t = Instant::now();
                    c.attach(rq).await.unwrap();
                    t.elapsed()
                }));
            }
            for t in tasks {
                par.push(t.await.unwrap());
            }
            rounds.push(t0.elapsed());
        }
        report(&format!("attach, {PAR} at once (each request)"), par);
        report(&format!("attach, {PAR} at once (whole round)"), rounds);
        for r in 0..ROUNDS {
            for k in 0..PAR {
                h.detach(&format!("p{r}-{k}"), "eth0").await;
            }
        }
    });
}

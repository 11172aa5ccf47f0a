//! Flow programming rate: 50,000 compiled flows sent by the agent's OpenFlow driver as one
//! bundle, against `ovs-ofctl --bundle add-flows` of the same flows, in the same run, on the same
//! (userspace) Open vSwitch. Run: `cargo bench -p weft-agent --bench flow_rate`.

use std::io::Write;
use std::time::Instant;

use testsupport::Ovs;
use tokio_util::sync::CancellationToken;
use weft_agent::ofdriver::OfDriver;
use weft_policy::{compile, diff, parse_mac, Endpoint, FlowSet, HostState, Network, Segment};

/// 10,000 endpoints in 20 networks: five flows each, plus the networks' and the skeleton's.
fn state(endpoints: u32) -> HostState {
    HostState {
        gateway_port: None,
        other_hosts: vec![],
        service_cidrs: vec![],
        uplink_port: Some(1),
        tunnel_port: None,
        remote_endpoints: vec![],
        networks: (0..20)
            .map(|n| Network {
                subnet: None,
                host_access: false,
                external: false,
                key: format!("t:n{n}"),
                segment: if n % 2 == 0 {
                    Segment::Vlan(100 + n as u16)
                } else {
                    Segment::Vxlan(5000 + n)
                },
                gateway: Some(format!("10.{n}.0.1").parse().unwrap()),
                zone: 1,
            })
            .collect(),
        endpoints: (0..endpoints)
            .map(|i| Endpoint {
                key: format!("ep{i}"),
                network: format!("t:n{}", i % 20),
                ofport: 10 + i,
                mac: parse_mac(&format!(
                    "02:00:00:{:02x}:{:02x}:{:02x}",
                    i >> 16,
                    (i >> 8) & 255,
                    i & 255
                ))
                .unwrap(),
                ipv4: vec![
                    format!("10.{}.{}.{}", i % 20, (i / 250) % 250 + 1, i % 250 + 2)
                        .parse()
                        .unwrap(),
                ],
                ipv6: vec![],
                group: None,
            })
            .collect(),
        ..HostState::default()
    }
}

fn main() {
    let compiled = compile(&state(10_000));
    assert!(
        compiled.problems.is_empty(),
        "{:?}",
        &compiled.problems[..3.min(compiled.problems.len())]
    );
    let want = compiled.flows;
    let n = want.flows.len();
    println!("flows: {n}, groups: {}", want.groups.len());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");

    let mut ours = vec![];
    let mut theirs = vec![];
    for round in 0..3 {
        // Ours: the diff from an empty switch, one bundle, confirmed.
        let secs = rt.block_on(async {
            let cancel = CancellationToken::new();
            let driver = OfDriver::spawn(ovs.mgmt_socket("br-int"), cancel.clone());
            let mut g = driver.generation();
            g.wait_for(|g| *g > 0).await.unwrap();
            let t = Instant::now();
            let msgs = diff(&FlowSet::default(), &want).messages();
            driver.bundle(msgs).await.unwrap();
            let secs = t.elapsed().as_secs_f64();
            let dump = driver.dump().await.unwrap();
            assert_eq!(dump.flows.len(), n);
            cancel.cancel();
            secs
        });
        ours.push(secs);
        ovs.ofctl("del-flows", "br-int", &[]);
        ovs.ofctl("del-groups", "br-int", &[]);

        // Theirs: the same flows as text, `ovs-ofctl --bundle add-flows`.
        let dir = ovs.dir();
        let flows_file = dir.join("flows.txt");
        let groups_file = dir.join("groups.txt");
        let mut f = std::fs::File::create(&flows_file).unwrap();
        for fl in want.flows.values() {
            writeln!(f, "{fl}").unwrap();
        }
        let mut g = std::fs::File::create(&groups_file).unwrap();
        for gr in want.groups.values() {
            writeln!(g, "{gr}").unwrap();
        }
        drop((f, g));
        ovs.ofctl("add-groups", "br-int", &[groups_file.to_str().unwrap()]);
        let t = Instant::now();
        let out = std::process::Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13", "--bundle", "add-flows"])
            .arg(format!("unix:{}", ovs.mgmt_socket("br-int").display()))
            .arg(&flows_file)
            .output()
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let count = ovs.ofctl("dump-aggregate", "br-int", &[]);
        assert!(count.contains(&format!("flow_count={n}")), "{count}");
        theirs.push(secs);
        ovs.ofctl("del-flows", "br-int", &[]);
        ovs.ofctl("del-groups", "br-int", &[]);
        println!(
            "round {round}: weft {:.3} s ({:.0} flows/s), ovs-ofctl --bundle {:.3} s ({:.0} flows/s)",
            ours[round], n as f64 / ours[round], secs, n as f64 / secs
        );
    }
    let best = |v: &[f64]| v.iter().cloned().fold(f64::MAX, f64::min);
    let (o, t) = (best(&ours), best(&theirs));
    println!(
        "best of 3: weft {:.0} flows/s, ovs-ofctl --bundle {:.0} flows/s: weft at {:.0}% of ovs-ofctl",
        n as f64 / o,
        n as f64 / t,
        100.0 * t / o
    );
}

//! Contiv's add/del-endpoint scenario: `two_hosts_multiple_vxlan_nets.json` runs, then
//! `two_hosts_multiple_vxlan_add_del_ep.json` (which names only an existing network) is applied
//! and containers come and go on both hosts, while a pair of other containers pings across hosts
//! at 100/s. No flow the churn does not concern (anything but purple's and the moved endpoint's)
//! is touched on either host (the agents change flows by diff, never by flush), and the pair loses
//! at most one packet per port change and none otherwise, counted step by step (what OVS's
//! userspace datapath still loses then, see the end); what was added reaches its network and
//! nothing else; what was removed is gone everywhere.

use std::path::PathBuf;
use std::time::Duration;

use systemtests::{eventually, reaches, Cluster, Flood};
use testsupport::Netns;

fn example(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/contiv-examples")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn addr(i: &weft_api::proto::endpoint::Interface) -> String {
    i.ipv4.split('/').next().unwrap().to_string()
}

#[test]
fn endpoints_come_and_go_while_traffic_runs() {
    let cluster = Cluster::new(2);
    cluster.apply(&example("two_hosts_multiple_vxlan_nets.json"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (c1, c3, c4) = (Netns::new(), Netns::new(), Netns::new());
    let (i1, i3, i4) = rt.block_on(async {
        let h = &cluster.hosts;
        (
            h[0].attach(&c1, "myContainer1", "tenant-one", "orange", "")
                .await
                .unwrap(),
            h[1].attach(&c3, "myContainer3", "tenant-one", "orange", "")
                .await
                .unwrap(),
            h[1].attach(&c4, "myContainer4", "tenant-one", "purple", "")
                .await
                .unwrap(),
        )
    });
    let (a1, a3, a4) = (addr(&i1), addr(&i3), addr(&i4));
    assert!(
        eventually(Duration::from_secs(10), || reaches(&c1, &a3, 1)),
        "orange across hosts before the churn\n{}",
        cluster.diagnose()
    );

    // Every flow the churn has no business with stays in place: never deleted and added again.
    let ages_before: Vec<_> = cluster.hosts.iter().map(|h| h.flow_ages()).collect();
    let churn_start = std::time::Instant::now();

    // The pair that must not notice anything. (Runs to its end: an interrupted ping counts the
    // packet in flight as lost.)
    let mut flood = Flood::start(&c1, &a3, 25);
    std::thread::sleep(Duration::from_millis(300));

    // Add: the second file names purple (which exists) and puts myContainer2 on host1. Each
    // step's start is noted, to lay the flood's losses beside them.
    let steps = std::cell::RefCell::new(vec![("flood started", now() - 0.3)]);
    let step = |what: &'static str| {
        eprintln!("[{}] {what}", systemtests::unix_now());
        steps.borrow_mut().push((what, now()));
    };
    step("apply the add/del file");
    cluster.apply(&example("two_hosts_multiple_vxlan_add_del_ep.json"));
    step("attach myContainer2 on host1");
    let c2 = Netns::new();
    let i2 = rt
        .block_on(cluster.hosts[0].attach(&c2, "myContainer2", "tenant-one", "purple", ""))
        .unwrap();
    let a2 = addr(&i2);
    assert!(
        eventually(Duration::from_secs(10), || reaches(&c2, &a4, 1)),
        "the added container reaches purple on the other host\n{}",
        cluster.diagnose()
    );
    assert!(reaches(&c4, &a2, 1), "and is reached from there");
    // Purple and orange are networks of one tenant: routed between (docs/pipeline.md).
    assert!(
        eventually(Duration::from_secs(10), || reaches(&c2, &a1, 1)),
        "purple reaches orange, routed within the tenant"
    );

    // Delete: myContainer4 leaves host2; its address stops answering from host1.
    step("detach myContainer4 on host2");
    let removed = rt
        .block_on(cluster.hosts[1].detach("myContainer4"))
        .unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(
        eventually(Duration::from_secs(10), || !reaches(&c2, &a4, 1)),
        "a detached endpoint is gone from the other host's switch"
    );
    let flows = cluster.hosts[0].ovs.ofctl("dump-flows", "br-int", &[]);
    let mac4 = i4.mac.to_lowercase();
    assert!(
        !flows.contains(&mac4),
        "host1 still has flows for {mac4}:\n{flows}"
    );

    // And comes back on host1 (another host, another port): found there.
    let c4b = Netns::new();
    step("attach myContainer4 on host1");
    let i4b = rt
        .block_on(cluster.hosts[0].attach(&c4b, "myContainer4", "tenant-one", "purple", ""))
        .unwrap();
    let a4b = addr(&i4b);
    assert!(
        eventually(Duration::from_secs(10), || reaches(&c2, &a4b, 1)),
        "the moved container is reached on its new host"
    );
    assert!(
        eventually(Duration::from_secs(10), || reaches(&c3, &a4b, 1)),
        "orange reaches purple on its new host, routed within the tenant"
    );

    assert!(
        flood.running(),
        "the churn took longer than the flood that should cover it"
    );
    step("churn over");
    // The churn concerns purple (its segment: classifier, flooding, forwarding, ARP answers) and
    // the endpoints that came and went (myContainer4's MAC and address; the added ones have no
    // flow before). Every other flow that was there before is there after, not replaced (its
    // age went on): in particular all of orange, where the flood runs.
    let churn = churn_start.elapsed().as_secs_f64();
    let purple = cluster.get("/api/v1/networks/tenant-one:purple/");
    let vni = purple
        .split("\"pktTag\":")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("purple's packet tag: {purple}"));
    let mentions = |flow: &str, word: &str| {
        flow.match_indices(word).any(|(i, _)| {
            !flow[i + word.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_hexdigit())
        })
    };
    let concerns = |flow: &str| {
        [
            format!("reg5={vni:#x}"),
            format!("{vni:#x}->reg5"),
            format!("tun_id={vni:#x}"),
            format!("{vni:#x}->tun_id"),
            format!("group:{vni}"),
            format!("group:{}", vni | 1 << 30),
        ]
        .iter()
        .any(|w| mentions(flow, w))
            || mentions(flow, &mac4)
            || mentions(flow, &format!("{a4},"))
            || flow.ends_with(&a4)
            || mentions(flow, &format!("{a4} "))
    };
    for (h, before) in cluster.hosts.iter().zip(&ages_before) {
        let after = h.flow_ages();
        let mut kept = 0;
        for (flow, age) in before.iter().filter(|(f, _)| !concerns(f)) {
            let now = after.get(flow).unwrap_or_else(|| {
                panic!(
                    "{}: a flow the churn does not concern is gone: {flow}",
                    h.name
                )
            });
            kept += 1;
            assert!(
                *now + 0.5 >= age + churn,
                "{}: a flow the churn did not concern was replaced (age {age:.1}s before, \
                 {now:.1}s after {churn:.1}s): {flow}",
                h.name
            );
        }
        assert!(kept > 10, "{}: only {kept} flows kept", h.name);
    }

    let (sent, got, lost) = flood.finish_with_losses();
    assert!(sent > 100, "the flood ran ({sent} sent)");
    // Losses, step by step. Each endpoint change is a link change in its host, and OVS (3.1,
    // userspace datapath) then rereads its cached routes; a tunnel flow revalidated meanwhile
    // could become `drop`. The agent leaves the tunnel's source open so that no longer happens
    // (see bridge::ensure_tunnel), but a reply is still lost now and then on the host being
    // changed (measured: 0 to 2 per 24 endpoint changes there, cause not found). So: at most one
    // per port change, none in any other step.
    let steps = steps.into_inner();
    let mut report = vec![];
    let mut over = false;
    for (i, (what, at)) in steps.iter().enumerate() {
        let end = steps.get(i + 1).map_or(f64::MAX, |(_, t)| *t);
        let n = lost.iter().filter(|t| **t >= *at && **t < end).count();
        let budget = usize::from(what.starts_with("attach") || what.starts_with("detach"));
        over |= n > budget;
        report.push(format!("{what}: {n} lost (at most {budget})"));
    }
    let early = lost.iter().filter(|t| **t < steps[0].1).count();
    over |= early > 0;
    assert!(
        !over,
        "{} of {sent} packets lost between myContainer1 and myContainer3 while others came and \
         went ({early} before the first step):\n{}",
        sent - got,
        report.join("\n")
    );
    eprintln!(
        "flood: {sent} sent, {got} received; churn of 3 endpoints across 2 hosts\n{}",
        report.join("\n")
    );
}

/// Now, as unix time in seconds.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

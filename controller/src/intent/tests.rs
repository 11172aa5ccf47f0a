//! Incremental validation agrees with whole-state validation: random single-object changes
//! over a small universe of names (so that they collide, name each other and go missing) are
//! judged by `validate_edit` through netmaster's index and by `validate_state` on the whole
//! resulting state; both must give the same errors, in the same order. Accepted changes are
//! applied, so the state grows and stays valid; the index must equal one built from scratch.
//! The same changes then go through `Intent` on the embedded store (tags resolved, commits,
//! a second netmaster reading them back).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use weft_api::state::{Edit, Kind, Object};
use weft_api::validate::validate_edit;
use weft_api::*;

use super::index::Index;
use super::{resolve_tags, Intent, IntentError};

fn pick<T: Clone + std::fmt::Debug + 'static>(v: &[T]) -> impl Strategy<Value = T> {
    proptest::sample::select(v.to_vec())
}

/// One of `good` mostly, one of `bad` now and then.
fn mostly<T: Clone + std::fmt::Debug + 'static>(good: &[T], bad: &[T]) -> impl Strategy<Value = T> {
    prop_oneof![9 => pick(good), 1 => pick(bad)]
}

fn tenant_name() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => pick(&["a", "b", "c"]).prop_map(String::from),
        1 => Just("bad!".to_string()),
    ]
}

fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("test objects parse")
}

fn network() -> impl Strategy<Value = Object> {
    (
        tenant_name(),
        pick(&["n1", "n2", "n3", "n4"]),
        pick(&["vlan", "vxlan"]),
        mostly(&[0u32, 0, 1, 2, 100, 150, 5000, 5001], &[4095, 0x100_0000]),
        pick(&[
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.1.0/24",
            "10.1.1.128/25",
            "10.2.0.0/16",
            "10.96.0.0/16",
            "192.168.0.0/24",
        ]),
        mostly(&[0u8, 1], &[2, 3]),
        any::<bool>(),
        mostly(&[0u8], &[1]),
    )
        .prop_map(|(t, n, encap, tag, subnet, gw, host, v6)| {
            let net: ipnet::Ipv4Net = subnet.parse().unwrap();
            let mut v = json!({"tenantName": t, "networkName": n, "encap": encap,
                               "pktTag": tag, "subnet": subnet, "hostAccess": host});
            match gw {
                1 => v["gateway"] = json!(std::net::Ipv4Addr::from(u32::from(net.network()) + 1)),
                2 => v["gateway"] = json!("172.16.0.1"),
                3 => v["gateway"] = json!(net.network()),
                _ => {}
            }
            if v6 == 1 {
                v["ipv6Gateway"] = json!("fd00::1");
            }
            Object::Network(obj(v))
        })
}

fn group() -> impl Strategy<Value = Object> {
    (
        tenant_name(),
        pick(&["g1", "g2", "g3"]),
        mostly(&["n1", "n2", "n3", "n4"], &["n5"]),
        proptest::sample::subsequence(vec!["p1", "p2", "p3"], 0..=2),
        mostly(&[None, Some("np1")], &[Some("np2")]),
        mostly(
            &[
                None,
                None,
                Some("10.1.1.10-10.1.1.20"),
                Some("10.2.0.1-10.2.0.9"),
            ],
            &[Some("x")],
        ),
    )
        .prop_map(|(t, g, n, pols, np, pool)| {
            let mut v =
                json!({"tenantName": t, "groupName": g, "networkName": n, "policies": pols});
            if let Some(np) = np {
                v["netProfile"] = json!(np);
            }
            if let Some(p) = pool {
                v["ipPool"] = json!(p);
            }
            Object::Group(obj(v))
        })
}

fn policy() -> impl Strategy<Value = Object> {
    (tenant_name(), mostly(&["p1", "p2", "p3"], &["bad name"]))
        .prop_map(|(t, p)| Object::Policy(obj(json!({"tenantName": t, "policyName": p}))))
}

fn netprofile() -> impl Strategy<Value = Object> {
    (
        tenant_name(),
        pick(&["np1", "np2"]),
        mostly(&[0u32, 10], &[70]),
        mostly(&[None, Some("10Mbps")], &[Some("10furlongs")]),
    )
        .prop_map(|(t, p, dscp, bw)| {
            let mut v = json!({"tenantName": t, "profileName": p, "DSCP": dscp});
            if let Some(bw) = bw {
                v["bandwidth"] = json!(bw);
            }
            Object::NetProfile(obj(v))
        })
}

fn rule() -> impl Strategy<Value = Object> {
    (
        tenant_name(),
        pick(&["p1", "p2", "p3"]),
        pick(&["r1", "r2"]),
        mostly(&[5u32, 50], &[0, 101]),
        pick(&["", "g1", "g2", "g3"]),
        mostly(&["", "", "n1", "n2"], &["n5"]),
        mostly(&["", "", "", "10.0.0.0/8"], &["nonsense"]),
        pick(&["", "tcp", "icmp"]),
        mostly(&[0u32, 0, 80], &[70000]),
    )
        .prop_map(|(t, p, r, prio, from_g, to_n, from_ip, proto, port)| {
            // A port only with tcp, mostly.
            let port = if proto == "tcp" || port == 70000 || r == "r2" {
                port
            } else {
                0
            };
            Object::Rule(obj(json!({"tenantName": t, "policyName": p, "ruleId": r,
                "priority": prio, "fromEndpointGroup": from_g, "toNetwork": to_n,
                "fromIpAddress": from_ip, "protocol": proto, "port": port})))
        })
}

fn app_profile() -> impl Strategy<Value = Object> {
    (
        tenant_name(),
        proptest::sample::subsequence(vec!["g1", "g2", "g3"], 0..=2),
    )
        .prop_map(|(t, gs)| {
            Object::AppProfile(obj(
                json!({"tenantName": t, "appProfileName": "app", "endpointGroups": gs}),
            ))
        })
}

fn pod_attachment() -> impl Strategy<Value = Object> {
    (
        pick(&["pod1", "pod2"]),
        proptest::collection::vec(
            (
                tenant_name(),
                mostly(&["n1", "n2"], &["n5"]),
                mostly(&["eth0", "net1"], &["bad name"]),
                pick(&[None, Some("10.1.1.5"), Some("10.2.0.5")]),
                any::<bool>(),
            ),
            0..3,
        ),
    )
        .prop_map(|(pod, atts)| {
            let atts: Vec<Value> = atts
                .into_iter()
                .map(|(t, n, ifn, ip, master)| {
                    let mut v =
                        json!({"tenantName": t, "networkName": n, "ifName": ifn, "master": master});
                    if let Some(ip) = ip {
                        v["ipAddress"] = json!(ip);
                    }
                    v
                })
                .collect();
            Object::PodAttachment(obj(
                json!({"podNamespace": "ns", "podName": pod, "attachments": atts}),
            ))
        })
}

fn tenant() -> impl Strategy<Value = Object> {
    tenant_name().prop_map(|t| Object::Tenant(obj(json!({"tenantName": t}))))
}

fn global() -> impl Strategy<Value = Object> {
    (
        mostly(&["1-4094", "1-100", "2-3,100-200"], &["0-5000"]),
        pick(&["1-10000", "5000-6000", "1-1", "5001-5001,1-2"]),
        mostly(&["bridge", "routing"], &["bogus"]),
        pick(&[
            vec![],
            vec!["10.96.0.0/12"],
            vec!["10.1.0.0/16"],
            vec!["10.1.0.1/16", "192.168.0.0/16"],
        ]),
    )
        .prop_map(|(vlans, vxlans, fwd, cidrs)| {
            Object::Global(obj(json!({"vlans": vlans, "vxlans": vxlans,
                                      "fwdMode": fwd, "serviceCidrs": cidrs})))
        })
}

fn deletion() -> impl Strategy<Value = Edit> {
    (
        pick(&[
            Kind::Tenant,
            Kind::Network,
            Kind::Group,
            Kind::NetProfile,
            Kind::Policy,
            Kind::Rule,
            Kind::AppProfile,
            Kind::PodAttachment,
        ]),
        pick(&["a", "b", "c"]),
        pick(&["1", "2", "3"]),
    )
        .prop_map(|(kind, t, i)| {
            let key = match kind {
                Kind::Tenant => t.to_string(),
                Kind::Network => format!("{t}:n{i}"),
                Kind::Group => format!("{t}:g{i}"),
                Kind::NetProfile => format!("{t}:np{i}"),
                Kind::Policy => format!("{t}:p{i}"),
                Kind::Rule => format!("{t}:p{i}:r1"),
                Kind::AppProfile => format!("{t}:app"),
                Kind::PodAttachment => format!("ns:pod{i}"),
                Kind::Global => unreachable!(),
            };
            Edit::Delete(kind, key)
        })
}

/// Creates weighted towards what others name (tenants, networks, policies), so the state grows.
fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => tenant().prop_map(Edit::Put),
        6 => network().prop_map(Edit::Put),
        4 => policy().prop_map(Edit::Put),
        2 => netprofile().prop_map(Edit::Put),
        4 => group().prop_map(Edit::Put),
        4 => rule().prop_map(Edit::Put),
        2 => app_profile().prop_map(Edit::Put),
        2 => pod_attachment().prop_map(Edit::Put),
        1 => global().prop_map(Edit::Put),
        4 => deletion(),
    ]
}

fn rebuilt(s: &State) -> Index {
    let mut ix = Index::default();
    ix.put(Object::Global(s.global.clone()));
    for o in s.objects() {
        ix.put(o);
    }
    ix
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn incremental_validation_agrees_with_whole_state_validation(
        edits in proptest::collection::vec(edit(), 1..400)
    ) {
        let mut ix = Index::default();
        let mut state = State::default();
        let mut accepted = 0;
        for edit in &edits {
            if let Edit::Delete(kind, key) = edit {
                if state.object(*kind, key).is_none() {
                    continue; // netmaster answers 404 before validating
                }
            }
            let mut after = state.clone();
            after.apply(edit);
            let whole = validate_state(&after);
            let incremental = validate_edit(&ix, edit);
            prop_assert_eq!(&incremental, &whole, "{:?}", edit);
            // The reference implementation of the indexes (scans of the state) agrees too.
            prop_assert_eq!(&validate_edit(&state, edit), &whole, "{:?}", edit);
            if whole.is_ok() {
                ix.apply(edit);
                state = after;
                accepted += 1;
            }
        }
        prop_assert_eq!(&ix.state, &state);
        prop_assert_eq!(&ix, &rebuilt(&state), "the index kept by changes is the index built from scratch");
        prop_assert!(accepted > 0 || edits.len() < 20, "nothing was accepted");
    }
}

/// The same random changes through `Intent` and the embedded store: every answer is the one
/// whole-state validation (and whole-state tag resolution) gives; what is committed is what a
/// second netmaster reads.
#[tokio::test(flavor = "multi_thread")]
async fn random_changes_through_the_store_are_judged_as_the_whole_state_would_be() {
    let dir = testsupport::TempDir::new("weft-intent-");
    let store = crate::store::Store::Embedded(
        crate::store::embedded::Embedded::open(dir.path())
            .await
            .unwrap(),
    );
    let intent = Intent::new(store.clone());
    let mut runner = TestRunner::deterministic();
    let strategy = edit();
    let mut mirror = State::default();
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..600 {
        let edit = strategy.new_tree(&mut runner).unwrap().current();
        // What whole-state judgement says: 404, tag resolution, validation.
        let expected: Result<State, String> = match &edit {
            Edit::Delete(kind, key) if mirror.object(*kind, key).is_none() => {
                Err(format!("{} \"{key}\" not found", kind.as_str()))
            }
            _ => {
                let mut after = mirror.clone();
                after.apply(&edit);
                match resolve_tags(&mirror, &mut after) {
                    Err(e) => Err(e.to_string()),
                    Ok(()) => validate_state(&after)
                        .map(|_| after)
                        .map_err(|e| e.to_string()),
                }
            }
        };
        let got = match &edit {
            Edit::Put(o) => intent.put(o.clone()).await.map(|_| ()),
            Edit::Delete(kind, key) => intent.delete(*kind, key).await,
        };
        match (got, expected) {
            (Ok(()), Ok(after)) => {
                mirror = after;
                ok += 1;
            }
            (Err(e), Err(want)) => {
                assert!(
                    !matches!(e, IntentError::Store(_)),
                    "{edit:?}: store error {e}"
                );
                assert_eq!(e.to_string(), want, "{edit:?}");
                refused += 1;
            }
            (got, want) => {
                panic!("{edit:?}: netmaster said {got:?}, whole-state judgement {want:?}")
            }
        }
        assert_eq!(intent.load().await.unwrap().0, mirror, "after {edit:?}");
    }
    assert!(
        ok > 100 && refused > 100,
        "{ok} accepted, {refused} refused"
    );
    // A second netmaster on the same store reads exactly that.
    let other = Intent::new(store);
    assert_eq!(other.load().await.unwrap().0, mirror);
}

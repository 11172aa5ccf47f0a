//! The intent model: every validation rule refuses what it should, with a message naming object
//! and field, and accepts the corrected input; every example spec and every Contiv intent file is
//! accepted; plans come in dependency order.

use std::path::PathBuf;

use weft_api::contiv::ContivIntent;
use weft_api::*;

fn spec(json: &str) -> Spec {
    Spec::from_json(json).unwrap()
}

/// The spec's state must fail validation with an error mentioning every one of `needles`.
fn refused(json: &str, needles: &[&str]) {
    let errs = match spec(json).to_state() {
        Err(e) => e,
        Ok(s) => validate_state(&s).expect_err("expected a validation error"),
    };
    let text = errs.to_string();
    for n in needles {
        assert!(text.contains(n), "error {text:?} does not mention {n:?}");
    }
}

fn accepted(json: &str) -> State {
    let s = spec(json).to_state().unwrap();
    validate_state(&s).unwrap_or_else(|e| panic!("{e}"));
    s
}

const BASE: &str =
    r#""tenants": [{"tenantName": "blue"}], "global": {"vlans": "100-200", "vxlans": "5000-6000"}"#;

fn with(rest: &str) -> String {
    format!("{{{BASE}, {rest}}}")
}

#[test]
fn bad_cidr_is_refused_where_it_is() {
    let e = Spec::from_json(&with(
        r#""networks": [{"tenantName": "blue", "networkName": "n", "subnet": "11.1.0.0/33"}]"#,
    ))
    .unwrap_err();
    assert!(
        e.contains("11.1.0.0/33") && e.contains("not a valid IPv4 CIDR") && e.contains("line"),
        "{e}"
    );
    accepted(&with(
        r#""networks": [{"tenantName": "blue", "networkName": "n", "subnet": "11.1.0.0/24"}]"#,
    ));
}

#[test]
fn gateway_outside_its_subnet() {
    refused(
        &with(
            r#""networks": [{"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24", "gateway": "10.2.0.1"}]"#,
        ),
        &[
            "network \"blue:n\"",
            "gateway",
            "10.2.0.1 is outside subnet 10.1.0.0/24",
        ],
    );
    refused(
        &with(
            r#""networks": [{"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24", "gateway": "10.1.0.255"}]"#,
        ),
        &["broadcast"],
    );
    accepted(&with(
        r#""networks": [{"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1"}]"#,
    ));
}

#[test]
fn overlapping_subnets_within_a_tenant_but_not_across() {
    refused(
        &with(
            r#""networks": [
            {"tenantName": "blue", "networkName": "a", "subnet": "10.1.0.0/16"},
            {"tenantName": "blue", "networkName": "b", "subnet": "10.1.5.0/24"}]"#,
        ),
        &["subnet", "overlaps 10.1.0.0/16 of network \"blue:a\""],
    );
    accepted(&format!(
        "{{{}, {}}}",
        r#""tenants": [{"tenantName": "blue"}, {"tenantName": "red"}]"#,
        r#""networks": [
            {"tenantName": "blue", "networkName": "a", "subnet": "10.1.0.0/16"},
            {"tenantName": "red", "networkName": "a", "subnet": "10.1.0.0/16"}]"#
    ));
}

const TWO_TENANTS: &str = r#""tenants": [{"tenantName": "blue"}, {"tenantName": "red"}]"#;

#[test]
fn host_access_subnets_overlap_nowhere() {
    // Two host-access networks in different tenants with overlapping subnets.
    refused(
        &format!(
            "{{{TWO_TENANTS}, {}}}",
            r#""networks": [
            {"tenantName": "blue", "networkName": "web", "subnet": "10.1.0.0/16", "hostAccess": true},
            {"tenantName": "red", "networkName": "web", "subnet": "10.1.5.0/24", "hostAccess": true}]"#
        ),
        &[
            "network \"red:web\": subnet: 10.1.5.0/24 overlaps 10.1.0.0/16 of network \"blue:web\"",
            "both have hostAccess",
            "one routing table",
        ],
    );
    // Within one tenant the usual overlap error says it, once.
    let errs = validate_state(
        &spec(&with(
            r#""networks": [
            {"tenantName": "blue", "networkName": "a", "subnet": "10.1.0.0/16", "hostAccess": true},
            {"tenantName": "blue", "networkName": "b", "subnet": "10.1.5.0/24", "hostAccess": true}]"#,
        ))
        .to_state()
        .unwrap(),
    )
    .unwrap_err();
    assert_eq!(errs.0.len(), 1, "{errs}");
    assert!(errs.to_string().contains("in the same tenant"), "{errs}");
    // Overlapping across tenants is fine when at most one of them has hostAccess: `external`
    // alone puts no subnet in the hosts' routing tables.
    accepted(&format!(
        "{{{TWO_TENANTS}, {}}}",
        r#""networks": [
            {"tenantName": "blue", "networkName": "web", "subnet": "10.1.0.0/16", "hostAccess": true, "external": true},
            {"tenantName": "red", "networkName": "web", "subnet": "10.1.0.0/16", "external": true},
            {"tenantName": "red", "networkName": "db", "subnet": "10.2.0.0/24", "hostAccess": true}]"#
    ));
}

#[test]
fn service_cidrs_stay_clear_of_host_access_subnets() {
    let g = |cidrs: &str| {
        format!(
            r#"{{"tenants": [{{"tenantName": "blue"}}], "global": {{"serviceCidrs": [{cidrs}]}},
                "networks": [{{"tenantName": "blue", "networkName": "web", "subnet": "10.96.1.0/24", "hostAccess": true}},
                             {{"tenantName": "blue", "networkName": "lab", "subnet": "10.97.0.0/24"}}]}}"#
        )
    };
    refused(
        &g(r#""10.96.0.0/12""#),
        &[
            "global \"global\": serviceCidrs: 10.96.0.0/12 overlaps subnet 10.96.1.0/24 of hostAccess network \"blue:web\"",
        ],
    );
    refused(
        &g(r#""10.100.0.1/16""#),
        &["serviceCidrs: 10.100.0.1/16 has host bits set; write 10.100.0.0/16"],
    );
    let e = Spec::from_json(&g(r#""10.100.0.0/33""#)).unwrap_err();
    assert!(
        e.contains("serviceCidrs") && e.contains("10.100.0.0/33"),
        "{e}"
    );
    // A network the hosts do not route may overlap a service range.
    let s = accepted(&g(r#""10.97.0.0/16", "10.100.0.0/16""#));
    assert_eq!(s.global.service_cidrs.len(), 2);
}

#[test]
fn host_access_fields_round_trip_and_plan_as_changes() {
    // Absent when false: existing JSON is unchanged.
    let plain: Network = serde_json::from_str(
        r#"{"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24"}"#,
    )
    .unwrap();
    assert!(!plain.host_access && !plain.external);
    let v = serde_json::to_value(&plain).unwrap();
    assert!(
        v.get("hostAccess").is_none() && v.get("external").is_none(),
        "{v}"
    );
    let v = serde_json::to_value(Global::default()).unwrap();
    assert!(v.get("serviceCidrs").is_none(), "{v}");
    // Present when true, under their JSON names.
    let mut n = plain.clone();
    n.host_access = true;
    n.external = true;
    let v = serde_json::to_value(&n).unwrap();
    assert_eq!(
        (&v["hostAccess"], &v["external"]),
        (&serde_json::json!(true), &serde_json::json!(true))
    );
    assert_eq!(serde_json::from_value::<Network>(v).unwrap(), n);
    let g = Global {
        service_cidrs: vec!["10.96.0.0/12".parse().unwrap()],
        ..Global::default()
    };
    let v = serde_json::to_value(&g).unwrap();
    assert_eq!(v["serviceCidrs"], serde_json::json!(["10.96.0.0/12"]));
    assert_eq!(serde_json::from_value::<Global>(v).unwrap(), g);
    // Turning one on is an update of the network; setting service ranges one of the global.
    let before = accepted(&with(
        r#""networks": [{"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24"}]"#,
    ));
    let mut after = before.clone();
    after.networks.get_mut("blue:n").unwrap().host_access = true;
    after.global.service_cidrs = g.service_cidrs.clone();
    assert_eq!(
        plan(&before, &after).unwrap(),
        vec![
            Change::Update {
                kind: "global",
                key: "global".into()
            },
            Change::Update {
                kind: "network",
                key: "blue:n".into()
            },
        ]
    );
}

#[test]
fn packet_tags_in_range_and_unique() {
    refused(
        &with(
            r#""networks": [{"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24", "pktTag": 300}]"#,
        ),
        &["pktTag", "VLAN id 300 is outside the global range 100-200"],
    );
    refused(
        &with(
            r#""networks": [{"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24", "pktTag": 4095}]"#,
        ),
        &["VLAN id 4095 is outside 1-4094"],
    );
    refused(
        &with(
            r#""networks": [{"tenantName": "blue", "networkName": "n", "encap": "vxlan", "subnet": "10.1.0.0/24", "pktTag": 16777216}]"#,
        ),
        &["VNI 16777216 is outside 1-16777215"],
    );
    refused(
        &with(
            r#""networks": [
            {"tenantName": "blue", "networkName": "a", "subnet": "10.1.0.0/24", "pktTag": 150},
            {"tenantName": "blue", "networkName": "b", "subnet": "10.2.0.0/24", "pktTag": 150}]"#,
        ),
        &["VLAN id 150 is already used by network \"blue:a\""],
    );
    // The same number as a VLAN and as a VNI is fine.
    accepted(&format!(
        "{{{}, {}}}",
        r#""tenants": [{"tenantName": "blue"}], "global": {"vlans": "100-200", "vxlans": "100-200"}"#,
        r#""networks": [
            {"tenantName": "blue", "networkName": "a", "subnet": "10.1.0.0/24", "pktTag": 150},
            {"tenantName": "blue", "networkName": "b", "encap": "vxlan", "subnet": "10.2.0.0/24", "pktTag": 150}]"#
    ));
}

#[test]
fn references_must_exist() {
    refused(
        &with(
            r#""networks": [{"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24"}],
            "policies": [{"tenantName": "blue", "policyName": "p"}],
            "rules": [{"tenantName": "blue", "policyName": "p", "ruleId": "1", "fromEndpointGroup": "ghost"}]"#,
        ),
        &[
            "rule \"blue:p:1\"",
            "fromEndpointGroup",
            "endpoint group \"ghost\" does not exist",
        ],
    );
    refused(
        &with(
            r#""endpointGroups": [{"tenantName": "blue", "groupName": "g", "networkName": "nope"}]"#,
        ),
        &[
            "endpointGroup \"blue:g\"",
            "network \"blue:nope\" does not exist",
        ],
    );
    refused(
        r#"{"networks": [{"tenantName": "ghost", "networkName": "n", "subnet": "10.1.0.0/24"}]}"#,
        &["tenant \"ghost\" does not exist"],
    );
}

#[test]
fn rule_fields_are_checked() {
    let rule = |fields: &str| {
        with(&format!(
            r#""policies": [{{"tenantName": "blue", "policyName": "p"}}],
               "rules": [{{"tenantName": "blue", "policyName": "p", "ruleId": "1", {fields}}}]"#
        ))
    };
    refused(
        &rule(r#""priority": 101"#),
        &["priority", "101 is outside 1-100"],
    );
    refused(
        &rule(r#""protocol": "icmp", "port": 80"#),
        &["a port needs protocol tcp or udp"],
    );
    refused(
        &rule(r#""protocol": "tcp", "port": 90, "portEnd": 80"#),
        &["portEnd", "80 is below port 90"],
    );
    refused(
        &rule(r#""fromIpAddress": "10.0.0.0/40""#),
        &["fromIpAddress", "not an IPv4 address or CIDR"],
    );
    accepted(&rule(
        r#""priority": 100, "protocol": "tcp", "port": 80, "portEnd": 90, "fromIpAddress": "10.0.0.0/8", "action": "deny""#,
    ));
    let e = Spec::from_json(&rule(r#""protocol": "sctpx""#)).unwrap_err();
    assert!(e.contains("protocol \"sctpx\""), "{e}");
}

#[test]
fn unknown_fields_and_duplicates() {
    let e = Spec::from_json(&with(r#""networks": [{"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24", "colour": "red"}]"#)).unwrap_err();
    assert!(e.contains("unknown field `colour`"), "{e}");
    refused(
        &with(
            r#""networks": [
            {"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24"},
            {"tenantName": "blue", "networkName": "n", "subnet": "10.2.0.0/24"}]"#,
        ),
        &["network \"blue:n\"", "named twice"],
    );
    refused(
        r#"{"tenants": [{"tenantName": "a:b"}]}"#,
        &["tenantName", "has ':'"],
    );
}

#[test]
fn netprofile_dscp_and_bandwidth() {
    refused(
        &with(r#""netprofiles": [{"tenantName": "blue", "profileName": "x", "DSCP": 64}]"#),
        &["netprofile \"blue:x\"", "DSCP", "64 is outside 0-63"],
    );
    refused(
        &with(
            r#""netprofiles": [{"tenantName": "blue", "profileName": "x", "bandwidth": "10 parsecs"}]"#,
        ),
        &["bandwidth"],
    );
    accepted(&with(
        r#""netprofiles": [{"tenantName": "blue", "profileName": "x", "bandwidth": "10Mbps", "DSCP": 63}]"#,
    ));
}

#[test]
fn removing_what_endpoints_use_is_refused() {
    let old = accepted(&with(
        r#""networks": [{"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24"}]"#,
    ));
    let new = accepted(&format!("{{{BASE}}}"));
    let ep = Endpoint {
        endpoint_id: "c1-eth0".into(),
        container: "c1".into(),
        host: "h1".into(),
        tenant_name: "blue".into(),
        network_name: "n".into(),
        group_name: String::new(),
        interface_name: "eth0".into(),
        mac: "02:00:00:00:00:01".into(),
        ipv4: "10.1.0.2".parse().unwrap(),
        ipv6: None,
        state: "up".into(),
    };
    let in_use = validate::InUse::from_endpoints([&ep]);
    let e = validate::check_removals(&old, &new, &in_use).unwrap_err();
    assert!(
        e.to_string()
            .contains("network \"blue:n\": networkName: still has endpoints"),
        "{e}"
    );
    validate::check_removals(&old, &new, &validate::InUse::default()).unwrap();
}

#[test]
fn plans_apply_and_prune_in_dependency_order() {
    let current = accepted(&with(
        r#""networks": [{"tenantName": "blue", "networkName": "old", "subnet": "10.9.0.0/24"}]"#,
    ));
    let s = spec(&with(
        r#""networks": [{"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24"}],
        "endpointGroups": [{"tenantName": "blue", "groupName": "g", "networkName": "n"}]"#,
    ));
    let merged = s.apply_to(&current, false).unwrap();
    assert!(merged.networks.contains_key("blue:old") && merged.networks.contains_key("blue:n"));
    let pruned = s.apply_to(&current, true).unwrap();
    let changes = plan(&current, &pruned).unwrap();
    assert_eq!(
        changes,
        vec![
            Change::Update {
                kind: "global",
                key: "global".into()
            },
            Change::Create {
                kind: "network",
                key: "blue:n".into()
            },
            Change::Create {
                kind: "endpointGroup",
                key: "blue:g".into()
            },
            Change::Delete {
                kind: "network",
                key: "blue:old".into()
            },
        ]
        .into_iter()
        .filter(|c| !matches!(c, Change::Update { kind: "global", .. })
            || current.global != pruned.global)
        .collect::<Vec<_>>()
    );
    // Applying the same spec again changes nothing.
    assert!(plan(&pruned, &s.apply_to(&pruned, true).unwrap())
        .unwrap()
        .is_empty());
}

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no JSON files in {}", dir.display());
    v
}

#[test]
fn every_example_spec_is_valid() {
    for f in files("../examples") {
        let text = std::fs::read_to_string(&f).unwrap();
        let s = Spec::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let st = s
            .to_state()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        validate_state(&st).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        // JSON round trip.
        assert_eq!(
            Spec::from_json(&serde_json::to_string(&s).unwrap()).unwrap(),
            s
        );
    }
}

#[test]
fn every_contiv_intent_file_is_accepted() {
    for f in files("../../shared/contiv-examples") {
        let text = std::fs::read_to_string(&f).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(ContivIntent::looks_like(&v), "{}", f.display());
        let c = ContivIntent::from_json(&text)
            .and_then(|i| i.convert())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let st = c
            .spec
            .to_state()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        validate_state(&st).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for p in &c.placements {
            let key = format!("{}:{}", p.tenant, p.network);
            assert!(
                st.networks.contains_key(&key) || c.existing_networks.contains(&key),
                "{}: {key}",
                f.display()
            );
        }
    }
}

#[test]
fn contiv_conversion_allocates_subnets_deterministically() {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/contiv-examples/two_hosts_multiple_tenants_mix_vlan_vxlan.json"),
    )
    .unwrap();
    let c = ContivIntent::from_json(&text).unwrap().convert().unwrap();
    let st = c.spec.to_state().unwrap();
    let orange = &st.networks["tenant-one:orange"];
    let purple = &st.networks["tenant-two:purple"];
    assert_eq!((orange.encap, purple.encap), (Encap::Vlan, Encap::Vxlan));
    // Each tenant's first subnet of its pool: the same subnet in both, which tenants may share.
    assert_eq!(orange.subnet.to_string(), "11.1.0.0/24");
    assert_eq!(purple.subnet.to_string(), "11.1.0.0/24");
    assert_eq!(orange.gateway, Some("11.1.0.1".parse().unwrap()));
    assert_eq!(st.global.vlans.to_string(), "200-300");
    assert_eq!(c.placements.len(), 4);
    assert_eq!(c.hosts.len(), 2);
}

//! The REST API against a live in-process netmaster on the embedded store: round trips per
//! kind, validation failures that store nothing, the right statuses, intent apply and prune,
//! every example spec and every Contiv intent file.

use std::path::PathBuf;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use testsupport::TempDir;
use weft_controller::server::{local_config, spawn, Config, Running};

struct Netmaster {
    base: String,
    http: Client,
    _running: Running,
    _dir: TempDir,
}

async fn netmaster_with(dir: TempDir, config: Config) -> Netmaster {
    let running = spawn(config).await.expect("netmaster started");
    Netmaster {
        base: format!("http://{}", running.bound.rest),
        http: Client::new(),
        _running: running,
        _dir: dir,
    }
}

async fn netmaster() -> Netmaster {
    let dir = TempDir::new("weft-nm-");
    let config = local_config(dir.path());
    netmaster_with(dir, config).await
}

impl Netmaster {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }
    async fn raw(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_round_trip_on_contiv_paths() {
    let nm = netmaster().await;
    assert_eq!(nm.get("/healthz").await.0, StatusCode::OK);
    let (s, _) = nm
        .post("/api/v1/tenants/blue/", json!({"tenantName": "blue"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let net = json!({"tenantName": "blue", "networkName": "orange", "encap": "vxlan",
                     "subnet": "10.1.0.0/24", "gateway": "10.1.0.1"});
    let (s, stored) = nm.post("/api/v1/networks/blue:orange/", net).await;
    assert_eq!(s, StatusCode::OK, "{stored}");
    assert_eq!(
        stored["pktTag"],
        json!(1),
        "a VNI was allocated from the global range"
    );
    let (_, list) = nm.get("/api/v1/networks/").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, one) = nm.get("/api/v1/networks/blue:orange/").await;
    assert_eq!((s, &one["subnet"]), (StatusCode::OK, &json!("10.1.0.0/24")));
    // Groups, policies, rules.
    assert_eq!(
        nm.post(
            "/api/v1/policys/blue:p/",
            json!({"tenantName": "blue", "policyName": "p"})
        )
        .await
        .0,
        StatusCode::OK
    );
    let grp = json!({"tenantName": "blue", "groupName": "web", "networkName": "orange", "policies": ["p"]});
    assert_eq!(
        nm.post("/api/v1/endpointGroups/blue:web/", grp).await.0,
        StatusCode::OK
    );
    let rule = json!({"tenantName": "blue", "policyName": "p", "ruleId": "1", "priority": 10, "direction": "in",
                      "fromEndpointGroup": "web", "protocol": "tcp", "port": 80, "action": "allow"});
    assert_eq!(
        nm.post("/api/v1/rules/blue:p:1/", rule).await.0,
        StatusCode::OK
    );
    // Deleting a policy a group uses is refused, and nothing changes.
    let (s, e) = nm.delete("/api/v1/policys/blue:p/").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("policy \"p\" does not exist"),
        "{e}"
    );
    assert_eq!(nm.get("/api/v1/policys/blue:p/").await.0, StatusCode::OK);
    // Delete in order works; deleting again is 404.
    assert_eq!(nm.delete("/api/v1/rules/blue:p:1/").await.0, StatusCode::OK);
    assert_eq!(
        nm.delete("/api/v1/endpointGroups/blue:web/").await.0,
        StatusCode::OK
    );
    assert_eq!(nm.delete("/api/v1/policys/blue:p/").await.0, StatusCode::OK);
    assert_eq!(
        nm.delete("/api/v1/policys/blue:p/").await.0,
        StatusCode::NOT_FOUND
    );
    // The global object.
    let (s, g) = nm.get("/api/v1/globals/global/").await;
    assert_eq!((s, &g["fwdMode"]), (StatusCode::OK, &json!("bridge")));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_clearly_and_stores_nothing() {
    let nm = netmaster().await;
    nm.post("/api/v1/tenants/blue/", json!({"tenantName": "blue"}))
        .await;
    let before = nm.get("/api/v1/inspect/state/").await.1;
    let cases = [
        (
            "/api/v1/networks/blue:n/",
            json!({"tenantName": "blue", "networkName": "n", "subnet": "11.1.0.0/33"}),
            "not a valid IPv4 CIDR",
        ),
        (
            "/api/v1/networks/blue:n/",
            json!({"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24", "gateway": "10.2.0.1"}),
            "gateway: 10.2.0.1 is outside subnet",
        ),
        (
            "/api/v1/networks/blue:n/",
            json!({"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24", "colour": 1}),
            "unknown field `colour`",
        ),
        (
            "/api/v1/networks/blue:x/",
            json!({"tenantName": "blue", "networkName": "n", "subnet": "10.1.0.0/24"}),
            "must agree",
        ),
        (
            "/api/v1/networks/ghost:n/",
            json!({"tenantName": "ghost", "networkName": "n", "subnet": "10.1.0.0/24"}),
            "tenant \"ghost\" does not exist",
        ),
    ];
    for (path, body, needle) in cases {
        let (s, e) = nm.post(path, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {e}");
        assert!(
            e["error"].as_str().unwrap().contains(needle),
            "{path}: {e} lacks {needle}"
        );
    }
    let (s, e) = nm.raw("/api/v1/tenants/t/", "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(
        nm.get("/api/v1/inspect/state/").await.1,
        before,
        "nothing was stored"
    );
    assert_eq!(
        nm.get("/api/v1/networks/blue:nope/").await.0,
        StatusCode::NOT_FOUND
    );
}

/// Everything a client can read of the intent, to show that a refused change stored nothing.
async fn everything(nm: &Netmaster) -> Value {
    let mut all = serde_json::Map::new();
    for p in [
        "/api/v1/inspect/state/",
        "/api/v1/globals/",
        "/api/v1/tenants/",
        "/api/v1/networks/",
        "/api/v1/endpointGroups/",
        "/api/v1/netprofiles/",
        "/api/v1/policys/",
        "/api/v1/rules/",
        "/api/v1/appProfiles/",
        "/api/v1/podAttachments/",
    ] {
        let (s, v) = nm.get(p).await;
        assert_eq!(s, StatusCode::OK, "{p}: {v}");
        all.insert(p.into(), v);
    }
    Value::Object(all)
}

#[tokio::test(flavor = "multi_thread")]
async fn host_access_networks_may_not_overlap_in_any_tenant() {
    let nm = netmaster().await;
    for t in ["blue", "red"] {
        let (s, e) = nm
            .post(&format!("/api/v1/tenants/{t}/"), json!({"tenantName": t}))
            .await;
        assert_eq!(s, StatusCode::OK, "{e}");
    }
    let (s, g) = nm.get("/api/v1/globals/global/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(g.get("serviceCidrs").is_none(), "absent when empty: {g}");
    let mut g2 = g.clone();
    g2["serviceCidrs"] = json!(["10.96.0.0/12"]);
    let (s, stored) = nm.post("/api/v1/globals/global/", g2).await;
    assert_eq!(
        (s, &stored["serviceCidrs"]),
        (StatusCode::OK, &json!(["10.96.0.0/12"])),
        "{stored}"
    );
    let web = json!({"tenantName": "blue", "networkName": "web", "encap": "vxlan",
                     "subnet": "10.1.0.0/16", "hostAccess": true, "external": true});
    let (s, stored) = nm.post("/api/v1/networks/blue:web/", web).await;
    assert_eq!(s, StatusCode::OK, "{stored}");
    assert_eq!(
        (&stored["hostAccess"], &stored["external"]),
        (&json!(true), &json!(true))
    );
    // A network without them stores neither field.
    let plain = json!({"tenantName": "red", "networkName": "plain", "subnet": "10.1.0.0/24"});
    let (s, stored) = nm.post("/api/v1/networks/red:plain/", plain).await;
    assert_eq!(s, StatusCode::OK, "{stored}");
    assert!(
        stored.get("hostAccess").is_none() && stored.get("external").is_none(),
        "{stored}"
    );

    let before = everything(&nm).await;
    // A second host-access network, in another tenant, overlapping the first.
    let (s, e) = nm
        .post(
            "/api/v1/networks/red:web/",
            json!({"tenantName": "red", "networkName": "web", "encap": "vxlan",
                   "subnet": "10.1.5.0/24", "hostAccess": true}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let msg = e["error"].as_str().unwrap();
    for needle in [
        "network \"red:web\"",
        "10.1.5.0/24",
        "network \"blue:web\"",
        "10.1.0.0/16",
        "one routing table",
    ] {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
    // Turning hostAccess on for the existing overlapping network: refused the same way.
    let (s, e) = nm
        .post(
            "/api/v1/networks/red:plain/",
            json!({"tenantName": "red", "networkName": "plain", "subnet": "10.1.0.0/24", "hostAccess": true}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"].as_str().unwrap().contains("red:plain"), "{e}");
    // The same in a spec with something valid besides: refused whole.
    let spec = json!({"tenants": [{"tenantName": "green"}],
                      "networks": [{"tenantName": "green", "networkName": "web", "subnet": "10.1.0.0/24", "hostAccess": true}]});
    let (s, e) = nm.post("/api/v1/intent", spec).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"].as_str().unwrap().contains("blue:web"), "{e}");
    // A service range over the host-access subnet.
    let mut g3 = g.clone();
    g3["serviceCidrs"] = json!(["10.0.0.0/8"]);
    let (s, e) = nm.post("/api/v1/globals/global/", g3).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.contains(
            "serviceCidrs: 10.0.0.0/8 overlaps subnet 10.1.0.0/16 of hostAccess network \"blue:web\""
        ),
        "{msg}"
    );
    assert_eq!(
        everything(&nm).await,
        before,
        "a refused change stores nothing"
    );

    // A Contiv intent file adds networks and widens ranges, and leaves serviceCidrs alone.
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/contiv-examples/two_host_vxlan.json"),
    )
    .unwrap();
    let (s, r) = nm.raw("/api/v1/intent", &text).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (_, g) = nm.get("/api/v1/globals/global/").await;
    assert_eq!(g["serviceCidrs"], json!(["10.96.0.0/12"]), "{g}");
}

#[tokio::test(flavor = "multi_thread")]
async fn intent_applies_whole_specs_and_prunes() {
    let nm = netmaster().await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    for f in [
        "one-host-vlans.json",
        "two-hosts-vxlan.json",
        "two-tenants-overlapping.json",
        "mixed-vlan-vxlan.json",
        "host-access.json",
        "groups-and-policy.json",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        let (s, r) = nm.raw("/api/v1/intent?prune=true", &text).await;
        assert_eq!(s, StatusCode::OK, "{f}: {r}");
        assert!(!r["changes"].as_array().unwrap().is_empty(), "{f}");
        // Applying the same spec again changes nothing.
        let (_, r) = nm.raw("/api/v1/intent?prune=true", &text).await;
        assert_eq!(r["changes"], json!([]), "{f}");
    }
    // The last spec pruned the others away.
    let (_, nets) = nm.get("/api/v1/networks/").await;
    let names: Vec<&str> = nets
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["networkName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["main"]);
    // A spec with one bad object is refused whole: the whole stored state is what it was, so
    // a commit per object (the new tenant, the valid network, with prune the deletions and the
    // changed network) would fail here, not only the bad object's own absence.
    let before = nm.get("/api/v1/inspect/state/").await.1;
    let (_, main) = nm.get("/api/v1/networks/").await;
    let mut changed = main[0].clone();
    changed["gateway"] = json!(null);
    changed["subnet"] = json!("10.60.0.0/24");
    let bad = json!({"tenants": [{"tenantName": "mall"}, {"tenantName": changed["tenantName"]}],
                     "networks": [changed,
                                  {"tenantName": "mall", "networkName": "main", "encap": "vxlan", "subnet": "10.50.0.0/24"},
                                  {"tenantName": "mall", "networkName": "other", "subnet": "10.50.0.0/25"}]});
    for path in ["/api/v1/intent", "/api/v1/intent?prune=true"] {
        let (s, e) = nm.raw(path, &bad.to_string()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {e}");
        assert!(
            e["error"].as_str().unwrap().contains("overlaps"),
            "{path}: {e}"
        );
        assert_eq!(
            nm.get("/api/v1/inspect/state/").await.1,
            before,
            "{path}: a refused spec changed the stored state"
        );
    }
    assert_eq!(
        nm.get("/api/v1/networks/mall:other/").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_contiv_intent_file_is_accepted() {
    let nm = netmaster().await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/contiv-examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    // Files that only add endpoints to networks need those networks: apply the others first.
    files.sort_by_key(|f| f.to_string_lossy().contains("add_del_ep"));
    let mut expected = std::collections::BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let (s, r) = nm.raw("/api/v1/intent", &text).await;
        assert_eq!(s, StatusCode::OK, "{}: {r}", f.display());
        let c = weft_api::contiv::ContivIntent::from_json(&text)
            .unwrap()
            .convert()
            .unwrap();
        expected.extend(
            c.spec
                .networks
                .iter()
                .map(|n| format!("{}:{}", n.tenant_name, n.network_name)),
        );
    }
    let (_, nets) = nm.get("/api/v1/networks/").await;
    let got: std::collections::BTreeSet<String> = nets
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            format!(
                "{}:{}",
                n["tenantName"].as_str().unwrap(),
                n["networkName"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(got, expected);
}

/// The same API on etcd; and 503 when etcd goes away.
#[tokio::test(flavor = "multi_thread")]
async fn on_etcd_and_unavailable_when_it_is_gone() {
    let mut etcd = testsupport::Etcd::start();
    let dir = TempDir::new("weft-nm-");
    let config = Config {
        etcd: vec![etcd.client_url().to_string()],
        ..local_config(dir.path())
    };
    let nm = netmaster_with(dir, config).await;
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/mixed-vlan-vxlan.json"),
    )
    .unwrap();
    let (s, r) = nm.raw("/api/v1/intent", &text).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, net) = nm.get("/api/v1/networks/acme:cloud/").await;
    assert_eq!((s, &net["pktTag"]), (StatusCode::OK, &json!(30001)));
    etcd.stop();
    let (s, e) = nm.get("/api/v1/networks/").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{e}");
    assert!(e["error"].as_str().unwrap().contains("etcd"), "{e}");
    assert_eq!(nm.get("/healthz").await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_names_every_route_and_metrics_count_requests() {
    let nm = netmaster().await;
    let (s, doc) = nm.get("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/tenants/{key}/",
        "/api/v1/networks/",
        "/api/v1/policys/{key}/",
        "/api/v1/rules/{key}/",
        "/api/v1/intent",
        "/metrics",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    // Every documented GET path without parameters answers (not 404).
    for (p, item) in paths {
        if !p.contains('{') && item.get("get").is_some() {
            assert_ne!(nm.get(p).await.0, StatusCode::NOT_FOUND, "{p}");
        }
    }
    // Networks and the global settings are described field by field, Weft's fields included.
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("Network", "hostAccess"),
        ("Network", "external"),
        ("Global", "serviceCidrs"),
    ] {
        let d = schemas[schema]["properties"][field]["description"]
            .as_str()
            .unwrap_or_else(|| panic!("{schema}.{field} has no description"));
        assert!(d.len() > 40, "{schema}.{field}: {d}");
    }
    assert_eq!(
        paths["/api/v1/networks/{key}/"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"],
        json!("#/components/schemas/Network")
    );
    assert_eq!(
        paths["/api/v1/globals/{name}/"]["get"]["responses"]["200"]["content"]["application/json"]
            ["schema"]["$ref"],
        json!("#/components/schemas/Global")
    );
    nm.post("/api/v1/tenants/blue/", json!({"tenantName": "blue"}))
        .await;
    let text = nm
        .http
        .get(format!("{}/metrics", nm.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("weft_netmaster_intent_objects_committed_total 1"),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/tenants/{key}/""#) && text.contains("status=\"200\""),
        "{text}"
    );
}

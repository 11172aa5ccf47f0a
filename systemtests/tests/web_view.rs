//! netmaster's web view (`/ui/`) in headless Chromium: netmaster runs with a small intent (two
//! tenants, networks, groups, a policy, endpoint records on two registered hosts, one of which
//! serves a fake inspect API); the DOM after the page's scripts ran must show the hosts,
//! networks and endpoints, the right policy-matrix cells, and a trace's path and verdict.
//!
//! Chromium is required: `scripts/install-deps.sh` installs it. If it is missing this test fails;
//! it never passes without having looked at the page.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use testsupport::TempDir;
use weft_api::inspect::{HostTrace, HostTraceRequest, Outcome, TraceStep};
use weft_api::proto::agent as pb;
use weft_api::proto::agent::agent_service_client::AgentServiceClient;
use weft_controller::server::{local_config, spawn};

const SPEC: &str = r#"{
  "tenants": [{"tenantName": "blue"}, {"tenantName": "red"}],
  "networks": [
    {"tenantName": "blue", "networkName": "web", "encap": "vxlan", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1"},
    {"tenantName": "blue", "networkName": "db", "encap": "vxlan", "subnet": "10.2.0.0/24", "gateway": "10.2.0.1"},
    {"tenantName": "red", "networkName": "app", "encap": "vlan", "subnet": "10.3.0.0/24", "gateway": "10.3.0.1"}
  ],
  "policies": [{"tenantName": "blue", "policyName": "db-in"}],
  "rules": [
    {"tenantName": "blue", "policyName": "db-in", "ruleId": "pg", "direction": "in",
     "fromEndpointGroup": "web", "protocol": "tcp", "port": 5432, "action": "allow"},
    {"tenantName": "blue", "policyName": "db-in", "ruleId": "ping", "direction": "in",
     "protocol": "icmp", "action": "allow"}
  ],
  "endpointGroups": [
    {"tenantName": "blue", "groupName": "web", "networkName": "web"},
    {"tenantName": "blue", "groupName": "db", "networkName": "db", "policies": ["db-in"], "defaultDeny": true},
    {"tenantName": "red", "groupName": "front", "networkName": "app"},
    {"tenantName": "red", "groupName": "back", "networkName": "app"}
  ]
}"#;

/// Kills a process group when dropped (Chromium starts helpers of its own).
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}

fn chromium() -> &'static str {
    for c in ["chromium", "chromium-browser"] {
        if Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return c;
        }
    }
    panic!("chromium is not installed (scripts/install-deps.sh installs Debian's chromium); the web view cannot be tested without it");
}

/// The DOM of `url` after its scripts ran.
fn dump_dom(url: &str, profile: &Path) -> String {
    use std::os::unix::process::CommandExt;
    let out_path = profile.join("dom.html");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=5000",
            &format!("--user-data-dir={}", profile.join("profile").display()),
            "--dump-dom",
            url,
        ])
        .stdout(out)
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = Group(child.id());
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert!(s.success(), "chromium failed: {s}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "chromium did not finish within 90 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(out_path).unwrap()
}

/// A picture of `url` into `png` (for people: `WEFT_WEBVIEW_SCREENSHOT=F.png` on this test).
fn screenshot(url: &str, profile: &Path, png: &str) {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=5000",
            "--window-size=1280,1400",
            &format!("--user-data-dir={}", profile.join("profile-shot").display()),
            &format!("--screenshot={png}"),
            url,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = Group(child.id());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "chromium did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("screenshot of the web view: {png}");
}

/// The text of the matrix cell (from, to) of `tenant`'s table.
fn cell(dom: &str, tenant: &str, from: &str, to: &str) -> String {
    let start = dom
        .find(&format!("class=\"matrix\" data-tenant=\"{tenant}\""))
        .unwrap_or_else(|| panic!("no matrix of tenant {tenant} in the page:\n{dom}"));
    let table = &dom[start..start + dom[start..].find("</table>").unwrap()];
    let at = table
        .find(&format!("data-from=\"{from}\" data-to=\"{to}\""))
        .unwrap_or_else(|| panic!("no cell {from} → {to} in {tenant}'s matrix:\n{table}"));
    let rest = &table[at..];
    let text = &rest[rest.find('>').unwrap() + 1..];
    text[..text.find("</td>").unwrap()].to_string()
}

async fn fake_trace(Json(r): Json<HostTraceRequest>) -> Json<HostTrace> {
    Json(HostTrace {
        host: "h1".into(),
        steps: vec![TraceStep {
            table: 63,
            table_name: "ingress-rules".into(),
            priority: 302,
            cookie: 6,
            owner: Some("rule blue:db-in:ping".into()),
            flow: format!("icmp,nw_dst={}", r.dst_ip),
            notes: vec![],
        }],
        outcomes: vec![Outcome::Delivered {
            endpoint: "db-1".into(),
        }],
        observed: false,
    })
}

async fn fake_netplugin() -> SocketAddr {
    let app = Router::new().route("/inspect/trace", post(fake_trace));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_view_draws_hosts_networks_endpoints_matrix_and_a_trace() {
    let dir = TempDir::new("weft-webview-");
    let nm = spawn(local_config(dir.path())).await.unwrap();
    let base = format!("http://{}", nm.bound.rest);
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/intent"))
        .json(&serde_json::from_str::<Value>(SPEC).unwrap())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let mut grpc = AgentServiceClient::connect(format!("http://{}", nm.bound.grpc))
        .await
        .unwrap();
    let inspect = fake_netplugin().await;
    for (name, vtep, inspect) in [
        ("h1", "192.0.2.11", inspect.to_string()),
        ("h2", "192.0.2.12", String::new()),
    ] {
        grpc.register_node(pb::RegisterNodeRequest {
            name: name.into(),
            vtep_ip: vtep.into(),
            uplink: String::new(),
            lease_ttl_seconds: 300,
            inspect,
        })
        .await
        .unwrap();
    }
    for (id, tenant, network, group, host) in [
        ("web-1", "blue", "web", "web", "h1"),
        ("db-1", "blue", "db", "db", "h1"),
        ("web-2", "blue", "web", "web", "h2"),
        ("front-1", "red", "app", "front", "h2"),
    ] {
        grpc.allocate_endpoint(pb::AllocateEndpointRequest {
            endpoint_id: id.into(),
            tenant: tenant.into(),
            network: network.into(),
            group: group.into(),
            host: host.into(),
            container: id.into(),
            interface_name: "eth0".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }

    let url = format!("{base}/ui/?src=blue/web-1&dst=db-1&proto=icmp");
    let profile = dir.path().to_path_buf();
    let dom = tokio::task::spawn_blocking(move || {
        if let Ok(png) = std::env::var("WEFT_WEBVIEW_SCREENSHOT") {
            screenshot(&url, &profile, &png);
        }
        dump_dom(&url, &profile)
    })
    .await
    .unwrap();

    assert!(
        dom.contains("data-state=\"loaded\""),
        "the page did not finish loading:\n{dom}"
    );
    for needle in [
        "data-host=\"h1\"",
        "data-host=\"h2\"",
        "VTEP 192.0.2.11",
        "data-endpoint=\"web-1\"",
        "data-endpoint=\"db-1\"",
        "data-endpoint=\"front-1\"",
        "data-network=\"blue:web\"",
        "data-network=\"red:app\"",
        "data-tenant=\"red\"",
        "class=\"topo-group\" data-group=\"red:back\"",
        "group db (1) default deny",
        "10.1.0.2",
    ] {
        assert!(dom.contains(needle), "the page lacks {needle}:\n{dom}");
    }
    assert_eq!(cell(&dom, "blue", "web", "db"), "tcp/5432, icmp");
    assert_eq!(cell(&dom, "blue", "db", "web"), "none");
    assert_eq!(cell(&dom, "blue", "web", "web"), "any");
    assert_eq!(cell(&dom, "red", "front", "back"), "any");
    // The trace given in the address ran: its hop and verdict are drawn.
    assert!(
        dom.contains("id=\"trace-verdict\" class=\"delivered\""),
        "no delivered verdict:\n{dom}"
    );
    assert!(dom.contains("rule blue:db-in:ping allow"), "{dom}");
    assert!(dom.contains("class=\"hop\" data-host=\"h1\""), "{dom}");
}

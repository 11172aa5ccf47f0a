//! `netctl flows`, `trace` and `policy log`, the built binary, against a canned netmaster that
//! answers with `api::inspect` JSON: exit statuses and error messages (the texts are tested in
//! `src/inspect.rs`; the real end-to-end test is netmaster's).

use std::process::Command;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use weft_api::inspect::TraceRequest;

async fn canned() -> String {
    let r = Router::new()
        .route(
            "/api/v1/hosts/{host}/flows",
            get(|| async {
                (
                    StatusCode::NOT_FOUND,
                    Json(json!({"error": "no host \"h9\" is registered"})),
                )
            }),
        )
        .route(
            "/api/v1/trace",
            post(|Json(req): Json<TraceRequest>| async move {
                let (verdict, outcome) = if req.dport == Some(22) {
                    (
                        "dropped",
                        json!({"kind": "dropped", "by": "rule blue/p/2 deny"}),
                    )
                } else {
                    ("delivered", json!({"kind": "delivered", "endpoint": "e2"}))
                };
                Json(json!({
                    "request": req,
                    "hops": [{"host": "h1", "steps": [], "outcomes": [outcome]}],
                    "verdict": verdict,
                    "decidedBy": "rule blue/p/2",
                }))
            }),
        )
        .route(
            "/api/v1/verdicts",
            get(|| async {
                Json(
                    json!([{"seq": 1, "timeMs": 0, "host": "h1", "tenant": "blue",
                             "policy": "p", "rule": "2", "verdict": "deny",
                             "src": "10.1.0.2", "dst": "10.1.0.3", "proto": 17, "dport": 53}]),
                )
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, r).await.unwrap() });
    format!("http://{addr}")
}

/// Runs netctl; returns (exit code, stdout, stderr).
async fn netctl(url: &str, args: &[&str]) -> (i32, String, String) {
    let (url, args) = (
        url.to_string(),
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_netctl"))
            .env("NETMASTER", url)
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_statuses_follow_the_verdict_and_errors() {
    let url = canned().await;
    let (code, out, err) = netctl(
        &url,
        &[
            "trace",
            "blue/web1",
            "10.1.0.3",
            "--proto",
            "tcp",
            "--dport",
            "80",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.ends_with("verdict: delivered (decided by rule blue/p/2)\n"),
        "{out}"
    );

    let (code, out, err) = netctl(
        &url,
        &[
            "trace",
            "blue/web1",
            "10.1.0.3",
            "--proto",
            "tcp",
            "--dport",
            "22",
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("  -> dropped by rule blue/p/2 deny\n"),
        "{out}"
    );

    let (code, out, _) = netctl(&url, &["--json", "trace", "a", "b", "--dport", "22"]).await;
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "dropped");
    assert_eq!(v["request"]["proto"], "icmp");

    let (code, out, err) = netctl(&url, &["flows", "--host", "h9"]).await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        err,
        "netctl: no host \"h9\" is registered (GET /api/v1/hosts/h9/flows: 404 Not Found)\n"
    );

    let (code, out, err) = netctl(&url, &["policy", "log", "--since", "0"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .nth(2)
            .unwrap()
            .ends_with("deny     10.1.0.2 → 10.1.0.3 udp/53"),
        "{out}"
    );
}

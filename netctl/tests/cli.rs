//! netctl, the built binary, against a live in-process netmaster.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use testsupport::TempDir;
use weft_controller::server::{local_config, spawn, Running};

struct Netmaster {
    url: String,
    _running: Running,
    _dir: TempDir,
}

async fn netmaster() -> Netmaster {
    let dir = TempDir::new("weft-nm-");
    let running = spawn(local_config(dir.path())).await.unwrap();
    Netmaster {
        url: format!("http://{}", running.bound.rest),
        _running: running,
        _dir: dir,
    }
}

/// Runs netctl; returns (success, stdout, stderr).
async fn netctl(nm: &Netmaster, args: &[&str]) -> (bool, String, String) {
    let (url, args) = (
        nm.url.clone(),
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_netctl"))
            .env("NETMASTER", url)
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn contiv_style_commands_round_trip() {
    let nm = netmaster().await;
    assert!(netctl(&nm, &["tenant", "create", "blue"]).await.0);
    let (ok, out, err) = netctl(
        &nm,
        &[
            "net",
            "create",
            "-t",
            "blue",
            "-e",
            "vlan",
            "-p",
            "100",
            "-s",
            "10.1.0.0/24",
            "-g",
            "10.1.0.1",
            "orange",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let (ok, out, _) = netctl(&nm, &["--json", "net", "ls", "-t", "blue"]).await;
    assert!(ok);
    let nets: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(nets[0]["networkName"], "orange");
    assert_eq!(nets[0]["pktTag"], 100);
    let (_, table, _) = netctl(&nm, &["net", "ls"]).await;
    assert!(
        table.lines().next().unwrap().starts_with("Tenant") && table.contains("10.1.0.0/24"),
        "{table}"
    );
    assert!(
        netctl(&nm, &["policy", "create", "-t", "blue", "web-in"])
            .await
            .0
    );
    assert!(
        netctl(
            &nm,
            &["group", "create", "-t", "blue", "-p", "web-in", "orange", "web"]
        )
        .await
        .0
    );
    let (ok, out, err) = netctl(
        &nm,
        &[
            "policy",
            "rule-add",
            "-t",
            "blue",
            "web-in",
            "1",
            "-d",
            "in",
            "-S",
            "10.1.0.0/24",
            "-l",
            "tcp",
            "-P",
            "80-90",
            "-j",
            "allow",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let (_, out, _) = netctl(
        &nm,
        &["--json", "policy", "rule-ls", "-t", "blue", "web-in"],
    )
    .await;
    let rules: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (rules[0]["port"].as_u64(), rules[0]["portEnd"].as_u64()),
        (Some(80), Some(90))
    );
    assert!(
        netctl(&nm, &["global", "set", "--vxlan-range", "1000-2000"])
            .await
            .0
    );
    let (_, out, _) = netctl(&nm, &["--json", "global", "get"]).await;
    assert!(out.contains("1000-2000"), "{out}");
    // Mistakes come back with the server's message and a failing exit status.
    let (ok, _, err) = netctl(
        &nm,
        &[
            "net",
            "create",
            "-t",
            "blue",
            "-s",
            "10.2.0.0/24",
            "-g",
            "10.3.0.1",
            "bad",
        ],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("gateway: 10.3.0.1 is outside subnet 10.2.0.0/24"),
        "{err}"
    );
    let (ok, _, err) = netctl(&nm, &["policy", "rm", "-t", "blue", "web-in"]).await;
    assert!(
        !ok && err.contains("policy \"web-in\" does not exist"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_reads_weft_specs_and_contiv_files() {
    let nm = netmaster().await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let spec = root.join("examples/groups-and-policy.json");
    let (ok, out, err) = netctl(&nm, &["apply", "-f", spec.to_str().unwrap(), "--prune"]).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("(Weft spec)") && out.contains("create network shop:main"),
        "{out}"
    );
    let contiv = root.join("../shared/contiv-examples/two_hosts_multiple_tenants.json");
    let (ok, out, err) = netctl(&nm, &["apply", "-f", contiv.to_str().unwrap()]).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("(Contiv intent file)") && out.contains("place myContainer"),
        "{out}"
    );
    let (ok, _, err) = netctl(&nm, &["apply", "-f", "/nonexistent.json"]).await;
    assert!(!ok && err.contains("reading /nonexistent.json"), "{err}");
}

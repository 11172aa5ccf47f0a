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

#[tokio::test(flavor = "multi_thread")]
async fn host_access_external_and_service_cidrs() {
    let nm = netmaster().await;
    assert!(netctl(&nm, &["tenant", "create", "blue"]).await.0);
    let (ok, out, err) = netctl(
        &nm,
        &[
            "net",
            "create",
            "-t",
            "blue",
            "-s",
            "10.1.0.0/24",
            "--host-access",
            "--external",
            "web",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("host access, external"), "{out}");
    assert!(
        netctl(
            &nm,
            &["net", "create", "-t", "blue", "-s", "10.2.0.0/24", "db"]
        )
        .await
        .0
    );
    let (_, out, _) = netctl(&nm, &["--json", "net", "ls"]).await;
    let nets: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&nets[1]["hostAccess"], &nets[1]["external"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "{nets}"
    );
    assert!(nets[0].get("hostAccess").is_none(), "{nets}");
    let (_, table, _) = netctl(&nm, &["net", "ls"]).await;
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("Host Access") && header.contains("External"),
        "{table}"
    );
    let web = table.lines().find(|l| l.contains("web")).unwrap();
    let db = table.lines().find(|l| l.contains(" db ")).unwrap();
    assert!(web.ends_with("true         true"), "{table}");
    assert!(db.ends_with("false        false"), "{table}");

    // Service ranges: repeated, replacing the list; refused over a host-access subnet.
    let (ok, out, err) = netctl(
        &nm,
        &[
            "global",
            "set",
            "--service-cidr",
            "10.96.0.0/16",
            "--service-cidr",
            "10.97.0.0/16",
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    let (_, out, _) = netctl(&nm, &["global", "get"]).await;
    assert!(
        out.contains("Service CIDRs") && out.contains("10.96.0.0/16,10.97.0.0/16"),
        "{out}"
    );
    let (ok, _, err) = netctl(&nm, &["global", "set", "--service-cidr", "10.1.0.0/16"]).await;
    assert!(!ok, "{err}");
    assert!(
        err.contains("serviceCidrs: 10.1.0.0/16 overlaps subnet 10.1.0.0/24 of hostAccess network \"blue:web\""),
        "{err}"
    );
    assert!(
        netctl(&nm, &["global", "set", "--service-cidr", "10.98.0.0/16"])
            .await
            .0
    );
    let (_, out, _) = netctl(&nm, &["--json", "global", "get"]).await;
    let g: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        g[0]["serviceCidrs"],
        serde_json::json!(["10.98.0.0/16"]),
        "{g}"
    );
    assert!(
        netctl(&nm, &["global", "set", "--no-service-cidrs"])
            .await
            .0
    );
    let (_, out, _) = netctl(&nm, &["--json", "global", "get"]).await;
    let g: Value = serde_json::from_str(&out).unwrap();
    assert!(
        g[0].get("serviceCidrs").is_none() && g[0]["vlans"].is_string(),
        "{g}"
    );
}

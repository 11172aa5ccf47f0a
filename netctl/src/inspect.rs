//! What operators see inside (`api::inspect`, through netmaster): `netctl flows`, `netctl trace`
//! and `netctl policy log`. Each renders to text first (tested against canned answers), then
//! prints.

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use weft_api::inspect::{
    FlowFilter, FlowView, Outcome, TraceProto, TraceReport, TraceRequest, VerdictRecord,
};

use crate::rest::Api;
use crate::table::{self, render};
use crate::Ctx;

#[derive(Args)]
pub struct FlowsArgs {
    /// The host whose switch to list.
    #[arg(long)]
    pub host: String,
    /// Flows of this endpoint (its port, MAC or addresses, or owned by it).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Flows of this network and its endpoints: TENANT/NETWORK (or the name alone).
    #[arg(long)]
    pub network: Option<String>,
    /// Flows of this policy's rules: TENANT/POLICY (or the name alone).
    #[arg(long)]
    pub policy: Option<String>,
    /// One table, by number or by name.
    #[arg(long)]
    pub table: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

#[derive(Args)]
pub struct TraceArgs {
    /// Where the packet starts: an endpoint id, or TENANT/CONTAINER.
    pub src: String,
    /// Where it goes: an endpoint (as SRC) or an address.
    pub dst: String,
    #[arg(long, value_enum, default_value = "icmp")]
    pub proto: Proto,
    /// Destination port (tcp and udp).
    #[arg(long)]
    pub dport: Option<u16>,
    /// Inject a real packet and observe it, instead of simulating the flows.
    #[arg(long)]
    pub live: bool,
}

#[derive(Args)]
pub struct LogArgs {
    /// Only verdicts after this sequence number.
    #[arg(long, default_value_t = 0)]
    pub since: u64,
    /// Keep asking (every second) and print new verdicts as they come; with --json, one JSON
    /// object per line.
    #[arg(long)]
    pub follow: bool,
}

/// `netctl flows`.
pub async fn flows(ctx: &Ctx, a: FlowsArgs) -> Result<()> {
    print!("{}", flows_text(&ctx.api, ctx.json, a).await?);
    Ok(())
}

async fn flows_text(api: &Api, json: bool, a: FlowsArgs) -> Result<String> {
    let filter = FlowFilter {
        endpoint: a.endpoint,
        network: a.network,
        policy: a.policy,
        table: a.table,
    };
    let flows = api.flows(&a.host, &filter).await?;
    Ok(if json {
        format!("{}\n", table::pretty(&flows))
    } else {
        flows_table(&flows)
    })
}

fn flows_table(flows: &[FlowView]) -> String {
    let rows: Vec<Vec<String>> = flows
        .iter()
        .map(|f| {
            vec![
                table_name(f.table, &f.table_name),
                f.priority.to_string(),
                f.packets.to_string(),
                f.owner.clone().unwrap_or_default(),
                f.matches.clone(),
                f.actions.clone(),
            ]
        })
        .collect();
    render(
        &["Table", "Priority", "Packets", "Owner", "Match", "Actions"],
        &rows,
    )
}

fn table_name(n: u8, name: &str) -> String {
    if name.is_empty() {
        n.to_string()
    } else {
        name.to_string()
    }
}

/// `netctl trace`: success when the packet is delivered.
pub async fn trace(ctx: &Ctx, a: TraceArgs) -> Result<ExitCode> {
    let (text, delivered) = trace_text(&ctx.api, ctx.json, a).await?;
    print!("{text}");
    Ok(if delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn trace_text(api: &Api, json: bool, a: TraceArgs) -> Result<(String, bool)> {
    let req = TraceRequest {
        src: a.src,
        dst: a.dst,
        proto: match a.proto {
            Proto::Tcp => TraceProto::Tcp,
            Proto::Udp => TraceProto::Udp,
            Proto::Icmp => TraceProto::Icmp,
        },
        dport: a.dport,
        live: a.live,
    };
    let report = api.trace(&req).await?;
    let delivered = report.verdict == "delivered";
    Ok(if json {
        (format!("{}\n", table::pretty(&report)), delivered)
    } else {
        (report_text(&report), delivered)
    })
}

fn proto_name(p: TraceProto) -> &'static str {
    match p {
        TraceProto::Icmp => "icmp",
        TraceProto::Tcp => "tcp",
        TraceProto::Udp => "udp",
    }
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Delivered { endpoint } => format!("delivered to endpoint {endpoint}"),
        Outcome::Tunnel {
            tun_id,
            remote_vtep,
        } => format!("into the tunnel to {remote_vtep} (VNI {tun_id})"),
        Outcome::Uplink { vlan: Some(v) } => format!("out of the uplink, VLAN {v}"),
        Outcome::Uplink { vlan: None } => "out of the uplink".into(),
        Outcome::Host => "to the host".into(),
        Outcome::Dropped { by } => format!("dropped by {by}"),
        Outcome::Controller { reason } => format!("to netplugin ({reason})"),
    }
}

fn report_text(r: &TraceReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let q = &r.request;
    let port = q.dport.map(|p| format!("/{p}")).unwrap_or_default();
    let _ = writeln!(
        out,
        "trace {} -> {} {}{port}{}",
        q.src,
        q.dst,
        proto_name(q.proto),
        if q.live { " (live)" } else { "" }
    );
    for hop in &r.hops {
        let seen = if q.live {
            if hop.observed {
                " (observed)"
            } else {
                " (not observed)"
            }
        } else {
            ""
        };
        let _ = writeln!(out, "host {}{seen}", hop.host);
        for s in &hop.steps {
            let owner = s
                .owner
                .as_deref()
                .map(|o| format!("  [{o}]"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} priority {}: {}{owner}",
                table_name(s.table, &s.table_name),
                s.priority,
                s.flow
            );
            for n in &s.notes {
                let _ = writeln!(out, "      {n}");
            }
        }
        for o in &hop.outcomes {
            let _ = writeln!(out, "  -> {}", outcome_text(o));
        }
    }
    let _ = writeln!(out, "verdict: {} (decided by {})", r.verdict, r.decided_by);
    out
}

/// `netctl policy log`.
pub async fn policy_log(ctx: &Ctx, a: LogArgs) -> Result<()> {
    let mut follow = Follow::new(a.since);
    let mut first = true;
    loop {
        let text = follow.next(&ctx.api, ctx.json, a.follow, first).await?;
        print!("{text}");
        first = false;
        if !a.follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Where a followed log is: the newest sequence number seen of each host (each host numbers its
/// own verdicts), and the records already printed.
struct Follow {
    since: u64,
    last: BTreeMap<String, u64>,
    seen: HashSet<(String, u64)>,
}

impl Follow {
    fn new(since: u64) -> Follow {
        Follow {
            since,
            last: BTreeMap::new(),
            seen: HashSet::new(),
        }
    }

    /// The verdicts not printed yet, as text: a table (its header only the first time), or
    /// JSON (a list, or with `lines` one object per line).
    async fn next(&mut self, api: &Api, json: bool, lines: bool, first: bool) -> Result<String> {
        // Ask from the host furthest behind, so that no host's new verdicts are skipped; those
        // printed already are left out.
        let since = self.last.values().copied().min().unwrap_or(self.since);
        let records: Vec<VerdictRecord> = api
            .verdicts(since)
            .await?
            .into_iter()
            .filter(|r| self.seen.insert((r.host.clone(), r.seq)))
            .collect();
        for r in &records {
            let last = self.last.entry(r.host.clone()).or_insert(r.seq);
            *last = (*last).max(r.seq);
        }
        if json {
            return Ok(if lines {
                records
                    .iter()
                    .map(|r| format!("{}\n", table::json_of(r)))
                    .collect()
            } else {
                format!("{}\n", table::pretty(&records))
            });
        }
        if records.is_empty() && !first {
            return Ok(String::new());
        }
        let text = verdicts_table(&records);
        Ok(if first {
            text
        } else {
            // Later batches: the rows only.
            text.lines().skip(2).map(|l| format!("{l}\n")).collect()
        })
    }
}

fn ip_proto(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        n => n.to_string(),
    }
}

fn verdicts_table(records: &[VerdictRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let port = r.dport.map(|p| format!("/{p}")).unwrap_or_default();
            vec![
                utc(r.time_ms),
                r.host.clone(),
                r.tenant.clone(),
                r.policy.clone(),
                if r.rule.is_empty() {
                    "(default)".into()
                } else {
                    r.rule.clone()
                },
                r.verdict.clone(),
                format!("{} → {} {}{port}", r.src, r.dst, ip_proto(r.proto)),
            ]
        })
        .collect();
    render(
        &[
            "Time", "Host", "Tenant", "Policy", "Rule", "Verdict", "Packet",
        ],
        &rows,
    )
}

/// Unix time in milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm), for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::{Path, Query, RawQuery};
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use serde_json::{json, Value};
    use std::sync::{Arc, Mutex};

    /// A netmaster that serves canned `api::inspect` answers, recording each query string.
    async fn serve(r: Router) -> Api {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, r).await.unwrap() });
        Api::new(&format!("http://{addr}"))
    }

    fn flow(table: u8, name: &str, prio: u16, owner: Option<&str>) -> Value {
        json!({"table": table, "tableName": name, "priority": prio, "cookie": 7,
               "owner": owner, "matches": "ip,reg5=0x1,nw_dst=10.1.0.3",
               "actions": "goto_table:40", "packets": 12, "bytes": 1200})
    }

    fn report(verdict: &str, decided_by: &str, last: Value) -> Value {
        json!({
            "request": {"src": "blue/web1", "dst": "10.1.0.3", "proto": "tcp", "dport": 80, "live": false},
            "hops": [
                {"host": "h1", "steps": [
                    {"table": 0, "tableName": "classify", "priority": 100, "cookie": 1,
                     "owner": "endpoint e1", "flow": "in_port=5", "notes": []},
                    {"table": 30, "tableName": "policy", "priority": 200, "cookie": 2,
                     "owner": "rule blue/web-in/1", "flow": "tcp,tp_dst=80", "notes": ["conntrack: new"]}],
                 "outcomes": [{"kind": "tunnel", "tunId": 5000, "remoteVtep": "192.168.1.2"}]},
                {"host": "h2", "steps": [
                    {"table": 60, "tableName": "output", "priority": 10, "cookie": 3,
                     "owner": null, "flow": "reg7=0x3", "notes": []}],
                 "outcomes": [last]}
            ],
            "verdict": verdict,
            "decidedBy": decided_by,
        })
    }

    #[tokio::test]
    async fn flows_ask_with_the_filters_and_print_a_table() {
        let asked = Arc::new(Mutex::new(vec![]));
        let a2 = asked.clone();
        let api = serve(Router::new().route(
            "/api/v1/hosts/{host}/flows",
            get(move |Path(host): Path<String>, RawQuery(q): RawQuery| {
                let a2 = a2.clone();
                async move {
                    a2.lock().unwrap().push((host, q));
                    Json(json!([
                        flow(0, "classify", 100, Some("endpoint e1")),
                        flow(30, "", 1, None)
                    ]))
                }
            }),
        ))
        .await;
        let args = FlowsArgs {
            host: "h1".into(),
            endpoint: Some("e1".into()),
            network: Some("blue/web".into()),
            policy: None,
            table: Some("policy".into()),
        };
        let text = flows_text(&api, false, args).await.unwrap();
        assert_eq!(
            asked.lock().unwrap().as_slice(),
            [(
                "h1".to_string(),
                Some("endpoint=e1&network=blue%2Fweb&table=policy".to_string())
            )]
        );
        expect_test::expect![[r#"
            Table     Priority  Packets  Owner        Match                        Actions
            --------  --------  -------  -----------  ---------------------------  -------------
            classify  100       12       endpoint e1  ip,reg5=0x1,nw_dst=10.1.0.3  goto_table:40
            30        1         12                    ip,reg5=0x1,nw_dst=10.1.0.3  goto_table:40
        "#]]
        .assert_eq(&text);

        let no_filter = FlowsArgs {
            host: "h1".into(),
            endpoint: None,
            network: None,
            policy: None,
            table: None,
        };
        let j = flows_text(&api, true, no_filter).await.unwrap();
        let v: Vec<FlowView> = serde_json::from_str(&j).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(asked.lock().unwrap()[1].1, None);
    }

    #[tokio::test]
    async fn trace_prints_hops_steps_outcomes_and_the_verdict() {
        let asked: Arc<Mutex<Option<TraceRequest>>> = Arc::default();
        let a2 = asked.clone();
        let api = serve(Router::new().route(
            "/api/v1/trace",
            post(move |Json(req): Json<TraceRequest>| {
                let a2 = a2.clone();
                async move {
                    let dropped = req.dport == Some(22);
                    *a2.lock().unwrap() = Some(req);
                    Json(if dropped {
                        report(
                            "dropped",
                            "default deny of group blue/db",
                            json!({"kind": "dropped", "by": "default deny of group blue/db"}),
                        )
                    } else {
                        report(
                            "delivered",
                            "rule blue/web-in/1 allow",
                            json!({"kind": "delivered", "endpoint": "e2"}),
                        )
                    })
                }
            }),
        ))
        .await;
        let args = |dport| TraceArgs {
            src: "blue/web1".into(),
            dst: "10.1.0.3".into(),
            proto: Proto::Tcp,
            dport: Some(dport),
            live: false,
        };
        let (text, delivered) = trace_text(&api, false, args(80)).await.unwrap();
        assert!(delivered);
        assert_eq!(
            asked.lock().unwrap().clone().unwrap(),
            TraceRequest {
                src: "blue/web1".into(),
                dst: "10.1.0.3".into(),
                proto: TraceProto::Tcp,
                dport: Some(80),
                live: false,
            }
        );
        expect_test::expect![[r#"
            trace blue/web1 -> 10.1.0.3 tcp/80
            host h1
              classify priority 100: in_port=5  [endpoint e1]
              policy priority 200: tcp,tp_dst=80  [rule blue/web-in/1]
                  conntrack: new
              -> into the tunnel to 192.168.1.2 (VNI 5000)
            host h2
              output priority 10: reg7=0x3
              -> delivered to endpoint e2
            verdict: delivered (decided by rule blue/web-in/1 allow)
        "#]]
        .assert_eq(&text);

        let (text, delivered) = trace_text(&api, false, args(22)).await.unwrap();
        assert!(!delivered);
        assert!(
            text.ends_with(
                "  -> dropped by default deny of group blue/db\n\
                 verdict: dropped (decided by default deny of group blue/db)\n"
            ),
            "{text}"
        );
        let (j, delivered) = trace_text(&api, true, args(22)).await.unwrap();
        assert!(!delivered);
        let r: TraceReport = serde_json::from_str(&j).unwrap();
        assert_eq!(r.verdict, "dropped");
    }

    #[derive(serde::Deserialize)]
    struct Since {
        since: u64,
    }

    fn verdict(seq: u64, host: &str, rule: &str, v: &str, dport: Option<u16>) -> Value {
        json!({"seq": seq, "timeMs": 1_764_478_283_123u64 + seq * 1000, "host": host,
               "tenant": "blue", "policy": "web-in", "rule": rule, "verdict": v,
               "src": "10.1.0.2", "dst": "10.1.0.3", "proto": 6, "dport": dport})
    }

    #[tokio::test]
    async fn policy_log_prints_verdicts_and_follows_without_repeats() {
        let asked = Arc::new(Mutex::new(vec![]));
        let a2 = asked.clone();
        let api = serve(Router::new().route(
            "/api/v1/verdicts",
            get(move |Query(q): Query<Since>| {
                let a2 = a2.clone();
                async move {
                    a2.lock().unwrap().push(q.since);
                    let all = [
                        verdict(1, "h1", "1", "allow", Some(80)),
                        verdict(2, "h1", "", "deny", Some(22)),
                        verdict(3, "h1", "1", "allow", None),
                    ];
                    // The third appears after the first ask.
                    let n = if a2.lock().unwrap().len() == 1 { 2 } else { 3 };
                    Json(
                        all.into_iter()
                            .take(n)
                            .filter(|v| v["seq"].as_u64().unwrap() > q.since)
                            .collect::<Vec<_>>(),
                    )
                }
            }),
        ))
        .await;
        let mut f = Follow::new(0);
        let first = f.next(&api, false, true, true).await.unwrap();
        expect_test::expect![[r#"
            Time                      Host  Tenant  Policy  Rule       Verdict  Packet
            ------------------------  ----  ------  ------  ---------  -------  --------------------------
            2025-11-30T04:51:24.123Z  h1    blue    web-in  1          allow    10.1.0.2 → 10.1.0.3 tcp/80
            2025-11-30T04:51:25.123Z  h1    blue    web-in  (default)  deny     10.1.0.2 → 10.1.0.3 tcp/22
        "#]]
        .assert_eq(&first);
        let next = f.next(&api, false, true, false).await.unwrap();
        assert_eq!(
            next,
            "2025-11-30T04:51:26.123Z  h1    blue    web-in  1     allow    10.1.0.2 → 10.1.0.3 tcp\n"
        );
        assert_eq!(f.next(&api, false, true, false).await.unwrap(), "");
        assert_eq!(asked.lock().unwrap().as_slice(), [0, 2, 3]);

        let mut f = Follow::new(2);
        let j = f.next(&api, true, false, true).await.unwrap();
        let v: Vec<VerdictRecord> = serde_json::from_str(&j).unwrap();
        assert_eq!(v.iter().map(|r| r.seq).collect::<Vec<_>>(), [3]);
    }

    #[tokio::test]
    async fn an_error_answer_is_the_servers_message() {
        let api = serve(
            Router::new()
                .route(
                    "/api/v1/hosts/{host}/flows",
                    get(|Path(host): Path<String>| async move {
                        (
                            StatusCode::NOT_FOUND,
                            Json(json!({"error": format!("no host \"{host}\" is registered")})),
                        )
                    }),
                )
                .route(
                    "/api/v1/trace",
                    post(|| async {
                        (
                            StatusCode::BAD_REQUEST,
                            Json(json!({"error": "src: no endpoint \"blue/x\""})),
                        )
                    }),
                ),
        )
        .await;
        let e = flows_text(
            &api,
            false,
            FlowsArgs {
                host: "h9".into(),
                endpoint: None,
                network: None,
                policy: None,
                table: None,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "no host \"h9\" is registered (GET /api/v1/hosts/h9/flows: 404 Not Found)"
        );
        let e = trace_text(
            &api,
            false,
            TraceArgs {
                src: "blue/x".into(),
                dst: "10.1.0.3".into(),
                proto: Proto::Icmp,
                dport: None,
                live: false,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            "src: no endpoint \"blue/x\" (POST /api/v1/trace: 400 Bad Request)"
        );
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_764_478_283_123), "2025-11-30T04:51:23.123Z");
    }
}

//! Typed helpers for Open vSwitch's schema (`Open_vSwitch`, `Bridge`, `Port`, `Interface`).
//!
//! Each change is one transaction that also increments `Open_vSwitch.next_cfg`; the helper then
//! waits until ovs-vswitchd reports `cur_cfg` at least that high, which is how `ovs-vsctl` knows
//! the switch has applied a change. All helpers are idempotent.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use crate::client::{Client, Error};

const DB: &str = "Open_vSwitch";
/// How long ovs-vswitchd may take to apply a change.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A bridge as netplugin wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: String,
    /// `system` or `netdev`.
    pub datapath_type: String,
    pub protocols: Vec<String>,
    pub fail_mode: Option<String>,
    pub external_ids: BTreeMap<String, String>,
    pub other_config: BTreeMap<String, String>,
}

/// What kind of interface a port has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortKind {
    /// An existing network device (a veth end, a NIC).
    System,
    /// An internal port OVS creates.
    Internal,
    /// A VXLAN tunnel port.
    Vxlan {
        local_ip: Option<String>,
        remote_ip: String,
        key: String,
        dst_port: Option<u16>,
    },
}

/// A port as netplugin wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub bridge: String,
    pub name: String,
    pub kind: PortKind,
    /// Access VLAN (`tag`), if any.
    pub tag: Option<u16>,
    pub trunks: Vec<u16>,
    pub external_ids: BTreeMap<String, String>,
    pub ofport_request: Option<u16>,
}

/// A port of a bridge as the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub name: String,
    /// None until ovs-vswitchd has given the interface a number (or when it failed).
    pub ofport: Option<u32>,
    /// The interface's `type` (`""` for system, `internal`, `vxlan`, ...).
    pub kind: String,
    pub external_ids: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

fn map(m: &BTreeMap<String, String>) -> Json {
    json!([
        "map",
        m.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
    ])
}

fn set<T: serde::Serialize>(items: &[T]) -> Json {
    json!(["set", items])
}

fn opt_set<T: serde::Serialize>(item: Option<T>) -> Json {
    match item {
        Some(v) => json!(["set", [v]]),
        None => json!(["set", []]),
    }
}

/// Reads a `["map", [[k, v], ...]]` of strings.
fn read_map(j: &Json) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(pairs) = j.get(1).and_then(Json::as_array) {
        for p in pairs {
            if let (Some(k), Some(v)) = (p[0].as_str(), p[1].as_str()) {
                out.insert(k.to_string(), v.to_string());
            }
        }
    }
    out
}

/// Reads a set of uuids (or a single uuid) as their strings.
fn read_uuids(j: &Json) -> Vec<String> {
    match j.get(0).and_then(Json::as_str) {
        Some("uuid") => j[1]
            .as_str()
            .map(|s| vec![s.to_string()])
            .unwrap_or_default(),
        Some("set") => j[1]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.get(1).and_then(Json::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![],
    }
}

fn uuid_of(row: &Json) -> Result<String, Error> {
    row["_uuid"][1]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Protocol(format!("row without _uuid: {row}")))
}

fn rows(result: &Json) -> Vec<Json> {
    result["rows"].as_array().cloned().unwrap_or_default()
}

fn select(table: &str, wher: Json, columns: &[&str]) -> Json {
    json!({"op": "select", "table": table, "where": wher, "columns": columns})
}

fn by_name(name: &str) -> Json {
    json!([["name", "==", name]])
}

fn bump_next_cfg() -> [Json; 2] {
    [
        json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
               "mutations": [["next_cfg", "+=", 1]]}),
        select("Open_vSwitch", json!([]), &["next_cfg"]),
    ]
}

/// Runs `ops` plus the `next_cfg` bump, then waits for ovs-vswitchd to apply it.
async fn commit(db: &Client, mut ops: Vec<Json>) -> Result<Vec<Json>, Error> {
    ops.extend(bump_next_cfg());
    let results = db.transact(DB, ops).await?;
    let next = rows(results.last().expect("ops were sent"))
        .first()
        .and_then(|r| r["next_cfg"].as_i64())
        .ok_or_else(|| Error::Protocol("no next_cfg after the change".into()))?;
    wait_applied(db, next).await?;
    Ok(results)
}

/// Waits until `cur_cfg >= next`: ovs-vswitchd has applied every change up to `next`.
///
/// No polling: each round is one transaction whose `wait` operation ovsdb-server holds until
/// `cur_cfg` differs from the value last read, so the answer comes the moment ovs-vswitchd
/// writes it.
pub async fn wait_applied(db: &Client, next: i64) -> Result<(), Error> {
    let deadline = Instant::now() + APPLY_TIMEOUT;
    let mut cur: Option<i64> = None;
    loop {
        let mut ops = vec![];
        if let Some(c) = cur {
            let left = deadline.saturating_duration_since(Instant::now());
            ops.push(json!({"op": "wait", "table": "Open_vSwitch", "where": [],
                "columns": ["cur_cfg"], "until": "!=", "rows": [{"cur_cfg": c}],
                "timeout": left.as_millis() as u64}));
        }
        ops.push(select("Open_vSwitch", json!([]), &["cur_cfg"]));
        let r = match db.transact(DB, ops).await {
            Ok(r) => r,
            Err(Error::Transaction { error, .. }) if error == "timed out" => {
                return Err(Error::Timeout(format!(
                    "ovs-vswitchd has not applied configuration {next} after {APPLY_TIMEOUT:?} (at {}); is it running?",
                    cur.unwrap_or(0)
                )));
            }
            Err(e) => return Err(e),
        };
        let c = rows(r.last().expect("ops were sent"))
            .first()
            .and_then(|r| r["cur_cfg"].as_i64())
            .unwrap_or(0);
        if c >= next {
            return Ok(());
        }
        cur = Some(c);
    }
}

/// Creates the bridge (with its internal port) or makes an existing one's columns equal to the
/// spec, without recreating it.
pub async fn ensure_bridge(db: &Client, spec: &BridgeSpec) -> Result<(), Error> {
    let cols = json!({
        "datapath_type": spec.datapath_type,
        "protocols": set(&spec.protocols),
        "fail_mode": opt_set(spec.fail_mode.as_deref()),
        "external_ids": map(&spec.external_ids),
        "other_config": map(&spec.other_config),
    });
    let found = db
        .transact(
            DB,
            vec![select(
                "Bridge",
                by_name(&spec.name),
                &[
                    "_uuid",
                    "datapath_type",
                    "protocols",
                    "fail_mode",
                    "external_ids",
                    "other_config",
                ],
            )],
        )
        .await?;
    if let Some(row) = rows(&found[0]).first() {
        let same = row["datapath_type"] == cols["datapath_type"]
            && normal_set(&row["protocols"]) == normal_set(&cols["protocols"])
            && normal_set(&row["fail_mode"]) == normal_set(&cols["fail_mode"])
            && read_map(&row["external_ids"]) == spec.external_ids
            && read_map(&row["other_config"]) == spec.other_config;
        if same {
            return Ok(());
        }
        commit(
            db,
            vec![json!({"op": "update", "table": "Bridge", "where": by_name(&spec.name), "row": cols})],
        )
        .await?;
        return Ok(());
    }
    let mut row = cols;
    row["name"] = json!(spec.name);
    row["ports"] = json!(["set", [["named-uuid", "port"]]]);
    commit(
        db,
        vec![
            json!({"op": "insert", "table": "Interface", "uuid-name": "iface",
                   "row": {"name": spec.name, "type": "internal"}}),
            json!({"op": "insert", "table": "Port", "uuid-name": "port",
                   "row": {"name": spec.name, "interfaces": ["named-uuid", "iface"]}}),
            json!({"op": "insert", "table": "Bridge", "uuid-name": "br", "row": row}),
            json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                   "mutations": [["bridges", "insert", ["set", [["named-uuid", "br"]]]]]}),
        ],
    )
    .await?;
    Ok(())
}

/// A set in one spelling: a bare atom is the one-element set.
fn normal_set(j: &Json) -> Vec<Json> {
    match j.get(0).and_then(Json::as_str) {
        Some("set") => {
            let mut v = j[1].as_array().cloned().unwrap_or_default();
            v.sort_by_key(|x| x.to_string());
            v
        }
        _ => vec![j.clone()],
    }
}

/// Deletes a bridge and its ports. Absent is fine (false).
pub async fn delete_bridge(db: &Client, name: &str) -> Result<bool, Error> {
    let found = db
        .transact(DB, vec![select("Bridge", by_name(name), &["_uuid"])])
        .await?;
    let Some(row) = rows(&found[0]).first().cloned() else {
        return Ok(false);
    };
    let uuid = uuid_of(&row)?;
    commit(
        db,
        vec![json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                    "mutations": [["bridges", "delete", ["set", [["uuid", uuid]]]]]})],
    )
    .await?;
    Ok(true)
}

fn interface_row(spec: &PortSpec) -> Json {
    let (kind, options) = match &spec.kind {
        PortKind::System => ("", BTreeMap::new()),
        PortKind::Internal => ("internal", BTreeMap::new()),
        PortKind::Vxlan {
            local_ip,
            remote_ip,
            key,
            dst_port,
        } => {
            let mut o = BTreeMap::from([
                ("remote_ip".to_string(), remote_ip.clone()),
                ("key".to_string(), key.clone()),
            ]);
            if let Some(l) = local_ip {
                o.insert("local_ip".into(), l.clone());
            }
            if let Some(p) = dst_port {
                o.insert("dst_port".into(), p.to_string());
            }
            ("vxlan", o)
        }
    };
    json!({
        "name": spec.name,
        "type": kind,
        "options": map(&options),
        "ofport_request": opt_set(spec.ofport_request),
    })
}

fn port_row(spec: &PortSpec) -> Json {
    json!({
        "name": spec.name,
        "tag": opt_set(spec.tag),
        "trunks": set(&spec.trunks),
        "external_ids": map(&spec.external_ids),
    })
}

/// Creates the port (and its interface) on the bridge, or updates it in place. A port of that
/// name on another bridge is an error: moving a port silently would cut someone else's traffic.
pub async fn ensure_port(db: &Client, spec: &PortSpec) -> Result<(), Error> {
    let found = db
        .transact(
            DB,
            vec![
                select("Port", by_name(&spec.name), &["_uuid"]),
                select("Bridge", json!([]), &["name", "ports"]),
            ],
        )
        .await?;
    let bridges = rows(&found[1]);
    if !bridges.iter().any(|b| b["name"] == json!(spec.bridge)) {
        return Err(Error::Vswitch(format!(
            "bridge {} does not exist (adding port {})",
            spec.bridge, spec.name
        )));
    }
    if let Some(port) = rows(&found[0]).first() {
        let uuid = uuid_of(port)?;
        let owner = bridges
            .iter()
            .find(|b| read_uuids(&b["ports"]).contains(&uuid))
            .and_then(|b| b["name"].as_str().map(str::to_string));
        if let Some(owner) = owner.filter(|o| *o != spec.bridge) {
            return Err(Error::Vswitch(format!(
                "port {} is on bridge {owner}, not {}",
                spec.name, spec.bridge
            )));
        }
        let mut port = port_row(spec);
        port.as_object_mut().expect("object").remove("name");
        let mut iface = interface_row(spec);
        iface.as_object_mut().expect("object").remove("name");
        commit(
            db,
            vec![
                json!({"op": "update", "table": "Port", "where": by_name(&spec.name), "row": port}),
                json!({"op": "update", "table": "Interface", "where": by_name(&spec.name), "row": iface}),
            ],
        )
        .await?;
        return Ok(());
    }
    let mut port = port_row(spec);
    port["interfaces"] = json!(["named-uuid", "iface"]);
    commit(
        db,
        vec![
            json!({"op": "insert", "table": "Interface", "uuid-name": "iface", "row": interface_row(spec)}),
            json!({"op": "insert", "table": "Port", "uuid-name": "port", "row": port}),
            json!({"op": "mutate", "table": "Bridge", "where": by_name(&spec.bridge),
                   "mutations": [["ports", "insert", ["set", [["named-uuid", "port"]]]]]}),
        ],
    )
    .await?;
    Ok(())
}

/// Removes a port from a bridge (its interface goes with it). Absent is fine (false).
pub async fn delete_port(db: &Client, bridge: &str, name: &str) -> Result<bool, Error> {
    let found = db
        .transact(DB, vec![select("Port", by_name(name), &["_uuid"])])
        .await?;
    let Some(row) = rows(&found[0]).first().cloned() else {
        return Ok(false);
    };
    let uuid = uuid_of(&row)?;
    let r = commit(
        db,
        vec![
            json!({"op": "mutate", "table": "Bridge", "where": by_name(bridge),
                    "mutations": [["ports", "delete", ["set", [["uuid", uuid]]]]]}),
        ],
    )
    .await?;
    Ok(r[0]["count"].as_u64().unwrap_or(0) > 0)
}

/// Waits until the interface has an OpenFlow port number. OVS sets -1 when it cannot use the
/// interface; that is an error carrying OVS's reason.
pub async fn ofport(db: &Client, iface: &str, timeout: Duration) -> Result<u32, Error> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let r = db
            .transact(
                DB,
                vec![select("Interface", by_name(iface), &["ofport", "error"])],
            )
            .await?;
        let row = rows(&r[0]).first().cloned();
        let Some(row) = row else {
            return Err(Error::Vswitch(format!("interface {iface} does not exist")));
        };
        match row["ofport"].as_i64() {
            Some(n) if n > 0 => return Ok(n as u32),
            Some(-1) => {
                let why = row["error"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        normal_set(&row["error"])
                            .first()
                            .and_then(Json::as_str)
                            .unwrap_or("no reason given")
                            .to_string()
                    });
                return Err(Error::Vswitch(format!("OVS cannot use {iface}: {why}")));
            }
            _ => {}
        }
        if start.elapsed() > timeout {
            return Err(Error::Timeout(format!(
                "interface {iface} has no OpenFlow port after {timeout:?}"
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The ports of a bridge with their interfaces' numbers.
pub async fn ports(db: &Client, bridge: &str) -> Result<Vec<PortInfo>, Error> {
    let r = db
        .transact(
            DB,
            vec![
                select("Bridge", by_name(bridge), &["ports"]),
                select(
                    "Port",
                    json!([]),
                    &["_uuid", "name", "interfaces", "external_ids"],
                ),
                select(
                    "Interface",
                    json!([]),
                    &["_uuid", "name", "ofport", "type", "options"],
                ),
            ],
        )
        .await?;
    let Some(br) = rows(&r[0]).first().cloned() else {
        return Err(Error::Vswitch(format!("bridge {bridge} does not exist")));
    };
    let mine = read_uuids(&br["ports"]);
    let ifaces: BTreeMap<String, Json> = rows(&r[2])
        .into_iter()
        .filter_map(|i| Some((uuid_of(&i).ok()?, i)))
        .collect();
    let mut out = vec![];
    for p in rows(&r[1]) {
        let uuid = uuid_of(&p)?;
        if !mine.contains(&uuid) {
            continue;
        }
        let iface = read_uuids(&p["interfaces"])
            .first()
            .and_then(|u| ifaces.get(u))
            .cloned()
            .unwrap_or(Json::Null);
        out.push(PortInfo {
            name: p["name"].as_str().unwrap_or_default().to_string(),
            ofport: iface["ofport"]
                .as_i64()
                .filter(|n| *n > 0)
                .map(|n| n as u32),
            kind: iface["type"].as_str().unwrap_or_default().to_string(),
            external_ids: read_map(&p["external_ids"]),
            options: read_map(&iface["options"]),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

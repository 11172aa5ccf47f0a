//! netplugin's inspect API (`--inspect-listen`, reached by netmaster): the flows on the switch
//! now with their owners and counters, simulated traces on this host's compiled flows, and the
//! policy verdict log. JSON shapes: `weft_api::inspect`.
//!
//! | route                       | method | body               | answer               |
//! |-----------------------------|--------|--------------------|----------------------|
//! | `/inspect/flows?FILTER`     | GET    |                    | `Vec<FlowView>`      |
//! | `/inspect/trace`            | POST   | `HostTraceRequest` | `HostTrace`          |
//! | `/inspect/verdicts?since=N` | GET    |                    | `Vec<VerdictRecord>` |
//! | `/inspect/live/arm`         | POST   | `LiveArm`          | `{}`                 |
//! | `/inspect/live/{tag}`       | DELETE |                    | `LiveHop`            |

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use ofproto::instruction::InstructionList;
use ofproto::oxm::Field;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use weft_api::inspect::{
    FlowFilter, FlowView, HostTrace, HostTraceRequest, Ingress, LiveArm, LiveHop, Outcome,
    TraceProto, TraceStep, VerdictRecord,
};
use weft_policy::layout::{self, CookieKind};
use weft_policy::sim::{Ipv4, Tunnel, Verdict, L3, L4};
use weft_policy::{parse_mac, Bridge, Conntrack, Flow, Packet, Trace};

use crate::desired::Desired;
use crate::hoststate::HostPorts;
use crate::metrics::Metrics;
use crate::ofdriver::OfDriver;
use crate::reconcile::Reconciler;
use crate::verdict::{self, Cache, Ring};

/// The default port of the inspect API (on the host's VTEP address).
pub const PORT: u16 = 9103;

/// What the inspect API and the verdict log work with.
pub struct Inspector {
    pub(crate) host: String,
    pub(crate) vtep: Ipv4Addr,
    pub(crate) me: HostPorts,
    pub(crate) desired: Desired,
    pub(crate) driver: OfDriver,
    pub(crate) reconciler: Reconciler,
    pub(crate) metrics: Metrics,
    /// The recent verdict records.
    pub verdicts: Ring,
    cache: Mutex<Cache>,
    /// The live traces armed on this host, by tag, and the last tag picked here.
    live: tokio::sync::Mutex<LiveTraces>,
}

/// The live traces armed on this host.
#[derive(Default)]
struct LiveTraces {
    last: u8,
    armed: HashMap<u8, ArmedTrace>,
}

/// One armed live trace: what its flows saw so far, and its collector's stop.
struct ArmedTrace {
    seen: Arc<Mutex<Vec<crate::live::Seen>>>,
    stop: CancellationToken,
}

/// An error of the API: a status and a message.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, m.into())
}

fn unavailable(m: impl Into<String>) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, m.into())
}

/// A local or remote endpoint, as filters and traces need it.
#[derive(Debug, Clone)]
struct EpInfo {
    network: String,
    ofport: Option<u32>,
    mac: [u8; 6],
    ipv4: Vec<Ipv4Addr>,
}

impl Inspector {
    pub(crate) fn new(
        host: String,
        vtep: Ipv4Addr,
        me: HostPorts,
        desired: Desired,
        driver: OfDriver,
        reconciler: Reconciler,
        metrics: Metrics,
    ) -> Inspector {
        Inspector {
            host,
            vtep,
            me,
            desired,
            driver,
            reconciler,
            metrics,
            verdicts: Ring::default(),
            cache: Mutex::new(Cache::default()),
            live: tokio::sync::Mutex::new(LiveTraces::default()),
        }
    }

    /// The flows on the switch now, with their owners and counters, as `filter` selects.
    pub async fn flows(&self, filter: &FlowFilter) -> Result<Vec<FlowView>, ApiError> {
        let table = match &filter.table {
            None => None,
            Some(t) => Some(parse_table(t).ok_or_else(|| bad(format!("no table {t}")))?),
        };
        let dump = self
            .driver
            .dump()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let (owners, eps) = self
            .desired
            .look(|inc| {
                inc.map(|inc| {
                    let s = inc.state();
                    let mut eps: BTreeMap<String, EpInfo> = BTreeMap::new();
                    for e in s.endpoints {
                        eps.insert(
                            e.key,
                            EpInfo {
                                network: e.network,
                                ofport: Some(e.ofport),
                                mac: e.mac,
                                ipv4: e.ipv4,
                            },
                        );
                    }
                    for e in s.remote_endpoints {
                        eps.insert(
                            e.key,
                            EpInfo {
                                network: e.network,
                                ofport: None,
                                mac: e.mac,
                                ipv4: e.ipv4,
                            },
                        );
                    }
                    (inc.owners().clone(), eps)
                })
            })
            .await
            .flatten()
            .ok_or_else(|| {
                unavailable("nothing compiled yet (netmaster's snapshot has not arrived)")
            })?;
        let endpoint = match &filter.endpoint {
            None => None,
            Some(id) => Some((
                id.as_str(),
                eps.get(id)
                    .ok_or_else(|| bad(format!("endpoint {id} is not known on this host")))?,
            )),
        };
        let network = filter.network.as_deref().map(key_of);
        let policy = filter.policy.as_deref().map(key_of);
        let mut out = vec![];
        for s in &dump.flows {
            let f = Flow::from_stats(s);
            if table.is_some_and(|t| t != f.table) {
                continue;
            }
            let owner = owners.get(&f.cookie).cloned();
            let o = owner.as_deref().unwrap_or("");
            if let Some((id, ep)) = endpoint {
                if !flow_touches(&f, o, id, ep) {
                    continue;
                }
            }
            if let Some(n) = &network {
                let by_ep = ["endpoint ", "remote endpoint "]
                    .iter()
                    .find_map(|p| o.strip_prefix(p))
                    .and_then(|id| eps.get(id))
                    .is_some_and(|e| n.matches(&e.network));
                let by_net = o.strip_prefix("network ").is_some_and(|k| n.matches(k));
                if !by_ep && !by_net {
                    continue;
                }
            }
            if let Some(p) = &policy {
                let of_policy = o.strip_prefix("rule ").is_some_and(|k| {
                    // `tenant:policy:rule` (a rule id may hold ':' itself).
                    let mut parts = k.splitn(3, ':');
                    match (parts.next(), parts.next()) {
                        (Some(t), Some(pol)) => p.matches(&format!("{t}:{pol}")),
                        _ => false,
                    }
                });
                if !of_policy {
                    continue;
                }
            }
            out.push(FlowView {
                table: f.table,
                table_name: layout::table_name(f.table).unwrap_or("?").to_string(),
                priority: f.priority,
                cookie: f.cookie,
                owner,
                matches: f.match_.to_string(),
                actions: actions_text(&f),
                packets: s.packet_count,
                bytes: s.byte_count,
            });
        }
        Ok(out)
    }

    /// A simulated trace of `req`'s packet through this host's compiled flows.
    pub async fn trace(&self, req: &HostTraceRequest) -> Result<HostTrace, ApiError> {
        let ports = self.desired.ports();
        let (in_port, tunnel) = match &req.ingress {
            Ingress::Endpoint { endpoint } => {
                let p = ports
                    .get(endpoint)
                    .filter(|p| p.bridge == self.me.bridge)
                    .ok_or_else(|| bad(format!("endpoint {endpoint} has no port on this host")))?;
                (p.ofport, None)
            }
            Ingress::Tunnel { tun_id, from_vtep } => {
                let port = self
                    .me
                    .tunnel_port
                    .ok_or_else(|| bad("this host has no tunnel port"))?;
                (
                    port,
                    Some(Tunnel {
                        id: *tun_id,
                        src: *from_vtep,
                        dst: self.vtep,
                    }),
                )
            }
            Ingress::Uplink { .. } => (
                self.me
                    .uplink_port
                    .ok_or_else(|| bad("this host has no uplink"))?,
                None,
            ),
        };
        let mut req = req.clone();
        if req.live && req.sport.is_none() && req.proto != TraceProto::Icmp {
            // A source port of its own: the probe is a new connection whatever came before.
            req.sport = Some(32768 + (verdict::now_ms() % 28000) as u16);
        }
        let req = &req;
        let packet = packet_of(req, in_port, tunnel)?;
        let tunnel_port = self.me.tunnel_port;
        let trace = self
            .desired
            .look(move |inc| {
                inc.map(|inc| {
                    Bridge::new(inc.flows(), inc.owners(), tunnel_port)
                        .trace(&packet, &Conntrack::new())
                })
            })
            .await
            .flatten()
            .ok_or_else(|| {
                unavailable("nothing compiled yet (netmaster's snapshot has not arrived)")
            })?;
        let by_port: HashMap<u32, String> = ports
            .values()
            .filter(|p| p.bridge == self.me.bridge)
            .map(|p| (p.ofport, p.endpoint_id.clone()))
            .collect();
        let mut ht = self.host_trace(&trace, &by_port);
        if req.live {
            if !matches!(req.ingress, Ingress::Endpoint { .. }) {
                return Err(bad("live traces start at a local endpoint"));
            }
            let probe = crate::live::ProbeFields::of(&packet)
                .ok_or_else(|| bad("only IPv4 is traced live"))?;
            // netmaster's tag, armed by netmaster (it collects); else one of our own, armed,
            // waited for and removed here.
            let (tag, mine) = {
                let mut st = self.live.lock().await;
                match req.tag {
                    Some(t) if !(1..=63).contains(&t) => {
                        return Err(bad(format!("tag {t}: a DSCP tag is 1 to 63")))
                    }
                    Some(t) => (t, !st.armed.contains_key(&t)),
                    None => {
                        let mut t = st.last;
                        for _ in 0..63 {
                            t = t % 63 + 1;
                            if !st.armed.contains_key(&t) {
                                break;
                            }
                        }
                        st.last = t;
                        (t, true)
                    }
                }
            };
            if mine {
                self.arm_probe(&probe, tag).await?;
            }
            if let Err(e) = crate::live::inject(&self.driver, &packet, tag).await {
                if mine {
                    self.disarm(tag, std::time::Duration::ZERO, true).await;
                }
                return Err(unavailable(e));
            }
            let seen = if mine {
                self.disarm(tag, crate::live::WAIT, false).await
            } else {
                self.wait(tag, crate::live::WAIT, false).await
            };
            self.live_outcomes(&mut ht, &seen, &by_port);
        }
        Ok(ht)
    }

    /// `POST /inspect/live/arm`: installs the observation flows of a live trace for its probe.
    pub async fn arm(&self, a: &LiveArm) -> Result<(), ApiError> {
        if !(1..=63).contains(&a.tag) {
            return Err(bad(format!("tag {}: a DSCP tag is 1 to 63", a.tag)));
        }
        let v4 = |a: IpAddr| match a {
            IpAddr::V4(a) => Ok(a),
            IpAddr::V6(_) => Err(bad("only IPv4 is traced live")),
        };
        let probe = crate::live::ProbeFields {
            src: v4(a.src_ip)?,
            dst: v4(a.dst_ip)?,
            proto: match a.proto {
                TraceProto::Icmp => 1,
                TraceProto::Tcp => 6,
                TraceProto::Udp => 17,
            },
            sport: a.sport.filter(|_| a.proto != TraceProto::Icmp),
            dport: a.dport.filter(|_| a.proto != TraceProto::Icmp),
        };
        self.arm_probe(&probe, a.tag).await
    }

    async fn arm_probe(&self, probe: &crate::live::ProbeFields, tag: u8) -> Result<(), ApiError> {
        let (p, tunnel) = (*probe, self.me.tunnel_port);
        let armed = self
            .desired
            .look(move |inc| {
                inc.map(|inc| crate::live::arm(inc.flows(), inc.owners(), &p, tag, tunnel))
            })
            .await
            .flatten()
            .ok_or_else(|| {
                unavailable("nothing compiled yet (netmaster's snapshot has not arrived)")
            })?;
        for u in &armed.unwatched {
            debug!(tag, "live trace: not watched: {u}");
        }
        let armed = Arc::new(armed);
        let seen = Arc::new(Mutex::new(vec![]));
        let stop = CancellationToken::new();
        // The collector: subscribed before the flows go in, gone when disarmed (or after the
        // flows' hard timeout).
        let mut rx = self.driver.packet_ins();
        {
            let (armed, seen, stop) = (armed.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                let end = tokio::time::sleep(std::time::Duration::from_secs(
                    u64::from(crate::live::HARD_TIMEOUT) + 2,
                ));
                tokio::pin!(end);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = &mut end => return,
                        r = rx.recv() => match r {
                            Ok(pin) => {
                                if let Some(s) = crate::live::seen(&pin, tag, &armed) {
                                    seen.lock().unwrap_or_else(|e| e.into_inner()).push(s);
                                }
                            }
                            Err(RecvError::Lagged(_)) => continue,
                            Err(RecvError::Closed) => return,
                        },
                    }
                }
            });
        }
        if let Some(old) = self
            .live
            .lock()
            .await
            .armed
            .insert(tag, ArmedTrace { seen, stop })
        {
            old.stop.cancel();
        }
        if let Err(e) = crate::live::install(&self.driver, &armed).await {
            self.disarm(tag, std::time::Duration::ZERO, true).await;
            return Err(unavailable(e));
        }
        Ok(())
    }

    /// What the live trace `tag` saw, waiting up to `wait` for the probe's way here to end (or,
    /// unless `until_end`, for anything).
    async fn wait(
        &self,
        tag: u8,
        wait: std::time::Duration,
        until_end: bool,
    ) -> Vec<crate::live::Seen> {
        let Some(seen) = self
            .live
            .lock()
            .await
            .armed
            .get(&tag)
            .map(|a| a.seen.clone())
        else {
            return vec![];
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let done = if until_end {
                now.iter().any(|s| s.ends())
            } else {
                !now.is_empty()
            };
            if done || tokio::time::Instant::now() >= deadline {
                return now;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Waits (as [`Self::wait`]), then removes the live trace `tag`: its flows and collector.
    async fn disarm(
        &self,
        tag: u8,
        wait: std::time::Duration,
        until_end: bool,
    ) -> Vec<crate::live::Seen> {
        let seen = self.wait(tag, wait, until_end).await;
        if let Some(a) = self.live.lock().await.armed.remove(&tag) {
            a.stop.cancel();
        }
        crate::live::remove(&self.driver, tag).await;
        seen
    }

    /// `DELETE /inspect/live/{tag}`: what the live trace saw here (waiting a little for the
    /// probe's way to end), its flows removed.
    pub async fn collect(&self, tag: u8) -> LiveHop {
        let seen = self.disarm(tag, crate::live::WAIT, true).await;
        let by_port = self.by_port();
        LiveHop {
            host: self.host.clone(),
            observed: !seen.is_empty(),
            outcomes: self.seen_outcomes(&seen, &by_port),
        }
    }

    fn by_port(&self) -> HashMap<u32, String> {
        self.desired
            .ports()
            .values()
            .filter(|p| p.bridge == self.me.bridge)
            .map(|p| (p.ofport, p.endpoint_id.clone()))
            .collect()
    }

    /// What the observation flows saw, as outcomes (each once).
    fn seen_outcomes(
        &self,
        seen: &[crate::live::Seen],
        by_port: &HashMap<u32, String>,
    ) -> Vec<Outcome> {
        let mut out: Vec<Outcome> = vec![];
        for s in seen {
            let o = match s {
                crate::live::Seen::Output {
                    port,
                    tun_id,
                    tun_dst,
                    ..
                } => self.outcome_at(
                    *port,
                    None,
                    Some(weft_policy::sim::TunnelOut {
                        id: *tun_id,
                        remote: *tun_dst,
                    }),
                    by_port,
                ),
                crate::live::Seen::Dropped { by, .. } => Outcome::Dropped { by: by.clone() },
            };
            if !out.contains(&o) {
                out.push(o);
            }
        }
        out
    }

    /// A live trace's outcomes: what the observation flows saw the switch do with the probe
    /// (output, into the tunnel, dropped by what), or that they did not see it.
    fn live_outcomes(
        &self,
        ht: &mut HostTrace,
        seen: &[crate::live::Seen],
        by_port: &HashMap<u32, String>,
    ) {
        let logged: Vec<Outcome> = ht
            .outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Controller { reason } if reason.starts_with("verdict logged")))
            .cloned()
            .collect();
        let simulated: Vec<String> = ht
            .outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Dropped { by } => Some(by.clone()),
                _ => None,
            })
            .collect();
        let sim_tunnel = ht
            .outcomes
            .iter()
            .find(|o| matches!(o, Outcome::Tunnel { .. }))
            .cloned();
        ht.observed = !seen.is_empty();
        let mut outcomes = self.seen_outcomes(seen, by_port);
        // A packet-in without the tunnel metadata (a switch that leaves it out): the tunnel
        // port was seen, where it leads is the simulation's word.
        for o in &mut outcomes {
            if let (Outcome::Tunnel { remote_vtep, .. }, Some(t)) = (&*o, &sim_tunnel) {
                if remote_vtep.is_unspecified() {
                    *o = t.clone();
                }
            }
        }
        if outcomes.is_empty() {
            outcomes.push(Outcome::Dropped {
                by: format!(
                    "live: the probe was not seen on {} (no output, no watched drop){}",
                    self.host,
                    if simulated.is_empty() {
                        String::new()
                    } else {
                        format!("; the simulation says: {}", simulated.join(", "))
                    }
                ),
            });
        }
        // A logged rule's copy: only where the probe was not dropped (a drop's clone takes the
        // place of a logged deny's copy).
        if !outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Dropped { .. }))
        {
            outcomes.extend(logged);
        }
        ht.outcomes = outcomes;
    }

    /// Where a packet output to `port` goes.
    fn outcome_at(
        &self,
        port: u32,
        vlan: Option<u16>,
        tunnel: Option<weft_policy::sim::TunnelOut>,
        by_port: &HashMap<u32, String>,
    ) -> Outcome {
        if Some(port) == self.me.tunnel_port {
            let t = tunnel.unwrap_or(weft_policy::sim::TunnelOut {
                id: 0,
                remote: Ipv4Addr::UNSPECIFIED,
            });
            Outcome::Tunnel {
                tun_id: t.id,
                remote_vtep: t.remote,
            }
        } else if Some(port) == self.me.uplink_port {
            Outcome::Uplink { vlan }
        } else if self.me.gateway_port.is_some_and(|g| g.ofport == port) {
            Outcome::Host
        } else {
            Outcome::Delivered {
                endpoint: by_port
                    .get(&port)
                    .cloned()
                    .unwrap_or_else(|| format!("port {port}")),
            }
        }
    }

    /// A simulator trace in the API's terms.
    fn host_trace(&self, t: &Trace, by_port: &HashMap<u32, String>) -> HostTrace {
        let mut steps = vec![];
        let mut outcomes = vec![];
        push_steps(&mut steps, &t.steps);
        self.outcomes(&t.verdict, by_port, &mut steps, &mut outcomes);
        for l in &t.logged {
            outcomes.push(Outcome::Controller {
                reason: format!(
                    "verdict logged: {} (table {}, meter {})",
                    l.owner.as_deref().unwrap_or("an unknown object"),
                    l.table,
                    l.meter
                ),
            });
        }
        HostTrace {
            host: self.host.clone(),
            steps,
            outcomes,
            observed: false,
        }
    }

    fn outcomes(
        &self,
        v: &Verdict,
        by_port: &HashMap<u32, String>,
        steps: &mut Vec<TraceStep>,
        out: &mut Vec<Outcome>,
    ) {
        match v {
            Verdict::Output(outs) => {
                for o in outs {
                    out.push(self.outcome_at(o.port, o.packet.vlan, o.tunnel, by_port));
                }
            }
            Verdict::Dropped { reason, .. } => out.push(Outcome::Dropped { by: reason.clone() }),
            Verdict::ToController { reason, .. } => out.push(Outcome::Controller {
                reason: reason.clone(),
            }),
            Verdict::Multiple(copies) => {
                for c in copies {
                    push_steps(steps, &c.steps);
                    self.outcomes(&c.verdict, by_port, steps, out);
                }
            }
        }
    }

    /// A packet-in: if the verdict log sent it, its record (logged, counted, kept).
    pub async fn packet_in(&self, table: u8, cookie: u64, data: &[u8]) -> Option<VerdictRecord> {
        let version = self.reconciler.desired_version();
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(version, (table, cookie));
        let decider = match cached {
            Some(d) => d,
            None => {
                let d = self
                    .desired
                    .look(move |inc| {
                        inc.and_then(|inc| {
                            verdict::decider(inc.flows(), inc.owners(), table, cookie)
                        })
                    })
                    .await
                    .flatten();
                self.cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .put((table, cookie), d.clone());
                d
            }
        };
        let Some(d) = decider else {
            debug!(
                table,
                cookie = format!("{cookie:#x}"),
                "a packet-in that is not a verdict"
            );
            return None;
        };
        let mut r = verdict::record(&self.host, &d, data, verdict::now_ms())?;
        r.seq = self.verdicts.push(r.clone());
        self.metrics
            .verdict(&r.tenant, &r.policy, &r.rule, &r.verdict);
        verdict::log(&r);
        Some(r)
    }
}

fn push_steps(out: &mut Vec<TraceStep>, steps: &[weft_policy::sim::Step]) {
    for s in steps {
        let mut notes = s.actions.clone();
        notes.extend(s.notes.iter().cloned());
        notes.extend(s.ties.iter().map(|t| format!("tie: {t}")));
        out.push(TraceStep {
            table: s.table,
            table_name: s.table_name.to_string(),
            priority: s.priority,
            cookie: s.cookie,
            owner: s.owner.clone(),
            flow: s.flow.clone(),
            notes,
        });
    }
}

/// The flow's instructions as `ovs-ofctl` prints them.
fn actions_text(f: &Flow) -> String {
    InstructionList(&f.instructions).to_string()
}

/// `tenant/name` (or `name` alone) as a key filter.
struct KeyFilter {
    tenant: Option<String>,
    name: String,
}

impl KeyFilter {
    /// Whether `key` (`tenant:name`) is the one named.
    fn matches(&self, key: &str) -> bool {
        match key.split_once(':') {
            Some((t, n)) => n == self.name && self.tenant.as_deref().is_none_or(|x| x == t),
            None => false,
        }
    }
}

fn key_of(s: &str) -> KeyFilter {
    match s.split_once('/').or_else(|| s.split_once(':')) {
        Some((t, n)) => KeyFilter {
            tenant: Some(t.to_string()),
            name: n.to_string(),
        },
        None => KeyFilter {
            tenant: None,
            name: s.to_string(),
        },
    }
}

/// A table by number or by name.
pub fn parse_table(t: &str) -> Option<u8> {
    match t.parse::<u8>() {
        Ok(n) => Some(n),
        Err(_) => layout::TABLES
            .iter()
            .find(|(_, name)| *name == t)
            .map(|(n, _)| *n),
    }
}

/// Whether a flow is about endpoint `id`: made for it, or matching its port, MAC or addresses.
fn flow_touches(f: &Flow, owner: &str, id: &str, ep: &EpInfo) -> bool {
    if owner == format!("endpoint {id}") || owner == format!("remote endpoint {id}") {
        return true;
    }
    let has = |field: Field, v: u128| f.match_.get(field).is_some_and(|m| m.value() == v);
    if ep.ofport.is_some_and(|p| has(Field::InPort, u128::from(p))) {
        return true;
    }
    let mac = ep.mac.iter().fold(0u128, |a, b| (a << 8) | u128::from(*b));
    if has(Field::EthSrc, mac) || has(Field::EthDst, mac) {
        return true;
    }
    ep.ipv4.iter().any(|a| {
        let v = u128::from(u32::from(*a));
        [Field::Ipv4Src, Field::Ipv4Dst, Field::ArpSpa, Field::ArpTpa]
            .into_iter()
            .any(|fl| has(fl, v))
    })
}

/// The simulator's packet for a request.
fn packet_of(
    req: &HostTraceRequest,
    in_port: u32,
    tunnel: Option<Tunnel>,
) -> Result<Packet, ApiError> {
    let mac =
        |s: &str, what: &str| parse_mac(s).ok_or_else(|| bad(format!("{what} {s} is not a MAC")));
    let v4 = |a: IpAddr, what: &str| match a {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => Err(bad(format!("{what} {a}: only IPv4 is traced"))),
    };
    let l4 = match req.proto {
        TraceProto::Tcp => L4::Tcp {
            src: req.sport.unwrap_or(weft_policy::sim::CLIENT_PORT),
            dst: req.dport.ok_or_else(|| bad("tcp needs dport"))?,
        },
        TraceProto::Udp => L4::Udp {
            src: req.sport.unwrap_or(weft_policy::sim::CLIENT_PORT),
            dst: req.dport.ok_or_else(|| bad("udp needs dport"))?,
        },
        TraceProto::Icmp => L4::Icmp { typ: 8, code: 0 },
    };
    Ok(Packet {
        in_port,
        eth_src: mac(&req.src_mac, "srcMac")?,
        eth_dst: mac(&req.dst_mac, "dstMac")?,
        vlan: match req.ingress {
            Ingress::Uplink { vlan } => vlan,
            _ => None,
        },
        l3: L3::Ipv4(Ipv4 {
            src: v4(req.src_ip, "srcIp")?,
            dst: v4(req.dst_ip, "dstIp")?,
            dscp: 0,
            ttl: req.ttl,
            l4,
        }),
        tunnel,
    })
}

#[derive(Debug, serde::Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

/// The inspect API's routes.
pub fn router(i: Arc<Inspector>) -> Router {
    Router::new()
        .route(
            "/inspect/flows",
            get(
                |State(i): State<Arc<Inspector>>, Query(f): Query<FlowFilter>| async move {
                    i.flows(&f).await.map(Json)
                },
            ),
        )
        .route(
            "/inspect/trace",
            post(
                |State(i): State<Arc<Inspector>>, Json(req): Json<HostTraceRequest>| async move {
                    i.trace(&req).await.map(Json)
                },
            ),
        )
        .route(
            "/inspect/live/arm",
            post(
                |State(i): State<Arc<Inspector>>, Json(a): Json<LiveArm>| async move {
                    i.arm(&a).await.map(|()| Json(serde_json::json!({})))
                },
            ),
        )
        .route(
            "/inspect/live/{tag}",
            delete(
                |State(i): State<Arc<Inspector>>, Path(tag): Path<u8>| async move {
                    Json(i.collect(tag).await)
                },
            ),
        )
        .route(
            "/inspect/verdicts",
            get(
                |State(i): State<Arc<Inspector>>, Query(s): Query<Since>| async move {
                    Json(i.verdicts.since(s.since))
                },
            ),
        )
        .with_state(i)
}

/// Hands every packet-in the switch sends to [`Inspector::packet_in`] (the verdict log) until
/// cancelled. The verdict meter bounds them; one that falls behind skips what it missed.
pub(crate) fn follow_packet_ins(
    i: Arc<Inspector>,
    mut rx: tokio::sync::broadcast::Receiver<Arc<ofproto::msg::PacketIn2>>,
    cancel: CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    tokio::spawn(async move {
        loop {
            let p = tokio::select! {
                _ = cancel.cancelled() => return,
                r = rx.recv() => match r {
                    Ok(p) => p,
                    Err(RecvError::Lagged(n)) => {
                        warn!(missed = n, "packet-ins came faster than the verdict log took them");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            // OFPR_ACTION: what a controller action sent (the verdict log's among them).
            if p.reason == 1 {
                i.packet_in(p.table_id, p.cookie, &p.data).await;
            }
        }
    });
}

/// Serves the routes on `listener` until cancelled.
pub fn serve(i: Arc<Inspector>, listener: tokio::net::TcpListener, cancel: CancellationToken) {
    let app = router(i);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await
        {
            warn!(error = %e, "inspect API stopped");
        }
    });
}

/// Feeds the reconciler's observations into the metrics: batch and step times, flows per
/// table, and per-rule counters from each full read of the switch (named through the
/// compiler's owners).
pub(crate) struct MetricsFeed {
    pub(crate) metrics: Metrics,
    pub(crate) desired: Desired,
}

impl crate::reconcile::Observer for MetricsFeed {
    fn flow_operation(&self, kind: &str, took: std::time::Duration) {
        self.metrics.flow_operation(kind, took);
    }

    fn reconciled(&self, took: std::time::Duration) {
        self.metrics.reconciled(took);
    }

    fn dumped(&self, flows: &[ofproto::msg::multipart::FlowStats]) {
        let mut by_cookie: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for f in flows {
            let policy_table =
                f.table_id == layout::EGRESS_RULES || f.table_id == layout::INGRESS_RULES;
            let kind = CookieKind::from_cookie(f.cookie);
            if policy_table && matches!(kind, Some(CookieKind::Rule | CookieKind::Group)) {
                let e = by_cookie.entry(f.cookie).or_default();
                e.0 += f.packet_count;
                e.1 += f.byte_count;
            }
        }
        let (metrics, desired) = (self.metrics.clone(), self.desired.clone());
        tokio::spawn(async move {
            let named = desired
                .look(move |inc| {
                    let owners = inc.map(|i| i.owners().clone()).unwrap_or_default();
                    by_cookie
                        .into_iter()
                        .filter_map(|(c, (p, b))| Some((rule_labels(owners.get(&c)?)?, p, b)))
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap_or_default();
            metrics.rule_counts(&named);
        });
    }

    fn installed(&self, desired: &weft_policy::FlowSet) {
        let mut counts: BTreeMap<u8, usize> = BTreeMap::new();
        for k in desired.flows.keys() {
            *counts.entry(k.table).or_default() += 1;
        }
        self.metrics.flows_per_table(&counts);
    }
}

/// The labels of a rule (`rule t:p:r`) or a default deny (`group t:g`).
fn rule_labels(owner: &str) -> Option<crate::metrics::RuleLabels> {
    if let Some(k) = owner.strip_prefix("rule ") {
        let mut p = k.splitn(3, ':');
        return Some(crate::metrics::RuleLabels {
            tenant: p.next()?.into(),
            policy: p.next()?.into(),
            rule: p.next()?.into(),
        });
    }
    let (t, g) = owner.strip_prefix("group ")?.split_once(':')?;
    Some(crate::metrics::RuleLabels {
        tenant: t.into(),
        policy: format!("group:{g}"),
        rule: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_name_keys_with_or_without_their_tenant() {
        let f = key_of("blue/db-in");
        assert!(f.matches("blue:db-in"));
        assert!(!f.matches("red:db-in"));
        assert!(!f.matches("blue:db"));
        let any = key_of("db-in");
        assert!(any.matches("blue:db-in") && any.matches("red:db-in"));
        assert!(key_of("blue:web").matches("blue:web"));
        assert_eq!(parse_table("63"), Some(63));
        assert_eq!(parse_table("ingress-rules"), Some(63));
        assert_eq!(parse_table("classifier"), Some(0));
        assert_eq!(parse_table("nowhere"), None);
        let l = rule_labels("rule blue:db-in:a:b").unwrap();
        assert_eq!(
            (l.tenant.as_str(), l.policy.as_str(), l.rule.as_str()),
            ("blue", "db-in", "a:b")
        );
        let g = rule_labels("group blue:db").unwrap();
        assert_eq!((g.policy.as_str(), g.rule.as_str()), ("group:db", ""));
        assert!(rule_labels("endpoint e").is_none());
    }
}

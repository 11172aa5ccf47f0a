//! What netmaster shows of the inside (`api::inspect` is the contract):
//!
//! - `GET /api/v1/hosts/{host}/flows?FILTER`: a host's flows, from its netplugin;
//! - `POST /api/v1/trace`: a packet followed from host to host (each host traces its part, a
//!   tunnel's remote VTEP names the next host);
//! - `GET /api/v1/verdicts?since=N`: every host's logged policy verdicts, oldest first;
//! - `GET /api/v1/inspect/{tenants,networks,endpointGroups,policys,netprofiles}/{key}/`:
//!   Contiv's inspect shape, `{"Config": object, "Oper": {...}}`, with what netmaster knows;
//! - `GET /api/v1/tenants/{tenant}/matrix`: the tenant's policy matrix ([`crate::matrix`]).
//!
//! netplugin's inspect API is reached over HTTP at its node record's `inspect` address, with a
//! timeout; a host that is not registered is 404, one whose netplugin does not answer 503 (no
//! answer, no inspect address) or 502 (an answer that is an error or not the contract).

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use weft_api::inspect::{
    FlowFilter, FlowView, HostTrace, HostTraceRequest, Ingress, Outcome, TraceProto, TraceReport,
    TraceRequest, VerdictRecord,
};
use weft_api::state::State;
use weft_api::{Endpoint, Node};

use crate::intent::{Intent, IntentError};

/// The MAC a container's default route leads to: the gateway of every network
/// (docs/pipeline.md, routing; `weft_policy::layout`).
pub const GATEWAY_MAC: &str = "00:00:11:11:11:11";
/// Most hosts one trace may cross.
pub const MAX_HOPS: usize = 8;
/// How long a netplugin has to answer.
pub const NETPLUGIN_TIMEOUT: Duration = Duration::from_secs(3);
const SPORT: u16 = 40000;

static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .timeout(NETPLUGIN_TIMEOUT)
        .build()
        .expect("an HTTP client without TLS builds")
});

/// An error as the API answers it: `{"error": "..."}`.
#[derive(Debug)]
pub struct InspectError(pub StatusCode, pub String);

impl IntoResponse for InspectError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<IntentError> for InspectError {
    fn from(e: IntentError) -> Self {
        let status = match &e {
            IntentError::Invalid(_) | IntentError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IntentError::NotFound { .. } => StatusCode::NOT_FOUND,
            IntentError::Conflict(_) => StatusCode::CONFLICT,
            IntentError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        InspectError(status, e.to_string())
    }
}

fn bad(m: impl Into<String>) -> InspectError {
    InspectError(StatusCode::BAD_REQUEST, m.into())
}

fn not_found(m: impl Into<String>) -> InspectError {
    InspectError(StatusCode::NOT_FOUND, m.into())
}

/// Records under a store prefix; records that do not parse are skipped.
async fn records<T: DeserializeOwned>(i: &Intent, prefix: &str) -> Result<Vec<T>, InspectError> {
    let (kvs, _) = i
        .store()
        .range(prefix.as_bytes())
        .await
        .map_err(IntentError::from)?;
    Ok(kvs
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect())
}

async fn nodes(i: &Intent) -> Result<Vec<Node>, InspectError> {
    records(i, crate::keys::NODES).await
}

async fn endpoints(i: &Intent) -> Result<Vec<Endpoint>, InspectError> {
    records(i, crate::keys::ENDPOINTS).await
}

/// Calls a netplugin's inspect API: `GET` when `body` is None, else `POST` with it.
async fn call<T: DeserializeOwned>(
    node: &Node,
    path_and_query: &str,
    body: Option<&HostTraceRequest>,
) -> Result<T, InspectError> {
    let body = match body {
        None => None,
        Some(b) => Some(serde_json::to_value(b).map_err(|e| bad(e.to_string()))?),
    };
    let method = if body.is_some() {
        reqwest::Method::POST
    } else {
        reqwest::Method::GET
    };
    send(node, method, path_and_query, body).await
}

/// Calls a netplugin's inspect API with any method and JSON body.
async fn send<T: DeserializeOwned>(
    node: &Node,
    method: reqwest::Method,
    path_and_query: &str,
    body: Option<Value>,
) -> Result<T, InspectError> {
    let host = &node.name;
    if node.inspect.is_empty() {
        return Err(InspectError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("host {host}: its netplugin serves no inspect API (its node record has no inspect address; start netplugin with --inspect-listen)"),
        ));
    }
    let url = format!("http://{}{path_and_query}", node.inspect);
    let req = match body {
        None => CLIENT.request(method, &url),
        Some(b) => CLIENT.request(method, &url).json(&b),
    };
    let resp = req.send().await.map_err(|e| {
        let why = if e.is_timeout() {
            format!("did not answer within {} s", NETPLUGIN_TIMEOUT.as_secs())
        } else if e.is_connect() {
            "refused the connection or cannot be reached".to_string()
        } else {
            e.to_string()
        };
        InspectError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "host {host}: netplugin's inspect API at {} {why}",
                node.inspect
            ),
        )
    })?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| {
        if e.is_timeout() {
            InspectError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "host {host}: netplugin's answer did not arrive within {} s",
                    NETPLUGIN_TIMEOUT.as_secs()
                ),
            )
        } else {
            InspectError(
                StatusCode::BAD_GATEWAY,
                format!("host {host}: reading netplugin's answer: {e}"),
            )
        }
    })?;
    if !status.is_success() {
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or(text);
        // What netplugin refused as bad input stays the caller's mistake; what it does not do
        // (501) or cannot do yet (503: nothing compiled yet) is said as such; anything else
        // is a broken netplugin.
        let code = match status.as_u16() {
            400..=499 | 501 | 503 => {
                StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            _ => StatusCode::BAD_GATEWAY,
        };
        return Err(InspectError(
            code,
            format!("host {host}: netplugin answered {status}: {msg}"),
        ));
    }
    serde_json::from_str(&text).map_err(|e| {
        InspectError(
            StatusCode::BAD_GATEWAY,
            format!("host {host}: netplugin's answer is not what the inspect API promises: {e}"),
        )
    })
}

fn node_named<'a>(nodes: &'a [Node], host: &str) -> Result<&'a Node, InspectError> {
    nodes.iter().find(|n| n.name == host).ok_or_else(|| {
        not_found(format!(
            "host \"{host}\" is not registered (GET /api/v1/inspect/nodes/ lists the hosts)"
        ))
    })
}

// ---- flows ----

async fn host_flows(
    AxState(i): AxState<Intent>,
    Path(host): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<FlowView>>, InspectError> {
    let q = q.unwrap_or_default();
    // The filter is checked here, so a typo is the caller's 400 and not a host's.
    let pairs: Vec<(String, String)> = form_pairs(&q).map_err(bad)?;
    for (k, _) in &pairs {
        if !["endpoint", "network", "policy", "table"].contains(&k.as_str()) {
            return Err(bad(format!(
                "unknown flow filter \"{k}\": use endpoint, network, policy or table"
            )));
        }
    }
    let _: FlowFilter = serde_json::from_value(Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    ))
    .map_err(|e| bad(format!("flow filter: {e}")))?;
    let nodes = nodes(&i).await?;
    let node = node_named(&nodes, &host)?;
    let path = if q.is_empty() {
        "/inspect/flows".to_string()
    } else {
        format!("/inspect/flows?{q}")
    };
    Ok(Json(call(node, &path, None).await?))
}

/// `a=b&c=d` into pairs (percent-decoded, `+` as space).
fn form_pairs(q: &str) -> Result<Vec<(String, String)>, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("query: bad percent escape in \"{s}\""))?;
                out.push(h);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("query: \"{s}\" is not UTF-8"))
}

// ---- trace ----

/// Finds an endpoint by id or `tenant/container`.
fn find_endpoint<'a>(
    eps: &'a [Endpoint],
    name: &str,
    what: &str,
) -> Result<Option<&'a Endpoint>, InspectError> {
    if let Some((tenant, container)) = name.split_once('/') {
        let found: Vec<&Endpoint> = eps
            .iter()
            .filter(|e| e.tenant_name == tenant && e.container == container)
            .collect();
        return match found.as_slice() {
            [] => Err(not_found(format!(
                "{what} \"{name}\": tenant {tenant} has no endpoint of container {container}"
            ))),
            [one] => Ok(Some(one)),
            many => Err(bad(format!(
                "{what} \"{name}\": container {container} has {} endpoints ({}); name one by its endpoint id",
                many.len(),
                many.iter()
                    .map(|e| e.endpoint_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        };
    }
    Ok(eps.iter().find(|e| e.endpoint_id == name))
}

/// What a trace is given, resolved: the packet as the source's host receives it.
pub struct Resolved {
    pub src: Endpoint,
    pub dst_endpoint: Option<Endpoint>,
    pub first: HostTraceRequest,
    /// Set when the packet never leaves the container: why (an address of its own subnet that
    /// no endpoint of its network holds, so its ARP gets no answer).
    pub no_arp: Option<String>,
}

/// Resolves SRC and DST (pure, for tests): `state` for networks' subnets.
pub fn resolve(
    state: &State,
    eps: &[Endpoint],
    req: &TraceRequest,
) -> Result<Resolved, InspectError> {
    let src = find_endpoint(eps, &req.src, "src")?
        .ok_or_else(|| {
            not_found(format!(
                "src \"{}\": no endpoint has this id (or write tenant/container)",
                req.src
            ))
        })?
        .clone();
    let (dst_ep, dst_ip): (Option<Endpoint>, IpAddr) = match find_endpoint(eps, &req.dst, "dst")? {
        Some(e) => (Some(e.clone()), IpAddr::V4(e.ipv4)),
        None => {
            let ip: IpAddr = req.dst.parse().map_err(|_| {
                if req.dst.contains('/') {
                    not_found(format!("dst \"{}\": no such endpoint", req.dst))
                } else {
                    bad(format!(
                        "dst \"{}\" is neither an endpoint id, tenant/container nor an IP address",
                        req.dst
                    ))
                }
            })?;
            // An address of an endpoint of the source's tenant names that endpoint.
            let ep = eps
                .iter()
                .find(|e| e.tenant_name == src.tenant_name && IpAddr::V4(e.ipv4) == ip)
                .cloned();
            (ep, ip)
        }
    };
    if matches!(req.proto, TraceProto::Tcp | TraceProto::Udp) && req.dport.is_none() {
        return Err(bad("dport is required for tcp and udp"));
    }
    if req.proto == TraceProto::Icmp && req.dport.is_some() {
        return Err(bad("dport is for tcp and udp, not icmp"));
    }
    let in_subnet = match dst_ip {
        IpAddr::V4(a) => state
            .networks
            .get(&format!("{}:{}", src.tenant_name, src.network_name))
            .is_some_and(|n| n.subnet.net.contains(&a)),
        IpAddr::V6(_) => false,
    };
    // On the source's own subnet the container ARPs for the destination itself, and the
    // pipeline's ARP responder answers for the network's endpoints only: the frame goes to the
    // MAC of the endpoint of that network holding the address (whatever endpoint DST named), or
    // nowhere. Anything else goes to the default route, the network's gateway
    // (docs/pipeline.md, routing).
    let mut no_arp = None;
    let dst_mac = if in_subnet {
        let holder = eps.iter().find(|e| {
            e.tenant_name == src.tenant_name
                && e.network_name == src.network_name
                && IpAddr::V4(e.ipv4) == dst_ip
        });
        match holder {
            Some(h) => h.mac.clone(),
            None => {
                no_arp = Some(format!(
                    "no ARP answer: {dst_ip} is on network {}:{}, where no endpoint holds it; the container never sends the packet",
                    src.tenant_name, src.network_name
                ));
                "ff:ff:ff:ff:ff:ff".to_string()
            }
        }
    } else {
        GATEWAY_MAC.to_string()
    };
    let first = HostTraceRequest {
        ingress: Ingress::Endpoint {
            endpoint: src.endpoint_id.clone(),
        },
        src_mac: src.mac.clone(),
        dst_mac,
        src_ip: IpAddr::V4(src.ipv4),
        dst_ip,
        proto: req.proto,
        sport: (req.proto != TraceProto::Icmp).then_some(SPORT),
        dport: req.dport,
        ttl: 64,
        live: req.live,
        tag: None,
    };
    Ok(Resolved {
        src,
        dst_endpoint: dst_ep,
        first,
        no_arp,
    })
}

/// Follows a packet host to host: `ask(host, request)` traces one host's part.
pub async fn stitch<F, Fut>(
    nodes: &[Node],
    src_host: &str,
    first: HostTraceRequest,
    mut ask: F,
) -> Result<(Vec<HostTrace>, String, String), InspectError>
where
    F: FnMut(Node, HostTraceRequest) -> Fut,
    Fut: std::future::Future<Output = Result<HostTrace, InspectError>>,
{
    let start = nodes.iter().find(|n| n.name == src_host).ok_or_else(|| {
        InspectError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the source endpoint's host \"{src_host}\" is not registered (its netplugin is down?)"),
        )
    })?;
    let mut hops = vec![];
    let mut queue = VecDeque::from([(start.clone(), first)]);
    let mut seen = HashSet::new();
    // Where each branch ended: (verdict, decided_by) in the order found.
    let mut ends: Vec<(bool, String)> = vec![];
    while let Some((node, req)) = queue.pop_front() {
        if hops.len() >= MAX_HOPS {
            ends.push((
                false,
                format!("hop limit: the packet crossed {MAX_HOPS} hosts"),
            ));
            break;
        }
        if !seen.insert((node.name.clone(), format!("{:?}", req.ingress))) {
            ends.push((
                false,
                format!("loop: the packet came back to {} the same way", node.name),
            ));
            continue;
        }
        let trace = ask(node.clone(), req.clone()).await?;
        for o in &trace.outcomes {
            match o {
                Outcome::Tunnel {
                    tun_id,
                    remote_vtep,
                } => match nodes.iter().find(|n| n.vtep_ip == *remote_vtep) {
                    Some(next) => queue.push_back((
                        next.clone(),
                        HostTraceRequest {
                            ingress: Ingress::Tunnel {
                                tun_id: *tun_id,
                                from_vtep: node.vtep_ip,
                            },
                            ..req.clone()
                        },
                    )),
                    None => ends.push((
                        false,
                        format!("tunnel to VTEP {remote_vtep} (VNI {tun_id}) from {}: no registered host has that VTEP", node.name),
                    )),
                },
                Outcome::Delivered { endpoint } => {
                    ends.push((true, format!("delivered to endpoint {endpoint} on {}", trace.host)))
                }
                Outcome::Host => {
                    ends.push((true, format!("delivered to host {}", trace.host)))
                }
                Outcome::Uplink { vlan } => ends.push((
                    true,
                    match vlan {
                        Some(v) => format!("out of {}'s uplink, VLAN {v}", trace.host),
                        None => format!("out of {}'s uplink", trace.host),
                    },
                )),
                Outcome::Dropped { by } => ends.push((false, by.clone())),
                // A logged verdict is a copy sent to netplugin beside the packet's own fate;
                // it ends the trace only when nothing else happened to the packet.
                Outcome::Controller { reason } => {
                    if trace
                        .outcomes
                        .iter()
                        .all(|o| matches!(o, Outcome::Controller { .. }))
                    {
                        ends.push((
                            false,
                            format!("sent to netplugin on {}: {reason}", trace.host),
                        ))
                    }
                }
            }
        }
        if trace.outcomes.is_empty() {
            ends.push((false, format!("no outcome on {}", trace.host)));
        }
        hops.push(trace);
    }
    // Delivered anywhere wins (a flood's copies); else the last drop. A delivery is credited
    // to the last rule met on the way, on any host (egress rules on the sender's, ingress rules
    // on the receiver's).
    let (verdict, by) = match ends.iter().find(|(ok, _)| *ok) {
        Some((_, how)) => ("delivered", decided(&hops, how)),
        None => (
            "dropped",
            ends.last()
                .map(|(_, b)| b.clone())
                .unwrap_or_else(|| "no outcome".into()),
        ),
    };
    Ok((hops, verdict.into(), by))
}

/// What allowed a delivered packet: the last policy step (a rule) of any hop, or the default.
fn decided(hops: &[HostTrace], how: &str) -> String {
    match hops
        .iter()
        .flat_map(|h| h.steps.iter())
        .rev()
        .filter_map(|s| s.owner.as_deref())
        .find(|o| o.starts_with("rule "))
    {
        Some(rule) => format!("{rule} allow ({how})"),
        None => format!("no rule refused it ({how})"),
    }
}

async fn trace(AxState(i): AxState<Intent>, b: Bytes) -> Result<Json<TraceReport>, InspectError> {
    let req: TraceRequest =
        serde_json::from_slice(&b).map_err(|e| bad(format!("request body: {e}")))?;
    let state = i.read(|s| s.networks.clone()).await?;
    let state = State {
        networks: state,
        ..State::default()
    };
    let eps = endpoints(&i).await?;
    let r = resolve(&state, &eps, &req)?;
    if let Some(why) = r.no_arp {
        return Ok(Json(TraceReport {
            request: req,
            hops: vec![],
            verdict: "dropped".into(),
            decided_by: why,
        }));
    }
    let nodes = nodes(&i).await?;
    let (hops, verdict, decided_by) = if req.live {
        live_trace(&nodes, &r.src.host, r.first).await?
    } else {
        stitch(&nodes, &r.src.host, r.first, |node, req| async move {
            call::<HostTrace>(&node, "/inspect/trace", Some(&req)).await
        })
        .await?
    };
    Ok(Json(TraceReport {
        request: req,
        hops,
        verdict,
        decided_by,
    }))
}

// ---- live traces ----

/// The last DSCP tag netmaster gave a live trace (1–63, round robin).
static LIVE_TAG: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

fn next_tag() -> u8 {
    let prev = LIVE_TAG
        .fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |t| Some(t % 63 + 1),
        )
        .unwrap_or(0);
    prev % 63 + 1
}

/// A live trace across hosts: the path simulated first (which hosts the probe should cross),
/// every one of them armed with observation flows for the probe alone (`/inspect/live/arm`),
/// the probe injected at the source (`/inspect/trace` with the tag), then each host's
/// observations collected (`DELETE /inspect/live/{tag}`, which also removes them) and stitched
/// as the simulated hops are: what each host saw the switch do is its outcome, the steps are
/// the simulation's.
async fn live_trace(
    nodes: &[Node],
    src_host: &str,
    first: HostTraceRequest,
) -> Result<(Vec<HostTrace>, String, String), InspectError> {
    let simulated = HostTraceRequest {
        live: false,
        ..first.clone()
    };
    let (sim_hops, _, _) = stitch(nodes, src_host, simulated, |node, req| async move {
        call::<HostTrace>(&node, "/inspect/trace", Some(&req)).await
    })
    .await?;
    let tag = next_tag();
    // A source port of its own: the probe is a new connection whatever came before.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let sport = (first.proto != TraceProto::Icmp).then_some(32768 + (now % 28000) as u16);
    let arm = weft_api::inspect::LiveArm {
        tag,
        src_ip: first.src_ip,
        dst_ip: first.dst_ip,
        proto: first.proto,
        sport,
        dport: first.dport,
    };
    let mut hosts: Vec<&Node> = vec![];
    for h in std::iter::once(src_host).chain(sim_hops.iter().map(|h| h.host.as_str())) {
        if !hosts.iter().any(|n| n.name == h) {
            hosts.push(node_named(nodes, h)?);
        }
    }
    let body = serde_json::to_value(&arm).map_err(|e| bad(e.to_string()))?;
    let mut armed: Vec<&Node> = vec![];
    let mut failed = None;
    for n in &hosts {
        match send::<Value>(
            n,
            reqwest::Method::POST,
            "/inspect/live/arm",
            Some(body.clone()),
        )
        .await
        {
            Ok(_) => armed.push(n),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let injected = match failed {
        Some(e) => Err(e),
        None => {
            let req = HostTraceRequest {
                live: true,
                tag: Some(tag),
                sport,
                ..first.clone()
            };
            call::<HostTrace>(hosts[0], "/inspect/trace", Some(&req)).await
        }
    };
    // Every armed host collected (and its flows removed), whatever happened.
    let path = format!("/inspect/live/{tag}");
    let collected = futures::future::join_all(armed.iter().map(|n| {
        let path = path.clone();
        async move {
            (
                n.name.clone(),
                send::<weft_api::inspect::LiveHop>(n, reqwest::Method::DELETE, &path, None).await,
            )
        }
    }))
    .await;
    let source = injected?;
    let mut live: std::collections::HashMap<String, HostTrace> = Default::default();
    for (name, hop) in collected {
        if name == source.host {
            continue;
        }
        let steps = sim_hops
            .iter()
            .find(|h| h.host == name)
            .map(|h| h.steps.clone())
            .unwrap_or_default();
        let t = match hop {
            Ok(h) if h.observed => HostTrace {
                host: name.clone(),
                steps,
                outcomes: h.outcomes,
                observed: true,
            },
            Ok(_) => HostTrace {
                host: name.clone(),
                steps,
                outcomes: vec![Outcome::Dropped {
                    by: format!(
                        "live: the probe was not seen on {name} (no output, no watched drop)"
                    ),
                }],
                observed: false,
            },
            Err(e) => HostTrace {
                host: name.clone(),
                steps,
                outcomes: vec![Outcome::Dropped {
                    by: format!("live: what {name} saw is unknown: {}", e.1),
                }],
                observed: false,
            },
        };
        live.insert(name, t);
    }
    live.insert(source.host.clone(), source);
    stitch(nodes, src_host, first, |node, _| {
        let t = live.get(&node.name).cloned().unwrap_or_else(|| HostTrace {
            host: node.name.clone(),
            steps: vec![],
            outcomes: vec![Outcome::Dropped {
                by: format!(
                    "live: the probe went to {}, which the simulation did not expect, so it was not watched there",
                    node.name
                ),
            }],
            observed: false,
        });
        async move { Ok(t) }
    })
    .await
}

// ---- verdicts ----

async fn verdicts(
    AxState(i): AxState<Intent>,
    RawQuery(q): RawQuery,
) -> Result<Response, InspectError> {
    let mut since = 0u64;
    for (k, v) in form_pairs(&q.unwrap_or_default()).map_err(bad)? {
        match k.as_str() {
            "since" => {
                since = v.parse().map_err(|_| {
                    bad(format!(
                        "since \"{v}\" is not a sequence number (0 or more)"
                    ))
                })?
            }
            other => return Err(bad(format!("unknown parameter \"{other}\": use since"))),
        }
    }
    let nodes = nodes(&i).await?;
    let path = format!("/inspect/verdicts?since={since}");
    let answers = futures::future::join_all(nodes.iter().filter(|n| !n.inspect.is_empty()).map(
        |n| async {
            (
                n.name.clone(),
                call::<Vec<VerdictRecord>>(n, &path, None).await,
            )
        },
    ))
    .await;
    let (all, unreachable) = merge_verdicts(answers);
    let mut resp = Json(all).into_response();
    if !unreachable.is_empty() {
        tracing::warn!(hosts = ?unreachable, "verdicts: some netplugins did not answer");
        if let Ok(v) = unreachable.join(",").parse() {
            resp.headers_mut().insert("weft-unreachable-hosts", v);
        }
    }
    Ok(resp)
}

/// Every host's verdicts by time (then host, then sequence); the hosts that failed.
pub fn merge_verdicts(
    answers: Vec<(String, Result<Vec<VerdictRecord>, InspectError>)>,
) -> (Vec<VerdictRecord>, Vec<String>) {
    let mut all = vec![];
    let mut failed = vec![];
    for (host, a) in answers {
        match a {
            Ok(v) => all.extend(v),
            Err(_) => failed.push(host),
        }
    }
    all.sort_by(|a, b| (a.time_ms, &a.host, a.seq).cmp(&(b.time_ms, &b.host, b.seq)));
    (all, failed)
}

// ---- Contiv's inspect ----

fn ep_oper(e: &Endpoint) -> Value {
    let mut ips = vec![e.ipv4.to_string()];
    if let Some(v6) = e.ipv6 {
        ips.push(v6.to_string());
    }
    json!({
        "endpointID": e.endpoint_id,
        "containerName": e.container,
        "homingHost": e.host,
        "ipAddress": ips,
        "macAddress": e.mac,
        "network": format!("{}:{}", e.tenant_name, e.network_name),
        "endpointGroupKey": if e.group_name.is_empty() { String::new() } else { format!("{}:{}", e.tenant_name, e.group_name) },
        "interfaceName": e.interface_name,
    })
}

/// Contiv's `{"Config", "Oper"}` for one object (pure, for tests). `allocated`: the addresses
/// the network's pool holds (for networks). None: no such object.
pub fn contiv_inspect(
    state: &State,
    eps: &[Endpoint],
    allocated: &[Ipv4Addr],
    kind: &str,
    key: &str,
) -> Result<Option<Value>, InspectError> {
    fn of_tenant<'a>(eps: &'a [Endpoint], t: &'a str) -> impl Iterator<Item = &'a Endpoint> {
        eps.iter().filter(move |e| e.tenant_name == t)
    }
    Ok(match kind {
        "tenants" => state.tenants.get(key).map(|t| {
            let mine = |k: &String| k.split_once(':').is_some_and(|(tt, _)| tt == key);
            let n = of_tenant(eps, key).count();
            json!({"Config": t, "Oper": {
                "numEndpoints": n,
                "totalEndpoints": n,
                "totalNetworks": state.networks.keys().filter(|k| mine(k)).count(),
                "totalEPGs": state.groups.keys().filter(|k| mine(k)).count(),
                "totalPolicies": state.policies.keys().filter(|k| mine(k)).count(),
                "totalNetprofiles": state.netprofiles.keys().filter(|k| mine(k)).count(),
                "totalAppProfiles": state.app_profiles.keys().filter(|k| mine(k)).count(),
                "networks": state.networks.keys().filter(|k| mine(k)).collect::<Vec<_>>(),
                "endpointGroups": state.groups.keys().filter(|k| mine(k)).collect::<Vec<_>>(),
            }})
        }),
        "networks" => state.networks.get(key).map(|n| {
            let members: Vec<&Endpoint> = of_tenant(eps, &n.tenant_name)
                .filter(|e| e.network_name == n.network_name)
                .collect();
            let tag = match n.pkt_tag {
                weft_api::PktTag::Tag(t) => json!(t),
                weft_api::PktTag::Allocate => Value::Null,
            };
            let (vlan, vni) = match n.encap {
                weft_api::Encap::Vlan => (tag.clone(), Value::Null),
                weft_api::Encap::Vxlan => (Value::Null, tag.clone()),
            };
            let mut addrs: Vec<Ipv4Addr> = allocated.to_vec();
            addrs.sort();
            json!({"Config": n, "Oper": {
                "pktTag": tag,
                "externalPktTag": tag,
                "vlan": vlan,
                "vni": vni,
                "numEndpoints": members.len(),
                "allocatedAddressesCount": addrs.len(),
                "allocatedIPAddresses": ranges(&addrs),
                "endpoints": members.iter().map(|e| ep_oper(e)).collect::<Vec<_>>(),
            }})
        }),
        "endpointGroups" => state.groups.get(key).map(|g| {
            let members: Vec<&Endpoint> = of_tenant(eps, &g.tenant_name)
                .filter(|e| e.group_name == g.group_name && e.network_name == g.network_name)
                .collect();
            json!({"Config": g, "Oper": {
                "numEndpoints": members.len(),
                "endpoints": members.iter().map(|e| ep_oper(e)).collect::<Vec<_>>(),
            }})
        }),
        "policys" => state.policies.get(key).map(|p| {
            let groups: Vec<&weft_api::EndpointGroup> = state
                .groups
                .values()
                .filter(|g| g.tenant_name == p.tenant_name && g.policies.contains(&p.policy_name))
                .collect();
            let members: Vec<&Endpoint> = of_tenant(eps, &p.tenant_name)
                .filter(|e| groups.iter().any(|g| g.group_name == e.group_name && g.network_name == e.network_name))
                .collect();
            let rules = state
                .rules
                .values()
                .filter(|r| r.tenant_name == p.tenant_name && r.policy_name == p.policy_name)
                .count();
            json!({"Config": p, "Oper": {
                "endpointGroups": groups.iter().map(|g| format!("{}:{}", g.tenant_name, g.group_name)).collect::<Vec<_>>(),
                "numRules": rules,
                "numEndpoints": members.len(),
                "endpoints": members.iter().map(|e| ep_oper(e)).collect::<Vec<_>>(),
            }})
        }),
        "netprofiles" => state.netprofiles.get(key).map(|np| {
            let groups: Vec<String> = state
                .groups
                .values()
                .filter(|g| g.tenant_name == np.tenant_name && g.net_profile.as_deref() == Some(np.profile_name.as_str()))
                .map(|g| format!("{}:{}", g.tenant_name, g.group_name))
                .collect();
            let n = of_tenant(eps, &np.tenant_name)
                .filter(|e| groups.contains(&format!("{}:{}", e.tenant_name, e.group_name)))
                .count();
            json!({"Config": np, "Oper": {"endpointGroups": groups, "numEndpoints": n}})
        }),
        other => {
            return Err(not_found(format!(
                "no inspect for \"{other}\": use tenants, networks, endpointGroups, policys or netprofiles"
            )))
        }
    })
}

/// Sorted addresses as Contiv writes them: `10.1.0.2-10.1.0.4, 10.1.0.9`.
fn ranges(addrs: &[Ipv4Addr]) -> String {
    let mut out: Vec<(u32, u32)> = vec![];
    for a in addrs.iter().map(|a| u32::from(*a)) {
        match out.last_mut() {
            Some(l) if l.1 + 1 == a => l.1 = a,
            _ => out.push((a, a)),
        }
    }
    out.iter()
        .map(|(a, b)| {
            if a == b {
                Ipv4Addr::from(*a).to_string()
            } else {
                format!("{}-{}", Ipv4Addr::from(*a), Ipv4Addr::from(*b))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn contiv(
    AxState(i): AxState<Intent>,
    Path((kind, key)): Path<(String, String)>,
) -> Result<Json<Value>, InspectError> {
    let state = i.read(|s| s.clone()).await?;
    let eps = endpoints(&i).await?;
    let allocated: Vec<Ipv4Addr> = if kind == "networks" && state.networks.contains_key(&key) {
        // The address pool's value keys: `/weft/alloc/ip/T:N/v/<8 hex digits>`.
        let prefix = format!("{}ip/{key}/v/", crate::keys::ALLOC);
        let (kvs, _) = i
            .store()
            .range(prefix.as_bytes())
            .await
            .map_err(IntentError::from)?;
        kvs.iter()
            .filter_map(|kv| std::str::from_utf8(&kv.key[prefix.len()..]).ok())
            .filter_map(|v| u32::from_str_radix(v, 16).ok().map(Ipv4Addr::from))
            .collect()
    } else {
        vec![]
    };
    contiv_inspect(&state, &eps, &allocated, &kind, &key)?
        .map(Json)
        .ok_or_else(|| not_found(format!("{kind} \"{key}\" does not exist")))
}

// ---- matrix ----

async fn matrix(
    AxState(i): AxState<Intent>,
    Path(tenant): Path<String>,
) -> Result<Json<crate::matrix::Matrix>, InspectError> {
    let state = i.read(|s| s.clone()).await?;
    let eps = endpoints(&i).await?;
    crate::matrix::matrix(&state, &eps, &tenant)
        .map(Json)
        .ok_or_else(|| not_found(format!("tenant \"{tenant}\" does not exist")))
}

/// Adds the inspect routes to the REST router.
pub fn routes(r: Router<Intent>) -> Router<Intent> {
    r.route("/api/v1/hosts/{host}/flows", get(host_flows))
        .route("/api/v1/hosts/{host}/flows/", get(host_flows))
        .route("/api/v1/trace", post(trace))
        .route("/api/v1/trace/", post(trace))
        .route("/api/v1/verdicts", get(verdicts))
        .route("/api/v1/verdicts/", get(verdicts))
        .route("/api/v1/inspect/{kind}/{key}/", get(contiv))
        .route("/api/v1/inspect/{kind}/{key}", get(contiv))
        .route("/api/v1/tenants/{key}/matrix", get(matrix))
        .route("/api/v1/tenants/{key}/matrix/", get(matrix))
}

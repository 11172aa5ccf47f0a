//! The REST API under `/api/v1/`, on Contiv's paths: `tenants/`, `networks/{tenant}:{name}/`,
//! `endpointGroups/`, `netprofiles/`, `policys/`, `rules/`, `appProfiles/`, `globals/`; plus
//! `POST /api/v1/intent` (a whole spec, or a Contiv intent file, applied at once),
//! `inspect/state/`, `podAttachments/` (a pod's networks) and `cni/attachments` (the same in
//! dockin's format, for weft-cni). Errors are JSON `{"error": "..."}` with 400 (invalid input), 404, 409
//! (in use, or concurrent writers) or 503 (store unreachable).

use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use weft_api::contiv::ContivIntent;
use weft_api::rest::RestPath;
use weft_api::state::{MapKind, Object};
use weft_api::*;

use crate::intent::{Intent, IntentError};
use crate::store::StoreError;

/// An error as the API answers it.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<IntentError> for ApiError {
    fn from(e: IntentError) -> Self {
        let status = match &e {
            IntentError::Invalid(_) | IntentError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IntentError::NotFound { .. } => StatusCode::NOT_FOUND,
            IntentError::Conflict(_) => StatusCode::CONFLICT,
            IntentError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            IntentError::Store(StoreError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            IntentError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn body<T: DeserializeOwned>(b: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(b).map_err(|e| bad(format!("request body: {e}")))
}

/// An object kind served under `/api/v1/<PATH>/` (the paths are `api::rest`'s, which netctl
/// uses too).
trait RestKind: MapKind + RestPath + Serialize + DeserializeOwned + Send + Sync {}

impl<T: MapKind + RestPath + Serialize + DeserializeOwned + Send + Sync> RestKind for T {}

#[tracing::instrument(name = "rest.list", skip_all, fields(kind = T::KIND))]
async fn list<T: RestKind>(AxState(i): AxState<Intent>) -> Result<Json<Vec<T>>, ApiError> {
    Ok(Json(
        i.read(|s| T::map(s).values().cloned().collect()).await?,
    ))
}

#[tracing::instrument(name = "rest.get", skip_all, fields(kind = T::KIND, key = %key))]
async fn get_one<T: RestKind>(
    AxState(i): AxState<Intent>,
    Path(key): Path<String>,
) -> Result<Json<T>, ApiError> {
    i.read(|s| T::map(s).get(&key).cloned())
        .await?
        .map(Json)
        .ok_or_else(|| IntentError::NotFound { kind: T::KIND, key }.into())
}

#[tracing::instrument(name = "rest.put", skip_all, fields(kind = T::KIND, key = %key))]
async fn put_one<T: RestKind>(
    AxState(i): AxState<Intent>,
    Path(key): Path<String>,
    b: Bytes,
) -> Result<Json<T>, ApiError> {
    let obj: T = body(&b)?;
    if obj.key() != key {
        return Err(bad(format!(
            "{} \"{}\" posted to the path of \"{key}\": the names in the body and the path must agree",
            T::KIND,
            obj.key()
        )));
    }
    let stored = i.put(obj.into_object()).await?;
    Ok(Json(
        T::from_object(stored).expect("a put returns its own kind"),
    ))
}

#[tracing::instrument(name = "rest.delete", skip_all, fields(kind = T::KIND, key = %key))]
async fn delete_one<T: RestKind>(
    AxState(i): AxState<Intent>,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    i.delete(T::OF, &key).await?;
    Ok(Json(serde_json::json!({})))
}

fn kind_routes<T: RestKind>(r: Router<Intent>) -> Router<Intent> {
    let base = T::collection();
    let one = T::path("{key}");
    r.route(&base, get(list::<T>))
        .route(&base[..base.len() - 1], get(list::<T>))
        .route(
            &one,
            get(get_one::<T>)
                .post(put_one::<T>)
                .put(put_one::<T>)
                .delete(delete_one::<T>),
        )
        .route(
            &one[..one.len() - 1],
            get(get_one::<T>)
                .post(put_one::<T>)
                .put(put_one::<T>)
                .delete(delete_one::<T>),
        )
}

#[tracing::instrument(name = "rest.list", skip_all, fields(kind = Global::KIND))]
async fn globals(AxState(i): AxState<Intent>) -> Result<Json<Vec<Global>>, ApiError> {
    Ok(Json(vec![i.read(|s| s.global.clone()).await?]))
}

#[tracing::instrument(name = "rest.get", skip_all, fields(kind = Global::KIND, key = %name))]
async fn global_get(
    AxState(i): AxState<Intent>,
    Path(name): Path<String>,
) -> Result<Json<Global>, ApiError> {
    let g = i.read(|s| s.global.clone()).await?;
    if g.name != name {
        return Err(IntentError::NotFound {
            kind: "global",
            key: name,
        }
        .into());
    }
    Ok(Json(g))
}

#[tracing::instrument(name = "rest.put", skip_all, fields(kind = Global::KIND, key = %name))]
async fn global_put(
    AxState(i): AxState<Intent>,
    Path(name): Path<String>,
    b: Bytes,
) -> Result<Json<Global>, ApiError> {
    let g: Global = body(&b)?;
    if name != "global" || g.name != "global" {
        return Err(bad("there is one global object, named \"global\""));
    }
    match i.put(Object::Global(g)).await? {
        Object::Global(g) => Ok(Json(g)),
        _ => unreachable!("a put returns its own kind"),
    }
}

#[derive(Deserialize)]
struct IntentQuery {
    #[serde(default)]
    prune: bool,
}

#[derive(Serialize)]
struct IntentReply {
    changes: Vec<String>,
    /// Containers a Contiv file places on hosts: `container@host: tenant/network`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    placements: Vec<String>,
}

fn describe(c: &Change) -> String {
    match c {
        Change::Create { kind, key } => format!("create {kind} {key}"),
        Change::Update { kind, key } => format!("update {kind} {key}"),
        Change::Delete { kind, key } => format!("delete {kind} {key}"),
    }
}

#[tracing::instrument(name = "rest.intent", skip_all, fields(prune = q.prune, bytes = b.len()))]
async fn apply_intent(
    AxState(i): AxState<Intent>,
    Query(q): Query<IntentQuery>,
    b: Bytes,
) -> Result<Json<IntentReply>, ApiError> {
    let doc: serde_json::Value = body(&b)?;
    let (spec, placements, existing) = if ContivIntent::looks_like(&doc) {
        if q.prune {
            return Err(bad(
                "Contiv intent files add to the intent; prune applies to Weft specs only",
            ));
        }
        let c = ContivIntent::from_json(&String::from_utf8_lossy(&b))
            .and_then(|ci| ci.convert())
            .map_err(bad)?;
        let placements = c
            .placements
            .iter()
            .map(|p| format!("{}@{}: {}/{}", p.container, p.host, p.tenant, p.network))
            .collect();
        (c.spec, placements, c.existing_networks)
    } else {
        (
            Spec::from_json(&String::from_utf8_lossy(&b)).map_err(bad)?,
            vec![],
            vec![],
        )
    };
    let prune = q.prune;
    let contiv = !placements.is_empty() || !existing.is_empty() || ContivIntent::looks_like(&doc);
    let (_, changes) = i
        .apply(|cur| {
            for n in &existing {
                if !cur.networks.contains_key(n) {
                    return Err(IntentError::BadRequest(format!(
                        "network \"{n}\" is used without a subnet or pool and does not exist yet"
                    )));
                }
            }
            let mut next = spec.apply_to(cur, prune).map_err(IntentError::Invalid)?;
            if contiv {
                // A Contiv file adds to what is there: its tenants' VLAN/VXLAN ranges widen the
                // global ones rather than replace them, so networks already placed stay valid;
                // the rest of the global settings (which such a file cannot state: modes,
                // serviceCidrs, ...) stay as they are.
                next.global = Global {
                    vlans: union(&cur.global.vlans, &next.global.vlans),
                    vxlans: union(&cur.global.vxlans, &next.global.vxlans),
                    ..cur.global.clone()
                };
            }
            Ok(next)
        })
        .await?;
    Ok(Json(IntentReply {
        changes: changes.iter().map(describe).collect(),
        placements,
    }))
}

fn union(a: &IdRanges, b: &IdRanges) -> IdRanges {
    let mut v: Vec<(u32, u32)> = a.0.iter().chain(b.0.iter()).copied().collect();
    v.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::new();
    for (lo, hi) in v {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    IdRanges(out)
}

#[tracing::instrument(name = "rest.inspect_state", skip_all)]
async fn inspect_state(AxState(i): AxState<Intent>) -> Result<Json<serde_json::Value>, ApiError> {
    let (s, seq) = i.load().await?;
    Ok(Json(serde_json::json!({ "revision": seq, "state": s })))
}

/// Operational objects under a store prefix (`/weft/nodes/`, `/weft/endpoints/`), as JSON.
async fn inspect_prefix(
    i: &Intent,
    prefix: &str,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let (kvs, _) = i
        .store()
        .range(prefix.as_bytes())
        .await
        .map_err(IntentError::from)?;
    Ok(Json(
        kvs.iter()
            .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
            .collect(),
    ))
}

#[tracing::instrument(name = "rest.inspect_nodes", skip_all)]
async fn inspect_nodes(
    AxState(i): AxState<Intent>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    inspect_prefix(&i, crate::keys::NODES).await
}

#[tracing::instrument(name = "rest.inspect_endpoints", skip_all)]
async fn inspect_endpoints(
    AxState(i): AxState<Intent>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    inspect_prefix(&i, crate::keys::ENDPOINTS).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodQuery {
    #[serde(default)]
    pod_namespace: String,
    #[serde(default)]
    pod_name: String,
}

/// A pod's networks in dockin's format (`code`, `message`, `data[]`), as weft-cni's attachment
/// backends read it: `GET /api/v1/cni/attachments?podNamespace=NS&podName=NAME`. A pod without a
/// record is code 1 with a message (HTTP 200: the answer is in the body, as dockin's is).
#[tracing::instrument(name = "rest.cni_attachments", skip_all, fields(pod = %format_args!("{}/{}", q.pod_namespace, q.pod_name)))]
async fn cni_attachments(
    AxState(i): AxState<Intent>,
    Query(q): Query<PodQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if q.pod_namespace.is_empty() || q.pod_name.is_empty() {
        return Err(bad(
            "podNamespace and podName are required query parameters",
        ));
    }
    let key = format!("{}:{}", q.pod_namespace, q.pod_name);
    let data = i
        .read(|s| {
            s.pod_attachments.get(&key).map(|p| {
                p.attachments
                    .iter()
                    .map(|a| {
                        let n = s
                            .networks
                            .get(&format!("{}:{}", a.tenant_name, a.network_name));
                        serde_json::json!({
                            "type": format!("{}/{}", a.tenant_name, a.network_name),
                            "podIp": a.ip_address.map(|ip| ip.to_string()).unwrap_or_default(),
                            "subnetMask": n.map(|n| n.subnet.net.prefix_len().to_string()).unwrap_or_default(),
                            "gateway": n.and_then(|n| n.gateway).map(|g| g.to_string()).unwrap_or_default(),
                            "ifName": a.if_name,
                            "master": a.master,
                        })
                    })
                    .collect::<Vec<_>>()
            })
        })
        .await?;
    let Some(data) = data else {
        return Ok(Json(serde_json::json!({
            "code": 1,
            "message": format!("netmaster has no podAttachment \"{key}\" (create it under /api/v1/podAttachments/)"),
            "data": [],
        })));
    };
    Ok(Json(
        serde_json::json!({"code": 0, "message": "success", "data": data}),
    ))
}

#[tracing::instrument(name = "rest.healthz", level = "debug", skip_all)]
async fn healthz(AxState(i): AxState<Intent>) -> Response {
    match i.store().get(crate::keys::HEALTHZ).await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// The REST API over `intent`.
pub fn router(intent: Intent) -> Router {
    let metrics = intent.metrics().clone();
    let mut r: Router<Intent> = Router::new()
        .route(
            "/api/v1/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .route("/healthz", get(healthz))
        .route("/api/v1/globals/", get(globals))
        .route(
            "/api/v1/globals/{name}/",
            get(global_get).post(global_put).put(global_put),
        )
        .route("/api/v1/intent", axum::routing::post(apply_intent))
        .route("/api/v1/inspect/state/", get(inspect_state))
        .route("/api/v1/inspect/nodes/", get(inspect_nodes))
        .route("/api/v1/inspect/endpoints/", get(inspect_endpoints))
        .route("/api/v1/cni/attachments", get(cni_attachments));
    r = kind_routes::<Tenant>(r);
    r = kind_routes::<Network>(r);
    r = kind_routes::<EndpointGroup>(r);
    r = kind_routes::<NetProfile>(r);
    r = kind_routes::<Policy>(r);
    r = kind_routes::<Rule>(r);
    r = kind_routes::<AppProfile>(r);
    r = kind_routes::<PodAttachment>(r);
    r = crate::inspect::routes(r);
    r.with_state(intent)
        .merge(crate::web::routes())
        .route(
            "/metrics",
            get(crate::metrics::serve).with_state(metrics.clone()),
        )
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::track,
        ))
}

/// The object kinds and their REST paths (for the OpenAPI document).
pub const KINDS: [(&str, &str); 8] = [
    ("tenants", Tenant::KIND),
    ("networks", Network::KIND),
    ("endpointGroups", EndpointGroup::KIND),
    ("netprofiles", NetProfile::KIND),
    ("policys", Policy::KIND),
    ("rules", Rule::KIND),
    ("appProfiles", AppProfile::KIND),
    ("podAttachments", PodAttachment::KIND),
];

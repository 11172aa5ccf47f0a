//! A typed client of netmaster's REST API: `api`'s objects on their paths, and the inspect
//! routes (`api::inspect`). Errors carry the server's message, the method, the path and the
//! status, as netctl prints them.

use anyhow::{bail, Context, Result};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weft_api::inspect::{FlowFilter, FlowView, TraceReport, TraceRequest, VerdictRecord};
use weft_api::model::*;
use weft_api::rest::RestPath;

/// An object kind netmaster serves, at the paths `api::rest` gives (the same ones its router
/// uses): listed at `/api/v1/<PATH>/`, each object at `/api/v1/<PATH>/<Keyed::key()>/`.
pub trait Resource: RestPath + Serialize + DeserializeOwned {}

impl<T: RestPath + Serialize + DeserializeOwned> Resource for T {}

/// The key of a tenant's object named `name`, as [`Keyed::key`] makes it (`tenant:name`).
pub fn scoped(tenant: &str, name: &str) -> String {
    Policy {
        tenant_name: tenant.to_string(),
        policy_name: name.to_string(),
    }
    .key()
}

/// The key of rule `id` of a tenant's policy, as [`Keyed::key`] makes it (`tenant:policy:id`).
pub fn rule_key(tenant: &str, policy: &str, id: &str) -> String {
    let rule: Rule = serde_json::from_value(serde_json::json!({
        "tenantName": tenant, "policyName": policy, "ruleId": id,
    }))
    .expect("a rule needs only its names");
    rule.key()
}

/// The path of the object of kind `T` with `key`.
pub fn path_of<T: Resource>(key: &str) -> String {
    T::path(key)
}

/// What `POST /api/v1/intent` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct IntentReply {
    #[serde(default)]
    pub changes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placements: Vec<String>,
}

pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> Result<reqwest::Url> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        reqwest::Url::parse(&url).with_context(|| {
            format!(
                "netmaster address {:?} is not a URL (set --netmaster or NETMASTER)",
                self.base
            )
        })
    }

    /// One request; the answer's JSON, or the server's error message (with `shown`, the path
    /// as netctl built it).
    async fn call<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: Method,
        url: reqwest::Url,
        shown: &str,
        body: Option<&B>,
    ) -> Result<R> {
        let mut req = self.http.request(method.clone(), url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.with_context(|| {
            format!(
                "cannot reach netmaster at {} (set --netmaster or NETMASTER)",
                self.base
            )
        })?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            let msg = v
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            bail!("{msg} ({method} {shown}: {status})");
        }
        serde_json::from_str(&text).with_context(|| {
            format!("netmaster's answer to {method} {shown} is not what netctl expects")
        })
    }

    async fn at<R: DeserializeOwned>(&self, method: Method, path: &str) -> Result<R> {
        self.call::<(), R>(method, self.url(path)?, path, None)
            .await
    }

    async fn with<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<R> {
        self.call(method, self.url(path)?, path, Some(body)).await
    }

    /// Every object of kind `T`.
    pub async fn list<T: Resource>(&self) -> Result<Vec<T>> {
        self.at(Method::GET, &T::collection()).await
    }

    /// The object of kind `T` with `key`.
    pub async fn get<T: Resource>(&self, key: &str) -> Result<T> {
        self.at(Method::GET, &path_of::<T>(key)).await
    }

    /// Creates or replaces `obj`; what netmaster stored (allocations filled in).
    pub async fn put<T: Resource>(&self, obj: &T) -> Result<T> {
        self.with(Method::POST, &path_of::<T>(&obj.key()), obj)
            .await
    }

    /// Deletes the object of kind `T` with `key`.
    pub async fn delete<T: Resource>(&self, key: &str) -> Result<()> {
        let _: Value = self.at(Method::DELETE, &path_of::<T>(key)).await?;
        Ok(())
    }

    /// Operational records as netmaster keeps them (`inspect/nodes/`, `inspect/endpoints/`).
    pub async fn records(&self, what: &str) -> Result<Value> {
        self.at(Method::GET, &format!("/api/v1/inspect/{what}/"))
            .await
    }

    /// Applies an intent file (a Weft spec or a Contiv intent file) as it is.
    pub async fn apply(&self, doc: &Value, prune: bool) -> Result<IntentReply> {
        let path = if prune {
            "/api/v1/intent?prune=true"
        } else {
            "/api/v1/intent"
        };
        self.with(Method::POST, path, doc).await
    }

    /// The flows on `host`'s switch that `filter` selects.
    pub async fn flows(&self, host: &str, filter: &FlowFilter) -> Result<Vec<FlowView>> {
        let path = format!("/api/v1/hosts/{host}/flows");
        let mut url = self.url(&path)?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in [
                ("endpoint", &filter.endpoint),
                ("network", &filter.network),
                ("policy", &filter.policy),
                ("table", &filter.table),
            ] {
                if let Some(v) = v {
                    q.append_pair(k, v);
                }
            }
        }
        let shown = match url.query() {
            Some("") | None => {
                url.set_query(None);
                path
            }
            Some(q) => format!("{path}?{q}"),
        };
        self.call::<(), _>(Method::GET, url, &shown, None).await
    }

    /// A packet traced across the hosts it crosses.
    pub async fn trace(&self, req: &TraceRequest) -> Result<TraceReport> {
        self.with(Method::POST, "/api/v1/trace", req).await
    }

    /// The policy verdicts logged after `since` (all hosts, oldest first).
    pub async fn verdicts(&self, since: u64) -> Result<Vec<VerdictRecord>> {
        self.at(Method::GET, &format!("/api/v1/verdicts?since={since}"))
            .await
    }
}

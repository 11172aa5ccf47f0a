//! netmaster as the agent sees it: node registration under a lease, endpoint allocation, and the
//! resumable watch of desired state, folded into a [`View`].

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint as TonicEndpoint};
use tracing::{debug, info, warn};
use weft_api::model::{Endpoint, EndpointGroup, Global, NetProfile, Network, Node, Rule, Tenant};
use weft_api::proto::agent as pb;
use weft_api::proto::agent::agent_service_client::AgentServiceClient;

/// The part of the desired state an agent uses, as the watch delivered it.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The store revision this view is at.
    pub revision: i64,
    /// Whether a whole snapshot has arrived (before that, the view is partial and the agent
    /// must not act on absences).
    pub complete: bool,
    pub networks: BTreeMap<String, Network>,
    /// Every endpoint of every host, by endpoint id.
    pub endpoints: BTreeMap<String, Endpoint>,
    pub nodes: BTreeMap<String, Node>,
    pub tenants: BTreeMap<String, Tenant>,
    /// Endpoint groups, netprofiles and rules (a rule names its policy), by key.
    pub groups: BTreeMap<String, EndpointGroup>,
    pub netprofiles: BTreeMap<String, NetProfile>,
    pub rules: BTreeMap<String, Rule>,
    /// The global settings (one object, `global`), once netmaster has sent them.
    pub globals: BTreeMap<String, Global>,
}

impl View {
    fn apply(&mut self, ev: &pb::WatchEvent) {
        let put = ev.kind == pb::watch_event::Kind::Put as i32;
        macro_rules! upsert {
            ($map:expr) => {
                if put {
                    match serde_json::from_slice(&ev.object_json) {
                        Ok(v) => {
                            $map.insert(ev.key.clone(), v);
                        }
                        Err(e) => warn!(kind = %ev.object_kind, key = %ev.key, error = %e,
                            "netmaster sent an object this agent cannot read; ignored"),
                    }
                } else {
                    $map.remove(&ev.key);
                }
            };
        }
        match ev.object_kind.as_str() {
            "network" => upsert!(self.networks),
            "endpoint" => upsert!(self.endpoints),
            "node" => upsert!(self.nodes),
            "tenant" => upsert!(self.tenants),
            "endpointGroup" => upsert!(self.groups),
            "netprofile" => upsert!(self.netprofiles),
            "rule" => upsert!(self.rules),
            "global" => upsert!(self.globals),
            _ => {}
        }
        self.revision = self.revision.max(ev.revision);
    }
}

/// A connection to netmaster's agent service.
#[derive(Clone)]
pub struct Netmaster {
    client: AgentServiceClient<Channel>,
    url: String,
}

impl Netmaster {
    /// A lazy connection to `url` (`http://HOST:PORT`): nothing is dialled until the first call,
    /// and calls while netmaster is away fail quickly.
    pub fn new(url: &str) -> Result<Netmaster, String> {
        let ep = TonicEndpoint::from_shared(url.to_string())
            .map_err(|e| format!("netmaster address \"{url}\": {e}"))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10));
        Ok(Netmaster {
            client: AgentServiceClient::new(ep.connect_lazy()),
            url: url.to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn allocate(
        &self,
        req: pb::AllocateEndpointRequest,
    ) -> Result<Endpoint, tonic::Status> {
        let reply = self
            .client
            .clone()
            .allocate_endpoint(req)
            .await?
            .into_inner();
        serde_json::from_slice(&reply.endpoint_json)
            .map_err(|e| tonic::Status::internal(format!("netmaster's endpoint record: {e}")))
    }

    pub async fn release(&self, endpoint_id: &str) -> Result<bool, tonic::Status> {
        Ok(self
            .client
            .clone()
            .release_endpoint(pb::ReleaseEndpointRequest {
                endpoint_id: endpoint_id.to_string(),
            })
            .await?
            .into_inner()
            .existed)
    }

    /// Keeps this host registered: registers, keeps the lease alive, registers again when the
    /// lease is lost or netmaster comes back.
    pub fn spawn_registration(&self, node: Node, ttl: u32, cancel: CancellationToken) {
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut client = client;
            'register: loop {
                let req = pb::RegisterNodeRequest {
                    name: node.name.clone(),
                    vtep_ip: node.vtep_ip.to_string(),
                    uplink: node.uplink.clone(),
                    lease_ttl_seconds: ttl,
                };
                let lease = match client.register_node(req).await {
                    Ok(r) => r.into_inner(),
                    Err(e) => {
                        debug!(error = %e, "registering with netmaster failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'register,
                            _ = cancel.cancelled() => return,
                        }
                    }
                };
                info!(node = %node.name, lease = lease.lease_id, "registered with netmaster");
                let every = Duration::from_millis(u64::from(lease.ttl_seconds.max(1)) * 1000 / 3);
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = cancel.cancelled() => return,
                    }
                    let r = client
                        .keep_alive(pb::KeepAliveRequest {
                            lease_id: lease.lease_id,
                        })
                        .await;
                    match r {
                        Ok(r) if r.get_ref().ttl_seconds > 0 => {}
                        Ok(_) => {
                            warn!("netmaster says the lease lapsed; registering again");
                            continue 'register;
                        }
                        Err(e) => {
                            warn!(error = %e, "keepalive failed; registering again");
                            continue 'register;
                        }
                    }
                }
            }
        });
    }

    /// Watches netmaster's desired state for `host` and publishes each new [`View`]. Resumes
    /// after the last revision when the stream breaks; starts over from a snapshot when netmaster
    /// says that revision is gone.
    pub fn spawn_watch(&self, host: String, cancel: CancellationToken) -> watch::Receiver<View> {
        let (tx, rx) = watch::channel(View::default());
        let mut client = self.client.clone();
        tokio::spawn(async move {
            let mut view = View::default();
            let mut backoff = Duration::from_millis(100);
            loop {
                let from = if view.complete { view.revision } else { 0 };
                let call = client.watch(pb::WatchRequest {
                    host: host.clone(),
                    from_revision: from,
                });
                let stream = tokio::select! {
                    r = call => r,
                    _ = cancel.cancelled() => return,
                };
                let mut stream = match stream {
                    Ok(s) => s.into_inner(),
                    Err(e) => {
                        debug!(error = %e, "watching netmaster failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = cancel.cancelled() => return,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                };
                backoff = Duration::from_millis(100);
                // A snapshot is built aside and swapped in whole at its end.
                let mut building = (from == 0).then(View::default);
                loop {
                    let msg = tokio::select! {
                        m = stream.message() => m,
                        _ = cancel.cancelled() => return,
                    };
                    match msg {
                        Ok(Some(ev)) => {
                            if ev.kind == pb::watch_event::Kind::SnapshotEnd as i32 {
                                if let Some(mut v) = building.take() {
                                    v.revision = ev.revision;
                                    v.complete = true;
                                    view = v;
                                    info!(
                                        revision = view.revision,
                                        networks = view.networks.len(),
                                        endpoints = view.endpoints.len(),
                                        "desired state received"
                                    );
                                    tx.send_replace(view.clone());
                                }
                                continue;
                            }
                            match building.as_mut() {
                                Some(b) => b.apply(&ev),
                                None => {
                                    view.apply(&ev);
                                    tx.send_replace(view.clone());
                                }
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            if e.code() == tonic::Code::OutOfRange {
                                warn!("netmaster compacted past our revision; starting over");
                                view.complete = false;
                            } else {
                                debug!(error = %e, "the watch broke; resuming");
                            }
                            break;
                        }
                    }
                }
            }
        });
        rx
    }
}

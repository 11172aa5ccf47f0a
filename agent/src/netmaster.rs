//! netmaster as the agent sees it: node registration under a lease, endpoint allocation, and the
//! resumable watch of desired state, folded into a [`View`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint as TonicEndpoint};
use tracing::{debug, info, warn};
use weft_api::model::{Endpoint, EndpointGroup, Global, NetProfile, Network, Node, Rule, Tenant};
use weft_api::proto::agent as pb;
use weft_api::proto::agent::agent_service_client::AgentServiceClient;
use weft_api::watch::{digest_of, Kind, Object};

/// The part of the desired state this host receives (see `docs/netmaster.md`, "What a host
/// receives"), as the watch delivered it.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The store revision this view is at.
    pub revision: i64,
    /// Whether a whole snapshot has arrived (before that, the view is partial and the agent
    /// must not act on absences).
    pub complete: bool,
    pub networks: BTreeMap<String, Network>,
    /// The endpoints of every network this host receives, on every host, by endpoint id.
    pub endpoints: BTreeMap<String, Endpoint>,
    pub nodes: BTreeMap<String, Node>,
    pub tenants: BTreeMap<String, Tenant>,
    /// Endpoint groups, netprofiles and rules (a rule names its policy), by key.
    pub groups: BTreeMap<String, EndpointGroup>,
    pub netprofiles: BTreeMap<String, NetProfile>,
    pub rules: BTreeMap<String, Rule>,
    /// The global settings (one object, `global`), once netmaster has sent them.
    pub globals: BTreeMap<String, Global>,
    /// The units held: each one's digest and members (to resume, and to drop a unit).
    units: HashMap<String, HeldUnit>,
}

#[derive(Debug, Clone, Default)]
struct HeldUnit {
    digest: u64,
    members: HashSet<(Kind, String)>,
}

/// One change of the view, for the owner of desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewChange {
    /// An object created or changed (read it from the view).
    Put(Kind, String),
    /// An object gone (dropped with its unit, or deleted).
    Delete(Kind, String),
    /// The whole view replaced (a new snapshot).
    Reset,
}

impl View {
    fn take(&mut self, kind: Kind, key: &str) -> Option<Object> {
        Some(match kind {
            Kind::Global => Object::Global(self.globals.remove(key)?),
            Kind::Tenant => Object::Tenant(self.tenants.remove(key)?),
            Kind::Network => Object::Network(self.networks.remove(key)?),
            Kind::EndpointGroup => Object::EndpointGroup(self.groups.remove(key)?),
            Kind::NetProfile => Object::NetProfile(self.netprofiles.remove(key)?),
            Kind::Rule => Object::Rule(self.rules.remove(key)?),
            Kind::Node => Object::Node(self.nodes.remove(key)?),
            Kind::Endpoint => Object::Endpoint(self.endpoints.remove(key)?),
        })
    }

    /// Removes an object; whether it was there.
    pub(crate) fn remove(&mut self, kind: Kind, key: &str) -> bool {
        let Some(old) = self.take(kind, key) else {
            return false;
        };
        let unit = old.unit();
        if let Some(u) = self.units.get_mut(&unit) {
            if u.members.remove(&(kind, key.to_string())) {
                u.digest ^= digest_of(kind, key);
            }
            if u.members.is_empty() {
                self.units.remove(&unit);
            }
        }
        true
    }

    pub(crate) fn put(&mut self, obj: Object) -> (Kind, String) {
        let (kind, key) = (obj.kind(), obj.key());
        self.remove(kind, &key);
        let u = self.units.entry(obj.unit()).or_default();
        u.members.insert((kind, key.clone()));
        u.digest ^= digest_of(kind, &key);
        match obj {
            Object::Global(o) => self.globals.insert(key.clone(), o).map(|_| ()),
            Object::Tenant(o) => self.tenants.insert(key.clone(), o).map(|_| ()),
            Object::Network(o) => self.networks.insert(key.clone(), o).map(|_| ()),
            Object::EndpointGroup(o) => self.groups.insert(key.clone(), o).map(|_| ()),
            Object::NetProfile(o) => self.netprofiles.insert(key.clone(), o).map(|_| ()),
            Object::Rule(o) => self.rules.insert(key.clone(), o).map(|_| ()),
            Object::Node(o) => self.nodes.insert(key.clone(), o).map(|_| ()),
            Object::Endpoint(o) => self.endpoints.insert(key.clone(), o).map(|_| ()),
        };
        (kind, key)
    }

    /// Applies one event; appends what changed.
    fn apply(&mut self, ev: &pb::WatchEvent, changes: &mut Vec<ViewChange>) {
        use pb::watch_event::Event;
        match &ev.event {
            Some(Event::Put(o)) => match Object::from_proto(o) {
                Ok(obj) => {
                    let (k, key) = self.put(obj);
                    changes.push(ViewChange::Put(k, key));
                }
                Err(e) => {
                    warn!(error = %e, "netmaster sent an object this agent cannot read; ignored")
                }
            },
            Some(Event::Delete(r)) => {
                let kind = pb::ObjectKind::try_from(r.kind)
                    .ok()
                    .and_then(Kind::from_proto);
                if let Some(kind) = kind {
                    if self.remove(kind, &r.key) {
                        changes.push(ViewChange::Delete(kind, r.key.clone()));
                    }
                }
            }
            Some(Event::Drop(d)) => {
                let members: Vec<(Kind, String)> = self
                    .units
                    .get(&d.unit)
                    .map(|u| u.members.iter().cloned().collect())
                    .unwrap_or_default();
                for (kind, key) in members {
                    if self.remove(kind, &key) {
                        changes.push(ViewChange::Delete(kind, key));
                    }
                }
            }
            Some(Event::Synced(_)) | None => {}
        }
        self.revision = self.revision.max(ev.revision);
    }

    /// The units held, with their digests, for resuming.
    pub fn held(&self) -> Vec<pb::HeldUnit> {
        self.units
            .iter()
            .map(|(u, h)| pb::HeldUnit {
                unit: u.clone(),
                digest: h.digest,
            })
            .collect()
    }
}

/// The view shared by the agent's parts: read it briefly under its lock; `status` says when it
/// moved (revision, complete).
#[derive(Clone)]
pub struct SharedView {
    view: Arc<RwLock<View>>,
    status: watch::Receiver<(i64, bool)>,
    counters: Arc<Counters>,
}

/// What the watch has done (metrics, benchmarks).
#[derive(Debug, Default)]
struct Counters {
    /// Streams opened that reached SYNCED: from a snapshot, and resumed.
    snapshots: AtomicU64,
    resumes: AtomicU64,
    /// Events and their encoded bytes received.
    events: AtomicU64,
    bytes: AtomicU64,
}

/// A copy of the watch's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchStats {
    pub snapshots: u64,
    pub resumes: u64,
    pub events: u64,
    pub bytes: u64,
}

impl SharedView {
    /// Reads the view. Keep the guard short, and never across an await.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn complete(&self) -> bool {
        self.status.borrow().1
    }

    pub fn stats(&self) -> WatchStats {
        let c = &self.counters;
        WatchStats {
            snapshots: c.snapshots.load(Ordering::Relaxed),
            resumes: c.resumes.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
        }
    }

    /// Waits (at most `timeout`) until `f` finds what it looks for in the view.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        f: impl Fn(&View) -> Option<T>,
    ) -> Option<T> {
        let mut status = self.status.clone();
        let look = async {
            loop {
                status.borrow_and_update();
                if let Some(t) = f(&self.read()) {
                    return Some(t);
                }
                if status.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::time::timeout(timeout, look).await.ok().flatten()
    }

    /// Waits until the view holds revision `revision` (or later) of a complete snapshot.
    pub async fn wait_revision(&self, revision: i64, timeout: Duration) -> bool {
        let mut status = self.status.clone();
        tokio::time::timeout(timeout, status.wait_for(|(r, c)| *c && *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// netmaster's address is not one.
#[derive(Debug, thiserror::Error)]
pub enum NetmasterError {
    #[error("netmaster address \"{url}\": {source}")]
    Address {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
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
    pub fn new(url: &str) -> Result<Netmaster, NetmasterError> {
        let ep = TonicEndpoint::from_shared(url.to_string())
            .map_err(|source| NetmasterError::Address {
                url: url.to_string(),
                source,
            })?
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

    /// Allocates an endpoint: its record, its network, and the store revision of the record
    /// (the view holds the endpoint's tenant once it reaches that revision).
    pub async fn allocate(
        &self,
        req: pb::AllocateEndpointRequest,
    ) -> Result<Allocated, tonic::Status> {
        let reply = self
            .client
            .clone()
            .allocate_endpoint(req)
            .await?
            .into_inner();
        let bad = |e: String| tonic::Status::internal(format!("netmaster's endpoint record: {e}"));
        let endpoint = reply
            .endpoint
            .as_ref()
            .ok_or_else(|| bad("missing".into()))
            .and_then(|e| weft_api::watch::endpoint_from(e).map_err(bad))?;
        let network = match &reply.network {
            Some(n) => Some(weft_api::watch::network_from_proto(n).map_err(bad)?),
            None => None,
        };
        Ok(Allocated {
            endpoint,
            network,
            revision: reply.revision,
        })
    }

    /// Networks by tenant and name (empty: all), with their groups, from netmaster.
    pub async fn networks(
        &self,
        tenant: &str,
        network: &str,
    ) -> Result<(Vec<Network>, Vec<EndpointGroup>), tonic::Status> {
        let reply = self
            .client
            .clone()
            .get_networks(pb::GetNetworksRequest {
                tenant: tenant.to_string(),
                network: network.to_string(),
            })
            .await?
            .into_inner();
        let nets = reply
            .networks
            .iter()
            .map(weft_api::watch::network_from_proto)
            .collect::<Result<_, _>>()
            .map_err(tonic::Status::internal)?;
        let groups = reply
            .groups
            .iter()
            .map(weft_api::watch::group_from_proto)
            .collect();
        Ok((nets, groups))
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
                    inspect: node.inspect.clone(),
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

    /// Watches netmaster's desired state for `host`: returns the shared view and the changes,
    /// one batch per step (a snapshot or a catch-up arrives as one batch at its SYNCED). Resumes
    /// after the last revision with the units held when the stream breaks.
    pub fn spawn_watch(
        &self,
        host: String,
        cancel: CancellationToken,
    ) -> (SharedView, mpsc::UnboundedReceiver<Vec<ViewChange>>) {
        let shared = Arc::new(RwLock::new(View::default()));
        let (status_tx, status_rx) = watch::channel((0i64, false));
        let (changes_tx, changes_rx) = mpsc::unbounded_channel();
        let mut client = self.client.clone();
        let view = shared.clone();
        let counters = Arc::new(Counters::default());
        let count = counters.clone();
        let span = tracing::info_span!("watch", %host, from_revision = tracing::field::Empty);
        let watch = async move {
            let write = || view.write().unwrap_or_else(|e| e.into_inner());
            let mut backoff = Duration::from_millis(100);
            loop {
                let (from, held) = {
                    let v = view.read().unwrap_or_else(|e| e.into_inner());
                    if v.complete {
                        (v.revision, v.held())
                    } else {
                        (0, vec![])
                    }
                };
                tracing::Span::current().record("from_revision", from);
                let call = client.watch(pb::WatchRequest {
                    host: host.clone(),
                    from_revision: from,
                    held,
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
                // A snapshot is built aside and swapped in whole at SYNCED; a catch-up is
                // applied in place but published only at its SYNCED.
                let mut building = (from == 0).then(View::default);
                let mut syncing = true;
                let mut changes = vec![];
                'stream: loop {
                    let msg = tokio::select! {
                        m = stream.message() => m,
                        _ = cancel.cancelled() => return,
                    };
                    let mut next = Some(msg);
                    // This message and every one already here form one batch.
                    while let Some(msg) = next.take() {
                        let ev = match msg {
                            Ok(Some(ev)) => ev,
                            Ok(None) => break 'stream,
                            Err(e) => {
                                debug!(error = %e, "the watch broke; resuming");
                                break 'stream;
                            }
                        };
                        let synced = matches!(ev.event, Some(pb::watch_event::Event::Synced(_)));
                        count.events.fetch_add(1, Ordering::Relaxed);
                        count
                            .bytes
                            .fetch_add(prost::Message::encoded_len(&ev) as u64, Ordering::Relaxed);
                        match building.as_mut() {
                            Some(b) => {
                                let mut ignored = vec![];
                                b.apply(&ev, &mut ignored);
                            }
                            None => write().apply(&ev, &mut changes),
                        }
                        if synced {
                            if building.is_some() {
                                count.snapshots.fetch_add(1, Ordering::Relaxed);
                            } else if syncing {
                                count.resumes.fetch_add(1, Ordering::Relaxed);
                            }
                            if let Some(mut b) = building.take() {
                                b.complete = true;
                                info!(
                                    revision = b.revision,
                                    units = b.units.len(),
                                    networks = b.networks.len(),
                                    endpoints = b.endpoints.len(),
                                    "desired state received"
                                );
                                *write() = b;
                                changes = vec![ViewChange::Reset];
                            }
                            syncing = false;
                        }
                        next = stream.message().now_or_never();
                    }
                    if syncing {
                        continue;
                    }
                    let (rev, complete) = {
                        let v = view.read().unwrap_or_else(|e| e.into_inner());
                        (v.revision, v.complete)
                    };
                    if !changes.is_empty() {
                        let _ = changes_tx.send(std::mem::take(&mut changes));
                    }
                    status_tx.send_if_modified(|s| {
                        let new = (rev, complete);
                        let moved = *s != new;
                        *s = new;
                        moved
                    });
                }
                if !changes.is_empty() {
                    let _ = changes_tx.send(std::mem::take(&mut changes));
                }
            }
        };
        tokio::spawn(tracing::Instrument::instrument(watch, span));
        (
            SharedView {
                view: shared,
                status: status_rx,
                counters,
            },
            changes_rx,
        )
    }
}

/// What netmaster answered to an allocation.
#[derive(Debug, Clone)]
pub struct Allocated {
    pub endpoint: Endpoint,
    pub network: Option<Network>,
    pub revision: i64,
}

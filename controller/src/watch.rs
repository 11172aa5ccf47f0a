//! The per-host watch. One task follows the store (one store watch for all agents), keeps every
//! object agents may need in memory, grouped in units (`weft_api::watch`), and knows which hosts
//! have endpoints in which tenants. Each change goes only to the agents whose units hold it;
//! a host that gains a unit (its first endpoint in a tenant, a new network of such a tenant, a
//! network made host-access) receives the unit's objects, one that loses it a drop.
//!
//! What a host receives (its interest):
//! - `cluster`: the global settings, every tenant and every node;
//! - for every tenant it has an endpoint in: `tenant/T` (rules, netprofiles) and `net/T:N` for
//!   every network N of T (the network, its groups, its endpoints on every host): routing
//!   between a tenant's networks is distributed, so each host routes what its endpoints send
//!   to any endpoint of the tenant, and policy peers may be in any network of the tenant;
//! - every host-access network's unit: every host reaches every host-access endpoint.
//!
//! Resuming needs no history: the agent says which units it holds with a digest of their keys;
//! a unit whose keys are those it had at its revision gets only what changed since, any other
//! unit is sent again whole.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use weft_api::proto::agent as pb;
use weft_api::watch::{digest_of, tenant_unit, Kind, Object, CLUSTER};

use crate::store::{KeyValue, Store, StoreError, WatchEvent};

use crate::keys::{ENDPOINTS, INTENT, NODES, ROOT};
/// Batches a subscriber may have queued before it counts as stuck and is cut off (it resumes).
const QUEUE: usize = 1024;

type Id = (Kind, String);

/// The object a store key holds, if hosts receive that kind.
fn id_of(key: &[u8]) -> Option<Id> {
    let k = std::str::from_utf8(key).ok()?;
    if let Some(rest) = k.strip_prefix(INTENT) {
        let (kind, key) = rest.split_once('/')?;
        return Some((Kind::from_name(kind)?, key.to_string()));
    }
    if let Some(name) = k.strip_prefix(NODES) {
        return Some((Kind::Node, name.to_string()));
    }
    k.strip_prefix(ENDPOINTS)
        .map(|id| (Kind::Endpoint, id.to_string()))
}

struct Stored {
    obj: Object,
    proto: pb::Object,
    unit: String,
    create: i64,
    modified: i64,
}

#[derive(Default)]
struct Unit {
    members: HashSet<Id>,
    digest: u64,
}

/// Whose interest a change may have moved.
#[derive(Debug, Default, PartialEq, Eq)]
enum Affected {
    #[default]
    None,
    Hosts(BTreeSet<String>),
    All,
}

impl Affected {
    fn add_host(&mut self, h: &str) {
        if h.is_empty() {
            return;
        }
        match self {
            Affected::All => {}
            Affected::None => *self = Affected::Hosts([h.to_string()].into()),
            Affected::Hosts(s) => {
                s.insert(h.to_string());
            }
        }
    }
    fn add_hosts<'a>(&mut self, hs: impl IntoIterator<Item = &'a String>) {
        for h in hs {
            self.add_host(h);
        }
    }
}

/// One store change, as the hub applied it.
struct Applied {
    /// The unit the object was in before, and is in after (None: absent).
    old_unit: Option<String>,
    new_unit: Option<String>,
    event: pb::watch_event::Event,
    affected: Affected,
}

/// Everything agents may need, indexed by unit and by host. Pure: no I/O.
#[derive(Default)]
pub struct HubState {
    /// The store revision the state is at.
    revision: i64,
    objects: HashMap<Id, Stored>,
    units: HashMap<String, Unit>,
    /// Each tenant's network units.
    tenant_nets: HashMap<String, BTreeSet<String>>,
    /// Units of host-access networks.
    host_access: BTreeSet<String>,
    /// Endpoints per tenant per host.
    tenant_hosts: HashMap<String, HashMap<String, usize>>,
    host_tenants: HashMap<String, BTreeSet<String>>,
}

impl HubState {
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The units `host` receives.
    pub fn interest(&self, host: &str) -> BTreeSet<String> {
        let mut units: BTreeSet<String> = self.host_access.clone();
        units.insert(CLUSTER.to_string());
        for t in self.host_tenants.get(host).into_iter().flatten() {
            units.insert(tenant_unit(t));
            units.extend(self.tenant_nets.get(t).into_iter().flatten().cloned());
        }
        units
    }

    fn count_endpoint(&mut self, tenant: &str, host: &str, up: bool) {
        if host.is_empty() {
            return;
        }
        let hosts = self.tenant_hosts.entry(tenant.to_string()).or_default();
        let n = hosts.entry(host.to_string()).or_default();
        if up {
            *n += 1;
            if *n == 1 {
                self.host_tenants
                    .entry(host.to_string())
                    .or_default()
                    .insert(tenant.to_string());
            }
            return;
        }
        *n = n.saturating_sub(1);
        if *n == 0 {
            hosts.remove(host);
            if hosts.is_empty() {
                self.tenant_hosts.remove(tenant);
            }
            if let Some(ts) = self.host_tenants.get_mut(host) {
                ts.remove(tenant);
                if ts.is_empty() {
                    self.host_tenants.remove(host);
                }
            }
        }
    }

    fn hosts_of(&self, tenant: &str) -> impl Iterator<Item = &String> {
        self.tenant_hosts
            .get(tenant)
            .into_iter()
            .flat_map(|h| h.keys())
    }

    /// Takes an object out of the indexes (before a change or a delete).
    fn unindex(&mut self, id: &Id, affected: &mut Affected) -> Option<Stored> {
        let old = self.objects.remove(id)?;
        if let Some(u) = self.units.get_mut(&old.unit) {
            u.members.remove(id);
            u.digest ^= digest_of(id.0, &id.1);
            if u.members.is_empty() {
                self.units.remove(&old.unit);
            }
        }
        match &old.obj {
            Object::Endpoint(e) => {
                self.count_endpoint(&e.tenant_name, &e.host, false);
                affected.add_host(&e.host);
            }
            Object::Network(n) => {
                if let Some(nets) = self.tenant_nets.get_mut(&n.tenant_name) {
                    nets.remove(&old.unit);
                    if nets.is_empty() {
                        self.tenant_nets.remove(&n.tenant_name);
                    }
                }
                if self.host_access.remove(&old.unit) {
                    *affected = Affected::All;
                }
                let hosts: Vec<String> = self.hosts_of(&n.tenant_name).cloned().collect();
                affected.add_hosts(&hosts);
            }
            _ => {}
        }
        Some(old)
    }

    fn index(&mut self, id: Id, s: Stored, affected: &mut Affected) {
        match &s.obj {
            Object::Endpoint(e) => {
                self.count_endpoint(&e.tenant_name, &e.host, true);
                affected.add_host(&e.host);
            }
            Object::Network(n) => {
                self.tenant_nets
                    .entry(n.tenant_name.clone())
                    .or_default()
                    .insert(s.unit.clone());
                if n.host_access && self.host_access.insert(s.unit.clone()) {
                    *affected = Affected::All;
                }
                let hosts: Vec<String> = self.hosts_of(&n.tenant_name).cloned().collect();
                affected.add_hosts(&hosts);
            }
            _ => {}
        }
        let u = self.units.entry(s.unit.clone()).or_default();
        u.members.insert(id.clone());
        u.digest ^= digest_of(id.0, &id.1);
        self.objects.insert(id, s);
    }

    /// Applies one store change; None for keys hosts do not receive (or unreadable values,
    /// which are logged and skipped).
    fn apply(&mut self, ev: &WatchEvent) -> Option<Applied> {
        self.revision = self.revision.max(ev.revision());
        let id = id_of(ev.key())?;
        let mut affected = Affected::None;
        match ev {
            WatchEvent::Put(kv) => {
                let s = stored(id.0, kv)?;
                // A change that moves no index (the common case: an endpoint's record
                // updated in place) affects no interest.
                let old = self.unindex(&id, &mut affected);
                let old_unit = old.as_ref().map(|o| o.unit.clone());
                let unchanged_interest =
                    old.as_ref().is_some_and(|o| same_interest(&o.obj, &s.obj));
                let new_unit = Some(s.unit.clone());
                let event = pb::watch_event::Event::Put(s.proto.clone());
                self.index(id, s, &mut affected);
                if unchanged_interest {
                    affected = Affected::None;
                }
                Some(Applied {
                    old_unit,
                    new_unit,
                    event,
                    affected,
                })
            }
            WatchEvent::Delete { .. } => {
                let old = self.unindex(&id, &mut affected)?;
                Some(Applied {
                    old_unit: Some(old.unit),
                    new_unit: None,
                    event: pb::watch_event::Event::Delete(pb::ObjectRef {
                        kind: id.0.to_proto() as i32,
                        key: id.1,
                    }),
                    affected,
                })
            }
        }
    }

    /// Loads a whole store range (at start, or after the store compacted past us).
    fn load(kvs: Vec<KeyValue>, revision: i64) -> HubState {
        let mut s = HubState {
            revision,
            ..HubState::default()
        };
        let mut ignored = Affected::None;
        for kv in kvs {
            let Some(id) = id_of(&kv.key) else { continue };
            if let Some(st) = stored(id.0, &kv) {
                s.index(id, st, &mut ignored);
            }
        }
        s
    }

    /// The puts of every object of `unit`, in key order (those modified after `after` only).
    fn unit_puts(&self, unit: &str, after: i64, out: &mut Vec<pb::WatchEvent>) {
        let Some(u) = self.units.get(unit) else {
            return;
        };
        let mut ids: Vec<&Id> = u.members.iter().collect();
        ids.sort();
        for id in ids {
            let s = &self.objects[id];
            if s.modified > after {
                out.push(pb::WatchEvent {
                    revision: s.modified,
                    event: Some(pb::watch_event::Event::Put(s.proto.clone())),
                });
            }
        }
    }

    /// The digest of the keys of `unit` that already existed at revision `at`.
    fn digest_at(&self, unit: &str, at: i64) -> u64 {
        let Some(u) = self.units.get(unit) else {
            return 0;
        };
        u.members
            .iter()
            .filter(|id| self.objects[*id].create <= at)
            .fold(0, |d, id| d ^ digest_of(id.0, &id.1))
    }

    /// What a new watch receives: a snapshot (from 0), or what changed after `from` given the
    /// units the agent holds; then SYNCED. Returns the events and the units now held.
    pub fn start(
        &self,
        host: &str,
        from: i64,
        held: &HashMap<String, u64>,
    ) -> (Vec<pb::WatchEvent>, BTreeSet<String>) {
        let units = self.interest(host);
        let mut out = vec![];
        let drop = |unit: &str| pb::WatchEvent {
            revision: self.revision,
            event: Some(pb::watch_event::Event::Drop(pb::UnitDrop {
                unit: unit.to_string(),
            })),
        };
        if from > 0 {
            let mut gone: Vec<&String> = held.keys().filter(|u| !units.contains(*u)).collect();
            gone.sort();
            for u in gone {
                out.push(drop(u));
            }
        }
        for u in &units {
            match held.get(u) {
                Some(d) if from > 0 && *d == self.digest_at(u, from) => {
                    self.unit_puts(u, from, &mut out)
                }
                Some(_) if from > 0 => {
                    out.push(drop(u));
                    self.unit_puts(u, 0, &mut out);
                }
                _ => self.unit_puts(u, 0, &mut out),
            }
        }
        out.push(pb::WatchEvent {
            revision: self.revision,
            event: Some(pb::watch_event::Event::Synced(pb::Synced {})),
        });
        (out, units)
    }

    /// Networks (and their groups) of `tenant` named `network`; empty matches all.
    pub fn networks(&self, tenant: &str, network: &str) -> pb::GetNetworksReply {
        let mut reply = pb::GetNetworksReply::default();
        // Through the tenants' network units: the networks, not every object.
        let units: BTreeSet<&String> = if tenant.is_empty() {
            self.tenant_nets.values().flatten().collect()
        } else {
            self.tenant_nets.get(tenant).into_iter().flatten().collect()
        };
        let nets = units.into_iter().filter_map(|u| {
            let key = u.strip_prefix("net/")?;
            let s = self.objects.get(&(Kind::Network, key.to_string()))?;
            match &s.obj {
                Object::Network(n) if network.is_empty() || n.network_name == network => Some(s),
                _ => None,
            }
        });
        for s in nets {
            let Object::Network(n) = &s.obj else { continue };
            reply.networks.push(weft_api::watch::network_to_proto(n));
            let mut groups: Vec<_> = self.units[&s.unit]
                .members
                .iter()
                .filter(|id| id.0 == Kind::EndpointGroup)
                .filter_map(|id| match &self.objects[id].obj {
                    Object::EndpointGroup(g) => Some(weft_api::watch::group_to_proto(g)),
                    _ => None,
                })
                .collect();
            groups.sort_by(|a, b| a.group_name.cmp(&b.group_name));
            reply.groups.extend(groups);
        }
        reply
    }
}

/// Whether two versions of an object leave every host's interest as it was.
fn same_interest(a: &Object, b: &Object) -> bool {
    match (a, b) {
        (Object::Endpoint(a), Object::Endpoint(b)) => {
            a.host == b.host && a.tenant_name == b.tenant_name && a.network_name == b.network_name
        }
        (Object::Network(a), Object::Network(b)) => a.host_access == b.host_access,
        _ => true,
    }
}

fn stored(kind: Kind, kv: &KeyValue) -> Option<Stored> {
    match Object::from_json(kind, &kv.value) {
        Ok(obj) => Some(Stored {
            proto: obj.to_proto(),
            unit: obj.unit(),
            obj,
            create: kv.create_revision,
            modified: kv.mod_revision,
        }),
        Err(e) => {
            warn!(key = %String::from_utf8_lossy(&kv.key), error = %e,
                "a stored object is unreadable; agents do not receive it");
            None
        }
    }
}

/// One agent's watch.
struct Subscriber {
    host: String,
    units: BTreeSet<String>,
    tx: mpsc::Sender<Vec<pb::WatchEvent>>,
}

/// The watches, indexed by the units they hold and by host, so that a change costs the
/// watches it concerns, not all of them.
#[derive(Default)]
struct Subs {
    next: u64,
    by_id: HashMap<u64, Subscriber>,
    holders: HashMap<String, BTreeSet<u64>>,
    by_host: HashMap<String, BTreeSet<u64>>,
}

impl Subs {
    fn add(&mut self, s: Subscriber) {
        let id = self.next;
        self.next += 1;
        for u in &s.units {
            self.holders.entry(u.clone()).or_default().insert(id);
        }
        self.by_host.entry(s.host.clone()).or_default().insert(id);
        self.by_id.insert(id, s);
    }

    fn unindex(&mut self, id: u64, units: &BTreeSet<String>) {
        for u in units {
            if let Some(h) = self.holders.get_mut(u) {
                h.remove(&id);
                if h.is_empty() {
                    self.holders.remove(u);
                }
            }
        }
    }

    fn set_units(&mut self, id: u64, units: BTreeSet<String>) {
        let Some(old) = self.by_id.get(&id).map(|s| s.units.clone()) else {
            return;
        };
        self.unindex(id, &old);
        for u in &units {
            self.holders.entry(u.clone()).or_default().insert(id);
        }
        if let Some(s) = self.by_id.get_mut(&id) {
            s.units = units;
        }
    }

    fn remove(&mut self, id: u64) -> Option<Subscriber> {
        let s = self.by_id.remove(&id)?;
        self.unindex(id, &s.units);
        if let Some(h) = self.by_host.get_mut(&s.host) {
            h.remove(&id);
            if h.is_empty() {
                self.by_host.remove(&s.host);
            }
        }
        Some(s)
    }

    /// Drops the watches whose agents went away.
    fn sweep(&mut self) {
        let gone: Vec<u64> = self
            .by_id
            .iter()
            .filter(|(_, s)| s.tx.is_closed())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.remove(id);
        }
    }
}

enum Cmd {
    Subscribe {
        host: String,
        from: i64,
        held: HashMap<String, u64>,
        reply: oneshot::Sender<mpsc::Receiver<Vec<pb::WatchEvent>>>,
    },
    Networks {
        tenant: String,
        network: String,
        reply: oneshot::Sender<pb::GetNetworksReply>,
    },
    Stats(oneshot::Sender<HubStats>),
    Queued(oneshot::Sender<Vec<(String, usize)>>),
}

/// Counters of the hub, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    pub revision: i64,
    pub objects: usize,
    pub subscribers: usize,
    /// Events sent to subscribers, and their encoded bytes.
    pub events_sent: u64,
    pub bytes_sent: u64,
}

/// Handle to the hub task.
#[derive(Clone)]
pub struct Hub {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl Hub {
    /// Loads what agents may need from the store and follows it until `cancel`.
    pub async fn start(store: Store, cancel: CancellationToken) -> Result<Hub, StoreError> {
        let (kvs, rev) = store.range(ROOT).await?;
        let state = HubState::load(kvs, rev);
        info!(
            revision = rev,
            objects = state.objects.len(),
            "watch hub loaded"
        );
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, state, rx, cancel));
        Ok(Hub { tx })
    }

    /// A watch for `host` (see `agent.proto`): batches of events, in order; the channel ends
    /// when the hub cuts the watch off (the agent resumes).
    pub async fn subscribe(
        &self,
        host: String,
        from: i64,
        held: HashMap<String, u64>,
    ) -> Option<mpsc::Receiver<Vec<pb::WatchEvent>>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Subscribe {
                host,
                from,
                held,
                reply,
            })
            .ok()?;
        rx.await.ok()
    }

    pub async fn networks(&self, tenant: String, network: String) -> Option<pb::GetNetworksReply> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Networks {
                tenant,
                network,
                reply,
            })
            .ok()?;
        rx.await.ok()
    }

    pub async fn stats(&self) -> Option<HubStats> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Cmd::Stats(reply)).ok()?;
        rx.await.ok()
    }

    /// Per watch: its host and the batches queued for it that its stream has not taken yet
    /// (for the watch-lag metric).
    pub async fn queued(&self) -> Option<Vec<(String, usize)>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Cmd::Queued(reply)).ok()?;
        rx.await.ok()
    }
}

struct Run {
    state: HubState,
    subs: Subs,
    /// Watches that asked to resume from a revision this replica has not reached yet.
    pending: Vec<(i64, Cmd)>,
    stats: HubStats,
}

async fn run(
    store: Store,
    state: HubState,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    cancel: CancellationToken,
) {
    let mut r = Run {
        state,
        subs: Subs::default(),
        pending: vec![],
        stats: HubStats::default(),
    };
    let mut backoff = Duration::from_millis(100);
    'watch: loop {
        let mut changes = match store.watch(ROOT, r.state.revision + 1).await {
            Ok(w) => w,
            Err(StoreError::Compacted { .. }) => {
                r.reload(&store).await;
                continue;
            }
            Err(e) => {
                debug!(error = %e, "watching the store failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = cancel.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                c = cmds.recv() => match c {
                    Some(c) => r.command(c),
                    None => return,
                },
                e = changes.recv() => match e {
                    Some(Ok(ev)) => {
                        r.change(&ev);
                        // Whatever else is ready joins this round.
                        while let Ok(Ok(ev)) = changes.try_recv() {
                            r.change(&ev);
                        }
                        r.resume_pending();
                    }
                    Some(Err(StoreError::Compacted { .. })) => {
                        r.reload(&store).await;
                        continue 'watch;
                    }
                    Some(Err(e)) => {
                        debug!(error = %e, "the store watch broke; resuming");
                        continue 'watch;
                    }
                    None => continue 'watch,
                },
            }
        }
    }
}

impl Run {
    fn command(&mut self, c: Cmd) {
        match c {
            Cmd::Subscribe { from, .. } if from > self.state.revision => {
                // An agent that was with a replica further ahead: answer once this one is there.
                self.pending.push((from, c));
            }
            Cmd::Subscribe {
                host,
                from,
                held,
                reply,
            } => {
                let (events, units) = self.state.start(&host, from, &held);
                let (tx, rx) = mpsc::channel(QUEUE);
                self.count(&events);
                let _ = tx.try_send(events);
                debug!(%host, from, units = units.len(), "agent watching");
                if reply.send(rx).is_ok() {
                    // Watches whose agents went away since.
                    self.subs.sweep();
                    self.subs.add(Subscriber { host, units, tx });
                }
            }
            Cmd::Networks {
                tenant,
                network,
                reply,
            } => {
                let _ = reply.send(self.state.networks(&tenant, &network));
            }
            Cmd::Stats(reply) => {
                let _ = reply.send(HubStats {
                    revision: self.state.revision,
                    objects: self.state.objects.len(),
                    subscribers: self.subs.by_id.len(),
                    ..self.stats
                });
            }
            Cmd::Queued(reply) => {
                let _ = reply.send(
                    self.subs
                        .by_id
                        .values()
                        .map(|s| (s.host.clone(), s.tx.max_capacity() - s.tx.capacity()))
                        .collect(),
                );
            }
        }
    }

    fn resume_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let rev = self.state.revision;
        let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(from, _)| *from <= rev);
        self.pending = wait;
        for (_, c) in ready {
            self.command(c);
        }
    }

    fn count(&mut self, events: &[pb::WatchEvent]) {
        use prost::Message;
        self.stats.events_sent += events.len() as u64;
        self.stats.bytes_sent += events.iter().map(|e| e.encoded_len() as u64).sum::<u64>();
    }

    /// One store change: to the agents that hold its unit, then interest moved where it moved.
    fn change(&mut self, ev: &WatchEvent) {
        let revision = ev.revision();
        let Some(a) = self.state.apply(ev) else {
            return;
        };
        let mut batches: BTreeMap<u64, Vec<pb::WatchEvent>> = BTreeMap::new();
        // Those holding the unit it is in, or was in.
        let mut holders: BTreeSet<u64> = BTreeSet::new();
        for u in a.old_unit.iter().chain(a.new_unit.iter()) {
            holders.extend(self.subs.holders.get(u).into_iter().flatten());
        }
        for id in holders {
            let s = &self.subs.by_id[&id];
            let had_new = a.new_unit.as_ref().is_some_and(|u| s.units.contains(u));
            let had_old = a.old_unit.as_ref().is_some_and(|u| s.units.contains(u));
            let event = match &a.event {
                pb::watch_event::Event::Put(_) if had_new => a.event.clone(),
                // Moved out of the units it holds: gone, as far as it is concerned.
                pb::watch_event::Event::Put(_) if had_old => {
                    pb::watch_event::Event::Delete(pb::ObjectRef {
                        kind: id_of(ev.key()).map_or(0, |id| id.0.to_proto() as i32),
                        key: id_of(ev.key()).map(|id| id.1).unwrap_or_default(),
                    })
                }
                pb::watch_event::Event::Delete(_) if had_old => a.event.clone(),
                _ => continue,
            };
            batches.entry(id).or_default().push(pb::WatchEvent {
                revision,
                event: Some(event),
            });
        }
        let moved: Vec<u64> = match &a.affected {
            Affected::None => vec![],
            Affected::All => self.subs.by_id.keys().copied().collect(),
            Affected::Hosts(hs) => hs
                .iter()
                .flat_map(|h| self.subs.by_host.get(h).into_iter().flatten().copied())
                .collect(),
        };
        for id in moved {
            let now = self.state.interest(&self.subs.by_id[&id].host);
            let before = &self.subs.by_id[&id].units;
            if *before == now {
                continue;
            }
            let b = batches.entry(id).or_default();
            for gone in before.difference(&now) {
                b.push(pb::WatchEvent {
                    revision,
                    event: Some(pb::watch_event::Event::Drop(pb::UnitDrop {
                        unit: gone.clone(),
                    })),
                });
            }
            for new in now.difference(before) {
                self.state.unit_puts(new, 0, b);
            }
            self.subs.set_units(id, now);
        }
        let mut cut = vec![];
        for (id, b) in batches {
            if b.is_empty() {
                continue;
            }
            self.count(&b);
            if self.subs.by_id[&id].tx.try_send(b).is_err() {
                cut.push(id);
            }
        }
        for id in cut {
            if let Some(s) = self.subs.remove(id) {
                if !s.tx.is_closed() {
                    warn!(host = %s.host, "an agent's watch fell behind; cut off (it resumes)");
                }
            }
        }
    }

    /// The store compacted past the hub (it was away too long): read everything again and cut
    /// every watch off; agents resume with their digests and get what differs.
    async fn reload(&mut self, store: &Store) {
        loop {
            match store.range(ROOT).await {
                Ok((kvs, rev)) => {
                    self.state = HubState::load(kvs, rev);
                    self.subs = Subs::default();
                    warn!(
                        revision = rev,
                        "the store compacted past the watch hub; reloaded"
                    );
                    return;
                }
                Err(e) => {
                    debug!(error = %e, "reloading the watch hub failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: serde_json::Value, create: i64, modified: i64) -> KeyValue {
        KeyValue {
            key: key.as_bytes().to_vec(),
            value: value.to_string().into_bytes(),
            create_revision: create,
            mod_revision: modified,
            version: 1,
            lease: 0,
        }
    }

    fn net(t: &str, n: &str, host_access: bool) -> serde_json::Value {
        serde_json::json!({"tenantName": t, "networkName": n, "subnet": "10.1.0.0/24",
            "encap": "vxlan", "pktTag": 100, "hostAccess": host_access})
    }

    fn ep(id: &str, t: &str, n: &str, host: &str) -> serde_json::Value {
        serde_json::json!({"endpointId": id, "container": "c", "host": host, "tenantName": t,
            "networkName": n, "interfaceName": "eth0", "mac": "02:00:00:00:00:01",
            "ipv4": "10.1.0.2"})
    }

    fn put(s: &mut HubState, key: &str, v: serde_json::Value, rev: i64) -> Option<Applied> {
        let create = s
            .objects
            .get(&id_of(key.as_bytes()).unwrap())
            .map_or(rev, |o| o.create);
        s.apply(&WatchEvent::Put(kv(key, v, create, rev)))
    }

    fn del(s: &mut HubState, key: &str, rev: i64) -> Option<Applied> {
        s.apply(&WatchEvent::Delete {
            key: key.as_bytes().to_vec(),
            revision: rev,
        })
    }

    fn keys(events: &[pb::WatchEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e.event.as_ref().unwrap() {
                pb::watch_event::Event::Put(o) => {
                    let o = Object::from_proto(o).unwrap();
                    format!("put {}/{}", o.kind(), o.key())
                }
                pb::watch_event::Event::Delete(r) => format!("delete {}", r.key),
                pb::watch_event::Event::Drop(d) => format!("drop {}", d.unit),
                pb::watch_event::Event::Synced(_) => "synced".into(),
            })
            .collect()
    }

    fn cluster() -> HubState {
        let mut s = HubState::default();
        put(
            &mut s,
            "/weft/intent/tenant/red",
            serde_json::json!({"tenantName": "red"}),
            1,
        );
        put(
            &mut s,
            "/weft/intent/tenant/blue",
            serde_json::json!({"tenantName": "blue"}),
            2,
        );
        put(
            &mut s,
            "/weft/intent/network/red:a",
            net("red", "a", false),
            3,
        );
        put(
            &mut s,
            "/weft/intent/network/red:b",
            net("red", "b", false),
            4,
        );
        put(
            &mut s,
            "/weft/intent/network/blue:x",
            net("blue", "x", false),
            5,
        );
        put(&mut s, "/weft/endpoints/r1", ep("r1", "red", "a", "h1"), 6);
        put(&mut s, "/weft/endpoints/b1", ep("b1", "blue", "x", "h2"), 7);
        s
    }

    #[test]
    fn a_host_receives_only_the_tenants_it_has_endpoints_in() {
        let s = cluster();
        let (ev, units) = s.start("h1", 0, &HashMap::new());
        assert_eq!(
            units.into_iter().collect::<Vec<_>>(),
            ["cluster", "net/red:a", "net/red:b", "tenant/red"]
        );
        let k = keys(&ev);
        assert!(k.contains(&"put network/red:b".to_string()), "{k:?}");
        assert!(k.contains(&"put endpoint/r1".to_string()), "{k:?}");
        assert!(
            !k.iter().any(|x| x.contains("blue:x") || x.contains("b1")),
            "{k:?}"
        );
        assert_eq!(k.last().unwrap(), "synced");
        // A host with no endpoint gets the cluster unit only.
        let (ev, _) = s.start("h9", 0, &HashMap::new());
        assert_eq!(keys(&ev), ["put tenant/blue", "put tenant/red", "synced"]);
    }

    #[test]
    fn a_first_endpoint_brings_the_tenant_and_the_last_one_drops_it() {
        let mut s = cluster();
        let a = put(&mut s, "/weft/endpoints/b2", ep("b2", "blue", "x", "h1"), 8).unwrap();
        assert_eq!(a.affected, Affected::Hosts(["h1".to_string()].into()));
        assert!(s.interest("h1").contains("net/blue:x"));
        let a = del(&mut s, "/weft/endpoints/b2", 9).unwrap();
        assert_eq!(a.affected, Affected::Hosts(["h1".to_string()].into()));
        assert!(!s.interest("h1").contains("net/blue:x"));
        // An endpoint's record changed in place moves nobody's interest.
        let a = put(&mut s, "/weft/endpoints/r1", ep("r1", "red", "a", "h1"), 10).unwrap();
        assert_eq!(a.affected, Affected::None);
    }

    #[test]
    fn networks_are_found_by_tenant_and_name() {
        let s = cluster();
        let names = |r: pb::GetNetworksReply| -> Vec<String> {
            r.networks
                .iter()
                .map(|n| format!("{}:{}", n.tenant_name, n.network_name))
                .collect()
        };
        assert_eq!(names(s.networks("red", "")), ["red:a", "red:b"]);
        assert_eq!(names(s.networks("", "x")), ["blue:x"]);
        assert_eq!(names(s.networks("", "")), ["blue:x", "red:a", "red:b"]);
        assert!(names(s.networks("green", "")).is_empty());
    }

    #[test]
    fn host_access_networks_reach_every_host() {
        let mut s = cluster();
        let a = put(
            &mut s,
            "/weft/intent/network/blue:y",
            net("blue", "y", true),
            8,
        )
        .unwrap();
        assert_eq!(a.affected, Affected::All);
        assert!(s.interest("h1").contains("net/blue:y"));
        assert!(s.interest("h9").contains("net/blue:y"));
        assert!(!s.interest("h1").contains("net/blue:x"));
    }

    #[test]
    fn resuming_sends_what_changed_or_the_unit_again() {
        let mut s = cluster();
        let (_, _) = s.start("h1", 0, &HashMap::new());
        let held: HashMap<String, u64> = ["cluster", "net/red:a", "net/red:b"]
            .iter()
            .map(|u| (u.to_string(), s.units.get(*u).map_or(0, |x| x.digest)))
            .collect();
        // Nothing happened: only SYNCED.
        assert_eq!(keys(&s.start("h1", 7, &held).0), ["synced"]);
        // An endpoint changed and one added: both sent, nothing dropped.
        put(&mut s, "/weft/endpoints/r1", ep("r1", "red", "a", "h1"), 8);
        put(&mut s, "/weft/endpoints/r2", ep("r2", "red", "a", "h3"), 9);
        assert_eq!(
            keys(&s.start("h1", 7, &held).0),
            ["put endpoint/r1", "put endpoint/r2", "synced"]
        );
        // One deleted: its unit is sent again whole after a drop.
        del(&mut s, "/weft/intent/network/red:b", 10);
        assert_eq!(
            keys(&s.start("h1", 7, &held).0),
            [
                "drop net/red:b",
                "put endpoint/r1",
                "put endpoint/r2",
                "synced"
            ]
        );
        // A unit no longer of interest is dropped.
        del(&mut s, "/weft/endpoints/r1", 11);
        let k = keys(&s.start("h1", 7, &held).0);
        assert_eq!(k, ["drop net/red:a", "drop net/red:b", "synced"]);
    }
}

//! The intent in the store: one key per object (`/weft/intent/<kind>/<key>`, JSON), and every
//! change committed as one transaction guarded by the sequence key `/weft/meta/intent-seq`.
//!
//! Each netmaster keeps the intent in memory ([`index::Index`]): loaded from the store at start
//! (a consistent snapshot of the intent and the endpoints) and kept current by a watch of
//! `/weft/`. A change is validated against that index, and committed on the condition that the
//! sequence key still has the mod revision the index is at; the commit bumps the sequence key.
//! So a change is judged against exactly the state it replaces, replicas sharing one store never
//! interleave half-changes, and an invalid change stores nothing. When another replica got in
//! first, the index is brought up to the store's sequence (the watch delivers it) and the change
//! is judged again.
//!
//! - A single-object change ([`Intent::put`], [`Intent::delete`]) is validated by
//!   `weft_api::validate::validate_edit`: the object, the objects that name it, and through the
//!   indexes the objects it could collide with (packet tags, overlapping subnets). It writes
//!   that object's key and the sequence key: its cost does not grow with the intent.
//! - A whole spec ([`Intent::apply`]) is validated whole (`validate_state`), from the index.
//!
//! Every read first fetches the sequence key and waits until the index has reached it, so a
//! change committed through any replica is seen by the next request to any other. A change is
//! answered once the index has it, and it takes it from the watch like anyone else's: replicas
//! then race on equal terms. (One that applied its own commits at once would prepare its next
//! change before the others had even seen its last, and under load keep them out for good.)
//!
//! The watch applies an intent transaction's events when it sees the sequence key's event of
//! the same revision (every intent transaction writes the sequence key last), so nobody sees
//! half a transaction.

mod index;
#[cfg(test)]
mod tests;

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weft_api::state::{Edit, Kind, Object};
use weft_api::validate::{check_removals, validate_edit, InUse};
use weft_api::*;

use crate::store::{Compare, Op, Store, StoreError, WatchEvent, WatchStream};
use index::Index;

use crate::keys::ENDPOINTS;
use crate::keys::{INTENT, ROOT as WATCHED, SEQ};
/// What the index follows.
/// Attempts before a change gives up on concurrent writers...
const RETRIES: usize = 20;
/// ... and for how long at least it keeps trying (commits take a millisecond or less: twenty
/// lost races can be over in twenty milliseconds).
const PERSIST: Duration = Duration::from_secs(5);

/// Counts a change's attempts against its budget.
struct Attempts {
    n: usize,
    since: std::time::Instant,
}

impl Attempts {
    fn new() -> Self {
        Attempts {
            n: 0,
            since: std::time::Instant::now(),
        }
    }

    /// Whether to try (again).
    fn next(&mut self) -> bool {
        self.n += 1;
        self.n <= RETRIES || self.since.elapsed() < PERSIST
    }

    fn gave_up(&self) -> IntentError {
        IntentError::Conflict(format!(
            "gave up after {} attempts: other writers keep changing the intent; try again",
            self.n - 1
        ))
    }
}
/// How long a request waits for the index to reach the store's sequence.
const CATCH_UP: Duration = Duration::from_secs(10);
/// How long an in-use check waits for the index to reach the store's revision before it reads
/// the endpoints from the store instead.
const ENDPOINTS_CATCH_UP: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("{0}")]
    Invalid(ValidationErrors),
    #[error("{kind} \"{key}\" not found")]
    NotFound { kind: &'static str, key: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn key_of(kind: &str, key: &str) -> Vec<u8> {
    crate::keys::intent(kind, key)
}

fn unreadable(key: &[u8], e: impl std::fmt::Display) -> IntentError {
    IntentError::Store(StoreError::Other(format!(
        "stored object {} is unreadable: {e}",
        String::from_utf8_lossy(key)
    )))
}

/// The object a store key under `/weft/intent/` holds.
fn parse_object(key: &[u8], value: &[u8]) -> Result<Option<Object>, IntentError> {
    let rest = &key[INTENT.len()..];
    let kind = rest.split(|b| *b == b'/').next().unwrap_or_default();
    let Some(kind) = std::str::from_utf8(kind).ok().and_then(Kind::parse) else {
        return Ok(None);
    };
    Object::from_json(kind, value)
        .map(Some)
        .map_err(|e| unreadable(key, e))
}

/// The kind and key of the object a store key under `/weft/intent/` names.
fn named(key: &[u8]) -> Option<(Kind, String)> {
    let rest = std::str::from_utf8(&key[INTENT.len()..]).ok()?;
    let (kind, key) = rest.split_once('/')?;
    Some((Kind::parse(kind)?, key.to_string()))
}

/// The intent part of netmaster (cheap to clone: clones share one index).
#[derive(Clone)]
pub struct Intent {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    metrics: crate::metrics::Metrics,
    core: tokio::sync::OnceCell<Core>,
    /// Stops the watch task when the last handle goes.
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How far the index has come.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// The sequence key's mod revision the intent is at.
    seq: i64,
    /// The last store revision whose events (under `/weft/`) the index has seen.
    revision: i64,
}

struct Core {
    index: RwLock<Index>,
    progress: tokio::sync::watch::Sender<Progress>,
    /// One change at a time within this netmaster (replicas meet at the sequence key).
    writer: tokio::sync::Mutex<()>,
    /// The first watch, until the task that follows it starts.
    first_watch: std::sync::Mutex<Option<WatchStream>>,
}

impl Core {
    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, ix: &Index, revision: Option<i64>) {
        let seq = ix.seq;
        self.progress.send_modify(|p| {
            p.seq = seq;
            if let Some(r) = revision {
                p.revision = p.revision.max(r);
            }
        });
    }

    /// Waits until the index has reached sequence `seq`.
    async fn reach_seq(&self, seq: i64) -> Result<(), IntentError> {
        if self.progress.borrow().seq >= seq {
            return Ok(());
        }
        let mut rx = self.progress.subscribe();
        let reached = tokio::time::timeout(CATCH_UP, rx.wait_for(|p| p.seq >= seq))
            .await
            .is_ok_and(|r| r.is_ok());
        match reached {
            true => Ok(()),
            false => Err(IntentError::Store(StoreError::Unavailable(format!(
                "netmaster's view of the intent is behind the store (at sequence {}, the store at {seq}); try again",
                self.progress.borrow().seq
            )))),
        }
    }

    /// Replaces the index with a fresh one at `revision`.
    fn replace(&self, index: Index, revision: i64) {
        let mut ix = self.write();
        *ix = index;
        let seq = ix.seq;
        self.progress.send_modify(|p| {
            p.seq = seq;
            p.revision = revision;
        });
    }

    /// One event of the watch. Intent events wait in `pending` for the sequence key's event of
    /// their revision, then apply at once; endpoint events apply as they come.
    fn on_event(&self, ev: WatchEvent, pending: &mut Vec<WatchEvent>) {
        let rev = ev.revision();
        if pending.first().is_some_and(|p| p.revision() != rev) {
            // Intent keys written without the sequence key (not by netmaster): apply anyway.
            self.apply_batch(std::mem::take(pending), None);
        }
        let key = ev.key();
        if key.starts_with(INTENT.as_bytes()) {
            pending.push(ev);
            return;
        }
        if key == SEQ {
            let seq = match &ev {
                WatchEvent::Put(kv) => kv.mod_revision,
                WatchEvent::Delete { .. } => 0,
            };
            self.apply_batch(std::mem::take(pending), Some(seq));
        } else if let Some(id) = key.strip_prefix(ENDPOINTS.as_bytes()) {
            let id = String::from_utf8_lossy(id);
            let ep = match &ev {
                WatchEvent::Put(kv) => serde_json::from_slice::<Endpoint>(&kv.value).ok(),
                WatchEvent::Delete { .. } => None,
            };
            self.write().endpoint(&id, ep.as_ref());
        }
        self.progress
            .send_modify(|p| p.revision = p.revision.max(rev));
    }

    fn apply_batch(&self, events: Vec<WatchEvent>, seq: Option<i64>) {
        let mut ix = self.write();
        if let Some(s) = seq {
            if s != 0 && s <= ix.seq {
                // This netmaster committed it and applied it already.
                return;
            }
        }
        for ev in events {
            match ev {
                WatchEvent::Put(kv) => match parse_object(&kv.key, &kv.value) {
                    Ok(Some(o)) => ix.put(o),
                    Ok(None) => {}
                    Err(e) => tracing::warn!("intent watch: {e}; ignored"),
                },
                WatchEvent::Delete { key, .. } => {
                    if let Some((kind, k)) = named(&key) {
                        ix.remove(kind, &k);
                    }
                }
            }
        }
        if let Some(s) = seq {
            ix.seq = s;
        }
        self.publish(&ix, None);
    }
}

/// The intent and the endpoints at one revision: the intent at the sequence key's mod revision,
/// both as of the returned store revision.
async fn snapshot(store: &Store) -> Result<(Index, i64), IntentError> {
    let seq_of = |kv: Option<crate::store::KeyValue>| kv.map(|kv| kv.mod_revision).unwrap_or(0);
    for _ in 0..RETRIES {
        let before = seq_of(store.get(SEQ).await?);
        let (objects, _) = store.range(INTENT.as_bytes()).await?;
        let (endpoints, revision) = store.range(ENDPOINTS.as_bytes()).await?;
        // Every intent change bumps the sequence key: unmoved, no intent changed in between.
        if seq_of(store.get(SEQ).await?) != before {
            continue;
        }
        let mut ix = Index::default();
        for kv in &objects {
            if let Some(o) = parse_object(&kv.key, &kv.value)? {
                ix.put(o);
            }
        }
        for kv in &endpoints {
            let id = String::from_utf8_lossy(&kv.key[ENDPOINTS.len()..]);
            if let Ok(ep) = serde_json::from_slice::<Endpoint>(&kv.value) {
                ix.endpoint(&id, Some(&ep));
            }
        }
        ix.seq = before;
        return Ok((ix, revision));
    }
    Err(IntentError::Conflict(format!(
        "gave up reading the intent after {RETRIES} attempts: other writers keep changing it; try again"
    )))
}

/// Follows the store's changes into the index until the last handle goes; after a broken
/// watch (etcd restarted, history compacted, fell behind) loads a fresh snapshot.
async fn follow(inner: Weak<Inner>, mut changes: WatchStream, stop: CancellationToken) {
    let mut pending = Vec::new();
    loop {
        let item = tokio::select! {
            _ = stop.cancelled() => return,
            item = changes.recv() => item,
        };
        {
            let Some(inner) = inner.upgrade() else { return };
            let Some(core) = inner.core.get() else { return };
            match item {
                Some(Ok(ev)) => {
                    core.on_event(ev, &mut pending);
                    continue;
                }
                Some(Err(e)) => tracing::warn!("intent watch broke: {e}; reloading the intent"),
                None => tracing::warn!("intent watch ended; reloading the intent"),
            }
        }
        pending.clear();
        let mut backoff = Duration::from_millis(50);
        changes = loop {
            {
                let Some(inner) = inner.upgrade() else { return };
                let Some(core) = inner.core.get() else { return };
                match snapshot(&inner.store).await {
                    Ok((ix, rev)) => match inner.store.watch(WATCHED, rev + 1).await {
                        Ok(w) => {
                            core.replace(ix, rev);
                            break w;
                        }
                        Err(e) => tracing::warn!("intent watch: {e}; trying again"),
                    },
                    Err(e) => tracing::warn!("reloading the intent: {e}; trying again"),
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        };
    }
}

/// What a single-object change will commit.
struct Prepared {
    edit: Edit,
    /// Nothing to commit: the object is already so.
    unchanged: bool,
}

impl Intent {
    pub fn new(store: Store) -> Self {
        let intent = Intent {
            inner: Arc::new(Inner {
                store,
                metrics: crate::metrics::Metrics::new(),
                core: tokio::sync::OnceCell::new(),
                stop: CancellationToken::new(),
            }),
        };
        // Load the index now rather than on the first request, when there is a runtime.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&intent.inner);
            rt.spawn(async move {
                if let Some(inner) = weak.upgrade() {
                    if let Err(e) = (Intent { inner }).core().await {
                        tracing::warn!(
                            "loading the intent: {e}; trying again on the first request"
                        );
                    }
                }
            });
        }
        intent
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The index, loaded (and its watch started) on first use.
    async fn core(&self) -> Result<&Core, IntentError> {
        let core = self
            .inner
            .core
            .get_or_try_init(|| async {
                let store = &self.inner.store;
                let (ix, revision) = snapshot(store).await?;
                let changes = store.watch(WATCHED, revision + 1).await?;
                let (progress, _) = tokio::sync::watch::channel(Progress {
                    seq: ix.seq,
                    revision,
                });
                Ok::<_, IntentError>(Core {
                    index: RwLock::new(ix),
                    progress,
                    writer: tokio::sync::Mutex::new(()),
                    first_watch: std::sync::Mutex::new(Some(changes)),
                })
            })
            .await?;
        let first = core
            .first_watch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(changes) = first {
            tokio::spawn(follow(
                Arc::downgrade(&self.inner),
                changes,
                self.inner.stop.clone(),
            ));
        }
        Ok(core)
    }

    /// The index, at least at the store's current sequence: whatever any replica committed
    /// before this call is in it.
    async fn fresh(&self) -> Result<&Core, IntentError> {
        let core = self.core().await?;
        let seq = self
            .inner
            .store
            .get(SEQ)
            .await?
            .map(|kv| kv.mod_revision)
            .unwrap_or(0);
        core.reach_seq(seq).await?;
        Ok(core)
    }

    /// Reads the current intent (see [`Intent::fresh`]) without copying it.
    pub async fn read<R>(&self, f: impl FnOnce(&State) -> R) -> Result<R, IntentError> {
        let core = self.fresh().await?;
        let ix = core.read();
        Ok(f(&ix.state))
    }

    /// The whole intent, and the sequence key's mod revision it is at (0: none yet).
    pub async fn load(&self) -> Result<(State, i64), IntentError> {
        let core = self.fresh().await?;
        let ix = core.read();
        Ok((ix.state.clone(), ix.seq))
    }

    /// What endpoints use, as of the store's current revision: the index once its watch has
    /// reached that revision, else (it lags) the endpoints read from the store.
    async fn in_use(&self, core: &Core) -> Result<InUse, IntentError> {
        let (_, revision) = self.inner.store.range(SEQ).await?;
        let mut rx = core.progress.subscribe();
        let caught_up =
            tokio::time::timeout(ENDPOINTS_CATCH_UP, rx.wait_for(|p| p.revision >= revision))
                .await
                .is_ok_and(|r| r.is_ok());
        if caught_up {
            return Ok(core.read().in_use());
        }
        tracing::debug!("intent index behind revision {revision}; reading endpoints");
        let (kvs, _) = self.inner.store.range(ENDPOINTS.as_bytes()).await?;
        let eps: Vec<Endpoint> = kvs
            .iter()
            .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
            .collect();
        Ok(InUse::from_endpoints(eps.iter()))
    }

    /// Creates or replaces one object; returns it as stored (a network's packet tag resolved).
    pub async fn put(&self, o: Object) -> Result<Object, IntentError> {
        let edit = self.change(Edit::Put(o)).await?;
        match edit {
            Edit::Put(o) => Ok(o),
            Edit::Delete(..) => unreachable!("a put stays a put"),
        }
    }

    /// Deletes one object.
    pub async fn delete(&self, kind: Kind, key: &str) -> Result<(), IntentError> {
        self.change(Edit::Delete(kind, key.to_string()))
            .await
            .map(|_| ())
    }

    /// Judges `edit` against the index (see [`validate_edit`]).
    fn prepare(ix: &Index, edit: Edit, in_use: Option<&InUse>) -> Result<Prepared, IntentError> {
        let mut edit = edit;
        let current = ix.state.object(edit.kind(), &edit.key());
        if let Edit::Delete(kind, key) = &edit {
            if current.is_none() || *kind == Kind::Global {
                return Err(IntentError::NotFound {
                    kind: kind.as_str(),
                    key: key.clone(),
                });
            }
        }
        if let Edit::Put(Object::Network(n)) = &mut edit {
            resolve_tag(ix, n)?;
        }
        if let Edit::Put(o) = &edit {
            if current.as_ref() == Some(o) {
                return Ok(Prepared {
                    edit,
                    unchanged: true,
                });
            }
        }
        validate_edit(ix, &edit).map_err(IntentError::Invalid)?;
        if let (Edit::Delete(kind, key), Some(current)) = (&edit, &current) {
            let used = match kind {
                Kind::Network => {
                    in_use.map_or(ix.network_in_use(key), |u| u.networks.contains(key))
                }
                Kind::Group => in_use.map_or(ix.group_in_use(key), |u| u.groups.contains(key)),
                _ => false,
            };
            if used {
                return Err(IntentError::Conflict(
                    ValidationErrors(vec![weft_api::validate::in_use_error(current)]).to_string(),
                ));
            }
        }
        Ok(Prepared {
            edit,
            unchanged: false,
        })
    }

    /// Commits one object's change: validated against the index, guarded by the sequence key.
    async fn change(&self, edit: Edit) -> Result<Edit, IntentError> {
        let started = std::time::Instant::now();
        let core = self.core().await?;
        let _one_at_a_time = core.writer.lock().await;
        let removes_used = matches!(&edit, Edit::Delete(Kind::Network | Kind::Group, _));
        let mut attempts = Attempts::new();
        while attempts.next() {
            let in_use = if removes_used {
                Some(self.in_use(core).await?)
            } else {
                None
            };
            let (seq, judged) = {
                let ix = core.read();
                (ix.seq, Self::prepare(&ix, edit.clone(), in_use.as_ref()))
            };
            let p = match judged {
                Ok(p) if !p.unchanged => p,
                answer => {
                    if self.judged_fresh(core, seq).await? {
                        return answer.map(|p| p.edit);
                    }
                    continue;
                }
            };
            let op = match &p.edit {
                Edit::Put(o) => Op::put(key_of(o.kind().as_str(), &o.key()), o.to_json()),
                Edit::Delete(kind, key) => Op::Delete(key_of(kind.as_str(), key)),
            };
            if let Some(revision) = self.commit(seq, vec![op]).await? {
                core.reach_seq(revision).await?;
                self.inner.metrics.objects_committed.inc();
                self.inner.metrics.commit_took("object", started);
                return Ok(p.edit);
            }
        }
        Err(attempts.gave_up())
    }

    /// Whether an answer reached without a commit (a refusal, or nothing to change) is final:
    /// the index it was judged on was at the store's sequence. If not, waits until it is (and
    /// the change is judged again).
    async fn judged_fresh(&self, core: &Core, seq: i64) -> Result<bool, IntentError> {
        let now = self
            .inner
            .store
            .get(SEQ)
            .await?
            .map(|kv| kv.mod_revision)
            .unwrap_or(0);
        if now <= seq {
            return Ok(true);
        }
        core.reach_seq(now).await?;
        Ok(false)
    }

    /// Commits `ops` and a bump of the sequence key if the sequence key is still at `seq`;
    /// returns the new revision, or None (after the index has caught up with the store's
    /// sequence) when another writer got in first.
    async fn commit(&self, seq: i64, mut ops: Vec<Op>) -> Result<Option<i64>, IntentError> {
        ops.push(Op::put(SEQ, b"".to_vec()));
        let guard = if seq == 0 {
            Compare::Absent(SEQ.to_vec())
        } else {
            Compare::ModRevision(SEQ.to_vec(), seq)
        };
        let r = self
            .inner
            .store
            .txn(vec![guard], ops, vec![Op::Get(SEQ.to_vec())])
            .await?;
        if r.succeeded {
            return Ok(Some(r.revision));
        }
        let now = r
            .gets
            .first()
            .cloned()
            .flatten()
            .map(|kv| kv.mod_revision)
            .unwrap_or(0);
        self.core().await?.reach_seq(now).await?;
        Ok(None)
    }

    /// Applies `change` to the whole current state as one validated, atomic transaction (for
    /// specs); retries when another writer got in first. Returns the committed state and the
    /// plan that was applied.
    pub async fn apply(
        &self,
        change: impl Fn(&State) -> Result<State, IntentError>,
    ) -> Result<(State, Vec<Change>), IntentError> {
        let started = std::time::Instant::now();
        let core = self.core().await?;
        let _one_at_a_time = core.writer.lock().await;
        let mut attempts = Attempts::new();
        while attempts.next() {
            let (current, seq) = {
                let ix = core.read();
                (ix.state.clone(), ix.seq)
            };
            let mut judged = change(&current).and_then(|mut new| {
                resolve_tags(&current, &mut new)?;
                let changes = plan(&current, &new).map_err(IntentError::Invalid)?;
                Ok((new, changes))
            });
            if let Ok((new, changes)) = &judged {
                let removes = changes.iter().any(|c| {
                    matches!(c, Change::Delete { kind, .. }
                        if *kind == Network::KIND || *kind == EndpointGroup::KIND)
                });
                if removes {
                    let in_use = self.in_use(core).await?;
                    if let Err(e) = check_removals(&current, new, &in_use) {
                        judged = Err(IntentError::Conflict(e.to_string()));
                    }
                }
            }
            let (new, changes) = match judged {
                Ok((new, changes)) if !changes.is_empty() => (new, changes),
                answer => {
                    if self.judged_fresh(core, seq).await? {
                        return answer;
                    }
                    continue;
                }
            };
            let mut ops = Vec::with_capacity(changes.len() + 1);
            for c in &changes {
                let (Change::Create { kind, key }
                | Change::Update { kind, key }
                | Change::Delete { kind, key }) = c;
                let kind = Kind::parse(kind).expect("plans name known kinds");
                match new.object(kind, key) {
                    Some(o) if !matches!(c, Change::Delete { .. }) => {
                        ops.push(Op::put(key_of(kind.as_str(), key), o.to_json()));
                    }
                    _ => {
                        ops.push(Op::Delete(key_of(kind.as_str(), key)));
                    }
                }
            }
            if let Some(revision) = self.commit(seq, ops).await? {
                core.reach_seq(revision).await?;
                self.inner
                    .metrics
                    .objects_committed
                    .inc_by(changes.len() as u64);
                self.inner.metrics.commit_took("spec", started);
                return Ok((new, changes));
            }
        }
        Err(attempts.gave_up())
    }
}

fn no_free_tag(key: &str, encap: Encap, range: &IdRanges) -> IntentError {
    IntentError::Conflict(format!(
        "network \"{key}\": pktTag: no free {} left in the global range {range}",
        if encap == Encap::Vlan {
            "VLAN id"
        } else {
            "VNI"
        }
    ))
}

/// A network whose packet tag is left to netmaster gets one: the tag it has, else the lowest
/// free one in the global range of its encapsulation (through the index's tags).
fn resolve_tag(ix: &Index, n: &mut Network) -> Result<(), IntentError> {
    if n.pkt_tag != PktTag::Allocate {
        return Ok(());
    }
    let key = n.key();
    if let Some(PktTag::Tag(t)) = ix
        .state
        .networks
        .get(&key)
        .filter(|c| c.encap == n.encap)
        .map(|c| c.pkt_tag)
    {
        if !ix.tag_used_by_other(n.encap, t, &key) {
            n.pkt_tag = PktTag::Tag(t);
            return Ok(());
        }
    }
    let g = &ix.state.global;
    let range = match n.encap {
        Encap::Vlan => &g.vlans,
        Encap::Vxlan => &g.vxlans,
    };
    let t = ix
        .lowest_free_tag(n.encap, range, &key)
        .ok_or_else(|| no_free_tag(&key, n.encap, range))?;
    n.pkt_tag = PktTag::Tag(t);
    Ok(())
}

/// Packet tags left to netmaster get one (for whole states): the network keeps the tag it
/// has, else the lowest free one in the global range of its encapsulation.
fn resolve_tags(current: &State, new: &mut State) -> Result<(), IntentError> {
    let mut used: std::collections::BTreeSet<(Encap, u32)> = new
        .networks
        .values()
        .filter_map(|n| match n.pkt_tag {
            PktTag::Tag(t) => Some((n.encap, t)),
            PktTag::Allocate => None,
        })
        .collect();
    let g = new.global.clone();
    for (k, n) in new.networks.iter_mut() {
        if n.pkt_tag != PktTag::Allocate {
            continue;
        }
        if let Some(PktTag::Tag(t)) = current
            .networks
            .get(k)
            .filter(|c| c.encap == n.encap)
            .map(|c| c.pkt_tag)
        {
            if !used.contains(&(n.encap, t)) {
                n.pkt_tag = PktTag::Tag(t);
                used.insert((n.encap, t));
                continue;
            }
        }
        let range = match n.encap {
            Encap::Vlan => &g.vlans,
            Encap::Vxlan => &g.vxlans,
        };
        let free = range
            .iter()
            .find(|t| !used.contains(&(n.encap, *t)))
            .ok_or_else(|| no_free_tag(k, n.encap, range))?;
        n.pkt_tag = PktTag::Tag(free);
        used.insert((n.encap, free));
    }
    Ok(())
}

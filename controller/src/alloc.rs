//! Allocators on the store: VLAN ids, VNIs, subnets of a tenant pool, addresses of a network.
//! Every value is taken by a compare-and-swap transaction, so netmaster replicas sharing one
//! etcd never hand out the same value.
//!
//! Key layout, per pool (`vlan`, `vni`, `subnet/<tenant>`, `ip/<tenant>:<network>`):
//! - `/weft/alloc/<pool>/v/<value as 8 hex digits>` → owner: the value is taken, and by whom;
//! - `/weft/alloc/<pool>/o/<owner>` → value: what the owner holds (asking again returns it);
//! - `/weft/alloc/<pool>/hint` → where the next search starts (a hint, never trusted).
//!
//! A value is taken in a transaction that requires its value key and its owner key to be
//! absent and writes both. Within one netmaster, requests for a pool queue up and one task
//! commits them in batches: one transaction for up to `MAX_BATCH` (50) allocations, each guarded
//! by its own two compares (group commit). Candidates come from a cache of the pool's taken
//! values (read from the store on first use), so they are free with high probability; when a
//! batch's transaction fails, its reads say which keys were there: an owner that holds a value
//! gets that one, a value another replica took is marked, and the rest go into the next batch.
//! Before a pool is declared exhausted its cache is read again from the store.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dashmap::DashMap;
use tokio::sync::oneshot;

use crate::store::{Compare, Op, Store, StoreError};

use crate::keys::ALLOC as PREFIX;

/// How a pool's values read in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Number,
    Ipv4,
}

/// A set of values to allocate from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    /// Inclusive ranges, walked in order.
    pub ranges: Vec<(u32, u32)>,
    /// Distance between candidates (1, or a subnet's size).
    pub step: u32,
    /// Values never handed out (a gateway).
    pub exclude: Vec<u32>,
    pub kind: ValueKind,
}

impl Pool {
    pub fn numbers(name: &str, ranges: Vec<(u32, u32)>) -> Pool {
        Pool {
            name: name.into(),
            ranges,
            step: 1,
            exclude: vec![],
            kind: ValueKind::Number,
        }
    }

    /// Addresses `first..=last`, less `exclude`.
    pub fn addresses(name: &str, first: Ipv4Addr, last: Ipv4Addr, exclude: Vec<Ipv4Addr>) -> Pool {
        Pool {
            name: name.into(),
            ranges: vec![(first.into(), last.into())],
            step: 1,
            exclude: exclude.into_iter().map(u32::from).collect(),
            kind: ValueKind::Ipv4,
        }
    }

    /// Subnets of prefix length `len` within `pool` (values are their network addresses).
    pub fn subnets(name: &str, pool: ipnet::Ipv4Net, len: u8) -> Result<Pool, AllocError> {
        if len < pool.prefix_len() || len > 32 {
            return Err(AllocError::BadRequest(format!(
                "subnets of /{len} do not fit pool {pool}"
            )));
        }
        let step = if len == 0 {
            u32::MAX
        } else {
            1u32 << (32 - len)
        };
        let first = u32::from(pool.network());
        let last = u32::from(pool.broadcast()) - (step - 1);
        Ok(Pool {
            name: name.into(),
            ranges: vec![(first, last)],
            step,
            exclude: vec![],
            kind: ValueKind::Ipv4,
        })
    }

    fn fmt(&self, v: u32) -> String {
        match self.kind {
            ValueKind::Number => v.to_string(),
            ValueKind::Ipv4 => Ipv4Addr::from(v).to_string(),
        }
    }

    fn contains(&self, v: u32) -> bool {
        self.ranges
            .iter()
            .any(|(a, b)| (*a..=*b).contains(&v) && (v - a).is_multiple_of(self.step))
            && !self.exclude.contains(&v)
    }

    /// The candidate after `v` (wrapping to the start), or None if the pool is empty.
    fn after(&self, v: Option<u32>) -> Option<u32> {
        let first = self.ranges.first()?.0;
        let Some(v) = v else { return Some(first) };
        for (a, b) in &self.ranges {
            if v < *a {
                return Some(*a);
            }
            if v < *b {
                let n = v - (v - a) % self.step + self.step;
                if n <= *b {
                    return Some(n);
                }
            }
        }
        Some(first)
    }

    fn size(&self) -> u64 {
        self.ranges
            .iter()
            .map(|(a, b)| u64::from(b - a) / u64::from(self.step) + 1)
            .sum()
    }

    fn value_key(&self, v: u32) -> Vec<u8> {
        format!("{PREFIX}{}/v/{v:08x}", self.name).into_bytes()
    }
    fn owner_key(&self, owner: &str) -> Vec<u8> {
        format!("{PREFIX}{}/o/{owner}", self.name).into_bytes()
    }
    fn hint_key(&self) -> Vec<u8> {
        format!("{PREFIX}{}/hint", self.name).into_bytes()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("pool {pool}: every value is in use")]
    Exhausted { pool: String },
    #[error("{value} in pool {pool} is already used by {owner}")]
    Taken {
        pool: String,
        value: String,
        owner: String,
    },
    #[error("{value} is not in pool {pool}")]
    OutOfPool { pool: String, value: String },
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn parse_u32(b: &[u8]) -> Option<u32> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// The most allocations committed in one transaction: each takes two compares and two puts
/// (and two reads if the transaction fails), and etcd allows 128 of each by default.
const MAX_BATCH: usize = 50;

/// One allocation waiting for its batch.
struct Waiter {
    owner: String,
    reply: oneshot::Sender<Result<u32, AllocError>>,
}

/// What one netmaster knows of a pool: a cache, never trusted for an answer (the store's
/// compares decide), only for choosing candidates that are free with high probability.
#[derive(Default)]
struct Cache {
    /// The definition last asked with.
    def: Option<Pool>,
    loaded: bool,
    /// Values held in the store as far as known, and candidates in flight.
    taken: BTreeSet<u32>,
    /// Owners and their values as far as known.
    owners: HashMap<String, u32>,
    /// Where the search for the next candidate starts.
    next: Option<u32>,
    queue: VecDeque<Waiter>,
    /// A task is committing this pool's queue.
    committing: bool,
}

impl Cache {
    /// A value not known to be taken, marked taken; None if there is none.
    fn candidate(&mut self) -> Option<u32> {
        let pool = self.def.as_ref()?;
        let mut v = match self.next {
            Some(n) if pool.contains(n) => n,
            Some(n) => pool.after(Some(n))?,
            None => pool.after(None)?,
        };
        for _ in 0..pool.size() {
            if !self.taken.contains(&v) && !pool.exclude.contains(&v) {
                self.taken.insert(v);
                self.next = pool.after(Some(v));
                return Some(v);
            }
            v = pool.after(Some(v))?;
        }
        None
    }
}

type Shared = Arc<Mutex<Cache>>;

fn lock(c: &Shared) -> MutexGuard<'_, Cache> {
    c.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Allocates from pools kept in a store.
#[derive(Clone)]
pub struct Allocator {
    store: Store,
    /// Per pool, in this netmaster: the cache of what is taken and the queue of allocations
    /// one task commits in batches. Replicas sharing a store meet only in the store's
    /// transactions, which stay the arbiter.
    pools: Arc<DashMap<String, Shared>>,
}

impl Allocator {
    pub fn new(store: Store) -> Self {
        Allocator {
            store,
            pools: Default::default(),
        }
    }

    fn cache(&self, pool: &Pool) -> Shared {
        let c = self.pools.entry(pool.name.clone()).or_default().clone();
        lock(&c).def = Some(pool.clone());
        c
    }

    /// What `owner` holds in `pool`, if anything.
    pub async fn held(&self, pool: &Pool, owner: &str) -> Result<Option<u32>, AllocError> {
        Ok(self
            .store
            .get(&pool.owner_key(owner))
            .await?
            .and_then(|kv| parse_u32(&kv.value)))
    }

    /// A value for `owner`: the one it already holds, or a free one.
    ///
    /// The request joins the pool's queue; one task commits what is queued in one transaction
    /// that requires each value key and each owner key to be absent. When it fails, the
    /// transaction's reads say which keys were there: owners that hold a value get it, values
    /// another replica took are marked, and the rest go into the next batch.
    pub async fn allocate(&self, pool: &Pool, owner: &str) -> Result<u32, AllocError> {
        let cache = self.cache(pool);
        let known = lock(&cache).owners.get(owner).copied();
        if let Some(v) = known {
            // Asked again; the store says whether it still holds it.
            match self.held(pool, owner).await? {
                Some(held) => return Ok(held),
                None => {
                    let mut c = lock(&cache);
                    if c.owners.get(owner) == Some(&v) {
                        c.owners.remove(owner);
                    }
                }
            }
        }
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut c = lock(&cache);
            c.queue.push_back(Waiter {
                owner: owner.to_string(),
                reply,
            });
            !std::mem::replace(&mut c.committing, true)
        };
        if start {
            // Its own task: a request that goes away must not stop the others' commits.
            tokio::spawn(self.clone().commit_queue(cache));
        }
        answer.await.map_err(|_| {
            AllocError::Store(StoreError::Other(format!(
                "pool {}: the allocation task ended",
                pool.name
            )))
        })?
    }

    /// Reads what the store holds of the pool into the cache.
    async fn load(&self, cache: &Shared) -> Result<(), AllocError> {
        let Some(pool) = lock(cache).def.clone() else {
            return Ok(());
        };
        let (values, _) = self
            .store
            .range(format!("{PREFIX}{}/v/", pool.name).as_bytes())
            .await?;
        let (owners, _) = self
            .store
            .range(format!("{PREFIX}{}/o/", pool.name).as_bytes())
            .await?;
        let hint = self
            .store
            .get(&pool.hint_key())
            .await?
            .and_then(|kv| parse_u32(&kv.value));
        let mut c = lock(cache);
        c.taken = values
            .iter()
            .filter_map(|kv| {
                let k = std::str::from_utf8(&kv.key).ok()?;
                u32::from_str_radix(k.rsplit('/').next()?, 16).ok()
            })
            .collect();
        let owner_prefix = format!("{PREFIX}{}/o/", pool.name).into_bytes();
        c.owners = owners
            .iter()
            .filter_map(|kv| {
                let o = std::str::from_utf8(&kv.key[owner_prefix.len()..]).ok()?;
                Some((o.to_string(), parse_u32(&kv.value)?))
            })
            .collect();
        if !c.loaded {
            c.next = hint;
        }
        c.loaded = true;
        Ok(())
    }

    /// Commits the pool's queue in batches until it is empty.
    async fn commit_queue(self, cache: Shared) {
        let mut guard = Committing {
            cache: cache.clone(),
            done: false,
        };
        self.commit_all(&cache).await;
        guard.done = true;
    }

    async fn commit_all(&self, cache: &Shared) {
        loop {
            if !lock(cache).loaded {
                if let Err(e) = self.load(cache).await {
                    let mut c = lock(cache);
                    for w in c.queue.drain(..) {
                        let _ = w.reply.send(Err(e.clone()));
                    }
                    c.committing = false;
                    return;
                }
            }
            let Some(batch) = self.next_batch(cache).await else {
                return;
            };
            self.commit_batch(cache, batch).await;
        }
    }

    /// The next batch: up to [`MAX_BATCH`] owners (requests of one owner share its slot), each
    /// with a candidate. Requests without one (the pool looks full even after reading the
    /// store again) are refused. None once the queue is empty.
    async fn next_batch(&self, cache: &Shared) -> Option<Vec<(u32, Vec<Waiter>)>> {
        let mut resynced = false;
        loop {
            match Self::choose(cache, resynced) {
                Chosen::Batch(b) => return Some(b),
                Chosen::Empty => return None,
                Chosen::Exhausted(pool, batch, refused) => {
                    // Owners that hold a value (asked before) get it; the rest are refused.
                    for w in refused {
                        let answer = match self.held(&pool, &w.owner).await {
                            Ok(Some(v)) => Ok(v),
                            Ok(None) => Err(AllocError::Exhausted {
                                pool: pool.name.clone(),
                            }),
                            Err(e) => Err(e),
                        };
                        let _ = w.reply.send(answer);
                    }
                    if !batch.is_empty() {
                        return Some(batch);
                    }
                }
                Chosen::Full => {
                    // The pool looks full: read the store again (other replicas may have
                    // released values), then choose again.
                    resynced = true;
                    if let Err(e) = self.load(cache).await {
                        let mut c = lock(cache);
                        for w in c.queue.drain(..) {
                            let _ = w.reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        }
    }

    fn choose(cache: &Shared, resynced: bool) -> Chosen {
        let mut c = lock(cache);
        if c.queue.is_empty() {
            c.committing = false;
            return Chosen::Empty;
        }
        let mut batch: Vec<(u32, Vec<Waiter>)> = Vec::new();
        let mut full = false;
        while batch.len() < MAX_BATCH {
            let Some(w) = c.queue.pop_front() else { break };
            if let Some(slot) = batch.iter_mut().find(|(_, ws)| ws[0].owner == w.owner) {
                slot.1.push(w);
                continue;
            }
            match c.candidate() {
                Some(v) => batch.push((v, vec![w])),
                None => {
                    c.queue.push_front(w);
                    full = true;
                    break;
                }
            }
        }
        if !full {
            return Chosen::Batch(batch);
        }
        if resynced {
            let pool = c.def.clone().expect("a queued pool has a definition");
            let refused = c.queue.drain(..).collect();
            return Chosen::Exhausted(pool, batch, refused);
        }
        for (v, ws) in batch.into_iter().rev() {
            c.taken.remove(&v);
            for w in ws.into_iter().rev() {
                c.queue.push_front(w);
            }
        }
        Chosen::Full
    }

    /// Commits one batch; answers its requests or puts them back in the queue.
    async fn commit_batch(&self, cache: &Shared, batch: Vec<(u32, Vec<Waiter>)>) {
        let Some(pool) = lock(cache).def.clone() else {
            return;
        };
        let mut compares = Vec::with_capacity(batch.len() * 2);
        let mut puts = Vec::with_capacity(batch.len() * 2 + 1);
        let mut reads = Vec::with_capacity(batch.len() * 2);
        for (v, ws) in &batch {
            let (vk, ok) = (pool.value_key(*v), pool.owner_key(&ws[0].owner));
            compares.push(Compare::Absent(vk.clone()));
            compares.push(Compare::Absent(ok.clone()));
            puts.push(Op::put(vk.clone(), ws[0].owner.as_bytes().to_vec()));
            puts.push(Op::put(ok.clone(), v.to_string()));
            reads.push(Op::Get(vk));
            reads.push(Op::Get(ok));
        }
        if let Some((last, _)) = batch.last() {
            let hint = pool.after(Some(*last)).unwrap_or(*last);
            puts.push(Op::put(pool.hint_key(), hint.to_string()));
        }
        let result = self.store.txn(compares, puts, reads).await;
        let mut c = lock(cache);
        let r = match result {
            Ok(r) => r,
            Err(e) => {
                // Maybe committed, maybe not: asking again is idempotent by owner.
                for (v, ws) in batch {
                    c.taken.remove(&v);
                    for w in ws {
                        let _ = w.reply.send(Err(AllocError::Store(e.clone())));
                    }
                }
                return;
            }
        };
        if r.succeeded {
            for (v, ws) in batch {
                c.owners.insert(ws[0].owner.clone(), v);
                for w in ws {
                    let _ = w.reply.send(Ok(v));
                }
            }
            return;
        }
        let mut foreign = false;
        let mut retry = Vec::new();
        for (i, (v, ws)) in batch.into_iter().enumerate() {
            let value_holder = r.gets.get(2 * i).cloned().flatten();
            let owner_holds = r
                .gets
                .get(2 * i + 1)
                .cloned()
                .flatten()
                .and_then(|kv| parse_u32(&kv.value));
            if value_holder.is_none() {
                c.taken.remove(&v);
            } else {
                foreign = true;
            }
            match owner_holds {
                Some(held) => {
                    // Asked before (here or through another replica): that value.
                    c.taken.insert(held);
                    c.owners.insert(ws[0].owner.clone(), held);
                    for w in ws {
                        let _ = w.reply.send(Ok(held));
                    }
                }
                None => retry.extend(ws),
            }
        }
        if foreign {
            // Another replica is allocating here too: move on past it by a random stretch,
            // so the two stop choosing the same candidates in step.
            if let Some(mut n) = c.next {
                for _ in 0..fastrand_below(4 * MAX_BATCH as u32) {
                    n = pool.after(Some(n)).unwrap_or(n);
                }
                c.next = Some(n);
            }
        }
        for w in retry.into_iter().rev() {
            c.queue.push_front(w);
        }
    }

    /// `value` for `owner`, or a clear refusal naming who holds it.
    pub async fn allocate_static(
        &self,
        pool: &Pool,
        owner: &str,
        value: u32,
    ) -> Result<u32, AllocError> {
        if !pool.contains(value) {
            return Err(AllocError::OutOfPool {
                pool: pool.name.clone(),
                value: pool.fmt(value),
            });
        }
        if let Some(v) = self.held(pool, owner).await? {
            if v == value {
                return Ok(v);
            }
            return Err(AllocError::BadRequest(format!(
                "{owner} already holds {} in pool {}; release it first",
                pool.fmt(v),
                pool.name
            )));
        }
        let cache = self.cache(pool);
        let taken = self.try_take(pool, owner, value).await?;
        lock(&cache).taken.insert(value);
        match taken {
            Taken::Mine(v) if v == value => {
                lock(&cache).owners.insert(owner.to_string(), v);
                Ok(v)
            }
            _ => {
                let holder = self
                    .store
                    .get(&pool.value_key(value))
                    .await?
                    .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
                    .unwrap_or_else(|| "another owner".into());
                Err(AllocError::Taken {
                    pool: pool.name.clone(),
                    value: pool.fmt(value),
                    owner: holder,
                })
            }
        }
    }

    /// Gives back what `owner` holds; returns it, or None if it held nothing (not an error).
    pub async fn release(&self, pool: &Pool, owner: &str) -> Result<Option<u32>, AllocError> {
        let ok = pool.owner_key(owner);
        let Some(kv) = self.store.get(&ok).await? else {
            return Ok(None);
        };
        let Some(v) = parse_u32(&kv.value) else {
            return Ok(None);
        };
        let r = self
            .store
            .txn(
                vec![Compare::ModRevision(ok.clone(), kv.mod_revision)],
                vec![Op::Delete(ok), Op::Delete(pool.value_key(v))],
                vec![],
            )
            .await?;
        if r.succeeded {
            if let Some(cache) = self.pools.get(&pool.name).map(|c| c.clone()) {
                let mut c = lock(&cache);
                c.taken.remove(&v);
                if c.owners.get(owner) == Some(&v) {
                    c.owners.remove(owner);
                }
            }
        }
        Ok(Some(v))
    }

    async fn try_take(&self, pool: &Pool, owner: &str, v: u32) -> Result<Taken, AllocError> {
        let (vk, ok) = (pool.value_key(v), pool.owner_key(owner));
        let r = self
            .store
            .txn(
                vec![Compare::Absent(vk.clone()), Compare::Absent(ok.clone())],
                vec![
                    Op::put(vk, owner.as_bytes().to_vec()),
                    Op::put(ok.clone(), v.to_string()),
                ],
                vec![Op::Get(ok)],
            )
            .await?;
        if r.succeeded {
            return Ok(Taken::Mine(v));
        }
        // Lost: if the owner got something meanwhile (a concurrent request of its own), that's
        // its value; otherwise the value was taken by someone else.
        match r
            .gets
            .first()
            .cloned()
            .flatten()
            .and_then(|kv| parse_u32(&kv.value))
        {
            Some(held) => Ok(Taken::Mine(held)),
            None => Ok(Taken::Other),
        }
    }
}

/// A number below `n`, good enough to break two replicas' lockstep (no cryptography).
fn fastrand_below(n: u32) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    (h.finish() % u64::from(n.max(1))) as u32
}

enum Taken {
    Mine(u32),
    Other,
}

/// Should the committing task end any other way than by emptying the queue (a panic, the
/// runtime going away), the pool is not left blocked: its queue is refused and the next
/// request starts a new task.
struct Committing {
    cache: Shared,
    done: bool,
}

impl Drop for Committing {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut c = lock(&self.cache);
        c.committing = false;
        for w in c.queue.drain(..) {
            let _ = w.reply.send(Err(AllocError::Store(StoreError::Other(
                "the allocation task stopped; try again".into(),
            ))));
        }
    }
}

/// What the queue gives for the next batch.
enum Chosen {
    Batch(Vec<(u32, Vec<Waiter>)>),
    /// Nothing queued (the committing task stops).
    Empty,
    /// Requests but no candidate left as far as the cache knows.
    Full,
    /// Still full after reading the store again: a batch of what found a candidate, and the
    /// requests that did not.
    Exhausted(Pool, Vec<(u32, Vec<Waiter>)>, Vec<Waiter>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_walk_ranges_steps_and_wrap() {
        let p = Pool::numbers("vlan", vec![(10, 12), (20, 21)]);
        let mut seen = vec![];
        let mut c = p.after(None);
        for _ in 0..6 {
            seen.push(c.unwrap());
            c = p.after(c);
        }
        assert_eq!(seen, vec![10, 11, 12, 20, 21, 10]);
        assert_eq!(p.size(), 5);
        let s = Pool::subnets("subnet/t", "11.1.0.0/16".parse().unwrap(), 24).unwrap();
        assert_eq!(s.size(), 256);
        assert_eq!(
            s.after(None).map(Ipv4Addr::from),
            Some(Ipv4Addr::new(11, 1, 0, 0))
        );
        assert_eq!(
            s.after(Some(u32::from(Ipv4Addr::new(11, 1, 0, 0))))
                .map(Ipv4Addr::from),
            Some(Ipv4Addr::new(11, 1, 1, 0))
        );
        assert!(!s.contains(u32::from(Ipv4Addr::new(11, 1, 0, 128))));
    }
}

//! Allocators on the store: VLAN ids, VNIs, subnets of a tenant pool, addresses of a network.
//! Every allocation is one compare-and-swap transaction, so netmaster replicas sharing one etcd
//! never hand out the same value.
//!
//! Key layout, per pool (`vlan`, `vni`, `subnet/<tenant>`, `ip/<tenant>:<network>`):
//! - `/weft/alloc/<pool>/v/<value as 8 hex digits>` → owner: the value is taken, and by whom;
//! - `/weft/alloc/<pool>/o/<owner>` → value: what the owner holds (asking again returns it);
//! - `/weft/alloc/<pool>/hint` → where the next search starts (a hint, never trusted).
//!
//! A value is taken in one transaction that requires both its value key and the owner key to
//! be absent and writes both; a replica that loses the race sees which and moves on.

use std::net::Ipv4Addr;

use crate::store::{Compare, Op, Store, StoreError};

const PREFIX: &str = "/weft/alloc/";
/// Failed candidates in a row before reading the pool's taken values to skip past them.
const SCAN_AFTER: usize = 32;

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

/// Allocates from pools kept in a store.
#[derive(Clone)]
pub struct Allocator {
    store: Store,
    /// One allocation at a time per pool in this netmaster: concurrent requests would all try
    /// the same hinted candidate and all but one lose and retry (measured: ~15 ms each with 16
    /// at once). Replicas sharing a store still meet in the store's transactions, which stay
    /// the arbiter; this only keeps one replica's own requests from colliding.
    pool_locks: std::sync::Arc<dashmap::DashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl Allocator {
    pub fn new(store: Store) -> Self {
        Allocator {
            store,
            pool_locks: Default::default(),
        }
    }

    fn pool_lock(&self, pool: &Pool) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.pool_locks
            .entry(pool.name.clone())
            .or_default()
            .clone()
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
    pub async fn allocate(&self, pool: &Pool, owner: &str) -> Result<u32, AllocError> {
        if let Some(v) = self.held(pool, owner).await? {
            return Ok(v);
        }
        let lock = self.pool_lock(pool);
        let _one_at_a_time = lock.lock().await;
        let hint = self
            .store
            .get(&pool.hint_key())
            .await?
            .and_then(|kv| parse_u32(&kv.value));
        let mut candidate = match hint {
            Some(h) if pool.contains(h) => Some(h),
            _ => pool.after(None),
        };
        let mut tried: u64 = 0;
        let mut misses = 0usize;
        while let Some(v) = candidate {
            if tried > pool.size() {
                return Err(AllocError::Exhausted {
                    pool: pool.name.clone(),
                });
            }
            tried += 1;
            if pool.exclude.contains(&v) {
                candidate = pool.after(Some(v));
                continue;
            }
            match self.try_take(pool, owner, v).await? {
                Taken::Mine(v) => return Ok(v),
                Taken::Other => {
                    misses += 1;
                    candidate = if misses >= SCAN_AFTER {
                        misses = 0;
                        self.first_free_after(pool, v).await?
                    } else {
                        pool.after(Some(v))
                    };
                }
            }
        }
        Err(AllocError::Exhausted {
            pool: pool.name.clone(),
        })
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
        match self.try_take(pool, owner, value).await? {
            Taken::Mine(v) if v == value => Ok(v),
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
        self.store
            .txn(
                vec![Compare::ModRevision(ok.clone(), kv.mod_revision)],
                vec![Op::Delete(ok), Op::Delete(pool.value_key(v))],
                vec![],
            )
            .await?;
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
                    Op::put(
                        pool.hint_key(),
                        pool.after(Some(v)).unwrap_or(v).to_string(),
                    ),
                ],
                vec![Op::Get(ok)],
            )
            .await?;
        if r.succeeded {
            return Ok(Taken::Mine(v));
        }
        // Lost: if the owner got something meanwhile (a concurrent request of its own), that's
        // its value; otherwise the candidate was taken by someone else.
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

    /// The first value after `v` (wrapping) that no key says is taken.
    async fn first_free_after(&self, pool: &Pool, v: u32) -> Result<Option<u32>, AllocError> {
        let (taken, _) = self
            .store
            .range(format!("{PREFIX}{}/v/", pool.name).as_bytes())
            .await?;
        let taken: std::collections::BTreeSet<u32> = taken
            .iter()
            .filter_map(|kv| {
                let k = std::str::from_utf8(&kv.key).ok()?;
                u32::from_str_radix(k.rsplit('/').next()?, 16).ok()
            })
            .collect();
        let mut c = pool.after(Some(v));
        for _ in 0..pool.size() {
            match c {
                Some(x) if !taken.contains(&x) && !pool.exclude.contains(&x) => return Ok(Some(x)),
                Some(x) => c = pool.after(Some(x)),
                None => break,
            }
        }
        Err(AllocError::Exhausted {
            pool: pool.name.clone(),
        })
    }
}

enum Taken {
    Mine(u32),
    Other,
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

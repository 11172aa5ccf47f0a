//! The embedded backend: one redb file (crash-safe, copy-on-write B-trees with atomic commits)
//! under a data directory, with etcd's semantics.
//!
//! Tables: `kv` (key → revisions, lease, value), `history` (revision → the events of that
//! transaction; the last [`HISTORY_KEPT`] revisions are kept so watches can resume), `meta` (current
//! and compacted revision, next lease id), `leases` (id → TTL). Writes are serialised by one lock
//! held across commit and notification, so watchers see events in revision order. Lease
//! deadlines live in memory: after a restart every lease gets its full TTL again, as in etcd.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{broadcast, mpsc};

use super::{prefix_end, Compare, KeyValue, Op, StoreError, TxnResult, WatchEvent, WatchStream};

const KV: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("kv");
const HISTORY: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("history");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const LEASES: TableDefinition<'_, u64, u64> = TableDefinition::new("leases");

/// Revisions of history kept for watches to resume from.
pub const HISTORY_KEPT: u64 = 100_000;

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("embedded store: {e}"))
}

#[derive(Clone)]
pub struct Embedded {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// Revisions of history kept (normally [`HISTORY_KEPT`]).
    history_kept: u64,
    /// Held across a write transaction's commit and its notification.
    writer: Mutex<()>,
    events: broadcast::Sender<Arc<Vec<WatchEvent>>>,
    deadlines: Mutex<HashMap<i64, (i64, Instant)>>,
}

fn encode_kv(kv: &KeyValue) -> Vec<u8> {
    let mut b = Vec::with_capacity(32 + kv.value.len());
    for v in [kv.create_revision, kv.mod_revision, kv.version, kv.lease] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&kv.value);
    b
}

/// A stored record that does not read back: the file is damaged (or not ours).
fn damaged(what: &str, key: &[u8]) -> StoreError {
    StoreError::Other(format!(
        "the store file is damaged: {what} of {} does not read back",
        String::from_utf8_lossy(key)
    ))
}

fn decode_kv(key: &[u8], b: &[u8]) -> Result<KeyValue, StoreError> {
    let n = |i: usize| -> Result<i64, StoreError> {
        b.get(i * 8..i * 8 + 8)
            .and_then(|s| s.try_into().ok())
            .map(i64::from_be_bytes)
            .ok_or_else(|| damaged("the record", key))
    };
    Ok(KeyValue {
        key: key.to_vec(),
        create_revision: n(0)?,
        mod_revision: n(1)?,
        version: n(2)?,
        lease: n(3)?,
        value: b
            .get(32..)
            .ok_or_else(|| damaged("the record", key))?
            .to_vec(),
    })
}

fn encode_events(events: &[WatchEvent]) -> Vec<u8> {
    let mut b = Vec::new();
    for e in events {
        match e {
            WatchEvent::Put(kv) => {
                b.push(1);
                b.extend_from_slice(&(kv.key.len() as u32).to_be_bytes());
                b.extend_from_slice(&kv.key);
                let rec = encode_kv(kv);
                b.extend_from_slice(&(rec.len() as u32).to_be_bytes());
                b.extend_from_slice(&rec);
            }
            WatchEvent::Delete { key, revision } => {
                b.push(2);
                b.extend_from_slice(&(key.len() as u32).to_be_bytes());
                b.extend_from_slice(key);
                b.extend_from_slice(&revision.to_be_bytes());
            }
        }
    }
    b
}

fn decode_events(mut b: &[u8]) -> Result<Vec<WatchEvent>, StoreError> {
    let mut out = Vec::new();
    let bad = || damaged("a history record", b"(history)");
    let take = |b: &mut &[u8], n: usize| -> Result<Vec<u8>, StoreError> {
        if b.len() < n {
            return Err(bad());
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Ok(h.to_vec())
    };
    let u32_of = |v: Vec<u8>| -> Result<usize, StoreError> {
        Ok(u32::from_be_bytes(v.try_into().map_err(|_| bad())?) as usize)
    };
    while !b.is_empty() {
        let kind = take(&mut b, 1)?[0];
        let klen = u32_of(take(&mut b, 4)?)?;
        let key = take(&mut b, klen)?;
        match kind {
            1 => {
                let rlen = u32_of(take(&mut b, 4)?)?;
                let rec = take(&mut b, rlen)?;
                out.push(WatchEvent::Put(decode_kv(&key, &rec)?));
            }
            2 => {
                let rev = take(&mut b, 8)?;
                let revision = i64::from_be_bytes(rev.try_into().map_err(|_| bad())?);
                out.push(WatchEvent::Delete { key, revision });
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

impl Embedded {
    /// Opens (or creates) the store in `dir/weft.redb`, and starts lease expiry.
    pub async fn open(dir: &Path) -> Result<Embedded, StoreError> {
        Self::open_keeping(dir, HISTORY_KEPT).await
    }

    /// Like [`Embedded::open`], keeping `history_kept` revisions of history (tests use a small
    /// number to see compaction).
    pub async fn open_keeping(dir: &Path, history_kept: u64) -> Result<Embedded, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        let path = dir.join("weft.redb");
        let db = tokio::task::spawn_blocking(move || -> Result<Database, StoreError> {
            let db =
                Database::create(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
            let w = db.begin_write().map_err(err)?;
            {
                w.open_table(KV).map_err(err)?;
                w.open_table(HISTORY).map_err(err)?;
                w.open_table(META).map_err(err)?;
                w.open_table(LEASES).map_err(err)?;
            }
            w.commit().map_err(err)?;
            Ok(db)
        })
        .await
        .map_err(err)??;
        let (events, _) = broadcast::channel(4096);
        let inner = Arc::new(Inner {
            db,
            history_kept: history_kept.max(1),
            writer: Mutex::new(()),
            events,
            deadlines: Mutex::new(HashMap::new()),
        });
        {
            let r = inner.db.begin_read().map_err(err)?;
            let leases = r.open_table(LEASES).map_err(err)?;
            let now = Instant::now();
            let mut d = inner.deadlines.lock().expect("lease lock");
            for item in leases.iter().map_err(err)? {
                let (id, ttl) = item.map_err(err)?;
                let ttl = ttl.value() as i64;
                d.insert(
                    id.value() as i64,
                    (ttl, now + Duration::from_secs(ttl as u64)),
                );
            }
        }
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let expired: Vec<i64> = {
                    let now = Instant::now();
                    let d = inner.deadlines.lock().expect("lease lock");
                    d.iter()
                        .filter(|(_, (_, at))| *at <= now)
                        .map(|(id, _)| *id)
                        .collect()
                };
                for id in expired {
                    let s = Embedded {
                        inner: inner.clone(),
                    };
                    if let Err(e) = s.lease_revoke(id).await {
                        tracing::warn!("expiring lease {id}: {e}");
                    }
                }
            }
        });
        Ok(Embedded { inner })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(err)?
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let key = key.to_vec();
        self.blocking(move |i| {
            let r = i.db.begin_read().map_err(err)?;
            let t = r.open_table(KV).map_err(err)?;
            t.get(key.as_slice())
                .map_err(err)?
                .map(|v| decode_kv(&key, v.value()))
                .transpose()
        })
        .await
    }

    pub async fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, i64), StoreError> {
        let prefix = prefix.to_vec();
        self.blocking(move |i| {
            let r = i.db.begin_read().map_err(err)?;
            let t = r.open_table(KV).map_err(err)?;
            let end = prefix_end(&prefix);
            let mut out = Vec::new();
            for item in t.range(prefix.as_slice()..end.as_slice()).map_err(err)? {
                let (k, v) = item.map_err(err)?;
                out.push(decode_kv(k.value(), v.value())?);
            }
            let rev = r
                .open_table(META)
                .map_err(err)?
                .get("revision")
                .map_err(err)?
                .map(|v| v.value())
                .unwrap_or(0);
            Ok((out, rev as i64))
        })
        .await
    }

    pub async fn txn(
        &self,
        compares: Vec<Compare>,
        success: Vec<Op>,
        failure: Vec<Op>,
    ) -> Result<TxnResult, StoreError> {
        self.blocking(move |i| i.txn(&compares, &success, &failure))
            .await
    }

    pub async fn watch(
        &self,
        prefix: &[u8],
        from_revision: i64,
    ) -> Result<WatchStream, StoreError> {
        let prefix = prefix.to_vec();
        let p2 = prefix.clone();
        let (history, mut live, current) = self
            .blocking(move |i| {
                // With the writer lock, no commit slips between the history read and subscribing.
                let _w = i.writer.lock().expect("writer lock");
                let r = i.db.begin_read().map_err(err)?;
                let meta = r.open_table(META).map_err(err)?;
                let current = meta
                    .get("revision")
                    .map_err(err)?
                    .map(|v| v.value() as i64)
                    .unwrap_or(0);
                let compacted = meta
                    .get("compacted")
                    .map_err(err)?
                    .map(|v| v.value() as i64)
                    .unwrap_or(0);
                let mut history = Vec::new();
                if from_revision > 0 && from_revision <= current {
                    if from_revision <= compacted {
                        return Err(StoreError::Compacted {
                            requested: from_revision,
                            oldest: compacted + 1,
                        });
                    }
                    let h = r.open_table(HISTORY).map_err(err)?;
                    for item in h.range(from_revision as u64..).map_err(err)? {
                        let (_, v) = item.map_err(err)?;
                        history.extend(
                            decode_events(v.value())?
                                .into_iter()
                                .filter(|e| e.key().starts_with(&p2)),
                        );
                    }
                }
                Ok((history, i.events.subscribe(), current))
            })
            .await?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            for e in history {
                if tx.send(Ok(e)).await.is_err() {
                    return;
                }
            }
            let mut last = current;
            loop {
                match live.recv().await {
                    Ok(batch) => {
                        for e in batch.iter().filter(|e| e.key().starts_with(&prefix)) {
                            if e.revision() < from_revision {
                                continue;
                            }
                            last = e.revision();
                            if tx.send(Ok(e.clone())).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(Err(StoreError::Lagged(last))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(rx)
    }

    pub async fn lease_grant(&self, ttl_seconds: i64) -> Result<i64, StoreError> {
        let ttl = ttl_seconds.max(1);
        self.blocking(move |i| {
            let _w = i.writer.lock().expect("writer lock");
            let w = i.db.begin_write().map_err(err)?;
            let id = {
                let mut meta = w.open_table(META).map_err(err)?;
                let id = meta
                    .get("next_lease")
                    .map_err(err)?
                    .map(|v| v.value())
                    .unwrap_or(1);
                meta.insert("next_lease", id + 1).map_err(err)?;
                w.open_table(LEASES)
                    .map_err(err)?
                    .insert(id, ttl as u64)
                    .map_err(err)?;
                id as i64
            };
            w.commit().map_err(err)?;
            i.deadlines
                .lock()
                .expect("lease lock")
                .insert(id, (ttl, Instant::now() + Duration::from_secs(ttl as u64)));
            Ok(id)
        })
        .await
    }

    pub async fn lease_keepalive(&self, id: i64) -> Result<i64, StoreError> {
        let mut d = self.inner.deadlines.lock().expect("lease lock");
        let (ttl, at) = d.get_mut(&id).ok_or(StoreError::LeaseNotFound(id))?;
        *at = Instant::now() + Duration::from_secs(*ttl as u64);
        Ok(*ttl)
    }

    pub async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        self.blocking(move |i| {
            let _w = i.writer.lock().expect("writer lock");
            let w = i.db.begin_write().map_err(err)?;
            {
                let mut meta = w.open_table(META).map_err(err)?;
                let get = |m: &redb::Table<'_, &str, u64>, k| -> Result<u64, StoreError> {
                    Ok(m.get(k).map_err(err)?.map(|v| v.value()).unwrap_or(0))
                };
                let (current, compacted) = (get(&meta, "revision")?, get(&meta, "compacted")?);
                if revision < 1 || revision as u64 > current {
                    return Err(StoreError::Other(format!(
                        "cannot compact to revision {revision}: the store is at revision {current}"
                    )));
                }
                // "compacted" is the last revision whose history is gone.
                let new_compacted = revision as u64 - 1;
                if new_compacted <= compacted {
                    return Ok(());
                }
                w.open_table(HISTORY)
                    .map_err(err)?
                    .retain_in(compacted..=new_compacted, |_, _| false)
                    .map_err(err)?;
                meta.insert("compacted", new_compacted).map_err(err)?;
            }
            w.commit().map_err(err)
        })
        .await
    }

    pub async fn lease_revoke(&self, id: i64) -> Result<(), StoreError> {
        self.blocking(move |i| {
            let _w = i.writer.lock().expect("writer lock");
            let w = i.db.begin_write().map_err(err)?;
            let keys: Vec<Vec<u8>> = {
                let kv = w.open_table(KV).map_err(err)?;
                let mut keys = Vec::new();
                for item in kv.iter().map_err(err)? {
                    let (k, v) = item.map_err(err)?;
                    if decode_kv(k.value(), v.value())?.lease == id {
                        keys.push(k.value().to_vec());
                    }
                }
                keys
            };
            let existed = w
                .open_table(LEASES)
                .map_err(err)?
                .remove(id as u64)
                .map_err(err)?
                .is_some();
            let events = i.apply(
                &w,
                &keys.into_iter().map(Op::Delete).collect::<Vec<_>>(),
                None,
            )?;
            w.commit().map_err(err)?;
            i.deadlines.lock().expect("lease lock").remove(&id);
            i.notify(events);
            if existed {
                Ok(())
            } else {
                Err(StoreError::LeaseNotFound(id))
            }
        })
        .await
    }
}

impl Inner {
    fn txn(
        &self,
        compares: &[Compare],
        success: &[Op],
        failure: &[Op],
    ) -> Result<TxnResult, StoreError> {
        let _w = self.writer.lock().expect("writer lock");
        let w = self.db.begin_write().map_err(err)?;
        let succeeded = {
            let kv = w.open_table(KV).map_err(err)?;
            let mut ok = true;
            for c in compares {
                let get = |k: &[u8]| -> Result<Option<KeyValue>, StoreError> {
                    kv.get(k)
                        .map_err(err)?
                        .map(|v| decode_kv(k, v.value()))
                        .transpose()
                };
                ok &= match c {
                    Compare::Absent(k) => get(k)?.is_none(),
                    Compare::ModRevision(k, r) => get(k)?.is_some_and(|kv| kv.mod_revision == *r),
                    Compare::Version(k, v) => get(k)?.map(|kv| kv.version).unwrap_or(0) == *v,
                    Compare::Value(k, v) => get(k)?.is_some_and(|kv| &kv.value == v),
                };
            }
            ok
        };
        let ops = if succeeded { success } else { failure };
        let mut gets = Vec::new();
        let events = self.apply(&w, ops, Some(&mut gets))?;
        let revision = {
            let meta = w.open_table(META).map_err(err)?;
            let rev = meta
                .get("revision")
                .map_err(err)?
                .map(|v| v.value() as i64)
                .unwrap_or(0);
            rev
        };
        w.commit().map_err(err)?;
        self.notify(events);
        Ok(TxnResult {
            succeeded,
            revision,
            gets,
        })
    }

    /// Applies `ops` in the open write transaction; if anything changed, bumps the revision and
    /// records the events in the history. Returns the events, to publish after the commit.
    fn apply(
        &self,
        w: &redb::WriteTransaction,
        ops: &[Op],
        mut gets: Option<&mut Vec<Option<KeyValue>>>,
    ) -> Result<Vec<WatchEvent>, StoreError> {
        let mut meta = w.open_table(META).map_err(err)?;
        let current = meta
            .get("revision")
            .map_err(err)?
            .map(|v| v.value() as i64)
            .unwrap_or(0);
        let rev = current + 1;
        let mut events = Vec::new();
        {
            let mut kv = w.open_table(KV).map_err(err)?;
            let leases = w.open_table(LEASES).map_err(err)?;
            for op in ops {
                match op {
                    Op::Put { key, value, lease } => {
                        if *lease != 0 && leases.get(*lease as u64).map_err(err)?.is_none() {
                            return Err(StoreError::LeaseNotFound(*lease));
                        }
                        let old = kv
                            .get(key.as_slice())
                            .map_err(err)?
                            .map(|v| decode_kv(key, v.value()))
                            .transpose()?;
                        let new = KeyValue {
                            key: key.clone(),
                            value: value.clone(),
                            create_revision: old.as_ref().map(|o| o.create_revision).unwrap_or(rev),
                            mod_revision: rev,
                            version: old.as_ref().map(|o| o.version).unwrap_or(0) + 1,
                            lease: *lease,
                        };
                        kv.insert(key.as_slice(), encode_kv(&new).as_slice())
                            .map_err(err)?;
                        events.push(WatchEvent::Put(new));
                    }
                    Op::Delete(key) => {
                        if kv.remove(key.as_slice()).map_err(err)?.is_some() {
                            events.push(WatchEvent::Delete {
                                key: key.clone(),
                                revision: rev,
                            });
                        }
                    }
                    Op::DeletePrefix(prefix) => {
                        let end = prefix_end(prefix);
                        let keys: Vec<Vec<u8>> = kv
                            .range(prefix.as_slice()..end.as_slice())
                            .map_err(err)?
                            .map(|item| item.map(|(k, _)| k.value().to_vec()))
                            .collect::<Result<_, _>>()
                            .map_err(err)?;
                        for key in keys {
                            kv.remove(key.as_slice()).map_err(err)?;
                            events.push(WatchEvent::Delete { key, revision: rev });
                        }
                    }
                    Op::Get(key) => {
                        let v = kv
                            .get(key.as_slice())
                            .map_err(err)?
                            .map(|v| decode_kv(key, v.value()))
                            .transpose()?;
                        if let Some(g) = gets.as_deref_mut() {
                            g.push(v);
                        }
                    }
                }
            }
        }
        if !events.is_empty() {
            meta.insert("revision", rev as u64).map_err(err)?;
            let mut history = w.open_table(HISTORY).map_err(err)?;
            history
                .insert(rev as u64, encode_events(&events).as_slice())
                .map_err(err)?;
            // Compaction: keep the last HISTORY revisions.
            let compacted = meta
                .get("compacted")
                .map_err(err)?
                .map(|v| v.value())
                .unwrap_or(0);
            let kept = self.history_kept;
            if rev as u64 > compacted + kept + kept / 10 {
                let new_compacted = rev as u64 - kept;
                history
                    .retain_in(compacted..=new_compacted, |_, _| false)
                    .map_err(err)?;
                meta.insert("compacted", new_compacted).map_err(err)?;
            }
        }
        Ok(events)
    }

    fn notify(&self, events: Vec<WatchEvent>) {
        if !events.is_empty() {
            // No receivers is fine: nobody is watching.
            let _ = self.events.send(Arc::new(events));
        }
    }
}

#[cfg(test)]
mod decode_tests {
    use super::*;
    use proptest::prelude::*;

    fn kv() -> impl Strategy<Value = KeyValue> {
        (
            proptest::collection::vec(any::<u8>(), 0..20),
            proptest::collection::vec(any::<u8>(), 0..40),
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
        )
            .prop_map(|(key, value, c, m, v, l)| KeyValue {
                key,
                value,
                create_revision: c,
                mod_revision: m,
                version: v,
                lease: l,
            })
    }

    fn event() -> impl Strategy<Value = WatchEvent> {
        prop_oneof![
            kv().prop_map(WatchEvent::Put),
            (proptest::collection::vec(any::<u8>(), 0..20), any::<i64>())
                .prop_map(|(key, revision)| WatchEvent::Delete { key, revision }),
        ]
    }

    proptest! {
        /// Records read back as written; a truncated or garbled one is an error, never a panic.
        #[test]
        fn records_round_trip_and_damage_is_an_error(
            k in kv(),
            events in proptest::collection::vec(event(), 0..6),
            cut in any::<prop::sample::Index>(),
            noise in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let rec = encode_kv(&k);
            prop_assert_eq!(decode_kv(&k.key, &rec).unwrap(), k.clone());
            for n in 0..32.min(rec.len()) {
                prop_assert!(decode_kv(&k.key, &rec[..n]).is_err());
            }
            let log = encode_events(&events);
            prop_assert_eq!(decode_events(&log).unwrap(), events);
            if !log.is_empty() {
                let n = cut.index(log.len());
                let _ = decode_events(&log[..n]);
            }
            let _ = decode_events(&noise);
            let _ = decode_kv(b"k", &noise);
        }
    }
}

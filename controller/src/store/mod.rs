//! The store: one interface, two backends with etcd's semantics. Keys and values are bytes;
//! every committed transaction bumps one global revision; transactions compare and then write
//! atomically; watches replay history from a revision and then follow; leases make keys vanish
//! when their owner stops renewing them.
//!
//! - [`embedded`]: one redb file under a data directory (the default).
//! - [`etcd`]: an etcd cluster, through `etcd-client`.
//!
//! [`Store`] is an enum over the two so that callers hold one concrete type; both pass the same
//! test suite (`controller/tests/store_suite.rs`).

pub mod embedded;
pub mod etcd;

use tokio::sync::mpsc;

/// A key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Revision of the transaction that created the key.
    pub create_revision: i64,
    /// Revision of the transaction that last wrote it.
    pub mod_revision: i64,
    /// Writes since creation, 1 for a new key.
    pub version: i64,
    /// Lease the key is attached to, 0 for none.
    pub lease: i64,
}

/// A condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key does not exist.
    Absent(Vec<u8>),
    /// The key exists with exactly this mod revision.
    ModRevision(Vec<u8>, i64),
    /// The key's version (0 when absent).
    Version(Vec<u8>, i64),
    /// The key exists with exactly this value.
    Value(Vec<u8>, Vec<u8>),
}

/// A write (or read) of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: i64,
    },
    Delete(Vec<u8>),
    DeletePrefix(Vec<u8>),
    Get(Vec<u8>),
}

impl Op {
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
            lease: 0,
        }
    }
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResult {
    /// Whether the compares held (and so which branch ran).
    pub succeeded: bool,
    /// The store's revision after the transaction.
    pub revision: i64,
    /// The results of the branch's `Get`s, in order.
    pub gets: Vec<Option<KeyValue>>,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    Put(KeyValue),
    Delete { key: Vec<u8>, revision: i64 },
}

impl WatchEvent {
    pub fn revision(&self) -> i64 {
        match self {
            WatchEvent::Put(kv) => kv.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
        }
    }
    pub fn key(&self) -> &[u8] {
        match self {
            WatchEvent::Put(kv) => &kv.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached (etcd down, file unusable): callers answer 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A watch asked for history the store no longer keeps.
    #[error("revision {requested} has been compacted (oldest kept: {oldest}); start again from a fresh snapshot")]
    Compacted { requested: i64, oldest: i64 },
    /// A watch could not keep up with the changes and was dropped.
    #[error("watch fell behind after revision {0}; resume from there")]
    Lagged(i64),
    /// A transaction larger than the store accepts.
    #[error("{0}")]
    TooLarge(String),
    #[error("lease {0} not found (expired or revoked)")]
    LeaseNotFound(i64),
    #[error("store: {0}")]
    Other(String),
}

/// A watch's events, in revision order. Ends (or yields an error) when the watch breaks; the
/// caller resumes from the last revision it saw plus one.
pub type WatchStream = mpsc::Receiver<Result<WatchEvent, StoreError>>;

/// The store, whichever backend.
#[derive(Clone)]
pub enum Store {
    Embedded(embedded::Embedded),
    Etcd(Box<etcd::EtcdStore>),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Embedded($s) => $e,
            Store::Etcd($s) => $e,
        }
    };
}

impl Store {
    pub async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        dispatch!(self, s => s.get(key).await)
    }

    /// Every key starting with `prefix`, in key order, and the store's revision.
    pub async fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, i64), StoreError> {
        dispatch!(self, s => s.range(prefix).await)
    }

    /// If every compare holds, runs `success`, else `failure`; atomically.
    pub async fn txn(
        &self,
        compares: Vec<Compare>,
        success: Vec<Op>,
        failure: Vec<Op>,
    ) -> Result<TxnResult, StoreError> {
        dispatch!(self, s => s.txn(compares, success, failure).await)
    }

    /// Changes to keys under `prefix` from `from_revision` on (0: from now).
    pub async fn watch(
        &self,
        prefix: &[u8],
        from_revision: i64,
    ) -> Result<WatchStream, StoreError> {
        dispatch!(self, s => s.watch(prefix, from_revision).await)
    }

    /// A lease of `ttl_seconds`; returns its id.
    pub async fn lease_grant(&self, ttl_seconds: i64) -> Result<i64, StoreError> {
        dispatch!(self, s => s.lease_grant(ttl_seconds).await)
    }

    /// Renews a lease for its full TTL; returns the TTL.
    pub async fn lease_keepalive(&self, id: i64) -> Result<i64, StoreError> {
        dispatch!(self, s => s.lease_keepalive(id).await)
    }

    /// Ends a lease now, deleting its keys.
    pub async fn lease_revoke(&self, id: i64) -> Result<(), StoreError> {
        dispatch!(self, s => s.lease_revoke(id).await)
    }

    /// Drops the history before `revision`: watches may start at `revision` or later, earlier
    /// ones fail with [`StoreError::Compacted`]. Compacting to an already compacted revision
    /// does nothing.
    pub async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        dispatch!(self, s => s.compact(revision).await)
    }

    /// Convenience: an unconditional put.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<i64, StoreError> {
        Ok(self
            .txn(vec![], vec![Op::put(key, value)], vec![])
            .await?
            .revision)
    }
}

/// The end of the range of keys starting with `prefix` (etcd's "range end").
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

//! The etcd backend: the store's operations map one to one onto etcd's KV, Watch and Lease APIs.

use etcd_client::{
    Client, CompactionOptions, Compare as ECompare, CompareOp, DeleteOptions, EventType,
    GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;

use super::{prefix_end, Compare, KeyValue, Op, StoreError, TxnResult, WatchEvent, WatchStream};

/// Keys per answer of a range read.
const PAGE: i64 = 1000;

/// A connection to an etcd cluster (cheap to clone: clones share the channel).
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
}

fn unavailable(e: etcd_client::Error) -> StoreError {
    StoreError::Unavailable(format!("etcd: {e}"))
}

fn kv(k: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: k.key().to_vec(),
        value: k.value().to_vec(),
        create_revision: k.create_revision(),
        mod_revision: k.mod_revision(),
        version: k.version(),
        lease: k.lease(),
    }
}

impl EtcdStore {
    /// Connects to the given endpoints (`http://host:port`).
    pub async fn connect(endpoints: &[String]) -> Result<EtcdStore, StoreError> {
        let client = Client::connect(endpoints, None)
            .await
            .map_err(unavailable)?;
        Ok(EtcdStore { client })
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        let r = self
            .client
            .clone()
            .get(key, None)
            .await
            .map_err(unavailable)?;
        Ok(r.kvs().first().map(kv))
    }

    /// In pages of [`PAGE`] keys, all at the revision of the first: one answer holding a large
    /// intent would pass gRPC's message limit (4 MB by default; 100,000 objects are ~17 MB).
    pub async fn range(&self, prefix: &[u8]) -> Result<(Vec<KeyValue>, i64), StoreError> {
        let end = prefix_end(prefix);
        let mut from = prefix.to_vec();
        let mut out = Vec::new();
        let mut rev = 0;
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if rev > 0 {
                opts = opts.with_revision(rev);
            }
            let r = self
                .client
                .clone()
                .get(from.clone(), Some(opts))
                .await
                .map_err(unavailable)?;
            if rev == 0 {
                rev = r.header().map(|h| h.revision()).unwrap_or(0);
            }
            out.extend(r.kvs().iter().map(kv));
            match r.kvs().last() {
                Some(last) if r.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => return Ok((out, rev)),
            }
        }
    }

    pub async fn txn(
        &self,
        compares: Vec<Compare>,
        success: Vec<Op>,
        failure: Vec<Op>,
    ) -> Result<TxnResult, StoreError> {
        let cmps: Vec<ECompare> = compares
            .into_iter()
            .map(|c| match c {
                Compare::Absent(k) => ECompare::version(k, CompareOp::Equal, 0),
                Compare::ModRevision(k, r) => ECompare::mod_revision(k, CompareOp::Equal, r),
                Compare::Version(k, v) => ECompare::version(k, CompareOp::Equal, v),
                Compare::Value(k, v) => ECompare::value(k, CompareOp::Equal, v),
            })
            .collect();
        let ops = |ops: Vec<Op>| -> Vec<TxnOp> {
            ops.into_iter()
                .map(|o| match o {
                    Op::Put { key, value, lease } => {
                        let opts = (lease != 0).then(|| PutOptions::new().with_lease(lease));
                        TxnOp::put(key, value, opts)
                    }
                    Op::Delete(k) => TxnOp::delete(k, None),
                    Op::DeletePrefix(k) => {
                        TxnOp::delete(k, Some(DeleteOptions::new().with_prefix()))
                    }
                    Op::Get(k) => TxnOp::get(k, None),
                })
                .collect()
        };
        let txn = Txn::new()
            .when(cmps)
            .and_then(ops(success))
            .or_else(ops(failure));
        let r = self.client.clone().txn(txn).await.map_err(|e| match e {
            etcd_client::Error::GRpcStatus(s) if s.message().contains("lease not found") => {
                StoreError::LeaseNotFound(0)
            }
            etcd_client::Error::GRpcStatus(s)
                if s.message().contains("too many operations") || s.message().contains("request is too large") =>
            {
                StoreError::TooLarge(format!(
                    "etcd refused a change this large ({}); run etcd with a higher --max-txn-ops and --max-request-bytes, or apply the change in smaller specs",
                    s.message()
                ))
            }
            e => unavailable(e),
        })?;
        let gets = r
            .op_responses()
            .into_iter()
            .filter_map(|o| match o {
                TxnOpResponse::Get(g) => Some(g.kvs().first().map(kv)),
                _ => None,
            })
            .collect();
        Ok(TxnResult {
            succeeded: r.succeeded(),
            revision: r.header().map(|h| h.revision()).unwrap_or(0),
            gets,
        })
    }

    pub async fn watch(
        &self,
        prefix: &[u8],
        from_revision: i64,
    ) -> Result<WatchStream, StoreError> {
        let mut opts = WatchOptions::new().with_prefix();
        if from_revision > 0 {
            opts = opts.with_start_revision(from_revision);
        }
        let mut stream = self
            .client
            .clone()
            .watch(prefix, Some(opts))
            .await
            .map_err(unavailable)?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(resp)) => {
                        if resp.compact_revision() > 0 && resp.canceled() {
                            let _ = tx
                                .send(Err(StoreError::Compacted {
                                    requested: from_revision,
                                    // etcd reports the oldest revision still watchable.
                                    oldest: resp.compact_revision(),
                                }))
                                .await;
                            return;
                        }
                        if resp.canceled() {
                            let _ = tx
                                .send(Err(StoreError::Other(format!(
                                    "watch canceled: {}",
                                    resp.cancel_reason()
                                ))))
                                .await;
                            return;
                        }
                        for ev in resp.events() {
                            let Some(k) = ev.kv() else { continue };
                            let e = match ev.event_type() {
                                EventType::Put => WatchEvent::Put(kv(k)),
                                EventType::Delete => WatchEvent::Delete {
                                    key: k.key().to_vec(),
                                    revision: k.mod_revision(),
                                },
                            };
                            if tx.send(Ok(e)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(unavailable(e))).await;
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    pub async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        let r = self
            .client
            .clone()
            .compact(revision, Some(CompactionOptions::new().with_physical()))
            .await;
        match r {
            Ok(_) => Ok(()),
            // Already compacted that far: nothing to do, as on the embedded store.
            Err(etcd_client::Error::GRpcStatus(s))
                if s.message().contains("required revision has been compacted") =>
            {
                Ok(())
            }
            Err(etcd_client::Error::GRpcStatus(s)) if s.code() == tonic::Code::OutOfRange => {
                Err(StoreError::Other(format!(
                    "cannot compact to revision {revision}: {}",
                    s.message()
                )))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    pub async fn lease_grant(&self, ttl_seconds: i64) -> Result<i64, StoreError> {
        let r = self
            .client
            .clone()
            .lease_grant(ttl_seconds.max(1), None)
            .await
            .map_err(unavailable)?;
        Ok(r.id())
    }

    pub async fn lease_keepalive(&self, id: i64) -> Result<i64, StoreError> {
        let (mut keeper, mut stream) = self
            .client
            .clone()
            .lease_keep_alive(id)
            .await
            .map_err(unavailable)?;
        keeper.keep_alive().await.map_err(unavailable)?;
        match stream.message().await.map_err(unavailable)? {
            Some(r) if r.ttl() > 0 => Ok(r.ttl()),
            _ => Err(StoreError::LeaseNotFound(id)),
        }
    }

    pub async fn lease_revoke(&self, id: i64) -> Result<(), StoreError> {
        self.client
            .clone()
            .lease_revoke(id)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                etcd_client::Error::GRpcStatus(s) if s.message().contains("not found") => {
                    StoreError::LeaseNotFound(id)
                }
                e => unavailable(e),
            })
    }
}

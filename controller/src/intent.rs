//! The intent in the store: one key per object (`/weft/intent/<kind>/<key>`, JSON), and every
//! change applied as one transaction over the whole desired state.
//!
//! A change reads the whole intent and the sequence key `/weft/meta/intent-seq`, computes the
//! new state, allocates packet tags left to netmaster, validates everything, and commits the
//! difference together with a bump of the sequence key, on the condition that the sequence key
//! has not moved. So a change is validated against exactly the state it replaces, replicas never
//! interleave half-changes, and an invalid change stores nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::Serialize;
use weft_api::validate::{check_removals, InUse};
use weft_api::*;

use crate::store::{Compare, Op, Store, StoreError};

const INTENT: &str = "/weft/intent/";
const SEQ: &[u8] = b"/weft/meta/intent-seq";
/// Endpoints live here (operational state written by the agent service).
pub const ENDPOINTS: &str = "/weft/endpoints/";
/// Attempts before a change gives up on concurrent writers.
const RETRIES: usize = 20;

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
    format!("{INTENT}{kind}/{key}").into_bytes()
}

/// The intent part of netmaster.
#[derive(Clone)]
pub struct Intent {
    store: Store,
    metrics: crate::metrics::Metrics,
}

fn objects<T: Keyed + Serialize>(map: &BTreeMap<String, T>, out: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    for (k, v) in map {
        out.insert(
            key_of(T::KIND, k),
            serde_json::to_vec(v).expect("intent objects serialize"),
        );
    }
}

/// The state as store keys and values.
fn flatten(s: &State) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    out.insert(
        key_of(Global::KIND, &s.global.name),
        serde_json::to_vec(&s.global).expect("serializes"),
    );
    objects(&s.tenants, &mut out);
    objects(&s.networks, &mut out);
    objects(&s.groups, &mut out);
    objects(&s.netprofiles, &mut out);
    objects(&s.policies, &mut out);
    objects(&s.rules, &mut out);
    objects(&s.app_profiles, &mut out);
    objects(&s.pod_attachments, &mut out);
    out
}

fn parse<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, IntentError> {
    serde_json::from_slice(value).map_err(|e| {
        IntentError::Store(StoreError::Other(format!(
            "stored object {} is unreadable: {e}",
            String::from_utf8_lossy(key)
        )))
    })
}

/// Packet tags left to netmaster get one: the network keeps the tag it has, else the lowest
/// free one in the global range of its encapsulation.
fn resolve_tags(current: &State, new: &mut State) -> Result<(), IntentError> {
    let mut used: BTreeSet<(Encap, u32)> = new
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
            .ok_or_else(|| {
                IntentError::Conflict(format!(
                    "network \"{k}\": pktTag: no free {} left in the global range {range}",
                    if n.encap == Encap::Vlan {
                        "VLAN id"
                    } else {
                        "VNI"
                    }
                ))
            })?;
        n.pkt_tag = PktTag::Tag(free);
        used.insert((n.encap, free));
    }
    Ok(())
}

impl Intent {
    pub fn new(store: Store) -> Self {
        Intent {
            store,
            metrics: crate::metrics::Metrics::new(),
        }
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The whole intent, and the sequence key's mod revision it was read at (0: none yet).
    pub async fn load(&self) -> Result<(State, i64), IntentError> {
        let seq = self
            .store
            .get(SEQ)
            .await?
            .map(|kv| kv.mod_revision)
            .unwrap_or(0);
        let (kvs, _) = self.store.range(INTENT.as_bytes()).await?;
        let mut s = State::default();
        for kv in kvs {
            let rest = &kv.key[INTENT.len()..];
            let kind = rest.split(|b| *b == b'/').next().unwrap_or_default();
            match kind {
                b"global" => s.global = parse(&kv.key, &kv.value)?,
                b"tenant" => insert(&mut s.tenants, parse(&kv.key, &kv.value)?),
                b"network" => insert(&mut s.networks, parse(&kv.key, &kv.value)?),
                b"endpointGroup" => insert(&mut s.groups, parse(&kv.key, &kv.value)?),
                b"netprofile" => insert(&mut s.netprofiles, parse(&kv.key, &kv.value)?),
                b"policy" => insert(&mut s.policies, parse(&kv.key, &kv.value)?),
                b"rule" => insert(&mut s.rules, parse(&kv.key, &kv.value)?),
                b"appProfile" => insert(&mut s.app_profiles, parse(&kv.key, &kv.value)?),
                b"podAttachment" => insert(&mut s.pod_attachments, parse(&kv.key, &kv.value)?),
                _ => {}
            }
        }
        Ok((s, seq))
    }

    async fn in_use(&self) -> Result<InUse, IntentError> {
        let (kvs, _) = self.store.range(ENDPOINTS.as_bytes()).await?;
        let eps: Vec<Endpoint> = kvs
            .iter()
            .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
            .collect();
        Ok(InUse::from_endpoints(eps.iter()))
    }

    /// Applies `change` to the current state as one validated, atomic transaction; retries when
    /// another writer got in first. Returns the committed state and the plan that was applied.
    pub async fn apply(
        &self,
        change: impl Fn(&State) -> Result<State, IntentError>,
    ) -> Result<(State, Vec<Change>), IntentError> {
        for _ in 0..RETRIES {
            let (current, seq) = self.load().await?;
            let mut new = change(&current)?;
            resolve_tags(&current, &mut new)?;
            let changes = plan(&current, &new).map_err(IntentError::Invalid)?;
            check_removals(&current, &new, &self.in_use().await?)
                .map_err(|e| IntentError::Conflict(e.to_string()))?;
            if changes.is_empty() {
                return Ok((new, changes));
            }
            let (old_kv, new_kv) = (flatten(&current), flatten(&new));
            let mut ops: Vec<Op> = new_kv
                .iter()
                .filter(|(k, v)| old_kv.get(*k) != Some(v))
                .map(|(k, v)| Op::put(k.clone(), v.clone()))
                .collect();
            ops.extend(
                old_kv
                    .keys()
                    .filter(|k| !new_kv.contains_key(*k))
                    .map(|k| Op::Delete(k.clone())),
            );
            ops.push(Op::put(SEQ, b"".to_vec()));
            let guard = if seq == 0 {
                Compare::Absent(SEQ.to_vec())
            } else {
                Compare::ModRevision(SEQ.to_vec(), seq)
            };
            if self.store.txn(vec![guard], ops, vec![]).await?.succeeded {
                self.metrics.objects_committed.inc_by(changes.len() as u64);
                return Ok((new, changes));
            }
        }
        Err(IntentError::Conflict(format!(
            "gave up after {RETRIES} attempts: other writers keep changing the intent; try again"
        )))
    }
}

fn insert<T: Keyed>(map: &mut BTreeMap<String, T>, v: T) {
    map.insert(v.key(), v);
}

//! The intent in memory, with the indexes single-object changes are validated through
//! (`weft_api::validate::Indexed`): who names an object, packet tags, subnets per tenant and of
//! hostAccess networks; and the endpoints, counted per network and group for in-use checks.
//!
//! The index only changes by whole store revisions: an intent transaction's objects together
//! with its sequence key (see `Core::on_event` in the parent module), or one committed change.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ipnet::Ipv4Net;
use weft_api::state::{Kind, Object};
use weft_api::validate::{references, InUse, Indexed, Lookup};
use weft_api::*;

/// Subnets by (network address, prefix length). CIDR blocks either nest or are disjoint, so
/// the ones overlapping a block are its supernets (one lookup per shorter prefix) and the
/// blocks inside it (one range).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Subnets(BTreeMap<(u32, u8), BTreeSet<String>>);

impl Subnets {
    fn slot(net: Ipv4Net) -> (u32, u8) {
        (u32::from(net.trunc().network()), net.prefix_len())
    }

    pub(crate) fn insert(&mut self, net: Ipv4Net, key: &str) {
        self.0
            .entry(Self::slot(net))
            .or_default()
            .insert(key.to_string());
    }

    pub(crate) fn remove(&mut self, net: Ipv4Net, key: &str) {
        let slot = Self::slot(net);
        if let Some(keys) = self.0.get_mut(&slot) {
            keys.remove(key);
            if keys.is_empty() {
                self.0.remove(&slot);
            }
        }
    }

    /// The keys of every subnet that overlaps `net`.
    pub(crate) fn overlapping(&self, net: Ipv4Net) -> Vec<String> {
        let (first, len) = Self::slot(net);
        let last = u32::from(net.trunc().broadcast());
        let mut out = Vec::new();
        for l in 0..len {
            let sup = Ipv4Net::new(net.network(), l)
                .expect("a shorter prefix is valid")
                .trunc();
            if let Some(keys) = self.0.get(&Self::slot(sup)) {
                out.extend(keys.iter().cloned());
            }
        }
        for ((_, l), keys) in self.0.range((first, len)..=(last, 32)) {
            if *l >= len {
                out.extend(keys.iter().cloned());
            }
        }
        out
    }
}

/// What one endpoint uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Uses {
    network: String,
    group: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) state: State,
    /// The mod revision of the sequence key this state is at (0: never written).
    pub(crate) seq: i64,
    /// (kind, key) → the objects naming it.
    refs: HashMap<(Kind, String), BTreeSet<(Kind, String)>>,
    tags: BTreeMap<(Encap, u32), BTreeSet<String>>,
    /// Per tenant.
    subnets: HashMap<String, Subnets>,
    host_access: Subnets,
    endpoints: HashMap<String, Uses>,
    networks_used: HashMap<String, usize>,
    groups_used: HashMap<String, usize>,
}

fn count(map: &mut HashMap<String, usize>, key: &str, up: bool) {
    if up {
        *map.entry(key.to_string()).or_default() += 1;
    } else if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Index {
    fn link(&mut self, o: &Object, add: bool) {
        let me = (o.kind(), o.key());
        for r in references(o) {
            if add {
                self.refs.entry(r).or_default().insert(me.clone());
            } else if let Some(set) = self.refs.get_mut(&r) {
                set.remove(&me);
                if set.is_empty() {
                    self.refs.remove(&r);
                }
            }
        }
        if let Object::Network(n) = o {
            let key = &me.1;
            if let PktTag::Tag(t) = n.pkt_tag {
                let slot = (n.encap, t);
                if add {
                    self.tags.entry(slot).or_default().insert(key.clone());
                } else if let Some(set) = self.tags.get_mut(&slot) {
                    set.remove(key);
                    if set.is_empty() {
                        self.tags.remove(&slot);
                    }
                }
            }
            let tenant = self.subnets.entry(n.tenant_name.clone()).or_default();
            if add {
                tenant.insert(n.subnet.net, key);
            } else {
                tenant.remove(n.subnet.net, key);
                if tenant.0.is_empty() {
                    self.subnets.remove(&n.tenant_name);
                }
            }
            if n.host_access {
                if add {
                    self.host_access.insert(n.subnet.net, key);
                } else {
                    self.host_access.remove(n.subnet.net, key);
                }
            }
        }
    }

    /// Creates or replaces an object.
    pub(crate) fn put(&mut self, o: Object) {
        if let Some(old) = self.state.put(o.clone()) {
            self.link(&old, false);
        }
        self.link(&o, true);
    }

    /// Removes an object (the global object stays).
    pub(crate) fn remove(&mut self, kind: Kind, key: &str) {
        if let Some(old) = self.state.remove(kind, key) {
            self.link(&old, false);
        }
    }

    #[cfg(test)]
    pub(crate) fn apply(&mut self, edit: &weft_api::state::Edit) {
        match edit {
            weft_api::state::Edit::Put(o) => self.put(o.clone()),
            weft_api::state::Edit::Delete(kind, key) => self.remove(*kind, key),
        }
    }

    /// Records endpoint `id` (None: it is gone).
    pub(crate) fn endpoint(&mut self, id: &str, ep: Option<&Endpoint>) {
        if let Some(old) = self.endpoints.remove(id) {
            count(&mut self.networks_used, &old.network, false);
            if let Some(g) = &old.group {
                count(&mut self.groups_used, g, false);
            }
        }
        if let Some(ep) = ep {
            let uses = Uses {
                network: format!("{}:{}", ep.tenant_name, ep.network_name),
                group: (!ep.group_name.is_empty())
                    .then(|| format!("{}:{}", ep.tenant_name, ep.group_name)),
            };
            count(&mut self.networks_used, &uses.network, true);
            if let Some(g) = &uses.group {
                count(&mut self.groups_used, g, true);
            }
            self.endpoints.insert(id.to_string(), uses);
        }
    }

    /// The networks and groups endpoints use.
    pub(crate) fn in_use(&self) -> InUse {
        InUse {
            networks: self.networks_used.keys().cloned().collect(),
            groups: self.groups_used.keys().cloned().collect(),
        }
    }

    pub(crate) fn network_in_use(&self, key: &str) -> bool {
        self.networks_used.contains_key(key)
    }

    pub(crate) fn group_in_use(&self, key: &str) -> bool {
        self.groups_used.contains_key(key)
    }
}

impl Lookup for Index {
    fn global(&self) -> &Global {
        &self.state.global
    }
    fn tenant(&self, key: &str) -> Option<&Tenant> {
        self.state.tenants.get(key)
    }
    fn network(&self, key: &str) -> Option<&Network> {
        self.state.networks.get(key)
    }
    fn group(&self, key: &str) -> Option<&EndpointGroup> {
        self.state.groups.get(key)
    }
    fn netprofile(&self, key: &str) -> Option<&NetProfile> {
        self.state.netprofiles.get(key)
    }
    fn policy(&self, key: &str) -> Option<&Policy> {
        self.state.policies.get(key)
    }
    fn rule(&self, key: &str) -> Option<&Rule> {
        self.state.rules.get(key)
    }
    fn app_profile(&self, key: &str) -> Option<&AppProfile> {
        self.state.app_profiles.get(key)
    }
    fn pod_attachment(&self, key: &str) -> Option<&PodAttachment> {
        self.state.pod_attachments.get(key)
    }
}

impl Indexed for Index {
    fn referrers(&self, kind: Kind, key: &str) -> Vec<(Kind, String)> {
        self.refs
            .get(&(kind, key.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
    fn tag_holders(&self, encap: Encap, tag: u32) -> Vec<String> {
        self.tags
            .get(&(encap, tag))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
    fn tags_between(&self, encap: Encap, lo: u32, hi: u32) -> Vec<String> {
        self.tags
            .range((encap, lo)..=(encap, hi))
            .flat_map(|(_, s)| s.iter().cloned())
            .collect()
    }
    fn overlapping_in_tenant(&self, tenant: &str, net: Ipv4Net) -> Vec<String> {
        self.subnets
            .get(tenant)
            .map(|s| s.overlapping(net))
            .unwrap_or_default()
    }
    fn overlapping_host_access(&self, net: Ipv4Net) -> Vec<String> {
        self.host_access.overlapping(net)
    }
}

impl Index {
    /// Whether tag `t` of `encap` is held by a network other than `key`.
    pub(crate) fn tag_used_by_other(&self, encap: Encap, t: u32, key: &str) -> bool {
        self.tags
            .get(&(encap, t))
            .is_some_and(|s| s.iter().any(|k| k != key))
    }

    /// The first tag of `encap` in `range` (its ranges in the order given) that no network but
    /// `key` holds.
    pub(crate) fn lowest_free_tag(&self, encap: Encap, range: &IdRanges, key: &str) -> Option<u32> {
        for &(a, b) in &range.0 {
            // Walk the held tags of this range in order: the first gap is the answer.
            let mut c = u64::from(a);
            for ((_, t), holders) in self.tags.range((encap, a)..=(encap, b)) {
                if u64::from(*t) > c || holders.iter().all(|k| k == key) {
                    break;
                }
                c += 1;
            }
            if c <= u64::from(b) {
                return Some(c as u32);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn overlapping_subnets_are_found_both_ways() {
        let mut s = Subnets::default();
        s.insert(net("10.0.0.0/8"), "a");
        s.insert(net("10.1.0.0/16"), "b");
        s.insert(net("10.1.2.0/24"), "c");
        s.insert(net("10.2.0.0/16"), "d");
        s.insert(net("11.0.0.0/8"), "e");
        let mut got = s.overlapping(net("10.1.0.0/16"));
        got.sort();
        assert_eq!(got, ["a", "b", "c"]);
        let mut got = s.overlapping(net("10.1.2.128/25"));
        got.sort();
        assert_eq!(got, ["a", "b", "c"]);
        let mut got = s.overlapping(net("0.0.0.0/0"));
        got.sort();
        assert_eq!(got, ["a", "b", "c", "d", "e"]);
        assert!(s.overlapping(net("12.0.0.0/8")).is_empty());
        s.remove(net("10.1.0.0/16"), "b");
        let mut got = s.overlapping(net("10.1.0.0/16"));
        got.sort();
        assert_eq!(got, ["a", "c"]);
    }

    #[test]
    fn lowest_free_tag_skips_taken_ones() {
        let mut ix = Index::default();
        let mk = |name: &str, t: u32| {
            Object::Network(
                serde_json::from_value(serde_json::json!({
                    "tenantName": "t", "networkName": name, "encap": "vxlan", "pktTag": t,
                    "subnet": format!("10.{t}.0.0/24")
                }))
                .unwrap(),
            )
        };
        let r: IdRanges = "5-7,10-11".parse().unwrap();
        assert_eq!(ix.lowest_free_tag(Encap::Vxlan, &r, "t:x"), Some(5));
        ix.put(mk("a", 5));
        ix.put(mk("b", 6));
        assert_eq!(ix.lowest_free_tag(Encap::Vxlan, &r, "t:x"), Some(7));
        assert_eq!(ix.lowest_free_tag(Encap::Vxlan, &r, "t:a"), Some(5));
        assert_eq!(ix.lowest_free_tag(Encap::Vlan, &r, "t:x"), Some(5));
        ix.put(mk("c", 7));
        assert_eq!(ix.lowest_free_tag(Encap::Vxlan, &r, "t:x"), Some(10));
        ix.put(mk("d", 10));
        ix.put(mk("e", 11));
        assert_eq!(ix.lowest_free_tag(Encap::Vxlan, &r, "t:x"), None);
        ix.remove(Kind::Network, "t:b");
        assert_eq!(ix.lowest_free_tag(Encap::Vxlan, &r, "t:x"), Some(6));
    }
}

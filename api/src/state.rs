//! The desired state as a whole, Weft's intent spec format, and the plan that takes one state to
//! another.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::*;
use crate::validate::{validate_state, ValidationError, ValidationErrors};

/// Every intent object, by key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    pub global: Global,
    pub tenants: BTreeMap<String, Tenant>,
    pub networks: BTreeMap<String, Network>,
    pub groups: BTreeMap<String, EndpointGroup>,
    pub netprofiles: BTreeMap<String, NetProfile>,
    pub policies: BTreeMap<String, Policy>,
    pub rules: BTreeMap<String, Rule>,
    pub app_profiles: BTreeMap<String, AppProfile>,
    #[serde(default)]
    pub pod_attachments: BTreeMap<String, PodAttachment>,
}

/// Weft's intent spec: the same objects as the REST API, in lists. Applied declaratively: what
/// it names is created or updated; with prune, what it does not name is deleted.
///
/// ```json
/// {
///   "global": { "vlans": "100-200", "vxlans": "10000-20000" },
///   "tenants": [ { "tenantName": "blue" } ],
///   "networks": [ { "tenantName": "blue", "networkName": "web", "encap": "vxlan",
///                   "subnet": "10.1.0.0/24", "gateway": "10.1.0.1" } ],
///   "endpointGroups": [ { "tenantName": "blue", "groupName": "front", "networkName": "web",
///                         "policies": ["front-in"] } ],
///   "policies": [ { "tenantName": "blue", "policyName": "front-in" } ],
///   "rules": [ { "tenantName": "blue", "policyName": "front-in", "ruleId": "1",
///                "direction": "in", "protocol": "tcp", "port": 80, "action": "allow" } ]
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<Global>,
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    #[serde(default)]
    pub networks: Vec<Network>,
    #[serde(default)]
    pub endpoint_groups: Vec<EndpointGroup>,
    #[serde(default)]
    pub netprofiles: Vec<NetProfile>,
    #[serde(default)]
    pub policies: Vec<Policy>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub app_profiles: Vec<AppProfile>,
    #[serde(default)]
    pub pod_attachments: Vec<PodAttachment>,
}

fn insert_unique<T: Keyed + Clone>(
    map: &mut BTreeMap<String, T>,
    items: &[T],
    errors: &mut Vec<ValidationError>,
) {
    for it in items {
        if map.insert(it.key(), it.clone()).is_some() {
            errors.push(ValidationError {
                kind: T::KIND,
                key: it.key(),
                field: "name",
                message: "named twice in the spec".into(),
            });
        }
    }
}

impl Spec {
    /// Parses a spec, refusing unknown fields with their location.
    pub fn from_json(text: &str) -> Result<Spec, String> {
        serde_json::from_str(text).map_err(|e| format!("spec: {e}"))
    }

    /// The state the spec describes on its own (global defaults where it names none).
    pub fn to_state(&self) -> Result<State, ValidationErrors> {
        let mut errors = Vec::new();
        let mut s = State {
            global: self.global.clone().unwrap_or_default(),
            ..State::default()
        };
        insert_unique(&mut s.tenants, &self.tenants, &mut errors);
        insert_unique(&mut s.networks, &self.networks, &mut errors);
        insert_unique(&mut s.groups, &self.endpoint_groups, &mut errors);
        insert_unique(&mut s.netprofiles, &self.netprofiles, &mut errors);
        insert_unique(&mut s.policies, &self.policies, &mut errors);
        insert_unique(&mut s.rules, &self.rules, &mut errors);
        insert_unique(&mut s.app_profiles, &self.app_profiles, &mut errors);
        insert_unique(&mut s.pod_attachments, &self.pod_attachments, &mut errors);
        if errors.is_empty() {
            Ok(s)
        } else {
            Err(ValidationErrors(errors))
        }
    }

    /// The state after applying the spec to `current`: named objects created or replaced, and
    /// with `prune` everything else removed (the global settings stay unless the spec names them).
    pub fn apply_to(&self, current: &State, prune: bool) -> Result<State, ValidationErrors> {
        let named = self.to_state()?;
        if prune {
            let mut s = named;
            if self.global.is_none() {
                s.global = current.global.clone();
            }
            return Ok(s);
        }
        let mut s = current.clone();
        if let Some(g) = &self.global {
            s.global = g.clone();
        }
        s.tenants.extend(named.tenants);
        s.networks.extend(named.networks);
        s.groups.extend(named.groups);
        s.netprofiles.extend(named.netprofiles);
        s.policies.extend(named.policies);
        s.rules.extend(named.rules);
        s.app_profiles.extend(named.app_profiles);
        s.pod_attachments.extend(named.pod_attachments);
        Ok(s)
    }
}

/// One change of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create { kind: &'static str, key: String },
    Update { kind: &'static str, key: String },
    Delete { kind: &'static str, key: String },
}

/// The changes from one state to another, creates and updates in dependency order (tenants
/// before their networks, networks before groups, ...), deletes in the reverse order.
pub fn plan(from: &State, to: &State) -> Result<Vec<Change>, ValidationErrors> {
    validate_state(to)?;
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    fn diff<T: Keyed + PartialEq>(
        a: &BTreeMap<String, T>,
        b: &BTreeMap<String, T>,
        ups: &mut Vec<Change>,
        downs: &mut Vec<Change>,
    ) {
        for (k, v) in b {
            match a.get(k) {
                None => ups.push(Change::Create {
                    kind: T::KIND,
                    key: k.clone(),
                }),
                Some(old) if old != v => ups.push(Change::Update {
                    kind: T::KIND,
                    key: k.clone(),
                }),
                _ => {}
            }
        }
        for k in a.keys().filter(|k| !b.contains_key(*k)) {
            downs.push(Change::Delete {
                kind: T::KIND,
                key: k.clone(),
            });
        }
    }
    if from.global != to.global {
        ups.push(Change::Update {
            kind: Global::KIND,
            key: to.global.name.clone(),
        });
    }
    // Dependency order: what is referred to comes first.
    diff(&from.tenants, &to.tenants, &mut ups, &mut downs);
    diff(&from.netprofiles, &to.netprofiles, &mut ups, &mut downs);
    diff(&from.policies, &to.policies, &mut ups, &mut downs);
    diff(&from.networks, &to.networks, &mut ups, &mut downs);
    diff(&from.groups, &to.groups, &mut ups, &mut downs);
    diff(&from.rules, &to.rules, &mut ups, &mut downs);
    diff(&from.app_profiles, &to.app_profiles, &mut ups, &mut downs);
    diff(
        &from.pod_attachments,
        &to.pod_attachments,
        &mut ups,
        &mut downs,
    );
    downs.reverse();
    ups.extend(downs);
    Ok(ups)
}

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

/// The kinds of intent objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Global,
    Tenant,
    Network,
    Group,
    NetProfile,
    Policy,
    Rule,
    AppProfile,
    PodAttachment,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Global,
        Kind::Tenant,
        Kind::Network,
        Kind::Group,
        Kind::NetProfile,
        Kind::Policy,
        Kind::Rule,
        Kind::AppProfile,
        Kind::PodAttachment,
    ];

    /// The kind's name as keys, REST paths and errors use it (`Keyed::KIND`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Global => Global::KIND,
            Kind::Tenant => Tenant::KIND,
            Kind::Network => Network::KIND,
            Kind::Group => EndpointGroup::KIND,
            Kind::NetProfile => NetProfile::KIND,
            Kind::Policy => Policy::KIND,
            Kind::Rule => Rule::KIND,
            Kind::AppProfile => AppProfile::KIND,
            Kind::PodAttachment => PodAttachment::KIND,
        }
    }

    /// The kind named `s` (`"endpointGroup"`, ...), if any.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One intent object, of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    Global(Global),
    Tenant(Tenant),
    Network(Network),
    Group(EndpointGroup),
    NetProfile(NetProfile),
    Policy(Policy),
    Rule(Rule),
    AppProfile(AppProfile),
    PodAttachment(PodAttachment),
}

macro_rules! each_object {
    ($o:expr, $v:ident => $e:expr) => {
        match $o {
            Object::Global($v) => $e,
            Object::Tenant($v) => $e,
            Object::Network($v) => $e,
            Object::Group($v) => $e,
            Object::NetProfile($v) => $e,
            Object::Policy($v) => $e,
            Object::Rule($v) => $e,
            Object::AppProfile($v) => $e,
            Object::PodAttachment($v) => $e,
        }
    };
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Global(_) => Kind::Global,
            Object::Tenant(_) => Kind::Tenant,
            Object::Network(_) => Kind::Network,
            Object::Group(_) => Kind::Group,
            Object::NetProfile(_) => Kind::NetProfile,
            Object::Policy(_) => Kind::Policy,
            Object::Rule(_) => Kind::Rule,
            Object::AppProfile(_) => Kind::AppProfile,
            Object::PodAttachment(_) => Kind::PodAttachment,
        }
    }

    pub fn key(&self) -> String {
        each_object!(self, o => o.key())
    }

    /// The object's JSON, as the store and the API hold it.
    pub fn to_json(&self) -> Vec<u8> {
        each_object!(self, o => serde_json::to_vec(o)).expect("intent objects serialize")
    }

    /// An object of `kind` from its JSON.
    pub fn from_json(kind: Kind, json: &[u8]) -> Result<Object, serde_json::Error> {
        Ok(match kind {
            Kind::Global => Object::Global(serde_json::from_slice(json)?),
            Kind::Tenant => Object::Tenant(serde_json::from_slice(json)?),
            Kind::Network => Object::Network(serde_json::from_slice(json)?),
            Kind::Group => Object::Group(serde_json::from_slice(json)?),
            Kind::NetProfile => Object::NetProfile(serde_json::from_slice(json)?),
            Kind::Policy => Object::Policy(serde_json::from_slice(json)?),
            Kind::Rule => Object::Rule(serde_json::from_slice(json)?),
            Kind::AppProfile => Object::AppProfile(serde_json::from_slice(json)?),
            Kind::PodAttachment => Object::PodAttachment(serde_json::from_slice(json)?),
        })
    }
}

/// The kinds kept in a map of [`State`] (all but the global object), typed.
pub trait MapKind: Keyed + Clone + Sized + 'static {
    const OF: Kind;
    fn map(s: &State) -> &BTreeMap<String, Self>;
    fn map_mut(s: &mut State) -> &mut BTreeMap<String, Self>;
    fn into_object(self) -> Object;
    fn from_object(o: Object) -> Option<Self>;
}

macro_rules! map_kind {
    ($t:ty, $kind:ident, $field:ident) => {
        impl MapKind for $t {
            const OF: Kind = Kind::$kind;
            fn map(s: &State) -> &BTreeMap<String, Self> {
                &s.$field
            }
            fn map_mut(s: &mut State) -> &mut BTreeMap<String, Self> {
                &mut s.$field
            }
            fn into_object(self) -> Object {
                Object::$kind(self)
            }
            fn from_object(o: Object) -> Option<Self> {
                match o {
                    Object::$kind(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

map_kind!(Tenant, Tenant, tenants);
map_kind!(Network, Network, networks);
map_kind!(EndpointGroup, Group, groups);
map_kind!(NetProfile, NetProfile, netprofiles);
map_kind!(Policy, Policy, policies);
map_kind!(Rule, Rule, rules);
map_kind!(AppProfile, AppProfile, app_profiles);
map_kind!(PodAttachment, PodAttachment, pod_attachments);

/// A change of one object: create or replace it, or delete it. (The global object is never
/// deleted, only replaced.)
// An edit lives for one request; boxing the object would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    Put(Object),
    Delete(Kind, String),
}

impl Edit {
    pub fn kind(&self) -> Kind {
        match self {
            Edit::Put(o) => o.kind(),
            Edit::Delete(k, _) => *k,
        }
    }
    pub fn key(&self) -> String {
        match self {
            Edit::Put(o) => o.key(),
            Edit::Delete(_, k) => k.clone(),
        }
    }
}

impl State {
    /// The object of `kind` under `key`, if there is one (the global object is always there).
    pub fn object(&self, kind: Kind, key: &str) -> Option<Object> {
        fn get<T: MapKind>(s: &State, key: &str) -> Option<Object> {
            T::map(s).get(key).cloned().map(T::into_object)
        }
        match kind {
            Kind::Global => (self.global.name == key).then(|| Object::Global(self.global.clone())),
            Kind::Tenant => get::<Tenant>(self, key),
            Kind::Network => get::<Network>(self, key),
            Kind::Group => get::<EndpointGroup>(self, key),
            Kind::NetProfile => get::<NetProfile>(self, key),
            Kind::Policy => get::<Policy>(self, key),
            Kind::Rule => get::<Rule>(self, key),
            Kind::AppProfile => get::<AppProfile>(self, key),
            Kind::PodAttachment => get::<PodAttachment>(self, key),
        }
    }

    /// Creates or replaces `o`; returns what it replaced.
    pub fn put(&mut self, o: Object) -> Option<Object> {
        fn put<T: MapKind>(s: &mut State, v: T) -> Option<Object> {
            T::map_mut(s).insert(v.key(), v).map(T::into_object)
        }
        match o {
            Object::Global(g) => Some(Object::Global(std::mem::replace(&mut self.global, g))),
            Object::Tenant(v) => put(self, v),
            Object::Network(v) => put(self, v),
            Object::Group(v) => put(self, v),
            Object::NetProfile(v) => put(self, v),
            Object::Policy(v) => put(self, v),
            Object::Rule(v) => put(self, v),
            Object::AppProfile(v) => put(self, v),
            Object::PodAttachment(v) => put(self, v),
        }
    }

    /// Removes the object of `kind` under `key`; returns it. The global object is never removed.
    pub fn remove(&mut self, kind: Kind, key: &str) -> Option<Object> {
        fn rm<T: MapKind>(s: &mut State, key: &str) -> Option<Object> {
            T::map_mut(s).remove(key).map(T::into_object)
        }
        match kind {
            Kind::Global => None,
            Kind::Tenant => rm::<Tenant>(self, key),
            Kind::Network => rm::<Network>(self, key),
            Kind::Group => rm::<EndpointGroup>(self, key),
            Kind::NetProfile => rm::<NetProfile>(self, key),
            Kind::Policy => rm::<Policy>(self, key),
            Kind::Rule => rm::<Rule>(self, key),
            Kind::AppProfile => rm::<AppProfile>(self, key),
            Kind::PodAttachment => rm::<PodAttachment>(self, key),
        }
    }

    /// Applies `edit`; returns the object it replaced or removed.
    pub fn apply(&mut self, edit: &Edit) -> Option<Object> {
        match edit {
            Edit::Put(o) => self.put(o.clone()),
            Edit::Delete(kind, key) => self.remove(*kind, key),
        }
    }

    /// Every object but the global one.
    pub fn objects(&self) -> impl Iterator<Item = Object> + '_ {
        fn all<T: MapKind>(s: &State) -> impl Iterator<Item = Object> + '_ {
            T::map(s).values().cloned().map(T::into_object)
        }
        all::<Tenant>(self)
            .chain(all::<Network>(self))
            .chain(all::<EndpointGroup>(self))
            .chain(all::<NetProfile>(self))
            .chain(all::<Policy>(self))
            .chain(all::<Rule>(self))
            .chain(all::<AppProfile>(self))
            .chain(all::<PodAttachment>(self))
    }
}

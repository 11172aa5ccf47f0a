//! The compiler kept warm: a host's state with its compiled set, changed by [`StateChange`]s at a
//! cost about the size of each change, not of the host.
//!
//! The set is the union of fragments, each the output of one emitter of the full compile
//! ([`crate::compile`]) for one object: the skeleton, a network, an endpoint here, an endpoint on
//! another host, the host gateway, a group's default deny, a policy, and the merged clauses of
//! conjunctive matches. A change re-emits only the fragments whose inputs it changed; where two
//! fragments emit a flow with one key, the one the full compile emits last wins, as it does there
//! (fragments are ordered as the full compile emits them).
//!
//! What the full compile resolves globally is kept as indexes: who claims a segment, a port, a
//! MAC or an address (the first by key wins), the networks this host carries, the routes of each
//! tenant (the first by emission order wins), the group ids, the targets and conjunction ids of
//! each policy. A change that touches a contested key recomputes what it can affect: all local
//! endpoints (there are few), or the remote endpoints of one network.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ofproto::action::Action;

use crate::flowset::{Delta, Flow, FlowKey, Group, Meter};
use crate::model::{
    Endpoint, EndpointGroup, GatewayPort, HostState, Network, Peer, Policy, Problem,
    RemoteEndpoint, Segment,
};
use crate::pipeline::{
    endpoint_fragment, gateway_fragment, network_fragment, remote_fragment, skeleton_fragment,
    Compiled, Links, Membership,
};
use crate::rules::{
    conj_rules, default_deny_fragment, merged_clause, policy_fragment, stable_id, Clauses,
};
use crate::FlowSet;

/// One change to a host's state. Objects are known by their key: an upsert replaces the object
/// with that key, a removal of an unknown key changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateChange {
    UpsertEndpoint(Endpoint),
    RemoveEndpoint(String),
    UpsertRemote(RemoteEndpoint),
    RemoveRemote(String),
    UpsertNetwork(Network),
    RemoveNetwork(String),
    UpsertGroup(EndpointGroup),
    RemoveGroup(String),
    UpsertPolicy(Policy),
    RemovePolicy(String),
    Ports {
        uplink_port: Option<u32>,
        tunnel_port: Option<u32>,
        gateway_port: Option<GatewayPort>,
    },
    OtherHosts(Vec<Ipv4Addr>),
    ServiceCidrs(Vec<(Ipv4Addr, u8)>),
}

/// The compiled set of one host, kept up to date change by change. [`Incremental::flows`] is
/// always what [`crate::compile`] makes of [`Incremental::state`].
#[derive(Debug, Clone)]
pub struct Incremental {
    input: Input,
    index: Index,
    res: Resolution,
    regs: Registry,
    out: Output,
}

/// The state, by key.
#[derive(Debug, Clone, Default)]
struct Input {
    links: Links,
    gateway_port: Option<GatewayPort>,
    other_hosts: Vec<Ipv4Addr>,
    service_cidrs: Vec<(Ipv4Addr, u8)>,
    networks: BTreeMap<String, Network>,
    endpoints: BTreeMap<String, Endpoint>,
    remotes: BTreeMap<String, RemoteEndpoint>,
    groups: BTreeMap<String, EndpointGroup>,
    policies: BTreeMap<String, Policy>,
}

/// What a MAC or an address is claimed as, within one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Claim {
    Mac([u8; 6]),
    Addr(IpAddr),
}

fn local_claims(e: &Endpoint) -> impl Iterator<Item = Claim> + '_ {
    std::iter::once(Claim::Mac(e.mac)).chain(
        e.ipv4
            .iter()
            .map(|a| Claim::Addr(IpAddr::V4(*a)))
            .chain(e.ipv6.iter().map(|a| Claim::Addr(IpAddr::V6(*a)))),
    )
}

fn remote_claims(r: &RemoteEndpoint) -> impl Iterator<Item = Claim> + '_ {
    std::iter::once(Claim::Mac(r.mac)).chain(r.ipv4.iter().map(|a| Claim::Addr(IpAddr::V4(*a))))
}

/// Indexes of the input: who has each port, MAC and address, whether it won it or not.
#[derive(Debug, Clone, Default, PartialEq)]
struct Index {
    /// OpenFlow port → the local endpoints that have it.
    local_ports: HashMap<u32, BTreeSet<String>>,
    /// Network → MAC or address → the local endpoints that have it.
    local_claims: HashMap<String, HashMap<Claim, BTreeSet<String>>>,
    by_network: HashMap<String, BTreeSet<String>>,
    by_group: HashMap<String, BTreeSet<String>>,
    /// Network → MAC or address → the remote endpoints that have it.
    claims: HashMap<String, HashMap<Claim, BTreeSet<String>>>,
}

/// Who won what: the full compile's global decisions, kept.
#[derive(Debug, Clone, Default, PartialEq)]
struct Resolution {
    /// Networks with a segment of their own (the first by key keeps a segment).
    accepted: BTreeSet<String>,
    network_problems: BTreeMap<String, Problem>,
    /// Every local endpoint: accepted, or why not.
    local: BTreeMap<String, Result<(), Problem>>,
    /// Network → MAC or address → the accepted local endpoint that has it.
    local_claims: HashMap<String, HashMap<Claim, String>>,
    /// Network → its accepted local endpoints.
    members: BTreeMap<String, BTreeSet<String>>,
    /// The networks this host carries.
    present: BTreeSet<String>,
    /// The remote endpoints of carried networks: accepted, or why not.
    remote: HashMap<String, Result<(), Problem>>,
    remote_problems: BTreeMap<String, Problem>,
    /// Group key → register value.
    group_ids: BTreeMap<String, u32>,
    /// Per known policy, what its fragment depends on besides the policy itself.
    policy_inputs: BTreeMap<String, PolicyInputs>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PolicyInputs {
    /// The register values of its local target groups, in group key order.
    targets: Vec<u32>,
    /// The conjunction id of each rule that needs one, in rule order.
    conj_ids: Vec<u32>,
    /// The register value of each rule's peer group (in rule order; None: unknown or no group).
    peers: Vec<Option<u32>>,
}

/// The fragments of the compiled set, in the order the full compile emits them (`rank`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Frag {
    /// The clauses of conjunctive matches, merged over all policies. A clause flow stands only
    /// where no other fragment has a flow with its key, so it ranks below everything.
    Clauses,
    Skeleton,
    Network(String),
    Local {
        net: String,
        key: String,
    },
    Remote {
        net: String,
        key: String,
    },
    Gateway,
    DefaultDeny(String),
    Policy(String),
}

impl Frag {
    fn rank(&self) -> (u8, &str, u8, &str) {
        match self {
            Frag::Clauses => (0, "", 0, ""),
            Frag::Skeleton => (1, "", 0, ""),
            Frag::Network(n) => (2, n, 0, ""),
            Frag::Local { net, key } => (2, net, 1, key),
            Frag::Remote { net, key } => (2, net, 2, key),
            Frag::Gateway => (3, "", 0, ""),
            Frag::DefaultDeny(g) => (4, "", 0, g),
            Frag::Policy(p) => (5, "", 0, p),
        }
    }

    fn local(ep: &Endpoint) -> Frag {
        Frag::Local {
            net: ep.network.clone(),
            key: ep.key.clone(),
        }
    }

    fn remote(r: &RemoteEndpoint) -> Frag {
        Frag::Remote {
            net: r.network.clone(),
            key: r.key.clone(),
        }
    }
}

impl Ord for Frag {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl PartialOrd for Frag {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A route claim: an endpoint's `idx`-th address, in emission order (network, local before
/// remote, key, position).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RouteClaim {
    net: String,
    remote: bool,
    key: String,
    idx: usize,
}

impl RouteClaim {
    fn frag(&self) -> Frag {
        let (net, key) = (self.net.clone(), self.key.clone());
        if self.remote {
            Frag::Remote { net, key }
        } else {
            Frag::Local { net, key }
        }
    }
}

/// What an accepted endpoint adds to the indexes its neighbours' fragments read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reg {
    zone: u16,
    /// Its IPv4 addresses, each a route claim in its tenant.
    addrs: Vec<Ipv4Addr>,
    /// A remote endpoint's host: a bucket of its network's flooding group.
    vtep: Option<Ipv4Addr>,
    /// A local endpoint's port: a bucket of its network's flooding groups.
    port: Option<u32>,
    /// A local endpoint's group, when known in its network: the group is local.
    group: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Registry {
    regs: HashMap<Frag, Reg>,
    /// Network → its remote endpoints' hosts, counted.
    vteps: HashMap<String, BTreeMap<Ipv4Addr, usize>>,
    /// (zone, address) → its claims, in emission order; the first wins.
    routes: HashMap<(u16, Ipv4Addr), Vec<RouteClaim>>,
    contested: BTreeSet<(u16, Ipv4Addr)>,
    /// Groups with an accepted local endpoint, counted.
    local_groups: BTreeMap<String, usize>,
}

/// The compiled set, the fragments it is made of, and who contributes each key.
#[derive(Debug, Clone, Default)]
struct Output {
    frags: HashMap<Arc<Frag>, Compiled>,
    set: FlowSet,
    owners: BTreeMap<u64, String>,
    flows_by: HashMap<FlowKey, Vec<Arc<Frag>>>,
    groups_by: HashMap<u32, Vec<Arc<Frag>>>,
    meters_by: HashMap<u32, Vec<Arc<Frag>>>,
    owners_by: HashMap<u64, Vec<Arc<Frag>>>,
    /// Each policy's clauses (key → its first flow and its conjunction actions).
    policy_clauses: HashMap<String, BTreeMap<FlowKey, (Flow, Vec<Action>)>>,
    /// Clause key → the policies with a part in it.
    clause_policies: HashMap<FlowKey, BTreeSet<String>>,
    /// What the touched keys held before this change: the delta's reference.
    before_flows: HashMap<FlowKey, Option<Flow>>,
    before_groups: HashMap<u32, Option<Group>>,
    before_meters: HashMap<u32, Option<Meter>>,
}

/// The bookkeeping of one [`Incremental::apply`].
#[derive(Debug, Default)]
struct Work {
    dirty: HashSet<Frag>,
    /// Networks whose input changed, with what they were before.
    networks: BTreeMap<String, Option<Network>>,
    locals: bool,
    /// A local endpoint's port, MAC or address is contested: all are resolved afresh.
    locals_full: bool,
    /// Local endpoints changed, with what they were before.
    local_old: BTreeMap<String, Option<Endpoint>>,
    gateway_port: bool,
    tunnel: bool,
    uplink: bool,
    /// Networks whose remote endpoints are resolved afresh.
    full: BTreeSet<String>,
    remotes: BTreeSet<String>,
    group_set: bool,
    policies: bool,
}

impl Incremental {
    /// Compiles `state` once. Objects are known by key: of two with one key, the later counts.
    pub fn new(state: HostState) -> Incremental {
        let mut inc = Incremental {
            input: Input::default(),
            index: Index::default(),
            res: Resolution::default(),
            regs: Registry::default(),
            out: Output::default(),
        };
        let mut w = Work::default();
        w.dirty.insert(Frag::Skeleton);
        let changes = [
            StateChange::Ports {
                uplink_port: state.uplink_port,
                tunnel_port: state.tunnel_port,
                gateway_port: state.gateway_port,
            },
            StateChange::OtherHosts(state.other_hosts),
            StateChange::ServiceCidrs(state.service_cidrs),
        ]
        .into_iter()
        .chain(state.networks.into_iter().map(StateChange::UpsertNetwork))
        .chain(state.groups.into_iter().map(StateChange::UpsertGroup))
        .chain(state.policies.into_iter().map(StateChange::UpsertPolicy))
        .chain(state.endpoints.into_iter().map(StateChange::UpsertEndpoint))
        .chain(
            state
                .remote_endpoints
                .into_iter()
                .map(StateChange::UpsertRemote),
        );
        for c in changes {
            inc.take(c, &mut w);
        }
        inc.run(w);
        inc
    }

    /// Applies changes, in order, and says what changed in [`Incremental::flows`].
    pub fn apply(&mut self, changes: impl IntoIterator<Item = StateChange>) -> Delta {
        let mut w = Work::default();
        for c in changes {
            self.take(c, &mut w);
        }
        self.run(w)
    }

    /// The compiled set: always `compile(&self.state()).flows`.
    pub fn flows(&self) -> &FlowSet {
        &self.out.set
    }

    /// Cookie → the object it names, as [`crate::Compiled::owners`].
    pub fn owners(&self) -> &BTreeMap<u64, String> {
        &self.out.owners
    }

    /// The current state (objects in key order). Builds it: for tests and inspection.
    pub fn state(&self) -> HostState {
        let i = &self.input;
        HostState {
            uplink_port: i.links.uplink,
            tunnel_port: i.links.tunnel,
            networks: i.networks.values().cloned().collect(),
            endpoints: i.endpoints.values().cloned().collect(),
            remote_endpoints: i.remotes.values().cloned().collect(),
            groups: i.groups.values().cloned().collect(),
            policies: i.policies.values().cloned().collect(),
            gateway_port: i.gateway_port,
            other_hosts: i.other_hosts.clone(),
            service_cidrs: i.service_cidrs.clone(),
        }
    }

    /// What was left out and why, in the order [`crate::compile`] reports it.
    pub fn problems(&self) -> Vec<Problem> {
        let (i, res) = (&self.input, &self.res);
        let mut out: Vec<Problem> = res.network_problems.values().cloned().collect();
        out.extend(res.local.values().filter_map(|s| s.clone().err()));
        out.extend(res.remote_problems.values().cloned());
        for g in i.groups.values() {
            for p in &g.policies {
                if !i.policies.contains_key(p) {
                    out.push(Problem::UnknownPolicy {
                        group: g.key.clone(),
                        policy: p.clone(),
                    });
                }
            }
        }
        for (net, eps) in &res.members {
            for k in eps {
                let Some(g) = i.endpoints[k].group.as_deref() else {
                    continue;
                };
                if i.groups.get(g).is_none_or(|g| &g.network != net) {
                    out.push(Problem::UnknownGroup {
                        endpoint: k.clone(),
                        group: g.to_string(),
                    });
                }
            }
        }
        let mut routes = vec![];
        for at in &self.regs.contested {
            let claims = &self.regs.routes[at];
            for c in &claims[1..] {
                routes.push((
                    c,
                    Problem::RouteInUse {
                        endpoint: c.key.clone(),
                        other: claims[0].key.clone(),
                        address: at.1.to_string(),
                    },
                ));
            }
        }
        routes.sort_by(|a, b| a.0.cmp(b.0));
        out.extend(routes.into_iter().map(|(_, p)| p));
        out
    }

    /// Checks the kept indexes and fragments against those built afresh from
    /// [`Incremental::state`]: for tests (an index gone wrong shows here before it shows in
    /// the flows).
    pub fn verify(&self) -> Result<(), String> {
        let fresh = Incremental::new(self.state());
        let same = |what: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(format!("{what} differ from those built afresh"))
            }
        };
        same("the indexes", self.index == fresh.index)?;
        same("the resolutions", self.res == fresh.res)?;
        same("the registrations", self.regs == fresh.regs)?;
        same("the flows", self.out.set == fresh.out.set)?;
        same("the owners", self.out.owners == fresh.out.owners)?;
        same(
            "the fragments",
            self.out.frags.len() == fresh.out.frags.len()
                && self.out.frags.iter().all(|(f, c)| {
                    fresh.out.frags.get(f).is_some_and(|d| {
                        c.flows == d.flows && c.owners == d.owners && c.problems == d.problems
                    })
                }),
        )?;
        same(
            "the contributors",
            self.out.flows_by == fresh.out.flows_by
                && self.out.groups_by == fresh.out.groups_by
                && self.out.meters_by == fresh.out.meters_by
                && self.out.owners_by == fresh.out.owners_by,
        )?;
        same(
            "the clauses",
            self.out.policy_clauses == fresh.out.policy_clauses
                && self.out.clause_policies == fresh.out.clause_policies,
        )
    }

    // ---- Taking changes in: the input and its indexes, and what to look at again.

    fn take(&mut self, change: StateChange, w: &mut Work) {
        let i = &mut self.input;
        match change {
            StateChange::UpsertEndpoint(e) => {
                if i.endpoints.get(&e.key) == Some(&e) {
                    return;
                }
                let old = i.endpoints.remove(&e.key);
                if let Some(old) = &old {
                    self.unindex_local(old, w);
                }
                self.index_local(&e, w);
                w.local_old.entry(e.key.clone()).or_insert(old);
                self.input.endpoints.insert(e.key.clone(), e);
            }
            StateChange::RemoveEndpoint(k) => {
                if let Some(old) = i.endpoints.remove(&k) {
                    self.unindex_local(&old, w);
                    w.local_old.entry(k).or_insert(Some(old));
                }
            }
            StateChange::UpsertRemote(r) => {
                if i.remotes.get(&r.key) == Some(&r) {
                    return;
                }
                if let Some(old) = i.remotes.remove(&r.key) {
                    self.unindex_remote(old, w);
                }
                self.index_remote(r, w);
            }
            StateChange::RemoveRemote(k) => {
                if let Some(old) = i.remotes.remove(&k) {
                    self.unindex_remote(old, w);
                }
            }
            StateChange::UpsertNetwork(n) => {
                if i.networks.get(&n.key) == Some(&n) {
                    return;
                }
                let key = n.key.clone();
                let old = i.networks.insert(key.clone(), n);
                w.networks.entry(key).or_insert(old);
            }
            StateChange::RemoveNetwork(k) => {
                if let Some(old) = i.networks.remove(&k) {
                    w.networks.entry(k).or_insert(Some(old));
                }
            }
            StateChange::UpsertGroup(g) => {
                if i.groups.get(&g.key) == Some(&g) {
                    return;
                }
                let old = i.groups.insert(g.key.clone(), g.clone());
                self.group_changed(old.as_ref(), Some(&g), w);
            }
            StateChange::RemoveGroup(k) => {
                if let Some(old) = i.groups.remove(&k) {
                    self.group_changed(Some(&old), None, w);
                }
            }
            StateChange::UpsertPolicy(p) => {
                if i.policies.get(&p.key) == Some(&p) {
                    return;
                }
                w.dirty.insert(Frag::Policy(p.key.clone()));
                i.policies.insert(p.key.clone(), p);
                w.policies = true;
            }
            StateChange::RemovePolicy(k) => {
                if i.policies.remove(&k).is_some() {
                    w.dirty.insert(Frag::Policy(k));
                    w.policies = true;
                }
            }
            StateChange::Ports {
                uplink_port,
                tunnel_port,
                gateway_port,
            } => {
                if i.links.tunnel != tunnel_port {
                    i.links.tunnel = tunnel_port;
                    w.tunnel = true;
                }
                if i.links.uplink != uplink_port {
                    i.links.uplink = uplink_port;
                    w.uplink = true;
                }
                if i.gateway_port != gateway_port {
                    i.gateway_port = gateway_port;
                    w.gateway_port = true;
                }
                if w.tunnel || w.uplink || w.gateway_port {
                    w.dirty.insert(Frag::Gateway);
                }
            }
            StateChange::OtherHosts(h) => {
                if i.other_hosts != h {
                    i.other_hosts = h;
                    w.dirty.insert(Frag::Gateway);
                }
            }
            StateChange::ServiceCidrs(c) => {
                if i.service_cidrs != c {
                    i.service_cidrs = c;
                    w.dirty.insert(Frag::Gateway);
                }
            }
        }
    }

    /// Whether another endpoint (a remote one, or an accepted local one) has one of `r`'s MAC
    /// and addresses in its network: then who wins may change with `r`.
    fn contested(&self, r: &RemoteEndpoint) -> bool {
        let remote = self.index.claims.get(&r.network);
        let local = self.res.local_claims.get(&r.network);
        remote_claims(r).any(|c| {
            remote
                .and_then(|m| m.get(&c))
                .is_some_and(|ks| ks.iter().any(|k| *k != r.key))
                || local.is_some_and(|m| m.contains_key(&c))
        })
    }

    /// Whether another local endpoint has `e`'s port, or one of its MAC and addresses in its
    /// network: then who wins may change with `e`.
    fn local_contested(&self, e: &Endpoint) -> bool {
        let others = |ks: &BTreeSet<String>| ks.iter().any(|k| *k != e.key);
        let x = &self.index;
        x.local_ports.get(&e.ofport).is_some_and(others)
            || x.local_claims
                .get(&e.network)
                .is_some_and(|m| local_claims(e).any(|c| m.get(&c).is_some_and(others)))
    }

    fn unindex_local(&mut self, e: &Endpoint, w: &mut Work) {
        w.locals_full |= self.local_contested(e);
        let x = &mut self.index;
        remove_from(&mut x.local_ports, &e.ofport, &e.key);
        if let Some(m) = x.local_claims.get_mut(&e.network) {
            for c in local_claims(e) {
                remove_from(m, &c, &e.key);
            }
            if m.is_empty() {
                x.local_claims.remove(&e.network);
            }
        }
        w.dirty.insert(Frag::local(e));
        w.locals = true;
    }

    fn index_local(&mut self, e: &Endpoint, w: &mut Work) {
        let x = &mut self.index;
        x.local_ports
            .entry(e.ofport)
            .or_default()
            .insert(e.key.clone());
        let m = x.local_claims.entry(e.network.clone()).or_default();
        for c in local_claims(e) {
            m.entry(c).or_default().insert(e.key.clone());
        }
        w.locals_full |= self.local_contested(e);
        w.dirty.insert(Frag::local(e));
        w.locals = true;
    }

    fn unindex_remote(&mut self, r: RemoteEndpoint, w: &mut Work) {
        if self.contested(&r) {
            w.full.insert(r.network.clone());
        }
        let x = &mut self.index;
        remove_from(&mut x.by_network, &r.network, &r.key);
        if let Some(g) = &r.group {
            remove_from(&mut x.by_group, g, &r.key);
        }
        if let Some(m) = x.claims.get_mut(&r.network) {
            for c in remote_claims(&r) {
                remove_from(m, &c, &r.key);
            }
            if m.is_empty() {
                x.claims.remove(&r.network);
            }
        }
        self.res.remote.remove(&r.key);
        self.res.remote_problems.remove(&r.key);
        w.dirty.insert(Frag::remote(&r));
        w.remotes.insert(r.key);
    }

    fn index_remote(&mut self, r: RemoteEndpoint, w: &mut Work) {
        let x = &mut self.index;
        x.by_network
            .entry(r.network.clone())
            .or_default()
            .insert(r.key.clone());
        if let Some(g) = &r.group {
            x.by_group
                .entry(g.clone())
                .or_default()
                .insert(r.key.clone());
        }
        let m = x.claims.entry(r.network.clone()).or_default();
        for c in remote_claims(&r) {
            m.entry(c).or_default().insert(r.key.clone());
        }
        if self.contested(&r) {
            w.full.insert(r.network.clone());
        }
        self.res.remote.remove(&r.key);
        self.res.remote_problems.remove(&r.key);
        w.dirty.insert(Frag::remote(&r));
        w.remotes.insert(r.key.clone());
        self.input.remotes.insert(r.key.clone(), r);
    }

    fn group_changed(
        &mut self,
        old: Option<&EndpointGroup>,
        new: Option<&EndpointGroup>,
        w: &mut Work,
    ) {
        let key = new.or(old).map(|g| g.key.clone()).unwrap_or_default();
        if old.is_none() != new.is_none() {
            w.group_set = true;
        }
        w.dirty.insert(Frag::DefaultDeny(key.clone()));
        w.policies = true;
        let network = |g: Option<&EndpointGroup>| g.map(|g| g.network.clone());
        let profile = |g: Option<&EndpointGroup>| g.map(|g| g.profile);
        let moved = network(old) != network(new);
        if moved || profile(old) != profile(new) || old.is_none() != new.is_none() {
            self.dirty_group_members(&key, moved || old.is_none() != new.is_none(), w);
        }
    }

    /// Marks the fragments of the endpoints of a group: the local ones, and with `remote`
    /// the remote ones too (their peer flows depend on the group's network and id).
    fn dirty_group_members(&self, group: &str, remote: bool, w: &mut Work) {
        for e in self.input.endpoints.values() {
            if e.group.as_deref() == Some(group) {
                w.dirty.insert(Frag::local(e));
            }
        }
        if remote {
            for k in self.index.by_group.get(group).into_iter().flatten() {
                w.dirty.insert(Frag::remote(&self.input.remotes[k]));
            }
        }
    }

    // ---- Resolving what the changes moved, then emitting what they touched.

    fn run(&mut self, mut w: Work) -> Delta {
        if !w.networks.is_empty() {
            self.resolve_networks(&mut w);
        }
        if w.locals_full || !w.networks.is_empty() {
            self.resolve_locals(&mut w);
        } else if w.locals {
            self.resolve_changed_locals(&mut w);
        }
        if w.locals || !w.networks.is_empty() || w.gateway_port {
            self.resolve_present(&mut w);
        }
        if w.tunnel || w.uplink {
            self.links_changed(&mut w);
        }
        self.resolve_remotes(&mut w);
        if w.group_set {
            self.resolve_group_ids(&mut w);
        }
        self.register(&mut w);
        if w.policies {
            self.resolve_policies(&mut w);
        }
        let mut dirty: Vec<Frag> = w.dirty.into_iter().collect();
        dirty.sort();
        for f in dirty {
            self.refresh(f);
        }
        self.out.delta()
    }

    fn resolve_networks(&mut self, w: &mut Work) {
        let mut accepted = BTreeSet::new();
        let mut problems = BTreeMap::new();
        let mut by_segment: HashMap<u32, &str> = HashMap::new();
        for n in self.input.networks.values() {
            if let Some(other) = by_segment.get(&n.segment.id()) {
                problems.insert(
                    n.key.clone(),
                    Problem::SegmentInUse {
                        network: n.key.clone(),
                        other: other.to_string(),
                    },
                );
                continue;
            }
            by_segment.insert(n.segment.id(), &n.key);
            accepted.insert(n.key.clone());
        }
        let flipped: Vec<String> = self
            .res
            .accepted
            .symmetric_difference(&accepted)
            .cloned()
            .collect();
        self.res.accepted = accepted;
        self.res.network_problems = problems;
        for k in flipped {
            let now = self.input.networks.get(&k).cloned();
            w.networks.entry(k).or_insert(now);
        }
        let changed: Vec<(String, Option<Network>)> = w
            .networks
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, old) in changed {
            let new = self.input.networks.get(&key);
            w.dirty.insert(Frag::Network(key.clone()));
            let shape = |n: Option<&Network>| n.map(|n| (n.segment, n.zone));
            if shape(old.as_ref()) != shape(new) {
                // Every flow of its endpoints names its segment or its tenant.
                for e in self.input.endpoints.values() {
                    if e.network == key {
                        w.dirty.insert(Frag::local(e));
                    }
                }
                for k in self.index.by_network.get(&key).into_iter().flatten() {
                    w.dirty.insert(Frag::remote(&self.input.remotes[k]));
                }
            }
            let gatewayed = |n: Option<&Network>| n.is_some_and(|n| n.host_access || n.external);
            if gatewayed(old.as_ref()) || gatewayed(new) {
                w.dirty.insert(Frag::Gateway);
            }
        }
    }

    /// Local endpoints are few: their ports, MACs and addresses are resolved afresh, as the full
    /// compile does.
    fn resolve_locals(&mut self, w: &mut Work) {
        let i = &self.input;
        let mut status = BTreeMap::new();
        let mut ports: HashMap<u32, &str> = HashMap::new();
        let mut claims: HashMap<String, HashMap<Claim, String>> = HashMap::new();
        let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for e in i.endpoints.values() {
            let net = claims.get(&e.network);
            let taken = |c: &Claim| net.and_then(|m| m.get(c));
            let addrs: Vec<IpAddr> = e
                .ipv4
                .iter()
                .map(|a| IpAddr::V4(*a))
                .chain(e.ipv6.iter().map(|a| IpAddr::V6(*a)))
                .collect();
            let s = if !self.res.accepted.contains(&e.network) {
                Err(Problem::UnknownNetwork {
                    endpoint: e.key.clone(),
                    network: e.network.clone(),
                })
            } else if let Some(other) = ports.get(&e.ofport) {
                Err(Problem::PortInUse {
                    endpoint: e.key.clone(),
                    other: other.to_string(),
                    ofport: e.ofport,
                })
            } else if let Some(other) = taken(&Claim::Mac(e.mac)) {
                Err(Problem::MacInUse {
                    endpoint: e.key.clone(),
                    other: other.clone(),
                })
            } else if let Some((a, other)) = addrs
                .iter()
                .find_map(|a| taken(&Claim::Addr(*a)).map(|o| (a, o)))
            {
                Err(Problem::AddressInUse {
                    endpoint: e.key.clone(),
                    other: other.clone(),
                    address: a.to_string(),
                })
            } else {
                Ok(())
            };
            if s.is_ok() {
                ports.insert(e.ofport, &e.key);
                let m = claims.entry(e.network.clone()).or_default();
                m.insert(Claim::Mac(e.mac), e.key.clone());
                for a in addrs {
                    m.insert(Claim::Addr(a), e.key.clone());
                }
                members
                    .entry(e.network.clone())
                    .or_default()
                    .insert(e.key.clone());
            }
            status.insert(e.key.clone(), s);
        }
        for (k, s) in &status {
            if self.res.local.get(k) != Some(s) {
                w.dirty.insert(Frag::local(&i.endpoints[k]));
            }
        }
        // A MAC or address that changed hands among local endpoints may change which remote
        // endpoint of the network wins it.
        for (net, m) in claims.iter().chain(&self.res.local_claims) {
            let (old, new) = (self.res.local_claims.get(net), claims.get(net));
            let Some(remote) = self.index.claims.get(net) else {
                continue;
            };
            if m.iter().any(|(c, k)| {
                (old.and_then(|o| o.get(c)) != Some(k) || new.and_then(|n| n.get(c)) != Some(k))
                    && remote.contains_key(c)
            }) {
                w.full.insert(net.clone());
            }
        }
        self.res.local = status;
        self.res.local_claims = claims;
        self.res.members = members;
    }

    /// Local endpoints that share no port, MAC or address with another: each is accepted
    /// wherever its network is, and changes nobody else's fate.
    fn resolve_changed_locals(&mut self, w: &mut Work) {
        let res = &mut self.res;
        let mut moved: Vec<(String, Claim)> = vec![];
        for (key, old) in &w.local_old {
            if let (Some(o), Some(Ok(()))) = (old, res.local.get(key)) {
                if let Some(m) = res.local_claims.get_mut(&o.network) {
                    for c in local_claims(o) {
                        // (Unless another changed endpoint took it over already.)
                        if m.get(&c) == Some(key) {
                            m.remove(&c);
                        }
                        moved.push((o.network.clone(), c));
                    }
                    if m.is_empty() {
                        res.local_claims.remove(&o.network);
                    }
                }
                remove_from_map(&mut res.members, &o.network, key);
            }
            let Some(e) = self.input.endpoints.get(key) else {
                res.local.remove(key);
                continue;
            };
            if res.accepted.contains(&e.network) {
                let m = res.local_claims.entry(e.network.clone()).or_default();
                for c in local_claims(e) {
                    m.insert(c, key.clone());
                    moved.push((e.network.clone(), c));
                }
                res.members
                    .entry(e.network.clone())
                    .or_default()
                    .insert(key.clone());
                res.local.insert(key.clone(), Ok(()));
            } else {
                let p = Problem::UnknownNetwork {
                    endpoint: key.clone(),
                    network: e.network.clone(),
                };
                res.local.insert(key.clone(), Err(p));
            }
        }
        // A remote endpoint with a MAC or address that changed hands here may win or lose it.
        for (net, c) in moved {
            if self
                .index
                .claims
                .get(&net)
                .is_some_and(|m| m.contains_key(&c))
            {
                w.full.insert(net);
            }
        }
    }

    fn resolve_present(&mut self, w: &mut Work) {
        let (i, res) = (&self.input, &self.res);
        let zones: BTreeSet<u16> = res.members.keys().map(|k| i.networks[k].zone).collect();
        let present: BTreeSet<String> = res
            .accepted
            .iter()
            .filter(|k| {
                let n = &i.networks[*k];
                res.members.contains_key(*k)
                    || zones.contains(&n.zone)
                    || (n.host_access && i.gateway_port.is_some())
            })
            .cloned()
            .collect();
        for k in res.present.symmetric_difference(&present) {
            w.dirty.insert(Frag::Network(k.clone()));
            w.full.insert(k.clone());
            if i.networks
                .get(k)
                .is_none_or(|n| n.host_access || n.external)
            {
                w.dirty.insert(Frag::Gateway);
            }
        }
        self.res.present = present;
    }

    /// The tunnel port reaches the VXLAN networks' other hosts, the uplink the VLAN networks'.
    fn links_changed(&self, w: &mut Work) {
        for k in &self.res.present {
            let vxlan = matches!(self.input.networks[k].segment, Segment::Vxlan(_));
            if (vxlan && w.tunnel) || (!vxlan && w.uplink) {
                w.dirty.insert(Frag::Network(k.clone()));
                for r in self.index.by_network.get(k).into_iter().flatten() {
                    w.dirty.insert(Frag::remote(&self.input.remotes[r]));
                }
            }
        }
    }

    /// Remote endpoints: afresh in the networks where who wins may have changed; a changed
    /// endpoint that shares nothing with another is accepted wherever its network is carried.
    fn resolve_remotes(&mut self, w: &mut Work) {
        for net in &w.full {
            self.resolve_remotes_of(net, &mut w.dirty);
        }
        for k in &w.remotes {
            let Some(r) = self.input.remotes.get(k) else {
                continue;
            };
            if w.full.contains(&r.network) {
                continue;
            }
            if self.res.present.contains(&r.network) {
                self.res.remote.insert(k.clone(), Ok(()));
            }
        }
    }

    fn resolve_remotes_of(&mut self, net: &str, dirty: &mut HashSet<Frag>) {
        let (i, res) = (&self.input, &self.res);
        let carried = res.present.contains(net);
        let local = res.local_claims.get(net);
        let remotes = self.index.by_network.get(net);
        let mut taken: HashMap<Claim, &str> =
            HashMap::with_capacity(2 * remotes.map_or(0, BTreeSet::len));
        let mut changed = vec![];
        for k in remotes.into_iter().flatten() {
            let r = &i.remotes[k];
            let s = if !carried {
                None
            } else {
                let holder = |c: &Claim| {
                    local
                        .and_then(|m| m.get(c).map(String::as_str))
                        .or_else(|| taken.get(c).copied())
                };
                let s = if let Some(other) = holder(&Claim::Mac(r.mac)) {
                    Err(Problem::MacInUse {
                        endpoint: k.clone(),
                        other: other.to_string(),
                    })
                } else if let Some((a, other)) = r
                    .ipv4
                    .iter()
                    .find_map(|a| holder(&Claim::Addr(IpAddr::V4(*a))).map(|o| (a, o)))
                {
                    Err(Problem::AddressInUse {
                        endpoint: k.clone(),
                        other: other.to_string(),
                        address: a.to_string(),
                    })
                } else {
                    for c in remote_claims(r) {
                        taken.insert(c, k);
                    }
                    Ok(())
                };
                Some(s)
            };
            if res.remote.get(k) != s.as_ref() {
                changed.push((k.clone(), s));
            }
        }
        for (k, s) in changed {
            dirty.insert(Frag::Remote {
                net: net.to_string(),
                key: k.clone(),
            });
            self.res.remote_problems.remove(&k);
            match s {
                None => {
                    self.res.remote.remove(&k);
                }
                Some(s) => {
                    if let Err(p) = &s {
                        self.res.remote_problems.insert(k.clone(), p.clone());
                    }
                    self.res.remote.insert(k, s);
                }
            }
        }
    }

    /// Group ids come from all group keys in order (a clash moves the later one on): a new or
    /// removed group may move others.
    fn resolve_group_ids(&mut self, w: &mut Work) {
        let mut used = HashSet::new();
        let ids: BTreeMap<String, u32> = self
            .input
            .groups
            .keys()
            .map(|k| (k.clone(), stable_id(k, &mut used)))
            .collect();
        let keys: BTreeSet<&String> = ids.keys().chain(self.res.group_ids.keys()).collect();
        for k in keys {
            if ids.get(k) != self.res.group_ids.get(k) {
                w.dirty.insert(Frag::DefaultDeny(k.clone()));
                self.dirty_group_members(k, true, w);
                w.policies = true;
            }
        }
        self.res.group_ids = ids;
    }

    /// Brings each marked endpoint's registration up to date (route claims, flooding buckets,
    /// local groups), marking the fragments that read what moved.
    fn register(&mut self, w: &mut Work) {
        let endpoints: Vec<Frag> = w
            .dirty
            .iter()
            .filter(|f| matches!(f, Frag::Local { .. } | Frag::Remote { .. }))
            .cloned()
            .collect();
        for f in endpoints {
            let new = self.reg_of(&f);
            let old = self.regs.regs.get(&f).cloned();
            if old == new {
                continue;
            }
            let (net, key, remote) = match &f {
                Frag::Local { net, key } => (net, key, false),
                Frag::Remote { net, key } => (net, key, true),
                _ => unreachable!("only endpoints register"),
            };
            let claims = |r: &Option<Reg>| {
                r.as_ref().map(|r| {
                    r.addrs
                        .iter()
                        .enumerate()
                        .map(|(idx, a)| {
                            let c = RouteClaim {
                                net: net.clone(),
                                remote,
                                key: key.clone(),
                                idx,
                            };
                            ((r.zone, *a), c)
                        })
                        .collect::<Vec<_>>()
                })
            };
            let (old_claims, new_claims) = (claims(&old), claims(&new));
            if old_claims != new_claims {
                for (at, c) in old_claims.into_iter().flatten() {
                    self.regs.unclaim(at, &c, w);
                }
                for (at, c) in new_claims.into_iter().flatten() {
                    self.regs.claim(at, c, w);
                }
            }
            let vtep = |r: &Option<Reg>| r.as_ref().and_then(|r| r.vtep);
            if vtep(&old) != vtep(&new) {
                let counts = self.regs.vteps.entry(net.clone()).or_default();
                let mut moved = false;
                if let Some(v) = vtep(&old) {
                    let n = counts.get_mut(&v).expect("a registered host is counted");
                    *n -= 1;
                    if *n == 0 {
                        counts.remove(&v);
                        moved = true;
                    }
                }
                if let Some(v) = vtep(&new) {
                    let n = counts.entry(v).or_default();
                    *n += 1;
                    moved |= *n == 1;
                }
                if counts.is_empty() {
                    self.regs.vteps.remove(net);
                }
                if moved {
                    w.dirty.insert(Frag::Network(net.clone()));
                }
            }
            let port = |r: &Option<Reg>| r.as_ref().and_then(|r| r.port);
            if port(&old) != port(&new) {
                w.dirty.insert(Frag::Network(net.clone()));
            }
            let group = |r: &Option<Reg>| r.as_ref().and_then(|r| r.group.clone());
            if group(&old) != group(&new) {
                if let Some(g) = group(&old) {
                    let n = self
                        .regs
                        .local_groups
                        .get_mut(&g)
                        .expect("a registered group is counted");
                    *n -= 1;
                    if *n == 0 {
                        self.regs.local_groups.remove(&g);
                        w.dirty.insert(Frag::DefaultDeny(g));
                        w.policies = true;
                    }
                }
                if let Some(g) = group(&new) {
                    let n = self.regs.local_groups.entry(g.clone()).or_default();
                    *n += 1;
                    if *n == 1 {
                        w.dirty.insert(Frag::DefaultDeny(g));
                        w.policies = true;
                    }
                }
            }
            match new {
                Some(r) => self.regs.regs.insert(f, r),
                None => self.regs.regs.remove(&f),
            };
        }
    }

    /// What an endpoint fragment registers: nothing unless the endpoint is accepted in that
    /// network.
    fn reg_of(&self, f: &Frag) -> Option<Reg> {
        let i = &self.input;
        match f {
            Frag::Local { net, key } => {
                let e = i.endpoints.get(key).filter(|e| &e.network == net)?;
                self.res.local.get(key)?.as_ref().ok()?;
                Some(Reg {
                    zone: i.networks[net].zone,
                    addrs: e.ipv4.clone(),
                    vtep: None,
                    port: Some(e.ofport),
                    group: e
                        .group
                        .clone()
                        .filter(|g| i.groups.get(g).is_some_and(|g| &g.network == net)),
                })
            }
            Frag::Remote { net, key } => {
                let r = i.remotes.get(key).filter(|r| &r.network == net)?;
                self.res.remote.get(key)?.as_ref().ok()?;
                Some(Reg {
                    zone: i.networks[net].zone,
                    addrs: r.ipv4.clone(),
                    vtep: Some(r.vtep),
                    port: None,
                    group: None,
                })
            }
            _ => None,
        }
    }

    /// Each policy's targets, conjunction ids and peer group ids: a policy whose inputs moved is
    /// emitted again. Cheap (a hash per rule), so done whole.
    fn resolve_policies(&mut self, w: &mut Work) {
        let (i, res) = (&self.input, &self.res);
        let mut targets: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for g in self.regs.local_groups.keys() {
            let group = &i.groups[g];
            let listed: BTreeSet<&str> = group.policies.iter().map(String::as_str).collect();
            for p in listed {
                targets.entry(p).or_default().push(res.group_ids[g]);
            }
        }
        let mut used = HashSet::new();
        let mut inputs = BTreeMap::new();
        for (key, p) in &i.policies {
            let targets = targets.remove(key.as_str()).unwrap_or_default();
            let conj_ids = conj_rules(p, targets.len(), |k| res.group_ids.contains_key(k))
                .into_iter()
                .map(|r| stable_id(&r.key, &mut used))
                .collect();
            let mut rules: Vec<_> = p.rules.iter().collect();
            rules.sort_by(|a, b| a.key.cmp(&b.key));
            let peers = rules
                .iter()
                .map(|r| match &r.peer {
                    Peer::Group(k) => res.group_ids.get(k).copied(),
                    _ => None,
                })
                .collect();
            inputs.insert(
                key.clone(),
                PolicyInputs {
                    targets,
                    conj_ids,
                    peers,
                },
            );
        }
        for (k, v) in &inputs {
            if res.policy_inputs.get(k) != Some(v) {
                w.dirty.insert(Frag::Policy(k.clone()));
            }
        }
        for k in res.policy_inputs.keys() {
            if !inputs.contains_key(k) {
                w.dirty.insert(Frag::Policy(k.clone()));
            }
        }
        self.res.policy_inputs = inputs;
    }

    fn membership(&self, group: Option<&str>, net: &str) -> Membership {
        let Some(g) = group else {
            return Membership::default();
        };
        let id = self.res.group_ids.get(g).copied();
        let known = self.input.groups.get(g);
        Membership {
            id,
            profile: known.and_then(|g| g.profile),
            peer: known.filter(|g| g.network == net).and(id),
        }
    }

    /// Which of an endpoint's addresses it wins the route to.
    fn wins(&self, f: &Frag) -> Vec<bool> {
        let Some(reg) = self.regs.regs.get(f) else {
            return vec![];
        };
        let (net, key, remote) = match f {
            Frag::Local { net, key } => (net, key, false),
            Frag::Remote { net, key } => (net, key, true),
            _ => return vec![],
        };
        reg.addrs
            .iter()
            .enumerate()
            .map(|(idx, a)| {
                self.regs.routes.get(&(reg.zone, *a)).is_some_and(|cs| {
                    let c = &cs[0];
                    c.idx == idx && c.remote == remote && &c.key == key && &c.net == net
                })
            })
            .collect()
    }

    /// A fragment as the full compile would emit it now (empty: not emitted).
    fn emit(&self, f: &Frag, clauses: &mut Clauses) -> Compiled {
        let (i, res) = (&self.input, &self.res);
        let mut out = Compiled::default();
        match f {
            Frag::Clauses => unreachable!("clauses are merged, not emitted"),
            Frag::Skeleton => skeleton_fragment(&mut out),
            Frag::Network(k) => {
                if res.present.contains(k) {
                    let ports: Vec<u32> = res.members.get(k).map_or(vec![], |eps| {
                        eps.iter().map(|e| i.endpoints[e].ofport).collect()
                    });
                    let vteps = self.regs.vteps.get(k).into_iter().flat_map(|m| m.keys());
                    network_fragment(&mut out, &i.networks[k], &ports, vteps.copied(), i.links);
                }
            }
            Frag::Local { net, key } => {
                if self.regs.regs.contains_key(f) {
                    let e = &i.endpoints[key];
                    let m = self.membership(e.group.as_deref(), net);
                    endpoint_fragment(&mut out, &i.networks[net], e, m, &self.wins(f));
                }
            }
            Frag::Remote { net, key } => {
                if self.regs.regs.contains_key(f) {
                    let r = &i.remotes[key];
                    let peer = self.membership(r.group.as_deref(), net).peer;
                    let n = &i.networks[net];
                    remote_fragment(&mut out, n, r, i.links, peer, &self.wins(f));
                }
            }
            Frag::Gateway => {
                if let Some(gw) = &i.gateway_port {
                    gateway_fragment(
                        &mut out,
                        gw,
                        res.present.iter().map(|k| &i.networks[k]),
                        i.links,
                        &i.other_hosts,
                        &i.service_cidrs,
                    );
                }
            }
            Frag::DefaultDeny(g) => {
                if self.regs.local_groups.contains_key(g) && i.groups[g].default_deny {
                    default_deny_fragment(&mut out, g, res.group_ids[g], i.groups[g].log);
                }
            }
            Frag::Policy(p) => {
                if let (Some(policy), Some(inputs)) = (i.policies.get(p), res.policy_inputs.get(p))
                {
                    let mut ids = inputs.conj_ids.iter();
                    policy_fragment(
                        &mut out,
                        clauses,
                        policy,
                        &inputs.targets,
                        |k| res.group_ids.get(k).copied(),
                        |_| *ids.next().expect("an id for every rule that needs one"),
                    );
                }
            }
        }
        out
    }

    /// Emits a fragment again and puts what changed into the set.
    fn refresh(&mut self, f: Frag) {
        let mut clauses = Clauses::default();
        let new = self.emit(&f, &mut clauses);
        if let Frag::Policy(p) = &f {
            self.out.set_clauses(p, clauses.clauses);
        }
        self.out.replace(Arc::new(f), new);
    }
}

impl Registry {
    fn claim(&mut self, at: (u16, Ipv4Addr), c: RouteClaim, w: &mut Work) {
        let claims = self.routes.entry(at).or_default();
        let pos = claims.binary_search(&c).unwrap_or_else(|p| p);
        if pos == 0 {
            if let Some(old) = claims.first() {
                w.dirty.insert(old.frag());
            }
        }
        claims.insert(pos, c);
        if claims.len() > 1 {
            self.contested.insert(at);
        }
    }

    fn unclaim(&mut self, at: (u16, Ipv4Addr), c: &RouteClaim, w: &mut Work) {
        let Some(claims) = self.routes.get_mut(&at) else {
            return;
        };
        let Ok(pos) = claims.binary_search(c) else {
            return;
        };
        claims.remove(pos);
        if pos == 0 {
            if let Some(next) = claims.first() {
                w.dirty.insert(next.frag());
            }
        }
        if claims.len() < 2 {
            self.contested.remove(&at);
        }
        if claims.is_empty() {
            self.routes.remove(&at);
        }
    }
}

impl Output {
    /// Replaces a fragment's output, key by key.
    fn replace(&mut self, f: Arc<Frag>, new: Compiled) {
        let old = self.frags.remove(&f).unwrap_or_default();
        let frags = &self.frags;
        relayer(
            &f,
            &old.flows.flows,
            &new.flows.flows,
            &mut self.flows_by,
            &mut self.set.flows,
            Some(&mut self.before_flows),
            |c| &frags[c].flows.flows,
        );
        relayer(
            &f,
            &old.flows.groups,
            &new.flows.groups,
            &mut self.groups_by,
            &mut self.set.groups,
            Some(&mut self.before_groups),
            |c| &frags[c].flows.groups,
        );
        relayer(
            &f,
            &old.flows.meters,
            &new.flows.meters,
            &mut self.meters_by,
            &mut self.set.meters,
            Some(&mut self.before_meters),
            |c| &frags[c].flows.meters,
        );
        relayer(
            &f,
            &old.owners,
            &new.owners,
            &mut self.owners_by,
            &mut self.owners,
            None,
            |c| &frags[c].owners,
        );
        let empty = new.flows.flows.is_empty()
            && new.flows.groups.is_empty()
            && new.flows.meters.is_empty()
            && new.owners.is_empty();
        if !empty {
            self.frags.insert(f, new);
        }
    }

    /// Sets a policy's clauses and merges again the clause flows they touch.
    fn set_clauses(&mut self, policy: &str, new: BTreeMap<FlowKey, (Flow, Vec<Action>)>) {
        let old = self.policy_clauses.remove(policy).unwrap_or_default();
        let mut touched: BTreeSet<FlowKey> = BTreeSet::new();
        for (k, part) in &old {
            if new.get(k) != Some(part) {
                touched.insert(k.clone());
            }
            if !new.contains_key(k) {
                if let Some(ps) = self.clause_policies.get_mut(k) {
                    ps.remove(policy);
                    if ps.is_empty() {
                        self.clause_policies.remove(k);
                    }
                }
            }
        }
        for (k, part) in &new {
            if old.get(k) != Some(part) {
                touched.insert(k.clone());
            }
            self.clause_policies
                .entry(k.clone())
                .or_default()
                .insert(policy.to_string());
        }
        if !new.is_empty() {
            self.policy_clauses.insert(policy.to_string(), new);
        }
        let f = Arc::new(Frag::Clauses);
        for k in touched {
            let merged = self.clause_policies.get(&k).map(|ps| {
                let mut first: Option<&Flow> = None;
                let mut actions = vec![];
                for p in ps {
                    let (flow, a) = &self.policy_clauses[p][&k];
                    first.get_or_insert(flow);
                    actions.extend(a.iter().cloned());
                }
                merged_clause(first.expect("a clause has a policy"), actions)
            });
            let mut stored = self.frags.remove(&f).unwrap_or_default();
            let old = stored.flows.flows.get(&k);
            if old != merged.as_ref() {
                let frags = &self.frags;
                relayer_one(
                    &f,
                    &k,
                    old.is_some(),
                    merged.as_ref(),
                    &mut self.flows_by,
                    &mut self.set.flows,
                    Some(&mut self.before_flows),
                    |c| &frags[c].flows.flows,
                );
                match merged {
                    Some(m) => stored.flows.flows.insert(k, m),
                    None => stored.flows.flows.remove(&k),
                };
            }
            if !stored.flows.flows.is_empty() {
                self.frags.insert(f.clone(), stored);
            }
        }
    }

    /// What the set's touched keys hold now against what they held before: the delta.
    fn delta(&mut self) -> Delta {
        let mut d = Delta::default();
        for (k, was) in self.before_flows.drain() {
            match self.set.flows.get(&k) {
                now if now == was.as_ref() => {}
                Some(f) => {
                    d.flows_upsert.insert(k, f.clone());
                }
                None => {
                    d.flows_remove.insert(k);
                }
            }
        }
        for (k, was) in self.before_groups.drain() {
            match self.set.groups.get(&k) {
                now if now == was.as_ref() => {}
                Some(g) => {
                    d.groups_upsert.insert(k, g.clone());
                }
                None => {
                    d.groups_remove.insert(k);
                }
            }
        }
        for (k, was) in self.before_meters.drain() {
            match self.set.meters.get(&k) {
                now if now == was.as_ref() => {}
                Some(m) => {
                    d.meters_upsert.insert(k, *m);
                }
                None => {
                    d.meters_remove.insert(k);
                }
            }
        }
        d
    }
}

/// Replaces fragment `f`'s entries (`old` → `new`) in one layer of the set: each key holds the
/// entry of its last contributor in emission order.
fn relayer<'a, K, V>(
    f: &Arc<Frag>,
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
    by: &mut HashMap<K, Vec<Arc<Frag>>>,
    set: &mut BTreeMap<K, V>,
    mut before: Option<&mut HashMap<K, Option<V>>>,
    entries: impl Fn(&Arc<Frag>) -> &'a BTreeMap<K, V>,
) where
    K: Ord + std::hash::Hash + Clone + 'a,
    V: Clone + PartialEq + 'a,
{
    for (k, v) in old {
        match new.get(k) {
            Some(n) if n == v => {}
            n => relayer_one(f, k, true, n, by, set, before.as_deref_mut(), &entries),
        }
    }
    for (k, v) in new {
        if !old.contains_key(k) {
            relayer_one(
                f,
                k,
                false,
                Some(v),
                by,
                set,
                before.as_deref_mut(),
                &entries,
            );
        }
    }
}

/// One key of [`relayer`]: `f` had an entry there (`had`) and now has `new`.
#[allow(clippy::too_many_arguments)]
fn relayer_one<'a, K, V>(
    f: &Arc<Frag>,
    k: &K,
    had: bool,
    new: Option<&V>,
    by: &mut HashMap<K, Vec<Arc<Frag>>>,
    set: &mut BTreeMap<K, V>,
    before: Option<&mut HashMap<K, Option<V>>>,
    entries: impl Fn(&Arc<Frag>) -> &'a BTreeMap<K, V>,
) where
    K: Ord + std::hash::Hash + Clone + 'a,
    V: Clone + PartialEq + 'a,
{
    let put = |v: Option<V>| {
        if let Some(b) = before {
            b.entry(k.clone()).or_insert_with(|| set.get(k).cloned());
        }
        match v {
            Some(v) => set.insert(k.clone(), v),
            None => set.remove(k),
        };
    };
    match (had, new) {
        (false, None) => {}
        (false, Some(v)) => {
            let list = by.entry(k.clone()).or_default();
            let pos = list.binary_search(f).unwrap_or_else(|p| p);
            list.insert(pos, f.clone());
            if pos + 1 == list.len() {
                put(Some(v.clone()));
            }
        }
        (true, Some(v)) => {
            if by.get(k).and_then(|l| l.last()) == Some(f) {
                put(Some(v.clone()));
            }
        }
        (true, None) => {
            let list = by.get_mut(k).expect("a contributed key is listed");
            let pos = list.binary_search(f).expect("a contributor is listed");
            list.remove(pos);
            if pos == list.len() {
                put(list.last().map(|last| entries(last)[k].clone()));
            }
            if list.is_empty() {
                by.remove(k);
            }
        }
    }
}

fn remove_from_map<T: Ord>(m: &mut BTreeMap<String, BTreeSet<T>>, k: &str, v: &T) {
    if let Some(s) = m.get_mut(k) {
        s.remove(v);
        if s.is_empty() {
            m.remove(k);
        }
    }
}

fn remove_from<K, T>(m: &mut HashMap<K, BTreeSet<T>>, k: &K, v: &T)
where
    K: std::hash::Hash + Eq,
    T: Ord,
{
    if let Some(s) = m.get_mut(k) {
        s.remove(v);
        if s.is_empty() {
            m.remove(k);
        }
    }
}

//! The compile engine: from what changed (in netmaster's view, in this host's ports) to what
//! changed in the desired flows, with work about the size of the change. Pure: the owner of
//! desired state ([`crate::desired`]) and the scale simulation drive it.
//!
//! Each view change becomes the compiler's changes through the same per-object conversions the
//! full [`host_state`] uses, so the two agree (a test checks it against random changes).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use weft_api::watch::Kind;
use weft_policy::incremental::{Incremental, StateChange};
use weft_policy::{Delta, FlowSet};

use crate::hostgw::HostRoutes;
use crate::hoststate::*;
use crate::local::LocalPort;
use crate::netmaster::{View, ViewChange};

/// What a step changed in the desired flows.
#[derive(Debug)]
pub enum Step {
    /// Nothing (the view has no snapshot yet, or the change made no difference).
    Nothing,
    /// A new whole set (the first compile, or after a new snapshot).
    Full(FlowSet),
    /// These flows, groups and meters changed.
    Delta(Delta),
}

/// The compiler kept warm for one host.
pub struct Engine {
    me: HostPorts,
    inc: Option<Incremental>,
    zones: BTreeMap<String, u16>,
    /// Networks as last handed to the compiler (for the host's routes).
    networks: BTreeMap<String, weft_policy::Network>,
    /// Policy keys handed to the compiler, per tenant.
    policies: BTreeMap<String, BTreeSet<String>>,
    /// Remote endpoints by host (a node's change re-reads them), and each one's host.
    by_host: HashMap<String, BTreeSet<String>>,
    host_of: HashMap<String, String>,
    routes: Option<HostRoutes>,
}

fn tenant_of(key: &str) -> &str {
    key.split_once(':').map_or(key, |(t, _)| t)
}

impl Engine {
    pub fn new(me: HostPorts) -> Engine {
        Engine {
            me,
            inc: None,
            zones: BTreeMap::new(),
            networks: BTreeMap::new(),
            policies: BTreeMap::new(),
            by_host: HashMap::new(),
            host_of: HashMap::new(),
            routes: None,
        }
    }

    /// The compiler's current output (None before the first snapshot).
    pub fn compiled(&self) -> Option<&Incremental> {
        self.inc.as_ref()
    }

    /// The host's routes through its gateway port, as of the last step.
    pub fn routes(&self) -> Option<&HostRoutes> {
        self.routes.as_ref()
    }

    /// One step: `view` as it is now, after `changes`; `ports` as they are now, `changed`
    /// naming the local endpoints whose port changed (added, removed or renumbered).
    pub fn step(
        &mut self,
        view: &View,
        ports: &BTreeMap<String, Arc<LocalPort>>,
        changes: &[ViewChange],
        changed: &[String],
    ) -> Step {
        if !view.complete {
            return Step::Nothing;
        }
        if self.inc.is_none() || changes.contains(&ViewChange::Reset) {
            return self.rebuild(view, ports);
        }
        let mut out = vec![];
        for c in changes {
            self.translate(view, c, &mut out);
        }
        for id in changed {
            match ports.get(id).and_then(|p| local_of(&self.me, p)) {
                Some(e) => out.push(StateChange::UpsertEndpoint(e)),
                None => out.push(StateChange::RemoveEndpoint(id.clone())),
            }
        }
        if out.is_empty() {
            return Step::Nothing;
        }
        let routes_may_move = out.iter().any(|c| {
            matches!(
                c,
                StateChange::UpsertNetwork(_)
                    | StateChange::RemoveNetwork(_)
                    | StateChange::UpsertEndpoint(_)
                    | StateChange::RemoveEndpoint(_)
            )
        });
        let inc = self.inc.as_mut().expect("built above");
        let delta = inc.apply(out);
        if routes_may_move {
            self.update_routes();
        }
        if delta.is_empty() {
            Step::Nothing
        } else {
            Step::Delta(delta)
        }
    }

    fn rebuild(&mut self, view: &View, ports: &BTreeMap<String, Arc<LocalPort>>) -> Step {
        let state = host_state(view, &self.me, ports.values().map(|p| &**p));
        self.zones = zones(view);
        self.networks = state
            .networks
            .iter()
            .map(|n| (n.key.clone(), n.clone()))
            .collect();
        self.policies.clear();
        for p in &state.policies {
            self.policies
                .entry(tenant_of(&p.key).to_string())
                .or_default()
                .insert(p.key.clone());
        }
        self.by_host.clear();
        self.host_of.clear();
        for ep in view.endpoints.values() {
            self.by_host
                .entry(ep.host.clone())
                .or_default()
                .insert(ep.endpoint_id.clone());
            self.host_of.insert(ep.endpoint_id.clone(), ep.host.clone());
        }
        let inc = Incremental::new(state);
        let set = inc.flows().clone();
        self.inc = Some(inc);
        self.update_routes();
        Step::Full(set)
    }

    fn update_routes(&mut self) {
        let Some(inc) = &self.inc else { return };
        self.routes = Some(routes_of(
            self.networks.values(),
            self.me.gateway_port.as_ref(),
            inc.owners(),
        ));
    }

    fn remote(&mut self, view: &View, id: &str, out: &mut Vec<StateChange>) {
        // Where it was, and where it is now.
        if let Some(old) = self.host_of.remove(id) {
            if let Some(s) = self.by_host.get_mut(&old) {
                s.remove(id);
            }
        }
        match view.endpoints.get(id) {
            Some(ep) => {
                self.by_host
                    .entry(ep.host.clone())
                    .or_default()
                    .insert(id.to_string());
                self.host_of.insert(id.to_string(), ep.host.clone());
                match remote_of(view, &self.me, ep) {
                    Some(r) => out.push(StateChange::UpsertRemote(r)),
                    None => out.push(StateChange::RemoveRemote(id.to_string())),
                }
            }
            None => out.push(StateChange::RemoveRemote(id.to_string())),
        }
    }

    fn network(&mut self, view: &View, key: &str, out: &mut Vec<StateChange>) {
        match view
            .networks
            .get(key)
            .and_then(|n| network_of(&self.zones, n))
        {
            Some(n) => {
                self.networks.insert(key.to_string(), n.clone());
                out.push(StateChange::UpsertNetwork(n));
            }
            None => {
                self.networks.remove(key);
                out.push(StateChange::RemoveNetwork(key.to_string()));
            }
        }
    }

    /// Every policy of a tenant again (rules name groups and networks, groups name policies).
    fn tenant_policies(&mut self, view: &View, tenant: &str, out: &mut Vec<StateChange>) {
        let prefix = format!("{tenant}:");
        let now: BTreeSet<String> = policy_keys(view)
            .into_iter()
            .filter(|k| k.starts_with(&prefix))
            .collect();
        let before = self.policies.remove(tenant).unwrap_or_default();
        for gone in before.difference(&now) {
            out.push(StateChange::RemovePolicy(gone.clone()));
        }
        for k in &now {
            match policy_of(view, k) {
                Some(p) => out.push(StateChange::UpsertPolicy(p)),
                None => out.push(StateChange::RemovePolicy(k.clone())),
            }
        }
        if !now.is_empty() {
            self.policies.insert(tenant.to_string(), now);
        }
    }

    fn translate(&mut self, view: &View, c: &ViewChange, out: &mut Vec<StateChange>) {
        let (kind, key) = match c {
            ViewChange::Put(k, key) | ViewChange::Delete(k, key) => (*k, key.as_str()),
            ViewChange::Reset => return,
        };
        match kind {
            Kind::Endpoint => self.remote(view, key, out),
            Kind::Node => {
                out.push(StateChange::OtherHosts(other_hosts(view, &self.me)));
                let ids: Vec<String> = self
                    .by_host
                    .get(key)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default();
                for id in ids {
                    self.remote(view, &id, out);
                }
            }
            Kind::Network => {
                self.network(view, key, out);
                self.tenant_policies(view, tenant_of(key), out);
            }
            Kind::Tenant => {
                let zones = zones(view);
                if zones != self.zones {
                    self.zones = zones;
                    let keys: BTreeSet<String> = view
                        .networks
                        .keys()
                        .chain(self.networks.keys())
                        .cloned()
                        .collect();
                    for k in keys {
                        self.network(view, &k, out);
                    }
                }
            }
            Kind::EndpointGroup => {
                match view.groups.get(key) {
                    Some(g) => out.push(StateChange::UpsertGroup(group_of(view, g))),
                    None => out.push(StateChange::RemoveGroup(key.to_string())),
                }
                self.tenant_policies(view, tenant_of(key), out);
            }
            Kind::NetProfile => {
                let tenant = tenant_of(key);
                for g in view.groups.values().filter(|g| g.tenant_name == tenant) {
                    out.push(StateChange::UpsertGroup(group_of(view, g)));
                }
            }
            Kind::Rule => self.tenant_policies(view, tenant_of(key), out),
            Kind::Global => out.push(StateChange::ServiceCidrs(service_cidrs(view))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_api::watch::Object;

    /// A small deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn obj(kind: Kind, v: serde_json::Value) -> Object {
        Object::from_json(kind, v.to_string().as_bytes()).unwrap()
    }

    /// A random change to the view: a put or a delete of a random object of a small world (two
    /// tenants, three networks, groups, rules naming groups and networks, netprofiles, three
    /// nodes, endpoints on this host and others).
    fn random_change(r: &mut Rng, view: &mut View) -> ViewChange {
        let t = ["red", "blue"][r.next(2) as usize];
        let n = ["a", "b", "c"][r.next(3) as usize];
        let g = ["g1", "g2"][r.next(2) as usize];
        let p = ["p1", "p2"][r.next(2) as usize];
        let host = ["me", "h2", "h3"][r.next(3) as usize];
        let o = match r.next(9) {
            0 => obj(Kind::Tenant, serde_json::json!({"tenantName": t})),
            1 => obj(
                Kind::Network,
                serde_json::json!({"tenantName": t, "networkName": n, "encap": "vxlan",
                    "pktTag": 100 + r.next(4), "subnet": format!("10.{}.0.0/24", r.next(3)),
                    "gateway": "10.0.0.1", "hostAccess": r.next(4) == 0}),
            ),
            2 => obj(
                Kind::EndpointGroup,
                serde_json::json!({"tenantName": t, "groupName": g, "networkName": n,
                    "policies": [p], "defaultDeny": r.next(2) == 0, "netProfile": "np"}),
            ),
            3 => obj(
                Kind::Rule,
                serde_json::json!({"tenantName": t, "policyName": p, "ruleId": format!("{}", r.next(3)),
                    "direction": if r.next(2) == 0 { "in" } else { "out" },
                    "toEndpointGroup": if r.next(2) == 0 { g } else { "" },
                    "fromNetwork": if r.next(3) == 0 { n } else { "" },
                    "protocol": "tcp", "port": 80 + r.next(3), "action": "allow"}),
            ),
            4 => obj(
                Kind::NetProfile,
                serde_json::json!({"tenantName": t, "profileName": "np",
                    "bandwidth": format!("{}Mbps", 1 + r.next(5)), "DSCP": r.next(4)}),
            ),
            5 => obj(
                Kind::Node,
                serde_json::json!({"name": host, "vtepIp": format!("192.0.2.{}", 1 + r.next(3))}),
            ),
            6 => obj(
                Kind::Global,
                serde_json::json!({"serviceCidrs": [format!("10.96.{}.0/24", r.next(2))]}),
            ),
            _ => {
                let i = r.next(6);
                obj(
                    Kind::Endpoint,
                    serde_json::json!({"endpointId": format!("e{i}"), "container": "c",
                        "host": host, "tenantName": t, "networkName": n,
                        "groupName": if r.next(2) == 0 { g } else { "" }, "interfaceName": "eth0",
                        "mac": format!("02:00:00:00:00:{:02x}", r.next(4)),
                        "ipv4": format!("10.0.0.{}", 2 + r.next(4))}),
                )
            }
        };
        if r.next(4) == 0 {
            let (k, key) = (o.kind(), o.key());
            view.remove(k, &key);
            ViewChange::Delete(k, key)
        } else {
            let (k, key) = view.put(o);
            ViewChange::Put(k, key)
        }
    }

    #[test]
    fn change_by_change_equals_a_full_compile() {
        let me = HostPorts {
            host: "me".into(),
            bridge: "br-int".into(),
            uplink_port: Some(2),
            tunnel_port: Some(1),
            gateway_port: Some(weft_policy::GatewayPort {
                ofport: 3,
                mac: [2, 0, 0, 0, 0, 9],
                address: "192.0.2.1".parse().unwrap(),
            }),
        };
        for seed in 1..=20u64 {
            let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut view = View::default();
            view.complete = true;
            let mut ports: BTreeMap<String, Arc<LocalPort>> = BTreeMap::new();
            let mut engine = Engine::new(me.clone());
            let mut set = match engine.step(&view, &ports, &[ViewChange::Reset], &[]) {
                Step::Full(s) => s,
                other => panic!("{other:?}"),
            };
            for step in 0..150 {
                let mut changes = vec![];
                let mut changed = vec![];
                for _ in 0..1 + r.next(3) {
                    if r.next(5) == 0 {
                        // A local port: from one of the view's endpoints on this host, or gone.
                        let i = r.next(6);
                        let id = format!("e{i}");
                        match view.endpoints.get(&id).filter(|e| e.host == "me") {
                            Some(ep) if r.next(3) != 0 => {
                                let lp = crate::local::tests::port_for(ep, 10 + i as u32);
                                ports.insert(id.clone(), Arc::new(lp));
                            }
                            _ => {
                                ports.remove(&id);
                            }
                        }
                        changed.push(id);
                    } else {
                        changes.push(random_change(&mut r, &mut view));
                    }
                }
                match engine.step(&view, &ports, &changes, &changed) {
                    Step::Nothing => {}
                    Step::Full(s) => set = s,
                    Step::Delta(d) => set.apply_delta(&d),
                }
                let full =
                    weft_policy::compile(&host_state(&view, &me, ports.values().map(|p| &**p)));
                assert!(
                    set == full.flows,
                    "seed {seed} step {step}: the kept set differs from a full compile after {changes:?} {changed:?}"
                );
                assert_eq!(
                    engine.routes().cloned().unwrap_or_default(),
                    host_routes(&host_state(&view, &me, ports.values().map(|p| &**p)), &full),
                    "seed {seed} step {step}: routes"
                );
            }
        }
    }
}

//! Endpoint groups, policies and rules: the stateful policy tables (`EGRESS_*`, `INGRESS_*`).
//!
//! All IPv4 goes through conntrack, in its tenant's zone (reg6, set by the classifier), whether
//! its network has policies or not: the choice to track a packet never changes with intent, so no
//! flow cached in the datapath can outlive a policy change with the wrong answer (Open vSwitch's
//! userspace datapath kept such flows for a minute and more when tracking was switched off for a
//! network). Group membership is resolved once per address into a register (reg3, the peer's
//! group), so a rule compiles to flows on (its target groups) × (its peer and service); where the
//! targets are several, a conjunctive match keeps that a sum. Flow count grows with rules +
//! members, never with their product.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv4Addr;

use ofproto::action::{Action, Ct, CtZone, FieldRange, Nat, NatAddrs, NatKind};
use ofproto::instruction::Instruction;
use ofproto::oxm::{Field, Match};

use crate::flowset::{Flow, FlowKey, FlowSet};
use crate::layout::*;
use crate::model::{
    Direction, Endpoint, EndpointGroup as Group, HostState, Peer, Policy, Problem, Rule,
};
use crate::pipeline::{apply, goto, set_reg, Compiled, Membership};

const ETH_IPV4: u16 = 0x0800;
const TCP: u8 = 6;
const UDP: u8 = 17;

fn zone_reg() -> CtZone {
    CtZone::Field(FieldRange::new(reg(REG_ZONE), 0, 16).expect("reg6[0..15] is a valid range"))
}

fn nat(kind: NatKind, addrs: NatAddrs) -> Action {
    Action::Nat(Nat {
        kind,
        addrs,
        ports: None,
        persistent: false,
        hash: false,
        random: false,
    })
}

/// `ct(table=T, zone=reg6[0..15], nat)`: look the packet up in its tenant's zone, continue at
/// `T`; a connection that was source-translated on its way out (external networks) is
/// translated again, both ways, here.
fn ct_lookup(table: u8) -> Action {
    Action::Ct(Ct {
        commit: false,
        force: false,
        zone: zone_reg(),
        table: Some(table),
        alg: 0,
        actions: vec![nat(NatKind::Reuse, NatAddrs::None)],
    })
}

/// `ct(commit, zone=reg6[0..15])`: remember the connection, so its later packets and replies
/// are `+est`.
fn ct_commit() -> Action {
    ct_commit_with(vec![])
}

fn ct_commit_with(actions: Vec<Action>) -> Action {
    Action::Ct(Ct {
        commit: true,
        force: false,
        zone: zone_reg(),
        table: None,
        alg: 0,
        actions,
    })
}

/// Commits a connection that came from the host's gateway port, marked so its replies go back
/// there.
fn ct_commit_from_host() -> Action {
    ct_commit_with(vec![crate::pipeline::set_f(
        Field::CtMark,
        u128::from(MARK_FROM_HOST),
    )])
}

/// The policy tables' part of the host gateway (`to_host`: the actions that send a packet into
/// the host's stack): what the host starts may always reach an endpoint of this host (kubelet's probes; like a host's own firewall, a group's rules govern
/// other peers), connections it started are marked so their replies return to it, and a new
/// connection leaving for the outside is translated to its tenant's transit address.
pub(crate) fn gateway(
    set: &mut FlowSet,
    c: u64,
    gw: &crate::model::GatewayPort,
    to_host: &[Action],
    external_zones: &BTreeSet<u16>,
) {
    // Whatever the rules say, the host reaches its own endpoints.
    set.insert_flow(Flow::new(
        INGRESS_RULES,
        1000,
        c,
        Match::new().eth_type(ETH_IPV4).in_port(gw.ofport),
        vec![apply(vec![ct_commit_from_host()]), goto(OUTPUT)],
    ));
    set.insert_flow(Flow::new(
        INGRESS_STATE,
        85,
        c,
        state(CT_NEW)
            .eth_type(ETH_IPV4)
            .in_port(gw.ofport)
            .reg(REG_DEST, TO_REMOTE),
        vec![apply(vec![ct_commit_from_host()]), goto(OUTPUT)],
    ));
    // Replies to what the host started go back to the host, wherever they were addressed: the
    // host may have changed the destination (a Service's address to a backend's), and only it
    // can undo that. Every tracked packet meets table 61, whether a local endpoint sent it or it
    // came from another host; it was routed already (towards its address), so only its
    // destination changes here.
    set.insert_flow(Flow::new(
        INGRESS_STATE,
        110,
        c,
        Match::new()
            .eth_type(ETH_IPV4)
            .ct_state(CT_EST | CT_RPL | CT_TRK, CT_EST | CT_RPL | CT_TRK)
            .with_masked(
                Field::CtMark,
                u128::from(MARK_FROM_HOST),
                u128::from(MARK_FROM_HOST),
            ),
        vec![apply(to_host.to_vec()), goto(OUTPUT)],
    ));
    // A new connection to the outside: source NAT to the tenant's transit address.
    for z in external_zones {
        set.insert_flow(Flow::new(
            INGRESS_STATE,
            85,
            c,
            state(CT_NEW)
                .eth_type(ETH_IPV4)
                .reg(REG_DEST, TO_EXTERNAL)
                .reg(REG_ZONE, u32::from(*z)),
            vec![
                apply(vec![ct_commit_with(vec![nat(
                    NatKind::Src,
                    NatAddrs::V4(transit_address(*z), None),
                )])]),
                goto(OUTPUT),
            ],
        ));
    }
}

fn state(bits: u32) -> Match {
    Match::new().ct_state(bits | CT_TRK, bits | CT_TRK)
}

/// The fixed flows of the policy tables.
pub(crate) fn skeleton(set: &mut FlowSet, pipe: u64) {
    let f = |t, p, m, i| Flow::new(t, p, pipe, m, i);
    // Egress: IPv4 through conntrack, the rest on to L3.
    set.insert_flow(f(
        EGRESS_POLICY,
        100,
        Match::new().eth_type(ETH_IPV4),
        vec![apply(vec![ct_lookup(EGRESS_STATE)])],
    ));
    set.insert_flow(f(EGRESS_POLICY, 0, Match::new(), vec![goto(L3)]));
    set.insert_flow(f(EGRESS_STATE, 100, state(CT_EST), vec![goto(L3)]));
    set.insert_flow(f(EGRESS_STATE, 100, state(CT_REL), vec![goto(L3)]));
    set.insert_flow(f(EGRESS_STATE, 90, state(CT_INV), vec![]));
    set.insert_flow(f(EGRESS_STATE, 80, state(CT_NEW), vec![goto(EGRESS_PEER)]));
    set.insert_flow(f(EGRESS_STATE, 0, Match::new(), vec![]));
    set.insert_flow(f(
        EGRESS_PEER,
        0,
        Match::new(),
        vec![apply(vec![set_reg(REG_PEER_GROUP, 0)]), goto(EGRESS_RULES)],
    ));
    set.insert_flow(f(EGRESS_RULES, 0, Match::new(), vec![goto(L3)]));

    // Ingress: what egress tracked goes straight to the state table; IPv4 that came from a
    // tunnel or the uplink is looked up first.
    set.insert_flow(f(
        INGRESS_POLICY,
        110,
        Match::new().eth_type(ETH_IPV4).ct_state(CT_TRK, CT_TRK),
        vec![goto(INGRESS_STATE)],
    ));
    set.insert_flow(f(
        INGRESS_POLICY,
        100,
        Match::new().eth_type(ETH_IPV4),
        vec![apply(vec![ct_lookup(INGRESS_STATE)])],
    ));
    set.insert_flow(f(INGRESS_POLICY, 0, Match::new(), vec![goto(OUTPUT)]));
    set.insert_flow(f(INGRESS_STATE, 100, state(CT_EST), vec![goto(OUTPUT)]));
    set.insert_flow(f(INGRESS_STATE, 100, state(CT_REL), vec![goto(OUTPUT)]));
    set.insert_flow(f(INGRESS_STATE, 90, state(CT_INV), vec![]));
    // New towards another host: its ingress rules are that host's business; commit here so the
    // replies are known.
    set.insert_flow(f(
        INGRESS_STATE,
        80,
        state(CT_NEW).eth_type(ETH_IPV4).reg(REG_DEST, TO_REMOTE),
        vec![apply(vec![ct_commit()]), goto(OUTPUT)],
    ));
    set.insert_flow(f(
        INGRESS_STATE,
        70,
        state(CT_NEW),
        vec![goto(INGRESS_PEER)],
    ));
    set.insert_flow(f(INGRESS_STATE, 0, Match::new(), vec![]));
    set.insert_flow(f(
        INGRESS_PEER,
        0,
        Match::new(),
        vec![apply(vec![set_reg(REG_PEER_GROUP, 0)]), goto(INGRESS_RULES)],
    ));
    // (`ct` needs its match to say IP; only IPv4 is ever tracked, so nothing else gets here.)
    set.insert_flow(f(
        INGRESS_RULES,
        0,
        Match::new().eth_type(ETH_IPV4),
        vec![apply(vec![ct_commit()]), goto(OUTPUT)],
    ));
}

/// Groups and policies, resolved for one compile.
pub(crate) struct Policies<'a> {
    /// Group key → (its register value, the group).
    groups: BTreeMap<&'a str, (u32, &'a Group)>,
    policies: BTreeMap<&'a str, &'a Policy>,
    /// Groups with an endpoint on this host, by key.
    local: BTreeSet<&'a str>,
}

/// A stable 31-bit id from a key, never 0, moved on past ids already taken.
pub(crate) fn stable_id(key: &str, used: &mut HashSet<u32>) -> u32 {
    let h = fnv1a(key);
    let mut id = ((h ^ (h >> 32)) as u32) & 0x7fff_ffff;
    loop {
        if id != 0 && used.insert(id) {
            return id;
        }
        id = (id + 1) & 0x7fff_ffff;
    }
}

impl<'a> Policies<'a> {
    pub(crate) fn resolve(
        state: &'a HostState,
        members: &BTreeMap<&str, Vec<&'a Endpoint>>,
        problems: &mut Vec<Problem>,
    ) -> Policies<'a> {
        let mut sorted: Vec<&Group> = state.groups.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        let mut used = HashSet::new();
        let mut groups = BTreeMap::new();
        for g in sorted {
            if !groups.contains_key(g.key.as_str()) {
                groups.insert(g.key.as_str(), (stable_id(&g.key, &mut used), g));
            }
        }
        let policies: BTreeMap<&str, &Policy> =
            state.policies.iter().map(|p| (p.key.as_str(), p)).collect();
        for (_, g) in groups.values() {
            for p in &g.policies {
                if !policies.contains_key(p.as_str()) {
                    problems.push(Problem::UnknownPolicy {
                        group: g.key.clone(),
                        policy: p.clone(),
                    });
                }
            }
        }
        let mut p = Policies {
            groups,
            policies,
            local: BTreeSet::new(),
        };
        for eps in members.values() {
            for ep in eps {
                let Some(key) = ep.group.as_deref() else {
                    continue;
                };
                match p.group(Some(key), &ep.network) {
                    Some(g) => {
                        p.local.insert(g.key.as_str());
                    }
                    None => problems.push(Problem::UnknownGroup {
                        endpoint: ep.key.clone(),
                        group: key.to_string(),
                    }),
                }
            }
        }
        p
    }

    /// The group `key` if it is known and belongs to `network`.
    fn group(&self, key: Option<&str>, network: &str) -> Option<&'a Group> {
        let (_, g) = self.groups.get(key?)?;
        (g.network == network).then_some(*g)
    }

    /// What an endpoint of `network` in group `key` gets from it.
    pub(crate) fn membership(&self, key: Option<&str>, network: &str) -> Membership {
        let known = key.and_then(|k| self.groups.get(k));
        Membership {
            id: known.map(|(id, _)| *id),
            profile: known.and_then(|(_, g)| g.profile),
            peer: self
                .group(key, network)
                .map(|g| self.groups[g.key.as_str()].0),
        }
    }

    /// The rules of every group with an endpoint here, and default-deny.
    pub(crate) fn compile(&self, out: &mut Compiled) {
        // Default deny, below every rule.
        for key in &self.local {
            let (id, g) = self.groups[key];
            if g.default_deny {
                default_deny_fragment(out, key, id, g.log);
            }
        }

        // Each policy's rules, on the local groups it is attached to.
        let mut clauses = Clauses::default();
        let mut used = HashSet::new();
        for (pkey, policy) in &self.policies {
            let targets: Vec<u32> = self
                .local
                .iter()
                .map(|k| self.groups[k])
                .filter(|(_, g)| g.policies.iter().any(|p| p == pkey))
                .map(|(id, _)| id)
                .collect();
            policy_fragment(
                out,
                &mut clauses,
                policy,
                &targets,
                |k| self.groups.get(k).map(|(id, _)| *id),
                |r| stable_id(&r.key, &mut used),
            );
        }
        clauses.finish(&mut out.flows);
    }
}

/// An endpoint's addresses name its group, as a destination (egress) and as a source
/// (ingress), anywhere in its tenant (reg6, `zone`): routed traffic meets the policy tables in
/// the sender's network on one host and in the receiver's on the other. Addresses are what the
/// spoof guard of the sender's host vouches for.
pub(crate) fn peer_flows(out: &mut Compiled, zone: u16, c: u64, addrs: &[Ipv4Addr], id: u32) {
    for a in addrs {
        for (table, field, next) in [
            (EGRESS_PEER, Field::Ipv4Dst, EGRESS_RULES),
            (INGRESS_PEER, Field::Ipv4Src, INGRESS_RULES),
        ] {
            out.flows.insert_flow(Flow::new(
                table,
                100,
                c,
                Match::new()
                    .reg(REG_ZONE, u32::from(zone))
                    .eth_type(ETH_IPV4)
                    .with(field, u128::from(u32::from(*a))),
                vec![apply(vec![set_reg(REG_PEER_GROUP, id)]), goto(next)],
            ));
        }
    }
}

/// What a rule's flow does with a packet it matches: allow (in: commit, to output; out: to L3)
/// or deny (drop); a logged rule first sends a copy to netplugin through the verdict meter.
fn rule_verdict(allow: bool, direction: Direction, log: bool) -> Vec<Instruction> {
    let mut actions = vec![];
    if log {
        actions.push(crate::logging::log_action());
    }
    match (allow, direction) {
        (false, _) if actions.is_empty() => vec![],
        (false, _) => vec![apply(actions)],
        (true, Direction::In) => {
            actions.push(ct_commit());
            vec![apply(actions), goto(OUTPUT)]
        }
        (true, Direction::Out) if actions.is_empty() => vec![goto(L3)],
        (true, Direction::Out) => vec![apply(actions), goto(L3)],
    }
}

/// A default-deny group with an endpoint here (`id`: its register value): what no rule allows
/// is dropped, both ways; with `log`, a copy of each dropped first packet goes to netplugin.
pub(crate) fn default_deny_fragment(out: &mut Compiled, key: &str, id: u32, log: bool) {
    let c = cookie(CookieKind::Group, key);
    out.owners.insert(c, format!("group {key}"));
    for (table, r) in [
        (EGRESS_RULES, REG_SRC_GROUP),
        (INGRESS_RULES, REG_DST_GROUP),
    ] {
        out.flows.insert_flow(Flow::new(
            table,
            DEFAULT_DENY_PRIORITY,
            c,
            Match::new().reg(r, id),
            if log {
                vec![apply(vec![crate::logging::log_action()])]
            } else {
                vec![]
            },
        ));
    }
}

/// The rules of one policy on its local target groups (`targets`: their register values, in
/// group key order; none: nothing). Plain flows go to `out`, clauses of conjunctive matches to
/// `clauses`. `peer_id` names a peer group's register value (None: unknown group);
/// `conj_id` gives the conjunction id of each rule that needs one, in rule order.
pub(crate) fn policy_fragment(
    out: &mut Compiled,
    clauses: &mut Clauses,
    policy: &Policy,
    targets: &[u32],
    peer_id: impl Fn(&str) -> Option<u32>,
    mut conj_id: impl FnMut(&Rule) -> u32,
) {
    if targets.is_empty() {
        return;
    }
    let mut rules: Vec<&Rule> = policy.rules.iter().collect();
    rules.sort_by(|a, b| a.key.cmp(&b.key));
    for r in rules {
        rule_flows(out, clauses, r, targets, &peer_id, &mut conj_id);
    }
}

/// Which rules of a policy need a conjunction id, in the order [`policy_fragment`] asks for
/// them: all rules (sorted by key) whose peer is not an unknown group, when there are several
/// targets.
pub(crate) fn conj_rules(
    policy: &Policy,
    targets: usize,
    known_group: impl Fn(&str) -> bool,
) -> Vec<&Rule> {
    if targets < 2 {
        return vec![];
    }
    let mut rules: Vec<&Rule> = policy.rules.iter().collect();
    rules.sort_by(|a, b| a.key.cmp(&b.key));
    rules.retain(|r| match &r.peer {
        Peer::Group(k) => known_group(k),
        _ => true,
    });
    rules
}

fn rule_flows(
    out: &mut Compiled,
    conj: &mut Clauses,
    r: &Rule,
    targets: &[u32],
    peer_id: impl Fn(&str) -> Option<u32>,
    mut conj_id: impl FnMut(&Rule) -> u32,
) {
    let c = cookie(CookieKind::Rule, &r.key);
    let (table, target_reg, peer_field) = match r.direction {
        Direction::In => (INGRESS_RULES, REG_DST_GROUP, Field::Ipv4Src),
        Direction::Out => (EGRESS_RULES, REG_SRC_GROUP, Field::Ipv4Dst),
    };
    let verdict = rule_verdict(r.allow, r.direction, r.log);
    let priority = rule_priority(r.priority, r.allow);

    // The peer and the service: one match per destination-port prefix.
    let mut base = Match::new().eth_type(ETH_IPV4);
    match &r.peer {
        Peer::Any => {}
        Peer::Group(k) => match peer_id(k) {
            Some(id) => base = base.reg(REG_PEER_GROUP, id),
            // A group nobody knows has no members: the rule matches nothing.
            None => return,
        },
        Peer::Cidr(a, len) => base = base.ipv4(peer_field, *a, *len),
    }
    let mut services = vec![];
    match (r.protocol, r.ports) {
        (None, _) => services.push(base),
        (Some(p), Some((lo, hi))) if p == TCP || p == UDP => {
            let f = if p == TCP {
                Field::TcpDst
            } else {
                Field::UdpDst
            };
            for (v, m) in port_prefixes(lo, hi) {
                let m0 = base.clone().ip_proto(p);
                services.push(if m == 0xffff {
                    m0.with(f, v.into())
                } else {
                    m0.with_masked(f, v.into(), m.into())
                });
            }
        }
        (Some(p), _) => services.push(base.ip_proto(p)),
    }
    out.owners.insert(c, format!("rule {}", r.key));

    if targets.len() == 1 {
        for t in targets {
            for s in &services {
                out.flows.insert_flow(Flow::new(
                    table,
                    priority,
                    c,
                    s.clone().reg(target_reg, *t),
                    verdict.clone(),
                ));
            }
        }
        return;
    }
    // targets × services as a conjunction: |targets| + |services| + 1 flows, and the
    // target clauses (`reg=G`) are shared by every rule of the same priority.
    let id = conj_id(r);
    for t in targets {
        conj.clause(
            Flow::new(table, priority, c, Match::new().reg(target_reg, *t), vec![]),
            id,
            0,
        );
    }
    for s in services {
        conj.clause(Flow::new(table, priority, c, s, vec![]), id, 1);
    }
    out.flows.insert_flow(Flow::new(
        table,
        priority,
        c,
        Match::new()
            .eth_type(ETH_IPV4)
            .with(Field::ConjId, u128::from(id)),
        verdict,
    ));
}

/// Clause flows of conjunctive matches, merged: flows with the same table, priority and match
/// carry every conjunction they are a clause of.
#[derive(Debug, Default)]
pub(crate) struct Clauses {
    /// Per clause flow: the first rule's flow (its cookie names the clause) and the
    /// `conjunction` actions of every rule it is a clause of.
    pub(crate) clauses: BTreeMap<FlowKey, (Flow, Vec<Action>)>,
}

impl Clauses {
    fn clause(&mut self, flow: Flow, id: u32, clause: u8) {
        let a = Action::Conjunction {
            id,
            clause,
            n_clauses: 2,
        };
        self.clauses
            .entry(flow.key())
            .or_insert_with(|| (flow, vec![]))
            .1
            .push(a);
    }

    /// Adds the clause flows. Where a plain rule flow has the same table, priority and match,
    /// the plain flow stays: equal priority means an equal verdict (the priority encodes
    /// allow or deny), and the plain flow gives it to every packet the clause could.
    fn finish(self, set: &mut FlowSet) {
        for (key, (flow, actions)) in self.clauses {
            if set.flows.contains_key(&key) {
                continue;
            }
            set.insert_flow(merged_clause(&flow, actions));
        }
    }
}

/// The clause flow `flow` (table, priority, match and cookie) carrying `actions`, the
/// conjunctions of every rule it is a clause of, in id order.
pub(crate) fn merged_clause(flow: &Flow, mut actions: Vec<Action>) -> Flow {
    actions.sort_by_key(|a| match a {
        Action::Conjunction { id, clause, .. } => (*id, *clause),
        _ => (0, 0),
    });
    Flow::new(
        flow.table,
        flow.priority,
        flow.cookie,
        flow.match_.clone(),
        vec![Instruction::ApplyActions(actions)],
    )
}

/// The (value, mask) prefixes that cover the ports `lo..=hi` exactly.
pub fn port_prefixes(lo: u16, hi: u16) -> Vec<(u16, u16)> {
    let mut out = vec![];
    let (mut lo, hi) = (u32::from(lo), u32::from(hi));
    while lo <= hi {
        // The largest aligned block starting at lo that ends within hi.
        let mut size = 1u32;
        while size < 0x10000 && lo.is_multiple_of(size * 2) && lo + size * 2 - 1 <= hi {
            size *= 2;
        }
        out.push((lo as u16, (0x10000 - size) as u16));
        lo += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(prefixes: &[(u16, u16)]) -> Vec<u16> {
        (0..=u16::MAX)
            .filter(|p| prefixes.iter().any(|(v, m)| p & m == *v))
            .collect()
    }

    #[test]
    fn port_ranges_become_exact_prefix_sets() {
        assert_eq!(port_prefixes(80, 80), vec![(80, 0xffff)]);
        assert_eq!(port_prefixes(0, 65535), vec![(0, 0)]);
        assert_eq!(port_prefixes(8000, 8007), vec![(8000, 0xfff8)]);
        for (lo, hi) in [
            (1, 1023),
            (1000, 1999),
            (5, 6),
            (65534, 65535),
            (1024, 65535),
        ] {
            let p = port_prefixes(lo, hi);
            assert_eq!(covered(&p), (lo..=hi).collect::<Vec<_>>(), "{lo}-{hi}");
            assert!(p.len() <= 30, "{lo}-{hi}: {} prefixes", p.len());
        }
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let mut a = HashSet::new();
        let x = stable_id("blue:web", &mut a);
        let mut b = HashSet::new();
        assert_eq!(stable_id("blue:web", &mut b), x);
        // A clash moves the second one on.
        let y = stable_id("blue:web", &mut a);
        assert_ne!(x, y);
        assert_ne!(y, 0);
    }
}

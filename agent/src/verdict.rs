//! The policy verdict log, netplugin's side: the packet-ins the verdict log's flows send
//! (`controller(meter_id=…)`, see `weft_policy::logging`) become [`VerdictRecord`]s: a
//! structured log line (target `weft::verdict`), a count
//! (`weft_policy_verdicts_total{tenant,policy,rule,verdict}`) and an entry in a bounded ring that
//! `GET /inspect/verdicts?since=N` reads.
//!
//! A packet-in names its flow by cookie and table. The cookie is the rule's (or, for a default
//! deny, the group's); the verdict is the flow's: a logged flow that goes on to another table
//! allows, one that does not drops. Both are read from the compiled set, once per flow and
//! compiled version.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

use ofproto::instruction::Instruction;
use weft_api::inspect::VerdictRecord;
use weft_policy::layout::{self, CookieKind};

/// Records kept for `/inspect/verdicts`.
pub const RING: usize = 1000;

/// The recent verdict records, oldest first, each with a sequence number.
pub struct Ring {
    inner: Mutex<(u64, VecDeque<VerdictRecord>)>,
    cap: usize,
}

impl Default for Ring {
    fn default() -> Self {
        Ring::new(RING)
    }
}

impl Ring {
    pub fn new(cap: usize) -> Ring {
        Ring {
            inner: Mutex::new((0, VecDeque::with_capacity(cap.min(RING)))),
            cap: cap.max(1),
        }
    }

    /// Adds a record, numbering it (from 1); the oldest goes when the ring is full.
    pub fn push(&self, mut r: VerdictRecord) -> u64 {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        r.seq = g.0;
        if g.1.len() == self.cap {
            g.1.pop_front();
        }
        g.1.push_back(r);
        g.0
    }

    /// The records numbered above `since`, oldest first.
    pub fn since(&self, since: u64) -> Vec<VerdictRecord> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1.iter().filter(|r| r.seq > since).cloned().collect()
    }
}

/// What a logged flow decides, and for which intent object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decider {
    pub tenant: String,
    /// The policy; for a group's default deny, `group:NAME`.
    pub policy: String,
    /// The rule id; empty for a group's default deny.
    pub rule: String,
    /// `allow` or `deny`.
    pub verdict: &'static str,
}

/// Who decided, from the compiled set: the logged flow of `table` with `cookie`. None for a
/// packet-in that is not the verdict log's.
pub fn decider(
    flows: &weft_policy::FlowSet,
    owners: &std::collections::BTreeMap<u64, String>,
    table: u8,
    cookie: u64,
) -> Option<Decider> {
    if table != layout::EGRESS_RULES && table != layout::INGRESS_RULES {
        return None;
    }
    let kind = CookieKind::from_cookie(cookie)?;
    let flow = flows.flows.values().find(|f| {
        f.table == table
            && f.cookie == cookie
            && f.instructions.iter().any(|i| {
                matches!(i, Instruction::ApplyActions(a)
                    if a.iter().any(|a| weft_policy::logging::controller_meter(a).is_some()))
            })
    })?;
    let allows = flow
        .instructions
        .iter()
        .any(|i| matches!(i, Instruction::GotoTable(_)));
    let verdict = if allows { "allow" } else { "deny" };
    let owner = owners.get(&cookie)?;
    match kind {
        CookieKind::Rule => {
            let key = owner.strip_prefix("rule ")?;
            let mut parts = key.splitn(3, ':');
            let (tenant, policy, rule) = (parts.next()?, parts.next()?, parts.next()?);
            Some(Decider {
                tenant: tenant.into(),
                policy: policy.into(),
                rule: rule.into(),
                verdict,
            })
        }
        CookieKind::Group => {
            let key = owner.strip_prefix("group ")?;
            let (tenant, group) = key.split_once(':')?;
            Some(Decider {
                tenant: tenant.into(),
                policy: format!("group:{group}"),
                rule: String::new(),
                verdict,
            })
        }
        _ => None,
    }
}

/// Deciders looked up, per (table, cookie), for one compiled version.
#[derive(Default)]
pub struct Cache {
    version: u64,
    known: HashMap<(u8, u64), Option<Decider>>,
}

impl Cache {
    /// The cached answer for `key` at `version` (a new version forgets everything).
    pub fn get(&mut self, version: u64, key: (u8, u64)) -> Option<Option<Decider>> {
        if version != self.version {
            self.version = version;
            self.known.clear();
        }
        self.known.get(&key).cloned()
    }

    pub fn put(&mut self, key: (u8, u64), d: Option<Decider>) {
        self.known.insert(key, d);
    }
}

/// The addresses, protocol and destination port of an Ethernet frame carrying IPv4 (one VLAN
/// tag allowed). None for anything else.
pub fn five_tuple(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8, Option<u16>)> {
    let mut off = 12;
    let mut et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    if et == 0x8100 {
        off += 4;
        et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    }
    if et != 0x0800 {
        return None;
    }
    let ip = frame.get(off + 2..)?;
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let proto = ip[9];
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let dport = match proto {
        6 | 17 => ip
            .get(ihl + 2..ihl + 4)
            .map(|p| u16::from_be_bytes([p[0], p[1]])),
        _ => None,
    };
    Some((src, dst, proto, dport))
}

/// The record of one logged packet.
pub fn record(host: &str, d: &Decider, frame: &[u8], time_ms: u64) -> Option<VerdictRecord> {
    let (src, dst, proto, dport) = five_tuple(frame)?;
    Some(VerdictRecord {
        seq: 0,
        time_ms,
        host: host.to_string(),
        tenant: d.tenant.clone(),
        policy: d.policy.clone(),
        rule: d.rule.clone(),
        verdict: d.verdict.to_string(),
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        proto,
        dport,
    })
}

/// Writes the log line of a record (target `weft::verdict`).
pub fn log(r: &VerdictRecord) {
    tracing::info!(
        target: "weft::verdict",
        seq = r.seq,
        tenant = %r.tenant,
        policy = %r.policy,
        rule = %r.rule,
        verdict = %r.verdict,
        src = %r.src,
        dst = %r.dst,
        proto = r.proto,
        dport = r.dport,
        "policy verdict"
    );
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_policy::model::*;

    fn frame() -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12] = 0x08;
        f[14] = 0x45;
        f[14 + 9] = 6;
        f[14 + 12..14 + 16].copy_from_slice(&[10, 0, 0, 1]);
        f[14 + 16..14 + 20].copy_from_slice(&[10, 0, 0, 2]);
        f[34 + 2..34 + 4].copy_from_slice(&5432u16.to_be_bytes());
        f
    }

    #[test]
    fn a_frame_s_five_tuple() {
        let (s, d, p, port) = five_tuple(&frame()).unwrap();
        assert_eq!(
            (s, d, p, port),
            (
                "10.0.0.1".parse().unwrap(),
                "10.0.0.2".parse().unwrap(),
                6,
                Some(5432)
            )
        );
        assert_eq!(five_tuple(&frame()[..20]), None);
        let mut arp = frame();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(five_tuple(&arp), None);
    }

    #[test]
    fn the_ring_keeps_the_last_and_numbers_them() {
        let ring = Ring::new(3);
        let d = Decider {
            tenant: "t".into(),
            policy: "p".into(),
            rule: "1".into(),
            verdict: "allow",
        };
        for _ in 0..5 {
            ring.push(record("h", &d, &frame(), 1).unwrap());
        }
        let seqs: Vec<u64> = ring.since(0).iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(ring.since(4).len(), 1);
        assert!(ring.since(5).is_empty());
    }

    #[test]
    fn deciders_from_the_compiled_flows() {
        let net = Network {
            key: "t:n".into(),
            segment: Segment::Vxlan(5),
            gateway: None,
            zone: 1,
            subnet: Some(("10.0.0.0".parse().unwrap(), 24)),
            host_access: false,
            external: false,
        };
        let ep = Endpoint {
            key: "e".into(),
            network: "t:n".into(),
            ofport: 2,
            mac: [2, 0, 0, 0, 0, 2],
            ipv4: vec!["10.0.0.2".parse().unwrap()],
            ipv6: vec![],
            group: Some("t:g".into()),
        };
        let rule = |id: &str, port: u16, allow: bool, log: bool| Rule {
            key: format!("t:p:{id}"),
            priority: 5,
            direction: Direction::In,
            peer: Peer::Any,
            protocol: Some(6),
            ports: Some((port, port)),
            allow,
            log,
        };
        let s = HostState {
            networks: vec![net],
            endpoints: vec![ep],
            groups: vec![EndpointGroup {
                key: "t:g".into(),
                network: "t:n".into(),
                policies: vec!["t:p".into()],
                default_deny: true,
                profile: None,
                log: true,
            }],
            policies: vec![Policy {
                key: "t:p".into(),
                rules: vec![
                    rule("a", 80, true, true),
                    rule("d", 81, false, true),
                    rule("q", 82, true, false),
                ],
            }],
            ..HostState::default()
        };
        let c = weft_policy::compile(&s);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let cookie = |k, key: &str| layout::cookie(k, key);
        let get = |table, ck| decider(&c.flows, &c.owners, table, ck);
        let a = get(layout::INGRESS_RULES, cookie(CookieKind::Rule, "t:p:a")).unwrap();
        assert_eq!(
            (
                a.tenant.as_str(),
                a.policy.as_str(),
                a.rule.as_str(),
                a.verdict
            ),
            ("t", "p", "a", "allow")
        );
        let dn = get(layout::INGRESS_RULES, cookie(CookieKind::Rule, "t:p:d")).unwrap();
        assert_eq!(dn.verdict, "deny");
        let g = get(layout::INGRESS_RULES, cookie(CookieKind::Group, "t:g")).unwrap();
        assert_eq!(
            (g.policy.as_str(), g.rule.as_str(), g.verdict),
            ("group:g", "", "deny")
        );
        let g = get(layout::EGRESS_RULES, cookie(CookieKind::Group, "t:g")).unwrap();
        assert_eq!(g.verdict, "deny");
        // Not logged, the wrong table, not a rule: no verdict.
        assert_eq!(
            get(layout::INGRESS_RULES, cookie(CookieKind::Rule, "t:p:q")),
            None
        );
        assert_eq!(
            get(layout::EGRESS_RULES, cookie(CookieKind::Rule, "t:p:a")),
            None
        );
        assert_eq!(get(layout::L3, cookie(CookieKind::Group, "t:g")), None);
    }
}

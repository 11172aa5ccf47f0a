//! Live traces: a real packet, tagged in its DSCP bits (as Antrea's Traceflow does), injected
//! at a local endpoint's port by a packet-out, and temporary observation flows (their own cookie,
//! hard timeout) on every host it crosses that send it, or a copy, to netplugin:
//!
//! - at the top of the output table: a probe bound for the tunnel port is copied to netplugin
//!   and sent on (the next host sees it); any other probe is captured (sent to netplugin, not
//!   out: the probe is never delivered to the container);
//! - a clone of every flow that would drop the probe (deny rules, default denies, spoof guard,
//!   table defaults, conntrack's invalid), for the probe alone, one priority above its
//!   original, that sends it to netplugin with which flow it stands for (userdata); and a
//!   catch-all for the probe at priority 0 of each table without a default (a table miss).
//!
//! Priorities: a clone matches its original's fields plus the probe's (tag, addresses,
//! protocol, ports), so it catches the probe alone, and sits at the original's priority + 1, so
//! it beats the original and everything below it, as the original does. A clone is only
//! installed if no flow of its table at that priority could match what it matches (else the two
//! would tie and the switch pick either): then that drop is not watched, and said so. Flows of a
//! conjunction (`conj_id`) are not cloned (the conjunction's priority is its clauses').
//!
//! The reconciler ignores these flows ([`CookieKind::Trace`]). The probe is a real first packet:
//! an allowed one commits its connection, a logged allow logs it (a logged deny's clone takes
//! the place of its copy: that drop is not in the verdict log).

use std::net::Ipv4Addr;
use std::time::Duration;

use std::collections::BTreeMap;

use ofproto::action::{Action, Controller2, FieldRange};
use ofproto::instruction::Instruction;
use ofproto::msg::{FlowMod, Message, PacketIn2, PacketOut};
use ofproto::oxm::{Field, FieldMatch, Match, MatchField};
use weft_policy::layout::{self, CookieKind};
use weft_policy::sim::{L3, L4};
use weft_policy::{Flow, Packet};

/// How long a probe is waited for on a host.
pub const WAIT: Duration = Duration::from_secs(1);
/// The observation flows' hard timeout, seconds: they go even if netplugin does not remove
/// them (netmaster arms every host before it injects, and collects after).
pub const HARD_TIMEOUT: u16 = 10;

const OFPP_TABLE: u32 = 0xffff_fff9;

/// What an observation flow saw of the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// At the output table, bound for `port` (reg7) with this tunnel metadata; `sent_on`: a copy
    /// was taken and the probe went on (into the tunnel), else it was captured there.
    Output {
        port: u32,
        tun_id: u64,
        tun_dst: Ipv4Addr,
        sent_on: bool,
    },
    /// A clone of a flow that drops it (or a table miss) caught it: `by` says what it stands for.
    Dropped { table: u8, by: String },
}

impl Seen {
    /// Whether the probe's way on this host ends here (not sent on).
    pub fn ends(&self) -> bool {
        !matches!(self, Seen::Output { sent_on: true, .. })
    }
}

/// The probe as its observation flows match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeFields {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
}

impl ProbeFields {
    pub fn of(p: &Packet) -> Option<ProbeFields> {
        let L3::Ipv4(ip) = p.l3 else { return None };
        let (sport, dport) = match ip.l4 {
            L4::Tcp { src, dst } | L4::Udp { src, dst } => (Some(src), Some(dst)),
            _ => (None, None),
        };
        Some(ProbeFields {
            src: ip.src,
            dst: ip.dst,
            proto: ip.l4.proto(),
            sport,
            dport,
        })
    }

    /// The probe alone: its tag, addresses, protocol and ports.
    pub fn matching(&self, tag: u8) -> Match {
        let mut m = Match::new()
            .eth_type(0x0800)
            .with(Field::IpDscp, u128::from(tag))
            .ipv4(Field::Ipv4Src, self.src, 32)
            .ipv4(Field::Ipv4Dst, self.dst, 32)
            .ip_proto(self.proto);
        let (s, d) = match self.proto {
            6 => (Field::TcpSrc, Field::TcpDst),
            17 => (Field::UdpSrc, Field::UdpDst),
            _ => return m,
        };
        if let Some(p) = self.sport {
            m = m.with(s, u128::from(p));
        }
        if let Some(p) = self.dport {
            m = m.with(d, u128::from(p));
        }
        m
    }
}

fn checksum(data: &[u8], init: u32) -> u16 {
    let mut sum: u32 = init;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The probe's frame: `p` with DSCP `tag` (TCP: a SYN), checksums right (the userspace
/// datapath's conntrack checks them).
pub fn frame(p: &Packet, tag: u8) -> Option<Vec<u8>> {
    let L3::Ipv4(ip) = p.l3 else { return None };
    let (proto, l4) = match ip.l4 {
        L4::Tcp { src, dst } => {
            let mut t = vec![0u8; 20];
            t[0..2].copy_from_slice(&src.to_be_bytes());
            t[2..4].copy_from_slice(&dst.to_be_bytes());
            t[4..8].copy_from_slice(&0x5745_4654u32.to_be_bytes());
            t[12] = 5 << 4;
            t[13] = 0x02; // SYN
            t[14..16].copy_from_slice(&64240u16.to_be_bytes());
            (6u8, t)
        }
        L4::Udp { src, dst } => {
            let mut u = vec![0u8; 8];
            u[0..2].copy_from_slice(&src.to_be_bytes());
            u[2..4].copy_from_slice(&dst.to_be_bytes());
            u.extend_from_slice(b"weft live trace");
            let len = u.len() as u16;
            u[4..6].copy_from_slice(&len.to_be_bytes());
            (17u8, u)
        }
        L4::Icmp { typ, code } => {
            let mut i = vec![typ, code, 0, 0, 0x57, 0x46, 0, 1];
            i.extend_from_slice(b"weft live trace");
            let c = checksum(&i, 0);
            i[2..4].copy_from_slice(&c.to_be_bytes());
            (1u8, i)
        }
        L4::Other(_) => return None,
    };
    if proto != 1 {
        // The pseudo-header: addresses, protocol, length.
        let mut pseudo = vec![];
        pseudo.extend_from_slice(&ip.src.octets());
        pseudo.extend_from_slice(&ip.dst.octets());
        pseudo.extend_from_slice(&[0, proto]);
        pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(&l4);
        let c = checksum(&pseudo, 0);
        let at = if proto == 6 { 16 } else { 6 };
        let mut l4 = l4;
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
        return Some(assemble(p, ip.src, ip.dst, ip.ttl, tag, proto, &l4));
    }
    Some(assemble(p, ip.src, ip.dst, ip.ttl, tag, proto, &l4))
}

fn assemble(
    p: &Packet,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    tag: u8,
    proto: u8,
    l4: &[u8],
) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, tag << 2];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, ttl, proto, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(l4);
    let mut f = Vec::with_capacity(14 + ip.len());
    f.extend_from_slice(&p.eth_dst);
    f.extend_from_slice(&p.eth_src);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(&ip);
    f
}

/// The cookie of the observation flow for `tag`.
pub fn cookie(tag: u8) -> u64 {
    layout::cookie(CookieKind::Trace, &format!("live trace {tag}"))
}

/// Userdata kinds (byte 1; byte 0 is the tag, bytes 2..4 an index into [`Armed::drops`]).
const CAPTURED: u8 = 0;
const SENT_ON: u8 = 1;
const DROPPED: u8 = 2;

/// The priority of the output table's observation flows: above every flow of the table.
pub const OUTPUT_PRIORITY: u16 = 0xfffe;

/// A live trace's flows on one host, and what each drop clone stands for.
#[derive(Debug, Clone, Default)]
pub struct Armed {
    pub flows: Vec<FlowMod>,
    /// (table, what the cloned flow means), by the index in its userdata.
    pub drops: Vec<(u8, String)>,
    /// Drops that could not be watched (a priority tie, a conjunction), in words.
    pub unwatched: Vec<String>,
}

fn field_matches(m: &Match) -> Vec<FieldMatch> {
    m.fields
        .iter()
        .filter_map(|f| match f {
            MatchField::Field(fm) => Some(*fm),
            MatchField::Unknown(_) => None,
        })
        .collect()
}

fn mask_of(f: &FieldMatch) -> u128 {
    f.mask().unwrap_or_else(|| f.field().full_mask())
}

/// Whether some packet can match both `a` and `b` (as far as their common fields tell).
pub fn overlaps(a: &Match, b: &Match) -> bool {
    let bs = field_matches(b);
    field_matches(a).iter().all(|x| {
        bs.iter().filter(|y| y.field() == x.field()).all(|y| {
            let m = mask_of(x) & mask_of(y);
            x.value() & m == y.value() & m
        })
    })
}

/// `probe` narrowed by `flow`'s match: the probe's fields first (prerequisites before what
/// needs them), then the flow's others. None when no packet matches both, or when the flow has
/// fields this code does not know.
fn narrowed(probe: &Match, flow: &Match) -> Option<Match> {
    if flow
        .fields
        .iter()
        .any(|f| matches!(f, MatchField::Unknown(_)))
        || !overlaps(probe, flow)
    {
        return None;
    }
    let mine = field_matches(probe);
    let mut m = probe.clone();
    for f in field_matches(flow) {
        if let Some(p) = mine.iter().find(|p| p.field() == f.field()) {
            if mask_of(p) & mask_of(&f) == mask_of(&f) {
                continue; // The probe's is as exact.
            }
            // A mask the probe's does not cover: keep the flow's instead (rare: DSCP bits).
            return None;
        }
        m.fields.push(MatchField::Field(f));
    }
    Some(m)
}

fn observe(tag: u8, kind: u8, index: u16) -> Action {
    let i = index.to_be_bytes();
    Action::Controller2(Controller2::with_userdata(vec![tag, kind, i[0], i[1]]))
}

fn flow_mod(table: u8, priority: u16, m: Match, actions: Vec<Action>, tag: u8) -> FlowMod {
    let mut f = FlowMod::add(table, priority, m, vec![Instruction::ApplyActions(actions)]);
    f.cookie = cookie(tag);
    f.hard_timeout = HARD_TIMEOUT;
    f
}

/// The observation flows for the probe `p` tagged `tag` on a host whose compiled flows are `set`
/// (their owners `owners`) and whose tunnel port is `tunnel`.
pub fn arm(
    set: &weft_policy::FlowSet,
    owners: &BTreeMap<u64, String>,
    p: &ProbeFields,
    tag: u8,
    tunnel: Option<u32>,
) -> Armed {
    let probe = p.matching(tag);
    let mut a = Armed::default();
    // The output table: into the tunnel, copied and sent on; anywhere else, captured.
    if let Some(t) = tunnel {
        a.flows.push(flow_mod(
            layout::OUTPUT,
            OUTPUT_PRIORITY + 1,
            probe.clone().reg(layout::REG_OUT_PORT, t),
            vec![
                observe(tag, SENT_ON, 0),
                Action::OutputReg {
                    src: FieldRange::whole(Field::Reg(layout::REG_OUT_PORT)),
                    max_len: 0,
                },
            ],
            tag,
        ));
    }
    a.flows.push(flow_mod(
        layout::OUTPUT,
        OUTPUT_PRIORITY,
        probe.clone(),
        vec![observe(tag, CAPTURED, 0)],
        tag,
    ));
    // Every drop, cloned for the probe one priority up, where that ties with nothing.
    let mut clones: Vec<(u8, u16, Match)> = vec![];
    for (table, _) in layout::TABLES {
        if table == layout::OUTPUT {
            continue;
        }
        let in_table: Vec<&Flow> = set.flows.values().filter(|f| f.table == table).collect();
        for f in &in_table {
            let owner = owners.get(&f.cookie).map(String::as_str);
            let Some(by) = weft_policy::sim::drop_reason(table, f, owner) else {
                continue;
            };
            let Some(m) = narrowed(&probe, &f.match_) else {
                continue; // It cannot drop the probe.
            };
            if f.match_.get(Field::ConjId).is_some() {
                a.unwatched
                    .push(format!("{by}: a conjunction (table {table})"));
                continue;
            }
            let Some(priority) = f.priority.checked_add(1) else {
                a.unwatched
                    .push(format!("{by}: at the top priority (table {table})"));
                continue;
            };
            let tie = in_table
                .iter()
                .any(|g| g.priority == priority && overlaps(&g.match_, &m))
                || clones
                    .iter()
                    .any(|(t, pr, c)| *t == table && *pr == priority && overlaps(c, &m));
            if tie {
                a.unwatched.push(format!(
                    "{by}: a flow at priority {priority} of table {table} overlaps its clone"
                ));
                continue;
            }
            clones.push((table, priority, m.clone()));
            let index = a.drops.len() as u16;
            a.drops.push((table, by));
            a.flows.push(flow_mod(
                table,
                priority,
                m,
                vec![observe(tag, DROPPED, index)],
                tag,
            ));
        }
        // A table without a default: its miss, for the probe, at priority 0.
        let default = in_table
            .iter()
            .any(|f| f.priority == 0 && f.match_.fields.is_empty());
        if !default {
            if in_table
                .iter()
                .any(|g| g.priority == 0 && overlaps(&g.match_, &probe))
            {
                a.unwatched.push(format!(
                    "table {table}'s miss: a flow at priority 0 overlaps"
                ));
                continue;
            }
            let index = a.drops.len() as u16;
            a.drops.push((
                table,
                format!("no flow matched in table {table} (table miss)"),
            ));
            a.flows.push(flow_mod(
                table,
                0,
                probe.clone(),
                vec![observe(tag, DROPPED, index)],
                tag,
            ));
        }
    }
    a
}

/// What a packet-in of `armed`'s flows (tag `tag`) says, if it is one.
pub fn seen(pin: &PacketIn2, tag: u8, armed: &Armed) -> Option<Seen> {
    if pin.cookie != cookie(tag) {
        return None;
    }
    let u = pin.userdata.as_deref()?;
    if u.len() < 4 || u[0] != tag {
        return None;
    }
    let get = |f: Field| pin.match_.get(f).map_or(0, |m| m.value());
    match u[1] {
        CAPTURED | SENT_ON => Some(Seen::Output {
            port: get(Field::Reg(layout::REG_OUT_PORT)) as u32,
            tun_id: get(Field::TunnelId) as u64,
            tun_dst: Ipv4Addr::from(get(Field::TunIpv4Dst) as u32),
            sent_on: u[1] == SENT_ON,
        }),
        DROPPED => {
            let (table, by) = armed
                .drops
                .get(usize::from(u16::from_be_bytes([u[2], u[3]])))?;
            Some(Seen::Dropped {
                table: *table,
                by: by.clone(),
            })
        }
        _ => None,
    }
}

/// Installs `armed`'s flows.
pub async fn install(driver: &crate::ofdriver::OfDriver, armed: &Armed) -> Result<(), String> {
    driver
        .bundle(armed.flows.iter().cloned().map(Message::FlowMod).collect())
        .await
        .map_err(|e| format!("installing the observation flows: {e}"))
}

/// Removes the flows of the live trace tagged `tag` (else they go at their hard timeout).
pub async fn remove(driver: &crate::ofdriver::OfDriver, tag: u8) {
    let _ = driver
        .bundle(vec![Message::FlowMod(FlowMod::delete_by_cookie(
            cookie(tag),
            u64::MAX,
        ))])
        .await;
}

/// Injects `p` (tagged `tag`) at its input port, into table 0.
pub async fn inject(driver: &crate::ofdriver::OfDriver, p: &Packet, tag: u8) -> Result<(), String> {
    let frame = frame(p, tag).ok_or("only IPv4 tcp, udp and icmp are traced live")?;
    driver
        .packet_out(PacketOut::new(
            p.in_port,
            vec![Action::output(OFPP_TABLE)],
            frame,
        ))
        .await
        .map_err(|e| format!("injecting the probe: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_carry_their_tag_and_right_checksums() {
        let p = Packet::tcp(
            2,
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            5432,
        );
        let f = frame(&p, 9).unwrap();
        assert_eq!(f[15] >> 2, 9, "DSCP");
        assert_eq!(checksum(&f[14..34], 0), 0, "IPv4 header checksum");
        let mut pseudo = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 20];
        pseudo.extend_from_slice(&f[34..]);
        assert_eq!(checksum(&pseudo, 0), 0, "TCP checksum");
        assert_eq!(crate::verdict::five_tuple(&f).unwrap().3, Some(5432));
        let pf = ProbeFields::of(&p).unwrap();
        let a = arm(&Default::default(), &BTreeMap::new(), &pf, 9, Some(4));
        let o = &a.flows[1];
        assert_eq!((o.table_id, o.priority), (layout::OUTPUT, OUTPUT_PRIORITY));
        assert!(o.match_.to_string().contains("nw_tos=36"), "{}", o.match_);
        assert!(
            a.flows[0].match_.to_string().contains("reg7=0x4"),
            "{}",
            a.flows[0].match_
        );
        for f in &a.flows {
            assert_eq!(CookieKind::from_cookie(f.cookie), Some(CookieKind::Trace));
            assert_eq!(f.hard_timeout, HARD_TIMEOUT);
        }
        // No flows at all: every table's miss is watched.
        assert_eq!(a.drops.len(), layout::TABLES.len() - 1, "{:?}", a.drops);
    }

    #[test]
    fn drops_are_cloned_one_priority_up_unless_that_ties() {
        use weft_policy::layout::{cookie as ck, rule_priority};
        let p = Packet::tcp(
            2,
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            22,
        );
        let pf = ProbeFields::of(&p).unwrap();
        let tcp = |port: u16| {
            Match::new()
                .reg(layout::REG_DST_GROUP, 7)
                .eth_type(0x0800)
                .ip_proto(6)
                .with(Field::TcpDst, u128::from(port))
        };
        let deny = ck(CookieKind::Rule, "rule t:p:no-ssh");
        let allow = ck(CookieKind::Rule, "rule t:p:web");
        let mut set = weft_policy::FlowSet::default();
        let t = layout::INGRESS_RULES;
        set.insert_flow(Flow::new(t, rule_priority(5, false), deny, tcp(22), vec![]));
        // An allow one above, on another port: no tie.
        set.insert_flow(Flow::new(
            t,
            rule_priority(6, true),
            allow,
            tcp(80),
            vec![Instruction::GotoTable(layout::OUTPUT)],
        ));
        let owners = BTreeMap::from([
            (deny, "rule t:p:no-ssh".to_string()),
            (allow, "rule t:p:web".to_string()),
        ]);
        let a = arm(&set, &owners, &pf, 3, None);
        let c = a
            .flows
            .iter()
            .find(|f| f.table_id == t && f.priority == rule_priority(5, false) + 1)
            .expect("the deny's clone");
        let m = c.match_.to_string();
        assert!(
            m.contains("tp_dst=22") && m.contains("nw_tos=12") && m.contains("reg2=0x7"),
            "{m}"
        );
        assert!(
            a.drops.contains(&(t, "rule t:p:no-ssh (deny)".into())),
            "{:?}",
            a.drops
        );
        // The allow on port 22 one above: the clone would tie with it, so it is not made.
        set.insert_flow(Flow::new(
            t,
            rule_priority(6, true),
            allow,
            tcp(22),
            vec![Instruction::GotoTable(layout::OUTPUT)],
        ));
        let a = arm(&set, &owners, &pf, 3, None);
        assert!(
            !a.drops.iter().any(|(_, b)| b.contains("no-ssh")),
            "{:?}",
            a.drops
        );
        assert!(
            a.unwatched.iter().any(|u| u.contains("no-ssh")),
            "{:?}",
            a.unwatched
        );
        // A deny of another port is not the probe's: not cloned, not unwatched.
        let mut set = weft_policy::FlowSet::default();
        set.insert_flow(Flow::new(t, 110, deny, tcp(23), vec![]));
        let a = arm(&set, &owners, &pf, 3, None);
        assert!(
            !a.drops.iter().any(|(_, b)| b.contains("no-ssh")),
            "{:?}",
            a.drops
        );
        assert!(a.unwatched.is_empty(), "{:?}", a.unwatched);
    }

    #[test]
    fn the_reconciler_does_not_see_observation_flows() {
        let p = Packet::tcp(
            2,
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            5432,
        );
        let pf = ProbeFields::of(&p).unwrap();
        let o = arm(&Default::default(), &BTreeMap::new(), &pf, 3, None).flows[0].clone();
        let stats = |cookie: u64| ofproto::msg::multipart::FlowStats {
            table_id: o.table_id,
            duration_sec: 0,
            duration_nsec: 0,
            priority: o.priority,
            idle_timeout: 0,
            hard_timeout: o.hard_timeout,
            flags: 0,
            cookie,
            packet_count: 0,
            byte_count: 0,
            match_: o.match_.clone(),
            instructions: o.instructions.clone(),
        };
        let seen = weft_policy::FlowSet::from_switch(&[stats(o.cookie)], &[]);
        assert!(seen.flows.is_empty(), "{seen}");
        // The same flow with a stranger's cookie is the switch's drift.
        let seen = weft_policy::FlowSet::from_switch(&[stats(0x42)], &[]);
        assert_eq!(seen.flows.len(), 1);
    }
}

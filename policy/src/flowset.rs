//! A switch's contents as a set (flows keyed by table, priority and match; groups by id), in a
//! normal form so that what we compile and what the switch reports compare equal, and the diff
//! that turns one set into another.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::BytesMut;
use ofproto::action::{Action, FieldRange};
use ofproto::instruction::{Instruction, InstructionList};
use ofproto::msg::flow::{FlowModCommand, ANY, NO_BUFFER};
use ofproto::msg::group_meter::{
    meter_flags, Bucket, GroupModCommand, GroupType, MeterBand, MeterModCommand,
};
use ofproto::msg::multipart::{FlowStats, GroupDesc, MeterConfig};
use ofproto::msg::{FlowMod, GroupMod, Message, MeterMod};
use ofproto::oxm::{FieldMatch, Match, MatchField};

use crate::layout::CookieKind;

/// What identifies a flow on a switch: OpenFlow's (table, priority, match).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    pub table: u8,
    /// Highest priority first when iterating.
    pub neg_priority: i32,
    /// The normalised match, encoded: a total order that is cheap to compare.
    wire: Vec<u8>,
}

/// One flow in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub table: u8,
    pub priority: u16,
    pub cookie: u64,
    pub match_: Match,
    pub instructions: Vec<Instruction>,
}

impl Flow {
    pub fn new(
        table: u8,
        priority: u16,
        cookie: u64,
        match_: Match,
        instructions: Vec<Instruction>,
    ) -> Flow {
        Flow {
            table,
            priority,
            cookie,
            match_: normal_match(&match_),
            instructions: normal_instructions(instructions),
        }
    }

    pub fn key(&self) -> FlowKey {
        let mut buf = BytesMut::with_capacity(64);
        self.match_.encode(&mut buf);
        FlowKey {
            table: self.table,
            neg_priority: -i32::from(self.priority),
            wire: buf.to_vec(),
        }
    }

    /// The FLOW_MOD that installs (or replaces) this flow.
    pub fn add(&self) -> FlowMod {
        let mut fm = FlowMod::add(
            self.table,
            self.priority,
            self.match_.clone(),
            self.instructions.clone(),
        );
        fm.cookie = self.cookie;
        fm
    }

    /// The FLOW_MOD that removes exactly this flow.
    pub fn delete(&self) -> FlowMod {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id: self.table,
            command: FlowModCommand::DeleteStrict,
            idle_timeout: 0,
            hard_timeout: 0,
            priority: self.priority,
            buffer_id: NO_BUFFER,
            out_port: ANY,
            out_group: ANY,
            flags: 0,
            match_: self.match_.clone(),
            instructions: vec![],
        }
    }

    pub fn from_stats(s: &FlowStats) -> Flow {
        Flow::new(
            s.table_id,
            s.priority,
            s.cookie,
            s.match_.clone(),
            s.instructions.clone(),
        )
    }
}

impl fmt::Display for Flow {
    /// `ovs-ofctl dump-flows` style: `cookie=0x…, table=T, priority=P,MATCH actions=…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cookie={:#x}, table={}, priority={}",
            self.cookie, self.table, self.priority
        )?;
        let m = self.match_.to_string();
        if !m.is_empty() {
            write!(f, ",{m}")?;
        }
        write!(f, " actions={}", InstructionList(&self.instructions))
    }
}

/// One group in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub group_id: u32,
    pub group_type: GroupType,
    pub buckets: Vec<Bucket>,
}

impl Group {
    pub fn new(group_id: u32, group_type: GroupType, buckets: Vec<Bucket>) -> Group {
        Group {
            group_id,
            group_type,
            buckets: buckets
                .into_iter()
                .map(|b| Bucket {
                    actions: normal_actions(b.actions),
                    ..b
                })
                .collect(),
        }
    }

    pub fn from_desc(d: &GroupDesc) -> Group {
        Group::new(d.group_id, d.group_type, d.buckets.clone())
    }

    fn group_mod(&self, command: GroupModCommand) -> GroupMod {
        GroupMod {
            command,
            group_type: self.group_type,
            group_id: self.group_id,
            buckets: if command == GroupModCommand::Delete {
                vec![]
            } else {
                self.buckets.clone()
            },
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = match self.group_type {
            GroupType::All => "all".to_string(),
            GroupType::Select => "select".to_string(),
            GroupType::Indirect => "indirect".to_string(),
            GroupType::FastFailover => "ff".to_string(),
            GroupType::Unknown(n) => n.to_string(),
        };
        write!(f, "group_id={},type={t}", self.group_id)?;
        for b in &self.buckets {
            write!(
                f,
                ",bucket=actions={}",
                ofproto::action::ActionList(&b.actions)
            )?;
        }
        Ok(())
    }
}

/// A rate limit: one drop band, in kilobits per second (or packets per second: `pps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meter {
    pub meter_id: u32,
    /// The band's rate: kilobits per second, or packets per second when `pps`.
    pub rate_kbps: u32,
    /// Burst in kilobits (packets when `pps`); 0: the switch's default.
    pub burst_kb: u32,
    /// The rate counts packets (the verdict log's meter), not bits.
    pub pps: bool,
}

impl Meter {
    fn flags(&self) -> u16 {
        (if self.pps {
            meter_flags::PKTPS
        } else {
            meter_flags::KBPS
        }) | meter_flags::STATS
            | if self.burst_kb > 0 {
                meter_flags::BURST
            } else {
                0
            }
    }

    fn meter_mod(&self, command: MeterModCommand) -> MeterMod {
        MeterMod {
            command,
            flags: self.flags(),
            meter_id: self.meter_id,
            bands: if command == MeterModCommand::Delete {
                vec![]
            } else {
                vec![MeterBand::Drop {
                    rate: self.rate_kbps,
                    burst_size: self.burst_kb,
                }]
            },
        }
    }

    /// A meter as the switch reports it; None for one this pipeline would never make.
    pub fn from_config(c: &MeterConfig) -> Option<Meter> {
        match c.bands.as_slice() {
            [MeterBand::Drop { rate, burst_size }]
                if c.flags & (meter_flags::KBPS | meter_flags::PKTPS) != 0 =>
            {
                Some(Meter {
                    meter_id: c.meter_id,
                    rate_kbps: *rate,
                    burst_kb: if c.flags & meter_flags::BURST != 0 {
                        *burst_size
                    } else {
                        0
                    },
                    pps: c.flags & meter_flags::PKTPS != 0,
                })
            }
            _ => None,
        }
    }
}

impl fmt::Display for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "meter={},{},bands=type=drop,rate={}",
            self.meter_id,
            if self.pps { "pktps" } else { "kbps" },
            self.rate_kbps
        )?;
        if self.burst_kb > 0 {
            write!(f, ",burst_size={}", self.burst_kb)?;
        }
        Ok(())
    }
}

/// Everything the pipeline puts on one switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowSet {
    pub flows: BTreeMap<FlowKey, Flow>,
    pub groups: BTreeMap<u32, Group>,
    pub meters: BTreeMap<u32, Meter>,
}

impl FlowSet {
    pub fn insert_flow(&mut self, flow: Flow) {
        self.flows.insert(flow.key(), flow);
    }

    pub fn insert_group(&mut self, group: Group) {
        self.groups.insert(group.group_id, group);
    }

    pub fn insert_meter(&mut self, meter: Meter) {
        self.meters.insert(meter.meter_id, meter);
    }

    /// Adds the meters a switch reports. A meter of another shape (not one kbps drop band) is
    /// kept with rate 0, so that it differs from anything compiled and is replaced or removed.
    pub fn with_meters<'a>(mut self, meters: impl IntoIterator<Item = &'a MeterConfig>) -> FlowSet {
        for c in meters {
            let m = Meter::from_config(c).unwrap_or(Meter {
                meter_id: c.meter_id,
                rate_kbps: 0,
                burst_kb: 0,
                pps: false,
            });
            self.insert_meter(m);
        }
        self
    }

    /// The set a switch reports (flow stats and group descriptions). A live trace's observation
    /// flows ([`CookieKind::Trace`]) are left out: they expire on their own, and the
    /// reconciler must not take them for drift.
    pub fn from_switch<'a>(
        flows: impl IntoIterator<Item = &'a FlowStats>,
        groups: impl IntoIterator<Item = &'a GroupDesc>,
    ) -> FlowSet {
        let mut set = FlowSet::default();
        for s in flows {
            if CookieKind::from_cookie(s.cookie) == Some(CookieKind::Trace) {
                continue;
            }
            set.insert_flow(Flow::from_stats(s));
        }
        for g in groups {
            set.insert_group(Group::from_desc(g));
        }
        set
    }

    /// Flows per cookie kind, for metrics and `inspect`.
    pub fn count_by_kind(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for f in self.flows.values() {
            let k = CookieKind::from_cookie(f.cookie).map_or("foreign", CookieKind::name);
            *m.entry(k).or_insert(0) += 1;
        }
        m
    }
}

impl fmt::Display for FlowSet {
    /// One line per flow (table order, then priority high to low, then match), then groups.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for flow in self.flows.values() {
            writeln!(f, "{flow}")?;
        }
        for g in self.groups.values() {
            writeln!(f, "{g}")?;
        }
        for m in self.meters.values() {
            writeln!(f, "{m}")?;
        }
        Ok(())
    }
}

/// The changes that make a switch holding `current` hold `desired`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Groups to add or modify (before any flow that may point at them).
    pub groups_upsert: Vec<(Group, bool)>,
    /// Flows to add, or to replace (ADD replaces a flow with the same table, priority, match).
    pub flows_add: Vec<Flow>,
    pub flows_delete: Vec<Flow>,
    /// Groups to delete (after the flows that pointed at them are gone).
    pub groups_delete: Vec<Group>,
    /// Meters to add or modify, before the bundle (a switch takes no meter change in a bundle).
    pub meters_upsert: Vec<(Meter, bool)>,
    /// Meters to delete, after the bundle removed the flows that used them.
    pub meters_delete: Vec<Meter>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.groups_upsert.is_empty()
            && self.flows_add.is_empty()
            && self.flows_delete.is_empty()
            && self.groups_delete.is_empty()
            && self.meters_upsert.is_empty()
            && self.meters_delete.is_empty()
    }

    /// How many switch messages the diff is.
    pub fn len(&self) -> usize {
        self.groups_upsert.len()
            + self.flows_add.len()
            + self.flows_delete.len()
            + self.groups_delete.len()
            + self.meters_upsert.len()
            + self.meters_delete.len()
    }

    /// The meter changes to make before the bundle: adds and modifications.
    pub fn meters_before(&self) -> Vec<Message> {
        self.meters_upsert
            .iter()
            .map(|(m, exists)| {
                Message::MeterMod(m.meter_mod(if *exists {
                    MeterModCommand::Modify
                } else {
                    MeterModCommand::Add
                }))
            })
            .collect()
    }

    /// The meter changes to make after the bundle: deletions.
    pub fn meters_after(&self) -> Vec<Message> {
        self.meters_delete
            .iter()
            .map(|m| Message::MeterMod(m.meter_mod(MeterModCommand::Delete)))
            .collect()
    }

    /// The bundle's messages (flows and groups; meters go around it), in an order that is valid when applied one by one: groups that flows will
    /// point at first, then flow deletions and additions, then groups nothing points at any more.
    pub fn messages(&self) -> Vec<Message> {
        let mut out = Vec::with_capacity(self.len());
        for (g, exists) in &self.groups_upsert {
            let cmd = if *exists {
                GroupModCommand::Modify
            } else {
                GroupModCommand::Add
            };
            out.push(Message::GroupMod(g.group_mod(cmd)));
        }
        for f in &self.flows_delete {
            out.push(Message::FlowMod(f.delete()));
        }
        for f in &self.flows_add {
            out.push(Message::FlowMod(f.add()));
        }
        for g in &self.groups_delete {
            out.push(Message::GroupMod(g.group_mod(GroupModCommand::Delete)));
        }
        out
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (g, exists) in &self.groups_upsert {
            writeln!(f, "{} {g}", if *exists { "~" } else { "+" })?;
        }
        for fl in &self.flows_delete {
            writeln!(f, "- {fl}")?;
        }
        for fl in &self.flows_add {
            writeln!(f, "+ {fl}")?;
        }
        for g in &self.groups_delete {
            writeln!(f, "- {g}")?;
        }
        for (m, exists) in &self.meters_upsert {
            writeln!(f, "{} {m}", if *exists { "~" } else { "+" })?;
        }
        for m in &self.meters_delete {
            writeln!(f, "- {m}")?;
        }
        Ok(())
    }
}

/// What changes `current` into `desired`. Flows are equal when table, priority, match, cookie
/// and instructions are; a flow whose cookie or instructions differ is re-added (OpenFlow's ADD
/// replaces it in place, with no moment without a flow).
pub fn diff(current: &FlowSet, desired: &FlowSet) -> Diff {
    let mut d = Diff::default();
    for (id, g) in &desired.groups {
        match current.groups.get(id) {
            Some(have) if have == g => {}
            Some(_) => d.groups_upsert.push((g.clone(), true)),
            None => d.groups_upsert.push((g.clone(), false)),
        }
    }
    for (k, f) in &desired.flows {
        match current.flows.get(k) {
            Some(have) if have == f => {}
            _ => d.flows_add.push(f.clone()),
        }
    }
    for (k, f) in &current.flows {
        if !desired.flows.contains_key(k) {
            d.flows_delete.push(f.clone());
        }
    }
    for (id, g) in &current.groups {
        if !desired.groups.contains_key(id) {
            d.groups_delete.push(g.clone());
        }
    }
    for (id, m) in &desired.meters {
        match current.meters.get(id) {
            Some(have) if have == m => {}
            Some(_) => d.meters_upsert.push((*m, true)),
            None => d.meters_upsert.push((*m, false)),
        }
    }
    for (id, m) in &current.meters {
        if !desired.meters.contains_key(id) {
            d.meters_delete.push(*m);
        }
    }
    d
}

/// What changed in a desired set, key by key: flows added or replaced and flows removed (by
/// table, priority and match), groups and meters likewise (by id). [`crate::Incremental::apply`]
/// makes one; [`FlowSet::apply_delta`] replays it on a copy of the set, and [`diff_delta`] turns
/// it into the switch messages for the keys it touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub flows_upsert: BTreeMap<FlowKey, Flow>,
    pub flows_remove: BTreeSet<FlowKey>,
    pub groups_upsert: BTreeMap<u32, Group>,
    pub groups_remove: BTreeSet<u32>,
    pub meters_upsert: BTreeMap<u32, Meter>,
    pub meters_remove: BTreeSet<u32>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many keys it touches.
    pub fn len(&self) -> usize {
        self.flows_upsert.len()
            + self.flows_remove.len()
            + self.groups_upsert.len()
            + self.groups_remove.len()
            + self.meters_upsert.len()
            + self.meters_remove.len()
    }

    /// Adds a later delta to this one: applying the result is applying both, in order.
    pub fn then(&mut self, later: Delta) {
        for (k, f) in later.flows_upsert {
            self.flows_remove.remove(&k);
            self.flows_upsert.insert(k, f);
        }
        for k in later.flows_remove {
            self.flows_upsert.remove(&k);
            self.flows_remove.insert(k);
        }
        for (k, g) in later.groups_upsert {
            self.groups_remove.remove(&k);
            self.groups_upsert.insert(k, g);
        }
        for k in later.groups_remove {
            self.groups_upsert.remove(&k);
            self.groups_remove.insert(k);
        }
        for (k, m) in later.meters_upsert {
            self.meters_remove.remove(&k);
            self.meters_upsert.insert(k, m);
        }
        for k in later.meters_remove {
            self.meters_upsert.remove(&k);
            self.meters_remove.insert(k);
        }
    }
}

impl FlowSet {
    /// Makes this set what it becomes after `delta`.
    pub fn apply_delta(&mut self, delta: &Delta) {
        for k in &delta.flows_remove {
            self.flows.remove(k);
        }
        for (k, f) in &delta.flows_upsert {
            self.flows.insert(k.clone(), f.clone());
        }
        for id in &delta.groups_remove {
            self.groups.remove(id);
        }
        for (id, g) in &delta.groups_upsert {
            self.groups.insert(*id, g.clone());
        }
        for id in &delta.meters_remove {
            self.meters.remove(id);
        }
        for (id, m) in &delta.meters_upsert {
            self.meters.insert(*id, *m);
        }
    }
}

/// What changes `current` (the set a switch holds) for the keys `delta` touched in the desired
/// set: work in the size of the delta, not of the sets. Where `current` equalled the desired set
/// before the delta, this is [`diff`] of `current` and the desired set after it; elsewhere (a
/// switch that drifted, a bundle that failed) only a whole [`diff`] tells.
pub fn diff_delta(current: &FlowSet, delta: &Delta) -> Diff {
    let mut d = Diff::default();
    for (id, g) in &delta.groups_upsert {
        match current.groups.get(id) {
            Some(have) if have == g => {}
            Some(_) => d.groups_upsert.push((g.clone(), true)),
            None => d.groups_upsert.push((g.clone(), false)),
        }
    }
    for (k, f) in &delta.flows_upsert {
        match current.flows.get(k) {
            Some(have) if have == f => {}
            _ => d.flows_add.push(f.clone()),
        }
    }
    for k in &delta.flows_remove {
        if let Some(have) = current.flows.get(k) {
            d.flows_delete.push(have.clone());
        }
    }
    for id in &delta.groups_remove {
        if let Some(have) = current.groups.get(id) {
            d.groups_delete.push(have.clone());
        }
    }
    for (id, m) in &delta.meters_upsert {
        match current.meters.get(id) {
            Some(have) if have == m => {}
            Some(_) => d.meters_upsert.push((*m, true)),
            None => d.meters_upsert.push((*m, false)),
        }
    }
    for id in &delta.meters_remove {
        if let Some(have) = current.meters.get(id) {
            d.meters_delete.push(*have);
        }
    }
    d
}

/// Fields sorted, full masks made exact: the form OVS reports whatever order we sent.
fn normal_match(m: &Match) -> Match {
    let mut fields: Vec<MatchField> = m
        .fields
        .iter()
        .map(|f| match f {
            MatchField::Field(fm) => match fm.mask() {
                Some(mask) if mask == fm.field().full_mask() => MatchField::Field(
                    FieldMatch::exact(fm.field(), fm.value()).expect("value already fits"),
                ),
                _ => f.clone(),
            },
            MatchField::Unknown(_) => f.clone(),
        })
        .collect();
    fields.sort_by_key(sort_key);
    Match { fields }
}

fn sort_key(f: &MatchField) -> (u32, u128, u128) {
    match f {
        MatchField::Field(fm) => (
            // Field code order, the same for every run; ties (NXM/OXM twins) by value.
            {
                let (class, num) = fm.field().code();
                (u32::from(class) << 8) | u32::from(num)
            },
            fm.value(),
            fm.mask().unwrap_or(u128::MAX),
        ),
        MatchField::Unknown(r) => (r.header.to_u32(), 0, 0),
    }
}

fn normal_instructions(list: Vec<Instruction>) -> Vec<Instruction> {
    list.into_iter()
        .filter(|i| !matches!(i, Instruction::ApplyActions(a) if a.is_empty()))
        .map(|i| match i {
            Instruction::ApplyActions(a) => Instruction::ApplyActions(normal_actions(a)),
            Instruction::WriteActions(a) => Instruction::WriteActions(normal_actions(a)),
            other => other,
        })
        .collect()
}

/// One spelling per action: `load`/`reg_load2` of a whole field is `set_field`, field ranges
/// lose the NXM-or-OXM naming detail.
fn normal_actions(list: Vec<Action>) -> Vec<Action> {
    list.into_iter()
        .map(|a| match a {
            Action::Load2(MatchField::Field(fm)) if fm.mask().is_none() => {
                Action::SetField(MatchField::Field(fm))
            }
            Action::Load { dst, value }
                if dst.ofs() == 0 && usize::from(dst.n_bits()) == dst.field().width() * 8 =>
            {
                Action::set_field(dst.field(), value.into()).unwrap_or(Action::Load { dst, value })
            }
            Action::Move { src, dst } => Action::Move {
                src: plain_range(src),
                dst: plain_range(dst),
            },
            Action::OutputReg { src, max_len } => Action::OutputReg {
                src: plain_range(src),
                max_len,
            },
            other => other,
        })
        .collect()
}

fn plain_range(r: FieldRange) -> FieldRange {
    FieldRange::new(r.field(), r.ofs(), r.n_bits()).unwrap_or(r)
}

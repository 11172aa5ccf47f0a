//! MULTIPART_REQUEST / MULTIPART_REPLY: statistics and descriptions, with the `more` flag.

use bytes::{BufMut, BytesMut};

use super::basic::{Port, PORT_LEN};
use super::group_meter::{Bucket, GroupType, MeterBand};
use super::wire::{bad_len, fixed_str, put_fixed_str, Reader, BAD_REQUEST_LEN};
use crate::error::{DecodeError, ErrorCode};
use crate::header::code_table;
use crate::instruction::Instruction;
use crate::oxm::Match;
use crate::parse::{
    all, be_u16, be_u32, be_u64, be_u8, check, fail, many_all, need, take, In, PResult,
};
use nom::Parser;

code_table! {
    /// `ofp_multipart_type`.
    pub enum MultipartType: u16 {
        Desc = 0,
        Flow = 1,
        Aggregate = 2,
        Table = 3,
        PortStats = 4,
        Queue = 5,
        Group = 6,
        GroupDesc = 7,
        GroupFeatures = 8,
        Meter = 9,
        MeterConfig = 10,
        MeterFeatures = 11,
        TableFeatures = 12,
        PortDesc = 13,
        Experimenter = 0xffff,
    }
}

/// OFPMPF_REQ_MORE / OFPMPF_REPLY_MORE: more parts follow with the same xid.
pub const MORE: u16 = 1;

/// The body of OFPMP_FLOW and OFPMP_AGGREGATE requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStatsRequest {
    pub table_id: u8,
    pub out_port: u32,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub match_: Match,
}

impl FlowStatsRequest {
    /// Every flow of every table.
    pub fn all() -> Self {
        FlowStatsRequest {
            table_id: 0xff,
            out_port: 0xffff_ffff,
            out_group: 0xffff_ffff,
            cookie: 0,
            cookie_mask: 0,
            match_: Match::default(),
        }
    }

    fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(self.table_id);
        buf.put_bytes(0, 3);
        buf.put_u32(self.out_port);
        buf.put_u32(self.out_group);
        buf.put_u32(0);
        buf.put_u64(self.cookie);
        buf.put_u64(self.cookie_mask);
        self.match_.encode(buf);
    }
}

/// A multipart request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartRequest {
    Desc,
    Flow(FlowStatsRequest),
    Aggregate(FlowStatsRequest),
    Table,
    PortStats {
        port_no: u32,
    },
    Queue {
        port_no: u32,
        queue_id: u32,
    },
    Group {
        group_id: u32,
    },
    GroupDesc,
    GroupFeatures,
    Meter {
        meter_id: u32,
    },
    MeterConfig {
        meter_id: u32,
    },
    MeterFeatures,
    PortDesc,
    /// TABLE_FEATURES, EXPERIMENTER and unknown types: the body kept raw.
    Raw {
        typ: MultipartType,
        body: Vec<u8>,
    },
}

/// `ofp_desc`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Desc {
    pub mfr_desc: String,
    pub hw_desc: String,
    pub sw_desc: String,
    pub serial_num: String,
    pub dp_desc: String,
}

/// One flow of an OFPMP_FLOW reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowStats {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub match_: Match,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregateStats {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    pub table_id: u8,
    pub active_count: u32,
    pub lookup_count: u64,
    pub matched_count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortStats {
    pub port_no: u32,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_frame_err: u64,
    pub rx_over_err: u64,
    pub rx_crc_err: u64,
    pub collisions: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    pub port_no: u32,
    pub queue_id: u32,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStats {
    pub group_id: u32,
    pub ref_count: u32,
    pub packet_count: u64,
    pub byte_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    /// (packet_count, byte_count) per bucket.
    pub buckets: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDesc {
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupFeatures {
    pub types: u32,
    pub capabilities: u32,
    pub max_groups: [u32; 4],
    pub actions: [u32; 4],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterStats {
    pub meter_id: u32,
    pub flow_count: u32,
    pub packet_in_count: u64,
    pub byte_in_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    /// (packet_band_count, byte_band_count) per band.
    pub bands: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterConfig {
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterFeatures {
    pub max_meter: u32,
    pub band_types: u32,
    pub capabilities: u32,
    pub max_bands: u8,
    pub max_color: u8,
}

/// A multipart reply body (one part; see [`MORE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultipartReply {
    Desc(Desc),
    Flow(Vec<FlowStats>),
    Aggregate(AggregateStats),
    Table(Vec<TableStats>),
    PortStats(Vec<PortStats>),
    Queue(Vec<QueueStats>),
    Group(Vec<GroupStats>),
    GroupDesc(Vec<GroupDesc>),
    GroupFeatures(GroupFeatures),
    Meter(Vec<MeterStats>),
    MeterConfig(Vec<MeterConfig>),
    MeterFeatures(MeterFeatures),
    PortDesc(Vec<Port>),
    Raw { typ: MultipartType, body: Vec<u8> },
}

const BAD_MULTIPART: ErrorCode = ErrorCode::new(1, 2);

impl MultipartRequest {
    pub fn multipart_type(&self) -> MultipartType {
        match self {
            MultipartRequest::Desc => MultipartType::Desc,
            MultipartRequest::Flow(_) => MultipartType::Flow,
            MultipartRequest::Aggregate(_) => MultipartType::Aggregate,
            MultipartRequest::Table => MultipartType::Table,
            MultipartRequest::PortStats { .. } => MultipartType::PortStats,
            MultipartRequest::Queue { .. } => MultipartType::Queue,
            MultipartRequest::Group { .. } => MultipartType::Group,
            MultipartRequest::GroupDesc => MultipartType::GroupDesc,
            MultipartRequest::GroupFeatures => MultipartType::GroupFeatures,
            MultipartRequest::Meter { .. } => MultipartType::Meter,
            MultipartRequest::MeterConfig { .. } => MultipartType::MeterConfig,
            MultipartRequest::MeterFeatures => MultipartType::MeterFeatures,
            MultipartRequest::PortDesc => MultipartType::PortDesc,
            MultipartRequest::Raw { typ, .. } => *typ,
        }
    }

    pub(crate) fn decode(typ: MultipartType, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        all(r.rest(), |i| multipart_request(typ, i))
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        match self {
            MultipartRequest::Flow(f) | MultipartRequest::Aggregate(f) => f.encode(buf),
            MultipartRequest::PortStats { port_no } => {
                buf.put_u32(*port_no);
                buf.put_u32(0);
            }
            MultipartRequest::Queue { port_no, queue_id } => {
                buf.put_u32(*port_no);
                buf.put_u32(*queue_id);
            }
            MultipartRequest::Group { group_id: id }
            | MultipartRequest::Meter { meter_id: id }
            | MultipartRequest::MeterConfig { meter_id: id } => {
                buf.put_u32(*id);
                buf.put_u32(0);
            }
            MultipartRequest::Raw { body, .. } => buf.put_slice(body),
            MultipartRequest::Desc
            | MultipartRequest::Table
            | MultipartRequest::GroupDesc
            | MultipartRequest::GroupFeatures
            | MultipartRequest::MeterFeatures
            | MultipartRequest::PortDesc => {}
        }
    }
}

impl MultipartReply {
    pub fn multipart_type(&self) -> MultipartType {
        match self {
            MultipartReply::Desc(_) => MultipartType::Desc,
            MultipartReply::Flow(_) => MultipartType::Flow,
            MultipartReply::Aggregate(_) => MultipartType::Aggregate,
            MultipartReply::Table(_) => MultipartType::Table,
            MultipartReply::PortStats(_) => MultipartType::PortStats,
            MultipartReply::Queue(_) => MultipartType::Queue,
            MultipartReply::Group(_) => MultipartType::Group,
            MultipartReply::GroupDesc(_) => MultipartType::GroupDesc,
            MultipartReply::GroupFeatures(_) => MultipartType::GroupFeatures,
            MultipartReply::Meter(_) => MultipartType::Meter,
            MultipartReply::MeterConfig(_) => MultipartType::MeterConfig,
            MultipartReply::MeterFeatures(_) => MultipartType::MeterFeatures,
            MultipartReply::PortDesc(_) => MultipartType::PortDesc,
            MultipartReply::Raw { typ, .. } => *typ,
        }
    }

    /// Appends the entries of `other` (a later part of the same reply) to this one.
    /// Returns false if the two cannot be joined (different types, or single-entry replies).
    pub fn extend(&mut self, other: MultipartReply) -> bool {
        match (self, other) {
            (MultipartReply::Flow(a), MultipartReply::Flow(b)) => a.extend(b),
            (MultipartReply::Table(a), MultipartReply::Table(b)) => a.extend(b),
            (MultipartReply::PortStats(a), MultipartReply::PortStats(b)) => a.extend(b),
            (MultipartReply::Queue(a), MultipartReply::Queue(b)) => a.extend(b),
            (MultipartReply::Group(a), MultipartReply::Group(b)) => a.extend(b),
            (MultipartReply::GroupDesc(a), MultipartReply::GroupDesc(b)) => a.extend(b),
            (MultipartReply::Meter(a), MultipartReply::Meter(b)) => a.extend(b),
            (MultipartReply::MeterConfig(a), MultipartReply::MeterConfig(b)) => a.extend(b),
            (MultipartReply::PortDesc(a), MultipartReply::PortDesc(b)) => a.extend(b),
            (
                MultipartReply::Raw { typ: ta, body: a },
                MultipartReply::Raw { typ: tb, body: b },
            ) if *ta == tb => a.extend(b),
            _ => return false,
        }
        true
    }

    pub(crate) fn decode(typ: MultipartType, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        all(r.rest(), |i| multipart_reply(typ, i))
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        match self {
            MultipartReply::Desc(d) => {
                put_fixed_str(buf, &d.mfr_desc, 256);
                put_fixed_str(buf, &d.hw_desc, 256);
                put_fixed_str(buf, &d.sw_desc, 256);
                put_fixed_str(buf, &d.serial_num, 32);
                put_fixed_str(buf, &d.dp_desc, 256);
            }
            MultipartReply::Flow(v) => {
                for f in v {
                    let len = 48 + f.match_.encoded_len() + Instruction::list_len(&f.instructions);
                    buf.put_u16(len as u16);
                    buf.put_u8(f.table_id);
                    buf.put_u8(0);
                    buf.put_u32(f.duration_sec);
                    buf.put_u32(f.duration_nsec);
                    buf.put_u16(f.priority);
                    buf.put_u16(f.idle_timeout);
                    buf.put_u16(f.hard_timeout);
                    buf.put_u16(f.flags);
                    buf.put_u32(0);
                    buf.put_u64(f.cookie);
                    buf.put_u64(f.packet_count);
                    buf.put_u64(f.byte_count);
                    f.match_.encode(buf);
                    Instruction::encode_list(&f.instructions, buf);
                }
            }
            MultipartReply::Aggregate(a) => {
                buf.put_u64(a.packet_count);
                buf.put_u64(a.byte_count);
                buf.put_u32(a.flow_count);
                buf.put_u32(0);
            }
            MultipartReply::Table(v) => {
                for t in v {
                    buf.put_u8(t.table_id);
                    buf.put_bytes(0, 3);
                    buf.put_u32(t.active_count);
                    buf.put_u64(t.lookup_count);
                    buf.put_u64(t.matched_count);
                }
            }
            MultipartReply::PortStats(v) => {
                for p in v {
                    buf.put_u32(p.port_no);
                    buf.put_u32(0);
                    for c in [
                        p.rx_packets,
                        p.tx_packets,
                        p.rx_bytes,
                        p.tx_bytes,
                        p.rx_dropped,
                        p.tx_dropped,
                        p.rx_errors,
                        p.tx_errors,
                        p.rx_frame_err,
                        p.rx_over_err,
                        p.rx_crc_err,
                        p.collisions,
                    ] {
                        buf.put_u64(c);
                    }
                    buf.put_u32(p.duration_sec);
                    buf.put_u32(p.duration_nsec);
                }
            }
            MultipartReply::Queue(v) => {
                for q in v {
                    buf.put_u32(q.port_no);
                    buf.put_u32(q.queue_id);
                    buf.put_u64(q.tx_bytes);
                    buf.put_u64(q.tx_packets);
                    buf.put_u64(q.tx_errors);
                    buf.put_u32(q.duration_sec);
                    buf.put_u32(q.duration_nsec);
                }
            }
            MultipartReply::Group(v) => {
                for g in v {
                    buf.put_u16((40 + 16 * g.buckets.len()) as u16);
                    buf.put_u16(0);
                    buf.put_u32(g.group_id);
                    buf.put_u32(g.ref_count);
                    buf.put_u32(0);
                    buf.put_u64(g.packet_count);
                    buf.put_u64(g.byte_count);
                    buf.put_u32(g.duration_sec);
                    buf.put_u32(g.duration_nsec);
                    for (p, b) in &g.buckets {
                        buf.put_u64(*p);
                        buf.put_u64(*b);
                    }
                }
            }
            MultipartReply::GroupDesc(v) => {
                for g in v {
                    let len = 8 + g.buckets.iter().map(Bucket::encoded_len).sum::<usize>();
                    buf.put_u16(len as u16);
                    buf.put_u8(g.group_type.into());
                    buf.put_u8(0);
                    buf.put_u32(g.group_id);
                    for b in &g.buckets {
                        b.encode(buf);
                    }
                }
            }
            MultipartReply::GroupFeatures(g) => {
                buf.put_u32(g.types);
                buf.put_u32(g.capabilities);
                for x in g.max_groups.iter().chain(g.actions.iter()) {
                    buf.put_u32(*x);
                }
            }
            MultipartReply::Meter(v) => {
                for m in v {
                    buf.put_u32(m.meter_id);
                    buf.put_u16((40 + 16 * m.bands.len()) as u16);
                    buf.put_bytes(0, 6);
                    buf.put_u32(m.flow_count);
                    buf.put_u64(m.packet_in_count);
                    buf.put_u64(m.byte_in_count);
                    buf.put_u32(m.duration_sec);
                    buf.put_u32(m.duration_nsec);
                    for (p, b) in &m.bands {
                        buf.put_u64(*p);
                        buf.put_u64(*b);
                    }
                }
            }
            MultipartReply::MeterConfig(v) => {
                for m in v {
                    let len = 8 + m.bands.iter().map(MeterBand::encoded_len).sum::<usize>();
                    buf.put_u16(len as u16);
                    buf.put_u16(m.flags);
                    buf.put_u32(m.meter_id);
                    for b in &m.bands {
                        b.encode(buf);
                    }
                }
            }
            MultipartReply::MeterFeatures(f) => {
                buf.put_u32(f.max_meter);
                buf.put_u32(f.band_types);
                buf.put_u32(f.capabilities);
                buf.put_u8(f.max_bands);
                buf.put_u8(f.max_color);
                buf.put_u16(0);
            }
            MultipartReply::PortDesc(v) => {
                for p in v {
                    p.encode(buf);
                }
            }
            MultipartReply::Raw { body, .. } => buf.put_slice(body),
        }
    }
}

/// One `ofp_flow_stats`: its length (at least the 56-byte fixed part), the fixed part, the
/// match, the instructions.
fn flow_stats(i: In<'_>) -> PResult<'_, FlowStats> {
    check("ofp_flow_stats", 2, BAD_REQUEST_LEN, i)?;
    let (_, len) = be_u16(i)?;
    let len = len as usize;
    if len < 56 {
        return fail(bad_len(
            "ofp_flow_stats",
            len,
            "shorter than the fixed part",
        ));
    }
    check("ofp_flow_stats", len, BAD_REQUEST_LEN, i)?;
    let (rest, e) = take(len)(i)?;
    let (e, _) = take(2)(e)?;
    let (e, table_id) = be_u8(e)?;
    let (e, _) = take(1)(e)?;
    let (e, duration_sec) = be_u32(e)?;
    let (e, duration_nsec) = be_u32(e)?;
    let (e, priority) = be_u16(e)?;
    let (e, idle_timeout) = be_u16(e)?;
    let (e, hard_timeout) = be_u16(e)?;
    let (e, flags) = be_u16(e)?;
    let (e, _) = take(4)(e)?;
    let (e, cookie) = be_u64(e)?;
    let (e, packet_count) = be_u64(e)?;
    let (e, byte_count) = be_u64(e)?;
    let (e, match_) = crate::oxm::ofp_match(e)?;
    let (_, instructions) = crate::instruction::instruction_list(e)?;
    Ok((
        rest,
        FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie,
            packet_count,
            byte_count,
            match_,
            instructions,
        },
    ))
}

/// A length-prefixed entry (length in its first two bytes, at least `min`): the entry and
/// what follows it.
fn entry<'a>(what: &'static str, min: usize, i: In<'a>) -> PResult<'a, In<'a>> {
    check(what, 2, BAD_REQUEST_LEN, i)?;
    let (_, len) = be_u16(i)?;
    let len = len as usize;
    if len < min {
        return fail(bad_len(what, len, "shorter than the fixed part"));
    }
    check(what, len, BAD_REQUEST_LEN, i)?;
    take(len)(i)
}

/// One `ofp_group_desc`: length, type, group id, buckets.
fn group_desc(i: In<'_>) -> PResult<'_, GroupDesc> {
    let (rest, e) = entry("ofp_group_desc", 8, i)?;
    let (e, _) = take(2)(e)?;
    let (e, group_type) = be_u8(e)?;
    let (e, _) = take(1)(e)?;
    let (e, group_id) = be_u32(e)?;
    let (_, buckets) = many_all(super::group_meter::bucket, 32)(e)?;
    Ok((
        rest,
        GroupDesc {
            group_type: GroupType::from(group_type),
            group_id,
            buckets,
        },
    ))
}

/// One `ofp_meter_config`: length, flags, meter id, bands.
fn meter_config(i: In<'_>) -> PResult<'_, MeterConfig> {
    let (rest, e) = entry("ofp_meter_config", 8, i)?;
    let (e, _) = take(2)(e)?;
    let (e, flags) = be_u16(e)?;
    let (e, meter_id) = be_u32(e)?;
    let (_, bands) = many_all(super::group_meter::meter_band, 16)(e)?;
    Ok((
        rest,
        MeterConfig {
            flags,
            meter_id,
            bands,
        },
    ))
}

/// `ofp_flow_stats_request` (FLOW and AGGREGATE): bytes after the match are ignored, as before.
fn flow_stats_request(i: In<'_>) -> PResult<'_, FlowStatsRequest> {
    check("ofp_flow_stats_request", 32, BAD_REQUEST_LEN, i)?;
    let (i, table_id) = be_u8(i)?;
    let (i, _) = take(3)(i)?;
    let (i, out_port) = be_u32(i)?;
    let (i, out_group) = be_u32(i)?;
    let (i, _) = take(4)(i)?;
    let (i, cookie) = be_u64(i)?;
    let (i, cookie_mask) = be_u64(i)?;
    let (i, match_) = crate::oxm::ofp_match(i)?;
    Ok((
        &i[i.len()..],
        FlowStatsRequest {
            table_id,
            out_port,
            out_group,
            cookie,
            cookie_mask,
            match_,
        },
    ))
}

/// A multipart request's body by its type; the body must be used up.
fn multipart_request(typ: MultipartType, i: In<'_>) -> PResult<'_, MultipartRequest> {
    use MultipartType as T;
    const WHAT: &str = "ofp_multipart_request";
    // An id and 4 bytes of padding (port stats, group, meter).
    let id_pad = |i| -> PResult<'_, u32> {
        check(WHAT, 8, BAD_REQUEST_LEN, i)?;
        let (i, id) = be_u32(i)?;
        let (i, _) = take(4)(i)?;
        Ok((i, id))
    };
    let (i, req) = match typ {
        T::Desc => (i, MultipartRequest::Desc),
        T::Flow => {
            let (i, f) = flow_stats_request(i)?;
            (i, MultipartRequest::Flow(f))
        }
        T::Aggregate => {
            let (i, f) = flow_stats_request(i)?;
            (i, MultipartRequest::Aggregate(f))
        }
        T::Table => (i, MultipartRequest::Table),
        T::PortStats => {
            let (i, port_no) = id_pad(i)?;
            (i, MultipartRequest::PortStats { port_no })
        }
        T::Queue => {
            check(WHAT, 8, BAD_REQUEST_LEN, i)?;
            let (i, port_no) = be_u32(i)?;
            let (i, queue_id) = be_u32(i)?;
            (i, MultipartRequest::Queue { port_no, queue_id })
        }
        T::Group => {
            let (i, group_id) = id_pad(i)?;
            (i, MultipartRequest::Group { group_id })
        }
        T::GroupDesc => (i, MultipartRequest::GroupDesc),
        T::GroupFeatures => (i, MultipartRequest::GroupFeatures),
        T::Meter => {
            let (i, meter_id) = id_pad(i)?;
            (i, MultipartRequest::Meter { meter_id })
        }
        T::MeterConfig => {
            let (i, meter_id) = id_pad(i)?;
            (i, MultipartRequest::MeterConfig { meter_id })
        }
        T::MeterFeatures => (i, MultipartRequest::MeterFeatures),
        T::PortDesc => (i, MultipartRequest::PortDesc),
        T::TableFeatures | T::Experimenter | T::Unknown(_) => (
            &i[i.len()..],
            MultipartRequest::Raw {
                typ,
                body: i.to_vec(),
            },
        ),
    };
    if !i.is_empty() {
        return fail(bad_len(WHAT, i.len(), "this multipart type has no body"));
    }
    Ok((i, req))
}

/// Fixed-size entries, back to back, until the input is used up.
fn fixed_entries<'a, T>(
    what: &'static str,
    size: usize,
    item: impl Fn(In<'a>) -> PResult<'a, T>,
) -> impl Fn(In<'a>) -> PResult<'a, Vec<T>> {
    many_all(
        move |i| {
            check(what, size, BAD_REQUEST_LEN, i)?;
            item(i)
        },
        size,
    )
}

/// Pairs of 64-bit counters until the input is used up (group buckets, meter bands).
fn counter_pairs(i: In<'_>) -> PResult<'_, Vec<(u64, u64)>> {
    many_all(|i| (be_u64, be_u64).parse(i), 16)(i)
}

fn table_stats(i: In<'_>) -> PResult<'_, TableStats> {
    let (i, (table_id, _, active_count, lookup_count, matched_count)) =
        (be_u8, take(3), be_u32, be_u64, be_u64).parse(i)?;
    Ok((
        i,
        TableStats {
            table_id,
            active_count,
            lookup_count,
            matched_count,
        },
    ))
}

fn port_stats(i: In<'_>) -> PResult<'_, PortStats> {
    let (i, (port_no, _)) = (be_u32, take(4)).parse(i)?;
    let (i, c) = nom::multi::count(be_u64, 12).parse(i)?;
    let (i, (duration_sec, duration_nsec)) = (be_u32, be_u32).parse(i)?;
    Ok((
        i,
        PortStats {
            port_no,
            rx_packets: c[0],
            tx_packets: c[1],
            rx_bytes: c[2],
            tx_bytes: c[3],
            rx_dropped: c[4],
            tx_dropped: c[5],
            rx_errors: c[6],
            tx_errors: c[7],
            rx_frame_err: c[8],
            rx_over_err: c[9],
            rx_crc_err: c[10],
            collisions: c[11],
            duration_sec,
            duration_nsec,
        },
    ))
}

fn queue_stats(i: In<'_>) -> PResult<'_, QueueStats> {
    let (i, (port_no, queue_id, tx_bytes, tx_packets, tx_errors, duration_sec, duration_nsec)) =
        (be_u32, be_u32, be_u64, be_u64, be_u64, be_u32, be_u32).parse(i)?;
    Ok((
        i,
        QueueStats {
            port_no,
            queue_id,
            tx_bytes,
            tx_packets,
            tx_errors,
            duration_sec,
            duration_nsec,
        },
    ))
}

/// One `ofp_group_stats`: length-prefixed, then a counter pair per bucket.
fn group_stats(i: In<'_>) -> PResult<'_, GroupStats> {
    let (rest, e) = entry("ofp_group_stats", 40, i)?;
    let (e, (_, group_id, ref_count, _, packet_count, byte_count, duration_sec, duration_nsec)) = (
        take(4),
        be_u32,
        be_u32,
        take(4),
        be_u64,
        be_u64,
        be_u32,
        be_u32,
    )
        .parse(e)?;
    let (_, buckets) = counter_pairs(e)?;
    Ok((
        rest,
        GroupStats {
            group_id,
            ref_count,
            packet_count,
            byte_count,
            duration_sec,
            duration_nsec,
            buckets,
        },
    ))
}

/// One `ofp_meter_stats`: its length sits after the meter id; then a counter pair per band.
fn meter_stats(i: In<'_>) -> PResult<'_, MeterStats> {
    const WHAT: &str = "ofp_meter_stats";
    check(WHAT, 6, BAD_REQUEST_LEN, i)?;
    let (_, (_, len)) = (take(4), be_u16).parse(i)?;
    let len = len as usize;
    if len < 40 {
        return fail(bad_len(WHAT, len, "shorter than the fixed part"));
    }
    check(WHAT, len, BAD_REQUEST_LEN, i)?;
    let (rest, e) = take(len)(i)?;
    let (e, (meter_id, _, flow_count, packet_in_count, byte_in_count, duration_sec, duration_nsec)) =
        (be_u32, take(8), be_u32, be_u64, be_u64, be_u32, be_u32).parse(e)?;
    let (_, bands) = counter_pairs(e)?;
    Ok((
        rest,
        MeterStats {
            meter_id,
            flow_count,
            packet_in_count,
            byte_in_count,
            duration_sec,
            duration_nsec,
            bands,
        },
    ))
}

/// A multipart reply's body by its type; bytes left after it are refused.
fn multipart_reply(typ: MultipartType, i: In<'_>) -> PResult<'_, MultipartReply> {
    use MultipartType as T;
    let len = BAD_REQUEST_LEN;
    let string = |n: usize| take(n).map(fixed_str);
    let (i, reply) = match typ {
        T::Desc => {
            let (i, (mfr_desc, hw_desc, sw_desc, serial_num, dp_desc)) = need(
                "ofp_desc",
                1056,
                len,
                (
                    string(256),
                    string(256),
                    string(256),
                    string(32),
                    string(256),
                ),
            )
            .parse(i)?;
            (
                i,
                MultipartReply::Desc(Desc {
                    mfr_desc,
                    hw_desc,
                    sw_desc,
                    serial_num,
                    dp_desc,
                }),
            )
        }
        T::Flow => {
            let (i, v) = many_all(flow_stats, 128)(i)?;
            (i, MultipartReply::Flow(v))
        }
        T::Aggregate => {
            let (i, (packet_count, byte_count, flow_count, _)) = need(
                "ofp_aggregate_stats_reply",
                24,
                len,
                (be_u64, be_u64, be_u32, take(4)),
            )
            .parse(i)?;
            (
                i,
                MultipartReply::Aggregate(AggregateStats {
                    packet_count,
                    byte_count,
                    flow_count,
                }),
            )
        }
        T::Table => {
            let (i, v) = fixed_entries("ofp_table_stats", 24, table_stats)(i)?;
            (i, MultipartReply::Table(v))
        }
        T::PortStats => {
            let (i, v) = fixed_entries("ofp_port_stats", 112, port_stats)(i)?;
            (i, MultipartReply::PortStats(v))
        }
        T::Queue => {
            let (i, v) = fixed_entries("ofp_queue_stats", 40, queue_stats)(i)?;
            (i, MultipartReply::Queue(v))
        }
        T::Group => {
            let (i, v) = many_all(group_stats, 40)(i)?;
            (i, MultipartReply::Group(v))
        }
        T::GroupDesc => {
            let (i, v) = many_all(group_desc, 64)(i)?;
            (i, MultipartReply::GroupDesc(v))
        }
        T::GroupFeatures => {
            let word4 = || nom::multi::count(be_u32, 4).map(|v| [v[0], v[1], v[2], v[3]]);
            let (i, (types, capabilities, max_groups, actions)) = need(
                "ofp_group_features",
                40,
                len,
                (be_u32, be_u32, word4(), word4()),
            )
            .parse(i)?;
            (
                i,
                MultipartReply::GroupFeatures(GroupFeatures {
                    types,
                    capabilities,
                    max_groups,
                    actions,
                }),
            )
        }
        T::Meter => {
            let (i, v) = many_all(meter_stats, 40)(i)?;
            (i, MultipartReply::Meter(v))
        }
        T::MeterConfig => {
            let (i, v) = many_all(meter_config, 32)(i)?;
            (i, MultipartReply::MeterConfig(v))
        }
        T::MeterFeatures => {
            let (i, (max_meter, band_types, capabilities, max_bands, max_color, _)) = need(
                "ofp_meter_features",
                16,
                len,
                (be_u32, be_u32, be_u32, be_u8, be_u8, take(2)),
            )
            .parse(i)?;
            (
                i,
                MultipartReply::MeterFeatures(MeterFeatures {
                    max_meter,
                    band_types,
                    capabilities,
                    max_bands,
                    max_color,
                }),
            )
        }
        T::PortDesc => {
            let (i, v) = fixed_entries("ofp_port", PORT_LEN, super::basic::port)(i)?;
            (i, MultipartReply::PortDesc(v))
        }
        T::TableFeatures | T::Experimenter | T::Unknown(_) => (
            &i[i.len()..],
            MultipartReply::Raw {
                typ,
                body: i.to_vec(),
            },
        ),
    };
    if !i.is_empty() {
        return fail(DecodeError::BadLength {
            what: "ofp_multipart_reply",
            len: i.len(),
            why: "bytes left after the body",
            ofp: BAD_MULTIPART,
        });
    }
    Ok((i, reply))
}

//! GROUP_MOD with its buckets, and METER_MOD with its bands (also used by the multipart
//! group-description and meter-config replies).

use bytes::{BufMut, BytesMut};

use nom::combinator::rest;
use nom::Parser;

use super::wire::{Reader, BAD_REQUEST_LEN};
use crate::action::Action;
use crate::error::{DecodeError, ErrorCode};
use crate::header::code_table;
use crate::parse::{
    all, be_u16, be_u32, be_u8, bytes, fail, lift, many_all, need, take, In, PResult,
};

code_table! {
    /// `ofp_group_mod_command`.
    pub enum GroupModCommand: u16 {
        Add = 0,
        Modify = 1,
        Delete = 2,
    }
}

code_table! {
    /// `ofp_group_type`.
    pub enum GroupType: u8 {
        All = 0,
        Select = 1,
        Indirect = 2,
        FastFailover = 3,
    }
}

/// `OFPG_ALL`: every group (for delete and stats).
pub const GROUP_ALL: u32 = 0xffff_fffc;

/// A group's bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bucket {
    pub weight: u16,
    pub watch_port: u32,
    pub watch_group: u32,
    pub actions: Vec<Action>,
}

impl Bucket {
    /// A bucket of an `all` or `indirect` group: no weight, nothing watched.
    pub fn new(actions: Vec<Action>) -> Self {
        Bucket {
            weight: 0,
            watch_port: 0xffff_ffff,
            watch_group: 0xffff_ffff,
            actions,
        }
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u16((16 + Action::list_len(&self.actions)) as u16);
        buf.put_u16(self.weight);
        buf.put_u32(self.watch_port);
        buf.put_u32(self.watch_group);
        buf.put_u32(0);
        Action::encode_list(&self.actions, buf);
    }

    pub(crate) fn encoded_len(&self) -> usize {
        16 + Action::list_len(&self.actions)
    }
}

/// OFPT_GROUP_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupMod {
    pub command: GroupModCommand,
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

impl GroupMod {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        all(r.rest(), group_mod)
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u16(self.command.into());
        buf.put_u8(self.group_type.into());
        buf.put_u8(0);
        buf.put_u32(self.group_id);
        for b in &self.buckets {
            b.encode(buf);
        }
    }
}

code_table! {
    /// `ofp_meter_mod_command`.
    pub enum MeterModCommand: u16 {
        Add = 0,
        Modify = 1,
        Delete = 2,
    }
}

/// `ofp_meter_flags` bits.
pub mod meter_flags {
    pub const KBPS: u16 = 1;
    pub const PKTPS: u16 = 2;
    pub const BURST: u16 = 4;
    pub const STATS: u16 = 8;
    pub const NAMES: [(u16, &str); 4] = [
        (KBPS, "kbps"),
        (PKTPS, "pktps"),
        (BURST, "burst"),
        (STATS, "stats"),
    ];
}

/// `OFPM_ALL`.
pub const METER_ALL: u32 = 0xffff_ffff;

/// A meter band.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MeterBand {
    Drop {
        rate: u32,
        burst_size: u32,
    },
    DscpRemark {
        rate: u32,
        burst_size: u32,
        prec_level: u8,
    },
    Experimenter {
        rate: u32,
        burst_size: u32,
        experimenter: u32,
        data: Vec<u8>,
    },
}

const METER_MOD_FAILED: u16 = 12;

impl MeterBand {
    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        match self {
            MeterBand::Drop { rate, burst_size } => {
                buf.put_u16(1);
                buf.put_u16(16);
                buf.put_u32(*rate);
                buf.put_u32(*burst_size);
                buf.put_u32(0);
            }
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            } => {
                buf.put_u16(2);
                buf.put_u16(16);
                buf.put_u32(*rate);
                buf.put_u32(*burst_size);
                buf.put_u8(*prec_level);
                buf.put_bytes(0, 3);
            }
            MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
                data,
            } => {
                let len = (16 + data.len()).div_ceil(8) * 8;
                buf.put_u16(0xffff);
                buf.put_u16(len as u16);
                buf.put_u32(*rate);
                buf.put_u32(*burst_size);
                buf.put_u32(*experimenter);
                buf.put_slice(data);
                buf.put_bytes(0, len - 16 - data.len());
            }
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        match self {
            MeterBand::Experimenter { data, .. } => (16 + data.len()).div_ceil(8) * 8,
            _ => 16,
        }
    }
}

/// OFPT_METER_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MeterMod {
    pub command: MeterModCommand,
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

/// Checks meter flags as OVS does: known bits only, not both kbps and pktps.
pub(crate) fn check_meter_flags(flags: u16) -> Result<(), DecodeError> {
    if flags & !0xf != 0 || (flags & meter_flags::KBPS != 0 && flags & meter_flags::PKTPS != 0) {
        return Err(DecodeError::Invalid {
            what: "ofp_meter_mod",
            why: format!("bad flags {flags:#x}: unknown bits, or both kbps and pktps"),
            ofp: ErrorCode::new(METER_MOD_FAILED, 5), // OFPMMFC_BAD_FLAGS
        });
    }
    Ok(())
}

impl MeterMod {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        all(r.rest(), meter_mod)
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u16(self.command.into());
        buf.put_u16(self.flags);
        buf.put_u32(self.meter_id);
        for b in &self.bands {
            b.encode(buf);
        }
    }
}

/// One `ofp_bucket`: its length (a multiple of 8, at least 16), then its actions.
pub(crate) fn bucket(i: In<'_>) -> PResult<'_, Bucket> {
    let (_, len) = need("ofp_bucket", 2, BAD_REQUEST_LEN, be_u16).parse(i)?;
    let len = len as usize;
    if len < 16 || !len.is_multiple_of(8) {
        return fail(DecodeError::BadLength {
            what: "ofp_bucket",
            len,
            why: "must be a multiple of 8, at least 16",
            ofp: ErrorCode::new(6, 12), // OFPGMFC_BAD_BUCKET
        });
    }
    let (rest, b) = bytes("ofp_bucket", len, BAD_REQUEST_LEN).parse(i)?;
    let (actions, (_, weight, watch_port, watch_group, _)) =
        (take(2usize), be_u16, be_u32, be_u32, take(4usize)).parse(b)?;
    let (_, actions) = crate::action::action_list(actions)?;
    Ok((
        rest,
        Bucket {
            weight,
            watch_port,
            watch_group,
            actions,
        },
    ))
}

fn group_mod(i: In<'_>) -> PResult<'_, GroupMod> {
    let (i, (command, group_type, _, group_id)) = need(
        "ofp_group_mod",
        8,
        BAD_REQUEST_LEN,
        (
            be_u16.map(GroupModCommand::from),
            be_u8.map(GroupType::from),
            take(1usize),
            be_u32,
        ),
    )
    .parse(i)?;
    if let GroupModCommand::Unknown(c) = command {
        return fail(DecodeError::Invalid {
            what: "ofp_group_mod",
            why: format!("unknown command {c}"),
            ofp: ErrorCode::new(6, 11), // OFPGMFC_BAD_COMMAND
        });
    }
    if let GroupType::Unknown(t) = group_type {
        return fail(DecodeError::Invalid {
            what: "ofp_group_mod",
            why: format!("unknown group type {t}"),
            ofp: ErrorCode::new(6, 10), // OFPGMFC_BAD_TYPE
        });
    }
    let (i, buckets) = many_all(bucket, 32)(i)?;
    Ok((
        i,
        GroupMod {
            command,
            group_type,
            group_id,
            buckets,
        },
    ))
}

/// One `ofp_meter_band`: type and length (a multiple of 8, at least 16), rate, burst.
pub(crate) fn meter_band(i: In<'_>) -> PResult<'_, MeterBand> {
    let (_, (typ, len)) = need("ofp_meter_band", 4, BAD_REQUEST_LEN, (be_u16, be_u16)).parse(i)?;
    let len = len as usize;
    if len < 16 || !len.is_multiple_of(8) {
        return fail(DecodeError::BadLength {
            what: "ofp_meter_band",
            len,
            why: "must be a multiple of 8, at least 16",
            ofp: ErrorCode::new(METER_MOD_FAILED, 8), // OFPMMFC_BAD_BAND
        });
    }
    let (rest_, b) = bytes("ofp_meter_band", len, BAD_REQUEST_LEN).parse(i)?;
    let (b, (_, rate, burst_size)) = (take(4usize), be_u32, be_u32).parse(b)?;
    let band = match typ {
        1 => MeterBand::Drop { rate, burst_size },
        2 => MeterBand::DscpRemark {
            rate,
            burst_size,
            prec_level: be_u8(b)?.1,
        },
        0xffff => {
            let (data, experimenter) = be_u32(b)?;
            let (_, data) = rest(data)?;
            MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
                data: data.to_vec(),
            }
        }
        other => {
            return fail(DecodeError::Invalid {
                what: "ofp_meter_band",
                why: format!("unknown band type {other}"),
                ofp: ErrorCode::new(METER_MOD_FAILED, 8), // OFPMMFC_BAD_BAND
            });
        }
    };
    Ok((rest_, band))
}

fn meter_mod(i: In<'_>) -> PResult<'_, MeterMod> {
    let (i, (command, flags, meter_id)) = need(
        "ofp_meter_mod",
        8,
        BAD_REQUEST_LEN,
        (be_u16.map(MeterModCommand::from), be_u16, be_u32),
    )
    .parse(i)?;
    if let MeterModCommand::Unknown(c) = command {
        return fail(DecodeError::Invalid {
            what: "ofp_meter_mod",
            why: format!("unknown command {c}"),
            ofp: ErrorCode::new(METER_MOD_FAILED, 4), // OFPMMFC_BAD_COMMAND
        });
    }
    lift(check_meter_flags(flags))?;
    let (i, bands) = many_all(meter_band, 16)(i)?;
    Ok((
        i,
        MeterMod {
            command,
            flags,
            meter_id,
            bands,
        },
    ))
}

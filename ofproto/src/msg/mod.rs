//! OpenFlow 1.3 messages: one file per message family, one [`Message`] enum.
//!
//! [`Message::decode`] takes one complete frame (see [`crate::header::frame_len`]);
//! [`Message::encode`] computes every length and padding.

use bytes::{BufMut, BytesMut};

pub mod basic;
pub mod bundle;
pub mod error;
pub mod flow;
pub mod group_meter;
pub mod multipart;
pub mod packet_in2;
/// Printing as `ovs-ofctl ofp-print` does; lives in [`crate::print`].
pub use crate::print::msg as print;
mod wire;

pub use basic::{
    AsyncConfig, Experimenter, FeaturesReply, Hello, HelloElement, PacketQueue, Port, PortMod,
    PortStatus, QueueGetConfigReply, QueueProp, Role, RoleStatus, SwitchConfig, TableMod,
};
pub use bundle::{bundle_flags, BundleAdd, BundleCtrl, BundleCtrlType};
pub use error::ErrorMsg;
pub use flow::{flow_flags, FlowMod, FlowModCommand, FlowRemoved, PacketIn, PacketOut};
pub use group_meter::{
    meter_flags, Bucket, GroupMod, GroupModCommand, GroupType, MeterBand, MeterMod, MeterModCommand,
};
pub use multipart::{MultipartReply, MultipartRequest, MultipartType};
pub use packet_in2::{set_packet_in_format, PacketIn2, NO_BUFFER};

use crate::error::{DecodeError, ErrorCode};
use crate::header::{Header, MsgType, HEADER_LEN, OFP13_VERSION};
use crate::parse::{be_u16, be_u32, be_u64, be_u8, fail, lift, need, take, In, PResult};
use bundle::{ONFT_BUNDLE_ADD_MESSAGE, ONFT_BUNDLE_CONTROL, ONFT_ROLE_STATUS, ONF_EXPERIMENTER};
use nom::Parser;
use wire::{bad_len, Reader};

/// Every OpenFlow 1.3 message this crate speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Error(ErrorMsg),
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    Experimenter(Experimenter),
    FeaturesRequest,
    FeaturesReply(FeaturesReply),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    GroupMod(GroupMod),
    PortMod(PortMod),
    TableMod(TableMod),
    MultipartRequest {
        flags: u16,
        body: MultipartRequest,
    },
    MultipartReply {
        flags: u16,
        body: MultipartReply,
    },
    BarrierRequest,
    BarrierReply,
    QueueGetConfigRequest {
        port: u32,
    },
    QueueGetConfigReply(QueueGetConfigReply),
    RoleRequest(Role),
    RoleReply(Role),
    GetAsyncRequest,
    GetAsyncReply(AsyncConfig),
    SetAsync(AsyncConfig),
    MeterMod(MeterMod),
    BundleControl(BundleCtrl),
    BundleAdd(BundleAdd),
    RoleStatus(RoleStatus),
    /// A message type this crate does not know (the session answers OFPBRC_BAD_TYPE).
    Unknown {
        msg_type: u8,
        body: Vec<u8>,
    },
}

macro_rules! from_impls {
    ($($ty:ty => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for Message {
            fn from(m: $ty) -> Message {
                Message::$variant(m)
            }
        })*
    };
}

from_impls! {
    Hello => Hello,
    ErrorMsg => Error,
    Experimenter => Experimenter,
    FeaturesReply => FeaturesReply,
    PacketIn => PacketIn,
    FlowRemoved => FlowRemoved,
    PortStatus => PortStatus,
    PacketOut => PacketOut,
    FlowMod => FlowMod,
    GroupMod => GroupMod,
    PortMod => PortMod,
    TableMod => TableMod,
    QueueGetConfigReply => QueueGetConfigReply,
    MeterMod => MeterMod,
    BundleCtrl => BundleControl,
    BundleAdd => BundleAdd,
    RoleStatus => RoleStatus,
}

impl From<MultipartRequest> for Message {
    fn from(body: MultipartRequest) -> Message {
        Message::MultipartRequest { flags: 0, body }
    }
}

impl Message {
    /// The header type this message travels under.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Message::Hello(_) => MsgType::Hello,
            Message::Error(_) => MsgType::Error,
            Message::EchoRequest(_) => MsgType::EchoRequest,
            Message::EchoReply(_) => MsgType::EchoReply,
            Message::Experimenter(_)
            | Message::BundleControl(_)
            | Message::BundleAdd(_)
            | Message::RoleStatus(_) => MsgType::Experimenter,
            Message::FeaturesRequest => MsgType::FeaturesRequest,
            Message::FeaturesReply(_) => MsgType::FeaturesReply,
            Message::GetConfigRequest => MsgType::GetConfigRequest,
            Message::GetConfigReply(_) => MsgType::GetConfigReply,
            Message::SetConfig(_) => MsgType::SetConfig,
            Message::PacketIn(_) => MsgType::PacketIn,
            Message::FlowRemoved(_) => MsgType::FlowRemoved,
            Message::PortStatus(_) => MsgType::PortStatus,
            Message::PacketOut(_) => MsgType::PacketOut,
            Message::FlowMod(_) => MsgType::FlowMod,
            Message::GroupMod(_) => MsgType::GroupMod,
            Message::PortMod(_) => MsgType::PortMod,
            Message::TableMod(_) => MsgType::TableMod,
            Message::MultipartRequest { .. } => MsgType::MultipartRequest,
            Message::MultipartReply { .. } => MsgType::MultipartReply,
            Message::BarrierRequest => MsgType::BarrierRequest,
            Message::BarrierReply => MsgType::BarrierReply,
            Message::QueueGetConfigRequest { .. } => MsgType::QueueGetConfigRequest,
            Message::QueueGetConfigReply(_) => MsgType::QueueGetConfigReply,
            Message::RoleRequest(_) => MsgType::RoleRequest,
            Message::RoleReply(_) => MsgType::RoleReply,
            Message::GetAsyncRequest => MsgType::GetAsyncRequest,
            Message::GetAsyncReply(_) => MsgType::GetAsyncReply,
            Message::SetAsync(_) => MsgType::SetAsync,
            Message::MeterMod(_) => MsgType::MeterMod,
            Message::Unknown { msg_type, .. } => MsgType::Unknown(*msg_type),
        }
    }

    /// Decodes one complete message (as framed by [`crate::header::frame_len`]).
    pub fn decode(frame: &[u8]) -> Result<(Header, Message), DecodeError> {
        let header = Header::parse(frame)?;
        let len = header.length as usize;
        if len < HEADER_LEN || len > frame.len() {
            return Err(bad_len(
                "ofp_header",
                len,
                "length field disagrees with the frame",
            ));
        }
        if header.msg_type != MsgType::Hello && header.version != OFP13_VERSION {
            return Err(DecodeError::BadVersion(header.version));
        }
        let (_, body) = crate::parse::finish(take(len - HEADER_LEN)(&frame[HEADER_LEN..]))?;
        let (rest, msg) = crate::parse::finish(Self::body(&header, body))?;
        if !rest.is_empty() {
            return Err(bad_len(
                "OpenFlow message",
                len,
                "longer than its contents (bytes left over)",
            ));
        }
        Ok((header, msg))
    }

    /// A message body (what follows the header), by the header's type.
    fn body<'a>(header: &Header, i: In<'a>) -> PResult<'a, Message> {
        // Families still read with the bounds-checked `wire::Reader`: they take the rest.
        fn reader<'a, T>(
            i: In<'a>,
            f: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
        ) -> PResult<'a, T> {
            let mut r = Reader::new(i, "OpenFlow message body");
            let v = lift(f(&mut r))?;
            Ok((r.rest(), v))
        }
        fn empty(i: In<'_>, m: Message) -> PResult<'_, Message> {
            if !i.is_empty() {
                return fail(bad_len(
                    "OpenFlow message",
                    i.len(),
                    "this message has no body",
                ));
            }
            Ok((i, m))
        }
        const LEN: ErrorCode = wire::BAD_REQUEST_LEN;
        let rest = |i: In<'a>| -> In<'a> { &i[i.len()..] };
        Ok(match header.msg_type {
            MsgType::Hello => reader(i, |r| Hello::decode(r).map(Message::Hello))?,
            MsgType::Error => {
                let (i, typ) = need("ofp_error_msg", 4, LEN, be_u16).parse(i)?;
                if typ == error::OFPET_EXPERIMENTER {
                    let (i, (exp_code, experimenter)) =
                        need("ofp_error_experimenter_msg", 6, LEN, (be_u16, be_u32)).parse(i)?;
                    (
                        rest(i),
                        Message::Error(ErrorMsg::Experimenter {
                            exp_code,
                            experimenter,
                            data: i.to_vec(),
                        }),
                    )
                } else {
                    let (i, code) = be_u16(i)?;
                    (
                        rest(i),
                        Message::Error(ErrorMsg::Standard {
                            code: ErrorCode::new(typ, code),
                            data: i.to_vec(),
                        }),
                    )
                }
            }
            MsgType::EchoRequest => (rest(i), Message::EchoRequest(i.to_vec())),
            MsgType::EchoReply => (rest(i), Message::EchoReply(i.to_vec())),
            MsgType::Experimenter => Self::experimenter(header, i)?,
            MsgType::FeaturesRequest => empty(i, Message::FeaturesRequest)?,
            MsgType::FeaturesReply => {
                reader(i, |r| FeaturesReply::decode(r).map(Message::FeaturesReply))?
            }
            MsgType::GetConfigRequest => empty(i, Message::GetConfigRequest)?,
            MsgType::GetConfigReply | MsgType::SetConfig => {
                let (i, (flags, miss_send_len)) =
                    need("ofp_switch_config", 4, LEN, (be_u16, be_u16)).parse(i)?;
                let c = SwitchConfig {
                    flags,
                    miss_send_len,
                };
                if header.msg_type == MsgType::SetConfig {
                    (i, Message::SetConfig(c))
                } else {
                    (i, Message::GetConfigReply(c))
                }
            }
            MsgType::PacketIn => (rest(i), Message::PacketIn(lift(PacketIn::decode(i))?)),
            MsgType::FlowRemoved => (rest(i), Message::FlowRemoved(lift(FlowRemoved::decode(i))?)),
            MsgType::PortStatus => {
                let (i, (reason, _)) =
                    need("ofp_port_status", 8, LEN, (be_u8, take(7))).parse(i)?;
                reader(i, |r| {
                    Ok(Message::PortStatus(PortStatus {
                        reason,
                        port: Port::decode(r)?,
                    }))
                })?
            }
            MsgType::PacketOut => (rest(i), Message::PacketOut(lift(PacketOut::decode(i))?)),
            MsgType::FlowMod => (rest(i), Message::FlowMod(lift(FlowMod::decode(i))?)),
            MsgType::GroupMod => reader(i, |r| GroupMod::decode(r).map(Message::GroupMod))?,
            MsgType::PortMod => reader(i, |r| PortMod::decode(r).map(Message::PortMod))?,
            MsgType::TableMod => {
                let (i, (table_id, _, config)) =
                    need("ofp_table_mod", 8, LEN, (be_u8, take(3), be_u32)).parse(i)?;
                (i, Message::TableMod(TableMod { table_id, config }))
            }
            MsgType::MultipartRequest | MsgType::MultipartReply => {
                let (i, (typ, flags, _)) = need(
                    "ofp_multipart",
                    8,
                    LEN,
                    (be_u16.map(MultipartType::from), be_u16, take(4)),
                )
                .parse(i)?;
                if header.msg_type == MsgType::MultipartRequest {
                    reader(i, |r| {
                        Ok(Message::MultipartRequest {
                            flags,
                            body: MultipartRequest::decode(typ, r)?,
                        })
                    })?
                } else {
                    reader(i, |r| {
                        Ok(Message::MultipartReply {
                            flags,
                            body: MultipartReply::decode(typ, r)?,
                        })
                    })?
                }
            }
            MsgType::BarrierRequest => empty(i, Message::BarrierRequest)?,
            MsgType::BarrierReply => empty(i, Message::BarrierReply)?,
            MsgType::QueueGetConfigRequest => {
                let (i, (port, _)) =
                    need("ofp_queue_get_config_request", 8, LEN, (be_u32, take(4))).parse(i)?;
                (i, Message::QueueGetConfigRequest { port })
            }
            MsgType::QueueGetConfigReply => reader(i, |r| {
                QueueGetConfigReply::decode(r).map(Message::QueueGetConfigReply)
            })?,
            MsgType::RoleRequest | MsgType::RoleReply => {
                let (i, (role, _, generation_id)) =
                    need("ofp_role_request", 16, LEN, (be_u32, take(4), be_u64)).parse(i)?;
                let role = Role {
                    role,
                    generation_id,
                };
                if header.msg_type == MsgType::RoleRequest {
                    (i, Message::RoleRequest(role))
                } else {
                    (i, Message::RoleReply(role))
                }
            }
            MsgType::GetAsyncRequest => empty(i, Message::GetAsyncRequest)?,
            MsgType::GetAsyncReply => {
                reader(i, |r| AsyncConfig::decode(r).map(Message::GetAsyncReply))?
            }
            MsgType::SetAsync => reader(i, |r| AsyncConfig::decode(r).map(Message::SetAsync))?,
            MsgType::MeterMod => reader(i, |r| MeterMod::decode(r).map(Message::MeterMod))?,
            MsgType::Unknown(t) => (
                rest(i),
                Message::Unknown {
                    msg_type: t,
                    body: i.to_vec(),
                },
            ),
        })
    }

    fn experimenter<'a>(header: &Header, i: In<'a>) -> PResult<'a, Message> {
        const LEN: ErrorCode = wire::BAD_REQUEST_LEN;
        let (i, (experimenter, exp_type)) =
            need("ofp_experimenter_header", 8, LEN, (be_u32, be_u32)).parse(i)?;
        let end = &i[i.len()..];
        let raw = |i: In<'_>| {
            Message::Experimenter(Experimenter {
                experimenter,
                exp_type,
                data: i.to_vec(),
            })
        };
        if experimenter != ONF_EXPERIMENTER {
            return Ok((end, raw(i)));
        }
        Ok(match exp_type {
            ONFT_BUNDLE_CONTROL => {
                let (i, (bundle_id, ctrl_type, flags)) = need(
                    "ofp_bundle_ctrl_msg",
                    8,
                    LEN,
                    (be_u32, be_u16.map(BundleCtrlType::from), be_u16),
                )
                .parse(i)?;
                (
                    end,
                    Message::BundleControl(BundleCtrl {
                        bundle_id,
                        ctrl_type,
                        flags,
                        properties: i.to_vec(),
                    }),
                )
            }
            ONFT_BUNDLE_ADD_MESSAGE => {
                let (i, (bundle_id, _, flags)) =
                    need("ofp_bundle_add_msg", 8, LEN, (be_u32, take(2), be_u16)).parse(i)?;
                let inner = lift(Header::parse(i))?;
                let inner_len = inner.length as usize;
                if inner_len < HEADER_LEN || inner_len > i.len() {
                    return fail(bad_len(
                        "bundled message",
                        inner_len,
                        "overruns the bundle add message",
                    ));
                }
                if inner.xid != header.xid {
                    return fail(DecodeError::Invalid {
                        what: "ONFT_BUNDLE_ADD_MESSAGE",
                        why: format!(
                            "inner xid {:#x} differs from the outer xid {:#x}",
                            inner.xid, header.xid
                        ),
                        ofp: ErrorCode::new(1, 0), // reported by OVS as OFPBFC_MSG_BAD_XID
                    });
                }
                // Bytes after the inner message are padding or properties; OVS defines none.
                let (_, inner) = take(inner_len)(i)?;
                let (_, message) = lift(Message::decode(inner))?;
                (
                    end,
                    Message::BundleAdd(BundleAdd {
                        bundle_id,
                        flags,
                        message: Box::new(message),
                    }),
                )
            }
            ONFT_ROLE_STATUS => {
                let (i, (role, reason, _, generation_id)) =
                    need("ofp_role_status", 16, LEN, (be_u32, be_u8, take(3), be_u64)).parse(i)?;
                (
                    end,
                    Message::RoleStatus(RoleStatus {
                        role,
                        reason,
                        generation_id,
                        properties: i.to_vec(),
                    }),
                )
            }
            _ => (end, raw(i)),
        })
    }

    /// Appends the message with the given xid; lengths and padding are computed here.
    pub fn encode(&self, xid: u32, buf: &mut BytesMut) {
        if let Message::FlowMod(f) = self {
            // The hot path: the whole flow-mod, header included, in one sized write.
            let len = HEADER_LEN + f.body_len();
            crate::writer::append(buf, len, |w| {
                w.put_u8(OFP13_VERSION);
                w.put_u8(MsgType::FlowMod.into());
                w.put_u16(len as u16);
                w.put_u32(xid);
                f.write(w);
            });
            return;
        }
        let start = buf.len();
        // Most messages are small; one reservation up front saves regrowing while writing.
        buf.reserve(256);
        Header {
            version: OFP13_VERSION,
            msg_type: self.msg_type(),
            length: 0,
            xid,
        }
        .encode(buf);
        self.encode_body(xid, buf);
        let len = (buf.len() - start) as u16;
        buf[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// The message as a fresh buffer.
    pub fn to_bytes(&self, xid: u32) -> BytesMut {
        let mut b = BytesMut::with_capacity(64);
        self.encode(xid, &mut b);
        b
    }

    fn encode_body(&self, xid: u32, buf: &mut BytesMut) {
        match self {
            Message::Hello(h) => h.encode(buf),
            Message::Error(e) => match e {
                ErrorMsg::Standard { code, data } => {
                    buf.put_u16(code.typ);
                    buf.put_u16(code.code);
                    buf.put_slice(data);
                }
                ErrorMsg::Experimenter {
                    exp_code,
                    experimenter,
                    data,
                } => {
                    buf.put_u16(error::OFPET_EXPERIMENTER);
                    buf.put_u16(*exp_code);
                    buf.put_u32(*experimenter);
                    buf.put_slice(data);
                }
            },
            Message::EchoRequest(d) | Message::EchoReply(d) => buf.put_slice(d),
            Message::Experimenter(e) => {
                buf.put_u32(e.experimenter);
                buf.put_u32(e.exp_type);
                buf.put_slice(&e.data);
            }
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => {}
            Message::FeaturesReply(f) => f.encode(buf),
            Message::GetConfigReply(c) | Message::SetConfig(c) => {
                buf.put_u16(c.flags);
                buf.put_u16(c.miss_send_len);
            }
            Message::PacketIn(p) => p.encode(buf),
            Message::FlowRemoved(f) => f.encode(buf),
            Message::PortStatus(p) => {
                buf.put_u8(p.reason);
                buf.put_bytes(0, 7);
                p.port.encode(buf);
            }
            Message::PacketOut(p) => p.encode(buf),
            Message::FlowMod(f) => f.encode(buf),
            Message::GroupMod(g) => g.encode(buf),
            Message::PortMod(p) => p.encode(buf),
            Message::TableMod(t) => {
                buf.put_u8(t.table_id);
                buf.put_bytes(0, 3);
                buf.put_u32(t.config);
            }
            Message::MultipartRequest { flags, body } => {
                buf.put_u16(body.multipart_type().into());
                buf.put_u16(*flags);
                buf.put_u32(0);
                body.encode(buf);
            }
            Message::MultipartReply { flags, body } => {
                buf.put_u16(body.multipart_type().into());
                buf.put_u16(*flags);
                buf.put_u32(0);
                body.encode(buf);
            }
            Message::QueueGetConfigRequest { port } => {
                buf.put_u32(*port);
                buf.put_u32(0);
            }
            Message::QueueGetConfigReply(q) => q.encode(buf),
            Message::RoleRequest(r) | Message::RoleReply(r) => {
                buf.put_u32(r.role);
                buf.put_u32(0);
                buf.put_u64(r.generation_id);
            }
            Message::GetAsyncReply(a) | Message::SetAsync(a) => a.encode(buf),
            Message::MeterMod(m) => m.encode(buf),
            Message::BundleControl(b) => {
                buf.put_u32(ONF_EXPERIMENTER);
                buf.put_u32(ONFT_BUNDLE_CONTROL);
                buf.put_u32(b.bundle_id);
                buf.put_u16(b.ctrl_type.into());
                buf.put_u16(b.flags);
                buf.put_slice(&b.properties);
            }
            Message::BundleAdd(b) => {
                buf.put_u32(ONF_EXPERIMENTER);
                buf.put_u32(ONFT_BUNDLE_ADD_MESSAGE);
                buf.put_u32(b.bundle_id);
                buf.put_u16(0);
                buf.put_u16(b.flags);
                b.message.encode(xid, buf);
            }
            Message::RoleStatus(s) => {
                buf.put_u32(ONF_EXPERIMENTER);
                buf.put_u32(ONFT_ROLE_STATUS);
                buf.put_u32(s.role);
                buf.put_u8(s.reason);
                buf.put_bytes(0, 3);
                buf.put_u64(s.generation_id);
                buf.put_slice(&s.properties);
            }
            Message::Unknown { body, .. } => buf.put_slice(body),
        }
    }
}

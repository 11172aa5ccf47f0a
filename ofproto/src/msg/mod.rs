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
use bundle::{ONFT_BUNDLE_ADD_MESSAGE, ONFT_BUNDLE_CONTROL, ONFT_ROLE_STATUS, ONF_EXPERIMENTER};
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
        let mut r = Reader::new(&frame[HEADER_LEN..len], "OpenFlow message body");
        let msg = Self::decode_body(&header, &mut r)?;
        if !r.is_empty() {
            return Err(bad_len(
                "OpenFlow message",
                len,
                "longer than its contents (bytes left over)",
            ));
        }
        Ok((header, msg))
    }

    fn decode_body(header: &Header, r: &mut Reader<'_>) -> Result<Message, DecodeError> {
        let empty = |r: &Reader<'_>, m: Message| {
            if r.is_empty() {
                Ok(m)
            } else {
                Err(bad_len(
                    "OpenFlow message",
                    r.remaining(),
                    "this message has no body",
                ))
            }
        };
        Ok(match header.msg_type {
            MsgType::Hello => Message::Hello(Hello::decode(r)?),
            MsgType::Error => {
                let typ = r.u16()?;
                if typ == error::OFPET_EXPERIMENTER {
                    let exp_code = r.u16()?;
                    let experimenter = r.u32()?;
                    Message::Error(ErrorMsg::Experimenter {
                        exp_code,
                        experimenter,
                        data: r.rest().to_vec(),
                    })
                } else {
                    let code = r.u16()?;
                    Message::Error(ErrorMsg::Standard {
                        code: ErrorCode::new(typ, code),
                        data: r.rest().to_vec(),
                    })
                }
            }
            MsgType::EchoRequest => Message::EchoRequest(r.rest().to_vec()),
            MsgType::EchoReply => Message::EchoReply(r.rest().to_vec()),
            MsgType::Experimenter => Self::decode_experimenter(header, r)?,
            MsgType::FeaturesRequest => empty(r, Message::FeaturesRequest)?,
            MsgType::FeaturesReply => Message::FeaturesReply(FeaturesReply::decode(r)?),
            MsgType::GetConfigRequest => empty(r, Message::GetConfigRequest)?,
            MsgType::GetConfigReply | MsgType::SetConfig => {
                let c = SwitchConfig {
                    flags: r.u16()?,
                    miss_send_len: r.u16()?,
                };
                if header.msg_type == MsgType::SetConfig {
                    Message::SetConfig(c)
                } else {
                    Message::GetConfigReply(c)
                }
            }
            MsgType::PacketIn => Message::PacketIn(PacketIn::decode(r.rest())?),
            MsgType::FlowRemoved => Message::FlowRemoved(FlowRemoved::decode(r.rest())?),
            MsgType::PortStatus => {
                let reason = r.u8()?;
                r.skip(7)?;
                Message::PortStatus(PortStatus {
                    reason,
                    port: Port::decode(r)?,
                })
            }
            MsgType::PacketOut => Message::PacketOut(PacketOut::decode(r.rest())?),
            MsgType::FlowMod => Message::FlowMod(FlowMod::decode(r.rest())?),
            MsgType::GroupMod => Message::GroupMod(GroupMod::decode(r)?),
            MsgType::PortMod => Message::PortMod(PortMod::decode(r)?),
            MsgType::TableMod => {
                let table_id = r.u8()?;
                r.skip(3)?;
                Message::TableMod(TableMod {
                    table_id,
                    config: r.u32()?,
                })
            }
            MsgType::MultipartRequest | MsgType::MultipartReply => {
                let typ = MultipartType::from(r.u16()?);
                let flags = r.u16()?;
                r.skip(4)?;
                if header.msg_type == MsgType::MultipartRequest {
                    Message::MultipartRequest {
                        flags,
                        body: MultipartRequest::decode(typ, r)?,
                    }
                } else {
                    Message::MultipartReply {
                        flags,
                        body: MultipartReply::decode(typ, r)?,
                    }
                }
            }
            MsgType::BarrierRequest => empty(r, Message::BarrierRequest)?,
            MsgType::BarrierReply => empty(r, Message::BarrierReply)?,
            MsgType::QueueGetConfigRequest => {
                let port = r.u32()?;
                r.skip(4)?;
                Message::QueueGetConfigRequest { port }
            }
            MsgType::QueueGetConfigReply => {
                Message::QueueGetConfigReply(QueueGetConfigReply::decode(r)?)
            }
            MsgType::RoleRequest | MsgType::RoleReply => {
                let role = r.u32()?;
                r.skip(4)?;
                let role = Role {
                    role,
                    generation_id: r.u64()?,
                };
                if header.msg_type == MsgType::RoleRequest {
                    Message::RoleRequest(role)
                } else {
                    Message::RoleReply(role)
                }
            }
            MsgType::GetAsyncRequest => empty(r, Message::GetAsyncRequest)?,
            MsgType::GetAsyncReply => Message::GetAsyncReply(AsyncConfig::decode(r)?),
            MsgType::SetAsync => Message::SetAsync(AsyncConfig::decode(r)?),
            MsgType::MeterMod => Message::MeterMod(MeterMod::decode(r)?),
            MsgType::Unknown(t) => Message::Unknown {
                msg_type: t,
                body: r.rest().to_vec(),
            },
        })
    }

    fn decode_experimenter(header: &Header, r: &mut Reader<'_>) -> Result<Message, DecodeError> {
        let experimenter = r.u32()?;
        let exp_type = r.u32()?;
        if experimenter != ONF_EXPERIMENTER {
            return Ok(Message::Experimenter(Experimenter {
                experimenter,
                exp_type,
                data: r.rest().to_vec(),
            }));
        }
        Ok(match exp_type {
            ONFT_BUNDLE_CONTROL => {
                let bundle_id = r.u32()?;
                let ctrl_type = BundleCtrlType::from(r.u16()?);
                let flags = r.u16()?;
                Message::BundleControl(BundleCtrl {
                    bundle_id,
                    ctrl_type,
                    flags,
                    properties: r.rest().to_vec(),
                })
            }
            ONFT_BUNDLE_ADD_MESSAGE => {
                let bundle_id = r.u32()?;
                r.skip(2)?;
                let flags = r.u16()?;
                let rest = r.rest();
                let inner = Header::parse(rest)?;
                let inner_len = inner.length as usize;
                if inner_len < HEADER_LEN || inner_len > rest.len() {
                    return Err(bad_len(
                        "bundled message",
                        inner_len,
                        "overruns the bundle add message",
                    ));
                }
                if inner.xid != header.xid {
                    return Err(DecodeError::Invalid {
                        what: "ONFT_BUNDLE_ADD_MESSAGE",
                        why: format!(
                            "inner xid {:#x} differs from the outer xid {:#x}",
                            inner.xid, header.xid
                        ),
                        ofp: ErrorCode::new(1, 0), // reported by OVS as OFPBFC_MSG_BAD_XID
                    });
                }
                // Bytes after the inner message are padding or properties; OVS defines none.
                let (_, message) = Message::decode(&rest[..inner_len])?;
                Message::BundleAdd(BundleAdd {
                    bundle_id,
                    flags,
                    message: Box::new(message),
                })
            }
            ONFT_ROLE_STATUS => {
                let role = r.u32()?;
                let reason = r.u8()?;
                r.skip(3)?;
                Message::RoleStatus(RoleStatus {
                    role,
                    reason,
                    generation_id: r.u64()?,
                    properties: r.rest().to_vec(),
                })
            }
            _ => Message::Experimenter(Experimenter {
                experimenter,
                exp_type,
                data: r.rest().to_vec(),
            }),
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

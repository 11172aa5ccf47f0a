//! Action lists on the wire: OpenFlow 1.3's actions, lengths and padding.

#[allow(unused_imports)]
use super::*;

impl Action {
    /// Appends one action; lengths and padding are computed here.
    pub fn encode(&self, buf: &mut BytesMut) {
        crate::writer::append(buf, self.encoded_len(), |w| self.write(w));
    }

    pub(crate) fn write(&self, buf: &mut Writer<'_>) {
        let start = buf.len();
        match self {
            Action::Output { port, max_len } => {
                put_hdr(buf, at::OUTPUT, 16);
                buf.put_u32(*port);
                buf.put_u16(*max_len);
                buf.put_zeros(6);
            }
            Action::CopyTtlOut => put_empty(buf, at::COPY_TTL_OUT),
            Action::CopyTtlIn => put_empty(buf, at::COPY_TTL_IN),
            Action::SetMplsTtl(t) => {
                put_hdr(buf, at::SET_MPLS_TTL, 8);
                buf.put_u8(*t);
                buf.put_zeros(3);
            }
            Action::DecMplsTtl => put_empty(buf, at::DEC_MPLS_TTL),
            Action::PushVlan(e) => put_u16_action(buf, at::PUSH_VLAN, *e),
            Action::PopVlan => put_empty(buf, at::POP_VLAN),
            Action::PushMpls(e) => put_u16_action(buf, at::PUSH_MPLS, *e),
            Action::PopMpls(e) => put_u16_action(buf, at::POP_MPLS, *e),
            Action::SetQueue(q) => {
                put_hdr(buf, at::SET_QUEUE, 8);
                buf.put_u32(*q);
            }
            Action::Group(g) => {
                put_hdr(buf, at::GROUP, 8);
                buf.put_u32(*g);
            }
            Action::SetNwTtl(t) => {
                put_hdr(buf, at::SET_NW_TTL, 8);
                buf.put_u8(*t);
                buf.put_zeros(3);
            }
            Action::DecNwTtl => put_empty(buf, at::DEC_NW_TTL),
            Action::PushPbb(e) => put_u16_action(buf, at::PUSH_PBB, *e),
            Action::PopPbb => put_empty(buf, at::POP_PBB),
            Action::SetField(f) => {
                put_hdr(buf, at::SET_FIELD, 0);
                f.write(buf);
            }
            Action::Resubmit { in_port, table } => {
                let sub = if table.is_some() {
                    nxast::RESUBMIT_TABLE
                } else {
                    nxast::RESUBMIT
                };
                put_nx(buf, sub);
                buf.put_u16(*in_port);
                buf.put_u8(table.unwrap_or(0));
                buf.put_zeros(3);
            }
            Action::Move { src, dst } => {
                put_nx(buf, nxast::REG_MOVE);
                buf.put_u16(src.n_bits);
                buf.put_u16(src.ofs);
                buf.put_u16(dst.ofs);
                buf.put_u32(src.header());
                buf.put_u32(dst.header());
            }
            Action::Load { dst, value } => {
                put_nx(buf, nxast::REG_LOAD);
                buf.put_u16(dst.ofs_nbits());
                buf.put_u32(dst.header());
                buf.put_u64(*value);
            }
            Action::Load2(f) => {
                put_nx(buf, nxast::REG_LOAD2);
                f.write(buf);
            }
            Action::Note(bytes) => {
                put_nx(buf, nxast::NOTE);
                buf.put_slice(bytes);
                // A note is at least 16 bytes: pad_to_8 below covers the rest.
                if buf.len() - start < 16 {
                    buf.put_zeros(16 - (buf.len() - start));
                }
            }
            Action::OutputReg { src, max_len } => {
                put_nx(buf, nxast::OUTPUT_REG);
                buf.put_u16(src.ofs_nbits());
                buf.put_u32(src.header());
                buf.put_u16(*max_len);
                buf.put_zeros(6);
            }
            Action::DecTtl {
                controller_ids: ids,
            } => {
                put_nx(buf, nxast::DEC_TTL_CNT_IDS);
                buf.put_u16(ids.len() as u16);
                buf.put_zeros(4);
                for id in ids {
                    buf.put_u16(*id);
                }
            }
            Action::Controller {
                max_len,
                controller_id,
                reason,
            } => {
                put_nx(buf, nxast::CONTROLLER);
                buf.put_u16(*max_len);
                buf.put_u16(*controller_id);
                buf.put_u8(*reason);
                buf.put_u8(0);
            }
            Action::Controller2(c) => {
                put_nx(buf, nxast::CONTROLLER2);
                buf.put_zeros(6);
                c.write_props(buf);
            }
            Action::Conjunction {
                id,
                clause,
                n_clauses,
            } => {
                put_nx(buf, nxast::CONJUNCTION);
                buf.put_u8(*clause);
                buf.put_u8(*n_clauses);
                buf.put_u32(*id);
            }
            Action::Ct(ct) => {
                put_nx(buf, nxast::CT);
                buf.put_u16(u16::from(ct.commit) | (u16::from(ct.force) << 1));
                match ct.zone {
                    CtZone::Imm(z) => {
                        buf.put_u32(0);
                        buf.put_u16(z);
                    }
                    CtZone::Field(r) => {
                        buf.put_u32(r.header());
                        buf.put_u16(r.ofs_nbits());
                    }
                }
                buf.put_u8(ct.table.unwrap_or(CT_RECIRC_NONE));
                buf.put_zeros(3);
                buf.put_u16(ct.alg);
                for a in &ct.actions {
                    a.write(buf);
                }
            }
            Action::Nat(nat) => encode_nat(nat, buf),
            Action::CtClear => {
                put_nx(buf, nxast::CT_CLEAR);
                buf.put_zeros(6);
            }
            Action::Experimenter { experimenter, body } => {
                put_hdr(buf, at::EXPERIMENTER, 0);
                buf.put_u32(*experimenter);
                buf.put_slice(body);
            }
            Action::Unknown { typ, body } => {
                put_hdr(buf, *typ, 0);
                buf.put_slice(body);
            }
        }
        let len = buf.len() - start;
        let padded = len.div_ceil(8) * 8;
        buf.put_zeros(padded - len);
        buf.patch_u16(start + 2, padded as u16);
    }

    /// Bytes [`Action::encode`] writes for this action.
    pub fn encoded_len(&self) -> usize {
        let raw = match self {
            Action::Output { .. } => 16,
            Action::SetField(f) | Action::Load2(f) => {
                let base = if matches!(self, Action::SetField(_)) {
                    4
                } else {
                    10
                };
                base + field_len(f)
            }
            Action::Resubmit { .. }
            | Action::Controller { .. }
            | Action::Conjunction { .. }
            | Action::CtClear => 16,
            Action::Move { .. } | Action::Load { .. } | Action::OutputReg { .. } => 24,
            Action::Note(b) => (10 + b.len()).max(16),
            Action::DecTtl {
                controller_ids: ids,
            } => 16 + 2 * ids.len(),
            Action::Controller2(c) => 16 + c.props_len(),
            Action::Ct(ct) => 24 + ct.actions.iter().map(Action::encoded_len).sum::<usize>(),
            Action::Nat(n) => 16 + nat_ranges_len(n),
            Action::Experimenter { body, .. } => 8 + body.len(),
            Action::Unknown { body, .. } => 4 + body.len(),
            _ => 8,
        };
        raw.div_ceil(8) * 8
    }

    pub fn encode_list(actions: &[Action], buf: &mut BytesMut) {
        crate::writer::append(buf, Action::list_len(actions), |w| {
            Action::write_list(actions, w)
        });
    }

    pub(crate) fn write_list(actions: &[Action], buf: &mut Writer<'_>) {
        for a in actions {
            a.write(buf);
        }
    }

    /// Bytes [`Action::encode_list`] writes.
    pub fn list_len(actions: &[Action]) -> usize {
        actions.iter().map(Action::encoded_len).sum()
    }

    /// `set_field:VALUE->FIELD` for a whole field.
    pub fn set_field(field: Field, value: u128) -> Result<Action, DecodeError> {
        Ok(Action::SetField(MatchField::Field(FieldMatch::exact(
            field, value,
        )?)))
    }

    /// `resubmit(,TABLE)`.
    pub fn resubmit(table: u8) -> Action {
        Action::Resubmit {
            in_port: NX_IN_PORT,
            table: Some(table),
        }
    }

    /// `output:PORT`.
    pub fn output(port: u32) -> Action {
        Action::Output { port, max_len: 0 }
    }
}

pub(crate) fn field_len(f: &MatchField) -> usize {
    f.encoded_len()
}

pub(crate) fn put_hdr(buf: &mut Writer<'_>, typ: u16, len: u16) {
    buf.put_u16(typ);
    buf.put_u16(len); // fixed up by encode once the length is known
}

pub(crate) fn put_empty(buf: &mut Writer<'_>, typ: u16) {
    put_hdr(buf, typ, 8);
    buf.put_u32(0);
}

pub(crate) fn put_u16_action(buf: &mut Writer<'_>, typ: u16, v: u16) {
    put_hdr(buf, typ, 8);
    buf.put_u16(v);
    buf.put_u16(0);
}

pub(crate) fn put_nx(buf: &mut Writer<'_>, subtype: u16) {
    put_hdr(buf, at::EXPERIMENTER, 0);
    buf.put_u32(NX_VENDOR_ID);
    buf.put_u16(subtype);
}

/// Nested actions `ct` accepts (what OVS accepts inside ct).
pub(crate) fn allowed_in_ct(a: &Action) -> bool {
    match a {
        Action::Nat(_) => true,
        Action::SetField(MatchField::Field(f)) | Action::Load2(MatchField::Field(f)) => {
            matches!(f.field(), Field::CtMark | Field::CtLabel)
        }
        Action::Load { dst, .. } => matches!(dst.field(), Field::CtMark | Field::CtLabel),
        _ => false,
    }
}

//! Nicira extension actions (NXAST_*): decoding by subtype.

#[allow(unused_imports)]
use super::*;

pub(crate) fn decode_nicira(a: &[u8]) -> Result<Action, DecodeError> {
    let sub = be16(a, 8);
    let need = |n: usize, what: &'static str| -> Result<(), DecodeError> {
        if a.len() < n {
            Err(truncated(what, n, a.len()))
        } else {
            Ok(())
        }
    };
    Ok(match sub {
        nxast::RESUBMIT | nxast::RESUBMIT_TABLE => {
            need(16, "nx_action_resubmit")?;
            Action::Resubmit {
                in_port: be16(a, 10),
                table: (sub == nxast::RESUBMIT_TABLE).then_some(a[12]),
            }
        }
        nxast::REG_MOVE => {
            need(24, "nx_action_reg_move")?;
            let n_bits = be16(a, 10);
            Action::Move {
                src: FieldRange::from_header(be32(a, 16), be16(a, 12), n_bits)?,
                dst: FieldRange::from_header(be32(a, 20), be16(a, 14), n_bits)?,
            }
        }
        nxast::REG_LOAD => {
            need(24, "nx_action_reg_load")?;
            let dst = FieldRange::from_ofs_nbits(be32(a, 12), be16(a, 10))?;
            let value = be64(a, 16);
            if dst.n_bits < 64 && value >> dst.n_bits != 0 {
                return Err(DecodeError::Invalid {
                    what: "nx_action_reg_load",
                    why: format!("value {value:#x} does not fit in {} bits", dst.n_bits),
                    ofp: BAD_ARGUMENT,
                });
            }
            Action::Load { dst, value }
        }
        nxast::REG_LOAD2 => {
            let (f, n) = MatchField::decode(&a[10..])?;
            check_padding("nx_action_reg_load2", a, 10 + n)?;
            Action::Load2(f)
        }
        // Padding is part of the note, as in OVS: a note of 6 + 8n bytes round-trips exactly.
        nxast::NOTE => Action::Note(a[10..].to_vec()),
        nxast::OUTPUT_REG => {
            need(24, "nx_action_output_reg")?;
            Action::OutputReg {
                src: FieldRange::from_ofs_nbits(be32(a, 12), be16(a, 10))?,
                max_len: be16(a, 16),
            }
        }
        nxast::DEC_TTL_CNT_IDS => {
            need(16, "nx_action_cnt_ids")?;
            let n = be16(a, 10) as usize;
            need(16 + 2 * n, "nx_action_cnt_ids")?;
            let ids = (0..n).map(|i| be16(a, 16 + 2 * i)).collect();
            Action::DecTtl {
                controller_ids: ids,
            }
        }
        nxast::CONTROLLER => {
            need(16, "nx_action_controller")?;
            Action::Controller {
                max_len: be16(a, 10),
                controller_id: be16(a, 12),
                reason: a[14],
            }
        }
        nxast::CONTROLLER2 => Action::Controller2(Controller2::decode(a)?),
        nxast::CONJUNCTION => {
            need(16, "nx_action_conjunction")?;
            let (clause, n_clauses) = (a[10], a[11]);
            if !(2..=64).contains(&n_clauses) || clause >= n_clauses {
                return Err(DecodeError::Invalid {
                    what: "nx_action_conjunction",
                    why: format!("clause {clause} of {n_clauses}: needs 2..64 clauses and clause < n_clauses"),
                    ofp: BAD_ARGUMENT,
                });
            }
            Action::Conjunction {
                id: be32(a, 12),
                clause,
                n_clauses,
            }
        }
        nxast::CT => {
            need(24, "nx_action_conntrack")?;
            let flags = be16(a, 10);
            if flags & !0x3 != 0 {
                return Err(DecodeError::Invalid {
                    what: "nx_action_conntrack",
                    why: format!("unknown flags {flags:#x}"),
                    ofp: BAD_ARGUMENT,
                });
            }
            let zone_src = be32(a, 12);
            let zone = if zone_src == 0 {
                CtZone::Imm(be16(a, 16))
            } else {
                CtZone::Field(FieldRange::from_ofs_nbits(zone_src, be16(a, 16))?)
            };
            let table = a[18];
            let actions = Action::decode_list(&a[24..])?;
            if let Some(bad) = actions.iter().find(|x| !allowed_in_ct(x)) {
                return Err(DecodeError::Invalid {
                    what: "nx_action_conntrack",
                    why: format!("action {bad} is not allowed inside ct (only nat and setting ct_mark/ct_label)"),
                    ofp: UNSUPPORTED_ORDER,
                });
            }
            Action::Ct(Ct {
                commit: flags & 1 != 0,
                force: flags & 2 != 0,
                zone,
                table: (table != CT_RECIRC_NONE).then_some(table),
                alg: be16(a, 22),
                actions,
            })
        }
        nxast::NAT => Action::Nat(decode_nat(a)?),
        nxast::CT_CLEAR => Action::CtClear,
        _ => Action::Experimenter {
            experimenter: NX_VENDOR_ID,
            body: a[8..].to_vec(),
        },
    })
}

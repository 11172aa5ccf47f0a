//! Instructions: goto_table, write_metadata, write/apply/clear actions, meter.

use bytes::BytesMut;

use nom::Parser;

use crate::action::Action;
use crate::error::{DecodeError, ErrorCode};
use crate::parse::{all, be_u16, be_u32, be_u64, check, fail, lift, many_all, take, In, PResult};
use crate::writer::Writer;

pub use crate::print::instruction::InstructionList;

const OFPET_BAD_INSTRUCTION: u16 = 3;
const BAD_LEN: ErrorCode = ErrorCode::new(OFPET_BAD_INSTRUCTION, 7);

mod it {
    pub const GOTO_TABLE: u16 = 1;
    pub const WRITE_METADATA: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 3;
    pub const APPLY_ACTIONS: u16 = 4;
    pub const CLEAR_ACTIONS: u16 = 5;
    pub const METER: u16 = 6;
    pub const EXPERIMENTER: u16 = 0xffff;
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Instruction {
    GotoTable(u8),
    WriteMetadata {
        value: u64,
        mask: u64,
    },
    WriteActions(Vec<Action>),
    ApplyActions(Vec<Action>),
    ClearActions,
    Meter(u32),
    /// An experimenter instruction; `body` follows the experimenter id.
    Experimenter {
        experimenter: u32,
        body: Vec<u8>,
    },
    /// An instruction type this crate does not know; `body` follows the 4-byte header.
    Unknown {
        typ: u16,
        body: Vec<u8>,
    },
}

/// Instructions until the input is used up.
pub(crate) fn instruction_list(i: In<'_>) -> PResult<'_, Vec<Instruction>> {
    many_all(instruction, 16)(i)
}

/// One instruction, its length taken from its header (a multiple of 8, at least 8).
#[inline]
fn instruction(i: In<'_>) -> PResult<'_, Instruction> {
    check("instruction header", 4, BAD_LEN, i)?;
    let (h, typ) = be_u16(i)?;
    let (_, len) = be_u16(h)?;
    let len = len as usize;
    if len < 8 || !len.is_multiple_of(8) {
        return fail(bad_len(
            "instruction",
            len,
            "must be a multiple of 8, at least 8",
        ));
    }
    check("instruction", len, BAD_LEN, i)?;
    let (rest, b) = take(len)(i)?;
    let fixed = |n: usize, what: &'static str| {
        if len == n {
            Ok(())
        } else {
            lift(Err(bad_len(what, len, "not the size of this instruction")))
        }
    };
    // Every instruction has 4 bytes after its header; the actions follow 4 bytes of padding.
    let (body, _) = take(4)(b)?;
    let (after, word) = be_u32(body)?;
    let actions = |after| crate::action::action_list(after).map(|(_, a)| a);
    let ins = match typ {
        it::GOTO_TABLE => {
            fixed(8, "ofp_instruction_goto_table")?;
            Instruction::GotoTable((word >> 24) as u8)
        }
        it::WRITE_METADATA => {
            fixed(24, "ofp_instruction_write_metadata")?;
            let (_, (value, mask)) = (be_u64, be_u64).parse(after)?;
            Instruction::WriteMetadata { value, mask }
        }
        it::WRITE_ACTIONS => Instruction::WriteActions(actions(after)?),
        it::APPLY_ACTIONS => Instruction::ApplyActions(actions(after)?),
        it::CLEAR_ACTIONS => {
            fixed(8, "ofp_instruction_actions")?;
            Instruction::ClearActions
        }
        it::METER => {
            fixed(8, "ofp_instruction_meter")?;
            Instruction::Meter(word)
        }
        it::EXPERIMENTER => Instruction::Experimenter {
            experimenter: word,
            body: after.to_vec(),
        },
        other => Instruction::Unknown {
            typ: other,
            body: body.to_vec(),
        },
    };
    Ok((rest, ins))
}

fn bad_len(what: &'static str, len: usize, why: &'static str) -> DecodeError {
    DecodeError::BadLength {
        what,
        len,
        why,
        ofp: BAD_LEN,
    }
}

impl Instruction {
    /// Decodes a whole instruction list: all of `input` is instructions.
    pub fn decode_list(input: &[u8]) -> Result<Vec<Instruction>, DecodeError> {
        all(input, many_all(instruction, 16))
    }

    pub fn encode(&self, buf: &mut BytesMut) {
        crate::writer::append(buf, self.encoded_len(), |w| self.write(w));
    }

    pub(crate) fn write(&self, buf: &mut Writer<'_>) {
        let start = buf.len();
        match self {
            Instruction::GotoTable(t) => {
                buf.put_u16(it::GOTO_TABLE);
                buf.put_u16(8);
                buf.put_u8(*t);
                buf.put_zeros(3);
            }
            Instruction::WriteMetadata { value, mask } => {
                buf.put_u16(it::WRITE_METADATA);
                buf.put_u16(24);
                buf.put_u32(0);
                buf.put_u64(*value);
                buf.put_u64(*mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                let typ = if matches!(self, Instruction::WriteActions(_)) {
                    it::WRITE_ACTIONS
                } else {
                    it::APPLY_ACTIONS
                };
                buf.put_u16(typ);
                buf.put_u16(0);
                buf.put_u32(0);
                Action::write_list(a, buf);
            }
            Instruction::ClearActions => {
                buf.put_u16(it::CLEAR_ACTIONS);
                buf.put_u16(8);
                buf.put_u32(0);
            }
            Instruction::Meter(m) => {
                buf.put_u16(it::METER);
                buf.put_u16(8);
                buf.put_u32(*m);
            }
            Instruction::Experimenter { experimenter, body } => {
                buf.put_u16(it::EXPERIMENTER);
                buf.put_u16(0);
                buf.put_u32(*experimenter);
                buf.put_slice(body);
            }
            Instruction::Unknown { typ, body } => {
                buf.put_u16(*typ);
                buf.put_u16(0);
                buf.put_slice(body);
            }
        }
        let len = buf.len() - start;
        let padded = len.div_ceil(8) * 8;
        buf.put_zeros(padded - len);
        buf.patch_u16(start + 2, padded as u16);
    }

    pub fn encoded_len(&self) -> usize {
        let raw = match self {
            Instruction::GotoTable(_) | Instruction::ClearActions | Instruction::Meter(_) => 8,
            Instruction::WriteMetadata { .. } => 24,
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => 8 + Action::list_len(a),
            Instruction::Experimenter { body, .. } => 8 + body.len(),
            Instruction::Unknown { body, .. } => 4 + body.len(),
        };
        raw.div_ceil(8) * 8
    }

    pub fn encode_list(instructions: &[Instruction], buf: &mut BytesMut) {
        crate::writer::append(buf, Instruction::list_len(instructions), |w| {
            Instruction::write_list(instructions, w)
        });
    }

    pub(crate) fn write_list(instructions: &[Instruction], buf: &mut Writer<'_>) {
        for i in instructions {
            i.write(buf);
        }
    }

    pub fn list_len(instructions: &[Instruction]) -> usize {
        instructions.iter().map(Instruction::encoded_len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn round_trips_every_instruction() {
        let bytes = hex("0006 0008 00000001
             0004 0018 00000000 0000 0010 00000003 0000 000000000000
             0005 0008 00000000
             0003 0018 00000000 0016 0008 00000002 0012 0008 00000000
             0002 0018 00000000 0000000000000001 00000000000000ff
             0001 0008 05 000000");
        let list = Instruction::decode_list(&bytes).unwrap();
        assert_eq!(
            InstructionList(&list).to_string(),
            "meter:1,output:3,clear_actions,write_actions(group:2,pop_vlan),write_metadata:0x1/0xff,goto_table:5"
        );
        let mut buf = BytesMut::from(&[0xeeu8; 7][..]);
        Instruction::encode_list(&list, &mut buf);
        assert_eq!(&buf[7..], &bytes[..]);
        assert_eq!(Instruction::list_len(&list), bytes.len());
    }

    #[test]
    fn refuses_bad_lengths() {
        assert_eq!(
            Instruction::decode_list(&hex("0001 0010 05000000 00000000"))
                .unwrap_err()
                .ofp_error(),
            BAD_LEN
        );
        assert!(Instruction::decode_list(&hex("0001 0008 0500")).is_err());
        assert!(Instruction::decode_list(&hex("0004 000c 00000000 00000000")).is_err());
    }
}

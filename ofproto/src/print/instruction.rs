//! Instructions as `ovs-ofctl` prints them.

use std::fmt;

use crate::action::ActionList;
use crate::instruction::Instruction;
use crate::oxm::CHex;

impl fmt::Display for Instruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Instruction::GotoTable(t) => write!(f, "goto_table:{t}"),
            Instruction::WriteMetadata { value, mask } => {
                write!(f, "write_metadata:{}", CHex((*value).into()))?;
                if *mask != u64::MAX {
                    write!(f, "/{}", CHex((*mask).into()))?;
                }
                Ok(())
            }
            Instruction::WriteActions(a) => write!(f, "write_actions({})", ActionList(a)),
            Instruction::ApplyActions(a) => write!(f, "{}", ActionList(a)),
            Instruction::ClearActions => f.write_str("clear_actions"),
            Instruction::Meter(m) => write!(f, "meter:{m}"),
            Instruction::Experimenter { experimenter, .. } => {
                write!(f, "experimenter_instruction({experimenter:#010x})")
            }
            Instruction::Unknown { typ, .. } => write!(f, "unknown_instruction({typ})"),
        }
    }
}

/// Writes an instruction list as the part after `actions=` in `ovs-ofctl`: `drop` when nothing
/// is done.
pub struct InstructionList<'a>(pub &'a [Instruction]);

impl fmt::Display for InstructionList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<&Instruction> = self
            .0
            .iter()
            .filter(|i| !matches!(i, Instruction::ApplyActions(a) if a.is_empty()))
            .collect();
        if shown.is_empty() {
            return f.write_str("drop");
        }
        for (n, i) in shown.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{i}")?;
        }
        Ok(())
    }
}

//! OFPT_ERROR: the error types and codes of OpenFlow 1.3 (declared once, with their names), and
//! experimenter errors as OVS sends them.

use std::fmt;

use crate::error::ErrorCode;

/// OFPET_EXPERIMENTER.
pub const OFPET_EXPERIMENTER: u16 = 0xffff;

/// Each error type with its name and the names of its codes, in code order.
const TABLE: &[(u16, &str, &str, &[&str])] = &[
    (
        0,
        "OFPET_HELLO_FAILED",
        "OFPHFC_",
        &["INCOMPATIBLE", "EPERM"],
    ),
    (
        1,
        "OFPET_BAD_REQUEST",
        "OFPBRC_",
        &[
            "BAD_VERSION",
            "BAD_TYPE",
            "BAD_MULTIPART",
            "BAD_EXPERIMENTER",
            "BAD_EXP_TYPE",
            "EPERM",
            "BAD_LEN",
            "BUFFER_EMPTY",
            "BUFFER_UNKNOWN",
            "BAD_TABLE_ID",
            "IS_SLAVE",
            "BAD_PORT",
            "BAD_PACKET",
            "MULTIPART_BUFFER_OVERFLOW",
        ],
    ),
    (
        2,
        "OFPET_BAD_ACTION",
        "OFPBAC_",
        &[
            "BAD_TYPE",
            "BAD_LEN",
            "BAD_EXPERIMENTER",
            "BAD_EXP_TYPE",
            "BAD_OUT_PORT",
            "BAD_ARGUMENT",
            "EPERM",
            "TOO_MANY",
            "BAD_QUEUE",
            "BAD_OUT_GROUP",
            "MATCH_INCONSISTENT",
            "UNSUPPORTED_ORDER",
            "BAD_TAG",
            "BAD_SET_TYPE",
            "BAD_SET_LEN",
            "BAD_SET_ARGUMENT",
        ],
    ),
    (
        3,
        "OFPET_BAD_INSTRUCTION",
        "OFPBIC_",
        &[
            "UNKNOWN_INST",
            "UNSUP_INST",
            "BAD_TABLE_ID",
            "UNSUP_METADATA",
            "UNSUP_METADATA_MASK",
            "BAD_EXPERIMENTER",
            "BAD_EXP_TYPE",
            "BAD_LEN",
            "EPERM",
        ],
    ),
    (
        4,
        "OFPET_BAD_MATCH",
        "OFPBMC_",
        &[
            "BAD_TYPE",
            "BAD_LEN",
            "BAD_TAG",
            "BAD_DL_ADDR_MASK",
            "BAD_NW_ADDR_MASK",
            "BAD_WILDCARDS",
            "BAD_FIELD",
            "BAD_VALUE",
            "BAD_MASK",
            "BAD_PREREQ",
            "DUP_FIELD",
            "EPERM",
        ],
    ),
    (
        5,
        "OFPET_FLOW_MOD_FAILED",
        "OFPFMFC_",
        &[
            "UNKNOWN",
            "TABLE_FULL",
            "BAD_TABLE_ID",
            "OVERLAP",
            "EPERM",
            "BAD_TIMEOUT",
            "BAD_COMMAND",
            "BAD_FLAGS",
        ],
    ),
    (
        6,
        "OFPET_GROUP_MOD_FAILED",
        "OFPGMFC_",
        &[
            "GROUP_EXISTS",
            "INVALID_GROUP",
            "WEIGHT_UNSUPPORTED",
            "OUT_OF_GROUPS",
            "OUT_OF_BUCKETS",
            "CHAINING_UNSUPPORTED",
            "WATCH_UNSUPPORTED",
            "LOOP",
            "UNKNOWN_GROUP",
            "CHAINED_GROUP",
            "BAD_TYPE",
            "BAD_COMMAND",
            "BAD_BUCKET",
            "BAD_WATCH",
            "EPERM",
        ],
    ),
    (
        7,
        "OFPET_PORT_MOD_FAILED",
        "OFPPMFC_",
        &[
            "BAD_PORT",
            "BAD_HW_ADDR",
            "BAD_CONFIG",
            "BAD_ADVERTISE",
            "EPERM",
        ],
    ),
    (
        8,
        "OFPET_TABLE_MOD_FAILED",
        "OFPTMFC_",
        &["BAD_TABLE", "BAD_CONFIG", "EPERM"],
    ),
    (
        9,
        "OFPET_QUEUE_OP_FAILED",
        "OFPQOFC_",
        &["BAD_PORT", "BAD_QUEUE", "EPERM"],
    ),
    (
        10,
        "OFPET_SWITCH_CONFIG_FAILED",
        "OFPSCFC_",
        &["BAD_FLAGS", "BAD_LEN", "EPERM"],
    ),
    (
        11,
        "OFPET_ROLE_REQUEST_FAILED",
        "OFPRRFC_",
        &["STALE", "UNSUP", "BAD_ROLE"],
    ),
    (
        12,
        "OFPET_METER_MOD_FAILED",
        "OFPMMFC_",
        &[
            "UNKNOWN",
            "METER_EXISTS",
            "INVALID_METER",
            "UNKNOWN_METER",
            "BAD_COMMAND",
            "BAD_FLAGS",
            "BAD_RATE",
            "BAD_BURST",
            "BAD_BAND",
            "BAD_BAND_VALUE",
            "OUT_OF_METERS",
            "OUT_OF_BANDS",
        ],
    ),
    (
        13,
        "OFPET_TABLE_FEATURES_FAILED",
        "OFPTFFC_",
        &[
            "BAD_TABLE",
            "BAD_METADATA",
            "BAD_TYPE",
            "BAD_LEN",
            "BAD_ARGUMENT",
            "EPERM",
        ],
    ),
];

impl ErrorCode {
    /// The error's name as OVS prints it (`OFPBRC_BAD_TYPE`), or the numbers when unknown.
    pub fn name(&self) -> String {
        for (typ, _, prefix, codes) in TABLE {
            if *typ == self.typ {
                if let Some(c) = codes.get(self.code as usize) {
                    return format!("{prefix}{c}");
                }
            }
        }
        format!("OFPET({},{})", self.typ, self.code)
    }

    /// The name of the error type (`OFPET_BAD_REQUEST`).
    pub fn type_name(&self) -> String {
        TABLE
            .iter()
            .find(|t| t.0 == self.typ)
            .map(|t| t.1.to_string())
            .unwrap_or_else(|| format!("OFPET({})", self.typ))
    }

    /// Looks an error up by name (`OFPBRC_BAD_TYPE`).
    pub fn by_name(name: &str) -> Option<ErrorCode> {
        TABLE.iter().find_map(|(typ, _, prefix, codes)| {
            let rest = name.strip_prefix(prefix)?;
            let code = codes.iter().position(|c| *c == rest)?;
            Some(ErrorCode::new(*typ, code as u16))
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// An OFPT_ERROR message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorMsg {
    /// A standard error: type, code, and (usually) the start of the offending message.
    Standard { code: ErrorCode, data: Vec<u8> },
    /// An experimenter error (type 0xffff): OVS sends its NXM/Nicira errors this way.
    Experimenter {
        exp_code: u16,
        experimenter: u32,
        data: Vec<u8>,
    },
}

/// `OFPBMC_BAD_FIELD (64 bytes of the request)`, as an operator reads it in a log line.
impl fmt::Display for ErrorMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorMsg::Standard { code, data } => {
                write!(f, "{code} ({} bytes of the request)", data.len())
            }
            ErrorMsg::Experimenter {
                exp_code,
                experimenter,
                data,
            } => write!(
                f,
                "experimenter {experimenter:#010x} error {exp_code} ({} bytes of the request)",
                data.len()
            ),
        }
    }
}

impl ErrorMsg {
    pub fn new(code: ErrorCode, data: Vec<u8>) -> Self {
        ErrorMsg::Standard { code, data }
    }

    pub fn data(&self) -> &[u8] {
        match self {
            ErrorMsg::Standard { data, .. } | ErrorMsg::Experimenter { data, .. } => data,
        }
    }
}

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn error_messages_read_as_names() {
        let code = ErrorCode::by_name("OFPBMC_BAD_FIELD").expect("a known code");
        assert_eq!(
            ErrorMsg::new(code, vec![0; 64]).to_string(),
            "OFPBMC_BAD_FIELD (64 bytes of the request)"
        );
        let e = ErrorMsg::Experimenter {
            exp_code: 7,
            experimenter: 0x2320,
            data: vec![],
        };
        assert_eq!(
            e.to_string(),
            "experimenter 0x00002320 error 7 (0 bytes of the request)"
        );
    }
}

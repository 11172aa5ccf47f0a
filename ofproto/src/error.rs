//! Decoding errors, and the OpenFlow error (type, code) a switch would answer with for each.

use thiserror::Error;

/// An OpenFlow error as it travels in an `OFPT_ERROR` message: a type and a code.
///
/// The full typed table (names for printing) lives in [`crate::msg::error`]; decoding errors
/// only need the numbers, so they carry this pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode {
    pub typ: u16,
    pub code: u16,
}

impl ErrorCode {
    pub const fn new(typ: u16, code: u16) -> Self {
        ErrorCode { typ, code }
    }
}

/// Why a byte string is not a valid OpenFlow 1.3 message (or part of one).
///
/// `what` names the structure being decoded (`"ofp_flow_mod"`, `"OXM reg3"`, `"nx_action_ct"`),
/// so that a person reading the error knows where in the message it went wrong. Every variant
/// maps to the error a switch would send back, through [`DecodeError::ofp_error`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Fewer bytes than the structure needs.
    #[error("{what}: truncated: needs {need} bytes, only {have} present")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
        ofp: ErrorCode,
    },
    /// A length field that disagrees with the data, or is not a multiple of what it must be.
    #[error("{what}: bad length {len}: {why}")]
    BadLength {
        what: &'static str,
        len: usize,
        why: &'static str,
        ofp: ErrorCode,
    },
    /// A version other than OpenFlow 1.3 (wire version 0x04).
    #[error("unsupported OpenFlow version 0x{0:02x}: only OpenFlow 1.3 (0x04) is spoken")]
    BadVersion(u8),
    /// A value that is well-formed but not allowed (bad mask, reserved bits set, bad port ...).
    #[error("{what}: {why}")]
    Invalid {
        what: &'static str,
        why: String,
        ofp: ErrorCode,
    },
}

impl DecodeError {
    /// The OpenFlow error a switch would send for this input.
    pub fn ofp_error(&self) -> ErrorCode {
        match self {
            DecodeError::Truncated { ofp, .. }
            | DecodeError::BadLength { ofp, .. }
            | DecodeError::Invalid { ofp, .. } => *ofp,
            DecodeError::BadVersion(_) => ErrorCode::new(0, 0), // OFPET_HELLO_FAILED/INCOMPATIBLE
        }
    }
}

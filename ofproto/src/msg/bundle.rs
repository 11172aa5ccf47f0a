//! The ONF bundle extension as Open vSwitch speaks it in OpenFlow 1.3: EXPERIMENTER messages of
//! experimenter ONF (0x4f4e4600), type 2300 (bundle control) and 2301 (bundle add message).

use crate::header::code_table;

/// ONF's experimenter id.
pub const ONF_EXPERIMENTER: u32 = 0x4f4e_4600;
/// ONFT_BUNDLE_CONTROL.
pub const ONFT_BUNDLE_CONTROL: u32 = 2300;
/// ONFT_BUNDLE_ADD_MESSAGE.
pub const ONFT_BUNDLE_ADD_MESSAGE: u32 = 2301;
/// ONFT_ROLE_STATUS.
pub const ONFT_ROLE_STATUS: u32 = 1911;

code_table! {
    /// `ofp14_bundle_ctrl_type`.
    pub enum BundleCtrlType: u16 {
        OpenRequest = 0,
        OpenReply = 1,
        CloseRequest = 2,
        CloseReply = 3,
        CommitRequest = 4,
        CommitReply = 5,
        DiscardRequest = 6,
        DiscardReply = 7,
    }
}

impl BundleCtrlType {
    /// OVS's name for it.
    pub fn name(self) -> String {
        match self {
            BundleCtrlType::OpenRequest => "OPEN_REQUEST".into(),
            BundleCtrlType::OpenReply => "OPEN_REPLY".into(),
            BundleCtrlType::CloseRequest => "CLOSE_REQUEST".into(),
            BundleCtrlType::CloseReply => "CLOSE_REPLY".into(),
            BundleCtrlType::CommitRequest => "COMMIT_REQUEST".into(),
            BundleCtrlType::CommitReply => "COMMIT_REPLY".into(),
            BundleCtrlType::DiscardRequest => "DISCARD_REQUEST".into(),
            BundleCtrlType::DiscardReply => "DISCARD_REPLY".into(),
            BundleCtrlType::Unknown(n) => format!("{n}"),
        }
    }
}

/// Bundle flags.
pub mod bundle_flags {
    pub const ATOMIC: u16 = 1;
    pub const ORDERED: u16 = 2;
}

/// ONFT_BUNDLE_CONTROL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleCtrl {
    pub bundle_id: u32,
    pub ctrl_type: BundleCtrlType,
    pub flags: u16,
    /// Bundle properties, kept raw (OVS defines none it acts on).
    pub properties: Vec<u8>,
}

/// ONFT_BUNDLE_ADD_MESSAGE. The inner message travels with the same xid as the outer one (OVS
/// refuses anything else), so errors for it come back with that xid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleAdd {
    pub bundle_id: u32,
    pub flags: u16,
    pub message: Box<super::Message>,
}

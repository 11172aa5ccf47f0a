//! OpenFlow as `ovs-ofctl` prints it, so that a capture can be read by a person and our text
//! compared with Open vSwitch's: messages ([`msg`], also reachable as `ofproto::msg::print`),
//! matches, actions and instructions (their `Display` impls).

pub(crate) mod action;
pub(crate) mod instruction;
pub mod msg;
pub(crate) mod oxm;

//! OpenFlow 1.3 as Open vSwitch speaks it: a sans-IO wire codec and session state machine.
//!
//! No tokio, no sockets, no clock: bytes in, typed messages out, and back. The agent's
//! OpenFlow driver owns the socket and the time and feeds both to [`session`].
//!
//! # Layout
//! - [`header`]: the 8-byte header, the message-type table, framing.
//! - [`error`]: decoding errors and the OpenFlow error each maps to.
//! - [`oxm`]: matches (OXM basic fields and Nicira/OVS NXM fields): `field` (the table),
//!   `codec` (one TLV), `matching` (`ofp_match`: builders, validation).
//! - [`action`], [`instruction`]: what a flow does; `action/` has the codec, the Nicira
//!   extensions, conntrack and NAT, the controller action with properties, field ranges.
//! - [`msg`]: every message, one file per family, and the [`msg::Message`] enum.
//! - [`print`]: everything as `ovs-ofctl` prints it (messages, matches, actions, instructions);
//!   [`msg::print`] is [`print::msg`].
//! - [`session`]: the connection state machine (hello, features, echo, xids, barriers, bundles).

pub mod action;
pub mod error;
pub mod header;
pub mod instruction;
pub mod msg;
pub mod oxm;
mod parse;
pub mod print;
mod prop;
pub mod session;
mod writer;

pub use error::{DecodeError, ErrorCode};
pub use header::{Header, MsgType, OFP13_VERSION};

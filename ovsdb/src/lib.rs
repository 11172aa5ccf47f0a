//! OVSDB client (RFC 7047): transact, monitor, echo, and typed helpers for Open vSwitch's schema.
//!
//! # Layout
//! - [`client`]: the JSON-RPC connection over `unix:` or `tcp:` (calls, echo, monitors).
//! - [`vswitch`]: bridges and ports of the `Open_vSwitch` database, each change confirmed by
//!   ovs-vswitchd (`next_cfg`/`cur_cfg`).
//! - [`value`]: the OVSDB value model (atoms, sets, maps, uuids) and its JSON notation.

pub mod client;
pub mod value;
pub mod vswitch;

pub use client::{Client, Error};
pub use value::{Atom, Value, ValueError};

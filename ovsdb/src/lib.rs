//! OVSDB client (RFC 7047): transact, monitor, echo, typed helpers for Open vSwitch's schema
//!
//! # Layout
//! - [`value`]: the OVSDB value model (atoms, sets, maps, uuids) and its JSON notation.
//!
//! Not built yet: the JSON-RPC connection, `transact`/`monitor`, and the Open_vSwitch helpers.

pub mod value;

pub use value::{Atom, Value, ValueError};

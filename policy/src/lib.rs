//! The flow compiler: one host's desired state in, the exact flows and groups out.
//!
//! Pure and deterministic (no I/O, no clock): [`compile`] turns a [`HostState`] into a
//! [`FlowSet`]; [`diff`] turns the set a switch holds into the messages that make it hold
//! another. The table and register layout is in [`layout`] and `docs/pipeline.md`.
//!
//! [`Incremental`] keeps a host's state with its compiled set and takes [`StateChange`]s at a
//! cost about the size of each: it re-emits only the fragments (one object's flows) a change
//! touches, and says what changed as a [`Delta`], which [`diff_delta`] turns into switch
//! messages. [`compile`] stays the oracle it is tested against: both are built from the same
//! per-fragment emitters (`pipeline`, `rules`).
//!
//! [`sim`] steps a packet through a compiled set as Open vSwitch would and tells, flow by flow
//! and in intent terms, what became of it: a [`Trace`] from a [`Bridge`] (the base of
//! `netctl trace`).

pub mod flowset;
pub mod incremental;
pub mod layout;
pub mod logging;
pub mod model;
pub mod pipeline;
pub mod rules;
pub mod sim;

pub use flowset::{diff, diff_delta, Delta, Diff, Flow, FlowKey, FlowSet, Group, Meter};
pub use incremental::{Incremental, StateChange};
pub use model::{
    fmt_mac, parse_mac, tenant_zones, Direction, Endpoint, EndpointGroup, GatewayPort, HostState,
    Network, Peer, Policy, Problem, Profile, RemoteEndpoint, Rule, Segment,
};
pub use pipeline::{compile, Compiled};
pub use sim::{Bridge, Conntrack, Logged, Packet, Trace, Verdict};

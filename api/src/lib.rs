//! Weft's shared vocabulary at the edges: the intent objects (with Contiv's REST JSON field
//! names), their validation, Weft's intent spec and the plan that applies it, and Contiv's
//! original intent files.
//!
//! # Layout
//! - [`model`]: the objects (global, tenant, network, endpoint group, netprofile, policy, rule,
//!   app profile, node, endpoint) and their typed values (`Vlan`, `Vni`, `Subnet`, ...).
//! - [`validate`]: every mistake at once, each naming object, field and what to do.
//! - [`state`]: the whole desired state, the spec format, and plans between states.
//! - [`contiv`]: Contiv's intent files, converted to a spec, hosts and container placements.
//! - `proto/`: the gRPC contracts (netmaster ↔ netplugin), compiled by the crates that serve and
//!   use them.

pub mod contiv;
pub mod inspect;
pub mod model;
pub mod proto;
pub mod rest;
pub mod state;
pub mod validate;
pub mod watch;

pub use model::*;
pub use state::{plan, Change, Spec, State};
pub use validate::{validate_state, ValidationError, ValidationErrors};

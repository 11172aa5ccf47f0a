//! The endpoint service's unix-socket client lives in the `weft-local` crate (so that weft-cni
//! and netctl need not depend on netplugin); re-exported here for the agent's tests and
//! systemtests.

pub use weft_local::{connect, connect_unix, Client};

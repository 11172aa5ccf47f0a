//! weft-cni: a CNI plugin (specification 1.1.0; results also in 0.3.x, 0.4.0 and 1.0.0) that hands
//! a container's interfaces to the netplugin of its host over the endpoint service's unix socket.
//!
//! The pure parts (config, CNI_ARGS, precedence, results per version, error objects, the webhook's
//! answer) are modules of their own with unit tests; `plugin` does the I/O.

pub mod config;
pub mod error;
pub mod plugin;
pub mod result;
pub mod webhook;

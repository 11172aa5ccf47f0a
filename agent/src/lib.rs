//! netplugin: the per-host agent. It makes this host's Open vSwitch and kernel do what netmaster
//! says: the watch of desired state, the OpenFlow driver and reconciler, OVSDB for bridges and
//! ports, netlink for container interfaces, and the endpoint service runtimes call.

pub mod agent;
pub mod bridge;
pub mod client;
pub mod desired;
pub mod docker;
pub mod endpoint;
pub mod engine;
pub mod hostgw;
pub mod hoststate;
pub mod inspect;
pub mod kernel;
pub mod live;
pub mod local;
pub mod metrics;
pub mod netmaster;
pub mod nft;
pub mod ofdriver;
pub mod offload;
pub mod reconcile;
pub mod service;
pub mod verdict;

pub use agent::{Agent, Config, LocalPort};

//! netmaster: the one place where intent lives.
//!
//! # Layout
//! - [`alloc`]: VLAN ids, VNIs, subnets and addresses, each allocation one compare-and-swap.
//! - [`grpc`]: the service for agents: nodes under leases, endpoint addresses, the watch.
//! - [`watch`]: the hub behind the watch: one store watch, objects in units, each change sent
//!   only to the hosts whose units hold it.
//! - [`intent`]: the intent in the store; every change one validated transaction.
//! - [`rest`]: the REST API (Contiv's paths), [`server`]: running it (`netmaster` binary).
//! - [`store`]: the store interface with its two backends (embedded redb file, etcd), etcd's
//!   semantics: revisions, compare-and-swap transactions, resumable prefix watches, leases.
//!
//! - [`inspect`]: what netmaster shows of the inside (flows, traces across hosts, verdicts,
//!   Contiv's inspect, the policy matrix of [`matrix`]); [`web`]: the web view at `/ui/`.
//! - [`metrics`]: Prometheus `/metrics`; [`openapi`]: the OpenAPI document of the REST API.

pub mod alloc;
pub mod grpc;
pub mod inspect;
pub mod intent;
pub mod keys;
pub mod matrix;
pub mod metrics;
pub mod openapi;
pub mod rest;
pub mod server;
pub mod store;
pub mod watch;
pub mod web;

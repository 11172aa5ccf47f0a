//! netmaster: the one place where intent lives.
//!
//! # Layout
//! - [`alloc`]: VLAN ids, VNIs, subnets and addresses, each allocation one compare-and-swap.
//! - [`store`]: the store interface with its two backends (embedded redb file, etcd), etcd's
//!   semantics: revisions, compare-and-swap transactions, resumable prefix watches, leases.
//!
//! Still to come (issue 3): the REST API, the gRPC service for agents, the
//! `netmaster` binary.

pub mod alloc;
pub mod store;

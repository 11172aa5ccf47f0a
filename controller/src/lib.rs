//! netmaster: the one place where intent lives.
//!
//! # Layout
//! - [`store`]: the store interface with its two backends (embedded redb file, etcd), etcd's
//!   semantics: revisions, compare-and-swap transactions, resumable prefix watches, leases.
//!
//! Still to come (issue 3): allocators, the REST API, the gRPC service for agents, the
//! `netmaster` binary.

pub mod store;

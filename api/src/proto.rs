//! The gRPC contracts, generated from `api/proto/*.proto`.

/// netmaster's service for netplugin agents (`api/proto/agent.proto`).
pub mod agent {
    #![allow(clippy::all, missing_docs, rust_2018_idioms)]
    tonic::include_proto!("weft.agent.v1");
}

/// netplugin's endpoint service for runtimes (`api/proto/endpoint.proto`).
pub mod endpoint {
    #![allow(clippy::all, missing_docs, rust_2018_idioms)]
    tonic::include_proto!("weft.endpoint.v1");
}

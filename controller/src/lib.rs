//! netmaster: intent store, allocators, REST API and gRPC service for agents

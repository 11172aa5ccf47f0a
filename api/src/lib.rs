//! Weft's shared vocabulary: intent objects with validation, REST JSON types, gRPC protos

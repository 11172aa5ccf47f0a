//! Compiles the gRPC contracts in `proto/` (needs `protoc`, which scripts/install-deps.sh installs).
fn main() {
    println!("cargo:rerun-if-changed=proto/agent.proto");
    println!("cargo:rerun-if-changed=proto/endpoint.proto");
    tonic_prost_build::configure()
        .compile_protos(&["proto/agent.proto", "proto/endpoint.proto"], &["proto"])
        .expect(
            "compiling proto/*.proto (is protoc installed? scripts/install-deps.sh installs it)",
        );
}

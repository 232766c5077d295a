//! Writes the Rust gRPC client stubs for the plugin from the `.proto` source of truth.
//!
//! Run through `npm run gen` (which also regenerates the Go and TypeScript stubs), never from
//! `build.rs`: the output is committed so that building the plugin needs neither protoc nor this
//! crate, and CI regenerates it to prove it is not stale.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let proto_root = root.join("go-backend/api/proto");
    let out_dir = root.join("src/generated");
    let result = std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))
        .and_then(|()| {
            tonic_prost_build::configure()
                .build_server(false)
                .build_transport(false)
                .out_dir(&out_dir)
                .compile_protos(
                    &[proto_root.join("anysync/v1/health.proto")],
                    std::slice::from_ref(&proto_root),
                )
                .map_err(|e| format!("protoc failed: {e} (is protobuf-compiler installed?)"))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("anysync-codegen: {message}");
            ExitCode::FAILURE
        }
    }
}

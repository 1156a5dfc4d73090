//! Compiles the .proto files beside this crate. protoc comes from the
//! `protoc-bin-vendored` crate so a fresh machine needs no system package.

#![allow(
    clippy::disallowed_methods,
    reason = "a build script's inputs are cargo's environment"
)]

use std::path::{Path, PathBuf};

/// hotswap's own API: every method is implemented, so the generated traits
/// have no defaults and a forgotten method is a compile error.
const HOTSWAP: &[&str] = &[
    "hotswap/v1/model_store.proto",
    "hotswap/v1/predictor.proto",
    "hotswap/v1/control_plane.proto",
];

/// The Open Inference Protocol. Servers implement the methods hotswap
/// supports; the rest (Triton's shared-memory and settings extensions)
/// answer UNIMPLEMENTED through generated default methods.
const INFERENCE: &[&str] = &[
    "inference/grpc_service.proto",
    "inference/model_config.proto",
];

/// Fields that carry tensors or bodies, as `bytes::Bytes` rather than
/// `Vec<u8>`: decoded, they share the buffer the message arrived in, and
/// the HTTP bindings fill them with slices of the request body. A large
/// request is then not copied again on its way through a plane.
const SHARED_BYTES: &[&str] = &[
    ".inference.ModelInferRequest.raw_input_contents",
    ".inference.ModelInferResponse.raw_output_contents",
    ".hotswap.v1.PredictRequest.body",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    compile(&root, HOTSWAP, &out.join("hotswap_descriptor.bin"), false)?;
    compile(
        &root,
        INFERENCE,
        &out.join("inference_descriptor.bin"),
        true,
    )?;
    for dir in ["hotswap", "inference"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    Ok(())
}

fn compile(
    root: &Path,
    files: &[&str],
    descriptor: &Path,
    default_stubs: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let protos: Vec<PathBuf> = files.iter().map(|p| root.join(p)).collect();
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let mut builder = tonic_prost_build::configure()
        .generate_default_stubs(default_stubs)
        // prost's codec, with a check that a request does not cost many
        // times its size once decoded (`src/guarded.rs`).
        .codec_path("crate::guarded::GuardedCodec");
    for path in SHARED_BYTES {
        builder = builder.bytes(path);
    }
    builder
        .file_descriptor_set_path(descriptor)
        .compile_with_config(
            config,
            &protos,
            &[root.to_path_buf(), protoc_bin_vendored::include_path()?],
        )?;
    Ok(())
}

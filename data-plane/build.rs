//! Records the project's virtualenv at build time, so the worker finds the
//! ONNX Runtime library the setup installed there without the user setting
//! anything (see src/backend/onnx/runtime.rs), and adds the libpython rpath.

fn main() {
    let venv = std::env::var("HOTSWAP_VENV").unwrap_or_else(|_| {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
        format!("{manifest}/../.venv")
    });
    println!("cargo:rustc-env=HOTSWAP_BUILD_VENV={venv}");
    println!("cargo:rerun-if-env-changed=HOTSWAP_VENV");
    // Python predictors embed CPython: load the libpython this was built
    // against, not another build of the same version.
    pyo3_build_config::add_libpython_rpath_link_args();
}

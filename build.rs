//! Links the `hotswap` binary with an rpath to the libpython it was built
//! against (Python predictors embed CPython); without it the loader may pick
//! another build of the same Python version from the system. Records the
//! project's virtualenv, so the binary finds the runtime libraries the setup
//! installed there without the user setting anything (src/environment.rs).

#![allow(
    clippy::disallowed_methods,
    reason = "a build script's inputs are cargo's environment"
)]

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    let venv = std::env::var("HOTSWAP_VENV").unwrap_or_else(|_| {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
        format!("{manifest}/.venv")
    });
    println!("cargo:rustc-env=HOTSWAP_BUILD_VENV={venv}");
    println!("cargo:rerun-if-env-changed=HOTSWAP_VENV");
}

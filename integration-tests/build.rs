//! The test binaries link the data plane, which embeds CPython: the same
//! rpath as the `hotswap` binary (see the root build.rs).

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}

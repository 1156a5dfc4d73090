//! Python predictors embed CPython: this crate's own test binaries load the
//! libpython it was built against, not another build of the same version.

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}

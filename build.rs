//! Links the `hotswap` binary with an rpath to the libpython it was built
//! against (Python predictors embed CPython); without it the loader may pick
//! another build of the same Python version from the system.

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}

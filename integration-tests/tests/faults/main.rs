//! Faults that must not cost well-formed calls (issue 12): each test runs
//! real servers on loopback, injects one fault, and counts the calls that
//! failed because of it.

mod cache_eviction;
mod chaos;
mod edge;
mod hung_predictor;
mod outage;
mod output_sizes;
mod oversized;
mod pinned_downloads;
mod python_latest;
mod readiness;
mod stalled_download;
mod symlinks;

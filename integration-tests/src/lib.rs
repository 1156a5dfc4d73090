//! Shared harness for the integration tests: storage emulators, buckets on
//! each backend, servers on loopback and a Watch subscriber.

pub mod attack;
pub mod bucket;
pub mod certs;
pub mod chart;
pub mod compose;
pub mod control;
pub mod counting;
pub mod cpu;
pub mod emulator;
pub mod http;
pub mod latency;
pub mod load;
pub mod perf;
pub mod pool;
pub mod process;
pub mod proxy;
pub mod saved_model;
pub mod serving;
pub mod store;
pub mod wait;
pub mod worker;

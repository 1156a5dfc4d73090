//! Trust boundaries (issue 13): what a client, a forged worker or a
//! predictor can reach, against real servers and processes on loopback.

mod python_env;
mod rogue_store;

//! Trust boundaries (issue 13): what a client, a forged worker or a
//! predictor can reach, against real servers and processes on loopback.

mod front_door;
mod mutual_tls;
mod python_env;
mod rogue_store;
mod rogue_worker;

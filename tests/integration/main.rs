//! Integration tests: the real server binary, real clients (tokio-postgres with
//! the simple and the extended protocol, psql as a subprocess).

#![allow(clippy::unwrap_used)]

mod admission;
mod cancel;
mod clients;
mod common;
mod concurrency;
mod copy;
mod durability;
mod errors;
mod failsafe;
mod faults;
mod hostile;
mod lifecycle;
mod metrics;
mod mutations;
mod outage;
mod protocol;
mod pruning;
mod psql;
mod s3;
mod sql;
mod transactions;
mod types;

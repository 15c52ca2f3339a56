//! fusegate: a PostgreSQL-wire gateway to Databend-style fuse tables on object storage.
//!
//! Layers, each depending only on those below it:
//! `wire → session → sql → {query | ops | system} → fuse → storage`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod error;
pub mod fuse;
pub mod metrics;
pub mod ops;
pub mod query;
pub mod server;
pub mod session;
pub mod sql;
pub mod storage;
pub mod system;
pub mod wire;

pub use error::{Error, ErrorKind, Result};

/// The PostgreSQL version fusegate reports (server_version, version());
/// drivers parse the leading number.
pub const SERVER_VERSION: &str = concat!("16.6 (fusegate ", env!("CARGO_PKG_VERSION"), ")");

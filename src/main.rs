//! The fusegate server binary: parse flags, set up logging, serve.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fusegate::server::{Server, ServerConfig};
use tracing_subscriber::EnvFilter;

/// fusegate: a PostgreSQL-wire SQL server over Databend-style fuse tables
/// (snapshots → segments → Parquet blocks) on a local directory or S3.
///
/// Connect with any PostgreSQL client, e.g. `psql -h 127.0.0.1 -p 5433 -d default`.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address to listen on for PostgreSQL clients.
    #[arg(long, env = "FUSEGATE_LISTEN", default_value = "127.0.0.1:5433")]
    listen: SocketAddr,

    /// Directory holding the catalog and the tables created without a
    /// location; created if missing.
    #[arg(long, env = "FUSEGATE_DATA_DIR", default_value = "./fusegate-data")]
    data_dir: PathBuf,

    /// Memory all running queries may use together, in bytes or with a
    /// suffix (512MiB, 4GiB). Sorts and aggregations beyond it spill to disk
    /// or fail with SQLSTATE 53200.
    #[arg(long, env = "FUSEGATE_MEMORY_LIMIT", default_value = "4GiB", value_parser = parse_size)]
    memory_limit: usize,

    /// Log filter (tracing's EnvFilter syntax): error, warn, info, debug,
    /// or per module such as `fusegate=debug,info`.
    #[arg(long, env = "FUSEGATE_LOG", default_value = "info")]
    log: String,
}

fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("invalid size {text:?}"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB or GiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&args.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = ServerConfig {
        listen: args.listen,
        data_dir: args.data_dir,
        memory_limit: args.memory_limit,
    };
    let server = match Server::bind(&config).await {
        Ok(server) => server,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    match server.run(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

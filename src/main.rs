//! The fusegate server binary: parse flags, set up logging, serve.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod config_file;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};
use fusegate::fuse::FuseEngine;
use fusegate::server::{Server, ServerConfig};
use fusegate::storage::StorageLocation;
use fusegate::system::check;
use fusegate::wire::{AuthConfig, AuthMethod, Users};
use tracing_subscriber::EnvFilter;

/// fusegate: a PostgreSQL-wire SQL server over Databend-style fuse tables
/// (snapshots → segments → Parquet blocks) on a local directory or S3.
///
/// Connect with any PostgreSQL client, e.g. `psql -h 127.0.0.1 -p 5433 -d default`.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// A TOML file of settings named as these flags (`data-dir =
    /// "/srv/fusegate"`, `user = ["ada:secret"]`, `max-connections = 200`).
    /// The command line and environment variables win over it.
    #[arg(long, env = "FUSEGATE_CONFIG", value_name = "FILE", global = true)]
    config: Option<PathBuf>,

    /// Address to listen on for PostgreSQL clients.
    #[arg(long, env = "FUSEGATE_LISTEN", default_value = "127.0.0.1:5433")]
    listen: SocketAddr,

    /// Directory holding the catalog and the tables created without a
    /// location; created if missing.
    #[arg(
        long,
        env = "FUSEGATE_DATA_DIR",
        default_value = "./fusegate-data",
        global = true
    )]
    data_dir: PathBuf,

    /// Memory all running queries may use together, in bytes or with a
    /// suffix (512MiB, 4GiB). Sorts and aggregations beyond it spill to disk
    /// or fail with SQLSTATE 53200.
    #[arg(long, env = "FUSEGATE_MEMORY_LIMIT", default_value = "4GiB", value_parser = parse_size)]
    memory_limit: usize,

    /// How clients prove who they are: scram-sha-256, md5, password
    /// (cleartext; use with TLS) or trust (no password). Default:
    /// scram-sha-256 when users are configured, else trust — which is only
    /// allowed on a loopback address unless given explicitly.
    #[arg(long, env = "FUSEGATE_AUTH", value_name = "METHOD")]
    auth: Option<AuthMethod>,

    /// A user who may log in, as NAME:PASSWORD or NAME/ROLE:PASSWORD; repeat
    /// for more. Roles: admin (the default: everything), readwrite (all but
    /// VACUUM, PURGE and CALL system$...), readonly (queries, SHOW, COPY TO).
    /// The password may be a SCRAM verifier (`fusegate hash-password`, or
    /// PostgreSQL's `SCRAM-SHA-256$...` from pg_authid) so that it is not
    /// written down: such users log in with scram-sha-256 or password, not md5.
    #[arg(
        long = "user",
        env = "FUSEGATE_USERS",
        value_name = "NAME:PASSWORD",
        value_delimiter = ','
    )]
    users: Vec<String>,

    /// A file of users, one NAME[/ROLE]:PASSWORD per line (# starts a
    /// comment).
    #[arg(long, env = "FUSEGATE_USERS_FILE", value_name = "FILE")]
    users_file: Option<PathBuf>,

    /// End sessions that wait longer than this for their client's next
    /// statement outside a transaction block (FATAL 57P05), e.g. `10min`;
    /// a session may SET idle_session_timeout itself. Default: never.
    #[arg(long, env = "FUSEGATE_IDLE_SESSION_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    idle_session_timeout: Option<std::time::Duration>,

    /// Serve metrics for Prometheus (OpenMetrics text, any path) on this
    /// address: connections, sessions, statements by kind and outcome with
    /// latency histograms, storage requests and bytes, objects restored by
    /// fuse_amend and removed by VACUUM. Off unless given.
    #[arg(long, env = "FUSEGATE_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,

    /// For fault-injection tests only: fail this fraction (0 to 1) of
    /// storage operations with temporary errors, which are retried and
    /// reported like a flaky network's. One ratio for all (`0.3`) or one per
    /// operation (`restore=0.6,read=0.1`; read, write, list, delete, stat,
    /// restore). Reads fail through OpenDAL's chaos layer, the rest through
    /// fusegate's own, half of the writes and restores after the store did
    /// the work (a lost answer). Never set it in production.
    #[arg(
        long,
        env = "FUSEGATE_INJECT_STORAGE_FAULTS",
        value_name = "RATIO",
        default_value = "0"
    )]
    inject_storage_faults: fusegate::storage::FaultRatios,

    /// Queries that read more table blocks than this run on a second pool of
    /// threads with a lower CPU priority, so that they never hold the
    /// threads other sessions' small queries need. A very large number keeps
    /// every query on the connections' threads.
    #[arg(long, env = "FUSEGATE_HEAVY_QUERY_BLOCKS", value_name = "BLOCKS", default_value_t = fusegate::query::DEFAULT_HEAVY_QUERY_BLOCKS)]
    heavy_query_blocks: usize,

    /// Most sessions at once; more are refused with SQLSTATE 53300.
    #[arg(long, env = "FUSEGATE_MAX_CONNECTIONS", default_value_t = 100)]
    max_connections: usize,

    /// TLS certificate chain (PEM). With --tls-key, clients may use
    /// sslmode=require / verify-full; without, SSL requests are refused.
    #[arg(
        long,
        env = "FUSEGATE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(
        long,
        env = "FUSEGATE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,

    /// Log filter (tracing's EnvFilter syntax): error, warn, info, debug,
    /// or per module such as `fusegate=debug,info`. At info, every
    /// statement logs one line with its kind, duration and outcome.
    #[arg(long, env = "FUSEGATE_LOG", default_value = "info")]
    log: String,

    /// Log line format: text (for people) or json (one object per line, for
    /// log collectors).
    #[arg(long, env = "FUSEGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Check every table of --data-dir without changing anything: objects
    /// its current snapshot references that are missing or whose size
    /// differs from the metadata, and whether a versioned restore
    /// (`CALL system$fuse_amend`) could bring each back. Exits 1 when it
    /// finds a problem. Safe while a server runs on the same directory.
    Check,
    /// Read a password from standard input (one line) and print its
    /// SCRAM-SHA-256 verifier, PostgreSQL's `SCRAM-SHA-256$...` form, for
    /// --user or --users-file in place of the password.
    HashPassword,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

/// The flags, with --config's file filling those not given otherwise.
fn parse_args() -> Result<Args, String> {
    let command = Args::command();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = command.clone().get_matches_from(argv.clone());
    let Some(path) = matches.get_one::<PathBuf>("config") else {
        return Args::from_arg_matches(&matches).map_err(|e| e.to_string());
    };
    let argv = config_file::merge(&command, &matches, argv, path)?;
    let matches = command
        .try_get_matches_from(argv)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Args::from_arg_matches(&matches).map_err(|e| e.to_string())
}

/// `fusegate check`: fuse_check of every table, one line per table and
/// per problem.
async fn check_all(data_dir: &std::path::Path) -> ExitCode {
    let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let opened = match dir.to_str() {
        _ if !dir.is_dir() => {
            eprintln!("fusegate check: no data directory at {}", dir.display());
            return ExitCode::FAILURE;
        }
        Some(dir) => FuseEngine::open(StorageLocation::local(dir)).await,
        None => Err(fusegate::Error::internal("the data directory is not UTF-8")),
    };
    let checked = async {
        let fuse = opened?;
        let state = fuse.catalog().current().await?;
        let mut whole = true;
        for db in &state.databases {
            for table in state.tables_of(db.id) {
                let name = format!("{}.{}", db.name, table.name);
                match check::fuse_check(&fuse, &db.name, &table.name).await {
                    Ok(report) => {
                        println!(
                            "{name}: {} objects checked, {} problems",
                            report.checked,
                            report.findings.len()
                        );
                        for f in &report.findings {
                            let restore = if f.restorable {
                                "; CALL system$fuse_amend can restore it"
                            } else {
                                ""
                            };
                            println!("  {} {}: {}{restore}", f.kind, f.object, f.problem);
                        }
                        whole &= report.findings.is_empty();
                    }
                    Err(e) => {
                        println!("{name}: cannot check: {e}");
                        whole = false;
                    }
                }
            }
        }
        Ok::<bool, fusegate::Error>(whole)
    };
    match checked.await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fusegate check: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A duration as PostgreSQL's settings take it: `90s`, `10min`, `1h`, or
/// milliseconds without a unit.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    fusegate::session::parse_milliseconds(text)
        .map(std::time::Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is not a duration (units: ms, s, min, h, d)"))
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

fn main() -> ExitCode {
    // With RUST_BACKTRACE set (for panics), errors that libraries build would
    // capture backtraces too: OpenDAL wraps each io::Error in an anyhow
    // error, and every statement's catalog probe meets a missing file (3 % of
    // a prepared lookup's CPU). Panics keep theirs; RUST_LIB_BACKTRACE=1
    // still asks for the others.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: first thing in main, before any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    // Planning and optimizing recurse once per level of an expression's
    // nesting; statements are refused past sql::MAX_NESTING, and these stacks
    // hold that depth even in a debug build. Stacks are reserved, not
    // committed: only the pages a deep statement touches use memory.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(fusegate::sql::STACK_SIZE)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => {
            eprintln!("fusegate: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `fusegate hash-password`: the verifier of the password on stdin.
fn hash_password() -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("fusegate: cannot read the password: {e}");
        return ExitCode::FAILURE;
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!(
            "fusegate: give the password on standard input, e.g. `fusegate hash-password < file`"
        );
        return ExitCode::FAILURE;
    }
    println!("{}", fusegate::wire::hash_password(password));
    ExitCode::SUCCESS
}

async fn run() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("fusegate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&args.log).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().init(),
    }
    match args.command {
        Some(Cmd::Check) => return check_all(&args.data_dir).await,
        Some(Cmd::HashPassword) => return hash_password(),
        None => {}
    }
    let mut users = Users::default();
    let loaded = args
        .users
        .iter()
        .try_for_each(|u| users.add(u))
        .and_then(|()| match &args.users_file {
            Some(file) => users.load(file),
            None => Ok(()),
        });
    if let Err(e) = loaded {
        tracing::error!(error = %e, "cannot start");
        return ExitCode::FAILURE;
    }
    let method = args.auth.unwrap_or(if users.is_empty() {
        AuthMethod::Trust
    } else {
        AuthMethod::ScramSha256
    });
    if args.inject_storage_faults.any() {
        tracing::warn!(
            ratios = ?args.inject_storage_faults,
            "injecting storage faults (--inject-storage-faults): for tests only"
        );
        fusegate::storage::Storage::inject_faults(args.inject_storage_faults);
    }
    if let Some(addr) = args.metrics_listen {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let addr = listener.local_addr().unwrap_or(addr);
                tracing::info!(metrics = %addr, "serving metrics");
                tokio::spawn(fusegate::metrics::serve(listener));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start: cannot listen on --metrics-listen {addr}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut config = ServerConfig::new(args.listen, args.data_dir);
    config.memory_limit = args.memory_limit;
    config.idle_session_timeout = args.idle_session_timeout.filter(|d| !d.is_zero());
    config.auth = AuthConfig::new(method, users);
    config.max_connections = args.max_connections;
    config.heavy_query_blocks = args.heavy_query_blocks;
    config.tls = args.tls_cert.zip(args.tls_key);
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

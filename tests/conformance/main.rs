//! Runs sqllogictest files against the real server over the wire, each file
//! once through the simple protocol and once through the extended protocol
//! (where each query runs twice, the second time on the physical plan the
//! prepared statement kept), and prints a table of files, records passed and
//! failed.
//!
//! - `conformance/*.slt`: fusegate's own suites; every record must pass.
//! - `../shared/sqllogictest/select*.test` (SQLite's suites), when present:
//!   the pass rate is reported, and each failing record must be one listed in
//!   `conformance/sqlite-known-failures.txt` with the same SQLSTATE (their
//!   causes are in conformance/README.md): a new failure fails the run, and so
//!   does a listed record that now passes, until its line is removed. Set
//!   FUSEGATE_SQLITE_SUITES=0 to skip them, or to a comma-separated list of
//!   file names to pick some.
//!
//! Errors carry their SQLSTATE, so `statement error 42P01` matches on it.

#![allow(clippy::unwrap_used)]

#[path = "../integration/common.rs"]
mod common;
// Shared with the integration tests, which use more of it.
#[allow(dead_code)]
#[path = "../integration/s3.rs"]
mod s3;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Record, Runner};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use common::TestServer;

#[derive(Debug)]
struct DbError(String);

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => DbError(format!("SQLSTATE {}: {}", db.code().code(), db.message())),
            None => DbError(e.to_string()),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    Simple,
    Extended,
}

struct Pg {
    client: Client,
    protocol: Protocol,
}

#[async_trait]
impl AsyncDB for Pg {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        match self.protocol {
            Protocol::Simple => simple(&self.client, sql).await,
            Protocol::Extended => extended(&self.client, sql).await,
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "fusegate"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await
    }
}

fn cell(v: Option<&str>) -> String {
    match v {
        None => "NULL".into(),
        Some("") => "(empty)".into(),
        Some(s) => s.to_string(),
    }
}

async fn simple(client: &Client, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
    let messages = client.simple_query(sql).await?;
    let mut rows = Vec::new();
    let mut width = None;
    let mut count = 0;
    for m in messages {
        match m {
            SimpleQueryMessage::RowDescription(cols) => width = Some(cols.len()),
            SimpleQueryMessage::Row(r) => rows.push((0..r.len()).map(|i| cell(r.get(i))).collect()),
            SimpleQueryMessage::CommandComplete(n) => count = n,
            _ => {}
        }
    }
    Ok(match width {
        Some(w) => DBOutput::Rows {
            types: vec![DefaultColumnType::Any; w],
            rows,
        },
        None => DBOutput::StatementComplete(count),
    })
}

async fn extended(client: &Client, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
    let stmt = client.prepare(sql).await?;
    if stmt.columns().is_empty() {
        return Ok(DBOutput::StatementComplete(
            client.execute(&stmt, &[]).await?,
        ));
    }
    // A query runs twice: from its second execution a prepared statement
    // runs on the physical plan it kept (src/query/kept.rs), and that run's
    // rows are the ones checked.
    let head = sql.trim_start().get(..6).unwrap_or("").to_ascii_uppercase();
    if matches!(head.as_str(), "SELECT" | "VALUES") {
        client.query(&stmt, &[]).await?;
    }
    let result = client.query(&stmt, &[]).await?;
    let rows = result
        .iter()
        .map(|row| {
            (0..row.len())
                .map(|i| binary_cell(row, i).map_err(|e| DbError(format!("column {i}: {e}"))))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DBOutput::Rows {
        types: vec![DefaultColumnType::Any; stmt.columns().len()],
        rows,
    })
}

/// A binary-format value as the PostgreSQL text of it (independently of
/// fusegate's own text rendering, which the simple protocol checks).
fn binary_cell(row: &tokio_postgres::Row, i: usize) -> Result<String, tokio_postgres::Error> {
    let ty = row.columns()[i].type_().clone();
    let text = match ty {
        Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(|v| v.to_string()),
        Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(|v| v.to_string()),
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(|v| v.to_string()),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)?
            .map(|v| pg_float(v as f64, 6)),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(|v| pg_float(v, 15)),
        Type::NUMERIC => row.try_get::<_, Option<Decimal>>(i)?.map(|v| v.to_string()),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map(|v| if v { "t".into() } else { "f".into() }),
        Type::DATE => row
            .try_get::<_, Option<NaiveDate>>(i)?
            .map(|v| v.format("%Y-%m-%d").to_string()),
        Type::TIMESTAMP => row.try_get::<_, Option<NaiveDateTime>>(i)?.map(|v| {
            let s = v.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }),
        _ => row.try_get::<_, Option<String>>(i)?,
    };
    Ok(cell(text.as_deref()))
}

/// PostgreSQL's float output (shortest exact digits; exponent form outside
/// 1e-4 .. 1e`precision`).
fn pg_float(v: f64, precision: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exp = v.abs().log10().floor() as i32;
    if exp < -4 || exp >= precision {
        let s = format!("{v:e}");
        let (m, e) = s.split_once('e').unwrap();
        let e: i32 = e.parse().unwrap();
        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    } else {
        format!("{v}")
    }
}

struct FileResult {
    name: String,
    protocol: Protocol,
    records: usize,
    passed: usize,
    failures: Vec<Failure>,
    seconds: f64,
}

/// A failing record: its line in the file and the runner's report.
struct Failure {
    line: u32,
    text: String,
}

impl Failure {
    /// How the known-failures list names it: `<line> <SQLSTATE>`, or
    /// `<line> result` when the record ran but its output differed.
    fn key(&self) -> String {
        let kind = self
            .text
            .split_once("SQLSTATE ")
            .map_or("result", |(_, rest)| rest.get(..5).unwrap_or(rest));
        format!("{} {kind}", self.line)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FileResult {
    fn new(name: impl Into<String>, protocol: Protocol) -> FileResult {
        FileResult {
            name: name.into(),
            protocol,
            records: 0,
            passed: 0,
            failures: Vec::new(),
            seconds: 0.0,
        }
    }
}

/// Runs `path` in a new database `db`. The queries after a file's last
/// statement only read, so they are split over `shards` connections run at
/// once (SQLite's select5 alone otherwise keeps one core busy for most of a
/// CI run's conformance stage).
async fn run_file(
    server: &TestServer,
    path: &Path,
    protocol: Protocol,
    db: &str,
    hash_threshold: usize,
    shards: usize,
    s3: Option<&s3::S3>,
) -> FileResult {
    let admin = server.client().await;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let mut records: Vec<Record<DefaultColumnType>> = sqllogictest::parse_file(path).unwrap();
    // Records that set how the runner compares results, given to every shard:
    // SQLite's suites list results one value per line.
    let setup = if hash_threshold > 0 {
        sqllogictest::parse::<DefaultColumnType>("control resultmode valuewise\n").unwrap()
    } else {
        Vec::new()
    };
    // Shards run on connections of their own, so only files whose session
    // state is all made by statements (SQLite's) may be split.
    let tail = if shards > 1 {
        let start = records
            .iter()
            .rposition(|r| {
                !matches!(
                    r,
                    Record::Query { .. } | Record::Comment(_) | Record::Newline
                )
            })
            .map_or(0, |i| i + 1);
        records.split_off(start)
    } else {
        Vec::new()
    };
    let started = Instant::now();
    let mut result = FileResult::new(path.file_name().unwrap().to_string_lossy(), protocol);
    let head = setup.iter().cloned().chain(records).collect();
    run_records(server, protocol, db, hash_threshold, s3, head, &mut result).await;
    let chunk = tail.len().div_ceil(shards).max(1);
    let parts = futures::future::join_all(tail.chunks(chunk).map(|part| {
        let records = setup.iter().chain(part).cloned().collect();
        async move {
            let mut part = FileResult::new("", protocol);
            run_records(server, protocol, db, hash_threshold, s3, records, &mut part).await;
            part
        }
    }))
    .await;
    for part in parts {
        result.records += part.records;
        result.passed += part.passed;
        result.failures.extend(part.failures);
    }
    result.seconds = started.elapsed().as_secs_f64();
    admin
        .batch_execute(&format!("DROP DATABASE {db}"))
        .await
        .unwrap();
    result
}

/// Runs `records` in order on a connection of their own to `db`, counting
/// statements and queries into `result`.
async fn run_records(
    server: &TestServer,
    protocol: Protocol,
    db: &str,
    hash_threshold: usize,
    s3: Option<&s3::S3>,
    records: Vec<Record<DefaultColumnType>>,
    result: &mut FileResult,
) {
    let conn = server.conn_str(db);
    let mut runner = Runner::new(move || {
        let conn = conn.clone();
        async move {
            let (client, connection) = tokio_postgres::connect(&conn, NoTls)
                .await
                .map_err(DbError::from)?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok(Pg { client, protocol })
        }
    });
    runner.add_label("fusegate");
    // As sqllogictest-bin's parallel mode does: files may name their database.
    runner.set_var("__DATABASE__".to_string(), db.to_string());
    if let Some(s3) = s3 {
        for (name, value) in s3_vars(s3, db) {
            runner.set_var(name.to_string(), value);
        }
    }
    runner.with_hash_threshold(hash_threshold);
    for record in records {
        let line = match &record {
            Record::Statement { loc, .. } | Record::Query { loc, .. } => Some(loc.line()),
            _ => None,
        };
        let outcome = runner.run_async(record).await;
        if let Some(line) = line {
            result.records += 1;
            match outcome {
                Ok(_) => result.passed += 1,
                Err(e) => result.failures.push(Failure {
                    line,
                    text: e.display(false).to_string(),
                }),
            }
        }
    }
}

/// The variables failsafe.slt uses: a location in the versioned bucket under
/// a prefix of this run's own, and a command deleting everything under it.
fn s3_vars(s3: &s3::S3, db: &str) -> [(&'static str, String); 2] {
    let prefix = format!("{}/{db}", s3.prefix);
    let location = s3.location_at(&s3.versioned_bucket, &prefix);
    let delete = format!(
        "'{}' '{}/tests/s3/s3ctl.py' '{}' '{}' '{}' '{}' delete-prefix '{}' '{prefix}/'",
        s3::python().display(),
        env!("CARGO_MANIFEST_DIR"),
        s3.endpoint,
        s3.access_key_id,
        s3.secret_access_key,
        s3.region,
        s3.versioned_bucket
    );
    [
        ("FUSEGATE_S3_LOCATION", location),
        ("FUSEGATE_S3_DELETE", delete),
    ]
}

/// Compares the SQLite suites' failures with `conformance/sqlite-known-failures.txt`
/// (`<file> <line> <SQLSTATE or "result">` a line), printing each difference;
/// false when there is one. The run's own list is written beside the report,
/// to replace the committed one when a change fixes records.
fn matches_known_failures(root: &Path, runs: &[FileResult]) -> bool {
    use std::collections::BTreeSet;
    let listed = root.join("conformance/sqlite-known-failures.txt");
    let text = std::fs::read_to_string(&listed).unwrap();
    let known: BTreeSet<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut ok = true;
    let mut now = String::new();
    for r in runs {
        let keys: Vec<String> = r
            .failures
            .iter()
            .map(|f| format!("{} {}", r.name, f.key()))
            .collect();
        for (f, key) in r.failures.iter().zip(&keys) {
            now.push_str(key);
            now.push('\n');
            if !known.contains(key.as_str()) {
                ok = false;
                println!("\nNEW FAILURE {key} (not in {}):\n{f}", listed.display());
            }
        }
        let prefix = format!("{} ", r.name);
        for k in known.iter().filter(|k| k.starts_with(&prefix)) {
            if !keys.iter().any(|key| key == k) {
                ok = false;
                println!(
                    "\nNO LONGER FAILS AS LISTED {k}: it passes, or fails another way \
                     (above); remove or correct its line in {}",
                    listed.display()
                );
            }
        }
    }
    let _ = std::fs::write(root.join("target/sqlite-known-failures.txt"), now);
    ok
}

fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == extension))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn print_table(title: &str, results: &[FileResult]) {
    println!("\n{title}");
    println!(
        "{:<28} {:<9} {:>8} {:>8} {:>8} {:>8}",
        "file", "protocol", "records", "passed", "failed", "seconds"
    );
    for r in results {
        println!(
            "{:<28} {:<9} {:>8} {:>8} {:>8} {:>8.1}",
            r.name,
            format!("{:?}", r.protocol).to_lowercase(),
            r.records,
            r.passed,
            r.records - r.passed,
            r.seconds
        );
    }
}

#[tokio::main]
async fn main() {
    let server = TestServer::start();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // failsafe.slt needs a versioned S3 bucket: moto, started here.
    let s3 = s3::S3::start();
    let mut own = Vec::new();
    let mut n = 0;
    for file in files(&root.join("conformance"), "slt") {
        for protocol in [Protocol::Simple, Protocol::Extended] {
            n += 1;
            let db = format!("slt{n}");
            own.push(run_file(&server, &file, protocol, &db, 0, 1, Some(&s3)).await);
        }
    }
    print_table("fusegate conformance suites (conformance/*.slt)", &own);
    let mut failed = false;
    for r in &own {
        for f in &r.failures {
            failed = true;
            println!("\nFAILED {} ({:?}):\n{f}", r.name, r.protocol);
        }
    }

    let sqlite_dir = root.join("../shared/sqllogictest");
    let pick = std::env::var("FUSEGATE_SQLITE_SUITES").unwrap_or_default();
    if pick != "0" && sqlite_dir.exists() {
        let mut runs = Vec::new();
        for file in files(&sqlite_dir, "test") {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            if !pick.is_empty() && !pick.split(',').any(|p| p == name) {
                continue;
            }
            n += 1;
            let db = format!("slt{n}");
            let server = &server;
            // SQLite's runner hashes results of more than 8 values by default.
            runs.push(
                async move { run_file(server, &file, Protocol::Simple, &db, 8, 2, None).await },
            );
        }
        // The files run at once, each in a database of its own: the server
        // then keeps every core busy (one after another they took most of a
        // CI run's time).
        let started = Instant::now();
        let sqlite = futures::future::join_all(runs).await;
        let wall = started.elapsed().as_secs_f64();
        print_table(
            "SQLite sqllogictest suites (../shared/sqllogictest), simple protocol",
            &sqlite,
        );
        let report = root.join("target/sqlite-suite-failures.txt");
        let text: String = sqlite
            .iter()
            .flat_map(|r| {
                r.failures
                    .iter()
                    .map(move |f| format!("== {}\n{f}\n", r.name))
            })
            .collect();
        let _ = std::fs::write(&report, text);
        println!("(run at once: {wall:.1} s in all)");
        println!("failures written to {}", report.display());
        failed |= !matches_known_failures(&root, &sqlite);
    }
    if failed {
        std::process::exit(1);
    }
}

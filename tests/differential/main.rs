//! Differential testing: the same schema, data and queries on a real
//! PostgreSQL (a throwaway cluster this harness starts on loopback) and on
//! fusegate, results compared after a documented normalisation:
//!
//! - values compared as PostgreSQL's text output (the simple protocol);
//! - rows compared as a sorted multiset when the query has no top-level
//!   ORDER BY, in order otherwise;
//! - floating-point text equal to 12 significant digits when both sides
//!   print 15 or more digits or an exponent (float formatting noise; a
//!   fixed-scale numeric like `1.5000000000000000` against `1.5` stays a
//!   difference); results whose float digits vary with summation order are
//!   marked `(unstable)` in known.tsv;
//! - errors compared by SQLSTATE.
//!
//! The corpus is conformance/differential/{setup,queries}.sql; known
//! mismatches, each with its reason, are in known.tsv. A new mismatch fails
//! the run, and so does a known one that now matches (so the list stays
//! true). The cluster uses the C locale and UTC, as fusegate does.

#![allow(clippy::unwrap_used)]

#[path = "../integration/common.rs"]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use common::TestServer;

/// A PostgreSQL cluster in a temporary directory, stopped on drop.
struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

/// Runs a PostgreSQL program as the `postgres` user when we are root (the
/// server refuses to run as root).
fn pg_command(program: &Path) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("FUSEGATE_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "the differential tests need a PostgreSQL server (Debian: apt-get install postgresql); \
             ./scripts/test installs it, or set FUSEGATE_TEST_PG_BIN to its bin directory"
        )
    })
}

impl PgCluster {
    fn start() -> PgCluster {
        let bin = pg_bin();
        let dir = tempfile::tempdir().unwrap();
        if unsafe { libc::geteuid() } == 0 {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster directory");
        }
        let data = dir.path().join("data");
        let out = pg_command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c timezone=UTC",
            dir.path().display()
        );
        let out = pg_command(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-w", "-o", &options, "-l"])
            .arg(dir.path().join("log"))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
        PgCluster { bin, dir, port }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = pg_command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

async fn connect(conn: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(conn, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A query's outcome as compared: column names and rows, or a SQLSTATE.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
    },
    Error(String),
}

async fn run(client: &Client, sql: &str) -> Outcome {
    match client.simple_query(sql).await {
        Ok(messages) => {
            let mut columns = Vec::new();
            let mut rows = Vec::new();
            for m in messages {
                match m {
                    SimpleQueryMessage::RowDescription(cols) => {
                        columns = cols.iter().map(|c| c.name().to_string()).collect()
                    }
                    SimpleQueryMessage::Row(r) => {
                        rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                    }
                    _ => {}
                }
            }
            Outcome::Rows { columns, rows }
        }
        Err(e) => Outcome::Error(
            e.as_db_error()
                .map(|d| d.code().code().to_string())
                .unwrap_or_else(|| format!("no SQLSTATE: {e}")),
        ),
    }
}

/// Whether `sql` ends with an ORDER BY at the top level.
fn is_ordered(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    let mut depth = 0i32;
    let mut last_order_at_top = None;
    let bytes = lower.as_bytes();
    let mut in_string = false;
    for i in 0..bytes.len() {
        match bytes[i] {
            b'\'' => in_string = !in_string,
            b'(' if !in_string => depth += 1,
            b')' if !in_string => depth -= 1,
            _ if !in_string && depth == 0 && lower[i..].starts_with("order by") => {
                last_order_at_top = Some(i)
            }
            _ => {}
        }
    }
    last_order_at_top.is_some()
}

/// Whether number text carries float formatting noise: 15 or more digits
/// or an exponent. Both sides must, so that `1.5000000000000000` against
/// `1.5` or `9.9999999999999999` against `10` stay differences; results
/// whose last float digits depend on summation order are marked unstable
/// in known.tsv instead.
fn noisy(s: &str) -> bool {
    s.chars().filter(|c| c.is_ascii_digit()).count() >= 15 || s.contains('e')
}

fn same_value(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) if a != b && noisy(a) && noisy(b) => {
            match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) => x == y || ((x - y).abs() <= 1e-12 * x.abs().max(y.abs())),
                _ => false,
            }
        }
        _ => a == b,
    }
}

fn same(sql: &str, pg: &Outcome, fg: &Outcome) -> bool {
    match (pg, fg) {
        (
            Outcome::Rows {
                columns: pc,
                rows: pr,
            },
            Outcome::Rows {
                columns: fc,
                rows: fr,
            },
        ) => {
            if pc != fc || pr.len() != fr.len() {
                return false;
            }
            let (mut pr, mut fr) = (pr.clone(), fr.clone());
            if !is_ordered(sql) {
                pr.sort();
                fr.sort();
            }
            pr.iter()
                .zip(&fr)
                .all(|(p, f)| p.len() == f.len() && p.iter().zip(f).all(|(a, b)| same_value(a, b)))
        }
        (Outcome::Error(p), Outcome::Error(f)) => p == f,
        _ => false,
    }
}

fn show(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Error(code) => format!("ERROR {code}"),
        Outcome::Rows { columns, rows } => {
            let mut text = columns.join(" | ");
            for row in rows.iter().take(6) {
                let cells: Vec<&str> = row.iter().map(|c| c.as_deref().unwrap_or("NULL")).collect();
                text.push_str(&format!("\n      {}", cells.join(" | ")));
            }
            if rows.len() > 6 {
                text.push_str(&format!("\n      ... {} rows", rows.len()));
            }
            text
        }
    }
}

/// Statements of a file: one per line; `--` lines are comments, and a
/// `-- name` line opens a section that the report groups by.
fn statements(text: &str) -> Vec<(String, String)> {
    let mut section = "general".to_string();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix("--") {
            let comment = comment.trim();
            if !comment.is_empty() {
                section = comment.chars().take(30).collect();
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        out.push((section.clone(), line.trim_end_matches(';').to_string()));
    }
    out
}

#[tokio::main]
async fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance/differential");
    let setup = std::fs::read_to_string(root.join("setup.sql")).unwrap();
    let queries = std::fs::read_to_string(root.join("queries.sql")).unwrap();
    let known: HashMap<String, String> = std::fs::read_to_string(root.join("known.tsv"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .map(|(q, why)| (q.trim().to_string(), why.trim().to_string()))
        .collect();

    let cluster = PgCluster::start();
    let pg = connect(&format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        cluster.port
    ))
    .await;
    let server = TestServer::start();
    let fg = server.client().await;

    for (_, statement) in statements(&setup) {
        for (name, client) in [("PostgreSQL", &pg), ("fusegate", &fg)] {
            if let Outcome::Error(code) = run(client, &statement).await {
                panic!(
                    "setup failed on {name} ({code}): {statement}\n{}",
                    server.log()
                );
            }
        }
    }

    let mut per_section: BTreeMap<String, (usize, usize, usize, usize)> = BTreeMap::new();
    let mut new_mismatches = Vec::new();
    let mut fixed = Vec::new();
    for (section, sql) in statements(&queries) {
        let expected = run(&pg, &sql).await;
        let got = run(&fg, &sql).await;
        let entry = per_section.entry(section).or_default();
        entry.0 += 1;
        let matched = same(&sql, &expected, &got);
        match (matched, known.get(&sql)) {
            (true, None) => entry.1 += 1,
            (true, Some(reason)) => {
                entry.1 += 1;
                // An unstable one (float summation order varies) may match.
                if !reason.starts_with("(unstable)") {
                    fixed.push(sql.clone());
                }
            }
            (false, Some(_)) => entry.2 += 1,
            (false, None) => {
                entry.3 += 1;
                new_mismatches.push(format!(
                    "  {sql}\n    PostgreSQL: {}\n    fusegate:   {}",
                    show(&expected),
                    show(&got)
                ));
            }
        }
    }

    println!(
        "\n{:<20} {:>8} {:>8} {:>8} {:>8}",
        "section", "queries", "match", "known", "new"
    );
    let mut totals = (0, 0, 0, 0);
    for (section, (n, ok, k, new)) in &per_section {
        println!("{section:<20} {n:>8} {ok:>8} {k:>8} {new:>8}");
        totals = (totals.0 + n, totals.1 + ok, totals.2 + k, totals.3 + new);
    }
    println!(
        "{:<20} {:>8} {:>8} {:>8} {:>8}",
        "total", totals.0, totals.1, totals.2, totals.3
    );
    if !new_mismatches.is_empty() {
        println!(
            "\nmismatches not in known.tsv:\n{}",
            new_mismatches.join("\n")
        );
    }
    if !fixed.is_empty() {
        println!("\nknown mismatches that now match (remove them from known.tsv):");
        for sql in &fixed {
            println!("  {sql}");
        }
    }
    drop(cluster);
    if !new_mismatches.is_empty() || !fixed.is_empty() {
        std::process::exit(1);
    }
}

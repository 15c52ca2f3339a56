//! Fail-Safe restore speed: deletes N blocks of a table in a versioned bucket
//! (moto's S3 server, started here) and restores them three ways in one run:
//!
//! - `fuse_amend`: one versioned listing, then the listed delete markers
//!   removed in batches of 1,000 (S3's DeleteObjects);
//! - server-side copies of the listed versions (`restore_with(..).version(v)`,
//!   what fuse_amend falls back to), one at a time;
//! - one-at-a-time GET of the old version + PUT (what Databend's amend does).
//!
//! moto answers on loopback in microseconds but serves only a few hundred
//! requests a second (one Python process), so the run is repeated with a TCP
//! proxy in front of it that delays every chunk by half a round trip, as a
//! real bucket across a network does (FUSEGATE_BENCH_RTT_MS, default "0,20").
//!
//! Run: `cargo bench --bench fail_safe` (N: FUSEGATE_BENCH_BLOCKS, default 2000).
//! Needs target/py from ./scripts/test (moto, boto3), or FUSEGATE_TEST_PYTHON.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fusegate::fuse::FuseEngine;
use fusegate::query::QueryEngine;
use fusegate::session::{Instance, Role, Session, Settings};
use fusegate::storage::{Restore, Storage, StorageLocation};

const AK: &str = "AKIAFUSEGATEBENCH";
const SK: &str = "fusegate-bench-secret";

fn python() -> PathBuf {
    std::env::var("FUSEGATE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python"))
}

fn s3ctl(endpoint: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/s3/s3ctl.py"))
        .args([endpoint, AK, SK, "us-east-1"])
        .args(args)
        .output()
        .expect("s3ctl.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Forwards 127.0.0.1:<returned port> to `target`, delivering each chunk in
/// each direction `half_rtt` after it arrived.
async fn latency_proxy(target: String, half_rtt: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let target = target.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        loop {
            let Ok((inbound, _)) = listener.accept().await else {
                return;
            };
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pipe(ri, wo, half_rtt));
                pipe(ro, wi, half_rtt).await;
            });
        }
    });
    format!("http://{addr}")
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Each chunk leaves `delay` after it arrived, while the next ones are
    // already on their way: latency without limiting bandwidth (sleeping
    // before each write would make a large listing, which moto sends in
    // many small writes, cost a delay per chunk).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    while let Some((due, chunk)) = rx.recv().await {
        tokio::time::sleep_until(due.into()).await;
        if to.write_all(&chunk).await.is_err() {
            return;
        }
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let blocks: usize = std::env::var("FUSEGATE_BENCH_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut moto = Command::new(python().with_file_name("moto_server"))
        .args(["-H", "127.0.0.1", "-p", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("moto_server (run ./scripts/test once to install it)");
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = moto.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("Running on http://") {
                let _ = tx.send(line[at + "Running on ".len()..].trim().to_string());
            }
        }
    });
    let endpoint = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("moto started");
    s3ctl(&endpoint, &["create-bucket", "bench", "versioned"]);

    let rtts: Vec<u64> = std::env::var("FUSEGATE_BENCH_RTT_MS")
        .unwrap_or_else(|_| "0,20".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    for (round, rtt) in rtts.into_iter().enumerate() {
        let via = if rtt == 0 {
            endpoint.clone()
        } else {
            latency_proxy(endpoint.clone(), Duration::from_millis(rtt / 2)).await
        };
        run_round(&endpoint, &via, round, rtt, blocks).await;
    }
    let _ = moto.kill();
    let _ = moto.wait();
}

async fn run_round(endpoint: &str, via: &str, round: usize, rtt: u64, blocks: usize) {
    let dir = tempfile::tempdir().unwrap();
    let fuse = FuseEngine::open(StorageLocation::local(dir.path().to_str().unwrap()))
        .await
        .unwrap();
    let query = QueryEngine::new(fuse.clone(), 1 << 30).unwrap();
    let instance = Arc::new(Instance {
        fuse: fuse.clone(),
        query,
    });
    let mut session = Session::new(
        instance,
        1,
        "bench",
        Role::Admin,
        "default",
        Settings::default(),
    )
    .await
    .unwrap();
    let location = format!(
        "'s3://bench/amend{round}/' CONNECTION = (endpoint_url = '{via}' access_key_id = '{AK}' secret_access_key = '{SK}')"
    );
    for sql in [
        format!("CREATE TABLE t (a BIGINT) {location} ROW_PER_BLOCK = 10"),
        format!(
            "INSERT INTO t SELECT v FROM generate_series(1, {}) AS g(v) ORDER BY v",
            blocks * 10
        ),
    ] {
        for stmt in session.parse(&sql).unwrap() {
            session.execute(stmt).await.unwrap();
        }
    }
    let state = fuse.catalog().current().await.unwrap();
    let meta = state.require_table("default", "t").unwrap().clone();
    let root = meta.root_dir();
    let storage = Storage::open(
        &StorageLocation::parse(
            &format!("s3://bench/amend{round}/"),
            [
                ("endpoint_url", via),
                ("access_key_id", AK),
                ("secret_access_key", SK),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        )
        .unwrap(),
    )
    .unwrap();
    let prefix = format!("amend{round}/");
    let delete_blocks = || s3ctl(endpoint, &["delete-matching", "bench", &prefix, "/_b/"]);
    // Every block path and the version holding its content.
    let block_versions = || async {
        let versions = storage.list_versions(&root).await.unwrap();
        let mut latest: Vec<(String, String)> = Vec::new();
        for v in versions
            .iter()
            .filter(|v| v.path.contains("/_b/") && !v.is_delete_marker)
        {
            if !latest.iter().any(|(p, _)| p == &v.path) {
                latest.push((v.path.clone(), v.version.clone().unwrap()));
            }
        }
        latest
    };

    println!();
    println!(
        "fail_safe: {blocks} deleted blocks, moto S3 on loopback, added round trip {rtt} ms, load {}",
        load()
    );
    let mut results: Vec<(&str, Duration)> = Vec::new();

    delete_blocks();
    let started = Instant::now();
    let report = fusegate::system::amend::fuse_amend(&fuse, "default", "t")
        .await
        .unwrap();
    results.push(("fuse_amend (listing + batched undelete)", started.elapsed()));
    assert_eq!(report.restored as usize, blocks);

    delete_blocks();
    let paths = block_versions().await;
    let started = Instant::now();
    for (path, version) in &paths {
        for r in storage
            .restore_many(vec![(path.clone(), Restore::FromVersion(version.clone()))])
            .await
        {
            r.unwrap();
        }
    }
    results.push(("server-side copies, one at a time", started.elapsed()));

    delete_blocks();
    let paths = block_versions().await;
    let started = Instant::now();
    for (path, version) in &paths {
        let bytes = storage.read_version(path, version).await.unwrap();
        storage.write(path, bytes).await.unwrap();
    }
    results.push(("GET + PUT one at a time (Databend)", started.elapsed()));

    // The table reads again after all that.
    for stmt in session.parse("SELECT count(*) FROM t").unwrap() {
        session.execute(stmt).await.unwrap();
    }

    let base = results[0].1.as_secs_f64();
    println!(
        "{:<44} {:>8} {:>10} {:>12} {:>10}",
        "method", "objects", "seconds", "objects/s", "vs amend"
    );
    for (name, took) in &results {
        let secs = took.as_secs_f64();
        println!(
            "{name:<44} {blocks:>8} {secs:>10.2} {:>12.0} {:>9.1}x",
            blocks as f64 / secs,
            secs / base
        );
    }
}

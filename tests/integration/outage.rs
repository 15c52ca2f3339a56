//! An S3 endpoint that goes down: only the tables stored there fail (58030,
//! after the retries), the rest of the server keeps serving, nothing is
//! half-written, and the tables work again when the endpoint returns. The
//! outage is a TCP proxy in front of moto that starts dropping connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::common::{TestServer, rows, scalar, sqlstate};
use crate::s3::S3;

/// Forwards connections to `upstream` while up; while down, accepts and
/// drops them at once, and has cut the ones it was carrying.
struct Proxy {
    url: String,
    up: Arc<AtomicBool>,
    carried: Arc<std::sync::Mutex<JoinSet<()>>>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let carried = Arc::new(std::sync::Mutex::new(JoinSet::new()));
        let (flag, tasks) = (up.clone(), carried.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                tasks.lock().unwrap().spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Proxy { url, up, carried }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.carried.lock().unwrap().abort_all();
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_s3_outage_touches_only_its_tables_and_heals() {
    let s3 = S3::start();
    let proxy = Proxy::start(&s3.endpoint).await;
    let server = TestServer::start();
    let c = server.client().await;
    let location = s3
        .location(&s3.versioned_bucket)
        .replace(&s3.endpoint, &proxy.url);
    c.batch_execute(&format!("CREATE TABLE remote (a INT) {location}"))
        .await
        .unwrap();
    c.batch_execute("INSERT INTO remote VALUES (1), (2), (3)")
        .await
        .unwrap();
    c.batch_execute("CREATE TABLE here (a INT); INSERT INTO here VALUES (10), (20)")
        .await
        .unwrap();

    proxy.down();
    // The remote table's statements fail once the retries give up, with the
    // storage error and no secret in it; meanwhile another session's work on
    // the local table is answered at once.
    let other = server.client().await;
    let started = Instant::now();
    let remote = tokio::spawn(async move {
        let read = c.simple_query("SELECT sum(a) FROM remote").await.map(drop);
        let write = c
            .simple_query("INSERT INTO remote VALUES (4)")
            .await
            .map(drop);
        (c, read, write)
    });
    for _ in 0..5 {
        let asked = Instant::now();
        assert_eq!(scalar(&other, "SELECT sum(a) FROM here").await, "30");
        other
            .batch_execute("INSERT INTO here VALUES (0)")
            .await
            .unwrap();
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "the local table waited {:?} on the remote one",
            asked.elapsed()
        );
    }
    let (c, read, write) = remote.await.unwrap();
    let waited = started.elapsed();
    for (what, result) in [("read", read), ("write", write)] {
        let err = result.expect_err(what);
        assert_eq!(sqlstate(&err), "58030", "{what}: {err}");
        let message = err.as_db_error().unwrap().message().to_string();
        assert!(message.contains("remote"), "{what}: {message}");
        assert!(
            !message.contains(&s3.secret_access_key),
            "{what} leaks the secret: {message}"
        );
    }
    assert!(
        waited < Duration::from_secs(60),
        "the outage took {waited:?} to report"
    );

    // Back up: the table reads as before the outage (the failed INSERT left
    // nothing) and takes writes again.
    proxy.up();
    assert_eq!(scalar(&c, "SELECT sum(a) FROM remote").await, "6");
    c.batch_execute("INSERT INTO remote VALUES (4)")
        .await
        .unwrap();
    assert_eq!(
        rows(&c, "SELECT count(*), sum(a) FROM remote").await,
        vec![vec![Some("4".to_string()), Some("10".to_string())]]
    );
    assert_eq!(scalar(&c, "SELECT count(*) FROM here").await, "7");
    eprintln!("S3 outage: remote read and write failed with 58030 after {waited:?}");
}

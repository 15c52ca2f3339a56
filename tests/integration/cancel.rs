//! Stopping a running statement: CancelRequest and statement_timeout end it
//! with 57014; the connection carries on and a cut-short write leaves its
//! table as it was.

use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

use crate::common::{TestServer, scalar, sqlstate};

const LONG_QUERY: &str = "SELECT count(*) FROM generate_series(1, 100000000000)";

#[tokio::test]
async fn cancel_request_stops_a_running_query() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (a BIGINT); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let token = client.cancel_token();
    for sql in [
        LONG_QUERY,
        "INSERT INTO t SELECT * FROM generate_series(1, 100000000000)",
    ] {
        let canceller = tokio::spawn({
            let token = token.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                token.cancel_query(NoTls).await.unwrap();
            }
        });
        let started = Instant::now();
        let err = client.simple_query(sql).await.unwrap_err();
        canceller.await.unwrap();
        assert_eq!(sqlstate(&err), "57014", "{sql}: {err:?}");
        assert_eq!(
            err.as_db_error().unwrap().message(),
            "canceling statement due to user request"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{sql} took {:?}",
            started.elapsed()
        );
    }
    // The connection carries on; the cancelled INSERT left nothing behind.
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "1");
    // A cancel that arrives between statements does not hit the next one.
    token.cancel_query(NoTls).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM generate_series(1, 1000)").await,
        "1000"
    );
}

#[tokio::test]
async fn statement_timeout() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("SET statement_timeout = '300ms'")
        .await
        .unwrap();
    assert_eq!(scalar(&client, "SHOW statement_timeout").await, "300ms");
    let err = client.query(LONG_QUERY, &[]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "57014");
    assert_eq!(
        err.as_db_error().unwrap().message(),
        "canceling statement due to statement timeout"
    );
    // Quick statements run, and turning the limit off works.
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
    let all = client.simple_query("SHOW ALL").await.unwrap();
    assert!(
        all.iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(r)
        if r.get(0) == Some("statement_timeout") && r.get(1) == Some("300ms")))
    );
    client
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
    assert_eq!(scalar(&client, "SHOW statement_timeout").await, "0");
    client
        .batch_execute("SET statement_timeout = '1min'; RESET ALL")
        .await
        .unwrap();
    assert_eq!(scalar(&client, "SHOW statement_timeout").await, "0");
    assert_eq!(
        scalar(&client, "SHOW TRANSACTION ISOLATION LEVEL").await,
        "read committed"
    );
    let err = client
        .batch_execute("SET statement_timeout = 'soon'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22023");

    // Inside a transaction the timeout aborts it, as in PostgreSQL.
    client
        .batch_execute("SET statement_timeout = '200ms'; BEGIN")
        .await
        .unwrap();
    assert!(client.query(LONG_QUERY, &[]).await.is_err());
    let err = client.query("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "25P02");
    client.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_a_statement_that_outlives_the_grace_period() {
    let mut server = TestServer::start();
    let client = server.client().await;
    let running = tokio::spawn(async move { client.simple_query(LONG_QUERY).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    // SIGTERM: 10 s of grace, then the statement is cancelled and the server exits.
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (status, server)
    });
    let err = running.await.unwrap().unwrap_err();
    assert_eq!(sqlstate(&err), "57P01", "{err:?}");
    let (status, _server) = status.await.unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// Waits up to `within` for `check`, polling every 100 ms.
async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A query reading many blocks runs on the background runtime (threads named
/// fusegate-query): other sessions' lookups are answered while it runs, and a
/// cancel stops its operators, not only the result the client sees.
#[tokio::test]
async fn cancel_stops_a_heavy_query_and_others_are_served_meanwhile() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE t (x BIGINT);
             CREATE TABLE small (k BIGINT, v TEXT);
             INSERT INTO small VALUES (1, 'one'), (2, 'two')",
        )
        .await
        .unwrap();
    for part in 0..4 {
        let (from, to) = (part * 50_000 + 1, (part + 1) * 50_000);
        client
            .batch_execute(&format!(
                "INSERT INTO t SELECT * FROM generate_series({from}, {to})"
            ))
            .await
            .unwrap();
    }
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM fuse_block('default', 't')").await,
        "4"
    );
    let query_threads = || server.thread_cpu("fusegate-query");
    let before = query_threads();

    // 200,000² joined rows read from 8 blocks: far more than this test waits.
    let token = client.cancel_token();
    let heavy = tokio::spawn(async move {
        let result = client
            .simple_query("SELECT sum(a.x + b.x) FROM t a, t b")
            .await;
        (client, result)
    });
    assert!(
        eventually(Duration::from_secs(30), || query_threads()
            > before + Duration::from_millis(100))
        .await,
        "the heavy query did not run on the background runtime"
    );

    let other = server.client().await;
    let lookup = other
        .prepare("SELECT v FROM small WHERE k = $1")
        .await
        .unwrap();
    for _ in 0..20 {
        let started = Instant::now();
        let row = other.query_one(&lookup, &[&2i64]).await.unwrap();
        assert_eq!(row.get::<_, &str>(0), "two");
        // A bound for an answer at all, not a latency measurement.
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert!(!heavy.is_finished(), "the heavy query ended on its own");

    token.cancel_query(NoTls).await.unwrap();
    let (client, result) = heavy.await.unwrap();
    let err = result.unwrap_err();
    assert_eq!(sqlstate(&err), "57014", "{err:?}");
    // Its operators stop: within a few seconds the background threads stay
    // idle for a whole second (running, they use ≥ 100 ms of it even at
    // nice 10 on a busy machine).
    let (mut window_cpu, mut window_start) = (query_threads(), Instant::now());
    let stopped = eventually(Duration::from_secs(15), || {
        let now = query_threads();
        if now > window_cpu + Duration::from_millis(20) {
            (window_cpu, window_start) = (now, Instant::now());
        }
        window_start.elapsed() >= Duration::from_secs(1)
    })
    .await;
    assert!(stopped, "the cancelled query kept computing");
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "200000");
}

/// `--heavy-query-blocks` decides which statements leave the connections'
/// runtime: the background runtime starts with the first statement reading
/// more blocks than it, and never when no statement does.
#[tokio::test]
async fn heavy_query_blocks_decides_where_a_query_runs() {
    for (flags, blocks_read, background) in [
        (&[][..], 2, false),
        (&[][..], 3, true),
        (&["--heavy-query-blocks", "100"][..], 3, false),
        (&["--heavy-query-blocks", "0"][..], 1, true),
    ] {
        let server = TestServer::start_with(flags);
        let client = server.client().await;
        client
            .batch_execute("CREATE TABLE t (x BIGINT)")
            .await
            .unwrap();
        for block in 0..blocks_read {
            client
                .batch_execute(&format!("INSERT INTO t VALUES ({block})"))
                .await
                .unwrap();
        }
        let expected = (0..blocks_read).sum::<i64>().to_string();
        assert_eq!(scalar(&client, "SELECT sum(x) FROM t").await, expected);
        assert_eq!(
            server.threads("fusegate-query") > 0,
            background,
            "{flags:?}, {blocks_read} blocks read"
        );
    }
}

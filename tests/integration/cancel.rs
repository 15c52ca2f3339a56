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

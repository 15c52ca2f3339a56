//! Data survives restarts and kill -9; a statement cut short by a crash leaves
//! its table exactly as it was before.

use std::time::Duration;

use crate::common::{TestServer, scalar};

#[tokio::test]
async fn data_and_catalog_survive_a_restart() {
    let mut server = TestServer::start();
    {
        let c = server.client().await;
        c.batch_execute(
            "CREATE DATABASE d2; CREATE TABLE d2.t (a INT, b TEXT);
             INSERT INTO d2.t VALUES (1, 'one'); INSERT INTO d2.t VALUES (2, 'two');
             CREATE TABLE gone (a INT); DROP TABLE gone;",
        )
        .await
        .unwrap();
    }
    server.restart();
    let c = server.client().await;
    assert_eq!(
        scalar(&c, "SELECT string_agg(b, ',' ORDER BY a) FROM d2.t").await,
        "one,two"
    );
    assert_eq!(
        crate::common::column(&c, "SHOW TABLES FROM d2").await,
        vec![Some("t".into())]
    );
    assert!(crate::common::column(&c, "SHOW TABLES").await.is_empty());
    c.batch_execute("INSERT INTO d2.t VALUES (3, 'three')")
        .await
        .unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM d2.t").await, "3");
}

#[tokio::test]
async fn kill9_during_a_large_insert_leaves_all_or_nothing() {
    let mut server = TestServer::start();
    {
        let c = server.client().await;
        c.batch_execute("CREATE TABLE big (a BIGINT, b TEXT) ROW_PER_BLOCK = 50000")
            .await
            .unwrap();
        c.batch_execute("INSERT INTO big VALUES (0, 'before')")
            .await
            .unwrap();
    }
    let rows = 3_000_000i64;
    let c = server.client().await;
    let insert = tokio::spawn(async move {
        c.batch_execute(&format!(
            "INSERT INTO big SELECT v, 'row ' || v FROM generate_series(1, {rows}) AS g(v)"
        ))
        .await
    });
    // Kill while the insert is writing blocks (it takes longer than this).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    let result = insert.await.unwrap();
    server.restart();
    let c = server.client().await;
    let count: i64 = scalar(&c, "SELECT count(*) FROM big")
        .await
        .parse()
        .unwrap();
    match result {
        Ok(()) => assert_eq!(
            count,
            rows + 1,
            "the insert returned, so all of it is there"
        ),
        Err(_) => assert!(
            count == 1 || count == rows + 1,
            "all or nothing, found {count} rows"
        ),
    }
    // The table is fully readable and still writable.
    let sum: i64 = scalar(&c, "SELECT sum(a) FROM big").await.parse().unwrap();
    assert!(sum == 0 || sum == rows * (rows + 1) / 2);
    c.batch_execute("INSERT INTO big VALUES (-1, 'after')")
        .await
        .unwrap();
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM big WHERE a = -1").await,
        "1"
    );
}

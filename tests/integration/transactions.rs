//! BEGIN / COMMIT / ROLLBACK: writes become visible together at COMMIT and
//! vanish at ROLLBACK; a failed statement aborts the transaction; the
//! statements of one query message run in one implicit transaction.

use tokio_postgres::SimpleQueryMessage;

use crate::common::{TestServer, column, scalar, sqlstate};

#[tokio::test]
async fn commit_makes_writes_visible_together() {
    let server = TestServer::start();
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("CREATE TABLE x (v INT); CREATE TABLE y (v INT); INSERT INTO x VALUES (0)")
        .await
        .unwrap();

    a.batch_execute("BEGIN").await.unwrap();
    a.batch_execute("INSERT INTO x VALUES (1)").await.unwrap();
    a.batch_execute("INSERT INTO x VALUES (2)").await.unwrap();
    a.batch_execute("INSERT INTO y VALUES (10)").await.unwrap();
    a.batch_execute("UPDATE x SET v = v + 100 WHERE v = 0")
        .await
        .unwrap();
    // The transaction reads its own writes ...
    assert_eq!(scalar(&a, "SELECT sum(v) FROM x").await, "103");
    assert_eq!(scalar(&a, "SELECT count(*) FROM y").await, "1");
    // ... which nobody else sees yet.
    assert_eq!(scalar(&b, "SELECT sum(v) FROM x").await, "0");
    assert_eq!(scalar(&b, "SELECT count(*) FROM y").await, "0");
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(scalar(&b, "SELECT sum(v) FROM x").await, "103");
    assert_eq!(scalar(&b, "SELECT count(*) FROM y").await, "1");
}

#[tokio::test]
async fn rollback_and_failed_transactions_change_nothing() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE t (v INT NOT NULL); INSERT INTO t VALUES (1)")
        .await
        .unwrap();

    c.batch_execute("BEGIN; INSERT INTO t VALUES (2); DELETE FROM t WHERE v = 1")
        .await
        .unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM t WHERE v = 1").await, "0");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(column(&c, "SELECT v FROM t").await, vec![Some("1".into())]);

    // A failed statement aborts the transaction: later ones are refused (25P02)
    // and COMMIT rolls back.
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("INSERT INTO t VALUES (3)").await.unwrap();
    assert_eq!(
        sqlstate(
            &c.batch_execute("INSERT INTO t VALUES (NULL)")
                .await
                .unwrap_err()
        ),
        "23502"
    );
    assert_eq!(
        sqlstate(&c.simple_query("SELECT 1").await.unwrap_err()),
        "25P02"
    );
    let msgs = c.simple_query("COMMIT").await.unwrap();
    assert!(matches!(
        msgs.as_slice(),
        [SimpleQueryMessage::CommandComplete(_)]
    ));
    assert_eq!(column(&c, "SELECT v FROM t").await, vec![Some("1".into())]);
    // The session is usable again.
    c.batch_execute("INSERT INTO t VALUES (4)").await.unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM t").await, "2");
}

#[tokio::test]
async fn driver_transactions_over_the_extended_protocol() {
    let server = TestServer::start();
    let mut c = server.client().await;
    c.batch_execute(
        "CREATE TABLE acct (id INT, balance BIGINT); INSERT INTO acct VALUES (1, 100), (2, 0)",
    )
    .await
    .unwrap();
    let tx = c.transaction().await.unwrap();
    tx.execute(
        "UPDATE acct SET balance = balance - $1 WHERE id = 1",
        &[&30i64],
    )
    .await
    .unwrap();
    tx.execute(
        "UPDATE acct SET balance = balance + $1 WHERE id = 2",
        &[&30i64],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        scalar(
            &c,
            "SELECT string_agg(balance::text, ',' ORDER BY id) FROM acct"
        )
        .await,
        "70,30"
    );
    let tx = c.transaction().await.unwrap();
    tx.execute("DELETE FROM acct", &[]).await.unwrap();
    drop(tx); // rolls back
    assert_eq!(scalar(&c, "SELECT count(*) FROM acct").await, "2");
}

#[tokio::test]
async fn a_multi_statement_message_is_one_implicit_transaction() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE m (a INT)").await.unwrap();
    let err = c
        .batch_execute("INSERT INTO m VALUES (1); INSERT INTO m VALUES (2); SELECT 1/0; INSERT INTO m VALUES (3)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22012");
    // As in PostgreSQL, the inserts before the error were rolled back with it.
    assert_eq!(scalar(&c, "SELECT count(*) FROM m").await, "0");
    c.batch_execute("INSERT INTO m VALUES (1); INSERT INTO m VALUES (2)")
        .await
        .unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM m").await, "2");
}

#[tokio::test]
async fn conflicting_transactions_fail_with_40001() {
    let server = TestServer::start();
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("CREATE TABLE k (v INT); INSERT INTO k VALUES (1), (2)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; DELETE FROM k WHERE v = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE k SET v = 20 WHERE v = 2")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    let err = b.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(sqlstate(&err), "40001");
    assert_eq!(column(&a, "SELECT v FROM k").await, vec![Some("2".into())]);
    // Appends are rebased, not refused.
    a.batch_execute("BEGIN; INSERT INTO k VALUES (3)")
        .await
        .unwrap();
    b.batch_execute("INSERT INTO k VALUES (4)").await.unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(scalar(&a, "SELECT sum(v) FROM k").await, "9");
}

#[tokio::test]
async fn savepoints() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (a INT)")
        .await
        .unwrap();
    // Outside a transaction block, as in PostgreSQL.
    let err = client.batch_execute("SAVEPOINT s").await.unwrap_err();
    assert_eq!(sqlstate(&err), "25P01");

    client
        .batch_execute("BEGIN; INSERT INTO t VALUES (1); SAVEPOINT s1; INSERT INTO t VALUES (2)")
        .await
        .unwrap();
    client
        .batch_execute("SAVEPOINT s2; INSERT INTO t VALUES (3)")
        .await
        .unwrap();
    client
        .batch_execute("ROLLBACK TO SAVEPOINT s2")
        .await
        .unwrap();
    assert_eq!(
        scalar(&client, "SELECT string_agg(a::text, ',' ORDER BY a) FROM t").await,
        "1,2"
    );
    // An error fails the transaction; ROLLBACK TO a savepoint recovers it.
    assert!(client.batch_execute("SELECT * FROM nope").await.is_err());
    let err = client
        .batch_execute("INSERT INTO t VALUES (4)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "25P02");
    client.batch_execute("ROLLBACK TO s1").await.unwrap();
    client
        .batch_execute("INSERT INTO t VALUES (5); RELEASE SAVEPOINT s1")
        .await
        .unwrap();
    let err = client.batch_execute("ROLLBACK TO s2").await.unwrap_err();
    assert_eq!(sqlstate(&err), "3B001");
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "0");

    client
        .batch_execute("BEGIN; INSERT INTO t VALUES (1); SAVEPOINT s; INSERT INTO t VALUES (2); ROLLBACK TO s; COMMIT")
        .await
        .unwrap();
    assert_eq!(
        scalar(&client, "SELECT string_agg(a::text, ',') FROM t").await,
        "1"
    );
}

/// Runs a prepared `SELECT count(*) ...`.
async fn count_with(client: &tokio_postgres::Client, statement: &tokio_postgres::Statement) -> i64 {
    client.query_one(statement, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_statement_prepared_outside_a_transaction_runs_inside_it() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (a INT)")
        .await
        .unwrap();
    let insert = client.prepare("INSERT INTO t VALUES ($1)").await.unwrap();
    let count = client.prepare("SELECT count(*) FROM t").await.unwrap();
    client.batch_execute("BEGIN").await.unwrap();
    client.execute(&insert, &[&1i32]).await.unwrap();
    let n = count_with(&client, &count).await;
    assert_eq!(n, 1, "the transaction sees its own write");
    let other = server.client().await;
    assert_eq!(
        scalar(&other, "SELECT count(*) FROM t").await,
        "0",
        "others do not"
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    let n = count_with(&client, &count).await;
    assert_eq!(n, 0, "ROLLBACK undid the prepared INSERT");
    client.execute(&insert, &[&2i32]).await.unwrap();
    assert_eq!(
        scalar(&other, "SELECT count(*) FROM t").await,
        "1",
        "autocommit again"
    );
}

#[tokio::test]
async fn a_prepared_query_sees_the_writes_made_since_in_its_transaction() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (a INT); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let count = client.prepare("SELECT count(*) FROM t").await.unwrap();
    let n = count_with(&client, &count).await;
    assert_eq!(n, 1);
    client.batch_execute("BEGIN").await.unwrap();
    let n = count_with(&client, &count).await;
    assert_eq!(n, 1, "planned outside, run inside before any write");
    client
        .batch_execute("INSERT INTO t VALUES (2)")
        .await
        .unwrap();
    let n = count_with(&client, &count).await;
    assert_eq!(n, 2, "the write made after the last execution is seen");
    client
        .batch_execute("SAVEPOINT s; INSERT INTO t VALUES (3)")
        .await
        .unwrap();
    let n = count_with(&client, &count).await;
    assert_eq!(n, 3);
    client.batch_execute("ROLLBACK TO s").await.unwrap();
    let n = count_with(&client, &count).await;
    assert_eq!(n, 2, "ROLLBACK TO SAVEPOINT takes the write back");
    client.batch_execute("ROLLBACK").await.unwrap();
    let n = count_with(&client, &count).await;
    assert_eq!(n, 1, "after ROLLBACK, only the committed row");

    // Prepared inside the transaction, then run again after its next write.
    client.batch_execute("BEGIN").await.unwrap();
    let inside = client.prepare("SELECT count(*) FROM t").await.unwrap();
    let n = count_with(&client, &inside).await;
    assert_eq!(n, 1);
    client
        .batch_execute("INSERT INTO t VALUES (5)")
        .await
        .unwrap();
    let n = count_with(&client, &inside).await;
    assert_eq!(
        n, 2,
        "a statement prepared in the transaction sees its later writes"
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    // Executions in autocommit reuse the plan; another session's commit is seen.
    let other = server.client().await;
    other
        .batch_execute("INSERT INTO t VALUES (4)")
        .await
        .unwrap();
    let n = count_with(&client, &count).await;
    assert_eq!(n, 2, "another session's commit is seen");
}

#[tokio::test]
async fn concurrent_appending_transactions_all_commit() {
    let server = TestServer::start();
    let setup = server.client().await;
    setup
        .batch_execute("CREATE TABLE t (w INT, n INT)")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..6i32 {
        let c = server.client().await;
        tasks.push(tokio::spawn(async move {
            for n in 0..8i32 {
                c.batch_execute("BEGIN").await.unwrap();
                c.execute("INSERT INTO t VALUES ($1, $2)", &[&w, &n])
                    .await
                    .unwrap();
                c.execute("INSERT INTO t VALUES ($1, $2)", &[&w, &(n + 100)])
                    .await
                    .unwrap();
                // Appends rebase over each other's commits: none conflicts.
                c.batch_execute("COMMIT").await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(scalar(&setup, "SELECT count(*) FROM t").await, "96");
    assert_eq!(
        scalar(&setup, "SELECT count(DISTINCT (w, n)) FROM t").await,
        "96"
    );
}

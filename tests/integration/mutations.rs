//! DELETE, UPDATE and TRUNCATE: copy-on-write at block granularity, command
//! tags with row counts, failures that change nothing, concurrent writers.

use crate::common::{TestServer, column, rows, scalar, sqlstate};

/// Block files referenced by the table's current state, from fuse_pruning.
async fn blocks(c: &tokio_postgres::Client, table: &str) -> usize {
    let plan = rows(c, &format!("EXPLAIN SELECT * FROM {table}")).await;
    let line = plan
        .iter()
        .find(|r| r[0].as_deref() == Some("fuse_pruning"))
        .and_then(|r| r[1].clone())
        .unwrap_or_default();
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == "of")
        .map(|i| words[i + 1].parse().unwrap())
        .unwrap_or(0)
}

#[tokio::test]
async fn delete_update_truncate() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE t (id INT NOT NULL, name TEXT, v DOUBLE PRECISION) ROW_PER_BLOCK = 100",
    )
    .await
    .unwrap();
    c.batch_execute("INSERT INTO t SELECT g, 'n' || g, g * 1.5 FROM generate_series(1, 1000) AS s(g) ORDER BY g")
        .await
        .unwrap();
    assert_eq!(blocks(&c, "t").await, 10);

    // A DELETE touching one block rewrites that block only.
    assert_eq!(
        c.execute("DELETE FROM t WHERE id BETWEEN 101 AND 110", &[])
            .await
            .unwrap(),
        10
    );
    assert_eq!(blocks(&c, "t").await, 10);
    assert_eq!(scalar(&c, "SELECT count(*) FROM t").await, "990");
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM t WHERE id BETWEEN 101 AND 110").await,
        "0"
    );
    // Nothing matches: nothing changes.
    assert_eq!(
        c.execute("DELETE FROM t WHERE id > 5000", &[])
            .await
            .unwrap(),
        0
    );

    // UPDATE with expressions over the row, and parameters (id 107 was deleted).
    assert_eq!(
        c.execute(
            "UPDATE t SET name = upper(name), v = v * 2 WHERE id % 100 = $1",
            &[&7i64]
        )
        .await
        .unwrap(),
        9
    );
    assert_eq!(
        rows(
            &c,
            "SELECT id, name, v FROM t WHERE id IN (7, 8, 907) ORDER BY id"
        )
        .await,
        vec![
            vec![Some("7".into()), Some("N7".into()), Some("21".into())],
            vec![Some("8".into()), Some("n8".into()), Some("12".into())],
            vec![Some("907".into()), Some("N907".into()), Some("2721".into())],
        ]
    );
    assert_eq!(scalar(&c, "SELECT count(*) FROM t").await, "990");

    // A failing UPDATE changes nothing.
    let err = c
        .batch_execute("UPDATE t SET id = NULL WHERE id = 1")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "23502");
    let err = c.batch_execute("UPDATE t SET v = v / 0 WHERE id < 3").await;
    // Float division by zero is an error in PostgreSQL too.
    assert!(err.is_err() || scalar(&c, "SELECT count(*) FROM t WHERE v IS NULL").await == "0");
    assert_eq!(scalar(&c, "SELECT id FROM t WHERE id = 1").await, "1");
    let err = c.batch_execute("UPDATE t SET nope = 1").await.unwrap_err();
    assert_eq!(sqlstate(&err), "42703");

    // DELETE without WHERE and TRUNCATE empty the table.
    assert_eq!(
        c.execute("DELETE FROM t WHERE name LIKE 'N%'", &[])
            .await
            .unwrap(),
        9
    );
    let msgs = c.simple_query("DELETE FROM t").await.unwrap();
    assert!(
        matches!(
            msgs.last(),
            Some(tokio_postgres::SimpleQueryMessage::CommandComplete(981))
        ),
        "{msgs:?}"
    );
    assert_eq!(scalar(&c, "SELECT count(*) FROM t").await, "0");
    c.batch_execute("INSERT INTO t VALUES (1, 'x', 1)")
        .await
        .unwrap();
    c.batch_execute("TRUNCATE TABLE t").await.unwrap();
    assert!(column(&c, "SELECT id FROM t").await.is_empty());
    c.batch_execute("INSERT INTO t VALUES (2, 'y', 2)")
        .await
        .unwrap();
    assert_eq!(scalar(&c, "SELECT name FROM t").await, "y");
}

#[tokio::test]
async fn mutations_with_subqueries_are_refused_not_misapplied() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE a (id INT); CREATE TABLE b (id INT); INSERT INTO a VALUES (1), (2); INSERT INTO b VALUES (2)")
        .await
        .unwrap();
    let err = c
        .batch_execute("DELETE FROM a WHERE id IN (SELECT id FROM b)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "0A000");
    let err = c
        .batch_execute("UPDATE a SET id = 0 WHERE EXISTS (SELECT 1 FROM b WHERE b.id = a.id)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "0A000");
    assert_eq!(scalar(&c, "SELECT count(*) FROM a").await, "2");
}

#[tokio::test]
async fn concurrent_appends_lose_nothing() {
    let server = TestServer::start();
    let setup = server.client().await;
    setup
        .batch_execute("CREATE TABLE c (writer INT, n INT)")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let c = server.client().await;
        tasks.push(tokio::spawn(async move {
            for n in 0..10 {
                c.execute("INSERT INTO c VALUES ($1, $2)", &[&w, &n])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(scalar(&setup, "SELECT count(*) FROM c").await, "80");
    assert_eq!(
        scalar(&setup, "SELECT count(DISTINCT (writer, n)) FROM c").await,
        "80"
    );
}

#[tokio::test]
async fn mutation_rebases_over_concurrent_appends() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE r (a INT) ROW_PER_BLOCK = 10")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO r SELECT g FROM generate_series(1, 2000) AS s(g)")
        .await
        .unwrap();
    // Deletes and appends run at once. Appends never conflict, so every DELETE
    // commits (rebasing over the appends it did not see).
    let deleter = server.client().await;
    let del = tokio::spawn(async move {
        let mut total = 0;
        for k in 0..5i64 {
            total += deleter
                .execute("DELETE FROM r WHERE a % 5 = $1", &[&k])
                .await
                .unwrap();
        }
        total
    });
    let appender = server.client().await;
    let app = tokio::spawn(async move {
        for i in 0..20 {
            appender
                .execute("INSERT INTO r VALUES ($1)", &[&(100_000 + i)])
                .await
                .unwrap();
        }
    });
    let deleted = del.await.unwrap();
    app.await.unwrap();
    // Every original row is gone; every appended row is either there or was
    // deleted by a DELETE that saw it: none was lost.
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM r WHERE a < 100000").await,
        "0"
    );
    let appended: u64 = scalar(&c, "SELECT count(*) FROM r").await.parse().unwrap();
    assert_eq!(
        appended + deleted,
        2020,
        "deleted {deleted}, remaining {appended}"
    );
}

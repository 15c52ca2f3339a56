//! Two server processes on one data directory, and kill -9 in the middle of
//! mutations, compaction and vacuum.

use std::time::Duration;

use crate::common::{TestServer, scalar};

#[tokio::test]
async fn two_processes_share_one_data_directory() {
    let a = TestServer::start();
    let b = TestServer::start_in(a.data_dir());
    let setup = a.client().await;
    setup
        .batch_execute("CREATE TABLE shared (server TEXT, n INT)")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (i, server) in [&a, &b, &a, &b].into_iter().enumerate() {
        let c = server.client().await;
        tasks.push(tokio::spawn(async move {
            for n in 0..25 {
                c.execute(
                    "INSERT INTO shared VALUES ($1, $2)",
                    &[&format!("s{i}"), &n],
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Both processes see every row: the catalog commit is a conditional write
    // on the shared directory, not an in-process lock.
    let from_a = a.client().await;
    let from_b = b.client().await;
    assert_eq!(scalar(&from_a, "SELECT count(*) FROM shared").await, "100");
    assert_eq!(scalar(&from_b, "SELECT count(*) FROM shared").await, "100");
    assert_eq!(
        scalar(&from_b, "SELECT count(DISTINCT (server, n)) FROM shared").await,
        "100"
    );
    // DDL and mutations from one are seen by the other.
    from_b
        .batch_execute("DELETE FROM shared WHERE server = 's0'")
        .await
        .unwrap();
    from_b
        .batch_execute("CREATE TABLE from_b (x INT)")
        .await
        .unwrap();
    assert_eq!(scalar(&from_a, "SELECT count(*) FROM shared").await, "75");
    from_a
        .batch_execute("INSERT INTO from_b VALUES (1)")
        .await
        .unwrap();
    assert_eq!(scalar(&from_b, "SELECT count(*) FROM from_b").await, "1");
}

/// Runs `sql` and kills the server `after` it started; returns whether the
/// statement had finished.
async fn kill_during(server: &mut TestServer, sql: &str, after: Duration) -> bool {
    let c = server.client().await;
    let sql = sql.to_string();
    let task = tokio::spawn(async move { c.batch_execute(&sql).await });
    tokio::time::sleep(after).await;
    server.kill9();
    matches!(task.await, Ok(Ok(())))
}

/// The table reads completely (every object a snapshot needs is there).
async fn check_readable(c: &tokio_postgres::Client) -> (i64, i64) {
    let row = c
        .query_one("SELECT count(*), coalesce(sum(a), 0) FROM big", &[])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn kill9_during_update_compaction_and_vacuum() {
    let mut server = TestServer::start();
    let rows = 600_000i64;
    {
        let c = server.client().await;
        c.batch_execute("CREATE TABLE big (a BIGINT, pad TEXT) ROW_PER_BLOCK = 20000")
            .await
            .unwrap();
        c.batch_execute(&format!(
            "INSERT INTO big SELECT g, repeat('x', 20) FROM generate_series(1, {rows}) AS t(g) ORDER BY g"
        ))
        .await
        .unwrap();
        for i in 0..6 {
            c.batch_execute(&format!("INSERT INTO big VALUES ({})", rows + 1 + i))
                .await
                .unwrap();
        }
    }
    let base_count = rows + 6;
    let base_sum: i64 = (1..=base_count).sum();

    // UPDATE of every row: either all rows moved by 1_000_000_000 or none.
    let done = kill_during(
        &mut server,
        "UPDATE big SET a = a + 1000000000",
        Duration::from_millis(800),
    )
    .await;
    server.restart();
    let c = server.client().await;
    let (count, sum) = check_readable(&c).await;
    assert_eq!(count, base_count);
    let updated_sum = base_sum + 1_000_000_000 * base_count;
    assert!(
        sum == base_sum || sum == updated_sum,
        "sum {sum}, done {done}"
    );
    if done {
        assert_eq!(sum, updated_sum);
    }
    let sum_before_compact = sum;

    // OPTIMIZE ... COMPACT merges the six one-row blocks: same rows either way.
    kill_during(
        &mut server,
        "OPTIMIZE TABLE big COMPACT",
        Duration::from_millis(300),
    )
    .await;
    server.restart();
    let c = server.client().await;
    assert_eq!(check_readable(&c).await, (base_count, sum_before_compact));

    // VACUUM of everything unreferenced (files aged first).
    crate::common::age_files(server.data_dir());
    kill_during(
        &mut server,
        "VACUUM TABLE big RETAIN 0 HOURS",
        Duration::from_millis(50),
    )
    .await;
    server.restart();
    let c = server.client().await;
    assert_eq!(check_readable(&c).await, (base_count, sum_before_compact));
    // Whatever was left behind is unreferenced, and a VACUUM removes it.
    c.batch_execute("VACUUM TABLE big RETAIN 0 HOURS")
        .await
        .unwrap();
    assert_eq!(check_readable(&c).await, (base_count, sum_before_compact));
    // And the table still takes writes.
    c.batch_execute("DELETE FROM big WHERE a % 2 = 0")
        .await
        .unwrap();
    let (count, _) = check_readable(&c).await;
    assert!(count > 0 && count < base_count);
}

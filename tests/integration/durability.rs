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

/// The crash loop: SIGKILL at random moments of a mixed workload (INSERT,
/// COPY, UPDATE, DELETE, OPTIMIZE, VACUUM), 100 times. After every restart
/// the table reads, holds exactly the last acknowledged state or the one the
/// interrupted statement would have made, and nothing a snapshot references
/// is missing; at the end VACUUM leaves exactly the referenced blocks.
#[tokio::test]
async fn a_hundred_kills_during_a_mixed_workload_lose_nothing() {
    use std::collections::BTreeMap;

    use bytes::Bytes;
    use futures::{SinkExt, pin_mut};

    use crate::common::{age_files, count_files, rows};

    const KILLS: usize = 100;
    type Model = BTreeMap<i64, i64>;

    async fn contents(c: &tokio_postgres::Client) -> Model {
        rows(c, "SELECT id, v FROM t ORDER BY id")
            .await
            .into_iter()
            .map(|r| {
                (
                    r[0].as_deref().unwrap().parse().unwrap(),
                    r[1].as_deref().unwrap().parse().unwrap(),
                )
            })
            .collect()
    }

    async fn copy(c: &tokio_postgres::Client, text: String) -> Result<(), tokio_postgres::Error> {
        let sink = c.copy_in::<_, Bytes>("COPY t FROM STDIN").await?;
        pin_mut!(sink);
        sink.send(Bytes::from(text)).await?;
        sink.finish().await.map(drop)
    }

    let mut server = TestServer::start();
    server
        .client()
        .await
        .batch_execute("CREATE TABLE t (id BIGINT, v BIGINT) ROW_PER_BLOCK = 50")
        .await
        .unwrap();
    let mut seed = 0x2545f4914f6cdd1du64;
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut model = Model::new();
    let mut next_id = 0i64;
    let (mut statements, mut interrupted_landed) = (0, 0);
    for kill in 0..KILLS {
        let c = server.client().await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(20 + random(400));
        // The state the statement running at the kill would make.
        let interrupted = loop {
            let kind = random(6);
            let n = 20 + random(80) as i64;
            let ids = next_id..next_id + n;
            next_id += n;
            let (k5, k13) = (random(5) as i64, random(13) as i64);
            let mut expected = model.clone();
            match kind {
                0 | 1 => expected.extend(ids.clone().map(|i| (i, i))),
                2 => expected
                    .iter_mut()
                    .filter(|(id, _)| *id % 5 == k5)
                    .for_each(|(_, v)| *v += 1),
                3 => expected.retain(|id, _| id % 13 != k13),
                _ => {} // OPTIMIZE and VACUUM change no row
            }
            let work = async {
                match kind {
                    0 => {
                        let values: Vec<String> =
                            ids.clone().map(|i| format!("({i}, {i})")).collect();
                        c.batch_execute(&format!("INSERT INTO t VALUES {}", values.join(",")))
                            .await
                    }
                    1 => copy(&c, ids.clone().map(|i| format!("{i}\t{i}\n")).collect()).await,
                    2 => {
                        c.batch_execute(&format!("UPDATE t SET v = v + 1 WHERE id % 5 = {k5}"))
                            .await
                    }
                    3 => {
                        c.batch_execute(&format!("DELETE FROM t WHERE id % 13 = {k13}"))
                            .await
                    }
                    4 => c.batch_execute("OPTIMIZE TABLE t COMPACT").await,
                    _ => c.batch_execute("VACUUM TABLE t RETAIN 0 HOURS").await,
                }
            };
            tokio::select! {
                r = work => {
                    r.unwrap_or_else(|e| panic!("statement {statements}: {e}"));
                    statements += 1;
                    model = expected;
                }
                _ = tokio::time::sleep_until(deadline) => break expected,
            }
        };
        drop(c);
        server.kill9();
        server.restart();
        let c = server.client().await;
        let after = contents(&c).await;
        if after != model {
            assert_eq!(
                after, interrupted,
                "kill {kill}: neither the acknowledged state nor the interrupted statement's"
            );
            interrupted_landed += 1;
        }
        model = after;
        let problems = rows(&c, "CALL system$fuse_check('default', 't')").await;
        assert!(problems.is_empty(), "kill {kill}: {problems:?}");
    }
    eprintln!(
        "crash loop: {KILLS} kills, {statements} statements acknowledged, \
         {interrupted_landed} interrupted statements had committed"
    );
    let c = server.client().await;
    age_files(server.data_dir());
    c.batch_execute("VACUUM TABLE t RETAIN 0 HOURS")
        .await
        .unwrap();
    let referenced: usize = rows(&c, "SELECT count(*) FROM fuse_block('default', 't')").await[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(count_files(server.data_dir(), "/_b/"), referenced);
    assert_eq!(contents(&c).await, model, "VACUUM changed nothing visible");
}

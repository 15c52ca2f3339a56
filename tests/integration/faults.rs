//! Storage faults: the server runs with `--inject-storage-faults`, OpenDAL's
//! chaos layer failing a share of all storage reads (below the retry
//! layer, as a flaky network would). A mixed workload runs against it and
//! every statement must either succeed or fail with 58030 and leave its table
//! exactly as before; after a restart without faults the table holds exactly
//! what the successful statements wrote, and nothing it references is missing.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::{SinkExt, pin_mut};
use tokio_postgres::Client;

use crate::common::{TestServer, rows, sqlstate};

/// Each request fails with this probability; the retry layer tries 5 times,
/// so about 0.25 % of requests fail for good, and a statement making tens of
/// requests fails now and then.
const FAULT_RATIO: &str = "0.3";
const STEPS: usize = 120;

type Model = BTreeMap<i64, String>;

/// The table's rows, read until a read gets through the faults.
async fn contents(c: &Client) -> Model {
    for _ in 0..50 {
        if let Ok(messages) = c.simple_query("SELECT id, v FROM t ORDER BY id").await {
            return messages
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some((
                        r.get(0).unwrap().parse().unwrap(),
                        r.get(1).unwrap().to_string(),
                    )),
                    _ => None,
                })
                .collect();
        }
    }
    panic!("50 reads in a row failed");
}

/// A session; starting one reads the catalog, which may fail too.
async fn connect(server: &TestServer) -> Client {
    for _ in 0..50 {
        if let Ok((client, conn)) =
            tokio_postgres::connect(&server.conn_str("default"), tokio_postgres::NoTls).await
        {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            return client;
        }
    }
    panic!("50 connection attempts in a row failed");
}

async fn copy(c: &Client, rows: &[(i64, String)]) -> Result<u64, tokio_postgres::Error> {
    let sink = c.copy_in::<_, Bytes>("COPY t FROM STDIN").await?;
    pin_mut!(sink);
    let text: String = rows.iter().map(|(id, v)| format!("{id}\t{v}\n")).collect();
    sink.send(Bytes::from(text)).await?;
    sink.finish().await
}

#[tokio::test]
async fn a_workload_under_storage_faults_loses_nothing() {
    let mut server = TestServer::start_with(&["--inject-storage-faults", FAULT_RATIO]);
    let mut c = connect(&server).await;
    // CREATE may fail too; IF NOT EXISTS makes trying again safe.
    let mut created = false;
    for _ in 0..20 {
        if c.simple_query("CREATE TABLE IF NOT EXISTS t (id BIGINT, v TEXT)")
            .await
            .is_ok()
        {
            created = true;
            break;
        }
    }
    assert!(created, "CREATE TABLE never got through");

    let mut model = Model::new();
    let (mut ok, mut failed) = (0, 0);
    let mut next_id = 0i64;
    for step in 0..STEPS {
        let batch: Vec<(i64, String)> = (next_id..next_id + 20)
            .map(|id| (id, format!("v{id}")))
            .collect();
        let mut expected = model.clone();
        let result = match step % 6 {
            0 | 1 => {
                let values: Vec<String> = batch
                    .iter()
                    .map(|(id, v)| format!("({id}, '{v}')"))
                    .collect();
                expected.extend(batch.iter().cloned());
                let sql = format!("INSERT INTO t VALUES {}", values.join(","));
                // Both protocols: the extended one commits at Sync.
                if step % 6 == 0 {
                    c.simple_query(&sql).await.map(drop)
                } else {
                    c.execute(&sql, &[]).await.map(drop)
                }
            }
            2 => {
                expected.extend(batch.iter().cloned());
                copy(&c, &batch).await.map(drop)
            }
            3 => {
                let k = (step % 7) as i64;
                for (id, v) in expected.iter_mut() {
                    if id % 7 == k {
                        *v = format!("u{step}");
                    }
                }
                c.simple_query(&format!("UPDATE t SET v = 'u{step}' WHERE id % 7 = {k}"))
                    .await
                    .map(drop)
            }
            4 => {
                let k = (step % 11) as i64;
                expected.retain(|id, _| id % 11 != k);
                c.simple_query(&format!("DELETE FROM t WHERE id % 11 = {k}"))
                    .await
                    .map(drop)
            }
            _ => c.simple_query("OPTIMIZE TABLE t COMPACT").await.map(drop),
        };
        match result {
            Ok(()) => {
                ok += 1;
                model = expected;
                next_id += 20;
            }
            Err(e) => {
                failed += 1;
                assert_eq!(sqlstate(&e), "58030", "step {step}: {e:?}");
                let message = e.as_db_error().map(|d| d.message()).unwrap_or_default();
                assert!(message.contains("storage"), "step {step}: {message}");
                // COPY's batch may be retried under new ids: keep them unique.
                next_id += 20;
                if step % 6 == 2 {
                    // tokio-postgres pipelines Sync after the COPY's Execute and
                    // sends CopyFail + Sync when the copy cannot start: the
                    // second ReadyForQuery confuses its next statement, exactly
                    // as against PostgreSQL (checked with a read-only
                    // transaction's 25006). A new connection carries on.
                    c = connect(&server).await;
                }
            }
        }
        if step % 10 == 9 {
            assert_eq!(contents(&c).await, model, "after step {step}");
        }
    }
    assert_eq!(contents(&c).await, model, "at the end, with faults");
    eprintln!(
        "storage faults at {FAULT_RATIO}: {STEPS} statements, {ok} succeeded, {failed} failed with 58030"
    );
    assert!(
        failed > 0,
        "no statement failed: the faults were not injected"
    );
    assert!(
        ok > STEPS / 2,
        "only {ok} of {STEPS} statements got through"
    );

    // Without faults: the table is what the successful statements made, and
    // every object a snapshot references is there.
    drop(c);
    server.kill9();
    let data_dir = server.data_dir().to_path_buf();
    let server = TestServer::start_in(&data_dir);
    let c = server.client().await;
    assert_eq!(contents(&c).await, model, "after a restart without faults");
    let problems = rows(&c, "CALL system$fuse_check('default', 't')").await;
    assert!(problems.is_empty(), "fuse_check: {problems:?}");
}

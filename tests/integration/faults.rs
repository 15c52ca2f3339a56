//! Storage faults: the server runs with `--inject-storage-faults`, failing a
//! share of all storage operations below the retry layer, as a flaky network
//! would: reads through OpenDAL's chaos layer; writes, lists, deletes, stats
//! and restores through fusegate's own, half of them after the store did the
//! work (a lost answer). A mixed workload runs against it and
//! every statement must either succeed or fail with 58030 and leave its table
//! exactly as before; after a restart without faults the table holds exactly
//! what the successful statements wrote, and nothing it references is missing.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::{SinkExt, pin_mut};
use tokio_postgres::Client;

use crate::common::{TestServer, rows, sqlstate};
use crate::failsafe::amend;
use crate::s3::S3;

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
    // Half the injected write faults lose the answer, not the request: the
    // catalog commits that were retried found their own version in place.
    assert!(
        server
            .log()
            .contains("the catalog version is ours: its first answer was lost"),
        "no catalog commit lost its answer: write faults were not injected"
    );
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

/// fuse_amend on a flaky store: every call either completes or fails with a
/// retryable 58030 that says what it restored and what is still missing;
/// calling it again finishes the job, and the table then reads in full.
#[tokio::test]
async fn fuse_amend_under_storage_faults_completes_or_says_what_is_missing() {
    let s3 = S3::start();
    let mut server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(&format!(
        "CREATE TABLE t(a INT) {}",
        s3.location(&s3.versioned_bucket)
    ))
    .await
    .unwrap();
    // 40 commits: 40 blocks and 40 segments behind the current snapshot.
    for i in 0..40 {
        c.batch_execute(&format!(
            "INSERT INTO t SELECT {i} * 100 + g FROM generate_series(1, 100) AS g"
        ))
        .await
        .unwrap();
    }
    let expected = rows(&c, "SELECT count(*), sum(a) FROM t").await;
    drop(c);
    s3.delete_all(&s3.versioned_bucket);

    // Every batched removal of delete markers fails, so each object is
    // restored by a copy instead (the fallback; the batches themselves are
    // tested in failsafe.rs). 60 % of copies fail, each tried 5 times: about
    // 8 % fail for good, so with some 80 objects to restore the first calls
    // fall short. The steps before (catalog, listing versions, metadata) see
    // the faults too. (With batches failing only 90 % of the time, a first
    // call succeeded whole in about one run in fifteen.)
    server.restart_with(&[
        "--inject-storage-faults",
        "delete=1,restore=0.6,read=0.1,list=0.3,stat=0.3,write=0.3",
    ]);
    let (mut incomplete, mut other_failures, mut present) = (0, 0, 0);
    let mut done = None;
    for attempt in 0..60 {
        let Ok((c, conn)) =
            tokio_postgres::connect(&server.conn_str("default"), tokio_postgres::NoTls).await
        else {
            continue;
        };
        tokio::spawn(conn);
        match amend(&c, "default", "t").await {
            Ok(result) => {
                done = Some((attempt, result));
                break;
            }
            Err(e) => {
                let db = e.as_db_error().unwrap_or_else(|| panic!("{e:?}"));
                assert_eq!(db.code().code(), "58030", "{db:?}");
                if db.message().starts_with("fuse_amend restored ") {
                    incomplete += 1;
                    if incomplete == 1 {
                        let shown: String = db.message().chars().take(400).collect();
                        eprintln!("the first incomplete report: {shown}...");
                    }
                    assert!(
                        db.message().contains(" restores failed: "),
                        "{}",
                        db.message()
                    );
                    assert!(
                        db.hint()
                            .unwrap_or_default()
                            .contains("run fuse_amend again"),
                        "{db:?}"
                    );
                } else {
                    // A step before the restores (listing versions, reading
                    // metadata) failed for good: nothing to list yet.
                    other_failures += 1;
                }
            }
        }
        // What a failed call restored stays restored.
        let now = s3.keys(&s3.versioned_bucket).len();
        assert!(
            now >= present,
            "objects went missing again: {now} < {present}"
        );
        present = now;
    }
    let Some((attempts, (result, checked, restored))) = done else {
        panic!("fuse_amend did not complete in 60 calls:\n{}", server.log());
    };
    eprintln!(
        "fuse_amend at 60 % restore faults: completed on call {} ({incomplete} incomplete reports, \
         {other_failures} failed before restoring); last call checked {checked}, restored {restored}",
        attempts + 1
    );
    assert_eq!(result, "Ok");
    assert!(
        incomplete > 0,
        "no call reported an incomplete restore: restore faults were not injected"
    );

    // Without faults, the table reads exactly as before the deletion.
    server.restart_with(&[]);
    let c = server.client().await;
    assert_eq!(rows(&c, "SELECT count(*), sum(a) FROM t").await, expected);
    let problems = rows(&c, "CALL system$fuse_check('default', 't')").await;
    assert!(problems.is_empty(), "fuse_check: {problems:?}");
}

//! Fail-Safe against a real versioned S3 server: tables on S3, reading a
//! damaged table, and `CALL system$fuse_amend` bringing it back.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::common::{TestServer, column, rows, sqlstate};
use crate::s3::S3;

pub(crate) async fn amend(
    c: &Client,
    db: &str,
    table: &str,
) -> Result<(String, u64, u64), tokio_postgres::Error> {
    let msgs = c
        .simple_query(&format!("CALL system$fuse_amend('{db}', '{table}')"))
        .await?;
    let cols: Vec<String> = msgs
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::RowDescription(cols) => {
                Some(cols.iter().map(|c| c.name().to_string()).collect())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(cols, vec!["result", "checked", "restored"]);
    let row = msgs
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((
                r.get(0).unwrap().to_string(),
                r.get(1).unwrap().parse().unwrap(),
                r.get(2).unwrap().parse().unwrap(),
            )),
            _ => None,
        })
        .unwrap();
    Ok(row)
}

fn assert_no_secrets(s3: &S3, text: &str) {
    assert!(
        !text.contains(&s3.secret_access_key),
        "secret key leaked: {text}"
    );
    assert!(
        !text.contains(&s3.access_key_id),
        "access key leaked: {text}"
    );
}

#[tokio::test]
async fn seed_scenario_end_to_end() {
    let s3 = S3::start();
    let mut server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(&format!(
        "CREATE TABLE t(a INT) {}",
        s3.location(&s3.versioned_bucket)
    ))
    .await
    .unwrap();
    c.batch_execute("INSERT INTO t VALUES (1), (2), (3)")
        .await
        .unwrap();

    // The objects are in the bucket right after the INSERT, under <prefix>/<db_id>/<table_id>/.
    let keys = s3.keys(&s3.versioned_bucket);
    let kinds = |k: &str| keys.iter().filter(|key| key.contains(k)).count();
    assert_eq!(
        (
            kinds("/_ss/"),
            kinds("/_sg/"),
            kinds("/_b/"),
            kinds("last_snapshot_location_hint")
        ),
        (1, 1, 1, 1),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .all(|k| k.starts_with(&format!("{}/", s3.prefix)))
    );

    // Someone deletes every sub-folder and file under the prefix.
    s3.delete_all(&s3.versioned_bucket);
    assert!(s3.keys(&s3.versioned_bucket).is_empty());
    let err = c.simple_query("SELECT * FROM t").await.unwrap_err();
    assert_eq!(sqlstate(&err), "58P01");
    let db = err.as_db_error().unwrap();
    assert!(
        db.message().starts_with("table default.t: object "),
        "{}",
        db.message()
    );
    assert!(
        db.message().contains("was not found in s3://"),
        "{}",
        db.message()
    );
    assert!(
        db.hint()
            .unwrap()
            .contains("CALL system$fuse_amend('default', 't')")
    );
    assert_no_secrets(&s3, &format!("{db:?}"));
    // The connection and the server keep working.
    assert_eq!(column(&c, "SELECT 1 + 1").await, vec![Some("2".into())]);

    let (result, checked, restored) = amend(&c, "default", "t").await.unwrap();
    assert_eq!((result.as_str(), checked, restored), ("Ok", 4, 4));
    assert_eq!(
        column(&c, "SELECT a FROM t ORDER BY a").await,
        vec![Some("1".into()), Some("2".into()), Some("3".into())]
    );
    let mut restored_keys = s3.keys(&s3.versioned_bucket);
    let mut original = keys.clone();
    restored_keys.sort();
    original.sort();
    assert_eq!(restored_keys, original, "the very same objects are back");

    // A new connection and a restarted server read it too, and can write.
    server.restart();
    let c = server.client().await;
    c.batch_execute("INSERT INTO t VALUES (4)").await.unwrap();
    assert_eq!(
        column(&c, "SELECT sum(a) FROM t").await,
        vec![Some("10".into())]
    );
    assert_no_secrets(&s3, &server.log());
}

#[tokio::test]
async fn some_blocks_of_many_deleted() {
    let s3 = S3::start();
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(&format!(
        "CREATE TABLE m(a INT, b TEXT) {}",
        s3.location(&s3.versioned_bucket)
    ))
    .await
    .unwrap();
    for i in 0..8 {
        c.batch_execute(&format!(
            "INSERT INTO m VALUES ({i}, 'row {i}'), ({} , 'row {}')",
            i + 100,
            i + 100
        ))
        .await
        .unwrap();
    }
    let blocks: Vec<String> = s3
        .keys(&s3.versioned_bucket)
        .into_iter()
        .filter(|k| k.contains("/_b/"))
        .collect();
    assert_eq!(blocks.len(), 8);
    let victims: Vec<String> = blocks.iter().step_by(2).cloned().collect();
    s3.delete(&s3.versioned_bucket, &victims);
    assert_eq!(
        sqlstate(
            &c.simple_query("SELECT count(*), sum(a) FROM m WHERE b IS NOT NULL")
                .await
                .unwrap_err()
        ),
        "58P01"
    );
    // fuse_check names exactly the deleted blocks, each restorable, and changes nothing.
    let before = s3.keys(&s3.versioned_bucket);
    let found = rows(&c, "CALL system$fuse_check('default', 'm')").await;
    let mut named: Vec<String> = found.iter().map(|r| r[0].clone().unwrap()).collect();
    let mut want: Vec<String> = victims
        .iter()
        .map(|k| k[k.find("_b/").unwrap()..].to_string())
        .collect();
    named.sort();
    want.sort();
    assert_eq!(named, want);
    for r in &found {
        assert_eq!(
            (r[1].as_deref(), r[2].as_deref(), r[3].as_deref()),
            (Some("block"), Some("missing"), Some("t"))
        );
    }
    assert_eq!(s3.keys(&s3.versioned_bucket), before);

    let (_, checked, restored) = amend(&c, "default", "m").await.unwrap();
    assert!(
        rows(&c, "CALL system$fuse_check('default', 'm')")
            .await
            .is_empty()
    );
    // 1 snapshot + 8 segments + 8 blocks + the hint; only the 4 deleted blocks were missing.
    assert_eq!((checked, restored), (18, 4));
    assert_eq!(
        rows(&c, "SELECT count(*), sum(a) FROM m WHERE b IS NOT NULL").await,
        vec![vec![
            Some("16".into()),
            Some(((0..8).sum::<i32>() + (100..108).sum::<i32>()).to_string())
        ]]
    );
}

#[tokio::test]
async fn only_metadata_deleted() {
    let s3 = S3::start();
    let mut server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(&format!(
        "CREATE TABLE md(a INT) {}",
        s3.location(&s3.versioned_bucket)
    ))
    .await
    .unwrap();
    c.batch_execute("INSERT INTO md VALUES (1); INSERT INTO md VALUES (2)")
        .await
        .unwrap();
    let meta: Vec<String> = s3
        .keys(&s3.versioned_bucket)
        .into_iter()
        .filter(|k| k.contains("/_ss/") || k.contains("/_sg/"))
        .collect();
    assert_eq!(meta.len(), 4, "two snapshots and two segments");
    s3.delete(&s3.versioned_bucket, &meta);
    // A fresh server has no cached metadata: the snapshot itself is missing.
    server.restart();
    let c = server.client().await;
    let err = c.simple_query("SELECT * FROM md").await.unwrap_err();
    assert_eq!(sqlstate(&err), "58P01");
    assert!(err.as_db_error().unwrap().message().contains("/_ss/"));
    let (_, checked, restored) = amend(&c, "default", "md").await.unwrap();
    // The current snapshot, its 2 segments, 2 blocks, the hint; the older snapshot is history.
    assert_eq!((checked, restored), (6, 3));
    assert_eq!(
        column(&c, "SELECT sum(a) FROM md").await,
        vec![Some("3".into())]
    );
}

#[tokio::test]
async fn nothing_missing_writes_nothing_and_twice_is_safe() {
    let s3 = S3::start();
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(&format!(
        "CREATE TABLE ok(a INT) {}",
        s3.location(&s3.versioned_bucket)
    ))
    .await
    .unwrap();
    c.batch_execute("INSERT INTO ok VALUES (1), (2)")
        .await
        .unwrap();
    let before = s3.versions(&s3.versioned_bucket);
    assert_eq!(
        amend(&c, "default", "ok").await.unwrap(),
        ("Ok".into(), 4, 0)
    );
    assert_eq!(
        amend(&c, "default", "ok").await.unwrap(),
        ("Ok".into(), 4, 0)
    );
    let after = s3.versions(&s3.versioned_bucket);
    assert_eq!(before, after, "no new object versions");
    // After a deletion, amending twice restores once.
    s3.delete_all(&s3.versioned_bucket);
    assert_eq!(amend(&c, "default", "ok").await.unwrap().2, 4);
    assert_eq!(amend(&c, "default", "ok").await.unwrap().2, 0);
    assert_eq!(
        column(&c, "SELECT count(*) FROM ok").await,
        vec![Some("2".into())]
    );
}

/// Deleted objects come back as the versions they were (their delete
/// markers removed, not copies of them), even when deleted twice over.
#[tokio::test]
async fn objects_deleted_twice_come_back_as_the_same_versions() {
    let s3 = S3::start();
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(&format!(
        "CREATE TABLE twice(a INT) {}",
        s3.location(&s3.versioned_bucket)
    ))
    .await
    .unwrap();
    for i in 0..3 {
        c.batch_execute(&format!("INSERT INTO twice VALUES ({i})"))
            .await
            .unwrap();
    }
    // key -> version id of every live object.
    let live = |versions: Vec<serde_json::Value>| {
        let mut v: Vec<(String, String)> = versions
            .iter()
            .filter(|v| v["latest"] == true && v["marker"] == false)
            .map(|v| {
                (
                    v["key"].as_str().unwrap().to_string(),
                    v["version"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = live(s3.versions(&s3.versioned_bucket));
    assert_eq!(before.len(), 3 + 3 + 3 + 1, "{before:?}");
    let keys: Vec<String> = before.iter().map(|(k, _)| k.clone()).collect();
    s3.delete_all(&s3.versioned_bucket);
    // A second delete of the same keys stacks another marker on each.
    s3.delete(&s3.versioned_bucket, &keys);
    let markers = s3
        .versions(&s3.versioned_bucket)
        .iter()
        .filter(|v| v["marker"] == true && keys.iter().any(|k| v["key"] == k.as_str()))
        .count();
    assert_eq!(markers, 2 * keys.len());
    assert!(s3.keys(&s3.versioned_bucket).is_empty());

    // The current snapshot, its 3 segments and 3 blocks, and the hint (the
    // two older snapshots are not needed and stay deleted).
    assert_eq!(
        amend(&c, "default", "twice").await.unwrap(),
        ("Ok".into(), 8, 8)
    );
    let after = live(s3.versions(&s3.versioned_bucket));
    assert_eq!(after.len(), 8, "{after:?}");
    for object in &after {
        assert!(
            before.contains(object),
            "{object:?} is not a version that was current before"
        );
    }
    assert_eq!(
        column(&c, "SELECT sum(a) FROM twice").await,
        vec![Some("3".into())]
    );
}

#[tokio::test]
async fn storage_without_versions_is_refused_clearly() {
    let s3 = S3::start();
    let server = TestServer::start();
    let c = server.client().await;
    // An unversioned bucket.
    c.batch_execute(&format!(
        "CREATE TABLE plain(a INT) {}",
        s3.location(&s3.unversioned_bucket)
    ))
    .await
    .unwrap();
    c.batch_execute("INSERT INTO plain VALUES (1)")
        .await
        .unwrap();
    let err = amend(&c, "default", "plain").await.unwrap_err();
    assert_eq!(sqlstate(&err), "55000");
    assert!(
        err.as_db_error().unwrap().message().contains("versioning"),
        "{err:?}"
    );
    s3.delete_all(&s3.unversioned_bucket);
    let err = amend(&c, "default", "plain").await.unwrap_err();
    assert!(
        ["55000", "58P01"].contains(&sqlstate(&err).as_str()),
        "{err:?}"
    );
    // The local default.
    c.batch_execute("CREATE TABLE on_disk(a INT); INSERT INTO on_disk VALUES (1)")
        .await
        .unwrap();
    let err = amend(&c, "default", "on_disk").await.unwrap_err();
    assert_eq!(sqlstate(&err), "0A000");
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("versioning enabled")
    );
    // Unknown database and table.
    assert_eq!(
        sqlstate(&amend(&c, "nodb", "t").await.unwrap_err()),
        "3D000"
    );
    assert_eq!(
        sqlstate(&amend(&c, "default", "nope").await.unwrap_err()),
        "42P01"
    );
    assert_eq!(
        sqlstate(
            &c.simple_query("CALL system$fuse_amend('default')")
                .await
                .unwrap_err()
        ),
        "42883"
    );
    assert_eq!(
        sqlstate(
            &c.simple_query("CALL system$no_such_thing()")
                .await
                .unwrap_err()
        ),
        "42883"
    );
}

#[tokio::test]
async fn bad_locations_create_nothing_and_secrets_stay_hidden() {
    let s3 = S3::start();
    let server = TestServer::start();
    let c = server.client().await;
    // A bucket that does not exist.
    let missing = s3.location("no-such-bucket-here");
    let err = c
        .batch_execute(&format!("CREATE TABLE x(a INT) {missing}"))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "58030", "{err:?}");
    assert_no_secrets(&s3, &format!("{err:?}"));
    // An endpoint nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!(
        "'s3://b/p/' CONNECTION = (endpoint_url = 'http://127.0.0.1:{port}' access_key_id = '{}' secret_access_key = '{}')",
        s3.access_key_id, s3.secret_access_key
    );
    let err = c
        .batch_execute(&format!("CREATE TABLE y(a INT) {down}"))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "58030", "{err:?}");
    assert_no_secrets(&s3, &format!("{err:?}"));
    // Unknown options and schemes are refused before any IO.
    let err = c
        .batch_execute("CREATE TABLE z(a INT) 's3://b/p/' CONNECTION = (colour = 'red')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22023");
    let err = c
        .batch_execute("CREATE TABLE z(a INT) 'gcs://b/p/'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "0A000");
    assert!(
        column(&c, "SHOW TABLES").await.is_empty(),
        "nothing was created"
    );

    // Secrets are masked in SHOW CREATE TABLE and never logged.
    c.batch_execute(&format!(
        "CREATE TABLE shown(a INT) {}",
        s3.location(&s3.versioned_bucket)
    ))
    .await
    .unwrap();
    let ddl = rows(&c, "SHOW CREATE TABLE shown")
        .await
        .remove(0)
        .remove(1)
        .unwrap();
    assert!(
        ddl.contains("access_key_id = '******'") && ddl.contains("secret_access_key = '******'"),
        "{ddl}"
    );
    assert!(ddl.contains(&s3.endpoint));
    assert_no_secrets(&s3, &ddl);
    assert_no_secrets(&s3, &server.log());
    // Nor in the catalog-facing error of a damaged table.
    s3.delete_all(&s3.versioned_bucket);
    c.batch_execute("INSERT INTO shown VALUES (1)")
        .await
        .unwrap();
    s3.delete_all(&s3.versioned_bucket);
    let err = c.simple_query("SELECT * FROM shown").await.unwrap_err();
    assert_no_secrets(&s3, &format!("{err:?}"));
}

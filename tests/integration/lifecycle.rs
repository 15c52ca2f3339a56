//! The fuse lifecycle: time travel, fuse_* introspection, FLASHBACK,
//! OPTIMIZE ... COMPACT, VACUUM, DROP / UNDROP / VACUUM DROP TABLE.

use crate::common::{TestServer, age_files, column, count_files, rows, scalar, sqlstate};

#[tokio::test]
async fn time_travel_and_introspection() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE h (a INT)").await.unwrap();
    c.batch_execute("INSERT INTO h VALUES (1), (2)")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO h VALUES (3)").await.unwrap();
    c.batch_execute("DELETE FROM h WHERE a = 1").await.unwrap();

    let snaps = rows(&c, "SELECT snapshot_id, row_count, segment_count, previous_snapshot_id, timestamp FROM fuse_snapshot('default', 'h')").await;
    assert_eq!(snaps.len(), 3, "{snaps:?}");
    // Newest first.
    assert_eq!(snaps[0][1].as_deref(), Some("2"));
    assert_eq!(snaps[1][1].as_deref(), Some("3"));
    assert_eq!(snaps[2][1].as_deref(), Some("2"));
    assert_eq!(snaps[0][3], snaps[1][0]);
    assert_eq!(snaps[2][3], None);
    let first = snaps[2][0].clone().unwrap();
    let second = snaps[1][0].clone().unwrap();

    assert_eq!(
        column(
            &c,
            &format!("SELECT a FROM h AT (SNAPSHOT => '{first}') ORDER BY a")
        )
        .await,
        vec![Some("1".into()), Some("2".into())]
    );
    assert_eq!(
        scalar(
            &c,
            &format!("SELECT sum(h.a) FROM h AT (SNAPSHOT => '{second}') WHERE h.a > 1")
        )
        .await,
        "5"
    );
    let at_second = snaps[1][4].clone().unwrap();
    assert_eq!(
        scalar(
            &c,
            &format!("SELECT count(*) FROM default.h AT (TIMESTAMP => '{at_second}'::timestamp) x")
        )
        .await,
        "3"
    );
    assert_eq!(scalar(&c, "SELECT count(*) FROM h").await, "2");
    let err = c
        .simple_query("SELECT * FROM h AT (SNAPSHOT => 'nope')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42704");
    let err = c
        .simple_query("SELECT * FROM h AT (TIMESTAMP => '2000-01-01'::timestamp)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42704");

    // Segments and blocks of the current snapshot, and of an older one.
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM fuse_segment('default', 'h')").await,
        "2"
    );
    assert_eq!(
        scalar(&c, "SELECT sum(row_count) FROM fuse_block('default', 'h')").await,
        "2"
    );
    assert_eq!(
        scalar(
            &c,
            &format!("SELECT sum(row_count) FROM fuse_block('default', 'h', '{first}')")
        )
        .await,
        "2"
    );
    let block = rows(
        &c,
        "SELECT block_location, file_size > 0 FROM fuse_block('default', 'h') LIMIT 1",
    )
    .await;
    assert!(block[0][0].as_deref().unwrap().contains("/_b/"));
    assert_eq!(block[0][1].as_deref(), Some("t"));
    assert_eq!(
        sqlstate(
            &c.simple_query("SELECT * FROM fuse_block('default', 'nope')")
                .await
                .unwrap_err()
        ),
        "42P01"
    );

    // FLASHBACK makes an old state current; history is kept, so it can be undone.
    c.batch_execute(&format!("FLASHBACK TABLE h TO (SNAPSHOT => '{first}')"))
        .await
        .unwrap();
    assert_eq!(
        column(&c, "SELECT a FROM h ORDER BY a").await,
        vec![Some("1".into()), Some("2".into())]
    );
    let latest_before = snaps[0][0].clone().unwrap();
    c.batch_execute(&format!(
        "FLASHBACK TABLE h TO (SNAPSHOT => '{latest_before}')"
    ))
    .await
    .unwrap();
    assert_eq!(
        column(&c, "SELECT a FROM h ORDER BY a").await,
        vec![Some("2".into()), Some("3".into())]
    );
    c.batch_execute("FLASHBACK TABLE h TO (TIMESTAMP => now())")
        .await
        .unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM h").await, "2");
}

#[tokio::test]
async fn compact_merges_small_blocks() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE s (a INT, b TEXT) ROW_PER_BLOCK = 1000")
        .await
        .unwrap();
    for i in 0..12 {
        c.batch_execute(&format!(
            "INSERT INTO s SELECT g, 'x' || g FROM generate_series({}, {}) AS t(g)",
            i * 50 + 1,
            i * 50 + 50
        ))
        .await
        .unwrap();
    }
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM fuse_block('default', 's')").await,
        "12"
    );
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM fuse_segment('default', 's')").await,
        "12"
    );
    let before = rows(&c, "SELECT count(*), sum(a), min(b), max(b) FROM s").await;
    c.batch_execute("OPTIMIZE TABLE s COMPACT").await.unwrap();
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM fuse_block('default', 's')").await,
        "1"
    );
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM fuse_segment('default', 's')").await,
        "1"
    );
    assert_eq!(
        rows(&c, "SELECT count(*), sum(a), min(b), max(b) FROM s").await,
        before
    );
    // Segment-only compaction packs segments without rewriting blocks.
    for i in 0..3 {
        c.batch_execute(&format!("INSERT INTO s VALUES ({}, 'y')", 1000 + i))
            .await
            .unwrap();
    }
    c.batch_execute("OPTIMIZE TABLE s COMPACT SEGMENT")
        .await
        .unwrap();
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM fuse_segment('default', 's')").await,
        "1"
    );
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM fuse_block('default', 's')").await,
        "4"
    );
    assert_eq!(scalar(&c, "SELECT count(*) FROM s").await, "603");
}

#[tokio::test]
async fn vacuum_removes_only_what_no_retained_snapshot_needs() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE v (a INT) ROW_PER_BLOCK = 10")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO v SELECT g FROM generate_series(1, 100) AS t(g)")
        .await
        .unwrap();
    c.batch_execute("DELETE FROM v WHERE a <= 15")
        .await
        .unwrap();
    c.batch_execute("UPDATE v SET a = a + 1000 WHERE a > 95")
        .await
        .unwrap();
    let blocks_now = count_files(server.data_dir(), "/_b/");
    assert!(
        blocks_now > 10,
        "rewrites left old blocks behind: {blocks_now}"
    );
    // Everything is recent: nothing is removed, whatever the retention.
    assert!(
        column(&c, "VACUUM TABLE v RETAIN 0 HOURS DRY RUN")
            .await
            .is_empty()
    );
    age_files(server.data_dir());
    let listed = column(&c, "VACUUM TABLE v RETAIN 0 HOURS DRY RUN").await;
    assert!(!listed.is_empty());
    assert_eq!(
        count_files(server.data_dir(), "/_b/"),
        blocks_now,
        "a dry run removes nothing"
    );
    // Within the default retention (24 h) the history is kept.
    assert!(column(&c, "VACUUM TABLE v DRY RUN").await.is_empty());
    let removed = rows(&c, "VACUUM TABLE v RETAIN 0 HOURS").await;
    assert_eq!(
        removed[0][0].as_deref(),
        Some(listed.len().to_string().as_str())
    );
    assert_eq!(count_files(server.data_dir(), "/_b/"), 9);
    // The table reads exactly as before, and old history is gone.
    assert_eq!(scalar(&c, "SELECT count(*) FROM v").await, "85");
    assert_eq!(scalar(&c, "SELECT max(a) FROM v").await, "1100");
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM fuse_snapshot('default', 'v')").await,
        "1"
    );
    assert!(
        column(&c, "VACUUM TABLE v RETAIN 0 HOURS DRY RUN")
            .await
            .is_empty()
    );
    // OPTIMIZE ... PURGE uses the table's retention.
    c.batch_execute("OPTIMIZE TABLE v PURGE").await.unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM v").await, "85");
}

#[tokio::test]
async fn drop_undrop_and_vacuum_drop() {
    let mut server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE d (a INT); INSERT INTO d VALUES (1), (2)")
        .await
        .unwrap();
    c.batch_execute("DROP TABLE d").await.unwrap();
    assert_eq!(
        sqlstate(&c.simple_query("SELECT * FROM d").await.unwrap_err()),
        "42P01"
    );
    let dropped = rows(&c, "SHOW DROP TABLES").await;
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0][0].as_deref(), Some("d"));
    c.batch_execute("UNDROP TABLE d").await.unwrap();
    assert_eq!(scalar(&c, "SELECT sum(a) FROM d").await, "3");
    assert!(rows(&c, "SHOW DROP TABLES").await.is_empty());
    // UNDROP refuses to shadow a live table.
    c.batch_execute("DROP TABLE d; CREATE TABLE d (z TEXT)")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&c.batch_execute("UNDROP TABLE d").await.unwrap_err()),
        "42P07"
    );
    c.batch_execute("DROP TABLE d").await.unwrap();
    assert_eq!(rows(&c, "SHOW DROP TABLES").await.len(), 2);
    // Survives a restart.
    server.restart();
    let c = server.client().await;
    c.batch_execute("UNDROP TABLE d").await.unwrap();
    assert_eq!(
        column(&c, "SELECT z FROM d").await,
        Vec::<Option<String>>::new()
    );
    c.batch_execute("DROP TABLE d").await.unwrap();
    // Within the retention nothing is purged; with RETAIN 0 everything dropped is.
    assert!(rows(&c, "VACUUM DROP TABLE").await.is_empty());
    let purged = rows(&c, "VACUUM DROP TABLE RETAIN 0 HOURS").await;
    assert_eq!(purged.len(), 2);
    assert!(rows(&c, "SHOW DROP TABLES").await.is_empty());
    assert_eq!(
        sqlstate(&c.batch_execute("UNDROP TABLE d").await.unwrap_err()),
        "42P01"
    );
    assert_eq!(count_files(server.data_dir(), "/_b/"), 0);
}

#[tokio::test]
async fn alter_table_evolves_the_schema_without_rewriting_blocks() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE e (a INT, b TEXT); INSERT INTO e VALUES (1, 'one'), (2, 'two')")
        .await
        .unwrap();
    let blocks_before = count_files(server.data_dir(), "/_b/");

    // ADD COLUMN with a default: existing rows read it, as in PostgreSQL.
    c.batch_execute("ALTER TABLE e ADD COLUMN c INT DEFAULT 7")
        .await
        .unwrap();
    c.batch_execute(
        "INSERT INTO e (a, b) VALUES (3, 'three'); INSERT INTO e VALUES (4, 'four', 40)",
    )
    .await
    .unwrap();
    assert_eq!(
        rows(&c, "SELECT a, b, c FROM e ORDER BY a").await,
        vec![
            vec![Some("1".into()), Some("one".into()), Some("7".into())],
            vec![Some("2".into()), Some("two".into()), Some("7".into())],
            vec![Some("3".into()), Some("three".into()), Some("7".into())],
            vec![Some("4".into()), Some("four".into()), Some("40".into())],
        ]
    );
    assert_eq!(scalar(&c, "SELECT count(*) FROM e WHERE c = 7").await, "3");

    // RENAME COLUMN: old blocks still find their data; filters and pruning follow.
    c.batch_execute("ALTER TABLE e RENAME COLUMN b TO label")
        .await
        .unwrap();
    assert_eq!(scalar(&c, "SELECT label FROM e WHERE a = 1").await, "one");
    assert_eq!(scalar(&c, "SELECT a FROM e WHERE label = 'two'").await, "2");
    assert_eq!(
        sqlstate(&c.simple_query("SELECT b FROM e").await.unwrap_err()),
        "42703"
    );

    // DROP then ADD the same name: the old data does not come back.
    c.batch_execute("ALTER TABLE e DROP COLUMN a")
        .await
        .unwrap();
    c.batch_execute("ALTER TABLE e ADD COLUMN a TEXT")
        .await
        .unwrap();
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM e WHERE a IS NULL").await,
        "4"
    );

    // Mutations and compaction read old blocks with the new schema too.
    c.batch_execute("UPDATE e SET a = upper(label) WHERE c = 7")
        .await
        .unwrap();
    c.batch_execute("DELETE FROM e WHERE label = 'four'")
        .await
        .unwrap();
    c.batch_execute("OPTIMIZE TABLE e COMPACT").await.unwrap();
    assert_eq!(
        rows(&c, "SELECT label, c, a FROM e ORDER BY label").await,
        vec![
            vec![Some("one".into()), Some("7".into()), Some("ONE".into())],
            vec![Some("three".into()), Some("7".into()), Some("THREE".into())],
            vec![Some("two".into()), Some("7".into()), Some("TWO".into())],
        ]
    );

    // RENAME TO, errors, and NOT NULL on a non-empty table.
    c.batch_execute("ALTER TABLE e RENAME TO e2").await.unwrap();
    assert_eq!(
        sqlstate(&c.simple_query("SELECT * FROM e").await.unwrap_err()),
        "42P01"
    );
    assert_eq!(scalar(&c, "SELECT count(*) FROM e2").await, "3");
    assert_eq!(
        sqlstate(
            &c.batch_execute("ALTER TABLE e2 ADD COLUMN c INT")
                .await
                .unwrap_err()
        ),
        "42701"
    );
    assert_eq!(
        sqlstate(
            &c.batch_execute("ALTER TABLE e2 DROP COLUMN zz")
                .await
                .unwrap_err()
        ),
        "42703"
    );
    assert_eq!(
        sqlstate(
            &c.batch_execute("ALTER TABLE e2 ADD COLUMN d INT NOT NULL")
                .await
                .unwrap_err()
        ),
        "23502"
    );
    c.batch_execute("ALTER TABLE e2 ADD COLUMN d INT NOT NULL DEFAULT 0")
        .await
        .unwrap();
    assert_eq!(scalar(&c, "SELECT sum(d) FROM e2").await, "0");
    assert!(blocks_before >= 1);
}

/// fuse_check on the local default: a deleted block and a truncated one are
/// reported (no versions to restore them from); a whole table gives no rows.
#[tokio::test]
async fn fuse_check_reports_missing_and_damaged_blocks() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE chk (a INT); INSERT INTO chk VALUES (1); INSERT INTO chk VALUES (2); INSERT INTO chk VALUES (3)")
        .await
        .unwrap();
    assert!(
        rows(&c, "CALL system$fuse_check('default', 'chk')")
            .await
            .is_empty()
    );
    let blocks: Vec<String> = rows(
        &c,
        "SELECT block_location FROM fuse_block('default', 'chk') ORDER BY block_location",
    )
    .await
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect();
    let file = |loc: &str| server.data_dir().join(loc);
    std::fs::remove_file(file(&blocks[0])).unwrap();
    let bytes = std::fs::read(file(&blocks[1])).unwrap();
    std::fs::write(file(&blocks[1]), &bytes[..bytes.len() / 2]).unwrap();
    let found = rows(&c, "CALL system$fuse_check('default', 'chk') ").await;
    assert_eq!(found.len(), 2, "{found:?}");
    let by_object = |loc: &str| {
        found
            .iter()
            .find(|r| loc.ends_with(r[0].as_deref().unwrap()))
            .unwrap_or_else(|| panic!("{loc} not in {found:?}"))
            .clone()
    };
    assert_eq!(by_object(&blocks[0])[2].as_deref(), Some("missing"));
    assert!(
        by_object(&blocks[1])[2]
            .as_deref()
            .unwrap()
            .contains("the metadata says")
    );
    assert!(found.iter().all(|r| r[3].as_deref() == Some("f")));
    // The same check from the command line, for every table: exit status 1.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fusegate"))
        .arg("check")
        .arg("--data-dir")
        .arg(server.data_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("default.chk: 8 objects checked, 2 problems"),
        "{stdout}"
    );
    assert!(stdout.contains(": missing"), "{stdout}");
    let err = c
        .simple_query("CALL system$fuse_check('default', 'nope')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42P01");
}

/// The `compression` table option picks the codec of the blocks a table's
/// writes make (INSERT, and compaction rewriting them); a codec fusegate does
/// not know is refused at CREATE TABLE.
#[tokio::test]
async fn the_compression_option_sets_the_codec_of_new_blocks() {
    use parquet::basic::Compression;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let server = TestServer::start();
    let c = server.client().await;
    let codecs = |table: &'static str| {
        let c = &c;
        let server = &server;
        async move {
            let sql = format!("SELECT block_location FROM fuse_block('default', '{table}')");
            let mut found = Vec::new();
            for row in rows(c, &sql).await {
                let path = server.data_dir().join(row[0].as_deref().unwrap());
                let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
                for group in reader.metadata().row_groups() {
                    found.extend(group.columns().iter().map(|col| col.compression()));
                }
            }
            found.dedup();
            found
        }
    };
    c.batch_execute(
        "CREATE TABLE fast (id BIGINT, s TEXT);
         CREATE TABLE small (id BIGINT, s TEXT) COMPRESSION = 'zstd';
         INSERT INTO fast SELECT g, 'row ' || g FROM generate_series(1, 5000) AS g;
         INSERT INTO fast VALUES (0, 'zero');
         INSERT INTO small SELECT g, 'row ' || g FROM generate_series(1, 5000) AS g;",
    )
    .await
    .unwrap();
    // A table in the local directory defaults to lz4; a named codec wins.
    assert_eq!(codecs("fast").await, vec![Compression::LZ4_RAW]);
    assert!(matches!(codecs("small").await[..], [Compression::ZSTD(_)]));
    c.batch_execute("OPTIMIZE TABLE fast COMPACT")
        .await
        .unwrap();
    assert_eq!(codecs("fast").await, vec![Compression::LZ4_RAW]);
    assert_eq!(
        scalar(
            &c,
            "SELECT sum(id) || ' ' || max(s) FROM fast WHERE id > 4990"
        )
        .await,
        "49955 row 5000"
    );

    let err = c
        .batch_execute("CREATE TABLE bad (a INT) COMPRESSION = 'brotli'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22023");
    let message = err.as_db_error().unwrap().message().to_string();
    assert!(
        message.contains("\"compression\" is one of zstd, lz4, snappy, none"),
        "{message}"
    );
    assert_eq!(
        scalar(
            &c,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'bad'"
        )
        .await,
        "0"
    );
}

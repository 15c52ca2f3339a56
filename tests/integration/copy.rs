//! COPY FROM STDIN / TO STDOUT with tokio-postgres (extended protocol) and
//! psql's \copy (simple protocol), in PostgreSQL's text and CSV formats.

use bytes::Bytes;
use futures::{SinkExt, TryStreamExt, pin_mut};

use crate::common::{self, TestServer, column, rows, scalar, sqlstate};

async fn copy_in(
    client: &tokio_postgres::Client,
    sql: &str,
    chunks: &[&str],
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in::<_, Bytes>(sql).await?;
    pin_mut!(sink);
    for chunk in chunks {
        sink.send(Bytes::from(chunk.to_string())).await?;
    }
    sink.finish().await
}

async fn copy_out(client: &tokio_postgres::Client, sql: &str) -> String {
    let stream = client.copy_out(sql).await.unwrap();
    let parts: Vec<Bytes> = stream.try_collect().await.unwrap();
    parts
        .iter()
        .map(|b| String::from_utf8_lossy(b).to_string())
        .collect()
}

#[tokio::test]
async fn copy_text_and_csv_round_trip() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (a INT, b TEXT, c DOUBLE PRECISION DEFAULT 1.5)")
        .await
        .unwrap();

    // Text format, split across messages in the middle of a line; escapes and \N.
    let n = copy_in(
        &client,
        "COPY t FROM STDIN",
        &[
            "1\tx y\t2.5\n2\t\\N\t3\n3\thel",
            "lo\\tworld\t4.5\n4\t\t-1\n",
        ],
    )
    .await
    .unwrap();
    assert_eq!(n, 4);
    // CSV with a header and a column list: the missing column takes its default.
    let n = copy_in(
        &client,
        "COPY t (b, a) FROM STDIN WITH (FORMAT csv, HEADER true)",
        &["b,a\n\"q\"\"u,o\nte\",5\n,6\n"],
    )
    .await
    .unwrap();
    assert_eq!(n, 2);

    assert_eq!(
        rows(&client, "SELECT a, b, c FROM t ORDER BY a").await,
        vec![
            vec![Some("1".into()), Some("x y".into()), Some("2.5".into())],
            vec![Some("2".into()), None, Some("3".into())],
            vec![
                Some("3".into()),
                Some("hello\tworld".into()),
                Some("4.5".into())
            ],
            vec![Some("4".into()), Some("".into()), Some("-1".into())],
            vec![
                Some("5".into()),
                Some("q\"u,o\nte".into()),
                Some("1.5".into())
            ],
            vec![Some("6".into()), None, Some("1.5".into())],
        ]
    );

    // COPY TO writes what PostgreSQL writes for the same rows.
    assert_eq!(
        copy_out(&client, "COPY (SELECT * FROM t ORDER BY a) TO STDOUT").await,
        "1\tx y\t2.5\n2\t\\N\t3\n3\thello\\tworld\t4.5\n4\t\t-1\n5\tq\"u,o\\nte\t1.5\n6\t\\N\t1.5\n"
    );
    assert_eq!(
        copy_out(
            &client,
            "COPY (SELECT a, b FROM t ORDER BY a) TO STDOUT WITH (FORMAT csv, HEADER)"
        )
        .await,
        "a,b\n1,x y\n2,\n3,hello\tworld\n4,\"\"\n5,\"q\"\"u,o\nte\"\n6,\n"
    );
    assert_eq!(
        copy_out(
            &client,
            "COPY (SELECT a, b FROM t ORDER BY a) TO STDOUT CSV DELIMITER '|' NULL 'NULL'"
        )
        .await,
        "1|x y\n2|NULL\n3|hello\tworld\n4|\n5|\"q\"\"u,o\nte\"\n6|NULL\n"
    );
    // What COPY TO wrote, COPY FROM reads back identically.
    let csv = copy_out(&client, "COPY t TO STDOUT WITH (FORMAT csv)").await;
    client
        .batch_execute("CREATE TABLE t2 (a INT, b TEXT, c DOUBLE PRECISION)")
        .await
        .unwrap();
    copy_in(&client, "COPY t2 FROM STDIN WITH (FORMAT csv)", &[&csv])
        .await
        .unwrap();
    assert_eq!(
        rows(&client, "SELECT * FROM t2 ORDER BY a").await,
        rows(&client, "SELECT * FROM t ORDER BY a").await
    );
}

/// Timestamps as PostgreSQL reads them, seconds left out or a one-digit
/// hour, load; a time that does not exist still fails the COPY, named as the
/// client wrote it.
#[tokio::test]
async fn copy_reads_timestamps_without_seconds() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (id INT, at TIMESTAMP)")
        .await
        .unwrap();
    let n = copy_in(
        &client,
        "COPY t FROM STDIN WITH (FORMAT csv)",
        &["1,2024-01-01 12:00\n2,2024-01-02 08:15:30\n3,2024-01-03 7:05\n4,2024-01-04T23:59\n"],
    )
    .await
    .unwrap();
    assert_eq!(n, 4);
    let got = column(&client, "SELECT at FROM t ORDER BY id").await;
    assert_eq!(
        got,
        [
            "2024-01-01 12:00:00",
            "2024-01-02 08:15:30",
            "2024-01-03 07:05:00",
            "2024-01-04 23:59:00"
        ]
        .map(|t| Some(t.to_string()))
    );

    let err = copy_in(
        &client,
        "COPY t FROM STDIN WITH (FORMAT csv)",
        &["5,2024-01-05 10:00\n6,2024-01-06 25:15\n"],
    )
    .await
    .unwrap_err();
    assert_eq!(sqlstate(&err), "22008", "{err:?}");
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("\"2024-01-06 25:15\""),
        "{err:?}"
    );
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "4");
}

#[tokio::test]
async fn bad_copy_data_loads_nothing() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (a INT, c DOUBLE PRECISION); INSERT INTO t VALUES (1, 1)")
        .await
        .unwrap();

    // A bad value on line 3: an error naming the line, and no row of the COPY lands.
    let err = copy_in(
        &client,
        "COPY t FROM STDIN",
        &["2\t2\n3\t3\n4\tnotanumber\n5\t5\n"],
    )
    .await
    .unwrap_err();
    assert_eq!(sqlstate(&err), "22P02", "{err:?}");
    let db = err.as_db_error().unwrap();
    assert_eq!(
        db.message(),
        "invalid input syntax for type double precision: \"notanumber\""
    );
    assert_eq!(
        db.where_(),
        Some("COPY t, line 3, column c: \"notanumber\"")
    );
    assert_eq!(
        column(&client, "SELECT a FROM t").await,
        vec![Some("1".into())]
    );

    // Too few and too many fields.
    let err = copy_in(&client, "COPY t FROM STDIN", &["2\n"])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22P04");
    assert_eq!(
        err.as_db_error().unwrap().message(),
        "missing data for column \"c\""
    );
    let err = copy_in(&client, "COPY t FROM STDIN", &["2\t2\t2\n"])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22P04");
    assert_eq!(
        err.as_db_error().unwrap().message(),
        "extra data after last expected column"
    );

    // Unknown table or column, before any data is sent. (After a COPY that
    // fails to start, tokio-postgres sends CopyFail + Sync, and the second
    // ReadyForQuery breaks its connection — against PostgreSQL too; so each
    // gets its own connection.)
    let err = copy_in(&server.client().await, "COPY t (zz) FROM STDIN", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42703");
    let err = copy_in(&server.client().await, "COPY nope FROM STDIN", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42P01");

    // A client that abandons the copy (CopyFail) loses only that copy.
    {
        let sink = client
            .copy_in::<_, Bytes>("COPY t FROM STDIN")
            .await
            .unwrap();
        pin_mut!(sink);
        sink.send(Bytes::from_static(b"9\t9\n")).await.unwrap();
        // Dropped without finish(): tokio-postgres sends CopyFail.
    }
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "1");
    assert_eq!(scalar(&client, "SELECT sum(a) FROM t").await, "1");
}

#[tokio::test]
async fn copy_inside_a_transaction_and_in_bulk() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (a BIGINT, b TEXT)")
        .await
        .unwrap();

    client.batch_execute("BEGIN").await.unwrap();
    copy_in(&client, "COPY t FROM STDIN", &["1\tone\n"])
        .await
        .unwrap();
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "1");
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "0");

    client.batch_execute("BEGIN").await.unwrap();
    copy_in(&client, "COPY t FROM STDIN", &["1\tone\n"])
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO t VALUES (2, 'two')")
        .await
        .unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "2");

    // Many rows in many messages: several batches, one commit.
    let lines: Vec<String> = (0..30_000).map(|i| format!("{i}\tv{i}\n")).collect();
    let chunks: Vec<String> = lines.chunks(1000).map(|c| c.concat()).collect();
    let chunks: Vec<&str> = chunks.iter().map(String::as_str).collect();
    assert_eq!(
        copy_in(&client, "COPY t FROM STDIN", &chunks)
            .await
            .unwrap(),
        30_000
    );
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "30002");
    assert_eq!(
        scalar(&client, "SELECT sum(a) FROM t WHERE b LIKE 'v%'").await,
        (0..30_000i64).sum::<i64>().to_string()
    );
    let out = copy_out(
        &client,
        "COPY (SELECT a FROM t WHERE b LIKE 'v%' ORDER BY a) TO STDOUT",
    )
    .await;
    assert_eq!(out.lines().count(), 30_000);
    assert_eq!(out.lines().last(), Some("29999"));
}

fn psql(server: &TestServer, script: &str, stdin: &str) -> (String, String) {
    let args = ["-q", "-A", "-t", "-c", script];
    let (out, err, _) = common::psql(&server.conn_str("default"), &args, None, stdin);
    (out, err)
}

#[tokio::test]
async fn psql_copy_from_stdin_and_files() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (a INT, b TEXT)")
        .await
        .unwrap();

    let (_, err) = psql(&server, "COPY t FROM STDIN", "1\tone\n2\t\\N\n\\.\n");
    assert_eq!(err, "");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.csv");
    let (_, err) = psql(
        &server,
        &format!("\\copy t TO '{}' WITH (FORMAT csv, HEADER)", file.display()),
        "",
    );
    assert_eq!(err, "");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "a,b\n1,one\n2,\n");
    let (_, err) = psql(
        &server,
        &format!(
            "\\copy t FROM '{}' WITH (FORMAT csv, HEADER)",
            file.display()
        ),
        "",
    );
    assert_eq!(err, "");
    assert_eq!(
        scalar(&client, "SELECT count(*) FROM t WHERE b IS NULL").await,
        "2"
    );

    // An error mid-copy reaches psql; the session carries on.
    let (out, err) = psql(&server, "COPY t FROM STDIN", "3\tthree\nx\tfour\n");
    assert!(
        err.contains("invalid input syntax for type integer: \"x\""),
        "{err}"
    );
    assert!(err.contains("COPY t, line 2, column a"), "{err}");
    assert_eq!(out, "");
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "4");

    // COPY FROM STDIN shares no query message with other statements.
    let (_, err) = psql(&server, "SELECT 1; COPY t FROM STDIN", "");
    assert!(err.contains("must be the only statement"), "{err}");
    let (out, _) = psql(&server, "SELECT count(*) FROM t", "");
    assert_eq!(out, "4\n");
}

/// COPY reads `timestamptz` text with its offset (UTC without one) and
/// writes it back as PostgreSQL does, in UTC with `+00`.
#[tokio::test]
async fn copy_reads_and_writes_timestamptz() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (id INT, at TIMESTAMPTZ)")
        .await
        .unwrap();
    let n = copy_in(
        &client,
        "COPY t FROM STDIN",
        &["1\t2024-01-01 12:00:00+02\n2\t2024-01-02 08:15\n3\t2024-01-03T07:05:00.25Z\n4\t\\N\n"],
    )
    .await
    .unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        copy_out(&client, "COPY t TO STDOUT").await,
        "1\t2024-01-01 10:00:00+00\n2\t2024-01-02 08:15:00+00\n3\t2024-01-03 07:05:00.25+00\n4\t\\N\n"
    );
    let err = copy_in(
        &client,
        "COPY t FROM STDIN",
        &["5\t2024-01-01 12:00:00 Atlantis/Nowhere\n"],
    )
    .await
    .unwrap_err();
    assert_eq!(sqlstate(&err), "22007", "{err:?}");
    assert_eq!(scalar(&client, "SELECT count(*) FROM t").await, "4");
}

//! Every error is an ErrorResponse with the right SQLSTATE, and the connection
//! keeps working afterwards, in both protocols.

use crate::common::{TestServer, scalar, sqlstate};

#[tokio::test]
async fn sqlstates_in_the_simple_protocol() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE t (a INT NOT NULL, b TEXT)")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO t VALUES (1, 'x')")
        .await
        .unwrap();
    let cases = [
        ("SELEC 1", "42601"),
        ("SELECT * FROM missing", "42P01"),
        ("SELECT nope FROM t", "42703"),
        ("CREATE TABLE t (a INT)", "42P07"),
        ("USE nowhere", "3D000"),
        ("SELECT 'abc'::int", "22P02"),
        ("SELECT a FROM t WHERE a = 'x'", "22P02"),
        ("SELECT 1 WHERE 1", "42804"),
        ("SELECT a / 0 FROM t", "22012"),
        ("CREATE TABLE g (p GEOMETRY)", "0A000"),
        ("INSERT INTO t VALUES (NULL, 'y')", "23502"),
        ("SELECT nosuchfunction(1)", "42883"),
        ("SELECT b, count(*) FROM t", "42803"),
        ("SHOW no_such_setting", "42704"),
    ];
    for (sql, code) in cases {
        let err = c.simple_query(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&err), code, "{sql}: {err:?}");
        let db = err.as_db_error().expect("an ErrorResponse");
        assert!(!db.message().is_empty());
        assert!(
            !db.message().contains("DataFusion"),
            "{sql}: {}",
            db.message()
        );
        // The connection is still usable.
        assert_eq!(scalar(&c, "SELECT count(*) FROM t").await, "1");
    }
}

#[tokio::test]
async fn errors_in_the_extended_protocol_skip_to_sync() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE t (a INT)").await.unwrap();
    // Parse errors.
    let err = c.prepare("SELECT * FROM missing").await.unwrap_err();
    assert_eq!(sqlstate(&err), "42P01");
    let err = c.prepare("SELEC 1").await.unwrap_err();
    assert_eq!(sqlstate(&err), "42601");
    // Execution errors.
    let err = c.query("SELECT 1 / $1::int", &[&0i32]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "22012");
    let err = c
        .query("SELECT CAST($1::text AS INT)", &[&"not a number"])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22P02", "{err:?}");
    // Still usable, with parameters.
    assert_eq!(
        c.execute("INSERT INTO t VALUES ($1), ($2)", &[&1i32, &2i32])
            .await
            .unwrap(),
        2
    );
    let r = c
        .query("SELECT a FROM t WHERE a > $1 ORDER BY a", &[&0i32])
        .await
        .unwrap();
    assert_eq!(
        r.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

#[tokio::test]
async fn unknown_database_at_connect_is_3d000() {
    let server = TestServer::start();
    let err = tokio_postgres::connect(&server.conn_str("nowhere"), tokio_postgres::NoTls)
        .await
        .err()
        .expect("connecting to a missing database fails");
    assert_eq!(sqlstate(&err), "3D000");
    // The server is fine.
    let c = server.client().await;
    assert_eq!(scalar(&c, "SELECT 1").await, "1");
}

#[tokio::test]
async fn multi_statement_messages_stop_at_the_first_error() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE m (a INT)").await.unwrap();
    let err = c
        .batch_execute("INSERT INTO m VALUES (1); SELECT 1/0; INSERT INTO m VALUES (2)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22012");
    // The statement after the error did not run, and the connection is usable.
    assert_eq!(scalar(&c, "SELECT count(*) FROM m WHERE a = 2").await, "0");
}

/// Integer arithmetic that leaves its type fails with 22003 naming the
/// type, as in PostgreSQL (DataFusion would wrap around and answer), in a
/// query, an aggregate's input and an UPDATE, which then changes nothing.
#[tokio::test]
async fn integer_overflow_is_an_error_not_a_wrong_answer() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE l (s SMALLINT, b BIGINT);
         INSERT INTO l VALUES (32767, 9223372036854775807), (2, 3)",
    )
    .await
    .unwrap();
    for (sql, message) in [
        ("SELECT s * s FROM l", "smallint out of range"),
        ("SELECT sum(b * 10) FROM l", "bigint out of range"),
        ("UPDATE l SET b = b + b", "bigint out of range"),
    ] {
        let err = c.simple_query(sql).await.unwrap_err();
        assert_eq!(sqlstate(&err), "22003", "{sql}: {err:?}");
        assert_eq!(err.as_db_error().unwrap().message(), message, "{sql}");
        // The extended protocol reports it the same way.
        let err = c.query(sql, &[]).await.unwrap_err();
        assert_eq!(sqlstate(&err), "22003", "{sql}: {err:?}");
    }
    assert_eq!(
        scalar(
            &c,
            "SELECT sum(b) FILTER (WHERE s = 2) + sum(s * 2) FROM l WHERE s = 2"
        )
        .await,
        "7"
    );
    assert_eq!(
        scalar(&c, "SELECT max(b) FROM l").await,
        "9223372036854775807"
    );
}

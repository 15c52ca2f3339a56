//! Protocol mechanics: multi-statement and empty queries, prepared statements,
//! parameters, portals with row limits, startup parameters, graceful shutdown.

use futures::{StreamExt, TryStreamExt, pin_mut};
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::types::Type;

use crate::common::{TestServer, column, scalar};

#[tokio::test]
async fn simple_query_with_several_statements_and_empty_ones() {
    let server = TestServer::start();
    let c = server.client().await;
    let msgs = c
        .simple_query("CREATE TABLE s (a INT); INSERT INTO s VALUES (1), (2); ; SELECT a FROM s ORDER BY a; SELECT 'x' AS y")
        .await
        .unwrap();
    let summary: Vec<String> = msgs
        .iter()
        .map(|m| match m {
            SimpleQueryMessage::Row(r) => format!("row {}", r.get(0).unwrap()),
            SimpleQueryMessage::CommandComplete(n) => format!("complete {n}"),
            SimpleQueryMessage::RowDescription(cols) => format!(
                "cols {}",
                cols.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
            ),
            _ => "other".to_string(),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            "complete 0",
            "complete 2",
            "cols a",
            "row 1",
            "row 2",
            "complete 2",
            "cols y",
            "row x",
            "complete 1"
        ]
    );
    // An empty query string and a comment-only one are fine.
    // tokio-postgres reports PostgreSQL's EmptyQueryResponse as "complete 0".
    let empty = c.simple_query("").await.unwrap();
    assert!(matches!(
        empty.as_slice(),
        [SimpleQueryMessage::CommandComplete(0)]
    ));
    c.batch_execute("-- just a comment").await.unwrap();
    assert_eq!(scalar(&c, "SELECT 1 + 1").await, "2");
}

#[tokio::test]
async fn prepared_statements_and_parameters() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE p (id BIGINT, name TEXT)")
        .await
        .unwrap();
    let insert = c.prepare("INSERT INTO p VALUES ($1, $2)").await.unwrap();
    for i in 0..20i64 {
        c.execute(&insert, &[&i, &format!("n{i}")]).await.unwrap();
    }
    // Parameter types inferred by the server, result columns described.
    let select = c
        .prepare("SELECT id, name FROM p WHERE id >= $1 AND name <> $2 ORDER BY id")
        .await
        .unwrap();
    assert_eq!(select.params(), &[Type::INT8, Type::TEXT]);
    assert_eq!(
        select
            .columns()
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>(),
        vec!["id", "name"]
    );
    let rows = c.query(&select, &[&15i64, &"n16"]).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(),
        vec![15, 17, 18, 19]
    );
    // The same statement sees rows committed after it was prepared.
    c.execute(&insert, &[&100i64, &"late"]).await.unwrap();
    assert_eq!(c.query(&select, &[&99i64, &""]).await.unwrap().len(), 1);
    // Types given by the client at Parse are used.
    let typed = c
        .prepare_typed("SELECT $1 + 1 AS v", &[Type::INT8])
        .await
        .unwrap();
    assert_eq!(typed.params(), &[Type::INT8]);
    assert_eq!(
        c.query_one(&typed, &[&41i64])
            .await
            .unwrap()
            .get::<_, i64>(0),
        42
    );
    // A cast tells the type of an otherwise untyped parameter, as in PostgreSQL.
    let cast = c.prepare("SELECT $1::int AS v").await.unwrap();
    assert_eq!(cast.params(), &[Type::INT4]);
    assert_eq!(
        c.query_one(&cast, &[&7i32]).await.unwrap().get::<_, i32>(0),
        7
    );
    // Statements without results, through the extended protocol.
    assert_eq!(c.execute("CREATE TABLE q (a INT)", &[]).await.unwrap(), 0);
    let show = c.query("SHOW TABLES", &[]).await.unwrap();
    assert_eq!(show.len(), 2);
}

/// A binary parameter value of the wrong size for its type, as a buggy
/// driver might send: 22P03, as in PostgreSQL, and the session carries on.
#[derive(Debug)]
struct Truncated;

impl tokio_postgres::types::ToSql for Truncated {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&[0, 0]);
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

#[tokio::test]
async fn malformed_binary_parameters_are_refused() {
    let server = TestServer::start();
    let c = server.client().await;
    for ty in [
        Type::INTERVAL,
        Type::INT8,
        Type::TIMESTAMP,
        Type::UUID,
        Type::FLOAT8,
    ] {
        let stmt = c
            .prepare_typed("SELECT $1", std::slice::from_ref(&ty))
            .await
            .unwrap();
        let err = c.query(&stmt, &[&Truncated]).await.unwrap_err();
        let db = err.as_db_error().unwrap_or_else(|| panic!("{ty}: {err:?}"));
        assert_eq!(db.code().code(), "22P03", "{ty}: {db:?}");
        assert_eq!(
            db.message(),
            "incorrect binary data format in bind parameter 1"
        );
    }
    assert_eq!(scalar(&c, "SELECT 1").await, "1");
}

/// A parameter in text format, as psycopg and JDBC send arrays.
#[derive(Debug)]
struct Text(&'static str);

impl tokio_postgres::types::ToSql for Text {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> tokio_postgres::types::Format {
        tokio_postgres::types::Format::Text
    }

    tokio_postgres::types::to_sql_checked!();
}

/// An interval parameter beyond the ±2,562,047 hours a nanosecond interval
/// holds is refused with 22008; it used to wrap around silently to another
/// interval (the params fuzz target found the overflow).
#[tokio::test]
async fn interval_parameters_out_of_range_are_refused() {
    let server = TestServer::start();
    let c = server.client().await;
    for (ty, fits, too_big) in [
        (Type::INTERVAL, "2562047 hours", "2562048 hours"),
        (
            Type::INTERVAL_ARRAY,
            "{1 hour,2562047 hours}",
            "{1 hour,-3000000 hours}",
        ),
    ] {
        let stmt = c
            .prepare_typed("SELECT $1 IS NOT NULL", std::slice::from_ref(&ty))
            .await
            .unwrap();
        let row = c.query_one(&stmt, &[&Text(fits)]).await.unwrap();
        assert!(row.get::<_, bool>(0), "{ty}");
        let err = c.query(&stmt, &[&Text(too_big)]).await.unwrap_err();
        let db = err.as_db_error().unwrap_or_else(|| panic!("{ty}: {err:?}"));
        assert_eq!(db.code().code(), "22008", "{ty}: {db:?}");
        assert!(db.message().starts_with("interval out of range"), "{db:?}");
    }
    assert_eq!(scalar(&c, "SELECT 1").await, "1");
}

/// Text-format array parameters are read with PostgreSQL's rules (blanks,
/// quotes, escapes, NULL), a malformed one is 22P02 as in PostgreSQL, and a
/// numeric[] of mixed scales decodes (it used to panic in arrow-pg).
#[tokio::test]
async fn text_array_parameters_follow_postgresql() {
    let server = TestServer::start();
    let c = server.client().await;
    let first_three = |ty: Type| {
        let c = &c;
        async move {
            c.prepare_typed(
                "SELECT CAST($1[1] AS TEXT), CAST($1[2] AS TEXT), $1[3] IS NULL",
                &[ty],
            )
            .await
            .unwrap()
        }
    };
    let stmt = first_three(Type::TEXT_ARRAY).await;
    let row = c
        .query_one(&stmt, &[&Text(r#" { a b , "c\"d" ,NULL} "#)])
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, bool>(2)
        ),
        ("a b".to_string(), "c\"d".to_string(), true)
    );
    let stmt = c
        .prepare_typed(
            "SELECT $1[1] = 1 AND $1[2] = -0.125 AND $1[3] IS NULL",
            &[Type::NUMERIC_ARRAY],
        )
        .await
        .unwrap();
    let row = c
        .query_one(&stmt, &[&Text("{1, -0.125,NULL}")])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));

    let refused = |ty: Type, text: &'static str| {
        let c = &c;
        async move {
            let stmt = c.prepare_typed("SELECT $1", &[ty]).await.unwrap();
            let err = c.query(&stmt, &[&Text(text)]).await.unwrap_err();
            let db = err
                .as_db_error()
                .cloned()
                .unwrap_or_else(|| panic!("{err:?}"));
            (db.code().code().to_string(), db.message().to_string())
        }
    };
    // PostgreSQL 15 answers the same for these.
    for (ty, text) in [
        (Type::INT4_ARRAY, "{1,,2}"),
        (Type::NUMERIC_ARRAY, "{,4}"),
        (Type::TEXT_ARRAY, r#"{"a"b}"#),
        (Type::INT4_ARRAY, "{1} x"),
    ] {
        let (code, message) = refused(ty.clone(), text).await;
        assert_eq!(code, "22P02", "{ty} {text}: {message}");
        assert_eq!(message, format!("malformed array literal: \"{text}\""));
    }
    let (code, _) = refused(Type::INT4_ARRAY, "{{1},{2}}").await;
    assert_eq!(code, "0A000", "multidimensional");
    let (code, message) = refused(Type::TEXT_ARRAY, r#"{"NULL"}"#).await;
    assert_eq!(code, "0A000", "{message}");
    assert_eq!(scalar(&c, "SELECT 1").await, "1");
}

#[tokio::test]
async fn portals_fetch_in_batches() {
    let server = TestServer::start();
    let mut c = server.client().await;
    c.batch_execute("CREATE TABLE r AS SELECT * FROM generate_series(1, 10) AS g(v)")
        .await
        .unwrap();
    let tx = c.transaction().await.unwrap();
    let stmt = tx.prepare("SELECT v FROM r ORDER BY v").await.unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let batch = tx.query_portal(&portal, 3).await.unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 3);
        seen.extend(batch.iter().map(|r| r.get::<_, i64>(0)));
    }
    assert_eq!(seen, (1..=10).collect::<Vec<i64>>());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn large_results_stream() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE big AS SELECT v, v * 2 AS w FROM generate_series(1, 300000) AS g(v)",
    )
    .await
    .unwrap();
    let stream = c
        .query_raw("SELECT v, w FROM big", Vec::<i64>::new())
        .await
        .unwrap();
    pin_mut!(stream);
    let mut n = 0u64;
    let mut sum = 0i64;
    while let Some(row) = stream.next().await {
        let row = row.unwrap();
        sum += row.get::<_, i64>(0);
        n += 1;
    }
    assert_eq!(n, 300000);
    assert_eq!(sum, 300000 * 300001 / 2);
    let all: Vec<_> = c
        .query_raw("SELECT v FROM big WHERE v <= 5", Vec::<i64>::new())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
}

#[tokio::test]
async fn startup_parameters_and_settings() {
    let server = TestServer::start();
    let c = server.client().await;
    assert_eq!(scalar(&c, "SHOW server_encoding").await, "UTF8");
    assert_eq!(scalar(&c, "SHOW DateStyle").await, "ISO, MDY");
    assert!(scalar(&c, "SHOW server_version").await.starts_with("16."));
    c.batch_execute("SET application_name = 'tests'")
        .await
        .unwrap();
    assert_eq!(
        column(&c, "SHOW application_name").await,
        vec![Some("tests".into())]
    );
    c.batch_execute("SET extra_float_digits TO 3")
        .await
        .unwrap();
    assert_eq!(scalar(&c, "SHOW extra_float_digits").await, "3");
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_data_survives() {
    let mut server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE k (a INT); INSERT INTO k VALUES (1), (2)")
        .await
        .unwrap();
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}\n{}", server.log());
    assert!(server.log().contains("fusegate stopped"));
    let dir = server.data_dir().to_path_buf();
    let again = TestServer::start_in(&dir);
    let c = again.client().await;
    assert_eq!(scalar(&c, "SELECT sum(a) FROM k").await, "3");
}

//! DDL and DML over the simple and extended protocols.

use crate::common::{TestServer, column, rows, scalar, sqlstate};

#[tokio::test]
async fn create_insert_select_drop() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE t (id INT NOT NULL, name TEXT, score DOUBLE PRECISION)")
        .await
        .unwrap();
    let n = c
        .execute(
            "INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', NULL), (3, NULL, 3.25)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    // Column list in another order, with a column left out.
    assert_eq!(
        c.execute("INSERT INTO t (name, id) VALUES ('d', 4)", &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        rows(&c, "SELECT id, name, score FROM t ORDER BY id").await,
        vec![
            vec![Some("1".into()), Some("a".into()), Some("1.5".into())],
            vec![Some("2".into()), Some("b".into()), None],
            vec![Some("3".into()), None, Some("3.25".into())],
            vec![Some("4".into()), Some("d".into()), None],
        ]
    );
    // INSERT ... SELECT, aggregates, joins, window functions, CTEs, set operations.
    assert_eq!(
        c.execute(
            "INSERT INTO t SELECT id + 10, name, score FROM t WHERE id <= 2",
            &[]
        )
        .await
        .unwrap(),
        2
    );
    assert_eq!(scalar(&c, "SELECT count(*) FROM t").await, "6");
    assert_eq!(
        column(&c, "WITH x AS (SELECT id, rank() OVER (ORDER BY id DESC) AS r FROM t) SELECT r FROM x WHERE id = 11").await,
        vec![Some("2".into())]
    );
    assert_eq!(
        scalar(&c, "SELECT count(*) FROM t a JOIN t b ON a.id = b.id + 10").await,
        "2"
    );
    assert_eq!(
        column(
            &c,
            "SELECT id FROM t WHERE id < 3 UNION SELECT id FROM t WHERE id > 11 ORDER BY 1"
        )
        .await,
        vec![Some("1".into()), Some("2".into()), Some("12".into())]
    );
    assert_eq!(
        scalar(&c, "SELECT (SELECT max(id) FROM t) - min(id) FROM t").await,
        "11"
    );
    c.batch_execute("DROP TABLE t").await.unwrap();
    let err = c.simple_query("SELECT * FROM t").await.unwrap_err();
    assert_eq!(sqlstate(&err), "42P01");
    c.batch_execute("DROP TABLE IF EXISTS t").await.unwrap();
}

#[tokio::test]
async fn databases_use_and_qualified_names() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE DATABASE sales; CREATE DATABASE IF NOT EXISTS sales")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(&c.batch_execute("CREATE DATABASE sales").await.unwrap_err()),
        "42P04"
    );
    c.batch_execute("CREATE TABLE sales.orders (id BIGINT, amount NUMERIC(12,2))")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO sales.orders VALUES (1, 10.50), (2, 3.25)")
        .await
        .unwrap();
    assert_eq!(
        scalar(&c, "SELECT sum(amount) FROM sales.orders").await,
        "13.75"
    );
    let dbs = column(&c, "SHOW DATABASES").await;
    assert_eq!(dbs, vec![Some("default".into()), Some("sales".into())]);
    c.batch_execute("USE sales").await.unwrap();
    assert_eq!(column(&c, "SHOW TABLES").await, vec![Some("orders".into())]);
    assert_eq!(scalar(&c, "SELECT count(*) FROM orders").await, "2");
    // A connection can start in a database (dbname).
    let c2 = server.client_on("sales").await;
    assert_eq!(scalar(&c2, "SELECT count(*) FROM orders").await, "2");
    assert_eq!(
        sqlstate(&c.batch_execute("USE nowhere").await.unwrap_err()),
        "3D000"
    );
    c.batch_execute("USE default").await.unwrap();
    c.batch_execute("DROP DATABASE sales").await.unwrap();
    assert_eq!(
        sqlstate(&c.batch_execute("DROP DATABASE sales").await.unwrap_err()),
        "3D000"
    );
    c.batch_execute("DROP DATABASE IF EXISTS sales")
        .await
        .unwrap();
    // As in PostgreSQL, a missing schema in a qualified name is a missing relation.
    assert_eq!(
        sqlstate(
            &c.simple_query("SELECT * FROM sales.orders")
                .await
                .unwrap_err()
        ),
        "42P01"
    );
}

#[tokio::test]
async fn create_table_as_and_if_not_exists() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE src (a INT, b VARCHAR(5))")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO src VALUES (1, 'x'), (2, 'y'), (3, NULL)")
        .await
        .unwrap();
    let msgs = c
        .simple_query("CREATE TABLE dst AS SELECT a * 2 AS a2, b, count(*) OVER () FROM src")
        .await
        .unwrap();
    let tag = msgs.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
        _ => None,
    });
    assert_eq!(tag, Some(3));
    assert_eq!(
        rows(&c, "SELECT a2, b, count FROM dst ORDER BY a2").await,
        vec![
            vec![Some("2".into()), Some("x".into()), Some("3".into())],
            vec![Some("4".into()), Some("y".into()), Some("3".into())],
            vec![Some("6".into()), None, Some("3".into())],
        ]
    );
    c.batch_execute("CREATE TABLE IF NOT EXISTS dst (z INT)")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(
            &c.batch_execute("CREATE TABLE dst (z INT)")
                .await
                .unwrap_err()
        ),
        "42P07"
    );
    // An empty result still creates the table.
    c.batch_execute("CREATE TABLE empty AS SELECT a FROM src WHERE a > 100")
        .await
        .unwrap();
    assert_eq!(scalar(&c, "SELECT count(*) FROM empty").await, "0");
    // A failing CTAS creates nothing.
    assert_eq!(
        sqlstate(
            &c.batch_execute("CREATE TABLE bad AS SELECT 1 / (a - 2) FROM src")
                .await
                .unwrap_err()
        ),
        "22012"
    );
    assert_eq!(
        sqlstate(&c.simple_query("SELECT * FROM bad").await.unwrap_err()),
        "42P01"
    );
    let show = rows(&c, "SHOW CREATE TABLE src").await;
    assert_eq!(
        show[0][1].as_deref(),
        Some("CREATE TABLE src (\n  a integer,\n  b character varying(5)\n)")
    );
}

#[tokio::test]
async fn failed_statements_change_nothing() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE t (a INT NOT NULL, s VARCHAR(3))")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO t VALUES (1, 'abc')")
        .await
        .unwrap();
    // One bad row fails the whole statement.
    let err = c
        .batch_execute("INSERT INTO t VALUES (2, 'x'), (NULL, 'y')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "23502");
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("column \"a\"")
    );
    let err = c
        .batch_execute("INSERT INTO t VALUES (3, 'toolong')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22001");
    let err = c
        .batch_execute("INSERT INTO t VALUES ('nope', 'x')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22P02");
    let err = c
        .batch_execute("INSERT INTO t SELECT a / 0, s FROM t")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22012");
    assert_eq!(
        rows(&c, "SELECT a, s FROM t").await,
        vec![vec![Some("1".into()), Some("abc".into())]]
    );
    // Nothing was left behind in the table's block directory either.
    let blocks: usize = walk(server.data_dir())
        .iter()
        .filter(|p| p.contains("/_b/"))
        .count();
    assert_eq!(blocks, 1, "only the committed block remains");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.to_string_lossy().to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn column_defaults_fill_omitted_columns() {
    let server = TestServer::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE d (id INT NOT NULL, status TEXT DEFAULT 'new', qty INT DEFAULT 1 + 1, at TIMESTAMP DEFAULT now())",
    )
    .await
    .unwrap();
    c.batch_execute("INSERT INTO d (id) VALUES (1); INSERT INTO d (id, status) VALUES (2, 'old')")
        .await
        .unwrap();
    assert_eq!(
        rows(
            &c,
            "SELECT id, status, qty, at IS NOT NULL FROM d ORDER BY id"
        )
        .await,
        vec![
            vec![
                Some("1".into()),
                Some("new".into()),
                Some("2".into()),
                Some("t".into())
            ],
            vec![
                Some("2".into()),
                Some("old".into()),
                Some("2".into()),
                Some("t".into())
            ],
        ]
    );
    // No default and NOT NULL: the insert fails as in PostgreSQL.
    assert_eq!(
        sqlstate(
            &c.batch_execute("INSERT INTO d (status) VALUES ('x')")
                .await
                .unwrap_err()
        ),
        "23502"
    );
    // A default that cannot be evaluated is refused when the table is created.
    let err = c
        .batch_execute("CREATE TABLE bad (a INT DEFAULT no_such_fn())")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42883");
    assert_eq!(
        sqlstate(&c.simple_query("SELECT * FROM bad").await.unwrap_err()),
        "42P01"
    );
}

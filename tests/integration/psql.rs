//! psql, the reference client, as a subprocess.

use crate::common::{self, TestServer};

fn psql(server: &TestServer, args: &[&str], script: &str) -> (String, String, bool) {
    let mut all = vec!["-v", "ON_ERROR_STOP=0"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-c", script]);
    common::psql(&server.conn_str("default"), &all, None, "")
}

#[tokio::test]
async fn psql_session() {
    let server = TestServer::start();
    let (out, err, ok) = psql(
        &server,
        &["-A", "-t", "-F", "|"],
        "CREATE TABLE fruits (name VARCHAR(20) NOT NULL, price NUMERIC(6,2), fresh BOOLEAN, picked DATE);
         INSERT INTO fruits VALUES ('apple', 1.20, true, '2024-05-01'), ('pear', 0.95, false, NULL);
         SELECT name, price, fresh, picked FROM fruits ORDER BY name;
         SELECT count(*) AS n, max(price) FROM fruits;",
    );
    assert!(ok, "psql failed: {err}");
    assert_eq!(
        out,
        "CREATE TABLE\nINSERT 0 2\napple|1.20|t|2024-05-01\npear|0.95|f|\n2|1.20\n"
    );

    // Errors come back as psql prints PostgreSQL's, with the SQLSTATE.
    let (_, err, _) = psql(&server, &["-v", "VERBOSITY=verbose"], "SELECT * FROM nope");
    assert!(
        err.contains("ERROR:  42P01: relation \"default.nope\" does not exist")
            || err.contains("42P01"),
        "{err}"
    );

    // Aligned output with headers, as a person sees it.
    let (out, _, ok) = psql(&server, &[], "SELECT name, price FROM fruits WHERE fresh");
    assert!(ok);
    assert_eq!(
        out,
        " name  | price \n-------+-------\n apple |  1.20\n(1 row)\n\n"
    );
}

#[tokio::test]
async fn quickstart_example_runs() {
    let server = TestServer::start();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.sql");
    let (stdout, stderr, ok) = common::psql(
        &server.conn_str("default"),
        &["-v", "ON_ERROR_STOP=1", "-f", file],
        None,
        "",
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains(" ada      |      2 | 42.50"), "{stdout}");
    assert!(stdout.contains("fuse_pruning"), "{stdout}");
}

#[tokio::test]
async fn psql_backslash_commands_list_the_catalog() {
    let server = TestServer::start();
    let (_, err, ok) = psql(
        &server,
        &[],
        "CREATE TABLE orders (id BIGINT NOT NULL, note TEXT); CREATE DATABASE sales; CREATE TABLE sales.leads (who TEXT)",
    );
    assert!(ok, "{err}");
    let (out, err, ok) = psql(&server, &["-A", "-t"], "\\dt");
    assert!(ok, "{err}");
    assert!(
        out.contains("default|orders|table|") && out.contains("sales|leads|table|"),
        "{out}"
    );
    let (out, err, ok) = psql(&server, &["-A"], "\\d orders");
    assert!(ok, "{err}");
    assert!(out.contains("id|bigint||not null|"), "{out}");
    assert!(out.contains("note|text|||"), "{out}");
    let (out, _, ok) = psql(&server, &["-A", "-t"], "\\dn");
    assert!(ok);
    assert!(out.contains("default|") && out.contains("sales|"), "{out}");
    let (out, _, ok) = psql(&server, &["-A", "-t"], "\\l");
    assert!(ok, "{out}");
    let (out, _, ok) = psql(&server, &["-A", "-t"], "SELECT version()");
    assert!(ok && out.starts_with("PostgreSQL 16.6 (fusegate"), "{out}");
}

//! `--metrics-listen`: the Prometheus endpoint counts connections, sessions,
//! statements by kind and outcome with their latency, storage operations and
//! bytes, and the objects VACUUM removed.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::common::{TestServer, age_files, rows};

pub(crate) fn scrape(server: &TestServer) -> String {
    let log = server.log();
    let addr = log
        .split("metrics=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the server logs its metrics address");
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: fusegate\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
}

/// The value of the series named exactly `series` (name and labels).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_metrics_endpoint_counts_what_the_server_does() {
    let server = TestServer::start_with(&["--metrics-listen", "127.0.0.1:0"]);
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE m (a INT) ROW_PER_BLOCK = 10; \
         INSERT INTO m SELECT g FROM generate_series(1, 100) AS t(g)",
    )
    .await
    .unwrap();
    c.batch_execute("DELETE FROM m WHERE a <= 15")
        .await
        .unwrap();
    assert!(c.simple_query("SELECT nope FROM m").await.is_err());
    assert_eq!(
        rows(&c, "SELECT count(*) FROM m").await[0][0].as_deref(),
        Some("85")
    );
    age_files(server.data_dir());
    let removed = rows(&c, "VACUUM TABLE m RETAIN 0 HOURS").await;
    let removed: f64 = removed[0][0].as_deref().unwrap().parse().unwrap();
    assert!(removed > 0.0);

    let text = scrape(&server);
    assert_eq!(value(&text, "fusegate_connections_total"), 1.0);
    assert_eq!(value(&text, "fusegate_sessions"), 1.0);
    for (series, want) in [
        (
            r#"fusegate_statements_total{kind="CREATE TABLE",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"fusegate_statements_total{kind="INSERT",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"fusegate_statements_total{kind="DELETE",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"fusegate_statements_total{kind="SELECT",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"fusegate_statements_total{kind="SELECT",outcome="error_42"}"#,
            1.0,
        ),
        (
            r#"fusegate_statement_duration_seconds_count{kind="SELECT"}"#,
            2.0,
        ),
        ("fusegate_vacuum_removed_objects_total", removed),
        ("fusegate_amend_restored_objects_total", 0.0),
    ] {
        assert_eq!(value(&text, series), want, "{series}");
    }
    // Storage: the table's directory was written and read.
    let written: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("fusegate_opendal_operation_bytes_sum")
                && l.contains(r#"operation="write""#)
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(written > 0.0, "{text}");

    drop(c);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(value(&scrape(&server), "fusegate_sessions"), 0.0);
}

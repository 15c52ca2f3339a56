//! Misbehaving clients, with raw sockets: garbage, truncated and oversized
//! messages, startups that never finish, many idle connections, a client that
//! stops reading mid-result. After each, the server still serves a real client
//! and its memory stays bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{TestServer, scalar, sqlstate, try_rows};

fn raw(server: &TestServer) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// A v3 startup packet for `user` on database `default`.
fn startup() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes());
    for (k, v) in [("user", "hostile"), ("database", "default")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// Reads until the server closes the socket or stays silent; returns what came.
/// A frontend message: its type byte, length, then `parts`.
fn message(kind: u8, parts: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = parts.concat();
    let mut m = vec![kind];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend(body);
    m
}

fn drain(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

async fn still_serves(server: &TestServer) {
    let c = server.client().await;
    assert_eq!(scalar(&c, "SELECT 40 + 2").await, "42");
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[tokio::test]
async fn garbage_and_malformed_messages() {
    let server = TestServer::start();
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Random bytes instead of a startup packet.
    for _ in 0..50 {
        let mut s = raw(&server);
        let bytes: Vec<u8> = (0..(random() % 512) + 1).map(|_| random() as u8).collect();
        let _ = s.write_all(&bytes);
        drop(s);
    }
    // A startup packet cut short, and one that claims to be huge.
    let mut s = raw(&server);
    s.write_all(&startup()[..10]).unwrap();
    drop(s);
    let mut s = raw(&server);
    s.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
    s.write_all(&196608u32.to_be_bytes()).unwrap();
    drain(s);
    // After a good startup: random message types, a truncated Query, and a
    // Query that claims 1 GiB.
    for case in 0..3 {
        let mut s = raw(&server);
        s.write_all(&startup()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        match case {
            0 => {
                let bytes: Vec<u8> = (0..2048).map(|_| random() as u8).collect();
                let _ = s.write_all(&bytes);
            }
            1 => {
                let _ = s.write_all(b"Q\x00\x00\x00\x20SELECT");
            }
            _ => {
                let _ = s.write_all(b"Q");
                let _ = s.write_all(&(1u32 << 30).to_be_bytes());
                let _ = s.write_all(&[b'x'; 65536]);
            }
        }
        drain(s);
    }
    still_serves(&server).await;
    assert!(
        server.rss_bytes() < 512 << 20,
        "RSS {} MiB",
        server.rss_bytes() >> 20
    );
}

#[tokio::test]
async fn idle_and_unfinished_connections_do_not_block_others() {
    let server = TestServer::start_with(&["--max-connections", "20"]);
    // Hundreds of sockets that never finish their startup packet, and
    // sessions that log in and then sit idle up to the limit.
    let mut held: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut s = raw(&server);
            if i % 2 == 0 {
                s.write_all(&startup()[..6]).unwrap();
            }
            s
        })
        .collect();
    let mut idle = Vec::new();
    for _ in 0..15 {
        idle.push(server.client().await);
    }
    let started = Instant::now();
    still_serves(&server).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    held.clear();
    drop(idle);
    still_serves(&server).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_holds_only_its_own_connection() {
    let server = TestServer::start();
    let mut s = raw(&server);
    s.write_all(&startup()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // A big result the client never reads: the server must stop producing
    // it when the socket's buffers fill, not queue it in memory.
    let sql = b"SELECT g, repeat('x', 100) FROM generate_series(1, 20000000) AS g\0";
    s.write_all(&message(b'Q', &[sql])).unwrap();
    // The same through the extended protocol (Parse, Bind, Execute with no
    // row limit, Sync), whose rows must stream too.
    let mut e = raw(&server);
    e.write_all(&startup()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let none = 0u16.to_be_bytes();
    let mut pipeline = message(b'P', &[b"\0", sql, &none]);
    pipeline.extend(message(b'B', &[b"\0\0", &none, &none, &none]));
    pipeline.extend(message(b'E', &[b"\0", &0u32.to_be_bytes()]));
    pipeline.extend(message(b'S', &[]));
    e.write_all(&pipeline).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss = server.rss_bytes();
    still_serves(&server).await;
    assert!(rss < 256 << 20, "RSS {} MiB while stalled", rss >> 20);
    // Both results did start: rows, not an error, were waiting.
    for socket in [&mut s, &mut e] {
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut head = vec![0u8; 64 << 10];
        let n = std::io::Read::read(socket, &mut head).unwrap();
        let head = &head[..n];
        assert!(head.windows(3).any(|w| w == b"D\0\0"), "no DataRow");
        assert!(!head.windows(6).any(|w| w == b"SERROR"), "{head:?}");
    }
    drop(s);
    drop(e);
    tokio::time::sleep(Duration::from_millis(500)).await;
    still_serves(&server).await;
}

/// SQL written to exhaust the server: each statement either answers or ends
/// in its SQLSTATE (54001 nesting, 53200 memory, 57014 timeout), the session
/// carries on, and the server's memory stays bounded.
#[tokio::test]
async fn statements_that_try_to_exhaust_the_server() {
    let server = TestServer::start_with(&["--memory-limit", "16MiB"]);
    let c = server.client().await;
    let refused = |sql: String, code: &'static str| {
        let c = &c;
        async move {
            let err = c.simple_query(&sql).await.expect_err("must fail");
            assert_eq!(
                sqlstate(&err),
                code,
                "{}...: {err}",
                &sql[..60.min(sql.len())]
            );
            assert_eq!(scalar(c, "SELECT 1").await, "1", "the session carries on");
        }
    };

    // Nesting: PostgreSQL takes 1,000 terms and refuses 10,000 (54001).
    let chain = |n: usize, op: &str, term: &str| vec![term; n].join(op);
    assert_eq!(
        scalar(&c, &format!("SELECT {}", chain(1000, "+", "1"))).await,
        "1000"
    );
    refused(format!("SELECT {}", chain(10_000, "+", "1")), "54001").await;
    refused(
        format!("SELECT 1 WHERE {}", chain(10_000, " AND ", "1=1")),
        "54001",
    )
    .await;
    refused(format!("SELECT {}", chain(10_000, "||", "'a'")), "54001").await;
    refused(
        format!("SELECT {}1{}", "abs(".repeat(500), ")".repeat(500)),
        "54001",
    )
    .await;
    refused(
        format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000)),
        "54001",
    )
    .await;
    // 200,000 terms: refused before anything recurses over them.
    refused(format!("SELECT {}", chain(200_000, "-", "1")), "54001").await;

    // Wide but flat: a 100,000-value IN list, a 5,000-branch CASE, a 20 MB literal.
    let list: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    let sql = format!("SELECT 99999 IN ({})", list.join(","));
    assert_eq!(scalar(&c, &sql).await, "t");
    let branches: String = (0..5000)
        .map(|i| format!(" WHEN {i} = 4999 THEN {i}"))
        .collect();
    assert_eq!(
        scalar(&c, &format!("SELECT CASE{branches} END")).await,
        "4999"
    );
    let literal = "x".repeat(20 << 20);
    assert_eq!(
        scalar(&c, &format!("SELECT length('{literal}')")).await,
        (20 << 20).to_string()
    );

    // Memory: a grouping larger than the 16 MiB pool spills and answers
    // right, or fails with 53200 (it failed once in 6 full runs, with an
    // error that was not recorded then; a sort of spilled runs fails so in
    // bench/memory.py, when merging them needs more than the pool has
    // left); a hash join's build side cannot spill and fails with 53200.
    // Either way the session carries on.
    let grouping = "SELECT x % 1000000 AS k, count(*) FROM generate_series(1, 2000000) g(x) \
                    GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1";
    match try_rows(&c, grouping).await {
        Ok(answer) => assert_eq!(
            answer,
            vec![vec![Some("0".to_string()), Some("2".to_string())]]
        ),
        Err(e) => assert_eq!(sqlstate(&e), "53200", "{e:?}"),
    }
    assert_eq!(scalar(&c, "SELECT 1").await, "1");
    refused(
        "SELECT count(*) FROM generate_series(1, 3000000) a(x) \
         JOIN generate_series(1, 3000000) b(y) ON x = y"
            .into(),
        "53200",
    )
    .await;

    // A cartesian join of 10^10 rows: statement_timeout ends it (57014).
    c.simple_query("SET statement_timeout = '2s'")
        .await
        .unwrap();
    refused(
        "SELECT sum(a.x * b.x) FROM generate_series(1, 100000) a(x), \
         generate_series(1, 100000) b(x)"
            .into(),
        "57014",
    )
    .await;

    still_serves(&server).await;
    let rss = server.rss_bytes();
    assert!(rss < 1 << 30, "server RSS {} MiB", rss >> 20);
}

/// idle_session_timeout (and the server's --idle-session-timeout default)
/// ends a session that waits for its client, with PostgreSQL's FATAL 57P05;
/// idle_in_transaction_session_timeout ends one idle in a transaction block
/// (25P03). A statement running longer than the timeout is not idle.
#[tokio::test]
async fn idle_sessions_are_ended() {
    let server = TestServer::start_with(&["--idle-session-timeout", "1s"]);
    let connect = || async {
        let (client, conn) =
            tokio_postgres::connect(&server.conn_str("default"), tokio_postgres::NoTls)
                .await
                .unwrap();
        (client, tokio::spawn(conn))
    };
    let fatal = |ended: Result<(), tokio_postgres::Error>| {
        let err = ended.expect_err("the server ends the session");
        let db = err.as_db_error().expect("a FATAL ErrorResponse");
        (
            db.severity().to_string(),
            db.code().code().to_string(),
            db.message().to_string(),
        )
    };

    let (idle, conn) = connect().await;
    assert_eq!(scalar(&idle, "SHOW idle_session_timeout").await, "1s");
    let ended = tokio::time::timeout(Duration::from_secs(10), conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fatal(ended),
        (
            "FATAL".into(),
            "57P05".into(),
            "terminating connection due to idle-session timeout".into()
        )
    );
    assert!(idle.simple_query("SELECT 1").await.is_err());

    let (busy, conn) = connect().await;
    // Longer than the timeout, but running: not idle.
    let started = Instant::now();
    let n = scalar(
        &busy,
        "SELECT count(*) FROM generate_series(1, 2) a, generate_series(1, 40000000) b",
    )
    .await;
    assert_eq!(n, "80000000");
    let took = started.elapsed();
    busy.simple_query(
        "SET idle_session_timeout = 0; SET idle_in_transaction_session_timeout = '1s'",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        scalar(&busy, "SELECT 2").await,
        "2",
        "idle outside a transaction, no limit now"
    );
    busy.simple_query("BEGIN").await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fatal(ended),
        (
            "FATAL".into(),
            "25P03".into(),
            "terminating connection due to idle-in-transaction timeout".into()
        )
    );
    eprintln!("a {took:?} statement outlived a 1 s idle_session_timeout");
    still_serves(&server).await;
}

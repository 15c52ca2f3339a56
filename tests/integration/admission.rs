//! Who gets in: passwords (SCRAM-SHA-256, md5, cleartext), the connection
//! limit, TLS — with tokio-postgres and psql.

use std::process::Command;
use std::time::Duration;

use tokio_postgres::NoTls;

use crate::common::{self, TestServer, scalar, sqlstate};

async fn connect(
    server: &TestServer,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let conn = format!(
        "host=127.0.0.1 port={} user={user} password={password} dbname=default",
        server.port
    );
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn psql(port: u16, conninfo: &str, password: &str, sql: &str) -> (String, String, bool) {
    let conninfo = format!("port={port} dbname=default {conninfo}");
    common::psql(&conninfo, &["-A", "-t", "-c", sql], Some(password), "")
}

#[tokio::test]
async fn passwords_are_checked_with_each_method() {
    for method in ["scram-sha-256", "md5", "password"] {
        let server = TestServer::start_with(&[
            "--auth",
            method,
            "--user",
            "alice:Secret-1",
            "--user",
            "bob:pw2",
        ]);
        let alice = connect(&server, "alice", "Secret-1")
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        assert_eq!(scalar(&alice, "SELECT current_user").await, "alice");

        // A wrong password and an unknown user look the same: 28P01.
        for (user, password) in [("alice", "wrong"), ("mallory", "Secret-1")] {
            let err = connect(&server, user, password).await.err().unwrap();
            assert_eq!(sqlstate(&err), "28P01", "{method}: {err:?}");
            assert_eq!(
                err.as_db_error().unwrap().message(),
                format!("password authentication failed for user \"{user}\"")
            );
        }
        let (out, err, ok) = psql(server.port, "host=127.0.0.1 user=bob", "pw2", "SELECT 1");
        assert!(ok, "{method}: {err}");
        assert_eq!(out, "1\n");
        let (_, err, ok) = psql(server.port, "host=127.0.0.1 user=bob", "nope", "SELECT 1");
        assert!(!ok);
        assert!(
            err.contains("password authentication failed for user \"bob\""),
            "{err}"
        );
        // Passwords never reach the log.
        assert!(!server.log().contains("Secret-1"), "{}", server.log());
    }
}

#[tokio::test]
async fn trust_off_loopback_needs_saying() {
    let temp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fusegate"))
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(temp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--auth trust explicitly"), "{stderr}");
    // A users file works as well as --user.
    let users = temp.path().join("users");
    std::fs::write(&users, "# who may log in\ncarol:from-file\n").unwrap();
    let server = TestServer::start_with(&["--users-file", users.to_str().unwrap()]);
    let carol = connect(&server, "carol", "from-file").await.unwrap();
    assert_eq!(scalar(&carol, "SELECT 1").await, "1");
}

/// Hashed credentials: a users file holding SCRAM verifiers, PostgreSQL's or
/// `fusegate hash-password`'s, and no password.
#[tokio::test]
async fn users_file_with_scram_verifiers() {
    let temp = tempfile::tempdir().unwrap();
    let mut hash = Command::new(env!("CARGO_BIN_EXE_fusegate"))
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    hash.stdin.take().unwrap().write_all(b"Secret-1\n").unwrap();
    let out = hash.wait_with_output().unwrap();
    assert!(out.status.success());
    let verifier = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");
    assert!(!verifier.contains("Secret-1"));
    // PostgreSQL 15's verifier of 'pencil' (pg_authid.rolpassword).
    let pg = "SCRAM-SHA-256$4096:7yGhFlu2oeUjNSzkfj/smg==$r57ZgN1Z2uEnS8IdxR4jYfqPdg28lrMx2UuwHlMZKtY=:nL5+4kvwBIU2KOpez43f1Mt3zyTV4Nb9F2hvSnBsTy8=";
    let users = temp.path().join("users");
    std::fs::write(&users, format!("erin:{verifier}\ndave/readonly:{pg}\n")).unwrap();
    let server = TestServer::start_with(&["--users-file", users.to_str().unwrap()]);
    let erin = connect(&server, "erin", "Secret-1").await.unwrap();
    assert_eq!(scalar(&erin, "SELECT current_user").await, "erin");
    let dave = connect(&server, "dave", "pencil").await.unwrap();
    let err = dave
        .simple_query("CREATE TABLE t(a INT)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    for (user, password) in [("erin", "Secret-2"), ("dave", "Pencil")] {
        let err = connect(&server, user, password).await.err().unwrap();
        assert_eq!(sqlstate(&err), "28P01", "{err:?}");
    }
    let (out, err, ok) = psql(
        server.port,
        "host=127.0.0.1 user=dave",
        "pencil",
        "SELECT 1",
    );
    assert!(ok, "{err}");
    assert_eq!(out, "1\n");

    // The password method checks a cleartext password against the verifier;
    // md5 needs the password itself, so hashed users cannot use it.
    let server = TestServer::start_with(&[
        "--auth",
        "password",
        "--users-file",
        users.to_str().unwrap(),
    ]);
    let (_, err, ok) = psql(
        server.port,
        "host=127.0.0.1 user=erin",
        "Secret-1",
        "SELECT 1",
    );
    assert!(ok, "{err}");
    let server =
        TestServer::start_with(&["--auth", "md5", "--users-file", users.to_str().unwrap()]);
    let err = connect(&server, "dave", "pencil").await.err().unwrap();
    assert_eq!(sqlstate(&err), "28P01");

    // A malformed verifier stops the server from starting, saying which user.
    std::fs::write(&users, "frank:SCRAM-SHA-256$4096:nonsense\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fusegate"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--users-file",
            users.to_str().unwrap(),
            "--data-dir",
        ])
        .arg(temp.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the SCRAM verifier of user \"frank\" is malformed"),
        "{stderr}"
    );
}

#[tokio::test]
async fn connection_limit() {
    let server = TestServer::start_with(&["--max-connections", "2"]);
    let first = server.client().await;
    let second = server.client().await;
    let err = tokio_postgres::connect(&server.conn_str("default"), NoTls)
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&err), "53300");
    assert_eq!(
        err.as_db_error().unwrap().message(),
        "sorry, too many clients already"
    );
    // The sessions in place carry on, and a freed place can be taken.
    assert_eq!(scalar(&first, "SELECT 1").await, "1");
    drop(second);
    let mut third = None;
    for _ in 0..50 {
        if let Ok((client, conn)) =
            tokio_postgres::connect(&server.conn_str("default"), NoTls).await
        {
            tokio::spawn(conn);
            third = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        scalar(&third.expect("a place freed up"), "SELECT 2").await,
        "2"
    );
}

#[tokio::test]
async fn tls_with_psql() {
    let temp = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = temp.path().join("server.crt");
    let key = temp.path().join("server.key");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = TestServer::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--user",
        "alice:pw",
    ]);

    // verify-full: the certificate is checked against the CA and the host name;
    // SCRAM runs inside the TLS channel.
    // channel_binding=require: libpq insists on SCRAM-SHA-256-PLUS, bound to
    // the server's certificate.
    let conninfo = format!(
        "host=localhost user=alice sslmode=verify-full sslrootcert={} channel_binding=require",
        cert.display()
    );
    let (out, err, ok) = psql(server.port, &conninfo, "pw", "\\conninfo");
    assert!(ok, "{err}\n{}", server.log());
    assert!(out.contains("SSL connection (protocol: TLSv1.3"), "{out}");
    let (out, err, ok) = psql(
        server.port,
        "host=127.0.0.1 user=alice sslmode=require",
        "pw",
        "SELECT 40 + 2",
    );
    assert!(ok, "{err}");
    assert_eq!(out, "42\n");
    // Plain connections still work unless the client insists on TLS.
    let (_, err, ok) = psql(
        server.port,
        "host=127.0.0.1 user=alice sslmode=disable",
        "pw",
        "SELECT 1",
    );
    assert!(ok, "{err}");

    // Without TLS configured, sslmode=require is refused by the server.
    let plain = TestServer::start();
    let (_, err, ok) = psql(
        plain.port,
        "host=127.0.0.1 user=x sslmode=require",
        "",
        "SELECT 1",
    );
    assert!(!ok);
    assert!(err.contains("server does not support SSL"), "{err}");
}

/// Roles: readonly reads, readwrite also writes, only admin runs VACUUM,
/// PURGE and system$ calls; a refusal is 42501 and changes nothing.
#[tokio::test]
async fn roles_limit_what_users_run() {
    let server = TestServer::start_with(&[
        "--user",
        "root:pw",
        "--user",
        "writer/readwrite:pw",
        "--user",
        "reader/readonly:pw",
    ]);
    let root = connect(&server, "root", "pw").await.unwrap();
    root.batch_execute("CREATE TABLE t (a INT); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let writer = connect(&server, "writer", "pw").await.unwrap();
    let reader = connect(&server, "reader", "pw").await.unwrap();

    assert_eq!(scalar(&reader, "SELECT count(*) FROM t").await, "1");
    for sql in [
        "INSERT INTO t VALUES (2)",
        "UPDATE t SET a = 5",
        "DELETE FROM t",
        "CREATE TABLE u (a INT)",
        "DROP TABLE t",
        "ALTER TABLE t ADD COLUMN b INT",
        "OPTIMIZE TABLE t COMPACT",
        "VACUUM TABLE t",
    ] {
        let err = reader.batch_execute(sql).await.unwrap_err();
        assert_eq!(sqlstate(&err), "42501", "{sql}: {err:?}");
    }
    let err = reader.batch_execute("DELETE FROM t").await.unwrap_err();
    assert_eq!(
        err.as_db_error().unwrap().message(),
        "permission denied: user \"reader\" (role readonly) may not run DELETE"
    );
    // Refused inside a transaction: the transaction is aborted, as any error does.
    reader.batch_execute("BEGIN").await.unwrap();
    assert!(
        reader
            .batch_execute("INSERT INTO t VALUES (3)")
            .await
            .is_err()
    );
    let err = reader.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&err), "25P02");
    reader.batch_execute("ROLLBACK").await.unwrap();

    writer
        .batch_execute("INSERT INTO t VALUES (2); OPTIMIZE TABLE t COMPACT")
        .await
        .unwrap();
    for sql in [
        "VACUUM TABLE t",
        "OPTIMIZE TABLE t PURGE",
        "CALL system$fuse_amend('default', 't')",
    ] {
        let err = writer.batch_execute(sql).await.unwrap_err();
        assert_eq!(sqlstate(&err), "42501", "{sql}: {err:?}");
    }
    root.batch_execute("VACUUM TABLE t").await.unwrap();
    assert_eq!(scalar(&reader, "SELECT sum(a) FROM t").await, "3");
}

/// --config: a TOML file with the flags' names; the command line wins.
#[tokio::test]
async fn a_config_file_sets_flags() {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("fusegate.toml");
    std::fs::write(
        &config,
        "user = [\"carol:pw1\"]\nmax-connections = 1\nauth = \"md5\"\n",
    )
    .unwrap();
    let server = TestServer::start_with(&[
        "--config",
        config.to_str().unwrap(),
        "--auth",
        "scram-sha-256",
    ]);
    let carol = connect(&server, "carol", "pw1").await.unwrap();
    assert_eq!(scalar(&carol, "SELECT current_user").await, "carol");
    // max-connections = 1 came from the file.
    let err = connect(&server, "carol", "pw1").await.unwrap_err();
    assert_eq!(sqlstate(&err), "53300");

    std::fs::write(&config, "listne = \"x\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fusegate"))
        .args(["--config", config.to_str().unwrap(), "--data-dir"])
        .arg(temp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown setting `listne`"), "{stderr}");
}

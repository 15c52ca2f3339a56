//! Real clients against the server: psycopg 3, asyncpg and SQLAlchemy's
//! inspector (tests/clients/*.py, installed into target/py by ./scripts/test
//! from tests/requirements.txt), pgjdbc (Debian's libpostgresql-jdbc-java)
//! and node-postgres (tests/clients/node, installed by ./scripts/test). Each script runs its checks and exits
//! non-zero with a message on the first failure; the same scripts pass
//! against a real PostgreSQL (`--port 5432 --dbname <db>`).

use std::path::PathBuf;
use std::process::Command;

use crate::common::TestServer;

/// The venv's python, with the client modules importable — or a failure
/// saying how to get them (never a silent skip).
fn python_with_clients() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python");
    assert!(
        std::env::var_os("FUSEGATE_TEST_PYTHON").is_some() || venv.exists(),
        "the client tests need psycopg, asyncpg and SQLAlchemy in target/py: run ./scripts/test \
         (it installs tests/requirements.txt), or set FUSEGATE_TEST_PYTHON to a python that has them"
    );
    let python = crate::s3::python();
    let out = Command::new(&python)
        .args(["-c", "import psycopg, asyncpg, sqlalchemy"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run ./scripts/test to create target/py",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "{} lacks the client modules: run ./scripts/test (it re-installs tests/requirements.txt when it changes)\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    python
}

fn run_client(script: &str) {
    let python = python_with_clients();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new(&python);
    command.arg(root.join("tests/clients").join(script));
    run(command, script);
}

/// Runs a client program against a fresh server, passing it the server's
/// address as `--host --port --dbname --user`; fails with its output.
fn run(mut command: Command, what: &str) {
    let server = TestServer::start();
    let out = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--host",
            "127.0.0.1",
            "--dbname",
            "default",
            "--user",
            "tester",
        ])
        .arg("--port")
        .arg(server.port.to_string())
        .env_remove("CLIENTS_KEEP_GOING")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({})\n--- stdout\n{}\n--- stderr\n{}\n--- server log (tail)\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        tail(&server.log(), 40),
    );
}

/// A program the client tests need, or a failure saying how to get it.
fn require(path: &str, package: &str) {
    assert!(
        std::path::Path::new(path).exists(),
        "{path} is missing: run ./scripts/test, which installs it (Debian: apt-get install {package})"
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[tokio::test]
async fn psycopg_client() {
    run_client("psycopg_client.py");
}

#[tokio::test]
async fn asyncpg_client() {
    run_client("asyncpg_client.py");
}

#[tokio::test]
async fn sqlalchemy_client() {
    run_client("sqlalchemy_client.py");
}

/// pgjdbc from Debian's libpostgresql-jdbc-java, run as a single-file Java
/// program (no build step).
#[tokio::test]
async fn jdbc_client() {
    const JAR: &str = "/usr/share/java/postgresql.jar";
    require(JAR, "libpostgresql-jdbc-java");
    let mut command = Command::new("java");
    command.args(["-cp", JAR, "tests/clients/JdbcClient.java"]);
    run(command, "tests/clients/JdbcClient.java");
}

/// node-postgres, installed by ./scripts/test from tests/clients/node's lock file.
#[tokio::test]
async fn node_client() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    require(
        root.join("tests/clients/node/node_modules/pg/package.json")
            .to_str()
            .expect("UTF-8 path"),
        "nodejs npm, then npm ci --prefix tests/clients/node",
    );
    let mut command = Command::new("node");
    command.arg("tests/clients/node/node_client.js");
    run(command, "tests/clients/node/node_client.js");
}

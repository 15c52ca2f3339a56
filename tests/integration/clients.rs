//! Real Python clients against the server: psycopg 3, asyncpg and SQLAlchemy's
//! inspector (tests/clients/*.py, installed into target/py by ./scripts/test
//! from tests/requirements.txt). Each script runs its checks and exits
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
    let server = TestServer::start();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&python)
        .current_dir(&root)
        .arg(root.join("tests/clients").join(script))
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
        .unwrap_or_else(|e| panic!("cannot run {} {script}: {e}", python.display()));
    assert!(
        out.status.success(),
        "tests/clients/{script} failed ({})\n--- stdout\n{}\n--- stderr\n{}\n--- server log (tail)\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        tail(&server.log(), 40),
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

//! A real S3-compatible server for the tests: moto's standalone server,
//! started on a free loopback port (installed by ./scripts/test), or the
//! endpoint the FUSEGATE_TEST_S3_* variables name (AWS S3, MinIO):
//!
//! - FUSEGATE_TEST_S3_ENDPOINT, FUSEGATE_TEST_S3_REGION
//! - FUSEGATE_TEST_S3_ACCESS_KEY_ID, FUSEGATE_TEST_S3_SECRET_ACCESS_KEY
//! - FUSEGATE_TEST_S3_BUCKET (versioning enabled), FUSEGATE_TEST_S3_UNVERSIONED_BUCKET
//!
//! Buckets are created here only on moto; on a named endpoint they must exist.
//! Each test works under its own random prefix.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct S3 {
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    pub versioned_bucket: String,
    pub unversioned_bucket: String,
    /// Unique per test, so runs never see each other's objects.
    pub prefix: String,
    moto: Option<Child>,
}

pub(crate) fn python() -> PathBuf {
    if let Ok(p) = std::env::var("FUSEGATE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python");
    assert!(
        venv.exists(),
        "the S3 tests need moto and boto3: run ./scripts/test, or set FUSEGATE_TEST_PYTHON to a python that has them"
    );
    venv
}

impl S3 {
    pub fn start() -> S3 {
        let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
        if let Ok(endpoint) = std::env::var("FUSEGATE_TEST_S3_ENDPOINT") {
            let var = |k: &str| {
                std::env::var(k)
                    .unwrap_or_else(|_| panic!("{k} must be set with FUSEGATE_TEST_S3_ENDPOINT"))
            };
            return S3 {
                endpoint,
                access_key_id: var("FUSEGATE_TEST_S3_ACCESS_KEY_ID"),
                secret_access_key: var("FUSEGATE_TEST_S3_SECRET_ACCESS_KEY"),
                region: std::env::var("FUSEGATE_TEST_S3_REGION")
                    .unwrap_or_else(|_| "us-east-1".into()),
                versioned_bucket: var("FUSEGATE_TEST_S3_BUCKET"),
                unversioned_bucket: var("FUSEGATE_TEST_S3_UNVERSIONED_BUCKET"),
                prefix,
                moto: None,
            };
        }
        // Port 0: moto picks a free port and says which ("Running on http://...").
        let python = python();
        let moto_server = python.with_file_name("moto_server");
        let mut child = Command::new(&moto_server)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto_server.display()));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("Running on http://") {
                    let _ = tx.send(line[at + "Running on ".len()..].trim().to_string());
                }
            }
        });
        let endpoint = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("moto did not start");
        let s3 = S3 {
            endpoint,
            // Distinctive values, so that tests can look for leaks.
            access_key_id: "AKIAFUSEGATETESTKEY1".into(),
            secret_access_key: "fusegate-test-secret-S3cr3tV4lu3".into(),
            region: "us-east-1".into(),
            versioned_bucket: "versioned".into(),
            unversioned_bucket: "plain".into(),
            prefix,
            moto: Some(child),
        };
        s3.ctl(&["create-bucket", "versioned", "versioned"]);
        s3.ctl(&["create-bucket", "plain", "unversioned"]);
        s3
    }

    /// Runs tests/s3/s3ctl.py (boto3) and returns its JSON output.
    pub fn ctl(&self, args: &[&str]) -> Value {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/s3/s3ctl.py");
        let out = Command::new(python())
            .arg(script)
            .args([
                &self.endpoint,
                &self.access_key_id,
                &self.secret_access_key,
                &self.region,
            ])
            .args(args)
            .output()
            .expect("run s3ctl.py");
        assert!(
            out.status.success(),
            "s3ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }

    /// The location clause of a CREATE TABLE under this test's prefix.
    pub fn location(&self, bucket: &str) -> String {
        self.location_at(bucket, &self.prefix)
    }

    /// The location clause of a CREATE TABLE under `prefix` in `bucket`.
    pub fn location_at(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "'s3://{bucket}/{prefix}/' CONNECTION = (endpoint_url = '{}' access_key_id = '{}' secret_access_key = '{}' region = '{}')",
            self.endpoint, self.access_key_id, self.secret_access_key, self.region
        )
    }

    /// Live object keys under this test's prefix in `bucket`.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let v = self.ctl(&["list", bucket, &format!("{}/", self.prefix)]);
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    }

    /// Every version and delete marker under this test's prefix.
    pub fn versions(&self, bucket: &str) -> Vec<Value> {
        self.ctl(&["list-versions", bucket, &format!("{}/", self.prefix)])
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn delete(&self, bucket: &str, keys: &[String]) {
        let mut args = vec!["delete", bucket];
        args.extend(keys.iter().map(String::as_str));
        self.ctl(&args);
    }

    pub fn delete_all(&self, bucket: &str) {
        self.ctl(&["delete-prefix", bucket, &format!("{}/", self.prefix)]);
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(mut child) = self.moto.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

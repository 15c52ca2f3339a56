//! Where a table lives: a URI (`fs:///abs/path/`, `s3://bucket/prefix/`) plus
//! the CONNECTION options that reach it. Secrets in the options never leave
//! this type unredacted except to build the operator.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Connection options whose values are secrets: masked everywhere they could
/// be shown.
const SECRET_OPTIONS: &[&str] = &["access_key_id", "secret_access_key", "session_token"];

/// The options an `s3://` location understands, with Databend's names.
const S3_OPTIONS: &[&str] = &[
    "endpoint_url",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "region",
    "enable_virtual_host_style",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scheme {
    Fs,
    S3,
}

/// A parsed, validated storage location.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageLocation {
    pub scheme: Scheme,
    /// The bucket for S3; empty for fs.
    pub bucket: String,
    /// The absolute root inside the bucket or file system, with a trailing `/`.
    pub root: String,
    /// CONNECTION options, keys lower-cased.
    pub options: BTreeMap<String, String>,
}

impl StorageLocation {
    /// Parses `'<uri>' CONNECTION = (...)` as written in CREATE TABLE.
    pub fn parse(uri: &str, options: BTreeMap<String, String>) -> Result<Self> {
        let invalid = |msg: String| Error::new(ErrorKind::InvalidParameterValue, msg);
        let options: BTreeMap<String, String> = options
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
            invalid(format!(
                "invalid location {uri:?}: expected s3://bucket/path/ or fs:///absolute/path/"
            ))
        })?;
        match scheme.to_ascii_lowercase().as_str() {
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(invalid(format!(
                        "invalid location {uri:?}: the bucket name is missing"
                    )));
                }
                for key in options.keys() {
                    if !S3_OPTIONS.contains(&key.as_str()) {
                        return Err(invalid(format!(
                            "unknown CONNECTION option {key:?} for an s3 location (known options: {})",
                            S3_OPTIONS.join(", ")
                        )));
                    }
                }
                if let Some(v) = options.get("enable_virtual_host_style") {
                    parse_bool(v).ok_or_else(|| {
                        invalid(format!(
                            "enable_virtual_host_style must be true or false, not {v:?}"
                        ))
                    })?;
                }
                Ok(StorageLocation {
                    scheme: Scheme::S3,
                    bucket: bucket.to_string(),
                    root: normalize_root(prefix),
                    options,
                })
            }
            "fs" | "file" => {
                if !rest.starts_with('/') {
                    return Err(invalid(format!(
                        "invalid location {uri:?}: an fs location needs an absolute path, like fs:///var/data/"
                    )));
                }
                if let Some(key) = options.keys().next() {
                    return Err(invalid(format!(
                        "an fs location takes no CONNECTION options, got {key:?}"
                    )));
                }
                Ok(StorageLocation {
                    scheme: Scheme::Fs,
                    bucket: String::new(),
                    root: normalize_root(rest),
                    options,
                })
            }
            other => Err(Error::new(
                ErrorKind::FeatureNotSupported,
                format!("storage scheme {other:?} is not supported (use s3:// or fs://)"),
            )),
        }
    }

    /// A local directory, as the embedded default uses.
    pub fn local(dir: &str) -> Self {
        StorageLocation {
            scheme: Scheme::Fs,
            bucket: String::new(),
            root: normalize_root(dir),
            options: BTreeMap::new(),
        }
    }

    pub fn uri(&self) -> String {
        match self.scheme {
            Scheme::Fs => format!("fs://{}", self.root),
            Scheme::S3 => format!("s3://{}{}", self.bucket, self.root),
        }
    }

    /// The same location below `sub` (a relative directory).
    pub fn join(&self, sub: &str) -> Self {
        let mut loc = self.clone();
        loc.root = normalize_root(&format!("{}{}", self.root, sub.trim_matches('/')));
        loc
    }

    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// The options as they may be shown: secrets masked.
    pub fn redacted_options(&self) -> BTreeMap<String, String> {
        self.options
            .iter()
            .map(|(k, v)| {
                let v = if SECRET_OPTIONS.contains(&k.as_str()) {
                    "******".to_string()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// The secret values, so that errors from the storage service can be scrubbed.
    pub fn secrets(&self) -> Vec<String> {
        SECRET_OPTIONS
            .iter()
            .filter_map(|k| self.options.get(*k))
            .filter(|v| !v.is_empty())
            .cloned()
            .collect()
    }

    /// `'<uri>' CONNECTION = (k = 'v' ...)` with secrets masked, as SHOW CREATE TABLE prints it.
    pub fn to_redacted_sql(&self) -> String {
        let mut sql = format!("'{}'", self.uri());
        if !self.options.is_empty() {
            let opts: Vec<String> = self
                .redacted_options()
                .iter()
                .map(|(k, v)| format!("{k} = '{}'", v.replace('\'', "''")))
                .collect();
            sql.push_str(&format!(" CONNECTION = ({})", opts.join(" ")));
        }
        sql
    }
}

/// Debug never prints secrets.
impl fmt::Debug for StorageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageLocation")
            .field("uri", &self.uri())
            .field("options", &self.redacted_options())
            .finish()
    }
}

impl fmt::Display for StorageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "1" | "yes" => Some(true),
        "false" | "off" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn normalize_root(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        format!("/{trimmed}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_s3_with_options() {
        let loc = StorageLocation::parse(
            "s3://bucket/fail-safe/",
            opts(&[
                ("ACCESS_KEY_ID", "AK"),
                ("secret_access_key", "SK"),
                ("endpoint_url", "http://x"),
            ]),
        )
        .unwrap();
        assert_eq!(loc.bucket, "bucket");
        assert_eq!(loc.root, "/fail-safe/");
        assert_eq!(loc.uri(), "s3://bucket/fail-safe/");
        assert_eq!(loc.option("access_key_id"), Some("AK"));
        let shown = format!("{loc:?} {}", loc.to_redacted_sql());
        assert!(!shown.contains("AK\"") && !shown.contains("'AK'") && !shown.contains("SK"));
        assert_eq!(loc.secrets(), vec!["AK".to_string(), "SK".to_string()]);
    }

    #[test]
    fn rejects_bad_locations() {
        let err = StorageLocation::parse("s3:///x", BTreeMap::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidParameterValue);
        let err = StorageLocation::parse("gcs://b/x", BTreeMap::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FeatureNotSupported);
        let err = StorageLocation::parse("s3://b/x", opts(&[("colour", "red")])).unwrap_err();
        assert!(err.message().contains("colour"));
        let err = StorageLocation::parse("fs://relative/x", BTreeMap::new()).unwrap_err();
        assert!(err.message().contains("absolute"));
    }

    #[test]
    fn fs_roots_are_normalized() {
        let loc = StorageLocation::parse("fs:///tmp/a/b", BTreeMap::new()).unwrap();
        assert_eq!(loc.root, "/tmp/a/b/");
        assert_eq!(loc.join("1/2/").root, "/tmp/a/b/1/2/");
    }
}

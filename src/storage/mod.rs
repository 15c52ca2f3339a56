//! Object storage, through Apache OpenDAL. The only module that imports opendal.
//!
//! A [`Storage`] is a cheap, clonable handle on one root (a table location or
//! the meta directory) with the retry and timeout layers applied. It speaks in
//! paths relative to its root and in fusegate [`Error`]s, with the storage
//! service's secrets scrubbed from every message.

mod faults;
mod location;
mod parquet;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind as OdErrorKind, Operator};

pub(crate) use self::location::parse_bool;
pub use self::location::{Scheme, StorageLocation};
pub use self::parquet::{BlockReader, BlockWriter};
use crate::error::{Error, ErrorKind, Result};
pub use faults::FaultRatios;

/// How many requests a batch operation (restore, delete) keeps in flight.
pub const IO_CONCURRENCY: usize = 64;

/// One object seen by a listing.
#[derive(Debug, Clone)]
pub struct ObjectEntry {
    /// Path relative to the storage root.
    pub path: String,
    pub size: u64,
    /// Milliseconds since the Unix epoch, when the service reports it.
    pub last_modified_ms: Option<i64>,
}

/// What a storage can do beyond plain reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// Deleted objects can be brought back (`Operator::restore`): versioned S3.
    pub restore: bool,
    /// Writes can be made conditional on the object not existing.
    pub write_if_absent: bool,
    /// Listings can show every version of an object, delete markers included.
    pub list_versions: bool,
}

/// One version of an object (or a delete marker), from a versioned listing.
#[derive(Debug, Clone)]
pub struct ObjectVersion {
    /// Path relative to the storage root.
    pub path: String,
    /// The service's version id; `"null"` on buckets that never kept versions.
    pub version: Option<String>,
    /// This is the object's latest version (or latest delete marker).
    pub is_latest: bool,
    /// A delete marker rather than content.
    pub is_delete_marker: bool,
}

/// How to bring back a deleted object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    /// Remove the delete marker hiding the latest version (`Operator::restore`).
    RemoveDeleteMarker,
    /// Make this earlier version current again (`restore_with(..).version(v)`,
    /// a server-side copy).
    FromVersion(String),
    /// Remove these delete markers (every one the listing showed for the
    /// object), which makes its newest version current again: S3's own
    /// undelete, what `Operator::restore` does for one marker. Sent in batches
    /// (S3's DeleteObjects takes 1,000 a request); when a batch fails — a
    /// credential without `s3:DeleteObjectVersion`, say — `version` is
    /// restored by a copy instead.
    Undelete {
        markers: Vec<String>,
        version: String,
    },
}

#[derive(Clone)]
pub struct Storage {
    op: Operator,
    location: Arc<StorageLocation>,
    secrets: Arc<Vec<String>>,
    context: Option<Arc<ErrorContext>>,
}

/// What every error of a storage handle says about its owner.
#[derive(Debug)]
struct ErrorContext {
    /// Prefixed to messages, e.g. `table default.t`.
    label: String,
    /// Where this storage's root is inside its location (`1/2/`), so that
    /// paths in messages are relative to the location the user gave.
    root_in_location: String,
    /// The location, secrets-free (`s3://bucket/prefix/`).
    location_uri: String,
    /// Attached when an object is missing.
    not_found_hint: Option<String>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.location.uri())
    }
}

impl Storage {
    /// Makes every storage opened from now on fail `ratio` (0 to 1) of its
    /// operations with temporary errors: reads through OpenDAL's chaos layer,
    /// writes, lists, deletes, stats and restores through [`faults::FaultLayer`].
    /// The server's `--inject-storage-faults`, for fault-injection tests.
    pub fn inject_faults(ratios: FaultRatios) {
        let _ = INJECTED_FAULTS.set(ratios);
    }

    /// Builds the operator for a location. Building never touches the network;
    /// use [`Storage::check_writable`] for that.
    pub fn open(location: &StorageLocation) -> Result<Storage> {
        let op = match location.scheme {
            Scheme::Fs => {
                std::fs::create_dir_all(&location.root).map_err(|e| {
                    Error::new(
                        ErrorKind::StorageIo,
                        format!("cannot create directory {}: {e}", location.root),
                    )
                })?;
                let builder = opendal::services::Fs::default().root(&location.root);
                Operator::new(builder).map_err(|e| map_opendal(e, &[], "open", ""))?
            }
            Scheme::S3 => {
                let mut builder = opendal::services::S3::default()
                    .bucket(&location.bucket)
                    .root(&location.root)
                    .region(location.option("region").unwrap_or("us-east-1"))
                    .disable_config_load()
                    .disable_ec2_metadata();
                if let Some(endpoint) = location.option("endpoint_url") {
                    builder = builder.endpoint(endpoint);
                }
                if let Some(v) = location.option("access_key_id") {
                    builder = builder.access_key_id(v);
                }
                if let Some(v) = location.option("secret_access_key") {
                    builder = builder.secret_access_key(v);
                }
                if let Some(v) = location.option("session_token") {
                    builder = builder.session_token(v);
                }
                if location.option("access_key_id").is_none() {
                    builder = builder.skip_signature();
                }
                if location
                    .option("enable_virtual_host_style")
                    .and_then(parse_bool)
                    .unwrap_or(false)
                {
                    builder = builder.enable_virtual_host_style();
                }
                Operator::new(builder)
                    .map_err(|e| map_opendal(e, &location.secrets(), "open", ""))?
            }
        };
        // Injected faults sit below the retry layer: they are retried, and
        // surface, exactly as a flaky network's would.
        let op = match INJECTED_FAULTS.get() {
            Some(ratios) if ratios.any() => op
                .layer(opendal::layers::ChaosLayer::new(ratios.read))
                .layer(faults::FaultLayer::new(*ratios)),
            _ => op,
        };
        let op = op
            .layer(
                TimeoutLayer::new()
                    .with_timeout(Duration::from_secs(60))
                    .with_io_timeout(Duration::from_secs(30)),
            )
            // Only errors OpenDAL marks temporary are retried.
            .layer(
                RetryLayer::new()
                    .with_jitter()
                    .with_max_times(4)
                    .with_min_delay(Duration::from_millis(50))
                    .with_max_delay(Duration::from_secs(2)),
            )
            // Outermost: one observation per operation, retries included.
            .layer(crate::metrics::metrics().storage_layer());
        Ok(Storage {
            op,
            secrets: Arc::new(location.secrets()),
            location: Arc::new(location.clone()),
            context: None,
        })
    }

    /// The same storage, whose errors name their owner (`label`), give object
    /// paths relative to `location` (whose subdirectory `root_in_location`
    /// this storage is rooted at) and, for a missing object, carry `not_found_hint`.
    pub fn with_error_context(
        self,
        label: String,
        location: &StorageLocation,
        root_in_location: &str,
        not_found_hint: Option<String>,
    ) -> Storage {
        Storage {
            context: Some(Arc::new(ErrorContext {
                label,
                root_in_location: root_in_location.to_string(),
                location_uri: location.uri(),
                not_found_hint,
            })),
            ..self
        }
    }

    /// An in-memory storage, for unit tests.
    pub fn memory() -> Storage {
        #[allow(clippy::unwrap_used)] // the memory service has no configuration that can fail
        let op = Operator::new(opendal::services::Memory::default()).unwrap();
        Storage {
            op,
            location: Arc::new(StorageLocation::local("/memory")),
            secrets: Arc::new(Vec::new()),
            context: None,
        }
    }

    /// Whether this storage is a directory of this machine (reads cost
    /// CPU, not transfer).
    pub fn is_local(&self) -> bool {
        self.location.scheme == Scheme::Fs
    }

    pub fn location(&self) -> &StorageLocation {
        &self.location
    }

    pub fn capabilities(&self) -> Capabilities {
        let cap = self.op.info().capability();
        Capabilities {
            restore: cap.restore,
            write_if_absent: cap.write_with_if_not_exists,
            list_versions: cap.list_with_versions && cap.list_with_deleted,
        }
    }

    /// Proves the location is reachable and writable by writing, reading back
    /// and removing a probe object. Used before a table is created there.
    pub async fn check_writable(&self) -> Result<()> {
        // One fixed name, so that repeated checks on a versioned bucket add
        // versions to a single key rather than new keys.
        let probe = "_fusegate_probe";
        self.write(probe, Bytes::from_static(b"fusegate")).await?;
        self.read(probe).await?;
        self.delete(probe).await
    }

    pub async fn read(&self, path: &str) -> Result<Bytes> {
        let mut attempts = 0;
        loop {
            match self.op.read(path).await {
                Ok(buf) => return Ok(buf.to_bytes()),
                // The retry layer resumes a whole-object read that broke off
                // at the offset it reached; when that was the object's end,
                // the store answers 416. Read it again from the start.
                Err(e) if e.kind() == OdErrorKind::RangeNotSatisfied && attempts < 3 => {
                    attempts += 1;
                    tracing::debug!(path, "a resumed read found the object's end; reading again");
                }
                Err(e) => return Err(self.map_err(e, "read", path)),
            }
        }
    }

    pub async fn write(&self, path: &str, data: Bytes) -> Result<()> {
        self.op
            .write(path, data)
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(e, "write", path))
    }

    /// Writes only if nothing exists at `path`; `Ok(false)` when something does.
    /// Atomic on services with conditional writes (S3 `If-None-Match`, local
    /// `O_EXCL`), which is what the catalog commit relies on.
    pub async fn write_if_absent(&self, path: &str, data: Bytes) -> Result<bool> {
        match self.op.write_with(path, data).if_not_exists(true).await {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    OdErrorKind::ConditionNotMatch | OdErrorKind::AlreadyExists
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.map_err(e, "write", path)),
        }
    }

    /// The object's size and modification time, or `None` when it does not exist.
    pub async fn stat(&self, path: &str) -> Result<Option<ObjectEntry>> {
        match self.op.stat(path).await {
            Ok(meta) => Ok(Some(ObjectEntry {
                path: path.to_string(),
                size: meta.content_length(),
                last_modified_ms: meta
                    .last_modified()
                    .map(|t| t.into_inner().as_millisecond()),
            })),
            Err(e) if e.kind() == OdErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.map_err(e, "stat", path)),
        }
    }

    /// Removes an object; removing a missing one succeeds.
    pub async fn delete(&self, path: &str) -> Result<()> {
        self.op
            .delete(path)
            .await
            .map_err(|e| self.map_err(e, "delete", path))
    }

    /// Removes many objects, batched where the service supports it.
    pub async fn delete_many(&self, paths: Vec<String>) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        let first = paths[0].clone();
        self.op
            .delete_iter(paths)
            .await
            .map_err(|e| self.map_err(e, "delete", &first))
    }

    /// Every object below `prefix` (a directory path ending in `/`), recursively.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectEntry>> {
        let entries = match self.op.list_with(prefix).recursive(true).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == OdErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.map_err(e, "list", prefix)),
        };
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .map(|e| ObjectEntry {
                path: e.path().to_string(),
                size: e.metadata().content_length(),
                last_modified_ms: e
                    .metadata()
                    .last_modified()
                    .map(|t| t.into_inner().as_millisecond()),
            })
            .collect())
    }

    /// The content of an earlier version of an object.
    pub async fn read_version(&self, path: &str, version: &str) -> Result<Bytes> {
        let buf = self
            .op
            .read_with(path)
            .version(version)
            .await
            .map_err(|e| self.map_err(e, "read", path))?;
        Ok(buf.to_bytes())
    }

    /// Every version and delete marker below `prefix`, in one listing.
    pub async fn list_versions(&self, prefix: &str) -> Result<Vec<ObjectVersion>> {
        let entries = match self
            .op
            .list_with(prefix)
            .recursive(true)
            .versions(true)
            .deleted(true)
            .await
        {
            Ok(entries) => entries,
            Err(e) if e.kind() == OdErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.map_err(e, "list", prefix)),
        };
        Ok(entries
            .into_iter()
            .filter(|e| !e.metadata().is_dir())
            .map(|e| ObjectVersion {
                path: e.path().to_string(),
                version: e.metadata().version().map(str::to_string),
                is_latest: e.metadata().is_current().unwrap_or(false),
                is_delete_marker: e.metadata().is_deleted(),
            })
            .collect())
    }

    /// Restores objects inside the storage service (no bytes pass through
    /// fusegate): the delete markers of [`Restore::Undelete`]s in batches,
    /// then the rest [`IO_CONCURRENCY`] at a time. One result per request, in
    /// order.
    pub async fn restore_many(&self, requests: Vec<(String, Restore)>) -> Vec<Result<()>> {
        let markers: Vec<(String, String)> = requests
            .iter()
            .filter_map(|(path, how)| match how {
                Restore::Undelete { markers, .. } => {
                    Some(markers.iter().map(|m| (path.clone(), m.clone())))
                }
                _ => None,
            })
            .flatten()
            .collect();
        let undeleted = !markers.is_empty()
            && self.op.info().capability().delete_with_version
            && match self.remove_versions(markers).await {
                Ok(()) => true,
                Err(e) => {
                    // Nothing is lost by retrying as copies: a marker removed
                    // before the failure already brought its object back, and
                    // copying that object's version again adds an identical one.
                    let e = self.map_err(e, "remove delete markers", "");
                    tracing::warn!(error = %e, "removing delete markers failed; restoring by copies instead");
                    false
                }
            };
        futures::stream::iter(requests)
            .map(|(path, how)| async move {
                let result = match &how {
                    Restore::Undelete { .. } if undeleted => return Ok(()),
                    Restore::Undelete { version, .. } | Restore::FromVersion(version) => {
                        self.op.restore_with(&path).version(version).await
                    }
                    Restore::RemoveDeleteMarker => self.op.restore(&path).await,
                };
                result.map_err(|e| self.map_err(e, "restore", &path))
            })
            .buffered(IO_CONCURRENCY)
            .collect()
            .await
    }

    /// Deletes the given versions of objects, batched (one DeleteObjects
    /// request per 1,000 on S3); fails as a whole.
    async fn remove_versions(&self, versions: Vec<(String, String)>) -> opendal::Result<()> {
        let mut deleter = self.op.deleter().await?;
        for (path, version) in versions {
            let options = opendal::options::DeleteOptions {
                version: Some(version),
                ..Default::default()
            };
            deleter.delete((path, options)).await?;
        }
        deleter.close().await
    }

    /// A Parquet reader for the block at `path` of known size `size`.
    pub fn block_reader(&self, path: &str, size: u64) -> BlockReader {
        BlockReader::new(self.clone(), path.to_string(), size)
    }

    /// A Parquet sink writing the object at `path`.
    pub async fn block_writer(&self, path: &str) -> Result<BlockWriter> {
        let writer = self
            .op
            .writer_with(path)
            .chunk(8 * 1024 * 1024)
            .concurrent(4)
            .await
            .map_err(|e| self.map_err(e, "write", path))?;
        Ok(BlockWriter::new(self.clone(), path.to_string(), writer))
    }

    pub(crate) fn operator(&self) -> &Operator {
        &self.op
    }

    /// Converts an OpenDAL error into a fusegate error naming the operation and
    /// the object, with every secret of this location scrubbed.
    pub(crate) fn map_err(&self, err: opendal::Error, operation: &str, path: &str) -> Error {
        let Some(ctx) = &self.context else {
            return map_opendal(err, &self.secrets, operation, path);
        };
        let full_path = format!("{}{}", ctx.root_in_location, path);
        if err.kind() == OdErrorKind::NotFound {
            let error = Error::new(
                ErrorKind::ObjectNotFound,
                format!(
                    "{}: object {full_path} was not found in {}",
                    ctx.label, ctx.location_uri
                ),
            );
            return match &ctx.not_found_hint {
                Some(h) => error.with_hint(h.clone()),
                None => error,
            };
        }
        map_opendal(err, &self.secrets, operation, &full_path).context(&ctx.label)
    }
}

fn map_opendal(err: opendal::Error, secrets: &[String], operation: &str, path: &str) -> Error {
    let temporary = err.is_temporary();
    let kind = match err.kind() {
        OdErrorKind::NotFound => ErrorKind::ObjectNotFound,
        OdErrorKind::Unsupported => ErrorKind::FeatureNotSupported,
        OdErrorKind::ConfigInvalid => ErrorKind::InvalidParameterValue,
        OdErrorKind::PermissionDenied => ErrorKind::InsufficientPrivilege,
        _ => ErrorKind::StorageIo,
    };
    let what = match err.kind() {
        OdErrorKind::NotFound => "not found".to_string(),
        OdErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => scrub(&err.to_string(), secrets),
    };
    let message = if path.is_empty() {
        format!("storage {operation} failed: {what}")
    } else {
        format!("storage {operation} of {path:?} failed: {what}")
    };
    let mut error = Error::new(kind, message);
    if temporary {
        error = error.set_temporary();
    }
    error
}

/// Replaces every secret in `text` with a mask.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if secret.len() >= 3 {
            out = out.replace(secret.as_str(), "******");
        }
    }
    out
}

/// The fraction of storage requests to fail on purpose (f64 bits; 0: none).
/// Set once at startup by `--inject-storage-faults`.
static INJECTED_FAULTS: std::sync::OnceLock<FaultRatios> = std::sync::OnceLock::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn write_if_absent_refuses_an_existing_object() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&StorageLocation::local(dir.path().to_str().unwrap())).unwrap();
        assert!(
            storage
                .write_if_absent("a/1", Bytes::from_static(b"x"))
                .await
                .unwrap()
        );
        assert!(
            !storage
                .write_if_absent("a/1", Bytes::from_static(b"y"))
                .await
                .unwrap()
        );
        assert_eq!(storage.read("a/1").await.unwrap(), Bytes::from_static(b"x"));
        assert!(!storage.capabilities().restore);
        let listed = storage.list("a/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].path, "a/1");
    }

    #[tokio::test]
    async fn missing_objects_are_object_not_found() {
        let storage = Storage::memory();
        let err = storage.read("nope").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ObjectNotFound);
        assert!(storage.stat("nope").await.unwrap().is_none());
    }

    #[test]
    fn scrub_masks_secrets() {
        let s = scrub(
            "key AKIA123 and SECRETXYZ",
            &["AKIA123".into(), "SECRETXYZ".into()],
        );
        assert_eq!(s, "key ****** and ******");
    }
}

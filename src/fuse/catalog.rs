//! The catalog: databases and tables, and each table's current snapshot.
//!
//! Stored in the meta storage as a log of whole-catalog versions
//! (`_meta/catalog/<version>.json`), each written with a conditional create,
//! like a Delta log: a commit that loses the race to another writer — in this
//! process or another one sharing the storage — sees `false`, reloads and
//! retries. A commit is atomic (one object), so a crash leaves the catalog at
//! the old or the new version, never in between.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::schema::TableSchema;
use crate::bail;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{Storage, StorageLocation};

const CATALOG_DIR: &str = "_meta/catalog/";
const LATEST_HINT: &str = "_meta/catalog/LATEST";
pub const DEFAULT_DATABASE: &str = "default";

/// A version file that does not parse was cut short by a crash mid-write (the
/// writer created it exclusively and died), or is being written right now.
/// After this long it is treated as an aborted commit and skipped.
const TORN_VERSION_GRACE: Duration = Duration::from_secs(5);

/// How many old versions to keep when pruning the log.
const KEEP_VERSIONS: u64 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseMeta {
    pub id: u64,
    pub name: String,
    pub created_on: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    pub id: u64,
    pub db_id: u64,
    pub name: String,
    pub schema: TableSchema,
    /// External location (`s3://...` with its CONNECTION); None: the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<StorageLocation>,
    /// Table options (row_per_block, row_per_page, block_per_segment, data_retention_period_in_hours...).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Current snapshot, relative to the table root; None until the first write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_location: Option<String>,
    pub created_on: DateTime<Utc>,
    pub updated_on: DateTime<Utc>,
    /// Set when dropped: the table stays recoverable (UNDROP) until vacuumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_on: Option<DateTime<Utc>>,
}

impl TableMeta {
    pub fn is_dropped(&self) -> bool {
        self.dropped_on.is_some()
    }

    /// The directory of this table's objects below its storage root.
    pub fn root_dir(&self) -> String {
        format!("{}/{}/", self.db_id, self.id)
    }
}

/// One version of the whole catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogState {
    pub version: u64,
    pub next_id: u64,
    pub databases: Vec<DatabaseMeta>,
    pub tables: Vec<TableMeta>,
}

impl CatalogState {
    fn initial() -> CatalogState {
        CatalogState {
            version: 1,
            next_id: 2,
            databases: vec![DatabaseMeta {
                id: 1,
                name: DEFAULT_DATABASE.to_string(),
                created_on: Utc::now(),
            }],
            tables: Vec::new(),
        }
    }

    pub fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn database(&self, name: &str) -> Option<&DatabaseMeta> {
        self.databases.iter().find(|d| d.name == name)
    }

    pub fn require_database(&self, name: &str) -> Result<&DatabaseMeta> {
        self.database(name).ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedDatabase,
                format!("database \"{name}\" does not exist"),
            )
        })
    }

    /// The live (not dropped) table `name` in database `db`.
    pub fn table(&self, db: &str, name: &str) -> Option<&TableMeta> {
        let db = self.database(db)?;
        self.tables
            .iter()
            .find(|t| t.db_id == db.id && t.name == name && !t.is_dropped())
    }

    pub fn require_table(&self, db: &str, name: &str) -> Result<&TableMeta> {
        self.require_database(db)?;
        self.table(db, name).ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedTable,
                format!("relation \"{db}.{name}\" does not exist"),
            )
        })
    }

    pub fn table_by_id(&self, id: u64) -> Option<&TableMeta> {
        self.tables.iter().find(|t| t.id == id)
    }

    pub fn table_by_id_mut(&mut self, id: u64) -> Option<&mut TableMeta> {
        self.tables.iter_mut().find(|t| t.id == id)
    }

    /// Live tables of a database, by name.
    pub fn tables_of(&self, db_id: u64) -> impl Iterator<Item = &TableMeta> {
        let mut tables: Vec<&TableMeta> = self
            .tables
            .iter()
            .filter(|t| t.db_id == db_id && !t.is_dropped())
            .collect();
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        tables.into_iter()
    }
}

/// The catalog of one fusegate data directory (or meta bucket), shared by every
/// session of the process.
pub struct Catalog {
    meta: Storage,
    cached: RwLock<Arc<CatalogState>>,
    /// Serialises this process's commits so they rarely race each other; races
    /// with other processes are settled by the conditional write.
    commit_lock: tokio::sync::Mutex<()>,
}

fn version_path(version: u64) -> String {
    format!("{CATALOG_DIR}{version:020}.json")
}

enum VersionRead {
    Found(CatalogState),
    Missing,
    /// A torn file old enough to be a crashed commit: the state did not change.
    Aborted,
}

impl Catalog {
    /// Opens the catalog in `meta`, creating it (with the `default` database) on first use.
    pub async fn open(meta: Storage) -> Result<Catalog> {
        let hint = match meta.stat(LATEST_HINT).await? {
            Some(_) => {
                let text = meta.read(LATEST_HINT).await?;
                std::str::from_utf8(&text)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
            }
            None => None,
        };
        let start = match hint {
            Some(v) => v,
            None => Self::highest_listed_version(&meta).await?,
        };
        let catalog = Catalog {
            meta,
            cached: RwLock::new(Arc::new(CatalogState {
                version: 0,
                next_id: 0,
                databases: Vec::new(),
                tables: Vec::new(),
            })),
            commit_lock: tokio::sync::Mutex::new(()),
        };
        if start > 0 {
            // The hinted version may have been pruned: fall back to a listing.
            let state = match catalog.read_version(start).await? {
                VersionRead::Found(state) => Some(state),
                _ => {
                    let listed = Self::highest_listed_version(&catalog.meta).await?;
                    match catalog.read_version(listed).await? {
                        VersionRead::Found(state) => Some(state),
                        _ => None,
                    }
                }
            };
            if let Some(state) = state {
                catalog.set_cached(state);
            }
        }
        let current = catalog.current().await?;
        if current.version == 0 {
            let initial = CatalogState::initial();
            if catalog
                .meta
                .write_if_absent(&version_path(1), encode(&initial)?)
                .await?
            {
                catalog.set_cached(initial);
            }
            catalog.current().await?;
        }
        Ok(catalog)
    }

    async fn highest_listed_version(meta: &Storage) -> Result<u64> {
        let entries = meta.list(CATALOG_DIR).await?;
        Ok(entries
            .iter()
            .filter_map(|e| {
                e.path
                    .strip_prefix(CATALOG_DIR)?
                    .strip_suffix(".json")?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0))
    }

    /// The last state this process has seen, without touching storage.
    pub fn cached(&self) -> Arc<CatalogState> {
        match self.cached.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_cached(&self, state: CatalogState) {
        let mut guard = match self.cached.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.version > guard.version {
            *guard = Arc::new(state);
        }
    }

    /// The newest committed state: the cached one plus any versions other
    /// writers committed since (one probe when nothing changed).
    pub async fn current(&self) -> Result<Arc<CatalogState>> {
        let mut state = self.cached();
        let mut next = state.version + 1;
        loop {
            match self.read_version(next).await? {
                VersionRead::Found(found) => {
                    self.set_cached(found);
                    state = self.cached();
                    next = state.version + 1;
                }
                VersionRead::Aborted => next += 1,
                VersionRead::Missing => return Ok(state),
            }
        }
    }

    async fn read_version(&self, version: u64) -> Result<VersionRead> {
        let path = version_path(version);
        let started = std::time::Instant::now();
        loop {
            let bytes = match self.meta.read(&path).await {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::ObjectNotFound => return Ok(VersionRead::Missing),
                Err(e) => return Err(e.context("reading the catalog")),
            };
            if let Ok(mut state) = serde_json::from_slice::<CatalogState>(&bytes) {
                state.version = version;
                return Ok(VersionRead::Found(state));
            }
            let age_ms = match self.meta.stat(&path).await? {
                Some(entry) => entry
                    .last_modified_ms
                    .map(|m| Utc::now().timestamp_millis() - m)
                    .unwrap_or(i64::MAX),
                None => return Ok(VersionRead::Missing),
            };
            if age_ms > TORN_VERSION_GRACE.as_millis() as i64
                || started.elapsed() > TORN_VERSION_GRACE
            {
                tracing::warn!(version, "skipping a catalog version cut short by a crash");
                return Ok(VersionRead::Aborted);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Applies `change` to the newest state and commits the result as the next
    /// version, retrying on a lost race. `change` may run several times and
    /// must only compute from the state it is given.
    pub async fn commit<T>(
        &self,
        mut change: impl FnMut(&mut CatalogState) -> Result<T>,
    ) -> Result<(T, Arc<CatalogState>)> {
        let _guard = self.commit_lock.lock().await;
        for _ in 0..1000 {
            let base = self.current().await?;
            let mut next = (*base).clone();
            let out = change(&mut next)?;
            if let Some(state) = self.try_commit(&base, next).await? {
                return Ok((out, state));
            }
        }
        bail!(
            SerializationFailure,
            "could not commit to the catalog: too many concurrent writers"
        )
    }

    /// Serialises this process's commits (see `commit_lock`).
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.commit_lock.lock().await
    }

    /// Writes `next` as the version after `base`. `Ok(None)` when another
    /// writer committed that version first.
    pub async fn try_commit(
        &self,
        base: &CatalogState,
        mut next: CatalogState,
    ) -> Result<Option<Arc<CatalogState>>> {
        let mut version = base.version + 1;
        loop {
            next.version = version;
            let path = version_path(version);
            let bytes = encode(&next)?;
            if self.meta.write_if_absent(&path, bytes.clone()).await? {
                break;
            }
            // A write whose answer was lost and was sent again finds its own
            // object there: that is a commit, not a lost race.
            if self.is_ours(&path, &bytes).await? {
                tracing::debug!(
                    version,
                    "the catalog version is ours: its first answer was lost"
                );
                break;
            }
            // Someone else holds this version. If it is a crashed commit, take
            // the following number; otherwise the base is stale.
            match self.read_version(version).await? {
                VersionRead::Aborted => version += 1,
                _ => return Ok(None),
            }
        }
        self.set_cached(next);
        // The hint only speeds up opening; a stale or torn one is harmless.
        if let Err(e) = self
            .meta
            .write(LATEST_HINT, Bytes::from(version.to_string()))
            .await
        {
            tracing::debug!(error = %e, "writing the catalog hint");
        }
        if version.is_multiple_of(KEEP_VERSIONS) {
            self.prune(version).await;
        }
        Ok(Some(self.cached()))
    }

    /// Whether the object at `path` holds exactly `bytes`. Until that is
    /// known the commit may or may not have happened, so a failure to tell is
    /// `CompletionUnknown`, after which callers keep what they wrote.
    async fn is_ours(&self, path: &str, bytes: &Bytes) -> Result<bool> {
        let mut last = None;
        for attempt in 0..10u64 {
            match self.meta.read(path).await {
                Ok(found) => return Ok(found == *bytes),
                Err(e) if e.kind() == ErrorKind::ObjectNotFound => return Ok(false),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
        }
        let detail = last.map(|e| e.message().to_string()).unwrap_or_default();
        Err(Error::new(
            ErrorKind::CompletionUnknown,
            format!(
                "could not tell whether the commit took effect: catalog version {path} cannot be read ({detail})"
            ),
        )
        .with_hint("The statement may have been applied: check the table before running it again."))
    }

    /// Removes versions older than the newest `KEEP_VERSIONS`.
    async fn prune(&self, newest: u64) {
        let Ok(entries) = self.meta.list(CATALOG_DIR).await else {
            return;
        };
        let old: Vec<String> = entries
            .into_iter()
            .filter(|e| {
                e.path
                    .strip_prefix(CATALOG_DIR)
                    .and_then(|n| n.strip_suffix(".json"))
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|v| v + KEEP_VERSIONS < newest)
            })
            .map(|e| e.path)
            .collect();
        if let Err(e) = self.meta.delete_many(old).await {
            tracing::debug!(error = %e, "pruning old catalog versions");
        }
    }
}

fn encode(state: &CatalogState) -> Result<Bytes> {
    Ok(Bytes::from(serde_json::to_vec(state)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuse::schema::ColumnType;

    fn add_table(state: &mut CatalogState, name: &str) -> Result<u64> {
        let id = state.allocate_id();
        let now = Utc::now();
        state.tables.push(TableMeta {
            id,
            db_id: 1,
            name: name.to_string(),
            schema: TableSchema::new(vec![("a".into(), ColumnType::Int32, true, None)])?,
            location: None,
            options: BTreeMap::new(),
            snapshot_location: None,
            created_on: now,
            updated_on: now,
            dropped_on: None,
        });
        Ok(id)
    }

    #[tokio::test]
    async fn bootstrap_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&StorageLocation::local(dir.path().to_str().unwrap())).unwrap();
        let catalog = Catalog::open(storage.clone()).await.unwrap();
        let state = catalog.current().await.unwrap();
        assert_eq!(state.version, 1);
        assert!(state.database(DEFAULT_DATABASE).is_some());
        catalog.commit(|s| add_table(s, "t")).await.unwrap();
        let reopened = Catalog::open(storage).await.unwrap();
        let state = reopened.current().await.unwrap();
        assert_eq!(state.version, 2);
        assert!(state.table(DEFAULT_DATABASE, "t").is_some());
    }

    #[tokio::test]
    async fn two_catalogs_on_one_directory_never_lose_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let loc = StorageLocation::local(dir.path().to_str().unwrap());
        let a = Arc::new(Catalog::open(Storage::open(&loc).unwrap()).await.unwrap());
        let b = Arc::new(Catalog::open(Storage::open(&loc).unwrap()).await.unwrap());
        let mut tasks = Vec::new();
        for i in 0..20 {
            let cat = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                cat.commit(|s| add_table(s, &format!("t{i}")))
                    .await
                    .map(|_| ())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let state = a.current().await.unwrap();
        assert_eq!(state.tables.len(), 20);
        assert_eq!(state.version, 21);
        let ids: std::collections::HashSet<u64> = state.tables.iter().map(|t| t.id).collect();
        assert_eq!(ids.len(), 20);
    }

    #[tokio::test]
    async fn a_torn_version_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&StorageLocation::local(dir.path().to_str().unwrap())).unwrap();
        let catalog = Catalog::open(storage.clone()).await.unwrap();
        // A crash after creating version 2 exclusively but before writing it all.
        storage
            .write(&version_path(2), Bytes::from_static(b"{\"version\":2,"))
            .await
            .unwrap();
        let path = dir.path().join(version_path(2));
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        catalog.commit(|s| add_table(s, "t")).await.unwrap();
        let reopened = Catalog::open(storage).await.unwrap();
        let state = reopened.current().await.unwrap();
        assert_eq!(state.version, 3);
        assert!(state.table(DEFAULT_DATABASE, "t").is_some());
    }
}

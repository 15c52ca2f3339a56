//! The fuse table format: catalog, snapshots → segments → Parquet blocks, and
//! the commit protocol. Knows nothing of SQL text, DataFusion or the wire.

pub mod cache;
pub mod catalog;
pub mod maintenance;
pub mod meta;
pub mod reader;
pub mod schema;
pub mod stats;
pub mod table;
pub mod txn;
pub mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use self::cache::MetaCache;
pub use self::catalog::{Catalog, CatalogState, DEFAULT_DATABASE, DatabaseMeta, TableMeta};
pub use self::table::FuseTable;
use crate::error::Result;
use crate::storage::{Storage, StorageLocation};

/// Decoded snapshots and segments kept in memory.
const META_CACHE_ENTRIES: usize = 16 * 1024;

/// The engine of one data directory: its catalog, the default location of
/// tables, and the storage handles and metadata shared by every session.
pub struct FuseEngine {
    catalog: Catalog,
    data_location: StorageLocation,
    /// Storage handles of table roots, by table id (operators are reused).
    storages: Mutex<HashMap<u64, Storage>>,
    cache: MetaCache,
}

impl std::fmt::Debug for FuseEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FuseEngine({})", self.data_location.uri())
    }
}

impl FuseEngine {
    /// Opens (creating if needed) the data directory `data_dir`.
    pub async fn open(data_location: StorageLocation) -> Result<Arc<FuseEngine>> {
        let meta = Storage::open(&data_location)?;
        let catalog = Catalog::open(meta).await?;
        Ok(Arc::new(FuseEngine {
            catalog,
            data_location,
            storages: Mutex::new(HashMap::new()),
            cache: MetaCache::new(META_CACHE_ENTRIES),
        }))
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn data_location(&self) -> &StorageLocation {
        &self.data_location
    }

    pub(crate) fn cache(&self) -> &MetaCache {
        &self.cache
    }

    /// The storage root of a table's objects (`<location>/<db_id>/<table_id>/`).
    pub fn table_storage(&self, meta: &TableMeta) -> Result<Storage> {
        let mut storages = match self.storages.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(s) = storages.get(&meta.id)
            && s.location().options
                == meta
                    .location
                    .as_ref()
                    .map(|l| l.options.clone())
                    .unwrap_or_default()
        {
            return Ok(s.clone());
        }
        let base = meta.location.as_ref().unwrap_or(&self.data_location);
        let storage = Storage::open(&base.join(&meta.root_dir()))?;
        storages.insert(meta.id, storage.clone());
        Ok(storage)
    }

    /// A handle on the table `meta` describes, pinned at its current snapshot.
    pub fn table(self: &Arc<Self>, db_name: &str, meta: &TableMeta) -> Result<FuseTable> {
        self.table_in(db_name, meta, None)
    }

    /// A handle for use inside `txn` (None: autocommit): pinned at the
    /// transaction's working snapshot if it wrote the table, staging its
    /// writes there.
    pub fn table_in(
        self: &Arc<Self>,
        db_name: &str,
        meta: &TableMeta,
        txn: Option<Arc<txn::Transaction>>,
    ) -> Result<FuseTable> {
        let storage = self.table_storage(meta)?;
        let mut meta = meta.clone();
        if let Some(working) = txn.as_ref().and_then(|t| t.working_snapshot(meta.id)) {
            meta.snapshot_location = Some(working);
        }
        Ok(FuseTable::new(
            self.clone(),
            db_name,
            Arc::new(meta),
            storage,
            txn,
        ))
    }
}

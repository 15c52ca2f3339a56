//! One fuse table: reading its snapshot and segments, writing blocks, and
//! committing a new snapshot through the catalog.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};

use super::FuseEngine;
use super::catalog::TableMeta;
use super::meta::{BlockMeta, Segment, SegmentRef, Snapshot, decode, paths};
use super::txn::Transaction;
use super::writer::{BlockLimits, TableWriter};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{IO_CONCURRENCY, Storage};

/// Blocks per segment when a table does not set `block_per_segment`.
const DEFAULT_BLOCK_PER_SEGMENT: usize = 1000;

/// A table pinned at the snapshot its catalog entry named when the handle was made.
#[derive(Clone)]
pub struct FuseTable {
    engine: Arc<FuseEngine>,
    db_name: Arc<str>,
    meta: Arc<TableMeta>,
    storage: Storage,
    /// Set inside an explicit transaction: writes stage working snapshots
    /// instead of committing.
    txn: Option<Arc<Transaction>>,
}

impl std::fmt::Debug for FuseTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FuseTable({}.{})", self.db_name, self.meta.name)
    }
}

impl FuseTable {
    pub(super) fn new(
        engine: Arc<FuseEngine>,
        db_name: &str,
        meta: Arc<TableMeta>,
        storage: Storage,
        txn: Option<Arc<Transaction>>,
    ) -> FuseTable {
        let base = meta
            .location
            .clone()
            .unwrap_or_else(|| engine.data_location().clone());
        let storage = storage.with_error_context(
            format!("table {db_name}.{}", meta.name),
            &base,
            &meta.root_dir(),
            Some(format!(
                "The table's objects may have been deleted from its storage. If the bucket keeps object versions, CALL system$fuse_amend('{db_name}', '{}') restores them.",
                meta.name
            )),
        );
        FuseTable {
            engine,
            db_name: db_name.into(),
            meta,
            storage,
            txn,
        }
    }

    pub fn meta(&self) -> &Arc<TableMeta> {
        &self.meta
    }

    pub fn db_name(&self) -> &str {
        &self.db_name
    }

    pub fn name(&self) -> &str {
        &self.meta.name
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    fn cache_key(&self, path: &str) -> String {
        format!("{}{}", self.storage.location().uri(), path)
    }

    /// The snapshot this handle is pinned at; None for a table never written.
    pub async fn snapshot(&self) -> Result<Option<Arc<Snapshot>>> {
        match &self.meta.snapshot_location {
            None => Ok(None),
            Some(loc) => self.read_snapshot(loc).await.map(Some),
        }
    }

    pub async fn read_snapshot(&self, location: &str) -> Result<Arc<Snapshot>> {
        let key = self.cache_key(location);
        if let Some(s) = self.engine.cache().snapshot(&key) {
            return Ok(s);
        }
        let bytes = self.storage.read(location).await?;
        let snapshot: Arc<Snapshot> = Arc::new(decode(&bytes, location)?);
        self.engine.cache().put_snapshot(key, snapshot.clone());
        Ok(snapshot)
    }

    pub async fn read_segment(&self, location: &str) -> Result<Arc<Segment>> {
        let key = self.cache_key(location);
        if let Some(s) = self.engine.cache().segment(&key) {
            return Ok(s);
        }
        let bytes = self.storage.read(location).await?;
        let segment: Arc<Segment> = Arc::new(decode(&bytes, location)?);
        self.engine.cache().put_segment(key, segment.clone());
        Ok(segment)
    }

    /// All segments of `snapshot`, read concurrently, in snapshot order.
    pub async fn segments(&self, snapshot: &Snapshot) -> Result<Vec<Arc<Segment>>> {
        let locations: Vec<String> = snapshot
            .segments
            .iter()
            .map(|s| s.location.clone())
            .collect();
        futures::stream::iter(locations)
            .map(|location| async move { self.read_segment(&location).await })
            .buffered(IO_CONCURRENCY)
            .try_collect()
            .await
    }

    /// The table's snapshots, newest first, following each snapshot's
    /// predecessor from the pinned one. History ends where a predecessor is
    /// gone (purged by VACUUM).
    pub async fn history(&self) -> Result<Vec<(String, Arc<Snapshot>)>> {
        let mut out = Vec::new();
        let mut next = self.meta.snapshot_location.clone();
        while let Some(location) = next {
            let snapshot = match self.read_snapshot(&location).await {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::ObjectNotFound && !out.is_empty() => break,
                Err(e) => return Err(e),
            };
            next = snapshot.prev_snapshot_location.clone();
            out.push((location, snapshot));
        }
        Ok(out)
    }

    /// The snapshot of this table's history a travel point names.
    pub async fn travel(&self, point: &TravelPoint) -> Result<String> {
        let history = self.history().await?;
        let found = match point {
            TravelPoint::Snapshot(id) => history.into_iter().find(|(_, s)| &s.snapshot_id == id),
            TravelPoint::Timestamp(micros) => history
                .into_iter()
                .find(|(_, s)| s.timestamp.timestamp_micros() <= *micros),
        };
        match (found, point) {
            (Some((location, _)), _) => Ok(location),
            (None, TravelPoint::Snapshot(id)) => Err(snapshot_not_found(self, id)),
            (None, TravelPoint::Timestamp(_)) => Err(Error::new(
                ErrorKind::UndefinedObject,
                format!(
                    "table {}.{} has no snapshot at or before that time (its history starts later or was purged)",
                    self.db_name, self.meta.name
                ),
            )),
        }
    }

    /// FLASHBACK: commits a new snapshot with the contents of an earlier one
    /// (history is kept: the flashback itself can be undone by time travel).
    pub async fn flashback(&self, point: &TravelPoint) -> Result<()> {
        let target = self.travel(point).await?;
        let target = self.read_snapshot(&target).await?;
        if target.schema != self.meta.schema {
            return Err(Error::unsupported(
                "FLASHBACK to a snapshot with a different schema is not supported",
            ));
        }
        let segments = target.segments.clone();
        self.commit(|_| Ok(segments.clone())).await.map(|_| ())
    }

    /// This table at its newest committed snapshot.
    pub async fn latest(&self) -> Result<FuseTable> {
        let state = self.engine.catalog().current().await?;
        match state.table_by_id(self.meta.id) {
            Some(meta) => match &meta.snapshot_location {
                Some(loc) => Ok(self.at_snapshot(loc.clone())),
                None => Ok(self.clone()),
            },
            None => Ok(self.clone()),
        }
    }

    /// The same table pinned at another snapshot of its history (time travel).
    pub fn at_snapshot(&self, location: String) -> FuseTable {
        let mut meta = (*self.meta).clone();
        meta.snapshot_location = Some(location);
        FuseTable {
            meta: Arc::new(meta),
            txn: None,
            ..self.clone()
        }
    }

    /// Forgets cached metadata of this table (after its objects changed under it).
    pub fn evict_cache(&self) {
        self.engine
            .cache()
            .evict_prefix(&self.storage.location().uri());
    }

    fn option_usize(&self, key: &str) -> Option<usize> {
        self.meta.options.get(key).and_then(|v| v.parse().ok())
    }

    /// How big this table's blocks and their pages may grow (its
    /// `row_per_block` and `row_per_page` options).
    pub fn block_limits(&self) -> BlockLimits {
        let mut limits = BlockLimits::default();
        if let Some(rows) = self.option_usize("row_per_block") {
            limits.max_rows = rows.max(1);
        }
        if let Some(rows) = self.option_usize("row_per_page") {
            limits.page_rows = rows.max(1);
        }
        limits
    }

    /// Blocks per segment (its `block_per_segment` option).
    pub fn block_per_segment(&self) -> usize {
        self.option_usize("block_per_segment")
            .unwrap_or(DEFAULT_BLOCK_PER_SEGMENT)
            .max(1)
    }

    /// A writer for new blocks of this table, sized and compressed as its
    /// options say.
    pub fn writer(&self) -> TableWriter {
        TableWriter::new(
            self.storage.clone(),
            self.meta.schema.clone(),
            self.block_limits(),
            super::writer::table_codec(&self.meta.options, self.storage.is_local()),
        )
    }

    /// Writes segment objects for `blocks`, `block_per_segment` blocks each.
    async fn write_segments(&self, blocks: Vec<BlockMeta>) -> Result<Vec<SegmentRef>> {
        let per_segment = self.block_per_segment();
        let mut segments = Vec::new();
        for chunk in blocks.chunks(per_segment) {
            let segment = Segment::new(chunk.to_vec());
            let location = paths::new_segment();
            self.storage
                .write(&location, Bytes::from(serde_json::to_vec(&segment)?))
                .await?;
            segments.push(SegmentRef {
                location,
                summary: segment.summary.clone(),
            });
        }
        Ok(segments)
    }

    /// Writes segments for `blocks` and commits them on top of whatever the
    /// table holds now (an append never conflicts: it rebases onto concurrent
    /// commits). Returns the new snapshot.
    pub async fn commit_append(&self, blocks: Vec<BlockMeta>) -> Result<Arc<Snapshot>> {
        let new_segments = self.write_segments(blocks).await?;
        self.commit(|base| {
            let mut segments = new_segments.clone();
            if let Some(base) = base {
                segments.extend(base.segments.iter().cloned());
            }
            Ok(segments)
        })
        .await
    }

    /// Writes segment objects for `blocks` (for rewrites: mutations, compaction).
    pub async fn segments_for(&self, blocks: Vec<BlockMeta>) -> Result<Vec<SegmentRef>> {
        self.write_segments(blocks).await
    }

    /// Commits `segments` as the table's new contents, given that they were
    /// derived from the snapshot `read`. Appends committed since are kept
    /// (they are the segments in front of `read`'s); any other change is a
    /// conflict (40001): a rewrite never loses a concurrent write.
    pub async fn commit_rewrite(
        &self,
        read: &Snapshot,
        segments: Vec<SegmentRef>,
    ) -> Result<Arc<Snapshot>> {
        self.commit(|base| {
            let Some(base) = base else {
                return Err(self.conflict());
            };
            if base.snapshot_id == read.snapshot_id {
                return Ok(segments.clone());
            }
            let n = read.segments.len();
            if base.segments.len() >= n
                && base.segments[base.segments.len() - n..] == read.segments[..]
            {
                let mut merged = base.segments[..base.segments.len() - n].to_vec();
                merged.extend(segments.iter().cloned());
                return Ok(merged);
            }
            Err(self.conflict())
        })
        .await
    }

    fn conflict(&self) -> Error {
        Error::new(
            ErrorKind::SerializationFailure,
            format!(
                "could not serialize access due to concurrent update of table {}.{}",
                self.db_name, self.meta.name
            ),
        )
        .with_hint("Another statement changed the rows this one read; retry it.")
    }

    /// The first snapshot of a table not yet in the catalog (CREATE TABLE AS):
    /// writes it and returns its location, for the commit that creates the table.
    pub async fn write_initial_snapshot(&self, blocks: Vec<BlockMeta>) -> Result<Option<String>> {
        if blocks.is_empty() {
            return Ok(None);
        }
        let segments = self.write_segments(blocks).await?;
        let snapshot = Snapshot::next(None, self.meta.schema.clone(), segments);
        let location = paths::snapshot(&snapshot.snapshot_id);
        self.storage
            .write(&location, Bytes::from(serde_json::to_vec(&snapshot)?))
            .await?;
        Ok(Some(location))
    }

    /// Commits a new snapshot whose segments `make_segments` derives from the
    /// table's newest snapshot. Runs again on a lost race, with the new base.
    pub async fn commit(
        &self,
        mut make_segments: impl FnMut(Option<&Snapshot>) -> Result<Vec<SegmentRef>>,
    ) -> Result<Arc<Snapshot>> {
        if let Some(txn) = &self.txn {
            return self.stage(txn, make_segments).await;
        }
        let catalog = self.engine.catalog();
        let _guard = catalog.lock().await;
        for _ in 0..1000 {
            let state = catalog.current().await?;
            let Some(current) = state.table_by_id(self.meta.id).filter(|t| !t.is_dropped()) else {
                return Err(Error::new(
                    ErrorKind::UndefinedTable,
                    format!(
                        "table {}.{} was dropped while the statement ran",
                        self.db_name, self.meta.name
                    ),
                ));
            };
            if current.schema != self.meta.schema {
                return Err(Error::new(
                    ErrorKind::SerializationFailure,
                    format!(
                        "table {}.{} was altered while the statement ran; retry it",
                        self.db_name, self.meta.name
                    ),
                ));
            }
            let base = match &current.snapshot_location {
                Some(loc) => Some((self.read_snapshot(loc).await?, loc.clone())),
                None => None,
            };
            let segments = make_segments(base.as_ref().map(|(s, _)| s.as_ref()))?;
            let snapshot = Snapshot::next(
                base.as_ref().map(|(s, l)| (s.as_ref(), l.as_str())),
                current.schema.clone(),
                segments,
            );
            let location = paths::snapshot(&snapshot.snapshot_id);
            self.storage
                .write(&location, Bytes::from(serde_json::to_vec(&snapshot)?))
                .await?;
            let mut next = (*state).clone();
            if let Some(t) = next.table_by_id_mut(self.meta.id) {
                t.snapshot_location = Some(location.clone());
                t.updated_on = Utc::now();
            }
            if catalog.try_commit(&state, next).await?.is_some() {
                self.write_hint(&location).await;
                return Ok(Arc::new(snapshot));
            }
            // Lost the race: this snapshot object is unreferenced; drop it and rebase.
            let _ = self.storage.delete(&location).await;
        }
        Err(Error::new(
            ErrorKind::SerializationFailure,
            format!(
                "could not commit to table {}.{}: too many concurrent writers",
                self.db_name, self.meta.name
            ),
        ))
    }
}

impl FuseTable {
    /// Points `last_snapshot_location_hint` at a committed snapshot. Readers of
    /// the bucket alone (and fuse_amend) use it; failing to write it is harmless.
    pub(super) async fn write_hint(&self, location: &str) {
        if let Err(e) = self
            .storage
            .write(paths::LAST_SNAPSHOT_HINT, Bytes::from(location.to_string()))
            .await
        {
            tracing::debug!(error = %e, "writing the last snapshot hint");
        }
    }

    /// Inside a transaction: writes the next snapshot on top of the table's
    /// working snapshot and records it, without touching the catalog.
    async fn stage(
        &self,
        txn: &Transaction,
        mut make_segments: impl FnMut(Option<&Snapshot>) -> Result<Vec<SegmentRef>>,
    ) -> Result<Arc<Snapshot>> {
        let base_location = txn
            .working_snapshot(self.meta.id)
            .or_else(|| self.meta.snapshot_location.clone());
        let base = match &base_location {
            Some(loc) => Some((self.read_snapshot(loc).await?, loc.clone())),
            None => None,
        };
        let segments = make_segments(base.as_ref().map(|(s, _)| s.as_ref()))?;
        let snapshot = Snapshot::next(
            base.as_ref().map(|(s, l)| (s.as_ref(), l.as_str())),
            self.meta.schema.clone(),
            segments,
        );
        let location = paths::snapshot(&snapshot.snapshot_id);
        self.storage
            .write(&location, Bytes::from(serde_json::to_vec(&snapshot)?))
            .await?;
        txn.record(
            self.meta.id,
            &self.db_name,
            self.meta.snapshot_location.clone(),
            location,
        );
        Ok(Arc::new(snapshot))
    }
}

/// A point of a table's history.
#[derive(Debug, Clone)]
pub enum TravelPoint {
    Snapshot(String),
    /// Microseconds since the epoch: the newest snapshot not after it.
    Timestamp(i64),
}

pub fn snapshot_not_found(table: &FuseTable, id: &str) -> Error {
    Error::new(
        ErrorKind::UndefinedObject,
        format!(
            "snapshot \"{id}\" is not in the history of table {}.{}",
            table.db_name, table.meta.name
        ),
    )
    .with_hint(format!(
        "SELECT snapshot_id FROM fuse_snapshot('{}', '{}') lists the snapshots.",
        table.db_name, table.meta.name
    ))
}

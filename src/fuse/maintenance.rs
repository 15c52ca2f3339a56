//! Table maintenance: VACUUM (remove what no retained snapshot needs) and
//! OPTIMIZE ... COMPACT (merge small blocks and segments).

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;

use super::meta::{BlockMeta, paths};
use super::reader::read_block;
use super::table::FuseTable;
use crate::error::Result;
use crate::storage::ObjectEntry;

/// Unreferenced objects younger than this are never removed, whatever the
/// retention: a running statement may be about to commit them.
pub const VACUUM_MIN_AGE: Duration = Duration::from_secs(5 * 60);

/// Default retention of a table's history (`data_retention_period_in_hours`).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// What OPTIMIZE ... COMPACT changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    pub segments_before: usize,
    pub segments_after: usize,
    pub blocks_before: usize,
    pub blocks_after: usize,
}

impl FuseTable {
    /// The table's retention period (its option, or 24 hours).
    pub fn retention(&self) -> Duration {
        self.meta()
            .options
            .get("data_retention_period_in_hours")
            .and_then(|v| v.parse::<u64>().ok())
            .map(|h| Duration::from_secs(h * 3600))
            .unwrap_or(DEFAULT_RETENTION)
    }

    /// Removes (or, with `dry_run`, lists) the table's objects that no
    /// snapshot within `retain` references. The current snapshot, every
    /// snapshot newer than the retention boundary and the one current at the
    /// boundary are kept with all they reference, so time travel within the
    /// retention period keeps working.
    pub async fn vacuum(&self, retain: Duration, dry_run: bool) -> Result<Vec<ObjectEntry>> {
        let now = Utc::now();
        let boundary = now - chrono::Duration::from_std(retain).unwrap_or(chrono::Duration::MAX);
        // From the newest committed snapshot, whatever this handle was pinned at.
        let history = self.latest().await?.history().await?;
        let mut referenced: HashSet<String> = HashSet::new();
        referenced.insert(paths::LAST_SNAPSHOT_HINT.to_string());
        for (i, (location, snapshot)) in history.iter().enumerate() {
            let kept =
                i == 0 || snapshot.timestamp >= boundary || history[i - 1].1.timestamp >= boundary;
            if !kept {
                break;
            }
            referenced.insert(location.clone());
            for segment_ref in &snapshot.segments {
                if referenced.insert(segment_ref.location.clone()) {
                    let segment = self.read_segment(&segment_ref.location).await?;
                    referenced.extend(segment.blocks.iter().map(|b| b.location.clone()));
                }
            }
        }
        let cutoff =
            boundary.min(now - chrono::Duration::from_std(VACUUM_MIN_AGE).unwrap_or_default());
        let cutoff_ms = cutoff.timestamp_millis();
        let garbage: Vec<ObjectEntry> = self
            .storage()
            .list("")
            .await?
            .into_iter()
            .filter(|e| !referenced.contains(&e.path))
            .filter(|e| e.last_modified_ms.is_some_and(|m| m < cutoff_ms))
            .collect();
        if !dry_run && !garbage.is_empty() {
            self.storage()
                .delete_many(garbage.iter().map(|e| e.path.clone()).collect())
                .await?;
            self.evict_cache();
            crate::metrics::metrics().objects_vacuumed(garbage.len() as u64);
            tracing::info!(table = %self.name(), removed = garbage.len(), "vacuum removed objects");
        }
        Ok(garbage)
    }

    /// Merges blocks smaller than half the table's block size into full
    /// blocks (unless `segments_only`), and packs segments full. `limit`
    /// bounds how many segments (newest first) are considered.
    pub async fn compact(
        &self,
        segments_only: bool,
        limit: Option<usize>,
    ) -> Result<CompactReport> {
        let Some(snapshot) = self.snapshot().await? else {
            return Ok(CompactReport::default());
        };
        let considered = limit.unwrap_or(usize::MAX).min(snapshot.segments.len());
        let (head, tail) = snapshot.segments.split_at(considered);
        let mut segments = Vec::with_capacity(head.len());
        for r in head {
            segments.push(self.read_segment(&r.location).await?);
        }
        let blocks: Vec<BlockMeta> = segments
            .iter()
            .flat_map(|s| s.blocks.iter().cloned())
            .collect();
        let mut report = CompactReport {
            segments_before: snapshot.segments.len(),
            blocks_before: snapshot.summary.block_count as usize,
            ..Default::default()
        };
        let small_rows = (self.block_limits().max_rows / 2).max(1) as u64;
        let small: Vec<&BlockMeta> = blocks.iter().filter(|b| b.row_count < small_rows).collect();
        let merge_blocks = !segments_only && small.len() >= 2;
        let per_segment = self.block_per_segment();
        let needed_segments = blocks.len().div_ceil(per_segment);
        if !merge_blocks && needed_segments >= head.len() {
            report.segments_after = report.segments_before;
            report.blocks_after = report.blocks_before;
            return Ok(report);
        }
        let mut kept: Vec<BlockMeta> = Vec::new();
        let mut written: Vec<String> = Vec::new();
        if merge_blocks {
            let mut writer = self.writer();
            let result: Result<()> = async {
                for block in &blocks {
                    if block.row_count < small_rows {
                        for batch in read_block(self.storage(), block, &self.meta().schema).await? {
                            writer.write(batch).await?;
                        }
                    } else {
                        kept.push(block.clone());
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = result {
                writer.abort().await;
                return Err(e);
            }
            let merged = writer.finish().await?;
            written.extend(merged.iter().map(|b| b.location.clone()));
            kept.extend(merged);
        } else {
            kept = blocks;
        }
        let outcome = async {
            let mut new_segments = self.segments_for(kept).await?;
            new_segments.extend(tail.iter().cloned());
            self.commit_rewrite(&snapshot, new_segments).await
        }
        .await;
        match outcome {
            Ok(new) => {
                report.segments_after = new.segments.len();
                report.blocks_after = new.summary.block_count as usize;
                Ok(report)
            }
            Err(e) => {
                if !e.commit_may_have_happened() {
                    let _ = self.storage().delete_many(written).await;
                }
                Err(e)
            }
        }
    }
}

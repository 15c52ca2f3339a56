//! The fuse table format's metadata objects: snapshot → segments → blocks.
//!
//! All are immutable JSON objects named by a UUID; a mutation writes new ones
//! and moves the table's pointer in the catalog.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::schema::TableSchema;

pub const FORMAT_VERSION: u32 = 1;

/// A min or max value of a column in a block, in the column's storage domain:
/// integers, dates (days) and timestamps (microseconds) as `Int`, decimals as
/// their unscaled integer (a string, since JSON numbers cannot hold i128).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StatValue {
    #[serde(rename = "b")]
    Bool(bool),
    #[serde(rename = "i")]
    Int(i64),
    #[serde(rename = "f")]
    Float(f64),
    #[serde(rename = "d")]
    Decimal(String),
    #[serde(rename = "s")]
    Str(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// None when unknown (all NULL, NaN present, or a string too long to keep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<StatValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<StatValue>,
    pub null_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Path of the Parquet object relative to the table root (`_b/<uuid>_v1.parquet`).
    pub location: String,
    pub row_count: u64,
    /// In-memory (Arrow) size of the rows.
    pub block_size: u64,
    /// Size of the Parquet object.
    pub file_size: u64,
    /// Per column id.
    pub col_stats: BTreeMap<u32, ColumnStats>,
}

/// Totals kept in segments and snapshots so that COUNT(*) and fuse_* functions
/// need not open blocks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub row_count: u64,
    pub block_count: u64,
    pub uncompressed_byte_size: u64,
    pub compressed_byte_size: u64,
}

impl Summary {
    pub fn of_blocks<'a>(blocks: impl IntoIterator<Item = &'a BlockMeta>) -> Summary {
        let mut s = Summary::default();
        for b in blocks {
            s.row_count += b.row_count;
            s.block_count += 1;
            s.uncompressed_byte_size += b.block_size;
            s.compressed_byte_size += b.file_size;
        }
        s
    }

    pub fn add(&mut self, other: &Summary) {
        self.row_count += other.row_count;
        self.block_count += other.block_count;
        self.uncompressed_byte_size += other.uncompressed_byte_size;
        self.compressed_byte_size += other.compressed_byte_size;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub format_version: u32,
    pub blocks: Vec<BlockMeta>,
    pub summary: Summary,
}

impl Segment {
    pub fn new(blocks: Vec<BlockMeta>) -> Segment {
        Segment {
            format_version: FORMAT_VERSION,
            summary: Summary::of_blocks(&blocks),
            blocks,
        }
    }
}

/// A reference from a snapshot to one of its segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRef {
    /// Path relative to the table root (`_sg/<uuid>_v1.json`).
    pub location: String,
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format_version: u32,
    pub snapshot_id: String,
    pub timestamp: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_snapshot_id: Option<String>,
    /// Location of the previous snapshot, for time travel and vacuum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_snapshot_location: Option<String>,
    pub schema: TableSchema,
    pub summary: Summary,
    pub segments: Vec<SegmentRef>,
}

impl Snapshot {
    /// A new snapshot following `prev` (if any) with the given segments.
    pub fn next(
        prev: Option<(&Snapshot, &str)>,
        schema: TableSchema,
        segments: Vec<SegmentRef>,
    ) -> Snapshot {
        let mut summary = Summary::default();
        for s in &segments {
            summary.add(&s.summary);
        }
        let now = Utc::now();
        // Timestamps strictly increase along a table's history, even if the clock steps back.
        let timestamp = match prev {
            Some((p, _)) if p.timestamp >= now => p.timestamp + chrono::Duration::microseconds(1),
            _ => now,
        };
        Snapshot {
            format_version: FORMAT_VERSION,
            snapshot_id: uuid::Uuid::now_v7().simple().to_string(),
            timestamp,
            prev_snapshot_id: prev.map(|(p, _)| p.snapshot_id.clone()),
            prev_snapshot_location: prev.map(|(_, loc)| loc.to_string()),
            schema,
            summary,
            segments,
        }
    }
}

/// Object names inside a table root.
pub mod paths {
    pub const SNAPSHOT_DIR: &str = "_ss/";
    pub const SEGMENT_DIR: &str = "_sg/";
    pub const BLOCK_DIR: &str = "_b/";
    pub const LAST_SNAPSHOT_HINT: &str = "last_snapshot_location_hint";

    pub fn snapshot(id: &str) -> String {
        format!("{SNAPSHOT_DIR}{id}_v{}.json", super::FORMAT_VERSION)
    }

    pub fn new_segment() -> String {
        format!(
            "{SEGMENT_DIR}{}_v{}.json",
            uuid::Uuid::now_v7().simple(),
            super::FORMAT_VERSION
        )
    }

    pub fn new_block() -> String {
        format!(
            "{BLOCK_DIR}{}_v{}.parquet",
            uuid::Uuid::now_v7().simple(),
            super::FORMAT_VERSION
        )
    }
}

/// Decodes a metadata object read from storage; corrupted bytes are a
/// DataCorrupted error naming the object, never a panic.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], location: &str) -> crate::Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        crate::Error::new(
            crate::ErrorKind::DataCorrupted,
            format!("table object {location} is corrupted: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuse::schema::{ColumnType, TableSchema};

    #[test]
    fn snapshot_json_round_trip() {
        let schema = TableSchema::new(vec![("a".into(), ColumnType::Int64, true, None)]).unwrap();
        let block = BlockMeta {
            location: paths::new_block(),
            row_count: 3,
            block_size: 24,
            file_size: 500,
            col_stats: BTreeMap::from([(
                0,
                ColumnStats {
                    min: Some(StatValue::Int(1)),
                    max: Some(StatValue::Int(3)),
                    null_count: 0,
                },
            )]),
        };
        let segment = Segment::new(vec![block]);
        let seg_json = serde_json::to_string(&segment).unwrap();
        assert_eq!(serde_json::from_str::<Segment>(&seg_json).unwrap(), segment);
        let first = Snapshot::next(
            None,
            schema.clone(),
            vec![SegmentRef {
                location: paths::new_segment(),
                summary: segment.summary.clone(),
            }],
        );
        assert_eq!(first.summary.row_count, 3);
        let loc = paths::snapshot(&first.snapshot_id);
        let second = Snapshot::next(Some((&first, &loc)), schema, first.segments.clone());
        assert!(second.timestamp > first.timestamp);
        assert_eq!(second.prev_snapshot_location.as_deref(), Some(loc.as_str()));
        let json = serde_json::to_string(&second).unwrap();
        assert_eq!(serde_json::from_str::<Snapshot>(&json).unwrap(), second);
    }
}

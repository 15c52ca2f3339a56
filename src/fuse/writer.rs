//! Writes rows as Parquet blocks of bounded size, streaming: at most one block's
//! current row group is buffered, whatever the size of the insert.

use std::collections::BTreeMap;

use std::collections::HashSet;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::meta::BlockMeta;
use super::schema::TableSchema;
use super::stats::StatsBuilder;
use crate::error::{Error, Result};
use crate::storage::{BlockWriter, Storage};

/// Rows per Parquet row group inside a block.
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows per data page unless the table's `row_per_page` says otherwise. The
/// page index prunes a point lookup to one page per column, which is
/// decompressed whole: at arrow-rs's default (20,000 rows) that decompression
/// was most of a lookup's time. Smaller pages make lookups cheaper still and
/// scans dearer: 2,048 rows cut a lookup's CPU by a quarter and made TPC-H 4 %
/// slower (docs/benchmarks.md, 2026-12-07).
const PAGE_ROWS: usize = 8 * 1024;
/// A column's dictionary page, decompressed whole with the one data page a
/// lookup reads: high-cardinality columns fall back to plain encoding past
/// this (arrow-rs's default is 1 MiB); low-cardinality ones keep theirs.
const DICTIONARY_PAGE_BYTES: usize = 128 * 1024;
/// Rows of a block's first batch sampled to tell a column of (nearly) unique
/// values, for which a dictionary only costs: arrow-rs fills one up to
/// [`DICTIONARY_PAGE_BYTES`] before falling back to plain encoding, and a
/// point lookup then decompresses that dictionary page as well as its data
/// page. Fewer sampled rows than [`MIN_SAMPLE`] decide nothing.
const SAMPLE_ROWS: usize = 8 * 1024;
const MIN_SAMPLE: usize = 1024;

/// The values of the `compression` table option.
pub const CODECS: &[&str] = &["zstd", "lz4", "snappy", "none"];

/// The Parquet codec a `compression` table option names, None for another
/// name. zstd makes the smallest blocks; lz4 (Parquet's LZ4_RAW) decodes
/// several times faster for somewhat larger ones.
pub fn codec(name: &str) -> Option<Compression> {
    match name.to_ascii_lowercase().as_str() {
        "zstd" => Some(Compression::ZSTD(ZstdLevel::default())),
        "lz4" => Some(Compression::LZ4_RAW),
        "snappy" => Some(Compression::SNAPPY),
        "none" => Some(Compression::UNCOMPRESSED),
        _ => None,
    }
}

/// The codec of a table with these options whose blocks are `local` (a
/// directory) or not (an object store), where `compression` names none
/// (CREATE TABLE refuses a name that is not one of [`CODECS`]). Read from a
/// local disk, a block costs its decoding, so lz4: TPC-H ran about 1.2x faster
/// than on zstd for 1.47x the bytes; from an object store it costs its
/// bytes — transfer, and the versions Fail-Safe keeps —, so zstd.
pub fn table_codec(
    options: &std::collections::BTreeMap<String, String>,
    local: bool,
) -> Compression {
    match options.get("compression").and_then(|name| codec(name)) {
        Some(named) => named,
        None if local => Compression::LZ4_RAW,
        None => Compression::ZSTD(ZstdLevel::default()),
    }
}

/// How big blocks may grow, and the pages inside them.
#[derive(Debug, Clone, Copy)]
pub struct BlockLimits {
    pub max_rows: usize,
    /// Uncompressed (Arrow in-memory) bytes.
    pub max_bytes: usize,
    /// Rows per data page (the table's `row_per_page` option).
    pub page_rows: usize,
}

impl Default for BlockLimits {
    fn default() -> Self {
        BlockLimits {
            max_rows: 1_000_000,
            max_bytes: 100 * 1024 * 1024,
            page_rows: PAGE_ROWS,
        }
    }
}

struct OpenBlock {
    location: String,
    writer: AsyncArrowWriter<BlockWriter>,
    rows: usize,
    bytes: usize,
    stats: Vec<StatsBuilder>,
}

/// Turns a stream of batches into blocks. Call [`TableWriter::finish`] to get
/// the block metas, or [`TableWriter::abort`] to remove what was written.
pub struct TableWriter {
    storage: Storage,
    schema: TableSchema,
    arrow_schema: SchemaRef,
    limits: BlockLimits,
    props: WriterProperties,
    current: Option<OpenBlock>,
    done: Vec<BlockMeta>,
}

impl TableWriter {
    pub fn new(
        storage: Storage,
        schema: TableSchema,
        limits: BlockLimits,
        compression: Compression,
    ) -> TableWriter {
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
            .set_data_page_row_count_limit(limits.page_rows)
            .build();
        TableWriter {
            arrow_schema: schema.to_arrow(),
            storage,
            schema,
            limits,
            props,
            current: None,
            done: Vec::new(),
        }
    }

    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.arrow_schema
    }

    /// Adds rows; `batch` must have the table's Arrow schema (types and order).
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.current.is_none() {
                let props =
                    block_properties(&self.props, &batch.slice(offset, batch.num_rows() - offset));
                let block =
                    open_block(&self.storage, &self.arrow_schema, props, &self.schema).await?;
                self.current = Some(block);
            }
            let Some(block) = self.current.as_mut() else {
                return Err(Error::internal("no open block"));
            };
            let room = self.limits.max_rows.saturating_sub(block.rows).max(1);
            let take = room.min(batch.num_rows() - offset);
            let slice = batch.slice(offset, take);
            let slice = RecordBatch::try_new(self.arrow_schema.clone(), slice.columns().to_vec())?;
            for (stats, column) in block.stats.iter_mut().zip(slice.columns()) {
                stats.update(column);
            }
            block.rows += take;
            block.bytes += slice.get_array_memory_size();
            block.writer.write(&slice).await?;
            offset += take;
            if block.rows >= self.limits.max_rows || block.bytes >= self.limits.max_bytes {
                self.close_block().await?;
            }
        }
        Ok(())
    }

    /// Closes the last block and returns every block written.
    pub async fn finish(mut self) -> Result<Vec<BlockMeta>> {
        self.close_block().await?;
        Ok(self.done)
    }

    /// Removes every block this writer created (best effort: they are
    /// unreferenced either way, and VACUUM would remove them later).
    pub async fn abort(mut self) {
        if let Some(block) = self.current.take() {
            block.writer.into_inner().abort().await;
            let _ = self.storage.delete(&block.location).await;
        }
        let paths = self.done.iter().map(|b| b.location.clone()).collect();
        if let Err(e) = self.storage.delete_many(paths).await {
            tracing::debug!(error = %e, "removing blocks of a failed write");
        }
    }

    async fn close_block(&mut self) -> Result<()> {
        let Some(block) = self.current.take() else {
            return Ok(());
        };
        if block.rows == 0 {
            return Ok(());
        }
        let mut writer = block.writer;
        if let Err(e) = writer.finish().await {
            writer.into_inner().abort().await;
            return Err(e.into());
        }
        // After finish, everything (footer included) has been written.
        let file_size = writer.bytes_written() as u64;
        let col_stats: BTreeMap<u32, _> = self
            .schema
            .columns
            .iter()
            .zip(block.stats)
            .map(|(c, s)| (c.id, s.finish()))
            .collect();
        self.done.push(BlockMeta {
            location: block.location,
            row_count: block.rows as u64,
            block_size: block.bytes as u64,
            file_size,
            col_stats,
        });
        Ok(())
    }
}

// A free function: a `&TableWriter` held across an await would make insert
// futures non-Send (the Parquet writer is not Sync).
async fn open_block(
    storage: &Storage,
    arrow_schema: &SchemaRef,
    props: WriterProperties,
    schema: &TableSchema,
) -> Result<OpenBlock> {
    let location = super::meta::paths::new_block();
    let sink = storage.block_writer(&location).await?;
    let writer = AsyncArrowWriter::try_new(sink, arrow_schema.clone(), Some(props))?;
    Ok(OpenBlock {
        location,
        writer,
        rows: 0,
        bytes: 0,
        stats: schema
            .columns
            .iter()
            .map(|c| StatsBuilder::new(c.ty.clone()))
            .collect(),
    })
}

/// The block's writer properties: `base`, with dictionary encoding off for the
/// top-level columns whose sampled values are mostly distinct.
fn block_properties(base: &WriterProperties, first: &RecordBatch) -> WriterProperties {
    let sample = first.num_rows().min(SAMPLE_ROWS);
    if sample < MIN_SAMPLE {
        return base.clone();
    }
    let mut builder = base.clone().into_builder();
    for (field, column) in first.schema().fields().iter().zip(first.columns()) {
        if field.data_type().is_nested() || !mostly_distinct(&column.slice(0, sample)) {
            continue;
        }
        builder =
            builder.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
    }
    builder.build()
}

/// Whether more than half of `column`'s values differ from each other.
fn mostly_distinct(column: &ArrayRef) -> bool {
    let Ok(converter) = RowConverter::new(vec![SortField::new(column.data_type().clone())]) else {
        return false;
    };
    let Ok(rows) = converter.convert_columns(std::slice::from_ref(column)) else {
        return false;
    };
    let distinct: HashSet<&[u8]> = rows.iter().map(|r| r.data()).collect();
    distinct.len() * 2 > column.len()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(rows: usize) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("status", DataType::Utf8, false),
        ]);
        let ids = Int64Array::from_iter_values(0..rows as i64);
        let status = StringArray::from_iter_values((0..rows).map(|i| ["F", "O", "P"][i % 3]));
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(ids), Arc::new(status)])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_default_codec_depends_on_where_blocks_live_and_a_named_one_wins() {
        let none = std::collections::BTreeMap::new();
        assert_eq!(table_codec(&none, true), Compression::LZ4_RAW);
        assert!(matches!(table_codec(&none, false), Compression::ZSTD(_)));
        let zstd = [("compression".to_string(), "ZSTD".to_string())].into();
        assert!(matches!(table_codec(&zstd, true), Compression::ZSTD(_)));
        let lz4 = [("compression".to_string(), "lz4".to_string())].into();
        assert_eq!(table_codec(&lz4, false), Compression::LZ4_RAW);
    }

    #[test]
    fn unique_columns_are_written_without_a_dictionary() {
        let base = WriterProperties::builder().build();
        let props = block_properties(&base, &batch(4096));
        assert!(!props.dictionary_enabled(&ColumnPath::from("id")));
        assert!(props.dictionary_enabled(&ColumnPath::from("status")));
        // Too few rows to tell: the default stays.
        let props = block_properties(&base, &batch(100));
        assert!(props.dictionary_enabled(&ColumnPath::from("id")));
    }
}

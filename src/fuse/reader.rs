//! Reading whole blocks back (mutations and compaction rewrite them; queries
//! read through DataFusion's Parquet scan instead).

use arrow::array::RecordBatch;
use futures::TryStreamExt;
use parquet::arrow::ParquetRecordBatchStreamBuilder;

use super::meta::BlockMeta;
use crate::error::Result;
use crate::storage::Storage;

/// Every row of a block.
pub async fn read_block(storage: &Storage, block: &BlockMeta) -> Result<Vec<RecordBatch>> {
    let reader = storage.block_reader(&block.location, block.file_size);
    let stream = ParquetRecordBatchStreamBuilder::new(reader)
        .await?
        .build()?;
    Ok(stream.try_collect().await?)
}

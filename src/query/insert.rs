//! INSERT into a fuse table: a DataFusion `DataSink` that streams the rows into
//! blocks, checks the table's constraints, and commits one new snapshot. A
//! failure anywhere removes the blocks written and commits nothing.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, ErrorKind, Result};
use crate::fuse::FuseTable;
use crate::fuse::meta::BlockMeta;
use crate::fuse::schema::{ColumnType, TableSchema};

pub struct FuseSink {
    table: FuseTable,
    /// The table's columns as plans produce them (`table::plan_schema`):
    /// `conform` casts them to the stored types and checks NOT NULL.
    input_schema: SchemaRef,
}

impl FuseSink {
    pub fn new(table: FuseTable) -> FuseSink {
        let input_schema = super::table::plan_schema(&table.meta().schema);
        FuseSink {
            table,
            input_schema,
        }
    }
}

impl fmt::Debug for FuseSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FuseSink({}.{})",
            self.table.db_name(),
            self.table.name()
        )
    }
}

impl DisplayAs for FuseSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "FuseSink: table={}.{}",
            self.table.db_name(),
            self.table.name()
        )
    }
}

#[async_trait]
impl DataSink for FuseSink {
    fn schema(&self) -> &SchemaRef {
        &self.input_schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        context: &Arc<TaskContext>,
    ) -> DFResult<u64> {
        // The input stops at a cancel or timeout; the commit below does not.
        let deadline = super::interrupt::deadline_of(context.session_config());
        let data = deadline
            .guard(Box::pin(data.map_err(super::error::from_datafusion)))
            .map_err(|e| DataFusionError::External(Box::new(e)));
        let (blocks, rows) = write_blocks(&self.table, data)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        commit_blocks(&self.table, blocks)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(rows)
    }
}

/// Writes every batch of `data` into new blocks of `table`, uncommitted.
/// On failure the blocks written so far are removed.
pub async fn write_blocks(
    table: &FuseTable,
    mut data: impl futures::Stream<Item = DFResult<RecordBatch>> + Unpin,
) -> Result<(Vec<BlockMeta>, u64)> {
    let mut writer = table.writer();
    let target = writer.arrow_schema().clone();
    let schema = table.meta().schema.clone();
    let mut rows = 0u64;
    let result: Result<()> = async {
        while let Some(batch) = data.next().await {
            let batch = batch.map_err(super::error::from_datafusion)?;
            let batch = conform(&batch, &target, &schema, table.name())?;
            rows += batch.num_rows() as u64;
            writer.write(batch).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        writer.abort().await;
        return Err(e);
    }
    Ok((writer.finish().await?, rows))
}

/// Commits blocks as an append; removes them if the commit surely failed.
pub async fn commit_blocks(table: &FuseTable, blocks: Vec<BlockMeta>) -> Result<()> {
    if blocks.is_empty() {
        return Ok(());
    }
    let paths: Vec<String> = blocks.iter().map(|b| b.location.clone()).collect();
    if let Err(e) = table.commit_append(blocks).await {
        if !e.commit_may_have_happened() {
            let _ = table.storage().delete_many(paths).await;
        }
        return Err(e);
    }
    Ok(())
}

/// Casts `batch` to the table's Arrow types and checks NOT NULL and VARCHAR(n).
pub(super) fn conform(
    batch: &RecordBatch,
    target: &SchemaRef,
    schema: &TableSchema,
    table: &str,
) -> Result<RecordBatch> {
    if batch.num_columns() != target.fields().len() {
        return Err(Error::internal(format!(
            "insert produced {} columns for a table of {}",
            batch.num_columns(),
            target.fields().len()
        )));
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for ((array, field), col) in batch
        .columns()
        .iter()
        .zip(target.fields())
        .zip(&schema.columns)
    {
        let array = if array.data_type() == field.data_type() {
            array.clone()
        } else {
            arrow::compute::cast(array, field.data_type())?
        };
        if !col.nullable && array.logical_null_count() > 0 {
            return Err(Error::new(
                ErrorKind::NotNullViolation,
                format!(
                    "null value in column \"{}\" of relation \"{table}\" violates not-null constraint",
                    col.name
                ),
            ));
        }
        if let ColumnType::Varchar { length: Some(max) } = col.ty
            && field.data_type() == &DataType::Utf8
            && let Some(strings) = array.as_string_opt::<i32>()
            && strings
                .iter()
                .flatten()
                .any(|s| s.chars().count() > max as usize)
        {
            return Err(Error::new(
                ErrorKind::StringDataRightTruncation,
                format!("value too long for type character varying({max})"),
            ));
        }
        columns.push(array);
    }
    Ok(RecordBatch::try_new(target.clone(), columns)?)
}

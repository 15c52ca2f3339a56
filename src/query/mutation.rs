//! DELETE, UPDATE and TRUNCATE: copy-on-write at block granularity.
//!
//! Blocks whose statistics prove the WHERE clause cannot match are reused as
//! they are; the others are read, and their surviving (DELETE) or updated
//! (UPDATE) rows written into new blocks. Segments holding no touched block
//! are reused too. The new snapshot commits atomically; if other writers only
//! appended meanwhile, the mutation rebases onto them, otherwise it fails with
//! 40001 and changes nothing.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{filter_record_batch, not, prep_null_mask_filter};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};

use super::insert::conform;
use super::prune::prune_blocks;
use crate::error::{Error, ErrorKind, Result};
use crate::fuse::FuseTable;
use crate::fuse::meta::{BlockMeta, SegmentRef};
use crate::fuse::reader::read_block;

/// What a mutation does to the rows its predicate selects.
pub enum Mutation {
    Delete,
    /// New values, by column position.
    Update(Vec<(usize, Arc<dyn PhysicalExpr>)>),
    Truncate,
}

pub struct MutationSink {
    table: FuseTable,
    /// The WHERE clause over the table's columns; None: every row.
    predicate: Option<Arc<dyn PhysicalExpr>>,
    mutation: Mutation,
    /// Empty: the sink's input is an empty plan; it reads the table itself.
    input_schema: SchemaRef,
}

impl MutationSink {
    pub fn new(
        table: FuseTable,
        predicate: Option<Arc<dyn PhysicalExpr>>,
        mutation: Mutation,
    ) -> MutationSink {
        MutationSink {
            table,
            predicate,
            mutation,
            input_schema: Arc::new(arrow::datatypes::Schema::empty()),
        }
    }

    fn kind(&self) -> &'static str {
        match self.mutation {
            Mutation::Delete => "Delete",
            Mutation::Update(_) => "Update",
            Mutation::Truncate => "Truncate",
        }
    }
}

impl fmt::Debug for MutationSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Fuse{}({}.{})",
            self.kind(),
            self.table.db_name(),
            self.table.name()
        )
    }
}

impl DisplayAs for MutationSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "Fuse{}: table={}.{}",
            self.kind(),
            self.table.db_name(),
            self.table.name()
        )?;
        if let Some(p) = &self.predicate {
            write!(f, ", predicate={p}")?;
        }
        Ok(())
    }
}

#[async_trait]
impl DataSink for MutationSink {
    fn schema(&self) -> &SchemaRef {
        &self.input_schema
    }

    async fn write_all(
        &self,
        _data: SendableRecordBatchStream,
        ctx: &Arc<TaskContext>,
    ) -> DFResult<u64> {
        let deadline = super::interrupt::deadline_of(ctx.session_config());
        mutate(
            &self.table,
            self.predicate.as_ref(),
            &self.mutation,
            &deadline,
        )
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))
    }
}

/// Runs the mutation and commits it; returns the number of rows affected.
async fn mutate(
    table: &FuseTable,
    predicate: Option<&Arc<dyn PhysicalExpr>>,
    mutation: &Mutation,
    deadline: &super::Deadline,
) -> Result<u64> {
    let Some(snapshot) = table.snapshot().await? else {
        return Ok(0);
    };
    let schema = table.meta().schema.clone();
    let arrow_schema = schema.to_arrow();
    // The predicate and assignments were planned over the plan's types, all
    // nullable; `conform` casts back to the stored types and checks NOT NULL.
    let plan_schema = super::table::plan_schema(&schema);
    if matches!(mutation, Mutation::Truncate)
        || (predicate.is_none() && matches!(mutation, Mutation::Delete))
    {
        let rows = snapshot.summary.row_count;
        table.commit_rewrite(&snapshot, Vec::new()).await?;
        return Ok(rows);
    }
    let segments = table.segments(&snapshot).await?;
    let mut new_segments: Vec<SegmentRef> = Vec::new();
    let mut kept_blocks: Vec<BlockMeta> = Vec::new();
    let mut writer = table.writer();
    let mut affected = 0u64;
    let mut written: Vec<String> = Vec::new();
    let result: Result<()> = async {
        for (seg_ref, segment) in snapshot.segments.iter().zip(&segments) {
            let blocks: Vec<&BlockMeta> = segment.blocks.iter().collect();
            let candidates = match predicate {
                Some(p) => prune_blocks(p, &plan_schema, &schema, &blocks)?,
                None => vec![true; blocks.len()],
            };
            if !candidates.iter().any(|c| *c) {
                new_segments.push(seg_ref.clone());
                continue;
            }
            for (block, candidate) in blocks.into_iter().zip(candidates) {
                if !candidate {
                    kept_blocks.push(block.clone());
                    continue;
                }
                // Cancel and timeout act between blocks, never in the commit.
                deadline.check()?;
                let batches = read_block(table.storage(), block, &schema).await?;
                let mut changed = 0u64;
                let mut out = Vec::with_capacity(batches.len());
                for batch in batches {
                    let (batch, n) = apply(&batch, predicate, mutation, &plan_schema)?;
                    changed += n;
                    out.push(batch);
                }
                if changed == 0 {
                    kept_blocks.push(block.clone());
                    continue;
                }
                affected += changed;
                for batch in out {
                    if batch.num_rows() > 0 {
                        let batch = conform(&batch, &arrow_schema, &schema, table.name())?;
                        writer.write(batch).await?;
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        writer.abort().await;
        return Err(e);
    }
    if affected == 0 {
        let paths: Vec<String> = writer
            .finish()
            .await?
            .into_iter()
            .map(|b| b.location)
            .collect();
        let _ = table.storage().delete_many(paths).await;
        return Ok(0);
    }
    let rewritten = writer.finish().await?;
    written.extend(rewritten.iter().map(|b| b.location.clone()));
    kept_blocks.extend(rewritten);
    let outcome = async {
        let mut segments_out = table.segments_for(kept_blocks).await?;
        segments_out.append(&mut new_segments);
        table
            .commit_rewrite(&snapshot, segments_out)
            .await
            .map(|_| ())
    }
    .await;
    if let Err(e) = outcome {
        if !e.commit_may_have_happened() {
            let _ = table.storage().delete_many(written).await;
        }
        return Err(e);
    }
    Ok(affected)
}

/// Applies the mutation to one batch: the batch to keep, and how many rows changed.
fn apply(
    batch: &RecordBatch,
    predicate: Option<&Arc<dyn PhysicalExpr>>,
    mutation: &Mutation,
    schema: &SchemaRef,
) -> Result<(RecordBatch, u64)> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(
            |(array, field)| match array.data_type() == field.data_type() {
                true => Ok(array.clone()),
                false => arrow::compute::cast(array, field.data_type()),
            },
        )
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let selected: BooleanArray = match predicate {
        None => BooleanArray::from(vec![true; batch.num_rows()]),
        Some(p) => {
            let value = p.evaluate(&batch).map_err(super::error::from_datafusion)?;
            let array = value
                .into_array(batch.num_rows())
                .map_err(super::error::from_datafusion)?;
            let mask = array
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::DatatypeMismatch,
                        "argument of WHERE must be type boolean",
                    )
                })?;
            // NULL is not true: such rows are not selected.
            if mask.null_count() > 0 {
                prep_null_mask_filter(mask)
            } else {
                mask.clone()
            }
        }
    };
    let count = selected.true_count() as u64;
    if count == 0 {
        return Ok((batch, 0));
    }
    match mutation {
        Mutation::Delete | Mutation::Truncate => {
            Ok((filter_record_batch(&batch, &not(&selected)?)?, count))
        }
        Mutation::Update(assignments) => {
            let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
            for (index, expr) in assignments {
                let value = expr
                    .evaluate(&batch)
                    .map_err(super::error::from_datafusion)?;
                let mut new = value
                    .into_array(batch.num_rows())
                    .map_err(super::error::from_datafusion)?;
                let target = schema.field(*index).data_type();
                if new.data_type() != target {
                    new = arrow::compute::cast(&new, target)?;
                }
                columns[*index] = zip(&selected, &new, &batch.columns()[*index])?;
            }
            Ok((RecordBatch::try_new(schema.clone(), columns)?, count))
        }
    }
}

//! Reading whole blocks back (mutations and compaction rewrite them; queries
//! read through DataFusion's Parquet scan instead).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use futures::TryStreamExt;
use parquet::arrow::ParquetRecordBatchStreamBuilder;

use super::meta::BlockMeta;
use super::schema::{FIELD_ID_KEY, TableSchema};
use crate::error::Result;
use crate::storage::Storage;

/// Every row of a block, in the columns of `schema` (matched by column id,
/// so blocks written before an ALTER TABLE read with the current schema).
pub async fn read_block(
    storage: &Storage,
    block: &BlockMeta,
    schema: &TableSchema,
) -> Result<Vec<RecordBatch>> {
    let reader = storage.block_reader(&block.location, block.file_size);
    let stream = ParquetRecordBatchStreamBuilder::new(reader)
        .await?
        .build()?;
    let batches: Vec<RecordBatch> = stream.try_collect().await?;
    batches.iter().map(|b| conform_to(b, schema)).collect()
}

fn conform_to(batch: &RecordBatch, schema: &TableSchema) -> Result<RecordBatch> {
    let by_id: HashMap<u32, usize> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            f.metadata()
                .get(FIELD_ID_KEY)
                .and_then(|v| v.parse().ok())
                .map(|id| (id, i))
        })
        .collect();
    let target = schema.to_arrow();
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.columns.len());
    for (col, field) in schema.columns.iter().zip(target.fields()) {
        let array = match by_id.get(&col.id) {
            Some(i) => batch.column(*i).clone(),
            None => match &col.missing {
                Some(text) => {
                    let texts: ArrayRef = Arc::new(StringArray::from(vec![text.as_str(); n]));
                    arrow::compute::cast(&texts, field.data_type())?
                }
                None => new_null_array(field.data_type(), n),
            },
        };
        let array = if array.data_type() == field.data_type() {
            array
        } else {
            arrow::compute::cast(&array, field.data_type())?
        };
        columns.push(array);
    }
    // Nullability is checked by whoever writes the rows back.
    let loose: Vec<arrow::datatypes::Field> = target
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(arrow::datatypes::Schema::new(loose)),
        columns,
    )?)
}

//! PostgreSQL's text output for the types where pgwire's differs
//! (timestamps, floats, times, intervals: `query::pg_text` writes them). Text-format columns
//! of these types are rendered here, before arrow-pg encodes the batch;
//! binary-format columns are untouched.

use arrow::array::{ArrayRef, RecordBatch};
use pgwire::api::results::{FieldFormat, FieldInfo};

use crate::query::pg_text::{output, renders};

/// Renders the text-format columns whose PostgreSQL text differs from pgwire's.
pub fn render(batch: RecordBatch, fields: &[FieldInfo]) -> RecordBatch {
    let needs = batch
        .columns()
        .iter()
        .zip(fields)
        .any(|(c, f)| f.format() == FieldFormat::Text && renders(c.data_type()));
    if !needs {
        return batch;
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(fields)
        .map(|(c, f)| {
            if f.format() == FieldFormat::Text && renders(c.data_type()) {
                output(c)
            } else {
                c.clone()
            }
        })
        .collect();
    // The batch's own schema is not used by the encoder (fields are), so a
    // schema rebuilt from the arrays is enough.
    RecordBatch::try_from_iter(
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .zip(columns),
    )
    .unwrap_or(batch)
}

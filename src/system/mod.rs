//! System procedures (`CALL system$...`), Databend's maintenance entry points.

pub mod amend;

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, ErrorKind, Result};
use crate::fuse::FuseEngine;

/// The result columns of a procedure, or None if there is no such procedure.
pub fn result_schema(procedure: &str) -> Option<SchemaRef> {
    match procedure.to_ascii_lowercase().as_str() {
        "system$fuse_amend" => Some(Arc::new(Schema::new(vec![
            Field::new("result", DataType::Utf8, false),
            Field::new("checked", DataType::UInt64, false),
            Field::new("restored", DataType::UInt64, false),
        ]))),
        _ => None,
    }
}

/// Runs `CALL <procedure>(<args>)`; returns its one-row result.
pub async fn call(
    engine: &Arc<FuseEngine>,
    procedure: &str,
    args: &[String],
) -> Result<RecordBatch> {
    let Some(schema) = result_schema(procedure) else {
        return Err(Error::new(
            ErrorKind::UndefinedFunction,
            format!("procedure {procedure} does not exist"),
        )
        .with_hint("Available: system$fuse_amend(database, table)."));
    };
    let (db, table) = amend::args(args)?;
    let report = amend::fuse_amend(engine, db, table).await?;
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["Ok"])),
            Arc::new(UInt64Array::from(vec![report.checked])),
            Arc::new(UInt64Array::from(vec![report.restored])),
        ],
    )?)
}

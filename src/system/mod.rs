//! System procedures (`CALL system$...`), Databend's maintenance entry points.

pub mod amend;
pub mod check;

use std::sync::Arc;

use arrow::array::{BooleanArray, RecordBatch, StringArray, UInt64Array};
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
        "system$fuse_check" => Some(Arc::new(Schema::new(vec![
            Field::new("object", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("problem", DataType::Utf8, false),
            Field::new("restorable", DataType::Boolean, false),
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
        .with_hint(
            "Available: system$fuse_amend(database, table), system$fuse_check(database, table).",
        ));
    };
    let (db, table) = amend::args(procedure, args)?;
    if procedure.eq_ignore_ascii_case("system$fuse_check") {
        let findings = check::fuse_check(engine, db, table).await?.findings;
        return Ok(RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(
                    findings.iter().map(|f| f.object.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    findings.iter().map(|f| f.kind),
                )),
                Arc::new(StringArray::from_iter_values(
                    findings.iter().map(|f| f.problem.as_str()),
                )),
                Arc::new(BooleanArray::from_iter(
                    findings.iter().map(|f| Some(f.restorable)),
                )),
            ],
        )?);
    }
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

//! Running the fuse maintenance statements: FLASHBACK, UNDROP, SHOW DROP
//! TABLES, VACUUM, OPTIMIZE.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::Output;
use crate::error::Result;
use crate::fuse::table::TravelPoint;
use crate::fuse::{FuseEngine, FuseTable};
use crate::ops;
use crate::query::QueryContext;
use crate::sql::{OptimizeAction, TravelSpec};

fn rows(fields: Vec<Field>, columns: Vec<ArrayRef>) -> Result<Output> {
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(Output::Rows {
        schema,
        stream: Box::pin(futures::stream::iter(vec![Ok(batch)])),
    })
}

pub fn table(fuse: &Arc<FuseEngine>, database: &str, name: &str) -> Result<FuseTable> {
    let state = fuse.catalog().cached();
    let meta = state.require_table(database, name)?;
    fuse.table(database, meta)
}

pub async fn flashback(
    query: &QueryContext,
    table: &FuseTable,
    spec: TravelSpec,
) -> Result<Output> {
    let point = match spec {
        TravelSpec::Snapshot(id) => TravelPoint::Snapshot(id),
        TravelSpec::Timestamp(expr) => TravelPoint::Timestamp(query.eval_timestamp(*expr).await?),
    };
    table.flashback(&point).await?;
    Ok(Output::Command("FLASHBACK".into()))
}

pub fn show_drop_tables(fuse: &FuseEngine, database: Option<&str>) -> Result<Output> {
    let dropped = ops::dropped_tables(fuse, database)?;
    let ts = |v: Vec<i64>| -> ArrayRef { Arc::new(TimestampMicrosecondArray::from(v)) };
    rows(
        vec![
            Field::new("tables", DataType::Utf8, false),
            Field::new("database", DataType::Utf8, false),
            Field::new(
                "create_time",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new(
                "drop_time",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
        ],
        vec![
            Arc::new(StringArray::from_iter_values(
                dropped.iter().map(|d| d.name.clone()),
            )),
            Arc::new(StringArray::from_iter_values(
                dropped.iter().map(|d| d.database.clone()),
            )),
            ts(dropped
                .iter()
                .map(|d| d.created_on.timestamp_micros())
                .collect()),
            ts(dropped
                .iter()
                .map(|d| d.dropped_on.timestamp_micros())
                .collect()),
        ],
    )
}

pub async fn vacuum(table: &FuseTable, retain_hours: Option<u64>, dry_run: bool) -> Result<Output> {
    let retain = retain_hours
        .map(|h| Duration::from_secs(h * 3600))
        .unwrap_or_else(|| table.retention());
    let removed = table.vacuum(retain, dry_run).await?;
    let root = table.meta().root_dir();
    if dry_run {
        return rows(
            vec![
                Field::new("file_path", DataType::Utf8, false),
                Field::new("file_size", DataType::UInt64, false),
            ],
            vec![
                Arc::new(StringArray::from_iter_values(
                    removed.iter().map(|e| format!("{root}{}", e.path)),
                )),
                Arc::new(UInt64Array::from_iter_values(
                    removed.iter().map(|e| e.size),
                )),
            ],
        );
    }
    rows(
        vec![
            Field::new("files_removed", DataType::UInt64, false),
            Field::new("bytes_removed", DataType::UInt64, false),
        ],
        vec![
            Arc::new(UInt64Array::from(vec![removed.len() as u64])),
            Arc::new(UInt64Array::from(vec![
                removed.iter().map(|e| e.size).sum::<u64>(),
            ])),
        ],
    )
}

pub async fn vacuum_drop_tables(
    fuse: &FuseEngine,
    database: Option<&str>,
    retain_hours: Option<u64>,
    dry_run: bool,
) -> Result<Output> {
    let retain = Duration::from_secs(retain_hours.unwrap_or(24) * 3600);
    let purged = ops::vacuum_dropped(fuse, database, retain, dry_run).await?;
    rows(
        vec![
            Field::new("table", DataType::Utf8, false),
            Field::new("database", DataType::Utf8, false),
            Field::new("objects", DataType::UInt64, false),
        ],
        vec![
            Arc::new(StringArray::from_iter_values(
                purged.iter().map(|(d, _)| d.name.clone()),
            )),
            Arc::new(StringArray::from_iter_values(
                purged.iter().map(|(d, _)| d.database.clone()),
            )),
            Arc::new(UInt64Array::from_iter_values(
                purged.iter().map(|(_, n)| *n as u64),
            )),
        ],
    )
}

pub async fn optimize(table: &FuseTable, action: OptimizeAction) -> Result<Output> {
    match action {
        OptimizeAction::Compact {
            segments_only,
            limit,
        } => {
            let report = table
                .compact(segments_only, limit.map(|l| l as usize))
                .await?;
            tracing::info!(table = %table.name(), ?report, "compacted");
        }
        OptimizeAction::Purge => {
            table.vacuum(table.retention(), false).await?;
        }
        OptimizeAction::All => {
            table.compact(false, None).await?;
            table.vacuum(table.retention(), false).await?;
        }
    }
    Ok(Output::Command("OPTIMIZE".into()))
}

/// ALTER TABLE: works out each new column's value for existing rows (its
/// DEFAULT, evaluated once now, as PostgreSQL does), then changes the schema.
pub async fn alter_table(
    fuse: &Arc<FuseEngine>,
    query: &QueryContext,
    instance_query: &crate::query::QueryEngine,
    database: &str,
    name: &crate::sql::TableName,
    if_exists: bool,
    ops: Vec<crate::sql::AlterOp>,
) -> Result<Output> {
    use crate::sql::AlterOp;
    let mut changes = Vec::with_capacity(ops.len());
    for op in ops {
        changes.push(match op {
            AlterOp::AddColumn {
                column,
                if_not_exists,
            } => {
                let missing = match &column.default {
                    Some(default) => {
                        instance_query.check_default(default)?;
                        query.eval_as_text(default, &column.ty.sql_name()).await?
                    }
                    None => None,
                };
                if !column.nullable && missing.is_none() {
                    let rows = match fuse.catalog().cached().table(database, &name.name) {
                        Some(meta) => fuse
                            .table(database, meta)?
                            .snapshot()
                            .await?
                            .map(|s| s.summary.row_count)
                            .unwrap_or(0),
                        None => 0,
                    };
                    if rows > 0 {
                        crate::bail!(
                            NotNullViolation,
                            "column \"{}\" of relation \"{}\" contains null values",
                            column.name,
                            name.name
                        );
                    }
                }
                ops::AlterChange::AddColumn {
                    name: column.name,
                    ty: column.ty,
                    nullable: column.nullable,
                    default: column.default,
                    missing,
                    if_not_exists,
                }
            }
            AlterOp::DropColumn { name, if_exists } => {
                ops::AlterChange::DropColumn { name, if_exists }
            }
            AlterOp::RenameColumn { from, to } => ops::AlterChange::RenameColumn { from, to },
            AlterOp::RenameTable { to } => ops::AlterChange::RenameTable { to },
        });
    }
    ops::alter_table(fuse, database, &name.name, if_exists, changes).await?;
    Ok(Output::Command("ALTER TABLE".into()))
}

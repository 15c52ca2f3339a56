//! Table functions over the fuse format, with Databend's names and columns:
//! `fuse_snapshot('db', 't')`, `fuse_segment('db', 't'[, snapshot_id])`,
//! `fuse_block('db', 't'[, snapshot_id])`, and `fuse_time_travel`, which the
//! SQL layer substitutes for `t AT (SNAPSHOT => ...)` / `AT (TIMESTAMP => ...)`.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_plan::ExecutionPlan;

use super::catalog::TxnSlot;
use super::table::FuseTableProvider;
use crate::error::{Error, ErrorKind};
use crate::fuse::meta::Snapshot;
use crate::fuse::table::TravelPoint;
use crate::fuse::{FuseEngine, FuseTable};

fn to_df(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

fn bad_args(function: &str, usage: &str) -> DataFusionError {
    to_df(Error::new(
        ErrorKind::UndefinedFunction,
        format!("function {function} takes ({usage})"),
    ))
}

/// The arguments as constants (folded, so `now() - INTERVAL '1 hour'` works).
fn constants(args: &TableFunctionArgs) -> DFResult<Vec<ScalarValue>> {
    let context = SimplifyContext::builder()
        .with_schema(Arc::new(DFSchema::empty()))
        .with_current_time()
        .build();
    let simplifier = ExprSimplifier::new(context);
    args.exprs()
        .iter()
        .map(|e| match simplifier.simplify(e.clone())? {
            Expr::Literal(v, _) => Ok(v),
            other => Err(to_df(Error::new(
                ErrorKind::InvalidParameterValue,
                format!("argument {other} must be a constant"),
            ))),
        })
        .collect()
}

fn text(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(s) | ScalarValue::Utf8View(s) | ScalarValue::LargeUtf8(s) => s.clone(),
        _ => None,
    }
}

/// Resolves `db`, `table` (empty `db`: the session's database) to a handle.
fn resolve(
    fuse: &Arc<FuseEngine>,
    txn: &TxnSlot,
    session: &dyn Session,
    db: &str,
    table: &str,
) -> DFResult<FuseTable> {
    let db = if db.is_empty() {
        session.config().options().catalog.default_schema.clone()
    } else {
        db.to_string()
    };
    let state = fuse.catalog().cached();
    let meta = state.require_table(&db, table).map_err(to_df)?;
    let txn = txn.read().ok().and_then(|t| t.clone());
    fuse.table_in(&db, meta, txn).map_err(to_df)
}

#[derive(Debug, Clone, Copy)]
pub enum MetaKind {
    Snapshot,
    Segment,
    Block,
}

/// `fuse_snapshot` / `fuse_segment` / `fuse_block`.
#[derive(Debug)]
pub struct FuseMetaFunction {
    pub kind: MetaKind,
    pub fuse: Arc<FuseEngine>,
    pub txn: TxnSlot,
}

impl TableFunctionImpl for FuseMetaFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (name, usage) = match self.kind {
            MetaKind::Snapshot => ("fuse_snapshot", "database, table"),
            MetaKind::Segment => ("fuse_segment", "database, table[, snapshot_id]"),
            MetaKind::Block => ("fuse_block", "database, table[, snapshot_id]"),
        };
        let values = constants(&args)?;
        let texts: Vec<String> = values
            .iter()
            .map(text)
            .collect::<Option<_>>()
            .ok_or_else(|| bad_args(name, usage))?;
        let max = if matches!(self.kind, MetaKind::Snapshot) {
            2
        } else {
            3
        };
        if texts.len() < 2 || texts.len() > max {
            return Err(bad_args(name, usage));
        }
        let table = resolve(&self.fuse, &self.txn, args.session(), &texts[0], &texts[1])?;
        Ok(Arc::new(FuseMetaTable {
            kind: self.kind,
            table,
            snapshot_id: texts.get(2).cloned(),
        }))
    }
}

#[derive(Debug)]
struct FuseMetaTable {
    kind: MetaKind,
    table: FuseTable,
    snapshot_id: Option<String>,
}

fn u64_field(name: &str) -> Field {
    Field::new(name, DataType::UInt64, false)
}

fn timestamp_field(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, None), true)
}

impl FuseMetaTable {
    fn schema_of(kind: MetaKind) -> SchemaRef {
        let fields = match kind {
            MetaKind::Snapshot => vec![
                Field::new("snapshot_id", DataType::Utf8, false),
                Field::new("snapshot_location", DataType::Utf8, false),
                u64_field("format_version"),
                Field::new("previous_snapshot_id", DataType::Utf8, true),
                u64_field("segment_count"),
                u64_field("block_count"),
                u64_field("row_count"),
                u64_field("bytes_uncompressed"),
                u64_field("bytes_compressed"),
                u64_field("index_size"),
                timestamp_field("timestamp"),
            ],
            MetaKind::Segment => vec![
                Field::new("file_location", DataType::Utf8, false),
                u64_field("format_version"),
                u64_field("block_count"),
                u64_field("row_count"),
                u64_field("bytes_uncompressed"),
                u64_field("bytes_compressed"),
                u64_field("index_size"),
            ],
            MetaKind::Block => vec![
                Field::new("snapshot_id", DataType::Utf8, false),
                timestamp_field("timestamp"),
                Field::new("block_location", DataType::Utf8, false),
                u64_field("block_size"),
                u64_field("file_size"),
                u64_field("row_count"),
                Field::new("bloom_filter_location", DataType::Utf8, true),
                u64_field("bloom_filter_size"),
            ],
        };
        Arc::new(Schema::new(fields))
    }

    /// The snapshot asked for: the current one, or `snapshot_id` from history.
    async fn snapshot(&self) -> crate::error::Result<Option<(String, Arc<Snapshot>)>> {
        let history = self.table.history().await?;
        match &self.snapshot_id {
            None => Ok(history.into_iter().next()),
            Some(id) => history
                .into_iter()
                .find(|(_, s)| &s.snapshot_id == id)
                .map(Some)
                .ok_or_else(|| snapshot_not_found(&self.table, id)),
        }
    }

    async fn batch(&self) -> crate::error::Result<RecordBatch> {
        let schema = Self::schema_of(self.kind);
        let root = self.table.meta().root_dir();
        let columns: Vec<ArrayRef> = match self.kind {
            MetaKind::Snapshot => {
                let history = self.table.history().await?;
                let s = |f: fn(&(String, Arc<Snapshot>)) -> u64| -> ArrayRef {
                    Arc::new(history.iter().map(f).collect::<UInt64Array>())
                };
                vec![
                    Arc::new(
                        history
                            .iter()
                            .map(|(_, s)| Some(s.snapshot_id.clone()))
                            .collect::<StringArray>(),
                    ),
                    Arc::new(
                        history
                            .iter()
                            .map(|(l, _)| Some(format!("{root}{l}")))
                            .collect::<StringArray>(),
                    ),
                    s(|(_, s)| s.format_version as u64),
                    Arc::new(
                        history
                            .iter()
                            .map(|(_, s)| s.prev_snapshot_id.clone())
                            .collect::<StringArray>(),
                    ),
                    s(|(_, s)| s.segments.len() as u64),
                    s(|(_, s)| s.summary.block_count),
                    s(|(_, s)| s.summary.row_count),
                    s(|(_, s)| s.summary.uncompressed_byte_size),
                    s(|(_, s)| s.summary.compressed_byte_size),
                    s(|_| 0),
                    Arc::new(
                        history
                            .iter()
                            .map(|(_, s)| Some(s.timestamp.timestamp_micros()))
                            .collect::<TimestampMicrosecondArray>(),
                    ),
                ]
            }
            MetaKind::Segment => {
                let refs = match self.snapshot().await? {
                    Some((_, s)) => s.segments.clone(),
                    None => Vec::new(),
                };
                let s = |f: &dyn Fn(&crate::fuse::meta::SegmentRef) -> u64| -> ArrayRef {
                    Arc::new(refs.iter().map(f).collect::<UInt64Array>())
                };
                vec![
                    Arc::new(
                        refs.iter()
                            .map(|r| Some(format!("{root}{}", r.location)))
                            .collect::<StringArray>(),
                    ),
                    s(&|_| crate::fuse::meta::FORMAT_VERSION as u64),
                    s(&|r| r.summary.block_count),
                    s(&|r| r.summary.row_count),
                    s(&|r| r.summary.uncompressed_byte_size),
                    s(&|r| r.summary.compressed_byte_size),
                    s(&|_| 0),
                ]
            }
            MetaKind::Block => {
                let (id, ts, blocks) = match self.snapshot().await? {
                    Some((_, snapshot)) => {
                        let segments = self.table.segments(&snapshot).await?;
                        let blocks: Vec<_> =
                            segments.iter().flat_map(|s| s.blocks.clone()).collect();
                        (
                            snapshot.snapshot_id.clone(),
                            snapshot.timestamp.timestamp_micros(),
                            blocks,
                        )
                    }
                    None => (String::new(), 0, Vec::new()),
                };
                let n = blocks.len();
                vec![
                    Arc::new(StringArray::from(vec![id; n])),
                    Arc::new(TimestampMicrosecondArray::from(vec![Some(ts); n])),
                    Arc::new(
                        blocks
                            .iter()
                            .map(|b| Some(format!("{root}{}", b.location)))
                            .collect::<StringArray>(),
                    ),
                    Arc::new(blocks.iter().map(|b| b.block_size).collect::<UInt64Array>()),
                    Arc::new(blocks.iter().map(|b| b.file_size).collect::<UInt64Array>()),
                    Arc::new(blocks.iter().map(|b| b.row_count).collect::<UInt64Array>()),
                    Arc::new(StringArray::from(vec![None::<String>; n])),
                    Arc::new(UInt64Array::from(vec![0u64; n])),
                ]
            }
        };
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

fn snapshot_not_found(table: &FuseTable, id: &str) -> Error {
    crate::fuse::table::snapshot_not_found(table, id)
}

#[async_trait]
impl TableProvider for FuseMetaTable {
    fn schema(&self) -> SchemaRef {
        Self::schema_of(self.kind)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let batch = self.batch().await.map_err(to_df)?;
        let exec =
            MemorySourceConfig::try_new_exec(&[vec![batch]], self.schema(), projection.cloned())?;
        Ok(exec)
    }
}

/// `fuse_time_travel('db', 't', 'snapshot' | 'timestamp', value)`: the table
/// as it was at a snapshot, or at the newest snapshot not after a timestamp.
#[derive(Debug)]
pub struct TimeTravelFunction {
    pub fuse: Arc<FuseEngine>,
    pub txn: TxnSlot,
}

impl TableFunctionImpl for TimeTravelFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let values = constants(&args)?;
        let usage = "database, table, 'snapshot' | 'timestamp', value";
        let [db, name, kind, value] = values.as_slice() else {
            return Err(bad_args("fuse_time_travel", usage));
        };
        let (Some(db), Some(name), Some(kind)) = (text(db), text(name), text(kind)) else {
            return Err(bad_args("fuse_time_travel", usage));
        };
        let table = resolve(&self.fuse, &self.txn, args.session(), &db, &name)?;
        let point = match kind.as_str() {
            "snapshot" => TravelPoint::Snapshot(
                text(value).ok_or_else(|| bad_args("fuse_time_travel", usage))?,
            ),
            "timestamp" => {
                let micros =
                    match value.cast_to(&DataType::Timestamp(TimeUnit::Microsecond, None))? {
                        ScalarValue::TimestampMicrosecond(Some(v), _) => v,
                        _ => return Err(bad_args("fuse_time_travel", usage)),
                    };
                TravelPoint::Timestamp(micros)
            }
            _ => return Err(bad_args("fuse_time_travel", usage)),
        };
        Ok(Arc::new(TimeTravelTable {
            provider: FuseTableProvider::new(table.clone(), Default::default()),
            table,
            point,
        }))
    }
}

/// A fuse table read at a past snapshot, resolved when scanned.
#[derive(Debug)]
struct TimeTravelTable {
    provider: FuseTableProvider,
    table: FuseTable,
    point: TravelPoint,
}

#[async_trait]
impl TableProvider for TimeTravelTable {
    fn schema(&self) -> SchemaRef {
        self.provider.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let location = self.table.travel(&self.point).await.map_err(to_df)?;
        let at = FuseTableProvider::new(self.table.at_snapshot(location), Default::default());
        at.scan(state, projection, filters, limit).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<datafusion::logical_expr::TableProviderFilterPushDown>> {
        self.provider.supports_filters_pushdown(filters)
    }
}

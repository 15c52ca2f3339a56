//! Scanning a fuse table: prune blocks with their statistics, then hand the
//! survivors to DataFusion's Parquet scan, reading through OpenDAL.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{ColumnStatistics, DFSchema, ScalarValue, Statistics};
use datafusion::config::ConfigOptions;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result as DFResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::utils::conjunction;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::utils::{conjunction as physical_conjunction, split_conjunction};
use datafusion::physical_expr_common::physical_expr::is_volatile;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;

use super::error::from_datafusion;
use super::evolve::FieldIdAdapterFactory;
use super::kept;
use super::prune::prune_blocks;
use crate::error::Result;
use crate::fuse::FuseTable;
use crate::fuse::meta::{BlockMeta, StatValue};
use crate::storage::Storage;

/// What one scan of a fuse table read, for EXPLAIN and the statement log.
#[derive(Debug, Clone)]
pub struct ScanReport {
    pub table: String,
    pub segments: usize,
    pub blocks_total: usize,
    pub blocks_read: usize,
    /// A kept plan's scan, whose parameters prune when it runs.
    pub deferred: Option<Arc<DeferredPruning>>,
}

/// The blocks and predicate of a kept plan's scan, pruned again with each
/// execution's values: the scan then reads only those blocks, and their
/// count decides where the statement runs.
#[derive(Debug)]
pub struct DeferredPruning {
    predicate: Arc<dyn datafusion::physical_expr::PhysicalExpr>,
    arrow_schema: SchemaRef,
    schema: crate::fuse::schema::TableSchema,
    blocks: Vec<BlockMeta>,
}

impl DeferredPruning {
    /// Which of its blocks the values bound now may match.
    fn survivors(&self) -> Vec<bool> {
        let blocks: Vec<&BlockMeta> = self.blocks.iter().collect();
        prune_blocks(&self.predicate, &self.arrow_schema, &self.schema, &blocks)
            .unwrap_or_else(|_| vec![true; blocks.len()])
    }

    /// Whether a scan reading `files` is this one's (its blocks, all of them).
    fn scans(&self, files: &HashSet<&str>) -> bool {
        files.len() == self.blocks.len()
            && self
                .blocks
                .iter()
                .all(|b| files.contains(b.location.as_str()))
    }
}

/// Which blocks each scan with parameters of a kept plan may read, in the
/// order of its scans.
pub type Survivors = Vec<Vec<bool>>;

/// For one execution of a kept plan, its [`Survivors`], and how many blocks
/// the plan reads in all.
pub fn kept_survivors(scans: &[ScanReport]) -> (Survivors, usize) {
    let mut read = 0;
    let mut survivors = Vec::new();
    for scan in scans {
        match &scan.deferred {
            Some(d) => {
                let keep = d.survivors();
                read += keep.iter().filter(|k| **k).count();
                survivors.push(keep);
            }
            None => read += scan.blocks_read,
        }
    }
    (survivors, read)
}

/// A kept plan whose scans with parameters read only `survivors` (from
/// [`kept_survivors`]), in their existing partitions, and without the
/// blocks' statistics (which would only build a pruner per block to decide
/// the same again).
pub fn narrow_kept_scans(
    plan: Arc<dyn ExecutionPlan>,
    scans: &[ScanReport],
    survivors: &Survivors,
) -> DFResult<Arc<dyn ExecutionPlan>> {
    let deferred: Vec<(&DeferredPruning, HashSet<&str>)> = scans
        .iter()
        .filter_map(|s| s.deferred.as_deref())
        .zip(survivors)
        .map(|(d, keep)| {
            let locations = d
                .blocks
                .iter()
                .zip(keep)
                .filter(|(_, k)| **k)
                .map(|(b, _)| b.location.as_str())
                .collect();
            (d, locations)
        })
        .collect();
    if deferred.is_empty() {
        return Ok(plan);
    }
    let plan = plan.transform_up(|node| {
        let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
            return Ok(Transformed::no(node));
        };
        let Some((config, _)) = exec.downcast_to_file_source::<ParquetSource>() else {
            return Ok(Transformed::no(node));
        };
        let files: HashSet<&str> = config
            .file_groups
            .iter()
            .flat_map(|g| g.iter())
            .map(|f| f.object_meta.location.as_ref())
            .collect();
        // Scans of one table with different parameters (a self-join) read
        // the same blocks: each then reads what either may match.
        let mine: Vec<&HashSet<&str>> = deferred
            .iter()
            .filter(|(d, _)| d.scans(&files))
            .map(|(_, keep)| keep)
            .collect();
        if mine.is_empty() {
            return Ok(Transformed::no(node));
        }
        let mut pruned = config.clone();
        pruned.file_groups = config
            .file_groups
            .iter()
            .map(|group| {
                let files = group
                    .iter()
                    .filter(|f| {
                        let location = f.object_meta.location.as_ref();
                        mine.iter().any(|keep| keep.contains(location))
                    })
                    .map(|f| {
                        let mut f = f.clone();
                        f.statistics = None;
                        f
                    })
                    .collect();
                FileGroup::new(files)
            })
            .collect();
        let exec = exec.clone().with_data_source(Arc::new(pruned));
        Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
    })?;
    Ok(plan.data)
}

/// Collects the [`ScanReport`]s of the statement being planned. Installed in
/// the session config, cleared before each statement.
#[derive(Debug, Default)]
pub struct ScanReports(Mutex<Vec<ScanReport>>);

impl ScanReports {
    pub fn push(&self, report: ScanReport) {
        if let Ok(mut v) = self.0.lock() {
            v.push(report);
        }
    }

    /// Blocks the statement planned so far reads, over all its scans.
    pub fn blocks_read(&self) -> usize {
        match self.0.lock() {
            Ok(v) => v.iter().map(|r| r.blocks_read).sum(),
            Err(_) => 0,
        }
    }

    pub fn take(&self) -> Vec<ScanReport> {
        match self.0.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(_) => Vec::new(),
        }
    }
}

/// At most this many blocks, of more, make a scan selective enough for its
/// pages to be cached.
const SELECTIVE_SCAN_BLOCKS: usize = 2;

/// Builds the physical scan of `table` (pinned at its snapshot).
pub async fn scan_table(
    table: &FuseTable,
    arrow_schema: &SchemaRef,
    state: &dyn Session,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
    limit: Option<usize>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let projected = match projection {
        Some(p) => Arc::new(arrow_schema.project(p)?),
        None => arrow_schema.clone(),
    };
    let Some(snapshot) = table.snapshot().await? else {
        return Ok(Arc::new(EmptyExec::new(projected)));
    };
    let segments = table.segments(&snapshot).await?;
    let all_blocks: Vec<&BlockMeta> = segments.iter().flat_map(|s| s.blocks.iter()).collect();

    let predicate = match conjunction(filters.iter().cloned()) {
        Some(expr) => {
            let df_schema =
                DFSchema::try_from(arrow_schema.as_ref().clone()).map_err(from_datafusion)?;
            let predicate = state
                .create_physical_expr(expr, &df_schema)
                .map_err(from_datafusion)?;
            // A kept plan's parameters take each execution's values.
            Some(kept::param_exprs(predicate).map_err(from_datafusion)?)
        }
        None => None,
    };
    let mut deferred = None;
    let keep = match &predicate {
        Some(p) if kept::has_unbound_param(p) => {
            // A kept plan's parameters: pruned at each execution
            // (`kept_survivors`, `narrow_kept_scans`).
            deferred = Some(Arc::new(DeferredPruning {
                predicate: p.clone(),
                arrow_schema: arrow_schema.clone(),
                schema: table.meta().schema.clone(),
                blocks: all_blocks.iter().map(|b| (*b).clone()).collect(),
            }));
            vec![true; all_blocks.len()]
        }
        Some(p) => prune_blocks(p, arrow_schema, &table.meta().schema, &all_blocks)?,
        None => vec![true; all_blocks.len()],
    };
    let mut blocks: Vec<&BlockMeta> = all_blocks
        .iter()
        .zip(keep)
        .filter_map(|(b, k)| k.then_some(*b))
        .collect();
    // Without filters, a LIMIT needs only enough blocks to cover it.
    if let (Some(limit), true) = (limit, filters.is_empty()) {
        let mut rows = 0u64;
        let mut needed = 0;
        for b in &blocks {
            if rows >= limit as u64 {
                break;
            }
            rows += b.row_count;
            needed += 1;
        }
        blocks.truncate(needed);
    }
    // Pages worth keeping: those a kept plan's executions read again, and
    // those of a scan its filters narrowed to a few of many blocks (a range
    // or a lookup by literal, which the session's plan reuse repeats). Scans
    // of whole tables do not use the cache: caching their short reads made
    // TPC-H's Q16 slower.
    let selective = predicate.is_some()
        && blocks.len() <= SELECTIVE_SCAN_BLOCKS
        && blocks.len() < all_blocks.len();
    let cache_pages = deferred.is_some() || selective;
    if let Some(reports) = state.config().get_extension::<ScanReports>() {
        reports.push(ScanReport {
            table: format!("{}.{}", table.db_name(), table.name()),
            segments: segments.len(),
            blocks_total: all_blocks.len(),
            blocks_read: blocks.len(),
            deferred,
        });
    }
    tracing::debug!(
        table = %table.name(),
        blocks_total = all_blocks.len(),
        blocks_read = blocks.len(),
        "scan pruned"
    );
    if blocks.is_empty() {
        return Ok(Arc::new(EmptyExec::new(projected)));
    }

    let file_groups = group_blocks(
        &blocks,
        arrow_schema,
        table,
        state.config().target_partitions(),
    );
    let mut source = ParquetSource::new(arrow_schema.clone()).with_parquet_file_reader_factory(
        Arc::new(FuseReaderFactory {
            storage: table.storage().clone(),
            cache_pages,
        }),
    );
    if let Some(p) = predicate {
        source = source.with_predicate(p);
    }
    // Fuse blocks carry no bloom filters: looking for them cost every open.
    source = source.with_bloom_filter_on_read(false);
    // Filters run after decoding (DataFusion's default), even an equality
    // that a lookup narrows to a few rows: decoding in two passes made TPC-H
    // Q10 and Q19 1.3-1.5x slower and lookups no faster (docs/benchmarks.md,
    // 2026-12-07). A join's few keys are applied to rows above the scan
    // (`dynamic_filters.rs`).
    let config = FileScanConfigBuilder::new(
        // Our reader factory does the IO; the URL only satisfies the registry lookup.
        ObjectStoreUrl::local_filesystem(),
        Arc::new(source),
    )
    .with_file_groups(file_groups)
    .with_statistics(table_statistics(&blocks, arrow_schema, table))
    .with_projection_indices(projection.cloned())
    .map_err(from_datafusion)?
    // Blocks written before an ALTER TABLE are read by column id.
    .with_expr_adapter(Some(Arc::new(FieldIdAdapterFactory::new(
        &table.meta().schema,
    ))))
    .with_limit(limit)
    .build();
    Ok(DataSourceExec::from_data_source(config))
}

/// Spreads blocks over `partitions` groups of similar byte size.
fn group_blocks(
    blocks: &[&BlockMeta],
    schema: &SchemaRef,
    table: &FuseTable,
    partitions: usize,
) -> Vec<FileGroup> {
    let n = partitions.clamp(1, blocks.len());
    let mut groups: Vec<(u64, Vec<PartitionedFile>)> = (0..n).map(|_| (0, Vec::new())).collect();
    for block in blocks {
        let file = PartitionedFile::new(block.location.clone(), block.file_size)
            .with_statistics(Arc::new(block_statistics(block, schema, table)));
        if let Some(g) = groups.iter_mut().min_by_key(|(size, _)| *size) {
            g.0 += block.file_size;
            g.1.push(file);
        }
    }
    groups
        .into_iter()
        .map(|(_, files)| FileGroup::new(files))
        .collect()
}

fn stat_scalar(v: &StatValue, field: &arrow::datatypes::Field) -> Option<ScalarValue> {
    let s = match v {
        StatValue::Int(i) => ScalarValue::Int64(Some(*i)),
        StatValue::Float(f) => ScalarValue::Float64(Some(*f)),
        StatValue::Decimal(d) => match field.data_type() {
            arrow::datatypes::DataType::Decimal128(p, s) => {
                ScalarValue::Decimal128(Some(d.parse().ok()?), *p, *s)
            }
            _ => return None,
        },
        StatValue::Str(s) => ScalarValue::Utf8(Some(s.clone())),
        StatValue::Bool(b) => ScalarValue::Boolean(Some(*b)),
    };
    s.cast_to(field.data_type()).ok()
}

fn block_statistics(block: &BlockMeta, schema: &SchemaRef, table: &FuseTable) -> Statistics {
    let column_statistics = schema
        .fields()
        .iter()
        .map(|field| {
            let mut cs = ColumnStatistics::new_unknown();
            let Some(col) = table.meta().schema.column(field.name()) else {
                return cs;
            };
            let Some(st) = block.col_stats.get(&col.id) else {
                return cs;
            };
            cs.null_count = Precision::Exact(st.null_count as usize);
            // Strings may be truncated: their bounds are not exact values.
            let exact = !matches!(st.min, Some(StatValue::Str(_)));
            let wrap = |v: Option<ScalarValue>| match v {
                Some(v) if exact => Precision::Exact(v),
                Some(v) => Precision::Inexact(v),
                None => Precision::Absent,
            };
            cs.min_value = wrap(st.min.as_ref().and_then(|v| stat_scalar(v, field)));
            cs.max_value = wrap(st.max.as_ref().and_then(|v| stat_scalar(v, field)));
            cs
        })
        .collect();
    Statistics {
        num_rows: Precision::Exact(block.row_count as usize),
        total_byte_size: Precision::Inexact(block.block_size as usize),
        column_statistics,
    }
}

fn table_statistics(blocks: &[&BlockMeta], schema: &SchemaRef, table: &FuseTable) -> Statistics {
    let all: Vec<Statistics> = blocks
        .iter()
        .map(|b| block_statistics(b, schema, table))
        .collect();
    Statistics::try_merge_iter(&all, schema).unwrap_or_else(|_| Statistics::new_unknown(schema))
}

/// Opens blocks through the table's OpenDAL storage.
#[derive(Debug)]
struct FuseReaderFactory {
    storage: Storage,
    /// For selective scans, whose pages are read again (`scan_table`).
    cache_pages: bool,
}

impl ParquetFileReaderFactory for FuseReaderFactory {
    fn create_reader(
        &self,
        _partition_index: usize,
        file: PartitionedFile,
        _metadata_size_hint: Option<usize>,
        _metrics: &ExecutionPlanMetricsSet,
    ) -> DFResult<Box<dyn AsyncFileReader + Send>> {
        let reader = self
            .storage
            .block_reader(file.object_meta.location.as_ref(), file.object_meta.size);
        Ok(match self.cache_pages {
            true => Box::new(reader.caching_pages()),
            false => Box::new(reader),
        })
    }
}

/// Gives each Parquet scan its predicate once. fusegate hands a scan its
/// filters (for block pruning, and for kept plans' parameters), and
/// DataFusion's filter pushdown then adds the `FilterExec` above it, the
/// same filters again: every block opened would build and evaluate its
/// pruning predicate twice.
#[derive(Debug, Default)]
pub struct OnePredicatePerScan;

impl PhysicalOptimizerRule for OnePredicatePerScan {
    fn name(&self) -> &str {
        "OnePredicatePerScan"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some((config, source)) = exec.downcast_to_file_source::<ParquetSource>() else {
                return Ok(Transformed::no(node));
            };
            let Some(predicate) = source.filter() else {
                return Ok(Transformed::no(node));
            };
            let conjuncts = split_conjunction(&predicate);
            let mut unique: Vec<Arc<dyn PhysicalExpr>> = Vec::with_capacity(conjuncts.len());
            for c in &conjuncts {
                // `random() < 0.5` twice is two draws, not one.
                if is_volatile(c) || !unique.iter().any(|u| u == *c) {
                    unique.push(Arc::clone(c));
                }
            }
            if unique.len() == conjuncts.len() {
                return Ok(Transformed::no(node));
            }
            let mut config = config.clone();
            config.file_source = Arc::new(source.with_predicate(physical_conjunction(unique)));
            let exec = exec.clone().with_data_source(Arc::new(config));
            Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

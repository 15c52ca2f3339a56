//! Queries, through Apache DataFusion: the catalog adapter, the fuse table
//! provider (scan with block pruning, insert), and error conversion. The only
//! module that imports DataFusion.

mod arithmetic;
mod background;
pub use background::DEFAULT_HEAVY_QUERY_BLOCKS;
pub(crate) mod casts;
mod catalog;
mod cooperative;
mod dynamic_filters;
pub mod error;
mod evolve;
mod functions;
mod insert;
mod interrupt;
mod json;
mod kept;
mod limits;
mod literals;
mod mutation;
mod numeric;
mod only_row;
mod pg;
mod pg_catalog;
pub mod pg_functions;
pub mod pg_text;
mod prune;
mod rewrite;
mod scan;
mod table;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::TreeNode;
use datafusion::execution::TaskContext;
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{DmlStatement, LogicalPlan, WriteOp};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use futures::{Stream, TryStreamExt};
use sqlparser::ast;

pub use self::catalog::CATALOG_NAME;
use self::catalog::FuseCatalogProvider;
pub use self::error::from_datafusion;
pub use self::insert::write_blocks;
pub use self::interrupt::{Deadline, Interrupt};
pub use self::only_row::ONLY_ROW_FUNCTION;
pub use self::pg::{EXPAND_ARRAY_FUNCTION, LIKE_ESCAPE_FUNCTION};
pub use self::scan::{ScanReport, ScanReports};
use crate::error::{Error, Result};
use crate::fuse::FuseEngine;
pub use datafusion::common::ParamValues;

/// Commits blocks written by [`write_query_blocks`] as an append (COPY).
pub async fn commit_query_blocks(
    table: &crate::fuse::FuseTable,
    blocks: Vec<crate::fuse::meta::BlockMeta>,
) -> Result<()> {
    insert::commit_blocks(table, blocks).await
}

/// The table function the SQL layer substitutes for `t AT (...)`.
pub const TIME_TRAVEL_FUNCTION: &str = "fuse_time_travel";

/// Writes the rows of `stream` as blocks of `table`, uncommitted (CREATE TABLE AS).
pub async fn write_query_blocks(
    table: &crate::fuse::FuseTable,
    stream: BatchStream,
) -> Result<(Vec<crate::fuse::meta::BlockMeta>, u64)> {
    let stream = stream.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)));
    write_blocks(table, stream).await
}

/// A stream of result batches.
pub type BatchStream = std::pin::Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>>;

/// Resources shared by every session: the fuse engine as a DataFusion catalog,
/// and one runtime (memory pool, spill directory) for all queries.
pub struct QueryEngine {
    fuse: Arc<FuseEngine>,
    runtime: Arc<RuntimeEnv>,
    expr_planner: Arc<datafusion::execution::SessionState>,
    /// Rewrites of catalog-introspection SQL that DataFusion cannot plan as
    /// written (`'t'::regclass`, `= ANY(...)`, unqualified pg_ tables...).
    compat: Arc<PostgresCompatibilityParser>,
    /// Queries reading more blocks than this run on the background runtime.
    heavy_query_blocks: usize,
}

impl QueryEngine {
    /// `memory_limit`: bytes all running queries may hold before they spill or
    /// fail with 53200.
    pub fn new(fuse: Arc<FuseEngine>, memory_limit: usize) -> Result<QueryEngine> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(memory_limit)))
            .with_disk_manager_builder(DiskManagerBuilder::default())
            .build_arc()
            .map_err(from_datafusion)?;
        let expr_planner = SessionContext::new_with_config(
            SessionConfig::new()
                .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
                .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
                .set_str("datafusion.execution.time_zone", SESSION_TIME_ZONE),
        )
        .state();
        Ok(QueryEngine {
            expr_planner: Arc::new(expr_planner),
            compat: Arc::new(PostgresCompatibilityParser::new()),
            fuse,
            runtime,
            heavy_query_blocks: background::DEFAULT_HEAVY_QUERY_BLOCKS,
        })
    }

    /// Queries that read more than `blocks` blocks run their operators on the
    /// lower-priority background runtime (see [`background`]).
    pub fn set_heavy_query_blocks(&mut self, blocks: usize) {
        self.heavy_query_blocks = blocks;
    }

    pub fn fuse(&self) -> &Arc<FuseEngine> {
        &self.fuse
    }

    /// Checks that a column DEFAULT expression plans (at CREATE TABLE, so that
    /// a bad default fails there and not at every INSERT).
    pub fn check_default(&self, sql: &str) -> Result<()> {
        catalog::default_expr(&self.expr_planner, sql)
            .map(|_| ())
            .map_err(|e| from_datafusion(e).context(format!("invalid DEFAULT {sql}")))
    }

    /// Parses a client's catalog-introspection query (psql's backslash
    /// commands, drivers, BI tools) with datafusion-pg-catalog's
    /// compatibility parser, which swaps known client queries DataFusion
    /// cannot plan for equivalents and rewrites PostgreSQL-only syntax.
    /// None for other SQL: some rewrites trade exactness for plannability (a
    /// subquery DataFusion cannot plan becomes NULL), which is right for a
    /// catalog query and never for user data.
    pub fn parse_catalog_query(&self, sql: &str) -> Option<Result<Vec<ast::Statement>>> {
        if !is_catalog_query(sql) {
            return None;
        }
        Some(
            self.compat
                .parse(sql)
                .map_err(|e| Error::syntax(format!("syntax error: {e}"))),
        )
    }

    /// A DataFusion context for one session, with `database` as its current database.
    pub fn new_context(&self, database: &str) -> Result<QueryContext> {
        let reports = Arc::new(ScanReports::default());
        let interrupt = Arc::new(Interrupt::default());
        let config = SessionConfig::new()
            .set_str("datafusion.execution.time_zone", SESSION_TIME_ZONE)
            // `1.5` is a numeric, as in PostgreSQL (see `literals`).
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
            .with_default_catalog_and_schema(CATALOG_NAME, database)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true)
            .with_extension(reports.clone())
            .with_extension(interrupt.clone());
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.runtime.clone())
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(dynamic_filters::FilterRowsAtScans))
            .with_physical_optimizer_rule(Arc::new(cooperative::YieldAboveJoins))
            .with_physical_optimizer_rule(Arc::new(scan::OnePredicatePerScan))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.add_analyzer_rule(Arc::new(casts::RoundToInteger));
        ctx.add_analyzer_rule(Arc::new(casts::TextCasts));
        ctx.add_analyzer_rule(Arc::new(arithmetic::CheckedIntegerArithmetic));
        ctx.add_analyzer_rule(Arc::new(numeric::NumericRounding));
        let txn: catalog::TxnSlot = Default::default();
        let catalog =
            FuseCatalogProvider::new(self.fuse.clone(), self.expr_planner.clone(), txn.clone());
        ctx.register_catalog(CATALOG_NAME, Arc::new(catalog));
        for (name, kind) in [
            ("fuse_snapshot", functions::MetaKind::Snapshot),
            ("fuse_segment", functions::MetaKind::Segment),
            ("fuse_block", functions::MetaKind::Block),
        ] {
            ctx.register_udtf(
                name,
                Arc::new(functions::FuseMetaFunction {
                    kind,
                    fuse: self.fuse.clone(),
                    txn: txn.clone(),
                }),
            );
        }
        ctx.register_udtf(
            TIME_TRAVEL_FUNCTION,
            Arc::new(functions::TimeTravelFunction {
                fuse: self.fuse.clone(),
                txn: txn.clone(),
            }),
        );
        pg::install(&ctx, self.fuse.clone())?;
        let settings = pg::SettingsSlot::default();
        ctx.register_udf(pg::current_setting_udf(settings.clone()));
        limits::install(&ctx);
        pg::set_current_schema(&ctx, database);
        Ok(QueryContext {
            ctx,
            interrupt,
            reports,
            txn,
            settings,
            heavy_query_blocks: self.heavy_query_blocks,
        })
    }
}

/// Field metadata naming a column's declared PostgreSQL type where Arrow's
/// type does not say it all: `varchar` (Arrow has only Utf8) and the type
/// modifier (varchar length, numeric precision and scale, encoded as
/// PostgreSQL's `atttypmod`). Plain column references keep it through
/// DataFusion's plans, so result descriptions report what the table declares.
pub fn pg_type_metadata(ty: &crate::fuse::schema::ColumnType) -> HashMap<String, String> {
    use crate::fuse::schema::ColumnType;
    let mut metadata = HashMap::new();
    match ty {
        ColumnType::Varchar { length } => {
            metadata.insert(PG_TYPE_KEY.to_string(), "varchar".to_string());
            if let Some(n) = length {
                metadata.insert(PG_TYPMOD_KEY.to_string(), (*n as i64 + 4).to_string());
            }
        }
        ColumnType::Decimal { precision, scale } => {
            let typmod = ((*precision as i64) << 16 | (*scale as i64 & 0xffff)) + 4;
            metadata.insert(PG_TYPMOD_KEY.to_string(), typmod.to_string());
        }
        _ => {}
    }
    metadata
}

/// The zone `timestamptz` values are read in (without an offset of their
/// own) and `now()` is given in: every session's TimeZone is UTC.
const SESSION_TIME_ZONE: &str = "UTC";

/// Field metadata keys of [`pg_type_metadata`].
pub const PG_TYPE_KEY: &str = "fusegate.pg_type";
pub const PG_TYPMOD_KEY: &str = "fusegate.pg_typmod";

/// Whether a statement reads PostgreSQL's catalogs (as drivers, psql's
/// backslash commands and BI tools do).
fn is_catalog_query(sql: &str) -> bool {
    let text = sql.to_ascii_lowercase();
    // Only queries: a CREATE TABLE whose name holds "pg_type" is user SQL.
    let mut rest = text.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
    while let Some(comment) = rest.strip_prefix("--").or_else(|| rest.strip_prefix("/*")) {
        let end = if rest.starts_with("--") { "\n" } else { "*/" };
        rest = comment
            .split_once(end)
            .map_or("", |(_, after)| after)
            .trim_start_matches(|c: char| c.is_whitespace() || c == '(');
    }
    if !(rest.starts_with("select") || rest.starts_with("with")) {
        return false;
    }
    [
        "pg_catalog",
        "pg_class",
        "pg_namespace",
        "pg_type",
        "pg_attribute",
        "pg_proc",
        "pg_database",
        "pg_settings",
        "pg_roles",
        "pg_index",
        "pg_description",
        "pg_constraint",
        "information_schema",
        "::regclass",
        "::regtype",
        "::regproc",
        "pg_get_",
        "format_type",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Whether `name` is one of DataFusion's aggregate functions (or an alias).
pub fn is_aggregate_function(name: &str) -> bool {
    static NAMES: std::sync::LazyLock<std::collections::HashSet<String>> =
        std::sync::LazyLock::new(|| {
            datafusion::functions_aggregate::all_default_aggregate_functions()
                .iter()
                .flat_map(|f| {
                    std::iter::once(f.name().to_string()).chain(f.aliases().iter().cloned())
                })
                .chain([ONLY_ROW_FUNCTION.to_string()])
                .collect()
        });
    NAMES.contains(&name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    #[test]
    fn catalog_queries_are_queries() {
        assert!(super::is_catalog_query(
            "SELECT n.nspname FROM pg_catalog.pg_namespace n"
        ));
        assert!(super::is_catalog_query(
            "-- psql\n/* x */ (SELECT 1 FROM pg_class)"
        ));
        assert!(!super::is_catalog_query("CREATE TABLE apg_types_x (a int)"));
        assert!(!super::is_catalog_query(
            "INSERT INTO t SELECT * FROM pg_type_copy"
        ));
    }
}

/// DataFusion hands a table provider only the WHERE conjuncts that refer to
/// the target table, so a DELETE or UPDATE whose input also joins or has
/// subqueries would act on the wrong rows. Refuse those plainly.
fn check_simple_dml(input: &LogicalPlan, verb: &str) -> Result<()> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut unsupported = false;
    let _ = input.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::Projection(_)
            | LogicalPlan::SubqueryAlias(_) => {}
            _ => unsupported = true,
        }
        let _ = node.apply_expressions(|e| {
            e.apply(|e| {
                if matches!(
                    e,
                    datafusion::logical_expr::Expr::ScalarSubquery(_)
                        | datafusion::logical_expr::Expr::Exists(_)
                        | datafusion::logical_expr::Expr::InSubquery(_)
                ) {
                    unsupported = true;
                }
                Ok(TreeNodeRecursion::Continue)
            })
        });
        Ok(if unsupported {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    if unsupported {
        return Err(Error::unsupported(format!(
            "{verb} with subqueries or other tables is not supported yet; its WHERE clause may only use the target table's columns"
        )));
    }
    Ok(())
}

/// What a planned statement produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanKind {
    /// Rows (SELECT, VALUES, EXPLAIN, SHOW).
    Rows,
    Insert,
    Update,
    Delete,
    Truncate,
}

/// A statement planned by DataFusion, possibly with `$n` placeholders.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    plan: LogicalPlan,
    kind: PlanKind,
    /// Result column names shown to the client, where they differ from the plan's.
    names: Option<Vec<Option<String>>>,
    /// For a prepared statement, the physical plan kept across executions,
    /// shared by the plan's clones.
    kept: Option<kept::KeptSlot>,
}

impl QueryPlan {
    /// Renames result columns (for the client only: the plan keeps its names,
    /// which must stay unique while PostgreSQL's need not).
    pub fn with_output_names(mut self, names: Option<Vec<Option<String>>>) -> Self {
        self.names = names;
        self
    }

    /// Marks the plan as a prepared statement's: its physical plan is made
    /// once and kept across executions where that is safe (see `kept`).
    pub fn kept_across_executions(mut self) -> Self {
        self.kept = Some(Default::default());
        self
    }

    pub fn kind(&self) -> PlanKind {
        self.kind
    }

    /// Whether running it writes nothing (no DML, not even under EXPLAIN ANALYZE).
    pub fn is_read_only(&self) -> bool {
        self.kind == PlanKind::Rows
            && !self
                .plan
                .exists(|p| Ok(matches!(p, LogicalPlan::Dml(_))))
                .unwrap_or(true)
    }

    /// The schema of the rows it returns (empty for DML).
    pub fn output_schema(&self) -> SchemaRef {
        if self.kind != PlanKind::Rows {
            return Arc::new(arrow::datatypes::Schema::empty());
        }
        let schema = self.plan.schema().as_arrow();
        let Some(names) = &self.names else {
            return Arc::new(schema.clone());
        };
        let fields: Vec<arrow::datatypes::Field> = schema
            .fields()
            .iter()
            .zip(names)
            .map(|(f, name)| match name {
                Some(name) => f.as_ref().clone().with_name(name),
                None => f.as_ref().clone(),
            })
            .collect();
        Arc::new(arrow::datatypes::Schema::new(fields))
    }

    /// Types of `$1..$n` as DataFusion inferred them (None where it could not).
    pub fn parameter_types(&self) -> Result<Vec<Option<DataType>>> {
        let types: HashMap<String, Option<DataType>> =
            self.plan.get_parameter_types().map_err(from_datafusion)?;
        let casts = self.placeholder_casts();
        let mut out = Vec::new();
        for i in 1..=types.len() {
            let id = format!("${i}");
            out.push(
                types
                    .get(&id)
                    .cloned()
                    .flatten()
                    .or_else(|| casts.get(&id).cloned()),
            );
        }
        Ok(out)
    }

    /// `$n::type` gives an untyped parameter its type, as PostgreSQL infers it.
    fn placeholder_casts(&self) -> HashMap<String, DataType> {
        use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
        use datafusion::logical_expr::{Cast, Expr, TryCast};
        let mut found = HashMap::new();
        let _ = self.plan.apply_with_subqueries(|node| {
            node.apply_expressions(|expr| {
                expr.apply(|e| {
                        if let Expr::Cast(Cast { expr, field })
                        | Expr::TryCast(TryCast { expr, field }) = e
                            && let Expr::Placeholder(p) = expr.as_ref()
                        {
                            found
                                .entry(p.id.clone())
                                .or_insert_with(|| field.data_type().clone());
                        }
                        Ok(TreeNodeRecursion::Continue)
                    })
            })
        });
        found
    }

    pub fn is_explain(&self) -> bool {
        matches!(self.plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_))
    }

    /// Whether every table it reads is a fuse table as the catalog resolved
    /// it: not a system table, catalog view or table function, whose rows or
    /// snapshot (`AT (TIMESTAMP => now() - ...)`) are fixed when the plan is
    /// made.
    pub fn reads_only_fuse_tables(&self) -> bool {
        use datafusion::common::tree_node::TreeNodeRecursion;
        use datafusion::datasource::source_as_provider;
        let mut only = true;
        let _ = self.plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                only &= source_as_provider(&scan.source)
                    .is_ok_and(|p| p.is::<table::FuseTableProvider>());
            }
            Ok(if only {
                TreeNodeRecursion::Continue
            } else {
                TreeNodeRecursion::Stop
            })
        });
        only
    }
}

/// The output of a statement run by DataFusion.
pub enum QueryOutput {
    Rows {
        schema: SchemaRef,
        stream: BatchStream,
    },
    /// Rows affected by an INSERT, UPDATE or DELETE.
    Affected { kind: PlanKind, rows: u64 },
}

/// A kept plan prunes blocks as it opens them, each against its own
/// statistics; beyond this many blocks, pruning them all at once while
/// planning costs less than keeping the plan saves.
const KEEP_MAX_BLOCKS: usize = 256;

/// One session's DataFusion context.
pub struct QueryContext {
    ctx: SessionContext,
    interrupt: Arc<Interrupt>,
    reports: Arc<ScanReports>,
    txn: catalog::TxnSlot,
    settings: pg::SettingsSlot,
    heavy_query_blocks: usize,
}

impl QueryContext {
    /// The switch that stops this session's running statement.
    pub fn interrupt(&self) -> Arc<Interrupt> {
        self.interrupt.clone()
    }
    /// Makes statements read and write through `txn` (None: autocommit).
    pub fn set_transaction(&self, txn: Option<Arc<crate::fuse::txn::Transaction>>) {
        if let Ok(mut slot) = self.txn.write() {
            *slot = txn;
        }
    }

    /// The session's parameters, as `current_setting` answers them.
    pub fn set_settings(&self, values: &std::collections::BTreeMap<String, String>) {
        if let Ok(mut slot) = self.settings.write()
            && *slot != *values
        {
            *slot = values.clone();
        }
    }

    /// Names the session's user to SQL (`current_user` and friends).
    pub fn set_user(&self, user: &str) {
        pg::set_user(&self.ctx, user);
    }

    /// Changes the database unqualified table names resolve in.
    pub fn set_database(&self, database: &str) {
        let state = self.ctx.state_ref();
        let mut state = state.write();
        state.config_mut().options_mut().catalog.default_schema = database.to_string();
        drop(state);
        pg::set_current_schema(&self.ctx, database);
    }

    /// Plans a statement DataFusion handles (queries and DML).
    pub async fn plan(&self, statement: ast::Statement) -> Result<QueryPlan> {
        self.reports.take();
        let state = self.ctx.state();
        let plan = state
            .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
                statement,
            )))
            .await
            .and_then(literals::type_as_postgres)
            .map_err(from_datafusion)?;
        let kind = match &plan {
            LogicalPlan::Dml(DmlStatement { op, input, .. }) => match op {
                WriteOp::Insert(_) => PlanKind::Insert,
                WriteOp::Update => {
                    check_simple_dml(input, "UPDATE")?;
                    PlanKind::Update
                }
                WriteOp::Delete => {
                    check_simple_dml(input, "DELETE")?;
                    PlanKind::Delete
                }
                WriteOp::Truncate => PlanKind::Truncate,
                other => {
                    return Err(Error::unsupported(format!("{other} is not supported")));
                }
            },
            LogicalPlan::Ddl(_) | LogicalPlan::Statement(_) | LogicalPlan::Copy(_) => {
                return Err(Error::unsupported(
                    "this statement is not supported by fusegate",
                ));
            }
            _ => PlanKind::Rows,
        };
        Ok(QueryPlan {
            plan,
            kind,
            names: None,
            kept: None,
        })
    }

    /// Runs a plan with its parameter values bound. Rows stream as they are
    /// produced; DML runs to completion before returning.
    pub async fn execute(
        &self,
        plan: &QueryPlan,
        params: Option<ParamValues>,
    ) -> Result<QueryOutput> {
        self.reports.take();
        if let Some(slot) = &plan.kept
            && plan.kind == PlanKind::Rows
            && let Some(output) = self.execute_kept(plan, slot, params.as_ref()).await?
        {
            return Ok(output);
        }
        let mut logical = plan.plan.clone();
        if let Some(params) = params {
            logical = logical.with_param_values(params).map_err(from_datafusion)?;
        }
        let df = self
            .ctx
            .execute_logical_plan(logical)
            .await
            .map_err(from_datafusion)?;
        let schema = plan.output_schema();
        let context = Arc::new(df.task_ctx());
        // Planning prunes the scans: after it, the blocks to read are known.
        let physical = df.create_physical_plan().await.map_err(from_datafusion)?;
        match plan.kind {
            PlanKind::Rows => {
                let stream = if self.reports.blocks_read() > self.heavy_query_blocks {
                    background::execute(physical, context)?
                } else {
                    let stream = datafusion::physical_plan::execute_stream(physical, context)
                        .map_err(from_datafusion)?;
                    Box::pin(stream.map_err(from_datafusion))
                };
                Ok(QueryOutput::Rows {
                    schema,
                    stream: self.interrupt.current().guard(stream),
                })
            }
            kind => {
                let stream = datafusion::physical_plan::execute_stream(physical, context)
                    .map_err(from_datafusion)?;
                let stream: BatchStream = Box::pin(stream.map_err(from_datafusion));
                let batches: Vec<RecordBatch> = stream.try_collect().await?;
                let rows = batches
                    .iter()
                    .filter(|b| b.num_rows() > 0)
                    .filter_map(|b| {
                        b.column(0)
                            .as_any()
                            .downcast_ref::<arrow::array::UInt64Array>()
                            .map(|a| a.value(0))
                    })
                    .sum();
                Ok(QueryOutput::Affected { kind, rows })
            }
        }
    }

    /// Runs `plan` through its kept physical plan, made at its second
    /// execution (see `kept`). `None` when it has none or the parameters do
    /// not bind: the caller plans as usual.
    async fn execute_kept(
        &self,
        plan: &QueryPlan,
        slot: &kept::KeptSlot,
        params: Option<&ParamValues>,
    ) -> Result<Option<QueryOutput>> {
        let found = {
            let mut state = slot.lock().map_err(|_| Error::internal("kept plan lock"))?;
            match &*state {
                kept::Kept::New => {
                    *state = kept::Kept::Untried;
                    return Ok(None);
                }
                kept::Kept::No => return Ok(None),
                kept::Kept::Ready(k) => Some(k.clone()),
                kept::Kept::Untried => {
                    // Tried once: concurrent executions plan as usual meanwhile.
                    *state = kept::Kept::No;
                    None
                }
            }
        };
        let ready = match found {
            Some(ready) => ready,
            None => {
                let made = self.make_kept(plan).await;
                self.reports.take();
                let made = match made {
                    Ok(made) => made,
                    Err(why) => {
                        tracing::debug!(why, "the statement is planned at every execution");
                        return Ok(None);
                    }
                };
                tracing::debug!("the statement's physical plan is kept");
                let made = Arc::new(made);
                if let Ok(mut state) = slot.lock() {
                    *state = kept::Kept::Ready(made.clone());
                }
                made
            }
        };
        let Some(bound) = ready.bind(params) else {
            return Ok(None);
        };
        let (physical, blocks) = ready.for_execution().map_err(from_datafusion)?;
        // A made plan holds its functions: the context needs no registry,
        // whose copy (every function's name) `SessionContext::task_ctx` makes.
        let context = Arc::new(TaskContext::new(
            None,
            self.ctx.session_id(),
            self.ctx.copied_config(),
            Default::default(),
            Default::default(),
            Default::default(),
            Default::default(),
            self.ctx.runtime_env(),
        ));
        // Where it runs depends on the blocks these values read (`background`).
        let stream = if blocks > self.heavy_query_blocks {
            background::execute(physical, context)?
        } else {
            let stream = datafusion::physical_plan::execute_stream(physical, context)
                .map_err(from_datafusion)?;
            Box::pin(stream.map_err(from_datafusion))
        };
        // The parameters stay bound while the rows stream.
        let stream: BatchStream = Box::pin(stream.map_ok(move |batch| {
            let _ = &bound;
            batch
        }));
        Ok(Some(QueryOutput::Rows {
            schema: plan.output_schema(),
            stream: self.interrupt.current().guard(stream),
        }))
    }

    /// Makes the physical plan of `plan` to keep, with its parameters left
    /// open; `Err` says why it cannot be kept.
    async fn make_kept(&self, plan: &QueryPlan) -> std::result::Result<kept::KeptPlan, String> {
        if !kept::may_keep(&plan.plan) {
            return Err("it calls a function that is not immutable".into());
        }
        let state = self.ctx.state();
        let slot = Arc::new(kept::ParamSlot::default());
        let optimized = state.optimize(&plan.plan).map_err(|e| e.to_string())?;
        let (bound, types) = kept::bind_params(optimized, &slot)
            .map_err(|e| e.to_string())?
            .ok_or("a parameter's type is unknown")?;
        let physical = state
            .query_planner()
            .create_physical_plan(&bound, &state)
            .await
            .map_err(|e| e.to_string())?;
        if !kept::may_rerun(&physical) {
            return Err("an operator of its plan may not run twice".into());
        }
        let scans = self.reports.take();
        if scans.iter().map(|s| s.blocks_total).sum::<usize>() > KEEP_MAX_BLOCKS {
            return Err(format!("it scans more than {KEEP_MAX_BLOCKS} blocks"));
        }
        Ok(kept::KeptPlan::new(physical, slot, types, scans))
    }

    /// Evaluates a constant SQL expression as a timestamp (microseconds since
    /// the epoch), e.g. FLASHBACK's `TIMESTAMP => now() - INTERVAL '1 hour'`.
    pub async fn eval_timestamp(&self, expr: ast::Expr) -> Result<i64> {
        let column = self
            .eval_constant(&expr.to_string(), "TIMESTAMP")
            .await?
            .ok_or_else(|| Error::internal("timestamp expression returned no rows"))?;
        let column = arrow::compute::cast(
            &column,
            &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
        )?;
        let values = column
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .ok_or_else(|| Error::internal("timestamp expression of another type"))?;
        if values.is_empty() || arrow::array::Array::is_null(values, 0) {
            return Err(Error::new(
                crate::error::ErrorKind::NullValueNotAllowed,
                "the timestamp is NULL",
            ));
        }
        Ok(values.value(0))
    }

    /// Evaluates a constant SQL expression cast to a SQL type, as text (NULL: None).
    pub async fn eval_as_text(&self, expr: &str, sql_type: &str) -> Result<Option<String>> {
        let Some(column) = self.eval_constant(expr, sql_type).await? else {
            return Ok(None);
        };
        let text = arrow::compute::cast(&column, &DataType::Utf8)?;
        let text = text
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .ok_or_else(|| Error::internal("cast to text failed"))?;
        if arrow::array::Array::is_empty(text) || arrow::array::Array::is_null(text, 0) {
            return Ok(None);
        }
        Ok(Some(text.value(0).to_string()))
    }

    /// `SELECT CAST((expr) AS sql_type)`, run: its column (None: no rows).
    async fn eval_constant(
        &self,
        expr: &str,
        sql_type: &str,
    ) -> Result<Option<arrow::array::ArrayRef>> {
        let sql = format!("SELECT CAST(({expr}) AS {sql_type})");
        let statement =
            sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, &sql)
                .map_err(|e| Error::syntax(format!("syntax error: {e}")))?
                .remove(0);
        let plan = self.plan(statement).await?;
        let QueryOutput::Rows { stream, .. } = self.execute(&plan, None).await? else {
            return Err(Error::internal("expression returned no rows"));
        };
        let batches: Vec<RecordBatch> = stream.try_collect().await?;
        Ok(batches.first().map(|b| b.column(0).clone()))
    }

    /// The scans of the last statement planned or executed.
    pub fn take_scan_reports(&self) -> Vec<ScanReport> {
        self.reports.take()
    }
}

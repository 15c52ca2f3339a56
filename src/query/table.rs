//! A fuse table as a DataFusion `TableProvider`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

use datafusion::common::DFSchema;
use datafusion::logical_expr::utils::conjunction;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::empty::EmptyExec;

use super::insert::FuseSink;
use super::mutation::{Mutation, MutationSink};
use super::scan::scan_table;
use crate::error::Error;
use crate::fuse::FuseTable;
use crate::fuse::schema::TableSchema;

#[derive(Debug)]
pub struct FuseTableProvider {
    table: FuseTable,
    schema: SchemaRef,
    /// DEFAULT expressions by column name.
    defaults: HashMap<String, Expr>,
}

impl FuseTableProvider {
    pub fn new(table: FuseTable, defaults: HashMap<String, Expr>) -> Self {
        let columns = &table.meta().schema.columns;
        let fields: Vec<Field> = plan_schema(&table.meta().schema)
            .fields()
            .iter()
            .zip(columns)
            .map(|(f, c)| {
                let mut metadata = f.metadata().clone();
                metadata.extend(crate::query::pg_type_metadata(&c.ty));
                f.as_ref().clone().with_metadata(metadata)
            })
            .collect();
        FuseTableProvider {
            table,
            schema: Arc::new(Schema::new(fields)),
            defaults,
        }
    }
}

/// The Arrow type plans read a stored column as. Text is stored as plain
/// Parquet strings and read as `Utf8View`: the Parquet reader then builds
/// views over the pages it decoded instead of copying every value, and
/// DataFusion's string kernels are faster on views (docs/benchmarks.md,
/// "2026-12-07, night").
pub(crate) fn plan_type(stored: &DataType) -> DataType {
    match stored {
        DataType::Utf8 => DataType::Utf8View,
        other => other.clone(),
    }
}

/// A table's columns as plans see them: with [`plan_type`]s, and all
/// nullable. DataFusion would otherwise plan `INSERT ... VALUES (NULL)` into
/// a non-nullable batch and fail with an internal error; NOT NULL is enforced
/// when rows are written, with PostgreSQL's error (`insert::conform`).
pub(crate) fn plan_schema(schema: &TableSchema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .to_arrow()
        .fields()
        .iter()
        .map(|f| {
            let ty = plan_type(f.data_type());
            f.as_ref().clone().with_data_type(ty).with_nullable(true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

impl FuseTableProvider {
    /// The conjunction of DML filters as one physical predicate over the table.
    fn predicate(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DFResult<Option<Arc<dyn PhysicalExpr>>> {
        let filters = filters
            .into_iter()
            .map(unqualify)
            .collect::<DFResult<Vec<_>>>()?;
        let Some(expr) = conjunction(filters) else {
            return Ok(None);
        };
        let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
        Ok(Some(state.create_physical_expr(expr, &df_schema)?))
    }

    /// The mutation runs when the plan executes (not at planning: EXPLAIN must not mutate).
    fn mutation_plan(
        &self,
        predicate: Option<Arc<dyn PhysicalExpr>>,
        mutation: Mutation,
    ) -> Arc<dyn ExecutionPlan> {
        let input = Arc::new(EmptyExec::new(Arc::new(arrow::datatypes::Schema::empty())));
        let sink = MutationSink::new(self.table.clone(), predicate, mutation);
        Arc::new(DataSinkExec::new(input, Arc::new(sink), None))
    }
}

/// Drops table qualifiers from column references (`t.a` → `a`): the
/// mutation evaluates expressions against the bare table schema.
fn unqualify(expr: Expr) -> DFResult<Expr> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    expr.transform(|e| match e {
        Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(
            datafusion::common::Column::new_unqualified(c.name),
        ))),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

fn to_df(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[async_trait]
impl TableProvider for FuseTableProvider {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        // Filters prune blocks and row groups, but rows are still filtered above the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        scan_table(&self.table, &self.schema, state, projection, filters, limit)
            .await
            .map_err(to_df)
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(to_df(Error::unsupported(format!(
                "INSERT {insert_op} is not supported for fuse tables"
            ))));
        }
        Ok(Arc::new(DataSinkExec::new(
            input,
            Arc::new(FuseSink::new(self.table.clone())),
            None,
        )))
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let predicate = self.predicate(state, filters)?;
        Ok(self.mutation_plan(predicate, Mutation::Delete))
    }

    async fn update(
        &self,
        state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let predicate = self.predicate(state, filters)?;
        let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
        let mut values = Vec::with_capacity(assignments.len());
        for (column, expr) in assignments {
            let index = self.schema.index_of(&column)?;
            values.push((
                index,
                state.create_physical_expr(unqualify(expr)?, &df_schema)?,
            ));
        }
        Ok(self.mutation_plan(predicate, Mutation::Update(values)))
    }

    async fn truncate(&self, _state: &dyn Session) -> DFResult<Arc<dyn ExecutionPlan>> {
        Ok(self.mutation_plan(None, Mutation::Truncate))
    }
}

//! pg_attribute with the types fusegate tables declare. datafusion-pg-catalog
//! derives a column's type from its Arrow type alone, so `VARCHAR(20)` reads
//! as `text` and `NUMERIC(12,3)` loses its precision (atttypmod -1); JDBC's
//! getColumns, SQLAlchemy's reflection and psql's `\d` read both from here.
//! This wraps the library's table and patches `atttypid`/`atttypmod` of
//! fusegate columns, keeping its relation OIDs (which pg_class shares).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::{ExecutionPlan, collect};

use super::{PG_TYPE_KEY, PG_TYPMOD_KEY, pg_type_metadata};
use crate::fuse::FuseEngine;

const VARCHAR_OID: i32 = 1043;

/// The pg_catalog schema: the library's, with pg_attribute patched.
#[derive(Debug)]
pub struct PgCatalog {
    pub inner: Arc<dyn SchemaProvider>,
    pub fuse: Arc<FuseEngine>,
}

#[async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = self.inner.table(name).await?;
        if !name.eq_ignore_ascii_case("pg_attribute") {
            return Ok(table);
        }
        Ok(table.map(|inner| {
            Arc::new(PgAttribute {
                inner,
                catalog: self.inner.clone(),
                fuse: self.fuse.clone(),
            }) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

#[derive(Debug)]
struct PgAttribute {
    inner: Arc<dyn TableProvider>,
    catalog: Arc<dyn SchemaProvider>,
    fuse: Arc<FuseEngine>,
}

#[async_trait]
impl TableProvider for PgAttribute {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let attributes = scan_all(state, &self.inner).await?;
        let relations = self.relations(state).await?;
        let patched = attributes
            .iter()
            .map(|batch| self.patch(batch, &relations))
            .collect::<Result<Vec<_>>>()?;
        MemTable::try_new(self.schema(), vec![patched])?
            .scan(state, projection, filters, limit)
            .await
    }
}

impl PgAttribute {
    /// Relation OID → (schema, table), from the library's pg_class and
    /// pg_namespace.
    async fn relations(&self, state: &dyn Session) -> Result<HashMap<i32, (String, String)>> {
        let mut namespaces = HashMap::new();
        for batch in self.scan_catalog(state, "pg_namespace").await? {
            let oids = int32_column(&batch, "oid")?;
            let names = string_column(&batch, "nspname")?;
            for (i, name) in names.into_iter().enumerate() {
                namespaces.insert(oids.value(i), name);
            }
        }
        let mut relations = HashMap::new();
        for batch in self.scan_catalog(state, "pg_class").await? {
            let oids = int32_column(&batch, "oid")?;
            let namespace = int32_column(&batch, "relnamespace")?;
            let names = string_column(&batch, "relname")?;
            for (i, name) in names.into_iter().enumerate() {
                if let Some(schema) = namespaces.get(&namespace.value(i)) {
                    relations.insert(oids.value(i), (schema.clone(), name));
                }
            }
        }
        Ok(relations)
    }

    async fn scan_catalog(&self, state: &dyn Session, name: &str) -> Result<Vec<RecordBatch>> {
        match self.catalog.table(name).await? {
            Some(table) => scan_all(state, &table).await,
            None => Ok(vec![]),
        }
    }

    /// Replaces atttypid and atttypmod of the fusegate columns in `batch`.
    fn patch(
        &self,
        batch: &RecordBatch,
        relations: &HashMap<i32, (String, String)>,
    ) -> Result<RecordBatch> {
        let relids = int32_column(batch, "attrelid")?;
        let names = string_column(batch, "attname")?;
        let type_idx = batch.schema().index_of("atttypid")?;
        let typmod_idx = batch.schema().index_of("atttypmod")?;
        let mut types: Vec<Option<i32>> = int32_column(batch, "atttypid")?.iter().collect();
        let mut typmods: Vec<Option<i32>> = int32_column(batch, "atttypmod")?.iter().collect();
        let cached = self.fuse.catalog().cached();
        for i in 0..batch.num_rows() {
            let Some((schema, table)) = relations.get(&relids.value(i)) else {
                continue;
            };
            let Some(meta) = cached.table(schema, table) else {
                continue;
            };
            let Some(column) = meta.schema.column(&names[i]) else {
                continue;
            };
            let metadata = pg_type_metadata(&column.ty);
            if metadata.get(PG_TYPE_KEY).map(String::as_str) == Some("varchar") {
                types[i] = Some(VARCHAR_OID);
            }
            if let Some(typmod) = metadata.get(PG_TYPMOD_KEY).and_then(|t| t.parse().ok()) {
                typmods[i] = Some(typmod);
            }
        }
        let mut columns = batch.columns().to_vec();
        columns[type_idx] = retype(Int32Array::from(types), batch.column(type_idx))?;
        columns[typmod_idx] = retype(Int32Array::from(typmods), batch.column(typmod_idx))?;
        Ok(RecordBatch::try_new(batch.schema(), columns)?)
    }
}

async fn scan_all(state: &dyn Session, table: &Arc<dyn TableProvider>) -> Result<Vec<RecordBatch>> {
    let plan = table.scan(state, None, &[], None).await?;
    collect(plan, state.task_ctx()).await
}

fn int32_column(batch: &RecordBatch, name: &str) -> Result<Int32Array> {
    let column = batch.column(batch.schema().index_of(name)?);
    Ok(cast(column, &DataType::Int32)?
        .as_primitive::<Int32Type>()
        .clone())
}

fn string_column(batch: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let column = cast(
        batch.column(batch.schema().index_of(name)?),
        &DataType::Utf8,
    )?;
    let strings = column.as_string_opt::<i32>().ok_or_else(|| {
        DataFusionError::Internal(format!("pg_catalog column {name} is not text"))
    })?;
    Ok(strings
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect())
}

/// `values` in the type (and field) the library's column has.
fn retype(values: Int32Array, like: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(&values, like.data_type())?)
}

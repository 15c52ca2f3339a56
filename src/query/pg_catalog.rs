//! The pg_catalog tables datafusion-pg-catalog builds, patched where
//! fusegate knows better. The library derives a column's type from its Arrow
//! type alone, so `VARCHAR(20)` reads as `text` and `NUMERIC(12,3)` loses its
//! precision (atttypmod -1); it knows nothing of column defaults; and it holds
//! `int2vector`/`int2[]` columns as text, which `unnest` cannot expand. JDBC's
//! getColumns, SQLAlchemy's reflection and psql's `\d` read all of these.
//! Each patched table scans the library's rows and rewrites them, keeping its
//! relation OIDs (which pg_class shares):
//! - pg_attribute: `atttypid`/`atttypmod` from the declared type, `atthasdef`;
//! - pg_attrdef: one row per column DEFAULT, `adbin` holding the default's
//!   SQL text (what `pg_get_expr` returns);
//! - pg_index (`indkey`) and pg_constraint (`conkey`, `confkey`): int2 lists.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, Int64Builder, ListBuilder, RecordBatch,
    StringArray,
};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::{ExecutionPlan, collect};

use super::{PG_TYPE_KEY, PG_TYPMOD_KEY, pg_type_metadata};
use crate::fuse::FuseEngine;
use crate::fuse::catalog::CatalogState;

const VARCHAR_OID: i32 = 1043;

/// The pg_catalog schema: the library's, with the tables above patched.
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
        let Some(inner) = self.inner.table(name).await? else {
            return Ok(None);
        };
        let patch = match name.to_ascii_lowercase().as_str() {
            "pg_attribute" => Patch::Attribute,
            "pg_attrdef" => Patch::Attrdef,
            "pg_index" => Patch::Vectors(&[
                ("indkey", DataType::Int16),
                ("indoption", DataType::Int16),
                ("indclass", DataType::Int32),
                ("indcollation", DataType::Int32),
            ]),
            "pg_class" => Patch::NullColumns {
                columns: &[("relacl", DataType::Utf8), ("reloptions", DataType::Utf8)],
                before: "relpartbound",
            },
            "pg_constraint" => {
                Patch::Vectors(&[("conkey", DataType::Int16), ("confkey", DataType::Int16)])
            }
            _ => return Ok(Some(inner)),
        };
        let schema = patch.schema(inner.schema());
        Ok(Some(Arc::new(Patched {
            inner,
            schema,
            patch,
            catalog: self.inner.clone(),
            fuse: self.fuse.clone(),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

#[derive(Debug, Clone, Copy)]
enum Patch {
    Attribute,
    Attrdef,
    /// Text columns holding `int2vector`/`oidvector` (`1 2`) or `int2[]`
    /// (`{1,2}`), with their element types.
    Vectors(&'static [(&'static str, DataType)]),
    /// Columns the library lacks, all NULL in fusegate (arrays of the given
    /// element type), inserted where PostgreSQL has them.
    NullColumns {
        columns: &'static [(&'static str, DataType)],
        before: &'static str,
    },
}

impl Patch {
    fn schema(self, library: SchemaRef) -> SchemaRef {
        if let Patch::NullColumns { columns, before } = self {
            let mut fields: Vec<Field> = library
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            let at = library.index_of(before).unwrap_or(fields.len());
            for (i, (name, element)) in columns.iter().enumerate() {
                if library.index_of(name).is_err() {
                    let ty = DataType::new_list(element.clone(), true);
                    fields.insert(at + i, Field::new(*name, ty, true));
                }
            }
            return Arc::new(Schema::new_with_metadata(
                fields,
                library.metadata().clone(),
            ));
        }
        let Patch::Vectors(columns) = self else {
            return library;
        };
        let fields: Vec<Field> = library
            .fields()
            .iter()
            .map(|f| {
                if let Some((_, element)) = columns.iter().find(|(c, _)| c == f.name()) {
                    Field::new(f.name(), DataType::new_list(element.clone(), true), true)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        Arc::new(Schema::new_with_metadata(
            fields,
            library.metadata().clone(),
        ))
    }
}

#[derive(Debug)]
struct Patched {
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
    patch: Patch,
    catalog: Arc<dyn SchemaProvider>,
    fuse: Arc<FuseEngine>,
}

#[async_trait]
impl TableProvider for Patched {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
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
        let rows = scan_all(state, &self.inner).await?;
        let patched = match self.patch {
            Patch::Attribute => {
                let relations = self.relations(state).await?;
                let cached = self.fuse.catalog().cached();
                rows.iter()
                    .map(|batch| patch_attributes(batch, &relations, &cached))
                    .collect::<Result<Vec<_>>>()?
            }
            Patch::Attrdef => {
                let relations = self.relations(state).await?;
                let mut rows = rows;
                rows.push(defaults(
                    &self.schema,
                    &relations,
                    &self.fuse.catalog().cached(),
                )?);
                rows
            }
            Patch::Vectors(columns) => rows
                .iter()
                .map(|batch| vectors(batch, &self.schema, columns))
                .collect::<Result<Vec<_>>>()?,
            Patch::NullColumns { .. } => rows
                .iter()
                .map(|batch| with_null_columns(batch, &self.schema))
                .collect::<Result<Vec<_>>>()?,
        };
        MemTable::try_new(self.schema.clone(), vec![patched])?
            .scan(state, projection, filters, limit)
            .await
    }
}

impl Patched {
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
}

/// Replaces atttypid, atttypmod and atthasdef of the fusegate columns.
fn patch_attributes(
    batch: &RecordBatch,
    relations: &HashMap<i32, (String, String)>,
    cached: &CatalogState,
) -> Result<RecordBatch> {
    let relids = int32_column(batch, "attrelid")?;
    let names = string_column(batch, "attname")?;
    let index = |name: &str| batch.schema().index_of(name);
    let (type_idx, typmod_idx, hasdef_idx) =
        (index("atttypid")?, index("atttypmod")?, index("atthasdef")?);
    let mut types: Vec<Option<i32>> = int32_column(batch, "atttypid")?.iter().collect();
    let mut typmods: Vec<Option<i32>> = int32_column(batch, "atttypmod")?.iter().collect();
    let mut hasdefs: Vec<Option<bool>> = cast(batch.column(hasdef_idx), &DataType::Boolean)?
        .as_boolean()
        .iter()
        .collect();
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
        hasdefs[i] = Some(column.default.is_some());
    }
    let mut columns = batch.columns().to_vec();
    columns[type_idx] = retype(Arc::new(Int32Array::from(types)), &columns[type_idx])?;
    columns[typmod_idx] = retype(Arc::new(Int32Array::from(typmods)), &columns[typmod_idx])?;
    columns[hasdef_idx] = retype(Arc::new(BooleanArray::from(hasdefs)), &columns[hasdef_idx])?;
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// pg_attrdef rows for the fusegate columns with a DEFAULT. A default has no
/// OID of its own in fusegate; it gets one derived from its relation and
/// column number, unique while both are.
fn defaults(
    schema: &SchemaRef,
    relations: &HashMap<i32, (String, String)>,
    cached: &CatalogState,
) -> Result<RecordBatch> {
    let (mut oids, mut relids, mut nums, mut texts) = (vec![], vec![], vec![], vec![]);
    let mut sorted: Vec<_> = relations.iter().collect();
    sorted.sort();
    for (relid, (schema_name, table)) in sorted {
        let Some(meta) = cached.table(schema_name, table) else {
            continue;
        };
        for (position, column) in meta.schema.columns.iter().enumerate() {
            if let Some(default) = &column.default {
                let num = position as i32 + 1;
                oids.push(relid.saturating_mul(1000).saturating_add(num));
                relids.push(*relid);
                nums.push(num);
                texts.push(default.clone());
            }
        }
    }
    let values: [ArrayRef; 4] = [
        Arc::new(Int32Array::from(oids)),
        Arc::new(Int32Array::from(relids)),
        Arc::new(Int32Array::from(nums)),
        Arc::new(StringArray::from(texts)),
    ];
    let columns = ["oid", "adrelid", "adnum", "adbin"]
        .iter()
        .zip(values)
        .map(|(name, values)| {
            let field = schema.field_with_name(name)?;
            Ok(cast(&values, field.data_type())?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// `columns` of `batch`, text in the library, as lists (in `schema`'s types).
fn vectors(
    batch: &RecordBatch,
    schema: &SchemaRef,
    columns: &[(&str, DataType)],
) -> Result<RecordBatch> {
    let mut values = batch.columns().to_vec();
    for (i, field) in batch.schema().fields().iter().enumerate() {
        if !columns.iter().any(|(c, _)| c == field.name()) {
            continue;
        }
        let text = cast(&values[i], &DataType::Utf8)?;
        let mut lists = ListBuilder::new(Int64Builder::new());
        for value in text.as_string::<i32>().iter() {
            match value {
                Some(value) => {
                    for element in parse_int_array(value)? {
                        lists.values().append_value(element);
                    }
                    lists.append(true);
                }
                None => lists.append(false),
            }
        }
        values[i] = cast(&lists.finish(), schema.field(i).data_type())?;
    }
    Ok(RecordBatch::try_new(schema.clone(), values)?)
}

/// `batch` in `schema`: its own columns by name, NULLs for the added ones.
fn with_null_columns(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.schema().index_of(field.name()) {
            Ok(i) => batch.column(i).clone(),
            Err(_) => arrow::array::new_null_array(field.data_type(), batch.num_rows()),
        })
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The elements of an `int2vector`/`oidvector` (`1 2`) or an integer array
/// (`{1,2}`) as text.
pub fn parse_int_array(text: &str) -> Result<Vec<i64>> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '-'))
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.parse::<i64>()
                .map_err(|_| DataFusionError::Execution(format!("invalid array element {e}")))
        })
        .collect()
}

async fn scan_all(state: &dyn Session, table: &Arc<dyn TableProvider>) -> Result<Vec<RecordBatch>> {
    let plan = table.scan(state, None, &[], None).await?;
    let batches = collect(plan, state.task_ctx()).await?;
    // One batch keeps the patched MemTable to one partition.
    Ok(vec![concat_batches(&table.schema(), &batches)?])
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

/// `values` in the type the library's column has.
fn retype(values: ArrayRef, like: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(&values, like.data_type())?)
}

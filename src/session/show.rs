//! SHOW TABLES / DATABASES / CREATE TABLE, with Databend's column names.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::Output;
use crate::error::Result;
use crate::fuse::{FuseEngine, TableMeta};
use crate::query::pg_functions::quote_ident;
use crate::sql::Statement;

pub(super) fn text_schema(names: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ))
}

pub(super) fn rows(schema: SchemaRef, columns: Vec<Vec<String>>) -> Result<Output> {
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    Ok(Output::Rows {
        schema,
        stream: Box::pin(futures::stream::iter(vec![Ok(batch)])),
    })
}

/// The result columns of a statement fusegate answers itself (for Describe).
pub fn result_schema(statement: &Statement, database: &str) -> SchemaRef {
    match statement {
        Statement::ShowTables { database: db } => {
            let db = db.as_deref().unwrap_or(database);
            text_schema(&[&format!("Tables_in_{db}")])
        }
        Statement::ShowDatabases => text_schema(&["Database"]),
        Statement::ShowCreateTable { .. } => text_schema(&["Table", "Create Table"]),
        Statement::Call { procedure, .. } => {
            crate::system::result_schema(procedure).unwrap_or_else(|| Arc::new(Schema::empty()))
        }
        Statement::Show { name } => {
            Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, true)]))
        }
        _ => Arc::new(Schema::empty()),
    }
}

pub fn tables(fuse: &FuseEngine, database: &str) -> Result<Output> {
    let state = fuse.catalog().cached();
    let db = state.require_database(database)?;
    let names: Vec<String> = state.tables_of(db.id).map(|t| t.name.clone()).collect();
    rows(
        text_schema(&[&format!("Tables_in_{database}")]),
        vec![names],
    )
}

pub fn databases(fuse: &FuseEngine) -> Result<Output> {
    let state = fuse.catalog().cached();
    let mut names: Vec<String> = state.databases.iter().map(|d| d.name.clone()).collect();
    names.sort();
    rows(text_schema(&["Database"]), vec![names])
}

pub fn create_table(fuse: &FuseEngine, database: &str, name: &str) -> Result<Output> {
    let state = fuse.catalog().cached();
    let meta = state.require_table(database, name)?;
    rows(
        text_schema(&["Table", "Create Table"]),
        vec![vec![name.to_string()], vec![create_table_sql(meta)]],
    )
}

/// The CREATE TABLE statement of a table, secrets masked.
pub fn create_table_sql(meta: &TableMeta) -> String {
    let columns: Vec<String> = meta
        .schema
        .columns
        .iter()
        .map(|c| {
            let mut line = format!("  {} {}", quote_ident(&c.name), c.ty.sql_name());
            if !c.nullable {
                line.push_str(" NOT NULL");
            }
            if let Some(d) = &c.default {
                line.push_str(&format!(" DEFAULT {d}"));
            }
            line
        })
        .collect();
    let mut sql = format!(
        "CREATE TABLE {} (\n{}\n)",
        quote_ident(&meta.name),
        columns.join(",\n")
    );
    if let Some(location) = &meta.location {
        sql.push(' ');
        sql.push_str(&location.to_redacted_sql());
    }
    for (k, v) in &meta.options {
        sql.push_str(&format!(" {k} = {v}"));
    }
    sql
}

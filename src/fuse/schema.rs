//! Table schemas: the column types fusegate stores, with stable column ids so
//! that renames and drops never rewrite blocks.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Arrow field metadata key carrying the column id into Parquet (as Parquet's field_id).
pub const FIELD_ID_KEY: &str = "PARQUET:field_id";

/// Precision and scale of a DECIMAL/NUMERIC declared without them.
pub const DEFAULT_DECIMAL: (u8, i8) = (38, 10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnType {
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Varchar {
        length: Option<u32>,
    },
    Text,
    Boolean,
    Date,
    Timestamp,
    /// `timestamp with time zone`: an instant, stored in UTC.
    TimestampTz,
}

impl ColumnType {
    pub fn to_arrow(&self) -> DataType {
        match self {
            ColumnType::Int16 => DataType::Int16,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float32 => DataType::Float32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            ColumnType::Varchar { .. } | ColumnType::Text => DataType::Utf8,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::TimestampTz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
        }
    }

    /// The column type for an Arrow type produced by a query (CREATE TABLE AS).
    pub fn from_arrow(data_type: &DataType) -> Result<ColumnType> {
        Ok(match data_type {
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => ColumnType::Int16,
            DataType::Int32 | DataType::UInt16 => ColumnType::Int32,
            DataType::Int64 | DataType::UInt32 => ColumnType::Int64,
            DataType::UInt64 => ColumnType::Decimal {
                precision: 20,
                scale: 0,
            },
            DataType::Float16 | DataType::Float32 => ColumnType::Float32,
            DataType::Float64 => ColumnType::Float64,
            DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) => {
                ColumnType::Decimal {
                    precision: *p,
                    scale: *s,
                }
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                ColumnType::Text
            }
            DataType::Boolean => ColumnType::Boolean,
            DataType::Date32 | DataType::Date64 => ColumnType::Date,
            DataType::Timestamp(_, None) => ColumnType::Timestamp,
            DataType::Timestamp(_, Some(_)) => ColumnType::TimestampTz,
            DataType::Dictionary(_, value) => ColumnType::from_arrow(value)?,
            other => {
                return Err(Error::new(
                    ErrorKind::FeatureNotSupported,
                    format!("a table column cannot have type {other}"),
                ));
            }
        })
    }

    /// The PostgreSQL name of the type, as `format_type` and SHOW CREATE TABLE print it.
    pub fn sql_name(&self) -> String {
        match self {
            ColumnType::Int16 => "smallint".into(),
            ColumnType::Int32 => "integer".into(),
            ColumnType::Int64 => "bigint".into(),
            ColumnType::Float32 => "real".into(),
            ColumnType::Float64 => "double precision".into(),
            ColumnType::Decimal { precision, scale } => format!("numeric({precision},{scale})"),
            ColumnType::Varchar { length: Some(n) } => format!("character varying({n})"),
            ColumnType::Varchar { length: None } => "character varying".into(),
            ColumnType::Text => "text".into(),
            ColumnType::Boolean => "boolean".into(),
            ColumnType::Date => "date".into(),
            ColumnType::Timestamp => "timestamp without time zone".into(),
            ColumnType::TimestampTz => "timestamp with time zone".into(),
        }
    }

    /// Whether min/max statistics of this type are ordered the way SQL compares values.
    pub fn has_ordered_stats(&self) -> bool {
        !matches!(self, ColumnType::Boolean)
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql_name())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnMeta {
    /// Stable id: never reused within a table, written to Parquet as field_id.
    pub id: u32,
    pub name: String,
    #[serde(flatten)]
    pub ty: ColumnType,
    pub nullable: bool,
    /// The DEFAULT expression as SQL text, evaluated when an INSERT omits the column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// For a column added by ALTER TABLE: the value (as text) that rows
    /// written before it existed read as. None: NULL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    pub columns: Vec<ColumnMeta>,
    pub next_column_id: u32,
}

impl TableSchema {
    /// A schema for new columns, numbered from 0 in order.
    pub fn new(columns: Vec<(String, ColumnType, bool, Option<String>)>) -> Result<TableSchema> {
        let mut seen = HashMap::new();
        let mut metas = Vec::with_capacity(columns.len());
        for (i, (name, ty, nullable, default)) in columns.into_iter().enumerate() {
            if seen.insert(name.clone(), i).is_some() {
                return Err(Error::new(
                    ErrorKind::DuplicateColumn,
                    format!("column \"{name}\" specified more than once"),
                ));
            }
            metas.push(ColumnMeta {
                id: i as u32,
                name,
                ty,
                nullable,
                default,
                missing: None,
            });
        }
        Ok(TableSchema {
            next_column_id: metas.len() as u32,
            columns: metas,
        })
    }

    pub fn column(&self, name: &str) -> Option<&ColumnMeta> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn column_by_id(&self, id: u32) -> Option<&ColumnMeta> {
        self.columns.iter().find(|c| c.id == id)
    }

    /// The Arrow schema of the table, each field carrying its column id.
    pub fn to_arrow(&self) -> SchemaRef {
        let fields: Vec<Field> =
            self.columns
                .iter()
                .map(|c| {
                    Field::new(&c.name, c.ty.to_arrow(), c.nullable).with_metadata(HashMap::from([
                        (FIELD_ID_KEY.to_string(), c.id.to_string()),
                    ]))
                })
                .collect();
        Arc::new(Schema::new(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_columns_are_refused() {
        let err = TableSchema::new(vec![
            ("a".into(), ColumnType::Int32, true, None),
            ("a".into(), ColumnType::Text, true, None),
        ])
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DuplicateColumn);
    }

    #[test]
    fn schema_round_trips_through_json_and_arrow() {
        let schema = TableSchema::new(vec![
            ("a".into(), ColumnType::Int32, false, None),
            (
                "b".into(),
                ColumnType::Decimal {
                    precision: 10,
                    scale: 2,
                },
                true,
                Some("1.5".into()),
            ),
            (
                "c".into(),
                ColumnType::Varchar { length: Some(20) },
                true,
                None,
            ),
        ])
        .unwrap();
        let json = serde_json::to_string(&schema).unwrap();
        let back: TableSchema = serde_json::from_str(&json).unwrap();
        assert_eq!(back, schema);
        let arrow = schema.to_arrow();
        assert_eq!(arrow.field(1).data_type(), &DataType::Decimal128(10, 2));
        assert!(!arrow.field(0).is_nullable());
        assert_eq!(
            arrow
                .field(2)
                .metadata()
                .get(FIELD_ID_KEY)
                .map(String::as_str),
            Some("2")
        );
        assert_eq!(schema.columns[2].ty.sql_name(), "character varying(20)");
    }
}

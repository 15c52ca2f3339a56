//! PostgreSQL's catalog for clients: datafusion-pg-catalog's pg_catalog
//! tables and functions, fed with fusegate's own table schemas (so NOT NULL
//! shows in `\d`, although DataFusion sees every column as nullable), plus
//! the few visibility functions psql calls that it does not provide.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::CatalogProviderList;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, TableType, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::{PgCatalogSchemaProvider, PgCatalogStaticTables};

use super::catalog::CATALOG_NAME;
use super::error::from_datafusion;
use crate::error::Result;
use crate::fuse::FuseEngine;

/// DataFusion's catalog list, except that fusegate tables report their
/// schema as the catalog stores it (true nullability).
#[derive(Debug, Clone)]
struct FuseCatalogInfo {
    list: Arc<dyn CatalogProviderList>,
    fuse: Arc<FuseEngine>,
}

#[async_trait]
impl CatalogInfo for FuseCatalogInfo {
    async fn catalog_names(&self) -> Result<Vec<String>, DataFusionError> {
        self.list.catalog_names().await
    }

    async fn schema_names(&self, catalog: &str) -> Result<Option<Vec<String>>, DataFusionError> {
        self.list.schema_names(catalog).await
    }

    async fn table_names(
        &self,
        catalog: &str,
        schema: &str,
    ) -> Result<Option<Vec<String>>, DataFusionError> {
        self.list.table_names(catalog, schema).await
    }

    async fn table_schema(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<SchemaRef>, DataFusionError> {
        if catalog == CATALOG_NAME
            && let Some(meta) = self.fuse.catalog().cached().table(schema, table)
        {
            return Ok(Some(meta.schema.to_arrow()));
        }
        self.list.table_schema(catalog, schema, table).await
    }

    async fn table_type(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> Result<Option<TableType>, DataFusionError> {
        self.list.table_type(catalog, schema, table).await
    }
}

/// Installs pg_catalog and the PostgreSQL functions clients call into a session.
pub fn install(ctx: &SessionContext, fuse: Arc<FuseEngine>) -> Result<()> {
    datafusion_pg_catalog::setup_pg_catalog(ctx, CATALOG_NAME, EmptyContextProvider)
        .map_err(|e| from_datafusion(*e))?;
    let info = FuseCatalogInfo {
        list: ctx.state().catalog_list().clone(),
        fuse: fuse.clone(),
    };
    let static_tables = Arc::new(PgCatalogStaticTables::try_new().map_err(from_datafusion)?);
    let provider = PgCatalogSchemaProvider::try_new(info, static_tables, EmptyContextProvider)
        .map_err(from_datafusion)?;
    if let Some(catalog) = ctx.catalog(CATALOG_NAME) {
        catalog
            .register_schema(
                "pg_catalog",
                Arc::new(super::pg_attribute::PgCatalog {
                    inner: Arc::new(provider),
                    fuse: fuse.clone(),
                }),
            )
            .map_err(from_datafusion)?;
    }
    // Every object is visible: fusegate has no search_path-hidden objects.
    for name in [
        "pg_function_is_visible",
        "pg_type_is_visible",
        "pg_opclass_is_visible",
        "pg_collation_is_visible",
    ] {
        ctx.register_udf(constant_udf(
            name,
            vec![DataType::Int32],
            ScalarValue::Boolean(Some(true)),
        ));
    }
    // fusegate has no sequences, so no column owns one: NULL, as PostgreSQL
    // answers for a column without a serial default.
    ctx.register_udf(constant_udf(
        "pg_get_serial_sequence",
        vec![DataType::Utf8, DataType::Utf8],
        ScalarValue::Utf8(None),
    ));
    ctx.register_udf(create_udf(
        LIKE_ESCAPE_FUNCTION,
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let patterns = arrow::array::as_string_array(&arrays[0]);
            let escapes = arrow::array::as_string_array(&arrays[1]);
            let out: arrow::array::StringArray = patterns
                .iter()
                .zip(escapes.iter())
                .map(|(p, e)| match (p, e.and_then(|e| e.chars().next())) {
                    (Some(p), Some(e)) => Some(with_backslash_escapes(p, e)),
                    (p, _) => p.map(str::to_string),
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
        }),
    ));
    ctx.register_udf(create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let names = arrow::array::as_string_array(&arrays[0]);
            let oids: arrow::array::Int32Array =
                names.iter().map(|n| n.and_then(type_oid)).collect();
            Ok(ColumnarValue::Array(Arc::new(oids) as ArrayRef))
        }),
    ));
    ctx.register_udf(expand_array_udf());
    ctx.register_udf(super::json::json_build_object());
    ctx.register_udaf(super::only_row::only_row());
    ctx.register_udf(constant_text_udf(
        "version",
        format!(
            "PostgreSQL {} on {}-unknown-linux-gnu, compiled by rustc",
            crate::SERVER_VERSION,
            std::env::consts::ARCH
        ),
    ));
    Ok(())
}

/// The function `sql::rewrite_function_aliases` turns PostgreSQL's
/// set-returning `information_schema._pg_expandarray(a)` into, as
/// `unnest(fusegate_expand_array(a))`: one `(x, n)` row per element.
pub const EXPAND_ARRAY_FUNCTION: &str = "fusegate_expand_array";

/// `fusegate_expand_array(int2vector)`: the elements of an `int2vector` or
/// `int2[]` as a list of `(x, n)` structs, `n` counting from 1. The catalog
/// holds these arrays as text (`1 2`, `{1,2}`), or a list cast to text.
fn expand_array_udf() -> datafusion::logical_expr::ScalarUDF {
    use arrow::array::{Int16Builder, Int32Builder, ListBuilder, StructBuilder};
    use arrow::datatypes::{Field, Fields};
    let fields = Fields::from(vec![
        Field::new("x", DataType::Int16, true),
        Field::new("n", DataType::Int32, true),
    ]);
    let item = Field::new("item", DataType::Struct(fields.clone()), true);
    create_udf(
        EXPAND_ARRAY_FUNCTION,
        vec![DataType::Utf8],
        DataType::List(Arc::new(item.clone())),
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let texts = arrow::array::as_string_array(&arrays[0]);
            let mut out = ListBuilder::new(StructBuilder::from_fields(fields.clone(), 0))
                .with_field(Arc::new(item.clone()));
            for text in texts.iter() {
                let Some(text) = text else {
                    out.append(false);
                    continue;
                };
                let elements = text
                    .split(|c: char| !(c.is_ascii_digit() || c == '-'))
                    .filter(|e| !e.is_empty())
                    .map(|e| {
                        e.parse::<i16>().map_err(|_| {
                            DataFusionError::Execution(format!("invalid int2vector element {e}"))
                        })
                    });
                for (n, x) in elements.enumerate() {
                    let x = x?;
                    let row = out.values();
                    row.field_builder::<Int16Builder>(0)
                        .expect("x is int2")
                        .append_value(x);
                    row.field_builder::<Int32Builder>(1)
                        .expect("n is int4")
                        .append_value(n as i32 + 1);
                    row.append(true);
                }
                out.append(true);
            }
            Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
        }),
    )
}

/// The function `sql::rewrite_like_escapes` routes `LIKE ... ESCAPE 'c'`
/// patterns through.
pub const LIKE_ESCAPE_FUNCTION: &str = "fusegate_like_escape";

/// A LIKE pattern written with `escape` as its escape character, rewritten
/// for the backslash (DataFusion's only escape): escaped characters keep a
/// backslash escape, plain backslashes get one.
fn with_backslash_escapes(pattern: &str, escape: char) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            if let Some(next) = chars.next() {
                out.push('\\');
                out.push(next);
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

/// `to_regtype(name)`: the OID of a built-in type by any of its SQL
/// spellings (`int4`, `integer`, `pg_catalog.int4`...), NULL if unknown —
/// fusegate has no user-defined types.
fn type_oid(name: &str) -> Option<i32> {
    let name = name.trim().to_ascii_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
    let (base, array) = match name.strip_suffix("[]") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let (oid, array_oid) = match base {
        "bool" | "boolean" => (16, 1000),
        "bytea" => (17, 1001),
        "char" => (18, 1002),
        "name" => (19, 1003),
        "int8" | "bigint" => (20, 1016),
        "int2" | "smallint" => (21, 1005),
        "int4" | "integer" | "int" => (23, 1007),
        "text" => (25, 1009),
        "oid" => (26, 1028),
        "json" => (114, 199),
        "float4" | "real" => (700, 1021),
        "float8" | "double precision" => (701, 1022),
        "bpchar" | "character" => (1042, 1014),
        "varchar" | "character varying" => (1043, 1015),
        "date" => (1082, 1182),
        "time" | "time without time zone" => (1083, 1183),
        "timestamp" | "timestamp without time zone" => (1114, 1115),
        "timestamptz" | "timestamp with time zone" => (1184, 1185),
        "interval" => (1186, 1187),
        "numeric" | "decimal" => (1700, 1231),
        "uuid" => (2950, 2951),
        "jsonb" => (3802, 3807),
        _ => return None,
    };
    Some(if array { array_oid } else { oid })
}

/// Makes `current_schema()` name the session's current database (each
/// fusegate database is a schema to PostgreSQL clients).
pub fn set_current_schema(ctx: &SessionContext, database: &str) {
    ctx.register_udf(constant_text_udf("current_schema", database.to_string()));
    // The database a client connected to (dbname) is the current one, too.
    ctx.register_udf(constant_text_udf("current_database", database.to_string()));
}

/// Makes `current_user`, `session_user`, `user` and `current_role` name
/// the session's user.
pub fn set_user(ctx: &SessionContext, user: &str) {
    for name in ["current_user", "session_user", "user", "current_role"] {
        ctx.register_udf(constant_text_udf(name, user.to_string()));
    }
}

fn constant_text_udf(name: &str, value: String) -> datafusion::logical_expr::ScalarUDF {
    constant_udf(name, vec![], ScalarValue::Utf8(Some(value)))
}

/// A function of `args` whose answer is always `value`.
fn constant_udf(
    name: &str,
    args: Vec<DataType>,
    value: ScalarValue,
) -> datafusion::logical_expr::ScalarUDF {
    create_udf(
        name,
        args,
        value.data_type(),
        Volatility::Stable,
        Arc::new(move |_args: &[ColumnarValue]| Ok(ColumnarValue::Scalar(value.clone()))),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_escapes_become_backslashes() {
        assert_eq!(super::with_backslash_escapes("pg/_%", '/'), "pg\\_%");
        assert_eq!(super::with_backslash_escapes("a\\b//c", '/'), "a\\\\b\\/c");
        assert_eq!(super::type_oid("pg_catalog.INT4"), Some(23));
        assert_eq!(super::type_oid("character varying[]"), Some(1015));
        assert_eq!(super::type_oid("hstore"), None);
    }
}

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
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TableType, Volatility,
    create_udf,
};
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
                Arc::new(super::pg_catalog::PgCatalog {
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
    ctx.register_udf(pg_get_expr_udf());
    // fusegate has no indexes, constraints, views, triggers, rules or
    // extended statistics: PostgreSQL answers NULL for an OID that is none.
    for name in [
        "pg_get_indexdef",
        "pg_get_constraintdef",
        "pg_get_viewdef",
        "pg_get_triggerdef",
        "pg_get_ruledef",
        "pg_get_statisticsobjdef",
    ] {
        ctx.register_udf(no_object_udf(name));
    }
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
    ctx.register_udf(ScalarUDF::new_from_impl(PgTypeof {
        signature: Signature::any(1, Volatility::Immutable),
    }));
    ctx.register_udf(super::json::json_build_object());
    super::pg_functions::install(ctx);
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
/// `int2[]` (a list of int2, or its text `1 2` / `{1,2}`) as a list of
/// `(x, n)` structs, `n` counting from 1.
fn expand_array_udf() -> datafusion::logical_expr::ScalarUDF {
    use arrow::array::{AsArray, Int16Builder, Int32Builder, ListBuilder, StructBuilder};
    use arrow::datatypes::{Field, Fields, Int16Type};
    use datafusion::logical_expr::{ScalarFunctionArgs, ScalarUDFImpl, Signature};
    let fields = Fields::from(vec![
        Field::new("x", DataType::Int16, true),
        Field::new("n", DataType::Int32, true),
    ]);
    let item = Field::new("item", DataType::Struct(fields.clone()), true);

    #[derive(Debug, PartialEq, Eq, Hash)]
    struct ExpandArray {
        signature: Signature,
        fields: Fields,
        item: Field,
    }
    impl ScalarUDFImpl for ExpandArray {
        fn name(&self) -> &str {
            EXPAND_ARRAY_FUNCTION
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, _: &[DataType]) -> datafusion::common::Result<DataType> {
            Ok(DataType::List(Arc::new(self.item.clone())))
        }
        fn invoke_with_args(
            &self,
            args: ScalarFunctionArgs,
        ) -> datafusion::common::Result<ColumnarValue> {
            let arrays = ColumnarValue::values_to_arrays(&args.args)?;
            let arrays: Vec<Option<Vec<i16>>> = match arrays[0].data_type() {
                DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
                    let lists = arrow::compute::cast(
                        &arrays[0],
                        &DataType::new_list(DataType::Int16, true),
                    )?;
                    lists
                        .as_list::<i32>()
                        .iter()
                        .map(|list| {
                            list.map(|l| l.as_primitive::<Int16Type>().iter().flatten().collect())
                        })
                        .collect()
                }
                _ => {
                    let texts = arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
                    texts
                        .as_string::<i32>()
                        .iter()
                        .map(|t| {
                            t.map(|t| {
                                super::pg_catalog::parse_int_array(t)?
                                    .into_iter()
                                    .map(|e| {
                                        i16::try_from(e).map_err(|_| {
                                            DataFusionError::Execution(format!(
                                                "int2 array element {e} is out of range"
                                            ))
                                        })
                                    })
                                    .collect()
                            })
                            .transpose()
                        })
                        .collect::<datafusion::common::Result<_>>()?
                }
            };
            let mut out = ListBuilder::new(StructBuilder::from_fields(self.fields.clone(), 0))
                .with_field(Arc::new(self.item.clone()));
            for elements in arrays {
                let Some(elements) = elements else {
                    out.append(false);
                    continue;
                };
                for (n, x) in elements.into_iter().enumerate() {
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
        }
    }
    datafusion::logical_expr::ScalarUDF::new_from_impl(ExpandArray {
        signature: Signature::any(1, Volatility::Immutable),
        fields,
        item,
    })
}

/// A function answering text from `arity` arguments of any type, computed
/// by `body` (the catalog functions below).
fn text_udf(
    name: &'static str,
    arity: std::ops::RangeInclusive<usize>,
    body: impl Fn(
        datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue>
    + Send
    + Sync
    + 'static,
) -> datafusion::logical_expr::ScalarUDF {
    use datafusion::logical_expr::{ScalarFunctionArgs, ScalarUDFImpl, Signature};

    type Body =
        dyn Fn(ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue> + Send + Sync;
    struct TextFunction {
        name: &'static str,
        arity: std::ops::RangeInclusive<usize>,
        signature: Signature,
        body: Box<Body>,
    }
    impl std::fmt::Debug for TextFunction {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.name)
        }
    }
    // One function per name in a session: the name is its identity.
    impl PartialEq for TextFunction {
        fn eq(&self, other: &Self) -> bool {
            self.name == other.name
        }
    }
    impl Eq for TextFunction {}
    impl std::hash::Hash for TextFunction {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            self.name.hash(state)
        }
    }
    impl ScalarUDFImpl for TextFunction {
        fn name(&self) -> &str {
            self.name
        }
        fn signature(&self) -> &Signature {
            &self.signature
        }
        fn return_type(&self, _: &[DataType]) -> datafusion::common::Result<DataType> {
            Ok(DataType::Utf8)
        }
        fn invoke_with_args(
            &self,
            args: ScalarFunctionArgs,
        ) -> datafusion::common::Result<ColumnarValue> {
            if !self.arity.contains(&args.args.len()) {
                return datafusion::common::plan_err!(
                    "{} takes {} to {} arguments",
                    self.name,
                    self.arity.start(),
                    self.arity.end()
                );
            }
            (self.body)(args)
        }
    }
    datafusion::logical_expr::ScalarUDF::new_from_impl(TextFunction {
        name,
        arity,
        signature: Signature::variadic_any(Volatility::Stable),
        body: Box::new(body),
    })
}

/// `pg_get_expr(expr, relation [, pretty])`: fusegate's catalog holds
/// expressions (pg_attrdef.adbin) as their SQL text already, so the text is
/// the answer (the library's version answers '').
fn pg_get_expr_udf() -> datafusion::logical_expr::ScalarUDF {
    text_udf("pg_get_expr", 2..=3, |args| {
        args.args[0].cast_to(&DataType::Utf8, None)
    })
}

/// The session's parameters as `current_setting` reads them (names in
/// lower case), kept current by the session.
pub type SettingsSlot = Arc<std::sync::RwLock<std::collections::BTreeMap<String, String>>>;

/// `current_setting(name [, missing_ok])`: a session parameter's value;
/// 42704 for an unknown one unless `missing_ok`, which answers NULL.
pub fn current_setting_udf(settings: SettingsSlot) -> datafusion::logical_expr::ScalarUDF {
    text_udf("current_setting", 1..=2, move |args| {
        let rows = args.number_rows;
        let names = arrow::compute::cast(&args.args[0].to_array(rows)?, &DataType::Utf8)?;
        let missing_ok: Vec<Option<bool>> = match args.args.get(1) {
            Some(flag) => {
                let flag = arrow::compute::cast(&flag.to_array(rows)?, &DataType::Boolean)?;
                arrow::array::AsArray::as_boolean(&flag).iter().collect()
            }
            None => vec![Some(false); rows],
        };
        let settings = settings
            .read()
            .map_err(|_| DataFusionError::Internal("session settings lock poisoned".into()))?;
        let mut out = arrow::array::StringBuilder::new();
        for (name, missing_ok) in arrow::array::AsArray::as_string::<i32>(&names)
            .iter()
            .zip(missing_ok)
        {
            let Some(name) = name else {
                out.append_null();
                continue;
            };
            match settings.get(&name.to_ascii_lowercase()) {
                Some(value) => out.append_value(value),
                None if missing_ok == Some(true) => out.append_null(),
                None => {
                    return Err(DataFusionError::External(Box::new(
                        crate::error::Error::new(
                            crate::error::ErrorKind::UndefinedObject,
                            format!("unrecognized configuration parameter \"{name}\""),
                        ),
                    )));
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    })
}

/// A `pg_get_*def(oid [, ...])` deparser of objects fusegate never has.
fn no_object_udf(name: &'static str) -> datafusion::logical_expr::ScalarUDF {
    text_udf(name, 1..=3, |_| {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))
    })
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

/// `pg_typeof(x)`: the name of the type a client is sent for `x`, as
/// PostgreSQL's `format_type` spells it (`integer`, `character varying`,
/// `timestamp without time zone`). PostgreSQL returns a `regtype`, whose
/// text this is; fusegate returns the text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTypeof {
    signature: Signature,
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let field = args
            .arg_fields
            .first()
            .ok_or_else(|| DataFusionError::Plan("pg_typeof takes one argument".into()))?;
        let varchar =
            field.metadata().get(super::PG_TYPE_KEY).map(String::as_str) == Some("varchar");
        let name = match (field.data_type(), varchar) {
            (DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8, true) => {
                "character varying".to_string()
            }
            (other, _) => type_name(other),
        };
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}

/// `format_type`'s name for the PostgreSQL type the wire sends `data_type`
/// as (the mapping of `arrow_pg::datatypes::into_pg_type`).
pub(super) fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "unknown".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 | DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => {
            "numeric".into()
        }
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Timestamp(_, None) => "timestamp without time zone".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time without time zone".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        DataType::Binary
        | DataType::FixedSizeBinary(_)
        | DataType::LargeBinary
        | DataType::BinaryView => "bytea".into(),
        DataType::List(item)
        | DataType::FixedSizeList(item, _)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item) => match item.data_type() {
            DataType::Null => "text[]".into(),
            inner => format!("{}[]", type_name(inner)),
        },
        _ => "text".into(),
    }
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

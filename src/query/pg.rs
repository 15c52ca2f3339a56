//! PostgreSQL's catalog for clients: datafusion-pg-catalog's pg_catalog
//! tables and functions, fed with fusegate's own table schemas (so NOT NULL
//! shows in `\d`, although DataFusion sees every column as nullable), plus
//! the few visibility functions psql calls that it does not provide.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray};
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::CatalogProviderList;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, TableType, Volatility, create_udf};
use datafusion::prelude::SessionContext;
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
        fuse,
    };
    let static_tables = Arc::new(PgCatalogStaticTables::try_new().map_err(from_datafusion)?);
    let provider = PgCatalogSchemaProvider::try_new(info, static_tables, EmptyContextProvider)
        .map_err(from_datafusion)?;
    if let Some(catalog) = ctx.catalog(CATALOG_NAME) {
        catalog
            .register_schema("pg_catalog", Arc::new(provider))
            .map_err(from_datafusion)?;
    }
    // Every object is visible: fusegate has no search_path-hidden objects.
    for name in [
        "pg_function_is_visible",
        "pg_type_is_visible",
        "pg_opclass_is_visible",
        "pg_collation_is_visible",
    ] {
        ctx.register_udf(create_udf(
            name,
            vec![DataType::Int32],
            DataType::Boolean,
            Volatility::Stable,
            Arc::new(|args: &[ColumnarValue]| {
                let rows = ColumnarValue::values_to_arrays(args)?
                    .first()
                    .map(|a| a.len())
                    .unwrap_or(1);
                Ok(ColumnarValue::Array(
                    Arc::new(BooleanArray::from(vec![true; rows])) as ArrayRef,
                ))
            }),
        ));
    }
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

/// Makes `current_schema()` name the session's current database (each
/// fusegate database is a schema to PostgreSQL clients).
pub fn set_current_schema(ctx: &SessionContext, database: &str) {
    ctx.register_udf(constant_text_udf("current_schema", database.to_string()));
}

/// Makes `current_user`, `session_user`, `user` and `current_role` name
/// the session's user.
pub fn set_user(ctx: &SessionContext, user: &str) {
    for name in ["current_user", "session_user", "user", "current_role"] {
        ctx.register_udf(constant_text_udf(name, user.to_string()));
    }
}

fn constant_text_udf(name: &str, value: String) -> datafusion::logical_expr::ScalarUDF {
    create_udf(
        name,
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(
                datafusion::scalar::ScalarValue::Utf8(Some(value.clone())),
            ))
        }),
    )
}

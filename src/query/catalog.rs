//! fusegate's databases and tables as DataFusion's catalog: one catalog whose
//! schemas are the databases, plus system schemas (pg_catalog) registered
//! beside them.
//!
//! Lookups read the catalog state the session refreshed at the start of the
//! statement, so every table of a statement comes from one catalog version.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;

use super::table::FuseTableProvider;
use crate::fuse::FuseEngine;
use crate::fuse::txn::Transaction;

pub const CATALOG_NAME: &str = "fusegate";

/// The session's open transaction, if any: tables it wrote resolve to their
/// working snapshots, and writes stage there.
pub type TxnSlot = Arc<RwLock<Option<Arc<Transaction>>>>;

#[derive(Debug)]
pub struct FuseCatalogProvider {
    engine: Arc<FuseEngine>,
    system: RwLock<HashMap<String, Arc<dyn SchemaProvider>>>,
    /// Plans column DEFAULT expressions (kept as SQL text in the catalog).
    expr_planner: Arc<SessionState>,
    txn: TxnSlot,
}

impl FuseCatalogProvider {
    pub fn new(engine: Arc<FuseEngine>, expr_planner: Arc<SessionState>, txn: TxnSlot) -> Self {
        FuseCatalogProvider {
            engine,
            system: RwLock::new(HashMap::new()),
            expr_planner,
            txn,
        }
    }
}

impl CatalogProvider for FuseCatalogProvider {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .engine
            .catalog()
            .cached()
            .databases
            .iter()
            .map(|d| d.name.clone())
            .collect();
        if let Ok(system) = self.system.read() {
            names.extend(system.keys().cloned());
        }
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Ok(system) = self.system.read()
            && let Some(s) = system.get(name)
        {
            return Some(s.clone());
        }
        self.engine.catalog().cached().database(name)?;
        Some(Arc::new(FuseSchemaProvider {
            engine: self.engine.clone(),
            db: name.to_string(),
            expr_planner: self.expr_planner.clone(),
            txn: self.txn.clone(),
        }))
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> DFResult<Option<Arc<dyn SchemaProvider>>> {
        let mut system = self
            .system
            .write()
            .map_err(|_| DataFusionError::Internal("catalog lock poisoned".into()))?;
        Ok(system.insert(name.to_string(), schema))
    }
}

/// The tables of one database.
#[derive(Debug)]
pub struct FuseSchemaProvider {
    engine: Arc<FuseEngine>,
    db: String,
    expr_planner: Arc<SessionState>,
    txn: TxnSlot,
}

#[async_trait]
impl SchemaProvider for FuseSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        let state = self.engine.catalog().cached();
        match state.database(&self.db) {
            Some(db) => state.tables_of(db.id).map(|t| t.name.clone()).collect(),
            None => Vec::new(),
        }
    }

    async fn table(&self, name: &str) -> DFResult<Option<Arc<dyn TableProvider>>> {
        let state = self.engine.catalog().cached();
        let Some(meta) = state.table(&self.db, name) else {
            return Ok(None);
        };
        let txn = self.txn.read().ok().and_then(|t| t.clone());
        let table = self
            .engine
            .table_in(&self.db, meta, txn)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut defaults = HashMap::new();
        for col in &meta.schema.columns {
            if let Some(sql) = &col.default {
                defaults.insert(col.name.clone(), default_expr(&self.expr_planner, sql)?);
            }
        }
        Ok(Some(Arc::new(FuseTableProvider::new(table, defaults))))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.engine
            .catalog()
            .cached()
            .table(&self.db, name)
            .is_some()
    }
}

/// Plans a column's DEFAULT expression (no columns in scope, as in PostgreSQL).
pub fn default_expr(planner: &SessionState, sql: &str) -> DFResult<Expr> {
    planner.create_logical_expr(sql, &DFSchema::empty())
}

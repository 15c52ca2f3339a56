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
use datafusion::error::{DataFusionError, Result as DFResult};

use super::table::FuseTableProvider;
use crate::fuse::FuseEngine;

pub const CATALOG_NAME: &str = "fusegate";

#[derive(Debug)]
pub struct FuseCatalogProvider {
    engine: Arc<FuseEngine>,
    system: RwLock<HashMap<String, Arc<dyn SchemaProvider>>>,
}

impl FuseCatalogProvider {
    pub fn new(engine: Arc<FuseEngine>) -> Self {
        FuseCatalogProvider {
            engine,
            system: RwLock::new(HashMap::new()),
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
        let table = self
            .engine
            .table(&self.db, meta)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Some(Arc::new(FuseTableProvider::new(table))))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.engine
            .catalog()
            .cached()
            .table(&self.db, name)
            .is_some()
    }
}

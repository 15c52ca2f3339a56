//! Schema evolution at read time: blocks written before an ALTER TABLE are
//! read with the table's current schema by matching columns on their stable
//! column id (the Parquet field_id), never on their name. A renamed column
//! still finds its data; a dropped-and-re-added name does not pick up the old
//! data; a column added later reads as its ADD COLUMN default (or NULL).
//!
//! DataFusion's default adapter matches by name and fills missing columns
//! with NULL, so this one first renames: logical columns are renamed to the
//! physical names they have in the file, and columns the file lacks get a
//! name no file has (then its default, or the default adapter's NULL).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result as DFResult;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapter, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};

use crate::fuse::schema::{FIELD_ID_KEY, TableSchema};

fn field_id(field: &Field) -> Option<u32> {
    field
        .metadata()
        .get(FIELD_ID_KEY)
        .and_then(|v| v.parse().ok())
}

/// Creates per-file adapters for one table schema.
#[derive(Debug)]
pub struct FieldIdAdapterFactory {
    /// Values of columns added after some blocks were written, by column id.
    missing: HashMap<u32, ScalarValue>,
}

impl FieldIdAdapterFactory {
    pub fn new(schema: &TableSchema) -> Self {
        let arrow = schema.to_arrow();
        let missing = schema
            .columns
            .iter()
            .zip(arrow.fields())
            .filter_map(|(c, f)| {
                let text = c.missing.clone()?;
                ScalarValue::try_from_string(text, &super::table::plan_type(f.data_type()))
                    .ok()
                    .map(|v| (c.id, v))
            })
            .collect();
        FieldIdAdapterFactory { missing }
    }
}

impl PhysicalExprAdapterFactory for FieldIdAdapterFactory {
    fn create(
        &self,
        logical: SchemaRef,
        physical: SchemaRef,
    ) -> DFResult<Arc<dyn PhysicalExprAdapter>> {
        let physical_by_id: HashMap<u32, &str> = physical
            .fields()
            .iter()
            .filter_map(|f| field_id(f).map(|id| (id, f.name().as_str())))
            .collect();
        let mut renames: HashMap<String, String> = HashMap::new();
        let mut defaults: HashMap<String, ScalarValue> = HashMap::new();
        let fields: Vec<Field> = logical
            .fields()
            .iter()
            .map(|f| {
                let target = match field_id(f) {
                    // A file written before column ids: match by name as before.
                    None => f.name().clone(),
                    Some(id) => match physical_by_id.get(&id) {
                        Some(name) => name.to_string(),
                        None => {
                            if let Some(v) = self.missing.get(&id) {
                                defaults.insert(f.name().clone(), v.clone());
                            }
                            format!("__fusegate_absent_{id}")
                        }
                    },
                };
                if &target != f.name() {
                    renames.insert(f.name().clone(), target.clone());
                }
                f.as_ref().clone().with_name(target)
            })
            .collect();
        let renamed = Arc::new(Schema::new_with_metadata(
            fields,
            logical.metadata().clone(),
        ));
        Ok(Arc::new(FieldIdAdapter {
            renames,
            defaults,
            inner: DefaultPhysicalExprAdapter::new(renamed.clone(), physical),
            renamed,
        }))
    }
}

#[derive(Debug)]
struct FieldIdAdapter {
    /// Logical column name → its name in this file (or an absent marker).
    renames: HashMap<String, String>,
    /// Logical column name → value for a column this file predates.
    defaults: HashMap<String, ScalarValue>,
    renamed: SchemaRef,
    inner: DefaultPhysicalExprAdapter,
}

impl PhysicalExprAdapter for FieldIdAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> DFResult<Arc<dyn PhysicalExpr>> {
        let expr = expr
            .transform(|e| {
                let Some(column) = e.downcast_ref::<Column>() else {
                    return Ok(Transformed::no(e));
                };
                if let Some(value) = self.defaults.get(column.name()) {
                    return Ok(Transformed::yes(
                        Arc::new(Literal::new(value.clone())) as Arc<dyn PhysicalExpr>
                    ));
                }
                match self.renames.get(column.name()) {
                    Some(name) => {
                        let index = self.renamed.index_of(name).unwrap_or(column.index());
                        Ok(Transformed::yes(
                            Arc::new(Column::new(name, index)) as Arc<dyn PhysicalExpr>
                        ))
                    }
                    None => Ok(Transformed::no(e)),
                }
            })
            .data()?;
        self.inner.rewrite(expr)
    }
}

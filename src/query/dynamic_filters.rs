//! Join filters applied to rows.
//!
//! When a hash join has read its build side, it publishes a filter of the
//! keys it holds (a top-k publishes its current bound), and DataFusion pushes
//! it into the scans below the probe side. With `pushdown_filters` off (see
//! `scan.rs`), a scan uses it only to skip blocks and row groups by their
//! statistics. Every row of a block it reads still goes up to the join. TPC-H
//! Q17 aggregated all 6 M lineitem rows by part to keep the 6,000 of the 204
//! parts it asks about. This rule puts the scan's dynamic filters in a
//! `FilterExec` right above it. Rows no key can match are dropped before they
//! are aggregated, repartitioned or probed. A dynamic filter matches every
//! row until its producer has finished, so the operator costs nothing then.
//!
//! Only a filter of few keys pays for itself. A join whose build side has at
//! most `hash_join_inlist_pushdown_max_distinct_values` (150) keys publishes
//! them as an IN list; a larger one publishes a lookup into its hash table,
//! which costs per row about what the join's own probe costs (a 6 M-row
//! lineitem scan: 240 ms of CPU), and TPC-H Q03, Q08, Q09 and Q20 ran 1.3-1.4x
//! slower with it. [`InListOnly`] therefore passes every row while the
//! filter holds a hash-table lookup.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::{FileSource, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_expr::utils::{conjunction, reassign_expr_columns, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::HashTableLookupExpr;

#[derive(Debug, Default)]
pub struct FilterRowsAtScans;

impl PhysicalOptimizerRule for FilterRowsAtScans {
    fn name(&self) -> &str {
        "FilterRowsAtScans"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let filter = row_filter(&node).and_then(|p| FilterExec::try_new(p, node.clone()).ok());
            Ok(match filter {
                Some(filter) => Transformed::yes(Arc::new(filter) as _),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The dynamic filters of a Parquet scan, over the columns it outputs. None
/// if it has none, or if one refers to a column the scan does not output.
fn row_filter(node: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn PhysicalExpr>> {
    let (_, source) = node
        .downcast_ref::<DataSourceExec>()?
        .downcast_to_file_source::<ParquetSource>()?;
    let predicate = source.filter()?;
    let schema = node.schema();
    // The scan's predicate refers to the table's columns by their position
    // in the table; the filter above it sees the projected columns.
    let dynamic = split_conjunction(&predicate)
        .into_iter()
        .filter(|c| c.is::<DynamicFilterPhysicalExpr>())
        .map(|c| {
            let c = reassign_expr_columns(Arc::clone(c), &schema).ok()?;
            Some(Arc::new(InListOnly(c)) as Arc<dyn PhysicalExpr>)
        })
        .collect::<Option<Vec<_>>>()?;
    (!dynamic.is_empty()).then(|| conjunction(dynamic))
}

/// A dynamic filter, evaluated only while it holds no hash-table lookup
/// (see the module's documentation); otherwise every row passes.
#[derive(Debug, Eq)]
struct InListOnly(Arc<dyn PhysicalExpr>);

// By hand: the derives cannot see through `Arc<dyn PhysicalExpr>`.
impl PartialEq for InListOnly {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq(&other.0)
    }
}

impl std::hash::Hash for InListOnly {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl InListOnly {
    fn is_cheap(&self) -> Result<bool> {
        let Some(dynamic) = self.0.downcast_ref::<DynamicFilterPhysicalExpr>() else {
            return Ok(true);
        };
        Ok(!dynamic
            .current()?
            .exists(|e| Ok(e.is::<HashTableLookupExpr>()))?)
    }
}

impl fmt::Display for InListOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in_list_only({})", self.0)
    }
}

impl PhysicalExpr for InListOnly {
    fn data_type(&self, schema: &Schema) -> Result<DataType> {
        self.0.data_type(schema)
    }
    fn nullable(&self, schema: &Schema) -> Result<bool> {
        self.0.nullable(schema)
    }
    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if self.is_cheap()? {
            self.0.evaluate(batch)
        } else {
            Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
        }
    }
    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.0]
    }
    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(InListOnly(children.swap_remove(0))))
    }
    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

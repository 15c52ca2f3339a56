//! Operators that can be stopped.
//!
//! A cancelled statement drops its stream, and DataFusion aborts the tasks
//! that run its partitions; but a Tokio task is only aborted when it yields.
//! DataFusion makes its scans give up the thread once the task's budget is
//! spent (`EnsureCooperative` wraps the leaves), which covers operators that
//! poll their input for every batch they produce. Joins do not: a cross join
//! produces batch after batch from the input it already holds, so an
//! aggregate over one never yields, and a cancelled `SELECT sum(..) FROM t a,
//! t b` kept both cores busy until it finished, hours later
//! (`cancel::cancel_stops_a_heavy_query_and_others_are_served_meanwhile`).
//! This rule puts the same budget check above every operator that can produce
//! more batches than it reads: joins (any operator with two inputs) and
//! unnest.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::unnest::UnnestExec;

#[derive(Debug, Default)]
pub struct YieldAboveJoins;

fn multiplies_rows(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.children().len() >= 2 || plan.is::<UnnestExec>()
}

impl PhysicalOptimizerRule for YieldAboveJoins {
    fn name(&self) -> &str {
        "YieldAboveJoins"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(if multiplies_rows(&node) {
                Transformed::yes(Arc::new(CooperativeExec::new(node)) as _)
            } else {
                Transformed::no(node)
            })
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

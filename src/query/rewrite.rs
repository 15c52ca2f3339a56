//! The walk fusegate's analyzer rules share: every expression of every plan
//! node (subqueries included) rewritten bottom-up, against the schema of
//! the node's inputs, with the names of rewritten output expressions kept —
//! a projection above an aggregate finds `sum(b * 10)` by that name, so a
//! rule that rewrites `b * 10` must not rename it.

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{Expr, LogicalPlan};

/// Applies `f` to every expression node of `plan`, bottom-up.
pub fn rewrite_expressions(
    plan: LogicalPlan,
    f: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|plan| {
        let schema = merge_schema(&plan.inputs());
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|expr| {
            let saved = names.save(&expr);
            let rewritten = expr.transform_up(|e| f(e, &schema))?;
            Ok(if rewritten.transformed {
                rewritten.update_data(|e| saved.restore(e))
            } else {
                rewritten
            })
        })
    })
    .map(|t| t.data)
}

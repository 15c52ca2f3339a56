//! PostgreSQL rounds when it casts a numeric or a float to an integer type
//! (`2.6::int` is 3, `2.5::int` is 3, `-2.5::int` is -3); DataFusion
//! truncates. This analyzer rule, run after type coercion, rounds first —
//! for explicit casts and for the ones coercion inserted (an INSERT of 2.6
//! into an integer column stores 3, as in PostgreSQL). Ties go away from
//! zero, as PostgreSQL's numeric does; its float8 rounds ties to even, but
//! fusegate reads `2.5` as a float where PostgreSQL reads a numeric, so
//! away-from-zero is what `2.5::int` must give.

use arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{Cast, Expr, ExprSchemable, LogicalPlan, TryCast};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct RoundToInteger;

fn is_integer(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
    )
}

fn is_fractional(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Decimal128(_, _)
            | DataType::Decimal256(_, _)
            | DataType::Float16
            | DataType::Float32
            | DataType::Float64
    )
}

impl AnalyzerRule for RoundToInteger {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let schema = merge_schema(&plan.inputs());
            plan.map_expressions(|expr| {
                expr.transform_up(|expr| {
                    let (inner, field, try_cast) = match &expr {
                        Expr::Cast(Cast { expr, field }) => (expr, field, false),
                        Expr::TryCast(TryCast { expr, field }) => (expr, field, true),
                        _ => return Ok(Transformed::no(expr)),
                    };
                    if !is_integer(field.data_type())
                        || !inner.get_type(&schema).is_ok_and(|t| is_fractional(&t))
                    {
                        return Ok(Transformed::no(expr));
                    }
                    let rounded = Box::new(
                        datafusion::functions::math::round().call(vec![(**inner).clone()]),
                    );
                    let field = field.clone();
                    Ok(Transformed::yes(if try_cast {
                        Expr::TryCast(TryCast::new_from_field(rounded, field))
                    } else {
                        Expr::Cast(Cast::new_from_field(rounded, field))
                    }))
                })
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "fusegate_round_to_integer"
    }
}

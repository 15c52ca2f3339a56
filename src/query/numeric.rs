//! The scale of rounded numerics, as PostgreSQL gives it: `ceil(2.5)`,
//! `floor(2.5)` and `trunc(2.7)` are `3`, `2` and `2` (scale 0), and
//! `trunc(2.567, 1)` is `2.5`; DataFusion keeps the argument's scale
//! (`3.0`, `2.500`). `NumericRounding`, an analyzer rule run after type
//! coercion, casts those results to the scale PostgreSQL's would have (an
//! exact cast: the digits it drops are zeros; `trunc(2.5, 3)` pads to
//! `2.500`, as PostgreSQL does).

use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Cast, Expr, ExprSchemable, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;

use super::rewrite::rewrite_expressions;

#[derive(Debug, Default)]
pub struct NumericRounding;

impl AnalyzerRule for NumericRounding {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        rewrite_expressions(plan, |expr, schema| {
            let Expr::ScalarFunction(ScalarFunction { func, args }) = &expr else {
                return Ok(Transformed::no(expr));
            };
            let Some(Ok(DataType::Decimal128(precision, scale))) =
                args.first().map(|a| a.get_type(schema))
            else {
                return Ok(Transformed::no(expr));
            };
            let places = match (func.name(), &args[1..]) {
                ("ceil" | "floor" | "trunc", []) => 0,
                ("trunc", [places]) => match literal(places) {
                    Some(ScalarValue::Int32(Some(p))) => i64::from(*p).max(0),
                    Some(ScalarValue::Int64(Some(p))) => (*p).max(0),
                    _ => return Ok(Transformed::no(expr)),
                },
                _ => return Ok(Transformed::no(expr)),
            };
            let scale = i64::from(scale);
            if places == scale {
                return Ok(Transformed::no(expr));
            }
            // ceil(99.5) is 100: one digit more than the integer part had,
            // which DataFusion's ceil must have room for too.
            let wider = DataType::Decimal128((precision + 1).min(38), scale as i8);
            let mut args = args.clone();
            args[0] = Expr::Cast(Cast::new(Box::new(args[0].clone()), wider));
            let rounded = Expr::ScalarFunction(ScalarFunction::new_udf(func.clone(), args));
            let digits = (i64::from(precision) - scale + places + 1).clamp(1, 38);
            let to = DataType::Decimal128(digits as u8, places as i8);
            Ok(Transformed::yes(Expr::Cast(Cast::new(
                Box::new(rounded),
                to,
            ))))
        })
    }

    fn name(&self) -> &str {
        "fusegate_numeric_rounding"
    }
}

/// A literal, under the cast coercion may have put on it.
fn literal(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(v, _) => Some(v),
        Expr::Cast(Cast { expr, .. }) => literal(expr),
        _ => None,
    }
}

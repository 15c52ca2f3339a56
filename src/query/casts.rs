//! Casts as PostgreSQL makes them: two analyzer rules.
//!
//! PostgreSQL rounds when it casts a numeric or a float to an integer type
//! (`2.6::int` is 3, `2.5::int` is 3, `-2.5::int` is -3); DataFusion
//! truncates. `RoundToInteger`, run after type coercion, rounds first —
//! for explicit casts and for the ones coercion inserted (an INSERT of 2.6
//! into an integer column stores 3, as in PostgreSQL). Ties go away from
//! zero, as PostgreSQL's numeric does; its float8 rounds ties to even, but
//! fusegate reads `2.5` as a float where PostgreSQL reads a numeric, so
//! away-from-zero is what `2.5::int` must give.
//!
//! `TextCasts` makes casts between text and timestamps or floats read and
//! write PostgreSQL's text.

use arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::error::Result;
use datafusion::logical_expr::{Cast, Expr, ExprSchemable, LogicalPlan, TryCast};

use super::pg_text;
use super::rewrite::rewrite_expressions;
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
        rewrite_expressions(plan, |expr, schema| {
            let (inner, field, try_cast) = match &expr {
                Expr::Cast(Cast { expr, field }) => (expr, field, false),
                Expr::TryCast(TryCast { expr, field }) => (expr, field, true),
                _ => return Ok(Transformed::no(expr)),
            };
            if !is_integer(field.data_type())
                || !inner.get_type(schema).is_ok_and(|t| is_fractional(&t))
            {
                return Ok(Transformed::no(expr));
            }
            let rounded =
                Box::new(datafusion::functions::math::round().call(vec![(**inner).clone()]));
            let field = field.clone();
            Ok(Transformed::yes(if try_cast {
                Expr::TryCast(TryCast::new_from_field(rounded, field))
            } else {
                Expr::Cast(Cast::new_from_field(rounded, field))
            }))
        })
    }

    fn name(&self) -> &str {
        "fusegate_round_to_integer"
    }
}

/// Casts between text and the types whose PostgreSQL text differs from
/// Arrow's, run after type coercion (so it also sees the casts coercion
/// put into comparisons, concatenations and INSERTs):
/// - a timestamp or float cast to text is written as PostgreSQL writes it
///   (`2024-01-01 12:00:00`, `1e+20`), not as Arrow's cast does
///   (`2024-01-01T12:00:00`, `100000000000000000000`);
/// - text cast to a timestamp is read as PostgreSQL reads it (without
///   seconds, a fraction rounded to microseconds, a field out of range
///   22008), literal or column alike.
///
/// `TRY_CAST` keeps Arrow's behaviour: it is not PostgreSQL's.
#[derive(Debug, Default)]
pub struct TextCasts;

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

impl AnalyzerRule for TextCasts {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        rewrite_expressions(plan, |expr, schema| {
            let Expr::Cast(Cast { expr: inner, field }) = &expr else {
                return Ok(Transformed::no(expr));
            };
            let Ok(from) = inner.get_type(schema) else {
                return Ok(Transformed::no(expr));
            };
            let to = field.data_type();
            let (call, returns) = if is_text(to) && pg_text::renders(&from) {
                (pg_text::text_udf(), DataType::Utf8)
            } else if let (true, DataType::Timestamp(_, zone)) = (is_text(&from), to) {
                let with_zone = zone.is_some();
                (
                    pg_text::timestamp_in_udf(with_zone),
                    pg_text::timestamp_in_type(with_zone),
                )
            } else {
                return Ok(Transformed::no(expr));
            };
            let call = call.call(vec![(**inner).clone()]);
            Ok(Transformed::yes(if &returns == to {
                call
            } else {
                Expr::Cast(Cast::new_from_field(Box::new(call), field.clone()))
            }))
        })
    }

    fn name(&self) -> &str {
        "fusegate_text_casts"
    }
}

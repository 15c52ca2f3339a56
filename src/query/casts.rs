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
//! `CompleteTimestampLiterals` lets timestamps be written without seconds.

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

/// PostgreSQL reads a timestamp without seconds (`'2024-01-01 12:00'`,
/// `TIMESTAMP '2024-01-01 9:30+02'`); Arrow's parser wants `HH:MM:SS`. This
/// rule, run after type coercion (so it also sees the casts that coercion
/// put into comparisons), writes the seconds into string literals cast to a
/// timestamp.
/// Text columns cast at run time still go through Arrow's parser.
#[derive(Debug, Default)]
pub struct CompleteTimestampLiterals;

impl AnalyzerRule for CompleteTimestampLiterals {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            plan.map_expressions(|expr| {
                expr.transform_up(|expr| {
                    let (inner, field) = match &expr {
                        Expr::Cast(Cast { expr, field })
                        | Expr::TryCast(TryCast { expr, field }) => (expr, field),
                        _ => return Ok(Transformed::no(expr)),
                    };
                    if !matches!(field.data_type(), DataType::Timestamp(_, _)) {
                        return Ok(Transformed::no(expr));
                    }
                    let Expr::Literal(value, meta) = inner.as_ref() else {
                        return Ok(Transformed::no(expr));
                    };
                    let Some(Some(text)) = value.try_as_str() else {
                        return Ok(Transformed::no(expr));
                    };
                    // Text that does not parse even so keeps its own words
                    // for the error.
                    let Some(complete) = with_seconds(text).filter(|t| {
                        arrow::compute::kernels::cast_utils::string_to_datetime(&chrono::Utc, t)
                            .is_ok()
                    }) else {
                        return Ok(Transformed::no(expr));
                    };
                    let literal = Box::new(Expr::Literal(
                        datafusion::common::ScalarValue::Utf8(Some(complete)),
                        meta.clone(),
                    ));
                    let field = field.clone();
                    Ok(Transformed::yes(match expr {
                        Expr::TryCast(_) => Expr::TryCast(TryCast::new_from_field(literal, field)),
                        _ => Expr::Cast(Cast::new_from_field(literal, field)),
                    }))
                })
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "fusegate_complete_timestamp_literals"
    }
}

/// `text` with its time of day written `HH:MM:SS`, when it is a
/// `YYYY-MM-DD` date, a space or `T`, and an `H:MM` or `HH:MM[:SS]` time
/// (what follows — fractions, an offset — kept); `None` when nothing needs
/// changing or the text is not of that form (Arrow's parser then reports it).
pub fn with_seconds(text: &str) -> Option<String> {
    let s = text.trim();
    let (date, rest) = (s.get(..10)?, s.get(10..)?);
    let sep = rest.chars().next()?;
    if !matches!(sep, ' ' | 'T' | 't') {
        return None;
    }
    let time = &rest[1..];
    let hour_len = time.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=2).contains(&hour_len) || time.as_bytes().get(hour_len) != Some(&b':') {
        return None;
    }
    let minute = time.get(hour_len + 1..hour_len + 3)?;
    if !minute.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let after = &time[hour_len + 3..];
    let has_seconds = after.starts_with(':');
    if has_seconds && hour_len == 2 {
        return None;
    }
    let seconds = if has_seconds { "" } else { ":00" };
    Some(format!(
        "{date}{sep}{:0>2}:{minute}{seconds}{after}",
        &time[..hour_len]
    ))
}

#[cfg(test)]
mod tests {
    use super::with_seconds;

    #[test]
    fn timestamps_without_seconds_get_them() {
        let cases = [
            ("2024-01-01 12:00", Some("2024-01-01 12:00:00")),
            ("2024-01-01T12:00", Some("2024-01-01T12:00:00")),
            ("2024-01-01 9:30", Some("2024-01-01 09:30:00")),
            ("2024-01-01 9:30:15.5", Some("2024-01-01 09:30:15.5")),
            ("2024-01-01 12:00+02", Some("2024-01-01 12:00:00+02")),
            ("2024-01-01 12:00 UTC", Some("2024-01-01 12:00:00 UTC")),
            (" 2024-01-01 12:00 ", Some("2024-01-01 12:00:00")),
            ("2024-01-01 12:00:00", None),
            ("2024-01-01", None),
            ("2024-01-01 noon", None),
            ("2024-01-01 123:00", None),
            ("2024-01-01 12:0", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(with_seconds(text).as_deref(), want, "{text:?}");
        }
    }
}

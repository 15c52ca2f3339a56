//! Numbers too wide for a decimal. fusegate reads `1.5` as a numeric, as
//! PostgreSQL does (see `query::literals`), but a numeric here is a 38-digit
//! decimal, where PostgreSQL's holds a thousand digits and more: `1e300`
//! would fail to plan. Such a number is read as a `double precision`
//! instead, which holds it (rounded to 17 digits, as a float does).

use std::ops::ControlFlow;

use sqlparser::ast::{CastKind, DataType, Expr, Statement, Value, visit_expressions_mut};

/// The most digits a decimal literal may have (Arrow's Decimal128).
const MAX_DIGITS: usize = 38;

pub fn rewrite_wide_numbers(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(v) = expr
            && let Value::Number(text, _) = &v.value
            && !fits_decimal(text)
        {
            let text = text.clone();
            *expr = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(Expr::value(Value::SingleQuotedString(text))),
                data_type: DataType::DoublePrecision,
                array: false,
                format: None,
            };
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Whether `text` (digits, an optional point and exponent) is a decimal of
/// at most [`MAX_DIGITS`] digits, scale included, once written without an
/// exponent.
fn fits_decimal(text: &str) -> bool {
    let text = text.replace('_', "");
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => match text[at + 1..].parse::<i64>() {
            Ok(e) => (&text[..at], e),
            Err(_) => return false,
        },
        None => (text.as_str(), 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0').len().max(1) as i64;
    let scale = fraction.len() as i64 - exponent;
    let width = if scale >= 0 {
        significant.max(scale)
    } else {
        significant - scale
    };
    width <= MAX_DIGITS as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numbers_wider_than_a_decimal_become_doubles() {
        for fits in [
            "1",
            "1.5",
            "1e3",
            "1.5E-3",
            "0.000001",
            "12345678901234567890123",
            "1e37",
        ] {
            assert!(fits_decimal(fits), "{fits}");
        }
        for wide in [
            "1e300",
            "1e-300",
            "1e38",
            "123456789012345678901234567890123456789",
        ] {
            assert!(!fits_decimal(wide), "{wide}");
        }
    }
}

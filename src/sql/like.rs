//! `LIKE ... ESCAPE 'c'`: DataFusion knows only the backslash as LIKE's
//! escape, PostgreSQL any character (SQLAlchemy's inspector uses `ESCAPE
//! '/'`). The pattern is passed through a function that rewrites it to the
//! same pattern escaped with backslashes.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Statement, Value, ValueWithSpan, visit_expressions_mut};

use super::functions::call;
use crate::query::LIKE_ESCAPE_FUNCTION;

pub fn rewrite_like_escapes(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        } = expr
            && let Some(escape) = escape_char.as_ref().and_then(single_char)
            && escape != '\\'
        {
            // The pattern may be a parameter, known only at execution: the
            // function (folded to a constant for literals) does the work.
            let original = std::mem::replace(pattern.as_mut(), Expr::value(Value::Null));
            **pattern = call(
                LIKE_ESCAPE_FUNCTION,
                vec![
                    original,
                    Expr::value(Value::SingleQuotedString(escape.to_string())),
                ],
            );
            *escape_char = None;
        }
        ControlFlow::<()>::Continue(())
    });
}

fn single_char(value: &ValueWithSpan) -> Option<char> {
    let Value::SingleQuotedString(s) = &value.value else {
        return None;
    };
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_escapes_go_through_the_function() {
        assert_eq!(
            crate::sql::rewritten("SELECT 'pg_x' LIKE $1 ESCAPE '/'", rewrite_like_escapes),
            "SELECT 'pg_x' LIKE fusegate_like_escape($1, '/')"
        );
    }
}

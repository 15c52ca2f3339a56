//! PostgreSQL functions DataFusion has under another name or as an
//! operator, rewritten before planning: `mod(a, b)` is `a % b`, `div(a, b)`
//! is `trunc(a / b)`, `sign` is `signum`, `every` is `bool_and`, `variance`
//! is `var_samp`. A single-column function in FROM names its column after
//! its alias, as PostgreSQL does.

use std::ops::ControlFlow;

use crate::query::EXPAND_ARRAY_FUNCTION;
use sqlparser::ast::{
    AccessExpr, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident,
    ObjectName, ObjectNamePart, Statement, TableAlias, TableAliasColumnDef, TableFactor, Value,
    VisitMut, VisitorMut, visit_expressions_mut,
};

pub fn rewrite_function_aliases(statement: &mut Statement) {
    let _ = statement.visit(&mut NameFunctionColumns);
    let _ = visit_expressions_mut(statement, |expr| {
        if let Some(selection) = field_selection(expr) {
            *expr = selection;
            return ControlFlow::<()>::Continue(());
        }
        let Expr::Function(function) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        // information_schema._pg_expandarray(a): a set-returning function.
        if let [.., ObjectNamePart::Identifier(name)] = function.name.0.as_slice()
            && name.value.eq_ignore_ascii_case("_pg_expandarray")
        {
            let mut expand = function.clone();
            expand.name = ObjectName::from(vec![Ident::new(EXPAND_ARRAY_FUNCTION)]);
            *expr = call("unnest", vec![Expr::Function(expand)]);
            return ControlFlow::Continue(());
        }
        let [ObjectNamePart::Identifier(name)] = function.name.0.as_slice() else {
            return ControlFlow::Continue(());
        };
        let name = name.value.to_ascii_lowercase();
        let renamed = match name.as_str() {
            "sign" => Some("signum"),
            "ceiling" => Some("ceil"),
            "every" => Some("bool_and"),
            "variance" => Some("var_samp"),
            _ => None,
        };
        if let Some(new) = renamed {
            function.name = ObjectName::from(vec![Ident::new(new)]);
            return ControlFlow::Continue(());
        }
        if matches!(name.as_str(), "to_date" | "to_timestamp" | "to_char")
            && let FunctionArguments::List(list) = &mut function.args
            && let [
                _,
                FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(template))),
            ] = list.args.as_mut_slice()
            && let Value::SingleQuotedString(text) = &mut template.value
            && let Some(chrono) = chrono_format(text)
        {
            *text = chrono;
            return ControlFlow::Continue(());
        }
        // generate_subscripts(a, dim): set-returning, the subscripts of one
        // dimension (1-based: fusegate's arrays all start at 1).
        if name == "generate_subscripts"
            && let Some([array, dimension]) = two_args(&function.args)
        {
            let length = Expr::Cast {
                kind: sqlparser::ast::CastKind::Cast,
                expr: Box::new(call("array_length", vec![array, dimension])),
                data_type: sqlparser::ast::DataType::BigInt(None),
                array: false,
                format: None,
            };
            let end = Expr::BinaryOp {
                left: Box::new(length),
                op: BinaryOperator::Plus,
                right: Box::new(Expr::value(Value::Number("1".into(), false))),
            };
            let subscripts = call(
                "range",
                vec![Expr::value(Value::Number("1".into(), false)), end],
            );
            *expr = call("unnest", vec![subscripts]);
            return ControlFlow::Continue(());
        }
        if (name == "mod" || name == "div")
            && let Some([a, b]) = two_args(&function.args)
        {
            let quotient = Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(a))),
                op: if name == "mod" {
                    BinaryOperator::Modulo
                } else {
                    BinaryOperator::Divide
                },
                right: Box::new(Expr::Nested(Box::new(b))),
            };
            *expr = if name == "mod" {
                Expr::Nested(Box::new(quotient))
            } else {
                let mut trunc = function.clone();
                trunc.name = ObjectName::from(vec![Ident::new("trunc")]);
                if let FunctionArguments::List(list) = &mut trunc.args {
                    list.args = vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(quotient))];
                }
                Expr::Function(trunc)
            };
        }
        ControlFlow::Continue(())
    });
}

/// PostgreSQL's field selection from a composite value, `(expr).field`
/// (pgjdbc's `(information_schema._pg_expandarray(i.indkey)).n`), as
/// DataFusion's `get_field(expr, 'field')`; its planner refuses dot access
/// after anything but a column name.
fn field_selection(expr: &Expr) -> Option<Expr> {
    let Expr::CompoundFieldAccess { root, access_chain } = expr else {
        return None;
    };
    let mut selected = (**root).clone();
    for access in access_chain {
        let AccessExpr::Dot(Expr::Identifier(field)) = access else {
            return None;
        };
        selected = call(
            "get_field",
            vec![
                selected,
                Expr::value(Value::SingleQuotedString(field.value.clone())),
            ],
        );
    }
    Some(selected)
}

/// `name(args...)`.
pub(super) fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(sqlparser::ast::Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// A PostgreSQL date/time template (`YYYY-MM-DD HH24:MI:SS`) as the chrono
/// format DataFusion's `to_date`/`to_timestamp`/`to_char` read. None for
/// number templates (`9,999.99`), which they do not handle anyway.
fn chrono_format(template: &str) -> Option<String> {
    if template.contains('%') || template.contains('9') || template.contains('0') {
        return None;
    }
    // Longest patterns first, so HH24 wins over HH and YYYY over YY.
    const PATTERNS: &[(&str, &str)] = &[
        ("YYYY", "%Y"),
        ("HH24", "%H"),
        ("HH12", "%I"),
        ("Month", "%B"),
        ("MONTH", "%B"),
        ("Day", "%A"),
        ("DAY", "%A"),
        ("DDD", "%j"),
        ("Mon", "%b"),
        ("MON", "%b"),
        ("Dy", "%a"),
        ("DY", "%a"),
        ("YY", "%y"),
        ("MM", "%m"),
        ("DD", "%d"),
        ("HH", "%I"),
        ("MI", "%M"),
        ("SS", "%S"),
        ("MS", "%3f"),
        ("US", "%6f"),
        ("AM", "%p"),
        ("PM", "%p"),
    ];
    let mut out = String::with_capacity(template.len() + 8);
    let mut rest = template;
    while !rest.is_empty() {
        if let Some((pattern, chrono)) = PATTERNS.iter().find(|(p, _)| rest.starts_with(p)) {
            out.push_str(chrono);
            rest = &rest[pattern.len()..];
        } else {
            let c = rest.chars().next()?;
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Some(out)
}

fn two_args(args: &FunctionArguments) -> Option<[Expr; 2]> {
    let FunctionArguments::List(list) = args else {
        return None;
    };
    match list.args.as_slice() {
        [
            FunctionArg::Unnamed(FunctionArgExpr::Expr(a)),
            FunctionArg::Unnamed(FunctionArgExpr::Expr(b)),
        ] => Some([a.clone(), b.clone()]),
        _ => None,
    }
}

/// A single-column function in FROM, `generate_series(1, 3)` or `unnest(a)`:
/// PostgreSQL names its column after the alias (`AS g`: column g), or
/// without one after the function, where DataFusion says `value` or
/// `UNNEST(...)`. The alias gets that column, and a missing alias is the
/// function's name, as in PostgreSQL.
struct NameFunctionColumns;

impl VisitorMut for NameFunctionColumns {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let (alias, function) = match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                alias,
                ..
            } if matches!(name.0.as_slice(), [ObjectNamePart::Identifier(f)]
                    if f.value.eq_ignore_ascii_case("generate_series")) =>
            {
                (alias, "generate_series")
            }
            TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset: false,
                with_ordinality: false,
                ..
            } if array_exprs.len() == 1 => (alias, "unnest"),
            _ => return ControlFlow::Continue(()),
        };
        let alias = alias.get_or_insert_with(|| TableAlias {
            explicit: true,
            name: Ident::new(function),
            columns: Vec::new(),
            at: None,
        });
        if alias.columns.is_empty() {
            alias.columns = vec![TableAliasColumnDef {
                name: alias.name.clone(),
                data_type: None,
            }];
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_become_datafusion_spellings() {
        let rewritten = |sql| crate::sql::rewritten(sql, rewrite_function_aliases);
        assert_eq!(
            rewritten("SELECT mod(a, 3), div(-7, 2), sign(x), every(b)"),
            "SELECT ((a) % (3)), trunc((-7) / (2)), signum(x), bool_and(b)"
        );
        assert_eq!(
            rewritten("SELECT (f(x)).n, (r.keys).x.y FROM r"),
            "SELECT get_field((f(x)), 'n'), get_field(get_field((r.keys), 'x'), 'y') FROM r"
        );
        assert_eq!(
            chrono_format("YYYY-MM-DD HH24:MI:SS.US").as_deref(),
            Some("%Y-%m-%d %H:%M:%S.%6f")
        );
        assert_eq!(chrono_format("DD/MM/YY").as_deref(), Some("%d/%m/%y"));
        assert_eq!(chrono_format("9,999.99"), None);
    }
}

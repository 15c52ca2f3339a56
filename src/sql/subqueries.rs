//! Scalar subqueries rewritten into forms DataFusion decorrelates, with
//! PostgreSQL's meaning kept:
//!
//! - [`wrap_scalar_subqueries`]: `(SELECT e FROM ... WHERE ...)` becomes
//!   `(SELECT fusegate_only_row(e) FROM ...)`. DataFusion plans a correlated
//!   scalar subquery only when it aggregates; the aggregate returns the one
//!   row's value, NULL for none, and fails with 21000 on a second row, as
//!   PostgreSQL does.
//! - [`hoist_outer_conditions`]: a filter conjunct that tests only the outer
//!   row, as `(SELECT e FROM t WHERE outer.h AND t.k = outer.k)` (SQLAlchemy's
//!   column reflection: "not needed but pg seems to like it"), moves out to
//!   `CASE WHEN outer.h THEN (SELECT e FROM t WHERE t.k = outer.k) END`: when
//!   the test fails or is NULL the subquery has no row, so NULL either way.
//!   A conjunct counts as outer-only when every column it names is qualified
//!   by a relation the subquery's FROM does not define; unqualified names may
//!   be the subquery's own and are left alone.
//! - Outer columns in the value, as SQLAlchemy's
//!   `(SELECT json_build_object('always', a.attidentity = 'a', 'start',
//!   s.seqstart) FROM pg_sequence s WHERE ...)`: DataFusion decorrelates
//!   outer references only in filters, so the subquery returns its own
//!   columns as one struct and the value is computed outside:
//!   `CASE WHEN (SELECT fusegate_only_row(named_struct('f0', s.seqstart)) ...)
//!   IS NOT NULL THEN json_build_object('always', a.attidentity = 'a',
//!   'start', get_field((SELECT ...), 'f0')) END`. No row gives NULL whatever
//!   the value's expression, as in PostgreSQL. The subquery is repeated once
//!   per column it returns; each becomes one join.

use std::collections::HashSet;
use std::ops::ControlFlow;

use super::functions::call;
use crate::query::{ONLY_ROW_FUNCTION, is_aggregate_function};
use sqlparser::ast::helpers::attached_token::AttachedToken;
use sqlparser::ast::{
    BinaryOperator, CaseWhen, Expr, GroupByExpr, Query, SelectItem, SetExpr, Statement,
    TableFactor, TableWithJoins, VisitMut, VisitorMut, visit_expressions, visit_expressions_mut,
};

pub fn hoist_outer_conditions(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Subquery(query) = expr
            && let Some(guard) = take_outer_conjuncts(query)
        {
            let subquery = std::mem::replace(expr, Expr::value(sqlparser::ast::Value::Null));
            *expr = Expr::Case {
                case_token: AttachedToken::empty(),
                end_token: AttachedToken::empty(),
                operand: None,
                conditions: vec![CaseWhen {
                    condition: guard,
                    result: subquery,
                }],
                else_result: None,
            };
        }
        ControlFlow::<()>::Continue(())
    });
}

pub fn wrap_scalar_subqueries(statement: &mut Statement) {
    let _ = statement.visit(&mut ScalarSubqueries::default());
}

/// Wraps scalar subqueries' values, except the right side of `= ANY (...)`
/// and `> ALL (...)`: those compare with every row, they are no scalars.
#[derive(Default)]
struct ScalarSubqueries {
    /// The queries under ANY/ALL, by address (stable while visiting).
    quantified: HashSet<*const Query>,
}

impl VisitorMut for ScalarSubqueries {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::AnyOp { right, .. } | Expr::AllOp { right, .. } = expr
            && let Expr::Subquery(query) = right.as_ref()
        {
            self.quantified.insert(&**query as *const Query);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Subquery(query) = expr
            && !self.quantified.contains(&(&**query as *const Query))
            && let Some(item) = plain_single_value(query)
        {
            let value = std::mem::replace(item, Expr::value(sqlparser::ast::Value::Null));
            match lift_outer_value(query, &value) {
                Some(lifted) => *expr = lifted,
                None => {
                    let item = plain_single_value(query).expect("checked above");
                    *item = call(ONLY_ROW_FUNCTION, vec![value]);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// The CASE expression computing a subquery's `value` outside it when the
/// value names outer columns (see the module's doc); None when it names
/// none, or when the subquery's scope is not plain table names.
fn lift_outer_value(query: &Query, value: &Expr) -> Option<Expr> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let inner = relation_names(&select.from)?;
    // Columns of the subquery's own relations (or unqualified, which resolve
    // there first), in order of appearance; None when a nested subquery opens
    // another scope.
    let mut own: Vec<Expr> = Vec::new();
    let mut outer = false;
    let scan = visit_expressions(value, |e| {
        match e {
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                if !inner.contains(&parts[parts.len() - 2].value.to_lowercase()) {
                    outer = true;
                } else if !own.contains(e) {
                    own.push(e.clone());
                }
            }
            Expr::Identifier(_) if !own.contains(e) => own.push(e.clone()),
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                return ControlFlow::Break(());
            }
            _ => {}
        }
        ControlFlow::Continue(())
    });
    if !outer || scan.is_break() {
        return None;
    }
    let field = |i: usize| Expr::value(sqlparser::ast::Value::SingleQuotedString(format!("f{i}")));
    let mut fields = Vec::new();
    for (i, column) in own.iter().enumerate() {
        fields.extend([field(i), column.clone()]);
    }
    if fields.is_empty() {
        fields.extend([field(0), Expr::value(sqlparser::ast::Value::Boolean(true))]);
    }
    let row = || {
        let mut query = query.clone();
        let SetExpr::Select(select) = query.body.as_mut() else {
            unreachable!("checked above")
        };
        select.projection = vec![SelectItem::UnnamedExpr(call(
            ONLY_ROW_FUNCTION,
            vec![call("named_struct", fields.clone())],
        ))];
        Expr::Subquery(Box::new(query))
    };
    let mut value = value.clone();
    let _ = visit_expressions_mut(&mut value, |e| {
        if let Some(i) = own.iter().position(|c| c == e) {
            *e = call("get_field", vec![row(), field(i)]);
        }
        ControlFlow::<()>::Continue(())
    });
    Some(Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition: Expr::IsNotNull(Box::new(row())),
            result: value,
        }],
        else_result: None,
    })
}

/// The one projected expression of a subquery that neither groups, nor
/// aggregates, nor limits, nor orders its rows.
fn plain_single_value(query: &mut Query) -> Option<&mut Expr> {
    if query.with.is_some()
        || query.order_by.is_some()
        || query.limit_clause.is_some()
        || query.fetch.is_some()
    {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let plain = select.distinct.is_none()
        && select.having.is_none()
        && select.named_window.is_empty()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    if !plain || select.projection.len() != 1 {
        return None;
    }
    let item = match &mut select.projection[0] {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return None,
    };
    let aggregates = visit_expressions(&*item, |e| match e {
        Expr::Function(f)
            if f.over.is_some()
                || f.name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|name| is_aggregate_function(&name.value)) =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    });
    aggregates.is_continue().then_some(item)
}

/// Removes the outer-only conjuncts from the subquery's WHERE, returning
/// them AND-ed; None (and the query untouched) when there are none.
fn take_outer_conjuncts(query: &mut Query) -> Option<Expr> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let filter = select.selection.as_ref()?;
    let inner = relation_names(&select.from)?;
    let mut conjuncts = Vec::new();
    split_and(filter.clone(), &mut conjuncts);
    let (outer, kept): (Vec<Expr>, Vec<Expr>) = conjuncts
        .into_iter()
        .partition(|c| is_outer_only(c, &inner));
    if outer.is_empty() {
        return None;
    }
    select.selection = and_all(kept);
    and_all(outer)
}

/// The names the FROM clause defines (table names and aliases), lower-cased;
/// None when it holds anything else (a derived table, a function).
fn relation_names(from: &[TableWithJoins]) -> Option<HashSet<String>> {
    let mut names = HashSet::new();
    let factors = from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for factor in factors {
        let TableFactor::Table { name, alias, .. } = factor else {
            return None;
        };
        match alias {
            Some(alias) => names.insert(alias.name.value.to_lowercase()),
            None => names.insert(name.0.last()?.as_ident()?.value.to_lowercase()),
        };
    }
    Some(names)
}

/// Whether `expr` names columns, all qualified by relations not in `inner`,
/// and holds no subquery.
fn is_outer_only(expr: &Expr, inner: &HashSet<String>) -> bool {
    let mut columns = 0;
    let verdict = visit_expressions(expr, |e| {
        match e {
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let qualifier = parts[parts.len() - 2].value.to_lowercase();
                if inner.contains(&qualifier) {
                    return ControlFlow::Break(());
                }
                columns += 1;
            }
            Expr::Identifier(_)
            | Expr::Subquery(_)
            | Expr::Exists { .. }
            | Expr::InSubquery { .. } => {
                return ControlFlow::Break(());
            }
            _ => {}
        }
        ControlFlow::Continue(())
    });
    verdict.is_continue() && columns > 0
}

fn split_and(expr: Expr, out: &mut Vec<Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(*left, out);
            split_and(*right, out);
        }
        Expr::Nested(inner)
            if matches!(
                *inner,
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            split_and(*inner, out)
        }
        other => out.push(other),
    }
}

fn and_all(conjuncts: Vec<Expr>) -> Option<Expr> {
    conjuncts.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        crate::sql::rewritten(sql, hoist_outer_conditions)
    }

    #[test]
    fn outer_only_conjuncts_guard_the_subquery() {
        assert_eq!(
            rewritten("SELECT (SELECT d.x FROM d WHERE a.h AND d.r = a.r) FROM a"),
            "SELECT CASE WHEN a.h THEN (SELECT d.x FROM d WHERE d.r = a.r) END FROM a"
        );
        assert_eq!(
            rewritten("SELECT (SELECT x FROM s.d AS e WHERE a.k <> $1 AND e.r = a.r) FROM a"),
            "SELECT CASE WHEN a.k <> $1 THEN (SELECT x FROM s.d AS e WHERE e.r = a.r) END FROM a"
        );
    }

    #[test]
    fn plain_scalar_subqueries_aggregate() {
        assert_eq!(
            crate::sql::rewritten(
                "SELECT (SELECT d.x FROM d WHERE d.r = a.r), (SELECT max(x) FROM d), \
                 (SELECT x FROM d ORDER BY x LIMIT 1), (SELECT x FROM d GROUP BY x) FROM a \
                 WHERE a.k = ANY (SELECT k FROM d) AND a.k > ALL (SELECT k FROM d)",
                wrap_scalar_subqueries
            ),
            "SELECT (SELECT fusegate_only_row(d.x) FROM d WHERE d.r = a.r), (SELECT max(x) FROM d), \
             (SELECT x FROM d ORDER BY x LIMIT 1), (SELECT x FROM d GROUP BY x) FROM a \
             WHERE a.k = ANY(SELECT k FROM d) AND a.k > ALL(SELECT k FROM d)"
        );
    }

    #[test]
    fn outer_columns_in_the_value_are_computed_outside() {
        assert_eq!(
            crate::sql::rewritten(
                "SELECT (SELECT a.b || d.x FROM d WHERE d.r = a.r) FROM a",
                wrap_scalar_subqueries
            ),
            "SELECT CASE WHEN (SELECT fusegate_only_row(named_struct('f0', d.x)) FROM d \
             WHERE d.r = a.r) IS NOT NULL THEN a.b || get_field((SELECT \
             fusegate_only_row(named_struct('f0', d.x)) FROM d WHERE d.r = a.r), 'f0') END FROM a"
        );
        // Only outer columns: the subquery still decides between a value and NULL.
        assert_eq!(
            crate::sql::rewritten(
                "SELECT (SELECT a.b FROM d WHERE d.r = a.r) FROM a",
                wrap_scalar_subqueries
            ),
            "SELECT CASE WHEN (SELECT fusegate_only_row(named_struct('f0', true)) FROM d \
             WHERE d.r = a.r) IS NOT NULL THEN a.b END FROM a"
        );
    }

    #[test]
    fn inner_or_unqualified_columns_stay() {
        for sql in [
            "SELECT (SELECT d.x FROM d WHERE d.h AND d.r = a.r) FROM a",
            "SELECT (SELECT x FROM d WHERE h AND d.r = a.r) FROM a",
            "SELECT (SELECT x FROM d WHERE 1 = 1) FROM a",
        ] {
            assert_eq!(rewritten(sql), sql);
        }
    }
}

//! `FETCH FIRST n ROWS ONLY` is the SQL standard's `LIMIT n`; DataFusion
//! plans only the latter, so every query's FETCH clause becomes one.
//! (`WITH TIES` and `PERCENT` stay as they are, and DataFusion refuses them.)

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, LimitClause, Query, Statement, Value, VisitMut, VisitorMut};

struct FetchToLimit;

impl VisitorMut for FetchToLimit {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let Some(fetch) = &query.fetch else {
            return ControlFlow::Continue(());
        };
        if fetch.with_ties || fetch.percent {
            return ControlFlow::Continue(());
        }
        // FETCH FIRST ROW ONLY: one row.
        let count = fetch
            .quantity
            .clone()
            .unwrap_or_else(|| Expr::value(Value::Number("1".into(), false)));
        match &mut query.limit_clause {
            None => {
                query.limit_clause = Some(LimitClause::LimitOffset {
                    limit: Some(count),
                    offset: None,
                    limit_by: vec![],
                })
            }
            Some(LimitClause::LimitOffset {
                limit: limit @ None,
                ..
            }) => *limit = Some(count),
            Some(_) => return ControlFlow::Continue(()),
        }
        query.fetch = None;
        ControlFlow::Continue(())
    }
}

pub fn rewrite_fetch(statement: &mut Statement) {
    let _ = statement.visit(&mut FetchToLimit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_first_becomes_limit() {
        for (sql, want) in [
            (
                "SELECT a FROM t ORDER BY a FETCH FIRST 3 ROWS ONLY",
                "SELECT a FROM t ORDER BY a LIMIT 3",
            ),
            (
                "SELECT a FROM t OFFSET 2 ROWS FETCH NEXT ROW ONLY",
                "SELECT a FROM t LIMIT 1 OFFSET 2 ROWS",
            ),
        ] {
            assert_eq!(crate::sql::rewritten(sql, rewrite_fetch), want);
        }
    }
}

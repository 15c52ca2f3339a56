//! `INTERSECT ALL` and `EXCEPT ALL` keep duplicates by count in PostgreSQL
//! (`{2,2} EXCEPT ALL {2}` is `{2}`); DataFusion 55 plans them as semi and
//! anti joins, which gives other answers. A wrong answer is worse than none:
//! they are refused (0A000) until they can be computed right.

use std::ops::ControlFlow;

use sqlparser::ast::{SetExpr, SetOperator, SetQuantifier, Statement, Visit, Visitor};

use crate::error::{Error, Result};

struct FindMultisetOps(Option<&'static str>);

impl Visitor for FindMultisetOps {
    type Break = ();

    fn pre_visit_query(&mut self, query: &sqlparser::ast::Query) -> ControlFlow<()> {
        check(&query.body, &mut self.0);
        if self.0.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

fn check(body: &SetExpr, found: &mut Option<&'static str>) {
    if let SetExpr::SetOperation {
        op,
        set_quantifier,
        left,
        right,
    } = body
    {
        if matches!(set_quantifier, SetQuantifier::All) {
            match op {
                SetOperator::Intersect => *found = Some("INTERSECT ALL"),
                SetOperator::Except | SetOperator::Minus => *found = Some("EXCEPT ALL"),
                _ => {}
            }
        }
        check(left, found);
        check(right, found);
    }
}

pub fn refuse_multiset_operations(statement: &Statement) -> Result<()> {
    let mut finder = FindMultisetOps(None);
    let _ = statement.visit(&mut finder);
    match finder.0 {
        Some(op) => Err(Error::unsupported(format!(
            "{op} is not supported yet (use {} without ALL)",
            op.trim_end_matches(" ALL")
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_variants_are_refused() {
        for (sql, refused) in [
            ("SELECT 1 EXCEPT ALL SELECT 2", true),
            ("SELECT 1 INTERSECT ALL SELECT 2", true),
            ("SELECT * FROM (SELECT 1 INTERSECT ALL SELECT 1) s", true),
            ("SELECT 1 UNION ALL SELECT 2", false),
            ("SELECT 1 EXCEPT SELECT 2", false),
        ] {
            let statement = crate::sql::parse(sql).unwrap().pop().unwrap();
            let crate::sql::Statement::Query(ast) = &statement else {
                panic!("a query")
            };
            assert_eq!(refuse_multiset_operations(ast).is_err(), refused, "{sql}");
        }
    }
}

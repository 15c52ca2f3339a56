//! Numeric literals typed as PostgreSQL types them.
//!
//! PostgreSQL reads `1` as an `integer` (a `bigint` only beyond its range,
//! a `numeric` beyond that) and `1.5` or `1e3` as a `numeric`. DataFusion
//! reads every integer as a `bigint` and every other number as a `double`;
//! a client sees it (`SELECT 1` is an int8 column, a driver reading it as an
//! int fails), and answers differ: `0.1 + 0.2` is `0.30000000000000004`,
//! `int_column + 1` is a bigint that never overflows as an integer does.
//!
//! Decimals come from the SQL planner itself (`parse_float_as_decimal`);
//! [`type_as_postgres`], run on the planner's plan before analysis, narrows
//! integer literals that fit an `integer` to Int32 — coercion then types
//! what they meet as PostgreSQL would (`int_column + 1` is an integer,
//! `bigint_column + 1` a bigint) — and gives the rest the forms the wire
//! and PostgreSQL expect: a literal beyond `bigint` (UInt64) becomes a
//! numeric, and `1e3`'s negative scale a plain `1000`.
//!
//! Where a float meets a numeric (`float_column > 0.5`, `coalesce(f, 0.5)`,
//! a UNION or VALUES of both), PostgreSQL computes in `double precision`;
//! DataFusion's coercion would pick a `decimal(30,15)`, which fails on NaN,
//! infinities and anything beyond 10^15. The rule casts the numeric side to
//! a double first.
//!
//! Left as DataFusion planned them: `count(*)`'s own literal (optimizers
//! recognise it), LIMIT and OFFSET, and recursive queries (the work table's
//! type is fixed before analysis).

use arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::utils::expr::COUNT_STAR_EXPANSION;
use datafusion::common::{Column, DFSchema, Result};
use datafusion::logical_expr::expr::{AggregateFunction, InList, ScalarFunction, WindowFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    Between, BinaryExpr, Case, Cast, Expr, ExprSchemable, LogicalPlan, Projection, Union, Values,
};
use datafusion::scalar::ScalarValue;
use std::sync::Arc;

/// Types the literals of a plan the SQL planner made as PostgreSQL would
/// have. Runs before analysis (type coercion types expressions by their
/// literals) and before parameters are bound: a bound value is not a
/// literal of the query's text and keeps its type.
pub fn type_as_postgres(plan: LogicalPlan) -> Result<LogicalPlan> {
    let recursive = plan.exists(|p| Ok(matches!(p, LogicalPlan::RecursiveQuery(_))))?;
    if recursive {
        return Ok(plan);
    }
    // Once a node is retyped, every node above it is rebuilt: a parent with
    // nothing of its own to retype (an UNNEST, a join) must see the new types.
    let changed = std::cell::Cell::new(false);
    plan.transform_up_with_subqueries(|plan| {
        let node = match plan {
            LogicalPlan::Limit(_) => Transformed::no(plan),
            LogicalPlan::Values(values) => narrow_values(values)?,
            LogicalPlan::Union(union) => floats_in_union(union)?,
            plan => {
                let names = NamePreserver::new(&plan);
                let schema = merge_schema(&plan.inputs());
                plan.map_expressions(|expr| {
                    let saved = names.save(&expr);
                    let rewritten = retype(expr)?
                        .transform_data(|e| e.transform_up(|e| floats_win(e, &schema)))?;
                    Ok(if rewritten.transformed {
                        rewritten.update_data(|e| saved.restore(e))
                    } else {
                        rewritten
                    })
                })?
            }
        };
        if node.transformed {
            changed.set(true);
        }
        if changed.get() && !matches!(node.data, LogicalPlan::Values(_)) {
            node.map_data(|p| p.recompute_schema())
                .map(|t| Transformed::yes(t.data))
        } else {
            Ok(node)
        }
    })
    .map(|t| t.data)
}

/// Retypes the literals of one expression, top-down so that `count(*)` is
/// seen before its argument.
fn retype(expr: Expr) -> Result<Transformed<Expr>> {
    expr.transform_down(|e| {
        if is_count_star(&e) {
            return Ok(Transformed::new(e, false, TreeNodeRecursion::Jump));
        }
        match e {
            Expr::Literal(value, metadata) => Ok(match postgres_literal(&value) {
                Some(v) => Transformed::yes(Expr::Literal(v, metadata)),
                None => Transformed::no(Expr::Literal(value, metadata)),
            }),
            e => Ok(Transformed::no(e)),
        }
    })
}

fn is_count_star(expr: &Expr) -> bool {
    let star = |args: &[Expr]| matches!(args, [Expr::Literal(v, _)] if *v == COUNT_STAR_EXPANSION);
    match expr {
        Expr::AggregateFunction(AggregateFunction { func, params }) => {
            func.name() == "count" && star(&params.args)
        }
        Expr::WindowFunction(w) => {
            let WindowFunction { fun, params } = w.as_ref();
            fun.name() == "count" && star(&params.args)
        }
        _ => false,
    }
}

/// Where a float and a numeric are compared or combined, the numeric is
/// cast to a double, as PostgreSQL's implicit casts do.
fn floats_win(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let to_float = |peers: Vec<&mut Expr>| {
        let types: Vec<Option<DataType>> = peers.iter().map(|e| e.get_type(schema).ok()).collect();
        let mixed = types.iter().flatten().any(DataType::is_floating)
            && types.iter().flatten().any(DataType::is_decimal);
        if !mixed {
            return false;
        }
        for (peer, t) in peers.into_iter().zip(types) {
            if t.as_ref().is_some_and(DataType::is_decimal) {
                let inner = std::mem::replace(peer, Expr::Literal(ScalarValue::Null, None));
                *peer = Expr::Cast(Cast::new(Box::new(inner), DataType::Float64));
            }
        }
        true
    };
    let mut expr = expr;
    let changed = match &mut expr {
        Expr::BinaryExpr(BinaryExpr { left, right, .. }) => to_float(vec![left, right]),
        Expr::Between(Between {
            expr, low, high, ..
        }) => to_float(vec![expr, low, high]),
        Expr::InList(InList { expr, list, .. }) => to_float(
            std::iter::once(expr.as_mut())
                .chain(list.iter_mut())
                .collect(),
        ),
        Expr::Case(Case {
            expr,
            when_then_expr,
            else_expr,
        }) => {
            let mut changed = false;
            if let Some(base) = expr {
                let whens = when_then_expr.iter_mut().map(|(w, _)| w.as_mut());
                changed |= to_float(std::iter::once(base.as_mut()).chain(whens).collect());
            }
            let thens = when_then_expr.iter_mut().map(|(_, t)| t.as_mut());
            changed | to_float(thens.chain(else_expr.as_deref_mut()).collect())
        }
        Expr::ScalarFunction(ScalarFunction { func, args })
            if matches!(
                func.name(),
                "coalesce" | "greatest" | "least" | "nullif" | "nvl" | "ifnull"
            ) =>
        {
            to_float(args.iter_mut().collect())
        }
        _ => false,
    };
    Ok(if changed {
        Transformed::yes(expr)
    } else {
        Transformed::no(expr)
    })
}

/// A UNION column that is a float in one branch and a numeric in another is
/// a double: the numeric branches are cast.
fn floats_in_union(union: Union) -> Result<Transformed<LogicalPlan>> {
    let width = union.schema.fields().len();
    let float_columns: Vec<usize> = (0..width)
        .filter(|&i| {
            let types = || union.inputs.iter().map(|p| p.schema().field(i).data_type());
            types().any(DataType::is_floating) && types().any(DataType::is_decimal)
        })
        .collect();
    if float_columns.is_empty() {
        return Ok(Transformed::no(LogicalPlan::Union(union)));
    }
    let inputs = union
        .inputs
        .into_iter()
        .map(|input| {
            let schema = input.schema().clone();
            let needs_cast = |i: &usize| schema.field(*i).data_type().is_decimal();
            if !float_columns.iter().any(needs_cast) {
                return Ok(input);
            }
            let exprs = schema
                .iter()
                .enumerate()
                .map(|(i, (qualifier, field))| {
                    let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
                    if float_columns.contains(&i) && needs_cast(&i) {
                        Expr::Cast(Cast::new(Box::new(column), DataType::Float64))
                            .alias_qualified(qualifier.cloned(), field.name())
                    } else {
                        column
                    }
                })
                .collect();
            Ok(Arc::new(LogicalPlan::Projection(Projection::try_new(
                exprs, input,
            )?)))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Transformed::yes(LogicalPlan::Union(
        Union::try_new_with_loose_types(inputs)?,
    )))
}

/// The literal PostgreSQL would have read, where it differs.
fn postgres_literal(value: &ScalarValue) -> Option<ScalarValue> {
    match value {
        ScalarValue::Int64(Some(v)) => i32::try_from(*v).ok().map(|v| ScalarValue::Int32(Some(v))),
        ScalarValue::UInt64(Some(v)) => Some(ScalarValue::Decimal128(Some(i128::from(*v)), 20, 0)),
        ScalarValue::Decimal128(Some(v), precision, scale) if *scale < 0 => {
            let digits = i32::from(*precision) - i32::from(*scale);
            let factor = 10i128.checked_pow(u32::from(scale.unsigned_abs()))?;
            let v = v.checked_mul(factor)?;
            u8::try_from(digits)
                .ok()
                .filter(|d| *d <= 38)
                .map(|d| ScalarValue::Decimal128(Some(v), d, 0))
        }
        _ => None,
    }
}

/// The columns of VALUES typed as PostgreSQL types them: a column whose
/// every cell is an integer literal that fits an `integer` is an `integer`,
/// and one mixing floats and numerics (which the SQL planner has cast to a
/// common `decimal`) is a double.
fn narrow_values(values: Values) -> Result<Transformed<LogicalPlan>> {
    let Values { schema, mut values } = values;
    let empty = DFSchema::empty();
    let fits = |e: &Expr| match e {
        Expr::Literal(ScalarValue::Int64(None), _) => true,
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => i32::try_from(*v).is_ok(),
        _ => false,
    };
    // A cell without the cast the planner put on it to reach the column's type.
    let uncast = |e: &Expr, to: &DataType| match e {
        Expr::Cast(Cast { expr, field }) if field.data_type() == to => expr.as_ref().clone(),
        e => e.clone(),
    };
    let mut retyped = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        let column_type = field.data_type();
        let cells = || values.iter().filter_map(|row| row.get(i));
        if column_type == &DataType::Int64 && cells().all(fits) {
            retyped.push((i, DataType::Int32));
        } else if column_type.is_decimal()
            && cells().any(|c| {
                uncast(c, column_type)
                    .get_type(&empty)
                    .is_ok_and(|t| t.is_floating())
            })
        {
            retyped.push((i, DataType::Float64));
        }
    }
    if retyped.is_empty() {
        return Ok(Transformed::no(LogicalPlan::Values(Values {
            schema,
            values,
        })));
    }
    for row in &mut values {
        for (i, to) in &retyped {
            let cell = &mut row[*i];
            *cell = match (to, &*cell) {
                (DataType::Int32, Expr::Literal(ScalarValue::Int64(v), _)) => {
                    Expr::Literal(ScalarValue::Int32(v.map(|v| v as i32)), None)
                }
                _ => Expr::Cast(Cast::new(
                    Box::new(uncast(cell, schema.field(*i).data_type())),
                    to.clone(),
                )),
            };
        }
    }
    let fields = schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            let field = match retyped.iter().find(|(r, _)| *r == i) {
                Some((_, to)) => Arc::new(Field::clone(field).with_data_type(to.clone())),
                None => field.clone(),
            };
            (qualifier.cloned(), field)
        })
        .collect();
    let schema = DFSchema::new_with_metadata(fields, schema.metadata().clone())?;
    Ok(Transformed::yes(LogicalPlan::Values(Values {
        schema: Arc::new(schema),
        values,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_take_postgres_types() {
        assert_eq!(
            postgres_literal(&ScalarValue::Int64(Some(2147483647))),
            Some(ScalarValue::Int32(Some(2147483647)))
        );
        assert_eq!(
            postgres_literal(&ScalarValue::Int64(Some(-2147483648))),
            Some(ScalarValue::Int32(Some(-2147483648)))
        );
        assert_eq!(
            postgres_literal(&ScalarValue::Int64(Some(2147483648))),
            None
        );
        assert_eq!(
            postgres_literal(&ScalarValue::UInt64(Some(u64::MAX))),
            Some(ScalarValue::Decimal128(Some(i128::from(u64::MAX)), 20, 0))
        );
        // 1e3 as DataFusion reads it: 1 at scale -3.
        assert_eq!(
            postgres_literal(&ScalarValue::Decimal128(Some(15), 2, -2)),
            Some(ScalarValue::Decimal128(Some(1500), 4, 0))
        );
        assert_eq!(
            postgres_literal(&ScalarValue::Decimal128(Some(15), 2, 1)),
            None
        );
    }
}

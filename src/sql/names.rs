//! Result column names as PostgreSQL chooses them for unaliased select items
//! (FigureColname in its parser): `count(*)` is `count`, `1 + 1` is
//! `?column?`, `x::text` is `x`, `1::float8` is `float8`, `CASE` is `case`.
//! DataFusion names them after the whole expression instead.

use sqlparser::ast::{
    CastKind, DataType, Expr, Function, Query, Select, SelectItem, SetExpr, Statement, TimezoneInfo,
};

use super::normalize_ident;

const UNKNOWN: &str = "?column?";

/// Names for the result columns of `statement`, given that it produced
/// `width` columns; `None` entries keep the planner's name (aliases, `*`).
/// Returns None when the mapping cannot be known (several `*`).
pub fn output_names(statement: &Statement, width: usize) -> Option<Vec<Option<String>>> {
    let Statement::Query(query) = statement else {
        return None;
    };
    let select = leftmost_select(query)?;
    let wildcards = select
        .projection
        .iter()
        .filter(|i| {
            matches!(
                i,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        })
        .count();
    let fixed = select.projection.len() - wildcards;
    if wildcards > 1 || width < fixed || (wildcards == 0 && width != fixed) {
        return None;
    }
    let expanded = width - fixed;
    let mut names = Vec::with_capacity(width);
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(expr) => names.push(Some(figure(expr))),
            SelectItem::ExprWithAlias { .. } | SelectItem::ExprWithAliases { .. } => {
                names.push(None)
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                names.extend(std::iter::repeat_n(None, expanded));
            }
        }
    }
    Some(names)
}

/// Aliases select items so that every result column of every SELECT in the
/// statement's top-level set expression has a distinct name. PostgreSQL allows
/// duplicate result names (`SELECT a, a::text`, `SELECT count(*), count(*)`);
/// DataFusion's projections do not. [`output_names`], computed on the
/// original statement, restores PostgreSQL's names for the client.
pub fn make_names_unique(statement: &mut Statement) {
    if let Statement::Query(query) = statement {
        unique_in_set_expr(query.body.as_mut());
    }
}

fn unique_in_set_expr(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => unique_in_select(select),
        SetExpr::SetOperation { left, right, .. } => {
            unique_in_set_expr(left);
            unique_in_set_expr(right);
        }
        SetExpr::Query(q) => unique_in_set_expr(q.body.as_mut()),
        _ => {}
    }
}

fn unique_in_select(select: &mut Select) {
    let has_wildcard = select.projection.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    });
    let names: Vec<Option<String>> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Some(figure(e)),
            SelectItem::ExprWithAlias { alias, .. } => Some(normalize_ident(alias)),
            _ => None,
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for (i, item) in select.projection.iter_mut().enumerate() {
        let SelectItem::UnnamedExpr(expr) = item else {
            if let Some(Some(name)) = names.get(i) {
                seen.insert(name.clone());
            }
            continue;
        };
        let name = names[i].clone().unwrap_or_default();
        let plain_column = matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
        let duplicate = names
            .iter()
            .filter(|n| n.as_deref() == Some(name.as_str()))
            .count()
            > 1;
        if plain_column && !duplicate && !has_wildcard {
            seen.insert(name);
            continue;
        }
        let mut alias = name.clone();
        if !seen.insert(alias.clone()) || alias == UNKNOWN {
            alias = format!("{name}_{}", i + 1);
            seen.insert(alias.clone());
        }
        *item = SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias: sqlparser::ast::Ident::with_quote('"', alias),
        };
    }
}

fn leftmost_select(query: &Query) -> Option<&Select> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::Select(select) => return Some(select),
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            SetExpr::Query(q) => body = q.body.as_ref(),
            _ => return None,
        }
    }
}

fn figure(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(ident) => normalize_ident(ident),
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .map(normalize_ident)
            .unwrap_or_else(|| UNKNOWN.into()),
        Expr::Function(f) => function_name(f),
        Expr::Cast {
            expr,
            data_type,
            kind,
            ..
        } => {
            let inner = figure(expr);
            if inner != UNKNOWN || matches!(kind, CastKind::TryCast | CastKind::SafeCast) {
                inner
            } else {
                type_name(data_type)
            }
        }
        Expr::Nested(inner) => figure(inner),
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::Array(_) => "array".into(),
        Expr::Subquery(q) => leftmost_select(q)
            .and_then(|s| s.projection.first())
            .map(|item| match item {
                SelectItem::UnnamedExpr(e) => figure(e),
                SelectItem::ExprWithAlias { alias, .. } => normalize_ident(alias),
                _ => UNKNOWN.into(),
            })
            .unwrap_or_else(|| UNKNOWN.into()),
        Expr::TypedString(ts) => type_name(&ts.data_type),
        Expr::Interval(_) => "interval".into(),
        Expr::Extract { .. } => "extract".into(),
        Expr::Substring { .. } => "substring".into(),
        Expr::Position { .. } => "position".into(),
        Expr::Trim { .. } => "btrim".into(),
        Expr::Ceil { .. } => "ceil".into(),
        Expr::Floor { .. } => "floor".into(),
        Expr::Overlay { .. } => "overlay".into(),
        _ => UNKNOWN.into(),
    }
}

fn function_name(f: &Function) -> String {
    f.name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(normalize_ident)
        .unwrap_or_else(|| UNKNOWN.into())
}

/// PostgreSQL's internal name of a type, as a cast's column is named.
fn type_name(data_type: &DataType) -> String {
    use DataType as D;
    match data_type {
        D::SmallInt(_) | D::Int2(_) => "int2".into(),
        D::Int(_) | D::Integer(_) | D::Int4(_) => "int4".into(),
        D::BigInt(_) | D::Int8(_) => "int8".into(),
        D::Real | D::Float4 => "float4".into(),
        D::Double(_) | D::DoublePrecision | D::Float8 => "float8".into(),
        D::Float(_) => "float8".into(),
        D::Decimal(_) | D::Numeric(_) | D::Dec(_) => "numeric".into(),
        D::Varchar(_) | D::CharacterVarying(_) => "varchar".into(),
        D::Char(_) | D::Character(_) => "bpchar".into(),
        D::Text | D::String(_) => "text".into(),
        D::Boolean | D::Bool => "bool".into(),
        D::Date => "date".into(),
        D::Timestamp(_, TimezoneInfo::Tz | TimezoneInfo::WithTimeZone) => "timestamptz".into(),
        D::Timestamp(_, _) => "timestamp".into(),
        D::Time(_, _) => "time".into(),
        D::Interval { .. } => "interval".into(),
        D::Bytea => "bytea".into(),
        other => other.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn names(sql: &str, width: usize) -> Option<Vec<Option<String>>> {
        let stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        output_names(&stmt, width)
    }

    fn all(sql: &str, width: usize) -> Vec<String> {
        names(sql, width)
            .unwrap()
            .into_iter()
            .map(|n| n.unwrap_or_else(|| "<planner>".into()))
            .collect()
    }

    #[test]
    fn duplicate_names_get_aliases() {
        let mut stmt = Parser::parse_sql(
            &PostgreSqlDialect {},
            "select a, a::text, count(*), count(*), b from t",
        )
        .unwrap()
        .remove(0);
        let before = output_names(&stmt, 5);
        make_names_unique(&mut stmt);
        assert_eq!(
            stmt.to_string(),
            "SELECT a AS \"a\", a::TEXT AS \"a_2\", count(*) AS \"count\", count(*) AS \"count_4\", b FROM t"
        );
        assert_eq!(before.unwrap()[1].as_deref(), Some("a"));
    }

    #[test]
    fn names_follow_postgres() {
        // Expected names read off PostgreSQL 15.
        assert_eq!(
            all(
                "select 1.0::float8, 1/3.0, cast(1 as text), case when true then 1 end, 'a' || 'b', count(*), sum(t.a), a::text, x.y, Y, \"Z\"",
                11
            ),
            vec![
                "float8", "?column?", "text", "case", "?column?", "count", "sum", "a", "y", "y",
                "Z"
            ]
        );
        assert_eq!(
            all("select 1 as one, * from t", 3),
            vec!["<planner>", "<planner>", "<planner>"]
        );
        assert_eq!(
            all("select (select max(a) from t), exists (select 1)", 2),
            vec!["max", "exists"]
        );
        assert_eq!(all("select 1 union all select 2", 1), vec!["?column?"]);
        assert!(names("select *, * from t", 4).is_none());
        assert!(names("values (1)", 1).is_none());
    }
}

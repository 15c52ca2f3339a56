//! The statement-by-statement driver over sqlparser's PostgreSQL dialect.

use std::collections::BTreeMap;

use sqlparser::ast::{
    self, ColumnOption, CreateTableOptions, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    ObjectName, ObjectType, SqlOption, Value,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, Tokenizer};

use super::types::column_type;
use super::{
    AlterOp, ColumnSpec, CreateTable, OptimizeAction, Statement, TableName, TravelSpec,
    normalize_ident,
};
use super::{CopyFormat, CopySpec};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::StorageLocation;

/// Parses one query string (one or more statements separated by `;`).
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| Error::syntax(format!("syntax error: {e}")))?;
    check_operator_runs(tokens.iter().map(|t| &t.token))?;
    let tokens = super::time_travel::rewrite(tokens);
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let mut statements = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            break;
        }
        let statement = parse_statement(&mut parser)?;
        if let Statement::Query(ast) = &statement {
            check_nesting(ast)?;
        }
        statements.push(statement);
        match parser.peek_token().token {
            Token::SemiColon | Token::EOF => {}
            _ => {
                let found = parser.peek_token();
                return Err(
                    Error::syntax(format!("syntax error at or near \"{}\"", found.token))
                        .with_detail(format!("at {}", found.span.start)),
                );
            }
        }
    }
    Ok(statements)
}

/// How deep expressions and subqueries may nest (PostgreSQL, with its
/// default 2 MB max_stack_depth, takes `1+1+...` of 1,000 terms and refuses
/// 10,000 with 54001).
pub const MAX_NESTING: usize = 1000;

/// The stack each server thread gets: DataFusion's planner and optimizer
/// recurse per nesting level, with large frames in a debug build.
pub const STACK_SIZE: usize = 64 << 20;

/// Refuses a statement nested deeper than [`MAX_NESTING`] with 54001 before
/// anything else walks it. (The parser builds a left-deep `a + b + c ...`
/// without recursing, so such a chain is only caught here.)
fn check_nesting(statement: &ast::Statement) -> Result<()> {
    use sqlparser::ast::{Visit, Visitor};
    use std::ops::ControlFlow;

    struct Depth(usize);
    impl Visitor for Depth {
        type Break = ();
        fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.0 += 1;
            if self.0 > MAX_NESTING {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.0 -= 1;
            ControlFlow::Continue(())
        }
    }
    match statement.visit(&mut Depth(0)) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(syntax(ParserError::RecursionLimitExceeded)),
    }
}

/// Refuses, before parsing, a run of more than [`MAX_NESTING`] binary
/// operators with no clause, list or parenthesis boundary between them: the
/// parser would build that many levels (`1+1+...+1` of a million terms
/// parses without recursing, but dropping the tree recurses once per level).
fn check_operator_runs<'a>(tokens: impl Iterator<Item = &'a Token>) -> Result<()> {
    let mut run = 0usize;
    for token in tokens {
        let boundary = match token {
            Token::Comma | Token::LParen | Token::RParen | Token::SemiColon => true,
            Token::Word(w) => matches!(
                w.keyword,
                Keyword::SELECT
                    | Keyword::FROM
                    | Keyword::WHERE
                    | Keyword::WHEN
                    | Keyword::THEN
                    | Keyword::ELSE
                    | Keyword::END
                    | Keyword::ON
                    | Keyword::GROUP
                    | Keyword::HAVING
                    | Keyword::ORDER
                    | Keyword::LIMIT
                    | Keyword::VALUES
                    | Keyword::SET
            ),
            _ => false,
        };
        let operator = match token {
            Token::Word(w) => matches!(w.keyword, Keyword::AND | Keyword::OR),
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Caret
            | Token::Ampersand
            | Token::Pipe
            | Token::DoubleColon => true,
            _ => false,
        };
        if boundary {
            run = 0;
        } else if operator {
            run += 1;
            if run > MAX_NESTING {
                return Err(syntax(ParserError::RecursionLimitExceeded));
            }
        }
    }
    Ok(())
}

fn syntax(err: ParserError) -> Error {
    let msg = match &err {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.clone(),
        ParserError::RecursionLimitExceeded => {
            return Error::new(
                ErrorKind::StatementTooComplex,
                "statement is too deeply nested",
            )
            .with_hint("Simplify the statement or split it up.");
        }
    };
    Error::syntax(format!("syntax error: {msg}"))
}

/// Upper-cased words of the next `n` tokens (empty strings for non-words).
fn peek_words<const N: usize>(p: &Parser) -> [String; N] {
    p.peek_tokens::<N>().map(|t| match t {
        Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        _ => String::new(),
    })
}

fn parse_statement(p: &mut Parser) -> Result<Statement> {
    let words = peek_words::<4>(p);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["CREATE", "TABLE", ..]
        | ["CREATE", "TRANSIENT", "TABLE", ..]
        | ["CREATE", "OR", "REPLACE", "TABLE"] => {
            p.next_token();
            let or_replace = p.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
            // Databend's TRANSIENT tables are ordinary tables here.
            let _transient = p.parse_keyword(Keyword::TRANSIENT);
            p.next_token();
            if or_replace {
                return Err(Error::unsupported(
                    "CREATE OR REPLACE TABLE is not supported",
                ));
            }
            let create = p
                .parse_create_table(false, false, None, false)
                .map_err(syntax)?;
            create_table(p, create)
        }
        ["SHOW", "TABLES", ..] => {
            p.next_token();
            p.next_token();
            let database = if p.parse_keyword(Keyword::FROM) || p.parse_keyword(Keyword::IN) {
                Some(normalize_ident(&p.parse_identifier().map_err(syntax)?))
            } else {
                None
            };
            Ok(Statement::ShowTables { database })
        }
        ["SHOW", "DATABASES", ..] | ["SHOW", "SCHEMAS", ..] => {
            p.next_token();
            p.next_token();
            Ok(Statement::ShowDatabases)
        }
        ["SHOW", "CREATE", "TABLE", ..] => {
            for _ in 0..3 {
                p.next_token();
            }
            let name = table_name(&p.parse_object_name(false).map_err(syntax)?)?;
            Ok(Statement::ShowCreateTable { name })
        }
        ["FLASHBACK", "TABLE", ..] => {
            p.next_token();
            p.next_token();
            let name = table_name(&p.parse_object_name(false).map_err(syntax)?)?;
            if !p.parse_keyword(Keyword::TO) {
                return Err(Error::syntax(
                    "FLASHBACK TABLE needs TO (SNAPSHOT => ...) or TO (TIMESTAMP => ...)",
                ));
            }
            let point = travel_spec(p)?;
            Ok(Statement::Flashback { name, point })
        }
        ["UNDROP", "TABLE", ..] => {
            p.next_token();
            p.next_token();
            let name = table_name(&p.parse_object_name(false).map_err(syntax)?)?;
            Ok(Statement::Undrop { name })
        }
        ["SHOW", "DROP", "TABLES", ..] => {
            for _ in 0..3 {
                p.next_token();
            }
            let database = if p.parse_keyword(Keyword::FROM) || p.parse_keyword(Keyword::IN) {
                Some(normalize_ident(&p.parse_identifier().map_err(syntax)?))
            } else {
                None
            };
            Ok(Statement::ShowDropTables { database })
        }
        ["VACUUM", "DROP", "TABLE", ..] => {
            for _ in 0..3 {
                p.next_token();
            }
            let database = if p.parse_keyword(Keyword::FROM) {
                Some(normalize_ident(&p.parse_identifier().map_err(syntax)?))
            } else {
                None
            };
            let retain_hours = retain(p)?;
            let dry_run = dry_run(p);
            Ok(Statement::VacuumDropTables {
                database,
                retain_hours,
                dry_run,
            })
        }
        ["VACUUM", "TABLE", ..] => {
            p.next_token();
            p.next_token();
            let name = table_name(&p.parse_object_name(false).map_err(syntax)?)?;
            let retain_hours = retain(p)?;
            let dry_run = dry_run(p);
            Ok(Statement::Vacuum {
                name,
                retain_hours,
                dry_run,
            })
        }
        ["OPTIMIZE", "TABLE", ..] => {
            p.next_token();
            p.next_token();
            let name = table_name(&p.parse_object_name(false).map_err(syntax)?)?;
            let action = match peek_words::<1>(p)[0].as_str() {
                "COMPACT" => {
                    p.next_token();
                    let segments_only = matches!(peek_words::<1>(p)[0].as_str(), "SEGMENT");
                    if segments_only {
                        p.next_token();
                    }
                    let limit = if p.parse_keyword(Keyword::LIMIT) {
                        Some(p.parse_literal_uint().map_err(syntax)?)
                    } else {
                        None
                    };
                    OptimizeAction::Compact {
                        segments_only,
                        limit,
                    }
                }
                "PURGE" => {
                    p.next_token();
                    OptimizeAction::Purge
                }
                "ALL" => {
                    p.next_token();
                    OptimizeAction::All
                }
                _ => {
                    return Err(Error::syntax(
                        "OPTIMIZE TABLE needs COMPACT [SEGMENT] [LIMIT n], PURGE or ALL",
                    ));
                }
            };
            Ok(Statement::Optimize { name, action })
        }
        ["USE", ..] => {
            p.next_token();
            let database = normalize_ident(&p.parse_identifier().map_err(syntax)?);
            Ok(Statement::Use { database })
        }
        _ => route(p.parse_statement().map_err(syntax)?),
    }
}

/// `( SNAPSHOT => 'id' )` or `( TIMESTAMP => expr )`.
fn travel_spec(p: &mut Parser) -> Result<TravelSpec> {
    p.expect_token(&Token::LParen).map_err(syntax)?;
    let kind = peek_words::<1>(p)[0].clone();
    p.next_token();
    p.expect_token(&Token::RArrow).map_err(syntax)?;
    let spec = match kind.as_str() {
        "SNAPSHOT" => TravelSpec::Snapshot(p.parse_literal_string().map_err(syntax)?),
        "TIMESTAMP" => TravelSpec::Timestamp(Box::new(p.parse_expr().map_err(syntax)?)),
        _ => {
            return Err(Error::syntax(
                "expected SNAPSHOT => 'id' or TIMESTAMP => expression",
            ));
        }
    };
    p.expect_token(&Token::RParen).map_err(syntax)?;
    Ok(spec)
}

/// `RETAIN n HOURS`, if present.
fn retain(p: &mut Parser) -> Result<Option<u64>> {
    if peek_words::<1>(p)[0] != "RETAIN" {
        return Ok(None);
    }
    p.next_token();
    let n = p.parse_literal_uint().map_err(syntax)?;
    match peek_words::<1>(p)[0].as_str() {
        "HOURS" | "HOUR" => {
            p.next_token();
            Ok(Some(n))
        }
        _ => Err(Error::syntax("RETAIN takes a number of HOURS")),
    }
}

/// `DRY RUN`, if present.
fn dry_run(p: &mut Parser) -> bool {
    if peek_words::<2>(p) == ["DRY".to_string(), "RUN".to_string()] {
        p.next_token();
        p.next_token();
        return true;
    }
    false
}

/// The tail Databend allows after a CREATE TABLE's column list:
/// `'<uri>' [CONNECTION = (k = 'v' ...)]` and `key = value` table options.
fn create_table(p: &mut Parser, create: ast::CreateTable) -> Result<Statement> {
    let mut location = None;
    if let Token::SingleQuotedString(uri) = p.peek_token().token {
        p.next_token();
        let mut options = BTreeMap::new();
        if matches!(&p.peek_token().token, Token::Word(w) if w.value.eq_ignore_ascii_case("CONNECTION"))
        {
            p.next_token();
            p.expect_token(&Token::Eq).map_err(syntax)?;
            options = connection_options(p)?;
        }
        location = Some(StorageLocation::parse(&uri, options)?);
    }
    let mut options = BTreeMap::new();
    if let CreateTableOptions::With(opts) | CreateTableOptions::Plain(opts) = &create.table_options
    {
        for opt in opts {
            match opt {
                SqlOption::KeyValue { key, value } => {
                    options.insert(normalize_ident(key), option_value(value)?);
                }
                other => {
                    return Err(Error::unsupported(format!(
                        "table option {other} is not supported"
                    )));
                }
            }
        }
    }
    // Databend style: `... ) row_per_block = 1000 block_per_segment = 10`
    while let [Token::Word(key), Token::Eq] = p.peek_tokens::<2>() {
        p.next_token();
        p.next_token();
        let value = match p.next_token().token {
            Token::SingleQuotedString(s) => s,
            Token::Number(n, _) => n,
            Token::Word(w) => w.value,
            other => {
                return Err(Error::syntax(format!(
                    "syntax error at or near \"{other}\""
                )));
            }
        };
        options.insert(key.value.to_ascii_lowercase(), value);
        let _ = p.consume_token(&Token::Comma);
    }
    if create.query.is_some() && !create.columns.is_empty() {
        return Err(Error::unsupported(
            "CREATE TABLE with both a column list and AS SELECT is not supported; use the query's column names",
        ));
    }
    let columns = create
        .columns
        .iter()
        .map(column_spec)
        .collect::<Result<Vec<_>>>()?;
    if !create.constraints.is_empty() {
        return Err(Error::unsupported("table constraints are not supported"));
    }
    Ok(Statement::CreateTable(Box::new(CreateTable {
        name: table_name(&create.name)?,
        if_not_exists: create.if_not_exists,
        columns,
        as_query: create.query,
        location,
        options,
    })))
}

/// `COPY t [(cols)] FROM STDIN`, `COPY t|(query) TO STDOUT`, with PostgreSQL's
/// options (`WITH (FORMAT csv, HEADER, DELIMITER ',', NULL '')`) or the old
/// unparenthesised ones (`CSV HEADER`, `DELIMITER ','`).
fn copy(
    source: ast::CopySource,
    to: bool,
    target: ast::CopyTarget,
    options: Vec<ast::CopyOption>,
    legacy: Vec<ast::CopyLegacyOption>,
) -> Result<Statement> {
    match (&target, to) {
        (ast::CopyTarget::Stdin, false) | (ast::CopyTarget::Stdout, true) => {}
        _ => {
            return Err(Error::unsupported(
                "COPY only reads from STDIN and writes to STDOUT (the server has no files for you); psql's \\copy moves client files",
            ));
        }
    }
    let csv = options
        .iter()
        .any(|o| matches!(o, ast::CopyOption::Format(f) if f.value.eq_ignore_ascii_case("csv")))
        || legacy
            .iter()
            .any(|o| matches!(o, ast::CopyLegacyOption::Csv(_)));
    if options
        .iter()
        .any(|o| matches!(o, ast::CopyOption::Format(f) if f.value.eq_ignore_ascii_case("binary")))
        || legacy
            .iter()
            .any(|o| matches!(o, ast::CopyLegacyOption::Binary))
    {
        return Err(Error::unsupported(
            "COPY in binary format is not supported; use text or csv",
        ));
    }
    let mut format = CopyFormat::new(csv);
    for option in &options {
        match option {
            ast::CopyOption::Format(_)
            | ast::CopyOption::Encoding(_)
            | ast::CopyOption::Freeze(_) => {}
            ast::CopyOption::Delimiter(c) => format.delimiter = *c,
            ast::CopyOption::Null(n) => format.null = n.clone(),
            ast::CopyOption::Header(h) => format.header = *h,
            ast::CopyOption::Quote(c) => format.quote = *c,
            ast::CopyOption::Escape(c) => format.escape = *c,
            other => {
                return Err(Error::unsupported(format!(
                    "COPY option {other} is not supported"
                )));
            }
        }
    }
    for option in &legacy {
        match option {
            ast::CopyLegacyOption::Delimiter(c) => format.delimiter = *c,
            ast::CopyLegacyOption::Null(n) => format.null = n.clone(),
            ast::CopyLegacyOption::Header => format.header = true,
            ast::CopyLegacyOption::Csv(csv_options) => {
                for o in csv_options {
                    match o {
                        ast::CopyLegacyCsvOption::Header => format.header = true,
                        ast::CopyLegacyCsvOption::Quote(c) => format.quote = *c,
                        ast::CopyLegacyCsvOption::Escape(c) => format.escape = *c,
                        other => {
                            return Err(Error::unsupported(format!(
                                "COPY option {other} is not supported"
                            )));
                        }
                    }
                }
            }
            other => {
                return Err(Error::unsupported(format!(
                    "COPY option {other} is not supported"
                )));
            }
        }
    }
    // As PostgreSQL: the decoder splits fields on single bytes.
    for (name, c) in [
        ("delimiter", format.delimiter),
        ("quote", format.quote),
        ("escape", format.escape),
    ] {
        if !c.is_ascii() {
            return Err(Error::unsupported(format!(
                "COPY {name} must be a single one-byte character"
            )));
        }
    }
    let (table, columns, query) = match source {
        ast::CopySource::Table {
            table_name,
            columns,
        } => (
            Some(table_name_for_copy(&table_name)?),
            columns.iter().map(normalize_ident).collect(),
            None,
        ),
        ast::CopySource::Query(q) => {
            if !to {
                return Err(Error::syntax(
                    "COPY (query) FROM is not valid; COPY a query TO STDOUT",
                ));
            }
            (None, Vec::new(), Some(q))
        }
    };
    Ok(Statement::Copy(Box::new(CopySpec {
        table,
        columns,
        query,
        from_stdin: !to,
        format,
    })))
}

fn table_name_for_copy(name: &ObjectName) -> Result<TableName> {
    table_name(name)
}

/// A column definition of CREATE TABLE or ALTER TABLE ADD COLUMN.
fn column_spec(col: &ast::ColumnDef) -> Result<ColumnSpec> {
    let mut nullable = true;
    let mut default = None;
    for opt in &col.options {
        match &opt.option {
            ColumnOption::NotNull => nullable = false,
            ColumnOption::Null => nullable = true,
            ColumnOption::Default(expr) => default = Some(expr.to_string()),
            ColumnOption::PrimaryKey(_) => nullable = false,
            other => {
                return Err(Error::unsupported(format!(
                    "column constraint {other} is not supported"
                )));
            }
        }
    }
    Ok(ColumnSpec {
        name: normalize_ident(&col.name),
        ty: column_type(&col.data_type)?,
        nullable,
        default,
    })
}

/// `( key = 'value' [,] key = 'value' ... )`
fn connection_options(p: &mut Parser) -> Result<BTreeMap<String, String>> {
    p.expect_token(&Token::LParen).map_err(syntax)?;
    let mut options = BTreeMap::new();
    loop {
        if p.consume_token(&Token::RParen) {
            return Ok(options);
        }
        let key = match p.next_token().token {
            Token::Word(w) => w.value.to_ascii_lowercase(),
            other => {
                return Err(Error::syntax(format!(
                    "syntax error in CONNECTION options at or near \"{other}\""
                )));
            }
        };
        p.expect_token(&Token::Eq).map_err(syntax)?;
        let value = match p.next_token().token {
            Token::SingleQuotedString(s) => s,
            Token::Number(n, _) => n,
            Token::Word(w) => w.value,
            // The value may be a secret: never echo it.
            _ => {
                return Err(Error::syntax(format!(
                    "CONNECTION option {key} needs a quoted string value"
                )));
            }
        };
        options.insert(key, value);
        let _ = p.consume_token(&Token::Comma);
    }
}

fn option_value(expr: &Expr) -> Result<String> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Ok(s.clone()),
            Value::Number(n, _) => Ok(n.to_string()),
            Value::Boolean(b) => Ok(b.to_string()),
            other => Ok(other.to_string()),
        },
        Expr::Identifier(id) => Ok(id.value.clone()),
        other => Err(Error::unsupported(format!(
            "option value {other} is not supported"
        ))),
    }
}

fn idents(name: &ObjectName) -> Result<Vec<String>> {
    name.0
        .iter()
        .map(|part| {
            part.as_ident()
                .map(normalize_ident)
                .ok_or_else(|| Error::syntax(format!("invalid name {name}")))
        })
        .collect()
}

pub fn table_name(name: &ObjectName) -> Result<TableName> {
    let parts = idents(name)?;
    match parts.as_slice() {
        [t] => Ok(TableName {
            database: None,
            name: t.clone(),
        }),
        [db, t] => Ok(TableName {
            database: Some(db.clone()),
            name: t.clone(),
        }),
        _ => Err(Error::new(
            ErrorKind::Syntax,
            format!("improper qualified name (too many dotted names): {name}"),
        )),
    }
}

fn single_name(name: &ObjectName) -> Result<String> {
    let parts = idents(name)?;
    match parts.as_slice() {
        [n] => Ok(n.clone()),
        _ => Err(Error::syntax(format!("improper database name: {name}"))),
    }
}

/// Turns an argument of `CALL` into its literal text.
fn call_arg(arg: &FunctionArg) -> Result<String> {
    let expr = match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => e,
        FunctionArg::Named {
            arg: FunctionArgExpr::Expr(e),
            ..
        } => e,
        other => return Err(Error::syntax(format!("invalid CALL argument {other}"))),
    };
    option_value(expr)
}

/// Routes a statement sqlparser parsed to the part of fusegate that runs it.
pub fn route(stmt: ast::Statement) -> Result<Statement> {
    use ast::Statement as S;
    match stmt {
        S::Query(_)
        | S::Insert(_)
        | S::Update(_)
        | S::Delete(_)
        | S::Truncate(_)
        | S::Explain { .. } => Ok(Statement::Query(Box::new(stmt))),
        S::CreateDatabase {
            db_name,
            if_not_exists,
            ..
        } => Ok(Statement::CreateDatabase {
            name: single_name(&db_name)?,
            if_not_exists,
        }),
        S::CreateSchema {
            schema_name: ast::SchemaName::Simple(name),
            if_not_exists,
            ..
        } => Ok(Statement::CreateDatabase {
            name: single_name(&name)?,
            if_not_exists,
        }),
        S::Drop {
            object_type,
            if_exists,
            names,
            ..
        } => match object_type {
            ObjectType::Table => Ok(Statement::DropTable {
                names: names.iter().map(table_name).collect::<Result<_>>()?,
                if_exists,
            }),
            ObjectType::Database | ObjectType::Schema => {
                let [name] = names.as_slice() else {
                    return Err(Error::syntax("DROP DATABASE takes one name"));
                };
                Ok(Statement::DropDatabase {
                    name: single_name(name)?,
                    if_exists,
                })
            }
            other => Err(Error::unsupported(format!("DROP {other} is not supported"))),
        },
        S::Use(ast::Use::Object(name) | ast::Use::Database(name) | ast::Use::Schema(name)) => {
            Ok(Statement::Use {
                database: single_name(&name)?,
            })
        }
        S::Call(function) => {
            let procedure = function.name.to_string();
            let args = match &function.args {
                FunctionArguments::None => Vec::new(),
                FunctionArguments::List(list) => {
                    list.args.iter().map(call_arg).collect::<Result<_>>()?
                }
                FunctionArguments::Subquery(_) => {
                    return Err(Error::syntax("CALL takes literal arguments"));
                }
            };
            Ok(Statement::Call { procedure, args })
        }
        S::StartTransaction { .. } => Ok(Statement::Begin),
        S::Commit { .. } => Ok(Statement::Commit),
        S::Rollback {
            savepoint: None, ..
        } => Ok(Statement::Rollback),
        S::Set(ast::Set::SingleAssignment {
            variable, values, ..
        }) => {
            let value = values
                .iter()
                .map(|v| option_value(v).unwrap_or_else(|_| v.to_string()))
                .collect::<Vec<_>>()
                .join(", ");
            Ok(Statement::Set {
                name: variable.to_string().to_ascii_lowercase(),
                value,
            })
        }
        S::Set(ast::Set::SetTimeZone { value, .. }) => Ok(Statement::Set {
            name: "timezone".into(),
            value: option_value(&value).unwrap_or_else(|_| value.to_string()),
        }),
        S::Savepoint { name } => Ok(Statement::Savepoint {
            name: normalize_ident(&name),
        }),
        S::ReleaseSavepoint { name } => Ok(Statement::ReleaseSavepoint {
            name: normalize_ident(&name),
        }),
        S::Rollback {
            savepoint: Some(name),
            ..
        } => Ok(Statement::RollbackToSavepoint {
            name: normalize_ident(&name),
        }),
        S::Reset(reset) => Ok(Statement::Reset {
            name: match reset.reset {
                ast::Reset::ALL => None,
                ast::Reset::ConfigurationParameter(name) => {
                    Some(name.to_string().to_ascii_lowercase())
                }
            },
        }),
        S::Deallocate { name, .. } => Ok(Statement::Deallocate {
            name: (!name.value.eq_ignore_ascii_case("all") || name.quote_style.is_some())
                .then(|| name.value.clone()),
        }),
        S::Discard { object_type } => Ok(Statement::Discard {
            what: object_type.to_string(),
        }),
        S::ShowVariable { variable } => Ok(Statement::Show {
            name: variable
                .iter()
                .map(|i| i.value.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(" "),
        }),
        S::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            values: _,
        } => copy(source, to, target, options, legacy_options),
        S::AlterTable(alter) => {
            let mut ops = Vec::with_capacity(alter.operations.len());
            for op in &alter.operations {
                ops.push(match op {
                    ast::AlterTableOperation::AddColumn {
                        if_not_exists,
                        column_def,
                        column_position: None,
                        ..
                    } => AlterOp::AddColumn {
                        column: column_spec(column_def)?,
                        if_not_exists: *if_not_exists,
                    },
                    ast::AlterTableOperation::DropColumn {
                        column_names,
                        if_exists,
                        ..
                    } if column_names.len() == 1 => AlterOp::DropColumn {
                        name: normalize_ident(&column_names[0]),
                        if_exists: *if_exists,
                    },
                    ast::AlterTableOperation::RenameColumn {
                        old_column_name,
                        new_column_name,
                    } => AlterOp::RenameColumn {
                        from: normalize_ident(old_column_name),
                        to: normalize_ident(new_column_name),
                    },
                    ast::AlterTableOperation::RenameTable {
                        table_name:
                            ast::RenameTableNameKind::To(to) | ast::RenameTableNameKind::As(to),
                    } => AlterOp::RenameTable {
                        to: single_name(to)?,
                    },
                    other => {
                        return Err(Error::unsupported(format!(
                            "ALTER TABLE {other} is not supported"
                        )));
                    }
                });
            }
            Ok(Statement::AlterTable {
                name: table_name(&alter.name)?,
                if_exists: alter.if_exists,
                ops,
            })
        }
        S::ShowCreate {
            obj_type: ast::ShowCreateObject::Table,
            obj_name,
        } => Ok(Statement::ShowCreateTable {
            name: table_name(&obj_name)?,
        }),
        other => {
            let text = other.to_string();
            let head: String = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            Err(Error::unsupported(format!("{head} is not supported")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuse::schema::ColumnType;
    use crate::storage::Scheme;

    #[test]
    fn nesting_is_bounded_where_postgresql_bounds_it() {
        let chain = |n: usize, op: &str| format!("SELECT {}", vec!["1"; n].join(op));
        assert!(parse(&chain(MAX_NESTING, "+")).is_ok());
        for sql in [
            chain(MAX_NESTING + 2, "+"),
            chain(1_000_000, " AND "),
            format!("SELECT {}1{}", "abs(".repeat(500), ")".repeat(500)),
        ] {
            let err = parse(&sql).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::StatementTooComplex, "{}", &sql[..40]);
        }
        // Wide is not deep: long lists and many CASE branches parse.
        let list: Vec<String> = (0..50_000).map(|i| format!("-{i}")).collect();
        assert!(parse(&format!("SELECT 1 IN ({})", list.join(","))).is_ok());
        let branches: String = (0..5000)
            .map(|i| format!(" WHEN a = {i} THEN {i}"))
            .collect();
        assert!(parse(&format!("SELECT CASE{branches} END FROM t")).is_ok());
    }

    #[test]
    fn databend_create_table_with_location() {
        let stmts = parse(
            "CREATE TABLE t(a INT NOT NULL, b VARCHAR(10) DEFAULT 'x') 's3://databend-doc/fail-safe/'\n\
             CONNECTION = (access_key_id ='AK' secret_access_key ='SK', endpoint_url = 'http://127.0.0.1:9000');",
        )
        .unwrap();
        let [Statement::CreateTable(c)] = stmts.as_slice() else {
            panic!("{stmts:?}")
        };
        assert_eq!(c.name.name, "t");
        assert_eq!(c.columns[0].ty, ColumnType::Int32);
        assert!(!c.columns[0].nullable);
        assert_eq!(c.columns[1].default.as_deref(), Some("'x'"));
        let loc = c.location.as_ref().unwrap();
        assert_eq!(loc.scheme, Scheme::S3);
        assert_eq!(loc.bucket, "databend-doc");
        assert_eq!(loc.option("secret_access_key"), Some("SK"));
        assert_eq!(loc.option("endpoint_url"), Some("http://127.0.0.1:9000"));
    }

    #[test]
    fn table_options_both_styles() {
        let stmts = parse("create table t (a int) with (row_per_block = 100); create table u (a int) ROW_PER_BLOCK = 5").unwrap();
        let [Statement::CreateTable(a), Statement::CreateTable(b)] = stmts.as_slice() else {
            panic!()
        };
        assert_eq!(
            a.options.get("row_per_block").map(String::as_str),
            Some("100")
        );
        assert_eq!(
            b.options.get("row_per_block").map(String::as_str),
            Some("5")
        );
    }

    #[test]
    fn call_system_procedure() {
        let stmts = parse("CALL system$fuse_amend('default', 't')").unwrap();
        let [Statement::Call { procedure, args }] = stmts.as_slice() else {
            panic!()
        };
        assert_eq!(procedure, "system$fuse_amend");
        assert_eq!(args, &vec!["default".to_string(), "t".to_string()]);
    }

    #[test]
    fn routing_and_multi_statements() {
        let stmts =
            parse("USE db1; SHOW TABLES; show databases; SELECT 1; ;; INSERT INTO x VALUES (1)")
                .unwrap();
        assert!(matches!(stmts[0], Statement::Use { ref database } if database == "db1"));
        assert!(matches!(stmts[1], Statement::ShowTables { database: None }));
        assert!(matches!(stmts[2], Statement::ShowDatabases));
        assert!(matches!(stmts[3], Statement::Query(_)));
        assert!(matches!(stmts[4], Statement::Query(_)));
        assert_eq!(stmts.len(), 5);
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn identifiers_fold_like_postgres() {
        let stmts = parse("DROP TABLE IF EXISTS Db.\"MixedCase\"").unwrap();
        let [
            Statement::DropTable {
                names,
                if_exists: true,
            },
        ] = stmts.as_slice()
        else {
            panic!()
        };
        assert_eq!(
            names[0],
            TableName {
                database: Some("db".into()),
                name: "MixedCase".into()
            }
        );
    }

    #[test]
    fn errors_have_sqlstates() {
        assert_eq!(parse("SELEC 1").unwrap_err().sqlstate(), "42601");
        assert_eq!(
            parse("CREATE TABLE t(a geometry)").unwrap_err().sqlstate(),
            "0A000"
        );
        assert_eq!(
            parse("CREATE TABLE t(a numeric(50,2))")
                .unwrap_err()
                .sqlstate(),
            "22023"
        );
        let err = parse(
            "CREATE TABLE t(a int) 's3://b/p/' CONNECTION = (secret_access_key = SECRET1 + 1)",
        )
        .unwrap_err();
        assert!(!err.message().contains("SECRET1"), "{err:?}");
    }
}

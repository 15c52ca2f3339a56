//! SQL text → fusegate statements.
//!
//! Parsing is sqlparser's PostgreSQL dialect, driven statement by statement so
//! that Databend's extensions are parsed here, with sqlparser's own primitives:
//! `CREATE TABLE ... '<uri>' CONNECTION = (...)`, `SHOW TABLES`, `SHOW
//! DATABASES`, `CALL system$...`. Every statement is then routed: DataFusion
//! plans queries and DML; the rest are fusegate's own operations.

mod fetch;
mod functions;
mod like;
mod names;
mod numbers;
mod parser;
mod setops;
mod subqueries;
mod time_travel;
mod types;

use std::collections::BTreeMap;

use sqlparser::ast;

pub use self::fetch::rewrite_fetch;
pub use self::functions::rewrite_function_aliases;
pub use self::like::rewrite_like_escapes;
pub use self::names::{make_names_unique, output_names};
pub use self::numbers::rewrite_wide_numbers;
pub use self::parser::{MAX_NESTING, STACK_SIZE, parse, route, table_name as table_name_of};
pub use self::setops::refuse_multiset_operations;
pub use self::subqueries::{hoist_outer_conditions, wrap_scalar_subqueries};
pub use self::types::column_type;
use crate::fuse::schema::ColumnType;
use crate::storage::StorageLocation;

/// A possibly database-qualified table name, identifiers already normalized
/// (unquoted ones lower-cased, as PostgreSQL does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub database: Option<String>,
    pub name: String,
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.database {
            Some(db) => write!(f, "{db}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
    /// DEFAULT expression, as SQL text.
    pub default: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CreateTable {
    pub name: TableName,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnSpec>,
    /// CREATE TABLE ... AS <query>.
    pub as_query: Option<Box<ast::Query>>,
    /// External location with its CONNECTION options.
    pub location: Option<StorageLocation>,
    /// Table options (`WITH (k = v)` or Databend's trailing `k = v`), keys lower-cased.
    pub options: BTreeMap<String, String>,
}

/// A statement, routed to the part of fusegate that runs it.
#[derive(Debug, Clone)]
pub enum Statement {
    /// Planned and run by DataFusion: SELECT, VALUES, INSERT, EXPLAIN.
    Query(Box<ast::Statement>),
    CreateDatabase {
        name: String,
        if_not_exists: bool,
    },
    DropDatabase {
        name: String,
        if_exists: bool,
    },
    Use {
        database: String,
    },
    CreateTable(Box<CreateTable>),
    DropTable {
        names: Vec<TableName>,
        if_exists: bool,
    },
    ShowTables {
        database: Option<String>,
    },
    ShowDatabases,
    ShowCreateTable {
        name: TableName,
    },
    /// `CALL system$<name>(args)`: the arguments as literal strings.
    Call {
        procedure: String,
        args: Vec<String>,
    },
    Begin,
    Commit,
    Rollback,
    /// `SET name = value` / `SET name TO value`.
    Set {
        name: String,
        value: String,
    },
    /// `SHOW name` of a session parameter.
    Show {
        name: String,
    },
    /// `FLASHBACK TABLE t TO (SNAPSHOT => 'id' | TIMESTAMP => expr)`.
    Flashback {
        name: TableName,
        point: TravelSpec,
    },
    /// `UNDROP TABLE t`.
    Undrop {
        name: TableName,
    },
    /// `SHOW DROP TABLES [FROM db]`.
    ShowDropTables {
        database: Option<String>,
    },
    /// `VACUUM TABLE t [RETAIN n HOURS] [DRY RUN]`.
    Vacuum {
        name: TableName,
        retain_hours: Option<u64>,
        dry_run: bool,
    },
    /// `VACUUM DROP TABLE [FROM db] [RETAIN n HOURS] [DRY RUN]`.
    VacuumDropTables {
        database: Option<String>,
        retain_hours: Option<u64>,
        dry_run: bool,
    },
    /// `OPTIMIZE TABLE t COMPACT [SEGMENT] [LIMIT n]` / `PURGE` / `ALL`.
    Optimize {
        name: TableName,
        action: OptimizeAction,
    },
    /// `COPY ... FROM STDIN` / `COPY ... TO STDOUT`.
    Copy(Box<CopySpec>),
    Savepoint {
        name: String,
    },
    ReleaseSavepoint {
        name: String,
    },
    RollbackToSavepoint {
        name: String,
    },
    /// RESET name, or RESET ALL (None).
    Reset {
        name: Option<String>,
    },
    /// DEALLOCATE name, or DEALLOCATE ALL (None).
    Deallocate {
        name: Option<String>,
    },
    /// DISCARD ALL | PLANS | SEQUENCES | TEMP.
    Discard {
        what: String,
    },
    /// `ALTER TABLE t <op>[, <op> ...]`.
    AlterTable {
        name: TableName,
        if_exists: bool,
        ops: Vec<AlterOp>,
    },
}

/// What a statement needs its user's role to allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Queries, SHOW, COPY TO, session and transaction control.
    Read,
    /// DML, DDL, COPY FROM, compaction, history moves.
    Write,
    /// What removes history or reaches around the table: VACUUM, PURGE,
    /// `CALL system$...` (fuse_amend).
    Admin,
}

/// What a COPY moves, and how its rows are written as text.
#[derive(Debug, Clone)]
pub struct CopySpec {
    /// The table (for COPY FROM, and COPY t TO).
    pub table: Option<TableName>,
    /// The column list; empty: every column.
    pub columns: Vec<String>,
    /// COPY (query) TO STDOUT.
    pub query: Option<Box<ast::Query>>,
    /// FROM STDIN (true) or TO STDOUT.
    pub from_stdin: bool,
    pub format: CopyFormat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    pub csv: bool,
    pub delimiter: char,
    pub null: String,
    pub header: bool,
    pub quote: char,
    pub escape: char,
}

impl CopyFormat {
    /// PostgreSQL's defaults for text (tab, `\N`) or CSV (comma, empty string).
    pub fn new(csv: bool) -> CopyFormat {
        CopyFormat {
            csv,
            delimiter: if csv { ',' } else { '\t' },
            null: if csv {
                String::new()
            } else {
                "\\N".to_string()
            },
            header: false,
            quote: '"',
            escape: '"',
        }
    }
}

#[derive(Debug, Clone)]
pub enum AlterOp {
    AddColumn {
        column: ColumnSpec,
        if_not_exists: bool,
    },
    DropColumn {
        name: String,
        if_exists: bool,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    RenameTable {
        to: String,
    },
}

/// A point of a table's history, as written in SQL.
#[derive(Debug, Clone)]
pub enum TravelSpec {
    Snapshot(String),
    Timestamp(Box<ast::Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptimizeAction {
    Compact {
        segments_only: bool,
        limit: Option<u64>,
    },
    Purge,
    /// Compact, then purge.
    All,
}

impl Statement {
    /// BEGIN, COMMIT, ROLLBACK and the savepoint statements.
    pub fn is_transaction_control(&self) -> bool {
        matches!(
            self,
            Statement::Begin
                | Statement::Commit
                | Statement::Rollback
                | Statement::Savepoint { .. }
                | Statement::ReleaseSavepoint { .. }
                | Statement::RollbackToSavepoint { .. }
        )
    }

    /// What running this statement requires (see `session::Role`).
    pub fn privilege(&self) -> Privilege {
        match self {
            Statement::Query(ast) => match ast.as_ref() {
                ast::Statement::Query(_) => Privilege::Read,
                ast::Statement::Explain {
                    statement, analyze, ..
                } if !analyze || matches!(statement.as_ref(), ast::Statement::Query(_)) => {
                    Privilege::Read
                }
                _ => Privilege::Write,
            },
            Statement::CreateDatabase { .. }
            | Statement::DropDatabase { .. }
            | Statement::CreateTable(_)
            | Statement::DropTable { .. }
            | Statement::Flashback { .. }
            | Statement::Undrop { .. }
            | Statement::AlterTable { .. } => Privilege::Write,
            Statement::Copy(copy) if copy.from_stdin => Privilege::Write,
            Statement::Optimize {
                action: OptimizeAction::Compact { .. },
                ..
            } => Privilege::Write,
            Statement::Optimize { .. }
            | Statement::Vacuum { .. }
            | Statement::VacuumDropTables { .. }
            | Statement::Call { .. } => Privilege::Admin,
            Statement::Copy(_)
            | Statement::Use { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowDatabases
            | Statement::ShowCreateTable { .. }
            | Statement::Show { .. }
            | Statement::ShowDropTables { .. }
            | Statement::Begin
            | Statement::Commit
            | Statement::Rollback
            | Statement::Set { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::RollbackToSavepoint { .. }
            | Statement::Reset { .. }
            | Statement::Deallocate { .. }
            | Statement::Discard { .. } => Privilege::Read,
        }
    }

    /// The statement's command, for messages: INSERT, UPDATE, ... where
    /// [`Statement::tag`] says SELECT for every DataFusion-planned one.
    pub fn command(&self) -> String {
        match self {
            Statement::Query(ast) => ast
                .to_string()
                .split_whitespace()
                .next()
                .unwrap_or("SELECT")
                .to_ascii_uppercase(),
            other => other.tag().to_string(),
        }
    }

    /// The statement's kind for logs and metrics: the tag, with the DML
    /// DataFusion runs told apart.
    pub fn kind(&self) -> &'static str {
        match self {
            Statement::Query(ast) => match ast.as_ref() {
                ast::Statement::Insert(_) => "INSERT",
                ast::Statement::Update { .. } => "UPDATE",
                ast::Statement::Delete(_) => "DELETE",
                ast::Statement::Explain { .. } => "EXPLAIN",
                ast::Statement::Truncate { .. } => "TRUNCATE",
                _ => "SELECT",
            },
            other => other.tag(),
        }
    }

    /// The command tag PostgreSQL sends for this statement's kind.
    pub fn tag(&self) -> &'static str {
        match self {
            Statement::Query(_) => "SELECT",
            Statement::CreateDatabase { .. } => "CREATE DATABASE",
            Statement::DropDatabase { .. } => "DROP DATABASE",
            Statement::Use { .. } => "USE",
            Statement::CreateTable(c) if c.as_query.is_some() => "SELECT",
            Statement::CreateTable(_) => "CREATE TABLE",
            Statement::DropTable { .. } => "DROP TABLE",
            Statement::ShowTables { .. }
            | Statement::ShowDatabases
            | Statement::ShowCreateTable { .. }
            | Statement::Show { .. } => "SHOW",
            Statement::Call { .. } => "CALL",
            Statement::Begin => "BEGIN",
            Statement::Commit => "COMMIT",
            Statement::Rollback => "ROLLBACK",
            Statement::Set { .. } => "SET",
            Statement::Flashback { .. } => "FLASHBACK",
            Statement::Undrop { .. } => "UNDROP TABLE",
            Statement::ShowDropTables { .. } => "SHOW",
            Statement::Vacuum { .. } | Statement::VacuumDropTables { .. } => "VACUUM",
            Statement::Optimize { .. } => "OPTIMIZE",
            Statement::AlterTable { .. } => "ALTER TABLE",
            Statement::Copy(_) => "COPY",
            Statement::Reset { .. } => "RESET",
            Statement::Savepoint { .. } => "SAVEPOINT",
            Statement::ReleaseSavepoint { .. } => "RELEASE",
            Statement::RollbackToSavepoint { .. } => "ROLLBACK",
            Statement::Deallocate { .. } => "DEALLOCATE",
            Statement::Discard { .. } => "DISCARD",
        }
    }
}

/// An identifier as PostgreSQL sees it: unquoted ones fold to lower case.
pub fn normalize_ident(ident: &ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// A query's text after `rewrite`, for the rewrites' tests.
#[cfg(test)]
pub(crate) fn rewritten(sql: &str, rewrite: impl Fn(&mut ast::Statement)) -> String {
    let mut statement = parse(sql).unwrap().pop().unwrap();
    let Statement::Query(ast) = &mut statement else {
        panic!("not a query: {sql}")
    };
    rewrite(ast);
    ast.to_string()
}

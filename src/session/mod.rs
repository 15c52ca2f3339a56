//! A client session: its current database, settings and transaction state,
//! and the one place where parsed statements are run, whichever protocol
//! (simple or extended) they came by.

mod copy;
mod maintenance;
mod plans;
mod roles;
mod settings;
mod show;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use tracing::Instrument;

use self::plans::{PlanBasis, RecentPlans};
pub use self::roles::Role;
pub use self::settings::{SERVER_VERSION, Settings, parse_milliseconds};
use crate::bail;
use crate::error::{Error, ErrorKind, Result};
use crate::fuse::FuseEngine;
use crate::fuse::schema::TableSchema;
use crate::fuse::txn::Transaction;
use crate::ops::{self, NewTable};
use crate::query::{
    BatchStream, ParamValues, PlanKind, QueryContext, QueryEngine, QueryOutput, QueryPlan,
};
use crate::sql::{self, ColumnSpec, Statement, TableName};

/// One fusegate instance: the engines every session shares.
pub struct Instance {
    pub fuse: Arc<FuseEngine>,
    pub query: QueryEngine,
}

/// What a statement returns to the client.
pub enum Output {
    Rows {
        schema: SchemaRef,
        stream: BatchStream,
    },
    /// A command tag, e.g. `CREATE TABLE` or `INSERT 0 3`.
    Command(String),
    TransactionStart(String),
    TransactionEnd(String),
    /// A parameter changed that the client must be told of (ParameterStatus).
    ParameterChanged {
        tag: String,
        name: String,
        value: String,
    },
    /// COPY FROM STDIN started: the client now sends `columns`-wide rows.
    CopyIn {
        columns: usize,
    },
    /// COPY TO STDOUT: rows to send as CopyData in `format`.
    CopyOut {
        schema: SchemaRef,
        stream: BatchStream,
        format: sql::CopyFormat,
    },
}

/// A statement prepared by the extended protocol: parsed once, planned once
/// (re-planned only when the catalog changed since).
#[derive(Clone)]
pub struct Prepared {
    pub statement: Statement,
    /// The plan and what it was made against; replaced when that no longer
    /// holds, so the next executions reuse the new one.
    plan: Option<Arc<Mutex<(QueryPlan, PlanBasis)>>>,
    /// Types of `$1..$n` (None: not inferable).
    pub param_types: Vec<Option<DataType>>,
    /// The result columns; empty for statements that return none.
    pub schema: SchemaRef,
}

pub struct Session {
    id: u64,
    instance: Arc<Instance>,
    database: String,
    user: String,
    role: Role,
    query: QueryContext,
    settings: Settings,
    /// Open savepoints of the explicit transaction, innermost last.
    savepoints: Vec<(String, Arc<Transaction>, crate::fuse::txn::TxnMark)>,
    /// The settings the session started with, for RESET ALL.
    startup_settings: Settings,
    txn: TxnState,
    /// Plans of the session's recent read-only queries, by their text.
    recent_plans: RecentPlans,
    /// Set by a result stream that fails while the client reads it.
    stream_failed: Arc<std::sync::atomic::AtomicBool>,
    /// The COPY FROM STDIN in progress.
    copy_in: Option<copy::CopyIn>,
    /// Counts the session in the `sessions` gauge while it lives.
    _counted: crate::metrics::SessionGuard,
}

/// The session's transaction.
enum TxnState {
    Idle,
    Open {
        txn: Arc<Transaction>,
        implicit: bool,
    },
    /// A statement failed inside the transaction; only COMMIT/ROLLBACK end it
    /// (or, for an implicit one, the end of its message or pipeline).
    Failed {
        implicit: bool,
    },
}

/// The transaction status reported in ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    Idle,
    InTransaction,
    Failed,
}

impl Session {
    /// A session for `user` on `database` (3D000 if it does not exist).
    pub async fn new(
        instance: Arc<Instance>,
        id: u64,
        user: &str,
        role: Role,
        database: &str,
        settings: Settings,
    ) -> Result<Session> {
        let state = instance.fuse.catalog().current().await?;
        state.require_database(database)?;
        let query = instance.query.new_context(database)?;
        query.set_user(user);
        Ok(Session {
            id,
            instance,
            database: database.to_string(),
            user: user.to_string(),
            role,
            query,
            startup_settings: settings.clone(),
            savepoints: Vec::new(),
            settings,
            txn: TxnState::Idle,
            recent_plans: RecentPlans::default(),
            stream_failed: Default::default(),
            copy_in: None,
            _counted: crate::metrics::metrics().session_started(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The switch a CancelRequest pulls to stop this session's statement.
    pub fn interrupt(&self) -> Arc<crate::query::Interrupt> {
        self.query.interrupt()
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// Where the session is with respect to transactions (ReadyForQuery's status).
    pub fn transaction_status(&self) -> TransactionStatus {
        match &self.txn {
            // An implicit transaction ends with its message or pipeline:
            // clients see it as no transaction, as in PostgreSQL.
            TxnState::Idle
            | TxnState::Open { implicit: true, .. }
            | TxnState::Failed { implicit: true } => TransactionStatus::Idle,
            TxnState::Open { .. } => TransactionStatus::InTransaction,
            TxnState::Failed { .. } => TransactionStatus::Failed,
        }
    }

    /// Parses a query string into its statements.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        match self.instance.query.parse_catalog_query(sql) {
            Some(parsed) => parsed?.into_iter().map(sql::route).collect(),
            None => sql::parse(sql),
        }
    }

    /// Runs one statement.
    pub async fn execute(&mut self, statement: Statement) -> Result<Output> {
        let kind = statement.kind();
        let span = tracing::info_span!("statement", session = self.id, kind);
        self.admit(&statement)?;
        self.query
            .interrupt()
            .arm(self.settings.statement_timeout());
        let started = Instant::now();
        let result = guard(self.execute_inner(statement, None))
            .instrument(span.clone())
            .await;
        self.after(kind, &span, started, &result);
        result
    }

    /// Parses and plans one statement for the extended protocol.
    pub async fn prepare(&mut self, sql: &str) -> Result<Option<Prepared>> {
        let mut statements = self.parse(sql)?;
        if statements.len() > 1 {
            bail!(
                Syntax,
                "cannot insert multiple commands into a prepared statement"
            );
        }
        let Some(statement) = statements.pop() else {
            return Ok(None);
        };
        let (plan, param_types, schema) = match &statement {
            Statement::Query(ast) => {
                let basis = self.plan_basis().await?;
                let plan = self.plan_query(ast, &basis).await?;
                let types = plan.parameter_types()?;
                let schema = plan.output_schema();
                (Some(Arc::new(Mutex::new((plan, basis)))), types, schema)
            }
            other => (None, Vec::new(), show::result_schema(other, &self.database)),
        };
        Ok(Some(Prepared {
            statement,
            plan,
            param_types,
            schema,
        }))
    }

    /// Runs a prepared statement with its parameters bound.
    pub async fn execute_prepared(
        &mut self,
        prepared: &Prepared,
        params: Option<ParamValues>,
    ) -> Result<Output> {
        let span = tracing::info_span!(
            "statement",
            session = self.id,
            kind = prepared.statement.kind(),
            prepared = true
        );
        self.admit(&prepared.statement)?;
        self.query
            .interrupt()
            .arm(self.settings.statement_timeout());
        let started = Instant::now();
        let result = guard(async {
            match &prepared.plan {
                Some(kept) => {
                    let now = self.plan_basis().await?;
                    let held = {
                        let kept = kept
                            .lock()
                            .map_err(|_| Error::internal("prepared plan lock"))?;
                        kept.1.still_holds(&now, &kept.0).then(|| kept.0.clone())
                    };
                    let plan = match held {
                        Some(plan) => plan,
                        None => {
                            // The catalog or the transaction's writes moved on, or a
                            // write now runs in another transaction: plan again so
                            // tables are read (and written) right.
                            let Statement::Query(ast) = &prepared.statement else {
                                return Err(Error::internal("prepared plan without a query"));
                            };
                            let plan = self.plan_query(ast, &now).await?;
                            if let Ok(mut kept) = kept.lock() {
                                *kept = (plan.clone(), now);
                            }
                            plan
                        }
                    };
                    self.run_plan(&plan, params).await
                }
                None => self.execute_inner(prepared.statement.clone(), params).await,
            }
        })
        .instrument(span.clone())
        .await;
        self.after(prepared.statement.kind(), &span, started, &result);
        result
    }

    /// Whether the statement may run now: not in a failed transaction (only
    /// its end is accepted, as in PostgreSQL), and allowed by the user's role
    /// (42501, which fails the transaction like any other error).
    fn admit(&mut self, statement: &Statement) -> Result<()> {
        self.check_not_failed(statement)?;
        let allowed = self.role.check(&self.user, statement);
        if allowed.is_err() {
            self.fail_txn();
        }
        allowed
    }

    fn check_not_failed(&mut self, statement: &Statement) -> Result<()> {
        self.absorb_stream_failure();
        if matches!(self.txn, TxnState::Failed { .. })
            && !matches!(
                statement,
                Statement::Commit | Statement::Rollback | Statement::RollbackToSavepoint { .. }
            )
        {
            bail!(
                InFailedTransaction,
                "current transaction is aborted, commands ignored until end of transaction block"
            );
        }
        Ok(())
    }

    /// The error ending this session when it has waited for its client past
    /// idle_session_timeout (or, in a transaction block,
    /// idle_in_transaction_session_timeout); None otherwise.
    pub fn idle_past_timeout(&self) -> Option<Error> {
        let in_transaction = !matches!(self.txn, TxnState::Idle);
        let timeout = self.settings.idle_timeout(in_transaction)?;
        if self.query.interrupt().idle_for()? < timeout {
            return None;
        }
        Some(if in_transaction {
            Error::new(
                ErrorKind::IdleInTransactionTimeout,
                "terminating connection due to idle-in-transaction timeout",
            )
        } else {
            Error::new(
                ErrorKind::IdleSessionTimeout,
                "terminating connection due to idle-session timeout",
            )
        })
    }

    /// Logs the outcome; an error inside a transaction fails the transaction.
    fn after(
        &mut self,
        kind: &'static str,
        span: &tracing::Span,
        started: Instant,
        result: &Result<Output>,
    ) {
        let elapsed = started.elapsed();
        crate::metrics::metrics().statement(
            kind,
            result.as_ref().err().map(|e| e.sqlstate()),
            elapsed,
        );
        let elapsed_ms = elapsed.as_millis() as u64;
        match result {
            Ok(_) => span.in_scope(|| tracing::info!(elapsed_ms, "statement done")),
            Err(e) => {
                span.in_scope(|| tracing::info!(sqlstate = e.sqlstate(), error = %e, elapsed_ms, "statement failed"));
                self.fail_txn();
            }
        }
    }

    /// A result stream that failed after its statement returned (while the
    /// client read it) fails the transaction too.
    fn absorb_stream_failure(&mut self) {
        if self
            .stream_failed
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.fail_txn();
        }
    }

    /// Whether the last statement's result stream failed (for the wire layer,
    /// which finds out while sending rows).
    pub fn stream_failed(&self) -> bool {
        self.stream_failed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The position of the innermost savepoint `name`.
    fn savepoint(&self, name: &str, what: &str) -> Result<usize> {
        if !matches!(
            self.txn,
            TxnState::Open {
                implicit: false,
                ..
            } | TxnState::Failed { implicit: false }
        ) {
            bail!(
                NoActiveTransaction,
                "{what} can only be used in transaction blocks"
            );
        }
        match self.savepoints.iter().rposition(|(n, _, _)| n == name) {
            Some(at) => Ok(at),
            None => bail!(InvalidSavepoint, "savepoint \"{name}\" does not exist"),
        }
    }

    /// What a plan made now resolves against, with the catalog refreshed.
    async fn plan_basis(&self) -> Result<PlanBasis> {
        Ok(self.plan_basis_at(self.refresh().await?))
    }

    /// What a plan made now resolves against, at catalog `version`.
    fn plan_basis_at(&self, catalog_version: u64) -> PlanBasis {
        let txn = match &self.txn {
            TxnState::Open { txn, .. } => Some(txn.clone()),
            _ => None,
        };
        PlanBasis {
            catalog_version,
            working: txn
                .as_ref()
                .map(|t| t.working_snapshots())
                .unwrap_or_default(),
            txn,
            database: self.database.clone(),
            settings: plans::settings_hash(self.settings.values()),
        }
    }

    /// The plan of query `ast`, kept across executions: the one this session
    /// made for the same text if it still holds against `basis`, else a new
    /// one (see `plans`).
    async fn plan_query(
        &mut self,
        ast: &sqlparser::ast::Statement,
        basis: &PlanBasis,
    ) -> Result<QueryPlan> {
        // Only a query can be read-only: an INSERT's text (a bulk VALUES list,
        // say) is not even written out.
        let text = matches!(ast, sqlparser::ast::Statement::Query(_)).then(|| ast.to_string());
        if let Some(plan) = text.as_ref().and_then(|t| self.recent_plans.get(t, basis)) {
            return Ok(plan);
        }
        let plan = self.plan(ast).await?.kept_across_executions();
        if let Some(text) = text {
            self.recent_plans.keep(text, &plan, basis);
        }
        Ok(plan)
    }

    /// A statement failed before it ran (at Parse or Bind): the transaction
    /// is aborted, as for a statement that failed running.
    pub fn statement_failed(&mut self) {
        self.fail_txn();
    }

    /// A statement failed: an open transaction becomes a failed one.
    fn fail_txn(&mut self) {
        if let TxnState::Open { implicit, .. } = self.txn {
            self.set_txn(TxnState::Failed { implicit });
        }
    }

    fn set_txn(&mut self, state: TxnState) {
        let txn = match &state {
            TxnState::Open { txn, .. } => Some(txn.clone()),
            _ => None,
        };
        self.query.set_transaction(txn);
        if matches!(state, TxnState::Idle) {
            self.savepoints.clear();
        }
        self.txn = state;
    }

    /// Starts the implicit transaction PostgreSQL wraps around the statements
    /// of one multi-statement query message. Returns false when an explicit
    /// transaction is already open (the statements then belong to it).
    pub fn begin_implicit(&mut self) -> bool {
        if !matches!(self.txn, TxnState::Idle) {
            return false;
        }
        // A result stream that failed outside any transaction is history.
        self.stream_failed
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.set_txn(TxnState::Open {
            txn: Transaction::new(),
            implicit: true,
        });
        true
    }

    /// Ends the implicit transaction, if one is open: commits if every
    /// statement succeeded, else drops every write of the message. An
    /// explicit transaction is left alone.
    pub async fn end_implicit(&mut self, success: bool) -> Result<()> {
        if !matches!(
            self.txn,
            TxnState::Open { implicit: true, .. } | TxnState::Failed { implicit: true }
        ) {
            return Ok(());
        }
        let success = success
            && !self
                .stream_failed
                .swap(false, std::sync::atomic::Ordering::Relaxed);
        let state = std::mem::replace(&mut self.txn, TxnState::Idle);
        self.set_txn(TxnState::Idle);
        match state {
            TxnState::Open {
                txn,
                implicit: true,
            } if success => txn.commit(&self.instance.fuse).await,
            _ => Ok(()),
        }
    }

    /// The table handle statements of this session write through (its
    /// transaction's, if one is open).
    fn writable_table(&self, database: &str, name: &str) -> Result<crate::fuse::FuseTable> {
        let fuse = &self.instance.fuse;
        let state = fuse.catalog().cached();
        let meta = state.require_table(database, name)?;
        let txn = match &self.txn {
            TxnState::Open { txn, .. } => Some(txn.clone()),
            _ => None,
        };
        fuse.table_in(database, meta, txn)
    }

    async fn copy(&mut self, spec: sql::CopySpec) -> Result<Output> {
        if spec.from_stdin {
            let Some(name) = &spec.table else {
                bail!(Syntax, "COPY FROM needs a table");
            };
            let table = self.writable_table(&self.database_of(name), &name.name)?;
            let schema = table.meta().schema.clone();
            for c in &spec.columns {
                if schema.column(c).is_none() {
                    bail!(
                        UndefinedColumn,
                        "column \"{c}\" of relation \"{}\" does not exist",
                        name.name
                    );
                }
            }
            let mut sources = Vec::with_capacity(schema.columns.len());
            for (i, col) in schema.columns.iter().enumerate() {
                let position = if spec.columns.is_empty() {
                    Some(i)
                } else {
                    spec.columns.iter().position(|c| c == &col.name)
                };
                sources.push(match position {
                    Some(p) => copy::Source::Field(p),
                    None => match &col.default {
                        Some(d) => copy::Source::Fixed(
                            self.query.eval_as_text(d, &col.ty.sql_name()).await?,
                        ),
                        None => copy::Source::Fixed(None),
                    },
                });
            }
            let width = if spec.columns.is_empty() {
                schema.columns.len()
            } else {
                spec.columns.len()
            };
            self.copy_in = Some(copy::CopyIn::start(table, spec.format, sources, width));
            return Ok(Output::CopyIn { columns: width });
        }
        let statement = match (spec.query, &spec.table) {
            (Some(query), _) => sqlparser::ast::Statement::Query(query),
            (None, Some(name)) => {
                let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
                let columns = if spec.columns.is_empty() {
                    "*".to_string()
                } else {
                    spec.columns
                        .iter()
                        .map(|c| quote(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let sql = format!(
                    "SELECT {columns} FROM {}.{}",
                    quote(&self.database_of(name)),
                    quote(&name.name)
                );
                let mut parsed = sql::parse(&sql)?;
                match parsed.pop() {
                    Some(Statement::Query(q)) => *q,
                    _ => return Err(Error::internal("COPY TO query")),
                }
            }
            (None, None) => bail!(Syntax, "COPY TO needs a table or a query"),
        };
        let plan = self.plan(&statement).await?;
        match self.run_plan(&plan, None).await? {
            Output::Rows { schema, stream } => Ok(Output::CopyOut {
                schema,
                stream,
                format: spec.format,
            }),
            _ => bail!(
                FeatureNotSupported,
                "COPY TO needs a query that returns rows"
            ),
        }
    }

    /// COPY FROM STDIN data from the client.
    pub async fn copy_data(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(copy) = self.copy_in.as_mut() else {
            bail!(ProtocolViolation, "COPY data without a COPY in progress");
        };
        let result = copy.data(bytes).await;
        if result.is_err() {
            self.copy_in = None;
            self.after_copy_error();
        }
        result
    }

    /// The end of COPY FROM STDIN data: commits; returns the rows loaded.
    pub async fn copy_done(&mut self) -> Result<u64> {
        let Some(copy) = self.copy_in.take() else {
            bail!(ProtocolViolation, "COPY done without a COPY in progress");
        };
        let result = copy.done().await;
        if result.is_err() {
            self.after_copy_error();
            return result;
        }
        // Outside a transaction block the rows are committed before the
        // CommandComplete, in both protocols: tokio-postgres's copy_in stops
        // reading at CommandComplete, so a commit failing at the following
        // Sync would reach no one and the client would count rows never stored.
        self.end_implicit(true).await?;
        result
    }

    /// The client gave up the COPY: nothing it sent is kept.
    pub async fn copy_fail(&mut self, message: &str) -> Error {
        let error = Error::new(
            ErrorKind::QueryCanceled,
            format!("COPY from stdin failed: {message}"),
        );
        match self.copy_in.take() {
            Some(mut copy) => {
                let e = copy.fail(error).await;
                self.after_copy_error();
                e
            }
            None => error,
        }
    }

    fn after_copy_error(&mut self) {
        self.fail_txn();
    }

    /// Plans a query, naming its result columns as PostgreSQL would.
    async fn plan(&self, ast: &sqlparser::ast::Statement) -> Result<QueryPlan> {
        sql::refuse_multiset_operations(ast)?;
        let mut planned = ast.clone();
        sql::make_names_unique(&mut planned);
        sql::rewrite_like_escapes(&mut planned);
        sql::rewrite_function_aliases(&mut planned);
        sql::rewrite_fetch(&mut planned);
        sql::rewrite_wide_numbers(&mut planned);
        sql::hoist_outer_conditions(&mut planned);
        sql::wrap_scalar_subqueries(&mut planned);
        self.complete_insert_columns(&mut planned);
        self.query.set_settings(self.settings.values());
        let plan = self.query.plan(planned).await?;
        let width = plan.output_schema().fields().len();
        Ok(plan.with_output_names(sql::output_names(ast, width)))
    }

    /// `INSERT INTO t VALUES (...)` with fewer values than `t` has columns
    /// fills the leading columns, the rest taking their defaults, as in
    /// PostgreSQL; DataFusion wants a value for every column, so the column
    /// list is written out.
    fn complete_insert_columns(&self, statement: &mut sqlparser::ast::Statement) {
        use sqlparser::ast::{Ident, ObjectName, SetExpr, Statement as S, TableObject};
        let S::Insert(insert) = statement else { return };
        if !insert.columns.is_empty() {
            return;
        }
        let Some(SetExpr::Values(values)) = insert.source.as_ref().map(|q| q.body.as_ref()) else {
            return;
        };
        let Some(width) = values.rows.iter().map(|r| r.content.len()).max() else {
            return;
        };
        let TableObject::TableName(name) = &insert.table else {
            return;
        };
        let Ok(parsed) = sql::table_name_of(name) else {
            return;
        };
        let state = self.instance.fuse.catalog().cached();
        let Some(meta) = state.table(&self.database_of(&parsed), &parsed.name) else {
            return;
        };
        if width < meta.schema.columns.len() {
            insert.columns = meta.schema.columns[..width]
                .iter()
                .map(|c| ObjectName::from(vec![Ident::with_quote('"', c.name.clone())]))
                .collect();
        }
    }

    /// Reloads the catalog if another session or process committed; returns its version.
    async fn refresh(&self) -> Result<u64> {
        Ok(self.instance.fuse.catalog().current().await?.version)
    }

    fn database_of(&self, name: &TableName) -> String {
        name.database
            .clone()
            .unwrap_or_else(|| self.database.clone())
    }

    async fn execute_inner(
        &mut self,
        statement: Statement,
        params: Option<ParamValues>,
    ) -> Result<Output> {
        let version = self.refresh().await?;
        let fuse = self.instance.fuse.clone();
        match statement {
            Statement::Query(ast) => {
                let basis = self.plan_basis_at(version);
                let plan = self.plan_query(&ast, &basis).await?;
                self.run_plan(&plan, params).await
            }
            Statement::Copy(spec) => self.copy(*spec).await,
            Statement::CreateDatabase {
                name,
                if_not_exists,
            } => {
                ops::create_database(&fuse, &name, if_not_exists).await?;
                Ok(Output::Command("CREATE DATABASE".into()))
            }
            Statement::DropDatabase { name, if_exists } => {
                if name == self.database {
                    bail!(ObjectInUse, "cannot drop the currently open database");
                }
                ops::drop_database(&fuse, &name, if_exists).await?;
                Ok(Output::Command("DROP DATABASE".into()))
            }
            Statement::Use { database } => {
                fuse.catalog().cached().require_database(&database)?;
                self.database = database;
                self.query.set_database(&self.database);
                Ok(Output::Command("USE".into()))
            }
            Statement::CreateTable(create) => self.create_table(*create).await,
            Statement::DropTable { names, if_exists } => {
                for name in &names {
                    ops::drop_table(&fuse, &self.database_of(name), &name.name, if_exists).await?;
                }
                Ok(Output::Command("DROP TABLE".into()))
            }
            Statement::ShowTables { database } => {
                let db = database.unwrap_or_else(|| self.database.clone());
                show::tables(&fuse, &db)
            }
            Statement::ShowDatabases => show::databases(&fuse),
            Statement::ShowCreateTable { name } => {
                show::create_table(&fuse, &self.database_of(&name), &name.name)
            }
            Statement::Call { procedure, args } => {
                let batch = crate::system::call(&fuse, &procedure, &args).await?;
                Ok(Output::Rows {
                    schema: batch.schema(),
                    stream: Box::pin(futures::stream::iter(vec![Ok(batch)])),
                })
            }
            Statement::Begin => {
                // BEGIN after statements of a pipeline makes their implicit
                // transaction the explicit one, as in PostgreSQL.
                let txn = match &self.txn {
                    TxnState::Open { txn, .. } => txn.clone(),
                    _ => {
                        self.stream_failed
                            .store(false, std::sync::atomic::Ordering::Relaxed);
                        Transaction::new()
                    }
                };
                self.set_txn(TxnState::Open {
                    txn,
                    implicit: false,
                });
                Ok(Output::TransactionStart("BEGIN".into()))
            }
            Statement::Commit => {
                let state = std::mem::replace(&mut self.txn, TxnState::Idle);
                self.set_txn(TxnState::Idle);
                match state {
                    TxnState::Open { txn, .. } => {
                        txn.commit(&fuse).await?;
                        Ok(Output::TransactionEnd("COMMIT".into()))
                    }
                    // COMMIT of a failed transaction rolls it back, and says so.
                    TxnState::Failed { .. } => Ok(Output::TransactionEnd("ROLLBACK".into())),
                    TxnState::Idle => Ok(Output::TransactionEnd("COMMIT".into())),
                }
            }
            Statement::Rollback => {
                self.set_txn(TxnState::Idle);
                Ok(Output::TransactionEnd("ROLLBACK".into()))
            }
            Statement::Savepoint { name } => {
                let TxnState::Open {
                    txn,
                    implicit: false,
                } = &self.txn
                else {
                    bail!(
                        NoActiveTransaction,
                        "SAVEPOINT can only be used in transaction blocks"
                    );
                };
                let mark = txn.mark();
                self.savepoints.push((name, txn.clone(), mark));
                Ok(Output::Command("SAVEPOINT".into()))
            }
            Statement::ReleaseSavepoint { name } => {
                let at = self.savepoint(&name, "RELEASE SAVEPOINT")?;
                self.savepoints.truncate(at);
                Ok(Output::Command("RELEASE".into()))
            }
            Statement::RollbackToSavepoint { name } => {
                let at = self.savepoint(&name, "ROLLBACK TO SAVEPOINT")?;
                // The savepoint stays; what came after it goes, failure included.
                self.savepoints.truncate(at + 1);
                let (_, txn, mark) = &self.savepoints[at];
                txn.restore(mark);
                let txn = txn.clone();
                self.stream_failed
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                self.set_txn(TxnState::Open {
                    txn,
                    implicit: false,
                });
                Ok(Output::Command("ROLLBACK".into()))
            }
            Statement::Set { name, value } => match self.settings.set(&name, &value)? {
                Some((name, value)) => Ok(Output::ParameterChanged {
                    tag: "SET".into(),
                    name,
                    value,
                }),
                None => Ok(Output::Command("SET".into())),
            },
            Statement::Flashback { name, point } => {
                let table = maintenance::table(&fuse, &self.database_of(&name), &name.name)?;
                maintenance::flashback(&self.query, &table, point).await
            }
            Statement::Undrop { name } => {
                ops::undrop_table(&fuse, &self.database_of(&name), &name.name).await?;
                Ok(Output::Command("UNDROP TABLE".into()))
            }
            Statement::ShowDropTables { database } => {
                let db = database.unwrap_or_else(|| self.database.clone());
                maintenance::show_drop_tables(&fuse, Some(&db))
            }
            Statement::Vacuum {
                name,
                retain_hours,
                dry_run,
            } => {
                let table = maintenance::table(&fuse, &self.database_of(&name), &name.name)?;
                maintenance::vacuum(&table, retain_hours, dry_run).await
            }
            Statement::VacuumDropTables {
                database,
                retain_hours,
                dry_run,
            } => {
                maintenance::vacuum_drop_tables(&fuse, database.as_deref(), retain_hours, dry_run)
                    .await
            }
            Statement::AlterTable {
                name,
                if_exists,
                ops,
            } => {
                let db = self.database_of(&name);
                maintenance::alter_table(
                    &fuse,
                    &self.query,
                    &self.instance.query,
                    &db,
                    &name,
                    if_exists,
                    ops,
                )
                .await
            }
            Statement::Optimize { name, action } => {
                let table = maintenance::table(&fuse, &self.database_of(&name), &name.name)?;
                maintenance::optimize(&table, action).await
            }
            Statement::Show { name } if name == "all" => {
                let (names, values): (Vec<String>, Vec<String>) =
                    self.settings.show_all().into_iter().unzip();
                show::rows(show::text_schema(&["name", "setting"]), vec![names, values])
            }
            Statement::Show { name } => {
                let value = self.settings.get(&name)?.to_string();
                Ok(single_column(&name, vec![value]))
            }
            Statement::Reset { name: Some(name) } => match self.settings.set(&name, "default")? {
                Some((name, value)) => Ok(Output::ParameterChanged {
                    tag: "RESET".into(),
                    name,
                    value,
                }),
                None => Ok(Output::Command("RESET".into())),
            },
            Statement::Reset { name: None } => {
                self.settings.reset_all(&self.startup_settings);
                Ok(Output::Command("RESET".into()))
            }
            // Protocol-level statements are the wire's; SQL PREPARE is not
            // supported, so there is nothing else to free.
            Statement::Deallocate { name } => Ok(Output::Command(
                if name.is_none() {
                    "DEALLOCATE ALL"
                } else {
                    "DEALLOCATE"
                }
                .into(),
            )),
            Statement::Discard { what } => {
                if what == "ALL" {
                    if !matches!(self.txn, TxnState::Idle) {
                        bail!(
                            ActiveTransaction,
                            "DISCARD ALL cannot run inside a transaction block"
                        );
                    }
                    self.settings.reset_all(&self.startup_settings);
                }
                Ok(Output::Command(format!("DISCARD {what}")))
            }
        }
    }

    async fn run_plan(&self, plan: &QueryPlan, params: Option<ParamValues>) -> Result<Output> {
        // A statement prepared before a SET reads the parameter as it is now.
        self.query.set_settings(self.settings.values());
        match self.query.execute(plan, params).await? {
            QueryOutput::Rows { schema, stream } if plan.is_explain() => {
                // EXPLAIN also tells how many blocks each scan kept after pruning.
                let mut batches: Vec<RecordBatch> = stream.try_collect().await?;
                let reports = self.query.take_scan_reports();
                if !reports.is_empty() && schema.fields().len() == 2 {
                    let kinds: Vec<String> =
                        reports.iter().map(|_| "fuse_pruning".to_string()).collect();
                    let lines: Vec<String> = reports
                        .iter()
                        .map(|r| {
                            format!(
                                "table {}: segments {}, blocks {} of {} read ({} pruned)",
                                r.table,
                                r.segments,
                                r.blocks_read,
                                r.blocks_total,
                                r.blocks_total - r.blocks_read
                            )
                        })
                        .collect();
                    batches.push(RecordBatch::try_new(
                        schema.clone(),
                        vec![
                            Arc::new(StringArray::from(kinds)),
                            Arc::new(StringArray::from(lines)),
                        ],
                    )?);
                }
                let stream = futures::stream::iter(batches.into_iter().map(Ok));
                Ok(Output::Rows {
                    schema,
                    stream: Box::pin(stream),
                })
            }
            QueryOutput::Rows { schema, stream } => {
                let failed = self.stream_failed.clone();
                let session = self.id;
                let stream = stream.inspect_err(move |e| {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    // After the statement's own log line, which said it started well.
                    tracing::info!(session, sqlstate = e.sqlstate(), error = %e, "statement failed while sending rows");
                });
                Ok(Output::Rows {
                    schema,
                    stream: Box::pin(stream),
                })
            }
            QueryOutput::Affected { kind, rows } => Ok(Output::Command(match kind {
                PlanKind::Insert => format!("INSERT 0 {rows}"),
                PlanKind::Update => format!("UPDATE {rows}"),
                PlanKind::Delete => format!("DELETE {rows}"),
                PlanKind::Truncate => "TRUNCATE TABLE".to_string(),
                PlanKind::Rows => format!("SELECT {rows}"),
            })),
        }
    }

    async fn create_table(&mut self, create: sql::CreateTable) -> Result<Output> {
        let fuse = self.instance.fuse.clone();
        let database = self.database_of(&create.name);
        match create.as_query {
            None => {
                for column in &create.columns {
                    if let Some(default) = &column.default {
                        self.instance.query.check_default(default)?;
                    }
                }
                let schema = schema_of(&create.columns)?;
                ops::create_table(
                    &fuse,
                    NewTable {
                        database,
                        name: create.name.name,
                        schema,
                        location: create.location,
                        options: create.options,
                        if_not_exists: create.if_not_exists,
                    },
                )
                .await?;
                Ok(Output::Command("CREATE TABLE".into()))
            }
            Some(query) => {
                let plan = self.plan(&sqlparser::ast::Statement::Query(query)).await?;
                if plan.kind() != PlanKind::Rows {
                    bail!(Syntax, "CREATE TABLE AS needs a query");
                }
                let output = plan.output_schema();
                let columns = output
                    .fields()
                    .iter()
                    .map(|f| {
                        Ok(ColumnSpec {
                            name: f.name().clone(),
                            ty: crate::fuse::schema::ColumnType::from_arrow(f.data_type())?,
                            nullable: true,
                            default: None,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let schema = schema_of(&columns)?;
                let new = NewTable {
                    database,
                    name: create.name.name,
                    schema,
                    location: create.location,
                    options: create.options,
                    if_not_exists: create.if_not_exists,
                };
                let query = &self.query;
                let rows = ops::create_table_as(&fuse, new, |table| async move {
                    let QueryOutput::Rows { stream, .. } = query.execute(&plan, None).await? else {
                        return Err(Error::internal("CREATE TABLE AS query returned no rows"));
                    };
                    crate::query::write_query_blocks(&table, stream).await
                })
                .await?;
                Ok(Output::Command(format!("SELECT {}", rows.unwrap_or(0))))
            }
        }
    }
}

/// Runs a statement so that a bug (a panic) fails the statement with XX000
/// instead of dropping the connection.
async fn guard<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            tracing::error!(panic = what, "statement panicked");
            Err(Error::internal(format!("internal error: {what}")))
        }
    }
}

fn schema_of(columns: &[ColumnSpec]) -> Result<TableSchema> {
    if columns.is_empty() {
        bail!(Syntax, "a table needs at least one column");
    }
    TableSchema::new(
        columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.clone(), c.nullable, c.default.clone()))
            .collect(),
    )
}

/// A one-column text result.
fn single_column(name: &str, values: Vec<String>) -> Output {
    let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, true)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(values))]);
    let stream = futures::stream::iter(vec![batch.map_err(Error::from)]);
    Output::Rows {
        schema,
        stream: Box::pin(stream),
    }
}

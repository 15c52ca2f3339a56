//! The PostgreSQL wire protocol, through pgwire: startup, the simple and the
//! extended query protocols. The only module that imports pgwire.
//!
//! Each connection gets its own handler, holding its [`Session`]; pgwire calls
//! it for one message at a time, so the session lock is never contended.

mod array_param;
mod auth;
mod copy;
mod encode;
mod error;
mod params;
mod pgtext;
mod rows;
pub mod scram;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::sasl::{SCRAM_SHA_256_METHOD, SCRAM_SHA_256_PLUS_METHOD};
use pgwire::api::auth::{
    LoginInfo, ServerParameterProvider, StartupHandler, finish_authentication,
    protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::{CopyHandler, send_copy_in_response};
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{
    ExtendedQueryHandler, SimpleQueryHandler, send_execution_response, send_query_response,
};
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldInfo, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{
    ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireConnectionState, PgWireServerHandlers,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::data::{NoData, ParameterDescription};
use pgwire::messages::extendedquery::{
    Describe, Execute, Sync as PgSync, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{EmptyQueryResponse, ReadyForQuery, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::{Authentication, ParameterStatus, SecretKey};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::sync::Mutex;

use self::error::fatal;
pub use self::error::to_pgwire;
use crate::error::{Error, ErrorKind};
use crate::fuse::DEFAULT_DATABASE;
use crate::query::Interrupt;
use crate::session::{
    Instance, Output, Prepared, Session, Settings, TransactionStatus as SessionTxn,
};
use crate::sql::Statement;

pub use self::auth::{AuthConfig, AuthMethod, Users};

/// Bind parameters as Execute decodes them (for the `params` fuzz target).
pub use self::params::decode as decode_parameters;

/// The SCRAM-SHA-256 verifier of `password` (fresh salt), in PostgreSQL's form.
pub fn hash_password(password: &str) -> String {
    scram::Verifier::from_password(password).to_string()
}

/// How the wire layer admits clients.
#[derive(Debug, Clone)]
pub struct WireConfig {
    pub auth: AuthConfig,
    /// Sessions beyond this many are refused with 53300.
    pub max_connections: usize,
    /// The TLS certificate (PEM), for SCRAM channel binding.
    pub tls_cert_pem: Option<Vec<u8>>,
    /// idle_session_timeout for sessions whose client does not set it.
    pub idle_session_timeout: Option<std::time::Duration>,
}

/// Server-wide state the connection handlers share.
pub struct WireContext {
    pub instance: Arc<Instance>,
    config: WireConfig,
    /// The TLS certificate's hash, for SCRAM channel binding (SCRAM-SHA-256-PLUS).
    cert_hash: Option<Vec<u8>>,
    pids: RandomPidSecretKeyGenerator,
    next_session: AtomicU64,
    /// Running sessions by backend pid: their cancel key and interrupt switch.
    sessions: std::sync::Mutex<HashMap<i32, (SecretKey, Arc<Interrupt>)>>,
}

impl WireContext {
    pub fn new(instance: Arc<Instance>, config: WireConfig) -> Result<Arc<WireContext>, Error> {
        let cert_hash = match &config.tls_cert_pem {
            Some(pem) => Some(scram::certificate_hash(pem).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidParameterValue,
                    format!("the TLS certificate cannot be used for SCRAM channel binding: {e}"),
                )
            })?),
            None => None,
        };
        Ok(Arc::new(WireContext {
            instance,
            config,
            cert_hash,
            pids: RandomPidSecretKeyGenerator::default(),
            next_session: AtomicU64::new(1),
            sessions: Default::default(),
        }))
    }

    fn session_count(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }

    fn register(&self, pid: i32, key: SecretKey, interrupt: Arc<Interrupt>) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.insert(pid, (key, interrupt));
        }
    }

    fn unregister(&self, pid: i32) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(&pid);
        }
    }

    /// Server shutdown: stops every running statement (57P01); writes stop
    /// before their commit.
    pub fn shut_down_sessions(&self) {
        if let Ok(sessions) = self.sessions.lock() {
            for (_, interrupt) in sessions.values() {
                interrupt.shut_down();
            }
        }
    }

    /// A CancelRequest: stops the session's running statement if the key matches.
    fn cancel(&self, pid: i32, key: &SecretKey) {
        let target = self.sessions.lock().ok().and_then(|s| {
            s.get(&pid)
                .filter(|(k, _)| key_bytes(k) == key_bytes(key))
                .map(|(_, i)| i.clone())
        });
        match target {
            Some(interrupt) => {
                tracing::info!(pid, "cancel request");
                interrupt.cancel();
            }
            None => tracing::debug!(pid, "cancel request for no matching session"),
        }
    }
}

/// A cancel key's bytes: a CancelRequest arrives on a new connection whose
/// protocol version is unknown, so its key may decode either way.
fn key_bytes(key: &SecretKey) -> Vec<u8> {
    match key {
        SecretKey::I32(v) => v.to_be_bytes().to_vec(),
        SecretKey::Bytes(b) => b.to_vec(),
    }
}

/// Where a connection is in its startup exchange.
enum Exchange {
    Start,
    Cleartext,
    Md5 {
        salt: [u8; 4],
    },
    /// SCRAM offered; the client's first message not yet received.
    ScramStart,
    /// Server-first sent; waiting for the client's proof.
    Scram(Box<scram::Exchange>),
}

/// The handlers of one connection.
pub struct Connection {
    ctx: Arc<WireContext>,
    session: Arc<Mutex<Option<Session>>>,
    parser: Arc<StatementParser>,
    exchange: Mutex<Exchange>,
    /// The backend pid, once the session is registered for cancels.
    pid: std::sync::Mutex<Option<i32>>,
    /// The client speaks TLS.
    secure: std::sync::atomic::AtomicBool,
    /// A response `on_execute` already produced, for pgwire's Execute to send
    /// (see `on_execute`).
    executed: std::sync::Mutex<Option<Response>>,
}

impl Connection {
    pub fn new(ctx: Arc<WireContext>) -> Arc<Connection> {
        let session = Arc::new(Mutex::new(None));
        Arc::new(Connection {
            ctx,
            parser: Arc::new(StatementParser {
                session: session.clone(),
            }),
            session,
            exchange: Mutex::new(Exchange::Start),
            pid: std::sync::Mutex::new(None),
            secure: std::sync::atomic::AtomicBool::new(false),
            executed: std::sync::Mutex::new(None),
        })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.lock().ok().and_then(|p| *p) {
            self.ctx.unregister(pid);
        }
    }
}

#[async_trait]
impl CancelHandler for Connection {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.ctx.cancel(request.pid, &request.secret_key);
    }
}

impl Connection {
    /// Waits until no statement runs on this connection, and keeps it so.
    pub async fn wait_idle(&self) -> tokio::sync::OwnedMutexGuard<Option<Session>> {
        self.session.clone().lock_owned().await
    }

    /// Resolves, with the FATAL error to send, once the session has waited
    /// for its client past its idle timeout. A running statement is never
    /// idle (it holds the session).
    pub async fn idle_expired(&self) -> pgwire::error::ErrorInfo {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let Ok(guard) = self.session.try_lock() else {
                continue;
            };
            if let Some(error) = guard.as_ref().and_then(Session::idle_past_timeout) {
                tracing::info!(error = %error, "ending an idle session");
                let mut info: pgwire::error::ErrorInfo = to_pgwire(error).into();
                info.severity = "FATAL".to_string();
                return info;
            }
        }
    }

    /// Whether the client negotiated TLS (known once the session started).
    pub fn is_secure(&self) -> bool {
        self.secure.load(Ordering::Relaxed)
    }
}

/// pgwire wants a factory of handlers; each connection is its own factory.
pub struct ConnectionHandlers(pub Arc<Connection>);

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.0.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.0.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.0.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.0.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.0.clone()
    }
}

fn no_session() -> PgWireError {
    to_pgwire(Error::new(
        ErrorKind::ProtocolViolation,
        "the connection has no session yet",
    ))
}

struct SessionParameters(Vec<(String, String)>);

impl ServerParameterProvider for SessionParameters {
    fn server_parameters<C: ClientInfo>(&self, _client: &C) -> Option<HashMap<String, String>> {
        Some(self.0.iter().cloned().collect())
    }
}

#[async_trait]
impl StartupHandler for Connection {
    /// Startup, then the password exchange the configured method asks for,
    /// then the session: only an authenticated client learns whether its
    /// database exists.
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut exchange = self.exchange.lock().await;
        match message {
            PgWireFrontendMessage::Startup(startup) => {
                protocol_negotiation(client, &startup).await?;
                save_startup_parameters_to_metadata(client, &startup);
                if self.ctx.session_count() >= self.ctx.config.max_connections {
                    return Err(fatal(Error::new(
                        ErrorKind::TooManyConnections,
                        "sorry, too many clients already",
                    )));
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                let request = match self.ctx.config.auth.method {
                    AuthMethod::Trust => return self.open_session(client).await,
                    AuthMethod::Password => {
                        *exchange = Exchange::Cleartext;
                        Authentication::CleartextPassword
                    }
                    AuthMethod::Md5 => {
                        let mut salt = [0u8; 4];
                        salt.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..4]);
                        *exchange = Exchange::Md5 { salt };
                        Authentication::MD5Password(salt.to_vec())
                    }
                    AuthMethod::ScramSha256 => {
                        *exchange = Exchange::ScramStart;
                        let mut mechanisms = vec![SCRAM_SHA_256_METHOD.to_string()];
                        // Channel binding needs the TLS channel it binds to.
                        if self.ctx.cert_hash.is_some() && client.is_secure() {
                            mechanisms.push(SCRAM_SHA_256_PLUS_METHOD.to_string());
                        }
                        Authentication::SASL(mechanisms)
                    }
                };
                client
                    .send(PgWireBackendMessage::Authentication(request))
                    .await?;
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let user = LoginInfo::from_client_info(client)
                    .user()
                    .unwrap_or_default()
                    .to_string();
                let accepted = match &mut *exchange {
                    Exchange::Cleartext => {
                        let password = message.into_password()?;
                        self.ctx
                            .config
                            .auth
                            .check_cleartext(&user, &password.password)
                    }
                    Exchange::Md5 { salt } => {
                        let answer = message.into_password()?;
                        self.ctx
                            .config
                            .auth
                            .check_md5(&user, &answer.password, salt)
                    }
                    Exchange::ScramStart => {
                        let initial = message.into_sasl_initial_response()?;
                        let plus = match initial.auth_method.as_str() {
                            SCRAM_SHA_256_METHOD => false,
                            SCRAM_SHA_256_PLUS_METHOD => true,
                            _ => {
                                return Err(PgWireError::UnsupportedSASLAuthMethod(
                                    initial.auth_method,
                                ));
                            }
                        };
                        let cert_hash =
                            self.ctx.cert_hash.as_deref().filter(|_| client.is_secure());
                        let verifier = self.ctx.config.auth.scram_verifier(&user);
                        let data = initial.data.as_deref().unwrap_or_default();
                        match scram::Exchange::start(verifier, data, plus, cert_hash) {
                            Ok((next, server_first)) => {
                                *exchange = Exchange::Scram(Box::new(next));
                                let response = Authentication::SASLContinue(server_first.into());
                                client
                                    .send(PgWireBackendMessage::Authentication(response))
                                    .await?;
                                return Ok(());
                            }
                            Err(e) => {
                                tracing::debug!(user = %user, reason = e.0, "SCRAM exchange refused");
                                false
                            }
                        }
                    }
                    Exchange::Scram(state) => {
                        let response = message.into_sasl_response()?;
                        match state.finish(&response.data) {
                            Ok(server_final) => {
                                let response = Authentication::SASLFinal(server_final.into());
                                client
                                    .send(PgWireBackendMessage::Authentication(response))
                                    .await?;
                                true
                            }
                            Err(e) => {
                                tracing::debug!(user = %user, reason = e.0, "SCRAM exchange refused");
                                false
                            }
                        }
                    }
                    Exchange::Start => return Err(PgWireError::InvalidSASLState),
                };
                if !accepted {
                    tracing::info!(user = %user, peer = %client.socket_addr(), "password authentication failed");
                    return Err(fatal(auth::authentication_failed(&user)));
                }
                self.open_session(client).await
            }
            _ => Ok(()),
        }
    }
}

impl Connection {
    /// The client is who it says: start its session and tell it so.
    async fn open_session<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let login = LoginInfo::from_client_info(client);
        let user = login.user().unwrap_or("fusegate").to_string();
        let requested = login.database().unwrap_or(DEFAULT_DATABASE).to_string();
        // Clients that assume PostgreSQL's stock database land in the default one.
        let fuse = &self.ctx.instance.fuse;
        let database =
            if requested == "postgres" && fuse.catalog().cached().database("postgres").is_none() {
                DEFAULT_DATABASE.to_string()
            } else {
                requested
            };
        let mut settings = Settings::from_startup(client.metadata().iter());
        if let Some(timeout) = self.ctx.config.idle_session_timeout
            && !client.metadata().contains_key("idle_session_timeout")
        {
            settings
                .set(
                    "idle_session_timeout",
                    &format!("{}ms", timeout.as_millis()),
                )
                .map_err(fatal)?;
        }
        let id = self.ctx.next_session.fetch_add(1, Ordering::Relaxed);
        let role = self.ctx.config.auth.users.role(&user);
        let session = Session::new(
            self.ctx.instance.clone(),
            id,
            &user,
            role,
            &database,
            settings,
        )
        .await
        .map_err(fatal)?;
        let (pid, key) = self.ctx.pids.generate(client);
        client.set_pid_and_secret_key(pid, key.clone());
        self.ctx.register(pid, key, session.interrupt());
        if let Ok(mut slot) = self.pid.lock() {
            *slot = Some(pid);
        }
        self.secure.store(client.is_secure(), Ordering::Relaxed);
        tracing::info!(session = id, pid, user = %user, database = %database, peer = %client.socket_addr(), "session started");
        let params = SessionParameters(session.settings().reported());
        *self.session.lock().await = Some(session);
        finish_authentication(client, &params).await
    }
}

fn status_of(session: &Session) -> TransactionStatus {
    match session.transaction_status() {
        SessionTxn::Idle => TransactionStatus::Idle,
        SessionTxn::InTransaction => TransactionStatus::Transaction,
        SessionTxn::Failed => TransactionStatus::Error,
    }
}

/// Sends one statement's output in the simple protocol. Returns true when
/// it started COPY FROM STDIN: the client now sends data, and ReadyForQuery
/// waits for its end.
async fn send_output<C>(client: &mut C, output: Output) -> PgWireResult<bool>
where
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if let Output::ParameterChanged { name, value, .. } = &output {
        client
            .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                name.clone(),
                value.clone(),
            )))
            .await?;
    }
    if let Output::CopyOut {
        schema,
        stream,
        format,
    } = output
    {
        let rows = copy::send_copy_out(client, schema, stream, &format).await?;
        send_execution_response(client, Tag::new("COPY").with_rows(rows as usize)).await?;
        return Ok(false);
    }
    match encode::response(output, &Format::UnifiedText)? {
        Response::Query(rows) => send_query_response(client, rows, true).await?,
        Response::Execution(tag) => send_execution_response(client, tag).await?,
        Response::TransactionStart(tag) => {
            send_execution_response(client, tag).await?;
            client.set_transaction_status(client.transaction_status().to_in_transaction_state());
        }
        Response::TransactionEnd(tag) => {
            send_execution_response(client, tag).await?;
            client.set_transaction_status(TransactionStatus::Idle);
        }
        Response::CopyIn(copy) => {
            send_copy_in_response(client, copy).await?;
            client.set_state(PgWireConnectionState::CopyInProgress(false));
            return Ok(true);
        }
        _ => {}
    }
    Ok(false)
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    /// Runs the statements of one Query message in order, sending each one's
    /// results before the next one starts; the first error ends the message.
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let mut guard = self.session.lock().await;
        let session = guard.as_mut().ok_or_else(no_session)?;
        let result: PgWireResult<bool> = async {
            let statements = session.parse(&query.query).map_err(to_pgwire)?;
            if statements.is_empty() {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
            }
            // PostgreSQL runs the statements of one message in one implicit
            // transaction, unless the message manages transactions itself.
            let controls = statements.iter().any(|s| {
                matches!(
                    s,
                    Statement::Begin | Statement::Commit | Statement::Rollback
                )
            });
            let copy_in = statements
                .iter()
                .any(|s| matches!(s, Statement::Copy(spec) if spec.from_stdin));
            if copy_in && statements.len() > 1 {
                return Err(to_pgwire(Error::new(
                    ErrorKind::FeatureNotSupported,
                    "COPY FROM STDIN must be the only statement of its query message",
                )));
            }
            let implicit = statements.len() > 1 && !controls && session.begin_implicit();
            let mut outcome = Ok(false);
            for statement in statements {
                if let Statement::Deallocate { name: Some(name) } = &statement
                    && let Err(e) = deallocate(client, name)
                {
                    outcome = Err(e);
                    break;
                }
                let sent = match session.execute(statement).await {
                    Ok(output) => send_output(client, output).await,
                    Err(e) => Err(to_pgwire(e)),
                };
                match sent {
                    Ok(started_copy) => outcome = Ok(started_copy),
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
            if implicit {
                session
                    .end_implicit(outcome.is_ok())
                    .await
                    .map_err(to_pgwire)?;
            }
            outcome
        }
        .await;
        client.set_transaction_status(status_of(session));
        if let Ok(true) = result {
            // COPY FROM STDIN: the copy handler ends the message.
            return Ok(());
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        result?;
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status_of(session),
            )))
            .await?;
        Ok(())
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // on_query above handles every Query message.
        Err(to_pgwire(Error::internal(
            "unexpected simple query dispatch",
        )))
    }
}

/// DEALLOCATE name: forgets a statement prepared by the extended protocol.
fn deallocate<C>(client: &C, name: &str) -> PgWireResult<()>
where
    C: ClientPortalStore,
    C::PortalStore: PortalStore,
{
    let store = client.portal_store();
    if store.get_statement(name).is_none() {
        return Err(to_pgwire(Error::new(
            ErrorKind::InvalidStatementName,
            format!("prepared statement \"{name}\" does not exist"),
        )));
    }
    store.rm_statement(name);
    Ok(())
}

/// Parses and plans statements at Parse time, for Describe and Execute.
pub struct StatementParser {
    session: Arc<Mutex<Option<Session>>>,
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut guard = self.session.lock().await;
        let session = guard.as_mut().ok_or_else(no_session)?;
        match session.prepare(sql).await {
            Ok(prepared) => Ok(prepared.map(Arc::new)),
            Err(e) => {
                session.statement_failed();
                Err(to_pgwire(e))
            }
        }
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .param_types
            .iter()
            .map(|t| encode::param_type(t.as_ref()))
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        encode::fields(&stmt.schema, format.unwrap_or(&Format::UnifiedText))
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Arc<Prepared>;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal("");
        sync_pipeline(self, client).await
    }

    /// Streams a portal's rows to the client as they are produced. pgwire's
    /// Execute collects all of a portal's rows before sending the first
    /// (`Portal::fetch`), holding a whole result in memory; it is left only
    /// what streaming does not need: a row-limited Execute (a cursor-like
    /// fetch of `max_rows`), and results that are not rows.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(name) {
            Some(Entry::Value(portal)) => portal,
            _ => return self._on_execute(client, message).await,
        };
        let fresh = matches!(*portal.state().lock().await, PortalExecutionState::Initial);
        if message.max_rows != 0
            || !fresh
            || !matches!(client.state(), PgWireConnectionState::ReadyForQuery)
        {
            return self._on_execute(client, message).await;
        }
        // As pgwire's Execute does: the status is Sync's to change.
        let status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);
        match ExtendedQueryHandler::do_query(self, client, portal.as_ref(), 0).await? {
            Response::Query(rows) => {
                *portal.state().lock().await = PortalExecutionState::Finished;
                send_query_response(client, rows, false).await?;
                client.set_state(PgWireConnectionState::ReadyForQuery);
                client.set_transaction_status(status);
                Ok(())
            }
            other => {
                // pgwire's Execute sends it: its do_query call gets this back.
                if let Ok(mut slot) = self.executed.lock() {
                    *slot = Some(other);
                }
                client.set_state(PgWireConnectionState::ReadyForQuery);
                self._on_execute(client, message).await
            }
        }
    }

    /// Describing a statement that returns no rows (INSERT, DDL) answers
    /// ParameterDescription + NoData, as PostgreSQL does; pgwire's default
    /// sends an empty RowDescription when the statement has parameters,
    /// which makes pgjdbc count a batch's rows as 0.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or("");
            if let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name)
                && stmt.statement.schema.fields().is_empty()
            {
                let described = self.do_describe_statement(client, &stmt).await?;
                let oids = described.parameters.iter().map(|t| t.oid()).collect();
                client
                    .send(PgWireBackendMessage::ParameterDescription(
                        ParameterDescription::new(oids),
                    ))
                    .await?;
                client
                    .send(PgWireBackendMessage::NoData(NoData::new()))
                    .await?;
                return Ok(());
            }
        }
        self._on_describe(client, message).await
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &target.statement;
        // Types the client declared at Parse win over inferred ones.
        let count = prepared.param_types.len().max(target.parameter_types.len());
        let params = (0..count)
            .map(|i| {
                target
                    .parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| {
                        encode::param_type(prepared.param_types.get(i).and_then(|t| t.as_ref()))
                    })
            })
            .collect();
        let fields = encode::fields(&prepared.schema, &Format::UnifiedText)?;
        Ok(DescribeStatementResponse::new(params, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let fields = encode::fields(
            &portal.statement.statement.schema,
            &portal.result_column_format,
        )?;
        Ok(DescribePortalResponse::new(fields))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Already run by on_execute, for pgwire to send.
        if let Some(response) = self.executed.lock().ok().and_then(|mut r| r.take()) {
            return Ok(response);
        }
        let prepared = portal.statement.statement.clone();
        let mut guard = self.session.lock().await;
        let session = guard.as_mut().ok_or_else(no_session)?;
        let params = if portal.parameter_len() > 0 {
            let inferred: Vec<Option<&arrow::datatypes::DataType>> =
                prepared.param_types.iter().map(|t| t.as_ref()).collect();
            match params::decode(portal, &inferred) {
                Ok(values) => Some(values),
                Err(e) => {
                    session.statement_failed();
                    return Err(to_pgwire(e));
                }
            }
        } else {
            None
        };
        // The statements of a pipeline, up to Sync, run in one implicit
        // transaction (committed in on_sync), as in PostgreSQL.
        if !prepared.statement.is_transaction_control() {
            session.begin_implicit();
        }
        let output = session
            .execute_prepared(&prepared, params)
            .await
            .map_err(to_pgwire)?;
        // E.g. ROLLBACK TO SAVEPOINT leaves a failed transaction.
        client.set_transaction_status(status_of(session));
        if let Output::ParameterChanged { name, value, .. } = &output {
            client
                .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                    name.clone(),
                    value.clone(),
                )))
                .await?;
        }
        if let Output::CopyOut {
            schema,
            stream,
            format,
        } = output
        {
            let rows = copy::send_copy_out(client, schema, stream, &format).await?;
            return Ok(Response::Execution(
                Tag::new("COPY").with_rows(rows as usize),
            ));
        }
        encode::response(output, &portal.result_column_format)
    }
}

/// Sync ends a pipeline: its implicit transaction commits (or, after an
/// error, is dropped) before ReadyForQuery.
async fn sync_pipeline<C>(connection: &Connection, client: &mut C) -> PgWireResult<()>
where
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let mut guard = connection.session.lock().await;
    if let Some(session) = guard.as_mut() {
        let committed = session.end_implicit(true).await;
        client.set_transaction_status(status_of(session));
        if let Err(e) = committed {
            let info: pgwire::error::ErrorInfo = to_pgwire(e).into();
            client
                .feed(PgWireBackendMessage::ErrorResponse(info.into()))
                .await?;
        }
    }
    client
        .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
            client.transaction_status(),
        )))
        .await?;
    client.flush().await?;
    Ok(())
}

/// COPY FROM STDIN data, after the CopyInResponse.
#[async_trait]
impl CopyHandler for Connection {
    async fn on_copy_data<C>(&self, client: &mut C, data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut guard = self.session.lock().await;
        let session = guard.as_mut().ok_or_else(no_session)?;
        let result = session.copy_data(&data.data).await;
        client.set_transaction_status(status_of(session));
        result.map_err(to_pgwire)
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut guard = self.session.lock().await;
        let session = guard.as_mut().ok_or_else(no_session)?;
        let result = session.copy_done().await;
        client.set_transaction_status(status_of(session));
        let rows = result.map_err(to_pgwire)?;
        let tag = Tag::new("COPY").with_rows(rows as usize);
        client
            .send(PgWireBackendMessage::CommandComplete(tag.into()))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut guard = self.session.lock().await;
        let Some(session) = guard.as_mut() else {
            return no_session();
        };
        let error = session.copy_fail(&fail.message).await;
        client.set_transaction_status(status_of(session));
        to_pgwire(error)
    }
}

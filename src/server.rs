//! The TCP server: accept loop, one task per connection, graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::error::{Error, ErrorKind, Result};
use crate::fuse::FuseEngine;
use crate::query::QueryEngine;
use crate::session::Instance;
use crate::storage::StorageLocation;
use crate::wire::{
    AuthConfig, AuthMethod, Connection, ConnectionHandlers, WireConfig, WireContext,
};
use tokio_rustls::TlsAcceptor;

/// How long running statements may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long cancelled statements get to stop after that.
const SHUTDOWN_CANCEL_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Bytes the queries of all sessions may hold before spilling or failing.
    pub memory_limit: usize,
    pub auth: AuthConfig,
    pub max_connections: usize,
    /// PEM files of the certificate chain and its private key: TLS on.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Every session's idle_session_timeout unless its client sets one.
    pub idle_session_timeout: Option<Duration>,
    /// Queries reading more blocks than this run on the background runtime.
    pub heavy_query_blocks: usize,
}

impl ServerConfig {
    /// The embedded default: loopback, trust, no TLS.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            listen,
            data_dir,
            memory_limit: 4 << 30,
            auth: AuthConfig::trust(),
            max_connections: 100,
            tls: None,
            idle_session_timeout: None,
            heavy_query_blocks: crate::query::DEFAULT_HEAVY_QUERY_BLOCKS,
        }
    }
}

pub struct Server {
    listener: TcpListener,
    ctx: Arc<WireContext>,
    tls: Option<TlsAcceptor>,
}

impl Server {
    /// Opens the data directory and binds the listening socket.
    pub async fn bind(config: &ServerConfig) -> Result<Server> {
        if config.auth.method == AuthMethod::Trust
            && config.auth.users.is_empty()
            && !config.listen.ip().is_loopback()
        {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!(
                    "refusing to accept anyone without a password on {}: configure users \
                     (--user, --users-file) or say --auth trust explicitly",
                    config.listen
                ),
            ));
        }
        if config.auth.method != AuthMethod::Trust && config.auth.users.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!(
                    "--auth {} needs users (--user NAME:PASSWORD or --users-file)",
                    config.auth.method
                ),
            ));
        }
        let (tls, cert_pem) = match &config.tls {
            Some((cert, key)) => {
                let (acceptor, pem) = tls_acceptor(cert, key)?;
                (Some(acceptor), Some(pem))
            }
            None => (None, None),
        };
        let wire = WireConfig {
            auth: config.auth.clone(),
            max_connections: config.max_connections,
            tls_cert_pem: cert_pem,
            idle_session_timeout: config.idle_session_timeout,
        };
        let data_dir = absolute_dir(&config.data_dir)?;
        let fuse = open_engine(&data_dir).await?;
        let mut query = QueryEngine::new(fuse.clone(), config.memory_limit)?;
        query.set_heavy_query_blocks(config.heavy_query_blocks);
        let instance = Arc::new(Instance { fuse, query });
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            Error::new(
                ErrorKind::StorageIo,
                format!("cannot listen on {}: {e}", config.listen),
            )
        })?;
        tracing::info!(
            listen = %listener.local_addr()?,
            data_dir = %data_dir,
            auth = %config.auth.method,
            tls = tls.is_some(),
            "fusegate ready"
        );
        Ok(Server {
            listener,
            ctx: WireContext::new(instance, wire)?,
            tls,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets running
    /// statements finish (up to a grace period) and closes every connection.
    /// Commits are atomic, so a statement cut short leaves its table as it was.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let mut tasks = JoinSet::new();
        let mut connections: Vec<std::sync::Weak<Connection>> = Vec::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (socket, peer) = match accepted {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    crate::metrics::metrics().connection_accepted();
                    let connection = Connection::new(self.ctx.clone());
                    connections.retain(|c| c.strong_count() > 0);
                    connections.push(Arc::downgrade(&connection));
                    let span = tracing::info_span!("connection", %peer);
                    let tls = self.tls.clone();
                    tasks.spawn(serve_connection(socket, tls, connection).instrument(span));
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tracing::info!(connections = tasks.len(), "shutting down");
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        // Holding each session's lock means no statement runs on it any more.
        let mut idle = Vec::new();
        let mut busy = Vec::new();
        for c in connections.iter().filter_map(|c| c.upgrade()) {
            match tokio::time::timeout_at(deadline, c.wait_idle()).await {
                Ok(guard) => idle.push(guard),
                Err(_) => busy.push(c),
            }
        }
        if !busy.is_empty() {
            // Stop them through their normal error path (nothing half-written),
            // then give up on any that still do not return.
            tracing::warn!(
                statements = busy.len(),
                "cancelling statements still running"
            );
            self.ctx.shut_down_sessions();
            for c in busy {
                match tokio::time::timeout(SHUTDOWN_CANCEL_WAIT, c.wait_idle()).await {
                    Ok(guard) => idle.push(guard),
                    Err(_) => {
                        tracing::warn!("a statement did not stop when cancelled; dropping it")
                    }
                }
            }
        }
        tasks.shutdown().await;
        drop(idle);
        tracing::info!("fusegate stopped");
        Ok(())
    }
}

/// Runs one client connection through pgwire until it ends, or until its
/// session has been idle past its idle timeout: then, as PostgreSQL does, a
/// FATAL ErrorResponse (57P05, or 25P03 in a transaction block) and the
/// connection closes (its transaction, if any, rolled back). pgwire owns the
/// socket, so the message goes out on a duplicate of it; the session is
/// idle, so nothing else is writing. Over TLS the connection just closes.
async fn serve_connection(
    socket: tokio::net::TcpStream,
    tls: Option<TlsAcceptor>,
    connection: Arc<Connection>,
) {
    let duplicate = socket
        .into_std()
        .and_then(|s| Ok((s.try_clone()?, tokio::net::TcpStream::from_std(s)?)));
    let (duplicate, socket) = match duplicate {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(error = %e, "cannot take over the connection's socket");
            return;
        }
    };
    let watched = connection.clone();
    tokio::select! {
        ended = pgwire::tokio::process_socket(socket, tls, ConnectionHandlers(connection)) => {
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        error = watched.idle_expired() => {
            if !watched.is_secure() {
                use std::io::Write;
                let mut bytes = bytes::BytesMut::new();
                let message = pgwire::messages::PgWireBackendMessage::ErrorResponse(error.into());
                if message.encode(&mut bytes).is_ok() {
                    let mut duplicate = &duplicate;
                    let _ = duplicate.write_all(&bytes);
                }
            }
            let _ = duplicate.shutdown(std::net::Shutdown::Both);
        }
    }
    tracing::debug!("connection closed");
}

/// Opens the data directory's engine, trying again for a while when storage
/// fails (each request is already retried; this rides out a longer outage of
/// a flaky disk or network at startup).
async fn open_engine(data_dir: &str) -> Result<Arc<FuseEngine>> {
    const ATTEMPTS: u32 = 5;
    let mut attempt = 1;
    loop {
        match FuseEngine::open(StorageLocation::local(data_dir)).await {
            Err(e) if e.kind() == ErrorKind::StorageIo && attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "opening the data directory failed; trying again");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// A TLS acceptor for the PEM certificate chain and key; also returns the
/// certificate PEM (for SCRAM channel binding).
fn tls_acceptor(cert: &Path, key: &Path) -> Result<(TlsAcceptor, Vec<u8>)> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::InvalidParameterValue,
            format!("cannot use {what} {}: {e}", path.display()),
        )
    };
    let pem = std::fs::read(cert).map_err(|e| bad("the TLS certificate", cert, &e))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad("the TLS certificate", cert, &e))?;
    if chain.is_empty() {
        return Err(bad(
            "the TLS certificate",
            cert,
            &"no certificate in the file",
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("the TLS key", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
        .map_err(|e: rustls::Error| bad("the TLS certificate and key", cert, &e))?;
    tls.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(tls)), pem))
}

fn absolute_dir(dir: &Path) -> Result<String> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::new(
            ErrorKind::StorageIo,
            format!("cannot create data directory {}: {e}", dir.display()),
        )
    })?;
    let abs = dir.canonicalize()?;
    abs.to_str().map(str::to_string).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidParameterValue,
            "the data directory path is not UTF-8",
        )
    })
}

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
use crate::wire::{Connection, ConnectionHandlers, WireContext};

/// How long running statements may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Bytes the queries of all sessions may hold before spilling or failing.
    pub memory_limit: usize,
}

pub struct Server {
    listener: TcpListener,
    ctx: Arc<WireContext>,
}

impl Server {
    /// Opens the data directory and binds the listening socket.
    pub async fn bind(config: &ServerConfig) -> Result<Server> {
        let data_dir = absolute_dir(&config.data_dir)?;
        let fuse = FuseEngine::open(StorageLocation::local(&data_dir)).await?;
        let query = QueryEngine::new(fuse.clone(), config.memory_limit)?;
        let instance = Arc::new(Instance { fuse, query });
        let listener = TcpListener::bind(config.listen).await.map_err(|e| {
            Error::new(
                ErrorKind::StorageIo,
                format!("cannot listen on {}: {e}", config.listen),
            )
        })?;
        tracing::info!(listen = %listener.local_addr()?, data_dir = %data_dir, "fusegate ready");
        Ok(Server {
            listener,
            ctx: WireContext::new(instance),
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
                    let connection = Connection::new(self.ctx.clone());
                    connections.retain(|c| c.strong_count() > 0);
                    connections.push(Arc::downgrade(&connection));
                    let span = tracing::info_span!("connection", %peer);
                    tasks.spawn(
                        async move {
                            if let Err(e) = pgwire::tokio::process_socket(socket, None, ConnectionHandlers(connection)).await {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                            tracing::debug!("connection closed");
                        }
                        .instrument(span),
                    );
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tracing::info!(connections = tasks.len(), "shutting down");
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        // Holding each session's lock means no statement runs on it any more.
        let mut idle = Vec::new();
        for c in connections.iter().filter_map(|c| c.upgrade()) {
            match tokio::time::timeout_at(deadline, c.wait_idle()).await {
                Ok(guard) => idle.push(guard),
                Err(_) => tracing::warn!("a statement did not finish in time and was cancelled"),
            }
        }
        tasks.shutdown().await;
        drop(idle);
        tracing::info!("fusegate stopped");
        Ok(())
    }
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

//! Metrics for Prometheus: connections, statements by kind and outcome with
//! their latency, storage requests and bytes (OpenDAL's prometheus-client
//! layer, on every storage fusegate opens), and what Fail-Safe and VACUUM
//! did. One registry per process; `--metrics-listen` serves it over HTTP.

use std::sync::LazyLock;
use std::time::Duration;

use opendal::layers::PrometheusClientLayer;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatementLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

pub struct Metrics {
    registry: Registry,
    storage: PrometheusClientLayer,
    connections: Counter,
    sessions: Gauge,
    statements: Family<StatementLabels, Counter>,
    durations: Family<KindLabel, Histogram>,
    restored: Counter,
    vacuumed: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("fusegate");
        // Labelled by root: one series per table directory (and the meta
        // directory), so an operator sees which table's storage is slow. (With
        // roots left out the layer still keys series by root and writes
        // duplicates.)
        let storage = PrometheusClientLayer::builder().register(&mut registry);
        let connections = Counter::default();
        registry.register(
            "connections",
            "Client connections accepted",
            connections.clone(),
        );
        let sessions = Gauge::default();
        registry.register(
            "sessions",
            "Sessions open (past startup and authentication)",
            sessions.clone(),
        );
        let statements = Family::<StatementLabels, Counter>::default();
        registry.register(
            "statements",
            "Statements run, by command and outcome (ok or the SQLSTATE class)",
            statements.clone(),
        );
        let durations = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 4.0, 10))
        });
        registry.register(
            "statement_duration_seconds",
            "Statement latency, by command",
            durations.clone(),
        );
        let restored = Counter::default();
        registry.register(
            "amend_restored_objects",
            "Objects fuse_amend brought back from earlier versions",
            restored.clone(),
        );
        let vacuumed = Counter::default();
        registry.register(
            "vacuum_removed_objects",
            "Objects VACUUM and PURGE removed",
            vacuumed.clone(),
        );
        Metrics {
            registry,
            storage,
            connections,
            sessions,
            statements,
            durations,
            restored,
            vacuumed,
        }
    }

    /// The layer every storage operator carries.
    pub fn storage_layer(&self) -> PrometheusClientLayer {
        self.storage.clone()
    }

    pub fn connection_accepted(&self) {
        self.connections.inc();
    }

    /// A session started; the guard ends it when dropped.
    pub fn session_started(&'static self) -> SessionGuard {
        self.sessions.inc();
        SessionGuard(self)
    }

    /// `sqlstate`: None for success.
    pub fn statement(&self, kind: &'static str, sqlstate: Option<&str>, elapsed: Duration) {
        let outcome = match sqlstate {
            None => "ok",
            Some(code) => sqlstate_class(code),
        };
        self.statements
            .get_or_create(&StatementLabels { kind, outcome })
            .inc();
        self.durations
            .get_or_create(&KindLabel { kind })
            .observe(elapsed.as_secs_f64());
    }

    pub fn objects_restored(&self, n: u64) {
        self.restored.inc_by(n);
    }

    pub fn objects_vacuumed(&self, n: u64) {
        self.vacuumed.inc_by(n);
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        text
    }
}

pub struct SessionGuard(&'static Metrics);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.sessions.dec();
    }
}

/// The SQLSTATE's class as a label (`error_22`): a bounded set of values.
fn sqlstate_class(code: &str) -> &'static str {
    const CLASSES: &[&str] = &[
        "0A", "21", "22", "23", "25", "28", "40", "42", "53", "54", "55", "57", "58", "XX",
    ];
    const LABELS: &[&str] = &[
        "error_0A", "error_21", "error_22", "error_23", "error_25", "error_28", "error_40",
        "error_42", "error_53", "error_54", "error_55", "error_57", "error_58", "error_XX",
    ];
    CLASSES
        .iter()
        .position(|c| code.starts_with(c))
        .map_or("error_other", |i| LABELS[i])
}

/// Serves `GET /metrics` (any path, in fact) on `listener` until the process
/// ends: a plain HTTP/1.1 answer per connection, enough for Prometheus.
pub async fn serve(listener: TcpListener) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(async move {
            // The request itself does not matter; read its head and answer.
            let mut head = [0u8; 4096];
            let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut head)).await;
            if !matches!(read, Ok(Ok(n)) if n > 0) {
                return;
            }
            let body = metrics().encode();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

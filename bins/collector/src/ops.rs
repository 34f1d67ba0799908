//! Operations, shared by both binaries: the process-wide Prometheus recorder, the `/metrics`,
//! `/healthz` and `/readyz` endpoints, a listener of their own, and the `healthcheck` probe
//! that container health checks run (the images have no curl).
//!
//! Metrics come through the `metrics` facade from wherever they happen (`solarman_*` from the
//! listener and spool, `deyehard_http_*` from the server's middleware); the database pool
//! gauges are read from the store at every scrape.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deyehard_store::{Maintenance, Store};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::web::Json;
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, Server, get};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Histogram buckets of request durations, seconds: an OpenDTU gives up after ~5 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Name of the request duration histogram (the server's middleware records it).
pub const HTTP_DURATION: &str = "deyehard_http_request_duration_seconds";

/// Name of the histogram of frames written per collector commit (the group commit batches
/// frames that arrive together; see `StoreSink`).
pub const COMMIT_BATCH_FRAMES: &str = "solarman_commit_batch_frames";

/// Histogram buckets of [`COMMIT_BATCH_FRAMES`], up to the largest batch.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Name of the histogram of pushes written per ingest transaction (the server's group commit
/// of OpenDTU and Victron pushes; see its `batch` module).
pub const INGEST_BATCH_PUSHES: &str = "deyehard_ingest_batch_pushes";

/// Name of the counter of stored readings, labelled by `source` (`opendtu`, `victron`,
/// `solarman`, `solarman_buffered`).
pub const READINGS_INGESTED: &str = "deyehard_readings_ingested_total";

/// The process's Prometheus handle; the first call installs the recorder. If another
/// recorder was installed before (an embedding program's), this handle renders only what it
/// recorded itself, which is nothing.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), LATENCY_BUCKETS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(COMMIT_BATCH_FRAMES.to_owned()),
                    BATCH_BUCKETS,
                )
            })
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(INGEST_BATCH_PUSHES.to_owned()),
                    BATCH_BUCKETS,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics will be empty");
        }
        metrics::gauge!("deyehard_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    })
}

/// Further stores of the process whose pools `/metrics` reports, each under a name of its own
/// (the server's pool for pushed readings).
pub type NamedPools = Vec<(&'static str, Arc<Store>)>;

/// The Prometheus text of everything recorded, with the pool gauges of `store` and of `named`
/// refreshed.
pub fn render_metrics(store: &Store, named: &[(&'static str, Arc<Store>)]) -> String {
    let handle = metrics_handle();
    record_pool_gauges(store, None);
    for (name, other) in named {
        record_pool_gauges(other, Some(name));
    }
    handle.run_upkeep();
    handle.render()
}

/// Sets the pool gauges of `store`, its pools named `name` instead of their own when given.
fn record_pool_gauges(store: &Store, name: Option<&'static str>) {
    for pool in store.pool_stats() {
        let label = name.unwrap_or(pool.name);
        let idle = pool.idle as f64;
        let busy = (f64::from(pool.size) - idle).max(0.0);
        metrics::gauge!("deyehard_db_pool_connections", "pool" => label, "state" => "idle")
            .set(idle);
        metrics::gauge!("deyehard_db_pool_connections", "pool" => label, "state" => "busy")
            .set(busy);
        metrics::gauge!("deyehard_db_pool_max_connections", "pool" => label)
            .set(f64::from(pool.max));
    }
}

/// `GET /metrics`: Prometheus text format.
pub fn metrics_endpoint(store: Arc<Store>, named: NamedPools) -> impl Endpoint<Output = Response> {
    poem::endpoint::make_sync(move |_| {
        render_metrics(&store, &named)
            .with_content_type("text/plain; version=0.0.4; charset=utf-8")
            .into_response()
    })
}

/// `GET /healthz`: the process is alive.
pub fn healthz_endpoint() -> impl Endpoint<Output = Response> {
    poem::endpoint::make_sync(|_| "ok".into_response())
}

/// `GET /readyz`: 200 when the database answers and its schema is current, else 503.
pub fn readyz_endpoint(store: Arc<Store>) -> impl Endpoint<Output = Response> {
    poem::endpoint::make(move |_| {
        let store = store.clone();
        async move {
            match store.ping().await {
                Ok(()) => Json(json!({"status": "ready"})).into_response(),
                Err(e) => {
                    tracing::warn!(error = %e, "readiness check failed");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Json(json!({"status": "unavailable", "reason": e.to_string()})),
                    )
                        .into_response()
                }
            }
        }
    })
}

/// The three endpoints, for a listener of their own.
pub fn routes(store: Arc<Store>, named: NamedPools) -> Route {
    Route::new()
        .at("/metrics", get(metrics_endpoint(store.clone(), named)))
        .at("/healthz", get(healthz_endpoint()))
        .at("/readyz", get(readyz_endpoint(store)))
}

/// Serves [`routes`] on `listener` until `shutdown` resolves.
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    named: NamedPools,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    let app = routes(store, named).map_to_response();
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(5)))
        .await
}

/// Where to reach a service listening on `addr` from the same host: the loopback address
/// when it listens on all addresses.
pub fn local_address(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// Why a health probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No connection, or no answer in time.
    #[error("{addr}: {source}")]
    Io {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An answer that is not `200`.
    #[error("{addr}{path} answered {status:?}")]
    Status {
        /// Where.
        addr: SocketAddr,
        /// The path asked.
        path: String,
        /// The status line.
        status: String,
    },
}

/// Connects to `addr` and, with a `path`, asks `GET path` over HTTP/1.0 and expects `200`.
/// Everything within five seconds.
///
/// # Errors
/// See [`ProbeError`].
pub async fn probe(addr: SocketAddr, path: Option<&str>) -> Result<(), ProbeError> {
    let io = |source| ProbeError::Io { addr, source };
    let timeout = |_| std::io::Error::from(std::io::ErrorKind::TimedOut);
    let work = async {
        let mut stream = TcpStream::connect(addr).await?;
        let Some(path) = path else {
            return Ok(None);
        };
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = [0u8; 64];
        let mut len = 0;
        while len < head.len() {
            let n = stream.read(&mut head[len..]).await?;
            if n == 0 {
                break;
            }
            len += n;
            if head[..len].contains(&b'\n') {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head[..len]);
        Ok(Some(text.lines().next().unwrap_or_default().to_owned()))
    };
    let status_line = tokio::time::timeout(Duration::from_secs(5), work)
        .await
        .map_err(timeout)
        .map_err(io)?
        .map_err(io)?;
    match (status_line, path) {
        (None, _) => Ok(()),
        (Some(line), _) if line.split_whitespace().nth(1) == Some("200") => Ok(()),
        (Some(line), path) => Err(ProbeError::Status {
            addr,
            path: path.unwrap_or_default().to_owned(),
            status: line,
        }),
    }
}

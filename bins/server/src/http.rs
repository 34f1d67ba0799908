//! HTTP routes of the server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deyehard_collector::ops;
use deyehard_store::Store;
use poem::listener::TcpAcceptor;
use poem::{EndpointExt, Route, Server, get};
use tokio::net::TcpListener;

use crate::accounts::Accounts;
use crate::api::{self, ApiKeys, IngestOptions};
use crate::batch::{Batcher, WriterRuntime};
use crate::security::{CsrfGuard, SecurityHeaders};
use poem::middleware::CookieJarManager;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<Store>,
    /// The account flows: secrets, mail, rate limits, hashing.
    pub accounts: Accounts,
    /// API key resolution (cache, rate limit) for device pushes.
    pub api_keys: Arc<ApiKeys>,
    /// Group commit of pushed readings.
    pub batcher: Arc<Batcher>,
    /// The port Solarman loggers connect to, shown in the connection help: the collector's
    /// port when it runs in this process, else 10000 (the loggers' default).
    pub collector_port: u16,
    /// Whether the web listener serves `/metrics` (off when it has a listener of its own).
    pub serve_metrics: bool,
    /// Pools of the process besides the store's, reported by `/metrics` (the batch writers' own).
    pub named_pools: ops::NamedPools,
}

impl AppState {
    /// Wraps the store, the account service and the ingestion pipeline built from `ingest`.
    pub fn new(store: Arc<Store>, accounts: Accounts, ingest: &IngestOptions) -> Self {
        Self {
            api_keys: Arc::new(ApiKeys::new(store.clone(), &ingest.api_keys)),
            batcher: Batcher::new(
                store.clone(),
                ingest.max_batch_readings,
                writers_per_tenant(&store, ingest),
            ),
            collector_port: 10000,
            accounts,
            store,
            serve_metrics: true,
            named_pools: Vec::new(),
        }
    }

    /// The same state with the pushes' batch writers on `runtime` (see [`WriterRuntime`]).
    pub fn with_writer_runtime(mut self, runtime: &WriterRuntime, ingest: &IngestOptions) -> Self {
        self.batcher = Batcher::on(
            runtime,
            ingest.max_batch_readings,
            writers_per_tenant(&self.store, ingest),
        );
        self.named_pools = runtime.named_pools();
        self
    }

    /// The same state without `/metrics` on the web listener.
    pub fn without_metrics(mut self) -> Self {
        self.serve_metrics = false;
        self
    }
}

/// Concurrent write transactions per tenant: SQLite has one writer connection.
fn writers_per_tenant(store: &Store, ingest: &IngestOptions) -> usize {
    match store {
        Store::Sqlite(_) => 1,
        Store::Postgres(_) => ingest.writers_per_tenant,
    }
}

/// The whole HTTP application. Nothing on the API redirects (devices do not follow
/// redirects); the account pages do. The outermost layer ([`crate::metrics::Observe`]) gives
/// every request an id, a log line and its metrics.
pub fn app(state: AppState) -> impl poem::Endpoint {
    let api = api::service();
    let settings = state.accounts.settings();
    let csrf = CsrfGuard::new(state.accounts.secrets().csrf_key, settings.cookie_secure);
    let headers = SecurityHeaders {
        hsts: settings.cookie_secure,
    };
    let mut routes = crate::pages::add_routes(Route::new())
        .at("/healthz", get(ops::healthz_endpoint()))
        .at("/readyz", get(ops::readyz_endpoint(state.store.clone())));
    if state.serve_metrics {
        routes = routes.at(
            "/metrics",
            get(ops::metrics_endpoint(
                state.store.clone(),
                state.named_pools.clone(),
            )),
        );
    }
    ops::metrics_handle();
    routes
        .at("/openapi.json", api.spec_endpoint())
        .nest("/docs", api.swagger_ui())
        .nest(api::API_PREFIX, api)
        .nest("/static", crate::assets::routes())
        .with(CookieJarManager::new())
        .with(crate::pages::LangCookie)
        .with(csrf)
        .with(headers)
        .with(crate::metrics::Observe)
        .data(state)
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app(state), shutdown, Some(Duration::from_secs(10)))
        .await
}

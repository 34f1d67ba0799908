//! HTTP routes of the server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deyehard_store::{Maintenance, Store};
use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Route, Server, get, handler};
use serde_json::json;
use tokio::net::TcpListener;

use crate::accounts::Accounts;
use crate::api::{self, ApiKeys, IngestOptions};
use crate::batch::Batcher;
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
}

impl AppState {
    /// Wraps the store, the account service and the ingestion pipeline built from `ingest`.
    pub fn new(store: Arc<Store>, accounts: Accounts, ingest: &IngestOptions) -> Self {
        Self {
            api_keys: Arc::new(ApiKeys::new(store.clone(), &ingest.api_keys)),
            batcher: Batcher::new(store.clone(), ingest.max_batch_readings),
            collector_port: 10000,
            accounts,
            store,
        }
    }
}

/// The whole HTTP application. Nothing on the API redirects (devices do not follow
/// redirects); the account pages do.
pub fn app(state: AppState) -> impl poem::Endpoint {
    let api = api::service();
    let settings = state.accounts.settings();
    let csrf = CsrfGuard::new(state.accounts.secrets().csrf_key, settings.cookie_secure);
    let headers = SecurityHeaders {
        hsts: settings.cookie_secure,
    };
    crate::pages::add_routes(Route::new())
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/openapi.json", api.spec_endpoint())
        .nest("/docs", api.swagger_ui())
        .nest(api::API_PREFIX, api)
        .nest("/static", crate::assets::routes())
        .with(CookieJarManager::new())
        .with(crate::pages::LangCookie)
        .with(csrf)
        .with(headers)
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

/// The process is alive.
#[handler]
fn healthz() -> &'static str {
    "ok"
}

/// The database is reachable and migrated.
#[handler]
async fn readyz(state: Data<&AppState>) -> poem::Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

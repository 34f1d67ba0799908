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

use crate::api::{self, ApiKeys, IngestOptions};
use crate::batch::Batcher;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<Store>,
    /// API key resolution (cache, rate limit) for device pushes.
    pub api_keys: Arc<ApiKeys>,
    /// Group commit of pushed readings.
    pub batcher: Arc<Batcher>,
}

impl AppState {
    /// Wraps the store, with the default ingestion options.
    pub fn new(store: Arc<Store>) -> Self {
        Self::with_options(store, &IngestOptions::default())
    }

    /// Wraps the store, with these ingestion options.
    pub fn with_options(store: Arc<Store>, ingest: &IngestOptions) -> Self {
        Self {
            api_keys: Arc::new(ApiKeys::new(store.clone(), &ingest.api_keys)),
            batcher: Batcher::new(store.clone(), ingest.max_batch_readings),
            store,
        }
    }
}

/// The whole HTTP application. Nothing here redirects: devices do not follow redirects.
pub fn app(state: AppState) -> impl poem::Endpoint {
    let api = api::service();
    Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/openapi.json", api.spec_endpoint())
        .nest("/docs", api.swagger_ui())
        .nest(api::API_PREFIX, api)
        .nest("/static", crate::assets::routes())
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

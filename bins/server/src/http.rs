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
use crate::api::admin::AdminApi;
use crate::api::auth::AuthApi;
use crate::api::keys::KeysApi;
use crate::api::me::MeApi;
use crate::security::{CsrfGuard, SecurityHeaders};
use poem::middleware::CookieJarManager;
use poem_openapi::OpenApiService;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<Store>,
    /// The account flows: secrets, mail, rate limits, hashing.
    pub accounts: Accounts,
}

impl AppState {
    /// Wraps the store and the account service.
    pub fn new(store: Arc<Store>, accounts: Accounts) -> Self {
        Self { store, accounts }
    }
}

/// The accounts part of the JSON API, served under `/api`.
fn accounts_api(state: &AppState) -> OpenApiService<(AuthApi, MeApi, KeysApi, AdminApi), ()> {
    OpenApiService::new(
        (AuthApi, MeApi, KeysApi, AdminApi),
        "deyehard",
        env!("CARGO_PKG_VERSION"),
    )
    .server(format!("{}/api", state.accounts.settings().base_url))
}

/// The whole HTTP application.
pub fn app(state: AppState) -> impl poem::Endpoint {
    let api = accounts_api(&state);
    let settings = state.accounts.settings();
    let csrf = CsrfGuard::new(state.accounts.secrets().csrf_key, settings.cookie_secure);
    let headers = SecurityHeaders {
        hsts: settings.cookie_secure,
    };
    crate::pages::add_routes(Route::new())
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/openapi.json", api.spec_endpoint())
        .nest("/api", api)
        .with(CookieJarManager::new())
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

//! The JSON API (poem-openapi), mounted under `/api`, documented at `/openapi.json` and
//! browsable at `/docs`.
//!
//! [`Api`] lists the API structs: each area of the API (ingestion and accounts now; readings
//! and energy later) adds its own struct to it. The committed `bins/server/openapi.json` is the
//! generated document; a test fails when it is out of date (`UPDATE_OPENAPI=1 cargo test -p
//! deyehard-server openapi` rewrites it).

pub mod admin;
pub mod admin_ops;
pub mod apikey_auth;
pub mod auth;
mod auth_flows;
pub mod charts;
pub mod dashboard;
mod dashboard_views;
pub mod ingest;
mod ingest_schema;
pub mod inverter_input;
pub mod inverters;
pub mod keys;
pub mod me;
pub mod ranges;
pub mod readings;
mod reply;

use poem_openapi::{OpenApiService, Tags};

use admin::AdminApi;
use auth::AuthApi;
use dashboard::DashboardApi;
use inverters::InvertersApi;
use keys::KeysApi;
use me::MeApi;
use readings::ReadingsApi;

pub use apikey_auth::{ApiKeyOptions, ApiKeys, DeviceAuth};
pub use ingest::{IngestApi, IngestError, MAX_PUSH_BYTES};

/// Tunables of the push endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOptions {
    /// API key cache and per-key rate limit.
    pub api_keys: ApiKeyOptions,
    /// Most readings written in one transaction by the group commit.
    pub max_batch_readings: usize,
    /// Most concurrent write transactions of one tenant's pushes on PostgreSQL (SQLite has one
    /// writer connection: always 1 there). One by default: a transaction costs the database
    /// (and the server) a fixed share, about ten rows' worth, besides its rows, and a second
    /// writer halves the batches under load (measured on two cores, 64 clients of one tenant:
    /// 13 instead of 32 pushes per batch, and about a third more CPU per push). Two overlap
    /// one batch's round trips with the next batch's, which may pay where the database has
    /// cores to spare and the round trips are long. The `ingest_writers` setting.
    pub writers_per_tenant: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            api_keys: ApiKeyOptions::default(),
            max_batch_readings: 512,
            writers_per_tenant: 1,
        }
    }
}

/// Where the API is mounted.
pub const API_PREFIX: &str = "/api";

/// Groups of operations in the documentation.
#[derive(Tags)]
pub enum ApiTags {
    /// Readings pushed by devices (OpenDTU, Victron), authenticated by an API key.
    Ingestion,
    /// Signup, email verification, login tokens and password reset.
    Auth,
    /// The signed-in user's account and API keys.
    Account,
    /// Administration (superusers only, re-checked on every request).
    Admin,
    /// The signed-in user's inverters: add, list with live status, change, delete.
    Inverters,
    /// Readings of an inverter: JSON pages and CSV exports.
    Readings,
    /// Live status, energy and chart series of the caller's inverters.
    Dashboard,
}

/// Every API struct of the server.
pub type Api = (
    IngestApi,
    AuthApi,
    MeApi,
    KeysApi,
    AdminApi,
    InvertersApi,
    ReadingsApi,
    DashboardApi,
);

/// The OpenAPI service: nest it at [`API_PREFIX`].
pub fn service() -> OpenApiService<Api, ()> {
    let apis = (
        IngestApi,
        AuthApi,
        MeApi,
        KeysApi,
        AdminApi,
        InvertersApi,
        ReadingsApi,
        DashboardApi,
    );
    OpenApiService::new(apis, "deyehard", env!("CARGO_PKG_VERSION"))
        .description(
            "Monitoring for solar inverters. Devices push readings with an API key of their \
             owner's account; people use the session cookie of the pages or a bearer token \
             from `POST /auth/token`. Errors are `{\"error\": code, \"message\": text}`.",
        )
        .server(API_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed document matches the code (set `UPDATE_OPENAPI=1` to rewrite it).
    #[test]
    fn openapi_document_is_committed() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let generated = format!("{}\n", service().spec());
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "bins/server/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p deyehard-server openapi`"
        );
    }

    #[test]
    fn both_push_paths_accept_either_key_scheme() {
        let spec: serde_json::Value = serde_json::from_str(&service().spec()).unwrap();
        for path in ["/opendtu/measurements", "/victron/measurements"] {
            let op = &spec["paths"][path]["post"];
            let statuses: Vec<&str> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            for status in [
                "201", "207", "404", "401", "413", "415", "422", "429", "503",
            ] {
                assert!(
                    statuses.contains(&status),
                    "{path}: {status} in {statuses:?}"
                );
            }
            assert_eq!(
                op["security"],
                serde_json::json!([{"ApiKeyHeader": []}, {"ApiKeyBearer": []}])
            );
            let retry = &op["responses"]["429"]["headers"]["RETRY-AFTER"];
            assert!(retry.is_object(), "{path}: 429 documents Retry-After");
        }
        let schemes = &spec["components"]["securitySchemes"];
        assert_eq!(schemes["ApiKeyHeader"]["name"], "X-API-Key");
        assert_eq!(schemes["ApiKeyBearer"]["scheme"], "bearer");
    }
}

//! The OpenDTU push as a poem endpoint for your own application (feature `poem`): mount
//! [`OpenDtuEndpoint`] at any path and give it a [`PushHandler`] — your authentication and your
//! storage. The endpoint does the HTTP part the way the deyehard server does:
//!
//! | step | failure |
//! |---|---|
//! | API key from `X-API-Key` or `Authorization: Bearer`, checked by [`PushHandler::authenticate`] | 401 |
//! | `Content-Type` JSON (also: none, `text/plain`, `text/json`, `application/*+json`) | 415 |
//! | body at most 64 KiB (a declared `Content-Length` is checked before reading) | 413 |
//! | [`parse`](crate::parse) and [`validate_with`](crate::validate_with) | 422, the message names the field |
//! | [`PushHandler::store`] the readings | 429 / 503 with `Retry-After`, 500 |
//!
//! and answers 201 (all stored), 207 (some) or 404 (none of the serials known) with the
//! original service's [`PushResponse`] body. Errors are `{"error": code, "message": text}`.
//! It never redirects (OpenDTU does not follow redirects).
//!
//! ```
//! use deyehard_opendtu::endpoint::{OpenDtuEndpoint, PushError, PushHandler};
//! use deyehard_opendtu::{InverterReading, InverterResult, Push};
//! use deyehard_core::InverterId;
//! use poem::{Route, post};
//!
//! struct Accept;
//!
//! impl PushHandler for Accept {
//!     type Tenant = ();
//!     async fn authenticate(&self, key: &str) -> Result<(), PushError> {
//!         if key == "let-me-in" { Ok(()) } else { Err(PushError::Unauthorized) }
//!     }
//!     async fn store(&self, _: (), _: &Push, readings: Vec<InverterReading>)
//!         -> Result<Vec<InverterResult>, PushError> {
//!         Ok(readings.into_iter()
//!             .map(|r| InverterResult::ok(r.serial, InverterId::new(1), r.reading.power_ac_w))
//!             .collect())
//!     }
//! }
//!
//! let app = Route::new().at("/api/opendtu/measurements", post(OpenDtuEndpoint::new(Accept)));
//! # let _ = app;
//! ```

use std::future::Future;
use std::sync::Arc;

use chrono::Utc;
use poem::error::ReadBodyError;
use poem::http::StatusCode;
use poem::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use poem::{Endpoint, Request, Response};
use serde::{Deserialize, Serialize};

use crate::{InverterReading, InverterResult, Limits, Push, PushResponse};

/// Largest accepted push body by default: 64 KiB (a DTU with 10 inverters × 6 inputs sends
/// ~15 kB).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// Your side of the endpoint: who is pushing, and where the readings go.
pub trait PushHandler: Send + Sync + 'static {
    /// Whatever your authentication returns (a user id, a tenant scope, …).
    type Tenant: Send;

    /// Resolves the API key the device sent. [`PushError::Unauthorized`] answers 401.
    fn authenticate(
        &self,
        api_key: &str,
    ) -> impl Future<Output = Result<Self::Tenant, PushError>> + Send;

    /// Stores the readings of a valid push (in push order, converted by
    /// [`Push::readings`]) and returns one result per reading: [`InverterResult::ok`] for a
    /// stored (or already stored) reading, [`InverterResult::error`] for a serial the tenant
    /// does not have.
    fn store(
        &self,
        tenant: Self::Tenant,
        push: &Push,
        readings: Vec<InverterReading>,
    ) -> impl Future<Output = Result<Vec<InverterResult>, PushError>> + Send;
}

/// Why a [`PushHandler`] refused a push.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The key is missing, unknown or revoked (401).
    #[error("a valid API key is required (X-API-Key or Authorization: Bearer)")]
    Unauthorized,
    /// The key exceeded its budget (429 with `Retry-After`).
    #[error("too many requests; retry after {retry_after_s} s")]
    TooManyRequests {
        /// Seconds to wait.
        retry_after_s: u64,
    },
    /// The storage cannot be reached; nothing was stored (503 with `Retry-After`).
    #[error("the storage is unavailable; retry after {retry_after_s} s")]
    Unavailable {
        /// Seconds to wait.
        retry_after_s: u64,
    },
    /// Anything else (500). The text is not sent to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `unsupported_media_type`, `payload_too_large`,
    /// `bad_request`, `unprocessable`, `rate_limited`, `unavailable` or `internal`.
    pub error: String,
    /// A sentence for people, naming the field for 422.
    pub message: String,
}

/// The OpenDTU push endpoint over your [`PushHandler`].
pub struct OpenDtuEndpoint<H> {
    handler: Arc<H>,
    limits: Limits,
    max_body: usize,
}

impl<H: PushHandler> OpenDtuEndpoint<H> {
    /// The endpoint with the default [`Limits`] and body limit ([`DEFAULT_MAX_BODY`]).
    pub fn new(handler: H) -> Self {
        Self::from_arc(Arc::new(handler))
    }

    /// The same, for a handler you share with other parts of your program.
    pub fn from_arc(handler: Arc<H>) -> Self {
        Self {
            handler,
            limits: Limits::default(),
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Other validation limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Another body limit, in bytes.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    async fn answer(&self, mut req: Request) -> Result<PushResponse, Failure> {
        let key = api_key(&req).ok_or(Failure::Handler(PushError::Unauthorized))?;
        let tenant = self
            .handler
            .authenticate(&key)
            .await
            .map_err(Failure::Handler)?;
        let body = read_body(&mut req, self.max_body).await?;
        let push = crate::parse(&body).map_err(|e| Failure::Unprocessable(e.to_string()))?;
        crate::validate_with(&push, Utc::now(), &self.limits)
            .map_err(|e| Failure::Unprocessable(e.to_string()))?;
        let readings = push.readings();
        let results = self
            .handler
            .store(tenant, &push, readings)
            .await
            .map_err(Failure::Handler)?;
        Ok(PushResponse::new(&push, results))
    }
}

impl<H: PushHandler> Endpoint for OpenDtuEndpoint<H> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        Ok(match self.answer(req).await {
            Ok(response) => {
                let status = match response.outcome() {
                    crate::Outcome::AllStored => StatusCode::CREATED,
                    crate::Outcome::SomeStored => StatusCode::MULTI_STATUS,
                    crate::Outcome::NoneStored => StatusCode::NOT_FOUND,
                };
                json(status, &response)
            }
            Err(failure) => failure.into_response(),
        })
    }
}

/// The key from `X-API-Key`, or from `Authorization: Bearer …`.
fn api_key(req: &Request) -> Option<String> {
    let key = req.header("x-api-key").or_else(|| {
        let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token)
    })?;
    let key = key.trim();
    (!key.is_empty()).then(|| key.to_owned())
}

/// Whether a request `Content-Type` may carry a JSON push: JSON, or what simple HTTP clients
/// send for a JSON string (none, `text/plain`, `text/json`).
pub fn accepts_content_type(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return true;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/').unwrap_or((essence.as_str(), ""));
    essence.is_empty()
        || matches!(
            (kind, subtype),
            ("application", "json") | ("text", "json") | ("text", "plain")
        )
        || (kind == "application" && subtype.ends_with("+json"))
}

async fn read_body(req: &mut Request, max: usize) -> Result<Vec<u8>, Failure> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)").to_owned());
    if !accepts_content_type(content_type.as_deref()) {
        return Err(Failure::MediaType(content_type.unwrap_or_default()));
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| usize::try_from(len).map_or(true, |len| len > max)) {
        return Err(Failure::TooLarge(max));
    }
    match req.take_body().into_bytes_limit(max).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(ReadBodyError::PayloadTooLarge) => Err(Failure::TooLarge(max)),
        Err(e) => Err(Failure::BadRequest(e.to_string())),
    }
}

/// Everything that ends a push early.
enum Failure {
    Handler(PushError),
    MediaType(String),
    TooLarge(usize),
    BadRequest(String),
    Unprocessable(String),
}

impl Failure {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            Self::MediaType(ct) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {ct:?} is not accepted: send the push as application/json"),
            ),
            Self::TooLarge(max) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {max} bytes"),
            ),
            Self::BadRequest(e) => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the body could not be read: {e}"),
            ),
            Self::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", m),
            Self::Handler(e) => return handler_error(&e),
        };
        json(
            status,
            &ErrorBody {
                error: code.to_owned(),
                message,
            },
        )
    }
}

fn handler_error(e: &PushError) -> Response {
    let (status, code, retry) = match e {
        PushError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
        PushError::TooManyRequests { retry_after_s } => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            Some(*retry_after_s),
        ),
        PushError::Unavailable { retry_after_s } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            Some(*retry_after_s),
        ),
        PushError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
    };
    let message = match e {
        PushError::Internal(_) => "an internal error occurred".to_owned(),
        other => other.to_string(),
    };
    let mut response = json(
        status,
        &ErrorBody {
            error: code.to_owned(),
            message,
        },
    );
    if let Some(seconds) = retry {
        response.headers_mut().insert(RETRY_AFTER, seconds.into());
    }
    response
}

fn json(status: StatusCode, body: &impl Serialize) -> Response {
    // Serializing these plain structs cannot fail; an empty object is the fallback anyway.
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(text)
}

#[cfg(test)]
mod tests;

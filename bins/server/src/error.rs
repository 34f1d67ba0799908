//! The one HTTP error type of the server and its mapping to status codes.
//!
//! The internal cause of a 5xx is logged, never sent: clients get a stable code and a message
//! written for them.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use serde::Serialize;

/// What a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, unknown or revoked credentials (one answer for all, so nothing can be probed).
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// Authenticated, but not allowed.
    #[error("not allowed")]
    Forbidden,
    /// Not allowed, with a message for the user (e.g. "confirm your email first").
    #[error("{0}")]
    NotAllowed(String),
    /// Nothing with this id for this tenant (another tenant's row looks the same).
    #[error("not found")]
    NotFound,
    /// The request is well-formed but its content is not acceptable.
    #[error("{0}")]
    Unprocessable(String),
    /// The change conflicts with existing data.
    #[error("{0}")]
    Conflict(String),
    /// Too many requests; retry after the given seconds.
    #[error("too many requests, retry in {retry_after_s} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after_s: u64,
    },
    /// The database is unreachable; retry later.
    #[error("the service is temporarily unavailable, retry in {retry_after_s} s")]
    Unavailable {
        /// Seconds to wait.
        retry_after_s: u64,
    },
    /// A bug or a corrupt row: logged with its cause.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Body of every error response.
#[derive(Debug, Serialize, poem_openapi::Object)]
pub struct ErrorBody {
    /// Stable machine-readable code (`unauthorized`, `not_found`, …).
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::NotAllowed(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code in the body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden | Self::NotAllowed(_) => "forbidden",
            Self::NotFound => "not_found",
            Self::Unprocessable(_) => "unprocessable",
            Self::Conflict(_) => "conflict",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The body sent to the client.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code().to_owned(),
            message: self.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_s } | Self::Unavailable { retry_after_s } => {
                Some(*retry_after_s)
            }
            _ => None,
        }
    }
}

impl From<deyehard_store::StoreError> for ApiError {
    fn from(err: deyehard_store::StoreError) -> Self {
        use deyehard_store::StoreError;
        match err {
            StoreError::NotFound => Self::NotFound,
            StoreError::Forbidden => Self::Forbidden,
            StoreError::Conflict(name) => Self::Conflict(conflict_message(&name)),
            StoreError::Invalid(message) => Self::Unprocessable(message),
            StoreError::Unavailable(_) => Self::Unavailable { retry_after_s: 5 },
            StoreError::Backend(cause) => Self::Internal(cause),
        }
    }
}

/// A message for a unique-constraint conflict, by constraint name.
pub fn conflict_message(constraint: &str) -> String {
    use deyehard_store::constraint;
    match constraint {
        constraint::USER_EMAIL => "this email address is already in use".to_owned(),
        constraint::INVERTER_SERIAL => "you already have an inverter with this serial".to_owned(),
        constraint::INVERTER_LOGGER_SERIAL => {
            "this logger serial is already claimed; an administrator can resolve the conflict"
                .to_owned()
        }
        _ => "this conflicts with existing data".to_owned(),
    }
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn as_response(&self) -> Response {
        if let Self::Internal(cause) = self {
            tracing::error!(error = %cause, "internal error");
        }
        let mut response = (self.status(), poem::web::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after()
            && let Ok(value) = seconds.to_string().parse()
        {
            response.headers_mut().insert("retry-after", value);
        }
        response
    }
}

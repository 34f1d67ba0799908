//! Answers of the inverter and reading endpoints: the success variant of each endpoint plus
//! every error it or its extractors can give, each documented and each with the
//! `{"error", "message"}` body of [`ApiError`] — also a malformed parameter or body (400) and a
//! missing session (401), which poem-openapi would otherwise answer in plain text.

use poem::http::StatusCode;

use crate::error::{ApiError, ErrorBody};

/// Why a request failed before or inside its handler.
#[derive(Debug)]
pub enum Failure {
    /// A parameter or body poem-openapi could not read.
    BadRequest(String),
    /// Anything else.
    Api(ApiError),
}

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        Self::Api(err)
    }
}

impl Failure {
    /// The status, the body and the `Retry-After` seconds of the answer.
    pub fn into_parts(self) -> (StatusCode, ErrorBody, Option<u64>) {
        match self {
            Self::BadRequest(message) => {
                let body = ErrorBody {
                    error: "bad_request".to_owned(),
                    message,
                };
                (StatusCode::BAD_REQUEST, body, None)
            }
            Self::Api(err) => {
                if let ApiError::Internal(cause) = &err {
                    tracing::error!(error = %cause, "internal error");
                }
                let retry = match err {
                    ApiError::RateLimited { retry_after_s }
                    | ApiError::Unavailable { retry_after_s } => Some(retry_after_s),
                    _ => None,
                };
                (err.status(), err.body(), retry)
            }
        }
    }
}

/// The bad-request handler of the reply enums: an extractor's error as a [`Failure`] (the
/// session check fails with an [`ApiError`]; poem-openapi's own errors are 400s, or 401 for
/// a missing credential).
pub fn rejected<R: From<Failure>>(err: poem::Error) -> R {
    let failure = match err.downcast::<ApiError>() {
        Ok(api) => Failure::Api(api),
        Err(err) if err.status() == StatusCode::UNAUTHORIZED => {
            Failure::Api(ApiError::Unauthorized)
        }
        Err(err) => Failure::BadRequest(err.to_string()),
    };
    failure.into()
}

/// Declares a reply enum: the success variants given, then every error variant, with
/// `From<Failure>` and `From<ApiError>`.
macro_rules! reply {
    (
        $(#[$meta:meta])*
        pub enum $name:ident $(<$t:ident>)? { $($success:tt)* }
    ) => {
        $(#[$meta])*
        #[derive(poem_openapi::ApiResponse)]
        #[oai(bad_request_handler = "crate::api::reply::rejected")]
        pub enum $name $(<$t: poem_openapi::types::ToJSON + Send + Sync>)? {
            $($success)*
            /// A parameter or the body has the wrong shape or type.
            #[oai(status = 400)]
            BadRequest(poem_openapi::payload::Json<crate::error::ErrorBody>),
            /// No valid session: log in (cookie) or send `Authorization: Bearer <token>`.
            #[oai(status = 401)]
            Unauthorized(poem_openapi::payload::Json<crate::error::ErrorBody>),
            /// Not allowed, e.g. adding inverters before the email address is confirmed.
            #[oai(status = 403)]
            Forbidden(poem_openapi::payload::Json<crate::error::ErrorBody>),
            /// No inverter with this id among the caller's (another user's looks the same).
            #[oai(status = 404)]
            NotFound(poem_openapi::payload::Json<crate::error::ErrorBody>),
            /// A serial is taken: the message names the field (`serial`, `logger_serial`).
            #[oai(status = 409)]
            Conflict(poem_openapi::payload::Json<crate::error::ErrorBody>),
            /// A value is not acceptable: the message names the field.
            #[oai(status = 422)]
            Unprocessable(poem_openapi::payload::Json<crate::error::ErrorBody>),
            /// Too many requests; retry after `Retry-After` seconds.
            #[oai(status = 429)]
            TooManyRequests(
                poem_openapi::payload::Json<crate::error::ErrorBody>,
                #[oai(header = "Retry-After")] u64,
            ),
            /// A fault of the server (logged).
            #[oai(status = 500)]
            Internal(poem_openapi::payload::Json<crate::error::ErrorBody>),
            /// The database is unreachable; retry after `Retry-After` seconds.
            #[oai(status = 503)]
            Unavailable(
                poem_openapi::payload::Json<crate::error::ErrorBody>,
                #[oai(header = "Retry-After")] u64,
            ),
        }

        impl $(<$t: poem_openapi::types::ToJSON + Send + Sync>)? From<crate::api::reply::Failure>
            for $name $(<$t>)?
        {
            fn from(failure: crate::api::reply::Failure) -> Self {
                use poem::http::StatusCode;
                use poem_openapi::payload::Json;
                let (status, body, retry) = failure.into_parts();
                let retry = retry.unwrap_or(1);
                match status {
                    StatusCode::BAD_REQUEST => Self::BadRequest(Json(body)),
                    StatusCode::UNAUTHORIZED => Self::Unauthorized(Json(body)),
                    StatusCode::FORBIDDEN => Self::Forbidden(Json(body)),
                    StatusCode::NOT_FOUND => Self::NotFound(Json(body)),
                    StatusCode::CONFLICT => Self::Conflict(Json(body)),
                    StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable(Json(body)),
                    StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests(Json(body), retry),
                    StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(Json(body), retry),
                    _ => Self::Internal(Json(body)),
                }
            }
        }

        impl $(<$t: poem_openapi::types::ToJSON + Send + Sync>)? From<crate::error::ApiError>
            for $name $(<$t>)?
        {
            fn from(err: crate::error::ApiError) -> Self {
                crate::api::reply::Failure::Api(err).into()
            }
        }
    };
}

pub(crate) use reply;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extractor_errors_keep_their_meaning() {
        let from_session: Failure = rejected(ApiError::Unauthorized.into());
        assert!(matches!(from_session, Failure::Api(ApiError::Unauthorized)));
        let unavailable: Failure = rejected(ApiError::Unavailable { retry_after_s: 5 }.into());
        let (status, body, retry) = unavailable.into_parts();
        assert_eq!(
            (status.as_u16(), body.error.as_str(), retry),
            (503, "unavailable", Some(5))
        );
        let missing = poem::Error::from_string("no credential", StatusCode::UNAUTHORIZED);
        assert!(matches!(
            rejected::<Failure>(missing),
            Failure::Api(ApiError::Unauthorized)
        ));
        let shape = poem::Error::from_string("missing field `name`", StatusCode::BAD_REQUEST);
        let (status, body, _) = rejected::<Failure>(shape).into_parts();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body.message, "missing field `name`");
    }
}

//! Request observation: every request gets an id (the `x-request-id` response header, and a
//! field of the request's log span), one log line when it ends, and two metrics labelled by
//! the matched route pattern (`/api/inverters/:id`, never the raw path, so ids cannot explode
//! the number of series):
//!
//! - `deyehard_http_requests_total{method, route, status}`
//! - `deyehard_http_request_duration_seconds{method, route}` (histogram)
//!
//! Handlers add context to the span (`dtu_serial` for pushes) with [`record_dtu_serial`], and
//! count what they stored with [`readings_ingested`].

use std::time::Instant;

use deyehard_collector::ops::{HTTP_DURATION, READINGS_INGESTED};
use deyehard_core::Source;
use poem::PathPattern;
use poem::http::{HeaderValue, Method};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use rand::RngExt;
use tracing::Instrument;

/// The response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The middleware: put it outside everything that may fail, so every response is seen.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observe;

impl<E: Endpoint> Middleware<E> for Observe {
    type Output = ObserveEndpoint<E>;
    fn transform(&self, inner: E) -> Self::Output {
        ObserveEndpoint { inner }
    }
}

/// The endpoint of [`Observe`].
#[derive(Debug)]
pub struct ObserveEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for ObserveEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let id = request_id(&req);
        let method = method_label(req.method());
        let span = tracing::info_span!(
            "request",
            id = %id,
            method,
            route = tracing::field::Empty,
            dtu_serial = tracing::field::Empty,
        );
        let start = Instant::now();
        let result = self.inner.call(req).instrument(span.clone()).await;
        let elapsed = start.elapsed();
        let (mut response, route) = match result {
            Ok(response) => {
                let response = response.into_response();
                let route = pattern(response.data::<PathPattern>());
                (response, route)
            }
            Err(err) => {
                let route = pattern(err.data::<PathPattern>());
                (err.into_response(), route)
            }
        };
        let status = response.status().as_u16();
        metrics::counter!(
            "deyehard_http_requests_total",
            "method" => method, "route" => route.clone(), "status" => status.to_string()
        )
        .increment(1);
        metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route.clone())
            .record(elapsed.as_secs_f64());
        span.record("route", route.as_str());
        let ms = elapsed.as_secs_f64() * 1000.0;
        span.in_scope(|| {
            if matches!(route.as_str(), "/healthz" | "/readyz" | "/metrics") {
                tracing::debug!(status, ms, "request");
            } else {
                tracing::info!(status, ms, "request");
            }
        });
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        Ok(response)
    }
}

/// The incoming `x-request-id` when it is a sane token (a proxy's id, so logs line up), else a
/// new random one.
fn request_id(req: &Request) -> String {
    let incoming = req
        .header(REQUEST_ID_HEADER)
        .filter(|v| (1..=64).contains(&v.len()))
        .filter(|v| {
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    match incoming {
        Some(id) => id.to_owned(),
        None => hex::encode(rand::rng().random::<[u8; 8]>()),
    }
}

/// The method as a label; unusual methods share one label.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn pattern(pattern: Option<&PathPattern>) -> String {
    pattern.map_or_else(|| "unmatched".to_owned(), |p| p.0.to_string())
}

/// Names the gateway of a push (the OpenDTU's, or the Cerbo GX's, serial) in the request span.
pub fn record_dtu_serial(serial: &impl std::fmt::Display) {
    tracing::Span::current().record("dtu_serial", tracing::field::display(serial));
}

/// Counts `count` readings from `source` as stored (`deyehard_readings_ingested_total`).
pub fn readings_ingested(source: Source, count: usize) {
    let count = u64::try_from(count).unwrap_or(u64::MAX);
    metrics::counter!(READINGS_INGESTED, "source" => source.as_str()).increment(count);
}

#[cfg(test)]
mod tests {
    use poem::http::StatusCode;
    use poem::{EndpointExt, Route, get, handler};

    use super::*;

    #[handler]
    fn ok() -> &'static str {
        "ok"
    }

    #[tokio::test]
    async fn every_response_carries_a_request_id_and_a_route_label() {
        let app = Route::new().at("/things/:id", get(ok)).with(Observe);
        let res = app
            .call(
                Request::builder()
                    .uri("/things/42".parse().unwrap())
                    .finish(),
            )
            .await
            .unwrap();
        let id = res.header(REQUEST_ID_HEADER).unwrap().to_owned();
        assert_eq!(id.len(), 16);
        let missing = app
            .call(
                Request::builder()
                    .uri("/nowhere".parse().unwrap())
                    .header(REQUEST_ID_HEADER, "proxy-id.1")
                    .finish(),
            )
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.header(REQUEST_ID_HEADER), Some("proxy-id.1"));
        let hostile = app
            .call(
                Request::builder()
                    .uri("/nowhere".parse().unwrap())
                    .header(REQUEST_ID_HEADER, "a b\u{7f}")
                    .finish(),
            )
            .await
            .unwrap();
        assert_ne!(hostile.header(REQUEST_ID_HEADER), Some("a b\u{7f}"));
    }

    #[test]
    fn routes_are_patterns_and_methods_are_bounded() {
        assert_eq!(
            pattern(Some(&PathPattern("/things/:id".into()))),
            "/things/:id"
        );
        assert_eq!(pattern(None), "unmatched");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}

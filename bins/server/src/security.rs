//! Request hardening for the pages and the cookie-authenticated API:
//! - [`SecurityHeaders`]: CSP (our own scripts and styles only, no inline script), nosniff,
//!   `Referrer-Policy: no-referrer` (link tokens never leak), frame denial, HSTS with Secure
//!   cookies.
//! - [`CsrfGuard`]: a signed double-submit token. Every response carries (once) an HttpOnly
//!   `deyehard_csrf` cookie; pages embed [`CsrfToken`] in forms (`csrf_token` field) and in a
//!   `<meta name="csrf-token">` that HTMX sends back as `X-CSRF-Token`. Every POST, PUT,
//!   PATCH and DELETE must present a token matching the cookie, or gets 403: a JSON error on
//!   `/api/`, elsewhere a page saying the form expired (`pages::csrf_failure`). Exempt: calls
//!   with `Authorization` or `X-API-Key` (no ambient credential) and `/api/` calls without a
//!   session cookie.
//! - [`client_ip`]: the client address, from `X-Forwarded-For` only behind trusted proxies.

use std::net::IpAddr;
use std::str::FromStr;

use poem::http::{HeaderValue, Method, header};
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response, Result};
use rand::RngExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::session::SESSION_COOKIE;

/// Name of the CSRF cookie.
pub const CSRF_COOKIE: &str = "deyehard_csrf";
/// Header HTMX (and scripts) send the token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field forms send the token in.
pub const CSRF_FIELD: &str = "csrf_token";
/// Largest form body the guard reads to find the token.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The CSP of every page. `/docs` (Swagger UI) gets none, as it needs inline code.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
     form-action 'self'; frame-ancestors 'none'";

/// Addresses or networks (`10.0.0.0/8`, `::1`) of reverse proxies whose `X-Forwarded-For`
/// is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl FromStr for TrustedProxies {
    type Err = String;
    fn from_str(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, bits) = item.split_once('/').unwrap_or((item, ""));
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("{item:?} is not an address or network"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = if bits.is_empty() {
                max
            } else {
                bits.parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{item:?} has a bad prefix length"))?
            };
            nets.push((addr, bits));
        }
        Ok(Self(nets))
    }
}

impl TrustedProxies {
    /// Whether `ip` lies in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0
            .iter()
            .any(|(net, bits)| match (canonical(*net), ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
                (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
                _ => false,
            })
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the right-most
/// address in `X-Forwarded-For` that is not a trusted proxy itself.
pub fn client_ip(req: &Request, trusted: &TrustedProxies) -> IpAddr {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| canonical(a.ip()));
    if !trusted.contains(peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok().map(canonical))
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !trusted.contains(**ip))
        .or(forwarded.first())
        .copied()
        .unwrap_or(peer)
}

/// Adds the security headers to every response.
#[derive(Debug, Clone, Copy)]
pub struct SecurityHeaders {
    /// Add `Strict-Transport-Security` (when cookies are Secure, the site is HTTPS).
    pub hsts: bool,
}

impl<E: Endpoint> Middleware<E> for SecurityHeaders {
    type Output = SecurityHeadersEndpoint<E>;
    fn transform(&self, inner: E) -> Self::Output {
        SecurityHeadersEndpoint {
            inner,
            hsts: self.hsts,
        }
    }
}

/// The endpoint of [`SecurityHeaders`].
pub struct SecurityHeadersEndpoint<E> {
    inner: E,
    hsts: bool,
}

impl<E: Endpoint> Endpoint for SecurityHeadersEndpoint<E> {
    type Output = Response;
    async fn call(&self, req: Request) -> Result<Response> {
        let docs = req.uri().path().starts_with("/docs");
        let mut resp = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let headers = resp.headers_mut();
        let mut set = |name: &'static str, value: &'static str| {
            if !headers.contains_key(name) {
                headers.insert(name, HeaderValue::from_static(value));
            }
        };
        if !docs {
            set("content-security-policy", CONTENT_SECURITY_POLICY);
        }
        set("x-content-type-options", "nosniff");
        set("referrer-policy", "no-referrer");
        set("x-frame-options", "DENY");
        set("cross-origin-opener-policy", "same-origin");
        if self.hsts {
            set(
                "strict-transport-security",
                "max-age=31536000; includeSubDomains",
            );
        }
        Ok(resp)
    }
}

/// The CSRF token of the current request, for templates (`csrf_token` field, meta tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken(pub String);

/// Checks the CSRF token of state-changing requests (see the module docs).
#[derive(Clone)]
pub struct CsrfGuard {
    key: [u8; 32],
    secure: bool,
}

impl CsrfGuard {
    /// A guard signing tokens with `key`; `secure` marks its cookie Secure.
    pub fn new(key: [u8; 32], secure: bool) -> Self {
        Self { key, secure }
    }

    fn token_for(&self, nonce: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update(nonce.as_bytes());
        hex::encode(hasher.finalize())
    }
}

impl<E: Endpoint> Middleware<E> for CsrfGuard {
    type Output = CsrfEndpoint<E>;
    fn transform(&self, inner: E) -> Self::Output {
        CsrfEndpoint {
            inner,
            guard: self.clone(),
        }
    }
}

/// The endpoint of [`CsrfGuard`].
pub struct CsrfEndpoint<E> {
    inner: E,
    guard: CsrfGuard,
}

/// The value of cookie `name` in the request, if any.
pub fn request_cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn is_exempt(req: &Request) -> bool {
    let headers = req.headers();
    if headers.contains_key(header::AUTHORIZATION) || headers.contains_key("x-api-key") {
        return true;
    }
    req.uri().path().starts_with("/api/") && request_cookie(req, SESSION_COOKIE).is_none()
}

async fn presented_token(req: &mut Request) -> Option<String> {
    if let Some(v) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.to_owned());
    }
    let is_form = req
        .content_type()
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return None;
    }
    let bytes = req
        .take_body()
        .into_bytes_limit(MAX_FORM_BYTES)
        .await
        .ok()?;
    let token = std::str::from_utf8(&bytes).ok().and_then(|form| {
        form.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == CSRF_FIELD)
            .map(|(_, v)| v.to_owned())
    });
    req.set_body(Body::from(bytes));
    token
}

impl<E: Endpoint> Endpoint for CsrfEndpoint<E> {
    type Output = Response;
    async fn call(&self, mut req: Request) -> Result<Response> {
        let existing = request_cookie(&req, CSRF_COOKIE)
            .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()));
        let nonce = existing
            .clone()
            .unwrap_or_else(|| hex::encode(rand::rng().random::<[u8; 32]>()));
        let expected = self.guard.token_for(&nonce);
        let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        if unsafe_method && !is_exempt(&req) {
            let presented = presented_token(&mut req).await;
            let valid = existing.is_some()
                && presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.as_bytes())));
            if !valid {
                req.extensions_mut().insert(CsrfToken(expected));
                let resp = if req.uri().path().starts_with("/api/") {
                    poem::error::ResponseError::as_response(&crate::error::ApiError::Forbidden)
                } else {
                    crate::pages::csrf_failure(&req).await
                };
                return Ok(self.with_cookie(resp, existing.is_none(), &nonce));
            }
        }
        req.extensions_mut().insert(CsrfToken(expected));
        let resp = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        Ok(self.with_cookie(resp, existing.is_none(), &nonce))
    }
}

impl<E> CsrfEndpoint<E> {
    /// `resp` with the CSRF cookie holding `nonce` when the request had none (`new`).
    fn with_cookie(&self, mut resp: Response, new: bool, nonce: &str) -> Response {
        if new {
            let secure = if self.guard.secure { "; Secure" } else { "" };
            let cookie =
                format!("{CSRF_COOKIE}={nonce}; Path=/; HttpOnly; SameSite=Strict{secure}");
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_networks_match_by_prefix() {
        let t: TrustedProxies = "10.0.0.0/8, 192.168.1.5, ::1".parse().unwrap();
        assert!(t.contains("10.20.30.40".parse().unwrap()));
        assert!(t.contains("192.168.1.5".parse().unwrap()));
        assert!(!t.contains("192.168.1.6".parse().unwrap()));
        assert!(t.contains("::1".parse().unwrap()));
        assert!(t.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!t.contains("11.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("nonsense".parse::<TrustedProxies>().is_err());
    }
}

//! The front-end assets: the files in `bins/server/static/` (built from `web/`, see
//! `web/README.md`), embedded in the binary, their fingerprinted URLs, and the endpoint that
//! serves them.
//!
//! Pages link assets through [`asset_url`], which appends `?v=` and the first hex digits of
//! the file's SHA-256. A request carrying the current fingerprint is answered as immutable for a
//! year; any other request (no or an outdated `v`) must revalidate, so a stale URL never pins
//! old content in a cache. Every response has a weak ETag (the body may be compressed) and
//! honours `If-None-Match`. [`routes`] is meant to be nested at `/static`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::middleware::Compression;
use poem::web::{CompressionAlgo, CompressionLevel};
use poem::{Body, Endpoint, EndpointExt, Request, Response};

/// The files of `static/`. With rust-embed's `debug-embed` feature, debug builds embed them
/// too (instead of reading the directory at run time), so every binary is self-contained.
#[derive(rust_embed::Embed)]
#[folder = "static/"]
struct Assets;

/// Hex digits of the SHA-256 that go into an asset URL.
const FINGERPRINT_LEN: usize = 10;
/// Brotli 5 / gzip 5: poem's default brotli level (its fastest) comes out larger than gzip;
/// level 5 costs a few milliseconds per file, and a client fetches each version only once.
const COMPRESSION_LEVEL: CompressionLevel = CompressionLevel::Precise(5);
/// Where [`routes`] is expected to be nested.
const PREFIX: &str = "/static/";
/// For a request whose `v` matches the content: the URL changes when the content does.
const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For anything else: cache, but ask (with the ETag) before reuse.
const CACHE_REVALIDATE: &str = "no-cache";

/// Full hex SHA-256 of every embedded file, computed once on first use.
fn digests() -> &'static HashMap<String, String> {
    static DIGESTS: OnceLock<HashMap<String, String>> = OnceLock::new();
    DIGESTS.get_or_init(|| {
        Assets::iter()
            .filter_map(|name| {
                let file = Assets::get(&name)?;
                Some((name.into_owned(), to_hex(&file.metadata.sha256_hash())))
            })
            .collect()
    })
}

/// The part of a digest that goes into URLs.
fn fingerprint(digest: &str) -> &str {
    digest.get(..FINGERPRINT_LEN).unwrap_or(digest)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The URL of the embedded asset `name`, fingerprinted with its content:
/// `/static/app.css?v=0123456789`.
///
/// An unknown name (a typo in a template) gets the plain `/static/<name>`, which answers 404,
/// and a warning in the log.
pub fn asset_url(name: &str) -> String {
    match digests().get(name) {
        Some(digest) => format!("{PREFIX}{name}?v={}", fingerprint(digest)),
        None => {
            tracing::warn!(asset = name, "link to an asset that is not embedded");
            format!("{PREFIX}{name}")
        }
    }
}

/// The endpoint serving the embedded assets, with content types, cache headers, ETags and
/// gzip/brotli compression. Nest it at `/static`: `Route::new().nest("/static", routes())`.
pub fn routes() -> impl Endpoint {
    StaticFiles.with(
        Compression::new()
            .algorithms([CompressionAlgo::BR, CompressionAlgo::GZIP])
            .with_quality(COMPRESSION_LEVEL),
    )
}

/// Serves [`Assets`] by the request path (relative to where it is nested).
struct StaticFiles;

impl Endpoint for StaticFiles {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        Ok(serve(&req))
    }
}

fn serve(req: &Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET, HEAD")
            .finish();
    }
    let name = req.uri().path().trim_start_matches('/');
    let (Some(file), Some(digest)) = (Assets::get(name), digests().get(name)) else {
        return StatusCode::NOT_FOUND.into();
    };
    let etag = format!("W/\"{digest}\"");
    let cache = if query_version(req.uri().query()) == Some(fingerprint(digest)) {
        CACHE_IMMUTABLE
    } else {
        CACHE_REVALIDATE
    };
    let builder = Response::builder()
        .header(header::ETAG, etag.as_str())
        .header(header::CACHE_CONTROL, cache)
        .header(header::VARY, "Accept-Encoding");
    let if_none_match = req.headers().get(header::IF_NONE_MATCH);
    if if_none_match.is_some_and(|value| etag_matches(value, digest)) {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    let body = match file.data {
        Cow::Borrowed(bytes) => Body::from(bytes),
        Cow::Owned(bytes) => Body::from(bytes),
    };
    builder.content_type(content_type(name)).body(body)
}

/// The value of the `v` query parameter.
fn query_version(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| pair.strip_prefix("v="))
}

/// Whether an `If-None-Match` value names `digest` (weak comparison, as for GET).
fn etag_matches(value: &HeaderValue, digest: &str) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == digest)
}

/// The media type for a file name; text types say UTF-8.
fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension {
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use poem::Route;
    use poem::listener::TcpAcceptor;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// What base.html loads: the start page's whole weight.
    const START_PAGE: [&str; 6] = [
        "app.css",
        "uplot.min.css",
        "app.js",
        "htmx.min.js",
        "uplot.min.js",
        "favicon.svg",
    ];

    /// Every `http://` or `https://` URL in `text`.
    pub(crate) fn external_urls(text: &str) -> Vec<&str> {
        let mut urls: Vec<&str> = ["http://", "https://"]
            .iter()
            .flat_map(|scheme| text.match_indices(scheme))
            .map(|(at, _)| {
                let rest = &text[at..];
                let end = rest.find(|c: char| c.is_whitespace() || "\"'()<>`".contains(c));
                &rest[..end.unwrap_or(rest.len())]
            })
            .collect();
        urls.sort_unstable();
        urls
    }

    /// `text` without `/*! … */` comments: the licence banners that minifiers keep.
    fn without_banners(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("/*!") {
            out.push_str(&rest[..start]);
            match rest[start..].find("*/") {
                Some(end) => rest = &rest[start + end + 2..],
                None => rest = "",
            }
        }
        out.push_str(rest);
        out
    }

    /// The names that are URLs but are never fetched: the SVG XML namespace (in favicon.svg
    /// and in DaisyUI's inline `data:` SVG).
    const NOT_FETCHED: [&str; 1] = ["http://www.w3.org/2000/svg"];

    #[test]
    fn no_asset_or_template_loads_from_another_host() {
        let mut checked = 0;
        for name in Assets::iter() {
            let file = Assets::get(&name).unwrap();
            let Ok(text) = std::str::from_utf8(&file.data) else {
                continue;
            };
            let stripped = without_banners(text);
            for url in external_urls(&stripped) {
                assert!(NOT_FETCHED.contains(&url), "static/{name} references {url}");
            }
            checked += 1;
        }
        assert!(
            checked >= START_PAGE.len(),
            "only {checked} text assets embedded"
        );

        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut stack = vec![templates];
        let mut html_files = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                assert_eq!(
                    external_urls(&text),
                    Vec::<&str>::new(),
                    "{}",
                    path.display()
                );
                html_files += 1;
            }
        }
        assert!(html_files >= 1, "no templates found");
    }

    #[test]
    fn banners_are_the_only_comments_stripped() {
        let text = "/*! https://a.example v1 */x=\"https://b.example/y\";/* https://c.example */";
        assert_eq!(
            external_urls(&without_banners(text)),
            ["https://b.example/y", "https://c.example"]
        );
    }

    #[test]
    fn start_page_weight_stays_under_budget() {
        // Uncompressed bytes; gzip makes them about a third (see web/README.md). 150 KB is the
        // compressed budget, so the raw size is a generous guard against accidental bloat.
        let raw: usize = START_PAGE
            .iter()
            .map(|name| Assets::get(name).unwrap().data.len())
            .sum();
        assert!(raw < 300_000, "start page assets: {raw} bytes uncompressed");
    }

    #[test]
    fn urls_carry_ten_hex_digits_of_the_content_hash() {
        for name in START_PAGE {
            let url = asset_url(name);
            let v = url.strip_prefix(&format!("/static/{name}?v=")).unwrap();
            assert_eq!(v.len(), FINGERPRINT_LEN, "{url}");
            assert!(
                v.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{url}"
            );
            let digest = to_hex(&Assets::get(name).unwrap().metadata.sha256_hash());
            assert!(digest.starts_with(v));
        }
        assert_ne!(asset_url("app.css"), asset_url("app.js"));
        assert_eq!(asset_url("missing.css"), "/static/missing.css");
    }

    async fn get(uri: &str, headers: &[(&str, &str)]) -> (Response, Vec<u8>) {
        let app = Route::new().nest("/static", routes());
        let mut req = Request::builder().uri(uri.parse().unwrap());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let mut resp = app
            .call(req.finish())
            .await
            .unwrap_or_else(|e| e.into_response());
        let body = resp.take_body().into_vec().await.unwrap();
        (resp, body)
    }

    fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
        resp.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn current_fingerprint_is_cached_for_a_year() {
        let (resp, body) = get(&asset_url("app.css"), &[]).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            header(&resp, "content-type"),
            Some("text/css; charset=utf-8")
        );
        assert_eq!(header(&resp, "cache-control"), Some(CACHE_IMMUTABLE));
        assert_eq!(header(&resp, "vary"), Some("Accept-Encoding"));
        assert_eq!(header(&resp, "content-encoding"), None);
        let digest = &digests()["app.css"];
        assert_eq!(
            header(&resp, "etag"),
            Some(format!("W/\"{digest}\"").as_str())
        );
        assert_eq!(body, Assets::get("app.css").unwrap().data.as_ref());

        let (resp, _) = get(&asset_url("app.js"), &[]).await;
        assert_eq!(
            header(&resp, "content-type"),
            Some("text/javascript; charset=utf-8")
        );
        let (resp, _) = get(&asset_url("favicon.svg"), &[]).await;
        assert_eq!(header(&resp, "content-type"), Some("image/svg+xml"));
    }

    #[tokio::test]
    async fn other_versions_must_revalidate() {
        for uri in [
            "/static/app.css",
            "/static/app.css?v=0000000000",
            "/static/app.css?x=1",
        ] {
            let (resp, body) = get(uri, &[]).await;
            assert_eq!(resp.status(), StatusCode::OK, "{uri}");
            assert_eq!(
                header(&resp, "cache-control"),
                Some(CACHE_REVALIDATE),
                "{uri}"
            );
            assert!(!body.is_empty());
        }
    }

    #[tokio::test]
    async fn matching_etag_gives_not_modified() {
        let (first, _) = get(&asset_url("htmx.min.js"), &[]).await;
        let etag = header(&first, "etag").unwrap().to_owned();
        let strong = etag.trim_start_matches("W/").to_owned();
        for tag in [
            etag.as_str(),
            strong.as_str(),
            "\"nope\", *",
            &format!("\"x\", {etag}"),
        ] {
            let (resp, body) = get(&asset_url("htmx.min.js"), &[("if-none-match", tag)]).await;
            assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{tag}");
            assert_eq!(header(&resp, "etag"), Some(etag.as_str()));
            assert!(body.is_empty());
        }
        let (resp, _) = get(&asset_url("htmx.min.js"), &[("if-none-match", "\"other\"")]).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_files_and_other_methods_are_refused() {
        for uri in [
            "/static/nope.js",
            "/static/",
            "/static/../Cargo.toml",
            "/static/%2e%2e/Cargo.toml",
        ] {
            let (resp, _) = get(uri, &[]).await;
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{uri}");
        }
        let app = Route::new().nest("/static", routes());
        let req = Request::builder()
            .method(Method::POST)
            .uri(asset_url("app.js").parse().unwrap());
        let resp = app.call(req.finish()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&resp, "allow"), Some("GET, HEAD"));
    }

    #[tokio::test]
    async fn compresses_with_brotli_or_gzip() {
        let raw = Assets::get("uplot.min.js").unwrap().data.len();
        let (resp, body) = get(&asset_url("uplot.min.js"), &[("accept-encoding", "gzip")]).await;
        assert_eq!(header(&resp, "content-encoding"), Some("gzip"));
        assert_eq!(body[..2], [0x1f, 0x8b], "gzip magic");
        assert!(body.len() < raw / 2, "gzip {} of {raw}", body.len());

        let (resp, body) = get(
            &asset_url("uplot.min.js"),
            &[("accept-encoding", "gzip, br")],
        )
        .await;
        assert_eq!(header(&resp, "content-encoding"), Some("br"));
        assert!(body.len() < raw / 2, "brotli {} of {raw}", body.len());
    }

    /// One raw HTTP/1.1 exchange with a real server: what goes over the wire.
    async fn exchange(addr: std::net::SocketAddr, request: String) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        String::from_utf8_lossy(&response).into_owned()
    }

    #[tokio::test]
    async fn head_and_not_modified_send_no_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
        let app = Route::new().nest("/static", routes());
        let server = tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));

        let url = asset_url("app.css");
        let head = format!(
            "HEAD {url} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
        );
        let response = exchange(addr, head).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.ends_with("\r\n\r\n"),
            "HEAD with a body: {response:?}"
        );

        let etag = format!("W/\"{}\"", digests()["app.css"]);
        let conditional = format!(
            "GET {url} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
        );
        let response = exchange(addr, conditional).await;
        assert!(response.starts_with("HTTP/1.1 304"), "{response}");
        assert!(
            response.ends_with("\r\n\r\n"),
            "304 with a body: {response:?}"
        );
        server.abort();
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x/y.min.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("f.svg"), "image/svg+xml");
        assert_eq!(content_type("f.woff2"), "font/woff2");
        assert_eq!(content_type("noext"), "application/octet-stream");
        assert_eq!(content_type("a.exe"), "application/octet-stream");
    }
}

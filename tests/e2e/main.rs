//! End-to-end tests through real sockets: the collector and the web server started
//! in-process on port 0 with the same `run` functions the binaries use, on both store backends.

// Test helpers outside `#[test]` functions panic on purpose too (clippy.toml's
// allow-*-in-tests only covers the test functions themselves).
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Runs each named `async fn(Backend)` as two tests, on SQLite and on PostgreSQL. The calling
/// module must have `Backend` in scope.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

mod account_pages;
mod account_security;
mod accounts;
#[cfg(feature = "browser-tests")]
mod browser;
mod collector;
mod cross_tenant;
mod csrf_page;
mod dashboard;
mod import;
mod ingest;
mod inverters;
mod ops;
mod support;

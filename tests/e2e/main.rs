//! End-to-end tests through real sockets: the collector (and later the web server) started
//! in-process on port 0 with the same `run` functions the binaries use, on both store backends.

mod accounts;
mod collector;
mod support;

//! The real binary: it starts with no configuration but a data directory, announces where to
//! open it and how to create the first admin, answers `healthcheck`, and on SIGTERM stops
//! accepting, finishes the push in flight (201, stored) and exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_deyehard-server");
const README: &str = include_str!("../../../deyehard-opendtu/tests/fixtures/readme-example.json");
const EMAIL: &str = "ops@example.com";
const STEP: Duration = Duration::from_secs(30);

/// The binary in `dir` (its working directory too, so no stray `deyehard.toml` or `.env` is
/// read), with SQLite in `dir/data` and nothing from the caller's configuration.
fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir).env("DEYEHARD_LOG", "info");
    // CARGO (set by cargo test) would make the start-up hint say `cargo run …`.
    for var in [
        "DATABASE_URL",
        "DEYEHARD_DATA_DIR",
        "DEYEHARD_CONFIG",
        "DEYEHARD_LISTEN",
        "CARGO",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = command(dir, args).stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// Starts `serve`; returns the child, the web port and everything it printed up to the
/// announcement.
fn start(dir: &Path) -> (Child, u16, String) {
    let mut child = command(
        dir,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--collector-listen",
            "127.0.0.1:0",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("--superuser") {
                let _ = tx.send(seen.clone());
            }
        }
    });
    let seen = rx.recv_timeout(STEP).expect("the server announces itself");
    let port = seen
        .split("open http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("the announcement names the address");
    (child, port, seen)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + STEP;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_finishes_the_push_in_flight_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "user",
            "add",
            "--email",
            EMAIL,
            "--password",
            "Sunny-Roof-2025",
            "--verified",
        ],
    );
    let key = ok(d, &["apikey", "create", "--user", EMAIL]);
    let key = key.trim();
    ok(
        d,
        &[
            "inverter",
            "add",
            "--user",
            EMAIL,
            "--kind",
            "opendtu",
            "--serial",
            "116166771004",
            "--name",
            "Roof",
        ],
    );

    let (mut child, port, announcement) = start(d);
    assert!(
        announcement.contains("data: SQLite data/deyehard.db"),
        "{announcement}"
    );
    assert!(
        announcement.contains("deyehard-server user add --email you@example.com"),
        "{announcement}"
    );
    ok(
        d,
        &["healthcheck", "--listen", &format!("127.0.0.1:{port}")],
    );

    // A push whose body is held back until the server is already shutting down: `Expect:
    // 100-continue` tells when the handler is reading the body.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    let head = format!(
        "POST /api/opendtu/measurements HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        README.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 25];
    stream.read_exact(&mut buf).unwrap();
    assert!(
        buf.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"),
        "{}",
        String::from_utf8_lossy(&buf)
    );

    signal(&child, "TERM");
    // The listener closes: new connections are refused while the push is still open.
    let deadline = Instant::now() + STEP;
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
    stream.write_all(README.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("\"success_count\":1"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id:"),
        "{answer}"
    );

    let status = wait_exit(&mut child);
    assert!(status.success(), "exit status {status:?}");
    let export = ok(d, &["export", "--user", EMAIL, "--format", "json"]);
    assert_eq!(
        export.lines().count(),
        1,
        "the push in flight was stored: {export}"
    );
    let down = command(
        d,
        &["healthcheck", "--listen", &format!("127.0.0.1:{port}")],
    )
    .output()
    .unwrap();
    assert!(
        !down.status.success(),
        "healthcheck fails once the server is gone"
    );
}

#[test]
fn a_bad_value_stops_startup_naming_the_key_and_print_config_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = command(d, &["serve"])
        .env("DEYEHARD_LISTEN", "everywhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`listen` (from the environment variable DEYEHARD_LISTEN)"),
        "{stderr}"
    );

    let example = ok(d, &["print-config"]);
    assert!(example.contains("listen = \"0.0.0.0:8000\""), "{example}");
    std::fs::write(
        d.join("deyehard.toml"),
        example.replace("0.0.0.0:8000", "bogus"),
    )
    .unwrap();
    let out = command(d, &["user", "add", "--email", EMAIL, "--password", "x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`listen` (from the config file"),
        "{stderr}"
    );
    assert!(stderr.contains("deyehard.toml"), "{stderr}");
}

//! The real `deyehard-collector`: configured by flags and the environment, it serves loggers
//! and its health endpoints, answers `healthcheck`, and on SIGINT or SIGTERM stops accepting,
//! closes the logger connections after the frames in flight and exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use deyehard_core::LoggerSerial;
use deyehard_solarman::{ControlCode, Frame, check, parse};

const BIN: &str = env!("CARGO_BIN_EXE_deyehard-collector");
const STEP: Duration = Duration::from_secs(30);

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir).env("DEYEHARD_LOG", "info");
    for var in ["DATABASE_URL", "DEYEHARD_DATA_DIR", "DEYEHARD_CONFIG"] {
        cmd.env_remove(var);
    }
    cmd
}

/// The address after `addr=` in the first log line that mentions `what`.
fn address_in(lines: &mpsc::Receiver<String>, what: &str) -> String {
    loop {
        let line = lines
            .recv_timeout(STEP)
            .expect("the collector logs its addresses");
        if line.contains(what)
            && let Some(rest) = line.split("addr=").nth(1)
        {
            return rest.split_whitespace().next().unwrap().to_owned();
        }
    }
}

fn start(dir: &Path) -> (Child, String, String) {
    let mut child = command(
        dir,
        &["--data-dir", "d", "serve", "--listen", "127.0.0.1:0"],
    )
    .env("DEYEHARD_COLLECTOR_METRICS_LISTEN", "127.0.0.1:0")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let loggers = address_in(&rx, "collector listening");
    let health = address_in(&rx, "metrics, healthz and readyz listening");
    (child, loggers, health)
}

fn heartbeat(serial: u32, seq: u8) -> Vec<u8> {
    Frame {
        control: ControlCode::Heartbeat,
        seq_a: seq,
        seq_b: seq,
        serial: LoggerSerial::new(serial),
        payload: &[0x00],
    }
    .to_vec()
    .unwrap()
}

fn reply(stream: &mut TcpStream) -> ControlCode {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    loop {
        if let Ok(len) = check(&buf) {
            return parse(&buf[..len]).unwrap().control;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed instead of replying");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn stops_cleanly_on(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut child, loggers, health) = start(d);
    let probe = |args: &[&str]| command(d, args).output().unwrap().status.success();
    assert!(probe(&["healthcheck", "--metrics-listen", &health]));
    assert!(
        probe(&["healthcheck", "--listen", &loggers]),
        "TCP probe without metrics"
    );

    let mut logger = TcpStream::connect(&loggers).unwrap();
    logger.set_read_timeout(Some(STEP)).unwrap();
    logger.write_all(&heartbeat(4_000_000_001, 1)).unwrap();
    assert_eq!(reply(&mut logger), ControlCode::HeartbeatReply);

    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The connection ends (the listener drains it), then the process exits 0.
    let mut rest = Vec::new();
    let _ = logger.read_to_end(&mut rest);
    let deadline = Instant::now() + STEP;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the collector did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{signal}: exit status {status:?}");
    assert!(TcpStream::connect(&loggers).is_err(), "no longer accepting");
    assert!(!probe(&["healthcheck", "--metrics-listen", &health]));
    assert!(
        d.join("d/deyehard.db").exists(),
        "--data-dir before the subcommand"
    );
}

#[test]
fn sigterm_stops_the_collector_cleanly() {
    stops_cleanly_on("TERM");
}

#[test]
fn sigint_stops_the_collector_cleanly() {
    stops_cleanly_on("INT");
}

#[test]
fn a_bad_value_names_the_key_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path(), &["serve", "--max-connections", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`collector_max_connections` (from the flag --max-connections)"),
        "{stderr}"
    );
    let example = command(dir.path(), &["print-config"]).output().unwrap();
    let example = String::from_utf8(example.stdout).unwrap();
    assert!(
        example.contains("collector_listen = \"0.0.0.0:10000\""),
        "{example}"
    );
    assert!(
        !example.contains("smtp_host"),
        "server keys are not the collector's"
    );
}

//! OpenDTU push load harness: C concurrent connections of simulated DTUs POSTing to a running
//! server.
//!
//! DTU `d` owns two inverters, serials `1141dddd0000` and `1141dddd0001` (what
//! `benches/ingest-load.sh` registers), and pushes the realistic body of the protocol notes: one
//! DTU, two inverters, two DC channels each, counters moving forward. Each client sends its next
//! push as soon as the previous one was answered, for its DTUs in turn (client `k` of `C` pushes
//! for the DTUs `k`, `k + C`, …: with `--dtus` equal to the concurrency, each client is one DTU;
//! with more DTUs, each DTU's rows are touched less often, as with a large fleet). A DTU's
//! timestamps start at `--from` and advance 60 s per push (distinct, in order, like a real DTU),
//! so every 201 is a new row.
//!
//! Each client is one keep-alive HTTP/1.1 connection over loopback, driven by a lean client of
//! its own (the request written whole, the answer read by its `Content-Length`, every status
//! checked): the load generator shares the machine with the server and the database, and a
//! general-purpose client (with its JSON tree per body) cost four times the CPU per request.
//!
//! It reports requests/s, latency p50/p99/max, the count of non-2xx answers and transport errors,
//! and the server's RSS (`VmRSS` of `--pid`) at the start and its peak, against the targets of the
//! benchmark note: ≥ 5,000 req/s at concurrency 64 on PostgreSQL, p99 < 20 ms, zero non-2xx.
//! Output: a short summary, then one JSON line. Exit status 1 when an answer was not 2xx or a
//! request failed, 2 on a setup error.
//!
//! Only 127.0.0.1 is accepted as a target. Without `--addr` (as under `cargo test --benches` or a
//! plain `cargo bench`) it starts the server in-process on a temporary SQLite store, provisions
//! it and runs briefly: a self-check of the harness.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Offset, TimeDelta, Utc};
use clap::Parser;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How often the server's RSS is sampled.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Target: requests per second at concurrency 64 on PostgreSQL.
const TARGET_RPS: f64 = 5_000.0;
/// Target: p99 latency, microseconds.
const TARGET_P99_US: u64 = 20_000;
/// Most DTUs (four digits of the inverter serials).
const MAX_DTUS: u32 = 10_000;
/// The endpoint.
const PATH: &str = "/api/opendtu/measurements";

/// Command line (`cargo bench --bench ingest_load -- …`).
#[derive(Debug, Parser)]
#[command(about = "Simulated OpenDTU pushes against a server on 127.0.0.1")]
struct Args {
    /// Server address, 127.0.0.1:PORT only; without it an in-process server on a temporary
    /// SQLite store is the target (self-check).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// API key of the account owning the inverters.
    #[arg(long, env = "INGEST_LOAD_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Concurrent clients (connections), at most `--dtus`; client `k` pushes for the DTUs `k`,
    /// `k + concurrency`, … in turn.
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// DTUs provisioned (two inverters each), at most 10,000.
    #[arg(long, default_value_t = 64)]
    dtus: u32,
    /// Seconds to run.
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Most pushes per client (a bound on the run and on the timestamps' advance).
    #[arg(long, default_value_t = 20_000)]
    max_per_client: u64,
    /// Time of the first push (RFC 3339); default 40 days ago. Runs on one database need
    /// ranges that do not overlap.
    #[arg(long)]
    from: Option<String>,
    /// Server process id, for its RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// A label for the JSON line (e.g. the backend).
    #[arg(long, default_value = "")]
    label: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What one client saw.
#[derive(Debug, Default)]
struct ClientStats {
    latencies_us: Vec<u64>,
    non_2xx: u64,
    transport_errors: u64,
    first_failure: Option<String>,
}

/// What one run measured.
#[derive(Debug)]
struct Report {
    requests: u64,
    elapsed: Duration,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    non_2xx: u64,
    transport_errors: u64,
    first_failure: Option<String>,
    rss_start: Option<u64>,
    rss_peak: Option<u64>,
}

/// The serial of inverter `n` (0 or 1) of DTU `dtu`.
fn serial(dtu: u32, n: u32) -> String {
    format!("1141{dtu:04}{n:04}")
}

/// The body of push `seq` of DTU `dtu` at `time`, sent in local time (+01:00), written into
/// `out` (cleared first): one DTU, two inverters, two DC channels each, counters moving forward.
fn write_body(out: &mut String, dtu: u32, time: DateTime<Utc>, seq: u64) {
    let offset = FixedOffset::east_opt(3600).unwrap_or(Utc.fix());
    let step = seq as f64;
    let timestamp = time.with_timezone(&offset).to_rfc3339();
    out.clear();
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        r#"{{"timestamp":"{timestamp}","dtu_serial":"1999{dtu:08}","inverters":["#
    );
    for n in 0..2u32 {
        let _ = write!(
            out,
            r#"{comma}{{"serial":"{serial}","name":"Inverter {n}","reachable":true,"producing":true,"last_update":{last},"measurements":{{"power_ac":{ac:?},"voltage_ac":230.4,"current_ac":1.26,"frequency":50.01,"power_factor":0.998,"power_dc":303.0}},"dc_channels":["#,
            comma = if n == 0 { "" } else { "," },
            serial = serial(dtu, n),
            last = time.timestamp() - 4,
            ac = 290.5 + f64::from(n),
        );
        for c in 1..=2u32 {
            let _ = write!(
                out,
                r#"{comma}{{"channel":{c},"name":"String {c}","power":{power:?},"voltage":33.1,"current":4.55,"yield_day":{day:?},"yield_total":{total:?},"irradiation":37.6}}"#,
                comma = if c == 1 { "" } else { "," },
                power = 150.5 + f64::from(c),
                day = 800.0 + 5.0 * step,
                total = 1500.0 + 0.005 * step,
            );
        }
        out.push_str("]}");
    }
    out.push_str("]}");
}

/// Longest response head accepted (status line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// Largest response body accepted.
const MAX_BODY: usize = 1024 * 1024;
/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A status and body as answered.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// A lean HTTP/1.1 client: one keep-alive connection, requests written whole, answers read by
/// their `Content-Length` (what the server sends). A broken connection is dropped and opened
/// again by the next request.
struct Connection {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    /// The request being sent (head and body).
    request: Vec<u8>,
    /// What was read and not used yet.
    read: Vec<u8>,
}

impl Connection {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            request: Vec::with_capacity(2048),
            read: Vec::with_capacity(4096),
        }
    }

    /// POSTs `body` to [`PATH`] with the key, and reads the whole answer.
    async fn post(&mut self, key: &str, body: &str) -> Result<Answer, String> {
        self.request.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(
            self.request,
            "POST {PATH} HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n",
            addr = self.addr,
            len = body.len(),
        );
        self.request.extend_from_slice(body.as_bytes());
        let result = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange()).await;
        let answer = match result {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                self.stream = None;
                return Err(e);
            }
            Err(_) => {
                self.stream = None;
                return Err(format!("no answer within {REQUEST_TIMEOUT:?}"));
            }
        };
        Ok(answer)
    }

    async fn exchange(&mut self) -> Result<Answer, String> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            stream
                .set_nodelay(true)
                .map_err(|e| format!("nodelay: {e}"))?;
            self.stream = Some(stream);
            self.read.clear();
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err("no connection".to_owned());
        };
        stream
            .write_all(&self.request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let head_len = loop {
            if let Some(end) = self.read.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            if self.read.len() > MAX_HEAD {
                return Err("response head too long".to_owned());
            }
            fill(stream, &mut self.read).await?;
        };
        let head = std::str::from_utf8(&self.read[..head_len])
            .map_err(|_| "response head is not UTF-8".to_owned())?;
        let (status, length, close) = parse_head(head)?;
        if length > MAX_BODY {
            return Err(format!("response body of {length} bytes"));
        }
        while self.read.len() < head_len + length {
            fill(stream, &mut self.read).await?;
        }
        let body = self.read[head_len..head_len + length].to_vec();
        self.read.drain(..head_len + length);
        if close {
            self.stream = None;
        }
        Ok(Answer { status, body })
    }
}

/// Reads what the connection has into `buf`; the peer closing is an error here.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    let read = stream
        .read_buf(buf)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if read == 0 {
        return Err("the server closed the connection".to_owned());
    }
    Ok(())
}

/// Status, `Content-Length` and whether the server closes the connection, from a response head.
fn parse_head(head: &str) -> Result<(u16, usize, bool), String> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    let mut close = status_line.starts_with("HTTP/1.0");
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("Transfer-Encoding {value:?} is not supported"));
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let length = length.ok_or_else(|| "response without Content-Length".to_owned())?;
    Ok((status, length, close))
}

/// One connection pushing for the DTUs `first`, `first + step`, … below `dtus` in turn (each
/// DTU's pushes 60 s apart), until `deadline` or `max` pushes.
async fn run_client(
    addr: SocketAddr,
    key: Arc<str>,
    (first, step, dtus): (u32, u32, u32),
    from: DateTime<Utc>,
    deadline: Instant,
    max: u64,
) -> ClientStats {
    let mut stats = ClientStats::default();
    let mut connection = Connection::new(addr);
    let mut payload = String::with_capacity(2048);
    let own: Vec<u32> = (first..dtus).step_by(step.max(1) as usize).collect();
    let count = own.len().max(1) as u64;
    for seq in 0..max {
        if Instant::now() >= deadline {
            break;
        }
        let dtu = own.get((seq % count) as usize).copied().unwrap_or(first);
        let round = seq / count;
        let time = from + TimeDelta::seconds(60 * i64::try_from(round).unwrap_or(i64::MAX / 120));
        write_body(&mut payload, dtu, time, round);
        let started = Instant::now();
        match connection.post(&key, &payload).await {
            Ok(answer) => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                stats.latencies_us.push(micros);
                if !(200..300).contains(&answer.status) {
                    stats.non_2xx += 1;
                    stats.first_failure.get_or_insert_with(|| {
                        format!(
                            "{}: {}",
                            answer.status,
                            String::from_utf8_lossy(&answer.body)
                        )
                    });
                }
            }
            Err(e) => {
                stats.transport_errors += 1;
                stats
                    .first_failure
                    .get_or_insert_with(|| format!("request failed: {e}"));
            }
        }
    }
    stats
}

/// `VmRSS` of a process, bytes.
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run(addr: SocketAddr, key: &str, args: &Args) -> Result<Report, String> {
    if args.concurrency == 0 || args.concurrency > args.dtus {
        return Err(format!("--concurrency must be 1 to --dtus ({})", args.dtus));
    }
    if args.dtus > MAX_DTUS {
        return Err(format!("--dtus must be at most {MAX_DTUS}"));
    }
    let duration =
        Duration::try_from_secs_f64(args.duration).map_err(|e| format!("--duration: {e}"))?;
    let from = match &args.from {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("--from: {e}"))?
            .to_utc(),
        None => Utc::now() - TimeDelta::days(40),
    };
    let key: Arc<str> = key.into();
    let rss_start = args.pid.and_then(rss);
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = JoinSet::new();
    for client in 0..args.concurrency {
        clients.spawn(run_client(
            addr,
            key.clone(),
            (client, args.concurrency, args.dtus),
            from,
            deadline,
            args.max_per_client,
        ));
    }
    let mut rss_peak = rss_start;
    let mut all = ClientStats::default();
    let mut ticker = tokio::time::interval(RSS_SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Some(now) = args.pid.and_then(rss) {
                    rss_peak = Some(rss_peak.map_or(now, |p| p.max(now)));
                }
            }
            joined = clients.join_next() => match joined {
                Some(Ok(stats)) => {
                    all.latencies_us.extend(stats.latencies_us);
                    all.non_2xx += stats.non_2xx;
                    all.transport_errors += stats.transport_errors;
                    if all.first_failure.is_none() {
                        all.first_failure = stats.first_failure;
                    }
                }
                Some(Err(e)) => return Err(format!("client task: {e}")),
                None => break,
            },
        }
    }
    let elapsed = started.elapsed();
    all.latencies_us.sort_unstable();
    Ok(Report {
        requests: all.latencies_us.len() as u64 + all.transport_errors,
        elapsed,
        p50_us: percentile(&all.latencies_us, 0.50),
        p99_us: percentile(&all.latencies_us, 0.99),
        max_us: all.latencies_us.last().copied().unwrap_or(0),
        non_2xx: all.non_2xx,
        transport_errors: all.transport_errors,
        first_failure: all.first_failure,
        rss_start,
        rss_peak,
    })
}

fn print(report: &Report, args: &Args) {
    let rps = report.requests as f64 / report.elapsed.as_secs_f64();
    let mib = |b: Option<u64>| {
        b.map_or("n/a".to_owned(), |b| {
            format!("{:.1} MiB", b as f64 / 1_048_576.0)
        })
    };
    println!(
        "ingest-load {label} concurrency {c}: {n} requests in {t:.1} s = {rps:.0} req/s; latency p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms; non-2xx {bad}, transport errors {err}; server RSS {r0} at start, peak {r1}",
        label = args.label,
        c = args.concurrency,
        n = report.requests,
        t = report.elapsed.as_secs_f64(),
        p50 = report.p50_us as f64 / 1000.0,
        p99 = report.p99_us as f64 / 1000.0,
        max = report.max_us as f64 / 1000.0,
        bad = report.non_2xx,
        err = report.transport_errors,
        r0 = mib(report.rss_start),
        r1 = mib(report.rss_peak),
    );
    if let Some(failure) = &report.first_failure {
        println!("  first failure: {failure}");
    }
    if args.concurrency == 64 {
        println!(
            "  targets at 64: {} req/s ≥ {TARGET_RPS} ({}), p99 < {} ms ({})",
            rps.round(),
            if rps >= TARGET_RPS { "met" } else { "missed" },
            TARGET_P99_US / 1000,
            if report.p99_us < TARGET_P99_US {
                "met"
            } else {
                "missed"
            },
        );
    }
    let line: Value = json!({
        "label": args.label, "concurrency": args.concurrency, "requests": report.requests,
        "seconds": report.elapsed.as_secs_f64(), "rps": rps, "p50_ms": report.p50_us as f64 / 1000.0,
        "p99_ms": report.p99_us as f64 / 1000.0, "max_ms": report.max_us as f64 / 1000.0,
        "non_2xx": report.non_2xx, "transport_errors": report.transport_errors,
        "rss_start_bytes": report.rss_start, "rss_peak_bytes": report.rss_peak,
    });
    println!("{line}");
}

/// Self-check: an in-process server on a temporary SQLite store with `dtus` DTUs provisioned.
mod selfcheck {
    use std::sync::Arc;

    use deyehard_core::{DeviceSerial, InverterKind, TenantScope, auth::api_key};
    use deyehard_store::{
        ApiKeyStore, InverterFields, InverterStore, NewUser, Store, StoreOptions, UserStore,
    };

    /// A running server: its address, the key, and what keeps it alive.
    pub struct Target {
        pub addr: std::net::SocketAddr,
        pub key: String,
        pub _dir: tempfile::TempDir,
        pub stop: tokio::sync::oneshot::Sender<()>,
    }

    pub async fn start(dtus: u32) -> Result<Target, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("deyehard.db");
        let store = Store::connect(&path.to_string_lossy(), &StoreOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let user = store
            .create_user(&NewUser {
                email: "load@example.com".to_owned(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                    .to_owned(),
                display_name: "load".to_owned(),
                time_zone: None,
                locale: None,
                is_verified: true,
                is_superuser: false,
            })
            .await
            .map_err(|e| e.to_string())?;
        let scope = TenantScope::from_credential_lookup(user.id);
        let key = api_key::generate();
        store
            .create_api_key(&scope, "load", &key.prefix, &key.hash)
            .await
            .map_err(|e| e.to_string())?;
        for dtu in 0..dtus {
            for n in 0..2 {
                let serial =
                    DeviceSerial::parse(&super::serial(dtu, n)).map_err(|e| e.to_string())?;
                let fields = InverterFields {
                    name: format!("DTU {dtu} inverter {n}"),
                    kind: InverterKind::Opendtu,
                    serial: Some(serial),
                    logger_serial: None,
                    rated_power_w: Some(800.0),
                    mppt_count: Some(2),
                };
                store
                    .create_inverter(&scope, &fields)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let mut options = deyehard_server::IngestOptions::default();
        options.api_keys.rate_limit = None;
        let base_url = format!("http://{addr}");
        let accounts = deyehard_server::accounts::Accounts::ephemeral(&base_url, None)
            .map_err(|e| e.to_string())?;
        let state = deyehard_server::AppState::new(Arc::new(store), accounts, &options);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(deyehard_server::run_with(listener, state, async move {
            let _ = stopped.await;
        }));
        Ok(Target {
            addr,
            key: key.plaintext,
            _dir: dir,
            stop,
        })
    }
}

async fn main_async(args: Args) -> ExitCode {
    let (addr, key, target) = match (args.addr, &args.key) {
        (Some(addr), Some(key)) if addr.ip() == Ipv4Addr::LOCALHOST => (addr, key.clone(), None),
        (Some(addr), Some(_)) => {
            eprintln!("ingest-load: only 127.0.0.1 is accepted as a target, not {addr}");
            return ExitCode::from(2);
        }
        (Some(_), None) => {
            eprintln!("ingest-load: --addr needs --key (or INGEST_LOAD_KEY)");
            return ExitCode::from(2);
        }
        (None, _) => match selfcheck::start(args.dtus.min(args.concurrency)).await {
            Ok(target) => (target.addr, target.key.clone(), Some(target)),
            Err(e) => {
                eprintln!("ingest-load: cannot start the in-process server: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let dtus = if target.is_some() {
        args.dtus.min(args.concurrency)
    } else {
        args.dtus
    };
    let args = Args { dtus, ..args };
    let result = run(addr, &key, &args).await;
    if let Some(target) = target {
        let _ = target.stop.send(());
    }
    match result {
        Ok(report) => {
            print(&report, &args);
            if report.non_2xx == 0 && report.transport_errors == 0 && report.requests > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("ingest-load: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(main_async(args)),
        Err(e) => {
            eprintln!("ingest-load: cannot start the runtime: {e}");
            ExitCode::from(2)
        }
    }
}

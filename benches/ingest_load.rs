//! OpenDTU push load harness: C concurrent simulated DTUs POSTing to a running server.
//!
//! DTU `d` owns two inverters, serials `1141dddd0000` and `1141dddd0001` (what
//! `benches/ingest-load.sh` registers), and pushes the realistic body of the protocol notes: one
//! DTU, two inverters, two DC channels each, counters moving forward. Each client is one DTU and
//! sends its next push as soon as the previous one was answered; its timestamps start at `--from`
//! and advance 60 s per push (distinct, in order, like a real DTU), so every 201 is a new row.
//!
//! It reports requests/s, latency p50/p99/max, the count of non-2xx answers and transport errors,
//! and the server's RSS (`VmRSS` of `--pid`) at the start and its peak, against the targets of the
//! benchmark note: ≥ 5,000 req/s at concurrency 64 on PostgreSQL, p99 < 20 ms, zero non-2xx.
//! Output: a short summary, then one JSON line. Exit status 1 when an answer was not 2xx or a
//! request failed, 2 on a setup error.
//!
//! Only 127.0.0.1 is accepted as a target. Without `--url` (as under `cargo test --benches` or a
//! plain `cargo bench`) it starts the server in-process on a temporary SQLite store, provisions
//! it and runs briefly: a self-check of the harness.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Offset, TimeDelta, Utc};
use clap::Parser;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How often the server's RSS is sampled.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Target: requests per second at concurrency 64 on PostgreSQL.
const TARGET_RPS: f64 = 5_000.0;
/// Target: p99 latency, microseconds.
const TARGET_P99_US: u64 = 20_000;
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
    /// Concurrent clients (each one DTU; at most `--dtus`).
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// DTUs provisioned (two inverters each).
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

/// The body of push `seq` of DTU `dtu` at `time`, sent in local time (+01:00).
fn body(dtu: u32, time: DateTime<Utc>, seq: u64) -> String {
    let offset = FixedOffset::east_opt(3600).unwrap_or(Utc.fix());
    let step = seq as f64;
    let inverter = |n: u32| {
        let channel = |c: u32| {
            json!({"channel": c, "name": format!("String {c}"), "power": 150.5 + f64::from(c), "voltage": 33.1,
                   "current": 4.55, "yield_day": 800.0 + 5.0 * step, "yield_total": 1500.0 + 0.005 * step,
                   "irradiation": 37.6})
        };
        json!({"serial": serial(dtu, n), "name": format!("Inverter {n}"), "reachable": true, "producing": true,
               "last_update": time.timestamp() - 4,
               "measurements": {"power_ac": 290.5 + f64::from(n), "voltage_ac": 230.4, "current_ac": 1.26,
                                "frequency": 50.01, "power_factor": 0.998, "power_dc": 303.0},
               "dc_channels": [channel(1), channel(2)]})
    };
    json!({"timestamp": time.with_timezone(&offset).to_rfc3339(), "dtu_serial": format!("1999{dtu:08}"),
           "inverters": [inverter(0), inverter(1)]})
    .to_string()
}

/// One simulated DTU: pushes until `deadline` or `max` pushes.
async fn run_client(
    client: reqwest::Client,
    url: Arc<str>,
    key: Arc<str>,
    dtu: u32,
    from: DateTime<Utc>,
    deadline: Instant,
    max: u64,
) -> ClientStats {
    let mut stats = ClientStats::default();
    for seq in 0..max {
        if Instant::now() >= deadline {
            break;
        }
        let time = from + TimeDelta::seconds(60 * i64::try_from(seq).unwrap_or(i64::MAX / 120));
        let payload = body(dtu, time, seq);
        let started = Instant::now();
        let sent = client
            .post(&*url)
            .header("X-API-Key", &*key)
            .header("Content-Type", "application/json")
            .body(payload)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                stats.latencies_us.push(micros);
                if !status.is_success() {
                    stats.non_2xx += 1;
                    stats
                        .first_failure
                        .get_or_insert_with(|| format!("{status}: {text}"));
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
    let duration =
        Duration::try_from_secs_f64(args.duration).map_err(|e| format!("--duration: {e}"))?;
    let from = match &args.from {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("--from: {e}"))?
            .to_utc(),
        None => Utc::now() - TimeDelta::days(40),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(usize::try_from(args.concurrency).unwrap_or(usize::MAX))
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let url: Arc<str> = format!("http://{addr}{PATH}").into();
    let key: Arc<str> = key.into();
    let rss_start = args.pid.and_then(rss);
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = JoinSet::new();
    for dtu in 0..args.concurrency {
        let (client, url, key) = (client.clone(), url.clone(), key.clone());
        clients.spawn(run_client(
            client,
            url,
            key,
            dtu,
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

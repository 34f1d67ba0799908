//! Collector load harness: N simulated Solarman V5 loggers against a running collector.
//!
//! Every logger has its own serial. It connects (the starts are spread over `--ramp`), sends a
//! handshake (`0x4110`), a Deye micro-inverter data frame (`0x4210`) right after it and then every
//! `--data-interval`, and a heartbeat (`0x4710`) every `--heartbeat-interval`. It waits for the
//! reply to each frame and checks it against the codec's reply rule (protocol notes §1.2, §2:
//! code − `0x3000`, seq A + 1, seq B echoed, same serial, echoed frame type, status `0x01`) and a
//! plausible clock. Frames are built with the codec from the captures in
//! `deyehard-solarman/tests/fixtures/frames.json`, patched (serials, timers, record counter,
//! power) so that every frame is distinct.
//!
//! It reports the connections held, reply latency p50/p99/max, frames sent / acknowledged / lost
//! and the collector's RSS (`VmRSS` of `--pid`) before and while loaded, against the targets of
//! the benchmark note: 10,000 loggers held in < 150 MB, p99 reply < 10 ms, zero lost frames.
//! Output: a short summary, then one JSON line. Exit status 1 when a frame was lost or a logger
//! failed, 2 on a setup error.
//!
//! Only 127.0.0.1 is accepted as a target. Without `--addr` (as under `cargo test --benches`,
//! or a plain `cargo bench`) the harness runs against an in-process reference responder built
//! from the codec: a self-check of the harness and a measure of its own overhead.
//! `benches/collector-load.sh` runs it against the real collector.

// A bench crate root resolves `mod` next to itself; its modules live in `collector_load/`.
#[path = "collector_load/frames.rs"]
mod frames;
#[path = "collector_load/session.rs"]
mod session;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use frames::Kind;
use frames::Templates;
use session::{Ctx, Failure, Latencies, Stats, run_logger, start_responder};

/// How often the collector's RSS is sampled.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// How often progress is printed to stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Descriptors kept free for everything that is not a logger socket.
const SPARE_FDS: u64 = 64;
/// Target: collector RSS with 10,000 loggers held, bytes.
const TARGET_RSS_BYTES: u64 = 150_000_000;
/// Target: p99 reply latency, microseconds.
const TARGET_P99_US: u32 = 10_000;

/// Command line (`cargo bench --bench collector_load -- …`).
#[derive(Debug, Parser)]
#[command(about = "Simulated Solarman loggers against a collector on 127.0.0.1")]
struct Args {
    /// Collector address, 127.0.0.1:PORT only; without it an in-process reference responder
    /// is the target (self-check).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Number of simulated loggers.
    #[arg(long, default_value_t = 100)]
    loggers: u32,
    /// Seconds the loggers keep sending after the ramp.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds over which the connection starts are spread.
    #[arg(long, default_value_t = 2.0)]
    ramp: f64,
    /// Seconds between data frames of one logger.
    #[arg(long, default_value_t = 5.0)]
    data_interval: f64,
    /// Seconds between heartbeats of one logger (announced in the handshake, at most 255).
    #[arg(long, default_value_t = 8.0)]
    heartbeat_interval: f64,
    /// Collector process id, for its RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// Seconds to wait for a connection or a reply before the frame counts as lost.
    #[arg(long, default_value_t = 5.0)]
    reply_timeout: f64,
    /// Serial of the first logger; logger i uses serial-base + i.
    #[arg(long, default_value_t = 3_900_000_000)]
    serial_base: u32,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Validated run settings.
#[derive(Debug)]
struct Settings {
    addr: Option<SocketAddr>,
    loggers: u32,
    duration: Duration,
    ramp: Duration,
    data_interval: Duration,
    heartbeat_interval: Duration,
    reply_timeout: Duration,
    pid: Option<u32>,
    serial_base: u32,
}

fn seconds(name: &str, value: f64, allow_zero: bool) -> Result<Duration, String> {
    match Duration::try_from_secs_f64(value) {
        Ok(d) if allow_zero || !d.is_zero() => Ok(d),
        _ => Err(format!(
            "--{name} must be a positive number of seconds, got {value}"
        )),
    }
}

impl Settings {
    fn from_args(args: &Args) -> Result<Self, String> {
        if let Some(addr) = args.addr
            && addr.ip() != Ipv4Addr::LOCALHOST
        {
            return Err(format!(
                "refusing {addr}: only 127.0.0.1 targets are allowed"
            ));
        }
        if args.loggers == 0 || args.serial_base.checked_add(args.loggers - 1).is_none() {
            return Err("--loggers must be at least 1 and serial-base + loggers fit a u32".into());
        }
        Ok(Self {
            addr: args.addr,
            loggers: args.loggers,
            duration: seconds("duration", args.duration, false)?,
            ramp: seconds("ramp", args.ramp, true)?,
            data_interval: seconds("data-interval", args.data_interval, false)?,
            heartbeat_interval: seconds("heartbeat-interval", args.heartbeat_interval, false)?,
            reply_timeout: seconds("reply-timeout", args.reply_timeout, false)?,
            pid: args.pid,
            serial_base: args.serial_base,
        })
    }

    /// The heartbeat interval as the handshake's one-byte field (§3.2), 1..=255 s.
    fn heartbeat_byte(&self) -> u8 {
        u8::try_from(self.heartbeat_interval.as_secs().clamp(1, 255)).unwrap_or(u8::MAX)
    }

    /// Refuses a run the descriptor limit cannot hold (the self-check holds both ends).
    fn check_fds(&self) -> Result<(), String> {
        let per_logger = if self.addr.is_some() { 1 } else { 2 };
        let needed = u64::from(self.loggers) * per_logger + SPARE_FDS;
        match open_files_limit() {
            Some(limit) if limit < needed => Err(format!(
                "{} loggers need about {needed} descriptors, `ulimit -n` is {limit}",
                self.loggers
            )),
            _ => Ok(()),
        }
    }
}

/// The soft limit on open files of this process, from `/proc/self/limits`.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `VmRSS` of `pid`, KiB.
fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The 1-minute load average of the host: the harness and the collector share its cores, and so
/// do other processes.
fn load_average() -> Option<f64> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    loadavg.split_whitespace().next()?.parse().ok()
}

/// Samples `VmRSS` of `pid` until the stop signal; returns the peak.
async fn sample_rss(pid: u32, mut stop: watch::Receiver<bool>) -> Option<u64> {
    let mut peak = None;
    loop {
        peak = peak.max(vm_rss_kib(pid));
        tokio::select! {
            () = tokio::time::sleep(RSS_SAMPLE_EVERY) => {}
            _ = stop.wait_for(|stopped| *stopped) => return peak,
        }
    }
}

/// Collector RSS, KiB: before the run, when the run ends (all loggers still connected), and the
/// peak of the samples.
#[derive(Debug, Clone, Copy, Default)]
struct Rss {
    before: Option<u64>,
    loaded: Option<u64>,
    peak: Option<u64>,
}

/// p50, p99 and max of sorted samples.
fn quantiles(sorted: &[u32]) -> [Option<u32>; 3] {
    [
        percentile(sorted, 50),
        percentile(sorted, 99),
        sorted.last().copied(),
    ]
}

/// Latency figures of sorted samples, for the JSON line.
fn latency_json(sorted: &[u32]) -> Value {
    let [p50, p99, max] = quantiles(sorted).map(ms);
    json!({"samples": sorted.len(), "p50": p50, "p99": p99, "max": max})
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u32], percent: usize) -> Option<u32> {
    let rank = (sorted.len() * percent).div_ceil(100);
    sorted.get(rank.saturating_sub(1)).copied()
}

fn ms(micros: Option<u32>) -> Option<f64> {
    micros.map(|us| f64::from(us) / 1000.0)
}

fn show_ms(micros: Option<u32>) -> String {
    ms(micros).map_or_else(|| "n/a".into(), |ms| format!("{ms:.3} ms"))
}

/// KiB as decimal megabytes with one decimal.
fn mb(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "n/a".into(),
        |k| {
            let hundred_kb = k * 1024 / 100_000;
            format!("{}.{} MB", hundred_kb / 10, hundred_kb % 10)
        },
    )
}

/// The figures of a finished run.
#[derive(Debug)]
struct Figures {
    target: String,
    held: usize,
    peak: usize,
    sent: [u64; 3],
    acked: u64,
    failures: u64,
    /// Sorted reply latencies, by kind.
    latencies: Latencies,
    /// All sorted reply latencies.
    all_latencies: Vec<u32>,
    rss: Rss,
    /// Host load average before the run and at its end.
    load: [Option<f64>; 2],
    first_error: Option<String>,
}

impl Figures {
    fn lost(&self) -> u64 {
        self.sent.iter().sum::<u64>().saturating_sub(self.acked)
    }

    /// Nothing lost, no logger failed, every logger held to the end.
    fn ok(&self, s: &Settings) -> bool {
        let all_held = usize::try_from(s.loggers).is_ok_and(|n| n == self.held);
        self.lost() == 0 && self.failures == 0 && all_held
    }

    fn latency(&self) -> [Option<u32>; 3] {
        quantiles(&self.all_latencies)
    }

    fn rss_ok(&self) -> Option<bool> {
        self.rss.peak.map(|k| k * 1024 < TARGET_RSS_BYTES)
    }

    fn p99_ok(&self) -> bool {
        self.latency()[1].is_some_and(|us| us < TARGET_P99_US)
    }

    fn summary(&self, s: &Settings) -> String {
        let yes = |b: bool| if b { "yes" } else { "NO" };
        let [p50, p99, max] = self.latency().map(show_ms);
        let [hs, data, hb] = self.sent;
        let (target, held, peak, acked) = (&self.target, self.held, self.peak, self.acked);
        let (lost, failures, n) = (self.lost(), self.failures, s.loggers);
        let mut out = format!(
            "collector_load: {n} loggers -> {target} (ramp {:?}, then {:?}; data every {:?}, \
             heartbeat every {:?})\n\
             connections held {held}/{n} at the end (peak {peak}), loggers failed {failures}\n\
             frames sent {} (handshake {hs}, data {data}, heartbeat {hb}), acknowledged {acked}, \
             lost {lost}\n\
             reply latency p50 {p50}, p99 {p99}, max {max} ({} samples); p99 by kind: \
             handshake {}, data {}, heartbeat {}\n\
             collector RSS before {}, loaded {}, peak {}\n\
             host load average (1 min) before {}, at the end {}\n\
             targets: RSS < 150 MB {}, p99 < 10 ms {}, zero lost frames {}",
            s.ramp,
            s.duration,
            s.data_interval,
            s.heartbeat_interval,
            hs + data + hb,
            self.all_latencies.len(),
            show_ms(quantiles(&self.latencies[Kind::Handshake.index()])[1]),
            show_ms(quantiles(&self.latencies[Kind::Data.index()])[1]),
            show_ms(quantiles(&self.latencies[Kind::Heartbeat.index()])[1]),
            mb(self.rss.before),
            mb(self.rss.loaded),
            mb(self.rss.peak),
            self.load[0].map_or_else(|| "n/a".into(), |l| l.to_string()),
            self.load[1].map_or_else(|| "n/a".into(), |l| l.to_string()),
            self.rss_ok().map_or("n/a", yes),
            yes(self.p99_ok()),
            yes(lost == 0),
        );
        if let Some(e) = &self.first_error {
            out.push_str(&format!("\nfirst error: {e}"));
        }
        out
    }

    fn json(&self, s: &Settings, stats: &Stats) -> Value {
        let failures: serde_json::Map<String, Value> = Failure::ALL
            .iter()
            .map(|f| (f.name().to_owned(), json!(stats.failures(*f))))
            .collect();
        let [hs, data, hb] = self.sent;
        json!({
            "bench": "collector_load",
            "target": self.target,
            "loggers": s.loggers,
            "ramp_s": s.ramp.as_secs_f64(),
            "duration_s": s.duration.as_secs_f64(),
            "data_interval_s": s.data_interval.as_secs_f64(),
            "heartbeat_interval_s": s.heartbeat_interval.as_secs_f64(),
            "connections_held": self.held,
            "connections_peak": self.peak,
            "failures": failures,
            "frames_sent": hs + data + hb,
            "frames_sent_by_kind": {"handshake": hs, "data": data, "heartbeat": hb},
            "frames_acked": self.acked,
            "frames_lost": self.lost(),
            "unsolicited_frames": stats.unsolicited.load(Ordering::Relaxed),
            "garbage_bytes": stats.garbage_bytes.load(Ordering::Relaxed),
            "latency_ms": latency_json(&self.all_latencies),
            "latency_ms_by_kind": {
                "handshake": latency_json(&self.latencies[Kind::Handshake.index()]),
                "data": latency_json(&self.latencies[Kind::Data.index()]),
                "heartbeat": latency_json(&self.latencies[Kind::Heartbeat.index()]),
            },
            "collector_pid": s.pid,
            "host_load_1m": {"before": self.load[0], "end": self.load[1]},
            "rss_kib": {"before": self.rss.before, "loaded": self.rss.loaded, "peak": self.rss.peak},
            "targets": {
                "rss_under_150mb": self.rss_ok(),
                "p99_under_10ms": self.p99_ok(),
                "zero_lost_frames": self.lost() == 0,
            },
            "ok": self.ok(s),
            "first_error": self.first_error,
        })
    }
}

/// Sleeps until `stop_at`, printing progress to stderr.
async fn wait_with_progress(stats: &Stats, t0: Instant, stop_at: Instant) {
    let mut next = t0;
    while next < stop_at {
        next = (next + PROGRESS_EVERY).min(stop_at);
        sleep_until(next).await;
        eprintln!(
            "collector_load: t={:>4.0}s connected {} sent {} acked {} failed {}",
            (next - t0).as_secs_f64(),
            stats.connected.load(Ordering::Relaxed),
            Stats::total(&stats.sent),
            stats.acked.load(Ordering::Relaxed),
            stats.all_failures(),
        );
    }
}

/// Runs the loggers from the start of the ramp to the end of the run and collects the figures.
async fn drive(s: &Settings) -> Result<(Figures, Arc<Ctx>), String> {
    let templates = Templates::load()?;
    frames::self_check(s.heartbeat_byte(), &templates)?;
    let (addr, target) = match s.addr {
        Some(addr) => (addr, addr.to_string()),
        None => (
            start_responder().await?,
            "in-process reference responder".into(),
        ),
    };
    let mut rss = Rss {
        before: s.pid.and_then(vm_rss_kib),
        ..Rss::default()
    };
    let load_before = load_average();
    let (stop_tx, stop_rx) = watch::channel(false);
    let rss_task = s
        .pid
        .map(|pid| tokio::spawn(sample_rss(pid, stop_rx.clone())));
    let ctx = Arc::new(Ctx {
        addr,
        serial_base: s.serial_base,
        heartbeat_byte: s.heartbeat_byte(),
        data_interval: s.data_interval,
        heartbeat_interval: s.heartbeat_interval,
        reply_timeout: s.reply_timeout,
        templates,
        stats: Stats::default(),
    });
    let t0 = Instant::now();
    let mut tasks = JoinSet::new();
    for index in 0..s.loggers {
        let start = t0 + s.ramp.mul_f64(f64::from(index) / f64::from(s.loggers));
        tasks.spawn(run_logger(index, start, Arc::clone(&ctx), stop_rx.clone()));
    }
    wait_with_progress(&ctx.stats, t0, t0 + s.ramp + s.duration).await;
    let held = ctx.stats.connected.load(Ordering::Relaxed);
    rss.loaded = s.pid.and_then(vm_rss_kib);
    let load = [load_before, load_average()];
    // Loggers finish the exchange in flight (bounded by the reply timeout), then close.
    let _ = stop_tx.send(true);
    let mut latencies = Latencies::default();
    while let Some(done) = tasks.join_next().await {
        let done = done.map_err(|e| format!("logger task: {e}"))?;
        for (all, one) in latencies.iter_mut().zip(done) {
            all.extend(one);
        }
    }
    if let Some(task) = rss_task {
        rss.peak = task.await.ok().flatten().max(rss.loaded);
    }
    let mut all_latencies = latencies.concat();
    all_latencies.sort_unstable();
    latencies.iter_mut().for_each(|l| l.sort_unstable());
    let stats = &ctx.stats;
    let figures = Figures {
        target,
        held,
        peak: stats.peak_connected.load(Ordering::Relaxed),
        sent: stats.sent.each_ref().map(|c| c.load(Ordering::Relaxed)),
        acked: stats.acked.load(Ordering::Relaxed),
        failures: stats.all_failures(),
        latencies,
        all_latencies,
        rss,
        load,
        first_error: stats.first_error(),
    };
    Ok((figures, ctx))
}

fn run(args: &Args) -> Result<bool, String> {
    let settings = Settings::from_args(args)?;
    settings.check_fds()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let (figures, ctx) = runtime.block_on(drive(&settings))?;
    println!("{}", figures.summary(&settings));
    println!("{}", figures.json(&settings, &ctx.stats));
    Ok(figures.ok(&settings))
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("collector_load: {e}");
            ExitCode::from(2)
        }
    }
}

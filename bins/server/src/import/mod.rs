//! `deyehard-server import-original --from postgres://…`: copies users, inverters and
//! measurements from a database of the original (Python) service into our store, whichever
//! backend the server is configured with. How to switch over: `docs/switching-over.md`.
//!
//! Two phases over one read-only snapshot of the original (module `source`):
//! 1. accounts: users page by page, each with its API key and inverters (module `accounts`);
//!    orphaned inverters are listed;
//! 2. readings: per inverter, AC and DC rows in time order through server-side cursors,
//!    deduplicated on (inverter, time), written through the store's normal
//!    [`ReadingWriter::write_readings`] in batches, so daily energy and rollups are maintained.
//!    Their source is `import`. Reading the original and writing our store overlap (a bounded
//!    channel of batches). Units: power W, day counters Wh as they are, the channels'
//!    truncated kWh lifetime counters × 1000 in Wh; the AC row's lifetime counter (a sum of
//!    those truncated values) is left out, because our energy maths prefers the lifetime counter
//!    and would count imported history in whole kWh steps.
//!
//! It is idempotent: accounts it created are recognised by e-mail and password hash, their
//! inverters by serial, and readings continue after the newest imported one (rows already
//! stored are duplicates, which change nothing). The summary goes to stdout (it is the
//! command's result); the progress bar and logs go to stderr.

mod accounts;
mod classify;
mod report;
mod source;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use deyehard_core::{InverterId, Reading, Source, TenantScope};
use deyehard_store::{ReadingReader, ReadingWriter, Store, WriteOutcome};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use accounts::IMPORTED_KEY_NAME;
pub use classify::{Classified, classify};
pub use report::{ImportReport, InverterNote};

use accounts::UserOutcome;
use source::{SourceDb, SourceInverter, StreamStats};

/// Users read per query.
const USER_PAGE: u32 = 500;

/// How an import runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// IANA time zone of the imported accounts (the original kept none).
    pub time_zone: String,
    /// Readings per write transaction, and rows per cursor fetch.
    pub batch_size: u32,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            time_zone: deyehard_store::DEFAULT_TIME_ZONE.to_owned(),
            batch_size: 1000,
            progress: false,
        }
    }
}

/// The command: runs the import and prints the summary on stdout.
pub async fn run_command(
    store: &Store,
    args: &crate::cli::ImportOriginalArgs,
) -> anyhow::Result<()> {
    let options = ImportOptions {
        time_zone: args.time_zone.clone(),
        batch_size: args.batch_size,
        progress: !args.no_progress && std::io::stderr().is_terminal(),
    };
    let report = run(store, &args.from, &options).await?;
    let mut out = std::io::stdout().lock();
    write!(out, "{report}").context("cannot write the summary")?;
    out.flush().context("cannot write the summary")?;
    Ok(())
}

/// Imports everything from the original database at `source_url` into `store`.
///
/// # Errors
/// A source that cannot be reached or is not of the original schema, an invalid time zone, or
/// a store error other than the per-row conflicts the report lists. What was written before the
/// error stays; running the import again completes it.
pub async fn run(
    store: &Store,
    source_url: &str,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    deyehard_core::energy::parse_tz(&options.time_zone).context("--time-zone")?;
    if options.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let mut source = SourceDb::open(source_url, options.batch_size).await?;
    let bar = progress_bar(options.progress);
    let mut report = ImportReport::default();
    let plan = import_accounts(store, &mut source, options, &bar, &mut report).await?;
    report.orphans = source
        .orphans()
        .await?
        .into_iter()
        .map(|o| orphan_note(&o))
        .collect();
    import_readings(store, &mut source, &plan, options, &bar, &mut report).await?;
    bar.finish_and_clear();
    report.elapsed = started.elapsed();
    tracing::info!(
        users = report.users_imported,
        inverters = report.inverters_imported,
        measurements = report.measurements_imported,
        dc_rows = report.dc_rows_imported,
        seconds = report.elapsed.as_secs_f64(),
        "import from the original service finished"
    );
    Ok(report)
}

/// One inverter whose readings are to be imported.
#[derive(Debug, Clone, Copy)]
struct Planned {
    scope: TenantScope,
    source_id: i64,
    target: InverterId,
    /// Readings up to this time were imported by an earlier run.
    after: Option<DateTime<Utc>>,
}

async fn import_accounts(
    store: &Store,
    source: &mut SourceDb,
    options: &ImportOptions,
    bar: &ProgressBar,
    report: &mut ImportReport,
) -> anyhow::Result<Vec<Planned>> {
    let mut plan = Vec::new();
    let mut last_id = i64::MIN;
    loop {
        let users = source.users_after(last_id, USER_PAGE).await?;
        let Some(last) = users.last() else {
            return Ok(plan);
        };
        last_id = last.id;
        for user in &users {
            report.users_seen += 1;
            bar.set_message(format!("accounts: {} users", report.users_seen));
            let (scope, resumed) =
                match accounts::import_user(store, user, &options.time_zone, report).await? {
                    UserOutcome::Created(scope) => (scope, false),
                    UserOutcome::Resumed(scope) => (scope, true),
                    UserOutcome::Skipped => continue,
                };
            if let Some(key) = &user.api_key {
                accounts::import_api_key(store, &scope, key, report).await?;
            }
            let inverters = source.inverters_of(user.id).await?;
            let email = user.email.trim();
            let pairs =
                accounts::import_inverters(store, &scope, email, &inverters, report).await?;
            let done = if resumed {
                imported_until(store, &scope).await?
            } else {
                HashMap::new()
            };
            plan.extend(pairs.into_iter().map(|(source_id, target)| Planned {
                scope,
                source_id,
                target,
                after: done.get(&target).copied(),
            }));
        }
    }
}

/// For each of the user's inverters whose newest reading came from an import: its time.
async fn imported_until(
    store: &Store,
    scope: &TenantScope,
) -> anyhow::Result<HashMap<InverterId, DateTime<Utc>>> {
    Ok(store
        .latest_readings(scope)
        .await?
        .into_iter()
        .filter(|latest| latest.reading.source == Source::Import)
        .map(|latest| (latest.inverter_id, latest.reading.time))
        .collect())
}

/// Batches on their way from the reader to the writer: reading the original and writing our
/// store overlap, and memory stays bounded.
const PIPELINE_DEPTH: usize = 2;

/// Readings of one tenant to write, and the progress once they are written.
struct Batch {
    scope: TenantScope,
    readings: Vec<(InverterId, Reading)>,
    position: u64,
}

async fn import_readings(
    store: &Store,
    source: &mut SourceDb,
    plan: &[Planned],
    options: &ImportOptions,
    bar: &ProgressBar,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    let counts = source.measurement_counts().await?;
    let counts: Vec<u64> = plan
        .iter()
        .map(|p| counts.get(&p.source_id).copied().unwrap_or(0))
        .collect();
    bar.set_length(counts.iter().sum());
    bar.set_position(0);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} measurements ({per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    let capacity = usize::try_from(options.batch_size)
        .unwrap_or(usize::MAX)
        .min(100_000);
    let (tx, rx) = tokio::sync::mpsc::channel(PIPELINE_DEPTH);
    let reader = read_all(source, plan, &counts, capacity, tx);
    let writer = write_all(store, rx, bar);
    let (stats, written) = tokio::try_join!(reader, writer)?;
    report.add_stream(&stats, &written);
    Ok(())
}

/// Reads the planned inverters' readings into batches of `capacity`.
async fn read_all(
    source: &mut SourceDb,
    plan: &[Planned],
    counts: &[u64],
    capacity: usize,
    tx: tokio::sync::mpsc::Sender<Batch>,
) -> anyhow::Result<StreamStats> {
    let mut total = StreamStats::default();
    let mut base = 0;
    for (planned, count) in plan.iter().zip(counts) {
        let mut rows = source
            .measurements(planned.source_id, planned.after)
            .await?;
        let mut readings = Vec::with_capacity(capacity);
        while let Some(reading) = rows.next(planned.after).await? {
            readings.push((planned.target, reading));
            if readings.len() >= capacity {
                let full = std::mem::replace(&mut readings, Vec::with_capacity(capacity));
                let position = base + rows.stats().ac_rows;
                send(&tx, planned.scope, full, position).await?;
            }
        }
        base += count;
        send(&tx, planned.scope, readings, base).await?;
        total.add(&rows.stats());
        rows.close().await?;
    }
    Ok(total)
}

async fn send(
    tx: &tokio::sync::mpsc::Sender<Batch>,
    scope: TenantScope,
    readings: Vec<(InverterId, Reading)>,
    position: u64,
) -> anyhow::Result<()> {
    let batch = Batch {
        scope,
        readings,
        position,
    };
    // The writer only stops early on an error, which `try_join!` reports.
    tx.send(batch)
        .await
        .map_err(|_| anyhow::anyhow!("the writer stopped"))
}

/// Writes the batches as they come.
async fn write_all(
    store: &Store,
    mut rx: tokio::sync::mpsc::Receiver<Batch>,
    bar: &ProgressBar,
) -> anyhow::Result<Written> {
    let mut written = Written::default();
    while let Some(mut batch) = rx.recv().await {
        write_batch(store, &batch.scope, &mut batch.readings, &mut written).await?;
        bar.set_position(batch.position);
    }
    Ok(written)
}

/// What writing readings did.
#[derive(Debug, Clone, Copy, Default)]
struct Written {
    stored: u64,
    present: u64,
    dc_rows: u64,
}

async fn write_batch(
    store: &Store,
    scope: &TenantScope,
    batch: &mut Vec<(InverterId, Reading)>,
    written: &mut Written,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes = store
        .write_readings(scope, batch, Utc::now())
        .await
        .context("cannot store imported readings")?;
    for (outcome, (_, reading)) in outcomes.iter().zip(batch.iter()) {
        match outcome {
            WriteOutcome::Stored => {
                written.stored += 1;
                written.dc_rows += reading.dc.len() as u64;
            }
            WriteOutcome::Duplicate => written.present += 1,
            WriteOutcome::NotFound => bail!("an imported inverter disappeared during the import"),
        }
    }
    batch.clear();
    Ok(())
}

impl ImportReport {
    fn add_stream(&mut self, stats: &StreamStats, written: &Written) {
        self.measurement_rows_read += stats.ac_rows;
        self.duplicates_removed += stats.duplicates;
        self.dc_duplicates_removed += stats.dc_duplicates;
        self.dc_bad_channel += stats.dc_bad_channel;
        self.dc_without_ac += stats.dc_without_ac;
        self.measurements_imported += written.stored;
        self.measurements_present += written.present;
        self.dc_rows_imported += written.dc_rows;
    }
}

fn orphan_note(inverter: &SourceInverter) -> InverterNote {
    InverterNote {
        source_id: inverter.id,
        name: inverter.name.clone().unwrap_or_default(),
        serial: inverter.serial_logger.clone().unwrap_or_default(),
        owner: None,
        reason: match inverter.user_id {
            None => "no owner (user_id is NULL)".to_owned(),
            Some(id) => format!("its owner {id} does not exist"),
        },
    }
}

/// A progress bar on stderr, or a hidden one.
fn progress_bar(visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

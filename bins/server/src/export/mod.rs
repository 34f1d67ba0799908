//! Exports of a user's readings, shared by the `export` command and the HTTP endpoints
//! (`/api/inverters/{id}/export.csv`, `/api/inverters/{id}/readings`, the `/export` page).
//!
//! An [`Export`] produces its output in chunks of about [`CHUNK_BYTES`], reading the store page
//! by page ([`PAGE`] readings per inverter at a time): the command writes the chunks to
//! stdout, the server streams them as the response body ([`Export::into_body`]). Memory stays
//! bounded whatever the range.
//!
//! - Readings, JSON lines: one [`ReadingRow`] per line with `time` (RFC 3339, UTC),
//!   `inverter_serial`, the AC values, `reachable`, `producing`, `source` and `dc` (a list of
//!   channels); absent values are `null`. The readings of several inverters are merged by time
//!   (ties in inverter-id order).
//! - Readings, CSV: a header line, then one line per reading with the same columns, the DC
//!   channels spread into `dc<N>_<field>` column groups for channels 1 … N (N is the highest
//!   channel stored in the range, asked of the store before the first line). With a time zone
//!   ([`CsvStyle::zone`]), a `time_local` column (`YYYY-MM-DD HH:MM:SS` in that zone) follows
//!   `time`. Channels stored while the export runs, above N, are left out (and counted).
//! - Daily energy, CSV: `day` (the local day in the owner's zone), `inverter_serial`,
//!   `energy_wh`, `peak_power_w`, `samples`; one inverter after the other, days ascending.
//!
//! `inverter_serial` is the device serial, or the logger serial for a Solarman inverter whose
//! device serial is not known yet.

mod rows;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use deyehard_core::{InverterId, Reading, TenantScope};
use deyehard_store::{ExportReader, Inverter, InverterStore, ReadingReader, Store, StoreError};

pub use rows::ReadingRow;
pub(crate) use rows::{CsvStyle, rfc3339};
use rows::{
    write_csv_header, write_csv_line, write_daily_header, write_daily_line, write_json_line,
};

use crate::cli::{ExportArgs, ExportFormat};

/// Readings fetched per inverter and query.
pub(crate) const PAGE: u32 = 1000;
/// A chunk is handed out once it holds at least this many bytes.
pub(crate) const CHUNK_BYTES: usize = 64 * 1024;

/// The `inverter_serial` of an inverter's rows.
pub(crate) fn label(inv: &Inverter) -> Option<String> {
    inv.serial
        .as_ref()
        .map(|s| s.as_str().to_owned())
        .or_else(|| inv.logger_serial.map(|l| l.to_string()))
}

/// What an export writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Format {
    /// Readings as JSON lines.
    JsonLines,
    /// Readings as CSV.
    Csv(CsvStyle),
    /// Daily energy of the local days `from ..= to` as CSV.
    DailyCsv {
        /// First day.
        from: NaiveDate,
        /// Last day (inclusive).
        to: NaiveDate,
        /// BOM (the zone is the owner's: the store keeps days in it).
        bom: bool,
    },
}

/// An export in progress (see the module docs).
pub(crate) struct Export {
    store: Arc<Store>,
    scope: TenantScope,
    format: Format,
    cursors: Vec<Cursor>,
    /// Inverters whose daily energy is still to be written.
    daily: VecDeque<(InverterId, Option<String>)>,
    channels: u8,
    pending: Vec<u8>,
    written: u64,
    dropped: u64,
}

impl Export {
    /// Prepares the export of `inverters` over `[from, to)` (for the readings formats) and
    /// writes its header.
    ///
    /// # Errors
    /// Store errors ([`StoreError::NotFound`] for an inverter outside the scope).
    pub(crate) async fn new(
        store: Arc<Store>,
        scope: TenantScope,
        inverters: &[Inverter],
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        format: Format,
    ) -> Result<Self, StoreError> {
        let mut export = Self {
            cursors: Vec::new(),
            daily: VecDeque::new(),
            channels: 0,
            pending: Vec::with_capacity(CHUNK_BYTES),
            written: 0,
            dropped: 0,
            store,
            scope,
            format,
        };
        match format {
            Format::JsonLines => export.cursors = cursors(inverters, from, to),
            Format::Csv(style) => {
                for inv in inverters {
                    let channels = export
                        .store
                        .export_dc_channels(&scope, inv.id, from, to)
                        .await?;
                    export.channels = channels.into_iter().fold(export.channels, u8::max);
                }
                export.cursors = cursors(inverters, from, to);
                write_csv_header(&mut export.pending, style, export.channels);
            }
            Format::DailyCsv { bom, .. } => {
                export.daily = inverters.iter().map(|inv| (inv.id, label(inv))).collect();
                write_daily_header(&mut export.pending, bom);
            }
        }
        Ok(export)
    }

    /// Readings (or days) written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// DC channels left out because they were stored after the columns were chosen.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The next part of the output; `None` at the end.
    ///
    /// # Errors
    /// Store errors.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        while self.pending.len() < CHUNK_BYTES {
            let more = match self.format {
                Format::DailyCsv { from, to, .. } => {
                    self.write_next_inverter_days(from, to).await?
                }
                Format::JsonLines | Format::Csv(_) => self.write_next_reading().await?,
            };
            if !more {
                break;
            }
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        Ok(Some(std::mem::replace(
            &mut self.pending,
            Vec::with_capacity(CHUNK_BYTES),
        )))
    }

    /// Appends the next reading in time order; `false` when there is none.
    async fn write_next_reading(&mut self) -> Result<bool, StoreError> {
        let Some((label, reading)) =
            next_in_time(&self.store, &self.scope, &mut self.cursors).await?
        else {
            return Ok(false);
        };
        match self.format {
            Format::Csv(style) => {
                self.dropped += write_csv_line(
                    &mut self.pending,
                    style,
                    label.as_deref(),
                    &reading,
                    self.channels,
                );
            }
            _ => write_json_line(&mut self.pending, label.as_deref(), &reading),
        }
        self.written += 1;
        Ok(true)
    }

    /// Appends the daily energy of the next inverter; `false` when there is none.
    async fn write_next_inverter_days(
        &mut self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<bool, StoreError> {
        let Some((id, label)) = self.daily.pop_front() else {
            return Ok(false);
        };
        let days = self.store.daily_energy(&self.scope, id, from, to).await?;
        for day in &days {
            write_daily_line(&mut self.pending, label.as_deref(), day);
        }
        self.written += u64::try_from(days.len()).unwrap_or(u64::MAX);
        Ok(true)
    }

    /// The whole output as a streamed response body. A store error after the first chunk
    /// breaks the connection (the status line has been sent): the client sees a truncated
    /// transfer, never a silently short file.
    pub(crate) fn into_body(self) -> poem::Body {
        let chunks = futures_util::stream::unfold(Some(self), |state| async move {
            let mut export = state?;
            match export.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(export))),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "export stopped");
                    Some((Err(std::io::Error::other(e)), None))
                }
            }
        });
        poem::Body::from_bytes_stream(chunks)
    }
}

fn cursors(inverters: &[Inverter], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Cursor> {
    inverters
        .iter()
        .map(|inv| Cursor {
            id: inv.id,
            label: label(inv),
            next_from: from,
            to,
            buffer: VecDeque::new(),
            exhausted: false,
        })
        .collect()
}

/// One inverter's position in the export.
struct Cursor {
    id: InverterId,
    label: Option<String>,
    next_from: DateTime<Utc>,
    to: DateTime<Utc>,
    buffer: VecDeque<Reading>,
    exhausted: bool,
}

impl Cursor {
    /// The next reading's time, fetching a page when the buffer is empty.
    async fn peek(
        &mut self,
        store: &Store,
        scope: &TenantScope,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        if self.buffer.is_empty() && !self.exhausted {
            let page = store
                .readings(scope, self.id, self.next_from, self.to, PAGE)
                .await?;
            self.exhausted = page.len() < usize::try_from(PAGE).unwrap_or(usize::MAX);
            match page.last() {
                Some(last) => self.next_from = last.time + TimeDelta::milliseconds(1),
                None => self.exhausted = true,
            }
            self.buffer.extend(page);
        }
        Ok(self.buffer.front().map(|r| r.time))
    }
}

/// The next reading over all cursors, oldest first (ties: the earlier cursor).
async fn next_in_time(
    store: &Store,
    scope: &TenantScope,
    cursors: &mut [Cursor],
) -> Result<Option<(Option<String>, Reading)>, StoreError> {
    let mut best: Option<(usize, DateTime<Utc>)> = None;
    for (index, cursor) in cursors.iter_mut().enumerate() {
        if let Some(time) = cursor.peek(store, scope).await?
            && best.is_none_or(|(_, t)| time < t)
        {
            best = Some((index, time));
        }
    }
    Ok(best.and_then(|(index, _)| {
        let cursor = &mut cursors[index];
        cursor.buffer.pop_front().map(|r| (cursor.label.clone(), r))
    }))
}

/// The `export` command for the user `scope`: readings on stdout (no BOM, times in UTC).
pub(crate) async fn run(
    store: Arc<Store>,
    scope: &TenantScope,
    args: &ExportArgs,
) -> anyhow::Result<()> {
    let inverters = select(&store, scope, args.inverter.as_deref()).await?;
    let from = args.from.unwrap_or(DateTime::UNIX_EPOCH);
    // Device clocks may run up to 10 minutes ahead: by default, everything stored.
    let to = args.to.unwrap_or_else(|| Utc::now() + TimeDelta::days(1));
    if from >= to {
        bail!("--from must be before --to");
    }
    let format = match args.format {
        ExportFormat::Json => Format::JsonLines,
        ExportFormat::Csv => Format::Csv(CsvStyle::default()),
    };
    let mut export = Export::new(store, *scope, &inverters, (from, to), format)
        .await
        .context("cannot read the readings")?;
    let mut out = io::stdout().lock();
    while let Some(chunk) = export
        .next_chunk()
        .await
        .context("cannot read the readings")?
    {
        match out.write_all(&chunk) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
        other => other?,
    }
    if export.dropped() > 0 {
        tracing::warn!(
            dropped = export.dropped(),
            "DC channels stored during the export, above its CSV columns, were left out"
        );
    }
    tracing::info!(
        readings = export.written(),
        inverters = inverters.len(),
        "export finished"
    );
    Ok(())
}

/// The user's inverters to export: all, or the one whose device (or logger) serial is `serial`.
async fn select(
    store: &Store,
    scope: &TenantScope,
    serial: Option<&str>,
) -> anyhow::Result<Vec<Inverter>> {
    let all = store
        .inverters(scope)
        .await
        .context("cannot list the inverters")?;
    let Some(serial) = serial else {
        return Ok(all);
    };
    let chosen: Vec<Inverter> = all
        .into_iter()
        .filter(|inv| {
            inv.serial.as_ref().is_some_and(|s| s.as_str() == serial)
                || inv.logger_serial.is_some_and(|l| l.to_string() == serial)
        })
        .collect();
    if chosen.is_empty() {
        bail!("the user has no inverter with the serial {serial:?}");
    }
    Ok(chosen)
}

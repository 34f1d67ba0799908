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

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;

use anyhow::{Context, bail};

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, Utc};
use chrono_tz::Tz;
use deyehard_core::{DcReading, InverterId, Reading, TenantScope};
use deyehard_store::{ExportReader, Inverter, InverterStore, ReadingReader, Store, StoreError};
use poem_openapi::Object;
use serde::Serialize;

use crate::cli::{ExportArgs, ExportFormat};

/// Readings fetched per inverter and query.
pub(crate) const PAGE: u32 = 1000;
/// A chunk is handed out once it holds at least this many bytes.
pub(crate) const CHUNK_BYTES: usize = 64 * 1024;
/// What spreadsheet programs look for to read a CSV file as UTF-8.
const BOM: &str = "\u{feff}";

/// The DC fields of the CSV columns, in order.
const DC_FIELDS: [&str; 7] = [
    "name",
    "power_w",
    "voltage_v",
    "current_a",
    "yield_day_wh",
    "yield_total_wh",
    "irradiation_pct",
];

/// The AC columns after `time` (and `time_local`), in order (JSON keys and CSV header).
const AC_COLUMNS: [&str; 13] = [
    "inverter_serial",
    "power_ac_w",
    "voltage_ac_v",
    "current_ac_a",
    "frequency_hz",
    "power_factor",
    "power_dc_w",
    "temperature_c",
    "yield_day_wh",
    "yield_total_wh",
    "reachable",
    "producing",
    "source",
];

/// The daily-energy CSV columns.
const DAILY_COLUMNS: &str = "day,inverter_serial,energy_wh,peak_power_w,samples";

/// One exported reading: a JSON line of the `export` command, an item of the readings API.
#[derive(Debug, Clone, PartialEq, Serialize, Object)]
pub struct ReadingRow {
    /// Device time of the reading, RFC 3339 in UTC (`2025-10-19T15:54:43Z`).
    pub time: String,
    /// The inverter's device serial (or the logger serial while the device serial is unknown).
    pub inverter_serial: Option<String>,
    /// AC active power, W.
    pub power_ac_w: Option<f64>,
    /// AC voltage, V.
    pub voltage_ac_v: Option<f64>,
    /// AC current, A.
    pub current_ac_a: Option<f64>,
    /// Grid frequency, Hz.
    pub frequency_hz: Option<f64>,
    /// Power factor.
    pub power_factor: Option<f64>,
    /// Total DC power, W.
    pub power_dc_w: Option<f64>,
    /// Inverter temperature, °C.
    pub temperature_c: Option<f64>,
    /// The device's day counter, Wh.
    pub yield_day_wh: Option<f64>,
    /// The device's lifetime counter, Wh.
    pub yield_total_wh: Option<f64>,
    /// The device was reachable (values of an unreachable device are stale).
    pub reachable: bool,
    /// The device said it was producing.
    pub producing: bool,
    /// `opendtu`, `solarman`, `solarman_buffered`, `victron` or `import`.
    pub source: String,
    /// DC channels (strings / MPPT inputs).
    pub dc: Vec<DcRow>,
}

/// One DC channel of an exported reading.
#[derive(Debug, Clone, PartialEq, Serialize, Object)]
pub struct DcRow {
    /// 1-based channel number.
    pub channel: u8,
    /// Name given on the device.
    pub name: Option<String>,
    /// DC power, W.
    pub power_w: Option<f64>,
    /// DC voltage, V.
    pub voltage_v: Option<f64>,
    /// DC current, A.
    pub current_a: Option<f64>,
    /// Day counter of the channel, Wh.
    pub yield_day_wh: Option<f64>,
    /// Lifetime counter of the channel, Wh.
    pub yield_total_wh: Option<f64>,
    /// Irradiation, % of the input's configured maximum power.
    pub irradiation_pct: Option<f64>,
}

impl ReadingRow {
    /// The row of `r`, a reading of the inverter labelled `serial`.
    pub fn new(serial: Option<&str>, r: &Reading) -> Self {
        Self {
            time: rfc3339(r.time),
            inverter_serial: serial.map(str::to_owned),
            power_ac_w: r.power_ac_w,
            voltage_ac_v: r.voltage_ac_v,
            current_ac_a: r.current_ac_a,
            frequency_hz: r.frequency_hz,
            power_factor: r.power_factor,
            power_dc_w: r.power_dc_w,
            temperature_c: r.temperature_c,
            yield_day_wh: r.yield_day_wh,
            yield_total_wh: r.yield_total_wh,
            reachable: r.reachable,
            producing: r.producing,
            source: r.source.as_str().to_owned(),
            dc: r.dc.iter().map(DcRow::from).collect(),
        }
    }
}

impl From<&DcReading> for DcRow {
    fn from(dc: &DcReading) -> Self {
        Self {
            channel: dc.channel,
            name: dc.name.clone(),
            power_w: dc.power_w,
            voltage_v: dc.voltage_v,
            current_a: dc.current_a,
            yield_day_wh: dc.yield_day_wh,
            yield_total_wh: dc.yield_total_wh,
            irradiation_pct: dc.irradiation_pct,
        }
    }
}

/// The `inverter_serial` of an inverter's rows.
pub(crate) fn label(inv: &Inverter) -> Option<String> {
    inv.serial
        .as_ref()
        .map(|s| s.as_str().to_owned())
        .or_else(|| inv.logger_serial.map(|l| l.to_string()))
}

/// An instant as the exports write it: RFC 3339, UTC, `Z`.
pub(crate) fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// How a CSV export is written.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CsvStyle {
    /// Add a `time_local` column in this zone.
    pub(crate) zone: Option<Tz>,
    /// Start with a UTF-8 byte order mark (for spreadsheet programs).
    pub(crate) bom: bool,
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
                    let channels = export.store.dc_channels(&scope, inv.id, from, to).await?;
                    export.channels = channels.into_iter().fold(export.channels, u8::max);
                }
                export.cursors = cursors(inverters, from, to);
                write_csv_header(&mut export.pending, style, export.channels);
            }
            Format::DailyCsv { bom, .. } => {
                export.daily = inverters.iter().map(|inv| (inv.id, label(inv))).collect();
                if bom {
                    export.pending.extend_from_slice(BOM.as_bytes());
                }
                export.pending.extend_from_slice(DAILY_COLUMNS.as_bytes());
                export.pending.push(b'\n');
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
        let serial = csv_text(label.as_deref().unwrap_or_default());
        for day in &days {
            let line = format!(
                "{},{serial},{},{},{}\n",
                day.day.format("%Y-%m-%d"),
                day.energy_wh,
                number(day.peak_power_w),
                day.samples
            );
            self.pending.extend_from_slice(line.as_bytes());
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

fn write_json_line(out: &mut Vec<u8>, serial: Option<&str>, r: &Reading) {
    // Serialising plain numbers, strings and booleans into memory cannot fail.
    if serde_json::to_writer(&mut *out, &ReadingRow::new(serial, r)).is_ok() {
        out.push(b'\n');
    }
}

fn write_csv_header(out: &mut Vec<u8>, style: CsvStyle, channels: u8) {
    if style.bom {
        out.extend_from_slice(BOM.as_bytes());
    }
    let mut columns = vec!["time".to_owned()];
    if style.zone.is_some() {
        columns.push("time_local".to_owned());
    }
    columns.extend(AC_COLUMNS.iter().map(|c| (*c).to_owned()));
    for channel in 1..=channels {
        columns.extend(DC_FIELDS.iter().map(|f| format!("dc{channel}_{f}")));
    }
    out.extend_from_slice(columns.join(",").as_bytes());
    out.push(b'\n');
}

fn number(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Writes one CSV line; returns how many DC channels did not fit the columns.
fn write_csv_line(
    out: &mut Vec<u8>,
    style: CsvStyle,
    serial: Option<&str>,
    r: &Reading,
    channels: u8,
) -> u64 {
    let mut fields = vec![rfc3339(r.time)];
    if let Some(zone) = style.zone {
        fields.push(
            r.time
                .with_timezone(&zone)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
        );
    }
    fields.extend([
        csv_text(serial.unwrap_or_default()),
        number(r.power_ac_w),
        number(r.voltage_ac_v),
        number(r.current_ac_a),
        number(r.frequency_hz),
        number(r.power_factor),
        number(r.power_dc_w),
        number(r.temperature_c),
        number(r.yield_day_wh),
        number(r.yield_total_wh),
        r.reachable.to_string(),
        r.producing.to_string(),
        r.source.as_str().to_owned(),
    ]);
    for channel in 1..=channels {
        match r.dc.iter().find(|dc| dc.channel == channel) {
            Some(dc) => fields.extend([
                csv_text(dc.name.as_deref().unwrap_or_default()),
                number(dc.power_w),
                number(dc.voltage_v),
                number(dc.current_a),
                number(dc.yield_day_wh),
                number(dc.yield_total_wh),
                number(dc.irradiation_pct),
            ]),
            None => fields.extend(std::iter::repeat_n(String::new(), DC_FIELDS.len())),
        }
    }
    out.extend_from_slice(fields.join(",").as_bytes());
    out.push(b'\n');
    let dropped = r.dc.iter().filter(|dc| dc.channel > channels).count();
    u64::try_from(dropped).unwrap_or(u64::MAX)
}

/// A text field for CSV (RFC 4180): quoted when it holds a comma, a quote or a line break.
/// A leading `=`, `+`, `-` or `@` (a formula to spreadsheet programs) is defused with a `'`.
fn csv_text(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use deyehard_core::Source;

    use super::*;

    fn reading() -> Reading {
        let mut r = Reading::new(
            Utc.with_ymd_and_hms(2025, 10, 19, 15, 54, 43).unwrap(),
            Source::Opendtu,
        );
        r.power_ac_w = Some(16.1);
        r.yield_total_wh = Some(444_671.0);
        r.reachable = true;
        let mut dc = DcReading::new(2);
        dc.name = Some("West, \"big\"".to_owned());
        dc.power_w = Some(3.4);
        r.dc.push(dc);
        r
    }

    #[test]
    fn json_lines_name_every_field_and_use_null_for_absent_values() {
        let mut out = Vec::new();
        write_json_line(&mut out, Some("116166771004"), &reading());
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n') && text.lines().count() == 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["time"], "2025-10-19T15:54:43Z");
        assert_eq!(v["inverter_serial"], "116166771004");
        assert_eq!(v["power_ac_w"], 16.1);
        assert_eq!(v["voltage_ac_v"], serde_json::Value::Null);
        assert_eq!(v["yield_total_wh"], 444_671.0);
        assert_eq!(
            (v["reachable"].clone(), v["producing"].clone()),
            (true.into(), false.into())
        );
        assert_eq!(v["source"], "opendtu");
        assert_eq!(v["dc"][0]["channel"], 2);
        assert_eq!(v["dc"][0]["irradiation_pct"], serde_json::Value::Null);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for column in AC_COLUMNS.iter().chain(&["time", "dc"]) {
            assert!(keys.contains(column), "{column}");
        }
    }

    #[test]
    fn csv_lines_spread_channels_and_quote_text() {
        let mut out = Vec::new();
        let style = CsvStyle::default();
        write_csv_header(&mut out, style, 2);
        let dropped = write_csv_line(&mut out, style, Some("116166771004"), &reading(), 2);
        assert_eq!(dropped, 0);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("time,inverter_serial,power_ac_w,"));
        assert!(lines[0].ends_with(",dc2_yield_total_wh,dc2_irradiation_pct"));
        assert_eq!(
            lines[1],
            "2025-10-19T15:54:43Z,116166771004,16.1,,,,,,,,444671,true,false,opendtu,,,,,,,,\"West, \"\"big\"\"\",3.4,,,,,"
        );
        assert_eq!(
            lines[0].split(',').count(),
            1 + AC_COLUMNS.len() + 2 * DC_FIELDS.len()
        );
    }

    #[test]
    fn csv_for_spreadsheets_has_a_bom_and_local_time() {
        let mut out = Vec::new();
        let style = CsvStyle {
            zone: Some(chrono_tz::Europe::Berlin),
            bom: true,
        };
        write_csv_header(&mut out, style, 0);
        write_csv_line(&mut out, style, Some("1"), &reading(), 0);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("\u{feff}time,time_local,inverter_serial,"));
        assert!(
            text.contains("\n2025-10-19T15:54:43Z,2025-10-19 17:54:43,1,16.1,"),
            "{text}"
        );
    }

    #[test]
    fn csv_reports_channels_beyond_its_columns() {
        let mut out = Vec::new();
        assert_eq!(
            write_csv_line(&mut out, CsvStyle::default(), None, &reading(), 1),
            1
        );
    }

    #[test]
    fn csv_text_defuses_formulas() {
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_text("Süd"), "Süd");
    }
}

//! `deyehard-server export`: a user's readings on stdout, as JSON lines or CSV, in time order.
//!
//! Readings are read page by page ([`PAGE`] per inverter at a time) and the inverters' pages
//! are merged by time (ties in inverter-id order), so memory stays bounded whatever the range.
//!
//! - JSON: one object per line with `time` (RFC 3339, UTC), `inverter_serial`, the AC values,
//!   `reachable`, `producing`, `source` and `dc` (a list of channels); absent values are `null`.
//! - CSV: a header line, then one line per reading with the same columns, the DC channels
//!   spread into `dc<N>_<field>` columns for channels 1 … N. The columns must be known before
//!   the first line, so CSV reads the range twice: once for the highest channel number (and
//!   each inverter's newest reading, which bounds the second pass so that pushes arriving
//!   meanwhile do not change the columns), once to write.
//!
//! `inverter_serial` is the device serial, or the logger serial for a Solarman inverter whose
//! device serial is not known yet.

use std::collections::VecDeque;
use std::io::{self, Write};

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use deyehard_core::{DcReading, InverterId, Reading, TenantScope};
use deyehard_store::{Inverter, InverterStore, ReadingReader, Store};
use serde::Serialize;

use crate::cli::{ExportArgs, ExportFormat};

/// Readings fetched per inverter and query.
pub(crate) const PAGE: u32 = 1000;

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

/// The AC columns, in order (JSON keys and CSV header).
const AC_COLUMNS: [&str; 14] = [
    "time",
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

/// Runs the command for the user `scope`, writing to stdout.
pub(crate) async fn run(
    store: &Store,
    scope: &TenantScope,
    args: &ExportArgs,
) -> anyhow::Result<()> {
    let inverters = select(store, scope, args.inverter.as_deref()).await?;
    let from = args.from.unwrap_or(DateTime::UNIX_EPOCH);
    // Device clocks may run up to 10 minutes ahead: by default, everything stored.
    let to = args.to.unwrap_or_else(|| Utc::now() + TimeDelta::days(1));
    if from >= to {
        bail!("--from must be before --to");
    }
    let mut out = io::BufWriter::new(io::stdout());
    let written = export(store, scope, &inverters, (from, to), args.format, &mut out).await;
    let written = match written.and_then(|n| out.flush().map(|()| n).map_err(Into::into)) {
        Err(e) if is_broken_pipe(&e) => return Ok(()),
        other => other?,
    };
    tracing::info!(
        readings = written,
        inverters = inverters.len(),
        "export finished"
    );
    Ok(())
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
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
        .filter(|inv| matches_serial(inv, serial))
        .collect();
    if chosen.is_empty() {
        bail!("the user has no inverter with the serial {serial:?}");
    }
    Ok(chosen)
}

fn matches_serial(inv: &Inverter, serial: &str) -> bool {
    inv.serial.as_ref().is_some_and(|s| s.as_str() == serial)
        || inv.logger_serial.is_some_and(|l| l.to_string() == serial)
}

/// The `inverter_serial` of an inverter's rows.
fn label(inv: &Inverter) -> Option<String> {
    inv.serial
        .as_ref()
        .map(|s| s.as_str().to_owned())
        .or_else(|| inv.logger_serial.map(|l| l.to_string()))
}

/// Writes the readings of `inverters` in `[from, to)` and returns how many were written.
pub(crate) async fn export(
    store: &Store,
    scope: &TenantScope,
    inverters: &[Inverter],
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    format: ExportFormat,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let mut cursors: Vec<Cursor> = inverters
        .iter()
        .map(|inv| Cursor::new(inv, from, to))
        .collect();
    let channels = match format {
        ExportFormat::Json => 0,
        ExportFormat::Csv => {
            let channels = survey(store, scope, &mut cursors).await?;
            write_csv_header(out, channels)?;
            channels
        }
    };
    let mut written = 0;
    let mut dropped = 0;
    while let Some((label, reading)) = next_in_time(store, scope, &mut cursors).await? {
        match format {
            ExportFormat::Json => write_json_line(out, label.as_deref(), &reading)?,
            ExportFormat::Csv => {
                dropped += write_csv_line(out, label.as_deref(), &reading, channels)?;
            }
        }
        written += 1;
    }
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "DC channels above the CSV columns (stored during the export) were left out"
        );
    }
    Ok(written)
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
    fn new(inv: &Inverter, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Self {
            id: inv.id,
            label: label(inv),
            next_from: from,
            to,
            buffer: VecDeque::new(),
            exhausted: false,
        }
    }

    /// The next reading's time, fetching a page when the buffer is empty.
    async fn peek(
        &mut self,
        store: &Store,
        scope: &TenantScope,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        if self.buffer.is_empty() && !self.exhausted {
            let page = store
                .readings(scope, self.id, self.next_from, self.to, PAGE)
                .await
                .context("cannot read the readings")?;
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
) -> anyhow::Result<Option<(Option<String>, Reading)>> {
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

/// First CSV pass: the highest DC channel in the range, and each cursor's end set just after
/// its newest reading. The cursors are rewound for the second pass.
async fn survey(store: &Store, scope: &TenantScope, cursors: &mut [Cursor]) -> anyhow::Result<u8> {
    let mut channels = 0;
    for cursor in cursors.iter_mut() {
        let start = cursor.next_from;
        let mut newest = None;
        while cursor.peek(store, scope).await?.is_some() {
            for reading in cursor.buffer.drain(..) {
                channels = reading
                    .dc
                    .iter()
                    .map(|dc| dc.channel)
                    .fold(channels, u8::max);
                newest = Some(reading.time);
            }
        }
        cursor.to = newest.map_or(start, |t| t + TimeDelta::milliseconds(1));
        cursor.next_from = start;
        cursor.exhausted = newest.is_none();
    }
    Ok(channels)
}

#[derive(Serialize)]
struct JsonLine<'a> {
    time: String,
    inverter_serial: Option<&'a str>,
    power_ac_w: Option<f64>,
    voltage_ac_v: Option<f64>,
    current_ac_a: Option<f64>,
    frequency_hz: Option<f64>,
    power_factor: Option<f64>,
    power_dc_w: Option<f64>,
    temperature_c: Option<f64>,
    yield_day_wh: Option<f64>,
    yield_total_wh: Option<f64>,
    reachable: bool,
    producing: bool,
    source: &'static str,
    dc: Vec<JsonDc<'a>>,
}

#[derive(Serialize)]
struct JsonDc<'a> {
    channel: u8,
    name: Option<&'a str>,
    power_w: Option<f64>,
    voltage_v: Option<f64>,
    current_a: Option<f64>,
    yield_day_wh: Option<f64>,
    yield_total_wh: Option<f64>,
    irradiation_pct: Option<f64>,
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn write_json_line(out: &mut impl Write, serial: Option<&str>, r: &Reading) -> anyhow::Result<()> {
    let line = JsonLine {
        time: rfc3339(r.time),
        inverter_serial: serial,
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
        source: r.source.as_str(),
        dc: r.dc.iter().map(json_dc).collect(),
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn json_dc(dc: &DcReading) -> JsonDc<'_> {
    JsonDc {
        channel: dc.channel,
        name: dc.name.as_deref(),
        power_w: dc.power_w,
        voltage_v: dc.voltage_v,
        current_a: dc.current_a,
        yield_day_wh: dc.yield_day_wh,
        yield_total_wh: dc.yield_total_wh,
        irradiation_pct: dc.irradiation_pct,
    }
}

fn write_csv_header(out: &mut impl Write, channels: u8) -> io::Result<()> {
    let mut columns: Vec<String> = AC_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    for channel in 1..=channels {
        columns.extend(DC_FIELDS.iter().map(|f| format!("dc{channel}_{f}")));
    }
    writeln!(out, "{}", columns.join(","))
}

/// Writes one CSV line; returns how many DC channels did not fit the columns.
fn write_csv_line(
    out: &mut impl Write,
    serial: Option<&str>,
    r: &Reading,
    channels: u8,
) -> io::Result<u64> {
    let number = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut fields = vec![
        rfc3339(r.time),
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
    ];
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
    writeln!(out, "{}", fields.join(","))?;
    let dropped = r.dc.iter().filter(|dc| dc.channel > channels).count();
    Ok(u64::try_from(dropped).unwrap_or(u64::MAX))
}

/// A text field for CSV (RFC 4180): quoted when it holds a comma, a quote or a line break.
fn csv_text(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
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
        write_json_line(&mut out, Some("116166771004"), &reading()).unwrap();
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
        for column in AC_COLUMNS.iter().chain(&["dc"]) {
            assert!(keys.contains(column), "{column}");
        }
    }

    #[test]
    fn csv_lines_spread_channels_and_quote_text() {
        let mut out = Vec::new();
        write_csv_header(&mut out, 2).unwrap();
        let dropped = write_csv_line(&mut out, Some("116166771004"), &reading(), 2).unwrap();
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
            AC_COLUMNS.len() + 2 * DC_FIELDS.len()
        );
    }

    #[test]
    fn csv_reports_channels_beyond_its_columns() {
        let mut out = Vec::new();
        assert_eq!(write_csv_line(&mut out, None, &reading(), 1).unwrap(), 1);
    }
}

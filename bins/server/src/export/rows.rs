//! The lines of an export: [`ReadingRow`] (a JSON line, an item of the readings API), the CSV
//! header and lines of readings (see [`super`] for the columns) and of daily energy.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use deyehard_core::{DcReading, Reading};
use deyehard_store::DailyEnergy;
use poem_openapi::Object;
use serde::Serialize;

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

pub(super) fn write_json_line(out: &mut Vec<u8>, serial: Option<&str>, r: &Reading) {
    // Serialising plain numbers, strings and booleans into memory cannot fail.
    if serde_json::to_writer(&mut *out, &ReadingRow::new(serial, r)).is_ok() {
        out.push(b'\n');
    }
}

pub(super) fn write_csv_header(out: &mut Vec<u8>, style: CsvStyle, channels: u8) {
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
pub(super) fn write_csv_line(
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

pub(super) fn write_daily_header(out: &mut Vec<u8>, bom: bool) {
    if bom {
        out.extend_from_slice(BOM.as_bytes());
    }
    out.extend_from_slice(DAILY_COLUMNS.as_bytes());
    out.push(b'\n');
}

pub(super) fn write_daily_line(out: &mut Vec<u8>, serial: Option<&str>, day: &DailyEnergy) {
    let line = format!(
        "{},{},{},{},{}\n",
        day.day.format("%Y-%m-%d"),
        csv_text(serial.unwrap_or_default()),
        day.energy_wh,
        number(day.peak_power_w),
        day.samples
    );
    out.extend_from_slice(line.as_bytes());
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

//! Row types shared by both backends (columns decode through [`Ts`] and plain scalars), and
//! their conversion into the public model.

use chrono::NaiveDate;
use deyehard_core::{
    ApiKeyId, DcReading, DeviceSerial, InverterId, InverterKind, LoggerSerial, Reading, Source,
    UserId,
};

use crate::StoreError;
use crate::model::{ApiKey, Inverter, RawFrame, UnclaimedLogger, UnknownSerial, User};
use crate::ts::Ts;

/// Columns of `users` as `sql.rs` selects them (`user_columns!`).
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: i64,
    email: String,
    password_hash: String,
    display_name: String,
    time_zone: String,
    locale: String,
    is_active: bool,
    is_verified: bool,
    is_superuser: bool,
    session_version: i64,
    created_at: Ts,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        Self {
            id: UserId::new(r.id),
            email: r.email,
            password_hash: r.password_hash,
            display_name: r.display_name,
            time_zone: r.time_zone,
            locale: r.locale,
            is_active: r.is_active,
            is_verified: r.is_verified,
            is_superuser: r.is_superuser,
            session_version: r.session_version,
            created_at: r.created_at.get(),
        }
    }
}

/// A user with the number of inverters they own (admin list).
#[derive(sqlx::FromRow)]
pub(crate) struct UserOverviewRow {
    #[sqlx(flatten)]
    pub(crate) user: UserRow,
    pub(crate) inverter_count: i64,
}

/// Columns of `api_keys` without the hash.
#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    id: i64,
    name: String,
    prefix: String,
    created_at: Ts,
    last_used_at: Option<Ts>,
    revoked_at: Option<Ts>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> Self {
        Self {
            id: ApiKeyId::new(r.id),
            name: r.name,
            prefix: r.prefix,
            created_at: r.created_at.get(),
            last_used_at: r.last_used_at.map(Ts::get),
            revoked_at: r.revoked_at.map(Ts::get),
        }
    }
}

/// Columns of `inverters` as `sql.rs` selects them (`inverter_columns!`).
#[derive(sqlx::FromRow)]
pub(crate) struct InverterRow {
    id: i64,
    user_id: i64,
    name: String,
    kind: String,
    serial: Option<String>,
    logger_serial: Option<i64>,
    rated_power_w: Option<f64>,
    mppt_count: Option<i16>,
    firmware_version: Option<String>,
    last_seen_at: Option<Ts>,
    created_at: Ts,
}

impl TryFrom<InverterRow> for Inverter {
    type Error = StoreError;
    fn try_from(r: InverterRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::corrupt(format!("inverter {}: bad {what}", r.id));
        let kind: InverterKind = r.kind.parse().map_err(|_| corrupt("kind"))?;
        let serial = r
            .serial
            .as_deref()
            .map(DeviceSerial::parse)
            .transpose()
            .map_err(|_| corrupt("serial"))?;
        let logger_serial = r
            .logger_serial
            .map(|s| u32::try_from(s).map(LoggerSerial::new))
            .transpose()
            .map_err(|_| corrupt("logger serial"))?;
        let mppt_count = r
            .mppt_count
            .map(u8::try_from)
            .transpose()
            .map_err(|_| corrupt("MPPT count"))?;
        Ok(Self {
            id: InverterId::new(r.id),
            owner: UserId::new(r.user_id),
            name: r.name,
            kind,
            serial,
            logger_serial,
            rated_power_w: r.rated_power_w,
            mppt_count,
            firmware_version: r.firmware_version,
            last_seen_at: r.last_seen_at.map(Ts::get),
            created_at: r.created_at.get(),
        })
    }
}

/// Converts a list of inverter rows.
pub(crate) fn inverters(rows: Vec<InverterRow>) -> Result<Vec<Inverter>, StoreError> {
    rows.into_iter().map(Inverter::try_from).collect()
}

/// Columns of `measurements` as `sql.rs` selects them (`measurement_columns!`).
#[derive(sqlx::FromRow)]
pub(crate) struct MeasurementRow {
    pub(crate) inverter_id: i64,
    pub(crate) time: Ts,
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
    source: String,
    pub(crate) received_at: Ts,
}

impl MeasurementRow {
    /// The AC reading (without DC channels).
    pub(crate) fn into_reading(self) -> Result<Reading, StoreError> {
        let source = Source::from_name(&self.source)
            .ok_or_else(|| StoreError::corrupt(format!("unknown source {:?}", self.source)))?;
        Ok(Reading {
            time: self.time.get(),
            source,
            power_ac_w: self.power_ac_w,
            voltage_ac_v: self.voltage_ac_v,
            current_ac_a: self.current_ac_a,
            frequency_hz: self.frequency_hz,
            power_factor: self.power_factor,
            power_dc_w: self.power_dc_w,
            temperature_c: self.temperature_c,
            yield_day_wh: self.yield_day_wh,
            yield_total_wh: self.yield_total_wh,
            reachable: self.reachable,
            producing: self.producing,
            dc: Vec::new(),
        })
    }
}

/// Columns of `dc_measurements` as `sql::DC_RANGE` selects them.
#[derive(sqlx::FromRow)]
pub(crate) struct DcRow {
    pub(crate) time: Ts,
    channel: i16,
    name: Option<String>,
    power_w: Option<f64>,
    voltage_v: Option<f64>,
    current_a: Option<f64>,
    yield_day_wh: Option<f64>,
    yield_total_wh: Option<f64>,
    irradiation_pct: Option<f64>,
}

impl DcRow {
    /// The channel reading.
    pub(crate) fn into_dc(self) -> Result<DcReading, StoreError> {
        let channel = u8::try_from(self.channel)
            .map_err(|_| StoreError::corrupt(format!("bad DC channel {}", self.channel)))?;
        Ok(DcReading {
            channel,
            name: self.name,
            power_w: self.power_w,
            voltage_v: self.voltage_v,
            current_a: self.current_a,
            yield_day_wh: self.yield_day_wh,
            yield_total_wh: self.yield_total_wh,
            irradiation_pct: self.irradiation_pct,
        })
    }
}

/// Attaches DC rows (ordered by time, channel) to the readings they belong to (ordered by time).
pub(crate) fn attach_dc(readings: &mut [Reading], dc_rows: Vec<DcRow>) -> Result<(), StoreError> {
    let mut index = 0;
    for row in dc_rows {
        let time = row.time.get();
        while index < readings.len() && readings[index].time < time {
            index += 1;
        }
        match readings.get_mut(index) {
            Some(reading) if reading.time == time => reading.dc.push(row.into_dc()?),
            _ => {}
        }
    }
    Ok(())
}

/// Columns of `raw_frames` as `sql.rs` selects them (`raw_frame_columns!`).
#[derive(sqlx::FromRow)]
pub(crate) struct RawFrameRow {
    id: i64,
    inverter_id: Option<i64>,
    logger_serial: i64,
    received_at: Ts,
    control: i32,
    remote_addr: Option<String>,
    frame: Vec<u8>,
}

impl TryFrom<RawFrameRow> for RawFrame {
    type Error = StoreError;
    fn try_from(r: RawFrameRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::corrupt(format!("raw frame {}: bad {what}", r.id));
        Ok(Self {
            id: r.id,
            inverter_id: r.inverter_id.map(InverterId::new),
            logger_serial: LoggerSerial::new(
                u32::try_from(r.logger_serial).map_err(|_| corrupt("logger serial"))?,
            ),
            received_at: r.received_at.get(),
            control: u16::try_from(r.control).map_err(|_| corrupt("control code"))?,
            remote_addr: r.remote_addr,
            bytes: r.frame,
        })
    }
}

/// Converts raw frame rows.
pub(crate) fn raw_frames(rows: Vec<RawFrameRow>) -> Result<Vec<RawFrame>, StoreError> {
    rows.into_iter().map(RawFrame::try_from).collect()
}

/// Columns of `unclaimed_loggers`.
#[derive(sqlx::FromRow)]
pub(crate) struct UnclaimedLoggerRow {
    logger_serial: i64,
    first_seen_at: Ts,
    last_seen_at: Ts,
    remote_addr: Option<String>,
    frames_seen: i64,
}

impl TryFrom<UnclaimedLoggerRow> for UnclaimedLogger {
    type Error = StoreError;
    fn try_from(r: UnclaimedLoggerRow) -> Result<Self, StoreError> {
        let serial = u32::try_from(r.logger_serial)
            .map_err(|_| StoreError::corrupt(format!("bad logger serial {}", r.logger_serial)))?;
        Ok(Self {
            logger_serial: LoggerSerial::new(serial),
            first_seen_at: r.first_seen_at.get(),
            last_seen_at: r.last_seen_at.get(),
            remote_addr: r.remote_addr,
            frames_seen: r.frames_seen,
        })
    }
}

/// Columns of `unknown_serials`.
#[derive(sqlx::FromRow)]
pub(crate) struct UnknownSerialRow {
    inverter_serial: String,
    dtu_serial: Option<String>,
    first_seen_at: Ts,
    last_seen_at: Ts,
    times_seen: i64,
}

impl From<UnknownSerialRow> for UnknownSerial {
    fn from(r: UnknownSerialRow) -> Self {
        Self {
            inverter_serial: r.inverter_serial,
            dtu_serial: r.dtu_serial,
            first_seen_at: r.first_seen_at.get(),
            last_seen_at: r.last_seen_at.get(),
            times_seen: r.times_seen,
        }
    }
}

/// Columns of `daily_energy` for the energy views.
#[derive(sqlx::FromRow)]
pub(crate) struct DailyEnergyRow {
    pub(crate) day: NaiveDate,
    pub(crate) energy_wh: f64,
    pub(crate) peak_power_w: Option<f64>,
    pub(crate) samples: i64,
}

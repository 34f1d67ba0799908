//! `/api/inverters`: the caller's inverters with a live status; add (verified accounts only),
//! read, change and delete them. Another user's inverter id answers 404, like a missing one.
//!
//! Claiming a Solarman logger (adding an inverter with its serial, or setting it later) also
//! decodes the frames the logger sent before, as the `inverter add` command does
//! ([`deyehard_collector::backfill_logger`]).
//!
//! The functions behind the handlers are shared with the inverter pages.

use chrono::{DateTime, TimeDelta, Utc};
use deyehard_core::{InverterId, InverterKind, LoggerSerial, Reading, TenantScope};
use deyehard_store::{Inverter, InverterFields, InverterStore, ReadingReader, StoreError};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Enum, Object, OpenApi};

use super::inverter_input::{FieldError, FieldErrors, InverterDraft};
use super::reply::reply;
use crate::error::ApiError;
use crate::http::AppState;
use crate::session::{Authenticated, SessionAuth, VerifiedOnly};

/// The inverter endpoints.
pub struct InvertersApi;

/// How an inverter reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Kind {
    /// Hoymiles inverter behind an OpenDTU (HTTP push with an API key).
    Opendtu,
    /// Deye inverter with a Solarman Wi-Fi logger (TCP port 10000).
    Solarman,
    /// Victron device behind a Cerbo GX (HTTP push with an API key).
    Victron,
}

impl From<InverterKind> for Kind {
    fn from(kind: InverterKind) -> Self {
        match kind {
            InverterKind::Opendtu => Self::Opendtu,
            InverterKind::Solarman => Self::Solarman,
            InverterKind::Victron => Self::Victron,
        }
    }
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Opendtu => "opendtu",
            Self::Solarman => "solarman",
            Self::Victron => "victron",
        }
    }
}

/// What an inverter is doing, judged from its newest data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum LiveState {
    /// Recent data, producing power.
    Producing,
    /// Recent data without production, or quiet after it stopped producing (at night an
    /// inverter switches off and sends nothing).
    Idle,
    /// Quiet while it was producing, or quiet for more than 16 hours.
    Offline,
    /// Nothing received yet.
    NoData,
}

/// An inverter's live status.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct LiveStatus {
    /// The state.
    pub state: LiveState,
    /// AC power of the newest reading, W (absent when the device was unreachable).
    pub power_ac_w: Option<f64>,
    /// Device time of the newest reading.
    pub reading_time: Option<DateTime<Utc>>,
}

/// An inverter as the API shows it.
#[derive(Debug, Clone, Object)]
pub struct InverterInfo {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// How it reaches the server.
    pub kind: Kind,
    /// Device serial.
    pub serial: Option<String>,
    /// Solarman logger serial.
    pub logger_serial: Option<u32>,
    /// Rated AC power, W.
    pub rated_power_w: Option<f64>,
    /// Number of MPPT inputs.
    pub mppt_count: Option<u8>,
    /// Firmware as the device reports it.
    pub firmware_version: Option<String>,
    /// When data last arrived.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// What it is doing now.
    pub status: LiveStatus,
}

/// A new inverter.
#[derive(Debug, Clone, Object)]
pub struct NewInverter {
    /// How it reaches the server.
    pub kind: Kind,
    /// A name (1–100 characters).
    pub name: String,
    /// Device serial: required for `opendtu` and `victron` (unique among your inverters),
    /// optional for `solarman` (the logger reports it).
    pub serial: Option<String>,
    /// Solarman logger serial (on the logger's label): `solarman` only, and required there.
    pub logger_serial: Option<u32>,
    /// Rated AC power, W (1 – 10,000,000); bounds the plausibility check of energy counters.
    pub rated_power_w: Option<f64>,
    /// Number of MPPT inputs (1 – 24).
    pub mppt_count: Option<u8>,
}

/// Changes to an inverter: absent fields keep their value, `null` clears an optional one.
#[derive(Debug, Clone, Object)]
pub struct InverterPatch {
    /// How it reaches the server.
    pub kind: Option<Kind>,
    /// A name (1–100 characters).
    pub name: Option<String>,
    /// Device serial.
    pub serial: MaybeUndefined<String>,
    /// Solarman logger serial (setting a new one claims that logger).
    pub logger_serial: MaybeUndefined<u32>,
    /// Rated AC power, W.
    pub rated_power_w: MaybeUndefined<f64>,
    /// Number of MPPT inputs.
    pub mppt_count: MaybeUndefined<u8>,
}

reply! {
    /// An answer with a JSON body.
    pub enum JsonReply<T> {
        /// Done.
        #[oai(status = 200)]
        Ok(Json<T>),
    }
}

reply! {
    /// The answer to adding an inverter.
    pub enum CreatedReply {
        /// Added (for a Solarman logger, with the readings it sent before, decoded).
        #[oai(status = 201)]
        Created(Json<InverterInfo>),
    }
}

reply! {
    /// The answer to deleting an inverter.
    pub enum DeletedReply {
        /// The inverter and all its readings are gone.
        #[oai(status = 204)]
        Deleted,
    }
}

impl<T: poem_openapi::types::ToJSON + Send + Sync> JsonReply<T> {
    fn of(result: Result<T, ApiError>) -> Self {
        result.map_or_else(Into::into, |v| Self::Ok(Json(v)))
    }
}

#[OpenApi(prefix_path = "/inverters", tag = "super::ApiTags::Inverters")]
impl InvertersApi {
    /// The caller's inverters, by id, each with its live status.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
    ) -> JsonReply<Vec<InverterInfo>> {
        let scope = auth.into_inner().scope;
        JsonReply::of(inverters_with_status(&state, &scope, Utc::now()).await)
    }

    /// Add an inverter (accounts with a confirmed email address only). An OpenDTU or Victron
    /// serial is unique among your inverters; a Solarman logger can be claimed by one account.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        body: Json<NewInverter>,
    ) -> CreatedReply {
        let auth = auth.into_inner();
        let created = create_inverter(&state, &auth, &draft_of(&body.0)).await;
        match created {
            Ok(inv) => CreatedReply::Created(Json(info(inv, None, Utc::now()))),
            Err(e) => e.into_api_error().into(),
        }
    }

    /// One inverter with its live status.
    #[oai(path = "/:id", method = "get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
    ) -> JsonReply<InverterInfo> {
        let scope = auth.into_inner().scope;
        JsonReply::of(inverter_with_status(&state, &scope, InverterId::new(id.0)).await)
    }

    /// Change an inverter.
    #[oai(path = "/:id", method = "patch")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
        body: Json<InverterPatch>,
    ) -> JsonReply<InverterInfo> {
        let scope = auth.into_inner().scope;
        let id = InverterId::new(id.0);
        let result = async {
            let current = state.store.inverter(&scope, id).await?;
            let draft = patched(&current, body.0);
            update_inverter(&state, &scope, id, &draft).await?;
            Ok(inverter_with_status(&state, &scope, id).await?)
        };
        JsonReply::of(result.await.map_err(InverterFailure::into_api_error))
    }

    /// Delete an inverter and all its readings.
    #[oai(path = "/:id", method = "delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        id: Path<i64>,
    ) -> DeletedReply {
        let scope = auth.into_inner().scope;
        match delete_inverter(&state, &scope, InverterId::new(id.0)).await {
            Ok(()) => DeletedReply::Deleted,
            Err(e) => ApiError::from(e).into(),
        }
    }
}

/// Why adding or changing an inverter failed.
#[derive(Debug)]
pub enum InverterFailure {
    /// Fields with problems (shown next to them on the pages).
    Fields(FieldErrors),
    /// Anything else.
    Api(ApiError),
}

impl InverterFailure {
    /// The API error (409/422 for field problems, their messages naming the fields).
    pub fn into_api_error(self) -> ApiError {
        match self {
            Self::Fields(errors) => errors.to_api_error(),
            Self::Api(e) => e,
        }
    }
}

impl From<ApiError> for InverterFailure {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<StoreError> for InverterFailure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(ref name) => match FieldError::from_conflict(name) {
                Some(field) => Self::Fields(field.into()),
                None => Self::Api(e.into()),
            },
            other => Self::Api(other.into()),
        }
    }
}

/// Adds an inverter for a verified caller and backfills a claimed logger.
///
/// # Errors
/// 403 for an unverified account, field problems (including taken serials), store errors.
pub async fn create_inverter(
    state: &AppState,
    auth: &Authenticated,
    draft: &InverterDraft,
) -> Result<Inverter, InverterFailure> {
    auth.require_verified(VerifiedOnly::RegisterInverters)?;
    let fields = draft.parse().map_err(InverterFailure::Fields)?;
    let inverter = state.store.create_inverter(&auth.scope, &fields).await?;
    state.batcher.forget_inverters(auth.scope.user_id());
    if let Some(logger) = inverter.logger_serial {
        backfill(state, &auth.scope, logger).await;
    }
    Ok(inverter)
}

/// Replaces an inverter's fields; a newly set logger serial is claimed and backfilled.
///
/// # Errors
/// 404 for another tenant's id, field problems, store errors.
pub async fn update_inverter(
    state: &AppState,
    scope: &TenantScope,
    id: InverterId,
    draft: &InverterDraft,
) -> Result<Inverter, InverterFailure> {
    // Another tenant's id is a 404 whatever the form says: look it up before checking fields.
    let before = state.store.inverter(scope, id).await?;
    let fields = draft.parse().map_err(InverterFailure::Fields)?;
    let inverter = state.store.update_inverter(scope, id, &fields).await?;
    state.batcher.forget_inverters(scope.user_id());
    if let Some(logger) = inverter.logger_serial
        && before.logger_serial != Some(logger)
    {
        backfill(state, scope, logger).await;
    }
    Ok(inverter)
}

/// Deletes an inverter with all its readings (shared with the inverter pages); pushes of its
/// serial are refused from now on.
///
/// # Errors
/// 404 for another tenant's id, store errors.
pub async fn delete_inverter(
    state: &AppState,
    scope: &TenantScope,
    id: InverterId,
) -> Result<(), StoreError> {
    state.store.delete_inverter(scope, id).await?;
    state.batcher.forget_inverters(scope.user_id());
    Ok(())
}

/// Decodes the frames a just-claimed logger sent before; a failure is logged (the claim
/// stands, the frames stay stored unclaimed until retention removes them).
async fn backfill(state: &AppState, scope: &TenantScope, logger: LoggerSerial) {
    match deyehard_collector::backfill_logger(&state.store, scope, logger).await {
        Ok(report) if report.frames > 0 => tracing::info!(
            frames = report.frames,
            readings = report.readings,
            %logger,
            "backfilled frames sent before the claim"
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, %logger, "cannot backfill the logger's earlier frames")
        }
    }
}

/// The stored fields of an inverter (what a form edits).
pub fn fields_of(inv: &Inverter) -> InverterFields {
    InverterFields {
        name: inv.name.clone(),
        kind: inv.kind,
        serial: inv.serial.clone(),
        logger_serial: inv.logger_serial,
        rated_power_w: inv.rated_power_w,
        mppt_count: inv.mppt_count,
    }
}

fn draft_of(new: &NewInverter) -> InverterDraft {
    let text = |v: Option<String>| v.unwrap_or_default();
    InverterDraft {
        kind: new.kind.name().to_owned(),
        name: new.name.clone(),
        serial: text(new.serial.clone()),
        logger_serial: text(new.logger_serial.map(|l| l.to_string())),
        rated_power_w: text(new.rated_power_w.map(|p| p.to_string())),
        mppt_count: text(new.mppt_count.map(|n| n.to_string())),
    }
}

fn patched(current: &Inverter, patch: InverterPatch) -> InverterDraft {
    fn apply<T: ToString>(field: &mut String, value: MaybeUndefined<T>) {
        match value {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => field.clear(),
            MaybeUndefined::Value(v) => *field = v.to_string(),
        }
    }
    let mut draft = InverterDraft::of(&fields_of(current));
    if let Some(kind) = patch.kind {
        draft.kind = kind.name().to_owned();
    }
    if let Some(name) = patch.name {
        draft.name = name;
    }
    apply(&mut draft.serial, patch.serial);
    apply(&mut draft.logger_serial, patch.logger_serial);
    apply(&mut draft.rated_power_w, patch.rated_power_w);
    apply(&mut draft.mppt_count, patch.mppt_count);
    draft
}

/// The scope's inverters with their live status (for the API and the pages).
///
/// # Errors
/// Store errors.
pub async fn inverters_with_status(
    state: &AppState,
    scope: &TenantScope,
    now: DateTime<Utc>,
) -> Result<Vec<InverterInfo>, ApiError> {
    let inverters = state.store.inverters(scope).await?;
    let mut latest = state.store.latest_readings(scope).await?;
    Ok(inverters
        .into_iter()
        .map(|inv| {
            let newest = latest
                .iter()
                .position(|l| l.inverter_id == inv.id)
                .map(|at| latest.swap_remove(at).reading);
            info(inv, newest.as_ref(), now)
        })
        .collect())
}

async fn inverter_with_status(
    state: &AppState,
    scope: &TenantScope,
    id: InverterId,
) -> Result<InverterInfo, ApiError> {
    let inv = state.store.inverter(scope, id).await?;
    let newest = state
        .store
        .latest_readings(scope)
        .await?
        .into_iter()
        .find(|l| l.inverter_id == id)
        .map(|l| l.reading);
    Ok(info(inv, newest.as_ref(), Utc::now()))
}

fn info(inv: Inverter, newest: Option<&Reading>, now: DateTime<Utc>) -> InverterInfo {
    let status = LiveStatus {
        state: live_state(inv.kind, inv.last_seen_at, newest, now),
        power_ac_w: newest.filter(|r| r.reachable).and_then(|r| r.power_ac_w),
        reading_time: newest.map(|r| r.time),
    };
    InverterInfo {
        id: inv.id.get(),
        kind: inv.kind.into(),
        serial: inv.serial.map(String::from),
        logger_serial: inv.logger_serial.map(LoggerSerial::get),
        name: inv.name,
        rated_power_w: inv.rated_power_w,
        mppt_count: inv.mppt_count,
        firmware_version: inv.firmware_version,
        last_seen_at: inv.last_seen_at,
        created_at: inv.created_at,
        status,
    }
}

/// How often a device of this kind sends data when it is on.
fn push_interval(kind: InverterKind) -> TimeDelta {
    match kind {
        InverterKind::Solarman => TimeDelta::minutes(5),
        InverterKind::Opendtu | InverterKind::Victron => TimeDelta::minutes(1),
    }
}

/// Quiet this long after production stopped, an inverter is offline rather than asleep.
const NIGHT: TimeDelta = TimeDelta::hours(16);

/// The live state (see [`LiveState`]): data is recent within three push intervals.
pub fn live_state(
    kind: InverterKind,
    last_seen_at: Option<DateTime<Utc>>,
    newest: Option<&Reading>,
    now: DateTime<Utc>,
) -> LiveState {
    let Some(seen) = last_seen_at.max(newest.map(|r| r.time)) else {
        return LiveState::NoData;
    };
    let producing = newest
        .is_some_and(|r| r.reachable && (r.producing || r.power_ac_w.is_some_and(|p| p > 0.0)));
    let quiet = now - seen;
    match (quiet <= push_interval(kind) * 3, producing) {
        (true, true) => LiveState::Producing,
        (true, false) => LiveState::Idle,
        (false, true) => LiveState::Offline,
        (false, false) if quiet < NIGHT => LiveState::Idle,
        (false, false) => LiveState::Offline,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use deyehard_core::Source;

    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 15, h, m, 0).unwrap()
    }

    fn reading(time: DateTime<Utc>, power: f64, reachable: bool) -> Reading {
        let mut r = Reading::new(time, Source::Opendtu);
        r.power_ac_w = Some(power);
        r.reachable = reachable;
        r
    }

    #[test]
    fn live_state_from_recency_and_production() {
        let dtu = InverterKind::Opendtu;
        assert_eq!(live_state(dtu, None, None, at(12, 0)), LiveState::NoData);
        let producing = reading(at(12, 0), 350.0, true);
        let state = |r: &Reading, now| live_state(dtu, Some(r.time), Some(r), now);
        assert_eq!(state(&producing, at(12, 2)), LiveState::Producing);
        // quiet while producing: offline at once (three intervals)
        assert_eq!(state(&producing, at(12, 4)), LiveState::Offline);
        // night: the last reading had no power, then silence
        let dusk = reading(at(20, 0), 0.0, true);
        assert_eq!(state(&dusk, at(20, 1)), LiveState::Idle);
        assert_eq!(state(&dusk, at(23, 59)), LiveState::Idle);
        let next_day = Utc.with_ymd_and_hms(2025, 6, 16, 13, 0, 0).unwrap();
        assert_eq!(state(&dusk, next_day), LiveState::Offline);
        // an unreachable inverter's stale power does not count as production
        let asleep = reading(at(12, 0), 350.0, false);
        assert_eq!(state(&asleep, at(12, 1)), LiveState::Idle);
        // Solarman loggers push every five minutes
        let deye = InverterKind::Solarman;
        assert_eq!(
            live_state(deye, Some(at(12, 0)), Some(&producing), at(12, 14)),
            LiveState::Producing
        );
    }
}

//! The device push endpoints: `POST /api/opendtu/measurements` (OpenDTU's HTTP push, a drop-in
//! replacement for the original service) and `POST /api/victron/measurements`.
//!
//! A handler extracts (API key → tenant, then the body: size, content type, JSON with field
//! paths), validates (`deyehard-opendtu`), converts to readings (units, staleness), hands them
//! to the group-commit [`Batcher`](crate::batch::Batcher), records serials the tenant has not
//! registered, and answers with the original's body and status: 201 / 207 / 404.
//!
//! Every error is an [`IngestError`] with the `{error, message}` body; nothing a client sends
//! can produce a 500.

use chrono::Utc;
use deyehard_core::{DeviceSerial, TenantScope};
use deyehard_opendtu::victron::{self, VictronPush};
use deyehard_opendtu::{
    DeviceResult, InverterReading, InverterResult, Outcome, ParseError, Push, PushResponse,
    VictronResponse,
};
use deyehard_store::{InverterStore, Store};
use poem::error::ReadBodyError;
use poem::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use poem::web::Data;
use poem::{Request, RequestBody};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, OpenApi};

use super::ApiTags;
use super::apikey_auth::DeviceAuth;
use super::ingest_schema::{OpenDtuPushDoc, OpenDtuResult, VictronPushDoc, VictronResult};
use crate::AppState;
use crate::batch::{BatchError, ItemOutcome};
use crate::error::{ApiError, ErrorBody};

/// Largest accepted push body: 64 KiB (a DTU with 10 inverters × 6 inputs sends ~15 kB).
pub const MAX_PUSH_BYTES: usize = 64 * 1024;

/// Seconds a client should wait after a 503.
const UNAVAILABLE_RETRY_S: u64 = 5;

/// The push endpoints.
pub struct IngestApi;

#[OpenApi(tag = "ApiTags::Ingestion")]
impl IngestApi {
    /// Store an OpenDTU push
    ///
    /// The HTTP push of OpenDTU (point its *Target URL* here; *Authentication Header Name*
    /// `X-API-Key` or `Authorization`, *Authentication Token* = an API key of the account).
    ///
    /// - Each inverter serial is looked up among the inverters of the **key's account only**; a
    ///   serial registered by someone else is as unknown as one registered by nobody. Unknown
    ///   serials are recorded so the owner can see what their DTU sends.
    /// - All readings of a push are committed in one transaction before the answer (a 2xx
    ///   means durably stored). A repeated push is `ok` and changes nothing.
    /// - An inverter the DTU reports unreachable, with `last_update` 0, or with a
    ///   `last_update` more than 180 s before `timestamp` is stored as offline: it counts as
    ///   neither producing nor contributing energy.
    /// - 201: every inverter stored (also for an empty `inverters` list); 207: some serials
    ///   are not registered; 404: none is. The body is the same in all three.
    /// - Bodies up to 64 KiB; `Content-Type` `application/json` (also accepted: none,
    ///   `text/plain`, `text/json`, `application/*+json`).
    #[oai(
        path = "/opendtu/measurements",
        method = "post",
        operation_id = "push_opendtu"
    )]
    async fn opendtu(
        &self,
        state: Data<&AppState>,
        auth: DeviceAuth,
        body: PushBody<Push>,
    ) -> Result<Stored<OpenDtuResult>, IngestError> {
        let push = body.0;
        deyehard_opendtu::validate(&push, Utc::now())
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        let items = store_readings(&state, &auth.scope, push.readings(), &push.dtu_serial).await?;
        let results = items
            .into_iter()
            .map(|item| match item.outcome {
                ItemOutcome::Stored(id) | ItemOutcome::Duplicate(id) => {
                    InverterResult::ok(item.serial, id, item.power_w)
                }
                ItemOutcome::NotRegistered => {
                    let message = not_registered(&item.serial);
                    InverterResult::error(item.serial, message)
                }
            })
            .collect();
        let response = PushResponse::new(&push, results);
        Ok(Stored::new(response.outcome(), response.into()))
    }

    /// Store a Victron push
    ///
    /// The Victron push of the original service (a bridge script on a Cerbo GX posts its
    /// solar chargers): same authentication, limits, storage and status codes as the OpenDTU
    /// push. `yield_power_w` becomes the AC power, `yield_total_kwh` the lifetime counter (in
    /// Wh), and tracker `n` (0-based) DC channel `n + 1`.
    #[oai(
        path = "/victron/measurements",
        method = "post",
        operation_id = "push_victron"
    )]
    async fn victron(
        &self,
        state: Data<&AppState>,
        auth: DeviceAuth,
        body: PushBody<VictronPush>,
    ) -> Result<Stored<VictronResult>, IngestError> {
        let push = body.0;
        victron::validate(&push, Utc::now()).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        let items =
            store_readings(&state, &auth.scope, push.readings(), &push.cerbo_serial).await?;
        let results = items
            .into_iter()
            .map(|item| match item.outcome {
                ItemOutcome::Stored(id) | ItemOutcome::Duplicate(id) => {
                    DeviceResult::ok(item.serial, id, item.power_w)
                }
                ItemOutcome::NotRegistered => {
                    let message = not_registered(&item.serial);
                    DeviceResult::error(item.serial, message)
                }
            })
            .collect();
        let response = VictronResponse::new(&push, results);
        Ok(Stored::new(response.outcome(), response.into()))
    }
}

fn not_registered(serial: &DeviceSerial) -> String {
    format!("serial {serial} is not registered in the account of this API key")
}

/// One device's reading after the write.
struct StoredItem {
    serial: DeviceSerial,
    power_w: Option<f64>,
    outcome: ItemOutcome,
}

/// Writes the readings through the batcher, then records the serials the tenant has not
/// registered (best effort: the readings are committed either way).
async fn store_readings(
    state: &AppState,
    scope: &TenantScope,
    readings: Vec<InverterReading>,
    gateway: &DeviceSerial,
) -> Result<Vec<StoredItem>, IngestError> {
    crate::metrics::record_dtu_serial(gateway);
    let source = readings.first().map(|r| r.reading.source);
    let mut items: Vec<StoredItem> = Vec::with_capacity(readings.len());
    let mut batch = Vec::with_capacity(readings.len());
    for r in readings {
        items.push(StoredItem {
            serial: r.serial.clone(),
            power_w: r.reading.power_ac_w,
            outcome: ItemOutcome::NotRegistered,
        });
        batch.push((r.serial, r.reading));
    }
    let outcomes = state.batcher.submit(*scope, batch).await?;
    for (item, outcome) in items.iter_mut().zip(outcomes) {
        item.outcome = outcome;
    }
    let new = items
        .iter()
        .filter(|i| matches!(i.outcome, ItemOutcome::Stored(_)));
    if let Some(source) = source {
        crate::metrics::readings_ingested(source, new.count());
    }
    let seen_at = Utc::now();
    for item in items
        .iter()
        .filter(|i| i.outcome == ItemOutcome::NotRegistered)
    {
        record_unknown(&state.store, scope, &item.serial, gateway, seen_at).await;
    }
    let stored = items
        .iter()
        .filter(|i| i.outcome != ItemOutcome::NotRegistered)
        .count();
    tracing::debug!(gateway = %gateway, stored, unknown = items.len() - stored, "push stored");
    Ok(items)
}

async fn record_unknown(
    store: &Store,
    scope: &TenantScope,
    serial: &DeviceSerial,
    gateway: &DeviceSerial,
    seen_at: chrono::DateTime<Utc>,
) {
    let recorded = store
        .record_unknown_serial(scope, serial.as_str(), Some(gateway.as_str()), seen_at)
        .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, %serial, %gateway, "cannot record an unregistered serial");
    }
}

/// The success answers of a push; all carry the same body.
#[derive(ApiResponse)]
pub enum Stored<T: ToJSON> {
    /// Every device's reading was stored (or had been stored before). Also the answer to a
    /// push without devices.
    #[oai(status = 201)]
    Created(Json<T>),
    /// Some readings were stored; the devices with `status: error` are not registered in the
    /// key's account (their serials are recorded for the owner to see).
    #[oai(status = 207)]
    Partial(Json<T>),
    /// None of the serials is registered in the key's account; nothing was stored.
    #[oai(status = 404)]
    NoneRegistered(Json<T>),
}

impl<T: ToJSON> Stored<T> {
    fn new(outcome: Outcome, body: T) -> Self {
        match outcome {
            Outcome::AllStored => Self::Created(Json(body)),
            Outcome::SomeStored => Self::Partial(Json(body)),
            Outcome::NoneStored => Self::NoneRegistered(Json(body)),
        }
    }
}

/// Why a push was refused. The body is always `{"error": code, "message": text}`.
#[derive(Debug, ApiResponse)]
pub enum IngestError {
    /// The body could not be read (the connection broke, or its chunked encoding is broken).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The API key is missing, unknown or revoked, or its account is deactivated (one answer
    /// for all of these).
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The body is larger than 64 KiB.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The `Content-Type` is not JSON (or one of the leniently accepted types).
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// The body is not JSON, has the wrong shape, or fails validation (timestamp before 2020
    /// or more than 10 minutes ahead, values out of range, repeated serials or channels…); the
    /// message names the field and the device.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// The key exceeded its request budget; retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// A fault of the server (logged); not caused by the request.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database is unreachable; nothing was stored. Retry after `Retry-After` seconds.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}

impl IngestError {
    fn with(code: &str, message: impl Into<String>) -> Json<ErrorBody> {
        Json(ErrorBody {
            error: code.to_owned(),
            message: message.into(),
        })
    }
}

impl From<ApiError> for IngestError {
    fn from(err: ApiError) -> Self {
        let body = Json(err.body());
        match err {
            ApiError::Unauthorized => Self::Unauthorized(body),
            ApiError::Unprocessable(_) => Self::Unprocessable(body),
            ApiError::RateLimited { retry_after_s } => Self::TooManyRequests(body, retry_after_s),
            ApiError::Unavailable { retry_after_s } => Self::Unavailable(body, retry_after_s),
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error in a push");
                Self::Internal(body)
            }
            other @ (ApiError::Forbidden
            | ApiError::NotAllowed(_)
            | ApiError::NotFound
            | ApiError::Conflict(_)) => {
                tracing::error!(error = %other, "unexpected error in a push");
                Self::Internal(Json(ApiError::Internal(other.to_string().into()).body()))
            }
        }
    }
}

impl From<BatchError> for IngestError {
    fn from(err: BatchError) -> Self {
        match err {
            BatchError::Unavailable => ApiError::Unavailable {
                retry_after_s: UNAVAILABLE_RETRY_S,
            }
            .into(),
            BatchError::Failed => ApiError::Internal(Box::new(err)).into(),
        }
    }
}

impl From<ParseError> for IngestError {
    fn from(err: ParseError) -> Self {
        ApiError::Unprocessable(err.to_string()).into()
    }
}

/// A push body format: how to parse it, and the schema the OpenAPI document shows.
pub trait PushFormat: Sized + Send {
    /// The documented schema.
    type Doc: Type;
    /// Parses a whole body.
    fn parse(body: &[u8]) -> Result<Self, ParseError>;
}

impl PushFormat for Push {
    type Doc = OpenDtuPushDoc;
    fn parse(body: &[u8]) -> Result<Self, ParseError> {
        deyehard_opendtu::parse(body)
    }
}

impl PushFormat for VictronPush {
    type Doc = VictronPushDoc;
    fn parse(body: &[u8]) -> Result<Self, ParseError> {
        victron::parse(body)
    }
}

/// A push body: at most [`MAX_PUSH_BYTES`], a JSON content type (leniently), parsed by
/// `deyehard-opendtu` with field paths in its errors.
pub struct PushBody<P>(pub P);

/// Whether a request `Content-Type` may carry a JSON push. Lenient where it is harmless: no
/// header, `text/plain` and `text/json` are what simple HTTP clients send for a JSON string.
fn accepts_content_type(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return true;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/').unwrap_or((essence.as_str(), ""));
    essence.is_empty()
        || matches!(
            (kind, subtype),
            ("application", "json") | ("text", "json") | ("text", "plain")
        )
        || (kind == "application" && subtype.ends_with("+json"))
}

async fn read_push_body(req: &Request, body: &mut RequestBody) -> Result<Vec<u8>, IngestError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    if !accepts_content_type(content_type) {
        return Err(IngestError::UnsupportedMediaType(IngestError::with(
            "unsupported_media_type",
            format!(
                "Content-Type {:?} is not accepted: send the push as application/json",
                content_type.unwrap_or_default()
            ),
        )));
    }
    let too_large = || {
        IngestError::PayloadTooLarge(IngestError::with(
            "payload_too_large",
            format!("the body is larger than {MAX_PUSH_BYTES} bytes"),
        ))
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| usize::try_from(len).map_or(true, |len| len > MAX_PUSH_BYTES)) {
        return Err(too_large());
    }
    let taken = body.take().map_err(|e| ApiError::Internal(Box::new(e)))?;
    match taken.into_bytes_limit(MAX_PUSH_BYTES).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(ReadBodyError::PayloadTooLarge) => Err(too_large()),
        Err(e) => Err(IngestError::BadRequest(IngestError::with(
            "bad_request",
            format!("the body could not be read: {e}"),
        ))),
    }
}

impl<'a, P: PushFormat> ApiExtractor<'a> for PushBody<P> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        P::Doc::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: P::Doc::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = read_push_body(req, body).await?;
        let push = P::parse(&bytes).map_err(IngestError::from)?;
        Ok(Self(push))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_are_accepted_leniently() {
        for ok in [
            None,
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            Some("Application/JSON"),
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("text/json"),
            Some("application/vnd.opendtu+json"),
            Some(""),
        ] {
            assert!(accepts_content_type(ok), "{ok:?}");
        }
        for refused in [
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/xml"),
            Some("application/octet-stream"),
            Some("text/html"),
            Some("(not text)"),
        ] {
            assert!(!accepts_content_type(refused), "{refused:?}");
        }
    }
}

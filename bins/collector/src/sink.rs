//! The collector's sink: what happens to each logger frame before it is acknowledged.
//!
//! - A logger claimed by a user (an inverter of kind `solarman` with its serial): decoded data
//!   becomes a reading of that inverter, and what the inverter says about itself (firmware,
//!   rated power, MPPT count) fills in its record; handshakes and heartbeats mark it seen;
//!   anything not decoded (other bodies, info and report frames, unknown codes) is kept in
//!   `raw_frames` for a later decoder.
//! - A logger nobody claimed: recorded in `unclaimed_loggers` with its frames in `raw_frames`,
//!   so that [`backfill_logger`] turns them into readings once someone claims it.
//!
//! Heartbeats arrive every two minutes from every logger: they cost no database write unless
//! the logger was last marked seen more than [`SEEN_INTERVAL`] ago, and claims are cached for
//! [`CLAIM_TTL`] (only positive ones, so a new claim takes effect at once).
//!
//! A database that cannot be reached is [`SinkError::Unavailable`]: the spool in front of this
//! sink keeps the frame on disk and the logger still gets its reply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use deyehard_core::{LoggerSerial, Reading, TenantScope};
use deyehard_solarman::listener::{FrameSink, SinkError};
use deyehard_solarman::{FrameContent, FrameEvent, parse_lenient};
use deyehard_store::{
    InverterStore, LoggerClaim, RawFrameInput, RawFrameStore, ReadingWriter, Store, StoreError,
    UnclaimedLoggerStore,
};

/// How long a resolved claim is reused before it is looked up again.
pub const CLAIM_TTL: Duration = Duration::from_secs(60);
/// How often a heartbeat may mark a logger as seen in the database.
pub const SEEN_INTERVAL: Duration = Duration::from_secs(60);

/// Stores logger frames in a [`Store`].
pub struct StoreSink {
    store: Arc<Store>,
    claims: Mutex<HashMap<LoggerSerial, (LoggerClaim, Instant)>>,
    last_seen: Mutex<HashMap<LoggerSerial, Instant>>,
}

impl StoreSink {
    /// A sink writing to `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            claims: Mutex::new(HashMap::new()),
            last_seen: Mutex::new(HashMap::new()),
        }
    }

    /// The logger's claim, from the cache or the database.
    async fn claim(&self, logger: LoggerSerial) -> Result<Option<LoggerClaim>, StoreError> {
        let now = Instant::now();
        {
            let cache = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((claim, at)) = cache.get(&logger)
                && now.duration_since(*at) < CLAIM_TTL
            {
                return Ok(Some(claim.clone()));
            }
        }
        let claim = self.store.resolve_logger_unscoped(logger).await?;
        let mut cache = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        match &claim {
            Some(claim) => {
                cache.insert(logger, (claim.clone(), now));
            }
            None => {
                cache.remove(&logger);
            }
        }
        Ok(claim)
    }

    fn forget_claim(&self, logger: LoggerSerial) {
        self.claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&logger);
    }

    /// Whether a heartbeat should be written: true at most once per [`SEEN_INTERVAL`].
    fn due_for_seen(&self, logger: LoggerSerial) -> bool {
        let now = Instant::now();
        let mut seen = self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match seen.get(&logger) {
            Some(at) if now.duration_since(*at) < SEEN_INTERVAL => false,
            _ => {
                seen.insert(logger, now);
                true
            }
        }
    }

    async fn record_claimed(
        &self,
        claim: &LoggerClaim,
        event: &FrameEvent,
    ) -> Result<(), StoreError> {
        let scope = &claim.scope;
        let inverter = claim.inverter_id;
        match &event.content {
            FrameContent::Data {
                timestamp: Some(_),
                decoded: Some(data),
                ..
            } => {
                self.store
                    .write_readings(
                        scope,
                        &[(inverter, data.reading.clone())],
                        event.received_at,
                    )
                    .await?;
                self.store
                    .update_device_info(scope, inverter, &data.device_info)
                    .await
            }
            // The handshake carries the logger's firmware, not the inverter's: only mark it seen.
            FrameContent::Handshake(_) | FrameContent::Heartbeat => {
                self.store
                    .touch_inverter(scope, inverter, event.received_at)
                    .await
            }
            // Data without a device time or of an unknown layout, info, report, command
            // replies, unknown codes, undecodable payloads: kept raw.
            _ => {
                let input = raw_input(event);
                let remote = event.remote.to_string();
                self.store
                    .store_raw_frame(
                        scope,
                        inverter,
                        &RawFrameInput {
                            remote_addr: Some(&remote),
                            ..input
                        },
                    )
                    .await
            }
        }
    }
}

fn raw_input(event: &FrameEvent) -> RawFrameInput<'_> {
    RawFrameInput {
        logger_serial: event.logger,
        received_at: event.received_at,
        control: event.control,
        remote_addr: None,
        bytes: &event.raw,
    }
}

fn sink_error(err: StoreError) -> SinkError {
    match err {
        // Worth retrying: keep the frame in the spool.
        StoreError::Unavailable(_) | StoreError::Backend(_) => {
            SinkError::Unavailable(err.to_string())
        }
        // Will never succeed (e.g. the inverter was deleted meanwhile): log and acknowledge.
        StoreError::NotFound
        | StoreError::Conflict(_)
        | StoreError::Forbidden
        | StoreError::Invalid(_) => SinkError::Rejected(err.to_string()),
    }
}

impl FrameSink for StoreSink {
    async fn record(&self, event: FrameEvent) -> Result<(), SinkError> {
        match self.claim(event.logger).await.map_err(sink_error)? {
            Some(claim) => match self.record_claimed(&claim, &event).await {
                Ok(()) => Ok(()),
                Err(StoreError::NotFound) => {
                    // The inverter was deleted since the claim was cached: look again next time.
                    self.forget_claim(event.logger);
                    Err(sink_error(StoreError::NotFound))
                }
                Err(e) => Err(sink_error(e)),
            },
            // An unclaimed logger's heartbeats hold nothing to keep: note the logger now and
            // then; every other frame is kept for the backfill after a claim.
            None if matches!(event.content, FrameContent::Heartbeat)
                && !self.due_for_seen(event.logger) =>
            {
                Ok(())
            }
            None => {
                let remote = event.remote.to_string();
                let input = RawFrameInput {
                    remote_addr: Some(&remote),
                    ..raw_input(&event)
                };
                self.store
                    .record_unclaimed_frame(&input)
                    .await
                    .map_err(sink_error)
            }
        }
    }
}

/// What [`backfill_logger`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillReport {
    /// Frames the logger sent before it was claimed.
    pub frames: usize,
    /// Readings decoded from them and written.
    pub readings: usize,
}

/// Right after a user claimed `logger` (an inverter of theirs now carries its serial): decodes
/// the frames it sent while unclaimed, oldest first, and writes their readings to that
/// inverter. Frames that hold no reading stay in `raw_frames`, now owned by the inverter.
pub async fn backfill_logger(
    store: &Store,
    scope: &TenantScope,
    logger: LoggerSerial,
) -> Result<BackfillReport, StoreError> {
    let frames = store.take_unclaimed_frames(scope, logger).await?;
    let Some(claim) = store.resolve_logger_unscoped(logger).await? else {
        return Err(StoreError::NotFound);
    };
    let mut offset = None;
    let mut readings: Vec<(deyehard_core::InverterId, Reading)> = Vec::new();
    let mut device_info = None;
    for raw in &frames {
        let Ok((frame, _checksum_ok)) = parse_lenient(&raw.bytes) else {
            continue;
        };
        let content = FrameContent::decode(&frame, offset, raw.received_at);
        offset = content.clock_offset().or(offset);
        if let FrameContent::Data {
            timestamp: Some(_),
            decoded: Some(data),
            ..
        } = content
        {
            readings.push((claim.inverter_id, data.reading));
            device_info = Some(data.device_info);
        }
    }
    if !readings.is_empty() {
        store
            .write_readings(scope, &readings, chrono::Utc::now())
            .await?;
    }
    if let Some(info) = device_info {
        store
            .update_device_info(scope, claim.inverter_id, &info)
            .await?;
    }
    Ok(BackfillReport {
        frames: frames.len(),
        readings: readings.len(),
    })
}

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
//! Frames are written by group commit (see [`crate::commit`]): many loggers' frames in one
//! transaction, each frame answered once its transaction committed. Claims are resolved in
//! that transaction, so a new claim applies to the next frame and a deleted inverter receives
//! nothing more.
//!
//! Heartbeats arrive every two minutes from every logger: they cost no database write unless
//! the logger was last written more than [`SEEN_INTERVAL`] ago. Device info is written when it
//! differs from what this sink last wrote for the logger.
//!
//! A database that cannot be reached is [`SinkError::Unavailable`]: the spool in front of this
//! sink keeps the frame on disk and the logger still gets its reply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use deyehard_core::{DeviceInfo, InverterId, LoggerSerial, Reading, TenantScope};
use deyehard_solarman::listener::{FrameSink, SinkError};
use deyehard_solarman::{FrameContent, FrameEvent, parse_lenient};
use deyehard_store::{
    BackendKind, InverterStore, LoggerFrameOutcome, ReadingWriter, Store, StoreError,
    UnclaimedLoggerStore, WriteOutcome,
};

use crate::commit::{GroupCommit, PendingFrame};

/// How often a heartbeat may mark a logger as seen in the database.
pub const SEEN_INTERVAL: Duration = Duration::from_secs(60);
/// Writer tasks on PostgreSQL (each commits its own batches on a pooled connection), at most
/// half the pool. SQLite has one writer connection, hence one writer.
const PG_WRITERS: u32 = 4;

/// Stores logger frames in a [`Store`].
pub struct StoreSink {
    commit: GroupCommit,
    last_seen: Mutex<HashMap<LoggerSerial, Instant>>,
    device_info: Mutex<HashMap<LoggerSerial, (InverterId, DeviceInfo)>>,
}

impl StoreSink {
    /// A sink writing to `store`. Spawns its writer tasks on the current Tokio runtime (so it
    /// must be called within one); they end when the sink is dropped.
    pub fn new(store: Arc<Store>) -> Self {
        let writers = match store.kind() {
            BackendKind::Sqlite => 1,
            BackendKind::Postgres => {
                let pool = store.pool_stats().iter().map(|p| p.max).max().unwrap_or(1);
                (pool / 2).clamp(1, PG_WRITERS)
            }
        };
        Self {
            commit: GroupCommit::start(store, usize::try_from(writers).unwrap_or(1)),
            last_seen: Mutex::new(HashMap::new()),
            device_info: Mutex::new(HashMap::new()),
        }
    }

    /// The device info of a decoded data frame, when it differs from what this sink last
    /// wrote for the logger.
    fn new_device_info(&self, event: &FrameEvent) -> Option<DeviceInfo> {
        let FrameContent::Data {
            timestamp: Some(_),
            decoded: Some(data),
            ..
        } = &event.content
        else {
            return None;
        };
        let known = self
            .device_info
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match known.get(&event.logger) {
            Some((_, info)) if *info == data.device_info => None,
            _ => Some(data.device_info.clone()),
        }
    }

    /// Notes what a written reading did to the device info of the logger's inverter.
    fn device_info_written(
        &self,
        logger: LoggerSerial,
        written: Option<DeviceInfo>,
        outcome: LoggerFrameOutcome,
    ) {
        let LoggerFrameOutcome::Claimed {
            inverter,
            reading: Some(reading),
        } = outcome
        else {
            return;
        };
        let mut known = self
            .device_info
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match written {
            Some(info) if reading != WriteOutcome::NotFound => {
                known.insert(logger, (inverter, info));
            }
            // Another inverter claims the logger now: give it the device info next time.
            None if known.get(&logger).is_some_and(|(was, _)| *was != inverter) => {
                known.remove(&logger);
            }
            _ => {}
        }
    }

    /// Whether a heartbeat should be written: true at most once per [`SEEN_INTERVAL`]. Every
    /// frame written counts as a sighting.
    fn due_for_seen(&self, logger: LoggerSerial, heartbeat: bool) -> bool {
        let now = Instant::now();
        let mut seen = self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match seen.get(&logger) {
            Some(at) if heartbeat && now.duration_since(*at) < SEEN_INTERVAL => false,
            _ => {
                seen.insert(logger, now);
                true
            }
        }
    }
}

impl FrameSink for StoreSink {
    async fn record(&self, event: FrameEvent) -> Result<(), SinkError> {
        let heartbeat = matches!(event.content, FrameContent::Heartbeat);
        if !self.due_for_seen(event.logger, heartbeat) {
            return Ok(());
        }
        let logger = event.logger;
        let device_info = self.new_device_info(&event);
        let frame = PendingFrame::new(event, device_info.is_some());
        let outcome = self.commit.write(frame).await?;
        self.device_info_written(logger, device_info, outcome);
        Ok(())
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

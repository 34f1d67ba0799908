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
//! A database that cannot be reached is [`SinkError::Unavailable`]: the spool in front of this
//! sink keeps the frame on disk and the logger still gets its reply.

use std::sync::Arc;

use deyehard_core::{LoggerSerial, Reading, TenantScope};
use deyehard_solarman::listener::{FrameSink, SinkError};
use deyehard_solarman::{FrameContent, FrameEvent, parse_lenient};
use deyehard_store::{
    InverterStore, LoggerClaim, RawFrameInput, RawFrameStore, ReadingWriter, Store, StoreError,
    UnclaimedLoggerStore,
};

/// Stores logger frames in a [`Store`].
#[derive(Clone)]
pub struct StoreSink {
    store: Arc<Store>,
}

impl StoreSink {
    /// A sink writing to `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    async fn record_claimed(&self, claim: &LoggerClaim, event: &FrameEvent) -> Result<(), StoreError> {
        let scope = &claim.scope;
        let inverter = claim.inverter_id;
        match &event.content {
            FrameContent::Data {
                timestamp: Some(_),
                decoded: Some(data),
                ..
            } => {
                self.store
                    .write_readings(scope, &[(inverter, data.reading.clone())], event.received_at)
                    .await?;
                self.store
                    .update_device_info(scope, inverter, &data.device_info)
                    .await
            }
            // The handshake carries the logger's firmware, not the inverter's: only mark it seen.
            FrameContent::Handshake(_) | FrameContent::Heartbeat => {
                self.store.touch_inverter(scope, inverter, event.received_at).await
            }
            // Data without a device time or of an unknown layout, info, report, command
            // replies, unknown codes, undecodable payloads: kept raw.
            _ => {
                let input = raw_input(event);
                let remote = event.remote.to_string();
                self.store
                    .store_raw_frame(scope, inverter, &RawFrameInput { remote_addr: Some(&remote), ..input })
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
        StoreError::Unavailable(_) | StoreError::Backend(_) => SinkError::Unavailable(err.to_string()),
        // Will never succeed (e.g. the inverter was deleted meanwhile): log and acknowledge.
        StoreError::NotFound | StoreError::Conflict(_) | StoreError::Forbidden | StoreError::Invalid(_) => {
            SinkError::Rejected(err.to_string())
        }
    }
}

impl FrameSink for StoreSink {
    async fn record(&self, event: FrameEvent) -> Result<(), SinkError> {
        let claim = self
            .store
            .resolve_logger_unscoped(event.logger)
            .await
            .map_err(sink_error)?;
        match claim {
            Some(claim) => self.record_claimed(&claim, &event).await.map_err(sink_error),
            None => {
                let remote = event.remote.to_string();
                let input = RawFrameInput {
                    remote_addr: Some(&remote),
                    ..raw_input(&event)
                };
                self.store.record_unclaimed_frame(&input).await.map_err(sink_error)
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
        store.write_readings(scope, &readings, chrono::Utc::now()).await?;
    }
    if let Some(info) = device_info {
        store.update_device_info(scope, claim.inverter_id, &info).await?;
    }
    Ok(BackfillReport {
        frames: frames.len(),
        readings: readings.len(),
    })
}

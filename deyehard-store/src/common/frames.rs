//! The collector's batch write ([`crate::LoggerFrameWriter`]), shared by both backends (see
//! [`crate::common`]).
//!
//! A batch is planned first ([`plan`]): the loggers' claims, resolved in the transaction, sort
//! every frame into the unclaimed part (one `unclaimed_loggers` row per logger, summed over its
//! frames, plus the ownerless raw frames) and one part per tenant (readings, device info,
//! inverters seen, owned raw frames). Each backend then writes every part with a few
//! multi-row statements. Besides `begin_write` and `write_readings_in`, the macro relies on
//! these inherent items of each backend:
//!
//! - `async fn switch_access(tx, access: Access<'_>) -> StoreResult<()>`: re-scopes an open
//!   transaction (PostgreSQL: the tenant and cross-tenant settings; SQLite: a no-op);
//! - `async fn resolve_loggers(tx, serials: &[i64]) -> StoreResult<HashMap<i64, Claim>>`;
//! - `async fn upsert_unclaimed(tx, rows: &[UnclaimedRow<'_>]) -> StoreResult<()>`;
//! - `async fn insert_raw_frames(tx, rows: &[RawRow<'_>]) -> StoreResult<()>`;
//! - `async fn touch_seen(tx, user: i64, seen: &BTreeMap<i64, Ts>) -> StoreResult<()>`.

use std::collections::{BTreeMap, HashMap};

use deyehard_core::{DeviceInfo, InverterId};

use crate::common::devices::logger_serial;
use crate::common::write::WriteInput;
use crate::model::{LoggerFrame, LoggerFrameKind, LoggerFrameOutcome, RawFrameInput, WriteOutcome};
use crate::ts::Ts;

/// A logger's active claim: its inverter and that inverter's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct Claim {
    /// The logger serial.
    pub(crate) logger_serial: i64,
    /// The claiming inverter.
    pub(crate) inverter_id: i64,
    /// Its owner.
    pub(crate) user_id: i64,
}

/// A raw frame to insert; no owner for an unclaimed logger's frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRow<'a> {
    /// The owner (`None` while the logger is unclaimed).
    pub(crate) user: Option<i64>,
    /// The inverter (`None` while the logger is unclaimed).
    pub(crate) inverter: Option<i64>,
    /// The frame.
    pub(crate) frame: &'a RawFrameInput<'a>,
}

/// What one batch adds to one unclaimed logger's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnclaimedRow<'a> {
    /// The logger serial.
    pub(crate) serial: i64,
    /// Its earliest frame in the batch.
    pub(crate) first_seen: Ts,
    /// Its latest frame in the batch.
    pub(crate) last_seen: Ts,
    /// The remote address of its last frame in the batch that has one.
    pub(crate) remote_addr: Option<&'a str>,
    /// Its frames in the batch.
    pub(crate) frames: i64,
}

/// One tenant's part of a batch.
#[derive(Debug, Default)]
pub(crate) struct TenantPart<'a> {
    /// Readings to write.
    pub(crate) readings: Vec<WriteInput<'a>>,
    /// The position in the batch of each of `readings`.
    pub(crate) reading_frames: Vec<usize>,
    /// Device info to write, by inverter, in batch order.
    pub(crate) device_info: Vec<(i64, &'a DeviceInfo)>,
    /// Inverters seen (handshakes, heartbeats) and when, latest.
    pub(crate) seen: BTreeMap<i64, Ts>,
    /// Raw frames of the tenant's inverters.
    pub(crate) raw: Vec<RawRow<'a>>,
}

/// A batch sorted into its parts, with the outcomes known before writing (readings get theirs
/// from the write).
#[derive(Debug, Default)]
pub(crate) struct Plan<'a> {
    /// Rows of `unclaimed_loggers` to insert or update, one per logger.
    pub(crate) unclaimed: Vec<UnclaimedRow<'a>>,
    /// Ownerless raw frames.
    pub(crate) unclaimed_raw: Vec<RawRow<'a>>,
    /// The claimed loggers' frames by tenant (user id).
    pub(crate) tenants: BTreeMap<i64, TenantPart<'a>>,
    /// One per frame.
    pub(crate) outcomes: Vec<LoggerFrameOutcome>,
}

/// The distinct logger serials of a batch, ascending.
pub(crate) fn serials(frames: &[LoggerFrame<'_>]) -> Vec<i64> {
    let mut serials: Vec<i64> = frames
        .iter()
        .map(|f| logger_serial(f.frame.logger_serial))
        .collect();
    serials.sort_unstable();
    serials.dedup();
    serials
}

/// Sorts a batch by the loggers' `claims` (keyed by serial).
pub(crate) fn plan<'a>(frames: &'a [LoggerFrame<'a>], claims: &HashMap<i64, Claim>) -> Plan<'a> {
    let mut plan = Plan {
        outcomes: Vec::with_capacity(frames.len()),
        ..Plan::default()
    };
    let mut unclaimed: BTreeMap<i64, UnclaimedRow<'a>> = BTreeMap::new();
    for (index, frame) in frames.iter().enumerate() {
        let serial = logger_serial(frame.frame.logger_serial);
        let received_at = Ts::new(frame.frame.received_at);
        let Some(claim) = claims.get(&serial) else {
            let row = unclaimed.entry(serial).or_insert(UnclaimedRow {
                serial,
                first_seen: received_at,
                last_seen: received_at,
                remote_addr: None,
                frames: 0,
            });
            row.first_seen = row.first_seen.min(received_at);
            row.last_seen = row.last_seen.max(received_at);
            row.remote_addr = frame.frame.remote_addr.or(row.remote_addr);
            row.frames += 1;
            plan.unclaimed_raw.push(RawRow {
                user: None,
                inverter: None,
                frame: &frame.frame,
            });
            plan.outcomes.push(LoggerFrameOutcome::Unclaimed);
            continue;
        };
        let part = plan.tenants.entry(claim.user_id).or_default();
        let inverter = claim.inverter_id;
        let mut reading_outcome = None;
        match frame.kind {
            LoggerFrameKind::Reading {
                reading,
                device_info,
            } => {
                part.readings.push(WriteInput {
                    inverter,
                    reading,
                    received_at,
                });
                part.reading_frames.push(index);
                part.device_info
                    .extend(device_info.map(|info| (inverter, info)));
                // Until the write says otherwise.
                reading_outcome = Some(WriteOutcome::NotFound);
            }
            LoggerFrameKind::Seen => {
                let seen = part.seen.entry(inverter).or_insert(received_at);
                *seen = (*seen).max(received_at);
            }
            LoggerFrameKind::Raw => part.raw.push(RawRow {
                user: Some(claim.user_id),
                inverter: Some(inverter),
                frame: &frame.frame,
            }),
        }
        plan.outcomes.push(LoggerFrameOutcome::Claimed {
            inverter: InverterId::new(inverter),
            reading: reading_outcome,
        });
    }
    plan.unclaimed = unclaimed.into_values().collect();
    plan
}

/// Puts the outcomes of a tenant's readings (in the order of `reading_frames`) into place.
pub(crate) fn set_reading_outcomes(
    outcomes: &mut [LoggerFrameOutcome],
    reading_frames: &[usize],
    written: &[WriteOutcome],
) {
    for (index, outcome) in reading_frames.iter().zip(written) {
        if let Some(LoggerFrameOutcome::Claimed { reading, .. }) = outcomes.get_mut(*index) {
            *reading = Some(*outcome);
        }
    }
}

/// Expands [`crate::LoggerFrameWriter`] for a backend store type.
macro_rules! impl_logger_frames {
    ($store:ty) => {
        impl $crate::LoggerFrameWriter for $store {
            async fn write_logger_frames(
                &self,
                frames: &[$crate::LoggerFrame<'_>],
            ) -> $crate::StoreResult<Vec<$crate::LoggerFrameOutcome>> {
                use $crate::common::frames;
                if frames.is_empty() {
                    return Ok(Vec::new());
                }
                // Device-level write (cross-tenant): a logger carries no credential, its serial
                // names the claiming tenant. Each tenant's part runs in that tenant's scope.
                let mut tx = self
                    .begin_write($crate::common::Access::CrossTenant)
                    .await?;
                let claims = Self::resolve_loggers(&mut tx, &frames::serials(frames)).await?;
                let frames::Plan {
                    unclaimed,
                    unclaimed_raw,
                    tenants,
                    mut outcomes,
                } = frames::plan(frames, &claims);
                Self::upsert_unclaimed(&mut tx, &unclaimed).await?;
                Self::insert_raw_frames(&mut tx, &unclaimed_raw).await?;
                for (user, part) in &tenants {
                    let scope = deyehard_core::TenantScope::from_credential_lookup(
                        deyehard_core::UserId::new(*user),
                    );
                    Self::switch_access(&mut tx, $crate::common::Access::Tenant(&scope)).await?;
                    if !part.readings.is_empty() {
                        let written =
                            Self::write_readings_in(&mut tx, *user, &part.readings).await?;
                        frames::set_reading_outcomes(&mut outcomes, &part.reading_frames, &written);
                    }
                    for (inverter, info) in &part.device_info {
                        let (firmware, rated, mppt) =
                            $crate::common::devices::device_info_binds(info);
                        // No row when the inverter went away meanwhile: nothing to fill in.
                        sqlx::query($crate::sql::INVERTER_DEVICE_INFO)
                            .bind(*user)
                            .bind(*inverter)
                            .bind(firmware)
                            .bind(rated)
                            .bind(mppt)
                            .execute(&mut *tx)
                            .await?;
                    }
                    Self::touch_seen(&mut tx, *user, &part.seen).await?;
                    Self::insert_raw_frames(&mut tx, &part.raw).await?;
                }
                tx.commit().await?;
                Ok(outcomes)
            }
        }
    };
}

pub(crate) use impl_logger_frames;

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta, Utc};
    use deyehard_core::{LoggerSerial, Reading, Source};

    use super::*;

    fn at(second: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + second, 0).unwrap_or_default()
    }

    fn raw(serial: u32, second: i64, remote: Option<&'static str>) -> RawFrameInput<'static> {
        RawFrameInput {
            logger_serial: LoggerSerial::new(serial),
            received_at: at(second),
            control: 0x4210,
            remote_addr: remote,
            bytes: b"\xa5",
        }
    }

    #[test]
    fn a_batch_is_sorted_by_claim() {
        let reading = Reading::new(at(0) - TimeDelta::seconds(3), Source::Solarman);
        let info = DeviceInfo::default();
        let frames = [
            LoggerFrame {
                frame: raw(7, 2, Some("a:1")),
                kind: LoggerFrameKind::Seen,
            },
            LoggerFrame {
                frame: raw(1, 0, None),
                kind: LoggerFrameKind::Reading {
                    reading: &reading,
                    device_info: Some(&info),
                },
            },
            LoggerFrame {
                frame: raw(7, 1, None),
                kind: LoggerFrameKind::Raw,
            },
            LoggerFrame {
                frame: raw(1, 5, None),
                kind: LoggerFrameKind::Seen,
            },
            LoggerFrame {
                frame: raw(1, 4, None),
                kind: LoggerFrameKind::Seen,
            },
            LoggerFrame {
                frame: raw(2, 0, None),
                kind: LoggerFrameKind::Raw,
            },
        ];
        assert_eq!(serials(&frames), [1, 2, 7]);
        let claims = HashMap::from([
            (
                1,
                Claim {
                    logger_serial: 1,
                    inverter_id: 10,
                    user_id: 100,
                },
            ),
            (
                2,
                Claim {
                    logger_serial: 2,
                    inverter_id: 20,
                    user_id: 100,
                },
            ),
        ]);
        let mut plan = plan(&frames, &claims);
        assert_eq!(
            plan.unclaimed,
            [UnclaimedRow {
                serial: 7,
                first_seen: Ts::new(at(1)),
                last_seen: Ts::new(at(2)),
                remote_addr: Some("a:1"),
                frames: 2,
            }]
        );
        assert_eq!(plan.unclaimed_raw.len(), 2);
        let part = &plan.tenants[&100];
        assert_eq!(part.reading_frames, [1]);
        assert_eq!(part.device_info.len(), 1);
        assert_eq!(
            part.seen.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
            [(10, Ts::new(at(5)))]
        );
        assert_eq!(part.raw.len(), 1);
        let reading_frames = part.reading_frames.clone();
        set_reading_outcomes(&mut plan.outcomes, &reading_frames, &[WriteOutcome::Stored]);
        let claimed = |inverter, reading| LoggerFrameOutcome::Claimed {
            inverter: InverterId::new(inverter),
            reading,
        };
        assert_eq!(
            plan.outcomes,
            [
                LoggerFrameOutcome::Unclaimed,
                claimed(10, Some(WriteOutcome::Stored)),
                LoggerFrameOutcome::Unclaimed,
                claimed(10, None),
                claimed(10, None),
                claimed(20, None),
            ]
        );
    }
}

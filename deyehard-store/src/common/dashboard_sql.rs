//! The statements of the dashboard reads: SQL written once for both dialects, and the
//! per-dialect statements (`sqlite_sql`, `pg_sql`) that each backend hands to
//! [`super::dashboard_reads::impl_dashboard`].

// ---- SQL shared by both dialects ------------------------------------------------------------

/// Per inverter of the scope (all, or only `$4`): today's (`$2`) energy and peak, the newest
/// lifetime counter and reachable reading since `$3`, the energy recorded over all days, and
/// the latest earlier day with production.
pub(crate) const STATUS_FIGURES: &str = "SELECT i.id AS inverter_id, \
     d.energy_wh AS today_wh, d.peak_power_w AS today_peak_w, \
     (SELECT x.yield_total_wh FROM measurements x WHERE x.user_id = i.user_id \
      AND x.inverter_id = i.id AND x.time >= $3 AND x.yield_total_wh IS NOT NULL \
      ORDER BY x.time DESC LIMIT 1) AS lifetime_wh, \
     (SELECT x.time FROM measurements x WHERE x.user_id = i.user_id AND x.inverter_id = i.id \
      AND x.time >= $3 AND x.reachable ORDER BY x.time DESC LIMIT 1) AS last_reachable_at, \
     (SELECT sum(e.energy_wh) FROM daily_energy e WHERE e.user_id = i.user_id \
      AND e.inverter_id = i.id) AS recorded_wh, \
     (SELECT max(e.day) FROM daily_energy e WHERE e.user_id = i.user_id \
      AND e.inverter_id = i.id AND e.day < $2 AND e.energy_wh > 0) AS reference_day \
     FROM inverters i LEFT JOIN daily_energy d ON d.user_id = i.user_id \
     AND d.inverter_id = i.id AND d.day = $2 \
     WHERE i.user_id = $1 AND ($4 IS NULL OR i.id = $4) ORDER BY i.id";

/// Readings since `$2` per inverter (all, or only `$3`): how many, and the count and sum of
/// the reachable ones' power.
pub(crate) const LAST_HOUR: &str = "SELECT m.inverter_id AS inverter_id, count(*) AS readings, \
     count(CASE WHEN m.reachable THEN m.power_ac_w END) AS n, \
     sum(CASE WHEN m.reachable THEN m.power_ac_w END) AS total \
     FROM inverters i JOIN measurements m ON m.user_id = i.user_id AND m.inverter_id = i.id \
     WHERE i.user_id = $1 AND ($3 IS NULL OR i.id = $3) AND m.time >= $2 \
     GROUP BY m.inverter_id";

/// The newest reading times of one inverter (for its usual interval).
pub(crate) const RECENT_TIMES: &str = "SELECT time FROM measurements \
     WHERE user_id = $1 AND inverter_id = $2 ORDER BY time DESC LIMIT 11";

/// First and last producing 5-minute bucket of one inverter in `[$3, $4)`.
pub(crate) const PRODUCTION_SPAN: &str = "SELECT min(bucket), max(bucket) FROM rollup_5m \
     WHERE user_id = $1 AND inverter_id = $2 AND bucket >= $3 AND bucket < $4 \
     AND samples > 0 AND power_max > 0";

/// The scope's inverter ids.
pub(crate) const INVERTER_IDS: &str = "SELECT id FROM inverters WHERE user_id = $1 ORDER BY id";

/// 5-minute bucket energies of all the scope's inverters with `$2 <= bucket <= $3`.
pub(crate) const SUMMARY_BUCKET_ENERGY: &str = "SELECT r.inverter_id, r.bucket, r.energy_wh \
     FROM inverters i JOIN rollup_5m r ON r.user_id = i.user_id AND r.inverter_id = i.id \
     WHERE i.user_id = $1 AND r.bucket >= $2 AND r.bucket <= $3 \
     ORDER BY r.inverter_id, r.bucket";

/// Daily rows of all the scope's inverters for `$2 ..= $3`.
pub(crate) const SUMMARY_DAYS: &str = "SELECT d.inverter_id, d.day, d.energy_wh, \
     d.peak_power_w, d.samples FROM inverters i JOIN daily_energy d \
     ON d.user_id = i.user_id AND d.inverter_id = i.id \
     WHERE i.user_id = $1 AND d.day >= $2 AND d.day <= $3 ORDER BY d.inverter_id, d.day";

/// Time of the newest reachable reading with DC channels since `$3`.
pub(crate) const DC_NEWEST_REACHABLE: &str = "SELECT d.time FROM dc_measurements d \
     JOIN measurements m ON m.inverter_id = d.inverter_id AND m.time = d.time \
     WHERE d.user_id = $1 AND d.inverter_id = $2 AND d.time >= $3 AND m.reachable \
     ORDER BY d.time DESC LIMIT 1";

/// Time of the newest reading with DC channels.
pub(crate) const DC_NEWEST: &str = "SELECT time FROM dc_measurements \
     WHERE user_id = $1 AND inverter_id = $2 ORDER BY time DESC LIMIT 1";

/// The DC channels of one reading, with its reachability.
pub(crate) const DC_AT: &str = "SELECT d.channel, d.name, d.power_w, d.voltage_v, d.current_a, \
     d.irradiation_pct, d.yield_day_wh, d.yield_total_wh, m.reachable \
     FROM dc_measurements d JOIN measurements m ON m.inverter_id = d.inverter_id \
     AND m.time = d.time WHERE d.user_id = $1 AND d.inverter_id = $2 AND d.time = $3 \
     ORDER BY d.channel";

// ---- SQL per dialect --------------------------------------------------------------------------

/// The DC metric series statement for a column, with a dialect's bucket index expression.
macro_rules! dc_metric_sql {
    ($index:literal, $column:literal) => {
        concat!(
            "SELECT d.channel AS channel, ",
            $index,
            " AS idx, count(*) AS n, sum(d.",
            $column,
            ") AS total, min(d.",
            $column,
            ") AS lo, max(d.",
            $column,
            ") AS hi FROM dc_measurements d JOIN measurements m \
             ON m.inverter_id = d.inverter_id AND m.time = d.time AND m.reachable \
             WHERE d.user_id = $1 AND d.inverter_id = $2 AND d.time >= $3 AND d.time < $4 \
             AND d.",
            $column,
            " IS NOT NULL GROUP BY d.channel, idx ORDER BY d.channel, idx"
        )
    };
}

/// The summary power statement for a rollup table, with a dialect's index and sample sum.
macro_rules! summary_sql {
    ($index:literal, $samples:literal, $table:literal) => {
        concat!(
            "SELECT r.inverter_id AS inverter_id, ",
            $index,
            " AS idx, ",
            $samples,
            " AS n, sum(r.power_sum) AS total, min(r.power_min) AS lo, max(r.power_max) AS hi \
             FROM inverters i JOIN ",
            $table,
            " r ON r.user_id = i.user_id AND r.inverter_id = i.id \
             WHERE i.user_id = $1 AND r.bucket >= $2 AND r.bucket < $3 AND r.samples > 0 \
             GROUP BY r.inverter_id, idx ORDER BY idx, r.inverter_id"
        )
    };
}

/// SQLite (times are integer milliseconds).
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite_sql {
    use crate::dashboard::DcMetric;

    /// Summary power from `rollup_5m`: `$2` base, `$3` end, `$4` width in ms.
    pub(crate) const SUMMARY_5M: &str =
        summary_sql!("(r.bucket - $2) / $4", "sum(r.samples)", "rollup_5m");
    /// Summary power from `rollup_1h`.
    pub(crate) const SUMMARY_1H: &str =
        summary_sql!("(r.bucket - $2) / $4", "sum(r.samples)", "rollup_1h");

    /// A DC metric per channel: `$3` base, `$4` end, `$5` width in ms.
    pub(crate) fn dc_metric(metric: DcMetric) -> &'static str {
        match metric {
            DcMetric::Power => dc_metric_sql!("(d.time - $3) / $5", "power_w"),
            DcMetric::Voltage => dc_metric_sql!("(d.time - $3) / $5", "voltage_v"),
            DcMetric::Current => dc_metric_sql!("(d.time - $3) / $5", "current_a"),
            DcMetric::Irradiation => dc_metric_sql!("(d.time - $3) / $5", "irradiation_pct"),
            DcMetric::DayEnergy => dc_metric_sql!("(d.time - $3) / $5", "yield_day_wh"),
        }
    }
}

/// PostgreSQL (times are `timestamptz`, whole milliseconds).
#[cfg(feature = "postgres")]
pub(crate) mod pg_sql {
    use crate::dashboard::DcMetric;

    /// Summary power from `rollup_5m`: `$2` base, `$3` end, `$4` width in ms.
    pub(crate) const SUMMARY_5M: &str = summary_sql!(
        "((extract(epoch FROM (r.bucket - $2)) * 1000)::bigint / $4)",
        "sum(r.samples)::bigint",
        "rollup_5m"
    );
    /// Summary power from `rollup_1h`.
    pub(crate) const SUMMARY_1H: &str = summary_sql!(
        "((extract(epoch FROM (r.bucket - $2)) * 1000)::bigint / $4)",
        "sum(r.samples)::bigint",
        "rollup_1h"
    );

    /// A DC metric per channel: `$3` base, `$4` end, `$5` width in ms.
    pub(crate) fn dc_metric(metric: DcMetric) -> &'static str {
        match metric {
            DcMetric::Power => dc_metric_sql!(
                "((extract(epoch FROM (d.time - $3)) * 1000)::bigint / $5)",
                "power_w"
            ),
            DcMetric::Voltage => dc_metric_sql!(
                "((extract(epoch FROM (d.time - $3)) * 1000)::bigint / $5)",
                "voltage_v"
            ),
            DcMetric::Current => dc_metric_sql!(
                "((extract(epoch FROM (d.time - $3)) * 1000)::bigint / $5)",
                "current_a"
            ),
            DcMetric::Irradiation => dc_metric_sql!(
                "((extract(epoch FROM (d.time - $3)) * 1000)::bigint / $5)",
                "irradiation_pct"
            ),
            DcMetric::DayEnergy => dc_metric_sql!(
                "((extract(epoch FROM (d.time - $3)) * 1000)::bigint / $5)",
                "yield_day_wh"
            ),
        }
    }
}
